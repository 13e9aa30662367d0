"""Datasets for every model in this project, offline and checked.

Every loader returns images as NCHW float32 in [0, 1] and labels as int64, with a
validation split carved from the training set: training code makes its choices
(early stopping, learning rate, architecture) on the validation split and only
reports the test set.

- `load_mnist()`: real MNIST, shipped as `data/mnist.npz` and verified by SHA-256,
  or your own copy (the four IDX `.gz` files or a Keras-style `mnist.npz`) with
  `load_mnist(data_dir="path/to/folder")`.
- `load_digits()`: scikit-learn's bundled 8x8 handwritten digits (1,797 images),
  tiny enough for tests that train a network in a second.

Run it:      python data.py            (prints shapes and class counts)
In a REPL:   >>> from data import load_mnist
             >>> data = load_mnist(); data.x_train.shape
             (55000, 1, 28, 28)
"""
import argparse
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
MNIST_PATH = DATA_DIR / "mnist.npz"
# SHA-256 of the shipped file; data/README.md says how it was built.
MNIST_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
MNIST_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,),
                "x_test": (10000, 28, 28), "y_test": (10000,)}
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
QUICK_TRAIN, QUICK_VAL, QUICK_TEST = 4000, 1000, 2000  # the slice of MNIST that the scripts' --quick trains on
FIX_HINT = "restore it with `git checkout -- data/mnist.npz` (see data/README.md)"


@dataclass
class Dataset:
    """Train / validation / test splits: x of shape (N, C, H, W) float32, y of shape (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    def __repr__(self):
        return (f"Dataset(train={self.x_train.shape}, val={self.x_val.shape}, "
                f"test={self.x_test.shape}, num_classes={self.num_classes})")

    def first(self, train=None, val=None, test=None):
        """A Dataset of the first `train`, `val` and `test` examples of each split (None: all of it),
        as every script's --quick path uses it."""
        return Dataset(self.x_train[:train], self.y_train[:train], self.x_val[:val], self.y_val[:val],
                       self.x_test[:test], self.y_test[:test], self.num_classes)


# --- Helpers ---

def sha256_of(path):
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_validation(x, y, validation_size, seed=0):
    """Carve a random validation split of `validation_size` examples off a training set.

    Inputs:
    - x: array of shape (N, ...); y: array of shape (N,)
    - validation_size: int, 0 <= validation_size < N
    - seed: seed of the permutation, so the split is the same on every run
    Returns: x_train, y_train, x_val, y_val
    """
    if not isinstance(validation_size, (int, np.integer)) or not 0 <= validation_size < len(x):
        raise ValueError(f"validation_size must be an int in [0, {len(x)}), got {validation_size!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    val_idx, train_idx = order[:validation_size], order[validation_size:]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def to_nchw_float(images, max_value):
    """uint8/float images of shape (N, H, W) -> float32 of shape (N, 1, H, W) in [0, 1]."""
    return (images.astype(np.float32) / np.float32(max_value))[:, None, :, :]  # (N, H, W) -> (N, 1, H, W)


def read_idx(path):
    """Read one IDX file (optionally gzipped), the format of the original MNIST files.

    The header is two zero bytes, a type code (0x08 = uint8), the number of
    dimensions, then each dimension as a big-endian int32.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot read IDX file ({error}); expected a (gzipped) MNIST IDX file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (expected magic bytes 00 00 08, got {raw[:3].hex(' ')})")
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = header_end + int(np.prod(shape))
    if len(raw) != expected_bytes:
        raise ValueError(f"{path}: truncated or padded IDX file: header says shape {shape} "
                         f"({expected_bytes} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: neither mnist.npz nor {stem}.gz found; expected a Keras-style "
                            f"mnist.npz or the four IDX files {sorted(IDX_FILES.values())} (.gz or not)")


def _read_mnist_arrays(data_dir=None):
    """Return the raw uint8 arrays {x_train, y_train, x_test, y_test}, checked for shape and range."""
    if data_dir is None:
        if not MNIST_PATH.exists():
            raise FileNotFoundError(f"{MNIST_PATH} is missing; {FIX_HINT}")
        actual = sha256_of(MNIST_PATH)
        if actual != MNIST_SHA256:
            raise ValueError(f"{MNIST_PATH} is truncated or altered: expected SHA-256 {MNIST_SHA256}, "
                             f"got {actual}; {FIX_HINT}")
        path = MNIST_PATH
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {data_dir} is not a folder")
        path = data_dir / "mnist.npz"
        if not path.exists():
            arrays = {key: read_idx(_find_idx(data_dir, stem)) for key, stem in IDX_FILES.items()}
            return _check_mnist_arrays(arrays, data_dir)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in MNIST_SHAPES}
    except KeyError as error:
        raise ValueError(f"{path}: missing array {error}; expected keys {sorted(MNIST_SHAPES)}") from None
    except Exception as error:  # zipfile.BadZipFile, zlib.error, EOFError, ...
        raise ValueError(f"{path}: corrupt .npz file ({type(error).__name__}: {error})") from None
    return _check_mnist_arrays(arrays, path)


def _check_mnist_arrays(arrays, source):
    for key, shape in MNIST_SHAPES.items():
        if arrays[key].shape != shape:
            raise ValueError(f"{source}: {key} has shape {arrays[key].shape}, expected {shape}")
        if arrays[key].dtype != np.uint8:
            raise ValueError(f"{source}: {key} has dtype {arrays[key].dtype}, expected uint8")
    for key in ("y_train", "y_test"):
        if arrays[key].max() > 9:
            raise ValueError(f"{source}: {key} has label {arrays[key].max()}, expected 0..9")
    return arrays


# --- Loaders ---

def load_mnist(validation_size=5000, seed=0, data_dir=None):
    """Load MNIST as NCHW float32 in [0, 1] with int64 labels.

    Inputs:
    - validation_size: number of training images held out as the validation split
    - seed: seed of the validation split
    - data_dir: None for the shipped, SHA-256-checked data/mnist.npz; or a folder with
      a Keras-style mnist.npz or the four IDX files (train-images-idx3-ubyte.gz, ...)
    Returns: Dataset with x_train (60000 - validation_size, 1, 28, 28),
      x_val (validation_size, 1, 28, 28), x_test (10000, 1, 28, 28), labels (N,) int64
    """
    arrays = _read_mnist_arrays(data_dir)
    x_train, y_train, x_val, y_val = split_validation(
        to_nchw_float(arrays["x_train"], 255), arrays["y_train"].astype(np.int64), validation_size, seed)
    return Dataset(x_train, y_train, x_val, y_val,
                   to_nchw_float(arrays["x_test"], 255), arrays["y_test"].astype(np.int64))


def load_digits(validation_size=200, test_size=360, seed=0):
    """scikit-learn's 8x8 digits (1,797 real handwritten images, pixel values 0..16).

    Returns: Dataset with x of shape (N, 1, 8, 8) float32 in [0, 1], y of shape (N,) int64;
    the test split is drawn first, then the validation split from what is left.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    x = to_nchw_float(bunch.images, 16)  # (1797, 8, 8) -> (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_rest, y_rest, x_test, y_test = split_validation(x, y, test_size, seed)
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, validation_size, seed + 1)
    return Dataset(x_train, y_train, x_val, y_val, x_test, y_test)


def training_parser(description, epochs, batch_size, learning_rate, quick_help):
    """The command-line flags every training script shares (--epochs, --batch-size, --learning-rate,
    --seed, --quick); each script adds its own to the parser this returns."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--learning-rate", type=float, default=learning_rate, help="(peak) learning rate")
    parser.add_argument("--seed", type=int, default=0,
                        help="initial weights, data order, augmentation and validation split")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def main():
    parser = argparse.ArgumentParser(description="Print the datasets this project uses.")
    parser.add_argument("--data-dir", default=None, help="folder with your own MNIST files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--quick", action="store_true",
                        help="MNIST's --quick slice (the first 4,000 / 1,000 / 2,000 images) that the scripts train on")
    args = parser.parse_args()
    mnist = load_mnist(seed=args.seed, data_dir=args.data_dir)
    datasets = [("MNIST", mnist)]
    try:
        datasets.append(("digits (8x8)", load_digits(seed=args.seed)))
    except ImportError:  # the NumPy-only setup has no scikit-learn; MNIST needs only NumPy
        print("digits (8x8): skipped, scikit-learn is not installed")
    if args.quick:
        datasets = [("MNIST, --quick slice", mnist.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST))]
    for name, data in datasets:
        print(f"{name}: {data}")
        for split in ("train", "val", "test"):
            labels = getattr(data, f"y_{split}")
            print(f"  {split:5s} class counts: {np.bincount(labels, minlength=10).tolist()}")


if __name__ == "__main__":
    main()
