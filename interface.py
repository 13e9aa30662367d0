"""The contract that cnn_from_scratch.py, cnn_pytorch.py and cnn_keras.py share, in NumPy alone.

The three framework modules train the same networks with the same arguments, defaults, errors and
history. What makes that true without writing it three times lives here: the checks of what a user
passes in and their error messages, the learning-rate schedules, the history's keys, the training
clock and the hook through which the experiments watch a training loop, the divergence error, the
shift augmentation (so that all three draw the same shifts from the same seed), and atomic saving.
None of it is about how a CNN works: the lesson starts in cnn_from_scratch.py.

In a REPL:
    >>> from interface import learning_rate_schedule
    >>> learning_rate_schedule(2e-3, 8, "cosine").round(5)
    array([0.002  , 0.00195, 0.00171, 0.00135, 0.001  , 0.00065, 0.00029, 0.00005])

tests/test_conformance.py holds the three modules to this contract.
"""
import os
import tempfile
import time
from contextlib import contextmanager

import numpy as np

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant", "one_cycle")
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")
AUGMENT_SHIFT = 2  # fit(augment=True) in every module: random shifts of up to 2 pixels (random_shift)


# --- Checks: what a user passes in, and the same error for it in every module ---

def check_images(x, channels=None, name="x"):
    """Raise a clear error unless x is a finite floating array of shape (N, channels, H, W)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape (N, C, H, W), got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a floating array (float32 or float64) scaled to [0, 1], got dtype "
                        f"{x.dtype}; for uint8 images use x.astype(np.float32) / 255")
    if x.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s) in axis 1 (N, C, H, W), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")


def check_image_size(x, image_size, name="x"):
    """Raise ValueError unless the images x of shape (N, C, H, W) are image_size x image_size, the size a
    network with a fully connected layer after its convolutions was built for."""
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        raise ValueError(f"{name} must hold {image_size}x{image_size} images, the size this model was built for, "
                         f"got shape {tuple(x.shape)} (N, C, H, W)")


def check_labels(y, num_examples, num_classes):
    """Raise a clear error unless y is an integer array of shape (N,) with values in [0, num_classes)."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (num_examples,):
        raise ValueError(f"labels must be integers of shape ({num_examples},), got dtype {y.dtype} shape {y.shape}")
    if num_examples and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}")


def check_kernel_size(kernel_size):
    """'Same' padding, k // 2 on every side, keeps H and W only for an odd kernel: even sizes are refused."""
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size!r}")


def check_pair(value, name, minimum=1):
    """Turn an int or an (height, width) pair into a checked tuple of two ints."""
    if isinstance(value, (int, np.integer)):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a (height, width) pair of such ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_choice(value, choices, name):
    """Raise ValueError unless value is one of choices (a schedule, an optimizer, a model name, ...)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_fit_arguments(x_train, y_train, x_val, y_val, channels, num_classes, epochs, batch_size, augment):
    """The checks that the fit of all three modules makes, with the same errors: images and labels
    (check_images, check_labels), positive epochs and batch_size, and augment a bool."""
    check_images(x_train, channels, name="x_train")
    check_labels(y_train, len(x_train), num_classes)
    check_images(x_val, channels, name="x_val")
    check_labels(y_val, len(x_val), num_classes)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(augment, (bool, np.bool_)):
        raise TypeError(f"augment must be True or False, got {augment!r}")


def check_betas(betas):
    """Adam's (beta1, beta2), each in [0, 1); returns them as floats."""
    try:
        beta1, beta2 = (float(beta) for beta in betas)
        valid = 0 <= beta1 < 1 and 0 <= beta2 < 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
    return beta1, beta2


def conv_output_size(size, kernel, stride, padding):
    """H_out = 1 + (H + 2 * padding - HH) // stride, flooring like PyTorch; checked to be positive."""
    if kernel > size + 2 * padding:
        raise ValueError(f"kernel size {kernel} is larger than the padded input size {size} + 2 * {padding}")
    return 1 + (size + 2 * padding - kernel) // stride


def pool_geometry(x_shape, kernel_size, stride):
    """A pooling window's ((kh, kw), (sh, sw), H_out, W_out) for x of shape x_shape; stride None: the kernel."""
    (kh, kw) = check_pair(kernel_size, "kernel_size")
    (sh, sw) = (kh, kw) if stride is None else check_pair(stride, "stride")
    _, _, H, W = x_shape
    return (kh, kw), (sh, sw), conv_output_size(H, kh, sh, 0), conv_output_size(W, kw, sw, 0)


def weight_layers(model):
    """The layers of a NumPy CNN that weight transfer copies, in order: convolution (W of 4 dims), fully
    connected (W of 2 dims) and BatchNorm (gamma, beta and the running averages). Raises ValueError for
    any other layer with parameters. (Read from each layer's params, so that this needs no import of
    cnn_from_scratch.)"""
    layers = [layer for layer in model.layers if layer.params]
    for layer in layers:
        is_weight = set(layer.params) == {"W", "b"} and layer.params["W"].ndim in (2, 4)
        if not is_weight and set(layer.params) != {"gamma", "beta"}:
            raise ValueError(f"only convolution, fully connected and BatchNorm layers can be transferred, got "
                             f"{layer!r} with params {sorted(layer.params)}")
    return layers


# --- Training: the schedules, the loss every evaluate reports, the shifts ---

def learning_rate_schedule(base_learning_rate, total_steps, schedule):
    """The learning rate of every step t = 0 .. T - 1, of shape (T,), the same in all three frameworks:
    - "cosine": lr_0 * (1 + cos(pi * t / T)) / 2 (Loshchilov & Hutter 2017), from lr_0 down towards 0;
    - "constant": lr_0 throughout;
    - "one_cycle" (Smith & Topin 2018): a warm-up along half a cosine from lr_0 / 25 up to lr_0 over the
      first quarter of the steps, then half a cosine down to lr_0 / 250,000 (torch's OneCycleLR
      defaults, without its momentum cycle): a short run takes large steps without starting with
      them (experiments.py's recipe ablation measures what the warm-up buys).
    """
    check_choice(schedule, SCHEDULES, "schedule")
    steps = np.arange(total_steps)
    if schedule == "cosine":
        return base_learning_rate * 0.5 * (1 + np.cos(np.pi * steps / total_steps))
    if schedule == "one_cycle":
        warmup = max(1, round(0.25 * total_steps))
        start, end = base_learning_rate / 25, base_learning_rate / 25 / 1e4

        def half_cosine(high, low, fraction):  # from high at fraction 0 to low at fraction 1
            return low + (high - low) * 0.5 * (1 + np.cos(np.pi * fraction))

        rising = half_cosine(base_learning_rate, start, 1 - steps / warmup)  # start at t = 0, lr_0 at t = warmup
        falling = half_cosine(base_learning_rate, end, (steps - warmup) / max(1, total_steps - warmup))
        return np.where(steps < warmup, rising, falling)
    return np.full(total_steps, float(base_learning_rate))


def mean_cross_entropy(logits, y):
    """The loss every evaluate reports: the mean of -log softmax(logits)[y] in the logits' precision,
    log-sum-exp shifted (cnn_from_scratch.softmax_cross_entropy derives it, with its gradient).
    Inputs: logits of shape (N, K); y of shape (N,). Returns: a float."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K), every row's maximum is now 0
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)
    return float(-log_probs[np.arange(len(y)), y].mean())


def random_shift(x, max_shift, rng):
    """Move each image by a random whole number of pixels in [-max_shift, max_shift] along H and W,
    filling with zeros: a cheap augmentation that teaches the network that a digit moved a little
    is the same digit. All three frameworks draw their shifts here, from the run's rng.

    Inputs: x of shape (N, C, H, W); max_shift: int >= 0; rng: np.random.Generator
    Returns: array of shape (N, C, H, W)
    """
    N, C, H, W = x.shape
    s = max_shift
    padded = np.zeros((N, C, H + 2 * s, W + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + H, s:s + W] = x
    shifts = rng.integers(0, 2 * s + 1, size=(N, 2))  # top-left corner of each crop in the padded image
    out = np.empty_like(x)
    # Group the images by their shift, so there are (2s + 1)^2 slice copies instead of N.
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            chosen = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            out[chosen] = padded[chosen, :, dy:dy + H, dx:dx + W]
    return out


def diverged(loss, epoch, step, learning_rate):
    """The error every fit raises when the loss stops being finite (the same text in all three modules)."""
    return FloatingPointError(f"training diverged: the loss became {float(loss)} at epoch {epoch}, step {step}; "
                              f"lower the learning rate (now {float(learning_rate):g})")


# --- The clock and the hook: how the experiments watch a training loop ---

class TrainingClock:
    """Seconds of training, with the time of anything run while it is paused (validation, a test-set
    check in a hook) left out: the clock every fit in the three modules reports."""

    def __init__(self):
        self.start, self.paused_seconds, self.paused_at = time.perf_counter(), 0.0, None

    def seconds(self):
        now = self.paused_at if self.paused_at is not None else time.perf_counter()
        return now - self.start - self.paused_seconds

    def pause(self):
        if self.paused_at is None:
            self.paused_at = time.perf_counter()

    def resume(self):
        if self.paused_at is not None:
            self.paused_seconds += time.perf_counter() - self.paused_at
            self.paused_at = None

    @contextmanager
    def paused(self):
        """with clock.paused(): ... runs the block off the clock."""
        self.pause()
        try:
            yield
        finally:
            self.resume()


class TrainingHook:
    """The one object through which a caller watches or stops a training loop, the same in all three
    modules, in the manner of Keras callbacks and Lightning hooks: each fit creates one when given none.

    The loop calls its moments: start() once, start_epoch(epoch) before each epoch, end_step() after
    each optimizer step (True means stop). The hook keeps the TrainingClock that fit's "seconds" come
    from, and the step count (from 1 over the whole run).
    on_step_end: None, or a function on_step_end(step, seconds) -> bool, called after every step with the
      clock paused (seconds: training so far, its own time left out); a True return ends training.
      experiments.py's time to 99% checks the test accuracy this way.
    """

    def __init__(self, on_step_end=None):
        self.on_step_end = on_step_end
        self.clock, self.epoch, self.step = TrainingClock(), 0, 0

    def start(self):
        self.clock, self.epoch, self.step = TrainingClock(), 0, 0

    def start_epoch(self, epoch):
        self.epoch = epoch

    def end_step(self):
        """Count one optimizer step and ask on_step_end, off the clock, whether to stop."""
        self.step += 1
        if self.on_step_end is None:
            return False
        with self.clock.paused():
            return bool(self.on_step_end(self.step, self.clock.seconds()))


# --- Saving ---

def atomic_save(path, write, suffix=".tmp"):
    """Save with write(temporary_path) to a temporary file in path's folder, then rename it over path.

    os.replace is atomic, so an interrupted or failed save never leaves a half-written file at path
    (the old file stays). Every save in the project goes through here. Returns path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=suffix, prefix=f".{os.path.basename(path)}-", dir=folder)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
