"""The shape of the project (the README's module map): the lesson never imports the lab, imports run one
way with no cycle, the framework modules share interface.py and not the NumPy lesson, the NumPy lesson
opens with convolution, the one-epoch functions stay short, and the README stays a tutorial.
Read from the source with `ast`: nothing is imported or run."""
import ast
import inspect
from pathlib import Path

import pytest

import cnn_from_scratch
import cnn_pytorch

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(path.stem for path in ROOT.glob("*.py"))
LESSON = {"data", "interface", "cnn_from_scratch", "fast_conv", "cnn_pytorch", "cnn_keras", "exercises",
          "layer_functions", "mistakes"}
LAB = set(MODULES) - LESSON


def project_imports(name):
    """The project modules that module `name` imports anywhere in its file (top level or inside functions)."""
    tree = ast.parse((ROOT / f"{name}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(MODULES)


GRAPH = {name: project_imports(name) for name in MODULES}


def test_the_lesson_never_imports_the_lab():
    assert {"frameworks", "experiments", "report", "stats", "explorer", "visualize_features"} <= LAB
    crossings = {name: sorted(GRAPH[name] & LAB) for name in LESSON if GRAPH[name] & LAB}
    assert crossings == {}


def test_the_framework_modules_share_interface_and_not_the_numpy_lesson():
    assert GRAPH["interface"] == set()  # NumPy and the standard library only
    assert GRAPH["fast_conv"] <= {"interface"}  # the vectorized convolution and pooling, NumPy only
    assert GRAPH["cnn_from_scratch"] <= {"interface", "data", "fast_conv"}
    for name in ("cnn_pytorch", "cnn_keras"):
        assert "cnn_from_scratch" not in GRAPH[name] and "interface" in GRAPH[name], name


def test_imports_run_one_way_with_no_cycle():
    visiting, done = set(), set()

    def visit(name, path):
        if name in visiting:
            pytest.fail(f"import cycle: {' -> '.join(path + [name])}")
        if name in done:
            return
        visiting.add(name)
        for imported in sorted(GRAPH[name]):
            visit(imported, path + [name])
        visiting.discard(name)
        done.add(name)

    for name in MODULES:
        visit(name, [])


def test_the_numpy_lesson_opens_with_convolution():
    source = (ROOT / "cnn_from_scratch.py").read_text(encoding="utf-8").splitlines()
    last_import = max(number for number, line in enumerate(source) if line.startswith(("import ", "from ")))
    first_convolution = next(number for number, line in enumerate(source) if line.startswith("def conv2d_"))
    assert first_convolution - last_import <= 60


def test_no_module_is_much_over_1200_lines():
    lengths = {name: len((ROOT / f"{name}.py").read_text(encoding="utf-8").splitlines()) for name in MODULES}
    assert {name: length for name, length in lengths.items() if length > 1250} == {}


def test_one_epoch_functions_take_at_most_six_parameters():
    for function in (cnn_from_scratch.train_epoch, cnn_pytorch.train_one_epoch):
        assert len(inspect.signature(function).parameters) <= 6, function.__qualname__


def test_there_is_one_numpy_training_loop():
    assert not hasattr(cnn_from_scratch.CNN, "fit") and not hasattr(cnn_from_scratch.CNN, "train_epoch")
    exercises_source = (ROOT / "exercises.py").read_text(encoding="utf-8")
    assert "fit(model" in exercises_source and ".backward(dlogits)" not in exercises_source


def test_the_readme_stays_a_tutorial_of_at_most_6000_words():
    words = len((ROOT / "README.md").read_text(encoding="utf-8").split())  # as `wc -w` counts them
    assert words <= 6000, f"README.md has {words} words; measurement detail belongs in RESULTS.md or BENCHMARKS.md"
