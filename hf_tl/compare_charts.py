"""The charts of a comparison (matplotlib, written as PNG): the metric against trainable parameters and against wall
time, and the learning curves.

Every chart has a legend with one entry per strategy, named with its architecture (``full (cross-encoder)``), and
the strategies are told apart by colour and marker rather than by text beside the points, so no label can sit on
another strategy's point. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state, no backend to
choose).
"""

from __future__ import annotations

import statistics
from pathlib import Path

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "*")
CACHE_LABEL = "ringed: runs read features from a warm cache\n(their wall time leaves out a backbone pass)"
FEW_EVALUATIONS = 4  # fewer evaluations per trained run than this: the chart says its curves are short


def strategy_label(row: dict) -> str:
    """A strategy's name with the architecture it scores with, e.g. ``zero_shot (bi-encoder)``."""
    return f"{row['strategy']} ({row['architecture']})"


def _styles(rows: list[dict]) -> dict[str, tuple[str, str]]:
    """``{strategy: (colour, marker)}``, the same on every chart."""
    return {r["strategy"]: (f"C{i % 10}", MARKERS[i % len(MARKERS)]) for i, r in enumerate(rows)}


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.6, 4.4), dpi=120)
    return fig, fig.subplots()


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == CACHE_LABEL)  # the strategies first, in row order
    # Outside the axes, so it never hides a point.
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0, fontsize=8, labelspacing=0.9, title="strategy (architecture)", title_fontsize=8)


def scatter_figure(rows: list[dict], x_key: str, x_label: str, metric: str, log_x: bool = False,
                   mark_cache: bool = False):
    """The metric (mean ± std over seeds) of each strategy against one of its costs.

    Args:
        rows: The comparison's table rows (:func:`hf_tl.compare.summarize`).
        x_key: The row's cost to plot (``trainable``, ``wall_s``).
        x_label: The x axis's label.
        metric: The dev metric.
        log_x: A log x axis (a cost of 0 is drawn at 1 and said so in the legend).
        mark_cache: Ring the strategies whose runs read a warm feature cache (for a time axis).

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    fig, ax = _figure()
    styles = _styles(rows)
    for r in rows:
        color, marker = styles[r["strategy"]]
        x = max(r[x_key], 1) if log_x else r[x_key]
        note = ", 0 trained: drawn at 1" if log_x and r[x_key] == 0 else ""
        if mark_cache and r["feature_cache_hits"]:
            note += f", cache hit in {r['feature_cache_hits']} of {r['seeds']} runs"
        ax.errorbar([x], [r["mean"]], yerr=[r["std"]], fmt=marker, markersize=8, capsize=4, color=color,
                    markeredgecolor="white", markeredgewidth=0.6, label=strategy_label(r) + note)
    hits = [r for r in rows if r["feature_cache_hits"]] if mark_cache else []
    if hits:
        ax.scatter([r[x_key] for r in hits], [r["mean"] for r in hits], s=420, facecolors="none",
                   edgecolors="black", linewidths=1.2, label=CACHE_LABEL)
    if log_x:
        ax.set_xscale("log")
    ax.margins(x=0.08, y=0.08)
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"dev {metric} (mean ± std over seeds)")
    ax.set_title(f"dev {metric} against {x_label.split(' (')[0]}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _curves_of(runs: list[dict], strategy: str, metric: str) -> list[list[tuple[int, float]]]:
    """Each run's ``(optimizer step, metric)`` per evaluation, for the runs of ``strategy`` that logged any."""
    curves = [[(e["step"], e[metric]) for e in run["log"] if metric in e] for run in runs
              if run["strategy"] == strategy]
    return [c for c in curves if c]


def curves_figure(runs: list[dict], rows: list[dict], metric: str):
    """The dev metric per evaluation: per strategy, the mean over seeds at each optimizer step with a min-max band;
    a strategy evaluated once per run (nothing trained by gradient) is a dashed level line.

    Args:
        runs: The comparison's runs (their ``log``: one entry per evaluation).
        rows: The comparison's table rows (strategy order, architecture, trainable parameters).
        metric: The dev metric.

    Returns:
        The :class:`matplotlib.figure.Figure`; where trained runs recorded fewer than 4 evaluations its caption says
        so (the curves are not filled in).
    """
    fig, ax = _figure()
    styles = _styles(rows)
    evaluations = []  # per trained run
    for r in rows:
        curves = _curves_of(runs, r["strategy"], metric)
        if not curves:
            continue
        color, marker = styles[r["strategy"]]
        if max(len(c) for c in curves) == 1:
            why = "nothing trained" if r["trainable"] == 0 else "evaluated once"
            ax.axhline(statistics.mean(c[0][1] for c in curves), color=color, linestyle="--", linewidth=1.5,
                       label=f"{strategy_label(r)}: {why}, level line")
            continue
        evaluations += [len(c) for c in curves]
        by_step: dict[int, list[float]] = {}
        for curve in curves:
            for step, value in curve:
                by_step.setdefault(step, []).append(value)
        steps = sorted(by_step)
        ax.fill_between(steps, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps], color=color,
                        alpha=0.2, linewidth=0)
        ax.plot(steps, [statistics.mean(by_step[s]) for s in steps], marker=marker, markersize=5, color=color,
                label=f"{strategy_label(r)}, {len(curves)} seed{'s' if len(curves) > 1 else ''}")
    ax.set_xlim(left=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title(f"dev {metric} per evaluation: mean over seeds, band = min to max over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax)
    if evaluations and min(evaluations) < FEW_EVALUATIONS:
        fewest = min(evaluations)
        plural = "s" if fewest > 1 else ""
        fig.text(0.01, 0.0, f"Only {fewest} evaluation{plural} per trained run were recorded, so each curve joins "
                 f"{fewest} point{plural}; hf-tl compare --eval_points N evaluates about N times per run.", fontsize=8,
                 ha="left", va="top", style="italic")
    return fig


def charts(runs: list[dict], rows: list[dict], metric: str) -> dict[str, object]:
    """The comparison's charts, not yet saved.

    Returns:
        ``{file name: matplotlib Figure}``.
    """
    return {
        "metric_vs_params.png": scatter_figure(rows, "trainable", "trainable parameters (log scale)", metric,
                                               log_x=True),
        "metric_vs_time.png": scatter_figure(rows, "wall_s", "wall time per run (s)", metric, mark_cache=True),
        "learning_curves.png": curves_figure(runs, rows, metric),
    }


def write_charts(runs: list[dict], rows: list[dict], metric: str, folder: Path) -> list[Path]:
    """Write the three PNG charts of a comparison into ``folder``.

    Returns:
        The paths written.
    """
    paths = []
    for name, fig in charts(runs, rows, metric).items():
        paths.append(Path(folder) / name)
        fig.savefig(paths[-1], bbox_inches="tight", pad_inches=0.15)  # the legend and caption lie outside the axes
    return paths
