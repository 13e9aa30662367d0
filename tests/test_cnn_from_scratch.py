"""The NumPy CNN on its own: numerical gradient checks, training, saving, and clear errors for bad input."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cnn_from_scratch as scratch
import drawings
import frameworks

NUMERICAL_TOLERANCE = 1e-7  # centred differences in float64, h = 1e-6
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_cnn(rng, dtype=np.float64, activation=scratch.ReLULayer):
    """A CNN for 8x8 digits that uses every layer type: conv, pool (max and avg), BN, dropout, FC."""
    return scratch.CNN([
        scratch.ConvolutionLayer(1, 8, 3, padding=1, rng=rng, dtype=dtype),  # (N, 8, 8, 8)
        activation(),
        scratch.BatchNormLayer(8, dtype=dtype),  # after the activation, so conv's bias keeps a gradient
        scratch.PoolingLayer(2),  # (N, 8, 4, 4)
        scratch.ConvolutionLayer(8, 12, (3, 2), stride=(1, 2), padding=(1, 0), rng=rng, dtype=dtype),  # (N, 12, 4, 2)
        activation(),
        scratch.PoolingLayer((2, 1), mode="avg"),  # (N, 12, 2, 2)
        scratch.FlattenLayer(),  # (N, 48)
        scratch.DropoutLayer(0.2, rng=rng),
        scratch.FullyConnectedLayer(48, 10, init="xavier", rng=rng, dtype=dtype),
    ], input_shape=(1, 8, 8), num_classes=10)


# --- Numerical gradient checks ---

def check_layer_gradients(layer, x, rng):
    """Compare the layer's dx and parameter grads with centred differences of sum(forward(x) * dout)."""
    layer.needs_input_grad = True
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    numeric_dx = scratch.numerical_gradient(lambda: layer.forward(x), x, dout)
    assert scratch.rel_error(dx, numeric_dx) < NUMERICAL_TOLERANCE
    for key, value in layer.params.items():
        analytic = layer.grads[key].copy()
        numeric = scratch.numerical_gradient(lambda: layer.forward(x), value, dout)
        assert scratch.rel_error(analytic, numeric) < NUMERICAL_TOLERANCE, key


@pytest.mark.parametrize("make_layer", [
    lambda rng: scratch.ConvolutionLayer(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), rng=rng, dtype=np.float64),
    lambda rng: scratch.PoolingLayer(2, mode="max"),
    lambda rng: scratch.PoolingLayer((3, 2), stride=1, mode="max"),
    lambda rng: scratch.PoolingLayer(2, mode="avg"),
    lambda rng: scratch.ReLULayer(),
    lambda rng: scratch.LeakyReLULayer(0.05),
    lambda rng: scratch.ELULayer(),
    lambda rng: scratch.TanhLayer(),
    lambda rng: scratch.SigmoidLayer(),
    lambda rng: scratch.BatchNormLayer(3, dtype=np.float64),
    lambda rng: scratch.FlattenLayer(),
], ids=["conv", "maxpool", "maxpool-overlap", "avgpool", "relu", "leaky", "elu", "tanh", "sigmoid", "batchnorm",
      "flatten"])
def test_layer_gradient_numerically(make_layer):
    rng = np.random.default_rng(0)
    check_layer_gradients(make_layer(rng), rng.standard_normal((2, 3, 6, 5)), rng)


def test_fully_connected_gradient_numerically():
    rng = np.random.default_rng(1)
    check_layer_gradients(scratch.FullyConnectedLayer(7, 5, rng=rng, dtype=np.float64), rng.standard_normal((4, 7)), rng)


def test_whole_model_gradient_numerically(digits):
    rng = np.random.default_rng(2)
    model = tiny_cnn(rng)
    model.layers[8].p = 0.0  # Dropout draws a new mask per forward pass; switch it off for the check.
    x, y = digits.x_train[:5].astype(np.float64), digits.y_train[:5]
    # Digits have blank patches: with zero biases conv outputs sit exactly on ReLU's kink, where a
    # finite difference averages the two one-sided slopes. Random biases move them off it.
    for layer, key in model.parameters():
        if key == "b":
            layer.params[key] = rng.standard_normal(layer.params[key].shape) * 0.1

    def loss():
        return scratch.softmax_cross_entropy(model.forward(x), y)[0]

    _, dlogits = scratch.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    for layer, key in model.parameters():
        analytic = layer.grads[key].copy()
        assert scratch.rel_error(analytic, scratch.numerical_gradient(loss, layer.params[key])) < NUMERICAL_TOLERANCE


@pytest.mark.parametrize("padding", [0, 1, (2, 0)])
def test_conv_dx_is_the_full_correlation_of_dout_with_the_flipped_kernel(padding):
    # dx_pad[c, i + u, j + v] += dout[f, i, j] * w[f, c, u, v] is, read from dx's side, a correlation of
    # dout, padded by K - 1 on every side ("full"), with w flipped in u and v and with F and C swapped.
    # Padding P in the forward pass crops P of those K - 1 rows again: pad by K - 1 - P.
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    out, cache = scratch.conv2d_forward(x, w, np.zeros(4), padding=padding)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = scratch.conv2d_backward(dout, cache)
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (F, C, HH, WW) -> (C, F, HH, WW), flipped in u and v
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    full, _ = scratch.conv2d_forward_naive(dout, flipped, np.zeros(3), padding=(2 - ph, 2 - pw))
    np.testing.assert_allclose(full, dx, rtol=1e-12, atol=1e-12)
    assert not np.allclose(scratch.conv2d_forward_naive(dout, w.transpose(1, 0, 2, 3), np.zeros(3),
                                                        padding=(2 - ph, 2 - pw))[0], dx)  # unflipped: wrong


# --- Receptive field ---

def test_receptive_field_of_the_simple_cnn_by_hand():
    fields = scratch.receptive_field(scratch.make_simple_cnn(rng=np.random.default_rng(0)).layers)
    # conv1: 3; relu1 keeps it; pool1: 3 + (2 - 1) * 1 = 4; conv2: 4 + (3 - 1) * 2 = 8; pool2: 8 + (2 - 1) * 2 = 10
    assert [size for size, _, _ in fields] == [(3, 3), (3, 3), (4, 4), (8, 8), (8, 8), (10, 10)]  # stops at flatten
    assert [jump for _, jump, _ in fields] == [(1, 1), (1, 1), (2, 2), (2, 2), (2, 2), (4, 4)]
    assert [start for _, _, start in fields] == [(-1, -1)] * 3 + [(-3, -3)] * 3  # each padding of 1 reaches out


def test_receptive_field_equals_the_support_of_the_gradient():
    # Brute force: send a gradient of 1 back from a single unit and see which input pixels it reaches.
    # Positive inputs and weights keep every ReLU active, and average pooling sends the gradient to the
    # whole window, so the support is the whole field (inside the image), nothing more and nothing less.
    rng = np.random.default_rng(6)
    layers = [scratch.ConvolutionLayer(1, 2, 3, padding=1, rng=rng, dtype=np.float64), scratch.ReLULayer(),
              scratch.PoolingLayer(2, mode="avg"),
              scratch.ConvolutionLayer(2, 2, (5, 3), stride=(2, 1), padding=(2, 0), rng=rng, dtype=np.float64),
              scratch.PoolingLayer((3, 2), stride=1, mode="avg")]
    for layer in layers:
        for key in layer.params:
            layer.params[key] = np.abs(layer.params[key]) + 0.1
    x = rng.uniform(0.5, 1.0, (1, 1, 23, 19))
    fields = scratch.receptive_field(layers)
    for depth in range(len(layers)):
        out = x
        for layer in layers[:depth + 1]:
            out = layer.forward(out)
        (size_h, size_w), (jump_h, jump_w), (start_h, start_w) = fields[depth]
        for i, j in [(0, 0), (out.shape[2] // 2, out.shape[3] // 2), (out.shape[2] - 1, out.shape[3] - 1)]:
            dout = np.zeros_like(out)
            dout[0, 0, i, j] = 1.0
            for layer in reversed(layers[:depth + 1]):
                dout = layer.backward(dout)
            expected = np.zeros(x.shape[2:], dtype=bool)
            top, left = start_h + i * jump_h, start_w + j * jump_w
            expected[max(top, 0):top + size_h, max(left, 0):left + size_w] = True  # clipped to the image
            np.testing.assert_array_equal(dout[0, 0] != 0, expected, err_msg=f"layer {depth}, unit ({i}, {j})")


# --- Dtypes ---

def test_float32_stays_float32_and_float64_stays_float64(digits):
    for dtype in (np.float32, np.float64):
        model = tiny_cnn(np.random.default_rng(0), dtype=dtype)
        logits = model.forward(digits.x_train[:4].astype(dtype))
        _, dlogits = scratch.softmax_cross_entropy(logits, digits.y_train[:4])
        model.backward(dlogits)
        assert logits.dtype == dtype
        assert all(layer.grads[key].dtype == dtype for layer, key in model.parameters())


def test_simple_cnn_shapes_and_parameter_count():
    model = scratch.make_simple_cnn(rng=np.random.default_rng(0))
    assert model.forward(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    # conv1: 16 * (1 * 3 * 3) + 16; conv2: 32 * (16 * 3 * 3) + 32; fc1: (32 * 7 * 7) * 128 + 128; fc2: 128 * 10 + 10
    expected = (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 7 * 7 * 128 + 128) + (128 * 10 + 10)
    assert model.num_parameters() == expected
    summary = model.summary()
    assert "(None, 32, 7, 7)" in summary and f"{expected:,}" in summary


def test_speedrun_cnn_shapes_and_parameter_count():
    model = scratch.make_speedrun_cnn(rng=np.random.default_rng(0))
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    # conv1: 24 * 5 * 5 + 24; conv2: 32 * (24 * 3 * 3) + 32; fc1: (32 * 5 * 5) * 256 + 256; fc2: 256 * 10 + 10
    assert model.num_parameters() == (24 * 25 + 24) + (32 * 24 * 9 + 32) + (800 * 256 + 256) + (256 * 10 + 10)


def test_count_flops_by_hand():
    """SimpleCNN, per image: conv1 2 * (1 * 3 * 3) * 16 * 28 * 28, conv2 2 * (16 * 3 * 3) * 32 * 14 * 14,
    fc1 2 * 1568 * 128, fc2 2 * 128 * 10; backward twice each, except conv1 (dW only, no dx)."""
    conv1, conv2, fc1, fc2 = 2 * 9 * 16 * 784, 2 * 144 * 32 * 196, 2 * 1568 * 128, 2 * 128 * 10
    flops = frameworks.count_flops(scratch.make_simple_cnn(rng=np.random.default_rng(0)))
    assert (conv1, conv2, fc1, fc2) == (225_792, 1_806_336, 401_408, 2_560)
    assert [row[2] for row in flops["layers"]] == [conv1, conv2, fc1, fc2]
    assert flops["forward"] == 2_436_096 and flops["backward"] == conv1 + 2 * (conv2 + fc1 + fc2) == 4_646_400
    stride_2 = scratch.make_cnn(pooling="stride", padding=False, rng=np.random.default_rng(0))  # 28 -> 13 -> 6
    assert frameworks.count_flops(stride_2)["layers"][0][2] == 2 * 9 * 16 * 13 * 13


def test_relu_before_max_pooling_runs_after_it_with_the_same_numbers(digits):
    """CNN.forward runs ReLU after the max pooling that follows it (a quarter of the numbers); the logits
    and every gradient equal those of the layers run in their listed order, ties included (the empty
    background makes whole windows of equal values), in float64."""
    model = scratch.make_simple_cnn(image_size=8, rng=np.random.default_rng(0)).astype(np.float64)
    kinds = [type(layer).__name__ for layer in model.execution_order()]
    assert kinds[:6] == ["ConvolutionLayer", "PoolingLayer", "ReLULayer"] * 2
    x, y = digits.x_train[:8].astype(np.float64), digits.y_train[:8]
    logits = model.forward(x)
    _, dlogits = scratch.softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    fused = {(index, key): grad.copy() for index, layer in enumerate(model.layers) for key, grad in layer.grads.items()}
    listed = x
    for layer in model.layers:
        listed = layer.forward(listed)
    dout = dlogits
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
    assert np.array_equal(listed, logits)
    for (index, key), grad in fused.items():
        assert scratch.rel_error(grad, model.layers[index].grads[key]) < 1e-12, (index, key)
    average = scratch.make_cnn(pooling="avg", rng=np.random.default_rng(0))  # average pooling: order kept
    assert [type(layer) for layer in average.execution_order()] == [type(layer) for layer in average.layers]


# --- Training ---

def test_fit_learns_digits_and_is_deterministic(digits):
    histories = []
    for _ in range(2):
        model = tiny_cnn(np.random.default_rng(3), dtype=np.float32)
        histories.append(scratch.fit(model, digits.x_train, digits.y_train, digits.x_val, digits.y_val, epochs=10,
                                     batch_size=32, learning_rate=1e-2, seed=7, progress=False, restore_best=False))
    first, second = histories
    assert first["train_loss"][-1] < first["train_loss"][0]
    assert first["val_accuracy"][-1] > 0.93
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert first[key] == second[key]  # bit for bit
    _, test_accuracy = model.evaluate(digits.x_test, digits.y_test)
    assert test_accuracy > 0.93


def test_sgd_with_momentum_lowers_the_loss(digits):
    model = scratch.make_simple_cnn(image_size=8, channels=(4, 8), hidden_units=16, rng=np.random.default_rng(0))
    history = scratch.fit(model, digits.x_train, digits.y_train, digits.x_val, digits.y_val, epochs=3, batch_size=32,
                          learning_rate=0.05, optimizer="sgd", progress=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_divergence_stops_with_a_clear_message(digits):
    model = tiny_cnn(np.random.default_rng(0), dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"diverged: the loss became nan at epoch 1, step 1; lower the learning rate"):
        scratch.fit(model, digits.x_train, digits.y_train, digits.x_val, digits.y_val, epochs=2, learning_rate=1e30,
                    optimizer="sgd", progress=False)


# --- Saving and loading ---

def test_save_load_round_trip_is_exact(tmp_path, digits):
    model = tiny_cnn(np.random.default_rng(0), dtype=np.float32)
    scratch.fit(model, digits.x_train[:256], digits.y_train[:256], digits.x_val, digits.y_val, epochs=1,
                progress=False)
    path = tmp_path / "model.npz"
    model.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    loaded = scratch.CNN.load(path)
    assert repr(loaded) == repr(model)
    assert np.array_equal(loaded.predict_logits(digits.x_test), model.predict_logits(digits.x_test))
    other = tiny_cnn(np.random.default_rng(9), dtype=np.float32).load_weights(path)
    assert np.array_equal(other.predict_logits(digits.x_test), model.predict_logits(digits.x_test))


def every_layer_type(rng):
    """One instance of every registered layer type, chained into a network for 8x8 digits."""
    return [scratch.ConvolutionLayer(1, 4, 3, padding=1, rng=rng), scratch.BatchNormLayer(4),
            scratch.LeakyReLULayer(0.05), scratch.PoolingLayer(2, mode="avg"),  # (N, 4, 4, 4)
            scratch.ConvolutionLayer(4, 6, 3, padding=1, rng=rng), scratch.ELULayer(0.7),
            scratch.PoolingLayer(2, mode="max"), scratch.TanhLayer(),  # (N, 6, 2, 2)
            scratch.FlattenLayer(), scratch.FullyConnectedLayer(24, 16, rng=rng), scratch.SigmoidLayer(),
            scratch.DropoutLayer(0.3, rng=rng), scratch.FullyConnectedLayer(16, 12, rng=rng), scratch.ReLULayer(),
            scratch.FullyConnectedLayer(12, 10, init="xavier", rng=rng)]


def all_subclasses(cls):
    return {sub for direct in cls.__subclasses__() for sub in {direct} | all_subclasses(direct)}


def test_every_layer_type_is_registered_and_saved_and_loaded(tmp_path, digits):
    defined_here = {cls.__name__ for cls in all_subclasses(scratch.Layer) if cls.__module__ == scratch.__name__}
    assert defined_here == set(scratch.LAYER_TYPES)  # (exercises.py subclasses Layer for the learner's functions)
    model = scratch.CNN(every_layer_type(np.random.default_rng(0)), input_shape=(1, 8, 8), num_classes=10)
    assert {type(layer).__name__ for layer in model.layers} == set(scratch.LAYER_TYPES)  # every type is in it
    scratch.fit(model, digits.x_train[:256], digits.y_train[:256], digits.x_val, digits.y_val, epochs=1,
                batch_size=32, progress=False)  # BN statistics
    path = tmp_path / "every_layer.npz"
    model.save(path)
    loaded = scratch.CNN.load(path)
    assert repr(loaded) == repr(model)  # every layer's configuration, e.g. the slopes and the pooling modes
    assert np.array_equal(loaded.predict_logits(digits.x_test), model.predict_logits(digits.x_test))


@pytest.mark.parametrize("layer", every_layer_type(np.random.default_rng(0)), ids=lambda layer: type(layer).__name__)
def test_backward_before_forward_says_to_call_forward(layer):
    with pytest.raises(RuntimeError, match=r"call forward\(x\) before backward\(dout\)"):
        layer.backward(np.ones((2, 4, 8, 8)))


def test_a_model_backward_before_forward_says_to_call_forward():
    model = scratch.make_simple_cnn(rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=r"call forward\(x\) before backward\(dout\)"):
        model.backward(np.zeros((2, 10), np.float32))


def test_corrupt_and_mismatched_files_are_reported(tmp_path):
    model = scratch.make_simple_cnn(rng=np.random.default_rng(0))
    path = tmp_path / "model.npz"
    model.save(path)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.npz: not a readable CNN file"):
        scratch.CNN.load(truncated)
    smaller = scratch.make_simple_cnn(channels=(8, 16), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="has shape"):
        smaller.load_weights(path)
    with pytest.raises(FileNotFoundError):
        scratch.CNN.load(tmp_path / "missing.npz")


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = scratch.make_simple_cnn(rng=np.random.default_rng(0))
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        scratch.make_simple_cnn(rng=np.random.default_rng(1)).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


# --- Bad input ---

def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    model = scratch.make_simple_cnn(rng=rng)
    good = np.zeros((2, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"4 dimensions \(N, C, H, W\), got shape \(2, 28, 28\)"):
        model.forward(good[:, 0])
    with pytest.raises(ValueError, match=r"1 channel\(s\).*got shape \(2, 3, 28, 28\)"):
        model.forward(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(TypeError, match="floating array.*got dtype uint8"):
        model.forward(np.zeros((2, 1, 28, 28), np.uint8))
    bad = good.copy()
    bad[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.forward(bad)
    bad[0, 0, 3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        scratch.fit(model, bad, np.zeros(2, np.int64), good, np.zeros(2, np.int64), progress=False)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values from 0 to 10"):
        scratch.fit(model, good, np.array([0, 10]), good, np.zeros(2, np.int64), progress=False)
    with pytest.raises(ValueError, match="labels must be integers"):
        scratch.fit(model, good, np.array([0.0, 1.0]), good, np.zeros(2, np.int64), progress=False)
    small = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"x_train must hold 28x28 images, the size this model was built for, got "
                                         r"shape \(2, 1, 8, 8\)"):
        scratch.fit(model, small, np.zeros(2, np.int64), good, np.zeros(2, np.int64), progress=False)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        scratch.ConvolutionLayer(1, 2, 3, stride=0)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        scratch.conv2d_forward(good, np.zeros((2, 1, 3, 3)), np.zeros(2), stride=-1)
    with pytest.raises(ValueError, match=r"kernel size 9 is larger than the padded input size 5 \+ 2 \* 1"):
        scratch.ConvolutionLayer(1, 2, 9, padding=1).forward(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="mode must be 'max' or 'avg'"):
        scratch.PoolingLayer(2, mode="median")
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1568\)"):
        model.layers[7].forward(np.zeros((2, 100), np.float32))


@pytest.mark.slow
def test_script_quick_run_reports_accuracy():
    result = subprocess.run([sys.executable, "cnn_from_scratch.py", "--quick"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 85.0


def test_random_shift_moves_each_image_by_at_most_max_shift():
    rng = np.random.default_rng(0)
    x = rng.random((50, 2, 6, 7)).astype(np.float32) + 1  # no zeros, so every shift is recognisable
    shifted = scratch.random_shift(x, 2, rng)
    seen = set()
    for image, result in zip(x, shifted):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                moved = np.zeros_like(image)
                moved[:, max(dy, 0):6 + min(dy, 0), max(dx, 0):7 + min(dx, 0)] = \
                    image[:, max(-dy, 0):6 - max(dy, 0), max(-dx, 0):7 - max(dx, 0)]
                if np.array_equal(moved, result):
                    matches.append((dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # the shifts really are random
    assert np.array_equal(scratch.random_shift(x, 0, rng), x)


# --- Augmentation for drawings: tilt, slant, zoom, shift, pen width ---

def blob(count=40):
    """count copies of a smooth, elongated Gaussian blob in the middle of 28x28: (count, 1, 28, 28)."""
    rows, columns = np.mgrid[0:28, 0:28] - 13.5
    image = np.exp(-columns ** 2 / (2 * 2.5 ** 2) - rows ** 2 / (2 * 4.0 ** 2))  # inside 28x28 when zoomed by 1.1
    return np.repeat(image[None, None], count, axis=0)


def blob_moments(images):
    """Centres (N, 2) in (x, y) order and covariances (N, 2, 2) of the intensity of images (N, 1, H, W)."""
    rows, columns = np.mgrid[0:images.shape[2], 0:images.shape[3]]
    weights = images[:, 0] / images[:, 0].sum(axis=(1, 2), keepdims=True)  # (N, H, W)
    centres = np.stack([(weights * columns).sum(axis=(1, 2)), (weights * rows).sum(axis=(1, 2))], 1)
    dx, dy = columns - centres[:, 0, None, None], rows - centres[:, 1, None, None]
    covariances = np.array([[(weights * dx * dx).sum(axis=(1, 2)), (weights * dx * dy).sum(axis=(1, 2))],
                            [(weights * dx * dy).sum(axis=(1, 2)), (weights * dy * dy).sum(axis=(1, 2))]])
    return centres, covariances.transpose(2, 0, 1)


def test_random_affine_with_no_range_is_the_identity():
    x = np.random.default_rng(0).random((5, 2, 9, 7)).astype(np.float32)
    out = drawings.random_affine(x, np.random.default_rng(1), degrees=0, shear=0, zoom=0, translate=0)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_random_affine_rotates_slants_zooms_and_shifts_within_its_ranges():
    """Measured on the moments of an elongated blob, one kind of change at a time."""
    x = blob()
    centres, covariances = blob_moments(x)
    rng = np.random.default_rng(0)
    # A rotation about the centre keeps the centre and the two principal variances, and turns the axis.
    turned_centres, turned = blob_moments(drawings.random_affine(x, rng, degrees=25, shear=0, zoom=0, translate=0))
    np.testing.assert_allclose(turned_centres, centres, atol=0.05)
    # (bilinear reading between pixels blurs a little: it adds up to a quarter pixel squared of variance)
    np.testing.assert_allclose(np.linalg.eigvalsh(turned), np.linalg.eigvalsh(covariances), atol=0.25)
    axes = np.degrees(0.5 * np.arctan2(-2 * turned[:, 0, 1], turned[:, 0, 0] - turned[:, 1, 1]))  # in (-90, 90]
    angles = axes % 180 - 90  # from the vertical (the blob's axis before), in [-90, 90)
    assert np.abs(angles).max() <= 25.5 and angles.std() > 8  # the vertical axis turned, each image its own way
    # A slant x -= shear * (y - centre) keeps var(y) and changes cov(x, y) by -shear * var(y).
    _, slanted = blob_moments(drawings.random_affine(x, rng, degrees=0, shear=0.4, zoom=0, translate=0))
    shears = -(slanted[:, 0, 1] - covariances[:, 0, 1]) / covariances[:, 1, 1]
    np.testing.assert_allclose(slanted[:, 1, 1], covariances[:, 1, 1], rtol=0.01)
    assert np.abs(shears).max() <= 0.41 and shears.std() > 0.15
    # A zoom scales both standard deviations by the same factor; a shift moves the centre.
    _, zoomed = blob_moments(drawings.random_affine(x, rng, degrees=0, shear=0, zoom=0.1, translate=0))
    factors = np.sqrt(zoomed[:, 1, 1] / covariances[:, 1, 1])
    np.testing.assert_allclose(np.sqrt(zoomed[:, 0, 0] / covariances[:, 0, 0]), factors, atol=0.02)
    assert 0.89 <= factors.min() and factors.max() <= 1.12 and factors.std() > 0.03  # (1.12: the blur again)
    moved, shifted = blob_moments(drawings.random_affine(x, rng, degrees=0, shear=0, zoom=0, translate=2 / 28))
    assert np.abs(moved - centres).max() <= 2.01 and (moved - centres).std() > 0.7
    np.testing.assert_allclose(shifted, covariances, atol=0.26)  # the blur of a fractional shift


def test_random_stroke_width_blends_towards_one_dilation_or_erosion():
    x = np.random.default_rng(0).random((30, 1, 8, 8))  # float64, so that the blend fractions are exact
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    neighbours = [padded[:, :, 1 + dy:9 + dy, 1 + dx:9 + dx] for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    dilated, eroded = np.max(neighbours, axis=0), np.min(neighbours, axis=0)  # each pixel and its 4 neighbours
    for thinner, thicker, target in ((0.0, 1.0, dilated), (1.0, 0.0, eroded)):
        out = drawings.random_stroke_width(x, np.random.default_rng(1), thinner=thinner, thicker=thicker)
        assert out.dtype == x.dtype
        fractions = (out - x) / np.where(target == x, np.nan, target - x)  # one blend fraction per image, in [0, 1]
        spread = np.nanmax(fractions, axis=(1, 2, 3)) - np.nanmin(fractions, axis=(1, 2, 3))
        assert spread.max() < 1e-4 and np.nanmin(fractions) >= -1e-6 and np.nanmax(fractions) <= 1 + 1e-6
    assert drawings.random_stroke_width(x.astype(np.float32), np.random.default_rng(1)).dtype == np.float32
    unchanged = drawings.random_stroke_width(x, np.random.default_rng(1), thinner=0, thicker=0)
    np.testing.assert_array_equal(unchanged, x)
    thick = drawings.random_stroke_width(x, np.random.default_rng(1), thinner=0, thicker=2)
    assert (thick.sum(axis=(1, 2, 3)) >= x.sum(axis=(1, 2, 3))).all()


def test_drawing_augmentation_is_seeded_and_the_batches_take_an_augmentation_function():
    x = blob(8).astype(np.float32)
    first, again = (drawings.drawing_augmentation(x, np.random.default_rng(4)) for _ in range(2))
    assert first.shape == x.shape and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    # training_batches calls the function on every batch, with the run's rng; the identity changes nothing.
    rng = np.random.default_rng(0)
    images, labels = rng.random((96, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 96)
    shapes = []

    def identity(batch, batch_rng):
        shapes.append(batch.shape)
        return batch

    augmented, plain = (list(scratch.training_batches(images, labels, 64, np.random.default_rng(5), augment))
                        for augment in (identity, None))
    assert shapes == [(64, 1, 8, 8), (32, 1, 8, 8)]
    for (x_augmented, y_augmented), (x_plain, y_plain) in zip(augmented, plain):
        np.testing.assert_array_equal(x_augmented, x_plain)
        np.testing.assert_array_equal(y_augmented, y_plain)
    model = scratch.make_simple_cnn(image_size=8, channels=(4, 8), hidden_units=16, rng=np.random.default_rng(0))
    history = scratch.fit(model, images, labels, images[:8], labels[:8], epochs=1, augment=True,
                          augmentation=drawings.drawing_augmentation, progress=False)
    assert np.isfinite(history["train_loss"][0])
