"""Train all three implementations and measure every comparison the README makes, over several seeds.

What it teaches: how to compare models honestly. Every configuration is trained with several
seeds (the seed changes the initialization, the data order, the augmentation draws and, for
transfer, which labelled images are drawn); every choice is made on the validation split; the
test set is measured once per run (and, only to stop a clock, during the time-to-99% runs); and
report.py calls a difference "detected" only after the right test (paired where the seed gives two
configurations the same initial weights and batches, Welch's otherwise) and Holm's correction over
each table, and says how large a difference a "not detected" could have found.

Three budgets, because some lessons depend on how long the networks train, and because three
frameworks train slower than one:
    default      the run a learner repeats: the PyTorch sweeps and transfer, short training (6,000
                 images, 2 epochs), 5 seeds; into results/ (its duration: BENCHMARKS.md)
    frameworks   the SimpleCNN in NumPy, PyTorch and Keras (3 seeds), and the time to 99% test accuracy
                 (5 seeds); into results/frameworks/
    long         depth, efficiency and ablation on all 55,000 images for 6 epochs, 5 seeds, and four
                 of their configurations trained twice as long (one seed) to check whether 6 epochs are enough;
                 into results/long/
RESULTS.md shows them together, the default and long budgets side by side with the verdicts that flip.

The experiments (run one alone with --only NAME):
    frameworks   the same SimpleCNN in NumPy, PyTorch and Keras, from the same initial weights, with the
                 same optimizer, schedule, batch size, epochs and batch order (each run in a fresh
                 process: see in_fresh_process)
    time_to_99   the time to 99% test accuracy of two recipes (RECIPES_TO_99: the fastest published one
                 and this project's earlier one) in all three frameworks, from the same initial weights,
                 checked every 1/10 epoch with the clock stopped; then the published recipe with one
                 choice changed at a time (PyTorch), each in a fresh process
    depth        1 to 4 conv blocks (make_cnn)
    activations  ReLU, Leaky ReLU, ELU, Tanh and Sigmoid, each with Adam and with SGD, with the first
                 conv layer's gradient norm
    efficiency   CNNs and MLPs from ~13K to ~820K parameters, with LeCun et al.'s published points
    ablation     one reference CNN, then one component removed or changed at a time
    transfer     a CNN trained on digits 0-4, adapted to 5-9 from 10, 100 or 1,000 images per class
    epochs       (long budget) is its epoch count enough? Four configurations trained twice as long

Run it:
    python experiments.py                       # the default budget
    python experiments.py --budget frameworks   # the three frameworks; stop it any time, the same command resumes
    python experiments.py --budget long         # the long budget, resumable the same way
    python experiments.py --quick               # tiny budgets, every experiment, marked as a quick run
    python experiments.py --only depth activations --seeds 3
    python experiments.py --jobs 1              # one run at a time (default: one per core); the same results
    python experiments.py --report              # rebuild every summary.json, RESULTS.md and the figures
Runs side by side: the sweeps, transfer and epochs train in --jobs worker processes, RUN_THREADS threads
each whatever --jobs is, so that a run's numbers depend on its configuration and seed alone; frameworks and
time_to_99, whose lessons are times, train alone, one run at a time, before the workers start. Each record says
how many runs trained at a time ("jobs") and with how many threads ("threads"); a sweep's seconds under jobs > 1
are not speeds.
Outputs: runs.jsonl in results/, results/frameworks/ and results/long/ (one line per finished run,
appended as it finishes, so an interrupted sweep resumes where it stopped), a summary.json beside
each, RESULTS.md and plots/experiments_*.png; with --quick or another --out, all of them inside that
folder.

In a REPL:
    >>> import experiments
    >>> runs = experiments.plan_depth(experiments.BUDGETS["quick"], seeds=[0])
    >>> [run.label for run in runs]
    ['1 conv block', '2 conv blocks', '3 conv blocks', '4 conv blocks']
"""
import argparse
import contextlib
import copy
import hashlib
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import cnn_from_scratch
import cnn_pytorch  # the sweeps and transfer train PyTorch models; cnn_keras is imported only when asked for
import torch
from data import load_mnist
from frameworks import (FRAMEWORKS, copy_numpy_weights, count_flops, fix_malloc_thresholds, framework_module,
                        matrix_product_gflops, to_device)
from interface import TrainingHook
from report import atomic_write, summarize, write_report
from report_figures import write_figures

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results"

# --- Budgets and recipes ---


@dataclass(frozen=True)
class Budget:
    """How much training each experiment gets. It is part of every run's configuration, so changing
    it trains again instead of mixing runs of different budgets."""

    name: str
    experiments: tuple  # the experiments this budget runs (all of them by default)
    framework_train_size: int | None  # None: all 55,000 training images
    framework_epochs: int
    time_to_99_epochs: int  # the most epochs a time-to-99% run may take
    checks_per_epoch: int  # how often (per epoch) the time-to-99% runs measure test accuracy
    sweep_train_size: int | None  # depth, activations, efficiency and ablation train on the first N images
    sweep_epochs: int
    transfer_pretrain_size: int
    transfer_per_class: tuple  # labelled images per class of digits 5-9
    transfer_steps: int  # optimizer steps for each adaptation, whatever the number of images
    validation_size: int | None  # None: all 5,000 validation images
    test_size: int | None  # None: all 10,000 test images
    seeds: int  # the default of --seeds
    framework_seeds: int  # the frameworks experiment (the SimpleCNN) runs the first of those seeds only
    time_to_99_seeds: int  # and time_to_99 these first ones


SWEEPS = ("depth", "activations", "efficiency", "ablation")  # PyTorch models on the sweep budget (sweep_config)
ALL = ("frameworks", "time_to_99", "depth", "activations", "efficiency", "ablation", "transfer")
# The long budget's epochs: as many as fit its 2 hours on two cores; whether they are enough, the "epochs"
# experiment checks.
LONG_EPOCHS = 6
BUDGETS = {
    # The run a learner repeats (at most 20 minutes on two cores): the PyTorch sweeps and transfer, short
    # training, 5 seeds.
    "default": Budget("default", (*SWEEPS, "transfer"), framework_train_size=None, framework_epochs=2,
                      time_to_99_epochs=2, checks_per_epoch=10, sweep_train_size=6_000, sweep_epochs=2,
                      transfer_pretrain_size=10_000, transfer_per_class=(10, 100, 1000), transfer_steps=150,
                      validation_size=None, test_size=None, seeds=5, framework_seeds=3, time_to_99_seeds=5),
    # Everything that trains in all three frameworks, each run in a fresh process: the SimpleCNN on all
    # 55,000 images (3 seeds: its runs are paired), and the time to 99% (5 seeds).
    "frameworks": Budget("frameworks", ("frameworks", "time_to_99"), framework_train_size=None, framework_epochs=2,
                         time_to_99_epochs=2, checks_per_epoch=10, sweep_train_size=10_000, sweep_epochs=2,
                         transfer_pretrain_size=10_000, transfer_per_class=(10, 100, 1000), transfer_steps=150,
                         validation_size=None, test_size=None, seeds=5, framework_seeds=3, time_to_99_seeds=5),
    # The experiments whose verdicts depend on how long the networks train: all 55,000 images for
    # LONG_EPOCHS epochs, 5 seeds; "epochs" trains four configurations twice as long to check that count.
    "long": Budget("long", ("depth", "efficiency", "ablation", "epochs"), framework_train_size=None,
                   framework_epochs=2, time_to_99_epochs=2, checks_per_epoch=10, sweep_train_size=None,
                   sweep_epochs=LONG_EPOCHS, transfer_pretrain_size=10_000, transfer_per_class=(10, 100, 1000),
                   transfer_steps=150, validation_size=None, test_size=None, seeds=5, framework_seeds=3,
                   time_to_99_seeds=3),
    "quick": Budget("quick", (*ALL, "epochs"), framework_train_size=600, framework_epochs=1, time_to_99_epochs=1,
                    checks_per_epoch=4, sweep_train_size=300, sweep_epochs=1, transfer_pretrain_size=300,
                    transfer_per_class=(2, 5, 10), transfer_steps=5, validation_size=300, test_size=500, seeds=2,
                    framework_seeds=1, time_to_99_seeds=1),
}
OUT_FOLDERS = {"default": "", "frameworks": "frameworks", "long": "long", "quick": "quick"}  # under results/

# One recipe for every framework: fit's shared defaults (Adam, a cosine schedule with no warm-up, no
# weight decay), and the final epoch's weights, so that nothing is chosen on the validation split.
SAME_RECIPE = dict(restore_best=False)
SIMPLE_CNN = dict(batch_size=64, learning_rate=2e-3)
# Time to 99%: two recipes in all three frameworks, then the speedrun recipe with one choice changed at a time
# (PyTorch). "speedrun" is the fastest published MNIST recipe (tuomaso/train_mnist_fast) as published, except
# that its one-cycle schedule spans the budget's time_to_99_epochs (the ablation's last rows span 1 epoch, as
# published, and 1.5); "batchnorm" is this project's earlier one.
TARGET = 0.99
RECIPES_TO_99 = {
    "speedrun": dict(model="speedrun", model_kwargs={}, batch_size=256, learning_rate=1e-2, schedule="one_cycle",
                     betas=[0.7, 0.9]),
    "batchnorm": dict(model="cnn", model_kwargs={"batch_norm": True}, batch_size=128, learning_rate=1e-2,
                      schedule="cosine", betas=[0.9, 0.999]),
}
RECIPE_ABLATION = [  # (label, changes to the speedrun recipe); the first is the recipe itself
    ("recipe: speedrun, as it is", {}),
    ("recipe: Adam's usual betas (0.9, 0.999)", {"betas": [0.9, 0.999]}),
    ("recipe: cosine schedule (no warm-up)", {"schedule": "cosine"}),
    ("recipe: batch 64", {"batch_size": 64}),
    ("recipe: learning rate 0.002", {"learning_rate": 2e-3}),
    ("recipe: SimpleCNN instead of its network", {"model": "simple"}),
    # What the schedule's span costs: one-cycle over one epoch (training ends with it), as published, and
    # over 1.5 epochs, against the 2 epochs above.
    ("recipe: one-cycle over 1 epoch, as published", {"schedule_epochs": 1}),
    ("recipe: one-cycle over 1.5 epochs", {"schedule_epochs": 1.5}),
]
SWEEP = dict(batch_size=64, learning_rate=2e-3)  # PyTorch, Adam, cosine; best validation epoch kept
SGD = dict(optimizer="sgd", learning_rate=0.05)  # the activations' second optimizer: momentum 0.9, a common rate
SWEEP_AUGMENTATION = "affine"  # the sweeps' augment=True: cnn_pytorch's rotation, shift and zoom of each image
# Validation images of digits 5-9 for the transfer runs: with 10 images per class an epoch is one step, so the
# validation set is measured ~150 times per run; 500 images keep it the smaller part of the default budget.
TRANSFER_VALIDATION = 500
TRANSFER_METHODS = {"scratch": "from scratch", "frozen": "frozen features + new linear head",
                    "fine_tune": "full fine-tuning"}


# --- One training run ---


@dataclass
class Context:
    """What every run reads: MNIST (validation split of seed 0, the same for every run), the budget
    and the device for PyTorch."""

    data: object
    budget: Budget
    device: torch.device
    malloc_thresholds_fixed: bool = False
    isolate: bool = True  # each frameworks run in a fresh process (see in_fresh_process)


def fingerprint(arrays):
    """A short SHA-256 of a sequence of arrays: equal for two runs that start from the same weights.
    report.py pairs two configurations' runs by seed only where their initial weights are the same."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def train_and_test(module, model, x_train, y_train, x_val, y_val, x_test, y_test, epochs, seed,
                   batch_size, learning_rate, initial_weights=None, augment=False, **options):
    """fit, which measures the validation accuracy of every epoch (the weights kept are scored by it, and
    choices are made on it), then one evaluation on the test set. Returns the run's metrics, with its history.
    initial_weights: the fingerprint of the weights training started from."""
    history = module.fit(model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed, augment=augment, progress=False, **options)
    if options.get("restore_best", True):  # the best epoch's weights, whose validation accuracy fit measured
        kept_val_accuracy = max(history["val_accuracy"])
    else:  # the last weights, measured here: a run may have stopped mid-epoch
        _, kept_val_accuracy = module.evaluate(model, x_val, y_val)
    test_loss, test_accuracy = module.evaluate(model, x_test, y_test)
    train_seconds = float(sum(history["seconds"]))
    epochs_run = len(history["seconds"])
    return {"test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "val_accuracy": float(kept_val_accuracy), "best_val_accuracy": float(max(history["val_accuracy"])),
            "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / epochs_run,
            "images_per_second": len(x_train) * epochs_run / train_seconds,
            "parameters": int(module.count_parameters(model)), "initial_weights": initial_weights,
            "train_size": len(x_train), "val_size": len(x_val), "test_size": len(x_test),
            "steps": int(epochs_run * math.ceil(len(x_train) / batch_size)), "history": to_plain(history)}


def to_plain(value):
    """NumPy and torch scalars inside dicts and lists -> plain Python numbers, for JSON."""
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    return value


class RunFailed(Exception):
    """A run that failed in a child process; `error` is the child's type, message and traceback."""

    def __init__(self, error):
        super().__init__(error["message"])
        self.error = error


def _train_in_child(train_name, context, config, seed):
    """What a fresh process runs: the named train function, with its error returned, not raised."""
    fix_malloc_thresholds()
    try:
        return {"metrics": globals()[train_name](context, config, seed)}
    except Exception as exception:  # noqa: BLE001 - sent back to the parent, which records it
        return {"error": {"type": type(exception).__name__, "message": str(exception),
                          "traceback": traceback.format_exc()[-3000:]}}


def in_fresh_process(train):
    """Run `train` in a new Python process (unless context.isolate is False), one run at a time.

    Once TensorFlow has trained in a process, the NumPy CNN and PyTorch in that process train 2 to 4
    times slower, and pinned malloc thresholds remove most but not all of it
    (`python benchmarks/after_tensorflow.py [--fix-malloc]`). So that no framework's time depends on
    which ran before it, each frameworks run starts from a clean process.
    """
    def train_isolated(context, config, seed):
        if not context.isolate:
            return train(context, config, seed)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            result = pool.submit(_train_in_child, train.__name__, context, config, seed).result()
        if "error" in result:
            raise RunFailed(result["error"])
        return result["metrics"]

    train_isolated.__name__ = train.__name__
    return train_isolated


def train_framework(context, config, seed):
    """The frameworks experiment: one SimpleCNN, the same initial weights in all three."""
    budget, data = context.budget, context.data
    numpy_model = cnn_from_scratch.make_simple_cnn(rng=np.random.default_rng(seed))  # the shared initialization
    module = framework_module(config["framework"])
    module.set_seed(seed)
    model = to_device(copy_numpy_weights(numpy_model, module.build_model("simple")), context.device)
    train = data.first(train=budget.framework_train_size)
    return train_and_test(module, model, train.x_train, train.y_train, data.x_val, data.y_val, data.x_test,
                          data.y_test, config["epochs"], seed, config["batch_size"], config["learning_rate"],
                          fingerprint(numpy_model.weights().values()), **SAME_RECIPE)


def train_time_to_target(context, config, seed):
    """The time_to_99 experiment: a recipe (RECIPES_TO_99), from the same initial weights in all three
    frameworks, until the test accuracy reaches the target.

    The test accuracy is measured every 1/checks_per_epoch of an epoch, with the training clock stopped
    (an interface.TrainingHook given to fit), and training ends at the first check that reaches the target. The test set
    serves only to stop the clock: nothing is chosen by it (restore_best=False; the validation split is
    fit's validation data, as everywhere). Recorded beside it: the FLOPs of one training image
    (count_flops) and this process's matrix-product speed (matrix_product_gflops), the machine's limit.
    """
    budget, data = context.budget, context.data
    name, model_kwargs = config["model"], config["model_kwargs"]
    numpy_model = cnn_from_scratch.build_model(name, rng=np.random.default_rng(seed), **model_kwargs)
    module = framework_module(config["framework"])
    module.set_seed(seed)
    model = to_device(copy_numpy_weights(numpy_model, module.build_model(name, **model_kwargs)), context.device)
    train = data.first(train=budget.framework_train_size)
    steps_per_epoch = math.ceil(len(train.x_train) / config["batch_size"])
    steps_per_check = max(1, steps_per_epoch // config["checks_per_epoch"])
    checks, last_step = [], [0]  # checks: (step, training seconds, test accuracy)
    # A schedule shorter than the run (schedule_epochs) ends training with it, as the published recipe does.
    span = {"schedule_epochs": config["schedule_epochs"]} if "schedule_epochs" in config else {}
    last_step_of_span = round(span["schedule_epochs"] * steps_per_epoch) if span else math.inf

    def check_test_accuracy(step, seconds):
        last_step[0] = step
        if step % steps_per_check and step < last_step_of_span:
            return False
        _, accuracy = module.evaluate(model, data.x_test, data.y_test)
        checks.append((step, seconds, accuracy))
        return accuracy >= config["target"] or step >= last_step_of_span

    flops = count_flops(numpy_model)
    metrics = train_and_test(module, model, train.x_train, train.y_train, data.x_val, data.y_val, data.x_test,
                             data.y_test, config["epochs"], seed, config["batch_size"], config["learning_rate"],
                             fingerprint(numpy_model.weights().values()), hook=TrainingHook(check_test_accuracy),
                             schedule=config["schedule"], betas=tuple(config["betas"]), **span, **SAME_RECIPE)
    reached = next(((step, seconds) for step, seconds, accuracy in checks if accuracy >= config["target"]), None)
    # A run that stops mid-epoch trained last_step steps, not whole epochs: its speed from those.
    steps = last_step[0]
    metrics.update(steps=steps, seconds_per_epoch=metrics["train_seconds"] * steps_per_epoch / steps,
                   images_per_second=steps * config["batch_size"] / metrics["train_seconds"],
                   steps_to_target=reached[0] if reached else None,
                   seconds_to_target=float(reached[1]) if reached else None,
                   test_checks=[list(check) for check in checks],
                   flops_per_image=flops["forward"] + flops["backward"],
                   matrix_product_gflops=matrix_product_gflops())
    return metrics


def build_torch_model(context, config, seed):
    cnn_pytorch.set_seed(seed)  # the initialization and the dropout masks
    return cnn_pytorch.build_model(config["model"], **config["model_kwargs"]).to(context.device)


def torch_fingerprint(model):
    return fingerprint(parameter.detach().cpu().numpy() for parameter in model.parameters())


def train_sweep(context, config, seed):
    """depth, activations, efficiency and ablation: one PyTorch model on the sweep budget, with the
    gradient norm of the first conv layer's weights recorded at every step."""
    budget, data = context.budget, context.data
    model = build_torch_model(context, config, seed)
    gradient_norms = []  # the L2 norm of d(loss)/d(first conv weights), every step
    first_conv = next((module for module in model.modules() if isinstance(module, torch.nn.Conv2d)), None)
    if first_conv is not None:
        first_conv.weight.register_hook(lambda grad: gradient_norms.append(grad.norm().item()))
    x_train, y_train = data.x_train[:budget.sweep_train_size], data.y_train[:budget.sweep_train_size]
    metrics = train_and_test(cnn_pytorch, model, x_train, y_train, data.x_val, data.y_val, data.x_test, data.y_test,
                             config["epochs"], seed, config["batch_size"], config["learning_rate"],
                             torch_fingerprint(model), augment=config.get("augment", False),
                             augmentation=SWEEP_AUGMENTATION, optimizer=config.get("optimizer", "adam"))
    if gradient_norms:
        steps_per_epoch = math.ceil(len(x_train) / config["batch_size"])
        metrics["first_conv_gradient_norm"] = [float(np.mean(gradient_norms[start:start + steps_per_epoch]))
                                               for start in range(0, len(gradient_norms), steps_per_epoch)]
    return metrics


def digits_between(x, y, low, high, size=None):
    """The examples whose label lies in [low, high], labels shifted to start at 0 (5..9 -> 0..4)."""
    chosen = np.flatnonzero((y >= low) & (y <= high))[:size]
    return x[chosen], y[chosen] - low


_pretrained = {}  # (budget, seed) -> the digits 0-4 model, trained once per process


def pretrained_source_model(context, config, seed):
    """make_cnn trained on digits 0 to 4 (5 classes); cached, and deterministic for a seed."""
    key = (context.budget.name, seed)
    if key not in _pretrained:
        data = context.data
        model = build_torch_model(context, {"model": "cnn", "model_kwargs": {"num_classes": 5}}, seed)
        x_source, y_source = digits_between(data.x_train, data.y_train, 0, 4, config["pretrain_size"])
        x_val, y_val = digits_between(data.x_val, data.y_val, 0, 4)
        x_test, y_test = digits_between(data.x_test, data.y_test, 0, 4)
        metrics = train_and_test(cnn_pytorch, model, x_source, y_source, x_val, y_val, x_test, y_test,
                                 context.budget.sweep_epochs, seed, SWEEP["batch_size"], SWEEP["learning_rate"])
        _pretrained[key] = (model, metrics["test_accuracy"])
    return _pretrained[key]


def train_transfer(context, config, seed):
    """Digits 5-9 from `per_class` labelled images per class: from scratch, frozen features + new
    linear head, or full fine-tuning of the digits 0-4 network (with a new output layer)."""
    data, method = context.data, config["method"]
    source_model, source_accuracy = pretrained_source_model(context, config, seed)
    rng = np.random.default_rng(seed)  # which labelled images are drawn
    x_pool, y_pool = digits_between(data.x_train, data.y_train, 5, 9)
    chosen = np.concatenate([rng.choice(np.flatnonzero(y_pool == label), config["per_class"], replace=False)
                             for label in range(5)])
    x_train, y_train = x_pool[chosen], y_pool[chosen]  # (5 * per_class, 1, 28, 28)
    x_val, y_val = digits_between(data.x_val, data.y_val, 5, 9, size=config["validation_size"])
    x_test, y_test = digits_between(data.x_test, data.y_test, 5, 9)
    cnn_pytorch.set_seed(seed)
    if method == "scratch":
        model = cnn_pytorch.make_cnn(num_classes=5)
    else:
        model = copy.deepcopy(source_model)
        flatten = next(index for index, layer in enumerate(model) if isinstance(layer, torch.nn.Flatten))
        if method == "frozen":  # the convolutional features stay as learned on 0-4; only a new head learns
            features = model[:flatten + 1]
            for parameter in features.parameters():
                parameter.requires_grad_(False)
            probe = features(torch.zeros(1, *x_train.shape[1:], device=context.device))  # (1, features)
            model = torch.nn.Sequential(*features, torch.nn.Linear(probe.shape[1], 5))
        elif method == "fine_tune":  # every layer trains; only the output layer is new
            model[-1] = torch.nn.Linear(model[-1].in_features, 5)
        else:
            raise ValueError(f"method must be 'scratch', 'frozen' or 'fine_tune', got {method!r}")
    model = model.to(context.device)
    batch_size = min(SWEEP["batch_size"], len(x_train))
    epochs = math.ceil(config["steps"] / math.ceil(len(x_train) / batch_size))  # the same number of steps for all
    metrics = train_and_test(cnn_pytorch, model, x_train, y_train, x_val, y_val, x_test, y_test, epochs,
                             seed, batch_size, SWEEP["learning_rate"])
    metrics["source_test_accuracy"] = source_accuracy
    metrics["trainable_parameters"] = metrics["parameters"]
    return metrics


# --- The experiments: which runs each one makes ---


@dataclass
class Run:
    """One training run: an experiment's configuration (which includes the budget) with one seed."""

    experiment: str
    label: str  # how tables and figures name the configuration
    config: dict
    seed: int
    train: object  # train(context, config, seed) -> metrics dict

    @property
    def key(self):
        return run_key(self.config, self.seed)


def run_key(config, seed):
    """The identity of a run in runs.jsonl: its configuration and seed. A run with the same key is
    never trained twice, even when two experiments plan it (the 2-block ReLU CNN of the depth,
    activation and efficiency sweeps is one configuration)."""
    return json.dumps([config, seed], sort_keys=True)


def run_budget(budget):
    """The budget as it shapes one run, for the run's configuration: its seed counts say how many runs
    an experiment plans, not how one trains, so more seeds add runs and keep the trained ones."""
    return {name: value for name, value in asdict(budget).items()
            if name not in ("seeds", "framework_seeds", "time_to_99_seeds")}


def sweep_config(budget, model="cnn", augment=False, recipe=None, **model_kwargs):
    """A PyTorch run on the sweep budget; make_cnn's arguments are written out in full, so that the
    same network gets the same configuration whichever experiment asks for it. recipe: changes to
    SWEEP (the SGD runs of the activations experiment)."""
    if model == "cnn":
        model_kwargs = {"num_conv_layers": 2, "activation": "relu", "base_channels": 16, "hidden_units": 128,
                        **model_kwargs}
    return {"model": model, "model_kwargs": model_kwargs, "augment": augment, "epochs": budget.sweep_epochs,
            **SWEEP, **(recipe or {}), "budget": run_budget(budget)}


def plan_frameworks(budget, seeds):
    """The SimpleCNN in the three frameworks. Its three runs of a seed are paired (the same weights and
    batches), so fewer seeds suffice."""
    return [Run("frameworks", framework, {"part": "simple_cnn", "framework": framework, "model": "simple",
                                          "epochs": budget.framework_epochs, **SIMPLE_CNN,
                                          "budget": run_budget(budget)},
                seed, in_fresh_process(train_framework))
            for seed in seeds[:budget.framework_seeds] for framework in FRAMEWORKS]


def plan_time_to_99(budget, seeds):
    """The time to 99% of each recipe in all three frameworks, then the speedrun recipe's ablation."""
    def time_to_target(framework, recipe):
        return {"part": "time_to_target", "framework": framework, "epochs": budget.time_to_99_epochs,
                "checks_per_epoch": budget.checks_per_epoch, "target": TARGET, **recipe, "budget": run_budget(budget)}

    # Comparing recipes needs at least two seeds; with one (the quick budget), only the first recipe runs.
    compared = budget.time_to_99_seeds >= 2
    train, runs = in_fresh_process(train_time_to_target), []
    for seed in seeds[:budget.time_to_99_seeds]:
        for name, recipe in list(RECIPES_TO_99.items())[:None if compared else 1]:
            runs += [Run("time_to_99", f"{framework}, {name} recipe", time_to_target(framework, recipe), seed, train)
                     for framework in FRAMEWORKS]
        # The first ablation row is the PyTorch speedrun run above (the same configuration, trained once).
        runs += [Run("time_to_99", label, time_to_target("pytorch", {**RECIPES_TO_99["speedrun"], **changes}), seed,
                     train) for label, changes in RECIPE_ABLATION if compared]
    return runs


def plan_depth(budget, seeds):
    return [Run("depth", f"{depth} conv block{'s' if depth > 1 else ''}",
                sweep_config(budget, num_conv_layers=depth), seed, train_sweep)
            for seed in seeds for depth in (1, 2, 3, 4)]


ACTIVATION_NAMES = {"relu": "ReLU", "leaky_relu": "Leaky ReLU", "elu": "ELU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def plan_activations(budget, seeds):
    """Each activation with Adam, which scales every weight's step by its own gradient's size, and with
    SGD with momentum, which does not: a vanishing gradient slows SGD, hardly Adam."""
    return [Run("activations", f"{name}, {optimizer}", sweep_config(budget, recipe=recipe, activation=activation),
                seed, train_sweep)
            for seed in seeds for optimizer, recipe in (("Adam", None), ("SGD", SGD))
            for activation, name in ACTIVATION_NAMES.items()]


CNN_WIDTHS = ((4, 32), (8, 64), (16, 128), (32, 256))  # (base_channels, hidden_units): ~13K to ~820K parameters
MLP_WIDTHS = (16, 64, 256, 1024)  # one hidden layer: ~13K to ~810K parameters


def plan_efficiency(budget, seeds):
    runs = []
    for seed in seeds:
        for channels, hidden in CNN_WIDTHS:
            config = sweep_config(budget, base_channels=channels, hidden_units=hidden)
            runs.append(Run("efficiency", f"CNN {channels}/{2 * channels} channels, {hidden} hidden", config, seed,
                            train_sweep))
        for hidden in MLP_WIDTHS:
            config = sweep_config(budget, model="mlp", hidden_sizes=[hidden], dropout=0.0)
            runs.append(Run("efficiency", f"MLP {hidden} hidden", config, seed, train_sweep))
    return runs


ABLATION_REFERENCE = {"batch_norm": True, "dropout": 0.3}  # with max pooling, padding, ReLU and augmentation
ABLATIONS = [  # (label, changes to the reference's model_kwargs, augment)
    ("reference", {}, True),
    ("average pooling instead of max", {"pooling": "avg"}, True),
    ("no pooling (stride-2 convolution)", {"pooling": "stride"}, True),
    ("no padding", {"padding": False}, True),
    ("no activation (max pooling kept)", {"activation": "linear"}, True),
    ("a linear network (no activation, average pooling)", {"activation": "linear", "pooling": "avg"}, True),
    ("a linear network, no augmentation", {"activation": "linear", "pooling": "avg"}, False),
    ("no BatchNorm", {"batch_norm": False}, True),
    ("no dropout", {"dropout": 0.0}, True),
    ("no augmentation", {}, False),
]


def plan_ablation(budget, seeds):
    """The reference, then one change at a time. Max pooling is itself nonlinear, so "no activation"
    keeps a nonlinear network; with average pooling as well, every layer is linear at test time
    (BatchNorm and dropout then scale and shift), and the network is a linear classifier: trained once with
    the reference's augmentation and once without, since shifted digits are what a linear model cannot fit."""
    return [Run("ablation", label, sweep_config(budget, augment=augment, **{**ABLATION_REFERENCE, **changes}), seed,
                train_sweep)
            for seed in seeds for label, changes, augment in ABLATIONS]


def plan_transfer(budget, seeds):
    return [Run("transfer", f"{name}, {per_class} per class",
                {"method": method, "per_class": per_class, "pretrain_size": budget.transfer_pretrain_size,
                 "steps": budget.transfer_steps, "validation_size": TRANSFER_VALIDATION, "budget": run_budget(budget)},
                seed, train_transfer)
            for seed in seeds for per_class in budget.transfer_per_class for method, name in TRANSFER_METHODS.items()]


def plan_epochs(budget, seeds):
    """Is the budget's epoch count enough? One configuration of each experiment, chosen in advance as the one
    expected to learn slowest (the deepest CNN, the widest MLP, the ablation's regularized reference), and the
    smallest CNN, added after the long budget's curves showed it still rising, trained for twice the epochs, the
    first seed only; report.py sets its validation accuracy beside the same seed's run at the budget."""
    channels, hidden = CNN_WIDTHS[0]
    configs = [(("depth", "4 conv blocks"), sweep_config(budget, num_conv_layers=4)),
               (("efficiency", "MLP 1024 hidden"), sweep_config(budget, model="mlp", hidden_sizes=[1024], dropout=0.0)),
               (("ablation", "reference"), sweep_config(budget, augment=True, **ABLATION_REFERENCE)),
               (("efficiency", f"CNN {channels}/{2 * channels} channels, {hidden} hidden"),
                sweep_config(budget, base_channels=channels, hidden_units=hidden))]
    return [Run("epochs", f"{experiment}: {label}, {2 * budget.sweep_epochs} epochs",
                {**config, "epochs": 2 * budget.sweep_epochs, "compared_with": [experiment, label]}, seed, train_sweep)
            for seed in seeds[:1] for (experiment, label), config in configs]


EXPERIMENTS = {"frameworks": plan_frameworks, "time_to_99": plan_time_to_99, "depth": plan_depth,
               "activations": plan_activations, "efficiency": plan_efficiency, "ablation": plan_ablation,
               "transfer": plan_transfer, "epochs": plan_epochs}
IN_THREE_FRAMEWORKS = ("frameworks", "time_to_99")  # each of their runs in a fresh process


# --- Running, recording and resuming ---


def machine_info():
    """The machine and the package versions, recorded with every run."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "torch", "tensorflow", "keras", "scipy", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0], "platform": sys.platform, "versions": versions}


def git_commit():
    """The commit the code ran from, with "+uncommitted changes" if a tracked file other than this script's
    own outputs (results/, plots/, RESULTS.md, which a run in progress rewrites) differs from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results",
                                ":!plots", ":!RESULTS.md"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (commit + ("+uncommitted changes" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def other_busy_processes(family=None):
    """Names of other processes running on a CPU right now (state R in /proc), to record whether
    the machine was idle; [] on systems without /proc. family: the pid of this script's main process,
    whose worker processes (--jobs) are left out too: each record says how many ran beside it."""
    busy, own = [], os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()[0]
        fields = stat[stat.rindex(")") + 2:].split()
        is_kernel_thread = int(fields[6]) & 0x00200000  # PF_KTHREAD in the flags field (rcu_preempt, kworker)
        is_family = family is not None and family in (int(entry.name), int(fields[1]))  # fields[1]: the parent pid
        if state == "R" and int(entry.name) != own and not is_kernel_thread and not is_family:
            busy.append(name)
    return busy


def machine_load(family=None):
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {"load_average_1min": load[0], "other_busy_processes": other_busy_processes(family)}


def read_runs(path, warn=None):
    """The records of runs.jsonl, in order. A line that is not a complete record (e.g. the last line
    of a killed run) is reported with its line number and skipped; its run is trained again."""
    warn = warn or (lambda message: print(message, file=sys.stderr))
    records = []
    if not path.exists():
        return records
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not {"key", "status", "experiment"} <= set(record):
                    raise ValueError("expected a JSON object with key, status and experiment")
            except ValueError as error:
                warn(f"{path}:{number}: corrupt line skipped ({error}); its run, if planned, will be trained again")
                continue
            records.append(record)
    return records


def append_record(path, record):
    """Append one run as one JSON line and flush it to disk before the next run starts. If a killed
    process left a partial last line, a newline first keeps this record on a line of its own."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def format_duration(seconds):
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


# --- Runs side by side (--jobs) ---

# The experiments whose lesson is a time: each of their runs trains alone, one at a time, with the machine's
# default threads, before any worker starts (and each in a fresh process: in_fresh_process).
TIMED = IN_THREE_FRAMEWORKS
# PyTorch and BLAS threads of every other run (sweeps, transfer, epochs), whatever --jobs is. A sum split over
# two threads adds its terms in another order than over one, so a run's last digits may depend on its thread
# count; fixed, they depend only on its configuration and seed, and --jobs changes the speed, never a result.
# One thread each is also what fills a machine: at these sizes a second thread buys little (BENCHMARKS.md).
# The data's arrays start at the same alignment in every process too (aligned_data).
RUN_THREADS = 1


def default_jobs(device):
    """--jobs' default: one worker per core this process may run on (its CPU affinity); 1 on a GPU or
    MPS, where the runs would queue for the one device."""
    if torch.device(device).type != "cpu":
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def fixed_threads(threads):
    """Inside it, PyTorch and every BLAS and OpenMP pool of this process (threadpoolctl) use `threads`
    threads; the previous counts come back on exit."""
    before = torch.get_num_threads()
    with threadpool_limits(limits=threads):
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


ALIGNMENT = 64  # bytes: where the data's arrays start (aligned_data)


def aligned_data(data):
    """A copy of a Dataset whose arrays start at a multiple of ALIGNMENT bytes, in every process alike.

    PyTorch's matrix products and convolutions (MKL, oneDNN) may add in another order for data that starts
    at another offset, and where an array starts depends on the process's history (a worker receives the data
    unpickled). Aligned, a run's numbers do not depend on which process trains it. None stays None."""
    def copy(array):
        buffer = np.empty(array.nbytes + ALIGNMENT, dtype=np.uint8)
        start = -buffer.ctypes.data % ALIGNMENT
        result = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
        result[...] = array
        return result

    if data is None:
        return None
    return replace(data, **{name: copy(getattr(data, name)) for name in
                            ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")})


def train_one(train, context, config, seed, family=None):
    """Train one run in this process and time it. Returns its outcome: metrics, or the error of a run that
    raised (recorded; the sweep goes on), with its wall time, thread count and the machine's load."""
    load_before, start, threads = machine_load(family), time.perf_counter(), torch.get_num_threads()
    try:
        metrics, status, error = train(context, config, seed), "ok", None
    except RunFailed as failure:  # in a child process
        metrics, status, error = None, "failed", failure.error
    except Exception as exception:  # noqa: BLE001 - recorded, and the sweep goes on
        metrics, status = None, "failed"
        error = {"type": type(exception).__name__, "message": str(exception),
                 "traceback": traceback.format_exc()[-3000:]}
    return {"metrics": metrics, "status": status, "error": error, "wall_seconds": time.perf_counter() - start,
            "threads": threads, "load_before": load_before, "load_after": machine_load(family)}


def _worker(connection, context, threads, parent):
    """A worker process (--jobs): trains the runs its parent sends, one at a time, with `threads` threads,
    and sends back each outcome; only the parent writes runs.jsonl. Ctrl-C reaches every process of the
    terminal: the worker ignores it and the parent stops the workers. A worker whose parent died (kill -9)
    exits within a second instead of training on for nobody."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if context.malloc_thresholds_fixed:
        fix_malloc_thresholds()
    context = replace(context, data=aligned_data(context.data))
    with fixed_threads(threads):
        while True:
            try:
                task = connection.recv()
            except EOFError:  # the parent has gone
                return
            if task is None:  # no more runs
                return
            train, config, seed = task
            connection.send(train_one(train, context, config, seed, family=parent))


@contextlib.contextmanager
def ignoring_ctrl_c():
    """Ctrl-C (SIGINT) ignored inside it, in the main thread; a process started inside inherits that."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def next_run(pending, last_seed, busy_seeds):
    """The index in pending of the run a free worker trains next. Transfer runs of a seed share one source
    network, trained once per process and cached (pretrained_source_model), so a worker keeps to the seed of
    its last transfer run, then takes a seed no busy worker is on, then any other run, and only then a seed
    another worker is on (whose source network it trains again)."""
    def preference(index_and_run):
        index, run = index_and_run
        if run.experiment != "transfer":
            return 2, index
        return (0 if run.seed == last_seed else 1 if run.seed not in busy_seeds else 3), index

    return min(enumerate(pending), key=preference)[0]


def train_in_workers(runs, context, jobs, threads=RUN_THREADS):
    """Train runs in `jobs` worker processes (spawned: each starts clean), `threads` threads each. Yields
    (run, outcome) as each run finishes. A worker that dies mid-run (a crash in C, killed, out of memory)
    yields its run as failed and a new worker takes its place. On leaving (all done, Ctrl-C, an error),
    every worker is stopped."""
    spawn, parent = multiprocessing.get_context("spawn"), os.getpid()
    pending, workers, busy = list(runs), {}, {}  # workers: process -> connection; busy: process -> (run, start)
    last_seed = {}  # process -> the seed of its last transfer run

    def start_worker():
        connection, child_connection = spawn.Pipe()
        process = spawn.Process(target=_worker, args=(child_connection, context, threads, parent), daemon=True,
                                name="experiments worker")
        with ignoring_ctrl_c():  # from its first instruction, not only once its imports are done
            process.start()
        child_connection.close()
        workers[process] = connection
        return process

    idle = [start_worker() for _ in range(min(jobs, len(pending)))]
    try:
        while busy or pending:
            for process in idle:
                if not pending:
                    break
                busy_seeds = {run.seed for run, _ in busy.values() if run.experiment == "transfer"}
                run = pending.pop(next_run(pending, last_seed.get(process), busy_seeds))
                workers[process].send((run.train, run.config, run.seed))
                busy[process] = run, time.perf_counter()
                if run.experiment == "transfer":
                    last_seed[process] = run.seed
            idle = []
            ready = set(wait([workers[process] for process in busy] + [process.sentinel for process in busy]))
            for process in [process for process in busy if workers[process] in ready or process.sentinel in ready]:
                run, start = busy.pop(process)
                try:
                    outcome = workers[process].recv()
                    idle.append(process)
                except (EOFError, OSError):  # the worker died before it could answer
                    process.join()
                    workers.pop(process).close()
                    outcome = died(process.exitcode, time.perf_counter() - start, threads)
                    if pending:
                        idle.append(start_worker())
                yield run, outcome
    finally:
        stop_workers(workers, interrupted=bool(busy or pending))


def died(exitcode, wall_seconds, threads):
    """The outcome of a run whose worker process ended without answering."""
    cause = (f"killed by signal {signal.Signals(-exitcode).name}" if exitcode is not None and exitcode < 0
             else f"exit code {exitcode}")
    return {"metrics": None, "status": "failed", "wall_seconds": wall_seconds, "threads": threads,
            "error": {"type": "WorkerDied", "message": f"the worker process training this run ended ({cause})",
                      "traceback": ""},
            "load_before": machine_load(os.getpid()), "load_after": machine_load(os.getpid())}


def stop_workers(workers, interrupted):
    """Finished: each worker is told there is nothing more and exits. Interrupted: each is terminated."""
    for process, connection in workers.items():
        if not interrupted and process.is_alive():
            with contextlib.suppress(OSError):
                connection.send(None)
        else:
            process.terminate()
    for process, connection in workers.items():
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()


class Progress:
    """One bar for the whole budget on a terminal (runs done, failures, time left), with a line per finished
    run above it; in a log file, the lines alone; nothing when quiet."""

    def __init__(self, total, quiet=False):
        self.total, self.done, self.failed, self.quiet, self.start = total, 0, 0, quiet, time.perf_counter()
        self.bar = (tqdm(total=total, unit="run", desc="runs", dynamic_ncols=True, file=sys.stderr)
                    if not quiet and sys.stderr.isatty() else None)

    def finished(self, run, record):
        self.done += 1
        self.failed += record["status"] != "ok"
        if self.quiet:
            return
        metrics, error = record["metrics"], record["error"]
        outcome = (f"test {100 * metrics['test_accuracy']:.2f}%, {metrics['train_seconds']:.1f} s training"
                   if record["status"] == "ok" else f"FAILED: {error['type']}: {error['message'][:200]}")
        line = f"[{self.done}/{self.total}] {run.experiment}: {run.label}, seed {run.seed}: {outcome}"
        if self.bar is not None:
            self.bar.set_postfix(failed=self.failed)
            self.bar.update()
            self.bar.write(line)
        else:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done)
            print(f"{line} (elapsed {format_duration(elapsed)}, about {format_duration(left)} left)", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def execute(runs, context, out_dir, quiet=False, jobs=1):
    """Train every run not yet in out_dir/runs.jsonl and append each as it finishes; this process is the
    one writer. First the timed experiments (TIMED), alone, one at a time; then the others, in `jobs` worker
    processes (in this process with jobs=1), RUN_THREADS threads each. A run that raises is recorded as
    failed, with its error, and the others go on. Returns the number of runs trained."""
    path = out_dir / "runs.jsonl"
    done, todo = {record["key"] for record in read_runs(path)}, []
    for run in runs:
        if run.key not in done:  # also trains a configuration that two experiments plan only once
            todo.append(run)
            done.add(run.key)
    if not quiet and len(todo) < len(runs):
        print(f"{len(runs) - len(todo)} of {len(runs)} planned runs are already in {path} or planned twice; "
              f"training {len(todo)}")
    machine, commit, progress = machine_info(), git_commit(), Progress(len(todo), quiet)
    timed = [run for run in todo if run.experiment in TIMED]
    beside = [run for run in todo if run.experiment not in TIMED]
    jobs = max(1, min(jobs, len(beside)))

    def record(run, outcome, jobs):
        entry = {"key": run.key, "experiment": run.experiment, "label": run.label, "config": run.config,
                 "seed": run.seed, **outcome, "jobs": jobs,
                 "framework": run.config.get("framework", "pytorch"), "device": str(context.device),
                 "fresh_process": context.isolate and run.experiment in IN_THREE_FRAMEWORKS,
                 "machine": {**machine, "malloc_thresholds_fixed": context.malloc_thresholds_fixed},
                 "git_commit": commit, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        append_record(path, entry)
        progress.finished(run, entry)

    try:
        for run in timed:  # alone: no worker exists yet
            record(run, train_one(run.train, context, run.config, run.seed), jobs=1)
        if jobs == 1:
            context = replace(context, data=aligned_data(context.data))  # as a worker's
            with fixed_threads(RUN_THREADS):
                for run in beside:
                    record(run, train_one(run.train, context, run.config, run.seed), jobs=1)
        else:
            with contextlib.closing(train_in_workers(beside, context, jobs)) as finished:
                for run, outcome in finished:
                    record(run, outcome, jobs)
    finally:
        progress.close()
    return len(todo)


# --- Script ---


def output_paths(out_dir, default_out):
    """runs.jsonl and summary.json go to out_dir; with the default folders (results/, results/frameworks/
    and results/long/), RESULTS.md goes to the repository root and the figures to plots/ (where the
    README embeds them); otherwise both go inside out_dir."""
    if default_out:
        return ROOT / "RESULTS.md", ROOT / "plots"
    return out_dir / "RESULTS.md", out_dir / "plots"


def check_writable(folder):
    """Create folder if needed and prove that a file can be written there; a clear error otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise SystemExit(f"error: --out {folder}: cannot write there ({type(error).__name__}: {error}); "
                         f"expected a folder this user can create and write")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description="Train all three frameworks, measure every comparison over "
                                                 "several seeds, and write runs.jsonl, summary.json, RESULTS.md "
                                                 "and the figures.")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--budget", choices=[name for name in BUDGETS if name != "quick"], default="default",
                        help="default: the PyTorch sweeps and transfer, short training, 5 seeds (into results/); "
                             "frameworks: the SimpleCNN and the time to 99%% in NumPy, PyTorch and Keras (into "
                             "results/frameworks/); long: depth, efficiency and ablation on all 55,000 images "
                             f"for {LONG_EPOCHS} epochs, 5 seeds (into results/long/)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per configuration, 0, 1, ... (default: the budget's, 2 with --quick)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for runs.jsonl and summary.json (default results/, results/frameworks/ "
                             "or results/long/ with --budget, results/quick/ with --quick)")
    parser.add_argument("--fresh", action="store_true", help="start over: forget the runs already in runs.jsonl")
    parser.add_argument("--report", action="store_true", help="only rebuild summary.json, RESULTS.md and the figures")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: every file in under 2 minutes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="train N runs at a time, each in a worker process with "
                             f"{RUN_THREADS} thread(s), the same results whatever N (default: one per core, 1 on "
                             "a GPU); frameworks and time_to_99 always train alone, one run at a time")
    parser.add_argument("--same-process", action="store_true",
                        help="train frameworks and time_to_99 in this process instead of a fresh process per run "
                             "(starts faster, but after TensorFlow the other two train slower)")
    args = parser.parse_args(argv)
    budget = BUDGETS["quick" if args.quick else args.budget]
    unknown = [name for name in args.only or [] if name not in budget.experiments]
    if unknown:
        parser.error(f"--only: unknown experiment(s) {', '.join(unknown)} for the {budget.name} budget; expected "
                     f"names from {', '.join(budget.experiments)}")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be a positive number of seeds, got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be a positive number of worker processes, got {args.jobs}")
    return args


def planned_runs(budget, names=None, seeds=None):
    """The runs of a budget: its experiments (or those named) over its seeds (or those given)."""
    seeds = list(range(seeds or budget.seeds))
    return [run for name in names or budget.experiments for run in EXPERIMENTS[name](budget, seeds)]


def build_report(summary_dirs, report_path, plots_dir, quiet=False):
    """summary.json in each folder, then RESULTS.md and the figures from all of them, from the runs alone.

    summary_dirs: {budget name: folder with its runs.jsonl}; a folder without runs.jsonl is left out."""
    recipes = {"simple_cnn": SIMPLE_CNN, "time_to_99": RECIPES_TO_99, "target": TARGET, "sweep": SWEEP, "sgd": SGD,
               "sweep_augmentation": SWEEP_AUGMENTATION}
    summaries = {}
    for name, folder in summary_dirs.items():
        if (folder / "runs.jsonl").exists():
            budget = BUDGETS[name]
            summaries[name] = summarize(read_runs(folder / "runs.jsonl"), planned_runs(budget), budget, recipes,
                                        transfer_methods=TRANSFER_METHODS)
            atomic_write(folder / "summary.json", json.dumps(summaries[name], indent=1))
    write_figures(summaries, plots_dir)
    write_report(summaries, report_path)
    if not quiet:
        print(f"wrote summary.json in {', '.join(str(folder) for folder in summary_dirs.values())}, {report_path} "
              f"and figures in {plots_dir}")


def main(argv=None):
    args = parse_arguments(argv)
    budget = BUDGETS["quick" if args.quick else args.budget]
    default_out = args.out is None and not args.quick  # a quick run never overwrites the committed RESULTS.md
    out_dir = args.out or DEFAULT_OUT / OUT_FOLDERS[budget.name]
    check_writable(out_dir)
    report_path, plots_dir = output_paths(out_dir, default_out)
    runs = planned_runs(budget, args.only, args.seeds)
    runs_path = out_dir / "runs.jsonl"
    if args.fresh and runs_path.exists() and not args.report:
        runs_path.unlink()
    if not args.report:
        malloc_fixed = fix_malloc_thresholds()
        device = cnn_pytorch.choose_device()
        jobs = args.jobs or default_jobs(device)
        if not args.quiet:
            print(f"{len(runs)} runs ({', '.join(args.only or budget.experiments)}; seeds "
                  f"{sorted({run.seed for run in runs})}; budget {budget.name}) on {device}, {os.cpu_count()} "
                  f"cores, {jobs} at a time ({', '.join(TIMED)} alone); results in {runs_path}", flush=True)
        data = load_mnist(seed=0).first(val=budget.validation_size, test=budget.test_size)  # the budget's slices
        context = Context(data, budget, device, malloc_fixed, isolate=not args.same_process)
        try:
            execute(runs, context, out_dir, quiet=args.quiet, jobs=jobs)
        except KeyboardInterrupt:
            print(f"\ninterrupted: the finished runs are in {runs_path}; run the same command again to resume",
                  file=sys.stderr)
            sys.exit(130)
    # The committed report shows every budget; any other folder reports its own runs alone.
    summary_dirs = ({name: DEFAULT_OUT / OUT_FOLDERS[name] for name in ("default", "frameworks", "long")}
                    if default_out else {budget.name: out_dir})
    build_report(summary_dirs, report_path, plots_dir, args.quiet)


if __name__ == "__main__":
    main()
