"""summary.json, RESULTS.md and the figures of experiments.py, from its runs.jsonl alone.

experiments.py trains and records, and says what it planned (the runs, the budget, the recipes, the
transfer methods); this module only reads what was recorded, so that `python experiments.py --report`
rebuilds every table and figure without training or loading any data, and every number in RESULTS.md
is one of summary.json, which is computed from runs.jsonl. It imports no framework and no figures
module; the tests and intervals come from stats.py. The story, top to bottom: the summary (each
configuration's statistics and its comparison with a reference), the tables of RESULTS.md written
from it, then the figures; matplotlib is imported only when a figure is drawn (new_figure).

Run it:
    python experiments.py --report      # summary.json, RESULTS.md and plots/experiments_* from results/
In a REPL:
    >>> import json, report
    >>> summary = json.load(open("results/summary.json"))
    >>> print("\n".join(report.section_sweep(summary, "depth", "Depth", "")))
"""
import json
import math
from dataclasses import asdict

import numpy as np

from interface import atomic_save  # a temporary file, then a rename: never a half-written RESULTS.md
from stats import ALPHA, POWER, describe, detectable_difference, difference_test, holm

# LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to document recognition",
# and Simard, Steinkraus and Platt (2003): published, not measured here.
PUBLISHED = [
    {"label": "LeNet-5 (LeCun et al. 1998)", "parameters": 60_000, "test_error": 0.0095,
     "training": "20 epochs on 60,000 images, no distortions"},
    {"label": "MLP 800 hidden, cross-entropy (Simard et al. 2003)", "parameters": 784 * 800 + 800 + 800 * 10 + 10,
     "test_error": 0.016, "training": "60,000 images trained to convergence, no distortions"},
]
# The project's original write-up: single runs, several never measured. Shown beside ours as its claim.
WRITE_UP_CLAIMS = {
    "frameworks": {"numpy": (0.850, 45.2), "pytorch": (0.987, 12.1), "keras": (0.991, 8.7)},
    "depth": {"1 conv block": 0.932, "2 conv blocks": 0.967, "3 conv blocks": 0.971, "4 conv blocks": 0.969},
    "activations": {"ReLU": 0.967, "Leaky ReLU": 0.971, "ELU": 0.965, "Tanh": 0.923},
}

# --- Summary: numbers from runs.jsonl alone ---

METRICS = ("test_accuracy", "val_accuracy", "best_val_accuracy", "train_seconds", "seconds_per_epoch",
           "images_per_second", "parameters", "seconds_to_target", "steps_to_target", "source_test_accuracy",
           "train_size", "val_size", "test_size", "steps", "flops_per_image", "matrix_product_gflops")
CURVES = ("val_accuracy", "train_loss")


def mean_curve(curves):
    """Per-epoch mean of several seeds' curves, over the epochs that all of them ran."""
    curves = [curve for curve in curves if curve]
    if not curves:
        return None
    length = min(len(curve) for curve in curves)
    return np.mean([curve[:length] for curve in curves], axis=0).tolist()


def summarize_group(label, config, records):
    """One configuration's row: every metric's values (in seed order) and statistics, its mean curves,
    and the fingerprint of each seed's initial weights (which pairs runs for the tests)."""
    ok = [record for record in records if record["status"] == "ok"]
    row = {"label": label, "config": config, "seeds": [record["seed"] for record in ok],
           "initial_weights": [record["metrics"].get("initial_weights") for record in ok],
           "failed": [{"seed": record["seed"], "error": record["error"]["message"]} for record in records
                      if record["status"] != "ok"]}
    for metric in METRICS:
        values = [record["metrics"].get(metric) for record in ok]
        if any(value is not None for value in values):
            row[metric] = {"values": values, **describe(values)}
    row["curves"] = {name: mean_curve([record["metrics"]["history"][name] for record in ok]) for name in CURVES}
    row["curves"]["first_conv_gradient_norm"] = mean_curve(
        [record["metrics"].get("first_conv_gradient_norm") for record in ok])
    return row


def validation_score(row):
    """The mean validation accuracy of the weights each run kept: what a best row is chosen by (never test).
    Rounded to 9 decimals, so that two rows with as many correct validation images tie instead of being told
    apart by the last bit of a float sum; max() then keeps the row listed first in the plan."""
    stats = row.get("val_accuracy") or row.get("best_val_accuracy")
    return round(stats["mean"], 9) if stats and stats["mean"] is not None else -1.0


def comparison_groups(experiment, rows):
    """Which rows are compared with which: (reference row, other rows) pairs. The reference is the
    ablation's reference by design, elsewhere the row with the best validation accuracy of its group."""
    scored = [row for row in rows if row.get("test_accuracy", {}).get("mean") is not None]
    if experiment in ("time_to_99", "epochs"):  # descriptive: medians of times, one seed's check
        return []
    if experiment == "ablation":
        return [(rows[0], [row for row in scored if row is not rows[0]])] if rows and rows[0] in scored else []
    if experiment == "frameworks":
        groups = [[row for row in rows if row["config"]["part"] == "simple_cnn"]]
    elif experiment == "transfer":
        groups = [[row for row in rows if row["config"]["per_class"] == k]
                  for k in sorted({row["config"]["per_class"] for row in rows})]
    elif experiment == "efficiency":
        groups = [[row for row in rows if row["config"]["model"] == model] for model in ("cnn", "mlp")]
    elif experiment == "activations":
        groups = [[row for row in rows if row["config"].get("optimizer", "adam") == optimizer]
                  for optimizer in ("adam", "sgd")]
    else:
        groups = [rows]
    pairs = []
    for group in groups:
        scored = [row for row in group if row.get("test_accuracy", {}).get("mean") is not None]
        if scored:
            best = max(scored, key=validation_score)
            pairs.append((best, [row for row in scored if row is not best]))
    return pairs


def seed_values(row, reference, metric="test_accuracy"):
    """(values of row, values of reference, paired). Paired, seed by seed, when both rows ran the same
    seeds (at least two) from the same initial weights (the same fingerprint) with the same batch size:
    then the same seed also drew the same batch order; otherwise every value, unpaired."""
    values = dict(zip(row["seeds"], row[metric]["values"]))
    reference_values = dict(zip(reference["seeds"], reference[metric]["values"]))
    weights, reference_weights = (dict(zip(item["seeds"], item["initial_weights"])) for item in (row, reference))
    common = sorted(set(values) & set(reference_values))
    paired = (len(common) >= 2 and row["config"].get("batch_size") == reference["config"].get("batch_size")
              and all(weights[seed] is not None and weights[seed] == reference_weights[seed] for seed in common))
    if paired:
        return [values[seed] for seed in common], [reference_values[seed] for seed in common], True
    return list(values.values()), list(reference_values.values()), False


def compare(experiment, rows):
    """Each row's test accuracy against its reference: the difference of means, the paired or Welch
    test, Holm's adjustment over the table, the verdict, and the difference the test could detect."""
    return compare_pairs(comparison_groups(experiment, rows))


def same_size_pairs(rows):
    """Efficiency's second table: each CNN against the MLP of about the same number of parameters (the
    widths are planned to match, the smallest CNN with the smallest MLP): [(MLP row, [CNN row]), ...]."""
    def family(model):
        return [row for row in rows if row["config"]["model"] == model]
    return [(mlp, [cnn]) for cnn, mlp in zip(family("cnn"), family("mlp"))
            if all(row.get("test_accuracy", {}).get("mean") is not None for row in (cnn, mlp))]


def compare_pairs(pairs):
    """compare() for given (reference, other rows) pairs: one table, one Holm family."""
    comparisons, samples = [], []
    for reference, others in pairs:
        for row in others:
            a, b, paired = seed_values(row, reference)
            test = difference_test(a, b, paired)
            comparisons.append({"label": row["label"], "against": reference["label"],
                                "difference": float(np.mean(a) - np.mean(b)), "n": [len(a), len(b)], **test})
            samples.append((a, b, paired))
    tested = sum(comparison["p"] is not None for comparison in comparisons)
    for comparison, adjusted, (a, b, paired) in zip(comparisons, holm([c["p"] for c in comparisons]), samples):
        comparison["p_adjusted"] = adjusted
        comparison["detected"] = adjusted is not None and adjusted < ALPHA
        # The strictest level Holm may apply (alpha / m): what this table could surely detect.
        comparison["detectable"] = detectable_difference(a, b, paired, alpha=ALPHA / max(tested, 1))
    return comparisons


def shared_configurations(runs):
    """Configurations that more than one table shows (trained once): [[(experiment, label), ...], ...]."""
    shown = {}
    for run in runs:
        shown.setdefault(json.dumps(run.config, sort_keys=True), set()).add((run.experiment, run.label))
    return [sorted(places) for places in shown.values() if len(places) > 1]


def summarize(records, runs, budget, recipes, transfer_methods):
    """summary.json: every planned configuration's statistics, computed from the records alone.

    Inputs: records from runs.jsonl; runs: the planned runs (objects with experiment, label, config,
    seed and key); budget: the Budget dataclass; recipes: the training recipes, written down as they were;
    transfer_methods: {method: name} of the transfer experiment, in the order its table shows them.
    """
    latest = {record["key"]: record for record in records}  # a key recorded twice: the last record counts
    planned = [latest[key] for key in dict.fromkeys(run.key for run in runs) if key in latest]
    experiments = {}
    for run in runs:
        groups = experiments.setdefault(run.experiment, {})
        groups.setdefault(run.label, (run.config, []))[1].extend([latest[run.key]] if run.key in latest else [])
    finished = sorted(record["finished_at"] for record in planned if record.get("finished_at"))
    summary = {"budget": asdict(budget), "quick": budget.name == "quick",
               "seeds": sorted({run.seed for run in runs}), "runs": len(planned),
               "planned_runs": len(dict.fromkeys(run.key for run in runs)),
               "rows_shown": sum(len(groups) * len({run.seed for run in runs}) for groups in experiments.values()),
               "shared_configurations": shared_configurations(runs),
               "failed_runs": sum(record["status"] != "ok" for record in planned),
               "wall_seconds": float(sum(record["wall_seconds"] for record in planned)),
               "finished": [finished[0], finished[-1]] if finished else None,
               "runs_with_other_processes": sum(bool(record["load_before"]["other_busy_processes"])
                                                for record in planned),
               "other_processes_seen": sorted({name for record in planned
                                               for name in record["load_before"]["other_busy_processes"]}),
               "max_load_average": max((record["load_before"]["load_average_1min"] or 0 for record in planned),
                                       default=None),
               "machine": planned[0]["machine"] if planned else None, "recipes": recipes,
               "git_commits": sorted({str(record["git_commit"]) for record in planned}),
               "published": PUBLISHED, "write_up_claims": WRITE_UP_CLAIMS, "transfer_methods": transfer_methods,
               "experiments": {}}
    for name, groups in experiments.items():
        rows = [summarize_group(label, config, records) for label, (config, records) in groups.items()]
        summary["experiments"][name] = {"rows": rows, "comparisons": compare(name, rows)}
        if name == "efficiency":
            summary["experiments"][name]["same_size"] = compare_pairs(same_size_pairs(rows))
    return summary


# --- RESULTS.md: tables written from summary.json ---


def percent(stats):
    """'98.91 ± 0.05' (mean ± standard deviation, in percent); one seed: the value alone."""
    if not stats or stats["mean"] is None:
        return "n/a"
    text = f"{100 * stats['mean']:.2f}"
    return text + (f" ± {100 * stats['std']:.2f}" if stats["std"] is not None else "")


def number(stats, digits=1):
    if not stats or stats["mean"] is None:
        return "n/a"
    text = f"{stats['mean']:,.{digits}f}"
    return text + (f" ± {stats['std']:,.{digits}f}" if stats["std"] is not None else "")


def whole(stats):
    """'4,861': a count that is the same in every seed (its mean)."""
    return "n/a" if not stats or stats["mean"] is None else f"{round(stats['mean']):,}"


def median_iqr(stats, digits=1):
    """'12.3 [11.0, 14.1]': the median and the interquartile range."""
    if not stats or stats.get("median") is None:
        return "n/a"
    return f"{stats['median']:,.{digits}f} [{stats['q1']:,.{digits}f}, {stats['q3']:,.{digits}f}]"


def spread(stats):
    """'[98.85, 98.97]': the lowest and highest seed, in percent."""
    return "n/a" if not stats or stats["min"] is None else f"[{100 * stats['min']:.2f}, {100 * stats['max']:.2f}]"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def p_text(p):
    return "n/a" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def verdict(comparison):
    """'detected' or 'not detected with n = 5 (above about 0.31 points: 80% of the time)'."""
    if comparison["detected"]:
        return "difference detected"
    n = comparison["n"][0] if comparison["test"] == "paired t" else "{} and {}".format(*comparison["n"])
    detectable = comparison.get("detectable")
    reach = "" if detectable is None else (f" (differences above about {100 * detectable:.2f} points would be "
                                           f"detected {100 * POWER:.0f}% of the time)")
    return f"not detected with n = {n}{reach}"


def comparison_cells(comparison):
    """The cells every table gives a comparison: difference, test, raw p, Holm-adjusted p, verdict."""
    if comparison is None:
        return ["reference", "", "", "", ""]
    return [f"{100 * comparison['difference']:+.2f} vs {comparison['against']}", comparison["test"],
            p_text(comparison["p"]), p_text(comparison["p_adjusted"]), verdict(comparison)]


COMPARISON_HEADER = ["difference (points)", "test", "p", "Holm p", "verdict"]


def n_seeds(row):
    stats = row.get("test_accuracy")
    failed = f", {len(row['failed'])} failed" if row["failed"] else ""
    return f"{stats['n'] if stats else 0}{failed}"


def budget_tag(summary):
    """'default budget: 6,000 images, 2 epochs, 5 seeds' for the sweeps' headings and figure titles."""
    budget = summary["budget"]
    return (f"{budget['name']} budget: {budget['sweep_train_size'] or 55000:,} images, {budget['sweep_epochs']} "
            f"epoch{'s' if budget['sweep_epochs'] > 1 else ''}, {len(summary['seeds'])} seeds")


def section_frameworks(summary):
    experiment, claims = summary["experiments"]["frameworks"], summary["write_up_claims"]["frameworks"]
    budget = summary["budget"]
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    simple = [row for row in experiment["rows"] if row["config"]["part"] == "simple_cnn"]
    lines = [f"## Frameworks: one SimpleCNN in NumPy, PyTorch and Keras ({budget['name']} budget: "
             f"{budget['framework_epochs']} epochs on "
             f"{budget['framework_train_size'] or 55000:,} images, {len(simple[0]['seeds']) if simple else 0} seeds)",
             "",
             "![frameworks](plots/experiments_frameworks.png)", "",
             "Same initial weights (copied with the weight-transfer functions), the same batches in the same order, "
             "fit's shared recipe (Adam, a cosine schedule), the final epoch's weights. Each seed's three runs are "
             "paired (the same start, the same batches), so the test is the paired t-test. Times are seconds of "
             "training only, measured the same way in each framework, one run after the other, each in a fresh "
             "process (after TensorFlow has trained in a process, NumPy and PyTorch train 2-4 times slower there).",
             "", table(["framework", "test accuracy %", "seeds", "min, max", "training s", "s per epoch",
                        "parameters", *COMPARISON_HEADER, "write-up's claim (single run, different networks)"],
                       [[row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                         number(row.get("train_seconds")), number(row.get("seconds_per_epoch")),
                         number(row.get("parameters"), 0), *comparison_cells(comparisons.get(row["label"])),
                         "{:.1f}%, {:.1f} s".format(100 * claims[row["label"]][0], claims[row["label"]][1])]
                        for row in simple]), ""]
    for row in simple:
        claim, stats = claims[row["label"]][0], row.get("test_accuracy")
        if stats and stats["mean"] is not None and not stats["min"] - 0.005 <= claim <= stats["max"] + 0.005:
            lines.append(f"- The write-up's {100 * claim:.1f}% for {row['label']} does not match what this code "
                         f"measures: {percent(stats)}% over {stats['n']} seeds.")
    return lines


def time_rows(summary, ablation=False):
    """The time-to-target rows: the recipes in three frameworks, or (ablation=True) the recipe's ablation."""
    return [row for row in frameworks_rows(summary, "time_to_target") if row["label"].startswith("recipe: ") == ablation]


def median_of(row, metric):
    """A metric's median over the seeds that have it (describe leaves None out); None when none has it."""
    return (row.get(metric) or {}).get("median")


def limit_seconds(row):
    """The machine's limit for a row: its median steps to the target, at count_flops per image, run at the
    median measured matrix-product speed. No run of this network and recipe can be faster."""
    steps, flops, gflops = (median_of(row, metric) for metric in
                            ("steps_to_target", "flops_per_image", "matrix_product_gflops"))
    if None in (steps, flops, gflops):
        return None
    return steps * row["config"]["batch_size"] * flops / (gflops * 1e9)


def never_reached(row):
    values = row.get("seconds_to_target", {}).get("values") or [None] * len(row["seeds"])  # none reached: no stats
    return ", ".join(str(seed) for seed, value in zip(row["seeds"], values) if value is None) or "none"


def reached(row):
    return f"{row.get('seconds_to_target', {}).get('n', 0)} of {len(row['seeds'])}"


def recipe_text(recipe):
    betas = ", ".join(str(beta) for beta in recipe["betas"])
    network = {"speedrun": "the speedrun network", "cnn": "make_cnn with BatchNorm"}.get(recipe["model"],
                                                                                     recipe["model"])
    return (f"{network}, batch {recipe['batch_size']}, Adam at learning rate {recipe['learning_rate']} with betas "
            f"({betas}), a {recipe['schedule'].replace('_', '-')} schedule")


def section_time_to_target(summary):
    recipes, budget = summary["recipes"]["time_to_99"], summary["budget"]
    target = 100 * summary["recipes"]["target"]
    rows, ablation = time_rows(summary), time_rows(summary, ablation=True)
    if not rows:
        return []
    epochs, seeds = budget["time_to_99_epochs"], len(rows[0]["seeds"])
    lines = ["", f"## Time to {target:.0f}% test accuracy ({budget['name']} budget: at most {epochs} "
                 f"epoch{'s' * (epochs > 1)} on {budget['framework_train_size'] or 55000:,} images, {seeds} "
                 f"seed{'s' * (seeds > 1)})", "",
             "![time to 99%](plots/experiments_time_to_99.png)", "",
             "Two recipes, each in all three frameworks from the same initial weights: "
             + "; ".join(f"**{name}**: {recipe_text(recipe)}" for name, recipe in recipes.items()) + ". The schedule "
             f"spans {epochs} epoch{'s' * (epochs > 1)}. The test accuracy is measured every "
             f"1/{budget['checks_per_epoch']} epoch with the training clock stopped, and the run ends at the first "
             "check that reaches the target. These speed records are the only use of the test set during "
             "training, and nothing is chosen on them. Median [interquartile range] over seeds. **The limit** is "
             "the time the median number of steps would take if every FLOP of their matrix products "
             "(count_flops) ran at the speed of one large matrix product on this machine, measured in each run "
             "(matrix_product_gflops); **% of the limit** is the limit over the median time.", "",
             table(["framework", "recipe", "reached", "seconds to target", "optimizer steps to target",
                    "never reached (seeds)", "ms per step", "limit (s)", "% of the limit"],
                   [[row["label"].split(",")[0], row["label"].split(", ")[1].replace(" recipe", ""), reached(row),
                     median_iqr(row.get("seconds_to_target")), median_iqr(row.get("steps_to_target"), 0),
                     never_reached(row), ms_per_step(row), *limit_cells(row)] for row in rows])]
    speeds = describe([speed for row in rows + ablation[1:]  # the ablation's first row is PyTorch's speedrun row
                       for speed in row.get("matrix_product_gflops", {}).get("values", [])])
    if speeds["n"]:
        lines += ["", f"The matrix-product speed measured in these {speeds['n']} runs: {speeds['min']:.0f} to "
                      f"{speeds['max']:.0f} GFLOP/s, median {speeds['median']:.0f}."]
    if ablation:
        lines += ["", "**The speedrun recipe, one choice changed at a time** (PyTorch, the same seeds; the first row is "
                      "the PyTorch speedrun row above). Descriptive: with this many seeds and runs that never reach "
                      "the target, only differences larger than the interquartile ranges stand out.", "",
                  table(["change", "reached", "seconds to target", "optimizer steps to target", "never reached (seeds)",
                         "ms per step"],
                        [[row["label"].removeprefix("recipe: "), reached(row), median_iqr(row.get("seconds_to_target")),
                          median_iqr(row.get("steps_to_target"), 0), never_reached(row), ms_per_step(row)]
                         for row in ablation])]
    return lines


def limit_cells(row):
    limit, seconds = limit_seconds(row), median_of(row, "seconds_to_target")
    if limit is None or not seconds:
        return ["n/a", "n/a"]
    return [f"{limit:.2f}", f"{100 * limit / seconds:.0f}%"]


def ms_per_step(row):
    """Median milliseconds per optimizer step up to the target, over the seeds that reached it."""
    pairs = [(seconds, steps) for seconds, steps in zip(row.get("seconds_to_target", {}).get("values", []),
                                                        row.get("steps_to_target", {}).get("values", []))
             if seconds is not None and steps]
    return f"{1000 * float(np.median([seconds / steps for seconds, steps in pairs])):.1f}" if pairs else "n/a"


def section_sweep(summary, name, title, description, extra=None, figure=None):
    """A sweep's table: every configuration with its comparison; extra: (header, cell function)."""
    experiment = summary["experiments"][name]
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    claims = summary["write_up_claims"].get(name, {})
    header = ["configuration", "test accuracy %", "seeds", "min, max", "parameters", *COMPARISON_HEADER]
    header += [extra[0]] if extra else []
    header += ["write-up's claim"] if claims else []
    rows = []
    for row in experiment["rows"]:
        cells = [row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                 number(row.get("parameters"), 0), *comparison_cells(comparisons.get(row["label"]))]
        cells += [extra[1](row)] if extra else []
        if claims:
            claim = claims.get(row["label"].split(",")[0])
            cells.append("n/a" if claim is None or ", SGD" in row["label"] else f"{100 * claim:.1f}%")
        rows.append(cells)
    figure = figure or figure_file(name)
    return [f"### {title} ({budget_tag(summary)})", "", f"![{title}](plots/{figure})", "", description, "",
            table(header, rows), ""]


def gradient_norms(row):
    curve = row["curves"].get("first_conv_gradient_norm")
    return "n/a" if not curve else f"{curve[0]:.2e} → {curve[-1]:.2e}"


def section_transfer(summary):
    experiment, transfer_methods = summary["experiments"]["transfer"], summary["transfer_methods"]
    rows = {(row["config"]["method"], row["config"]["per_class"]): row for row in experiment["rows"]}
    sizes = sorted({k for _, k in rows})
    source = next((row["source_test_accuracy"] for row in experiment["rows"] if "source_test_accuracy" in row), None)
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    any_row = next(iter(experiment["rows"]), {})
    steps = {k: whole(rows[(method, k)].get("steps")) for method, k in rows if method == "scratch"}

    def cell(row):
        comparison = comparisons.get(row["label"])
        if comparison is None:
            return f"{percent(row.get('test_accuracy'))} (best by validation)"
        return f"{percent(row.get('test_accuracy'))} ({100 * comparison['difference']:+.2f}, {verdict(comparison)})"

    body = [[name] + [cell(rows[(method, k)]) if (method, k) in rows else "n/a" for k in sizes]
            for method, name in transfer_methods.items()]
    return [f"## Transfer: digits 0-4 to digits 5-9 ({summary['budget']['name']} budget, {len(summary['seeds'])} seeds)",
            "", "![transfer](plots/experiments_transfer.png)", "",
            f"A make_cnn trained on {summary['budget']['transfer_pretrain_size']:,} images of digits 0 to 4 "
            f"({percent(source)}% on their test images), then adapted to digits 5 to 9 from a few labelled images "
            f"per class. Every method trains about {summary['budget']['transfer_steps']} optimizer steps (whole "
            f"epochs: {', '.join(f'{steps[k]} steps at {k} per class' for k in sizes)}) and keeps the epoch with "
            f"the best accuracy on {whole(any_row.get('val_size'))} validation images of digits 5-9; the test "
            f"accuracy is on the {whole(any_row.get('test_size'))} test images of digits 5-9. Each cell: mean ± "
            "std, then the difference from the best method at that size (chosen by validation accuracy), tested "
            "with Welch's t-test (the methods start from different weights) and Holm's correction over the table. "
            "The protocol follows an exercise of chapter 11 of Géron's *Hands-On Machine Learning* (there with a "
            "fully connected network and 100 images per class).", "",
            table(["method"] + [f"{k} per class: test accuracy %" for k in sizes], body), ""]


def section_same_size(summary):
    """Efficiency's second table: the CNN against the MLP of about its size, one Holm family."""
    rows = {row["label"]: row for row in summary["experiments"]["efficiency"]["rows"]}
    cells = [[comparison["label"], number(rows[comparison["label"]].get("parameters"), 0), comparison["against"],
              number(rows[comparison["against"]].get("parameters"), 0), *comparison_cells(comparison)]
             for comparison in summary["experiments"]["efficiency"].get("same_size", [])]
    return ["The CNN against the MLP of about the same number of parameters (Welch's test: the two start from "
            "different weights; Holm's correction over these rows):", "",
            table(["CNN", "parameters", "MLP", "parameters", "difference (points)", "test", "p", "Holm p",
                   "verdict"], cells), ""] if cells else []


def standing(comparison):
    """Where a row stands against its reference: 'lower' or 'higher' when a difference is detected, else
    'not told apart' (the reference itself counts as not told apart from itself)."""
    if comparison is None or not comparison["detected"]:
        return "not told apart"
    return "higher" if comparison["difference"] > 0 else "lower"


def flip_cell(comparison, name):
    if comparison is None:
        return "reference" if name == "ablation" else "reference (best by validation)"
    return (f"{100 * comparison['difference']:+.2f} vs {comparison['against']} "
            f"({'detected' if comparison['detected'] else 'not detected'})")


def verdict_flips(default, long):
    """The comparisons that both budgets make, with their verdicts side by side, flips first.

    A row is matched by its label, not by its reference: a sweep's reference is its best row by
    validation, and that may differ between budgets. So a verdict is the row's standing against its
    reference (detected lower, detected higher, or not told apart), and it flips when the standing
    changes."""
    rows = []
    for name, family in (("depth", "comparisons"), ("efficiency", "comparisons"), ("efficiency", "same_size"),
                         ("ablation", "comparisons")):
        if name not in default["experiments"] or name not in long["experiments"]:
            continue
        before = {c["label"]: c for c in default["experiments"][name].get(family, [])}
        after = {c["label"]: c for c in long["experiments"][name].get(family, [])}
        if family == "same_size":
            labels = [label for label in after if label in before]
        else:
            shown = {row["label"] for row in default["experiments"][name]["rows"]}
            labels = [row["label"] for row in long["experiments"][name]["rows"] if row["label"] in shown]
        for label in labels:
            short, longer = before.get(label), after.get(label)
            if short is None and longer is None and name == "ablation":
                continue  # the ablation's reference, by design in both budgets
            flipped = standing(short) != standing(longer)
            what = label if family == "comparisons" else f"{label} against {(longer or short)['against']}"
            rows.append((not flipped, [name if family == "comparisons" else f"{name} (same size)", what,
                                       flip_cell(short, name), flip_cell(longer, name),
                                       "**flips**" if flipped else "holds"]))
    return [cells for _, cells in sorted(rows, key=lambda item: item[0])]


def sweep_experiments(summary):
    """The experiments of a summary trained with the sweep recipe (summary["recipes"]["sweep"]): those whose
    configurations say whether they augment, as only experiments.sweep_config writes them (the sweeps, and
    the epochs check, which trains sweep configurations for longer)."""
    return {name for name, experiment in summary["experiments"].items()
            if any("augment" in row["config"] for row in experiment["rows"])}


def header_lines(summary):
    """Machine, runs, load, duration and budget of one summary."""
    budget, machine, sweep = summary["budget"], summary["machine"] or {}, summary["recipes"]["sweep"]
    shared = "; ".join(" = ".join(f"{experiment}: {label}" for experiment, label in places)
                       for places in summary["shared_configurations"]) or "none"
    return [f"**Budget `{budget['name']}`** ({', '.join(summary['experiments'])}): "
            f"{summary['runs']} trainings ({summary['failed_runs']} failed) for {summary['rows_shown']} table rows "
            f"× seeds; one configuration shown in several tables is trained once ({shared}). Seeds "
            f"{summary['seeds']}. Finished between {', '.join(summary['finished'] or ['n/a'])}, "
            f"{summary['wall_seconds'] / 60:.1f} minutes of runs in all.",
            *([] if summary["runs"] == summary["planned_runs"] else
              [f"- **Partly run: {summary['runs']} of its {summary['planned_runs']} trainings.** `python experiments.py "
               f"--budget {budget['name']}` resumes it. Its rows show the seeds they have."]),
            f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores; " +
            ", ".join(f"{package} {version}" for package, version in machine.get("versions", {}).items() if version) +
            f". {summary['runs_with_other_processes']} runs saw another process on a CPU as they started "
            f"({', '.join(summary['other_processes_seen']) or 'none'}); highest 1-minute load average "
            f"{summary['max_load_average'] or 0:.2f}, this script included; commit(s) "
            f"{', '.join(summary['git_commits'])}.",
            *([] if not sweep_experiments(summary) else [
            f"- Sweeps (depth, activations, efficiency, ablation): PyTorch models on "
            f"{budget['sweep_train_size'] or 55000:,} training images for {budget['sweep_epochs']} epochs, batch "
            f"{sweep['batch_size']}, Adam at learning rate {sweep['learning_rate']} with a cosine schedule, the "
            f"best validation epoch kept; augmentation where a row says so is "
            f"{summary['recipes'].get('sweep_augmentation', 'affine')} (rotation, shift and zoom of each image). "
            f"Test accuracy on {budget['test_size'] or 10000:,} test images, validation on "
            f"{budget['validation_size'] or 5000:,}."]), ""]


HOW_TO_READ = [
    "**How to read the tables.** Mean ± standard deviation (ddof=1) over seeds, then the lowest and highest seed. "
    "Each row is compared with one reference: the ablation's reference, or else the row of its group with the best "
    "validation accuracy (never the best test accuracy; a tie, as many correct validation images, goes to the row "
    "listed first). The test is the paired t-test where both rows started each "
    "seed from the same initial weights and batch order (recorded as a fingerprint of the weights), Welch's t-test "
    f"otherwise. The p-values of a table are adjusted with Holm's method, so that the chance of calling any "
    f"non-difference in the table a difference is at most {ALPHA}. \"Difference detected\" means Holm p < {ALPHA}; "
    "\"not detected\" is not \"no difference\": it says how large a true difference this test would have detected "
    f"{100 * POWER:.0f}% of the time, at the strictest level Holm applies, taking the observed spread for the true "
    "one. One model's test accuracy near 99% has a sampling error of about 0.1 points by itself: "
    "sqrt(0.99 * 0.01 / 10,000) = 0.001.", ""]


def the_budgets(summaries):
    """(main, frameworks, long) of {budget name: summary}: the committed report's three budgets (any of them
    None when it has no runs), or one folder's summary (a quick run, another --out) as main and frameworks."""
    if {"default", "frameworks", "long"} & set(summaries):
        return summaries.get("default"), summaries.get("frameworks"), summaries.get("long")
    main = next(iter(summaries.values()), None)
    return main, main, None


def write_report(summaries, path):
    """RESULTS.md, every number formatted from the summaries ({budget name: summary.json})."""
    main, frameworks, long = the_budgets(summaries)
    lines = ["# Results", "",
             "Generated by `python experiments.py` (the default budget), `--budget frameworks` and `--budget long` "
             "from `results/runs.jsonl`, `results/frameworks/runs.jsonl` and `results/long/runs.jsonl`; do not edit "
             "by hand. `python experiments.py --report` rebuilds this page, every `summary.json` and the figures "
             "without training.", ""]
    present = list({id(summary): summary for summary in (main, frameworks, long) if summary}.values())
    if not present:
        atomic_write(path, "\n".join(lines + ["No runs yet."]))
        return
    if present[0]["quick"]:
        lines += ["**QUICK RUN (`--quick`): tiny budgets that only check that everything runs. These numbers say "
                  "nothing about the models.**", ""]
    for summary in present:
        lines += header_lines(summary)
    missing = [name for name, summary in (("default", main), ("frameworks", frameworks), ("long", long))
               if summary is None and not present[0]["quick"]]
    if missing:
        lines += [f"**No runs yet for the {' and '.join(missing)} budget{'s' * (len(missing) > 1)}** (`python "
                  "experiments.py --budget NAME` trains it). Until then every verdict holds for the budget its table "
                  "names.", ""]
    lines += HOW_TO_READ
    if frameworks and "frameworks" in frameworks["experiments"]:
        lines += section_frameworks(frameworks) + ["", "![training history](plots/experiments_training_history.png)",
                                                   ""]
    if frameworks and "time_to_99" in frameworks["experiments"]:
        lines += section_time_to_target(frameworks) + [""]
    lines += ["## The sweeps", ""] if any(summary and sweep_experiments(summary) for summary in (main, long)) else []
    for name, title, description, extra in SWEEP_SECTIONS:
        for summary, suffix in ((main, ""), (long, "_long")):
            if summary and name in summary["experiments"]:
                lines += section_sweep(summary, name, title, description(summary), extra and EXTRAS[extra],
                                       figure_file(name, suffix))
                lines += section_same_size(summary) if name == "efficiency" else []
    if long:
        lines += ["### Learning curves of the long budget", "",
                  "![long-budget learning curves](plots/experiments_long_curves.png)", "",
                  "Validation accuracy per epoch, mean over seeds: whether each configuration stopped improving.", ""]
    for summary in (long or main,):
        if summary and "epochs" in summary["experiments"]:
            lines += section_epochs(summary)
    if main and long and long["runs"] == long["planned_runs"]:
        flips = verdict_flips(main, long)
        lines += ["## What changes with the budget", "",
                  f"The comparisons that both budgets make: {budget_tag(main)} against {budget_tag(long)}. A row's "
                  "verdict is where it stands against its reference: detected lower, detected higher, or not told "
                  "apart (the reference itself included). It **flips** when that standing changes. A sweep's "
                  "reference is its best row by validation in each budget, so it may change too. Why they flip: "
                  "the README's [What changes with the budget](README.md#what-changes-with-the-budget).", "",
                  table(["experiment", "row", "default budget", "long budget", "verdict"], flips), ""]
    elif main and long:
        lines += ["The verdicts that flip between the default and the long budget are set side by side here once "
                  "every training of the long budget has run.", ""]
    if main and "transfer" in main["experiments"]:
        lines += section_transfer(main)
    lines += ["## Figures", "", "![summary](plots/experiments_summary.png)", "",
              "What a trained SimpleCNN learns (its filters, feature maps, Grad-CAM) is drawn by "
              "`python visualize_features.py`, not by this experiment: see "
              "[the filters](plots/features_01_filters.png), [the feature maps](plots/features_02_feature_maps.png) "
              "and the README's Part 2.", ""]
    atomic_write(path, "\n".join(lines))


def section_epochs(summary):
    """Is the budget's epoch count enough? Each doubled run's validation accuracy beside the same seed's run
    at the budget (the weights each kept: its best validation epoch)."""
    rows, epochs = summary["experiments"]["epochs"]["rows"], summary["budget"]["sweep_epochs"]
    cells = []
    for row in rows:
        experiment, label = row["config"]["compared_with"]
        base = next((item for item in summary["experiments"].get(experiment, {}).get("rows", [])
                     if item["label"] == label), None)
        doubled, at_budget = seed_value(row, "val_accuracy"), seed_value(base, "val_accuracy", row["seeds"])
        cells.append([f"{experiment}: {label}", "n/a" if at_budget is None else f"{100 * at_budget:.2f}",
                      "n/a" if doubled is None else f"{100 * doubled:.2f}",
                      "n/a" if None in (doubled, at_budget) else f"{100 * (doubled - at_budget):+.2f}"])
    seeds = ", ".join(str(seed) for seed in sorted({seed for row in rows for seed in row["seeds"]}))
    seeds = f"seed {seeds}" if seeds else "the first seed; none has run yet"
    return [f"### Is {epochs} epoch{'s' * (epochs > 1)} enough? ({budget_tag(summary)})", "",
            f"One configuration of each experiment, chosen in advance as the one expected to learn slowest (the "
            f"deepest CNN, the widest MLP, the ablation's reference), and the smallest CNN, added after the curves "
            f"showed it still rising, trained for {2 * epochs} epochs instead of "
            f"{epochs} ({seeds}; the schedule spans the longer run). Validation accuracy of the weights each "
            "run kept, never test: the epoch count is a choice, made on validation data. One seed is a check, not a "
            "test: a validation accuracy on 5,000 images has a sampling error of about 0.15 points near 99%.",
            "", table(["configuration", f"validation % at {epochs} epochs", f"at {2 * epochs} epochs", "difference"],
                      cells), ""]


def seed_value(row, metric, seeds=None):
    """A row's metric for the first of `seeds` (or of its own seeds) that it has; None if it has none."""
    if not row or metric not in row:
        return None
    values = dict(zip(row["seeds"], row[metric]["values"]))
    return next((values[seed] for seed in (seeds or row["seeds"]) if values.get(seed) is not None), None)


def published_text(summary):
    return "; ".join(f"{point['label']}: {100 * point['test_error']:.2f}% error with {point['parameters']:,} "
                     f"parameters, {point['training']}" for point in summary["published"])


EXTRAS = {"gradient": ("first conv layer's gradient L2 norm, epoch 1 → last (mean over steps)", gradient_norms)}
SWEEP_SECTIONS = [  # (experiment, title, description(summary), extra column)
    ("depth", "Depth: 1 to 4 conv blocks",
     lambda summary: "make_cnn with 1 to 4 blocks of conv, ReLU and 2x2 max pooling, channels doubling from 16.", None),
    ("activations", "Activations, with Adam and with SGD",
     lambda summary: "make_cnn (2 blocks) with each activation, trained with Adam and with SGD with momentum 0.9 "
                     f"(learning rate {summary['recipes'].get('sgd', {}).get('learning_rate')}, not tuned). Adam "
                     "divides each weight's step by the running size of that weight's own gradient, so a gradient "
                     "that shrinks on its way to the first layer barely slows that layer; SGD's step is proportional "
                     "to the gradient, so there a vanishing gradient does slow learning. Each row is compared with "
                     "the best activation of its optimizer.", "gradient"),
    ("efficiency", "Parameter efficiency: CNN against MLP",
     lambda summary: "Test accuracy against the number of parameters; each family compared with its best width "
                     f"(by validation). Published, not measured here: {published_text(summary)}.", None),
    ("ablation", "Ablation: what each component is worth",
     lambda summary: "One reference CNN (2 conv blocks with BatchNorm, max pooling, padding, ReLU, dropout 0.3 and "
                     "augmentation), then one change at a time. Max pooling is itself nonlinear: \"no activation\" "
                     "keeps it; \"a linear network\" also replaces it with average pooling, so that every layer is "
                     "linear at test time; a linear model cannot learn that a moved digit is the same digit, so it is "
                     "also trained without augmentation, as a plain linear classifier would be. The write-up's "
                     "'component importance' panel was never computed; this table is.", None),
]


def atomic_write(path, text):
    """Write text to path through interface.atomic_save (a temporary file, then a rename)."""
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_save(path, write)


# --- Figures: drawn from summary.json ---

def new_figure(width, height):
    """A matplotlib Figure with constrained layout and no pyplot (savefig draws it with Agg). matplotlib is
    imported here, when the first figure is drawn: the summary and the text of RESULTS.md need none of it."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    return Figure(figsize=(width, height), layout="constrained")


COLORS = {"CNN": "tab:blue", "MLP": "tab:orange", "scratch": "tab:gray", "frozen": "tab:blue", "fine_tune": "tab:green"}


def points_and_means(ax, rows, metric, scale=100.0):
    """Every seed as a dot and the mean ± std as a point with an error bar, one position per row."""
    for position, row in enumerate(rows):
        stats = row.get(metric)
        if not stats or stats["mean"] is None:
            continue
        values = scale * np.asarray([value for value in stats["values"] if value is not None])
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        error = None if stats["std"] is None else scale * stats["std"]
        ax.errorbar(position, scale * stats["mean"], yerr=error, fmt="o", color="black", capsize=4, zorder=3)
        ax.scatter(position + jitter, values, s=14, color="tab:blue", alpha=0.7, zorder=2)
    ax.set_xticks(range(len(rows)), [row["label"] for row in rows], rotation=20, ha="right")
    ax.grid(alpha=0.3)


def frameworks_rows(summary, part):
    """The rows of the SimpleCNN ("simple_cnn", the frameworks experiment) or the time to 99% ("time_to_target")."""
    experiment = summary["experiments"].get("frameworks" if part == "simple_cnn" else "time_to_99", {"rows": []})
    return [row for row in experiment["rows"] if row["config"]["part"] == part]


def draw_frameworks_accuracy(ax, summary):
    rows = frameworks_rows(summary, "simple_cnn")
    points_and_means(ax, rows, "test_accuracy")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"SimpleCNN, same weights and batches\n({summary['budget']['name']} budget: "
                 f"{summary['budget']['framework_epochs']} epochs, "
                 f"{len(rows[0]['seeds']) if rows else 0} seeds)")


def draw_frameworks_epoch_seconds(ax, summary):
    rows = frameworks_rows(summary, "simple_cnn")
    points_and_means(ax, rows, "seconds_per_epoch", scale=1.0)
    ax.set_ylabel("seconds per epoch of SimpleCNN training (s)")
    ax.set_title("Speed: one epoch of 55,000 images")


def draw_seconds_to_target(ax, rows, labels, target, limits=True):
    """Seconds to the target: each seed a dot, the median a bar, the quartiles a range; and (limits) the
    machine's limit for each row (limit_seconds) as a red line across its bar."""
    for position, row in enumerate(rows):
        stats = row.get("seconds_to_target")
        if not stats or stats.get("median") is None:
            continue
        ax.bar(position, stats["median"], 0.6, color="tab:green", alpha=0.5)
        ax.errorbar(position, stats["median"], yerr=[[stats["median"] - stats["q1"]], [stats["q3"] - stats["median"]]],
                    fmt="none", color="black", capsize=4)
        values = [value for value in stats["values"] if value is not None]
        ax.scatter(position + np.linspace(-0.15, 0.15, len(values)), values, s=14, color="black", zorder=3)
        if len(values) < len(row["seeds"]):  # say how many seeds the bar stands for
            ax.annotate(f"{len(values)} of {len(row['seeds'])} seeds", (position, max(values)), ha="center",
                        xytext=(0, 6), textcoords="offset points", fontsize=8)
        limit = limit_seconds(row) if limits else None
        if limit is not None:
            ax.hlines(limit, position - 0.35, position + 0.35, color="tab:red", linewidth=2.5, zorder=4,
                      label="the machine's limit (all FLOPs at matrix-product speed)" if position == 0 else None)
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right")
    ax.set_ylabel(f"seconds of training to {100 * target:.0f}% test accuracy (s)")
    ax.grid(axis="y", alpha=0.3)


def draw_frameworks_time_to_target(ax, summary):
    rows = time_rows(summary)
    draw_seconds_to_target(ax, rows, [row["label"].replace(" recipe", "") for row in rows],
                           summary["recipes"]["target"])
    ax.set_title(f"Time to {100 * summary['recipes']['target']:.0f}%: median, quartiles, seeds\n({summary['budget']['name']} budget, "
                 f"{len(rows[0]['seeds']) if rows else 0} seeds)")
    if any(limit_seconds(row) is not None for row in rows):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), frameon=False)


def draw_recipe_ablation(ax, summary):
    rows = time_rows(summary, ablation=True)
    draw_seconds_to_target(ax, rows, [row["label"].removeprefix("recipe: ") for row in rows],
                           summary["recipes"]["target"], limits=False)
    ax.set_title("The speedrun recipe, one change at a time (PyTorch)\nmedian over the seeds that reached the target")


def draw_sweep(ax, summary, experiment, title):
    points_and_means(ax, summary["experiments"][experiment]["rows"], "test_accuracy")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{title}\n({budget_tag(summary)})")


def draw_curves(ax, rows, curve, ylabel, log=False):
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 (matplotlib only when figures are drawn)

    for row in rows:
        values = row["curves"].get(curve)
        if values:
            ax.plot(range(1, len(values) + 1), 100 * np.asarray(values) if curve == "val_accuracy" else values,
                    marker="o", markersize=3, label=row["label"])
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_yscale("log" if log else "linear")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_efficiency(ax, summary, long=None):
    """Test error against parameters, CNN and MLP, for each budget given, beside the published points."""
    for budget_summary, style, face in ((summary, "--", "white"), (long, "-", None)):  # default: open markers
        if budget_summary is None:
            continue
        rows = budget_summary["experiments"]["efficiency"]["rows"]
        for family in ("CNN", "MLP"):
            chosen = [row for row in rows if row["config"]["model"] == family.lower() and row.get("test_accuracy")]
            if not chosen:
                continue
            parameters = [row["parameters"]["mean"] for row in chosen]
            errors = [100 * (1 - row["test_accuracy"]["mean"]) for row in chosen]
            spreads = [100 * (row["test_accuracy"]["std"] or 0) for row in chosen]
            ax.errorbar(parameters, errors, yerr=spreads, marker="o", capsize=3, color=COLORS[family], linestyle=style,
                        markerfacecolor=face, label=f"{family}, {budget_tag(budget_summary)} (mean ± std)")
    for point, marker in zip(summary["published"], ("*", "X")):
        ax.scatter(point["parameters"], 100 * point["test_error"], marker=marker, s=120, color="black",
                   label=f"{point['label']}: {point['training']} (published)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test error (%, log scale)")
    ax.set_title("Parameter efficiency")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13))  # below the axes, outside the data
    ax.grid(alpha=0.3, which="both")


def draw_ablation(ax, summary):
    experiment = summary["experiments"]["ablation"]
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    reference = experiment["rows"][0]
    rows = [row for row in experiment["rows"][1:] if row["label"] in comparisons]
    for position, row in enumerate(rows):
        comparison = comparisons[row["label"]]
        deltas = 100 * (np.asarray(row["test_accuracy"]["values"]) - reference["test_accuracy"]["mean"])
        ax.barh(position, 100 * comparison["difference"], color="tab:red" if comparison["detected"] else "tab:gray",
                alpha=0.6)
        ax.scatter(deltas, [position] * len(deltas), s=12, color="black", zorder=3)
    ax.set_yticks(range(len(rows)), [row["label"] for row in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in test accuracy vs the reference (percentage points)")
    ax.set_title(f"Ablation (red: difference detected, grey: not detected)\n({budget_tag(summary)})")
    ax.grid(axis="x", alpha=0.3)


def draw_transfer(ax, summary):
    rows = summary["experiments"]["transfer"]["rows"]
    for method, name in summary["transfer_methods"].items():
        chosen = [row for row in rows if row["config"]["method"] == method and row.get("test_accuracy")]
        if chosen:
            ax.errorbar([row["config"]["per_class"] for row in chosen],
                        [100 * row["test_accuracy"]["mean"] for row in chosen],
                        yerr=[100 * (row["test_accuracy"]["std"] or 0) for row in chosen], marker="o", capsize=3,
                        color=COLORS[method], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class (log scale)")
    ax.set_ylabel("test accuracy on digits 5-9 (%)")
    ax.set_title(f"Transfer from digits 0-4\n({summary['budget']['name']} budget: "
                 f"{summary['budget']['transfer_steps']} steps, {len(summary['seeds'])} seeds)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def save_figure(figure, path, quick):
    if quick:
        figure.suptitle("QUICK RUN: tiny budgets, the numbers mean nothing", color="red", fontsize=12)
    figure.savefig(path, dpi=100, bbox_inches="tight")  # legends placed outside the axes are kept


def figure_frameworks(summary, plots_dir):
    """experiments_frameworks.png (accuracy, seconds per epoch: one quantity per axis) and
    experiments_training_history.png, of the SimpleCNN in three frameworks."""
    figure = new_figure(11, 4.4)
    for ax, draw in zip(figure.subplots(1, 2), (draw_frameworks_accuracy, draw_frameworks_epoch_seconds)):
        draw(ax, summary)
    save_figure(figure, plots_dir / "experiments_frameworks.png", summary["quick"])
    figure = new_figure(12, 4)
    left, right = figure.subplots(1, 2)
    rows = frameworks_rows(summary, "simple_cnn")
    draw_curves(left, rows, "train_loss", "training loss (mean over seeds)")
    draw_curves(right, rows, "val_accuracy", "validation accuracy (%)")
    figure.suptitle("Training history of the SimpleCNN in three frameworks: the same curves")
    save_figure(figure, plots_dir / "experiments_training_history.png", summary["quick"])
    return [lambda ax, _: draw_frameworks_accuracy(ax, summary)]


def figure_time_to_99(summary, plots_dir):
    """experiments_time_to_99.png: the recipes with the machine's limit, and the recipe's ablation."""
    figure = new_figure(14, 5)
    for ax, draw in zip(figure.subplots(1, 2, sharey=True), (draw_frameworks_time_to_target, draw_recipe_ablation)):
        draw(ax, summary)
    save_figure(figure, plots_dir / "experiments_time_to_99.png", summary["quick"])
    return [lambda ax, _: draw_frameworks_time_to_target(ax, summary)]


def figure_file(name, suffix=""):
    """The file of an experiment's figure; suffix "_long" for the long budget's, except efficiency's: one figure
    draws both budgets (draw_efficiency)."""
    return f"experiments_{name}{'' if name == 'efficiency' else suffix}.png"


def figure_sweep(summary, plots_dir, name, title, suffix=""):
    """experiments_<name><suffix>.png: test accuracy per configuration and validation curves; for the
    activations, the gradient that reaches the first layer."""
    rows = summary["experiments"][name]["rows"]
    with_gradients = name == "activations"
    figure = new_figure(16 if with_gradients else 12, 4.6)
    axes = figure.subplots(1, 3 if with_gradients else 2)
    draw_sweep(axes[0], summary, name, f"{title}: test accuracy")
    draw_curves(axes[1], rows, "val_accuracy", "validation accuracy (%)")
    axes[1].set_title("validation accuracy per epoch (mean over seeds)")
    if with_gradients:
        draw_curves(axes[2], rows, "first_conv_gradient_norm", "L2 norm of dL/dW, first conv layer", log=True)
        axes[2].set_title("gradient reaching the first layer\n(mean over each epoch's steps)")
    save_figure(figure, plots_dir / figure_file(name, suffix), summary["quick"])
    return [lambda ax, summary: draw_sweep(ax, summary, name, title)]


def figure_single(summary, plots_dir, name, draw, size, suffix=""):
    """experiments_<name><suffix>.png drawn by one draw function on one axis."""
    figure = new_figure(*size)
    draw(figure.subplots(), summary)
    save_figure(figure, plots_dir / figure_file(name, suffix), summary["quick"])
    return [draw]


def figure_long_curves(long, plots_dir):
    """experiments_long_curves.png: every long-budget configuration's validation accuracy per epoch."""
    names = [name for name in ("depth", "efficiency", "ablation", "epochs") if name in long["experiments"]]
    figure = new_figure(6 * len(names), 4.6)
    for ax, name in zip(np.atleast_1d(figure.subplots(1, len(names))), names):
        draw_curves(ax, long["experiments"][name]["rows"], "val_accuracy", "validation accuracy (%)")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 95.0))
        ax.set_title(f"{name} ({budget_tag(long)})")
    save_figure(figure, plots_dir / "experiments_long_curves.png", long["quick"])


def figure_summary(summary, plots_dir, panels):
    """experiments_summary.png: every experiment's main panel on one page."""
    columns = min(3, len(panels))
    figure = new_figure(6 * columns, 4.8 * math.ceil(len(panels) / columns))
    axes = list(figure.subplots(math.ceil(len(panels) / columns), columns, squeeze=False).flat)
    for index, ax in enumerate(axes):
        if index < len(panels):
            panels[index](ax, summary)
        else:
            ax.set_axis_off()
    save_figure(figure, plots_dir / "experiments_summary.png", summary["quick"])


def write_figures(summaries, plots_dir):
    """Every experiment's figure for each budget, the long budget's learning curves, and the one-page
    summary of the main panels. summaries: {budget name: summary}."""
    main, frameworks, long = the_budgets(summaries)
    if not (main or frameworks or long):
        return
    plots_dir.mkdir(parents=True, exist_ok=True)
    panels = []  # draw functions of the summary page, one per panel: draw(ax, main)
    if frameworks and "frameworks" in frameworks["experiments"]:
        panels += figure_frameworks(frameworks, plots_dir)
    if frameworks and "time_to_99" in frameworks["experiments"]:
        panels += figure_time_to_99(frameworks, plots_dir)
    for summary, suffix in ((main, ""), (long, "_long")):
        for name, title in (("depth", "Depth"), ("activations", "Activation")):
            if summary and name in summary["experiments"]:
                drawn = figure_sweep(summary, plots_dir, name, title, suffix)
                panels += drawn if summary is main else []
        if summary and "ablation" in summary["experiments"]:
            drawn = figure_single(summary, plots_dir, "ablation", draw_ablation, (10, 4.8), suffix)
            panels += drawn if summary is main else []
    if main and "efficiency" in main["experiments"]:
        panels += figure_single(main, plots_dir, "efficiency",
                                lambda ax, summary: draw_efficiency(ax, summary, long), (8, 5.5))
    if main and "transfer" in main["experiments"]:
        panels += figure_single(main, plots_dir, "transfer", draw_transfer, (7, 4.5))
    if long:
        figure_long_curves(long, plots_dir)
    if panels:
        figure_summary(main or frameworks, plots_dir, panels)
