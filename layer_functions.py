"""The NumPy layers of cnn_from_scratch.py as plain functions: the form the exercises ask for, and their
solutions. Where the project's code is a layer class, forward returns (out, cache) and backward takes
(dout, cache), as the convolution functions do; each solution runs the project's own layer, and its cache
is that layer, which remembers what its forward pass saw. NumPy only, like the exercises.

In a REPL:
    >>> import numpy as np
    >>> from layer_functions import relu_forward, relu_backward
    >>> out, cache = relu_forward(np.array([[-1.0, 2.0]]))
    >>> relu_backward(np.ones((1, 2)), cache)
    array([[0., 1.]])
"""
import numpy as np

from cnn_from_scratch import Adam, BatchNormLayer, DropoutLayer, FullyConnectedLayer, Layer, ReLULayer, SigmoidLayer


# --- The layers as functions ---
# Where the project's code is a layer class, the exercise is a pair of plain functions: forward returns
# (out, cache), backward takes (dout, cache), as the convolution functions do. Each solution runs the
# project's own layer, and its cache is that layer, which remembers what its forward pass saw.
# `start` shows each one's first line, then the first paragraph of the layer's docstring, then the shapes.

def relu_forward(x):
    """ReLULayer.forward as a function.

    Inputs: x, an array of any shape
    Returns: out of x's shape, and a cache: whatever relu_backward will need
    """
    layer = ReLULayer()
    return layer.forward(x), layer


def relu_backward(dout, cache):
    """ReLULayer.backward as a function.

    Inputs: dout of the shape of relu_forward's out; cache from relu_forward
    Returns: dx of x's shape
    """
    return cache.backward(dout)


def sigmoid_forward(x):
    """SigmoidLayer.forward as a function.

    Inputs: x, an array of any shape, some values large (|x| = 1000: mind exp's overflow)
    Returns: out of x's shape, and a cache: whatever sigmoid_backward will need
    """
    layer = SigmoidLayer()
    return layer.forward(x), layer


def sigmoid_backward(dout, cache):
    """SigmoidLayer.backward as a function.

    Inputs: dout of the shape of sigmoid_forward's out; cache from sigmoid_forward
    Returns: dx of x's shape
    """
    return cache.backward(dout)


def fully_connected_forward(x, W, b):
    """FullyConnectedLayer.forward as a function.

    Inputs: x of shape (N, D); W of shape (D, M); b of shape (M,)
    Returns: out of shape (N, M), and a cache: whatever fully_connected_backward will need
    """
    layer = FullyConnectedLayer(*W.shape, rng=np.random.default_rng(0), dtype=W.dtype)
    layer.params.update(W=W, b=b)
    return layer.forward(x), layer


def fully_connected_backward(dout, cache):
    """FullyConnectedLayer.backward as a function.

    Inputs: dout of shape (N, M); cache from fully_connected_forward
    Returns: dx of shape (N, D), dW of shape (D, M), db of shape (M,)
    """
    dx = cache.backward(dout)
    return dx, cache.grads["W"], cache.grads["b"]


def adam_step(w, dw, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam.step for one array, as a function.

    Inputs: w, the weights; dw, their gradient; m and v, the running means of dw and dw * dw left by the
      previous steps (zeros before the first), all of one shape; t, the number of this step (1 for the first)
    Returns: the new w, m and v (updating the arrays in place and returning them is fine)
    Note: Adam.step adds eps to sqrt(v) and folds both bias corrections into the step size; the textbook
      w - learning_rate * m_hat / (sqrt(v_hat) + eps) places eps a little differently and passes too.
    """
    holder = Layer()
    holder.params["w"], holder.grads["w"] = w.copy(), dw
    optimizer = Adam([(holder, "w")], learning_rate, beta1, beta2, eps)
    optimizer.m[0][...], optimizer.v[0][...], optimizer.t = m, v, t - 1
    optimizer.step()
    return holder.params["w"], optimizer.m[0], optimizer.v[0]


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """BatchNormLayer.forward in training mode, as a function (no running averages).

    Inputs: x of shape (N, D), or (N, C, H, W) with D = C; gamma, beta of shape (D,); eps
    Returns: out of x's shape, and a cache: whatever batchnorm_backward will need
    """
    layer = BatchNormLayer(len(gamma), eps=eps, dtype=x.dtype)
    layer.params.update(gamma=gamma, beta=beta)
    return layer.forward(x), layer


def batchnorm_backward(dout, cache):
    """BatchNormLayer.backward in training mode, as a function.

    Inputs: dout of x's shape; cache from batchnorm_forward
    Returns: dx of x's shape, dgamma and dbeta of shape (D,)
    """
    dx = cache.backward(dout)
    return dx, cache.grads["gamma"], cache.grads["beta"]


def dropout_forward(x, p, rng, training=True):
    """DropoutLayer.forward as a function.

    Inputs: x of any shape; p, the probability of zeroing each value; rng, the np.random.Generator to
      draw from (the same seed must give the same mask); training: False for evaluation
    Returns: out of x's shape, and a cache: whatever dropout_backward will need
    """
    layer = DropoutLayer(p, rng)
    layer.training = training
    return layer.forward(x), layer


def dropout_backward(dout, cache):
    """DropoutLayer.backward as a function.

    Inputs: dout of x's shape; cache from dropout_forward
    Returns: dx of x's shape
    """
    return cache.backward(dout)
