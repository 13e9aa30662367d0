"""Convolutional networks for MNIST in Keras 3 (TensorFlow backend): a model zoo, training with
callbacks, `.keras` save/load, and weight transfer to and from the NumPy `CNN` of cnn_from_scratch.py.

What it teaches: the same SimpleCNN as the NumPy and PyTorch code, written with the Sequential
API; a deeper Sequential CNN with BatchNorm and Dropout; a Functional API CNN with skip
connections; augmentation as Keras preprocessing layers inside the model; the standard callbacks
(EarlyStopping, a learning-rate schedule or ReduceLROnPlateau, ModelCheckpoint, CSVLogger); and why
Keras, being channels-last (NHWC), needs one permutation that PyTorch does not when weights move
between frameworks.

Run it:
    python cnn_keras.py --quick                               # seconds: data.py's quick slice, 1 epoch
    python cnn_keras.py --model sequential --epochs 3         # SimpleCNN (alias: --model simple)
    python cnn_keras.py --model functional --epochs 12 --augment --save runs/keras/functional.keras
    python cnn_keras.py --model deep|mlp ... [--batch-size --learning-rate --schedule --patience --seed]
In a REPL:
    >>> import cnn_keras
    >>> model = cnn_keras.build_model("functional"); model.summary()

Determinism: `set_seed` calls `keras.utils.set_random_seed` (Python, NumPy and TensorFlow seeds,
which also fixes the weight initialization and the augmentation draws) and
`tf.config.experimental.enable_op_determinism()`, which makes TensorFlow pick deterministic kernels
(or raise an error where an op has none). Together they promise the same results for the same seed,
program, TensorFlow version and hardware; tests/test_keras.py checks that two CPU runs give the
same history. Across machines or TensorFlow versions results may differ in the last digits.
"""
import contextlib
import os
import sys
import time
import zipfile
from pathlib import Path

# The backend must be chosen before keras is imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
VERBOSE = __name__ == "__main__" and "--verbose" in sys.argv  # read before TensorFlow loads: see below

# TensorFlow and PyTorch's compiler stack (triton, which torch.optim imports lazily) each carry their
# own LLVM: when TensorFlow loads first, the later triton import crashes the whole process. So when
# PyTorch is installed, load its side first; then the two frameworks can share one process (as in
# visualize_features.py and the tests that compare all three implementations).
try:
    import torch._dynamo  # noqa: E402, F401
except ImportError:  # pragma: no cover - the project installs PyTorch, but Keras alone works too
    pass


@contextlib.contextmanager
def native_stderr_silenced(silenced=True):
    """Send what C++ code writes to the process's stderr (file descriptor 2) to /dev/null for a while.

    Loading TensorFlow writes log lines from C++ (the oneDNN notice, "Could not find cuda drivers",
    absl's preamble) that TF_CPP_MIN_LOG_LEVEL no longer silences in TensorFlow 2.21, and that
    mean nothing to a learner. Python's own errors are unaffected: they are printed after this ends.
    `python cnn_keras.py --verbose` (or silenced=False) keeps them.
    """
    if not silenced:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if VERBOSE else "3")
with native_stderr_silenced(not VERBOSE):
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
    from keras import layers  # noqa: E402

    tf.config.list_physical_devices()  # the device search that logs a missing CUDA driver, while silenced
import numpy as np  # noqa: E402

from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist, training_parser  # noqa: E402
from interface import (  # noqa: E402  (NumPy only: the checks, errors and shifts all three modules share)
    AUGMENT_SHIFT, OPTIMIZERS, SCHEDULES as SHARED_SCHEDULES, TrainingHook, atomic_save, check_betas, check_choice,
    check_fit_arguments, check_image_size, check_images, check_kernel_size, check_labels, conv_output_size, diverged,
    learning_rate_schedule, mean_cross_entropy, random_shift, weight_layers)

# --- Seeds ---


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy and TensorFlow in one call (the one place seeds are set); returns
    np.random.default_rng(seed), as the other two modules' set_seed do.

    deterministic=True also asks TensorFlow for deterministic kernels: same seed, same history
    on the same machine. It is global and cannot be switched off again in the same process.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return np.random.default_rng(seed)


# --- The channels-last boundary ---


def to_channels_last(x):
    """Images from data.py, of shape (N, C, H, W), as Keras wants them: (N, H, W, C).

    data.py, NumPy and PyTorch are channels-first (NCHW); Keras on the TensorFlow backend defaults
    to channels-last (NHWC). Images enter Keras through here; channels_first_for turns the model's own
    (N, H, W, C) back into (N, C, H, W) for the shared checks.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got shape {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, C, H, W) -> (N, H, W, C)


def channels_first_for(model, x):
    """Images in the shared layout (N, C, H, W). Keras's own (N, H, W, C), matching the model's input,
    is accepted too and transposed back here; anything else is returned as it is, for the checks."""
    H, W, C = model.input_shape[1:]
    if isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[1:] == (H, W, C) and (H, W, C) != (C, H, W):
        return x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return x


# --- Building blocks ---

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "linear")


def make_activation(name):
    """[a Keras layer] for 'relu', 'leaky_relu', 'elu', 'tanh' or 'sigmoid', with the slopes of the NumPy
    and torch layers; [] for 'linear' (no activation layer at all, as in the other two modules)."""
    check_choice(name, ACTIVATIONS, "activation")
    if name == "linear":
        return []
    if name == "leaky_relu":
        return [layers.LeakyReLU(negative_slope=0.01)]  # Keras's default slope is 0.3; torch and NumPy use 0.01
    if name == "elu":
        return [layers.ELU(alpha=1.0)]
    return [layers.Activation(name)]


def make_batch_norm():
    """BatchNormalization as PyTorch's and the NumPy layer's: moving averages that keep 90% of the old
    value per step (momentum=0.1 there) and epsilon 1e-5.

    Keras's default keeps 99%, which lags behind fast-changing weights and made validation accuracy
    jump between epochs at a high learning rate; its default epsilon is 1e-3.
    """
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


def augmentation_layers(rotation_degrees=10.0, translation=0.1, zoom=0.1, seed=None):
    """Random rotation (up to +-rotation_degrees), shift (fraction of the size) and zoom, per image.

    Keras preprocessing layers transform only when called with training=True, so inside a model
    they augment during fit() and pass images through untouched in evaluate() and predict().
    Empty pixels are filled with 0 (the black background), not reflected. Each layer resamples the
    image on its own; with bilinear interpolation three resamplings blur training digits in a way
    that test digits never are, so pixels are copied with "nearest" instead.
    """
    resample = dict(fill_mode="constant", interpolation="nearest", seed=seed)
    return [
        layers.RandomRotation(rotation_degrees / 360.0, **resample),  # factor is a fraction of 2 pi
        layers.RandomTranslation(translation, translation, **resample),
        layers.RandomZoom(zoom, **resample),
    ]


def input_layers(in_channels, image_size, augment):
    """The Input, of shape (H, W, C) = (image_size, image_size, in_channels), and, with augment=True,
    the augmentation layers that follow it inside the model."""
    return [keras.Input(shape=(image_size, image_size, in_channels))] + (augmentation_layers() if augment else [])


# --- Models ---
# Every model maps images of shape (N, H, W, C) to logits of shape (N, num_classes): no softmax,
# the loss takes from_logits=True, so logits can be compared across the three frameworks.


def make_simple_cnn(channels=(16, 32), kernel_size=3, hidden_units=128, in_channels=1, image_size=28, num_classes=10,
                    augment=False):
    """The project's SimpleCNN with the Sequential API, layer for layer the NumPy `make_simple_cnn`:

    Conv(k, 'same') ReLU MaxPool2 -> Conv ReLU MaxPool2 -> Flatten -> Dense ReLU -> Dense.
    For 28x28 images: 28 -> 14 -> 7, so Flatten gives 7 * 7 * channels[1] features.
    augment (Keras's own): augmentation layers inside the model, active only in training.
    """
    check_kernel_size(kernel_size)
    channels_1, channels_2 = channels
    return keras.Sequential([
        *input_layers(in_channels, image_size, augment),
        layers.Conv2D(channels_1, kernel_size, padding="same"), layers.ReLU(), layers.MaxPooling2D(2),
        layers.Conv2D(channels_2, kernel_size, padding="same"), layers.ReLU(), layers.MaxPooling2D(2),
        layers.Flatten(),  # (N, H', W', C2) -> (N, H' * W' * C2), in H, W, C order (see weight transfer)
        layers.Dense(hidden_units), layers.ReLU(),
        layers.Dense(num_classes),
    ], name="simple_cnn")


def make_deep_cnn(channels=(16, 32), convs_per_stage=2, hidden_units=128, dropout=0.2, in_channels=1, image_size=28,
                  num_classes=10, augment=False):
    """Stages of (Conv-BN-ReLU) x convs_per_stage -> MaxPool2 -> Dropout, then Dense-BN-ReLU-Dropout-Dense.

    Every conv and dense layer keeps its bias, which BatchNorm's shift cancels, so that the network is
    layer for layer the NumPy make_deep_cnn and PyTorch DeepCNN (the same parameter count).
    """
    model_layers = input_layers(in_channels, image_size, augment)
    for out_channels in channels:
        for _ in range(convs_per_stage):
            model_layers += [layers.Conv2D(out_channels, 3, padding="same"), make_batch_norm(), layers.ReLU()]
        model_layers += [layers.MaxPooling2D(2), layers.Dropout(dropout)]
    model_layers += [layers.Flatten(),  # (N, H', W', C) -> (N, H' * W' * C)
                     layers.Dense(hidden_units), make_batch_norm(), layers.ReLU(),
                     layers.Dropout(dropout), layers.Dense(num_classes)]
    return keras.Sequential(model_layers, name="deep_cnn")


def conv_bn_relu(x, filters, kernel_size=3, strides=1):
    """Functional-API Conv (no bias) -> BatchNorm -> ReLU, padded k // 2 on every side as in PyTorch.

    With strides 2, Keras's "same" would pad only the bottom and right; an explicit ZeroPadding2D
    pads like PyTorch's padding=k // 2, so both frameworks compute the same windows.
    """
    if strides > 1:
        x = layers.ZeroPadding2D(kernel_size // 2)(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same" if strides == 1 else "valid",
                      use_bias=False)(x)
    return layers.ReLU()(make_batch_norm()(x))


def residual_block(x, filters, strides=1):
    """out = relu(F(x) + shortcut(x)) with F = Conv-BN-ReLU-Conv-BN (He et al. 2015), as PyTorch's ResidualBlock.

    The shortcut is x itself when shapes match; otherwise a 1x1 convolution with the same stride
    (a "projection") turns (N, H, W, C) into (N, H / strides, W / strides, filters) so the sum is defined.
    """
    residual = conv_bn_relu(x, filters, strides=strides)
    residual = layers.Conv2D(filters, 3, padding="same", use_bias=False)(residual)
    residual = make_batch_norm()(residual)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = make_batch_norm()(shortcut)
    return layers.ReLU()(layers.Add()([residual, shortcut]))


def make_functional_cnn(channels=(16, 32, 64), blocks_per_stage=1, dropout=0.0, in_channels=1, image_size=28,
                        num_classes=10, augment=False):
    """PyTorch's ResNetCNN with the Functional API (the skip connection needs a graph, not a stack):

    stem Conv-BN-ReLU, then one stage of residual blocks per entry of `channels`, every stage after the
    first halving the size with stride 2 (28 -> 28 -> 14 -> 7), global average pooling, Dropout, Dense.
    """
    inputs = keras.Input(shape=(image_size, image_size, in_channels))
    x = inputs
    for layer in augmentation_layers() if augment else []:
        x = layer(x)
    x = conv_bn_relu(x, channels[0])  # (N, 28, 28, C0)
    for stage, filters in enumerate(channels):
        for block in range(blocks_per_stage):
            x = residual_block(x, filters, strides=2 if stage > 0 and block == 0 else 1)  # (N, H', W', filters)
    x = layers.GlobalAveragePooling2D()(x)  # (N, H, W, C) -> (N, C)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="functional_cnn")


def make_cnn(num_conv_layers=2, activation="relu", base_channels=16, kernel_size=3, hidden_units=128,
             pooling="max", padding=True, batch_norm=False, dropout=0.0, in_channels=1, image_size=28, num_classes=10,
             augment=False):
    """The plain CNN of the depth, activation and ablation experiments, as cnn_pytorch.make_cnn:

    num_conv_layers x [Conv -> BatchNorm? -> act -> pool], channels doubling from base_channels, then
    Flatten -> Dense -> BatchNorm? -> act -> Dropout? -> Dense. pooling: "max", "avg" or "stride"
    (no pooling layer; the convolution has stride 2, its padding written out with ZeroPadding2D because
    Keras's "same" would pad only the bottom and right, so weight transfer does not cover that case);
    padding False gives "valid" convolutions.
    Sizes for 28x28 with padding: 28 -> 14 -> 7 -> 3 -> 1 after 1, 2, 3, 4 blocks.
    """
    if not isinstance(num_conv_layers, int) or not 1 <= num_conv_layers <= 4:
        raise ValueError(f"num_conv_layers must be an int from 1 to 4, got {num_conv_layers!r}")
    make_activation(activation)  # raises ValueError for an unknown name before anything is built
    check_choice(pooling, ("max", "avg", "stride"), "pooling")
    check_kernel_size(kernel_size)
    stride, conv_padding = (2 if pooling == "stride" else 1), (kernel_size // 2 if padding else 0)
    model_layers, size = input_layers(in_channels, image_size, augment), image_size
    for block in range(num_conv_layers):
        if conv_padding and stride > 1:  # pad like PyTorch: k // 2 on every side
            model_layers += [layers.ZeroPadding2D(conv_padding)]
        keras_padding = "same" if conv_padding and stride == 1 else "valid"
        model_layers.append(layers.Conv2D(base_channels * 2 ** block, kernel_size, strides=stride,
                                          padding=keras_padding))
        model_layers += [make_batch_norm()] if batch_norm else []
        model_layers += make_activation(activation)
        size = conv_output_size(size, kernel_size, stride, conv_padding)
        if pooling != "stride":
            model_layers.append(layers.MaxPooling2D(2) if pooling == "max" else layers.AveragePooling2D(2))
            size = conv_output_size(size, 2, 2, 0)
    model_layers += [layers.Flatten(),  # (N, H', W', C) -> (N, H' * W' * C)
                     layers.Dense(hidden_units)]
    model_layers += [make_batch_norm()] if batch_norm else []
    model_layers += make_activation(activation)
    model_layers += [layers.Dropout(dropout)] if dropout else []
    model_layers.append(layers.Dense(num_classes))
    return keras.Sequential(model_layers, name=f"cnn_{num_conv_layers}_{activation}")


def make_mlp(hidden_sizes=(512, 256), dropout=0.2, in_channels=1, image_size=28, num_classes=10, augment=False):
    """The fully connected baseline: Flatten -> (Dense ReLU Dropout?) per hidden layer -> Dense."""
    model_layers = input_layers(in_channels, image_size, augment) + [layers.Flatten()]  # (N, H, W, C) -> (N, H*W*C)
    for hidden_units in hidden_sizes:
        model_layers += [layers.Dense(hidden_units), layers.ReLU()] + ([layers.Dropout(dropout)] if dropout else [])
    model_layers.append(layers.Dense(num_classes))
    return keras.Sequential(model_layers, name="mlp")


def make_speedrun_cnn(in_channels=1, image_size=28, num_classes=10, augment=False):
    """The network of the fastest published MNIST recipe, layer for layer the NumPy `make_speedrun_cnn`:
    Conv 5x5 (24) ReLU MaxPool2 -> Conv 3x3 (32) ReLU MaxPool2 -> Flatten -> Dense 256 ReLU -> Dense."""
    return keras.Sequential([
        *input_layers(in_channels, image_size, augment),
        layers.Conv2D(24, 5), layers.ReLU(), layers.MaxPooling2D(2),  # 28 -> 24 -> 12
        layers.Conv2D(32, 3), layers.ReLU(), layers.MaxPooling2D(2),  # 12 -> 10 -> 5
        layers.Flatten(),  # (N, 5, 5, 32) -> (N, 800), in H, W, C order (see weight transfer)
        layers.Dense(256), layers.ReLU(),
        layers.Dense(num_classes),
    ], name="speedrun_cnn")


# The names shared with the other two modules, and the two API names this module teaches as aliases:
# "sequential" is the SimpleCNN of the Sequential API, "functional" the residual network of the Functional API.
MODELS = {"simple": make_simple_cnn, "deep": make_deep_cnn, "residual": make_functional_cnn, "mlp": make_mlp,
          "cnn": make_cnn, "speedrun": make_speedrun_cnn, "sequential": make_simple_cnn,
          "functional": make_functional_cnn}


def build_model(name, **kwargs):
    """Build a model by name: 'simple', 'deep', 'residual', 'mlp', 'cnn' (make_cnn) or 'speedrun', or the aliases
    'sequential' (= 'simple') and 'functional' (= 'residual'); kwargs go to its builder. A .keras file
    holds the whole architecture, so `save` needs nothing more to build it again."""
    check_choice(name, MODELS, "model name")
    return MODELS[name](**kwargs)


# --- Training ---


SCHEDULES = SHARED_SCHEDULES + ("warmup_cosine", "plateau")  # the shared ones, then Keras's own


@keras.saving.register_keras_serializable(package="cnn_keras")
class StepRates(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate read step by step from a precomputed array (interface.learning_rate_schedule),
    so that Keras follows the other two modules' rates exactly."""

    def __init__(self, rates):
        self.rates = np.asarray(rates, dtype=np.float32)  # (T,)

    def __call__(self, step):
        index = keras.ops.minimum(keras.ops.cast(step, "int32"), len(self.rates) - 1)
        return keras.ops.take(keras.ops.convert_to_tensor(self.rates), index)

    def get_config(self):
        return {"rates": self.rates.tolist()}


def make_optimizer(model, optimizer="adam", learning_rate=2e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    """The optimizer, as in the other two modules: "adam" is AdamW (epsilon 1e-8, as in PyTorch and the
    NumPy Adam; Adam when weight_decay is 0) with these betas; "sgd" is SGD with momentum 0.9. Returns it.
    learning_rate: a number or a keras LearningRateSchedule (compile_model passes one). model: the shared
    signature's; a Keras optimizer finds the model's variables when compile_model attaches it."""
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    beta_1, beta_2 = check_betas(betas)
    if optimizer == "adam":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, epsilon=1e-8,
                                      beta_1=beta_1, beta_2=beta_2)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, weight_decay=weight_decay or None)


def compile_model(model, learning_rate=2e-3, weight_decay=0.0, schedule="cosine", total_steps=None, optimizer="adam",
                  betas=(0.9, 0.999), label_smoothing=0.0):
    """Attach the optimizer (make_optimizer) with its schedule, the cross-entropy on logits and accuracy.

    schedule: "cosine": learning_rate * (1 + cos(pi * t / T)) / 2 over the T = total_steps steps, no
    warm-up, as in the other two modules; "constant"; "one_cycle", the rates of
    interface.learning_rate_schedule (StepRates); Keras's own "warmup_cosine" (linear warm-up from
    learning_rate / 10 over the first 20% of the steps, then a cosine down to 0, a one-cycle shape) and
    "plateau" (a constant rate that the ReduceLROnPlateau callback of `fit` halves when the validation
    loss stalls). label_smoothing: the target (1 - label_smoothing) * one_hot + label_smoothing / K, as
    PyTorch's F.cross_entropy; SparseCategoricalCrossentropy has no such option, so the labels are
    one-hot encoded for categorical_crossentropy, which has.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    check_choice(schedule, SCHEDULES, "schedule")
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    check_betas(betas)
    if schedule in ("cosine", "warmup_cosine", "one_cycle") and not total_steps:
        raise ValueError(f"the {schedule} schedule needs total_steps >= 1, got {total_steps!r}")
    if schedule == "one_cycle":
        learning_rate = StepRates(learning_rate_schedule(learning_rate, total_steps, schedule))
    elif schedule == "warmup_cosine":
        warmup_steps = max(1, total_steps // 5)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate / 10, decay_steps=total_steps - warmup_steps, warmup_target=learning_rate,
            warmup_steps=warmup_steps)
    elif schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if label_smoothing:
        num_classes = model.output_shape[-1]

        def smoothed_loss(labels, logits):  # labels of shape (B,) or (B, 1), logits of shape (B, K) -> (B,)
            one_hot = keras.ops.one_hot(keras.ops.reshape(keras.ops.cast(labels, "int32"), (-1,)), num_classes)
            return keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True,
                                                         label_smoothing=label_smoothing)

        loss = smoothed_loss
    model.compile(optimizer=make_optimizer(model, optimizer, learning_rate, weight_decay, betas), loss=loss,
                  metrics=["accuracy"])
    return model


def shuffled_batches(x, y, batch_size, epochs, seed, augmentation=None, augmenter=None):
    """Yield (x_batch, y_batch) for `epochs` epochs, x_batch of shape (B, H, W, C), from x of shape (N, C, H, W).

    Each epoch's order is drawn from np.random.default_rng(seed), and with augmentation="shift" each
    batch's shifts from the same generator: the draws of cnn_from_scratch.fit and cnn_pytorch.fit,
    so that with the same seed the three frameworks see the same batches in the same order.
    augmentation="affine": augmenter (a Keras model of augmentation layers) in training mode instead.
    A plain generator, because Keras reads it in order on one thread (a keras.utils.PyDataset is
    read ahead by worker threads, and its epochs' orders got mixed).
    """
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))  # (N,)
        for start in range(0, len(x), batch_size):
            chosen = order[start:start + batch_size]
            x_batch = x[chosen]  # (B, C, H, W)
            if augmentation == "shift":
                x_batch = random_shift(x_batch, AUGMENT_SHIFT, rng)
            x_batch = to_channels_last(x_batch)  # (B, C, H, W) -> (B, H, W, C)
            yield (augmenter(x_batch, training=True) if augmentation == "affine" else x_batch), y[chosen]


class EpochRecorder(keras.callbacks.Callback):
    """The shared TrainingHook inside Keras's own loop: records each epoch's learning rate (at its first
    step) and its seconds of training on the hook's clock (validation and the hook's own time left out),
    and stops training with interface.diverged, as the other two modules do, when a batch's loss is not
    finite, and when the hook says so."""

    def __init__(self, hook):
        super().__init__()
        self.seconds, self.learning_rate, self.hook, self.epoch_start = [], [], hook, None

    def on_train_begin(self, logs=None):
        self.hook.start()

    def on_epoch_begin(self, epoch, logs=None):
        self.hook.clock.resume()
        self.hook.start_epoch(epoch + 1)
        self.learning_rate.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.epoch_start = self.hook.clock.seconds()

    def on_train_batch_end(self, batch, logs=None):
        if logs and not np.isfinite(logs.get("loss", 0.0)):
            raise diverged(logs["loss"], self.hook.epoch, batch,
                           keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if self.hook.end_step():
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        if self.epoch_start is not None:
            self.seconds.append(self.hook.clock.seconds() - self.epoch_start)
            self.epoch_start = None
        self.hook.clock.pause()  # validation is not training

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()  # an epoch without validation


def training_callbacks(recorder, epochs, patience, restore_best, run_dir, schedule):
    """The callbacks of `fit`: the recorder, EarlyStopping (patience, best weights), ModelCheckpoint and
    CSVLogger with run_dir, and ReduceLROnPlateau for the "plateau" schedule."""
    callbacks = [recorder]
    if patience is not None or restore_best:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=patience if patience is not None else epochs,
            restore_best_weights=restore_best))
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        callbacks += [keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor="val_accuracy", mode="max",
                                                      save_best_only=True),
                      keras.callbacks.CSVLogger(run_dir / "history.csv")]
    if schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2))
    return callbacks


def fit(model, x_train, y_train, x_val, y_val, epochs=5, batch_size=64, learning_rate=2e-3, seed=0, augment=False,
        progress=True, schedule="cosine", optimizer="adam", weight_decay=0.0, restore_best=True, hook=None,
        betas=(0.9, 0.999), augmentation="shift", label_smoothing=0.0, patience=None, run_dir=None,
        extra_callbacks=()):
    """Compile and train `model`; the shared arguments and defaults are those of every module.

    Inputs: x_* of shape (N, C, H, W) as data.py returns them (transposed batch by batch to the model's
    (N, H, W, C); Keras's own (N, H, W, C) is accepted too), y_* of shape (N,) int labels.
    - seed: the data order and the shift draws (the NumPy CNN's generator), so the same seed gives
      the same batches in all three modules; augment: True shifts each training image by up to
      AUGMENT_SHIFT pixels, as everywhere
    - schedule: "cosine", "constant", "one_cycle" or Keras's own "warmup_cosine" and "plateau"; optimizer:
      "adam" (AdamW when weight_decay > 0) or "sgd" (momentum 0.9); betas: Adam's (beta_1, beta_2)
    - restore_best: end with the best validation epoch's weights (False: the last epoch's)
    - hook: an interface.TrainingHook (its clock gives "seconds"; its on_step_end can stop training)
    - progress: Keras's per-epoch output (a bar on a terminal, one line per epoch in a log)
    Keras's own options, after the shared ones: augmentation "affine" (the augmentation_layers: each
    image rotated, shifted and zoomed) instead of "shift"; label_smoothing (as PyTorch's, see
    compile_model; train_loss and val_loss are then the smoothed loss); patience (EarlyStopping on val_accuracy);
    run_dir (ModelCheckpoint of the best epoch to run_dir/best.keras and CSVLogger to
    run_dir/history.csv); extra_callbacks. Choices use the validation split only, never the test set.
    Returns: history, a dict of per-epoch lists: train_loss, train_accuracy, val_loss, val_accuracy,
      learning_rate (at the epoch's first step) and seconds (training only).
    """
    x_train, x_val = channels_first_for(model, x_train), channels_first_for(model, x_val)
    check_fit_arguments(x_train, y_train, x_val, y_val, model.input_shape[-1], model.output_shape[-1], epochs,
                        batch_size, augment)
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        check_image_size(x, model.input_shape[1], name)
    check_choice(augmentation, ("shift", "affine"), "augmentation")
    steps_per_epoch = -(-len(x_train) // batch_size)  # ceil(N / batch_size)
    augmenter = keras.Sequential(augmentation_layers(seed=seed)) if augment and augmentation == "affine" else None
    batches = shuffled_batches(x_train, np.asarray(y_train), batch_size, epochs, seed,
                               augmentation if augment else None, augmenter)
    compile_model(model, learning_rate, weight_decay, schedule, epochs * steps_per_epoch, optimizer, betas,
                  label_smoothing)
    recorder = EpochRecorder(hook or TrainingHook())
    callbacks = training_callbacks(recorder, epochs, patience, restore_best, run_dir, schedule) + list(extra_callbacks)
    verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
    logs = model.fit(batches, steps_per_epoch=steps_per_epoch, validation_data=(to_channels_last(x_val),
                                                                                np.asarray(y_val)),
                     epochs=epochs, shuffle=False, callbacks=callbacks, verbose=verbose).history
    return {"train_loss": logs["loss"], "train_accuracy": logs["accuracy"], "val_loss": logs["val_loss"],
            "val_accuracy": logs["val_accuracy"], "learning_rate": recorder.learning_rate,
            "seconds": recorder.seconds}


def predict_logits(model, x, batch_size=1000):
    """Logits of shape (N, num_classes) for x of shape (N, C, H, W) (or the model's (N, H, W, C)), in
    inference mode (no augmentation, no dropout). Needs no compiled model."""
    x = to_channels_last(channels_first_for(model, x))  # (N, C, H, W) -> (N, H, W, C)
    return np.concatenate([np.asarray(model(x[start:start + batch_size], training=False))
                           for start in range(0, len(x), batch_size)])


def evaluate(model, x, y, batch_size=256):
    """(mean cross-entropy loss, accuracy in [0, 1]) on images of shape (N, C, H, W) (or the model's
    (N, H, W, C)), y of shape (N,); checked as in the other two modules; works on any model, compiled
    or not (the loss is interface.mean_cross_entropy of the logits, in float64)."""
    x = channels_first_for(model, x)
    check_images(x, model.input_shape[-1])
    check_image_size(x, model.input_shape[1])
    check_labels(y, len(x), model.output_shape[-1])
    logits = predict_logits(model, x, batch_size).astype(np.float64)  # (N, num_classes)
    loss = mean_cross_entropy(logits, np.asarray(y))
    return float(loss), float(np.mean(logits.argmax(axis=1) == y))


def count_parameters(model):
    """Number of trainable parameters."""
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


# --- Save and load ---


def save(model, path):
    """Save a model (architecture, weights, optimizer state) as a `.keras` zip archive, atomically.

    The archive is written to a temporary file in the same folder and then renamed over `path`
    (os.replace is atomic), so a crash mid-save never leaves a half-written file at `path`.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Keras 3 saves whole models to a '.keras' file, got {str(path)!r}")
    atomic_save(path, model.save, suffix=".keras")  # Keras wants the .keras suffix on the temporary file too
    return path


def load(path):
    """Load a model saved by `save` (or model.save); a missing or corrupt file gives a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved Keras model at {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a valid .keras file (a .keras file is a zip archive); "
                         f"it is truncated or not a Keras model")
    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a damaged archive; name the file once
        raise ValueError(f"could not load the Keras model in {str(path)!r}: {type(error).__name__}: {error}") from error


# --- Weight transfer with the NumPy CNN ---
# Convolution kernels: the NumPy ConvolutionLayer (like torch's Conv2d) stores W of shape
# (F, C, HH, WW); Keras's Conv2D stores its kernel as (HH, WW, C, F). Both compute
# cross-correlation, so a transpose is the whole story: kernel = W.transpose(2, 3, 1, 0).
#
# Dense kernels are (in_features, out_features), the same layout as the NumPy FullyConnectedLayer's W.
#
# The classic trap is the first Dense layer after Flatten. NumPy and torch flatten (N, C, H, W),
# so input feature number c * H * W + h * W + w is channel c at (h, w). Keras flattens (N, H, W, C),
# so its feature h * W * C + w * C + c is the same pixel. Same numbers, different order: copying W
# as is would give a network that runs without error and predicts garbage. The rows of that
# kernel are permuted: NumPy W (C * H * W, out) -> reshape (C, H, W, out) -> transpose to
# (H, W, C, out) -> reshape (H * W * C, out). keras_to_numpy undoes it in reverse.


def _keras_weight_layers(keras_model):
    """(layer, flatten_shape) for each Conv2D, Dense and BatchNormalization layer in order; flatten_shape
    is the (H, W, C) input shape of a Flatten right before a Dense layer, else None."""
    pairs, flatten_shape = [], None
    for layer in keras_model.layers:
        if isinstance(layer, layers.Flatten):
            flatten_shape = tuple(layer.input.shape[1:])  # (H, W, C) of the activations being flattened
        elif isinstance(layer, layers.BatchNormalization):
            pairs.append((layer, None))
        elif isinstance(layer, (layers.Conv2D, layers.Dense)):
            if not layer.use_bias:
                raise ValueError(f"Keras layer {layer.name!r} has no bias; the NumPy layers always have one")
            pairs.append((layer, flatten_shape if isinstance(layer, layers.Dense) else None))
            flatten_shape = None
        elif layer.weights:
            raise ValueError(f"Keras layer {layer.name!r} ({type(layer).__name__}) has weights but is neither "
                             f"Conv2D nor Dense; only models like the SimpleCNN can be transferred")
    return pairs


def _paired_layers(numpy_model, keras_model):
    """Pair the NumPy and Keras weight layers in order, checking counts, kinds and convolution settings."""
    numpy_layers, keras_layers = weight_layers(numpy_model), _keras_weight_layers(keras_model)
    if len(numpy_layers) != len(keras_layers):
        raise ValueError(f"the NumPy model has {len(numpy_layers)} weight layers, the Keras model "
                         f"{len(keras_layers)}: {[layer.name for layer, _ in keras_layers]}")
    for numpy_layer, (keras_layer, _) in zip(numpy_layers, keras_layers):
        is_batch_norm = "gamma" in numpy_layer.params
        if is_batch_norm != isinstance(keras_layer, layers.BatchNormalization):
            raise ValueError(f"layer kinds differ: NumPy {numpy_layer!r} vs Keras {type(keras_layer).__name__} "
                             f"{keras_layer.name!r}")
        if is_batch_norm:
            continue
        is_conv = numpy_layer.params["W"].ndim == 4
        if is_conv != isinstance(keras_layer, layers.Conv2D):
            raise ValueError(f"layer kinds differ: NumPy {numpy_layer!r} vs Keras {type(keras_layer).__name__} "
                             f"{keras_layer.name!r}")
        if is_conv:
            HH, WW = numpy_layer.params["W"].shape[2:]
            numpy_padding = tuple(np.broadcast_to(getattr(numpy_layer, "padding", 0), 2))
            keras_padding = (HH // 2, WW // 2) if keras_layer.padding == "same" else (0, 0)
            numpy_stride = tuple(np.broadcast_to(getattr(numpy_layer, "stride", 1), 2))
            if keras_layer.padding == "same" and (HH % 2 == 0 or WW % 2 == 0):
                raise ValueError(f"Keras layer {keras_layer.name!r}: 'same' padding with an even kernel pads "
                                 f"unevenly, which the NumPy layer cannot do")
            if numpy_padding != keras_padding or numpy_stride != tuple(keras_layer.strides):
                raise ValueError(f"padding/stride differ: NumPy padding {numpy_padding}, stride {numpy_stride} vs "
                                 f"Keras {keras_layer.name!r} padding {keras_layer.padding!r} (= {keras_padding}), "
                                 f"strides {tuple(keras_layer.strides)}")
    return [(numpy_layer, keras_layer, flatten_shape)
            for numpy_layer, (keras_layer, flatten_shape) in zip(numpy_layers, keras_layers)]


BATCH_NORM_ORDER = ("gamma", "beta", "running_mean", "running_var")  # Keras: gamma, beta, moving mean, variance


def numpy_to_keras(numpy_model, keras_model):
    """Copy the weights of a NumPy `CNN` into a Keras model with the same layers, in order. Returns keras_model."""
    for numpy_layer, keras_layer, flatten_shape in _paired_layers(numpy_model, keras_model):
        if "gamma" in numpy_layer.params:
            stores = {**numpy_layer.params, **numpy_layer.buffers}
            keras_layer.set_weights([stores[name] for name in BATCH_NORM_ORDER])  # shapes checked by Keras
            continue
        weight, b = numpy_layer.params["W"], numpy_layer.params["b"]  # here H, W are sizes; `weight` is params["W"]
        if weight.ndim == 4:
            kernel = weight.transpose(2, 3, 1, 0)  # (F, C, HH, WW) -> (HH, WW, C, F)
        elif flatten_shape is not None and len(flatten_shape) == 3:
            H, W, C = flatten_shape
            if weight.shape[0] != C * H * W:
                raise ValueError(f"NumPy W {weight.shape} cannot follow a Flatten of (H, W, C) = {flatten_shape}")
            kernel = (weight.reshape(C, H, W, -1)  # (C * H * W, out) -> (C, H, W, out)
                      .transpose(1, 2, 0, 3)  # (C, H, W, out) -> (H, W, C, out)
                      .reshape(H * W * C, -1))  # (H, W, C, out) -> (H * W * C, out)
        else:
            kernel = weight  # (in, out) on both sides
        if kernel.shape != tuple(keras_layer.kernel.shape) or b.shape != tuple(keras_layer.bias.shape):
            raise ValueError(f"shape mismatch: NumPy W {weight.shape}, b {b.shape} cannot fill Keras layer "
                             f"{keras_layer.name!r} with kernel {tuple(keras_layer.kernel.shape)}, "
                             f"bias {tuple(keras_layer.bias.shape)}")
        keras_layer.set_weights([kernel, b])
    return keras_model


def keras_to_numpy(keras_model, numpy_model):
    """Copy the weights of a Keras model into a NumPy `CNN` with the same layers, in place. Returns numpy_model."""
    for numpy_layer, keras_layer, flatten_shape in _paired_layers(numpy_model, keras_model):
        if "gamma" in numpy_layer.params:
            arrays = dict(zip(BATCH_NORM_ORDER, (np.asarray(weight) for weight in keras_layer.get_weights())))
            numpy_layer.set_params(f"Keras layer {keras_layer.name!r}", **arrays)
            continue
        kernel, bias = (np.asarray(weight) for weight in keras_layer.get_weights())
        if kernel.ndim == 4:
            weight = kernel.transpose(3, 2, 0, 1)  # (HH, WW, C, F) -> (F, C, HH, WW)
        elif flatten_shape is not None and len(flatten_shape) == 3:
            H, W, C = flatten_shape
            weight = (kernel.reshape(H, W, C, -1)  # (H * W * C, out) -> (H, W, C, out)
                      .transpose(2, 0, 1, 3)  # (H, W, C, out) -> (C, H, W, out)
                      .reshape(C * H * W, -1))  # (C, H, W, out) -> (C * H * W, out)
        else:
            weight = kernel
        numpy_layer.set_params(f"Keras layer {keras_layer.name!r}", W=weight, b=bias)
    return numpy_model


# --- Command line ---


def main():
    quick = f"{QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, 1 epoch"
    parser = training_parser("Train a Keras CNN on MNIST.", epochs=3, batch_size=128, learning_rate=3e-3,
                             quick_help=quick)
    parser.add_argument("--model", default="sequential", choices=sorted(MODELS))
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--schedule", default="warmup_cosine", choices=SCHEDULES)
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience in epochs")
    parser.add_argument("--augment", action="store_true", help="augment the training images (see --augmentation)")
    parser.add_argument("--augmentation", default="shift", choices=["shift", "affine"],
                        help=f"with --augment: random shifts of up to {AUGMENT_SHIFT} pixels (shift, the default, as "
                             "in every module) or each image its own rotation, shift and zoom (affine)")
    parser.add_argument("--run-dir", default="runs/keras", help="folder for the best checkpoint and history.csv")
    parser.add_argument("--save", default=None, metavar="PATH", help="save the final (best) model to this .keras file")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own C++ log lines")
    args = parser.parse_args()

    set_seed(args.seed)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"devices {[device.device_type for device in tf.config.list_logical_devices()]}")
    data = load_mnist(seed=args.seed)
    if args.quick:  # a smoke test that finishes in seconds; the accuracy is far from the full run's
        data = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST)
        args.epochs = 1
    print(f"train {data.x_train.shape}, val {data.x_val.shape}, test {data.x_test.shape} (N, C, H, W; "
          f"each batch goes to the model as (N, H, W, C))")

    start = time.perf_counter()
    model = build_model(args.model, in_channels=data.x_train.shape[1], image_size=data.x_train.shape[2],
                        num_classes=data.num_classes)
    model.summary()
    history = fit(model, data.x_train, data.y_train, data.x_val, data.y_val, epochs=args.epochs,
                  batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed, augment=args.augment,
                  schedule=args.schedule, weight_decay=args.weight_decay, augmentation=args.augmentation,
                  patience=args.patience, run_dir=args.run_dir)
    train_seconds = time.perf_counter() - start
    _, val_accuracy = evaluate(model, data.x_val, data.y_val)
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
    print(f"epochs run: {len(history['train_loss'])}, best validation accuracy: {100 * val_accuracy:.2f}%")
    print(f"test accuracy: {100 * test_accuracy:.2f}% (loss {test_loss:.4f}, {len(data.x_test)} images)")
    print(f"training time: {train_seconds:.1f} s")
    if args.save:
        print(f"saved {save(model, args.save)}")


if __name__ == "__main__":
    main()
