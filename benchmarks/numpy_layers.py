"""Where does a NumPy training step's time go? Each layer's forward and backward, timed inside real steps.

One SimpleCNN (batch 64 of real MNIST images, Adam), trained step after step; each layer's forward and
backward pass and the Adam step are timed separately, in the order CNN.forward runs them, and set
against that layer's FLOPs (frameworks.count_flops): a layer far below the machine's matrix-product
speed spends its time moving memory, not multiplying.

    python benchmarks/numpy_layers.py                      # this checkout's engine, about 20 s
    python benchmarks/numpy_layers.py --engine /tmp/before # another checkout's cnn_from_scratch.py, e.g.
        git worktree add /tmp/before 9d2f360               # the engine before the speed work of issue 14

The FLOPs and the machine's limit always come from this checkout (the SimpleCNN is the same network in
both). Medians over --repeats steps; nothing here asserts.
"""
import argparse
import importlib
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import cnn_from_scratch as this_checkout  # noqa: E402
from data import load_mnist  # noqa: E402
import frameworks  # noqa: E402
from frameworks import fix_malloc_thresholds  # noqa: E402


def load_engine(path):
    """cnn_from_scratch imported from another checkout's folder (or this one's)."""
    if path is None:
        return this_checkout
    sys.path.insert(0, os.path.abspath(path))
    del sys.modules["cnn_from_scratch"]
    engine = importlib.import_module("cnn_from_scratch")
    sys.path.pop(0)
    return engine


def layer_times(engine, model, x, y, repeats):
    """Median milliseconds of each layer's forward and backward inside training steps, in the order forward
    runs them, and of the Adam step. Engines older than CNN.execution_order ran the layers as listed."""
    optimizer = engine.Adam(model.parameters(), learning_rate=1e-3)
    order = model.execution_order() if hasattr(model, "execution_order") else list(model.layers)
    forward, backward, adam, steps = (np.zeros((repeats, len(order))), np.zeros((repeats, len(order))),
                                      np.zeros(repeats), np.zeros(repeats))
    for repeat in range(-3, repeats):  # three untimed steps first (index -3 .. -1 are overwritten later)
        step_start, out = time.perf_counter(), x
        for index, layer in enumerate(order):
            start = time.perf_counter()
            out = layer.forward(out)
            forward[repeat, index] = time.perf_counter() - start
        _, dout = engine.softmax_cross_entropy(out, y)
        for index in reversed(range(len(order))):
            start = time.perf_counter()
            dout = order[index].backward(dout)
            backward[repeat, index] = time.perf_counter() - start
        start = time.perf_counter()
        optimizer.step()
        adam[repeat], steps[repeat] = time.perf_counter() - start, time.perf_counter() - step_start
    return order, 1e3 * np.median(forward, axis=0), 1e3 * np.median(backward, axis=0), \
        1e3 * np.median(adam), 1e3 * np.median(steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=None, help="folder of another checkout whose cnn_from_scratch.py to time")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    fix_malloc_thresholds()  # the allocator of benchmarks/numpy_vs_torch.py and experiments.py
    data = load_mnist()
    x, y = data.x_train[:args.batch_size], data.y_train[:args.batch_size]
    flops = {index: (forward, backward) for index, _, forward, backward in
             frameworks.count_flops(this_checkout.make_simple_cnn(rng=np.random.default_rng(0)))["layers"]}
    engine = load_engine(args.engine)
    model = engine.make_simple_cnn(rng=np.random.default_rng(0))
    position = {id(layer): index for index, layer in enumerate(model.layers)}
    order, forward, backward, adam, step = layer_times(engine, model, x, y, args.repeats)
    print(f"engine: {os.path.abspath(engine.__file__)}; SimpleCNN, batch {args.batch_size}, median of "
          f"{args.repeats} steps (ms); GFLOP/s where the layer has a matrix product (count_flops)")
    for layer, forward_ms, backward_ms in zip(order, forward, backward):
        index = position[id(layer)]
        line = f"  {index:2d} {type(layer).__name__:20s} forward {forward_ms:6.2f}  backward {backward_ms:6.2f}"
        if index in flops:
            forward_flops, backward_flops = flops[index]
            line += (f"   {args.batch_size * forward_flops / forward_ms / 1e6:5.1f} / "
                     f"{args.batch_size * backward_flops / backward_ms / 1e6:5.1f} GFLOP/s")
        print(line)
    print(f"  Adam step {adam:.2f}; the layers and Adam {forward.sum() + backward.sum() + adam:.2f}; "
          f"the whole step (with the loss) {step:.2f}")


if __name__ == "__main__":
    main()
