"""summary.json and RESULTS.md of experiments.py, from its runs.jsonl alone (the figures: report_figures.py).

experiments.py trains and records, and says what it planned (the runs, the budget, the recipes, the
transfer methods); this module only reads what was recorded, so that `python experiments.py --report`
rebuilds every table and figure without training or loading any data, and every number in RESULTS.md
is one of summary.json, which is computed from runs.jsonl. It imports no framework and no matplotlib;
the tests and intervals come from stats.py. The story, top to bottom: the summary (each configuration's
statistics and every pair's comparison), then the tables of RESULTS.md written from it (with the test of
each change between budgets).

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
from stats import ALPHA, censored_quantiles, change_test, describe, difference_test, holm, spread_uncertainty

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
    def metric_values(item):  # a metric no seed has (a target never reached) is missing from the row
        return (item.get(metric) or {}).get("values") or [None] * len(item["seeds"])
    values = dict(zip(row["seeds"], metric_values(row)))
    reference_values = dict(zip(reference["seeds"], metric_values(reference)))
    weights, reference_weights = (dict(zip(item["seeds"], item["initial_weights"])) for item in (row, reference))
    common = sorted(set(values) & set(reference_values))
    paired = (len(common) >= 2 and row["config"].get("batch_size") == reference["config"].get("batch_size")
              and all(weights[seed] is not None and weights[seed] == reference_weights[seed] for seed in common))
    if paired:
        return [values[seed] for seed in common], [reference_values[seed] for seed in common], True
    return list(values.values()), list(reference_values.values()), False


def compare(experiment, rows):
    """Every comparison of a table (one Holm family): the ablation's changes against its reference (by
    design), elsewhere every pair of rows within a group, so that no verdict depends on which row validation
    picked as the best (the tables show each row against that best row, read from these pairs)."""
    if experiment == "ablation":
        return compare_pairs([(row, reference) for reference, others in comparison_groups(experiment, rows)
                              for row in others])
    pairs = []
    for reference, others in comparison_groups(experiment, rows):
        group = [row for row in rows if row is reference or any(row is other for other in others)]  # plan order
        pairs += [(later, earlier) for index, earlier in enumerate(group) for later in group[index + 1:]]
    return compare_pairs(pairs)


def same_size_pairs(rows):
    """Efficiency's second table: each CNN against the MLP of about the same number of parameters (the
    widths are planned to match, the smallest CNN with the smallest MLP): [(CNN row, MLP row), ...]."""
    def family(model):
        return [row for row in rows if row["config"]["model"] == model]
    return [(cnn, mlp) for cnn, mlp in zip(family("cnn"), family("mlp"))
            if all(row.get("test_accuracy", {}).get("mean") is not None for row in (cnn, mlp))]


def compare_pairs(pairs, metric="test_accuracy"):
    """Each (row, against) pair's metric: the difference of means row - against with its 95% interval, the
    paired or Welch test, and Holm's adjustment over the pairs given (one table, one family). A pair with a
    missing value (a run that never reached the target) is not tested: its p is None."""
    comparisons = []
    for row, reference in pairs:
        a, b, paired = seed_values(row, reference, metric)
        test = (difference_test(a, b, paired) if None not in a + b else
                {"test": "not tested: a run never reached", "difference": None, "se": None, "df": None,
                 "ci95": None, "t": None, "p": None})
        comparisons.append({"label": row["label"], "against": reference["label"], "n": [len(a), len(b)], **test})
    for comparison, adjusted in zip(comparisons, holm([comparison["p"] for comparison in comparisons])):
        comparison["p_adjusted"] = adjusted
        comparison["detected"] = adjusted is not None and adjusted < ALPHA
    return comparisons


def oriented(comparisons, label, against):
    """The comparison of label with against among comparisons, whichever way it was made: reversed, its
    difference and interval change sign. None if the two were not compared."""
    for comparison in comparisons:
        if (comparison["label"], comparison["against"]) == (label, against):
            return comparison
        if (comparison["label"], comparison["against"]) == (against, label):
            ci95 = comparison["ci95"] and [-comparison["ci95"][1], -comparison["ci95"][0]]
            return {**comparison, "label": label, "against": against, "difference": -comparison["difference"],
                    "ci95": ci95, "t": None if comparison.get("t") is None else -comparison["t"]}
    return None


def against_reference(experiment, rows, comparisons):
    """{row label: its comparison with its group's reference (the ablation's, or the best by validation)}."""
    return {row["label"]: oriented(comparisons, row["label"], reference["label"])
            for reference, others in comparison_groups(experiment, rows) for row in others}


MORE = "more than the budget"  # a median or quartile that falls on a run that never reached the target


def to_target(row):
    """Optimizer steps, training FLOPs (steps x batch x flops_per_image) and seconds to the target, over all
    of a row's seeds: censored_quantiles, a run that never reached counting as more than the budget (the
    steps it ran: budget_steps)."""
    n = len(row["seeds"])
    steps, seconds, per_image = ((row.get(metric) or {}).get("values") or [None] * n
                                 for metric in ("steps_to_target", "seconds_to_target", "flops_per_image"))
    flops = [None if step is None or image is None else step * row["config"]["batch_size"] * image
             for step, image in zip(steps, per_image)]
    result = {"budget_steps": max((row.get("steps") or {}).get("values") or [0])}
    for name, values in (("steps", steps), ("flops", flops), ("seconds", seconds)):
        quantiles = censored_quantiles(values)
        result[name] = {key: MORE if value == math.inf else value for key, value in quantiles.items()}
    return result


def recipe_of(row):
    """'speedrun' of the time-to-target row 'numpy, speedrun recipe'."""
    return row["label"].split(", ")[1].removesuffix(" recipe")


def paired_frameworks(rows):
    """The three frameworks' steps and seconds to the target, seed by seed (the same initial weights and
    batches): every pair of frameworks for each recipe, one Holm family per metric."""
    recipes = [row for row in rows if row["config"].get("part") == "time_to_target"
               and not row["label"].startswith("recipe: ")]
    pairs = [(later, earlier) for recipe in dict.fromkeys(recipe_of(row) for row in recipes)
             for group in [[row for row in recipes if recipe_of(row) == recipe]]
             for index, earlier in enumerate(group) for later in group[index + 1:]]
    return {"steps_to_target": compare_pairs(pairs, "steps_to_target"),
            "seconds_to_target": compare_pairs(pairs, "seconds_to_target")}


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
               "jobs": max((record.get("jobs", 1) for record in planned), default=1),  # runs at a time (--jobs)
               "finished": [finished[0], finished[-1]] if finished else None,
               "runs_with_other_processes": sum(bool(record["load_before"]["other_busy_processes"])
                                                for record in planned),
               "other_processes_seen": sorted({name for record in planned
                                               for name in record["load_before"]["other_busy_processes"]}),
               "max_load_average": max((record["load_before"]["load_average_1min"] or 0 for record in planned),
                                       default=None),
               "machine": planned[0]["machine"] if planned else None, "machines": machines(planned),
               "recipes": recipes,
               "git_commits": sorted({str(record["git_commit"]) for record in planned}),
               "published": PUBLISHED, "write_up_claims": WRITE_UP_CLAIMS, "transfer_methods": transfer_methods,
               "experiments": {}}
    for name, groups in experiments.items():
        rows = [summarize_group(label, config, records) for label, (config, records) in groups.items()]
        summary["experiments"][name] = {"rows": rows, "comparisons": compare(name, rows)}
        if name == "efficiency":
            summary["experiments"][name]["same_size"] = compare_pairs(same_size_pairs(rows))
        if name == "time_to_99":
            for row in rows:
                row["to_target"] = to_target(row)
            summary["experiments"][name]["paired_frameworks"] = paired_frameworks(rows)
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


def spread(stats):
    """'[98.85, 98.97]': the lowest and highest seed, in percent."""
    return "n/a" if not stats or stats["min"] is None else f"[{100 * stats['min']:.2f}, {100 * stats['max']:.2f}]"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def p_text(p):
    return "n/a" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def verdict(comparison):
    """'detected' (Holm p < ALPHA) or 'not detected'."""
    return "detected" if comparison["detected"] else "not detected"


def signed_interval(comparison, scale=100.0, digits=2):
    """'+0.09 [-0.03, +0.22]': a difference (in points at scale 100) and its 95% interval."""
    if comparison.get("difference") is None:
        return "n/a"
    text = f"{scale * comparison['difference']:+.{digits}f}"
    if comparison.get("ci95") is not None:
        low, high = comparison["ci95"]
        text += f" [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"
    return text


def comparison_cells(comparison, reference_text="reference"):
    """The cells every table gives a comparison: difference [95% interval], test, raw p, Holm p, verdict."""
    if comparison is None:
        return [reference_text, "", "", "", ""]
    return [f"{signed_interval(comparison)} vs {comparison['against']}", comparison["test"],
            p_text(comparison["p"]), p_text(comparison["p_adjusted"]), verdict(comparison)]


COMPARISON_HEADER = ["difference [95% interval] (points)", "test", "p", "Holm p", "verdict"]


def pairs_table(comparisons, what):
    """Every pair of a table: the family whose Holm p-values give the verdicts of the table above it."""
    if not comparisons:
        return []
    return [f"Every pair of {what}, each its own test, Holm's adjustment over these {len(comparisons)} pairs:", "",
            table(["row", *COMPARISON_HEADER], [[comparison["label"], *comparison_cells(comparison)]
                                                for comparison in comparisons]), ""]


def n_seeds(row):
    stats = row.get("test_accuracy")
    failed = f", {len(row['failed'])} failed" if row["failed"] else ""
    return f"{stats['n'] if stats else 0}{failed}"


def budget_tag(summary, seeds=None):
    """'default budget: 6,000 images, 2 epochs, 5 seeds' for the sweeps' headings and figure titles;
    seeds: instead of the number of seeds (the 12-epoch check's 'seed 0')."""
    budget = summary["budget"]
    return (f"{budget['name']} budget: {budget['sweep_train_size'] or 55000:,} images, {budget['sweep_epochs']} "
            f"epoch{'s' if budget['sweep_epochs'] > 1 else ''}, {seeds or str(len(summary['seeds'])) + ' seeds'}")


def section_frameworks(summary):
    experiment, claims = summary["experiments"]["frameworks"], summary["write_up_claims"]["frameworks"]
    budget = summary["budget"]
    comparisons = against_reference("frameworks", experiment["rows"], experiment["comparisons"])
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
                         number(row.get("parameters"), 0),
                         *comparison_cells(comparisons.get(row["label"]), "best by validation"),
                         "{:.1f}%, {:.1f} s".format(100 * claims[row["label"]][0], claims[row["label"]][1])]
                        for row in simple]), "", *pairs_table(experiment["comparisons"], "frameworks")]
    for row in simple:
        claim, stats = claims[row["label"]][0], row.get("test_accuracy")
        if stats and stats["mean"] is not None and not stats["min"] - 0.005 <= claim <= stats["max"] + 0.005:
            lines.append(f"- The write-up's {100 * claim:.1f}% for {row['label']} does not match what this code "
                         f"measures: {percent(stats)}% over {stats['n']} seeds.")
    return lines


def frameworks_rows(summary, part):
    """The rows of the SimpleCNN ("simple_cnn", the frameworks experiment) or the time to 99% ("time_to_target")."""
    experiment = summary["experiments"].get("frameworks" if part == "simple_cnn" else "time_to_99", {"rows": []})
    return [row for row in experiment["rows"] if row["config"]["part"] == part]


def time_rows(summary, ablation=False):
    """The time-to-target rows: the recipes in three frameworks, or (ablation=True) the recipe's ablation."""
    return [row for row in frameworks_rows(summary, "time_to_target") if row["label"].startswith("recipe: ") == ablation]


def limit_seconds(row):
    """The machine's limit for a row: its median steps to the target (all seeds, to_target), at count_flops per
    image, run at the median measured matrix-product speed. No run of this network and recipe can be faster."""
    steps = row.get("to_target", {}).get("steps", {}).get("median")
    flops, gflops = ((row.get(metric) or {}).get("median") for metric in ("flops_per_image", "matrix_product_gflops"))
    if None in (steps, flops, gflops) or steps == MORE:
        return None
    return steps * row["config"]["batch_size"] * flops / (gflops * 1e9)


def never_reached(row):
    values = row.get("seconds_to_target", {}).get("values") or [None] * len(row["seeds"])  # none reached: no stats
    return ", ".join(str(seed) for seed, value in zip(row["seeds"], values) if value is None) or "none"


def reached(row):
    return f"{row.get('seconds_to_target', {}).get('n', 0)} of {len(row['seeds'])}"


def censored_text(quantiles, scale=1.0, digits=0):
    """'336 [315, 357]': the median [quartiles] of censored_quantiles; '> budget' for a quartile on a run that
    never reached; 'no median' when no more than half reached."""
    if not quantiles or quantiles.get("median") is None:
        return "no median"

    def one(value):
        return "> budget" if value == MORE else f"{scale * value:,.{digits}f}"
    text = one(quantiles["median"])
    return text + (f" [{one(quantiles['q1'])}, {one(quantiles['q3'])}]" if quantiles.get("q1") is not None else "")


def time_cells(row):
    """Steps, training FLOPs (TFLOP) and seconds to the target, then the measured matrix-product speed."""
    to = row.get("to_target", {})
    gflops = (row.get("matrix_product_gflops") or {}).get("median")
    return [censored_text(to.get("steps")), censored_text(to.get("flops"), 1e-12, 2),
            censored_text(to.get("seconds"), 1.0, 1), "n/a" if gflops is None else f"{gflops:.0f}"]


TIME_HEADER = ["reached", "optimizer steps to target", "training TFLOP to target", "seconds to target",
               "matrix-product GFLOP/s (median)"]


def recipe_text(recipe):
    betas = ", ".join(str(beta) for beta in recipe["betas"])
    network = {"speedrun": "the speedrun network", "cnn": "make_cnn with BatchNorm"}.get(recipe["model"],
                                                                                     recipe["model"])
    return (f"{network}, batch {recipe['batch_size']}, Adam at learning rate {recipe['learning_rate']} with betas "
            f"({betas}), a {recipe['schedule'].replace('_', '-')} schedule")


def seed_by_seed(rows):
    """Each recipe's seeds, one line each: every framework's steps, seconds and measured matrix-product speed."""
    recipes = list(dict.fromkeys(recipe_of(row) for row in rows))
    frameworks = list(dict.fromkeys(row["config"]["framework"] for row in rows))
    by_key = {(recipe_of(row), row["config"]["framework"]): row for row in rows}

    def cell(row, seed):
        values = {metric: dict(zip(row["seeds"], (row.get(metric) or {}).get("values") or [None] * len(row["seeds"])))
                  .get(seed) for metric in ("steps_to_target", "seconds_to_target", "matrix_product_gflops")}
        speed = "" if values["matrix_product_gflops"] is None else f" at {values['matrix_product_gflops']:.0f} GFLOP/s"
        if values["steps_to_target"] is None:
            return f"not reached{speed}"
        return f"{values['steps_to_target']} steps, {values['seconds_to_target']:.1f} s{speed}"
    body = [[recipe, seed] + [cell(by_key[(recipe, framework)], seed) if (recipe, framework) in by_key else "n/a"
                              for framework in frameworks]
            for recipe in recipes for seed in by_key[(recipe, frameworks[0])]["seeds"]]
    return table(["recipe", "seed", *frameworks], body)


def paired_time_cells(steps, seconds):
    return [steps["label"].split(",")[0] + " vs " + steps["against"].split(",")[0], recipe_of(steps),
            signed_interval(steps, 1.0, 1), steps["test"], p_text(steps["p"]), p_text(steps["p_adjusted"]),
            verdict(steps), signed_interval(seconds, 1.0, 1), p_text(seconds["p_adjusted"]), verdict(seconds)]


def section_time_to_target(summary):
    recipes, budget = summary["recipes"]["time_to_99"], summary["budget"]
    target = 100 * summary["recipes"]["target"]
    experiment = summary["experiments"]["time_to_99"]
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
             "training, and nothing is chosen on them. **Steps first**: optimizer steps and training FLOPs (steps × "
             "batch × count_flops per image) do not depend on the machine; seconds do (within one configuration the "
             "time per step varies with the matrix-product speed each run measured, shown beside it). **Median "
             "[quartiles] over all seeds**: a run that never reached the target counts as more than the budget, "
             "larger than any run that reached it; the median is given only when more than half of the seeds "
             "reached the target (else \"no median\"), the quartiles only with a median and at least 4 seeds, and a "
             "quartile that falls on a run that never reached reads \"> budget\". **The limit** is the time the "
             "median number of steps would take if every FLOP of their matrix products ran at the speed of one "
             "large matrix product on this machine (matrix_product_gflops, the median of the row's runs); **% of "
             "the limit** is the limit over the median time.", "",
             table(["framework", "recipe", *TIME_HEADER, "never reached (seeds)", "ms per step", "limit (s)",
                    "% of the limit"],
                   [[row["config"]["framework"], recipe_of(row), reached(row), *time_cells(row), never_reached(row),
                     ms_per_step(row), *limit_cells(row)] for row in rows])]
    speeds = describe([speed for row in rows + ablation[1:]  # the ablation's first row is PyTorch's speedrun row
                       for speed in row.get("matrix_product_gflops", {}).get("values", [])])
    if speeds["n"]:
        lines += ["", f"The matrix-product speed measured in these {speeds['n']} runs: {speeds['min']:.0f} to "
                      f"{speeds['max']:.0f} GFLOP/s, median {speeds['median']:.0f}."]
    paired = experiment.get("paired_frameworks")
    if paired and paired["steps_to_target"]:
        lines += ["", "**The frameworks seed by seed.** The same seed starts every framework from the same weights "
                      "and batches, so the frameworks are compared seed by seed (the paired t-test; a pair with a run "
                      "that never reached is not tested), in steps and in seconds, each with Holm's adjustment over "
                      "its column's pairs. A difference in seconds is the framework's and the machine's at once: "
                      "read it beside each run's measured matrix-product speed.", "",
                  seed_by_seed(rows), "",
                  table(["frameworks", "recipe", "steps difference [95% interval]", "test", "p", "Holm p", "verdict",
                         "seconds difference [95% interval]", "Holm p", "verdict"],
                        [paired_time_cells(steps, seconds) for steps, seconds
                         in zip(paired["steps_to_target"], paired["seconds_to_target"])])]
    if ablation:
        lines += ["", "**The speedrun recipe, one choice changed at a time** (PyTorch, the same seeds; the first row "
                      "is the PyTorch speedrun row above). Descriptive: with this many seeds and runs that never reach "
                      "the target, only differences larger than the quartile ranges stand out; steps and FLOPs, not "
                      "seconds, say what a change costs.", "",
                  table(["change", *TIME_HEADER, "never reached (seeds)", "ms per step"],
                        [[row["label"].removeprefix("recipe: "), reached(row), *time_cells(row), never_reached(row),
                          ms_per_step(row)] for row in ablation])]
    return lines


def limit_cells(row):
    limit, seconds = limit_seconds(row), row.get("to_target", {}).get("seconds", {}).get("median")
    if limit is None or not seconds or seconds == MORE:
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
    comparisons = against_reference(name, experiment["rows"], experiment["comparisons"])
    reference_text = "reference" if name == "ablation" else "best by validation"
    claims = summary["write_up_claims"].get(name, {})
    header = ["configuration", "test accuracy %", "seeds", "min, max", "parameters", *COMPARISON_HEADER]
    header += [extra[0]] if extra else []
    header += ["write-up's claim"] if claims else []
    rows = []
    for row in experiment["rows"]:
        cells = [row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                 number(row.get("parameters"), 0), *comparison_cells(comparisons.get(row["label"]), reference_text)]
        cells += [extra[1](row)] if extra else []
        if claims:
            claim = claims.get(row["label"].split(",")[0])
            cells.append("n/a" if claim is None or ", SGD" in row["label"] else f"{100 * claim:.1f}%")
        rows.append(cells)
    figure = figure or figure_file(name)
    pairs = [] if name == "ablation" else pairs_table(experiment["comparisons"], "rows within a group")
    return [f"### {title} ({budget_tag(summary)})", "", f"![{title}](plots/{figure})", "", description, "",
            table(header, rows), "", *pairs]


def gradient_norms(row):
    curve = row["curves"].get("first_conv_gradient_norm")
    return "n/a" if not curve else f"{curve[0]:.2e} → {curve[-1]:.2e}"


def section_transfer(summary):
    experiment, transfer_methods = summary["experiments"]["transfer"], summary["transfer_methods"]
    rows = {(row["config"]["method"], row["config"]["per_class"]): row for row in experiment["rows"]}
    sizes = sorted({k for _, k in rows})
    source = next((row["source_test_accuracy"] for row in experiment["rows"] if "source_test_accuracy" in row), None)
    comparisons = against_reference("transfer", experiment["rows"], experiment["comparisons"])
    any_row = next(iter(experiment["rows"]), {})
    steps = {k: whole(rows[(method, k)].get("steps")) for method, k in rows if method == "scratch"}

    def cell(row):
        comparison = comparisons.get(row["label"])
        if comparison is None:
            return f"{percent(row.get('test_accuracy'))} (best by validation)"
        return f"{percent(row.get('test_accuracy'))} ({signed_interval(comparison)}, {verdict(comparison)})"

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
            "std, then the difference [95% interval] from the best method at that size (chosen by validation "
            "accuracy), with the verdict of Welch's t-test (the methods start from different weights) among every "
            "pair of methods at each size, Holm's correction over those pairs. "
            "The protocol follows an exercise of chapter 11 of Géron's *Hands-On Machine Learning* (there with a "
            "fully connected network and 100 images per class).", "",
            table(["method"] + [f"{k} per class: test accuracy %" for k in sizes], body), "",
            *pairs_table(experiment["comparisons"], "methods at each size")]


def section_same_size(summary):
    """Efficiency's second table: the CNN against the MLP of about its size, one Holm family."""
    rows = {row["label"]: row for row in summary["experiments"]["efficiency"]["rows"]}
    def error_ratio(comparison):  # the CNN's test errors as a share of the MLP's: 1 - accuracy, mean over seeds
        cnn, mlp = (1 - rows[comparison[key]]["test_accuracy"]["mean"] for key in ("label", "against"))
        return f"{100 * cnn / mlp:.0f}%" if mlp > 0 else "n/a"
    cells = [[comparison["label"], number(rows[comparison["label"]].get("parameters"), 0), comparison["against"],
              number(rows[comparison["against"]].get("parameters"), 0), *comparison_cells(comparison),
              error_ratio(comparison)]
             for comparison in summary["experiments"]["efficiency"].get("same_size", [])]
    return ["The CNN against the MLP of about the same number of parameters (Welch's test: the two start from "
            "different weights; Holm's correction over these rows):", "",
            table(["CNN", "parameters", "MLP", "parameters", *COMPARISON_HEADER,
                   "the CNN's errors as a share of the MLP's"], cells), ""] if cells else []


def standing(comparison):
    """Where a row stands against the other: 'lower' or 'higher' when a difference is detected, else
    'not told apart'."""
    if comparison is None or not comparison["detected"]:
        return "not told apart"
    return "higher" if comparison["difference"] > 0 else "lower"


CHANGE_FAMILIES = (("depth", "comparisons"), ("efficiency", "comparisons"), ("efficiency", "same_size"),
                   ("ablation", "comparisons"))


def budget_changes(default, long):
    """Every comparison that both budgets make, matched by its two rows whichever way round (so a sweep's
    best row may differ between budgets), with the test of the change itself (stats.change_test: the long
    budget's difference minus the default budget's) and Holm's adjustment over each table's changes.

    Returns: [(experiment, default comparison, long comparison, change), ...]; change has p_adjusted,
    detected and says: 'the effect changed' only where the change is detected, 'the verdicts differ, the
    effect is not shown to change' where only the verdicts do, else 'no change detected'."""
    changes = []
    for name, family in CHANGE_FAMILIES:
        if name not in default["experiments"] or name not in long["experiments"]:
            continue
        before = default["experiments"][name].get(family, [])
        found = [(earlier, later, change_test(earlier, later)) for later in long["experiments"][name].get(family, [])
                 for earlier in [oriented(before, later["label"], later["against"])] if earlier is not None]
        for (earlier, later, change), adjusted in zip(found, holm([change["p"] for *_, change in found])):
            change["p_adjusted"] = adjusted
            change["detected"] = adjusted is not None and adjusted < ALPHA
            change["says"] = ("the effect changed" if change["detected"] else
                              "the verdicts differ, the effect is not shown to change"
                              if standing(earlier) != standing(later) else "no change detected")
            changes.append((name if family == "comparisons" else f"{name} (same size)", earlier, later, change))
    return changes


def change_cells(experiment, earlier, later, change):
    def side(comparison):
        return f"{signed_interval(comparison)} ({verdict(comparison)})"
    says = f"**{change['says']}**" if change["detected"] else change["says"]
    return [experiment, f"{later['label']} vs {later['against']}", side(earlier), side(later),
            signed_interval({"difference": change["change"], "ci95": change["ci95"]}), p_text(change["p"]),
            p_text(change["p_adjusted"]), says]


def section_budget_changes(main, long):
    """What changes with the budget: every comparison of both budgets, and the test of its change."""
    changes = budget_changes(main, long)
    changed = [cells for *cells, change in changes if change["detected"]]
    differ = [1 for *_, change in changes if change["says"].startswith("the verdicts differ")]
    return ["## What changes with the budget", "",
            f"The comparisons that both budgets make: {budget_tag(main)} against {budget_tag(long)}, matched by "
            "their two rows (a sweep's best row by validation may differ between the budgets; every pair is "
            "compared in both). A verdict detected at one budget and not at the other does not show that the effect "
            "changed: the **change** is tested itself, as the long budget's difference minus the default budget's "
            "(the two budgets' runs are independent: standard error sqrt(se_1^2 + se_2^2), degrees of freedom by "
            "Welch-Satterthwaite), with its 95% interval, and Holm's adjustment over each experiment's changes. "
            "\"The effect changed\" only where that test detects it; \"the verdicts differ, the effect is not shown "
            "to change\" where only the verdicts do. Why effects shrink with the budget: the README's "
            "[What changes with the budget](README.md#what-changes-with-the-budget).", "",
            f"{len(changes)} comparisons in both budgets: the change is detected in {len(changed)}; the verdicts "
            f"differ without a detected change in {len(differ)}.", "",
            table(["experiment", "comparison", "default budget [95% interval]", "long budget [95% interval]",
                   "change [95% interval] (points)", "p", "Holm p", "what the test of the change says"],
                  [change_cells(*item) for item in changes]), ""]


def sweep_experiments(summary):
    """The experiments of a summary trained with the sweep recipe (summary["recipes"]["sweep"]): those whose
    configurations say whether they augment, as only experiments.sweep_config writes them (the sweeps, and
    the epochs check, which trains sweep configurations for longer)."""
    return {name for name, experiment in summary["experiments"].items()
            if any("augment" in row["config"] for row in experiment["rows"])}


def machines(records):
    """Which machines trained these runs: [{"cpu", "cores", "runs", "seeds", "finished": [first, last]}, ...],
    in the order they first appear (a budget resumed elsewhere mixes machines; pairs stay within a seed)."""
    found = {}
    for record in records:
        machine = record.get("machine") or {}
        entry = found.setdefault((machine.get("cpu"), machine.get("cores")), {
            "cpu": machine.get("cpu"), "cores": machine.get("cores"), "runs": 0, "seeds": set(), "finished": []})
        entry["runs"] += 1
        entry["seeds"].add(record["seed"])
        entry["finished"].append(record.get("finished_at") or "")
    return [{**entry, "seeds": sorted(entry["seeds"]), "finished": [min(entry["finished"]), max(entry["finished"])]}
            for entry in found.values()]


def header_lines(summary):
    """Machine, runs, load, duration and budget of one summary."""
    budget, machine, sweep = summary["budget"], summary["machine"] or {}, summary["recipes"]["sweep"]
    shared = "; ".join(" = ".join(f"{experiment}: {label}" for experiment, label in places)
                       for places in summary["shared_configurations"]) or "none"
    return [f"**Budget `{budget['name']}`** ({', '.join(summary['experiments'])}): "
            f"{summary['runs']} trainings ({summary['failed_runs']} failed) for {summary['rows_shown']} table rows "
            f"× seeds; one configuration shown in several tables is trained once ({shared}). Seeds "
            f"{summary['seeds']}. Finished between {', '.join(summary['finished'] or ['n/a'])}, "
            f"{summary['wall_seconds'] / 60:.1f} minutes of runs in all" + (
                "." if summary.get("jobs", 1) == 1 else f", up to {summary['jobs']} at a time (`--jobs`): the "
                f"sweeps' training seconds are not speeds (frameworks and time_to_99 train alone)."),
            *([] if summary["runs"] == summary["planned_runs"] else
              [f"- **Partly run: {summary['runs']} of its {summary['planned_runs']} trainings.** `python experiments.py "
               f"--budget {budget['name']}` resumes it. Its rows show the seeds they have."]),
            "- Machine: " + ("; ".join(
                f"{entry['cpu']}, {entry['cores']} cores ({entry['runs']} trainings, seeds {entry['seeds']}, "
                f"finished {entry['finished'][0][:10]} to {entry['finished'][1][:10]})"
                for entry in summary.get("machines") or []) or "none yet") + "; " +
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


def how_to_read():
    """The two paragraphs before the tables: a verdict in plain words, then how the tables were computed."""
    (low, high), (low_3, high_3) = spread_uncertainty(5), spread_uncertainty(3)
    return [
    "**How to read a verdict.** Each difference comes with a 95% interval: the range of true differences that "
    "these seeds leave plausible. An interval that stays on one side of zero says which way the difference goes; "
    "a wide one says that this many seeds cannot tell. \"Detected\" means the test, after Holm's adjustment for "
    "the number of comparisons in its table, found a difference (Holm p < 0.05): a difference this large would "
    "rarely arise by chance from the seeds alone. \"Not detected\" does not mean \"no difference\": read its "
    "interval, which says how large a difference could still hide there. The interval is each comparison's own, "
    "not adjusted for the table: one that excludes zero beside \"not detected\" is a difference that Holm's "
    "adjustment for the table's many comparisons does not let through. One verdict detected and another not is "
    "no evidence that two effects differ; that takes a test of the change itself (the budget section).", "",
    "**How to read the tables.** Mean ± standard deviation (ddof=1) over seeds, then the lowest and highest seed. "
    "The ablation compares each change with its reference, by design. Elsewhere every pair of rows within a "
    "group is tested, and Holm's adjustment runs over all those pairs of the table, so that no verdict depends on "
    "which row is the best; the main table shows each row against the row of its group with the best validation "
    "accuracy (never test accuracy; a tie, as many correct validation images, goes to the row listed first), "
    "read from those pairs. The test is the paired t-test where both rows started each seed from the same "
    "initial weights and batch order (recorded as a fingerprint of the weights), Welch's t-test otherwise, and the "
    "interval is the same test's: mean difference ± t × its standard error. The chance of calling any "
    f"non-difference of a table a difference is at most {ALPHA}. With 5 seeds a standard deviation is itself "
    f"uncertain (its 95% interval runs from about {low:.1f} to {high:.1f} times the estimate; with the 3 seeds of the "
    f"frameworks table, {low_3:.1f} to {high_3:.1f}), which is why the intervals are wide. One model's test "
    "accuracy near 99% has a sampling error of about 0.1 points by itself: sqrt(0.99 * 0.01 / 10,000) = 0.001.", ""]


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
    lines += how_to_read()
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
        lines += section_budget_changes(main, long)
    elif main and long:
        lines += ["The comparisons that both budgets make, and the test of each one's change, are set side by side "
                  "here once every training of the long budget has run.", ""]
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
    return [f"### Is {epochs} epoch{'s' * (epochs > 1)} enough? ({budget_tag(summary, seeds)})", "",
            f"One configuration of each experiment, chosen in advance as the one expected to learn slowest (the "
            f"deepest CNN, the widest MLP, the ablation's reference), and the smallest CNN, added after the curves "
            f"showed it still rising, trained for {2 * epochs} epochs instead of "
            f"{epochs} ({seeds}; the schedule spans the longer run). Validation accuracy of the weights each "
            "run kept, never test: the epoch count is a choice, made on validation data. **What the number is:** "
            f"the best of {2 * epochs} epochs against the best of {epochs}, both picked and scored on the same "
            "validation images, so it is biased upward (a maximum over more noisy epochs is higher even when "
            "nothing improves), and it is one seed; no held-out images were kept to score the two sets of weights "
            "on data not used to pick them. A check, not a test: a validation accuracy on 5,000 images has a "
            "sampling error of about 0.15 points near 99%.",
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


def figure_file(name, suffix=""):
    """The file of an experiment's figure; suffix "_long" for the long budget's, except efficiency's: one figure
    draws both budgets (draw_efficiency)."""
    return f"experiments_{name}{'' if name == 'efficiency' else suffix}.png"
