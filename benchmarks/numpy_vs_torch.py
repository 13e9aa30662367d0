"""How fast is the NumPy CNN? One training step of SimpleCNN, NumPy against PyTorch on the CPU.

Both frameworks run the same architecture (cnn_from_scratch.make_simple_cnn) with the same
weights, the same batch of real MNIST images, Adam, and the same number of threads, in one
process; each step is forward, softmax cross-entropy, backward and the optimizer update.
It also times the vectorized convolution against the naive loop version.

    python benchmarks/numpy_vs_torch.py            # about a minute
    python benchmarks/numpy_vs_torch.py --quick    # a few seconds, fewer repeats

The printed ratio NumPy / PyTorch is the number the README quotes; the goal is at most 1.5.
Timings are medians over repeats, so a busy machine skews them less. Nothing here asserts.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--quick", action="store_true", help="20 repeats")
    args = parser.parse_args()
    repeats = 20 if args.quick else args.repeats

    threads = torch.get_num_threads()
    print(f"threads: PyTorch {threads}, cores {os.cpu_count()}; NumPy's BLAS uses its default (the core count)")
    data = load_mnist()
    x, y = data.x_train[:args.batch_size], data.y_train[:args.batch_size]

    numpy_model = scratch.make_simple_cnn(rng=np.random.default_rng(args.seed))
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

    # Interleave the two, so that a change in machine load hits both alike.
    numpy_times, torch_times = [], []
    for _ in range(5):
        numpy_times.append(median_seconds(numpy_step, max(repeats // 5, 3)))
        torch_times.append(median_seconds(torch_step, max(repeats // 5, 3)))
    numpy_seconds, torch_seconds = float(np.median(numpy_times)), float(np.median(torch_times))
    print(f"SimpleCNN training step, batch {args.batch_size} (forward + backward + Adam):")
    print(f"  NumPy   {numpy_seconds * 1e3:8.2f} ms")
    print(f"  PyTorch {torch_seconds * 1e3:8.2f} ms")
    print(f"  ratio NumPy / PyTorch = {numpy_seconds / torch_seconds:.2f}  (goal: at most 1.5)")

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
