"""Why experiments.py trains each framework in a fresh process: NumPy and PyTorch after TensorFlow.

In one process, this times one epoch of the NumPy SimpleCNN and one of the PyTorch SimpleCNN on
the same 6,400 MNIST images, then trains the Keras SimpleCNN once, then times the same two epochs
again. It prints the times and the slow-down ratios; nothing asserts. With --fix-malloc, glibc's
malloc thresholds are pinned first (frameworks.fix_malloc_thresholds), which is the other half of
the story told in that function's docstring.

    python benchmarks/after_tensorflow.py               # about a minute
    python benchmarks/after_tensorflow.py --fix-malloc  # the same with pinned malloc thresholds
    python benchmarks/after_tensorflow.py --quick       # 1,280 images
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import cnn_from_scratch  # noqa: E402
import cnn_pytorch  # noqa: E402  (PyTorch before TensorFlow: see cnn_keras.py)
from data import load_mnist  # noqa: E402
from frameworks import fix_malloc_thresholds  # noqa: E402


def epoch_seconds(module, model, data, size, seed):
    """Training seconds of one epoch of the shared fit, as its history reports them."""
    history = module.fit(model, data.x_train[:size], data.y_train[:size], data.x_val[:100], data.y_val[:100],
                         epochs=1, batch_size=64, learning_rate=2e-3, seed=seed, progress=False)
    return history["seconds"][0]


def time_numpy_and_pytorch(data, size, seed):
    numpy_model = cnn_from_scratch.make_simple_cnn(rng=np.random.default_rng(seed))
    torch_model = cnn_pytorch.numpy_to_torch(numpy_model, cnn_pytorch.SimpleCNN())
    return (epoch_seconds(cnn_from_scratch, numpy_model, data, size, seed),
            epoch_seconds(cnn_pytorch, torch_model, data, size, seed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix-malloc", action="store_true", help="pin glibc's malloc thresholds first")
    parser.add_argument("--quick", action="store_true", help="1,280 images")
    args = parser.parse_args()
    size = 1280 if args.quick else args.images
    if args.fix_malloc:
        print(f"malloc thresholds pinned: {fix_malloc_thresholds()}")
    data = load_mnist(seed=args.seed)
    time_numpy_and_pytorch(data, 640, args.seed)  # warm-up: first-call costs out of the way
    numpy_before, torch_before = time_numpy_and_pytorch(data, size, args.seed)

    import cnn_keras  # noqa: PLC0415

    cnn_keras.set_seed(args.seed)
    keras_seconds = epoch_seconds(cnn_keras, cnn_keras.make_simple_cnn(), data, size, args.seed)
    numpy_after, torch_after = time_numpy_and_pytorch(data, size, args.seed)
    print(f"one epoch of the SimpleCNN on {size:,} images (seconds of training):")
    print(f"  NumPy    before Keras {numpy_before:6.2f}   after {numpy_after:6.2f}   "
          f"ratio {numpy_after / numpy_before:.2f}")
    print(f"  PyTorch  before Keras {torch_before:6.2f}   after {torch_after:6.2f}   "
          f"ratio {torch_after / torch_before:.2f}")
    print(f"  (Keras itself: {keras_seconds:.2f})")


if __name__ == "__main__":
    main()
