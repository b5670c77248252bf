"""Hyperparameter search: ``hf-tl tune CONFIG --n_trials N --search_space FILE`` with Optuna.

Each trial is a child run (``hf-tl train`` with the trial's values as flags), like a comparison's runs; while it
trains, its ``eval_log.jsonl`` is read and each evaluation reported to Optuna, whose median pruner stops trials that
fall behind. The study is stored in the tuning folder, so an interrupted search continues where it stopped.

Layout of the tuning folder::

    trials/trial-N/       each trial's run directory (a pruned trial's is unfinished)
    trial-N.log           each trial's output
    study.db              the Optuna study (SQLite)
    trials.csv, trials.md every trial: its values, its best dev metric, its state and wall time
    trials.png            the metric per trial and the best so far
    best_config.yaml      the config with the best trial's values, ready for hf-tl train

A search space is a YAML mapping of run options to ranges::

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    num_train_epochs: {type: int, low: 1, high: 4}
    loss: {type: categorical, choices: [mse, cosent]}
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.run_dir import LOG_FILE, RESULTS_FILE
from hf_tl.safe_io import atomic_write_text

TYPES = ("float", "int", "categorical")
POLL_S = 1.0  # how often a running trial's eval log is read


def read_search_space(path: str | Path) -> dict[str, dict]:
    """Read and check a search space file.

    Raises:
        HfTlError: for a missing file, an unknown option, or a malformed range.
    """
    from hf_tl.config_io import read_yaml
    from hf_tl.errors import suggest
    from hf_tl.run_config import all_option_names

    path = Path(path)
    if not path.is_file():
        raise HfTlError(f"Search space file '{path}' does not exist; give a YAML mapping of options to ranges.")
    space = read_yaml(path)
    if not isinstance(space, dict) or not space:
        raise HfTlError(f"Search space '{path}' must map run options to ranges, e.g. learning_rate: {{type: float, "
                        f"low: 1.0e-5, high: 1.0e-4, log: true}}.")
    known = all_option_names()
    for option, spec in space.items():
        where = f"'{option}' in {path}"
        if option not in known:
            raise HfTlError(f"Search space option {where} is not a run option." + suggest(str(option), known))
        if option in ("output_dir", "seed"):
            raise HfTlError(f"Search space option {where} is set by the search itself; remove it.")
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise HfTlError(f"Search space option {where} needs type: float, int or categorical.")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise HfTlError(f"Search space option {where} needs choices: a list of values.")
        elif not all(isinstance(spec.get(k), (int, float)) for k in ("low", "high")) or spec["low"] >= spec["high"]:
            raise HfTlError(f"Search space option {where} needs numbers low < high.")
    return space


def _suggest(trial, option: str, spec: dict):
    if spec["type"] == "float":
        return trial.suggest_float(option, spec["low"], spec["high"], log=bool(spec.get("log")))
    if spec["type"] == "int":
        return trial.suggest_int(option, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
    return trial.suggest_categorical(option, spec["choices"])


def _flags(values: dict) -> list[str]:
    """``--option value`` flags of a trial's values (a list value as several words)."""
    return [f for option, value in values.items()
            for f in (f"--{option}", *(map(str, value) if isinstance(value, list) else [str(value)]))]


def _evaluations(run_dir: Path) -> list[dict]:
    log = run_dir / LOG_FILE
    if not log.is_file():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break  # a line being written
    return out


def _run_trial(trial, config_path: str, space: dict, overrides: list[str], folder: Path, metric_name: list):
    """Train one trial in a child process, reporting its evaluations; return its best metric.

    Raises:
        optuna.TrialPruned: when the pruner stops it.
        HfTlError: with the end of its log, when it fails.
    """
    import optuna

    values = {option: _suggest(trial, option, spec) for option, spec in space.items()}
    out = folder / "trials" / f"trial-{trial.number}"
    flags = _flags(values)
    command = [sys.executable, "-m", "hf_tl.cli", "train", "--config", config_path, *overrides, *flags,
               "--output_dir", str(out), "--overwrite_output_dir", "true"]
    trial.set_user_attr("command", command)
    log_path = folder / f"trial-{trial.number}.log"
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        reported = 0
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                evaluations = _evaluations(out)
                for record in evaluations[reported:]:
                    key = metric_name[0] if metric_name else None
                    if key and key in record:
                        trial.report(float(record[key]), step=int(record.get("step", reported)))
                    reported += 1
                if reported and trial.should_prune():
                    proc.terminate()
                    proc.wait()
                    trial.set_user_attr("wall_s", round(time.perf_counter() - start, 1))
                    raise optuna.TrialPruned()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    trial.set_user_attr("wall_s", round(time.perf_counter() - start, 1))
    if proc.returncode != 0 or not (out / RESULTS_FILE).is_file():
        raise HfTlError(f"Trial {trial.number} failed; the end of its log ({log_path}):\n"
                        f"{log_path.read_text()[-2000:]}")
    results = json.loads((out / RESULTS_FILE).read_text())
    return float(results[f"eval_{results['metric_for_best_model']}"])


def tune(config_path: str, search_space: str, n_trials: int, output_dir: str, overrides: list[str] = (),
         timeout: float | None = None) -> Path:
    """Search the config's hyperparameters with Optuna (TPE sampler seeded by the config's seed, median pruner).

    Args:
        config_path: The recipe config every trial starts from.
        search_space: The search space file (see the module docstring).
        n_trials: Trials to run in all (trials of an interrupted search count).
        output_dir: The tuning folder.
        overrides: ``--key value`` flags for every trial.
        timeout: Stop starting trials after this many seconds.

    Returns:
        The tuning folder.

    Raises:
        HfTlError: for a bad search space, no trials, or a failing trial.
    """
    import optuna

    from hf_tl.config_io import parse_args
    from hf_tl.runs.predictions import evaluator_of

    if n_trials < 1:
        raise HfTlError(f"--n_trials must be at least 1, got {n_trials}.")
    if any(flag.split("=")[0] in ("--push_to_hub", "--hub_model_id", "--output_dir") for flag in overrides):
        raise HfTlError("tune writes each trial into its own folder and pushes none; drop --output_dir, --push_to_hub "
                        "and --hub_model_id (push the best run afterwards with hf-tl push).")
    space = read_search_space(search_space)
    config = parse_args(["--config", config_path, *overrides])
    for option, spec in space.items():  # every value the space can take must make a valid config
        for value in ([spec["low"], spec["high"]] if spec["type"] != "categorical" else spec["choices"]):
            parse_args(["--config", config_path, *overrides, f"--{option}", str(value)])
    if config.is_multitask:
        raise HfTlError("tune searches a one-task config; a multi-task run's metric is an average of several tasks.")
    evaluator = evaluator_of(config)
    metric = config.train.metric_for_best_model or evaluator.primary_metric
    greater = evaluator.greater_is_better_for(metric)
    folder = Path(output_dir)
    (folder / "trials").mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="hf_tl", storage=f"sqlite:///{(folder / 'study.db').resolve()}",
                                load_if_exists=True, direction="maximize" if greater else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=config.train.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, n_trials - done)

    def objective(trial):
        return _run_trial(trial, config_path, space, list(overrides), folder, [metric])

    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(), show_progress_bar=True)
    write_results(study, folder, config_path, list(overrides), metric)
    return folder


def write_results(study, folder: Path, config_path: str, overrides: list[str], metric: str) -> None:
    """Write the trials' table and chart and the best config.

    Raises:
        HfTlError: when no trial finished.
    """
    from hf_tl.config_io import parse_args, write_yaml

    trials = [t for t in study.trials if t.state.is_finished()]
    params = list(dict.fromkeys(p for t in trials for p in t.params))
    rows = [{"trial": t.number, **{p: t.params.get(p) for p in params}, metric: t.value, "state": t.state.name.lower(),
             "wall_s": t.user_attrs.get("wall_s")} for t in trials]
    with open(folder / "trials.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        raise HfTlError(f"No trial of the search in '{folder}' finished (all pruned or failed); run more trials.")
    best = study.best_trial
    lines = [f"| trial | {' | '.join(params)} | dev {metric} | state | wall time (s) |",
             "|" + "---|" * (len(params) + 4)]
    for r in rows:
        value = "" if r[metric] is None else f"{r[metric]:.4f}"
        mark = " (best)" if r["trial"] == best.number else ""
        lines.append(f"| {r['trial']}{mark} | " + " | ".join(_shown(r[p]) for p in params)
                     + f" | {value} | {r['state']} | {r['wall_s']} |")
    atomic_write_text(folder / "trials.md", "\n".join(lines) + "\n")
    flags = _flags(best.params)
    best_config = parse_args(["--config", config_path, *overrides, *flags,
                              "--output_dir", str(folder / "best_run")])
    write_yaml(best_config, folder / "best_config.yaml")
    _chart(complete, metric, study.direction.name == "MAXIMIZE", folder / "trials.png")


def _shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _chart(trials: list, metric: str, maximize: bool, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = [t.number for t in trials]
    values = [t.value for t in trials]
    best, so_far = None, []
    for v in values:
        best = v if best is None or (v > best if maximize else v < best) else best
        so_far.append(best)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(numbers, values, "o", label="trial")
    ax.step(numbers, so_far, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"dev {metric}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
