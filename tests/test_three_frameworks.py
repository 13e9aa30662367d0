"""The project's proof: one SimpleCNN, three frameworks, the same numbers.

The NumPy SimpleCNN of cnn_from_scratch.py gets its weights from a seeded generator; the same
weights are copied into the PyTorch SimpleCNN (NCHW, like NumPy) and into the Keras SimpleCNN
(NHWC, with the Flatten permutation). On real MNIST test images the three must give the same
logits (float32, max absolute difference < 1e-4), NumPy and PyTorch (and Keras) must give the
same parameter gradients after one backward pass, and copying weights back to NumPy must be exact.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnn_from_scratch
import cnn_keras
import cnn_pytorch
import frameworks
from cnn_keras import tf  # cnn_keras sets the backend and TensorFlow's log level before importing it
from conftest import simple_cnn_arguments

LOGIT_TOLERANCE = 1e-4  # float32: the three sum the same products in different orders
GRADIENT_TOLERANCE = 1e-5  # rel_error = max|a - b| / max(|a|, |b|), float32


def numpy_weights(numpy_model):
    """{(layer index, key): copy of the array} for every parameter of a NumPy model."""
    return {(index, key): value.copy() for index, layer in enumerate(numpy_model.layers)
            for key, value in layer.params.items()}


@pytest.fixture(scope="module")
def numpy_model():
    rng = np.random.default_rng(0)
    model = cnn_from_scratch.make_simple_cnn(rng=rng)
    for layer in model.layers:  # biases start at 0; make them nonzero so that their transfer is tested too
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0.0, 0.1, size=layer.params["b"].shape)
    return model.eval()


@pytest.fixture(scope="module")
def torch_model(numpy_model):
    model = cnn_pytorch.SimpleCNN(**simple_cnn_arguments(numpy_model))
    return cnn_pytorch.numpy_to_torch(numpy_model, model).eval()


@pytest.fixture(scope="module")
def keras_model(numpy_model):
    model = cnn_keras.make_simple_cnn(**simple_cnn_arguments(numpy_model))
    return cnn_keras.numpy_to_keras(numpy_model, model)


def test_same_logits_in_numpy_pytorch_and_keras(numpy_model, torch_model, keras_model, mnist_batch):
    x, _ = mnist_batch
    numpy_logits = numpy_model.forward(x)  # (N, 10)
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(x)).numpy()
    keras_logits = cnn_keras.predict_logits(keras_model, cnn_keras.to_channels_last(x))
    assert numpy_logits.dtype == torch_logits.dtype == keras_logits.dtype == np.float32
    assert numpy_logits.std() > 0.1  # logits of real size, so agreeing to 1e-4 means something
    assert np.abs(numpy_logits - torch_logits).max() < LOGIT_TOLERANCE
    assert np.abs(numpy_logits - keras_logits).max() < LOGIT_TOLERANCE
    assert np.abs(torch_logits - keras_logits).max() < LOGIT_TOLERANCE


def test_keras_without_the_flatten_permutation_is_wrong(numpy_model, keras_model, mnist_batch):
    """The classic trap is real: copying the first Dense kernel without permuting its rows runs
    without error and gives different logits."""
    x, _ = mnist_batch
    wrong = cnn_keras.make_simple_cnn(**simple_cnn_arguments(numpy_model))
    wrong.set_weights(keras_model.get_weights())
    first_dense = next(layer for layer in wrong.layers if isinstance(layer, cnn_keras.layers.Dense))
    fc = next(layer for layer in numpy_model.layers if isinstance(layer, cnn_from_scratch.FullyConnectedLayer))
    first_dense.set_weights([fc.params["W"], fc.params["b"]])  # (C * H * W, out) rows read as (H * W * C, out)
    difference = np.abs(cnn_keras.predict_logits(wrong, cnn_keras.to_channels_last(x)) - numpy_model.forward(x))
    assert difference.max() > 100 * LOGIT_TOLERANCE


def test_same_gradients_in_numpy_and_pytorch(numpy_model, torch_model, mnist_batch):
    x, y = mnist_batch
    numpy_model.train()  # no dropout or BatchNorm in SimpleCNN, so train and eval compute the same thing
    numpy_logits = numpy_model.forward(x)
    numpy_loss, dlogits = cnn_from_scratch.softmax_cross_entropy(numpy_logits, y)
    numpy_model.backward(dlogits)
    numpy_model.eval()

    torch_model.zero_grad()
    torch_loss = F.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert abs(float(numpy_loss) - torch_loss.item()) < 1e-5

    torch_layers = [m for m in torch_model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    numpy_layers = [layer for layer in numpy_model.layers if "W" in layer.params]
    assert len(torch_layers) == len(numpy_layers) == 4
    for numpy_layer, torch_layer in zip(numpy_layers, torch_layers):
        weight_grad = torch_layer.weight.grad.numpy()
        weight_grad = weight_grad if weight_grad.ndim == 4 else weight_grad.T  # Linear (out, in) -> (in, out)
        assert cnn_from_scratch.rel_error(numpy_layer.grads["W"], weight_grad) < GRADIENT_TOLERANCE, numpy_layer
        assert cnn_from_scratch.rel_error(numpy_layer.grads["b"], torch_layer.bias.grad.numpy()) < GRADIENT_TOLERANCE


def test_same_gradients_in_numpy_and_keras(numpy_model, keras_model, mnist_batch):
    x, y = mnist_batch
    numpy_model.train()
    numpy_loss, dlogits = cnn_from_scratch.softmax_cross_entropy(numpy_model.forward(x), y)
    numpy_model.backward(dlogits)
    numpy_model.eval()

    loss_function = cnn_keras.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        keras_loss = loss_function(y, keras_model(cnn_keras.to_channels_last(x), training=True))
    gradients = tape.gradient(keras_loss, keras_model.trainable_weights)
    assert abs(float(numpy_loss) - float(keras_loss)) < 1e-5
    # A gradient has the layout of its weight, so the weight mapping also maps gradients: load them
    # into a twin Keras model as if they were weights and copy that into a twin NumPy model.
    gradient_model = cnn_keras.make_simple_cnn(**simple_cnn_arguments(numpy_model))
    gradient_model.set_weights([np.asarray(gradient) for gradient in gradients])
    keras_gradients = cnn_keras.keras_to_numpy(gradient_model, copy.deepcopy(numpy_model))
    for numpy_layer, gradient_layer in zip(numpy_model.layers, keras_gradients.layers):
        for key in numpy_layer.params:
            assert cnn_from_scratch.rel_error(numpy_layer.grads[key], gradient_layer.params[key]) < GRADIENT_TOLERANCE


def test_round_trips_back_to_numpy_are_exact(numpy_model, torch_model, keras_model):
    original = numpy_weights(numpy_model)
    for copy_back, framework_model in ((cnn_pytorch.torch_to_numpy, torch_model),
                                       (cnn_keras.keras_to_numpy, keras_model)):
        target = copy.deepcopy(numpy_model)
        for layer in target.layers:
            for value in layer.params.values():
                value[...] = 0.0
        copy_back(framework_model, target)
        restored = numpy_weights(target)
        assert restored.keys() == original.keys()
        for key in original:
            np.testing.assert_array_equal(restored[key], original[key], err_msg=f"{copy_back.__name__} {key}")


def test_keras_to_numpy_to_keras_is_exact(numpy_model):
    cnn_keras.set_seed(1)
    trained_like = cnn_keras.make_simple_cnn(**simple_cnn_arguments(numpy_model))  # fresh Keras weights
    middle = cnn_keras.keras_to_numpy(trained_like, copy.deepcopy(numpy_model))
    back = cnn_keras.numpy_to_keras(middle, cnn_keras.make_simple_cnn(**simple_cnn_arguments(numpy_model)))
    for before, after in zip(trained_like.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_transfer_rejects_a_mismatched_model(numpy_model):
    arguments = simple_cnn_arguments(numpy_model)
    wider = cnn_keras.make_simple_cnn(**{**arguments, "hidden_units": arguments["hidden_units"] + 1})
    with pytest.raises(ValueError, match="shape mismatch"):
        cnn_keras.numpy_to_keras(numpy_model, wider)
    with pytest.raises(ValueError, match=r"weight layers|layer kinds differ"):
        cnn_keras.numpy_to_keras(numpy_model, cnn_keras.make_deep_cnn())
    with pytest.raises(ValueError, match="weight layers"):
        cnn_keras.numpy_to_keras(numpy_model, cnn_keras.make_mlp())


# --- The shared interface: set_seed, build_model, fit, evaluate, count_parameters ---

MODULES = {"numpy": cnn_from_scratch, "pytorch": cnn_pytorch, "keras": cnn_keras}


@pytest.mark.parametrize("options", [
    dict(),
    dict(pooling="avg", activation="tanh"),
    dict(pooling="stride", activation="leaky_relu", num_conv_layers=3),
    dict(padding=False, activation="sigmoid"),
    dict(activation="linear", num_conv_layers=1),
    dict(batch_norm=True, dropout=0.3),
], ids=["default", "avg-tanh", "stride-leaky", "valid-sigmoid", "linear", "batchnorm"])
def test_make_cnn_builds_the_same_network_in_all_three(options, mnist_batch):
    images, _ = mnist_batch
    numpy_model = cnn_from_scratch.make_cnn(base_channels=4, hidden_units=16, rng=np.random.default_rng(0), **options)
    rng = np.random.default_rng(1)
    for layer in numpy_model.layers:  # BatchNorm: random scales, shifts and running averages, so that they matter
        if isinstance(layer, cnn_from_scratch.BatchNormLayer):
            size = layer.num_features
            layer.set_params("a test", gamma=rng.uniform(0.5, 1.5, size).astype(np.float32),
                             beta=rng.normal(0, 0.2, size).astype(np.float32),
                             running_mean=rng.normal(0, 0.2, size).astype(np.float32),
                             running_var=rng.uniform(0.5, 1.5, size).astype(np.float32))
    torch_model = cnn_pytorch.numpy_to_torch(numpy_model, cnn_pytorch.make_cnn(base_channels=4, hidden_units=16,
                                                                               **options))
    expected = numpy_model.eval().forward(images)  # (64, 10)
    with torch.no_grad():
        assert np.abs(torch_model.eval()(torch.from_numpy(images)).numpy() - expected).max() < LOGIT_TOLERANCE
    assert cnn_from_scratch.count_parameters(numpy_model) == cnn_pytorch.count_parameters(torch_model)
    keras_model = cnn_keras.make_cnn(base_channels=4, hidden_units=16, **options)
    assert cnn_keras.count_parameters(keras_model) == cnn_from_scratch.count_parameters(numpy_model)
    if options.get("pooling") != "stride":  # Keras pads a stride-2 convolution with its own layer (see make_cnn)
        cnn_keras.numpy_to_keras(numpy_model, keras_model)
        logits = cnn_keras.predict_logits(keras_model, cnn_keras.to_channels_last(images))
        assert np.abs(logits - expected).max() < LOGIT_TOLERANCE


@pytest.mark.parametrize("augment", [False, True])
def test_fit_gives_the_same_history_keys_and_the_same_training_in_all_three(augment, mnist):
    """Same initial weights, same batches in the same order (and, with augment, the same shifts), fit's
    shared defaults (Adam, cosine schedule): after 2 epochs the three frameworks hold the same weights,
    up to float32 rounding."""
    data = mnist
    x_train, y_train, x_val, y_val = data.x_train[:256], data.y_train[:256], data.x_val[:100], data.y_val[:100]
    initial = cnn_from_scratch.make_simple_cnn(rng=np.random.default_rng(0))
    cnn_keras.set_seed(0)
    models = {"numpy": copy.deepcopy(initial),
              "pytorch": cnn_pytorch.numpy_to_torch(initial, cnn_pytorch.SimpleCNN()),
              "keras": cnn_keras.numpy_to_keras(initial, cnn_keras.make_simple_cnn())}
    histories, trained = {}, {}
    for name, model in models.items():
        histories[name] = MODULES[name].fit(model, x_train, y_train, x_val, y_val, epochs=2, batch_size=64,
                                            learning_rate=2e-3, seed=0, augment=augment, progress=False,
                                            restore_best=False)
        trained[name] = copy.deepcopy(initial)
    cnn_pytorch.torch_to_numpy(models["pytorch"], trained["pytorch"])
    cnn_keras.keras_to_numpy(models["keras"], trained["keras"])
    trained["numpy"] = models["numpy"]
    for name, history in histories.items():
        assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"}
        assert all(len(values) == 2 for values in history.values())
        np.testing.assert_allclose(history["train_loss"], histories["numpy"]["train_loss"], rtol=1e-3)
        np.testing.assert_allclose(history["learning_rate"], [2e-3, 1e-3], rtol=1e-6)  # cosine at t = 0 and T / 2
        # Measured: the same batches leave a mean difference of about 4e-5 (float32 rounding that Adam
        # amplifies in a few weights); another seed's batch order and shifts, about 3e-3.
        differences = np.concatenate([np.abs(value - numpy_layer.params[key]).ravel()
                                      for numpy_layer, layer in zip(trained["numpy"].layers, trained[name].layers)
                                      for key, value in layer.params.items()])
        assert differences.mean() < 3e-4, (name, differences.mean())
        loss, accuracy = MODULES[name].evaluate(models[name], x_val, y_val)
        assert accuracy == pytest.approx(histories[name]["val_accuracy"][-1])


def test_the_speedrun_recipe_trains_alike_in_all_three(mnist):
    """experiments.py's time-to-99% recipe (the speedrun network, Adam with betas (0.7, 0.9), a one-cycle
    schedule up to 0.01) from the same initial weights and batches: the same weights after 2 epochs,
    up to float32 rounding, in all three frameworks."""
    x_train, y_train, x_val, y_val = mnist.x_train[:256], mnist.y_train[:256], mnist.x_val[:100], mnist.y_val[:100]
    initial = cnn_from_scratch.make_speedrun_cnn(rng=np.random.default_rng(0))
    cnn_keras.set_seed(0)
    rates = cnn_from_scratch.learning_rate_schedule(0.01, 8, "one_cycle")  # 2 epochs of 4 batches
    models = {"numpy": copy.deepcopy(initial), "pytorch": cnn_pytorch.build_model("speedrun"),
              "keras": cnn_keras.build_model("speedrun")}
    for name, model in models.items():
        frameworks.copy_numpy_weights(initial, model)
        history = MODULES[name].fit(model, x_train, y_train, x_val, y_val, epochs=2, batch_size=64, learning_rate=0.01,
                                    seed=0, progress=False, schedule="one_cycle", betas=(0.7, 0.9), restore_best=False)
        np.testing.assert_allclose(history["learning_rate"], rates[[0, 4]], rtol=1e-6)  # each epoch's first step
    trained = {"pytorch": cnn_pytorch.torch_to_numpy(models["pytorch"], copy.deepcopy(initial)),
               "keras": cnn_keras.keras_to_numpy(models["keras"], copy.deepcopy(initial))}
    for name, numpy_model in trained.items():
        differences = np.concatenate([np.abs(layer.params[key] - ours.params[key]).ravel()
                                      for ours, layer in zip(models["numpy"].layers, numpy_model.layers)
                                      for key in layer.params])
        assert differences.mean() < 3e-4, (name, differences.mean())
