"""Make the flat modules at the repository root importable from tests/, and hold what several test
files share. (TensorFlow is only ever imported through cnn_keras.py, which loads PyTorch's side first:
the one safe order, see there.)
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cnn_from_scratch  # noqa: E402
from data import load_digits, load_mnist  # noqa: E402

# --- Helpers and data that several test files share ---


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits (NCHW): tiny enough to train a network in a second."""
    return load_digits()


@pytest.fixture(scope="session")
def mnist():
    """MNIST as data.load_mnist returns it (validation split of seed 0); loaded once for the whole session."""
    return load_mnist(seed=0)


@pytest.fixture(scope="session")
def mnist_batch(mnist):
    """64 real MNIST test images, (64, 1, 28, 28) float32, and their labels, (64,) int64."""
    return mnist.x_test[:64], mnist.y_test[:64]


def simple_cnn_arguments(numpy_model):
    """channels, kernel_size and hidden_units of a NumPy SimpleCNN, read from its layers (never hard-coded),
    to build the same SimpleCNN in PyTorch or Keras."""
    conv_layers = [layer for layer in numpy_model.layers if isinstance(layer, cnn_from_scratch.ConvolutionLayer)]
    fc_layers = [layer for layer in numpy_model.layers if isinstance(layer, cnn_from_scratch.FullyConnectedLayer)]
    return dict(channels=tuple(layer.out_channels for layer in conv_layers),
                kernel_size=conv_layers[0].kernel_size[0],
                hidden_units=fc_layers[0].out_features)
