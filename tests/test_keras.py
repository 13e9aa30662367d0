"""Tests of cnn_keras.py: shapes and parameter counts, a training step, save/load, determinism,
the --quick script run, and clear errors. Models are built once per module (importing
TensorFlow and building graphs is the slow part) and trained only on tiny data."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn_from_scratch
import cnn_keras
from data import load_digits

ROOT = Path(__file__).resolve().parent.parent


# --- Parameter counts, from the architecture written out ---

def conv_params(kernel_size, in_channels, out_channels, bias=True):
    return kernel_size * kernel_size * in_channels * out_channels + (out_channels if bias else 0)


def dense_params(in_features, out_features, bias=True):
    return in_features * out_features + (out_features if bias else 0)


def batchnorm_params(channels):
    return 4 * channels  # gamma, beta (trained) + moving mean, moving variance (count_params counts them too)


def simple_cnn_params(channels=(16, 32), kernel_size=3, hidden_units=128, size=28):
    c1, c2 = channels
    return (conv_params(kernel_size, 1, c1) + conv_params(kernel_size, c1, c2)
            + dense_params(c2 * (size // 4) ** 2, hidden_units) + dense_params(hidden_units, 10))


def deep_cnn_params(channels=(16, 32), convs_per_stage=2, hidden_units=128, size=28):
    total, in_channels = 0, 1  # every conv and dense layer keeps its bias, as in NumPy and PyTorch
    for out_channels in channels:
        for _ in range(convs_per_stage):
            total += conv_params(3, in_channels, out_channels) + batchnorm_params(out_channels)
            in_channels = out_channels
        size //= 2
    return (total + dense_params(in_channels * size * size, hidden_units)
            + batchnorm_params(hidden_units) + dense_params(hidden_units, 10))


def functional_cnn_params(channels=(16, 32, 64)):
    """PyTorch's ResNetCNN: a stem, then one residual block per stage (a projection where channels change)."""
    stem = conv_params(3, 1, channels[0], bias=False) + batchnorm_params(channels[0])
    total, in_channels = stem, channels[0]
    for out_channels in channels:
        total += (conv_params(3, in_channels, out_channels, bias=False) + conv_params(3, out_channels, out_channels,
                                                                                     bias=False)
                  + 2 * batchnorm_params(out_channels))
        if in_channels != out_channels:
            total += conv_params(1, in_channels, out_channels, bias=False) + batchnorm_params(out_channels)
        in_channels = out_channels
    return total + dense_params(in_channels, 10)


def make_cnn_params(num_conv_layers, base_channels=16, hidden_units=128, size=28):
    total, in_channels = 0, 1
    for layer in range(num_conv_layers):
        out_channels = base_channels * 2 ** layer
        total += conv_params(3, in_channels, out_channels)
        in_channels, size = out_channels, size // 2
    return total + dense_params(in_channels * size * size, hidden_units) + dense_params(hidden_units, 10)


def mlp_params(hidden_sizes=(512, 256)):
    total, in_features = 0, 28 * 28
    for hidden_units in hidden_sizes:
        total += dense_params(in_features, hidden_units)
        in_features = hidden_units
    return total + dense_params(in_features, 10)


@pytest.fixture(scope="module")
def models():
    built = {name: cnn_keras.build_model(name) for name in ("simple", "deep", "functional", "mlp")}
    for depth in range(1, 5):
        built[f"cnn{depth}"] = cnn_keras.make_cnn(depth, activation="elu")
    return built


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (cnn_keras.to_channels_last(data.x_train), data.y_train,
            cnn_keras.to_channels_last(data.x_val), data.y_val)


def test_output_shapes_and_parameter_counts(models):
    expected = {"simple": simple_cnn_params(), "deep": deep_cnn_params(), "functional": functional_cnn_params(),
                "mlp": mlp_params(), **{f"cnn{depth}": make_cnn_params(depth) for depth in range(1, 5)}}
    # The formula against an independent count: the NumPy SimpleCNN's own parameters.
    assert simple_cnn_params() == cnn_from_scratch.make_simple_cnn().num_parameters()
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    for name, model in models.items():
        assert model.predict(x, verbose=0).shape == (3, 10), name
        assert model.count_params() == expected[name], name


def test_sequential_alias_and_simple_arguments():
    model = cnn_keras.build_model("sequential", channels=(8, 12), kernel_size=5, hidden_units=20)
    assert model.count_params() == simple_cnn_params((8, 12), 5, 20)


def test_to_channels_last_moves_the_channel_axis():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # (N, C, H, W)
    y = cnn_keras.to_channels_last(x)
    assert y.shape == (2, 4, 5, 3)
    assert y[1, 2, 3, 0] == x[1, 0, 2, 3]
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        cnn_keras.to_channels_last(x[0])


def test_training_steps_lower_the_loss_on_a_fixed_batch(digits):
    x_train, y_train, _, _ = digits
    cnn_keras.set_seed(0)
    model = cnn_keras.make_simple_cnn(image_size=x_train.shape[1])
    x, y = x_train[:64], y_train[:64]
    loss_before, _ = cnn_keras.evaluate(model, x, y)  # any model, compiled or not
    history = cnn_keras.fit(model, x, y, x, y, epochs=10, batch_size=64, learning_rate=3e-3, schedule="plateau",
                            progress=False, restore_best=False)  # one step per epoch on the same batch
    loss_after, _ = cnn_keras.evaluate(model, x, y)
    assert loss_after < 0.8 * loss_before
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_same_seed_gives_the_same_history(digits, tmp_path):
    x_train, y_train, x_val, y_val = digits
    histories = []
    for run in range(2):
        cnn_keras.set_seed(0)  # seeds and turns on TensorFlow's deterministic ops
        model = cnn_keras.make_simple_cnn(image_size=x_train.shape[1], augment=True)
        history = cnn_keras.fit(model, x_train[:512], y_train[:512], x_val, y_val, epochs=2, batch_size=64,
                                run_dir=tmp_path / f"run{run}", progress=False)
        history.pop("seconds")  # wall-clock time is the one entry that may differ
        histories.append(history)
    assert histories[0] == histories[1]
    assert set(histories[0]) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert (tmp_path / "run0" / "best.keras").is_file() and (tmp_path / "run0" / "history.csv").is_file()


def test_label_smoothing_is_the_smoothed_cross_entropy_on_sparse_labels(digits, tmp_path):
    x_train, y_train, x_val, y_val = digits
    cnn_keras.set_seed(0)
    model = cnn_keras.make_simple_cnn(image_size=x_train.shape[1])
    cnn_keras.compile_model(model, schedule="constant", label_smoothing=0.1)
    logits = np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32)
    labels = np.array([0, 3, 9, 1, 1, 7])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))  # (6, 10)
    target = 0.9 * np.eye(10)[labels] + 0.1 / 10  # (6, 10), as F.cross_entropy(label_smoothing=0.1)
    np.testing.assert_allclose(np.asarray(model.loss(labels, logits)), -(target * log_softmax).sum(axis=1), rtol=1e-5)
    history = cnn_keras.fit(model, x_train[:128], y_train[:128], x_val, y_val, epochs=1, label_smoothing=0.1,
                            run_dir=tmp_path, progress=False)  # ModelCheckpoint saves the model with this loss
    assert np.isfinite(history["train_loss"][0]) and (tmp_path / "best.keras").is_file()
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        cnn_keras.compile_model(model, schedule="constant", label_smoothing=1.5)


def test_save_load_round_trip_is_exact(models, tmp_path):
    x = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    cnn_keras.set_seed(0)
    augmented = cnn_keras.make_functional_cnn(augment=True)  # BatchNorm, skips and augmentation layers
    for name, model in (("simple", models["simple"]), ("functional_augmented", augmented)):
        path = cnn_keras.save(model, tmp_path / f"{name}.keras")
        loaded = cnn_keras.load(path)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        assert loaded.count_params() == model.count_params()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["functional_augmented.keras", "simple.keras"]  # no temp files


def test_corrupt_or_missing_file_gives_a_clear_error(models, tmp_path):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not a valid .keras file"):
        cnn_keras.load(garbage)
    good = cnn_keras.save(models["mlp"], tmp_path / "mlp.keras")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.keras"):
        cnn_keras.load(truncated)
    with pytest.raises(FileNotFoundError, match="no saved Keras model"):
        cnn_keras.load(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="'.keras'"):
        cnn_keras.save(models["mlp"], tmp_path / "model.h5")


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"model name must be one of .* got 'resnet'"):
        cnn_keras.build_model("resnet")
    for depth in (0, 5, 2.0):
        with pytest.raises(ValueError, match=rf"num_conv_layers must be an int from 1 to 4, got {depth!r}"):
            cnn_keras.make_cnn(depth)
    with pytest.raises(ValueError, match=r"activation must be one of .*'tanh'.* got 'softplus'"):
        cnn_keras.make_cnn(2, activation="softplus")
    with pytest.raises(ValueError, match="kernel_size must be an odd"):
        cnn_keras.make_simple_cnn(kernel_size=4)
    with pytest.raises(ValueError, match=r"schedule must be one of \[.*'plateau', 'warmup_cosine'\], got 'linear'"):
        cnn_keras.compile_model(cnn_keras.make_mlp(), schedule="linear")


@pytest.mark.slow
def test_quick_script_run_reaches_a_sensible_accuracy(tmp_path):
    result = subprocess.run([sys.executable, "cnn_keras.py", "--quick", "--run-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", result.stdout).group(1))
    assert 70.0 < accuracy <= 100.0  # 4,000 images and one epoch: far from 99%, far above chance (10%)
    assert "Total params: 206,922" in result.stdout
