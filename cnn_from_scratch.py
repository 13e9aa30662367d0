"""A convolutional neural network in NumPy alone, with every backward pass written by hand.

Read it top to bottom beside Part 1 of the README: convolution and pooling as
functions with loops that read like the formula (fast_conv.py has their vectorized
twins, which the layers use), then initialization, layers, the loss, checking
gradients, optimizers, the `CNN` container and its builders, and `fit`, the one
training loop, then `main()`. What the three frameworks share (argument checks, schedules,
the training clock and hook, atomic saving) is not part of the lesson: it is in
interface.py.

Run it:
    python cnn_from_scratch.py            # trains SimpleCNN on MNIST, prints test accuracy
    python cnn_from_scratch.py --quick    # a few seconds on a slice of MNIST
    python cnn_from_scratch.py --epochs 6 --batch-size 64 --seed 0 --save simple_cnn.npz

In a REPL:
    >>> import numpy as np
    >>> from cnn_from_scratch import make_simple_cnn, numerical_gradient, rel_error
    >>> model = make_simple_cnn(rng=np.random.default_rng(0))
    >>> print(model.summary())

Conventions: activations are NCHW, `x` of shape (N, C, H, W); filters are
`w` of shape (F, C, HH, WW); outputs have spatial size (H_out, W_out); `dout` is
the upstream gradient and `dx`, `dw`, `db` are the gradients of the loss with
respect to `x`, `w`, `b`. float32 by default; float64 in gives float64 out, so
gradients can be checked against finite differences.
"""
import json
import time
from pathlib import Path

import numpy as np

from fast_conv import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward, to_chwn
from interface import (AUGMENT_SHIFT, HISTORY_KEYS, OPTIMIZERS, TrainingHook, atomic_save, check_betas, check_choice,
                       check_fit_arguments, check_image_size, check_images, check_kernel_size, check_labels,
                       check_pair, conv_output_size, diverged, learning_rate_schedule, pool_geometry, random_shift)

try:  # The progress bar is optional: without tqdm, fit() prints one line per epoch.
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


# --- Convolution ---

def conv2d_forward_naive(x, w, b, stride=1, padding=0):
    """Convolution (cross-correlation, like every framework) with explicit loops.

    out[n, f, i, j] = sum over c, u, v of x_pad[n, c, i * stride + u, j * stride + v] * w[f, c, u, v] + b[f]

    Inputs:
    - x: array of shape (N, C, H, W); w: filters of shape (F, C, HH, WW); b: biases of shape (F,)
    - stride, padding: int or (height, width) pair; zero padding on both sides
    Returns: out of shape (N, F, H_out, W_out), cache for the backward pass, where
      H_out = 1 + (H + 2 * padding - HH) // stride and likewise W_out.
    Note: the kernel is not flipped: this is cross-correlation, as in PyTorch and Keras.
    """
    (sh, sw), (ph, pw) = check_pair(stride, "stride"), check_pair(padding, "padding", minimum=0)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = conv_output_size(H, HH, sh, ph), conv_output_size(W, WW, sw, pw)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H + 2 * ph, W + 2 * pw)
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * sh:i * sh + HH, j * sw:j * sw + WW]  # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, (sh, sw), (ph, pw))


def conv2d_backward_naive(dout, cache, compute_dx=True):
    """Backward pass of conv2d_forward_naive, loop by loop.

    Each output element used the window x_pad[n, :, i*sh:i*sh+HH, j*sw:j*sw+WW] and filter w[f], so
    dw[f] += dout[n, f, i, j] * window, dx_pad[window] += dout[n, f, i, j] * w[f], db[f] += dout[n, f, i, j].
    Inputs: dout of shape (N, F, H_out, W_out); cache from the forward pass
    Returns: dx of shape (N, C, H, W) (None when compute_dx is False), dw of shape (F, C, HH, WW), db of shape (F,)
    """
    x, w, (sh, sw), (ph, pw) = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dx_pad = np.zeros_like(x_pad, dtype=np.result_type(x, w, dout))
    dw = np.zeros_like(w, dtype=dx_pad.dtype)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * sh, i * sh + HH), slice(j * sw, j * sw + WW)
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
                    dx_pad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    dx = dx_pad[:, :, ph:ph + H, pw:pw + W] if compute_dx else None
    return dx, dw, db


# The layers below call conv2d_forward and conv2d_backward from fast_conv.py: the same signatures and
# results without the loops (im2col, then one matrix product), and the CHWN memory layout they keep.


# --- Pooling ---

def pool2d_forward_naive(x, kernel_size=2, stride=None, mode="max"):
    """Max or average pooling with explicit loops; stride defaults to kernel_size.

    out[n, c, i, j] = max (or mean) over u, v of x[n, c, i * stride + u, j * stride + v]
    Inputs: x of shape (N, C, H, W); kernel_size, stride: int or (height, width) pair; mode "max" or "avg"
    Returns: out of shape (N, C, H_out, W_out) with H_out = 1 + (H - kernel) // stride; cache
    """
    (kh, kw), (sh, sw), H_out, W_out = pool_geometry(x.shape, kernel_size, stride)
    N, C, _, _ = x.shape
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (kh, kw)
                    out[n, c, i, j] = window.max() if mode == "max" else window.mean()
    return out, (x, (kh, kw), (sh, sw), mode)


def pool2d_backward_naive(dout, cache):
    """Backward pass of pool2d_forward_naive.

    Max pooling sends each window's gradient to one element: the first maximum in row-major
    order, which is what PyTorch does when a window has ties. Average pooling spreads it evenly.
    Inputs: dout of shape (N, C, H_out, W_out); cache. Returns: dx of shape (N, C, H, W)
    """
    x, (kh, kw), (sh, sw), mode = cache
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    if mode == "max":
                        u, v = np.unravel_index(np.argmax(x[n, c, rows, cols]), (kh, kw))  # argmax: first maximum
                        dx[n, c, i * sh + u, j * sw + v] += dout[n, c, i, j]
                    else:
                        dx[n, c, rows, cols] += dout[n, c, i, j] / (kh * kw)
    return dx


# Likewise pool2d_forward and pool2d_backward (fast_conv.py) loop over the kh * kw positions inside a
# window instead of over the windows.


def receptive_field(layers):
    """The input pixels one unit of each layer depends on, for the layers before the first FlattenLayer.

    A window of size k, stride s and padding p, over units that each see `size` input pixels and lie
    `jump` input pixels apart, gives:  size += (k - 1) * jump;  start -= p * jump;  jump *= s.
    Unit (i, j) of that layer then sees input rows start + i * jump to start + i * jump + size - 1
    (rows outside 0 .. H - 1 are padding), and likewise columns.
    Inputs: layers, e.g. CNN.layers; layers with a kernel_size (conv, pooling) widen the field,
      the others (ReLU, BatchNorm, ...) act on each pixel alone and keep it.
    Returns: one (size, jump, start) per layer, each a (height, width) pair.
    """
    size, jump, start = np.ones(2, dtype=int), np.ones(2, dtype=int), np.zeros(2, dtype=int)
    fields = []
    for layer in layers:
        if isinstance(layer, FlattenLayer):  # after this, every unit sees the whole image
            break
        if hasattr(layer, "kernel_size"):
            size = size + (np.array(layer.kernel_size) - 1) * jump
            start = start - np.array(getattr(layer, "padding", (0, 0))) * jump
            jump = jump * np.array(layer.stride)
        fields.append(tuple(tuple(int(v) for v in pair) for pair in (size, jump, start)))
    return fields


# --- Seeds ---
# Library code takes an `rng: np.random.Generator`. A layer built without one draws from the module's
# generator, which `set_seed` seeds; before any set_seed call that generator is unseeded (fresh
# entropy each run), so pass an rng or call set_seed whenever results must repeat.

_generator = np.random.default_rng()


def set_seed(seed):
    """Seed the generator that layers built without an explicit `rng` use; returns that generator."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def _rng_or_default(rng):
    return _generator if rng is None else rng


# --- Initialization ---

def init_weights(shape, fan_in, fan_out, scheme, rng, dtype):
    """Xavier/Glorot (uniform, limit sqrt(6 / (fan_in + fan_out)), Glorot & Bengio 2010) for tanh-like
    activations, or He/Kaiming (normal, std sqrt(2 / fan_in), He et al. 2015) for ReLU-like ones."""
    if scheme == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    if scheme == "he":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    raise ValueError(f"init must be 'he' or 'xavier', got {scheme!r}")


# --- Layers ---

FORWARD_STATE = ("cache", "x", "out", "positive", "x_shape", "x_hat", "inv_std", "mask")  # what backward reads


class Layer:
    """What every layer shares: `params` and `grads` dicts with the same keys, a train/eval flag."""

    def __init__(self):
        self.params, self.grads, self.buffers = {}, {}, {}
        self.training = True
        self.needs_input_grad = True  # The CNN turns this off for its first layer: nobody uses d(loss)/d(images).

    def __call__(self, x):
        return self.forward(x)

    def __getattr__(self, name):
        # Called only for a missing attribute: backward() reads what forward() stored (cache, x, out, ...).
        if name in FORWARD_STATE:
            raise RuntimeError(f"{type(self).__name__}.backward needs what forward stored ({name!r}); "
                               f"call forward(x) before backward(dout)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def config(self):
        """The constructor arguments, so that save/load can rebuild the layer."""
        return {}

    def set_params(self, source, **arrays):
        """Copy arrays (e.g. W=..., b=..., or a buffer such as running_mean=...) into params or buffers in
        place, so an optimizer holding the arrays sees the new values; every shape is checked first, and a
        mismatch names `source` and both shapes."""
        stores = {key: (self.params if key in self.params else self.buffers) for key in arrays}
        for key, value in arrays.items():
            if value.shape != stores[key][key].shape:
                raise ValueError(f"shape mismatch: {source} gives {key} of shape {value.shape}; "
                                 f"{self!r} holds {stores[key][key].shape}")
        for key, value in arrays.items():
            stores[key][key][...] = value

    def astype(self, dtype):
        """Cast parameters and buffers in place (float64 for gradient checks); returns self."""
        for store in (self.params, self.buffers):
            for key in store:
                store[key] = store[key].astype(dtype)
        return self

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({arguments})"


class ConvolutionLayer(Layer):
    """2-D convolution: params["W"] of shape (F, C, HH, WW), params["b"] of shape (F,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="he", rng=None,
                 dtype=np.float32):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        self.kernel_size, self.stride = check_pair(kernel_size, "kernel_size"), check_pair(stride, "stride")
        self.padding, self.init = check_pair(padding, "padding", minimum=0), init
        rng = _rng_or_default(rng)
        HH, WW = self.kernel_size
        fan_in, fan_out = in_channels * HH * WW, out_channels * HH * WW
        self.params["W"] = init_weights((out_channels, in_channels, HH, WW), fan_in, fan_out, init, rng, dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)

    def forward(self, x):
        check_images(x, self.in_channels)
        out, self.cache = conv2d_forward(x, self.params["W"], self.params["b"], self.stride, self.padding)
        return out

    def backward(self, dout):
        dx, self.grads["W"], self.grads["b"] = conv2d_backward(dout, self.cache, self.needs_input_grad)
        return dx

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
                    stride=self.stride, padding=self.padding, init=self.init)


class PoolingLayer(Layer):
    """Max or average pooling; stride defaults to kernel_size. Max routes each window's gradient to
    its first maximum, as PyTorch does."""

    def __init__(self, kernel_size=2, stride=None, mode="max"):
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else check_pair(stride, "stride")
        self.mode = mode

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"PoolingLayer expects input of shape (N, C, H, W), got shape {x.shape}")
        out, self.cache = pool2d_forward(x, self.kernel_size, self.stride, self.mode)
        return out

    def backward(self, dout):
        return pool2d_backward(dout, self.cache)

    def config(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, mode=self.mode)


class ReLULayer(Layer):
    """max(0, x); the gradient at exactly 0 is taken as 0, as in PyTorch."""

    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, dout):
        return dout * (self.out > 0)


class LeakyReLULayer(Layer):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, x * self.negative_slope)

    def backward(self, dout):
        return np.where(self.positive, dout, dout * self.negative_slope)

    def config(self):
        return dict(negative_slope=self.negative_slope)


class ELULayer(Layer):
    """x if x > 0 else alpha * (exp(x) - 1) (Clevert et al. 2015); its slope for x <= 0 is alpha * exp(x)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def backward(self, dout):
        return np.where(self.x > 0, dout, dout * self.alpha * np.exp(np.minimum(self.x, 0)))

    def config(self):
        return dict(alpha=self.alpha)


class TanhLayer(Layer):
    """tanh(x); d tanh(x) / dx = 1 - tanh(x)^2."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out * self.out)


class SigmoidLayer(Layer):
    """1 / (1 + exp(-x)); d sigmoid(x) / dx = sigmoid(x) * (1 - sigmoid(x)), at most 1/4: the classic
    cause of vanishing gradients, since every sigmoid layer multiplies the gradient by 0.25 or less."""

    def forward(self, x):
        # 0.5 * (1 + tanh(x / 2)) equals the logistic function and never overflows in exp.
        self.out = 0.5 * (1 + np.tanh(0.5 * x))
        return self.out

    def backward(self, dout):
        return dout * self.out * (1 - self.out)


class FlattenLayer(Layer):
    """(N, C, H, W) -> (N, C * H * W) in C, H, W order, like torch.flatten(x, 1)."""

    def forward(self, x):
        self.x_shape = N, C, H, W = x.shape
        # Read as (C * H * W, N) and transpose, so that CHWN memory (fast_conv.py) needs no copy.
        return to_chwn(x).reshape(C * H * W, N).T  # (N, C, H, W) -> (N, C * H * W)

    def backward(self, dout):
        N, C, H, W = self.x_shape
        return np.ascontiguousarray(dout.T).reshape(C, H, W, N).transpose(3, 0, 1, 2)  # -> (N, C, H, W)


class FullyConnectedLayer(Layer):
    """out = x @ W + b with params["W"] of shape (in_features, out_features) (torch's Linear.weight
    transposed, Keras's Dense kernel as is) and params["b"] of shape (out_features,)."""

    def __init__(self, in_features, out_features, init="he", rng=None, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        rng = _rng_or_default(rng)
        self.params["W"] = init_weights((in_features, out_features), in_features, out_features, init, rng, dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"FullyConnectedLayer expects input of shape (N, {self.in_features}), got {x.shape}")
        self.x = x
        return x @ self.params["W"] + self.params["b"]  # (N, D) x (D, M) -> (N, M)

    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout  # (D, N) x (N, M) -> (D, M)
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T if self.needs_input_grad else None  # (N, M) x (M, D) -> (N, D)

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features, init=self.init)


class BatchNormLayer(Layer):
    """Batch normalization (Ioffe & Szegedy 2015) over N (and H, W for 4-D input), per feature/channel.

    Training normalizes with the batch mean and biased variance and updates running averages
    (momentum 0.1, unbiased variance, as PyTorch does); evaluation uses the running averages.
    params: "gamma" (scale) and "beta" (shift) of shape (C,); buffers: "running_mean", "running_var".
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.params["gamma"] = np.ones(num_features, dtype=dtype)
        self.params["beta"] = np.zeros(num_features, dtype=dtype)
        self.buffers["running_mean"] = np.zeros(num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=dtype)

    def _rows(self, x):
        """x of shape (N, C) or (N, C, H, W) -> (C, M) with one row per channel, M = N or H * W * N.

        For 4-D input this reads x as (C, H, W, N), the memory order that the vectorized convolution
        writes (fast_conv.py), so the reshape is free and every reduction runs over contiguous memory.
        """
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNormLayer expects (N, {self.num_features}) or (N, {self.num_features}, H, W), "
                             f"got {x.shape}")
        return x.T if x.ndim == 2 else to_chwn(x).reshape(self.num_features, -1)  # (C, M)

    def _unrows(self, rows, shape):
        """(C, M) back to the input's shape: (N, C), or (N, C, H, W) as a view of (C, H, W, N) memory."""
        if len(shape) == 2:
            return rows.T  # (C, N) -> (N, C)
        N, C, H, W = shape
        return rows.reshape(C, H, W, N).transpose(3, 0, 1, 2)  # (C, H * W * N) -> (N, C, H, W)

    def forward(self, x):
        rows = self._rows(x)  # (C, M)
        if self.training:
            mean, var = rows.mean(axis=1), rows.var(axis=1)  # (C,), the biased variance
            count = rows.shape[1]
            self.buffers["running_mean"] = (1 - self.momentum) * self.buffers["running_mean"] + self.momentum * mean
            unbiased = var * count / max(count - 1, 1)
            self.buffers["running_var"] = (1 - self.momentum) * self.buffers["running_var"] + self.momentum * unbiased
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        self.x_shape = x.shape
        self.inv_std = 1 / np.sqrt(var + self.eps)  # (C,)
        self.x_hat = (rows - mean[:, None]) * self.inv_std[:, None]  # (C, M)
        return self._unrows(self.params["gamma"][:, None] * self.x_hat + self.params["beta"][:, None], x.shape)

    def backward(self, dout):
        dout_rows = self._rows(dout)  # (C, M)
        self.grads["gamma"] = (dout_rows * self.x_hat).sum(axis=1)
        self.grads["beta"] = dout_rows.sum(axis=1)
        dx_hat = dout_rows * self.params["gamma"][:, None]  # (C, M)
        if not self.training:  # The running statistics are constants.
            return self._unrows(dx_hat * self.inv_std[:, None], self.x_shape)
        # With m values per channel: dx = inv_std / m * (m * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat))
        count = dout_rows.shape[1]
        sum_dx_hat = dx_hat.sum(axis=1, keepdims=True)  # (C, 1)
        sum_dx_hat_x_hat = (dx_hat * self.x_hat).sum(axis=1, keepdims=True)  # (C, 1)
        dx = self.inv_std[:, None] / count * (count * dx_hat - sum_dx_hat - self.x_hat * sum_dx_hat_x_hat)
        return self._unrows(dx, self.x_shape)

    def config(self):
        return dict(num_features=self.num_features, eps=self.eps, momentum=self.momentum)


class DropoutLayer(Layer):
    """Inverted dropout (Srivastava et al. 2014): in training, zero each value with probability p and
    scale the rest by 1 / (1 - p), so evaluation is the identity."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = _rng_or_default(rng)

    def forward(self, x):
        if not self.training or self.p == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask

    def config(self):
        return dict(p=self.p)


LAYER_TYPES = {cls.__name__: cls for cls in (ConvolutionLayer, PoolingLayer, ReLULayer, LeakyReLULayer, ELULayer,
                                             TanhLayer, SigmoidLayer, FlattenLayer, FullyConnectedLayer, BatchNormLayer,
                                             DropoutLayer)}


# --- Loss ---

def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    Subtracting each row's maximum before exp (log-sum-exp) keeps it finite for logits of any size.
    Inputs: logits of shape (N, K); y of shape (N,) with integers in [0, K)
    Returns: loss (a float), dlogits of shape (N, K) = (softmax(logits) - one_hot(y)) / N
    """
    N, K = logits.shape
    check_labels(y, N, K)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K), every row's maximum is now 0
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(N), y] -= 1
    return float(loss), dlogits / N



# --- Checking gradients ---

def rel_error(a, b):
    """Largest absolute difference, relative to the largest magnitude in a or b: max|a - b| / max(|a|, |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), np.finfo(np.float64).tiny)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def numerical_gradient(f, x, dout=None, h=1e-6):
    """Centred finite differences: df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h).

    Inputs:
    - f: function of no arguments that reads x (changed in place here) and returns a
      scalar, or an array when dout is given
    - x: float64 array to differentiate with respect to
    - dout: upstream gradient of f's output; then the result is the gradient of sum(f() * dout)
    Returns: array of x's shape. The error is O(h^2) plus rounding of order eps / h.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        plus = np.asarray(f(), dtype=np.float64).copy()
        x[index] = original - h
        minus = np.asarray(f(), dtype=np.float64).copy()
        x[index] = original
        difference = plus - minus if dout is None else np.sum((plus - minus) * dout)
        grad[index] = difference / (2 * h)
    return grad

# --- Optimizers ---


class SGD:
    """Stochastic gradient descent with momentum: v = momentum * v + grad; p -= learning_rate * v."""

    def __init__(self, parameters, learning_rate=0.01, momentum=0.9, weight_decay=0.0):
        self.parameters, self.learning_rate = list(parameters), learning_rate
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity = [np.zeros_like(layer.params[key]) for layer, key in self.parameters]

    def step(self):
        for (layer, key), velocity in zip(self.parameters, self.velocity):
            grad = layer.grads[key] + self.weight_decay * layer.params[key]
            velocity *= self.momentum
            velocity += grad
            layer.params[key] -= self.learning_rate * velocity


class Adam:
    """Adam (Kingma & Ba 2015): running means of the gradient (m) and its square (v), bias-corrected.

    weight_decay > 0 makes it AdamW (Loshchilov & Hutter 2019): each step first shrinks every
    parameter by learning_rate * weight_decay of itself, outside the adaptive step, as torch.optim.AdamW does.
    """

    def __init__(self, parameters, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.parameters, self.learning_rate, self.weight_decay = list(parameters), learning_rate, weight_decay
        self.beta1, self.beta2, self.eps, self.t = beta1, beta2, eps, 0
        self.m = [np.zeros_like(layer.params[key]) for layer, key in self.parameters]
        self.v = [np.zeros_like(layer.params[key]) for layer, key in self.parameters]

    def step(self):
        self.t += 1
        # Fold both bias corrections into the step size (Algorithm 1's last lines, rearranged).
        step_size = float(self.learning_rate * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t))
        for (layer, key), m, v in zip(self.parameters, self.m, self.v):
            grad, param = layer.grads[key], layer.params[key]
            scratch = np.multiply(grad, 1 - self.beta1, dtype=m.dtype)  # one buffer, reused below: no
            m *= self.beta1                                             # temporary array per operation
            m += scratch                                  # m = beta1 * m + (1 - beta1) * grad
            np.multiply(grad, grad, out=scratch)
            scratch *= 1 - self.beta2
            v *= self.beta2
            v += scratch                                  # v = beta2 * v + (1 - beta2) * grad^2
            if self.weight_decay:
                param *= 1 - self.learning_rate * self.weight_decay  # decoupled decay (AdamW)
            np.sqrt(v, out=scratch)
            scratch += self.eps
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            param -= scratch                              # param -= step_size * m / (sqrt(v) + eps)


# --- The model ---

class CNN:
    """A stack of layers trained end to end: forward runs them in order (but for one swap that changes no
    number, execution_order), backward in the reverse of that order; `fit` below trains it."""

    def __init__(self, layers, input_shape=None, num_classes=None):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("CNN needs at least one layer")
        self.layers[0].needs_input_grad = False
        self.input_shape = tuple(input_shape) if input_shape is not None else None  # (C, H, W) of one image
        self.num_classes = num_classes

    def __repr__(self):
        lines = "\n".join(f"  ({index}): {layer!r}" for index, layer in enumerate(self.layers))
        return f"CNN(\n{lines}\n)"

    def execution_order(self):
        """The layers in the order forward runs them: as listed, except that a ReLU followed by max
        pooling runs after it. max(relu(a), relu(b)) = relu(max(a, b)), and the gradients agree too (a
        window whose maximum is not positive passes no gradient either way), so the result is the same
        while ReLU, forward and backward, touches a quarter of the numbers."""
        order = list(self.layers)
        for index in range(len(order) - 1):
            first, second = order[index], order[index + 1]
            if type(first) is ReLULayer and isinstance(second, PoolingLayer) and second.mode == "max":
                order[index], order[index + 1] = second, first
        return order

    def forward(self, x):
        """x of shape (N, C, H, W) -> logits of shape (N, num_classes)."""
        check_images(x, self.input_shape[0] if self.input_shape else None)
        self._order = self.execution_order()
        for layer in self._order:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dlogits):
        """Backpropagate d(loss)/d(logits) through every layer, in the reverse of forward's order; each
        layer keeps its own grads."""
        dout = dlogits
        order = getattr(self, "_order", None) or self.execution_order()  # before any forward, a layer says so
        for layer in reversed(order):
            dout = layer.backward(dout)
        return dout

    def train(self):
        for layer in self.layers:
            layer.training = True
        return self

    def eval(self):
        for layer in self.layers:
            layer.training = False
        return self

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def parameters(self):
        """(layer, key) pairs of every trainable array, the handles optimizers update in place."""
        return [(layer, key) for layer in self.layers for key in layer.params]

    def num_parameters(self):
        return sum(layer.params[key].size for layer, key in self.parameters())

    def summary(self, input_shape=None):
        """A table of each layer's output shape and parameter count, found by a forward pass of one zero image."""
        input_shape = tuple(input_shape or self.input_shape or ())
        if len(input_shape) != 3:
            raise ValueError(f"summary needs input_shape=(C, H, W), got {input_shape!r}")
        was_training = [layer.training for layer in self.layers]
        self.eval()
        dtype = self.layers[0].params["W"].dtype if "W" in self.layers[0].params else np.float32
        x = np.zeros((1, *input_shape), dtype=dtype)
        rows = [("input", (None, *input_shape), 0)]
        for layer in self.layers:
            x = layer.forward(x)
            rows.append((type(layer).__name__, (None, *x.shape[1:]), sum(p.size for p in layer.params.values())))
        for layer, training in zip(self.layers, was_training):
            layer.training = training
        width = max(len(name) for name, _, _ in rows)
        lines = [f"{'layer':<{width}}  {'output shape':<20}  params"]
        lines += [f"{name:<{width}}  {str(shape):<20}  {count:,}" for name, shape, count in rows]
        lines.append(f"total parameters: {self.num_parameters():,}")
        return "\n".join(lines)

    # --- Prediction ---

    def predict_logits(self, x, batch_size=1000):
        """Logits of shape (N, num_classes) in evaluation mode, computed in batches."""
        was_training = [layer.training for layer in self.layers]
        self.eval()
        logits = np.concatenate([self.forward(x[start:start + batch_size])
                                 for start in range(0, len(x), batch_size)])
        for layer, training in zip(self.layers, was_training):
            layer.training = training
        return logits

    def predict(self, x, batch_size=1000):
        """Predicted classes of shape (N,)."""
        return self.predict_logits(x, batch_size).argmax(axis=1)

    def evaluate(self, x, y, batch_size=256):
        """(mean cross-entropy loss, accuracy in [0, 1]) on x of shape (N, C, H, W) and y of shape (N,)."""
        logits = self.predict_logits(x, batch_size)
        loss, _ = softmax_cross_entropy(logits, y)
        return loss, float((logits.argmax(axis=1) == y).mean())

    def weights(self):
        """A copy of every parameter and buffer, keyed as `save` writes them ("0.W", "0.b", ...)."""
        return {f"{index}.{key}": value.copy() for index, layer in enumerate(self.layers)
                for store in (layer.params, layer.buffers) for key, value in store.items()}

    # --- Saving and loading ---

    def save(self, path):
        """Write the architecture (as JSON) and every parameter and buffer to one .npz file, atomically:
        a temporary file in the same folder is renamed over `path` only once it is complete."""
        architecture = {"input_shape": self.input_shape, "num_classes": self.num_classes,
                        "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers]}
        arrays = {"architecture": np.array(json.dumps(architecture))}
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                arrays.update({f"{index}.{key}": value for key, value in store.items()})

        def write(temporary):
            with open(temporary, "wb") as f:  # a file object, so that np.savez adds no ".npz" to the name
                np.savez(f, **arrays)

        atomic_save(path, write)

    @staticmethod
    def _read(path):
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
            architecture = json.loads(str(arrays.pop("architecture")))
        except FileNotFoundError:
            raise
        except Exception as error:  # BadZipFile, zlib.error, KeyError, JSONDecodeError, ...
            raise ValueError(f"{path}: not a readable CNN file ({type(error).__name__}: {error}); "
                             f"expected an .npz written by CNN.save") from None
        return architecture, arrays

    @classmethod
    def load(cls, path):
        """Rebuild a CNN saved by `save`: the architecture from its JSON, then every array, shape-checked."""
        architecture, arrays = cls._read(path)
        try:
            layers = [LAYER_TYPES[spec["type"]](**spec["config"]) for spec in architecture["layers"]]
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}: unknown layer description ({error}); expected one of {sorted(LAYER_TYPES)}")
        model = cls(layers, architecture.get("input_shape"), architecture.get("num_classes"))
        model._assign(arrays, path)
        return model

    def load_weights(self, path):
        """Copy the arrays of a saved CNN into this one; every name and shape must match."""
        _, arrays = self._read(path)
        self._assign(arrays, path)
        return self

    def _assign(self, arrays, path):
        expected = {f"{index}.{key}": store[key] for index, layer in enumerate(self.layers)
                    for store in (layer.params, layer.buffers) for key in store}
        if set(arrays) != set(expected):
            raise ValueError(f"{path}: arrays {sorted(arrays)} do not match this model's {sorted(expected)}")
        for name, value in arrays.items():
            if value.shape != expected[name].shape:
                raise ValueError(f"{path}: {name} has shape {value.shape}, this model expects {expected[name].shape}")
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                for key in store:
                    store[key] = arrays[f"{index}.{key}"].copy()


def make_simple_cnn(channels=(16, 32), kernel_size=3, hidden_units=128, in_channels=1, image_size=28, num_classes=10,
                    rng=None, dtype=np.float32):
    """The project's SimpleCNN, built the same way in cnn_pytorch.py and cnn_keras.py:

    [conv(k x k, padding k // 2) -> ReLU -> 2x2 max pool] x 2 -> flatten -> fully connected -> ReLU -> fully connected

    "Same" padding keeps H and W through each convolution, and each pool halves them (flooring),
    so the flattened size is channels[1] * (image_size // 4) ** 2: 32 * 7 * 7 = 1568 for MNIST.
    """
    check_kernel_size(kernel_size)
    rng = _rng_or_default(rng)
    first, second = channels
    pooled_size = image_size // 2 // 2
    return CNN([
        ConvolutionLayer(in_channels, first, kernel_size, padding=kernel_size // 2, rng=rng, dtype=dtype),
        ReLULayer(),
        PoolingLayer(2),
        ConvolutionLayer(first, second, kernel_size, padding=kernel_size // 2, rng=rng, dtype=dtype),
        ReLULayer(),
        PoolingLayer(2),
        FlattenLayer(),
        FullyConnectedLayer(second * pooled_size * pooled_size, hidden_units, rng=rng, dtype=dtype),
        ReLULayer(),
        FullyConnectedLayer(hidden_units, num_classes, init="xavier", rng=rng, dtype=dtype),
    ], input_shape=(in_channels, image_size, image_size), num_classes=num_classes)


ACTIVATION_LAYERS = {"relu": ReLULayer, "leaky_relu": LeakyReLULayer, "elu": ELULayer, "tanh": TanhLayer,
                     "sigmoid": SigmoidLayer, "linear": None}  # "linear": no nonlinearity at all


def make_speedrun_cnn(in_channels=1, image_size=28, num_classes=10, rng=None, dtype=np.float32):
    """The network of the fastest published MNIST recipe (tuomaso/train_mnist_fast), built the same way
    in cnn_pytorch.py and cnn_keras.py:

    conv 5x5 (24) -> ReLU -> 2x2 max pool -> conv 3x3 (32) -> ReLU -> 2x2 max pool -> flatten ->
    fully connected (256) -> ReLU -> fully connected

    No padding: 28 -> 24 -> 12 -> 10 -> 5, so the flattened size is 32 * 5 * 5 = 800. It has about as
    many weights (215,194) and FLOPs per image (frameworks.count_flops) as SimpleCNN; its recipe's speed comes from
    how it is trained (experiments.py's time to 99%).
    """
    rng = _rng_or_default(rng)
    size = (conv_output_size(image_size, 5, 1, 0) // 2 - 2) // 2  # 28 -> 24 -> 12 -> 10 -> 5
    return CNN([
        ConvolutionLayer(in_channels, 24, 5, rng=rng, dtype=dtype), ReLULayer(), PoolingLayer(2),
        ConvolutionLayer(24, 32, 3, rng=rng, dtype=dtype), ReLULayer(), PoolingLayer(2),
        FlattenLayer(),
        FullyConnectedLayer(32 * size * size, 256, rng=rng, dtype=dtype), ReLULayer(),
        FullyConnectedLayer(256, num_classes, init="xavier", rng=rng, dtype=dtype),
    ], input_shape=(in_channels, image_size, image_size), num_classes=num_classes)


def make_cnn(num_conv_layers=2, activation="relu", base_channels=16, kernel_size=3, hidden_units=128,
             pooling="max", padding=True, batch_norm=False, dropout=0.0, in_channels=1, image_size=28,
             num_classes=10, rng=None, dtype=np.float32):
    """The plain CNN of the depth, activation and ablation experiments, built the same way in all three modules:

    num_conv_layers x [conv(k x k) -> BatchNorm? -> activation -> pool], channels doubling from
    base_channels, then flatten -> fully connected -> BatchNorm? -> activation -> Dropout? -> fully connected.

    - pooling: "max" or "avg" (2x2, stride 2), or "stride" (no pooling layer; the convolution itself
      has stride 2, the all-convolutional alternative of Springenberg et al. 2015)
    - padding: True keeps H and W through each convolution ("same", k // 2); False loses k - 1 pixels
    - activation: one of ACTIVATION_LAYERS; "linear" leaves it out, which makes the whole network linear
    Sizes: each block maps H to conv_output_size(H, k, stride, padding), then halves it (flooring) if
    it pools: 28 -> 14 -> 7 -> 3 -> 1 with padding, 28 -> 13 -> 5 -> 1 without.
    """
    if not isinstance(num_conv_layers, (int, np.integer)) or not 1 <= num_conv_layers <= 4:
        raise ValueError(f"num_conv_layers must be an int from 1 to 4, got {num_conv_layers!r}")
    check_choice(activation, ACTIVATION_LAYERS, "activation")
    check_choice(pooling, ("max", "avg", "stride"), "pooling")
    check_kernel_size(kernel_size)
    rng = _rng_or_default(rng)
    init = "xavier" if activation in ("tanh", "sigmoid", "linear") else "he"

    def nonlinearity():
        return [] if ACTIVATION_LAYERS[activation] is None else [ACTIVATION_LAYERS[activation]()]

    layers, size, channels = [], image_size, in_channels
    conv_stride, conv_padding = (2 if pooling == "stride" else 1), (kernel_size // 2 if padding else 0)
    for block in range(num_conv_layers):
        out_channels = base_channels * 2 ** block
        layers.append(ConvolutionLayer(channels, out_channels, kernel_size, conv_stride, conv_padding, init, rng,
                                       dtype))
        layers += [BatchNormLayer(out_channels, dtype=dtype)] if batch_norm else []
        layers += nonlinearity()
        size = conv_output_size(size, kernel_size, conv_stride, conv_padding)
        if pooling != "stride":
            layers.append(PoolingLayer(2, mode=pooling))
            size = conv_output_size(size, 2, 2, 0)  # a 2x2 pool with stride 2 halves the size, flooring
        channels = out_channels
    layers.append(FlattenLayer())  # (N, channels, size, size) -> (N, channels * size * size)
    layers.append(FullyConnectedLayer(channels * size * size, hidden_units, init, rng, dtype))
    layers += [BatchNormLayer(hidden_units, dtype=dtype)] if batch_norm else []
    layers += nonlinearity()
    layers += [DropoutLayer(dropout, rng)] if dropout else []
    layers.append(FullyConnectedLayer(hidden_units, num_classes, "xavier", rng, dtype))
    return CNN(layers, input_shape=(in_channels, image_size, image_size), num_classes=num_classes)


def make_deep_cnn(channels=(16, 32), convs_per_stage=2, hidden_units=128, dropout=0.2, in_channels=1,
                  image_size=28, num_classes=10, rng=None, dtype=np.float32):
    """cnn_pytorch's DeepCNN: stages of (conv 3x3 -> BatchNorm -> ReLU) x convs_per_stage -> max pool ->
    Dropout, then fully connected -> BatchNorm -> ReLU -> Dropout -> fully connected.

    Note: the convolutions keep their bias, which BatchNorm's mean subtraction cancels (it is redundant);
    the PyTorch and Keras DeepCNN keep it too, so that the three build the same layers.
    """
    rng = _rng_or_default(rng)
    layers, size, previous = [], image_size, in_channels
    for out_channels in channels:
        for _ in range(convs_per_stage):
            layers += [ConvolutionLayer(previous, out_channels, 3, padding=1, rng=rng, dtype=dtype),
                       BatchNormLayer(out_channels, dtype=dtype), ReLULayer()]
            previous = out_channels
        layers += [PoolingLayer(2), DropoutLayer(dropout, rng)]
        size //= 2  # 28 -> 14 -> 7
    layers += [FlattenLayer(),  # (N, C, size, size) -> (N, C * size * size)
               FullyConnectedLayer(previous * size * size, hidden_units, rng=rng, dtype=dtype),
               BatchNormLayer(hidden_units, dtype=dtype), ReLULayer(), DropoutLayer(dropout, rng),
               FullyConnectedLayer(hidden_units, num_classes, init="xavier", rng=rng, dtype=dtype)]
    return CNN(layers, input_shape=(in_channels, image_size, image_size), num_classes=num_classes)


def make_mlp(hidden_sizes=(512, 256), dropout=0.2, in_channels=1, image_size=28, num_classes=10, rng=None,
             dtype=np.float32):
    """The fully connected baseline: flatten -> (fully connected -> ReLU -> Dropout) per hidden layer ->
    fully connected."""
    rng = _rng_or_default(rng)
    layers, in_features = [FlattenLayer()], in_channels * image_size * image_size  # (N, C, H, W) -> (N, C * H * W)
    for hidden_units in hidden_sizes:
        layers += [FullyConnectedLayer(in_features, hidden_units, rng=rng, dtype=dtype), ReLULayer()]
        layers += [DropoutLayer(dropout, rng)] if dropout else []
        in_features = hidden_units
    layers.append(FullyConnectedLayer(in_features, num_classes, init="xavier", rng=rng, dtype=dtype))
    return CNN(layers, input_shape=(in_channels, image_size, image_size), num_classes=num_classes)


# --- Training ---
# One training loop for every NumPy network: `fit` below, with the arguments, defaults, history and
# errors of cnn_pytorch.fit and cnn_keras.fit (interface.py, tests/test_conformance.py).

MODELS = {"simple": make_simple_cnn, "deep": make_deep_cnn, "mlp": make_mlp, "cnn": make_cnn,
          "speedrun": make_speedrun_cnn}


def build_model(name, **kwargs):
    """Build a model by name: 'simple', 'deep', 'mlp', 'cnn' (make_cnn) or 'speedrun' (make_speedrun_cnn);
    kwargs go to its builder."""
    check_choice(name, MODELS, "model name")
    return MODELS[name](**kwargs)


def make_optimizer(model, optimizer="adam", learning_rate=2e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    """The optimizer over model.parameters(): 'adam' is Adam, or AdamW with weight_decay > 0; 'sgd' is
    SGD with momentum 0.9 (and L2 weight decay). Returns it."""
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    beta1, beta2 = check_betas(betas)
    if optimizer == "adam":
        return Adam(model.parameters(), learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                    weight_decay=weight_decay)
    return SGD(model.parameters(), learning_rate=learning_rate, momentum=0.9, weight_decay=weight_decay)


def training_batches(x, y, batch_size, rng, augment=None):
    """Yield one epoch of (x_batch, y_batch), in an order drawn from rng: x_batch of shape (B, C, H, W),
    passed through augment(x_batch, rng) when it is given (random_shift's draws come from the same rng,
    after the order, exactly as in the other two modules)."""
    order = rng.permutation(len(x))  # (N,)
    for start in range(0, len(x), batch_size):
        indices = order[start:start + batch_size]  # (B,)
        x_batch = x[indices]  # (B, C, H, W)
        yield (augment(x_batch, rng) if augment is not None else x_batch), y[indices]


def train_epoch(model, batches, optimizer, learning_rates, hook, loss_function=softmax_cross_entropy):
    """One pass over the batches, batch t with learning_rates[t]: forward, loss, backward, optimizer step.

    Inputs: batches yielding (x_batch of shape (B, C, H, W), y_batch of shape (B,)); hook: the TrainingHook
    asked after every step whether to stop; loss_function(logits, y) -> (loss, dlogits).
    Returns: (mean training loss, training accuracy) over the batches trained, and whether the hook
    asked to stop. Raises FloatingPointError (interface.diverged) when the loss stops being finite.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for step, ((x_batch, y_batch), learning_rate) in enumerate(zip(batches, learning_rates)):
        optimizer.learning_rate = float(learning_rate)
        logits = model.forward(x_batch)  # (B, num_classes)
        loss, dlogits = loss_function(logits, y_batch)
        if not np.isfinite(loss):
            raise diverged(loss, hook.epoch, step, optimizer.learning_rate)
        model.backward(dlogits)
        optimizer.step()
        loss_sum, seen = loss_sum + loss * len(y_batch), seen + len(y_batch)
        correct += int((logits.argmax(axis=1) == y_batch).sum())
        if hook.end_step():
            model.train()  # the hook may have evaluated the model
            return loss_sum / seen, correct / seen, True
    return loss_sum / seen, correct / seen, False


def epoch_line(history, epoch, epochs):
    """One line of progress: the epoch's training loss and accuracy, validation ones if any, seconds."""
    line = (f"epoch {epoch}/{epochs}: loss {history['train_loss'][-1]:.4f}, "
            f"accuracy {history['train_accuracy'][-1]:.4f}")
    if history["val_accuracy"]:
        line += f", val_loss {history['val_loss'][-1]:.4f}, val_accuracy {history['val_accuracy'][-1]:.4f}"
    return f"{line} ({history['seconds'][-1]:.1f} s)"


def input_channels_and_classes(model):
    """(channels of one image or None, number of classes): what fit and evaluate check data against."""
    channels = model.input_shape[0] if model.input_shape else None
    return channels, model.num_classes or model.layers[-1].params["b"].shape[0]


def fit(model, x_train, y_train, x_val, y_val, epochs=5, batch_size=64, learning_rate=2e-3, seed=0, augment=False,
        progress=True, schedule="cosine", optimizer="adam", weight_decay=0.0, restore_best=True, hook=None,
        betas=(0.9, 0.999), augmentation="shift", loss_function=softmax_cross_entropy,
        optimizer_builder=make_optimizer):
    """Mini-batch training of a CNN; returns its history. The same arguments, defaults and behaviour as
    cnn_pytorch.fit and cnn_keras.fit.

    Inputs: x_* of shape (N, C, H, W), float in [0, 1]; y_* of shape (N,), int labels.
    - seed: the data order and the augmentation draws, one np.random.default_rng(seed), as in the other
      two modules, so the same seed gives the same history bit for bit
    - augment: True shifts each training image by up to AUGMENT_SHIFT pixels (random_shift)
    - schedule: "cosine", "constant" or "one_cycle" (interface.learning_rate_schedule), one rate per step;
      optimizer: "adam" (AdamW when weight_decay > 0) or "sgd" (momentum 0.9); betas: Adam's (beta1, beta2)
    - progress: one line per epoch, and a progress bar when the output is a terminal
    - restore_best: end with the weights of the epoch with the best validation accuracy (chosen on
      validation data, never on test data); False keeps the last epoch's
    - hook: an interface.TrainingHook (its clock gives "seconds"; its on_step_end can stop training)
    The NumPy module's own options, after the shared ones: augmentation "shift", or a function
    f(x_batch, rng) -> x_batch used instead (drawings.drawing_augmentation, the explorer model's recipe);
    loss_function(logits, y) -> (loss, dlogits) and
    optimizer_builder(model, optimizer, learning_rate, weight_decay, betas), through which exercises.py
    trains with the learner's own functions.
    Returns: history, a dict of per-epoch lists: train_loss, train_accuracy (running means over each
      epoch's batches, as Keras reports them), val_loss, val_accuracy, learning_rate (at the epoch's
      first step) and seconds (training only, validation not counted).
    """
    check_fit_arguments(x_train, y_train, x_val, y_val, *input_channels_and_classes(model), epochs, batch_size,
                        augment)
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        check_image_size(x, model.input_shape[1] if model.input_shape else None, name)
    if not callable(augmentation):
        check_choice(augmentation, ("shift",), "augmentation")
    if augment:
        augment = augmentation if callable(augmentation) else (
            lambda x_batch, rng: random_shift(x_batch, AUGMENT_SHIFT, rng))
    optimizer = optimizer_builder(model, optimizer, learning_rate, weight_decay, betas)
    rng, steps_per_epoch = np.random.default_rng(seed), -(-len(x_train) // batch_size)  # ceil(N / batch_size)
    learning_rates = learning_rate_schedule(learning_rate, epochs * steps_per_epoch, schedule)  # (T,)
    history = {key: [] for key in HISTORY_KEYS}
    best_accuracy, best_weights = -1.0, None
    hook = hook or TrainingHook()
    hook.start()
    for epoch in range(1, epochs + 1):
        hook.start_epoch(epoch)
        start_seconds = hook.clock.seconds()
        epoch_rates = learning_rates[(epoch - 1) * steps_per_epoch:epoch * steps_per_epoch]
        batches = training_batches(x_train, y_train, batch_size, rng, augment or None)
        if progress and tqdm is not None:  # disable=None: a bar only on a terminal, never in a log file
            batches = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch}", leave=False, unit="batch",
                           disable=None)
        loss, accuracy, stopped = train_epoch(model, batches, optimizer, epoch_rates, hook, loss_function)
        for key, value in zip(("seconds", "train_loss", "train_accuracy", "learning_rate"),
                              (hook.clock.seconds() - start_seconds, loss, accuracy, float(epoch_rates[0]))):
            history[key].append(value)
        with hook.clock.paused():  # validation is not training
            val_loss, val_accuracy = model.evaluate(x_val, y_val)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_accuracy)
            if restore_best and val_accuracy > best_accuracy:
                best_accuracy, best_weights = val_accuracy, model.weights()
            if progress:
                print(epoch_line(history, epoch, epochs))
        if stopped:
            break
    optimizer.learning_rate = learning_rate
    if best_weights is not None:
        model._assign(best_weights, "the best validation epoch")
    model.eval()
    return history


def evaluate(model, x, y, batch_size=256):
    """(mean cross-entropy loss, accuracy in [0, 1]) of a CNN on x of shape (N, C, H, W), y of shape (N,)."""
    channels, num_classes = input_channels_and_classes(model)
    check_images(x, channels)
    check_image_size(x, model.input_shape[1] if model.input_shape else None)
    check_labels(y, len(x), num_classes)
    loss, accuracy = model.evaluate(x, y, batch_size)
    return float(loss), float(accuracy)


def count_parameters(model):
    """Number of trainable parameters."""
    return int(model.num_parameters())


def save(model, path):
    """Write the model (architecture and weights) to an .npz file, atomically (CNN.save); returns the Path."""
    model.save(path)
    return Path(path)


def load(path):
    """Rebuild a model written by `save` (CNN.load)."""
    return CNN.load(path)


# --- Script ---

def main():
    from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist, training_parser  # NumPy only, like this module

    parser = training_parser("Train the NumPy SimpleCNN on MNIST and report test accuracy.", epochs=6,
                             batch_size=64, learning_rate=2e-3,
                             quick_help=f"{QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, 1 epoch")
    parser.add_argument("--no-augment", action="store_true",
                        help=f"train on the images as they are (default: shifts of up to {AUGMENT_SHIFT} pixels)")
    parser.add_argument("--save", default=None, help="write the trained model to this .npz file")
    args = parser.parse_args()

    data, epochs = load_mnist(seed=args.seed), args.epochs
    if args.quick:  # a smoke test that finishes in seconds; the accuracy is far from the full run's
        data, epochs = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST), 1
    print(f"train {data.x_train.shape}, validation {data.x_val.shape}, test {data.x_test.shape}")
    model = make_simple_cnn(rng=np.random.default_rng(args.seed))
    print(model.summary())
    start_time = time.perf_counter()
    # restore_best=False: the last epoch's weights (drawings.py trains the explorer's model the same way).
    fit(model, data.x_train, data.y_train, data.x_val, data.y_val, epochs=epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, augment=not args.no_augment, restore_best=False)
    training_seconds = time.perf_counter() - start_time
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
    print(f"test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}) after {epochs} epoch(s), "
          f"training time {training_seconds:.1f} s")
    if args.save:
        save(model, args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
