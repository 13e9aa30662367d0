"""Convolutional networks for MNIST in PyTorch: a model zoo, a training loop, and weight
transfer to and from the NumPy `CNN` of cnn_from_scratch.py.

What it teaches: the same SimpleCNN as the from-scratch NumPy code, then the tricks that
take MNIST further (BatchNorm, Dropout, residual connections, data augmentation, a one-cycle
learning-rate schedule, early stopping on a validation split), and how PyTorch's parameter
layouts map onto the NumPy ones. The accuracy each reaches is measured in BENCHMARKS.md and
RESULTS.md, with the commands that reproduce it.

Run it:
    python cnn_pytorch.py --quick                       # seconds: data.py's quick slice, 1 epoch
    python cnn_pytorch.py --model deep --epochs 12 --augment --save checkpoints/deep.pt
    python cnn_pytorch.py --model simple|deep|residual|separable|mlp [--epochs --batch-size --learning-rate
                          --schedule --augmentation --seed --device --patience --label-smoothing --no-progress]
In a REPL:
    >>> from cnn_pytorch import build_model, fit, evaluate
    >>> model = build_model("simple"); model
"""
import copy
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist, training_parser
from interface import (AUGMENT_SHIFT, HISTORY_KEYS, OPTIMIZERS, SCHEDULES, TrainingHook, atomic_save, check_betas,
                       check_choice, check_fit_arguments, check_image_size, check_images, check_kernel_size,
                       check_labels, conv_output_size, diverged, learning_rate_schedule, random_shift, weight_layers)

# --- Seeds and device ---


def set_seed(seed):
    """Seed every random number generator this script touches (the one place seeds are set); returns
    np.random.default_rng(seed), as the other two modules' set_seed do."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA
    # CPU kernels are deterministic already; this makes PyTorch warn about the few
    # nondeterministic CUDA kernels instead of silently using them.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def choose_device(name=None):
    """Return torch.device(name), or the best available one: cuda, then mps, then cpu."""
    if name is not None:
        if name.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r}")
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but torch.cuda.is_available() is False")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --- Building blocks ---

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "linear": None}  # "linear": no activation layer at all, as in the other two modules


def make_activation(name):
    """[nn.Module] for an activation name ('relu', 'leaky_relu', 'elu', 'tanh', 'sigmoid'), [] for 'linear'."""
    check_choice(name, ACTIVATIONS, "activation")
    return [] if ACTIVATIONS[name] is None else [ACTIVATIONS[name]()]


def conv_bn_relu(in_channels, out_channels, kernel_size=3, stride=1, groups=1, bias=False):
    """Conv -> BatchNorm -> ReLU; 'same' padding for odd kernels. The conv needs no bias (BatchNorm's
    shift replaces it); bias=True keeps one, for a network that must match the NumPy layers."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                  groups=groups, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def count_parameters(model):
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- Models ---


class SimpleCNN(nn.Module):
    """The project's SimpleCNN, layer for layer the NumPy `make_simple_cnn`:

    Conv(k, padding k//2) ReLU MaxPool2 -> Conv ReLU MaxPool2 -> Flatten -> Linear ReLU -> Linear.

    Inputs: x of shape (N, in_channels, image_size, image_size). Returns logits of shape (N, num_classes).
    """

    def __init__(self, channels=(16, 32), kernel_size=3, hidden_units=128, in_channels=1, image_size=28,
                 num_classes=10):
        super().__init__()
        check_kernel_size(kernel_size)
        channels_1, channels_2 = channels
        padding = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels_1, kernel_size, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels_1, channels_2, kernel_size, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
        )
        size = image_size
        for _ in range(2):  # conv keeps the size for odd kernels, pooling halves it: 28 -> 14 -> 7
            size = conv_output_size(conv_output_size(size, kernel_size, 1, padding), 2, 2, 0)
        self.image_size = image_size  # the size its Linear layer was built for (fit and evaluate check it)
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, C2, size, size) -> (N, C2 * size * size), in C, H, W order like the NumPy FlattenLayer
            nn.Linear(channels_2 * size * size, hidden_units), nn.ReLU(),
            nn.Linear(hidden_units, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class DeepCNN(nn.Module):
    """Stages of (Conv-BN-ReLU) x convs_per_stage -> MaxPool2 -> Dropout, then Linear-BN-ReLU-Dropout-Linear.

    Every conv and linear layer keeps its bias, which BatchNorm's mean subtraction cancels, so that the
    network is layer for layer the NumPy make_deep_cnn and Keras make_deep_cnn (the same count_parameters).

    Inputs: x of shape (N, in_channels, image_size, image_size). Returns logits of shape (N, num_classes).
    """

    def __init__(self, channels=(16, 32), convs_per_stage=2, hidden_units=128, dropout=0.2, in_channels=1,
                 image_size=28, num_classes=10):
        super().__init__()
        layers, size = [], image_size
        for out_channels in channels:
            for _ in range(convs_per_stage):
                layers.append(conv_bn_relu(in_channels, out_channels, bias=True))
                in_channels = out_channels
            layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
            size = conv_output_size(size, 2, 2, 0)  # 28 -> 14 -> 7
        self.features, self.image_size = nn.Sequential(*layers), image_size
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, C, size, size) -> (N, C * size * size)
            nn.Linear(in_channels * size * size, hidden_units), nn.BatchNorm1d(hidden_units), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden_units, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    """out = relu(F(x) + shortcut(x)) with F = Conv-BN-ReLU-Conv-BN (He et al. 2015, "Deep Residual Learning").

    The shortcut is the identity when shapes match, else a 1x1 convolution (a "projection")
    with the same stride, so that the two terms can be added.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResNetCNN(nn.Module):
    """Stem Conv-BN-ReLU, then one stage of residual blocks per entry of `channels` (every stage
    after the first halves the size with stride 2), global average pooling, Linear.

    Inputs: x of shape (N, in_channels, H, W). Returns logits of shape (N, num_classes).
    """

    def __init__(self, channels=(16, 32, 64), blocks_per_stage=1, dropout=0.0, in_channels=1, num_classes=10):
        super().__init__()
        layers = [conv_bn_relu(in_channels, channels[0])]
        in_channels = channels[0]
        for stage, out_channels in enumerate(channels):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1  # 28 -> 28 -> 14 -> 7
                layers.append(ResidualBlock(in_channels, out_channels, stride))
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (N, C, H, W) -> (N, C, 1, 1) -> (N, C)
            nn.Dropout(dropout), nn.Linear(in_channels, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def separable_conv(in_channels, out_channels, stride=1):
    """Depthwise 3x3 conv (one filter per channel, groups=C) then pointwise 1x1 conv (MobileNet, Howard et al. 2017).

    Parameters: C * 3 * 3 + C * F instead of C * F * 3 * 3 for a full convolution (BatchNorm aside).
    """
    return nn.Sequential(conv_bn_relu(in_channels, in_channels, 3, stride=stride, groups=in_channels),
                         conv_bn_relu(in_channels, out_channels, 1))


class SeparableCNN(nn.Module):
    """A full stem convolution, then depthwise-separable convolutions (every stage after the
    first downsamples with stride 2), global average pooling, Linear.

    Inputs: x of shape (N, in_channels, H, W). Returns logits of shape (N, num_classes).
    """

    def __init__(self, channels=(16, 32, 64), convs_per_stage=2, in_channels=1, num_classes=10):
        super().__init__()
        layers = [conv_bn_relu(in_channels, channels[0])]
        in_channels = channels[0]
        for stage, out_channels in enumerate(channels):
            for conv in range(convs_per_stage):
                layers.append(separable_conv(in_channels, out_channels, stride=2 if stage > 0 and conv == 0 else 1))
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (N, C, H, W) -> (N, C)
                                        nn.Linear(in_channels, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """The fully connected baseline: Flatten -> (Linear ReLU Dropout) per hidden layer -> Linear.

    Inputs: x of shape (N, in_channels, image_size, image_size). Returns logits of shape (N, num_classes).
    """

    def __init__(self, hidden_sizes=(512, 256), dropout=0.2, in_channels=1, image_size=28, num_classes=10):
        super().__init__()
        layers, in_features = [nn.Flatten()], in_channels * image_size * image_size  # (N, C, H, W) -> (N, C*H*W)
        for hidden_units in hidden_sizes:
            layers += [nn.Linear(in_features, hidden_units), nn.ReLU()]
            layers += [nn.Dropout(dropout)] if dropout else []  # no layer for p = 0, as in the other two modules
            in_features = hidden_units
        layers.append(nn.Linear(in_features, num_classes))
        self.layers, self.image_size = nn.Sequential(*layers), image_size

    def forward(self, x):
        return self.layers(x)


def make_cnn(num_conv_layers=2, activation="relu", base_channels=16, kernel_size=3, hidden_units=128,
             pooling="max", padding=True, batch_norm=False, dropout=0.0, in_channels=1, image_size=28,
             num_classes=10):
    """The plain CNN of the depth, activation and ablation experiments, as cnn_from_scratch.make_cnn:

    num_conv_layers x [Conv -> BatchNorm? -> act -> pool], channels doubling from base_channels, then
    Flatten -> Linear -> BatchNorm? -> act -> Dropout? -> Linear.
    pooling: "max", "avg" (2x2, stride 2) or "stride" (no pooling: the convolution has stride 2);
    padding: True for "same" (k // 2), False for none; activation "linear" is the identity.
    Sizes for 28x28 with padding: 28 -> 14 -> 7 -> 3 -> 1 after 1, 2, 3, 4 blocks.
    Returns: an nn.Sequential mapping (N, in_channels, image_size, image_size) to (N, num_classes).
    Note: with batch_norm the layers keep their biases (BatchNorm cancels them) so that the three
    frameworks build the same layers.
    """
    arguments = dict(locals())  # how to build this network again: save() records it
    if not isinstance(num_conv_layers, int) or not 1 <= num_conv_layers <= 4:
        raise ValueError(f"num_conv_layers must be an int from 1 to 4, got {num_conv_layers!r}")
    make_activation(activation)  # raises ValueError for an unknown name before anything is built
    check_choice(pooling, ("max", "avg", "stride"), "pooling")
    check_kernel_size(kernel_size)
    stride, conv_padding = (2 if pooling == "stride" else 1), (kernel_size // 2 if padding else 0)
    layers, size, channels = [], image_size, in_channels
    for block in range(num_conv_layers):
        out_channels = base_channels * 2 ** block
        layers.append(nn.Conv2d(channels, out_channels, kernel_size, stride=stride, padding=conv_padding))
        layers += [nn.BatchNorm2d(out_channels)] if batch_norm else []
        layers += make_activation(activation)
        size = conv_output_size(size, kernel_size, stride, conv_padding)
        if pooling != "stride":
            layers.append(nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2))
            size = conv_output_size(size, 2, 2, 0)
        channels = out_channels
    layers += [nn.Flatten(),  # (N, C, size, size) -> (N, C * size * size)
               nn.Linear(channels * size * size, hidden_units)]
    layers += [nn.BatchNorm1d(hidden_units)] if batch_norm else []
    layers += make_activation(activation)
    layers += [nn.Dropout(dropout)] if dropout else []
    layers.append(nn.Linear(hidden_units, num_classes))
    model = nn.Sequential(*layers)
    model.build_spec, model.image_size = {"name": "cnn", "kwargs": arguments}, image_size
    return model


def make_speedrun_cnn(in_channels=1, image_size=28, num_classes=10):
    """The network of the fastest published MNIST recipe, layer for layer the NumPy `make_speedrun_cnn`:
    Conv 5x5 (24) ReLU MaxPool2 -> Conv 3x3 (32) ReLU MaxPool2 -> Flatten -> Linear 256 ReLU -> Linear."""
    size = (conv_output_size(image_size, 5, 1, 0) // 2 - 2) // 2  # 28 -> 24 -> 12 -> 10 -> 5
    model = nn.Sequential(
        nn.Conv2d(in_channels, 24, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(24, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),  # (N, 32, 5, 5) -> (N, 800), in C, H, W order
        nn.Linear(32 * size * size, 256), nn.ReLU(),
        nn.Linear(256, num_classes))
    model.image_size = image_size  # the size its Linear layer was built for (fit and evaluate check it)
    return model


MODELS = {"simple": SimpleCNN, "deep": DeepCNN, "residual": ResNetCNN, "separable": SeparableCNN, "mlp": MLP,
          "cnn": make_cnn, "speedrun": make_speedrun_cnn}


def build_model(name, **kwargs):
    """Build a model by name: 'simple', 'deep', 'residual', 'separable', 'mlp', 'cnn' (make_cnn) or 'speedrun';
    kwargs go to its class or builder. The model remembers both (model.build_spec), so that `save`
    can write them down and `load` can build it again."""
    check_choice(name, MODELS, "model name")
    model = MODELS[name](**kwargs)
    model.build_spec = {"name": name, "kwargs": kwargs}
    return model


# --- Data and augmentation ---


def to_tensors(x, y, device):
    """NumPy arrays (or tensors) -> (float32 tensor of shape (N, C, H, W), int64 tensor of shape (N,)) on `device`."""
    return (torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.int64, device=device))


def random_affine(x, generator, degrees=10.0, translate=0.1, zoom=0.1):
    """Rotate, shift and zoom each image of a batch by its own random amount.

    Inputs:
    - x: images of shape (N, C, H, W)
    - generator: a CPU torch.Generator, so that augmentation follows the run's seed
    - degrees, translate (fraction of the image size), zoom (fraction): the largest change
    Returns: augmented images of shape (N, C, H, W), zeros (black) where no pixel maps.
    Note: torchvision's v2.RandomAffine draws one transform per call, so on a batch tensor every
    image moves the same way, and calling it per image costs minutes per epoch on a CPU. This
    builds one 2x3 matrix per image and applies all of them with one grid_sample call instead.
    """
    n = len(x)
    uniform = lambda: torch.rand(n, generator=generator) * 2 - 1  # noqa: E731, uniform in [-1, 1), shape (N,)
    angle, scale = uniform() * math.radians(degrees), 1 + uniform() * zoom
    shift_x, shift_y = uniform() * 2 * translate, uniform() * 2 * translate  # grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1),
                         torch.stack([sin, cos, shift_y], 1)], 1)  # (N, 2, 3): output pixel -> input pixel
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(x, grid, align_corners=False)


def torchvision_affine(degrees=10.0, translate=0.1, zoom=0.1):
    """The same augmentation as torchvision's transforms.v2, for comparison (`--augment torchvision`).

    v2.RandomAffine works on tensors and draws one random transform per call: applied to a batch,
    every image of that batch moves the same way (and calling it image by image is far too slow on
    a CPU), so it is a weaker augmentation than random_affine. Its randomness follows torch's
    global seed, which set_seed sets.
    """
    from torchvision.transforms import v2

    return v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=(1 - zoom, 1 + zoom))


# --- Training ---


def input_channels_and_classes(model):
    """(channels the first conv layer takes or None, outputs of the last linear layer): what the
    input checks of fit and evaluate compare images and labels with."""
    convolutions = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return (convolutions[0].in_channels if convolutions else None), linears[-1].out_features


def as_numpy(array):
    """A tensor's values as a NumPy array (no copy on the CPU), so that the checks read tensors too."""
    return array.detach().cpu().numpy() if torch.is_tensor(array) else array


def check_data(model, x, y):
    """The checks of the other two modules (interface.py), for NumPy arrays and tensors alike: images of
    shape (N, C, H, W) with the model's channels and the size it was built for (model.image_size, None
    for a network that takes any size), labels in range."""
    x, y = as_numpy(x), as_numpy(y)
    channels, num_classes = input_channels_and_classes(model)
    check_images(x, channels)
    check_image_size(x, getattr(model, "image_size", None))
    check_labels(y, len(x), num_classes)


@torch.inference_mode()
def evaluate(model, x, y, batch_size=256):
    """(mean cross-entropy loss, accuracy in [0, 1]) of `model` on x of shape (N, C, H, W), y of shape (N,)
    (NumPy arrays or tensors, checked as in the other two modules)."""
    check_data(model, x, y)
    x, y = to_tensors(x, y, next(model.parameters()).device)
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])  # (B, num_classes)
        labels = y[start:start + batch_size]
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(dim=1) == labels).sum().item()
    return total_loss / len(x), correct / len(x)


def make_optimizer(model, optimizer="adam", learning_rate=2e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    """The optimizer over model.parameters(), as in cnn_from_scratch: "adam" is AdamW (Adam when
    weight_decay is 0) with these betas; "sgd" is SGD with momentum 0.9 (and L2 weight decay). Returns it."""
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    if optimizer == "adam":
        return torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                 betas=check_betas(betas))
    return torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9, weight_decay=weight_decay)


def make_scheduler(optimizer, total_steps, schedule="cosine"):
    """A per-step learning-rate schedule of the optimizer's rate lr_0 over total_steps steps: "cosine",
    lr_t = lr_0 * (1 + cos(pi * t / T)) / 2, no warm-up; "constant"; "one_cycle", the rates of
    interface.learning_rate_schedule, step for step. The same three schedules in all three modules."""
    check_choice(schedule, SCHEDULES, "schedule")
    learning_rate = optimizer.param_groups[0]["lr"]
    if schedule == "one_cycle":
        rates = learning_rate_schedule(learning_rate, total_steps, schedule)  # (T,)
        factor = lambda step: float(rates[min(step, total_steps - 1)]) / learning_rate  # noqa: E731
    elif schedule == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))  # noqa: E731
    else:
        factor = lambda step: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def training_batches(x, y, batch_size, rng, augment=None):
    """Yield one epoch of (images of shape (B, C, H, W), labels of shape (B,)) in an order drawn from the
    NumPy generator rng, as cnn_from_scratch.training_batches draws it; augment(images, index) changes
    the images of a batch when it is given."""
    order = torch.as_tensor(rng.permutation(len(x)), device=x.device)  # (N,)
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]  # (B,)
        yield (augment(x[index], index) if augment is not None else x[index]), y[index]


def train_one_epoch(model, batches, optimizer, scheduler, hook, label_smoothing=0.0):
    """One pass over the batches: forward, loss, backward, optimizer step, scheduler step.

    Inputs: batches yielding (images of shape (B, C, H, W), labels of shape (B,)); hook: the TrainingHook
    asked after every step whether to stop; label_smoothing: as F.cross_entropy's.
    Returns: (mean training loss, training accuracy) over the batches trained (with dropout and
    augmentation on), and whether the hook asked to stop.
    Raises FloatingPointError (interface.diverged) when the loss stops being finite.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for step, (inputs, labels) in enumerate(batches):
        logits = model(inputs)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            raise diverged(loss.item(), hook.epoch, step, optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss, seen = total_loss + loss.item() * len(labels), seen + len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        if hook.end_step():
            model.train()  # the hook may have evaluated the model
            return total_loss / seen, correct / seen, True
    return total_loss / seen, correct / seen, False


def batch_augmentation(augmentation, x_numpy, rng, generator):
    """augment(images, index) for training_batches: "shift" moves each image by up to AUGMENT_SHIFT pixels
    with interface.random_shift and the run's rng (the same draws as the other two modules), "affine"
    rotates, shifts and zooms each image (random_affine), "torchvision" applies one v2.RandomAffine
    draw to the whole batch; None leaves the batches alone."""
    if augmentation == "shift":
        return lambda images, index: torch.from_numpy(
            random_shift(x_numpy[index.cpu().numpy()], AUGMENT_SHIFT, rng)).to(images.device)  # (B, C, H, W)
    if augmentation == "affine":
        return lambda images, index: random_affine(images, generator)  # its own transform for each image
    if augmentation == "torchvision":
        return lambda images, index: torchvision_affine()(images)  # one transform for the whole batch
    return None


def fit(model, x_train, y_train, x_val, y_val, epochs=5, batch_size=64, learning_rate=2e-3, seed=0, augment=False,
        progress=True, schedule="cosine", optimizer="adam", weight_decay=0.0, restore_best=True, hook=None,
        betas=(0.9, 0.999), augmentation="shift", label_smoothing=0.0, patience=None, schedule_epochs=None,
        log=print):
    """Train `model` and return its history; the shared arguments and defaults are those of every module.

    Inputs: x_* of shape (N, C, H, W) and y_* of shape (N,), NumPy arrays or tensors (checked, then
    moved to the model's device).
    - seed: the data order and the shift draws, one np.random.default_rng(seed) as in the other two
      modules, so that the same seed gives the same batches in all three; dropout masks follow set_seed
    - augment: True shifts each training image by up to AUGMENT_SHIFT pixels, as everywhere
    - schedule: "cosine", "constant" or "one_cycle" (make_scheduler); optimizer: "adam" (AdamW when
      weight_decay > 0) or "sgd" (momentum 0.9); betas: Adam's (beta1, beta2)
    - restore_best: end with the best validation epoch's weights (False: the last epoch's)
    - hook: an interface.TrainingHook (its clock gives "seconds"; its on_step_end can stop training)
    PyTorch's own options, after the shared ones: augmentation "affine" (each image rotated, shifted and
    zoomed, random_affine) or "torchvision" (one v2.RandomAffine draw per batch) instead of "shift";
    label_smoothing; patience: stop after this many epochs without a better validation accuracy;
    schedule_epochs: the schedule's span in epochs (default: all; after it the rate keeps its last value);
    log: where the one line per epoch goes when progress is True.
    Returns: history, a dict of per-epoch lists: train_loss, train_accuracy, val_loss, val_accuracy,
      learning_rate (at the epoch's first step) and seconds (training only).
    """
    check_fit_arguments(as_numpy(x_train), as_numpy(y_train), as_numpy(x_val), as_numpy(y_val),
                        *input_channels_and_classes(model), epochs, batch_size, augment)
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        check_image_size(as_numpy(x), getattr(model, "image_size", None), name)
    check_choice(augmentation, ("shift", "affine", "torchvision"), "augmentation")
    device = next(model.parameters()).device
    x_numpy = np.asarray(as_numpy(x_train), dtype=np.float32)
    x_train, y_train = to_tensors(x_train, y_train, device)
    x_val, y_val = to_tensors(x_val, y_val, device)
    rng = np.random.default_rng(seed)  # the data order and the shifts, drawn as cnn_from_scratch.fit draws them
    generator = torch.Generator().manual_seed(seed)  # "affine" augmentation (dropout follows set_seed's global seed)
    augment_function = batch_augmentation(augmentation if augment else None, x_numpy, rng, generator)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    optimizer = make_optimizer(model, optimizer, learning_rate, weight_decay, betas)
    scheduler = make_scheduler(optimizer, round((schedule_epochs or epochs) * steps_per_epoch), schedule)
    history = {key: [] for key in HISTORY_KEYS}
    best_accuracy, best_state, epochs_without_improvement = -1.0, None, 0
    hook = hook or TrainingHook()
    hook.start()
    for epoch in range(1, epochs + 1):
        hook.start_epoch(epoch)
        start_seconds = hook.clock.seconds()
        history["learning_rate"].append(optimizer.param_groups[0]["lr"])
        # disable=None draws the bar only on a terminal, so a log file gets no carriage-return updates.
        batches = tqdm(training_batches(x_train, y_train, batch_size, rng, augment_function), total=steps_per_epoch,
                       desc=f"epoch {epoch}", leave=False, disable=None if progress else True)
        train_loss, train_accuracy, stopped = train_one_epoch(model, batches, optimizer, scheduler, hook,
                                                              label_smoothing)
        if device.type == "cuda":
            torch.cuda.synchronize()  # the clock stops when the GPU's work is done, not when it was queued
        history["seconds"].append(hook.clock.seconds() - start_seconds)
        with hook.clock.paused():  # validation is not training
            val_loss, val_accuracy = evaluate(model, x_val, y_val)
            for key, value in zip(("train_loss", "train_accuracy", "val_loss", "val_accuracy"),
                                  (train_loss, train_accuracy, val_loss, val_accuracy)):
                history[key].append(value)
            if progress:
                log(f"epoch {epoch:2d}/{epochs}  train loss {train_loss:.4f} acc {train_accuracy:.4f}  "
                    f"val loss {val_loss:.4f} acc {val_accuracy:.4f}  ({history['seconds'][-1]:.1f} s)")
            if val_accuracy > best_accuracy:
                best_accuracy, epochs_without_improvement = val_accuracy, 0
                best_state = copy.deepcopy(model.state_dict()) if restore_best else None
            else:
                epochs_without_improvement += 1
                if patience is not None and epochs_without_improvement >= patience:
                    if progress:
                        log(f"early stopping: no better validation accuracy for {patience} epochs")
                    break
        if stopped:
            break
    if restore_best:
        model.load_state_dict(best_state)  # restore the best epoch (chosen on validation, never on test)
    return history


# --- Save and load ---


def build_spec_of(model, model_name=None, model_kwargs=None):
    """How to build the model again: the name and kwargs given, or those that build_model and make_cnn
    recorded, or (a model made by calling its class) the class's name with its default kwargs."""
    if model_name is not None:
        return {"name": model_name, "kwargs": dict(model_kwargs or {})}
    if getattr(model, "build_spec", None) is not None:
        return model.build_spec
    name = next((name for name, builder in MODELS.items() if builder is type(model)), None)
    return {"name": name, "kwargs": dict(model_kwargs or {})}


def save(model, path, model_name=None, model_kwargs=None, history=None):
    """Save the state_dict and how to build the model again (build_spec_of) to a .pt file, atomically:
    a temporary file, then os.replace, so that an interrupted save never leaves a half-written file.
    Returns the Path. PyTorch's own options: model_name and model_kwargs name a model that build_model
    did not build; history is stored beside the weights."""
    spec = build_spec_of(model, model_name, model_kwargs)
    checkpoint = {"model_name": spec["name"], "model_kwargs": spec["kwargs"], "history": history,
                  "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()}}
    atomic_save(path, lambda temporary: torch.save(checkpoint, temporary))
    return Path(path)


def load(path, device="cpu", model=None):
    """The model of a file written by `save`, built again from its name and kwargs (or the weights loaded
    into `model`), on `device`, in evaluation mode. Raises ValueError for a corrupt file or weights that
    do not fit the model."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # a truncated zip, a pickle error, ...
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: expected a dict with a 'state_dict' (written by save), "
                         f"got {type(checkpoint).__name__}")
    if model is None:
        if checkpoint.get("model_name") is None:
            raise ValueError(f"{path}: the checkpoint does not name its model; pass model=...")
        model = build_model(checkpoint["model_name"], **checkpoint["model_kwargs"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # missing or unexpected keys, shape mismatches
        raise ValueError(f"{path}: the weights do not fit {type(model).__name__}: {error}") from None
    return model.to(device).eval()


# --- Weight transfer with the NumPy CNN ---
# Both sides use NCHW, and both flatten (N, C, H, W) into (N, C * H * W) in C, H, W order,
# so the first fully connected layer needs no reordering: only transposes. Convolution
# kernels have the same (F, C, HH, WW) layout and both frameworks compute cross-correlation.
# The NumPy FullyConnectedLayer computes x @ W + b with W of shape (in, out); torch's
# nn.Linear computes x @ weight.T + bias with weight of shape (out, in), so W = weight.T.


TRANSFERRED = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)  # the torch layers weight transfer copies
BATCH_NORM_NAMES = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}


def _paired_layers(numpy_model, torch_model):
    """Pair the NumPy and torch layers with weights in order, checking kinds, counts and conv settings."""
    numpy_layers = weight_layers(numpy_model)
    torch_layers = [m for m in torch_model.modules() if isinstance(m, TRANSFERRED)]
    others = [type(m).__name__ for m in torch_model.modules()
              if not isinstance(m, TRANSFERRED) and list(m.parameters(recurse=False))]
    if others:
        raise ValueError(f"the torch model has parameters outside Conv2d/Linear/BatchNorm ({others}); only models "
                         f"built from those (like SimpleCNN and make_cnn) can be transferred")
    if len(numpy_layers) != len(torch_layers):
        raise ValueError(f"the NumPy model has {len(numpy_layers)} weight layers, the torch model "
                         f"{len(torch_layers)}: {[type(m).__name__ for m in torch_layers]}")
    for numpy_layer, torch_layer in zip(numpy_layers, torch_layers):
        is_batch_norm = "gamma" in numpy_layer.params
        if is_batch_norm != isinstance(torch_layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise ValueError(f"layer kinds differ: NumPy {numpy_layer!r} vs torch {torch_layer}")
        if is_batch_norm:
            continue
        is_conv = numpy_layer.params["W"].ndim == 4
        if is_conv != isinstance(torch_layer, nn.Conv2d):
            raise ValueError(f"layer kinds differ: NumPy {numpy_layer!r} vs torch {torch_layer}")
        if torch_layer.bias is None:
            raise ValueError(f"torch layer {torch_layer} has no bias; the NumPy layers always have one")
        if is_conv:
            for name in ("stride", "padding"):
                numpy_value = getattr(numpy_layer, name, None)
                torch_value = tuple(getattr(torch_layer, name))
                if numpy_value is not None and tuple(np.broadcast_to(numpy_value, 2)) != torch_value:
                    raise ValueError(f"{name} differs: NumPy {numpy_value} vs torch {torch_value} in {torch_layer}")
    return list(zip(numpy_layers, torch_layers))


def torch_arrays(numpy_layer):
    """{torch name: array} of a NumPy layer, in torch's layouts: FC W (in, out) -> weight (out, in);
    conv weights are (F, C, HH, WW) on both sides; BatchNorm gamma, beta -> weight, bias."""
    if "gamma" in numpy_layer.params:
        stores = {**numpy_layer.params, **numpy_layer.buffers}
        return {torch_name: stores[name] for name, torch_name in BATCH_NORM_NAMES.items()}
    W = numpy_layer.params["W"]
    return {"weight": W if W.ndim == 4 else W.T, "bias": numpy_layer.params["b"]}


def numpy_to_torch(numpy_model, torch_model):
    """Copy the weights of a NumPy `CNN` into a torch model with the same layers, in order. Returns torch_model."""
    for numpy_layer, torch_layer in _paired_layers(numpy_model, torch_model):
        targets = {**dict(torch_layer.named_parameters(recurse=False)), **dict(torch_layer.named_buffers(recurse=False))}
        arrays = torch_arrays(numpy_layer)
        for name, array in arrays.items():
            if tuple(array.shape) != tuple(targets[name].shape):
                raise ValueError(f"shape mismatch: NumPy {numpy_layer!r} gives {name} of shape {array.shape}; torch "
                                 f"{torch_layer} holds {tuple(targets[name].shape)}")
        with torch.no_grad():
            for name, array in arrays.items():
                targets[name].copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return torch_model


def torch_to_numpy(torch_model, numpy_model):
    """Copy the weights of a torch model into a NumPy `CNN` with the same layers, in place. Returns numpy_model."""
    for numpy_layer, torch_layer in _paired_layers(numpy_model, torch_model):
        state = {name: value.detach().cpu().numpy() for name, value in torch_layer.state_dict().items()}
        if "gamma" in numpy_layer.params:
            numpy_layer.set_params(f"torch {torch_layer}", **{name: state[torch_name]
                                                              for name, torch_name in BATCH_NORM_NAMES.items()})
            continue
        weight = state["weight"]
        W = weight if weight.ndim == 4 else weight.T  # FC: torch (out, in) -> NumPy (in, out)
        numpy_layer.set_params(f"torch {torch_layer}", W=W, b=state["bias"])
    return numpy_model


# --- Command line ---


def main():
    parser = training_parser("Train a PyTorch CNN on MNIST.", epochs=3, batch_size=128, learning_rate=3e-3,
                             quick_help=f"{QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, batch 32, 1 epoch")
    parser.add_argument("--model", default="simple", choices=sorted(MODELS))
    parser.add_argument("--schedule", default="one_cycle", choices=SCHEDULES)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--augment", action="store_true", help="augment the training images (see --augmentation)")
    parser.add_argument("--augmentation", default="shift", choices=["shift", "affine", "torchvision"],
                        help=f"with --augment: random shifts of up to {AUGMENT_SHIFT} pixels (shift, the default, as "
                             "in every module), each image its own rotation, shift and zoom (affine), or one "
                             "torchvision.transforms.v2.RandomAffine draw per batch")
    parser.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--save", default=None, metavar="PATH", help="save the best checkpoint here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args()

    set_seed(args.seed)
    device = choose_device(args.device)
    print(f"device: {device}, threads: {torch.get_num_threads()}")
    data = load_mnist(seed=args.seed)
    if args.quick:  # a smoke test that finishes in seconds; the accuracy is far from the full run's
        data = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST)
        args.epochs, args.batch_size = 1, min(args.batch_size, 32)
    x_train, y_train = to_tensors(data.x_train, data.y_train, device)
    x_val, y_val = to_tensors(data.x_val, data.y_val, device)
    x_test, y_test = to_tensors(data.x_test, data.y_test, device)
    print(f"train {tuple(x_train.shape)}, val {tuple(x_val.shape)}, test {tuple(x_test.shape)}")

    start = time.perf_counter()
    model = build_model(args.model).to(device)
    print(model)
    print(f"{args.model}: {count_parameters(model):,} parameters")
    history = fit(model, x_train, y_train, x_val, y_val, epochs=args.epochs, batch_size=args.batch_size,
                  learning_rate=args.learning_rate, weight_decay=args.weight_decay, schedule=args.schedule,
                  augment=args.augment, augmentation=args.augmentation, label_smoothing=args.label_smoothing,
                  patience=args.patience, seed=args.seed, progress=not args.no_progress)
    train_seconds = time.perf_counter() - start
    _, val_accuracy = evaluate(model, x_val, y_val)
    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    print(f"best validation accuracy: {100 * val_accuracy:.2f}%")
    print(f"test accuracy: {100 * test_accuracy:.2f}% (loss {test_loss:.4f}, {len(x_test)} images)")
    print(f"training time: {train_seconds:.1f} s")
    if args.save:
        save(model, args.save, model_name=args.model, history=history)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
