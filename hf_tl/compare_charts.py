"""The charts of a comparison (matplotlib, written as PNG): metric vs trainable parameters, vs wall time, and the
learning curves of every strategy."""

from __future__ import annotations

from pathlib import Path


def _scatter(rows: list[dict], x_key: str, x_label: str, metric: str, path: Path, log_x: bool) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for i, r in enumerate(rows):
        x = max(r[x_key], 1) if log_x else r[x_key]  # zero-shot trains 0 parameters: drawn at 1 on a log axis
        ax.errorbar([x], [r["mean"]], yerr=[r["std"]], fmt="o", capsize=4, label=r["strategy"], color=f"C{i}")
        name = f"{r['strategy']} (0)" if log_x and r[x_key] == 0 else r["strategy"]
        # Alternate above / below so neighbouring points' labels do not overlap.
        ax.annotate(name, (x, r["mean"]), textcoords="offset points", xytext=(6, 4 if i % 2 == 0 else -11), fontsize=8)
    if log_x:
        ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"dev {metric} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _curves(runs: list[dict], metric: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    colors = {s: f"C{i}" for i, s in enumerate(dict.fromkeys(r["strategy"] for r in runs))}  # as in the scatters
    for run in runs:
        points = [(r["step"], r[metric]) for r in run["log"] if metric in r]
        if not points:
            continue
        color = colors[run["strategy"]]
        label = run["strategy"] if run["seed"] == min(r["seed"] for r in runs if r["strategy"] == run["strategy"]) \
            else None
        if len(points) == 1:  # nothing trained (zero-shot): one evaluation, drawn as a level line
            ax.axhline(points[0][1], color=color, linestyle="--", label=label, alpha=0.8)
        else:
            ax.plot(*zip(*points), marker=".", color=color, label=label, alpha=0.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_charts(runs: list[dict], rows: list[dict], metric: str, folder: Path) -> list[Path]:
    """Write the three PNG charts of a comparison into ``folder``.

    Returns:
        The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    paths = [folder / "metric_vs_params.png", folder / "metric_vs_time.png", folder / "learning_curves.png"]
    _scatter(rows, "trainable", "trainable parameters (log scale)", metric, paths[0], log_x=True)
    _scatter(rows, "wall_s", "wall time per run (s)", metric, paths[1], log_x=False)
    _curves(runs, metric, paths[2])
    return paths
