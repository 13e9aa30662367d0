"""Tests of cnn_pytorch.py: shapes and parameter counts (by formula), training, checkpoints,
determinism, clear errors, the --quick script, and weight transfer with the NumPy CNN, which
must give the same logits and the same gradients as PyTorch."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnn_from_scratch as scratch
import cnn_pytorch
from cnn_pytorch import (MLP, DeepCNN, ResNetCNN, SeparableCNN, SimpleCNN, build_model, choose_device,
                         count_parameters, evaluate, fit, load, make_cnn, numpy_to_torch, random_affine, save, set_seed,
                         to_tensors, torch_to_numpy)
from conftest import simple_cnn_arguments
from interface import learning_rate_schedule
from data import load_digits

ROOT = Path(__file__).resolve().parent.parent


# --- Shapes and parameter counts ---
# Each count is written out from the layer sizes: a conv has F * C * HH * WW weights (+ F biases),
# a Linear in * out (+ out), a BatchNorm 2 per channel (scale and shift).

def conv(c_in, c_out, k=3, bias=True):
    return c_out * c_in * k * k + (c_out if bias else 0)


def linear(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def bn(channels):
    return 2 * channels


def residual_block(c_in, c_out):
    projection = conv(c_in, c_out, 1, bias=False) + bn(c_out) if c_in != c_out else 0
    return conv(c_in, c_out, bias=False) + bn(c_out) + conv(c_out, c_out, bias=False) + bn(c_out) + projection


def separable(c_in, c_out):
    return conv(1, c_in, bias=False) * 1 + bn(c_in) + conv(c_in, c_out, 1, bias=False) + bn(c_out)


MODEL_CASES = [
    ("simple", SimpleCNN(channels=(6, 12), kernel_size=5, hidden_units=32),
     conv(1, 6, 5) + conv(6, 12, 5) + linear(12 * 7 * 7, 32) + linear(32, 10)),
    ("simple default", SimpleCNN(), conv(1, 16) + conv(16, 32) + linear(32 * 7 * 7, 128) + linear(128, 10)),
    ("deep", DeepCNN(channels=(8, 16), hidden_units=32),  # biases kept, as in the NumPy and Keras DeepCNN
     conv(1, 8) + conv(8, 8) + conv(8, 16) + conv(16, 16)
     + bn(8) * 2 + bn(16) * 2 + linear(16 * 7 * 7, 32) + bn(32) + linear(32, 10)),
    ("residual", ResNetCNN(channels=(8, 16, 32)),
     conv(1, 8, bias=False) + bn(8) + residual_block(8, 8) + residual_block(8, 16) + residual_block(16, 32)
     + linear(32, 10)),
    ("separable", SeparableCNN(channels=(8, 16, 32)),
     conv(1, 8, bias=False) + bn(8) + separable(8, 8) * 2 + separable(8, 16) + separable(16, 16)
     + separable(16, 32) + separable(32, 32) + linear(32, 10)),
    ("mlp", MLP(hidden_sizes=(64, 32)), linear(28 * 28, 64) + linear(64, 32) + linear(32, 10)),
    ("make_cnn 1", make_cnn(1, base_channels=4, hidden_units=16),
     conv(1, 4) + linear(4 * 14 * 14, 16) + linear(16, 10)),
    ("make_cnn 3", make_cnn(3, "tanh", base_channels=4, hidden_units=16),
     conv(1, 4) + conv(4, 8) + conv(8, 16) + linear(16 * 3 * 3, 16) + linear(16, 10)),
    ("make_cnn 4", make_cnn(4, "elu", base_channels=4, hidden_units=16),
     conv(1, 4) + conv(4, 8) + conv(8, 16) + conv(16, 32) + linear(32 * 1 * 1, 16) + linear(16, 10)),
]


@pytest.mark.parametrize("name, model, expected", MODEL_CASES, ids=[case[0] for case in MODEL_CASES])
def test_output_shape_and_parameter_count(name, model, expected):
    model.eval()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert count_parameters(model) == expected


def test_models_take_other_image_sizes_and_channels():
    x = torch.rand(2, 3, 8, 8)  # e.g. 8x8 digits with 3 channels
    for model in (SimpleCNN(in_channels=3, image_size=8), DeepCNN(in_channels=3, image_size=8),
                  ResNetCNN(in_channels=3), SeparableCNN(in_channels=3), MLP(in_channels=3, image_size=8),
                  make_cnn(3, in_channels=3, image_size=8, num_classes=4)):
        assert model.eval()(x).shape == (2, 4 if isinstance(model, torch.nn.Sequential) else 10)


def test_build_model_names():
    for name, cls in (("simple", SimpleCNN), ("deep", DeepCNN), ("residual", ResNetCNN), ("separable", SeparableCNN),
                      ("mlp", MLP)):
        assert type(build_model(name)) is cls


# --- Clear errors ---

@pytest.mark.parametrize("call, message", [
    (lambda: build_model("vgg"), r"model name must be one of .*'simple'.* got 'vgg'"),
    (lambda: make_cnn(0), r"num_conv_layers must be an int from 1 to 4, got 0"),
    (lambda: make_cnn(5), r"num_conv_layers must be an int from 1 to 4, got 5"),
    (lambda: make_cnn(2.0), r"got 2.0"),
    (lambda: make_cnn(2, activation="softplus"), r"activation must be one of .*'relu'.* got 'softplus'"),
    (lambda: make_cnn(2, pooling="min"), r"pooling must be one of \['avg', 'max', 'stride'\], got 'min'"),
    (lambda: make_cnn(4, padding=False), r"kernel size 3 is larger than the padded input size 1 \+ 2 \* 0"),
    (lambda: choose_device("tpu"), r"device must be .* got 'tpu'"),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- Training ---

def test_training_steps_lower_the_loss_on_a_fixed_batch(digits):
    set_seed(0)
    model = SimpleCNN(channels=(8, 16), hidden_units=32, image_size=8)
    x, y = digits.x_train[:64], digits.y_train[:64]
    loss_before, _ = evaluate(model, x, y)
    history = fit(model, x, y, x, y, epochs=40, batch_size=64, learning_rate=1e-2, schedule="cosine", progress=False,
                  restore_best=False)  # one step per epoch on the same batch
    loss_after, _ = evaluate(model, x, y)
    assert loss_after < 0.5 * loss_before
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]


def run_digits_fit(digits, model_name, seed=0, epochs=3, train_size=None, **kwargs):
    set_seed(seed)
    model = build_model(model_name, image_size=8, **kwargs)
    x_train, y_train = to_tensors(digits.x_train[:train_size], digits.y_train[:train_size], "cpu")
    x_val, y_val = to_tensors(digits.x_val, digits.y_val, "cpu")
    history = fit(model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=32, learning_rate=1e-2,
                  augment=True, augmentation="affine", seed=seed, progress=False,
                  log=lambda line: None)  # 2-pixel shifts would move an 8x8 digit a quarter of its width
    return model, history


def test_fit_learns_digits_and_restores_the_best_epoch(digits):
    model, history = run_digits_fit(digits, "simple", epochs=4, channels=(8, 16), hidden_units=32)
    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"}
    assert all(len(values) == 4 for values in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    x_val, y_val = to_tensors(digits.x_val, digits.y_val, "cpu")
    _, val_accuracy = evaluate(model, x_val, y_val)
    assert val_accuracy == max(history["val_accuracy"])  # the best epoch's weights were restored
    assert val_accuracy > 0.8


def test_a_schedule_shorter_than_the_run_ends_at_its_last_rate(digits):
    """schedule_epochs=1 of 3: one-cycle over the first epoch's steps, then its last rate (the published
    speedrun recipe's span, which the time_to_99 ablation compares with the run's full length)."""
    set_seed(0)
    model = build_model("simple", image_size=8, channels=(4, 8), hidden_units=16)
    x_train, y_train = to_tensors(digits.x_train[:96], digits.y_train[:96], "cpu")  # 3 steps of 32 per epoch
    history = fit(model, x_train, y_train, digits.x_val, digits.y_val, epochs=3, batch_size=32, learning_rate=1e-2,
                  schedule="one_cycle", schedule_epochs=1, progress=False)
    rates = learning_rate_schedule(1e-2, 3, "one_cycle")  # (3,): the span's steps
    np.testing.assert_allclose(history["learning_rate"], [rates[0], rates[-1], rates[-1]], rtol=1e-12)


def test_same_seed_gives_the_same_history(digits):
    # DeepCNN uses dropout, BatchNorm, shuffling and augmentation: every random source is seeded.
    _, first = run_digits_fit(digits, "deep", seed=3, epochs=2, train_size=300, channels=(4, 8),
                                   hidden_units=16)
    _, second = run_digits_fit(digits, "deep", seed=3, epochs=2, train_size=300, channels=(4, 8),
                                   hidden_units=16)
    _, other_seed = run_digits_fit(digits, "deep", seed=4, epochs=2, train_size=300, channels=(4, 8),
                                   hidden_units=16)
    for history in (first, second, other_seed):
        history.pop("seconds")  # wall-clock time is the one entry that may differ
    assert first == second
    assert first != other_seed


def test_nan_loss_stops_with_a_clear_error(digits):
    x, y = to_tensors(digits.x_train[:64].copy(), digits.y_train[:64], "cpu")  # a copy: the tensor shares memory
    x[0, 0, 0, 0] = float("nan")
    model = SimpleCNN(channels=(4, 8), hidden_units=16, image_size=8)
    with pytest.raises(ValueError, match="x_train contains NaN or inf values"):  # tensors are checked as arrays are
        fit(model, x, y, x, y, epochs=1, batch_size=64, progress=False, log=lambda line: None)
    x[0, 0, 0, 0] = 0.0
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf) at epoch 1, step \d+; lower the learning"):
        fit(model, x, y, x, y, epochs=1, batch_size=8, learning_rate=1e30, optimizer="sgd", progress=False,
            log=lambda line: None)


def test_random_affine_keeps_shapes_and_is_the_identity_at_zero():
    x = torch.rand(5, 1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    assert random_affine(x, generator).shape == x.shape
    assert not torch.allclose(random_affine(x, generator), x)
    assert torch.allclose(random_affine(x, generator, degrees=0, translate=0, zoom=0), x, atol=1e-5)


# --- Checkpoints ---

def test_checkpoint_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = build_model("deep", channels=(4, 8), hidden_units=16).eval()
    model.features[0][1].running_mean.fill_(0.5)  # buffers travel too, not only parameters
    path = tmp_path / "sub" / "deep.pt"
    save(model, path, model_name="deep", model_kwargs={"channels": (4, 8), "hidden_units": 16}, history={"a": [1]})
    loaded = load(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["model_name"] == "deep" and checkpoint["history"] == {"a": [1]}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model(x), loaded.eval()(x))
    assert [p.name for p in path.parent.iterdir()] == ["deep.pt"]  # no temp file left behind


def test_corrupt_or_mismatched_checkpoint_gives_a_clear_error(tmp_path):
    model = SimpleCNN(channels=(4, 8), hidden_units=16)
    path = tmp_path / "simple.pt"
    save(model, path)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load(path, model=SimpleCNN(channels=(4, 8), hidden_units=16))
    save(model, path)
    with pytest.raises(ValueError, match="do not fit SimpleCNN"):
        load(path, model=SimpleCNN(channels=(4, 16), hidden_units=16))


# --- The script ---

@pytest.mark.slow
def test_quick_run_of_the_script_reaches_a_sensible_accuracy():
    result = subprocess.run([sys.executable, "cnn_pytorch.py", "--quick", "--no-progress"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    match = re.search(r"test accuracy: ([0-9.]+)%", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 80.0, result.stdout


# --- Weight transfer with the NumPy CNN ---

def torch_grads_as_numpy(torch_model):
    """Gradients of each Conv2d/Linear in the NumPy layout: FC weights transposed to (in, out)."""
    grads = []
    for module in torch_model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            weight_grad = module.weight.grad.numpy()
            grads.append((weight_grad if weight_grad.ndim == 4 else weight_grad.T, module.bias.grad.numpy()))
    return grads


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_numpy_to_torch_gives_the_same_logits_and_gradients(mnist_batch, dtype, tolerance):
    x, y = mnist_batch
    numpy_model = scratch.make_simple_cnn(rng=np.random.default_rng(0), dtype=dtype)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    torch_model = numpy_to_torch(numpy_model, SimpleCNN(**simple_cnn_arguments(numpy_model)).to(torch_dtype))
    x = x.astype(dtype)
    numpy_model.train()
    numpy_logits = numpy_model.forward(x)  # (N, 10)
    torch_logits = torch_model(torch.from_numpy(x))
    assert np.abs(numpy_logits - torch_logits.detach().numpy()).max() < tolerance

    # One backward pass of the mean softmax cross-entropy, on both sides.
    numpy_loss, dlogits = scratch.softmax_cross_entropy(numpy_logits, y)
    numpy_model.backward(dlogits)
    torch_loss = F.cross_entropy(torch_logits, torch.from_numpy(y))
    torch_loss.backward()
    assert abs(float(numpy_loss) - torch_loss.item()) < tolerance
    numpy_layers = [layer for layer in numpy_model.layers if "W" in getattr(layer, "params", {})]
    for layer, (weight_grad, bias_grad) in zip(numpy_layers, torch_grads_as_numpy(torch_model), strict=True):
        scale = max(1.0, np.abs(weight_grad).max())
        assert np.abs(layer.grads["W"] - weight_grad).max() < tolerance * scale, repr(layer)
        assert np.abs(layer.grads["b"] - bias_grad).max() < tolerance * scale, repr(layer)


def test_torch_to_numpy_round_trip(mnist_batch):
    x, _ = mnist_batch
    numpy_model = scratch.make_simple_cnn(rng=np.random.default_rng(1))
    torch.manual_seed(0)
    torch_model = SimpleCNN(**simple_cnn_arguments(numpy_model))  # fresh torch weights, different from the NumPy ones
    torch_to_numpy(torch_model, numpy_model)
    numpy_model.eval()
    assert np.abs(numpy_model.forward(x) - torch_model(torch.from_numpy(x)).detach().numpy()).max() < 1e-4
    copy = numpy_to_torch(numpy_model, SimpleCNN(**simple_cnn_arguments(numpy_model)))
    for key, value in torch_model.state_dict().items():
        assert torch.equal(value, copy.state_dict()[key]), key


def test_weight_transfer_checks_shapes():
    numpy_model = scratch.make_simple_cnn(rng=np.random.default_rng(0))
    reference = SimpleCNN(**simple_cnn_arguments(numpy_model))
    conv_1, conv_2, fc_1 = reference.features[0], reference.features[3], reference.classifier[1]
    torch_model = SimpleCNN(channels=(conv_1.out_channels, conv_2.out_channels), kernel_size=conv_1.kernel_size[0],
                            hidden_units=fc_1.out_features + 1)  # one hidden unit too many
    with pytest.raises(ValueError, match="shape mismatch"):
        numpy_to_torch(numpy_model, torch_model)
    with pytest.raises(ValueError, match="weight layers"):
        numpy_to_torch(numpy_model, make_cnn(3))
    with pytest.raises(ValueError, match="parameters outside Conv2d/Linear/BatchNorm"):
        numpy_to_torch(numpy_model, torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.PReLU()))  # no NumPy PReLU


def test_torchvision_augmentation_path_moves_images_and_trains():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    moved = cnn_pytorch.torchvision_affine(degrees=30)(x)  # one draw of v2.RandomAffine for the batch
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    digits = load_digits()
    x_train, y_train = cnn_pytorch.to_tensors(digits.x_train, digits.y_train, "cpu")
    x_val, y_val = cnn_pytorch.to_tensors(digits.x_val, digits.y_val, "cpu")
    model = cnn_pytorch.SimpleCNN(image_size=8, channels=(4, 8), hidden_units=16)
    history = cnn_pytorch.fit(model, x_train, y_train, x_val, y_val, epochs=2, batch_size=64,
                              augment=True, augmentation="torchvision", seed=0, progress=False, log=lambda line: None)
    assert history["train_loss"][-1] < history["train_loss"][0]
