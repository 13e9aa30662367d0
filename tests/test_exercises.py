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
import textwrap
import types

import numpy as np
import pytest

import cnn_from_scratch as scratch
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
               "FullyConnectedLayer, Layer, ReLULayer, SigmoidLayer, _pair, _pool_geometry, _window_offsets, "
               "check_labels, conv_output_size, to_chwn)"]
    return "\n\n\n".join(imports + [inspect.getsource(exercise.solution) for exercise in exercises.EXERCISES])


# --- Learner-style mistakes ---

def conv_loops(x, w, b, stride=1, padding=0, flip=False, bias=True, step=True, pad=True):
    """A learner's loop convolution, with one mistake switched on."""
    P = padding if pad else 0
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    N, C, H, W = x_pad.shape
    F, _, HH, WW = w.shape
    H_out, W_out = 1 + (H - HH) // stride, 1 + (W - WW) // stride
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            kernel = w[f, :, ::-1, ::-1] if flip else w[f]
            for i in range(H_out):
                for j in range(W_out):
                    top, left = (i * stride, j * stride) if step else (i, j)
                    out[n, f, i, j] = np.sum(x_pad[n, :, top:top + HH, left:left + WW] * kernel) + (b[f] if bias else 0)
    return out, (x, w, stride, padding)


def conv_backward_loops(dout, cache, compute_dx=True, crop=True, assign=False, flip=False, db_axes=(0, 2, 3)):
    x, w, stride, P = cache
    if isinstance(stride, tuple):  # the solution's cache holds (height, width) pairs
        stride, P = stride[0], P[0]
    x_pad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dx_pad, dw = np.zeros(x_pad.shape), np.zeros(w.shape)
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
    return dx, dw, dout.sum(axis=db_axes)


def im2col_loops(x, HH, WW, stride, padding, order="ijn"):
    """A learner's im2col looping over the windows, with the columns in `order` and rows (c, u, v) or (u, v, c)."""
    (sh, sw), (ph, pw) = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, C, H, W = x_pad.shape
    H_out, W_out = 1 + (H - HH) // sh, 1 + (W - WW) // sw
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
    cols = scratch.im2col(x, w.shape[2], w.shape[3], (stride, stride), (padding, padding))
    H_out = 1 + (x.shape[2] + 2 * padding - w.shape[2]) // stride
    W_out = 1 + (x.shape[3] + 2 * padding - w.shape[3]) // stride
    out = (w.reshape(F, -1) @ cols + b[:, None]).reshape(N, F, H_out, W_out)  # the mistake
    return out, (x, w, stride, padding)


def conv_backward_dout_reshaped_directly(dout, cache):
    x_shape, cols, w, stride, padding = cache
    F = w.shape[0]
    dout_rows = dout.reshape(F, -1)  # the mistake: no to_chwn
    dx = scratch.col2im(w.reshape(F, -1).T @ dout_rows, x_shape, w.shape[2], w.shape[3], stride, padding)
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


def pool_ignoring_mode(x, kernel_size=2, stride=None, mode="max"):
    return pool_loops(x, kernel_size, stride, "max")


def pool_backward_loops(dout, cache, every_tie=False, divide=True, assign=False):
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
            grad = np.full((k, k), dout[n, c, i, j] / (k * k if divide else 1))
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


def softmax_loops(logits, y, shift=True, divide=True, axis=1):
    z = logits - np.max(logits, axis=axis, keepdims=True) if shift else logits
    p = np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True)
    N = logits.shape[0]
    loss = -np.mean(np.log(p[np.arange(N), y]))
    dlogits = p.copy()
    for n in range(N):
        dlogits[n, y[n]] -= 1
    return loss, dlogits / N if divide else dlogits


def adam_learner(w, dw, m, v, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, correct=True, t_used=None,
                 fixed_betas=False):
    if fixed_betas:
        beta1, beta2 = 0.9, 0.999
    t = t if t_used is None else t_used(t)
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw ** 2
    m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if correct else (m, v)
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
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, crop=False)}, "crop the padding"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, assign=True)}, "use +=, not ="),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, flip=True)}, "not flipped"),
    ("conv2d_backward_naive", {"conv2d_backward_naive": partial(conv_backward_loops, db_axes=(2, 3))},
     "dout.sum(axis=(0, 2, 3))"),
    ("im2col", {"im2col": partial(im2col_loops, order="nij")}, "(i, j, n) order"),
    ("im2col", {"im2col": partial(im2col_loops, order="uvc")}, "(c, u, v) order"),
    ("col2im", {"col2im": partial(col2im_loops, assign=True)}, "use +=, not ="),
    ("col2im", {"col2im": partial(col2im_loops, crop=False)}, "crop the padding"),
    ("conv2d_forward", {"conv2d_forward": conv_forward_reshaped_directly}, "reshape it to (F, H_out, W_out, N)"),
    ("conv2d_forward", {"conv2d_forward": partial(conv_loops, flip=True)}, "kernel is flipped"),
    ("conv2d_backward", {"conv2d_backward": conv_backward_dout_reshaped_directly}, "to_chwn(dout)"),
    ("conv2d_backward", {"conv2d_forward": conv_loops, "conv2d_backward": partial(conv_backward_loops, crop=False)},
     "crop the padding"),
    ("pool2d_forward", {"pool2d_forward": pool_ignoring_mode}, "the other mode's answer"),
    ("pool2d_forward", {"pool2d_forward": partial(pool_loops, none_stride=1)}, "stride=None means"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, every_tie=True)},
     "every tied maximum"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, divide=False)},
     "dout / kernel_size ** 2"),
    ("pool2d_backward", {"pool2d_forward": pool_loops, "pool2d_backward": partial(pool_backward_loops, assign=True)},
     "use +=, not ="),
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
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, divide=False)}, "missing 1/N"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, shift=False)}, "softmax overflow"),
    ("softmax_cross_entropy", {"softmax_cross_entropy": partial(softmax_loops, axis=0)}, "wrong axis"),
    ("adam_step", {"adam_step": partial(adam_learner, correct=False)}, "bias correction is missing"),
    ("adam_step", {"adam_step": partial(adam_learner, t_used=lambda t: t - 1)}, "from 1"),
    ("adam_step", {"adam_step": partial(adam_learner, fixed_betas=True)}, "arguments beta1, beta2"),
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


def test_a_mistake_that_is_not_known_gets_no_hint():
    result = exercises.check_all(functions_with(relu_forward=lambda x: (np.maximum(x, 0) + 0.5, x)),
                                 ["relu_forward"])["relu_forward"]
    assert result.status == "wrong" and not [line for line in result.details if line.startswith("hint:")]


def test_a_wrong_value_names_its_index_and_both_values():
    result = exercises.check_all(functions_with(conv2d_forward_naive=partial(conv_loops, bias=False)),
                                 ["conv2d_forward_naive"])["conv2d_forward_naive"]
    case, values = result.details[:2]
    assert case.startswith("case 1 of 4: conv2d_forward_naive(x of shape (2, 3, 7, 5)")
    assert values.startswith("out: 280 of 280 values wrong; the first at [0, 0, 0, 0]: expected ")
    assert ", received " in values


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
    assert not exercises.all_attempted_pass(results)


def test_an_exception_is_reported_in_a_few_lines_with_the_learners_line(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    out = np.maximum(x, 0)\n"
                    "    return out / 0 + undefined_name, x\n", encoding="utf-8")
    results = exercises.check_all(exercises.load_learner_file(path), ["relu_forward"])
    details = results["relu_forward"].details
    assert results["relu_forward"].status == "wrong"
    assert details == ["case 1 of 2: relu_forward(x of shape (2, 3, 4, 5))",
                       "NameError: name 'undefined_name' is not defined",
                       "at line 6 of mine.py, in relu_forward: return out / 0 + undefined_name, x"]


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
    # The file runs with NumPy alone: -S leaves out site-packages, and only numpy's folder goes on the path.
    numpy_parent = os.path.dirname(os.path.dirname(np.__file__))
    imported_alone = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.append({numpy_parent!r}); "
                                     f"import runpy; runpy.run_path({str(path)!r}); "
                                     f"print(sorted(m for m in sys.modules if m in ('torch', 'tensorflow', 'scipy')))"],
                                    capture_output=True, text=True, timeout=60, env=ENVIRONMENT)
    assert imported_alone.returncode == 0 and imported_alone.stdout.strip() == "[]", imported_alone.stderr
    checked = run("check", "--file", str(path))
    assert checked.returncode == 0, checked.stdout
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
    assert passed.returncode == 0 and "1 passed, 0 wrong, 0 waiting, 19 not started" in passed.stdout
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

def test_training_with_the_solutions_reproduces_cnn_fit(mnist_batch):
    x, y = mnist_batch
    seed, epochs, batch_size, learning_rate, augment = 3, 2, 16, 2e-3, 2
    expected = scratch.make_simple_cnn(rng=np.random.default_rng(seed))
    expected.fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=scratch.Adam(expected.parameters(),
                 learning_rate=learning_rate), seed=seed, augment=augment, verbose=False)
    model = exercises.learner_network(exercises.SOLUTIONS, np.random.default_rng(seed))
    exercises.train_network(model, exercises.SOLUTIONS, x, y, epochs, batch_size, learning_rate, seed, augment,
                            verbose=False)
    assert all(isinstance(layer, exercises.LearnerLayer) for layer in model.layers
               if not isinstance(layer, scratch.FlattenLayer))
    for (layer, key), (expected_layer, _) in zip(model.parameters(), expected.parameters()):
        np.testing.assert_array_equal(layer.params[key], expected_layer.params[key])  # bit for bit
    np.testing.assert_array_equal(model.predict_logits(x), expected.predict_logits(x))


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
