"""The data loaders: the shipped MNIST is the official one, user files load the same way, bad files are reported."""
import gzip
import shutil

import numpy as np
import pytest

import data

OFFICIAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_splits_shapes_and_official_class_counts(mnist):
    assert mnist.x_train.shape == (55000, 1, 28, 28) and mnist.x_val.shape == (5000, 1, 28, 28)
    assert mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.x_train.dtype == np.float32 and mnist.y_train.dtype == np.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    all_train_labels = np.concatenate([mnist.y_train, mnist.y_val])
    assert np.bincount(all_train_labels).tolist() == OFFICIAL_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == OFFICIAL_TEST_COUNTS


def test_validation_split_is_disjoint_and_seeded(mnist):
    again = data.load_mnist(validation_size=5000, seed=0)
    other = data.load_mnist(validation_size=5000, seed=1)
    assert np.array_equal(again.y_val, mnist.y_val) and not np.array_equal(other.y_val, mnist.y_val)
    train_rows = {row.tobytes() for row in mnist.x_train[:, 0, ::4, ::4]}
    overlap = sum(row.tobytes() in train_rows for row in mnist.x_val[:500, 0, ::4, ::4])
    assert overlap <= 5  # MNIST has a handful of near-identical digits; a leaked split would overlap fully


def test_digits_loader():
    digits = data.load_digits()
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.x_train.max() == 1.0
    assert len(digits.x_train) + len(digits.x_val) + len(digits.x_test) == 1797


def write_idx(path, array):
    """Write an IDX file, gzipped when the name ends in .gz (fast compression: this is a test)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if str(path).endswith(".gz") else (lambda p: open(p, "wb"))
    with opener(path) as f:
        f.write(header + array.astype(np.uint8).tobytes())


def raw_arrays():
    with np.load(data.MNIST_PATH) as npz:
        return {key: npz[key] for key in npz.files}


def test_user_idx_files_and_keras_npz_load_like_the_shipped_file(tmp_path, mnist):
    arrays = raw_arrays()
    idx_dir, npz_dir = tmp_path / "idx", tmp_path / "npz"
    idx_dir.mkdir()
    npz_dir.mkdir()
    for key, stem in data.IDX_FILES.items():
        write_idx(idx_dir / (stem if key == "x_train" else f"{stem}.gz"), arrays[key])  # both forms are accepted
    np.savez(npz_dir / "mnist.npz", **arrays)
    for folder in (idx_dir, npz_dir):
        loaded = data.load_mnist(data_dir=folder)
        assert np.array_equal(loaded.x_train, mnist.x_train) and np.array_equal(loaded.y_test, mnist.y_test)


def test_bad_files_are_reported_clearly(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="validation_size must be an int in"):
        data.load_mnist(validation_size=60000)
    arrays = raw_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["x_train"][:10])
    with pytest.raises(FileNotFoundError, match="neither mnist.npz nor train-labels-idx1-ubyte.gz found"):
        data.load_mnist(data_dir=tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        data.read_idx(tmp_path / "train-labels-idx1-ubyte.gz")
    truncated = tmp_path / "short-idx3-ubyte"
    truncated.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(50))
    with pytest.raises(ValueError, match=r"truncated or padded IDX file: header says shape \(100,\)"):
        data.read_idx(truncated)

    altered = tmp_path / "altered.npz"
    shutil.copy(data.MNIST_PATH, altered)
    with open(altered, "r+b") as f:
        f.seek(5000)
        f.write(b"\x00\x01\x02")
    monkeypatch.setattr(data, "MNIST_PATH", altered)
    with pytest.raises(ValueError, match="altered.npz is truncated or altered: expected SHA-256 06af5dfe"):
        data.load_mnist()
    monkeypatch.setattr(data, "MNIST_PATH", tmp_path / "gone.npz")
    with pytest.raises(FileNotFoundError, match="gone.npz is missing; restore it"):
        data.load_mnist()

    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "mnist.npz", x_train=arrays["x_train"][:5], y_train=arrays["y_train"][:5],
             x_test=arrays["x_test"], y_test=arrays["y_test"])
    with pytest.raises(ValueError, match=r"x_train has shape \(5, 28, 28\), expected \(60000, 28, 28\)"):
        data.load_mnist(data_dir=tmp_path / "npz")
