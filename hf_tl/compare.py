"""Compare strategies side by side: one task and backbone, several strategies x seeds, one comparison folder.

Layout of the comparison folder::

    runs/STRATEGY/seed-N/   each run directory (a finished one is never rerun: an interrupted compare resumes)
    table.csv, table.md     dev metric mean ± std over seeds, trainable parameters, wall time, peak memory
    metric_vs_params.png    the metric against trainable parameters (error bars over seeds)
    metric_vs_time.png      the metric against wall time
    learning_curves.png     dev metric per evaluation, every strategy
    comparison.json         every run's numbers and the exact command that trained it
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.process import run_measured
from hf_tl.run_dir import LOG_FILE, REPORT_FILE, RESULTS_FILE
from hf_tl.strategies import STRATEGIES, strategy_class


def strategy_flags(strategy: str, config) -> list[str]:
    """Flags that make ``config`` (written for its own strategy) run ``strategy`` sensibly, as the strategy says.

    They are flags, so they beat the YAML's values; the user's own overrides come after them and win.
    """
    return strategy_class(strategy).compare_flags(config)


def run_one(config_path: str, strategy: str, seed: int, out: Path, flags: list[str]) -> dict:
    """Train one run in a child process (``hf-tl train``) and return its numbers; a finished run is only read.

    Returns:
        ``{"strategy", "seed", "path", "command", "wall_s", "peak_rss_mib", "results", "report", "log",
        "skipped"}``.

    Raises:
        HfTlError: with the end of the run's log, if it fails.
    """
    command = [sys.executable, "-m", "hf_tl.cli", "train", "--config", config_path, *flags, "--strategy", strategy,
               "--seed", str(seed), "--output_dir", str(out)]
    record_file = out.parent / f"{out.name}.json"  # beside the run: wall time and memory of the child
    skipped = (out / RESULTS_FILE).is_file() and record_file.is_file()
    if skipped:
        record = json.loads(record_file.read_text())
    else:
        if out.exists():  # an interrupted run: start it again, the partial one moved aside (never deleted)
            command += ["--overwrite_output_dir", "true"]
        status, log, wall, rss = run_measured(command)
        if status != 0:
            raise HfTlError(f"The {strategy} run with seed {seed} failed; the end of its log:\n{log[-2000:]}")
        record = {"wall_s": wall, "peak_rss_mib": rss, "command": command}
        record_file.write_text(json.dumps(record))
    results = json.loads((out / RESULTS_FILE).read_text())
    log = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()] if (out / LOG_FILE).is_file() \
        else []
    return {"strategy": strategy, "seed": seed, "path": str(out), **record, "skipped": skipped, "results": results,
            "report": _trained_parameters(out, strategy), "log": log}


def _trained_parameters(out: Path, strategy: str) -> dict:
    """The parameter report of the run that trained what a run of ``strategy`` learned (a chain's first run)."""
    report_dir = strategy_class(strategy).parameter_report_dir(out)
    return json.loads((report_dir / f"{REPORT_FILE}.json").read_text())


def summarize(runs: list[dict], metric: str) -> list[dict]:
    """One row per strategy: the metric's mean and standard deviation over seeds (ddof 1), and the costs."""
    rows = []
    for strategy in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == strategy]
        values = [r["results"][f"eval_{metric}"] for r in mine]
        gpu = [r["results"]["peak_gpu_memory_mib"] for r in mine if "peak_gpu_memory_mib" in r["results"]]
        rows.append({
            "strategy": strategy, "seeds": len(values), "metric": metric, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "trainable": mine[0]["report"]["trainable"], "total": mine[0]["report"]["total"],
            "trainable_percent": mine[0]["report"]["percent"],
            "wall_s": statistics.mean(r["wall_s"] for r in mine),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in mine), "peak_gpu_mib": max(gpu) if gpu else None})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The comparison table as Markdown."""
    metric = rows[0]["metric"]
    lines = [f"| strategy | dev {metric} (mean ± std) | seeds | trainable params | wall time (s) "
             f"| peak memory (MiB) |", "|---|---|---|---|---|---|"]
    for r in rows:
        memory = f"{r['peak_rss_mib']:,} RSS" + (f", {r['peak_gpu_mib']:,} GPU" if r["peak_gpu_mib"] else "")
        lines.append(f"| {r['strategy']} | {r['mean']:.4f} ± {r['std']:.4f} | {r['seeds']} | "
                     f"{r['trainable']:,} ({r['trainable_percent']:.2f}%) | {r['wall_s']:.1f} | {memory} |")
    return "\n".join(lines) + "\n"


def compare(config_path: str, strategies: list[str], seeds: int, output_dir: str, overrides: list[str] = ()) -> Path:
    """Run ``strategies`` x ``seeds`` on the config's task and backbone, and write the comparison folder.

    Args:
        config_path: The recipe config (YAML) all runs start from.
        strategies: Strategy names, e.g. ``["zero_shot", "frozen", "lora"]``.
        seeds: Seeds per strategy: the config's seed and the following ones.
        output_dir: The comparison folder.
        overrides: ``--key value`` flags applied to every run (after the per-strategy defaults).

    Returns:
        The comparison folder.

    Raises:
        HfTlError: for an unknown strategy, no seeds, or a run that fails.
    """
    from hf_tl.compare_charts import write_charts
    from hf_tl.config_io import parse_args
    from hf_tl.model_card import COMPARISON_FILE, write_model_card

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise HfTlError(f"Unknown strategies {unknown or '(none given)'}; choose from {', '.join(STRATEGIES)}.")
    if seeds < 1:
        raise HfTlError(f"--seeds must be at least 1, got {seeds}.")
    if any(flag.split("=")[0] in ("--push_to_hub", "--hub_model_id") for flag in overrides):
        raise HfTlError("compare trains many runs; push the comparison folder once afterwards with hf-tl push FOLDER "
                        "user/name instead of --push_to_hub.")
    config = parse_args(["--config", config_path, *overrides])
    folder = Path(output_dir)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    runs = []
    for strategy in strategies:
        for seed in range(config.train.seed, config.train.seed + seeds):
            out = folder / "runs" / strategy / f"seed-{seed}"
            out.parent.mkdir(parents=True, exist_ok=True)
            run = run_one(config_path, strategy, seed, out, [*strategy_flags(strategy, config), *overrides])
            print(f"{strategy} seed {seed}: {'finished earlier, skipped' if run['skipped'] else 'trained'} "
                  f"({run['path']})", flush=True)
            runs.append(run)
    metric = runs[0]["results"]["metric_for_best_model"]
    rows = summarize(runs, metric)
    with (folder / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    (folder / "table.md").write_text(table)
    write_charts(runs, rows, metric, folder)
    (folder / "comparison.json").write_text(json.dumps({"config": config_path, "metric": metric, "rows": rows,
                                                        "runs": runs}, indent=2))
    for run in runs:  # each run's card carries the table it belongs to
        (Path(run["path"]) / COMPARISON_FILE).write_text(table)
        write_model_card(Path(run["path"]))
    return folder
