"""The figures of experiments.py (plots/experiments_*.png), drawn from the summaries that report.py computes
from runs.jsonl: the same numbers as RESULTS.md, as dots (seeds) and bars (mean ± standard deviation).
matplotlib is imported only when a figure is drawn (new_figure).

Run it:
    python experiments.py --report      # summary.json, RESULTS.md and these figures from results/
"""
import math

import numpy as np

from report import MORE, budget_tag, figure_file, frameworks_rows, the_budgets, time_rows


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


def draw_steps_to_target(ax, rows, labels, target):
    """Optimizer steps to the target: each seed that reached it a dot, a run that never reached it a red x at
    the budget, the censored median (to_target) a bar with its quartiles where they are given."""
    labelled = False  # the legend names the red x once
    for position, row in enumerate(rows):
        to = row.get("to_target", {})
        steps = to.get("steps") or {}
        values = [value for value in (row.get("steps_to_target") or {}).get("values") or [] if value is not None]
        ax.scatter(position + np.linspace(-0.15, 0.15, len(values)), values, s=14, color="black", zorder=3)
        missing = len(row["seeds"]) - len(values)
        if missing:
            ax.scatter([position] * missing, [to.get("budget_steps")] * missing, marker="x", s=40, color="tab:red",
                       zorder=3, label=None if labelled else "never reached (drawn at the budget)")
            labelled = True
        if steps.get("median") in (None, MORE):
            ax.annotate("no median", (position, max(values or [0])), ha="center", xytext=(0, 6),
                        textcoords="offset points", fontsize=8)
            continue
        ax.bar(position, steps["median"], 0.6, color="tab:green", alpha=0.5)
        if steps.get("q1") is not None and steps.get("q3") != MORE:
            ax.errorbar(position, steps["median"], yerr=[[steps["median"] - steps["q1"]],
                                                         [steps["q3"] - steps["median"]]],
                        fmt="none", color="black", capsize=4)
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right")
    ax.set_ylabel(f"optimizer steps to {100 * target:.0f}% test accuracy")
    ax.grid(axis="y", alpha=0.3)


def draw_frameworks_time_to_target(ax, summary):
    rows = time_rows(summary)
    draw_steps_to_target(ax, rows, [row["label"].replace(" recipe", "") for row in rows], summary["recipes"]["target"])
    ax.set_title(f"Steps to {100 * summary['recipes']['target']:.0f}%: median, quartiles, seeds\n"
                 f"({summary['budget']['name']} budget, {len(rows[0]['seeds']) if rows else 0} seeds)")


def draw_recipe_ablation(ax, summary):
    rows = time_rows(summary, ablation=True)
    draw_steps_to_target(ax, rows, [row["label"].removeprefix("recipe: ") for row in rows],
                         summary["recipes"]["target"])
    ax.set_title("The speedrun recipe, one change at a time (PyTorch)\nmedian over all seeds, a run never reached "
                 "counted as more than the budget")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


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
        if comparison.get("ci95") is not None:  # the 95% interval of the difference
            low, high = (100 * bound for bound in comparison["ci95"])
            middle = 100 * comparison["difference"]
            ax.errorbar(middle, position, xerr=[[middle - low], [high - middle]], fmt="none", color="black",
                        capsize=3, linewidth=1)
        ax.scatter(deltas, [position] * len(deltas), s=12, color="black", zorder=3)
    ax.set_yticks(range(len(rows)), [row["label"] for row in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in test accuracy vs the reference, with its 95% interval (percentage points)")
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
    figure.suptitle("Training history of the SimpleCNN in three frameworks, from the same weights and batches: "
                    "close, not identical")
    save_figure(figure, plots_dir / "experiments_training_history.png", summary["quick"])
    return [lambda ax, _: draw_frameworks_accuracy(ax, summary)]


def figure_time_to_99(summary, plots_dir):
    """experiments_time_to_99.png: the recipes with the machine's limit, and the recipe's ablation."""
    figure = new_figure(14, 5)
    for ax, draw in zip(figure.subplots(1, 2, sharey=True), (draw_frameworks_time_to_target, draw_recipe_ablation)):
        draw(ax, summary)
    save_figure(figure, plots_dir / "experiments_time_to_99.png", summary["quick"])
    return [lambda ax, _: draw_frameworks_time_to_target(ax, summary)]


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
