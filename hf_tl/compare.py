"""Compare strategies side by side: one task and backbone, several strategies x seeds, one comparison folder.

Layout of the comparison folder::

    runs/STRATEGY/seed-N/   each run directory (a finished one is never rerun: an interrupted compare resumes)
    table.csv, table.md     dev metric mean ± std over seeds, architecture, trainable parameters, wall time (marked
                            where runs read a warm feature cache), peak memory
    metric_vs_params.png    the metric against trainable parameters (error bars over seeds)
    metric_vs_time.png      the metric against wall time
    learning_curves.png     dev metric per evaluation: mean over seeds per strategy, min-max band
    significance.md         per pair of strategies: the metric's difference, its bootstrap interval over dev examples
                            and seeds, and whether it is larger than that noise (the table marks each strategy
                            against the best: best, within noise, worse)
    comparison.json         every run's numbers and the exact command that trained it

Trained runs evaluate about ``eval_points`` times (``--eval_strategy steps`` with ``eval_steps`` from the run's
optimizer steps), so their curves have points to show; :func:`redraw` rebuilds tables and charts from the JSON.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.process import run_measured
from hf_tl.run_dir import CONFIG_FILE, LOG_FILE, REPORT_FILE, RESULTS_FILE
from hf_tl.safe_io import atomic_write_text
from hf_tl.significance import N_BOOTSTRAP, test_runs
from hf_tl.strategies import STRATEGIES, TRAINED, get_strategy, strategy_class
from hf_tl.training.sampling import epoch_length, total_optimizer_steps

DEFAULT_EVAL_POINTS = 8  # evaluations per trained run: enough for a learning curve, few enough to stay cheap
EVAL_FLAGS = ("--eval_strategy", "--eval_steps")  # the user's own evaluation schedule, which eval_points leaves alone


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
        atomic_write_text(record_file, json.dumps(record))
    results = json.loads((out / RESULTS_FILE).read_text())
    log = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()] if (out / LOG_FILE).is_file() \
        else []
    return {"strategy": strategy, "seed": seed, "path": str(out), **record, "skipped": skipped, "results": results,
            "report": _trained_parameters(out, strategy), "log": log, "architecture": _run_architecture(out)}


def architecture_of(config: dict) -> str:
    """What kind of model a run config scores with: its ``architecture`` for a similarity task (``bi-encoder``,
    ``cross-encoder``), otherwise its task type; a multi-task config joins its tasks' kinds.

    Args:
        config: A flat config mapping, as a run's ``config.yaml`` holds it.
    """
    tasks = [{**config, **options} for options in (config.get("tasks") or {}).values()] or [config]
    kinds = [(t.get("architecture") or "cross_encoder") if t.get("task") == "similarity" else t.get("task", "?")
             for t in tasks]
    return " + ".join(dict.fromkeys(k.replace("_", "-") for k in kinds))


def _run_architecture(out: Path) -> str:
    from hf_tl.config_io import read_yaml

    return architecture_of(read_yaml(out / CONFIG_FILE))


def cache_hit(results: dict) -> bool:
    """Whether a run read some split's features from a warm feature cache (its wall time then leaves out a backbone
    pass over that split)."""
    return "hit" in (results.get("feature_cache") or {}).values()


def optimizer_steps(config, train_rows: dict[str, int]) -> int:
    """The optimizer steps a single-process run of ``config`` takes, counted as ``hf_tl.training.loop`` counts them.

    Args:
        config: The run's :class:`hf_tl.run_config.RunConfig`.
        train_rows: ``{task: train rows}`` after ``max_train_samples`` and ``few_shot_k``.
    """
    t = config.train
    batches = {task: math.ceil(rows / t.per_device_train_batch_size) for task, rows in train_rows.items()}
    return max(1, total_optimizer_steps(t, epoch_length(batches, t.gradient_accumulation_steps)))


def eval_steps_for(config, train_rows: dict[str, int], eval_points: int) -> int:
    """Optimizer steps between evaluations so that a run of ``config`` evaluates about ``eval_points`` times."""
    return max(1, round(optimizer_steps(config, train_rows) / eval_points))


def _trained_parameters(out: Path, strategy: str) -> dict:
    """The parameter report of the run that trained what a run of ``strategy`` learned (a chain's first run)."""
    report_dir = strategy_class(strategy).parameter_report_dir(out)
    return json.loads((report_dir / f"{REPORT_FILE}.json").read_text())


def summarize(runs: list[dict], metric: str) -> list[dict]:
    """One row per strategy: the metric's mean and standard deviation over seeds (ddof 1), the architecture, the
    costs, and how many runs read a warm feature cache (``feature_cache_hits``)."""
    rows = []
    for strategy in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == strategy]
        values = [r["results"][f"eval_{metric}"] for r in mine]
        gpu = [r["results"]["peak_gpu_memory_mib"] for r in mine if "peak_gpu_memory_mib" in r["results"]]
        rows.append({
            "strategy": strategy, "architecture": " / ".join(dict.fromkeys(r["architecture"] for r in mine)),
            "seeds": len(values), "metric": metric, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "trainable": mine[0]["report"]["trainable"], "total": mine[0]["report"]["total"],
            "trainable_percent": mine[0]["report"]["percent"],
            "wall_s": statistics.mean(r["wall_s"] for r in mine),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in mine), "peak_gpu_mib": max(gpu) if gpu else None,
            "feature_cache_hits": sum(cache_hit(r["results"]) for r in mine),
            "cv_folds": mine[0]["results"].get("cv_folds")})
    return rows


CACHE_MARK = "†"  # beside the wall time of a strategy whose runs read features from a warm cache


def markdown_table(rows: list[dict]) -> str:
    """The comparison table as Markdown, with a note under it for strategies whose runs hit the feature cache."""
    metric = rows[0]["metric"]
    tested = "vs_best" in rows[0]
    where = f"{rows[0]['cv_folds']}-fold held-out" if rows[0].get("cv_folds") else "dev"
    lines = [f"| strategy | architecture | {where} {metric} (mean ± std) | seeds | trainable params | wall time (s) "
             f"| peak memory (MiB) |" + (" vs best |" if tested else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if tested else "")]
    notes = []
    for r in rows:
        memory = f"{r['peak_rss_mib']:,} RSS" + (f", {r['peak_gpu_mib']:,} GPU" if r["peak_gpu_mib"] else "")
        hits = r["feature_cache_hits"]
        lines.append(f"| {r['strategy']} | {r['architecture']} | {r['mean']:.4f} ± {r['std']:.4f} | {r['seeds']} | "
                     f"{r['trainable']:,} ({r['trainable_percent']:.2f}%) | {r['wall_s']:.1f}"
                     f"{f' {CACHE_MARK}' if hits else ''} | {memory} |" + (f" {r['vs_best']} |" if tested else ""))
        if hits:
            notes.append(f"{CACHE_MARK} {hits} of {r['seeds']} {r['strategy']} runs read backbone features from a "
                         f"warm feature cache, so their wall time leaves out a backbone pass over the cached splits.")
    return "\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in notes)


def compare(config_path: str, strategies: list[str], seeds: int, output_dir: str, overrides: list[str] = (),
            eval_points: int = DEFAULT_EVAL_POINTS, bootstrap: int = N_BOOTSTRAP) -> Path:
    """Run ``strategies`` x ``seeds`` on the config's task and backbone, and write the comparison folder.

    Args:
        config_path: The recipe config (YAML) all runs start from.
        strategies: Strategy names, e.g. ``["zero_shot", "frozen", "lora"]``.
        seeds: Seeds per strategy: the config's seed and the following ones.
        output_dir: The comparison folder.
        overrides: ``--key value`` flags applied to every run (after the per-strategy defaults).
        eval_points: Evaluations per trained run (``--eval_strategy steps`` with ``eval_steps`` to match); 0 keeps
            the config's schedule, and so do overrides that set ``eval_strategy`` or ``eval_steps``.
        bootstrap: Replicates of the significance test (0: no test); see :mod:`hf_tl.significance`.

    Returns:
        The comparison folder.

    Raises:
        HfTlError: for an unknown strategy, no seeds, a negative ``eval_points``, or a run that fails.
    """
    from hf_tl.config_io import parse_args
    from hf_tl.model_card import COMPARISON_FILE, write_model_card

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise HfTlError(f"Unknown strategies {unknown or '(none given)'}; choose from {', '.join(STRATEGIES)}.")
    if seeds < 1:
        raise HfTlError(f"--seeds must be at least 1, got {seeds}.")
    if eval_points < 0:
        raise HfTlError(f"--eval_points must be 0 (the config's own schedule) or more, got {eval_points}.")
    if bootstrap < 0:
        raise HfTlError(f"--bootstrap must be 0 (no significance test) or more, got {bootstrap}.")
    if any(flag.split("=")[0] in ("--push_to_hub", "--hub_model_id") for flag in overrides):
        raise HfTlError("compare trains many runs; push the comparison folder once afterwards with hf-tl push FOLDER "
                        "user/name instead of --push_to_hub.")
    config = parse_args(["--config", config_path, *overrides])
    own_schedule = eval_points == 0 or any(flag.split("=")[0] in EVAL_FLAGS for flag in overrides)
    folder = Path(output_dir)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    runs, train_rows = [], {}
    for strategy in strategies:
        flags = strategy_flags(strategy, config)
        if not own_schedule:  # before the overrides, as the strategy's flags are
            flags = [*flags, *_eval_flags(config_path, [*flags, *overrides, "--strategy", strategy], eval_points,
                                          train_rows)]
        for seed in range(config.train.seed, config.train.seed + seeds):
            out = folder / "runs" / strategy / f"seed-{seed}"
            out.parent.mkdir(parents=True, exist_ok=True)
            run = run_one(config_path, strategy, seed, out, [*flags, *overrides])
            print(f"{strategy} seed {seed}: {'finished earlier, skipped' if run['skipped'] else 'trained'} "
                  f"({run['path']})", flush=True)
            runs.append(run)
    metric = runs[0]["results"]["metric_for_best_model"]
    means = {row["strategy"]: row["mean"] for row in summarize(runs, metric)}
    tested = test_runs(runs, metric, means, folder, bootstrap) if bootstrap and len(strategies) > 1 else None
    rows, table = _write_tables_and_charts(runs, metric, folder, tested)
    atomic_write_text(folder / "comparison.json", json.dumps({"config": config_path, "metric": metric,
                                                              "eval_points": 0 if own_schedule else eval_points,
                                                              "rows": rows, "runs": runs,
                                                              "significance": tested}, indent=2))
    for run in runs:  # each run's card carries the table it belongs to
        atomic_write_text(Path(run["path"]) / COMPARISON_FILE, table)
        write_model_card(Path(run["path"]))
    return folder


def _eval_flags(config_path: str, flags: list[str], eval_points: int, train_rows: dict) -> list[str]:
    """``--eval_strategy steps --eval_steps K`` so that a run of ``config_path`` with ``flags`` evaluates about
    ``eval_points`` times; none for a run that trains nothing by gradient (it evaluates once).

    ``train_rows`` (``{task: train rows}``) is filled on first use: the data is read once, as the runs read it.
    """
    from hf_tl.config_io import parse_args
    from hf_tl.training.setup import resolve_config

    config = parse_args(["--config", config_path, *flags])
    if get_strategy(config.strategy).run_kind != TRAINED:
        return []
    if not train_rows:
        _, raw = resolve_config(config, need_train=True)
        train_rows.update({task: len(splits["train"]) for task, splits in raw.items()})
    return ["--eval_strategy", "steps", "--eval_steps", str(eval_steps_for(config, train_rows, eval_points))]


def _write_tables_and_charts(runs: list[dict], metric: str, folder: Path,
                             tested: dict | None = None) -> tuple[list[dict], str]:
    """Write ``table.csv``, ``table.md`` and the charts of ``runs`` into ``folder``.

    Args:
        runs: The runs.
        metric: The dev metric compared.
        folder: The comparison folder.
        tested: The significance test's result, which marks each row against the best strategy.

    Returns:
        ``(table rows, the Markdown table)``.
    """
    from hf_tl.compare_charts import write_charts

    rows = summarize(runs, metric)
    if tested:
        for row in rows:
            row["vs_best"] = tested["vs_best"][row["strategy"]]
    with (folder / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    atomic_write_text(folder / "table.md", table)
    write_charts(runs, rows, metric, folder)
    return rows, table


def redraw(source: str | Path, config_path: str | None = None) -> Path:
    """Rebuild a comparison's tables and charts from its recorded numbers, without training anything.

    Args:
        source: A comparison folder or JSON file (see :func:`read_comparison`); tables and charts go beside it.
        config_path: The config the runs started from, for runs whose architecture the JSON does not record.

    Returns:
        The folder written to.

    Raises:
        HfTlError: as :func:`read_comparison`.
    """
    runs, metric, path = read_comparison(source, config_path)
    _write_tables_and_charts(runs, metric, path.parent, json.loads(path.read_text()).get("significance"))
    return path.parent


def read_comparison(source: str | Path, config_path: str | None = None) -> tuple[list[dict], str, Path]:
    """Read a comparison's runs back from its JSON, as :func:`run_one` returned them.

    Args:
        source: A comparison folder (its ``comparison.json``) or a comparison JSON file; a benchmark summary (runs
            with flat ``eval_*`` numbers, ``curve`` and ``trainable``) is read too.
        config_path: The config the runs started from, to tell the architecture of runs the JSON does not record
            it for (default: the JSON's ``config``).

    Returns:
        ``(runs, the dev metric, the JSON file)``.

    Raises:
        HfTlError: for a missing or unreadable JSON, or runs whose architecture cannot be told.
    """
    path = Path(source)
    path = path / "comparison.json" if path.is_dir() else path
    if not path.is_file():
        raise HfTlError(f"No comparison JSON at '{path}'; give a comparison folder or its comparison.json.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise HfTlError(f"'{path}' is not valid JSON ({err}).") from None
    if not isinstance(data, dict) or not data.get("runs"):
        raise HfTlError(f"'{path}' records no runs; give the comparison.json of an hf-tl compare.")
    runs = [_full_run(run, data.get("rows") or []) for run in data["runs"]]
    unknown = list(dict.fromkeys(r["strategy"] for r in runs if "architecture" not in r))
    if unknown:
        known = _architectures(config_path or data.get("config"), unknown, path)
        runs = [{**r, "architecture": r.get("architecture") or known[r["strategy"]]} for r in runs]
    return runs, data.get("metric") or runs[0]["results"]["metric_for_best_model"], path


def _full_run(run: dict, rows: list[dict]) -> dict:
    """A run as :func:`run_one` returns it, also from a benchmark summary's run (flat ``eval_*`` numbers, ``curve``
    for the log, ``trainable`` for the report; the rest of the report from its strategy's row)."""
    if "results" in run:
        return run
    row = next((r for r in rows if r["strategy"] == run["strategy"]), {})
    results = {k: v for k, v in run.items() if k.startswith("eval_") or k in ("best_step", "feature_cache")}
    report = {"trainable": run["trainable"], "total": row.get("total", 0),
              "percent": row.get("trainable_percent", 0.0)}
    return {**run, "results": results, "log": run.get("curve", []), "report": report}


def _architectures(config_path: str | None, strategies: list[str], source: Path) -> dict[str, str]:
    """``{strategy: architecture}`` of runs of ``strategies`` started from ``config_path`` with compare's flags.

    Raises:
        HfTlError: without a config to read.
    """
    from hf_tl.config_io import parse_args

    if not config_path or not Path(config_path).is_file():
        raise HfTlError(f"'{source}' does not record its runs' architectures; name the config they started from "
                        f"(hf-tl compare CONFIG --redraw {source}).")
    config = parse_args(["--config", config_path])
    return {s: architecture_of(parse_args(["--config", config_path, *strategy_flags(s, config)]).to_flat_dict())
            for s in strategies}
