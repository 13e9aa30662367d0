"""Make the flat modules at the repository root importable from tests/, and load PyTorch first.

TensorFlow and PyTorch's compiler stack (triton, imported lazily by torch.optim) each carry their
own LLVM; when TensorFlow is loaded first, the later triton import crashes the process with a
segmentation fault. Importing torch._dynamo here, before any test module imports TensorFlow,
gives every test the safe order.
"""
import os
import sys

import pytest
import torch._dynamo  # noqa: F401  (import order matters, see above)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cnn_from_scratch  # noqa: E402
from data import load_digits, load_mnist  # noqa: E402

# --- Helpers and data that several test files share ---


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits (NCHW): tiny enough to train a network in a second."""
    return load_digits()


@pytest.fixture(scope="session")
def mnist_batch():
    """64 real MNIST test images, (64, 1, 28, 28) float32, and their labels, (64,) int64."""
    data = load_mnist()
    return data.x_test[:64], data.y_test[:64]


def simple_cnn_arguments(numpy_model):
    """channels, kernel_size and hidden_units of a NumPy SimpleCNN, read from its layers (never hard-coded),
    to build the same SimpleCNN in PyTorch or Keras."""
    conv_layers = [layer for layer in numpy_model.layers if isinstance(layer, cnn_from_scratch.ConvolutionLayer)]
    fc_layers = [layer for layer in numpy_model.layers if isinstance(layer, cnn_from_scratch.FullyConnectedLayer)]
    return dict(channels=tuple(layer.out_channels for layer in conv_layers),
                kernel_size=conv_layers[0].kernel_size[0],
                hidden_units=fc_layers[0].out_features)
