"""How fast is the NumPy CNN? One training step of SimpleCNN in NumPy, PyTorch and Keras, against the machine's limit.

The three frameworks run the same architecture (cnn_from_scratch.make_simple_cnn) with the same
weights, the same batch of real MNIST images, Adam, and the cores' default thread count, in one
process; each step is forward, softmax cross-entropy, backward and the optimizer update.

The machine's limit: a float32 matrix product of 2048 x 2048 matrices (frameworks.matrix_product_gflops)
runs at close to the cores' peak; a training step needs count_flops FLOPs per image in its matrix products
(forward, and dW and dx backward). So each framework's step time gives its achieved GFLOP/s, and the
fraction of the peak it reaches. The rest of a step's time goes to work that moves memory rather than
multiplying (copies, ReLU, pooling, Adam), which no matrix-product speed helps.

    python benchmarks/numpy_vs_torch.py            # about a minute
    python benchmarks/numpy_vs_torch.py --quick    # a few seconds, fewer repeats
    python benchmarks/numpy_vs_torch.py --no-keras # NumPy and PyTorch only (no TensorFlow start-up)

The printed ratio NumPy / PyTorch is the number the README quotes; the goal is at most 1.0. Timings are
medians over repeats, NumPy and PyTorch interleaved so that a change in load hits both alike; Keras runs
last, because once TensorFlow has trained in a process the other two run slower in it
(benchmarks/after_tensorflow.py). Where the NumPy step's time goes, layer by layer:
benchmarks/numpy_layers.py. Nothing here asserts.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cnn_from_scratch as scratch  # noqa: E402
from cnn_pytorch import SimpleCNN, numpy_to_torch  # noqa: E402
from data import load_mnist  # noqa: E402
import frameworks  # noqa: E402
from frameworks import fix_malloc_thresholds  # noqa: E402


def median_seconds(function, repeats, warmup=3):
    """Median wall time of function() over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def numpy_and_torch_steps(numpy_model, x, y):
    """Two functions, one training step each, of the same SimpleCNN in NumPy and in PyTorch."""
    torch_model = numpy_to_torch(numpy_model, SimpleCNN())  # the same network, the same weights
    numpy_optimizer = scratch.Adam(numpy_model.parameters(), learning_rate=1e-3)
    torch_optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)

    def numpy_step():
        logits = numpy_model.forward(x)
        _, dlogits = scratch.softmax_cross_entropy(logits, y)
        numpy_model.backward(dlogits)
        numpy_optimizer.step()

    def torch_step():
        torch_optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(torch_model(x_torch), y_torch)
        loss.backward()
        torch_optimizer.step()

    return numpy_step, torch_step


def keras_step(numpy_model, x, y):
    """One training step of the same SimpleCNN in Keras (train_on_batch, Adam at a constant rate)."""
    import cnn_keras  # noqa: PLC0415 (TensorFlow only when asked for, and after the other two)

    model = cnn_keras.numpy_to_keras(numpy_model, cnn_keras.make_simple_cnn())
    cnn_keras.compile_model(model, learning_rate=1e-3, schedule="constant")
    x_keras = cnn_keras.to_channels_last(x)
    return lambda: model.train_on_batch(x_keras, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--quick", action="store_true", help="20 repeats")
    parser.add_argument("--no-keras", action="store_true", help="leave Keras out")
    args = parser.parse_args()
    repeats = 20 if args.quick else args.repeats
    fix_malloc_thresholds()  # the same allocator for all three, as in experiments.py

    print(f"threads: PyTorch {torch.get_num_threads()}, cores {os.cpu_count()}; NumPy's BLAS uses its default "
          f"(the core count)")
    data = load_mnist()
    x, y = data.x_train[:args.batch_size], data.y_train[:args.batch_size]
    numpy_model = scratch.make_simple_cnn(rng=np.random.default_rng(args.seed))
    flops = frameworks.count_flops(numpy_model)
    step_flops = args.batch_size * (flops["forward"] + flops["backward"])
    peak = frameworks.matrix_product_gflops()
    print(f"machine's limit: {peak:.0f} GFLOP/s (float32 matrix product, 2048 x 2048, best of 5)")
    print(f"one training step, batch {args.batch_size}: {step_flops / 1e6:.0f} MFLOP in matrix products "
          f"({flops['forward'] / 1e6:.2f} forward + {flops['backward'] / 1e6:.2f} backward per image; count_flops), "
          f"at least {1e3 * step_flops / (peak * 1e9):.2f} ms at the limit")

    numpy_step, torch_step = numpy_and_torch_steps(scratch.make_simple_cnn(rng=np.random.default_rng(args.seed)),
                                                   x, y)
    numpy_times, torch_times = [], []
    for _ in range(5):  # interleaved, so that a change in machine load hits both alike
        numpy_times.append(median_seconds(numpy_step, max(repeats // 5, 3)))
        torch_times.append(median_seconds(torch_step, max(repeats // 5, 3)))
    seconds = {"NumPy": float(np.median(numpy_times)), "PyTorch": float(np.median(torch_times))}
    if not args.no_keras:
        seconds["Keras"] = median_seconds(keras_step(numpy_model, x, y), repeats)

    print(f"SimpleCNN training step, batch {args.batch_size} (forward + backward + Adam):")
    for name, value in seconds.items():
        achieved = step_flops / value / 1e9
        print(f"  {name:8s} {value * 1e3:7.2f} ms  {achieved:6.1f} GFLOP/s  {100 * achieved / peak:4.1f}% of the limit")
    print(f"  ratio NumPy / PyTorch = {seconds['NumPy'] / seconds['PyTorch']:.2f}  (goal: at most 1.0)")

    # The naive loops are slow, so time them on a smaller problem: 8 images, the second conv layer.
    rng = np.random.default_rng(0)
    x_small = rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
    w, b = rng.standard_normal((32, 16, 3, 3)).astype(np.float32), np.zeros(32, np.float32)
    naive = median_seconds(lambda: scratch.conv2d_forward_naive(x_small, w, b, 1, 1), 3, warmup=1)
    fast = median_seconds(lambda: scratch.conv2d_forward(x_small, w, b, 1, 1), 20)
    print(f"conv forward, x (8, 16, 14, 14), w (32, 16, 3, 3): naive {naive * 1e3:.1f} ms, "
          f"vectorized {fast * 1e3:.3f} ms, speed-up {naive / fast:.0f}x")


if __name__ == "__main__":
    main()
