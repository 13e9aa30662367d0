"""The classic mistakes the exercises recognise, each written as code: the solution with one mistake in it.

exercises.py's `check` compares your answer with these wrong versions: when yours equals one (and the
solution's differs), it prints that mistake's hint. Nothing is guessed; a mistake without code here gets
no hint. NumPy only, like the exercises.

In a REPL:
    >>> from mistakes import CONV_FORWARD_MISTAKES
    >>> hint, wrong_version = CONV_FORWARD_MISTAKES[0]
"""
from functools import partial

import numpy as np

from fast_conv import col2im, conv2d_forward, im2col, pool2d_forward, to_chwn
from interface import conv_output_size
from layer_functions import adam_step, batchnorm_backward, batchnorm_forward


# --- Known mistakes: where the hints come from ---
# Each hint comes with a wrong version: the solution with one classic mistake in it. When your answer
# equals a wrong version's (and the solution's differs), you get its hint; nothing is guessed. A wrong
# version takes the arguments of the check (for a backward pass: dout, then the forward pass's
# arguments) and returns the compared outputs, or None for an output it says nothing about.

def conv_slip(x, w, b, stride, padding, steps=None, sizes_from=None):
    """conv2d_forward with windows stepping by `steps` (a stride forgotten in one direction or both), or with
    (H_out, W_out) computed from the kernel sizes `sizes_from` (W_out from HH): its windows are right, their
    number is not."""
    HH, WW = sizes_from or w.shape[2:]
    H_out, W_out = conv_output_size(x.shape[2], HH, stride, padding), conv_output_size(x.shape[3], WW, stride, padding)
    return conv2d_forward(x, w, b, steps or stride, padding)[0][:, :, :H_out, :W_out]


def kernel_sizes(w, height_from="HH", width_from="WW"):
    """(HH, WW) of w, or one of them taken from the other: the width-from-height slip."""
    sizes = dict(HH=w.shape[2], WW=w.shape[3])
    return sizes[height_from], sizes[width_from]


def conv_output_unordered(x, w, b, stride, padding):
    """The (F, H_out * W_out * N) product reshaped straight to (N, F, H_out, W_out)."""
    out = conv2d_forward(x, w, b, stride, padding)[0]
    return np.ascontiguousarray(to_chwn(out)).reshape(out.shape)  # (F, H_out, W_out, N) memory read as NCHW


WINDOW_START_HINT = ("window (i, j) starts at row i * stride and column j * stride: the stride applies in both "
                     "directions")
SIZES_HINT = "H_out comes from the kernel's height HH, W_out from its width WW: W_out = 1 + (W + 2 * P - WW) // stride"
CONV_FORWARD_MISTAKES = [
    ("the kernel is flipped: this is cross-correlation, window element (u, v) meets w[f, c, u, v] as it is",
     lambda x, w, b, stride, padding: conv2d_forward(x, w[:, :, ::-1, ::-1], b, stride, padding)[0]),
    ("the bias is missing: add b[f] to every output of filter f",
     lambda x, w, b, stride, padding: conv2d_forward(x, w, np.zeros_like(b), stride, padding)[0]),
    (WINDOW_START_HINT, partial(conv_slip, steps=(1, 1))),
    (WINDOW_START_HINT, lambda x, w, b, stride, padding: conv_slip(x, w, b, stride, padding, steps=(stride, 1))),
    (WINDOW_START_HINT, lambda x, w, b, stride, padding: conv_slip(x, w, b, stride, padding, steps=(1, stride))),
    (SIZES_HINT, lambda x, w, b, stride, padding: conv_slip(x, w, b, stride, padding,
                                                            sizes_from=kernel_sizes(w, width_from="HH"))),
    (SIZES_HINT, lambda x, w, b, stride, padding: conv_slip(x, w, b, stride, padding,
                                                            sizes_from=kernel_sizes(w, height_from="WW"))),
    ("pad x with `padding` zeros on each side first: np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))",
     lambda x, w, b, stride, padding: conv2d_forward(x, w, b, stride, 0)[0]),
]


def conv_backward_loops(dout, x, w, b, stride, padding, flip=False, crop=True, add=True):
    """conv2d_backward_naive's loops with one classic mistake switched on."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    for n, f, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
        if add:
            dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
            dx_pad[n, :, rows, cols] += dout[n, f, i, j] * kernel[f]
        else:
            dw[f] = dout[n, f, i, j] * x_pad[n, :, rows, cols]
            dx_pad[n, :, rows, cols] = dout[n, f, i, j] * kernel[f]
    dx = dx_pad[:, :, padding:padding + H, padding:padding + W] if crop else dx_pad
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_unordered_dout(dout, x, w, b, stride, padding):
    """conv2d_backward with dout.reshape(F, -1), whose columns are not in the (i, j, n) order of cols."""
    F, _, HH, WW = w.shape
    cols = im2col(x, HH, WW, (stride, stride), (padding, padding))  # (C * HH * WW, H_out * W_out * N)
    dout_rows = dout.reshape(F, -1)  # the mistake: (N, F, ...) memory read as (F, ...)
    dx = col2im(w.reshape(F, -1).T @ dout_rows, x.shape, HH, WW, (stride, stride), (padding, padding))
    return dx, (dout_rows @ cols.T).reshape(w.shape), dout_rows.sum(axis=1)


SUM_NOT_MEAN_HINT = "{} is a sum, not a mean: dout already holds the loss's 1/N, do not divide by N again"
CONV_BACKWARD_MISTAKES = [
    ("dx must have x's shape: crop the padding off, dx = dx_pad[:, :, P:P + H, P:P + W]",
     partial(conv_backward_loops, crop=False)),
    ("each window gets dout[n, f, i, j] * w[f] back, the kernel as it is: it is not flipped in the backward "
     "pass either", partial(conv_backward_loops, flip=True)),
    ("windows, filters and images that share an input add up: use +=, not =",
     partial(conv_backward_loops, add=False)),
    ("db[f] sums dout over n, i and j: dout.sum(axis=(0, 2, 3))",
     lambda dout, x, w, b, stride, padding: (None, None, dout.sum(axis=(2, 3)))),
    (SUM_NOT_MEAN_HINT.format("db"), lambda dout, x, w, b, stride, padding: (None, None, dout.mean(axis=(0, 2, 3)))),
    (SUM_NOT_MEAN_HINT.format("db"),
     lambda dout, x, w, b, stride, padding: (None, None, dout.sum(axis=(0, 2, 3)) / len(x))),
    (SUM_NOT_MEAN_HINT.format("dw"), lambda dout, x, w, b, stride, padding: (
        None, conv_backward_loops(dout, x, w, b, stride, padding)[1] / len(x), None)),
]
VECTORIZED_CONV_BACKWARD_MISTAKES = CONV_BACKWARD_MISTAKES + [
    ("dout is (N, F, H_out, W_out): to_chwn(dout).reshape(F, -1) puts its columns in the (i, j, n) order of "
     "cols; dout.reshape(F, -1) does not", conv_backward_unordered_dout),
]


def im2col_columns_nij(x, HH, WW, stride, padding):
    """im2col with its columns in (n, i, j) order."""
    cols = im2col(x, HH, WW, stride, padding)
    return cols.reshape(len(cols), -1, x.shape[0]).transpose(0, 2, 1).reshape(len(cols), -1)


def im2col_slip(x, HH, WW, stride, padding, steps=None, sizes_from=None):
    """im2col with windows stepping by `steps`, or (H_out, W_out) computed from the kernel sizes `sizes_from`."""
    (sh, sw), (ph, pw), (kh, kw) = stride, padding, sizes_from or (HH, WW)
    steps = steps or stride
    H_out, W_out = conv_output_size(x.shape[2], kh, sh, ph), conv_output_size(x.shape[3], kw, sw, pw)
    H_all, W_all = conv_output_size(x.shape[2], HH, steps[0], ph), conv_output_size(x.shape[3], WW, steps[1], pw)
    cols = im2col(x, HH, WW, steps, padding).reshape(-1, H_all, W_all, x.shape[0])  # (C * HH * WW, H_all, W_all, N)
    return cols[:, :H_out, :W_out].reshape(len(cols), -1)


def col2im_columns_nij(dcols, x_shape, HH, WW, stride, padding):
    """col2im reading its columns in (n, i, j) order."""
    rows = len(dcols)
    in_order = dcols.reshape(rows, x_shape[0], -1).transpose(0, 2, 1).reshape(rows, -1)
    return col2im(in_order, x_shape, HH, WW, stride, padding)


def col2im_assigned(dcols, x_shape, HH, WW, stride, padding, by_window=True):
    """col2im with = where the overlapping windows must add up, looping over windows or over offsets."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x_shape
    H_out, W_out = conv_output_size(H, HH, sh, ph), conv_output_size(W, WW, sw, pw)
    dcols = dcols.reshape(C, HH, WW, H_out, W_out, N)
    dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    if by_window:
        for i, j in np.ndindex(H_out, W_out):
            dx_pad[:, :, i * sh:i * sh + HH, j * sw:j * sw + WW] = dcols[:, :, :, i, j].transpose(3, 0, 1, 2)
    else:
        for u, v in np.ndindex(HH, WW):
            dx_pad[:, :, u:u + sh * H_out:sh, v:v + sw * W_out:sw] = dcols[:, u, v].transpose(3, 0, 1, 2)
    return dx_pad[:, :, ph:ph + H, pw:pw + W]


COLUMN_ORDER_HINT = "columns go in (i, j, n) order, n fastest, as the docstring says, not (n, i, j)"
ADD_HINT = "overlapping windows add up: use +=, not ="
IM2COL_MISTAKES = [
    (COLUMN_ORDER_HINT, im2col_columns_nij),
    ("rows go in (c, u, v) order, the order of w.reshape(F, -1), not (u, v, c)",
     lambda x, HH, WW, stride, padding: im2col(x, HH, WW, stride, padding).reshape(
         x.shape[1], HH * WW, -1).transpose(1, 0, 2).reshape(x.shape[1] * HH * WW, -1)),
    ("pad x first: the windows slide over x_pad",
     lambda x, HH, WW, stride, padding: im2col(x, HH, WW, stride, (0, 0))),
    (WINDOW_START_HINT, lambda x, HH, WW, stride, padding: im2col(x, HH, WW, (1, 1), padding)),
    (WINDOW_START_HINT, partial(im2col_slip, steps=(1, 1))),
    (WINDOW_START_HINT, lambda x, HH, WW, stride, padding: im2col_slip(x, HH, WW, stride, padding, (stride[0], 1))),
    (WINDOW_START_HINT, lambda x, HH, WW, stride, padding: im2col_slip(x, HH, WW, stride, padding, (1, stride[1]))),
    (SIZES_HINT, lambda x, HH, WW, stride, padding: im2col_slip(x, HH, WW, stride, padding, sizes_from=(HH, HH))),
    (SIZES_HINT, lambda x, HH, WW, stride, padding: im2col_slip(x, HH, WW, stride, padding, sizes_from=(WW, WW))),
]
COL2IM_MISTAKES = [
    (ADD_HINT, partial(col2im_assigned, by_window=True)),
    (ADD_HINT, partial(col2im_assigned, by_window=False)),
    ("dx must have x's shape: crop the padding off the padded gradient",
     lambda dcols, x_shape, HH, WW, stride, padding: col2im(
         dcols, (*x_shape[:2], x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]), HH, WW, stride, (0, 0))),
    (COLUMN_ORDER_HINT, col2im_columns_nij),
]

def pool_slip(x, kernel_size, stride, mode, rows=True, columns=True):
    """pool2d_forward whose windows step by 1 instead of the stride in the rows (rows=False) or the columns."""
    stride = stride or kernel_size
    H_out, W_out = (conv_output_size(size, kernel_size, stride, 0) for size in x.shape[2:])
    steps = (stride if rows else 1, stride if columns else 1)
    return pool2d_forward(x, kernel_size, steps, mode)[0][:, :, :H_out, :W_out]


POOL_FORWARD_MISTAKES = [
    ("this is the other mode's answer: mode 'max' takes each window's maximum, 'avg' its mean",
     lambda x, kernel_size, stride, mode: pool2d_forward(x, kernel_size, stride, "avg" if mode == "max" else "max")[0]),
    ("stride=None means stride = kernel_size (windows side by side), not 1",
     lambda x, kernel_size, stride, mode: pool2d_forward(x, kernel_size, stride or 1, mode)[0]),
    ("window (i, j) starts at row i * stride and column j * stride, and the stride need not be the kernel size",
     lambda x, kernel_size, stride, mode: pool2d_forward(x, kernel_size, None, mode)[0]),
    (WINDOW_START_HINT, lambda x, kernel_size, stride, mode: pool_slip(x, kernel_size, stride, mode, rows=False)),
    (WINDOW_START_HINT, lambda x, kernel_size, stride, mode: pool_slip(x, kernel_size, stride, mode, columns=False)),
]


def pool_backward_loops(dout, x, kernel_size, stride, mode, ties="first", add=True, divide="k * k"):
    """pool2d_backward_naive's loops with one classic mistake switched on."""
    k, s = kernel_size, stride or kernel_size
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * s, i * s + k), slice(j * s, j * s + k)
        window, grad = x[n, c, rows, cols], np.zeros((k, k))
        if mode == "avg":
            grad[...] = dout[n, c, i, j] / {"k * k": k * k, "k": k, "1": 1}[divide]
        elif ties == "all":
            grad[window == window.max()] = dout[n, c, i, j]
        else:
            flat = window.ravel()
            grad.flat[np.argmax(flat) if ties == "first" else flat.size - 1 - np.argmax(flat[::-1])] = dout[n, c, i, j]
        if add:
            dx[n, c, rows, cols] += grad
        else:
            dx[n, c, rows, cols] = grad
    return dx


POOL_BACKWARD_MISTAKES = [
    ("the gradient went to every tied maximum of a window: send it to the first one only (np.argmax's, "
     "row-major), as PyTorch does; the checks use windows with ties", partial(pool_backward_loops, ties="all")),
    ("send each window's gradient to its first maximum (np.argmax's, row-major), not its last",
     partial(pool_backward_loops, ties="last")),
    ("average pooling: each of a window's kernel_size ** 2 inputs gets dout / kernel_size ** 2",
     partial(pool_backward_loops, divide="1")),
    ("average pooling: each of a window's kernel_size ** 2 inputs gets dout / kernel_size ** 2, not / kernel_size",
     partial(pool_backward_loops, divide="k")),
    (ADD_HINT, partial(pool_backward_loops, add=False)),
]


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


CHAIN_RULE_HINT = "the chain rule: multiply the local derivative by dout"
RELU_FORWARD_MISTAKES = [
    ("np.max(x, 0) is the largest value along axis 0; the element-wise maximum is np.maximum(x, 0)",
     lambda x: np.max(x, 0)),
    ("that is the mask (x > 0); the output is x where x > 0 and 0 elsewhere", lambda x: (x > 0) * 1.0),
]
RELU_BACKWARD_MISTAKES = [
    ("multiply dout by the mask (x > 0), not by x", lambda dout, x: dout * x),
    (CHAIN_RULE_HINT + ": dx = dout * (x > 0)", lambda dout, x: (x > 0) * 1.0),
    ("at x == 0 the gradient is taken as 0, as in PyTorch: use x > 0, not x >= 0", lambda dout, x: dout * (x >= 0)),
]
SIGMOID_FORWARD_MISTAKES = [
    ("sigmoid(x) = 1 / (1 + exp(-x)): check the sign", lambda x: sigmoid(-x)),
    ("exp overflowed (exp(1000) is inf, and inf / inf is nan): use 1 / (1 + np.exp(-x)), which only "
     "underflows to 0, or 0.5 * (1 + np.tanh(x / 2))", lambda x: np.exp(x) / (1 + np.exp(x))),
]
SIGMOID_BACKWARD_MISTAKES = [
    ("d sigmoid / dx = s * (1 - s) with s = sigmoid(x), the output, not x", lambda dout, x: dout * x * (1 - x)),
    (CHAIN_RULE_HINT, lambda dout, x: sigmoid(x) * (1 - sigmoid(x))),
    ("d sigmoid / dx = s * (1 - s): the factor (1 - s) is missing", lambda dout, x: dout * sigmoid(x)),
]
FULLY_CONNECTED_FORWARD_MISTAKES = [
    ("the bias is missing: out = x @ W + b", lambda x, W, b: x @ W),
    ("W has shape (in, out) here: out = x @ W + b, no transpose (PyTorch's Linear stores W.T)",
     lambda x, W, b: x @ W.T + b),
]
FULLY_CONNECTED_BACKWARD_MISTAKES = [
    ("dW must have W's shape (D, M): dW = x.T @ dout", lambda dout, x, W, b: (None, dout.T @ x, None)),
    ("dx = dout @ W.T: the gradient goes back through W transposed", lambda dout, x, W, b: (dout @ W, None, None)),
    ("db sums dout over the batch, axis 0", lambda dout, x, W, b: (None, None, dout.sum(axis=1))),
    (SUM_NOT_MEAN_HINT.format("db"), lambda dout, x, W, b: (None, None, dout.mean(axis=0))),
    (SUM_NOT_MEAN_HINT.format("dW"), lambda dout, x, W, b: (None, x.T @ dout / len(x), None)),
]


def softmax_mistake(logits, y, axis=1, shift=True, mean=True, divide=True, one_hot=True, rows=True, log_eps=0.0):
    """softmax_cross_entropy with one classic mistake switched off or on."""
    z = logits - logits.max(axis=axis, keepdims=True) if shift else logits
    p = np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)
    N = len(y)
    picked = np.arange(N) if rows else slice(None)  # rows=False: p[:, y], every row at every label, (N, N)
    losses = -np.log(p[picked, y] + log_eps)
    dlogits = p.copy()
    dlogits[picked, y] -= 1 if one_hot else 0
    return (losses.mean() if mean else losses.sum()), (dlogits / N if divide else dlogits)


def softmax_losses(logits, y):
    """Each example's loss, -log p[n, y[n]], of shape (N,): not yet their mean."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))[np.arange(len(y)), y]


SOFTMAX_MISTAKES = [
    ("missing 1/N: the loss is the mean over the batch, so dlogits = (p - one_hot(y)) / N",
     partial(softmax_mistake, divide=False)),
    ("missing 1/N: the loss is the mean over the batch, not the sum", partial(softmax_mistake, mean=False)),
    ("softmax overflow: exp(1000) is inf; subtract each row's maximum before exp (it changes nothing else)",
     partial(softmax_mistake, shift=False)),
    ("wrong axis: softmax normalizes each row over the classes, axis=1 with keepdims=True",
     partial(softmax_mistake, axis=0)),
    ("subtract 1 at each row's label: dlogits = (p - one_hot(y)) / N", partial(softmax_mistake, one_hot=False)),
    ("the loss is one number, the mean over the batch", lambda logits, y: (softmax_losses(logits, y), None)),
    ("p[:, y] is (N, N), every row at every label: take one value per row, p[np.arange(N), y]",
     partial(softmax_mistake, rows=False)),
] + [("log(p + eps) is not log p where p is tiny (exp(-40)): compute log p as a log-softmax, z - log(sum(exp(z))) "
      "with z the logits minus each row's maximum", partial(softmax_mistake, log_eps=eps))
     for eps in (1e-15, 1e-12, 1e-10, 1e-9, 1e-8, 1e-7)]


def adam_textbook(w, dw, m, v, t, learning_rate, beta1, beta2, eps, correct=True, t_offset=0, square=True, root=True,
                  eps_inside=False):
    """Kingma and Ba's Algorithm 1 as PyTorch writes it (eps after the bias corrections), with switches."""
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * (dw * dw if square else dw)
    t = t + t_offset
    m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if correct else (m, v)
    if eps_inside:
        return w - learning_rate * m_hat / np.sqrt(v_hat + eps), m, v
    return w - learning_rate * m_hat / ((np.sqrt(v_hat) if root else v_hat) + eps), m, v


ADAM_MISTAKES = [
    ("the bias correction is missing: divide m by (1 - beta1 ** t) and v by (1 - beta2 ** t)",
     partial(adam_textbook, correct=False)),
    ("t counts the steps from 1: the first step has t = 1", partial(adam_textbook, t_offset=-1)),
    ("t counts the steps from 1: the first step has t = 1", partial(adam_textbook, t_offset=1)),
    ("v is the running mean of the squared gradient, dw * dw", partial(adam_textbook, square=False)),
    ("divide by sqrt(v_hat) + eps, the root of the running mean of dw * dw", partial(adam_textbook, root=False)),
    ("eps goes outside the square root: m_hat / (sqrt(v_hat) + eps)", partial(adam_textbook, eps_inside=True)),
    ("use the arguments beta1, beta2 and eps, not their default values",
     lambda w, dw, m, v, t, learning_rate, beta1, beta2, eps: adam_step(w, dw, m, v, t, learning_rate)),
]


def batchnorm_mistake(x, gamma, beta, eps, axes=None, ddof=0, affine=True):
    """batchnorm_forward with one classic mistake switched on."""
    axes = axes or ((0,) if x.ndim == 2 else (0, 2, 3))
    shape = (1, -1) + (1,) * (x.ndim - 2)  # (C,) -> (1, C) or (1, C, 1, 1), to broadcast over x
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, ddof=ddof, keepdims=True) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape) if affine else x_hat


def batchnorm_backward_mistake(dout, x, gamma, beta, eps, mistake):
    """batchnorm_backward with one classic mistake: "constants" (mean and var taken as constants),
    "one over m" (dx without its 1/m) or "dgamma" (dgamma = sum of dout)."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    dx, _, _ = batchnorm_backward(dout, batchnorm_forward(x, gamma, beta, eps)[1])
    if mistake == "constants":
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return dout * gamma.reshape(shape) / np.sqrt(x.var(axis=axes, keepdims=True) + eps), None, None
    if mistake == "one over m":
        return dx * (x.size // x.shape[1]), None, None
    return None, dout.sum(axis=axes), None


AXIS_HINT = ("wrong axis: BatchNorm normalizes each feature (channel) over the batch, axis 0 for (N, D) and "
             "axes (0, 2, 3) for (N, C, H, W)")
BATCHNORM_FORWARD_MISTAKES = [
    (AXIS_HINT, lambda x, gamma, beta, eps: batchnorm_mistake(x, gamma, beta, eps, axes=tuple(range(1, x.ndim)))),
    (AXIS_HINT, lambda x, gamma, beta, eps: batchnorm_mistake(x, gamma, beta, eps, axes=(0,))),
    ("use the biased variance (divide by N, np.var's default), as training does",
     partial(batchnorm_mistake, ddof=1)),
    ("scale and shift: out = gamma * x_hat + beta", partial(batchnorm_mistake, affine=False)),
]
BATCHNORM_BACKWARD_MISTAKES = [
    ("the mean and the variance depend on x too: dx = inv_std / m * (m * dx_hat - sum(dx_hat) - x_hat * "
     "sum(dx_hat * x_hat)), with m values per feature", partial(batchnorm_backward_mistake, mistake="constants")),
    ("missing 1/N: divide by m, the number of values per feature (N, or N * H * W for images)",
     partial(batchnorm_backward_mistake, mistake="one over m")),
    ("dgamma = sum of dout * x_hat (and dbeta = sum of dout)", partial(batchnorm_backward_mistake, mistake="dgamma")),
]
# Dropout is random: its wrong versions take your own mask, `kept` (out != 0), so that only the rule differs.
DROPOUT_FORWARD_MISTAKES = [
    ("inverted dropout: divide the values kept by (1 - p), so that evaluation needs no change",
     lambda x, kept, p: x * kept),
    ("divide the values kept by (1 - p), do not multiply", lambda x, kept, p: x * kept * (1 - p)),
]
DROPOUT_BACKWARD_MISTAKES = [
    ("a dropped value gets no gradient: multiply dout by the forward pass's mask", lambda dout, kept, p: dout),
    ("scale the gradient by 1 / (1 - p) too, as the forward pass scaled the values", lambda dout, kept, p: dout * kept),
]
