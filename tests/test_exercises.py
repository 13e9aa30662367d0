"""exercises.py: the solutions pass, each planted mistake fails with its hint, and the commands behave.

The planted mistakes are written here as a learner would write them (loops, their own caches), not
copied from the wrong versions in exercises.py, so that a hint is shown for the mistake itself and not
only for one way of writing it.
"""
import ast
import inspect
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import cnn_from_scratch as scratch
import fast_conv
import exercises

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVIRONMENT = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def functions_with(**replacements):
    """The solutions, with some functions replaced by a learner's."""
    return types.SimpleNamespace(**{**vars(exercises.SOLUTIONS), **replacements})


def run(*arguments, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "exercises.py"), *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=ENVIRONMENT)


def solution_file_text():
    """A learner's file filled with the solutions' source code (the layer classes imported), as if copied in."""
    imports = ["import numpy as np", "from cnn_from_scratch import (Adam, BatchNormLayer, DropoutLayer, "
               "FullyConnectedLayer, Layer, ReLULayer, SigmoidLayer)", "from fast_conv import to_chwn, window_offsets",
               "from interface import check_labels, check_pair, conv_output_size, pool_geometry"]
    return "\n\n\n".join(imports + [inspect.getsource(exercise.solution) for exercise in exercises.EXERCISES])


# --- Learner-style mistakes ---

def conv_loops(x, w, b, stride=1, padding=0, flip=False, bias=True, step=True, pad=True, column_step=True,
               width_from_height=False):
    """A learner's loop convolution, with one mistake switched on."""
    P = padding if pad else 0
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    N, C, H, W = x_pad.shape
    F, _, HH, WW = w.shape
    H_out, W_out = 1 + (H - HH) // stride, 1 + (W - (HH if width_from_height else WW)) // stride
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            kernel = w[f, :, ::-1, ::-1] if flip else w[f]
            for i in range(H_out):
                for j in range(W_out):
                    top, left = (i * stride, j * stride if column_step else j) if step else (i, j)
                    out[n, f, i, j] = np.sum(x_pad[n, :, top:top + HH, left:left + WW] * kernel) + (b[f] if bias else 0)
    return out, (x, w, stride, padding)


def conv_backward_loops(dout, cache, compute_dx=True, crop=True, assign=False, flip=False, db_axes=(0, 2, 3),
                        mean=False, alias=False):
    x, w, stride, P = cache
    if isinstance(stride, tuple):  # the solution's cache holds (height, width) pairs
        stride, P = stride[0], P[0]
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dx_pad, dw = np.zeros(x_pad.shape), np.zeros(w.shape)
    if alias:  # the mistake: dw is w under a second name, then zeroed, and w with it
        dw = w
        dw.fill(0)
    F, _, HH, WW = w.shape
    for n in range(dout.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = (n, slice(None), slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW))
                    kernel = w[f, :, ::-1, ::-1] if flip else w[f]
                    if assign:
                        dx_pad[window] = dout[n, f, i, j] * kernel
                    else:
                        dx_pad[window] += dout[n, f, i, j] * kernel
                    dw[f] += dout[n, f, i, j] * x_pad[window]
    H, W = x.shape[2:]
    dx = dx_pad[:, :, P:P + H, P:P + W] if crop else dx_pad
    if mean:  # the mistake: dw and db divided by N
        return dx, dw / len(x), dout.sum(axis=db_axes) / len(x)
    return dx, dw, dout.sum(axis=db_axes)


def im2col_loops(x, HH, WW, stride, padding, order="ijn", width_from_height=False):
    """A learner's im2col looping over the windows, with the columns in `order` and rows (c, u, v) or (u, v, c)."""
    (sh, sw), (ph, pw) = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, C, H, W = x_pad.shape
    H_out, W_out = 1 + (H - HH) // sh, 1 + (W - (HH if width_from_height else WW)) // sw
    columns = {}
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                window = x_pad[n, :, i * sh:i * sh + HH, j * sw:j * sw + WW]  # (C, HH, WW)
                columns[(i, j, n) if order != "nij" else (n, i, j)] = (
                    window.transpose(1, 2, 0).ravel() if order == "uvc" else window.ravel())
    return np.stack([columns[key] for key in sorted(columns)], axis=1)


def col2im_loops(dcols, x_shape, HH, WW, stride, padding, assign=False, crop=True):
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x_shape
    dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    H_out, W_out = 1 + (H + 2 * ph - HH) // sh, 1 + (W + 2 * pw - WW) // sw
    column = 0
    for i in range(H_out):
        for j in range(W_out):
            for n in range(N):
                window = (n, slice(None), slice(i * sh, i * sh + HH), slice(j * sw, j * sw + WW))
                values = dcols[:, column].reshape(C, HH, WW)
                if assign:
                    dx_pad[window] = values
                else:
                    dx_pad[window] += values
                column += 1
    return dx_pad[:, :, ph:ph + H, pw:pw + W] if crop else dx_pad


def conv_forward_reshaped_directly(x, w, b, stride=1, padding=0):
    N, F = x.shape[0], w.shape[0]
    cols = fast_conv.im2col(x, w.shape[2], w.shape[3], (stride, stride), (padding, padding))
    H_out = 1 + (x.shape[2] + 2 * padding - w.shape[2]) // stride
    W_out = 1 + (x.shape[3] + 2 * padding - w.shape[3]) // stride
    out = (w.reshape(F, -1) @ cols + b[:, None]).reshape(N, F, H_out, W_out)  # the mistake
    return out, (x, w, stride, padding)


def conv_backward_dout_reshaped_directly(dout, cache):
    x_shape, cols, w, stride, padding = cache
    F = w.shape[0]
    dout_rows = dout.reshape(F, -1)  # the mistake: no to_chwn
    dx = fast_conv.col2im(w.reshape(F, -1).T @ dout_rows, x_shape, w.shape[2], w.shape[3], stride, padding)
    return dx, (dout_rows @ cols.T).reshape(w.shape), dout_rows.sum(axis=1)


def pool_loops(x, kernel_size=2, stride=None, mode="max", none_stride=None):
    """A learner's pooling: mode ignored when mode_used is given, stride=None taken as `none_stride`."""
    k = kernel_size
    s = stride if stride is not None else (none_stride or k)
    N, C, H, W = x.shape
    out = np.zeros((N, C, 1 + (H - k) // s, 1 + (W - k) // s))
    for n, c, i, j in np.ndindex(out.shape):
        window = x[n, c, i * s:i * s + k, j * s:j * s + k]
        out[n, c, i, j] = window.max() if mode == "max" else window.mean()
    return out, (x, k, s, mode)


def pool_rows_stepping_by_one(x, kernel_size=2, stride=None, mode="max"):
    """The mistake: window (i, j) starts at row i, not i * stride (the number of windows is right)."""
    out, cache = pool_loops(x, kernel_size, stride, mode)
    s = stride or kernel_size
    for n, c, i, j in np.ndindex(out.shape):
        window = x[n, c, i:i + kernel_size, j * s:j * s + kernel_size]
        out[n, c, i, j] = window.max() if mode == "max" else window.mean()
    return out, cache


def pool_ignoring_mode(x, kernel_size=2, stride=None, mode="max"):
    return pool_loops(x, kernel_size, stride, "max")


def pool_backward_loops(dout, cache, every_tie=False, divide=True, assign=False, divide_by_k=False):
    x, k, s, mode = cache
    dx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(dout.shape):
        window = (n, c, slice(i * s, i * s + k), slice(j * s, j * s + k))
        if mode == "max":
            if every_tie:
                grad = (x[window] == x[window].max()) * dout[n, c, i, j]
            else:
                grad = np.zeros((k, k))
                grad[np.unravel_index(np.argmax(x[window]), (k, k))] = dout[n, c, i, j]
        else:
            grad = np.full((k, k), dout[n, c, i, j] / (k if divide_by_k else k * k if divide else 1))
        if assign:
            dx[window] = grad
        else:
            dx[window] += grad
    return dx


def relu_in_place(x):
    x[x < 0] = 0
    return x, x


def relu_forward_simple(x):
    return np.maximum(x, 0), x


def relu_backward_in_place(dout, x):
    dout[x <= 0] = 0
    return dout


def sigmoid_forward_simple(x):
    out = 0.5 * (1 + np.tanh(0.5 * x))
    return out, (x, out)


def fully_connected_forward_simple(x, W, b):
    return x @ W + b, (x, W)


def softmax_loops(logits, y, shift=True, divide=True, axis=1, every_row=False, log_eps=0.0):
    z = logits - np.max(logits, axis=axis, keepdims=True) if shift else logits
    p = np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True)
    N = logits.shape[0]
    loss = -np.mean(np.log((p[:, y] if every_row else p[np.arange(N), y]) + log_eps))
    dlogits = p.copy()
    for n in range(N):
        dlogits[n, y[n]] -= 1
    return loss, dlogits / N if divide else dlogits


def adam_learner(w, dw, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, correct=True, t_used=None,
                 fixed_betas=False, eps_inside=False):
    if fixed_betas:
        beta1, beta2 = 0.9, 0.999
    t = t if t_used is None else t_used(t)
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw ** 2
    m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if correct else (m, v)
    if eps_inside:
        return w - learning_rate * m_hat / np.sqrt(v_hat + eps), m, v
    return w - learning_rate * m_hat / (np.sqrt(v_hat) + eps), m, v


def batchnorm_learner(x, gamma, beta, eps=1e-5, axes=None, ddof=0):
    axes = axes or ((0,) if x.ndim == 2 else (0, 2, 3))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True, ddof=ddof)
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape), (x_hat, gamma.reshape(shape), var + eps, axes)


def batchnorm_backward_learner(dout, cache, mistake=None):
    x_hat, gamma, var_eps, axes = cache
    m = dout.size // dout.shape[1]
    dx_hat = dout * gamma
    if mistake == "constants":
        dx = dx_hat / np.sqrt(var_eps)
    else:
        dx = (m * dx_hat - dx_hat.sum(axis=axes, keepdims=True)
              - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True)) / np.sqrt(var_eps)
        dx = dx if mistake == "one over m" else dx / m  # the mistake leaves out the 1/m
    return dx, (dout * x_hat).sum(axis=axes), dout.sum(axis=axes)


def dropout_learner(x, p, rng, training=True, scale=True, keep_probability=False, global_rng=False, eval_scale=False):
    if not training:
        return (x * (1 - p) if eval_scale else x), None
    draw = np.random.random(x.shape) if global_rng else rng.random(x.shape)
    mask = (draw < p) if keep_probability else (draw >= p)
    mask = mask / (1 - p) if scale else mask * 1.0
    return x * mask, mask


def dropout_forward_simple(x, p, rng, training=True):
    mask = (rng.random(x.shape) >= p) / (1 - p) if training else np.ones(x.shape)
    return x * mask, mask


def partial(function, **fixed):
    def wrong(*args, **kwargs):
        return function(*args, **{**kwargs, **fixed})
    return wrong


# (exercise, {replaced functions}, words that its hint must contain)
PLANTED = [
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, flip=True)}, "kernel is flipped"),
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, bias=False)}, "bias is missing"),
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, step=False)}, "starts at row i * stride"),
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, pad=False)}, "zeros on each side"),
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, width_from_height=True)},
     "W_out from its width WW"),
    ("conv2d_forward_naive", {"conv2d_forward_naive": partial(conv_loops, column_step=False)},
     "the stride applies in both directions"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, crop=False)}, "crop the padding"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, assign=True)}, "use +=, not ="),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, flip=True)}, "not flipped"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, db_axes=(2, 3))},
     "dout.sum(axis=(0, 2, 3))"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, mean=True)},
     "dw is a sum, not a mean"),
    ("conv2d_backward_naive", {"conv2d_forward_naive": conv_loops,
                               "conv2d_backward_naive": partial(conv_backward_loops, alias=True)},
     "dw is cache[1] under a second name"),
    ("im2col", {"im2col": partial(im2col_loops, order="nij")}, "(i, j, n) order"),
    ("im2col", {"im2col": partial(im2col_loops, order="uvc")}, "(c, u, v) order"),
    ("im2col", {"im2col": partial(im2col_loops, width_from_height=True)}, "W_out from its width WW"),
    ("col2im", {"col2im": partial(col2im_loops, assign=True)}, "use +=, not ="),
    ("col2im", {"col2im": partial(col2im_loops, crop=False)}, "crop the padding"),
    ("conv2d_forward", {"conv2d_forward": conv_forward_reshaped_directly}, "reshape it to (F, H_out, W_out, N)"),
    ("conv2d_forward", {"conv2d_forward": partial(conv_loops, flip=True)}, "kernel is flipped"),
    ("conv2d_backward", {"conv2d_backward": conv_backward_dout_reshaped_directly}, "to_chwn(dout)"),
    ("conv2d_backward", {"conv2d_forward": conv_loops, "conv2d_backward": partial(conv_backward_loops, crop=False)},
     "crop the padding"),
    ("pool2d_forward", {"pool2d_forward": pool_ignoring_mode}, "the other mode's answer"),
    ("pool2d_forward", {"pool2d_forward": partial(pool_loops, none_stride=1)}, "stride=None means"),
    ("pool2d_forward", {"pool2d_forward": pool_rows_stepping_by_one}, "the stride applies in both directions"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, every_tie=True)},
     "every tied maximum"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, divide=False)},
     "dout / kernel_size ** 2"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, assign=True)},
     "use +=, not ="),
    ("pool2d_backward", {"pool2d_forward": pool_loops,
                         "pool2d_backward": partial(pool_backward_loops, divide_by_k=True)}, "not / kernel_size"),
    ("relu_forward", {"relu_forward": lambda x: (np.max(x, 0), x)}, "np.maximum(x, 0)"),
    ("relu_forward", {"relu_forward": relu_in_place}, "changed its argument x in place"),
    ("relu_forward", {"relu_forward": lambda x: np.maximum(x, 0)}, "must return (out, cache)"),
    ("relu_backward", {"relu_forward": relu_forward_simple, "relu_backward": lambda dout, x: dout * x}, "not by x"),
    ("relu_backward", {"relu_forward": relu_forward_simple, "relu_backward": lambda dout, x: dout * (x >= 0)},
     "x >= 0"),
    ("relu_backward", {"relu_forward": relu_forward_simple, "relu_backward": relu_backward_in_place},
     "changed its argument dout in place"),
    ("sigmoid_forward", {"sigmoid_forward": lambda x: (1 / (1 + np.exp(x)), x)}, "check the sign"),
    ("sigmoid_forward", {"sigmoid_forward": lambda x: (np.exp(x) / (1 + np.exp(x)), x)}, "overflow"),
    ("sigmoid_backward", {"sigmoid_forward": sigmoid_forward_simple,
                          "sigmoid_backward": lambda dout, cache: dout * cache[0] * (1 - cache[0])}, "not x"),
    ("sigmoid_backward", {"sigmoid_forward": sigmoid_forward_simple,
                          "sigmoid_backward": lambda dout, cache: cache[1] * (1 - cache[1])}, "chain rule"),
    ("fully_connected_forward", {"fully_connected_forward": lambda x, W, b: (x @ W, x)}, "bias is missing"),
    ("fully_connected_forward", {"fully_connected_forward": lambda x, W, b: (np.dot(x, W.T) + b, x)}, "no transpose"),
    ("fully_connected_backward", {"fully_connected_forward": fully_connected_forward_simple,
                                  "fully_connected_backward": lambda dout, c: (dout @ c[1].T, dout.T @ c[0],
                                                                               dout.sum(0))},
     "dW must have W's shape"),
    ("fully_connected_backward", {"fully_connected_forward": fully_connected_forward_simple,
                                  "fully_connected_backward": lambda dout, c: (dout @ c[1].T, c[0].T @ dout,
                                                                               np.mean(dout, axis=0))},
     "a sum, not a mean"),
    ("fully_connected_backward", {"fully_connected_forward": fully_connected_forward_simple,
                                  "fully_connected_backward": lambda dout, c: (dout @ c[1].T, c[0].T @ dout,
                                                                               dout.sum(axis=1))}, "axis 0"),
    ("fully_connected_backward", {"fully_connected_forward": fully_connected_forward_simple,
                                  "fully_connected_backward": lambda dout, c: (dout @ c[1].T,
                                                                               c[0].T @ dout / len(dout),
                                                                               dout.sum(axis=0))},
     "dW is a sum, not a mean"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, divide=False)}, "missing 1/N"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, shift=False)}, "softmax overflow"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, axis=0)}, "wrong axis"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, every_row=True)},
     "p[np.arange(N), y]"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, log_eps=1e-12)}, "log-softmax"),
    ("adam_step", {"adam_step": partial(adam_learner, correct=False)}, "bias correction is missing"),
    ("adam_step", {"adam_step": partial(adam_learner, t_used=lambda t: t - 1)}, "from 1"),
    ("adam_step", {"adam_step": partial(adam_learner, fixed_betas=True)}, "arguments beta1, beta2"),
    ("adam_step", {"adam_step": partial(adam_learner, eps_inside=True)}, "outside the square root"),
    ("batchnorm_forward", {"batchnorm_forward": partial(batchnorm_learner, axes=(1,))}, "wrong axis"),
    ("batchnorm_forward", {"batchnorm_forward": partial(batchnorm_learner, ddof=1)}, "biased variance"),
    ("batchnorm_backward", {"batchnorm_forward": batchnorm_learner,
                            "batchnorm_backward": partial(batchnorm_backward_learner, mistake="constants")},
     "depend on x too"),
    ("batchnorm_backward", {"batchnorm_forward": batchnorm_learner,
                            "batchnorm_backward": partial(batchnorm_backward_learner, mistake="one over m")},
     "missing 1/N"),
    ("dropout_forward", {"dropout_forward": partial(dropout_learner, scale=False)}, "inverted dropout"),
    ("dropout_forward", {"dropout_forward": partial(dropout_learner, keep_probability=True)},
     "probability of dropping"),
    ("dropout_forward", {"dropout_forward": partial(dropout_learner, global_rng=True)}, "from the rng argument"),
    ("dropout_forward", {"dropout_forward": partial(dropout_learner, eval_scale=True)}, "evaluation is the identity"),
    ("dropout_backward", {"dropout_forward": dropout_forward_simple, "dropout_backward": lambda dout, mask: dout},
     "gets no gradient"),
    ("dropout_backward", {"dropout_forward": dropout_forward_simple,
                          "dropout_backward": lambda dout, mask: dout * (mask != 0)}, "scale the gradient"),
]


# Correct, but written as a learner would: loops, their own caches, the textbook Adam.
LEARNER_SOLUTIONS = dict(
    conv2d_forward_naive=conv_loops, conv2d_backward_naive=conv_backward_loops, im2col=im2col_loops,
    col2im=col2im_loops, conv2d_forward=conv_loops, conv2d_backward=conv_backward_loops, pool2d_forward=pool_loops,
    pool2d_backward=pool_backward_loops, relu_forward=relu_forward_simple, relu_backward=lambda dout, x: dout * (x > 0),
    sigmoid_forward=sigmoid_forward_simple, sigmoid_backward=lambda dout, cache: dout * cache[1] * (1 - cache[1]),
    fully_connected_forward=fully_connected_forward_simple,
    fully_connected_backward=lambda dout, cache: (dout @ cache[1].T, cache[0].T @ dout, dout.sum(axis=0)),
    softmax_cross_entropy=softmax_loops, adam_step=adam_learner, batchnorm_forward=batchnorm_learner,
    batchnorm_backward=batchnorm_backward_learner, dropout_forward=dropout_forward_simple,
    dropout_backward=lambda dout, mask: dout * mask)


# --- The checker ---

def test_the_solutions_pass():
    results = exercises.check_all(exercises.SOLUTIONS)
    assert [result.name for result in results.values()] == [exercise.name for exercise in exercises.EXERCISES]
    assert {result.status for result in results.values()} == {"passed"}, exercises.report(results, "solutions")


def test_correct_functions_written_otherwise_pass_too():
    results = exercises.check_all(types.SimpleNamespace(**LEARNER_SOLUTIONS))
    assert {result.status for result in results.values()} == {"passed"}, exercises.report(results, "learner")


def test_every_exercise_has_at_least_two_planted_mistakes():
    counts = {exercise.name: 0 for exercise in exercises.EXERCISES}
    for name, _, _ in PLANTED:
        counts[name] += 1
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize("name, replacements, hint", PLANTED,
                         ids=[f"{name}-{index}" for index, (name, _, _) in enumerate(PLANTED)])
def test_a_planted_mistake_fails_with_its_hint(name, replacements, hint):
    result = exercises.check_all(functions_with(**replacements), [name])[name]
    assert result.status == "wrong", result
    messages = [line for line in result.details if not line.startswith("at line ")]  # not the quoted source
    assert any(hint in line for line in messages), "\n".join(result.details)


def test_gradients_that_only_finite_differences_catch_name_their_case():
    # Right on the 2 compared cases, wrong from its third call on: on the inputs moved off the kinks.
    calls = []

    def relu_backward(dout, x):
        calls.append(len(calls))
        return dout * (x > 0) * (1.0 if len(calls) <= 2 else 1.01)

    result = exercises.check_all(functions_with(relu_forward=relu_forward_simple, relu_backward=relu_backward),
                                 ["relu_backward"])["relu_backward"]
    assert result.status == "wrong"
    assert result.details[0].startswith("the gradients disagree with centred finite differences")
    assert re.search(r"the largest on case \d, its input moved off the kinks", result.details[0])
    assert result.details[1].startswith("reproduce: import exercises; ")


def test_a_mistake_that_is_not_known_gets_no_hint():
    result = exercises.check_all(functions_with(relu_forward=lambda x: (np.maximum(x, 0) + 0.5, x)),
                                 ["relu_forward"])["relu_forward"]
    assert result.status == "wrong" and not [line for line in result.details if line.startswith("hint:")]


def test_a_wrong_value_names_its_index_and_both_values():
    result = exercises.check_all(functions_with(conv2d_forward_naive=partial(conv_loops, bias=False)),
                                 ["conv2d_forward_naive"])["conv2d_forward_naive"]
    case, values, largest = result.details[:3]
    assert case.startswith("case 1 of 5: conv2d_forward_naive(x of shape (2, 3, 7, 5)")
    assert values.startswith("out: 280 of 280 values wrong; the first at [0, 0, 0, 0]: expected ")
    assert ", received " in values
    assert largest.startswith("out: largest difference ") and "the tolerance is 1e-09 of it" in largest


def test_a_difference_just_above_the_tolerance_shows_enough_digits_to_see_it():
    # eps inside the square root moves w by about 2e-8: eight digits print both values alike.
    result = exercises.check_all(functions_with(adam_step=partial(adam_learner, eps_inside=True)),
                                 ["adam_step"])["adam_step"]
    first, largest = result.details[1:3]
    expected, received = re.search(r"expected (\S+), received (\S+)", first).groups()
    assert expected != received and float(expected) != float(received)
    assert re.match(r"w: largest difference 2\.\d\de-08, ", largest), largest


def test_a_wrong_shape_names_both_shapes():
    result = exercises.check_all(functions_with(conv2d_forward_naive=partial(conv_loops, pad=False)),
                                 ["conv2d_forward_naive"])["conv2d_forward_naive"]
    assert "out: expected shape (2, 4, 7, 5), received (2, 4, 5, 3)" in result.details


def test_the_textbook_adam_passes_too():
    # eps after the bias corrections, as PyTorch writes it: a different rounding, the same algorithm.
    results = exercises.check_all(functions_with(adam_step=adam_learner), ["adam_step"])
    assert results["adam_step"].status == "passed"


def test_missing_and_empty_functions_are_not_started_and_a_backward_pass_waits_for_its_forward():
    namespace = types.SimpleNamespace(relu_backward=lambda dout, x: dout * (x > 0))
    exec("def relu_forward(x):\n    'docstring'\n    raise NotImplementedError('later')\n", vars(namespace))
    results = exercises.check_all(namespace)
    assert results["relu_forward"].status == "not started"
    assert results["relu_backward"].status == "waiting"
    assert results["conv2d_forward_naive"].status == "not started"
    assert not exercises.all_passed(results)


def test_an_exception_is_reported_in_a_few_lines_with_the_learners_line(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    out = np.maximum(x, 0)\n"
                    "    return out / 0 + undefined_name, x\n", encoding="utf-8")
    results = exercises.check_all(exercises.load_learner_file(path), ["relu_forward"])
    details = results["relu_forward"].details
    assert results["relu_forward"].status == "wrong"
    assert details[:3] == ["case 1 of 2: relu_forward(x of shape (2, 3, 4, 5))",
                           "NameError: name 'undefined_name' is not defined",
                           "at line 6 of mine.py, in relu_forward: return out / 0 + undefined_name, x"]
    assert len(details) == 4
    assert details[3].startswith("reproduce: import exercises; mine = exercises.load_learner_file(")


def test_a_call_that_does_not_fit_says_how_the_check_calls():
    result = exercises.check_all(functions_with(relu_forward=lambda x, y: (x, x)), ["relu_forward"])["relu_forward"]
    assert result.details[1].startswith("TypeError: ")
    assert result.details[2] == "the check calls <lambda>(x, y)"


# --- The learner's file ---

def test_start_writes_a_numpy_only_file_where_every_exercise_is_not_started(tmp_path):
    path = tmp_path / "mine.py"
    result = run("start", str(path))
    assert result.returncode == 0 and "wrote" in result.stdout
    text = path.read_text(encoding="utf-8")
    imported = {alias.name for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported == {"numpy"}
    for exercise in exercises.EXERCISES:  # the signature and docstring of the solution, generated
        assert f"def {exercise.name}{inspect.signature(exercise.solution)}:" in text
        assert inspect.getdoc(exercise.layer or exercise.solution).splitlines()[0] in text
    assert "Note: stride=None means stride = kernel_size" in text and "README's order" not in text
    # The file runs with NumPy alone: -S leaves out site-packages, and only numpy's folder goes on the path.
    numpy_parent = os.path.dirname(os.path.dirname(np.__file__))
    imported_alone = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.append({numpy_parent!r}); "
                                     f"import runpy; runpy.run_path({str(path)!r}); "
                                     f"print(sorted(m for m in sys.modules if m in ('torch', 'tensorflow', 'scipy')))"],
                                    capture_output=True, text=True, timeout=60, env=ENVIRONMENT)
    assert imported_alone.returncode == 0 and imported_alone.stdout.strip() == "[]", imported_alone.stderr
    checked = run("check", "--file", str(path))
    assert checked.returncode == 1, checked.stdout  # nothing passes yet
    assert f"0 passed, 0 wrong, 0 waiting, {len(exercises.EXERCISES)} not started" in checked.stdout


def test_start_never_overwrites(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("# my work\n", encoding="utf-8")
    result = run("start", str(path))
    assert result.returncode == 1 and "exists already" in result.stdout
    assert path.read_text(encoding="utf-8") == "# my work\n"


def test_a_file_filled_with_the_solutions_passes_everything(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(solution_file_text(), encoding="utf-8")
    results = exercises.check_all(exercises.load_learner_file(path))
    assert {result.status for result in results.values()} == {"passed"}, exercises.report(results, path)


@pytest.mark.parametrize("source, line, message", [
    ("import numpy as np\n\ndef relu_forward(x)\n    return x, x\n", 3, "expected ':'"),
    ("import numpy as np\n\nsize = 1 / 0\n", 3, "ZeroDivisionError: division by zero"),
], ids=["syntax error", "exception at import"])
def test_a_file_that_does_not_import_gets_a_short_message_with_its_line(tmp_path, source, line, message):
    path = tmp_path / "mine.py"
    path.write_text(source, encoding="utf-8")
    result = run("check", "--file", str(path))
    assert result.returncode == 1
    assert message in result.stdout and f"line {line}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and len(result.stdout.splitlines()) <= 5, result.stdout


def test_exit_status(tmp_path):
    assert run("check", "--solutions").returncode == 0
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n", encoding="utf-8")
    passed = run("check", "--file", str(path))
    assert passed.returncode == 1 and "1 passed, 0 wrong, 0 waiting, 19 not started" in passed.stdout
    assert run("check", "relu_forward", "--file", str(path)).returncode == 0  # every function checked passes
    assert run("check", "relu_forward", "relu_backward", "--file", str(path)).returncode == 1  # one waits
    assert "0 only when every function it checked passes" in " ".join(run("--help").stdout.split())
    path.write_text("def relu_forward(x):\n    return abs(x), x\n", encoding="utf-8")
    assert run("check", "relu_forward", "--file", str(path)).returncode == 1
    unknown = run("check", "relu_forwards", "--file", str(path))
    assert unknown.returncode == 2 and "no exercise named relu_forwards" in unknown.stderr
    missing = run("check", "--file", str(tmp_path / "nothing.py"))
    assert missing.returncode == 1 and "python exercises.py start" in missing.stdout
    assert run("train", "--quick", "--file", str(path)).returncode == 1  # not every exercise passes


def test_the_readme_practises_every_exercise_by_its_name():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    named = {name for command in re.findall(r"python exercises\.py check ([^`\n#]*)", readme)
             for name in command.split() if not name.startswith("--")}
    assert named == set(exercises.BY_NAME), named ^ set(exercises.BY_NAME)
    assert f"{len(exercises.EXERCISES)} empty functions" in readme


# --- Training ---

@pytest.mark.parametrize("options", [{}, dict(activation="sigmoid", batchnorm=True, dropout=0.25)],
                         ids=["SimpleCNN", "sigmoid, BatchNorm and dropout"])
def test_training_with_the_solutions_reproduces_fit(mnist_batch, options):
    x, y = mnist_batch
    data = types.SimpleNamespace(x_train=x[:48], y_train=y[:48], x_val=x[48:], y_val=y[48:])
    seed, epochs = 3, 2
    if options:
        expected = scratch.make_cnn(activation="sigmoid", batch_norm=True, dropout=0.25,
                                    rng=np.random.default_rng(seed))
    else:
        expected = scratch.make_simple_cnn(rng=np.random.default_rng(seed))
    scratch.fit(expected, data.x_train, data.y_train, data.x_val, data.y_val, epochs=epochs,
                batch_size=exercises.BATCH_SIZE, learning_rate=exercises.LEARNING_RATE, seed=seed,
                augment=exercises.AUGMENT, progress=False, restore_best=False)
    model = exercises.learner_network(exercises.SOLUTIONS, np.random.default_rng(seed), **options)
    exercises.train_network(model, exercises.SOLUTIONS, data, epochs, seed, progress=False)
    assert all(isinstance(layer, exercises.LearnerLayer) for layer in model.layers
               if not isinstance(layer, scratch.FlattenLayer))
    for (layer, key), (expected_layer, _) in zip(model.parameters(), expected.parameters()):
        np.testing.assert_array_equal(layer.params[key], expected_layer.params[key])  # bit for bit
    for layer, expected_layer in zip(model.layers, expected.layers):
        for key, buffer in layer.buffers.items():  # BatchNorm's running averages, for evaluation
            np.testing.assert_array_equal(buffer, expected_layer.buffers[key])
    np.testing.assert_array_equal(model.predict_logits(x), expected.predict_logits(x))


def partial_file_text(empty=(), replaced=""):
    """solution_file_text() with the functions named in `empty` left as `start` writes them, and `replaced`
    (source code) appended, so that its definitions replace the solutions'."""
    stubs = [exercises.stub(exercises.BY_NAME[name]) for name in empty]
    return "\n\n\n".join([solution_file_text()] + stubs + [replaced])


def test_train_needs_only_the_functions_of_its_network_and_names_them(tmp_path, monkeypatch, capsys):
    path = tmp_path / "mine.py"
    extras = ["sigmoid_forward", "sigmoid_backward", "batchnorm_forward", "batchnorm_backward", "dropout_forward",
              "dropout_backward"]
    path.write_text(partial_file_text(empty=extras), encoding="utf-8")
    trained = []
    monkeypatch.setattr(exercises, "train_network",  # no training here: the gate and the network are tested
                        lambda model, functions, data, epochs, seed, progress=True: trained.append(model) or model)
    assert exercises.train(path, quick=True, seed=0) == 0
    out = capsys.readouterr().out
    names = exercises.network_exercises()
    assert len(names) == 10 and not set(names) & set(extras)
    assert f"Training the SimpleCNN made of your {', '.join(names)} (and im2col, col2im, which they call)" in out
    assert "your network's test accuracy: " in out and len(trained) == 1
    checked = run("check", "--file", str(path))
    assert checked.returncode == 1 and "The SimpleCNN's functions pass: train it with `python exercises.py train " \
                                       "--quick" in checked.stdout
    assert exercises.train(path, quick=True, seed=0, batchnorm=True) == 1  # BatchNorm is not written yet
    out = capsys.readouterr().out
    assert "batchnorm_forward         not started" in out and "train needs the 12 functions of the SimpleCNN with " \
                                                            "BatchNorm passed first" in out
    assert len(trained) == 1


def test_train_with_a_wrong_function_of_its_network_does_not_start(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(partial_file_text(replaced="def relu_forward(x):\n    return np.abs(x), x\n"), encoding="utf-8")
    assert run("train", "--quick", "--file", str(path)).returncode == 1


def test_a_function_that_calls_a_wrong_exercise_waits_for_it(tmp_path):
    # Your conv2d_backward calls your col2im (the solutions' source does), directly or through a helper of yours.
    path = tmp_path / "mine.py"
    path.write_text(partial_file_text(replaced=inspect.getsource(col2im_loops) + "\n\n"
                                      "def col2im(dcols, x_shape, HH, WW, stride, padding):\n"
                                      "    return col2im_loops(dcols, x_shape, HH, WW, stride, padding, assign=True)\n"
                                      "\n\nsolution_forward = conv2d_forward\n\n\n"
                                      "def columns(x, HH, WW, stride, padding):\n"
                                      "    return im2col(x, HH, WW, stride, padding)[:, ::-1]\n\n\n"
                                      "def im2col(x, HH, WW, stride, padding):\n"
                                      "    raise NotImplementedError\n\n\n"
                                      "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
                                      "    columns  # a helper of the same file that calls im2col\n"
                                      "    return solution_forward(x, w, b, stride, padding)\n"), encoding="utf-8")
    results = exercises.check_all(exercises.load_learner_file(path))
    assert results["col2im"].status == "wrong" and results["im2col"].status == "not started"
    assert results["conv2d_backward"].status == "waiting"
    assert results["conv2d_backward"].details == [
        "waiting for conv2d_forward, which is waiting: its cache is this function's input",
        "waiting for col2im, which is wrong: conv2d_backward calls it"]
    assert results["conv2d_forward"].details == ["waiting for im2col, which is not started: conv2d_forward calls it"]
    assert results["conv2d_backward_naive"].status == "passed"  # it calls neither


def test_the_reproduce_line_runs_and_fails_the_same_way(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(partial_file_text(replaced=inspect.getsource(conv_loops) + "\n\n"
                                      "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
                                      "    return conv_loops(x, w, b, stride, padding, column_step=False)\n"),
                    encoding="utf-8")
    for name, output in (("conv2d_forward", "out"), ("conv2d_backward", "dx")):
        functions = exercises.load_learner_file(path)
        if name == "conv2d_backward":  # a wrong backward pass: its dx taken from the forward pass's x
            functions = types.SimpleNamespace(**{**vars(exercises.SOLUTIONS), "conv2d_backward": lambda dout, cache: (
                -scratch.conv2d_backward(dout, cache)[0], *scratch.conv2d_backward(dout, cache)[1:])})
        result = exercises.check_all(functions, [name])[name]
        assert result.status == "wrong"
        number = int(re.match(r"case (\d+) of", result.details[0]).group(1))
        printed = next(line for line in result.details if line.startswith(f"{output}: largest difference "))
        line = result.details[-1]
        assert line.startswith("reproduce: import exercises; ")
        assert f"exercises.case({name!r}, {number})" in line  # the case the verdict names
        namespace = {} if isinstance(functions, types.ModuleType) else dict(vars(functions))
        exec(line[len("reproduce: "):], namespace)
        received, expected = namespace[output], namespace["expected"][0]
        assert f"largest difference {exercises.largest_difference(received, expected):.2e}," in printed


@pytest.mark.parametrize("name, replacements", [
    ("dropout_forward", {"dropout_forward": partial(dropout_learner, scale=False)}),
    ("dropout_backward", {"dropout_forward": dropout_forward_simple, "dropout_backward": lambda dout, mask: dout}),
], ids=["dropout_forward", "dropout_backward"])
def test_dropouts_reproduce_line_gives_the_same_mask(name, replacements):
    functions = functions_with(**replacements)
    result = exercises.check_all(functions, [name])[name]
    assert result.status == "wrong" and result.details[-1].startswith("reproduce: ")
    namespace = dict(vars(functions))
    exec(result.details[-1][len("reproduce: "):], namespace)
    p = float(re.search(r"p=([0-9.]+)", result.details[0]).group(1))
    kept = namespace["out"] != 0
    if name == "dropout_forward":  # the learner's values, unscaled, on the same mask as in the check
        np.testing.assert_array_equal(namespace["out"], namespace["x"] * kept)
    else:
        np.testing.assert_array_equal(namespace["dx"], namespace["dout"])
        assert 0 < 1 - kept.mean() and abs(1 - kept.mean() - p) < 0.05


def test_check_from_python_finds_the_forward_pass_beside_the_function(capsys):
    notebook = {}  # a notebook's globals, where the learner wrote both passes
    exec("import numpy as np\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
         "def relu_backward(dout, x):\n    return dout * x\n", notebook)
    result = exercises.check("relu_backward", notebook["relu_backward"])
    out = capsys.readouterr().out
    assert result.status == "wrong" and "relu_backward  wrong" in out and "hint: multiply dout by the mask" in out
    exec(result.details[-1][len("reproduce: "):], notebook)  # bare names: the notebook's functions
    assert notebook["dx"].shape == notebook["expected"][0].shape
    assert exercises.check("relu_forward", notebook["relu_forward"]).status == "passed"
    assert exercises.check("relu_backward", lambda dout, x: dout * (x > 0), others=notebook).status == "passed"


@pytest.mark.parametrize("x_shape, w_shape", [((2, 3, 7, 7), (4, 3, 3, 3)), ((2, 3, 8, 7), (4, 3, 3, 2))],
                         ids=["7x7, 3x3 kernel", "8x7, 3x2 kernel: a row the windows never reach"])
def test_the_readmes_flipped_kernel_rule_holds_for_stride_2_and_padding_1(x_shape, w_shape):
    # The README's rule: dilate dout by the stride, pad it with HH - 1 - P zeros (and the rows and columns that
    # the last window did not reach), swap F and C, flip the kernel, and correlate with stride 1.
    stride, padding = 2, 1
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out, cache = scratch.conv2d_forward(x, w, np.zeros(w_shape[0]), stride, padding)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = scratch.conv2d_backward(dout, cache)
    N, F, H_out, W_out = dout.shape
    HH, WW = w_shape[2:]
    dilated = np.zeros((N, F, stride * (H_out - 1) + 1, stride * (W_out - 1) + 1))
    dilated[:, :, ::stride, ::stride] = dout  # S - 1 zeros between neighbours
    unreached = [(size + 2 * padding - kernel) % stride for size, kernel in ((x_shape[2], HH), (x_shape[3], WW))]
    padded = np.pad(dilated, ((0, 0), (0, 0), (HH - 1 - padding, HH - 1 - padding + unreached[0]),
                              (WW - 1 - padding, WW - 1 - padding + unreached[1])))
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (F, C, HH, WW) -> (C, F, HH, WW), flipped in u and v
    full, _ = scratch.conv2d_forward_naive(padded, flipped, np.zeros(x_shape[1]))
    np.testing.assert_allclose(full, dx, rtol=1e-12, atol=1e-12)
    undilated = np.pad(dout, ((0, 0), (0, 0), (HH - 1, HH - 1), (WW - 1, WW - 1)))  # the stride-1 rule
    assert scratch.conv2d_forward_naive(undilated, flipped, np.zeros(x_shape[1]))[0].shape != dx.shape


def test_an_error_during_training_is_reported_in_a_few_lines(tmp_path, capsys):
    # Checks use float64; training uses float32 MNIST, which can reach code that the checks did not.
    path = tmp_path / "mine.py"
    path.write_text(solution_file_text() + "\n\n\nchecked_forward = conv2d_forward\n\n\n"
                    "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
                    "    assert x.dtype == np.float64, 'float64 only'\n"
                    "    return checked_forward(x, w, b, stride, padding)\n", encoding="utf-8")
    line = len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert exercises.train(path, quick=True, seed=0) == 1
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "training stopped:", "  AssertionError: float64 only",
        f"  at line {line} of mine.py, in conv2d_forward: assert x.dtype == np.float64, 'float64 only'"]
