"""Statistics, summary.json, RESULTS.md and the figures of experiments.py, from its runs.jsonl alone.

experiments.py trains and records, and says what it planned (the runs, the budget, the recipes, the
transfer methods); this module only reads what was recorded, so that `python experiments.py --report`
rebuilds every table and figure without training or loading any data, and every number in RESULTS.md
is one of summary.json, which is computed from runs.jsonl. It imports no framework.

In a REPL:
    >>> from report import describe, welch_test
    >>> round(describe([0.990, 0.991, 0.993])["std"], 6)
    0.001528
"""
import math
from dataclasses import asdict

import numpy as np
from matplotlib.ticker import MaxNLocator

ALPHA = 0.05  # the family-wise error rate of each table's comparisons (Holm-Bonferroni)
POWER = 0.8  # "would be detected 80% of the time": the power behind each table's detectable difference

# LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to document recognition",
# and Simard, Steinkraus and Platt (2003): published, not measured here.
PUBLISHED = [
    {"label": "LeNet-5 (LeCun et al. 1998)", "parameters": 60_000, "test_error": 0.0095},
    {"label": "MLP 800 hidden, cross-entropy (Simard et al. 2003)", "parameters": 784 * 800 + 800 + 800 * 10 + 10,
     "test_error": 0.016},
]
# The project's original write-up: single runs, several never measured. Shown beside ours as its claim.
WRITE_UP_CLAIMS = {
    "frameworks": {"numpy": (0.850, 45.2), "pytorch": (0.987, 12.1), "keras": (0.991, 8.7)},
    "depth": {"1 conv block": 0.932, "2 conv blocks": 0.967, "3 conv blocks": 0.971, "4 conv blocks": 0.969},
    "activations": {"ReLU": 0.967, "Leaky ReLU": 0.971, "ELU": 0.965, "Tanh": 0.923},
}

# --- Statistics ---


def describe(values):
    """Mean, standard deviation (ddof=1), n, min, max and the 95% t-interval of the mean.

    Inputs: a sequence of numbers (None entries, e.g. a target never reached, are left out).
    Returns: dict; std and ci95 are None for fewer than two values.
    """
    values = np.asarray([value for value in values if value is not None], dtype=np.float64)
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "ci95": None}
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else None
    ci95 = None
    if n > 1:
        from scipy.stats import t  # noqa: PLC0415 (scipy comes with scikit-learn)

        half_width = float(t.ppf(0.975, n - 1)) * std / math.sqrt(n)  # t_{0.975, n-1} * s / sqrt(n)
        ci95 = [mean - half_width, mean + half_width]
    return {"n": n, "mean": mean, "std": std, "min": float(values.min()), "max": float(values.max()), "ci95": ci95}


def difference_test(a, b, paired):
    """Test mean(a) == mean(b), two-sided, with scipy: the paired t-test (ttest_rel) when the runs are
    paired by seed (the same initial weights and batch order in both arms), Welch's unequal-variance
    t-test (ttest_ind, equal_var=False) otherwise.

    Inputs: a, b: sequences of numbers; paired a[i] with b[i] when paired (then len(a) == len(b)).
    Returns: dict with test ("paired t" or "Welch t"), t, df and p; t, df and p are None with fewer than
    two values on a side (or two pairs), and p is 1.0 or 0.0 when both sides are constant.
    """
    from scipy import stats  # noqa: PLC0415

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    name = "paired t" if paired else "Welch t"
    if len(a) < 2 or len(b) < 2:
        return {"test": name, "t": None, "df": None, "p": None}
    if (np.ptp(a - b) == 0) if paired else (np.ptp(a) == 0 and np.ptp(b) == 0):  # no spread: t is undefined
        return {"test": name, "t": None, "df": None, "p": 1.0 if np.mean(a) == np.mean(b) else 0.0}
    if paired:
        result, df = stats.ttest_rel(a, b), len(a) - 1
    else:
        result = stats.ttest_ind(a, b, equal_var=False)
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    return {"test": name, "t": float(result.statistic), "df": float(df), "p": float(result.pvalue)}


def holm(p_values):
    """Holm-Bonferroni adjusted p-values, in the order given (None stays None and is not counted).

    Sort the m p-values: p_(1) <= ... <= p_(m); adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    A comparison is a detected difference when its adjusted p < ALPHA; the chance of calling any true
    null hypothesis of the table a difference is then at most ALPHA (Holm 1979).
    """
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted, running_max, m = [None] * len(p_values), 0.0, len(order)
    for rank, (p, index) in enumerate(order):
        running_max = max(running_max, min(1.0, (m - rank) * p))
        adjusted[index] = running_max
    return adjusted


def detectable_difference(a, b, paired, alpha=ALPHA, power=POWER):
    """The true difference of means that this test, at level alpha, would detect with probability
    `power`, taking the observed spread for the true one (a plug-in estimate).

    Power of the two-sided t-test at a true difference delta: P(|T| > t_{1 - alpha/2, df}) with T
    noncentral t (df, delta / se); se = sd(a - b) / sqrt(n) when paired, else sqrt(s_a^2/n_a + s_b^2/n_b).
    Returns: delta (same units as a and b), or None with fewer than two values on a side.
    """
    from scipy import optimize, stats  # noqa: PLC0415

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    if paired:
        se, df = np.std(a - b, ddof=1) / math.sqrt(len(a)), len(a) - 1
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else len(a) - 1
    if se == 0:
        return 0.0
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta):
        noncentrality = delta / se
        return stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality) - power

    return float(optimize.brentq(shortfall, 0.0, 100 * se * (critical + 10)))


# --- Summary: numbers from runs.jsonl alone ---

METRICS = ("test_accuracy", "best_val_accuracy", "train_seconds", "seconds_per_epoch", "images_per_second",
           "parameters", "seconds_to_target", "epochs_to_target", "source_test_accuracy")
CURVES = ("val_accuracy", "train_loss")


def mean_curve(curves):
    """Per-epoch mean of several seeds' curves, over the epochs that all of them ran."""
    curves = [curve for curve in curves if curve]
    if not curves:
        return None
    length = min(len(curve) for curve in curves)
    return np.mean([curve[:length] for curve in curves], axis=0).tolist()


def summarize_group(label, config, records):
    ok = [record for record in records if record["status"] == "ok"]
    row = {"label": label, "config": config, "seeds": [record["seed"] for record in ok],
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


def comparison_groups(experiment, rows):
    """Which rows are compared with which: (reference row, other rows) pairs."""
    if experiment == "ablation":
        return [(rows[0], rows[1:])]  # every change against the reference
    if experiment == "frameworks":
        groups = [[row for row in rows if row["config"]["part"] == part] for part in ("simple_cnn", "time_to_target")]
    elif experiment == "transfer":
        sizes = sorted({row["config"]["per_class"] for row in rows})
        groups = [[row for row in rows if row["config"]["per_class"] == k] for k in sizes]
    elif experiment == "efficiency":
        groups = [[row for row in rows if row["config"]["model"] == model] for model in ("cnn", "mlp")]
    else:
        groups = [rows]
    pairs = []
    for group in groups:
        scored = [row for row in group if row.get("test_accuracy", {}).get("mean") is not None]
        if scored:
            best = max(scored, key=lambda row: row["test_accuracy"]["mean"])
            pairs.append((best, [row for row in scored if row is not best]))
    return pairs


def compare(experiment, rows):
    """Each row's test accuracy against its reference (the ablation's reference, else the best of its
    group): the difference of means and Welch's p; within_noise when p >= VALIDATION_P (or undefined)."""
    comparisons = []
    for reference, others in comparison_groups(experiment, rows):
        for row in others:
            if "test_accuracy" not in row or "test_accuracy" not in reference:
                continue
            test = welch_test(row["test_accuracy"]["values"], reference["test_accuracy"]["values"])
            comparisons.append({"label": row["label"], "against": reference["label"],
                                "difference": row["test_accuracy"]["mean"] - reference["test_accuracy"]["mean"],
                                "p": test["p"], "within_noise": test["p"] is None or test["p"] >= VALIDATION_P})
    return comparisons


def summarize(records, runs, budget, recipes, transfer_methods):
    """summary.json: every planned configuration's statistics, computed from the records alone.

    Inputs: records from runs.jsonl; runs: the planned runs (objects with experiment, label, config,
    seed and key); budget: the Budget dataclass; recipes: the training recipes, written down as they were;
    transfer_methods: {method: name} of the transfer experiment, in the order its table shows them.
    """
    latest = {record["key"]: record for record in records}  # a key recorded twice: the last record counts
    planned = [latest[run.key] for run in runs if run.key in latest]
    experiments = {}
    for run in runs:
        groups = experiments.setdefault(run.experiment, {})
        groups.setdefault(run.label, (run.config, []))[1].extend([latest[run.key]] if run.key in latest else [])
    summary = {"budget": asdict(budget), "quick": budget.name == "quick",
               "seeds": sorted({run.seed for run in runs}), "runs": len(planned),
               "failed_runs": sum(record["status"] != "ok" for record in planned),
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


def spread(stats):
    """'[98.85, 98.97]': the lowest and highest seed, in percent."""
    return "n/a" if not stats or stats["min"] is None else f"[{100 * stats['min']:.2f}, {100 * stats['max']:.2f}]"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def noise_verdicts(experiment):
    """{label: text} saying whether each row differs from its reference by more than the seed spread."""
    verdicts = {}
    for comparison in experiment["comparisons"]:
        p = "n/a" if comparison["p"] is None else f"{comparison['p']:.3f}"
        verdict = "within noise" if comparison["within_noise"] else "real difference"
        verdicts[comparison["label"]] = (f"{100 * comparison['difference']:+.2f} vs {comparison['against']} "
                                         f"(p = {p}, {verdict})")
    return verdicts


def n_seeds(row):
    stats = row.get("test_accuracy")
    failed = f", {len(row['failed'])} failed" if row["failed"] else ""
    return f"{stats['n'] if stats else 0}{failed}"


def section_frameworks(experiment, claims, recipe):
    rows = experiment["rows"]
    verdicts = noise_verdicts(experiment)
    simple = [row for row in rows if row["config"]["part"] == "simple_cnn"]
    timed = [row for row in rows if row["config"]["part"] == "time_to_target"]
    lines = ["## Frameworks: one SimpleCNN in NumPy, PyTorch and Keras", "",
             "![frameworks](plots/experiments_frameworks.png)", "",
             "Same initial weights (copied with the weight-transfer functions), Adam with a cosine schedule, "
             "the same batch size, epochs and batch order, the final epoch's weights. Times are seconds of "
             "training only, measured the same way in each framework, one run after the other, each in a fresh "
             "process (after TensorFlow has trained in a process, NumPy and PyTorch train 2-4 times slower "
             "there).", "",
             table(["framework", "test accuracy %", "seeds", "min, max", "training s", "s per epoch", "images/s",
                    "parameters", "vs the best", "write-up's claim (single run, different networks)"],
                   [[row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                     number(row.get("train_seconds")), number(row.get("seconds_per_epoch")),
                     number(row.get("images_per_second"), 0), number(row.get("parameters"), 0),
                     verdicts.get(row["label"], "best"),
                     "{:.1f}%, {:.1f} s".format(100 * claims[row["label"]][0], claims[row["label"]][1])]
                    for row in simple]), ""]
    for row in simple:
        claim, stats = claims[row["label"]][0], row.get("test_accuracy")
        if stats and stats["mean"] is not None and not stats["min"] - 0.005 <= claim <= stats["max"] + 0.005:
            lines.append(f"- The write-up's {100 * claim:.1f}% for {row['label']} does not match what this code "
                         f"measures: {percent(stats)}% over {stats['n']} seeds.")
    budget_epochs = timed[0]["config"]["epochs"] if timed else 0
    lines += ["", f"Time to 99% test accuracy, one recipe in all three (make_cnn with BatchNorm, batch "
              f"{recipe['batch_size']}, learning rate {recipe['learning_rate']}, cosine over "
              f"{budget_epochs} epochs). The test set is measured after each epoch only to stop the clock; "
              "the clock counts training seconds, not those evaluations.", "",
              table(["framework", "reached 99%", "seconds to 99%", "epochs to 99%", "final test accuracy %",
                     "s per epoch"],
                    [[row["label"].split(",")[0],
                      f"{row.get('seconds_to_target', {}).get('n', 0)} of {len(row['seeds'])}",
                      number(row.get("seconds_to_target")), number(row.get("epochs_to_target"), 1),
                      percent(row.get("test_accuracy")), number(row.get("seconds_per_epoch"))] for row in timed])]
    return lines


def section_sweep(title, figure, description, experiment, claims=None, extra=None):
    verdicts = noise_verdicts(experiment)
    header = ["configuration", "test accuracy %", "seeds", "min, max", "parameters", "training s", "vs the best"]
    header += [extra[0]] if extra else []
    header += ["write-up's claim"] if claims else []
    rows = []
    for row in experiment["rows"]:
        cells = [row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                 number(row.get("parameters"), 0), number(row.get("train_seconds")),
                 verdicts.get(row["label"], "best")]
        cells += [extra[1](row)] if extra else []
        if claims:
            claim = claims.get(row["label"])
            cells.append("n/a" if claim is None else f"{100 * claim:.1f}%")
        rows.append(cells)
    return [f"## {title}", "", f"![{title}](plots/{figure})", "", description, "", table(header, rows)]


def gradient_norms(row):
    curve = row["curves"].get("first_conv_gradient_norm")
    return "n/a" if not curve else f"{curve[0]:.2e} → {curve[-1]:.2e}"


def section_ablation(experiment):
    reference = experiment["rows"][0]
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    rows = [[reference["label"], percent(reference.get("test_accuracy")), n_seeds(reference),
             spread(reference.get("test_accuracy")), "", "", ""]]
    for row in experiment["rows"][1:]:
        comparison = comparisons.get(row["label"])
        rows.append([row["label"], percent(row.get("test_accuracy")), n_seeds(row), spread(row.get("test_accuracy")),
                     "n/a" if not comparison else f"{100 * comparison['difference']:+.2f}",
                     "n/a" if not comparison or comparison["p"] is None else f"{comparison['p']:.3f}",
                     "n/a" if not comparison else ("within noise" if comparison["within_noise"] else "real")])
    return ["## Ablation: what each component is worth", "", "![ablation](plots/experiments_ablation.png)", "",
            "One reference CNN (2 conv blocks with BatchNorm, max pooling, padding, ReLU, dropout 0.3 and "
            "random rotation, shift and zoom), then one change at a time. The write-up's 'component importance' "
            "panel (convolution 90%, pooling 80%, ...) was never computed; this table is.", "",
            table(["change", "test accuracy %", "seeds", "min, max", "change (points)", "Welch p", "verdict"], rows)]


def section_transfer(experiment, transfer_methods):
    rows = {(row["config"]["method"], row["config"]["per_class"]): row for row in experiment["rows"]}
    sizes = sorted({k for _, k in rows})
    source = next((row["source_test_accuracy"] for row in experiment["rows"] if "source_test_accuracy" in row), None)
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}

    def cell(row):
        comparison = comparisons.get(row["label"])
        if comparison is None:
            return f"{percent(row.get('test_accuracy'))} (best)"
        verdict = "within noise" if comparison["within_noise"] else f"p = {comparison['p']:.3f}"
        return f"{percent(row.get('test_accuracy'))} ({100 * comparison['difference']:+.2f}, {verdict})"

    body = [[name] + [cell(rows[(method, k)]) if (method, k) in rows else "n/a" for k in sizes]
            for method, name in transfer_methods.items()]
    return ["## Transfer: digits 0-4 to digits 5-9", "", "![transfer](plots/experiments_transfer.png)", "",
            f"A make_cnn trained on digits 0 to 4 ({percent(source)}% on their test images), then adapted to "
            "digits 5 to 9 from a few labelled images per class, with the same number of optimizer steps for "
            "every size. Each cell: mean ± std, then the difference from the best method at that size "
            "(points) and whether it is within noise. The protocol follows an exercise of chapter 11 of "
            "Géron's *Hands-On Machine Learning* "
            "(there with a fully connected network and 100 images per class).", "",
            table(["method"] + [f"{k} per class: test accuracy %" for k in sizes], body)]


def write_report(summary, path):
    """RESULTS.md, every number formatted from summary.json."""
    budget, machine, experiments = summary["budget"], summary["machine"] or {}, summary["experiments"]
    sweep = summary["recipes"]["sweep"]
    lines = ["# Results", "",
             "Generated by `python experiments.py` from `results/runs.jsonl`; do not edit by hand. "
             "`python experiments.py --report` rebuilds this page, `summary.json` and the figures without training.",
             ""]
    if summary["quick"]:
        lines += ["**QUICK RUN (`--quick`): tiny budgets that only check that everything runs. These numbers say "
                  "nothing about the models.**", ""]
    lines += [f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores; " +
              ", ".join(f"{package} {version}" for package, version in machine.get("versions", {}).items()
                        if version),
              f"- Runs: {summary['runs']} ({summary['failed_runs']} failed), seeds {summary['seeds']}; "
              f"{summary['runs_with_other_processes']} saw another process on a CPU as they started "
              f"({', '.join(summary['other_processes_seen']) or 'none'}); highest 1-minute load average "
              f"{summary['max_load_average'] or 0:.2f} on {machine.get('cores')} cores, this script included; "
              f"commit(s) {', '.join(summary['git_commits'])}.",
              f"- Budget `{budget['name']}`: the frameworks experiment trains on "
              f"{budget['framework_train_size'] or 55000:,} images for {budget['framework_epochs']} epoch(s) "
              f"(time to 99%: up to {budget['time_to_99_epochs']}); depth, activations, efficiency and ablation "
              f"train PyTorch models on the first {budget['sweep_train_size']:,} training images for "
              f"{budget['sweep_epochs']} epochs (batch {sweep['batch_size']}, Adam, learning rate "
              f"{sweep['learning_rate']}, cosine schedule, the best validation epoch kept); transfer pretrains on "
              f"{budget['transfer_pretrain_size']:,} images of digits 0-4 and adapts with "
              f"{budget['transfer_steps']} steps; test accuracy on {budget['test_size'] or 10000:,} test images.",
              "- How to read: mean ± standard deviation (ddof=1) over seeds, then the lowest and highest seed. "
              f"'within noise' means Welch's t-test finds no difference at p < {VALIDATION_P} (with 3 seeds it "
              "only detects large ones). One model's test accuracy near 99% has a sampling error of about "
              "0.1 points by itself: sqrt(0.99 * 0.01 / 10,000) = 0.001.", ""]
    claims = summary["write_up_claims"]
    if "frameworks" in experiments:
        lines += section_frameworks(experiments["frameworks"], claims["frameworks"],
                                    summary["recipes"]["time_to_99"]) + [""]
        lines += ["![training history](plots/experiments_training_history.png)", ""]
    if "depth" in experiments:
        lines += section_sweep("Depth: 1 to 4 conv blocks", "experiments_depth.png",
                               "make_cnn with 1 to 4 blocks of conv, ReLU and 2x2 max pooling, channels doubling "
                               "from 16.", experiments["depth"], claims["depth"]) + [""]
    if "activations" in experiments:
        lines += section_sweep("Activations", "experiments_activations.png",
                               "make_cnn (2 blocks) with each activation. The last column is the mean norm of the "
                               "gradient of the loss with respect to the first conv layer's weights, first epoch → "
                               "last: sigmoid's derivative is at most 1/4, so each layer shrinks the gradient.",
                               experiments["activations"], claims["activations"],
                               ("first conv gradient norm", gradient_norms)) + [""]
    if "efficiency" in experiments:
        published = "; ".join(f"{point['label']}: {100 * point['test_error']:.2f}% error with "
                              f"{point['parameters']:,} parameters" for point in summary["published"])
        lines += section_sweep("Parameter efficiency: CNN against MLP", "experiments_efficiency.png",
                               "Test accuracy against the number of parameters. Published, not measured here: "
                               f"{published}.", experiments["efficiency"]) + [""]
    if "ablation" in experiments:
        lines += section_ablation(experiments["ablation"]) + [""]
    if "transfer" in experiments:
        lines += section_transfer(experiments["transfer"], summary["transfer_methods"]) + [""]
    lines += ["## Figures", "", "![summary](plots/experiments_summary.png)", "",
              "What a trained SimpleCNN learns (its filters, feature maps, Grad-CAM) is drawn by "
              "`python visualize_features.py`, not by this experiment: see "
              "[the filters](plots/features_01_filters.png), [the feature maps](plots/features_02_feature_maps.png) "
              "and the README's Part 2.", ""]
    atomic_write(path, "\n".join(lines))


def atomic_write(path, text):
    """Write text to path through cnn_from_scratch.atomic_save (a temporary file, then a rename)."""
    from cnn_from_scratch import atomic_save  # noqa: PLC0415

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_save(path, write)


# --- Figures: drawn from summary.json ---

COLORS = {"CNN": "tab:blue", "MLP": "tab:orange",
          "scratch": "tab:gray", "frozen": "tab:blue", "fine_tune": "tab:green"}


def points_and_means(ax, rows, metric, scale=100.0, horizontal=False):
    """Every seed as a dot and the mean ± std as a bar with an error bar, one position per row."""
    for position, row in enumerate(rows):
        stats = row.get(metric)
        if not stats or stats["mean"] is None:
            continue
        values = scale * np.asarray([value for value in stats["values"] if value is not None])
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        error = None if stats["std"] is None else scale * stats["std"]
        if horizontal:
            ax.errorbar(scale * stats["mean"], position, xerr=error, fmt="o", color="black", capsize=4, zorder=3)
            ax.scatter(values, position + jitter, s=14, color="tab:blue", alpha=0.7, zorder=2)
        else:
            ax.errorbar(position, scale * stats["mean"], yerr=error, fmt="o", color="black", capsize=4, zorder=3)
            ax.scatter(position + jitter, values, s=14, color="tab:blue", alpha=0.7, zorder=2)
    ticks, labels = range(len(rows)), [row["label"] for row in rows]
    if horizontal:
        ax.set_yticks(ticks, labels)
    else:
        ax.set_xticks(ticks, labels, rotation=20, ha="right")
    ax.grid(alpha=0.3)


def draw_frameworks_accuracy(ax, summary):
    rows = [row for row in summary["experiments"]["frameworks"]["rows"] if row["config"]["part"] == "simple_cnn"]
    points_and_means(ax, rows, "test_accuracy")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("SimpleCNN, same weights and batches")


def draw_frameworks_speed(ax, summary):
    rows = summary["experiments"]["frameworks"]["rows"]
    simple = [row for row in rows if row["config"]["part"] == "simple_cnn"]
    timed = [row for row in rows if row["config"]["part"] == "time_to_target"]
    positions = np.arange(len(simple))
    ax.bar(positions - 0.2, [row.get("seconds_per_epoch", {}).get("mean") or 0 for row in simple], 0.4,
           yerr=[row.get("seconds_per_epoch", {}).get("std") or 0 for row in simple], capsize=3,
           label="SimpleCNN: s per epoch")
    ax.bar(positions + 0.2, [row.get("seconds_to_target", {}).get("mean") or 0 for row in timed], 0.4,
           yerr=[row.get("seconds_to_target", {}).get("std") or 0 for row in timed], capsize=3,
           label="BatchNorm CNN: s to 99% test")
    ax.set_xticks(positions, [row["label"] for row in simple])
    ax.set_ylabel("seconds of training")
    ax.set_title("Speed on this machine")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def draw_sweep(ax, summary, experiment, title, xlabel=None):
    rows = summary["experiments"][experiment]["rows"]
    points_and_means(ax, rows, "test_accuracy")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    if xlabel:
        ax.set_xlabel(xlabel)


def draw_curves(ax, rows, curve, ylabel, log=False):
    for row in rows:
        values = row["curves"].get(curve)
        if values:
            ax.plot(range(1, len(values) + 1), 100 * np.asarray(values) if curve == "val_accuracy" else values,
                    marker="o", label=row["label"])
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_yscale("log" if log else "linear")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_efficiency(ax, summary):
    rows = summary["experiments"]["efficiency"]["rows"]
    for family in ("CNN", "MLP"):
        chosen = [row for row in rows if row["config"]["model"] == family.lower() and row.get("test_accuracy")]
        if not chosen:
            continue
        parameters = [row["parameters"]["mean"] for row in chosen]
        errors = [100 * (1 - row["test_accuracy"]["mean"]) for row in chosen]
        spreads = [100 * (row["test_accuracy"]["std"] or 0) for row in chosen]
        ax.errorbar(parameters, errors, yerr=spreads, marker="o", capsize=3, color=COLORS[family],
                    label=f"{family} (measured, mean ± std)")
        for row in chosen:
            ax.scatter([row["parameters"]["mean"]] * len(row["test_accuracy"]["values"]),
                       100 * (1 - np.asarray(row["test_accuracy"]["values"])), s=10, color=COLORS[family], alpha=0.5)
    for point, marker in zip(summary["published"], ("*", "X")):
        ax.scatter(point["parameters"], 100 * point["test_error"], marker=marker, s=120, color="black",
                   label=f"{point['label']} (published)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test error (%, log scale)")
    ax.set_title("Parameter efficiency")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, which="both")


def draw_ablation(ax, summary):
    experiment = summary["experiments"]["ablation"]
    comparisons = {comparison["label"]: comparison for comparison in experiment["comparisons"]}
    reference = experiment["rows"][0]
    rows = [row for row in experiment["rows"][1:] if row["label"] in comparisons]
    for position, row in enumerate(rows):
        comparison = comparisons[row["label"]]
        deltas = 100 * (np.asarray(row["test_accuracy"]["values"]) - reference["test_accuracy"]["mean"])
        color = "tab:gray" if comparison["within_noise"] else "tab:red"
        ax.barh(position, 100 * comparison["difference"], color=color, alpha=0.6)
        ax.scatter(deltas, [position] * len(deltas), s=12, color="black", zorder=3)
    ax.set_yticks(range(len(rows)), [row["label"] for row in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in test accuracy vs the reference (percentage points)")
    ax.set_title("Ablation (grey: within noise, red: real)")
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
    ax.set_title("Transfer from digits 0-4")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def save_figure(figure, path, quick):
    if quick:
        figure.suptitle("QUICK RUN: tiny budgets, the numbers mean nothing", color="red", fontsize=12)
    figure.savefig(path, dpi=100)


def figure_frameworks(summary, new_figure, plots_dir):
    """experiments_frameworks.png (accuracy, speed) and experiments_training_history.png."""
    figure = new_figure(12, 4.2)
    left, right = figure.subplots(1, 2)
    draw_frameworks_accuracy(left, summary)
    draw_frameworks_speed(right, summary)
    save_figure(figure, plots_dir / "experiments_frameworks.png", summary["quick"])
    figure = new_figure(12, 4)
    rows = [row for row in summary["experiments"]["frameworks"]["rows"] if row["config"]["part"] == "simple_cnn"]
    left, right = figure.subplots(1, 2)
    draw_curves(left, rows, "train_loss", "training loss (mean over seeds)")
    draw_curves(right, rows, "val_accuracy", "validation accuracy (%)")
    figure.suptitle("Training history of the SimpleCNN in three frameworks")
    save_figure(figure, plots_dir / "experiments_training_history.png", summary["quick"])
    return [draw_frameworks_accuracy, draw_frameworks_speed]


def figure_sweep(summary, new_figure, plots_dir, name, title, with_gradients=False):
    """experiments_<name>.png: test accuracy per configuration, validation curves and, for the
    activations, the gradient norm that reaches the first layer."""
    rows = summary["experiments"][name]["rows"]
    figure = new_figure(15 if with_gradients else 11, 4.2)
    axes = figure.subplots(1, 3 if with_gradients else 2)
    draw_sweep(axes[0], summary, name, f"{title}: test accuracy")
    draw_curves(axes[1], rows, "val_accuracy", "validation accuracy (%)")
    axes[1].set_title("validation accuracy per epoch (mean over seeds)")
    if with_gradients:
        draw_curves(axes[2], rows, "first_conv_gradient_norm",
                    "L2 norm of dL/dW, first conv layer (mean over steps)", log=True)
        axes[2].set_title("gradient reaching the first layer")
    save_figure(figure, plots_dir / f"experiments_{name}.png", summary["quick"])
    return [lambda ax, summary: draw_sweep(ax, summary, name, title)]


def figure_single(summary, new_figure, plots_dir, name, draw, size):
    """experiments_<name>.png drawn by one draw function on one axis."""
    figure = new_figure(*size)
    draw(figure.subplots(), summary)
    save_figure(figure, plots_dir / f"experiments_{name}.png", summary["quick"])
    return [draw]


def figure_summary(summary, new_figure, plots_dir, panels):
    """experiments_summary.png: every experiment's main panel on one page."""
    columns = min(3, len(panels))
    figure = new_figure(6 * columns, 4.6 * math.ceil(len(panels) / columns))
    axes = list(figure.subplots(math.ceil(len(panels) / columns), columns, squeeze=False).flat)
    for index, ax in enumerate(axes):
        if index < len(panels):
            panels[index](ax, summary)
        else:
            ax.set_axis_off()
    save_figure(figure, plots_dir / "experiments_summary.png", summary["quick"])


def write_figures(summary, plots_dir):
    """Every experiment's figure, then the one-page summary of their main panels."""
    from visualize_features import new_figure  # noqa: PLC0415 (matplotlib only when figures are drawn)

    experiments = summary["experiments"]
    plots_dir.mkdir(parents=True, exist_ok=True)
    panels = []  # draw functions of the summary page, one per panel
    if "frameworks" in experiments:
        panels += figure_frameworks(summary, new_figure, plots_dir)
    if "depth" in experiments:
        panels += figure_sweep(summary, new_figure, plots_dir, "depth", "Depth")
    if "activations" in experiments:
        panels += figure_sweep(summary, new_figure, plots_dir, "activations", "Activation", with_gradients=True)
    for name, draw, size in (("efficiency", draw_efficiency, (8, 5)), ("ablation", draw_ablation, (9, 4.5)),
                             ("transfer", draw_transfer, (7, 4.5))):
        if name in experiments:
            panels += figure_single(summary, new_figure, plots_dir, name, draw, size)
    if panels:
        figure_summary(summary, new_figure, plots_dir, panels)
