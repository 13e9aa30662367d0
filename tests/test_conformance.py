"""The shared interface, held: every framework module in frameworks.FRAMEWORKS has the same calls with
the same arguments and defaults, builds the same network for the same model name, saves and loads
it back to the same logits, trains with the same meaning, and raises the same exception for the
same bad input. Adding a framework means adding it to frameworks.py and passing this file.

The checks are functions (signature_differences, error_differences) so that the last tests can show
them catching a module that diverges.
"""
import inspect
import re
import time
import types
from pathlib import Path

import numpy as np
import pytest

import frameworks
import interface
from data import load_mnist
from interface import HISTORY_KEYS, TrainingHook, learning_rate_schedule

MODULES = {name: frameworks.framework_module(name) for name in frameworks.FRAMEWORKS}

# The interface (ARCHITECTURE.md): each shared call's shared arguments, in order. A module may add its
# own options after them, never between them; their defaults must be the same everywhere.
SHARED_ARGUMENTS = {
    "set_seed": ["seed"],
    "build_model": ["name"],
    "make_cnn": ["num_conv_layers", "activation", "base_channels", "kernel_size", "hidden_units", "pooling",
                 "padding", "batch_norm", "dropout", "in_channels", "image_size", "num_classes"],
    "fit": ["model", "x_train", "y_train", "x_val", "y_val", "epochs", "batch_size", "learning_rate", "seed",
            "augment", "progress", "schedule", "optimizer", "weight_decay", "restore_best", "hook", "betas"],
    "make_optimizer": ["model", "optimizer", "learning_rate", "weight_decay", "betas"],
    "evaluate": ["model", "x", "y", "batch_size"],
    "count_parameters": ["model"],
    "save": ["model", "path"],
    "load": ["path"],
}
FILE_TYPES = {"numpy": ".npz", "pytorch": ".pt", "keras": ".keras"}


def signature_differences(modules, shared=SHARED_ARGUMENTS):
    """Every way in which the modules' shared calls differ: a missing call, shared arguments missing or
    out of order, or a default that is not the same in all of them. [] when they conform."""
    problems, reference = [], {}
    for module_name, module in modules.items():
        for call, names in shared.items():
            function = getattr(module, call, None)
            if function is None:
                problems.append(f"{module_name}: no {call}")
                continue
            parameters = list(inspect.signature(function).parameters.values())
            leading = [parameter.name for parameter in parameters[:len(names)]]
            if leading != names:
                problems.append(f"{module_name}.{call}: shared arguments {leading}, expected {names} first")
                continue
            for parameter in parameters[:len(names)]:
                key = (call, parameter.name)
                reference.setdefault(key, (module_name, parameter.default))
                first_module, default = reference[key]
                if parameter.default != default:
                    problems.append(f"{module_name}.{call}({parameter.name}={parameter.default!r}) but "
                                    f"{first_module} has {default!r}")
    return problems


def raised_by(modules, call):
    """{module name: the exception that call(module) raises, or None}."""
    raised = {}
    for name, module in modules.items():
        try:
            call(module)
            raised[name] = None
        except Exception as error:  # noqa: BLE001 - its type and message are what is compared
            raised[name] = error
    return raised


def error_differences(modules, cases):
    """The bad-input cases (label, call, expected type, message pattern) for which a module raises another
    type, or a message that does not say what was expected."""
    problems = []
    for label, call, expected, pattern in cases:
        for name, error in raised_by(modules, call).items():
            if type(error) is not expected:
                problems.append(f"{label}: {name} raised {type(error).__name__ if error else None}, "
                                f"expected {expected.__name__}")
            elif not re.search(pattern, str(error)):
                problems.append(f"{label}: {name}'s message {str(error)!r} does not match {pattern!r}")
    return problems


@pytest.fixture(scope="module")
def mnist_slice():
    """256 training, 128 validation images of MNIST: enough for fit to run a few steps."""
    data = load_mnist().first(train=256, val=128, test=128)
    return data.x_train, data.y_train, data.x_val, data.y_val


# --- The same calls, the same arguments and defaults ---

def test_every_shared_call_has_the_same_arguments_and_defaults():
    assert signature_differences(MODULES) == []


# --- One name, one network; save and load give the same logits ---

def model_names():
    return sorted(set().union(*(module.MODELS for module in MODULES.values())))


def trainable_sizes(module, model):
    """Sorted sizes of the trainable weight arrays: the same multiset means the same layers' shapes."""
    if isinstance(model, frameworks.CNN):
        return sorted(array.size for layer in model.layers for array in layer.params.values())
    if hasattr(model, "trainable_weights"):  # Keras
        return sorted(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    return sorted(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


@pytest.mark.parametrize("name", model_names())
def test_a_model_name_is_one_network_and_survives_save_and_load(name, tmp_path):
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    built = {}
    for framework, module in MODULES.items():
        if name not in module.MODELS:  # a framework without this model says so, the same way in all
            with pytest.raises(ValueError, match=rf"model name must be one of .*, got '{name}'"):
                module.build_model(name)
            continue
        module.set_seed(0)
        model = module.build_model(name)
        path = module.save(model, tmp_path / f"{name}{FILE_TYPES[framework]}")
        assert isinstance(path, Path) and path.is_file()
        loaded = module.load(path)
        np.testing.assert_allclose(frameworks.predict_logits(loaded, x), frameworks.predict_logits(model, x),
                                   rtol=0, atol=1e-6, err_msg=f"{framework} {name}: logits after save and load")
        built[framework] = (module.count_parameters(model), trainable_sizes(module, model))
    assert built, name
    assert len(set(count for count, _ in built.values())) == 1, f"{name}: parameter counts {built}"
    assert len(set(tuple(sizes) for _, sizes in built.values())) == 1, f"{name}: weight shapes differ"


MAKE_CNN_OPTIONS = [dict(), dict(num_conv_layers=3, activation="tanh", batch_norm=True, dropout=0.3),
                    dict(pooling="avg", padding=False, kernel_size=5), dict(pooling="stride", activation="linear"),
                    dict(num_conv_layers=1, base_channels=4, hidden_units=16, num_classes=5)]


@pytest.mark.parametrize("options", MAKE_CNN_OPTIONS, ids=str)
def test_make_cnn_builds_the_same_network_and_survives_save_and_load(options, tmp_path):
    counts = {}
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    for framework, module in MODULES.items():
        module.set_seed(0)
        model = module.make_cnn(**options)
        loaded = module.load(module.save(model, tmp_path / f"cnn{FILE_TYPES[framework]}"))
        np.testing.assert_allclose(frameworks.predict_logits(loaded, x), frameworks.predict_logits(model, x),
                                   rtol=0, atol=1e-6)
        counts[framework] = (module.count_parameters(model), trainable_sizes(module, model),
                             [kind for _, kind, _ in frameworks.model_layers(model) if kind != "zeropadding2d"])
    assert len({str(value) for value in counts.values()}) == 1, counts


# --- fit means the same thing ---

@pytest.mark.parametrize("framework", frameworks.FRAMEWORKS)
def test_fit_returns_the_same_history_and_keeps_the_best_validation_epoch(framework, mnist_slice):
    module = MODULES[framework]
    x_train, y_train, x_val, y_val = mnist_slice
    rng = module.set_seed(0)
    assert isinstance(rng, np.random.Generator)
    model = module.build_model("simple", channels=(4, 8), hidden_units=16)
    # A high constant rate makes the validation accuracy move between epochs, so best and last differ.
    history = module.fit(model, x_train, y_train, x_val, y_val, epochs=4, batch_size=32, learning_rate=3e-2,
                         augment=True, progress=False, schedule="constant")
    assert set(history) == set(HISTORY_KEYS)
    assert all(len(values) == 4 for values in history.values())
    loss, accuracy = module.evaluate(model, x_val, y_val)
    assert isinstance(loss, float) and isinstance(accuracy, float)
    assert accuracy == pytest.approx(max(history["val_accuracy"]), abs=1e-6)  # the best epoch's weights


@pytest.mark.parametrize("framework", frameworks.FRAMEWORKS)
def test_the_hook_sees_every_step_with_the_clock_stopped_and_can_stop_training(framework, mnist_slice, monkeypatch):
    module = MODULES[framework]
    x_train, y_train, x_val, y_val = mnist_slice
    module.set_seed(0)
    model = module.build_model("simple", channels=(4, 8), hidden_units=16)
    # Every fit reads the hook's interface.TrainingClock, which reads interface.time.perf_counter: a clock
    # that each check moves forward by an hour. If the training clock ran during checks, it would show.
    hour, moved = 3600.0, types.SimpleNamespace(offset=0.0)
    monkeypatch.setattr(interface, "time",
                        types.SimpleNamespace(perf_counter=lambda: time.perf_counter() + moved.offset))
    calls = []

    def check(step, seconds):  # a check as long as an hour, as far as the clocks can tell
        calls.append((step, seconds))
        moved.offset += hour
        return step == 5

    history = module.fit(model, x_train, y_train, x_val, y_val, epochs=3, batch_size=64, progress=False,
                         hook=TrainingHook(on_step_end=check))
    assert [step for step, _ in calls] == [1, 2, 3, 4, 5]  # 4 steps per epoch: it stopped in epoch 2
    assert len(history["seconds"]) == 2
    seconds = [value for _, value in calls]
    assert all(0 < later - earlier < hour for earlier, later in zip(seconds, seconds[1:]))
    assert 0 < sum(history["seconds"]) < hour  # five hours of checks, none of them training time


def nan_fit(module, data):
    module.set_seed(0)
    model = module.build_model("mlp", hidden_sizes=(8,), dropout=0.0)
    x_train, y_train, x_val, y_val = data
    module.fit(model, x_train, y_train, x_val, y_val, epochs=2, batch_size=64, learning_rate=1e30,
               optimizer="sgd", progress=False)


def test_a_diverging_fit_stops_with_the_same_error(mnist_slice):
    for name, module in MODULES.items():
        with pytest.raises(FloatingPointError, match=r"training diverged: the loss became .* at epoch 1, step"):
            nan_fit(module, mnist_slice)


# --- The same bad input, the same exception ---

def bad_input_cases(data):
    x_train, y_train, x_val, y_val = data

    def fit(module, **changes):
        arguments = {**dict(x_train=x_train[:64], y_train=y_train[:64], x_val=x_val[:32], y_val=y_val[:32],
                            epochs=1, progress=False), **changes}
        model = module.build_model("simple", channels=(2, 4), hidden_units=8)
        module.fit(model, **arguments)

    def evaluate(module, x, y):
        module.evaluate(module.build_model("simple", channels=(2, 4), hidden_units=8), x, y)

    return [  # (what, the call, the exception, a pattern its message matches: what was expected)
        ("fit: uint8 images", lambda m: fit(m, x_train=(x_train[:64] * 255).astype(np.uint8)), TypeError,
         r"x_train must be a floating array .* got dtype uint8"),
        ("fit: images without the channel axis", lambda m: fit(m, x_train=x_train[:64, 0]), ValueError,
         r"x_train must have 4 dimensions \(N, C, H, W\)"),
        ("fit: 3 channels for a 1-channel model", lambda m: fit(m, x_train=np.repeat(x_train[:64], 3, 1)),
         ValueError, r"x_train must have 1 channel"),
        ("fit: a label out of range", lambda m: fit(m, y_train=np.full(64, 10)), ValueError,
         r"labels must lie in \[0, 10\), got values from 10 to 10"),
        ("fit: float labels", lambda m: fit(m, y_val=y_val[:32].astype(np.float32)), ValueError,
         r"labels must be integers of shape \(32,\)"),
        ("fit: augment='yes'", lambda m: fit(m, augment="yes"), TypeError, r"augment must be True or False"),
        ("fit: epochs=0", lambda m: fit(m, epochs=0), ValueError, r"epochs must be a positive int, got 0"),
        ("fit: an unknown schedule", lambda m: fit(m, schedule="linear"), ValueError,
         r"schedule must be one of \[.*'constant', 'cosine'.*\], got 'linear'"),
        ("fit: an unknown optimizer", lambda m: fit(m, optimizer="rmsprop"), ValueError,
         r"optimizer must be one of \['adam', 'sgd'\], got 'rmsprop'"),
        ("fit: beta2 of 1.5", lambda m: fit(m, betas=(0.9, 1.5)), ValueError,
         r"betas must be a pair \(beta1, beta2\) of numbers in \[0, 1\), got \(0.9, 1.5\)"),
        ("fit: 32x32 images for a 28x28 model",
         lambda m: fit(m, x_train=np.pad(x_train[:64], ((0, 0), (0, 0), (2, 2), (2, 2)))), ValueError, r"x_train must hold 28x28 images, the size this model was built for, got shape \(64, 1, 32, 32\)"),
        ("evaluate: 14x14 images for a 28x28 model", lambda m: evaluate(m, x_val[:8, :, ::2, ::2], y_val[:8]),
         ValueError, r"x must hold 28x28 images, the size this model was built for, got shape \(8, 1, 14, 14\)"),
        ("make_optimizer: an unknown optimizer", lambda m: m.make_optimizer(m.build_model("mlp"), "rmsprop"),
         ValueError, r"optimizer must be one of \['adam', 'sgd'\], got 'rmsprop'"),
        ("evaluate: uint8 images", lambda m: evaluate(m, (x_val[:8] * 255).astype(np.uint8), y_val[:8]), TypeError,
         r"x must be a floating array"),
        ("evaluate: a label out of range", lambda m: evaluate(m, x_val[:8], np.full(8, -1)), ValueError,
         r"labels must lie in \[0, 10\)"),
        ("build_model: an unknown name", lambda m: m.build_model("lenet"), ValueError,
         r"model name must be one of \[.*'simple'.*\], got 'lenet'"),
        ("make_cnn: an even kernel", lambda m: m.make_cnn(kernel_size=4), ValueError,
         r"kernel_size must be an odd positive int, got 4"),
        ("make_cnn: an unknown activation", lambda m: m.make_cnn(activation="softplus"), ValueError,
         r"activation must be one of \[.*'relu'.*\], got 'softplus'"),
        ("make_cnn: an unknown pooling", lambda m: m.make_cnn(pooling="min"), ValueError,
         r"pooling must be one of \['avg', 'max', 'stride'\], got 'min'"),
        ("make_cnn: 5 conv blocks", lambda m: m.make_cnn(num_conv_layers=5), ValueError,
         r"num_conv_layers must be an int from 1 to 4, got 5"),
        ("load: a missing file", lambda m: m.load(Path("no-such-model") / f"x{FILE_TYPES[m_name(m)]}"),
         FileNotFoundError, r"no-such-model"),
    ]


def test_one_cycle_gives_the_same_rate_at_every_step_in_all_three():
    """The shared one_cycle schedule: from lr / 25 up to lr over the first quarter, then down to ~0;
    PyTorch's LambdaLR and Keras's StepRates follow cnn_from_scratch.learning_rate_schedule step for step."""
    rates = learning_rate_schedule(0.01, 40, "one_cycle")  # (40,)
    assert rates[0] == pytest.approx(0.01 / 25) and rates[10] == pytest.approx(0.01) and rates.argmax() == 10
    assert np.all(np.diff(rates[:11]) > 0) and np.all(np.diff(rates[10:]) < 0) and rates[-1] < 0.01 / 100
    torch_model = MODULES["pytorch"].build_model("simple", channels=(2, 4), hidden_units=8)
    optimizer = MODULES["pytorch"].make_optimizer(torch_model, "adam", 0.01)
    scheduler = MODULES["pytorch"].make_scheduler(optimizer, 40, schedule="one_cycle")
    torch_rates = []
    for _ in range(40):
        torch_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(torch_rates, rates, rtol=1e-12)
    keras_model = MODULES["keras"].compile_model(MODULES["keras"].build_model("simple", channels=(2, 4), hidden_units=8),
                                                 0.01, schedule="one_cycle", total_steps=40)
    schedule = keras_model.optimizer._learning_rate
    np.testing.assert_allclose([float(schedule(step)) for step in range(40)], rates, rtol=1e-6)  # float32
    assert "one_cycle" in interface.SCHEDULES and set(interface.SCHEDULES) <= set(MODULES["keras"].SCHEDULES)


def m_name(module):
    return next(name for name, other in MODULES.items() if other is module)


def test_the_same_bad_input_raises_the_same_exception_everywhere(mnist_slice):
    assert error_differences(MODULES, bad_input_cases(mnist_slice)) == []


def test_a_corrupt_file_is_a_value_error_everywhere(tmp_path):
    for name, module in MODULES.items():
        path = tmp_path / f"corrupt{FILE_TYPES[name]}"
        path.write_bytes(b"not a model")
        with pytest.raises(ValueError, match="corrupt"):
            module.load(path)


# --- One name, one meaning ---

def shared_model_names():
    return sorted(set.intersection(*(set(module.MODELS) for module in MODULES.values())))


@pytest.mark.parametrize("name", shared_model_names())
def test_a_models_builder_takes_its_arguments_in_the_same_order_everywhere(name):
    """The arguments every framework's builder of a model has come in one order (a module's own, such as
    NumPy's rng or Keras's augment, may sit among them)."""
    names = {framework: list(inspect.signature(module.MODELS[name]).parameters)
             for framework, module in MODULES.items()}
    common = set.intersection(*(set(value) for value in names.values()))
    orders = {framework: [argument for argument in value if argument in common] for framework, value in names.items()}
    assert len({tuple(order) for order in orders.values()}) == 1, orders
    assert {"in_channels", "num_classes"} <= common


def test_make_optimizer_returns_one_optimizer_everywhere():
    kinds = {}
    for framework, module in MODULES.items():
        model = module.build_model("mlp", hidden_sizes=(8,))
        adam = module.make_optimizer(model, "adam", 0.01, weight_decay=0.1)
        sgd = module.make_optimizer(model, "sgd", 0.01)
        assert not isinstance(adam, tuple) and not isinstance(sgd, tuple), framework
        kinds[framework] = (type(adam).__name__.lower().startswith("adam"), type(sgd).__name__ == "SGD")
    assert set(kinds.values()) == {(True, True)}, kinds


def test_an_mlp_without_dropout_has_the_same_layers_everywhere():
    layers = {framework: [kind for _, kind, _ in frameworks.model_layers(module.build_model("mlp", dropout=0.0))]
              for framework, module in MODULES.items()}
    assert all("dropout" not in kinds for kinds in layers.values()), layers
    assert len({tuple(kinds) for kinds in layers.values()}) == 1, layers


def test_save_and_load_have_no_second_names():
    for name, module in MODULES.items():
        for other in ("save_model", "load_model", "save_checkpoint", "load_checkpoint"):
            assert not hasattr(module, other), f"{name}.{other}: save and load are the one way"


def test_pytorch_checks_tensors_as_it_checks_arrays(mnist_slice):
    """Tensors get the checks and messages that NumPy arrays get, in fit and evaluate."""
    import torch

    module = MODULES["pytorch"]
    x_train, y_train, x_val, y_val = mnist_slice
    model = module.build_model("simple", channels=(2, 4), hidden_units=8)
    small = torch.from_numpy(x_val[:8, :, ::2, ::2].copy())
    with pytest.raises(ValueError, match=r"x must hold 28x28 images, the size this model was built for"):
        module.evaluate(model, small, torch.from_numpy(y_val[:8]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        module.fit(model, torch.from_numpy(x_train[:64]), torch.full((64,), 10), x_val, y_val, epochs=1,
                   progress=False)
    with pytest.raises(ValueError, match=r"x_train must hold 28x28 images"):
        module.fit(model, small, torch.from_numpy(y_val[:8]), x_val, y_val, epochs=1, progress=False)


# --- The checks catch a module that diverges ---

def test_the_signature_check_catches_a_changed_default_or_a_missing_argument():
    numpy_module = MODULES["numpy"]

    def fit_with_other_default(model, x_train, y_train, x_val, y_val, epochs=10, batch_size=64, learning_rate=2e-3,
                               seed=0, augment=False, progress=True, schedule="cosine", optimizer="adam",
                               weight_decay=0.0, restore_best=True, hook=None, betas=(0.9, 0.999)):
        """A fit whose epochs default differs from the other modules' (5)."""

    diverging = types.SimpleNamespace(**{call: getattr(numpy_module, call) for call in SHARED_ARGUMENTS})
    diverging.fit = fit_with_other_default
    problems = signature_differences({"numpy": numpy_module, "diverging": diverging})
    assert problems == ["diverging.fit(epochs=10) but numpy has 5"]
    diverging.fit, diverging.save = numpy_module.fit, lambda path, model: None  # arguments swapped
    assert signature_differences({"numpy": numpy_module, "diverging": diverging}) == [
        "diverging.save: shared arguments ['path', 'model'], expected ['model', 'path'] first"]


def test_the_error_check_catches_another_exception_type():
    diverging = types.SimpleNamespace(build_model=lambda name: (_ for _ in ()).throw(KeyError(name)))
    cases = [("build_model: an unknown name", lambda m: m.build_model("lenet"), ValueError, "lenet")]
    assert error_differences({"numpy": MODULES["numpy"], "diverging": diverging}, cases) == [
        "build_model: an unknown name: diverging raised KeyError, expected ValueError"]
