"""experiments.py and report.py: how rows are paired and compared, a whole sweep at a tiny budget, resuming,
failures, bad input, and RESULTS.md = summary.json = runs.jsonl. The statistics themselves: test_stats.py."""
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import experiments
import report
# A budget smaller than --quick, so that the whole sweep (every experiment, 2 seeds) runs in seconds.
TINY = dataclasses.replace(experiments.BUDGETS["quick"], name="quick", framework_train_size=128, sweep_train_size=64,
                           transfer_pretrain_size=64, transfer_per_class=(1, 2, 3), transfer_steps=2,
                           validation_size=64, test_size=128, checks_per_epoch=2, framework_seeds=2,
                           time_to_99_seeds=2)
EXPECTED_FIGURES = {f"experiments_{name}.png" for name in (
    "frameworks", "time_to_99", "training_history", "depth", "activations", "efficiency", "ablation", "transfer", "summary")}
# The run must end the way time_to_target measures it: every check with the clock stopped.


# --- Comparing rows ---

def test_rows_are_paired_only_when_they_started_from_the_same_weights():
    row = {"seeds": [0, 1, 2], "test_accuracy": {"values": [0.1, 0.2, 0.3]}, "initial_weights": ["a", "b", "c"],
           "config": {"batch_size": 64}}
    same = {**row, "test_accuracy": {"values": [0.2, 0.3, 0.4]}}
    other = {**same, "initial_weights": ["a", "x", "c"]}
    assert report.seed_values(row, same)[2] is True
    assert report.seed_values(row, other)[2] is False
    assert report.seed_values(row, {**same, "initial_weights": [None] * 3})[2] is False  # unknown: not paired


def test_the_best_row_is_chosen_on_validation_and_a_tie_goes_to_the_row_listed_first():
    """The long budget's 2 and 3 conv blocks had as many correct validation images, and float sums of the
    seeds' accuracies told them apart in the last bit: a tie must not be decided by rounding."""
    def row(label, val, test):
        return {"label": label, "val_accuracy": {"mean": val}, "test_accuracy": {"mean": test}}
    tied = [row("1 block", 0.98, 0.99), row("2 blocks", 2.9711999999999996 / 3, 0.9916),
            row("3 blocks", 2.9712 / 3, 0.9926)]
    assert tied[1]["val_accuracy"]["mean"] < tied[2]["val_accuracy"]["mean"]  # only in the last bit
    [(best, others)] = report.comparison_groups("depth", tied)
    assert best["label"] == "2 blocks" and [other["label"] for other in others] == ["1 block", "3 blocks"]
    [(best, _)] = report.comparison_groups("depth", [tied[0], tied[2], tied[1]])
    assert best["label"] == "3 blocks"  # listed first now
    [(best, _)] = report.comparison_groups("depth", [row("a", 0.9900, 0.995), row("b", 0.9902, 0.990)])
    assert best["label"] == "b"  # chosen on validation, never on test


def fake_comparison(label, against, difference, detected, se=0.001, df=4):
    return {"label": label, "against": against, "difference": difference, "detected": detected, "se": se, "df": df,
            "ci95": [difference - 3 * se, difference + 3 * se]}


def test_the_budget_section_says_an_effect_changed_only_where_the_change_is_detected():
    """Depth's best row (by validation) is 3 blocks in one budget and 2 in the other: every pair is compared in
    both, matched whichever way round; 'the effect changed' only where the test of the change detects it."""
    def summary(depth, same_size):
        return {"experiments": {"depth": {"comparisons": depth},
                                "efficiency": {"comparisons": [], "same_size": same_size}}}
    default = summary([fake_comparison("2 blocks", "1 blocks", 0.020, True),
                       fake_comparison("3 blocks", "2 blocks", 0.001, True, se=0.0004),
                       fake_comparison("3 blocks", "1 blocks", 0.030, True)],
                      [fake_comparison("CNN a", "MLP a", 0.010, True)])
    long = summary([fake_comparison("1 blocks", "2 blocks", -0.005, True),  # the other way round
                    fake_comparison("3 blocks", "2 blocks", 0.001, False, se=0.0006)],  # same effect, not detected
                   [fake_comparison("CNN a", "MLP a", 0.010, True)])
    changes = {later["label"] + " vs " + later["against"]: (earlier, change)
               for _, earlier, later, change in report.budget_changes(default, long)}
    assert set(changes) == {"1 blocks vs 2 blocks", "3 blocks vs 2 blocks", "CNN a vs MLP a"}  # 3 vs 1: long lacks it
    earlier, change = changes["1 blocks vs 2 blocks"]
    assert earlier["difference"] == -0.020 and earlier["ci95"] == pytest.approx([-0.023, -0.017])  # turned round
    assert change["change"] == pytest.approx(0.015) and change["says"] == "the effect changed"
    earlier, change = changes["3 blocks vs 2 blocks"]  # detected, then not: the change is 0
    assert change["change"] == 0 and change["says"] == "the verdicts differ, the effect is not shown to change"
    assert changes["CNN a vs MLP a"][1]["says"] == "no change detected"  # detected in both, the same
    assert not changes["CNN a vs MLP a"][1]["detected"]


def test_a_budget_resumed_on_another_machine_names_both():
    records = [{"machine": {"cpu": cpu, "cores": 2}, "seed": seed, "finished_at": day}
               for cpu, seed, day in (("Xeon", 0, "2026-12-03T01"), ("Xeon", 1, "2026-12-03T02"),
                                      ("EPYC", 3, "2026-12-08T01"))]
    assert report.machines(records) == [
        {"cpu": "Xeon", "cores": 2, "runs": 2, "seeds": [0, 1], "finished": ["2026-12-03T01", "2026-12-03T02"]},
        {"cpu": "EPYC", "cores": 2, "runs": 1, "seeds": [3], "finished": ["2026-12-08T01", "2026-12-08T01"]}]


def test_each_cnn_is_compared_with_the_mlp_of_about_its_size():
    runs = experiments.plan_efficiency(TINY, [0])
    rows = [{"label": run.label, "config": run.config, "test_accuracy": {"mean": 0.9}} for run in runs]
    pairs = report.same_size_pairs(rows)
    assert [(cnn["label"], mlp["label"]) for cnn, mlp in pairs] == [
        ("CNN 4/8 channels, 32 hidden", "MLP 16 hidden"), ("CNN 8/16 channels, 64 hidden", "MLP 64 hidden"),
        ("CNN 16/32 channels, 128 hidden", "MLP 256 hidden"), ("CNN 32/64 channels, 256 hidden", "MLP 1024 hidden")]
    rows[-1]["test_accuracy"]["mean"] = None  # MLP 1024 has not run yet: its pair waits
    assert len(report.same_size_pairs(rows)) == 3


def test_the_report_learns_the_sweeps_from_their_configurations():
    """experiments.py defines the sweeps; report.py, which never imports it, finds them in the rows it summarizes."""
    summary = {"experiments": {name: {"rows": [{"config": run.config} for run in plan(TINY, [0])]}
                               for name, plan in experiments.EXPERIMENTS.items()}}
    assert report.sweep_experiments(summary) == {*experiments.SWEEPS, "epochs"}  # epochs: sweep rows, trained longer


# --- A whole sweep at a tiny budget ---

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    patch = pytest.MonkeyPatch()
    patch.setitem(experiments.BUDGETS, "quick", TINY)
    # Fresh processes: tested below; the sweeps train in two workers, compared below with --jobs 1.
    experiments.main(["--quick", "--out", str(out), "--quiet", "--same-process", "--jobs", "2"])
    patch.undo()
    return out


def test_quick_sweep_writes_every_file(tiny_sweep):
    assert {path.name for path in (tiny_sweep / "plots").iterdir()} == EXPECTED_FIGURES
    text = (tiny_sweep / "RESULTS.md").read_text()
    assert "QUICK RUN" in text
    for figure in EXPECTED_FIGURES:  # every figure is linked from RESULTS.md
        assert f"plots/{figure}" in text
    summary = json.loads((tiny_sweep / "summary.json").read_text())
    assert summary["quick"] and set(summary["experiments"]) == set(experiments.EXPERIMENTS)
    assert summary["failed_runs"] == 0


def test_time_to_target_runs_record_their_checks_and_start_from_the_same_weights(tiny_sweep):
    records = [json.loads(line) for line in (tiny_sweep / "runs.jsonl").read_text().splitlines()]
    timed = [record for record in records if record["config"].get("part") == "time_to_target"]
    networks = {json.dumps([record["config"]["model"], record["config"]["model_kwargs"]]) for record in timed}
    for seed in (0, 1):
        for network in networks:  # the three frameworks and the recipe's variants start from the same weights
            starts = {record["metrics"]["initial_weights"] for record in timed if record["seed"] == seed
                      and json.dumps([record["config"]["model"], record["config"]["model_kwargs"]]) == network}
            assert len(starts) == 1
    assert {record["framework"] for record in timed} == {"numpy", "pytorch", "keras"} and len(networks) == 3
    for record in timed:
        metrics = record["metrics"]  # the steps it really trained, whether or not it stopped mid-epoch
        assert metrics["steps"] >= max([step for step, _, _ in metrics["test_checks"]], default=1)
        assert metrics["flops_per_image"] > 0 and metrics["matrix_product_gflops"] > 0
        checks = record["metrics"]["test_checks"]
        steps_per_check = max(1, math.ceil(TINY.framework_train_size / record["config"]["batch_size"])
                              // TINY.checks_per_epoch)
        assert [step for step, _, _ in checks] == [steps_per_check * (k + 1) for k in range(len(checks))]
        if "schedule_epochs" in record["config"]:  # training ends with a schedule shorter than the run
            steps_per_epoch = math.ceil(TINY.framework_train_size / record["config"]["batch_size"])
            assert metrics["steps"] <= round(record["config"]["schedule_epochs"] * steps_per_epoch)
        assert all(later >= earlier for (_, earlier, _), (_, later, _) in zip(checks, checks[1:]))


def test_runs_jsonl_records_everything_a_run_needs(tiny_sweep):
    records = [json.loads(line) for line in (tiny_sweep / "runs.jsonl").read_text().splitlines()]
    planned = [run for plan in experiments.EXPERIMENTS.values() for run in plan(TINY, [0, 1])]
    assert {record["key"] for record in records} == {run.key for run in planned}
    assert len(records) == len({run.key for run in planned})  # a configuration two experiments share: trained once
    for record in records:
        assert record["status"] == "ok"
        assert {"experiment", "config", "seed", "framework", "metrics", "machine", "git_commit", "load_before",
                "wall_seconds"} <= set(record)
        assert {"cpu", "cores", "versions"} <= set(record["machine"])
        metrics = record["metrics"]
        assert {"test_accuracy", "train_seconds", "parameters", "history"} <= set(metrics)
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"} <= set(metrics["history"])
    frameworks = {record["framework"] for record in records if record["experiment"] == "frameworks"}
    assert frameworks == {"numpy", "pytorch", "keras"}


def test_results_md_numbers_are_summary_numbers_which_are_runs_numbers(tiny_sweep):
    records = {json.loads(line)["key"]: json.loads(line) for line in (tiny_sweep / "runs.jsonl").read_text().splitlines()}
    summary = json.loads((tiny_sweep / "summary.json").read_text())
    text = (tiny_sweep / "RESULTS.md").read_text()
    for name, plan in experiments.EXPERIMENTS.items():
        runs = plan(TINY, [0, 1])
        for row in summary["experiments"][name]["rows"]:
            values = [records[run.key]["metrics"]["test_accuracy"] for run in runs if run.label == row["label"]]
            assert row["test_accuracy"]["values"] == values
            assert row["test_accuracy"]["mean"] == pytest.approx(np.mean(values))
            assert row["test_accuracy"]["std"] == (pytest.approx(np.std(values, ddof=1)) if len(values) > 1 else None)
            if name == "epochs":  # one seed's validation accuracy, doubled epochs beside the budget's
                doubled = records[next(run.key for run in runs if run.label == row["label"])]["metrics"]
                line = next(line for line in text.splitlines()
                            if line.startswith("| {}: {} |".format(*row["config"]["compared_with"])))
                assert f"| {100 * doubled['val_accuracy']:.2f} |" in line
                continue
            if name == "transfer":
                continue  # a grid of methods by sizes, checked below
            if row["config"].get("part") == "time_to_target":  # its table gives seconds and steps to the target
                label = row["label"]  # "numpy, speedrun recipe" or (the recipe's ablation) "recipe: batch 64"
                start = (f"| {label.removeprefix('recipe: ')} |" if label.startswith("recipe: ")
                         else "| {} | {} |".format(*label.removesuffix(" recipe").split(", ")))
                line = next(line for line in text.splitlines() if line.startswith(start)
                            and report.censored_text(row["to_target"]["steps"]) in line)
                assert f"of {len(row['seeds'])}" in line
                continue
            line = next(line for line in text.splitlines() if line.startswith(f"| {row['label']} |")
                        and report.percent(row["test_accuracy"]) in line)
            assert report.spread(row["test_accuracy"]) in line
    for row in summary["experiments"]["transfer"]["rows"]:
        method_line = next(line for line in text.splitlines()
                           if line.startswith(f"| {experiments.TRANSFER_METHODS[row['config']['method']]} |"))
        assert report.percent(row["test_accuracy"]) in method_line


def test_a_second_run_in_the_same_folder_trains_nothing(tiny_sweep, monkeypatch):
    before = (tiny_sweep / "runs.jsonl").read_text()
    monkeypatch.setitem(experiments.BUDGETS, "quick", TINY)
    monkeypatch.setattr(experiments, "train_and_test", lambda *args, **kwargs: 1 / 0)  # any training would raise
    experiments.main(["--quick", "--out", str(tiny_sweep), "--quiet", "--same-process"])
    assert (tiny_sweep / "runs.jsonl").read_text() == before


def test_report_rebuilds_every_file_byte_for_byte_without_training(tiny_sweep, monkeypatch):
    """`python experiments.py --report` twice gives identical files: summary.json, RESULTS.md and the figures."""
    def files():
        return {path.name: path.read_bytes() for path in [tiny_sweep / "summary.json", tiny_sweep / "RESULTS.md",
                                                          *sorted((tiny_sweep / "plots").iterdir())]}
    monkeypatch.setitem(experiments.BUDGETS, "quick", TINY)
    monkeypatch.setattr(experiments, "execute", lambda *args, **kwargs: 1 / 0)
    experiments.main(["--quick", "--out", str(tiny_sweep), "--quiet", "--same-process", "--report"])
    before = files()
    experiments.main(["--quick", "--out", str(tiny_sweep), "--quiet", "--same-process", "--report"])
    assert files() == before


# --- Failures, resuming and bad input ---

def ok_metrics(accuracy):
    history = {"train_loss": [1.0], "train_accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [accuracy],
               "learning_rate": [0.1], "seconds": [0.01]}
    return {"test_accuracy": accuracy, "test_loss": 1.0, "train_seconds": 0.01, "parameters": 3, "history": history}


def failing(context, config, seed):
    raise FloatingPointError("training diverged (a test)")


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(tmp_path):
    runs = [experiments.Run("depth", "bad", {"n": 1}, 0, failing),
            experiments.Run("depth", "good", {"n": 2}, 0, lambda context, config, seed: ok_metrics(0.9))]
    context = experiments.Context(None, TINY, "cpu")
    assert experiments.execute(runs, context, tmp_path, quiet=True) == 2
    records = experiments.read_runs(tmp_path / "runs.jsonl")
    assert [record["status"] for record in records] == ["failed", "ok"]
    assert records[0]["error"]["type"] == "FloatingPointError" and "diverged" in records[0]["error"]["message"]
    summary = report.summarize(records, runs, TINY, recipes={}, transfer_methods=experiments.TRANSFER_METHODS)
    assert summary["failed_runs"] == 1
    assert summary["experiments"]["depth"]["rows"][0]["failed"][0]["error"] == "training diverged (a test)"
    assert experiments.execute(runs, context, tmp_path, quiet=True) == 0  # resumed: nothing left to train


def test_corrupt_line_is_reported_with_its_number_and_its_run_trained_again(tmp_path):
    runs = [experiments.Run("depth", label, {"n": n}, 0, lambda context, config, seed: ok_metrics(0.9))
            for n, label in enumerate(("a", "b"))]
    context = experiments.Context(None, TINY, "cpu")
    experiments.execute(runs, context, tmp_path, quiet=True)
    path = tmp_path / "runs.jsonl"
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n" + second[:40])  # a killed process left half a line, with no newline
    warnings = []
    assert len(experiments.read_runs(path, warn=warnings.append)) == 1
    assert re.search(r"runs\.jsonl:2: corrupt line skipped", warnings[0])
    assert experiments.execute(runs, context, tmp_path, quiet=True) == 1  # only the lost run again
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["label"] == "b"  # the new record has a line of its own


@pytest.mark.parametrize("argv, message", [
    (["--only", "depth", "widths"], r"--only: unknown experiment\(s\) widths for the default budget; expected names "
                                    r"from depth, activations"),
    (["--budget", "frameworks", "--only", "depth"], r"unknown experiment\(s\) depth for the frameworks budget; "
                                                    r"expected names from frameworks, time_to_99"),
    (["--budget", "long", "--only", "transfer"], r"unknown experiment\(s\) transfer for the long budget; expected "
                                                 r"names from depth, efficiency, ablation"),
    (["--seeds", "0"], r"--seeds must be a positive number of seeds, got 0"),
])
def test_bad_arguments_name_what_was_expected(argv, message, capsys):
    with pytest.raises(SystemExit):
        experiments.main(argv)
    assert re.search(message, capsys.readouterr().err)


def test_unwritable_out_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit, match=r"--out .*a_file/results: cannot write there .*expected a folder"):
        experiments.main(["--out", str(blocker / "results"), "--only", "depth"])


def test_a_frameworks_run_in_a_fresh_process_gives_the_same_result(tmp_path):
    data = experiments.load_mnist().first(val=TINY.validation_size, test=TINY.test_size)
    config = {"part": "simple_cnn", "framework": "numpy", "model": "simple", "epochs": 1,
              **experiments.SIMPLE_CNN}
    results = []
    for isolate in (True, False):
        context = experiments.Context(data, TINY, "cpu", isolate=isolate)
        results.append(experiments.in_fresh_process(experiments.train_framework)(context, config, seed=0))
    in_child, here = results
    assert in_child["test_accuracy"] == here["test_accuracy"]  # the same computation, bit for bit
    assert in_child["history"]["train_loss"] == here["history"]["train_loss"]


def test_a_failure_in_a_fresh_process_is_recorded_with_the_child_s_error(tmp_path):
    config = {"part": "simple_cnn", "framework": "fortran", "model": "simple", "epochs": 1,
              **experiments.SIMPLE_CNN}
    runs = [experiments.Run("frameworks", "fortran", config, 0, experiments.in_fresh_process(
        experiments.train_framework))]
    context = experiments.Context(experiments.load_mnist(), TINY, "cpu")
    experiments.execute(runs, context, tmp_path, quiet=True)
    (record,) = experiments.read_runs(tmp_path / "runs.jsonl")
    assert record["status"] == "failed" and record["fresh_process"]
    assert record["error"]["type"] == "ValueError" and "framework must be one of" in record["error"]["message"]
    assert "framework_module" in record["error"]["traceback"]  # the child's traceback, not the parent's


def test_the_committed_report_shows_every_budget_and_what_is_still_missing(tmp_path, monkeypatch):
    """The report of results/, results/frameworks/ and results/long/: each budget's sections, a partly run
    long budget said so (no budget section yet), then complete (the budget section), and a budget with no runs
    named."""
    budgets = {name: dataclasses.replace(TINY, name=name, experiments=experiments.BUDGETS[name].experiments)
               for name in ("default", "frameworks", "long")}
    monkeypatch.setattr(experiments, "BUDGETS", {**experiments.BUDGETS, **budgets})
    rng = np.random.default_rng(0)

    def fake_train(context, config, seed):  # a plausible record, without training
        return {**ok_metrics(float(0.9 + 0.05 * rng.random())), "val_accuracy": float(0.9 + 0.05 * rng.random())}

    context = experiments.Context(data=None, budget=None, device="cpu")
    folders = {name: tmp_path / name for name in budgets}
    for name, folder in folders.items():
        folder.mkdir()
        runs = [dataclasses.replace(run, train=fake_train) for run in experiments.planned_runs(budgets[name])]
        experiments.execute(runs[:len(runs) // 2] if name == "long" else runs, context, folder, quiet=True)

    def report_text(names):
        path = tmp_path / "RESULTS.md"
        experiments.build_report({name: folders[name] for name in names}, path, tmp_path / "plots", quiet=True)
        return path.read_text()

    text = report_text(folders)
    assert "## Frameworks: one SimpleCNN" in text and "## Time to 99% test accuracy (frameworks budget" in text
    assert "### Depth: 1 to 4 conv blocks (default budget" in text and "### Depth: 1 to 4 conv blocks (long budget" in text
    done, planned = map(int, re.search(r"Partly run: (\d+) of its (\d+) trainings", text).groups())
    assert 0 < done < planned
    assert "What changes with the budget" not in text
    runs = [dataclasses.replace(run, train=fake_train) for run in experiments.planned_runs(budgets["long"])]
    experiments.execute(runs, context, folders["long"], quiet=True)  # the rest of the long budget
    text = report_text(folders)
    assert "Partly run" not in text and "## What changes with the budget" in text and "### Is 1 epoch enough?" in text
    text = report_text(["default", "long"])  # the frameworks budget has not run
    assert "No runs yet for the frameworks budget" in text and "## Frameworks" not in text


# --- Runs side by side (--jobs) ---

def test_jobs_1_and_2_give_the_same_numbers_for_every_run(tiny_sweep, tmp_path, monkeypatch):
    """The tiny sweep trained its sweeps, transfer and epochs in two workers; one at a time, each run gives the
    same accuracies and losses to the last bit (each trains with RUN_THREADS threads either way)."""
    monkeypatch.setitem(experiments.BUDGETS, "quick", TINY)
    beside = [name for name in TINY.experiments if name not in experiments.TIMED]
    experiments.main(["--quick", "--out", str(tmp_path), "--quiet", "--jobs", "1", "--only", *beside])
    two = {record["key"]: record for record in experiments.read_runs(tiny_sweep / "runs.jsonl")}
    one = experiments.read_runs(tmp_path / "runs.jsonl")
    assert len(one) == len({run.key for run in experiments.planned_runs(TINY, beside)}) > 20
    for record in one:
        other = two[record["key"]]
        assert (record["jobs"], other["jobs"]) == (1, 2)
        assert record["threads"] == other["threads"] == experiments.RUN_THREADS
        for metric in ("test_accuracy", "test_loss", "val_accuracy"):
            assert record["metrics"][metric] == other["metrics"][metric], (record["label"], metric)
        assert record["metrics"]["history"]["train_loss"] == other["metrics"]["history"]["train_loss"]
    timed = [record for record in two.values() if record["experiment"] in experiments.TIMED]
    assert timed and all(record["jobs"] == 1 for record in timed)  # alone, even with --jobs 2
    assert json.loads((tiny_sweep / "summary.json").read_text())["jobs"] == 2
    assert "up to 2 at a time (`--jobs`): the sweeps' training seconds are not speeds" in (
        tiny_sweep / "RESULTS.md").read_text()


def test_the_data_starts_at_the_same_alignment_in_every_process(mnist):
    """MKL and oneDNN add in another order for data at another offset: without this, a worker's runs (data
    unpickled) and this process's differed in their last digits."""
    data = mnist.first(train=100, val=10, test=10)
    copy = experiments.aligned_data(replace_x_train_by_an_offset_view(data))
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert getattr(copy, name).ctypes.data % experiments.ALIGNMENT == 0
        assert np.array_equal(getattr(copy, name), getattr(data, name))
    assert experiments.aligned_data(None) is None


def replace_x_train_by_an_offset_view(data):
    buffer = np.empty(data.x_train.nbytes + 4, dtype=np.uint8)[4:]  # 4 bytes past wherever malloc put it
    x_train = buffer.view(np.float32).reshape(data.x_train.shape)
    x_train[...] = data.x_train
    return dataclasses.replace(data, x_train=x_train)


def note(config, event):
    """Appends 'n event pid time' to the file config["log"]: which process trained which run, and when."""
    with open(config["log"], "a") as f:
        f.write(f"{config['n']} {event} {os.getpid()} {time.time()}\n")


def sleeping(context, config, seed):
    """A run that trains nothing: it sleeps config["sleep"] seconds, noted in config["log"]."""
    note(config, "start")
    time.sleep(config["sleep"])
    note(config, "end")
    return ok_metrics(0.5 + config["n"] / 1000)


def crashing(context, config, seed):
    os._exit(3)  # as a crash in C would: no exception, no answer


def logged(path):
    """{n: {event: (pid, time)}} from a log that `note` wrote."""
    runs = {}
    for line in Path(path).read_text().splitlines():
        n, event, pid, when = line.split()
        runs.setdefault(int(n), {})[event] = (int(pid), float(when))
    return runs


def sleeping_runs(folder, count, seconds, experiment="depth"):
    return [experiments.Run(experiment, f"run {n}", {"n": n, "sleep": seconds, "log": str(folder / "log")}, 0,
                            sleeping) for n in range(count)]


def test_workers_never_write_and_a_crash_or_an_error_fails_its_run_alone(tmp_path, monkeypatch):
    writes = []  # the records written through this process's append_record (the workers' would not be seen)
    original = experiments.append_record
    monkeypatch.setattr(experiments, "append_record", lambda path, record: (writes.append(record["key"]),
                                                                            original(path, record)))
    runs = sleeping_runs(tmp_path, 6, 0.2)
    runs[2:2] = [experiments.Run("depth", "crash", {"n": 100}, 0, crashing),
                 experiments.Run("depth", "raise", {"n": 101}, 0, failing)]
    context = experiments.Context(None, TINY, "cpu")
    assert experiments.execute(runs, context, tmp_path, quiet=True, jobs=2) == 8
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    records = {record["label"]: record for record in map(json.loads, lines)}  # every line a whole record
    assert len(lines) == len(writes) == len(records) == 8 and sorted(writes) == sorted(run.key for run in runs)
    assert records["crash"]["status"] == "failed" and records["crash"]["error"]["type"] == "WorkerDied"
    assert "exit code 3" in records["crash"]["error"]["message"]
    assert records["raise"]["error"]["type"] == "FloatingPointError" and "diverged" in records["raise"]["error"]["message"]
    assert all(records[f"run {n}"]["status"] == "ok" and records[f"run {n}"]["jobs"] == 2 for n in range(6))
    assert os.getpid() not in worker_pids(tmp_path)  # trained in the workers
    assert experiments.execute(runs, context, tmp_path, quiet=True, jobs=2) == 0  # resumed: nothing left


def test_timed_experiments_train_alone_in_this_process_with_the_default_threads(tmp_path):
    timed = [experiments.Run(experiment, experiment, {"n": 10 + index, "sleep": 0.2, "log": str(tmp_path / "log")}, 0,
                             sleeping) for index, experiment in enumerate(("time_to_99", "frameworks"))]
    runs = [*sleeping_runs(tmp_path, 4, 0.2), *timed]  # planned last, trained first
    experiments.execute(runs, experiments.Context(None, TINY, "cpu"), tmp_path, quiet=True, jobs=2)
    log, records = logged(tmp_path / "log"), experiments.read_runs(tmp_path / "runs.jsonl")
    assert [record["experiment"] for record in records[:2]] == ["time_to_99", "frameworks"]  # first, before any worker
    for record in records:
        timed, n = record["experiment"] in experiments.TIMED, record["config"]["n"]
        assert (record["jobs"], record["threads"]) == ((1, experiments.torch.get_num_threads()) if timed
                                                       else (2, experiments.RUN_THREADS))
        assert (log[n]["start"][0] == os.getpid()) == timed
        if timed:  # no other run trained while it did
            start, end = log[n]["start"][1], log[n]["end"][1]
            assert all(other["end"][1] <= start or other["start"][1] >= end for m, other in log.items() if m != n)


SCRIPT = """import sys
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
import experiments, test_experiments
out = Path({out!r})
runs = test_experiments.sleeping_runs(out, 8, {seconds})
experiments.execute(runs, experiments.Context(None, test_experiments.TINY, "cpu"), out, quiet=True, jobs=2)
"""


def start_parent(folder, seconds):
    """experiments.execute of 8 sleeping runs in 2 workers, in a process of its own (and its own session, as a
    terminal's foreground job)."""
    script = SCRIPT.format(root=str(Path(experiments.__file__).parent), tests=str(Path(__file__).parent),
                           out=str(folder), seconds=seconds)
    return subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stderr=subprocess.PIPE)


def wait_for(condition, seconds=60):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in "ZX"  # a zombie has stopped; its new parent reaps it


def worker_pids(folder):
    path = folder / "log"
    return {events["start"][0] for events in logged(path).values()} if path.exists() else set()


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc to see the workers end")
def test_a_killed_parent_resumes_with_no_run_lost_or_repeated_and_its_workers_stop(tmp_path):
    parent, path = start_parent(tmp_path, 0.3), tmp_path / "runs.jsonl"
    wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= 2)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    before = path.read_text().splitlines()
    workers = worker_pids(tmp_path)
    assert len(workers) == 2 and parent.pid not in workers
    wait_for(lambda: all(gone(pid) for pid in workers), seconds=10)  # they notice their parent is gone
    runs = sleeping_runs(tmp_path, 8, 0.3)
    keys = {json.loads(line)["key"] for line in before if line.endswith("}")}
    assert experiments.execute(runs, experiments.Context(None, TINY, "cpu"), tmp_path, quiet=True) == 8 - len(keys)
    records = experiments.read_runs(path)
    assert path.read_text().splitlines()[:len(before)] == before  # nothing written before the kill is lost
    assert sorted(record["key"] for record in records) == sorted(run.key for run in runs)  # each run once


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc to see the workers end")
def test_ctrl_c_stops_the_workers(tmp_path):
    parent = start_parent(tmp_path, 30)
    wait_for(lambda: len(worker_pids(tmp_path)) == 2)
    os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process of the foreground job
    assert parent.wait(timeout=30) != 0 and b"KeyboardInterrupt" in parent.stderr.read()
    wait_for(lambda: all(gone(pid) for pid in worker_pids(tmp_path)), seconds=10)
    assert not (tmp_path / "runs.jsonl").exists()  # no run finished, none recorded


def test_transfer_runs_of_a_seed_stay_with_the_worker_that_trained_its_source_network():
    runs = [experiments.Run(experiment, "", {}, seed, None)
            for experiment, seed in (("depth", 0), ("transfer", 0), ("transfer", 1), ("transfer", 0))]
    assert experiments.next_run(runs, last_seed=0, busy_seeds={1}) == 1  # its own seed first
    assert experiments.next_run(runs, last_seed=None, busy_seeds={0}) == 2  # then a seed nobody is on
    assert experiments.next_run(runs, last_seed=None, busy_seeds={0, 1}) == 0  # then another experiment
    assert experiments.next_run(runs[1:], last_seed=None, busy_seeds={0, 1}) == 0  # then a seed somebody is on

