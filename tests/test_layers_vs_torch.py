"""Every NumPy layer against PyTorch with the same weights, in float64, over many random shapes.

Tolerances: forward outputs and all gradients agree with torch.nn.functional to a relative error
(max |a - b| / max |a|, see cnn_from_scratch.rel_error) under 1e-10; the naive loop functions
equal the vectorized ones to the same tolerance.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnn_from_scratch as scratch

CONFIGS = 100
TOLERANCE = 1e-10


def torch_grads(function, *arrays, dout):
    """Run a torch function on float64 copies of arrays; return its output and the gradients of sum(out * dout)."""
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = function(*tensors)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def random_conv_config(rng):
    """batch 1-4, channels 1-5, non-square inputs and kernels 1-5, stride 1-3, padding 0-2."""
    while True:
        N, C, F_ = rng.integers(1, 5), rng.integers(1, 6), rng.integers(1, 6)
        HH, WW = rng.integers(1, 6, size=2)
        stride, padding = tuple(rng.integers(1, 4, size=2)), tuple(rng.integers(0, 3, size=2))
        H, W = rng.integers(1, 13, size=2)
        if HH <= H + 2 * padding[0] and WW <= W + 2 * padding[1]:
            return (N, C, H, W), (F_, C, HH, WW), stride, padding


@pytest.mark.parametrize("seed", range(CONFIGS))
def test_conv_matches_torch_and_naive(seed):
    rng = np.random.default_rng(seed)
    x_shape, w_shape, stride, padding = random_conv_config(rng)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = scratch.conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = scratch.conv2d_backward(dout, cache)
    expected, (tdx, tdw, tdb) = torch_grads(lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride, padding),
                                            x, w, b, dout=dout)
    for ours, theirs in ((out, expected), (dx, tdx), (dw, tdw), (db, tdb)):
        assert ours.dtype == np.float64
        assert scratch.rel_error(ours, theirs) < TOLERANCE
    naive_out, naive_cache = scratch.conv2d_forward_naive(x, w, b, stride, padding)
    naive_grads = scratch.conv2d_backward_naive(dout, naive_cache)
    assert scratch.rel_error(naive_out, out) < TOLERANCE
    for naive, fast in zip(naive_grads, (dx, dw, db)):
        assert scratch.rel_error(naive, fast) < TOLERANCE


def random_pool_config(rng):
    while True:
        N, C = rng.integers(1, 5), rng.integers(1, 6)
        kernel, stride = tuple(rng.integers(1, 4, size=2)), tuple(rng.integers(1, 4, size=2))
        H, W = rng.integers(1, 13, size=2)
        if kernel[0] <= H and kernel[1] <= W:
            return (N, C, H, W), kernel, stride


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("seed", range(CONFIGS))
def test_pool_matches_torch_and_naive(seed, mode):
    rng = np.random.default_rng(seed)
    x_shape, kernel, stride = random_pool_config(rng)
    # Small integers make ties common, so the "first maximum gets the gradient" rule is exercised.
    x = rng.integers(0, 3, size=x_shape).astype(np.float64) if seed % 2 else rng.standard_normal(x_shape)
    out, cache = scratch.pool2d_forward(x, kernel, stride, mode)
    dout = rng.standard_normal(out.shape)
    dx = scratch.pool2d_backward(dout, cache)
    torch_pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    expected, (tdx,) = torch_grads(lambda x_: torch_pool(x_, kernel, stride), x, dout=dout)
    assert scratch.rel_error(out, expected) < TOLERANCE
    assert scratch.rel_error(dx, tdx) < TOLERANCE
    naive_out, naive_cache = scratch.pool2d_forward_naive(x, kernel, stride, mode)
    assert scratch.rel_error(naive_out, out) < TOLERANCE
    assert scratch.rel_error(scratch.pool2d_backward_naive(dout, naive_cache), dx) < TOLERANCE


ACTIVATIONS = [
    (scratch.ReLULayer, {}, F.relu),
    (scratch.LeakyReLULayer, {"negative_slope": 0.1}, lambda t: F.leaky_relu(t, 0.1)),
    (scratch.ELULayer, {"alpha": 1.3}, lambda t: F.elu(t, 1.3)),
    (scratch.TanhLayer, {}, torch.tanh),
    (scratch.SigmoidLayer, {}, torch.sigmoid),
]


@pytest.mark.parametrize("layer_class, kwargs, torch_function", ACTIVATIONS,
                         ids=[cls.__name__ for cls, _, _ in ACTIVATIONS])
@pytest.mark.parametrize("seed", range(CONFIGS))
def test_activation_matches_torch(seed, layer_class, kwargs, torch_function):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(rng.integers(1, 6, size=4))) * 3
    x.flat[0] = 0.0  # The kink itself: both take the left-hand slope at exactly 0.
    layer = layer_class(**kwargs)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    expected, (tdx,) = torch_grads(torch_function, x, dout=dout)
    assert scratch.rel_error(out, expected) < TOLERANCE
    assert scratch.rel_error(layer.backward(dout), tdx) < TOLERANCE


@pytest.mark.parametrize("seed", range(CONFIGS))
def test_fully_connected_and_flatten_match_torch(seed):
    rng = np.random.default_rng(seed)
    x_shape = tuple(rng.integers(1, 5, size=4))
    in_features, out_features = int(np.prod(x_shape[1:])), int(rng.integers(1, 8))
    flatten = scratch.FlattenLayer()
    fc = scratch.FullyConnectedLayer(in_features, out_features, rng=rng, dtype=np.float64)
    fc.params["b"] = rng.standard_normal(out_features)
    x = rng.standard_normal(x_shape)
    out = fc.forward(flatten.forward(x))
    dout = rng.standard_normal(out.shape)
    fc.needs_input_grad = True
    dx = flatten.backward(fc.backward(dout))
    expected, (tdx, tdw, tdb) = torch_grads(
        lambda x_, w_, b_: F.linear(torch.flatten(x_, 1), w_, b_), x, fc.params["W"].T, fc.params["b"], dout=dout)
    for ours, theirs in ((out, expected), (dx, tdx), (fc.grads["W"].T, tdw), (fc.grads["b"], tdb)):
        assert scratch.rel_error(ours, theirs) < TOLERANCE


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", range(CONFIGS))
def test_batchnorm_matches_torch(seed, training):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(rng.integers(2, 5)), int(rng.integers(1, 6)), *rng.integers(1, 6, size=2))) * 2 + 1
    if seed % 2:
        x = x.reshape(x.shape[0], -1)  # The 1-D version, after a fully connected layer.
    C = x.shape[1]
    layer = scratch.BatchNormLayer(C, dtype=np.float64)
    layer.params["gamma"], layer.params["beta"] = rng.standard_normal(C), rng.standard_normal(C)
    layer.buffers["running_mean"], layer.buffers["running_var"] = rng.standard_normal(C), rng.random(C) + 0.5
    running_mean, running_var = torch.tensor(layer.buffers["running_mean"]), torch.tensor(layer.buffers["running_var"])
    layer.training = training
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    expected, (tdx, tdgamma, tdbeta) = torch_grads(
        lambda x_, g_, b_: F.batch_norm(x_, running_mean, running_var, g_, b_, training=training, momentum=0.1),
        x, layer.params["gamma"], layer.params["beta"], dout=dout)
    for ours, theirs in ((out, expected), (dx, tdx), (layer.grads["gamma"], tdgamma), (layer.grads["beta"], tdbeta),
                         (layer.buffers["running_mean"], running_mean), (layer.buffers["running_var"], running_var)):
        assert scratch.rel_error(ours, theirs) < TOLERANCE


@pytest.mark.parametrize("seed", range(CONFIGS))
def test_softmax_cross_entropy_matches_torch(seed):
    rng = np.random.default_rng(seed)
    N, K = int(rng.integers(1, 9)), int(rng.integers(2, 12))
    logits, y = rng.standard_normal((N, K)) * 10, rng.integers(0, K, size=N)
    loss, dlogits = scratch.softmax_cross_entropy(logits, y)
    tlogits = torch.tensor(logits, requires_grad=True)
    tloss = F.cross_entropy(tlogits, torch.from_numpy(y))
    tloss.backward()
    assert abs(loss - tloss.item()) <= TOLERANCE * abs(tloss.item())
    assert scratch.rel_error(dlogits, tlogits.grad.numpy()) < TOLERANCE


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=np.float32)
    loss, dlogits = scratch.softmax_cross_entropy(logits, np.array([1, 2]))
    tloss = F.cross_entropy(torch.from_numpy(logits), torch.tensor([1, 2]))
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    assert loss == pytest.approx(tloss.item(), rel=1e-6)  # (2e4 + 0) / 2 = 1e4


def test_dropout_scales_kept_values_and_routes_gradient():
    layer = scratch.DropoutLayer(p=0.25, rng=np.random.default_rng(0))
    x = np.ones((200, 50))
    out = layer.forward(x)
    kept = out != 0
    assert np.allclose(out[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.01
    assert np.array_equal(layer.backward(np.ones_like(x)), out)
    layer.training = False
    assert layer.forward(x) is x
