"""The ``ensemble`` run kind: finished runs, copied into ``members/``, that predict together.

Layout of its run directory (besides the usual record: ``config.yaml``, ``eval_log.jsonl``, the card)::

    members/NAME/      each member's run directory, without its checkpoints (it loads alone too)
    ensemble.json      the members, their own dev metrics, their weights and how the weights were chosen
    eval_results.json  written last: the ensemble's dev metrics, from its own averaged predictions

The ensemble's task and dev split are its first member's. Scores are averaged as they are (each member's scores
scaled to [0, 1]); classification averages probabilities, and the ensemble's outputs are the log of the averaged
probabilities (logits to the rest of hf_tl).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from hf_tl.config_io import load_config
from hf_tl.errors import HfTlError
from hf_tl.run_dir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    MEMBERS_DIR,
    REPORT_FILE,
    RESULTS_FILE,
    write_json,
)
from hf_tl.run_lock import LOCK_FILE
from hf_tl.runs.base import LoadedRun, RunKind, register_run_kind, train
from hf_tl.runs.predictions import load_finished, split_predictions
from hf_tl.runs.record import RunRecord
from hf_tl.safe_io import staged_dir
from hf_tl.strategies.ensemble import ENSEMBLE, ensemble_flags


@register_run_kind(ENSEMBLE)
class EnsembleRun(RunKind):
    """Copy the members, score the dev split with each, choose the weights, and write the ensemble's record."""

    needs_train_data = False

    def execute(self, end_training: bool = True) -> dict:
        state = PartialState(cpu=not torch.cuda.is_available())
        run_dir = self.take_output_dir(state.is_main_process, state.num_processes)
        results = self._make(run_dir, state) if state.is_main_process else {}
        state.wait_for_everyone()
        return results

    def _make(self, run_dir: Path, state) -> dict:
        members = expand_members(self.config.strategy.ensemble_members)
        configs = [member_config(m) for m in members]
        check_compatible(configs, members)
        first = configs[0]
        data = replace(first.data, cv_fold=None, cv_folds=None)
        config = replace(self.config, model=first.model, data=data)
        names = member_names(members)
        with staged_dir(run_dir / MEMBERS_DIR) as staging:
            for name, member in zip(names, members):
                shutil.copytree(member, staging / name, ignore=shutil.ignore_patterns(CHECKPOINTS_DIR, LOCK_FILE))
        changes = {f.name: getattr(data, f.name) for f in fields(data)}  # every member reads the ensemble's dev split
        outputs, targets, own = [], None, []
        for name in names:
            loaded = load_finished(run_dir / MEMBERS_DIR / name)
            predictions, targets = split_predictions(run_dir / MEMBERS_DIR / name, changes, loaded=loaded)
            outputs.append(predictions)
            own.append(json.loads((run_dir / MEMBERS_DIR / name / RESULTS_FILE).read_text()))
        task = next(iter(loaded[1].tasks.values()))
        evaluator = task.evaluator()
        weighting = self.config.strategy.ensemble_weights or "equal"
        weights = fit_weights(outputs, targets) if weighting == "dev" else np.full(len(outputs), 1 / len(outputs))
        metrics = evaluator(combine(outputs, weights), targets)
        metric = evaluator.primary_metric
        spec = {"weights": weighting, "metric": metric, "members": [
            {"name": name, "source": str(Path(member).resolve()), "strategy": c.strategy.strategy,
             "model": c.model.model_name_or_path, "architecture": c.data.architecture, "weight": float(w),
             f"dev_{metric}": evaluator(out, targets)[metric], f"own_{metric}": r.get(f"eval_{metric}")}
            for name, member, c, w, out, r in zip(names, members, configs, weights, outputs, own)]}
        report = {"description": self.strategy.describe(), "trainable": 0,
                  "total": sum(_total(run_dir / MEMBERS_DIR / n) for n in names), "percent": 0.0, "parts": [],
                  "stages": []}
        record = RunRecord(run_dir, state)
        record.start(config, report)
        record.log_eval({"step": 0, "epoch": 0, **metrics})
        write_json(run_dir / ENSEMBLE_FILE, spec)
        results = {"best_step": 0, "metric_for_best_model": metric, "greater_is_better": evaluator.greater_is_better,
                   **{f"eval_{k}": v for k, v in metrics.items()}, "eval_samples": int(len(targets))}
        from hf_tl.run_info import versions

        record.finish(config, results, {"param_groups": [], "optimizer_steps": 0, "epochs": 0,
                                        "versions": versions()})
        return results

    def describe(self) -> str:
        return self.strategy.describe()

    @classmethod
    def load(cls, path: Path, config, device) -> LoadedRun:
        """Load every member; the ensemble scores with their weighted average."""
        spec_file = Path(path) / ENSEMBLE_FILE
        if not spec_file.is_file():
            raise HfTlError(f"Ensemble '{path}' has lost its {ENSEMBLE_FILE}, so it cannot load; make it again with "
                            f"hf-tl ensemble.")
        spec = json.loads(spec_file.read_text())
        runs = []
        for member in spec["members"]:
            folder = Path(path) / MEMBERS_DIR / member["name"]
            if not (folder / RESULTS_FILE).is_file():
                raise HfTlError(f"Ensemble '{path}' has lost its member {member['name']} ({folder} is missing or "
                                f"unfinished), so it cannot load; restore it, or make the ensemble again.")
            runs.append(load_finished(folder, device)[1])
        weights = np.asarray([m["weight"] for m in spec["members"]])
        name = next(iter(runs[0].tasks))

        def scores(inputs: list, task: str, batch_size: int) -> np.ndarray:
            return combine([run(inputs, name, batch_size) for run in runs], weights)

        return LoadedRun(model=[run.model for run in runs], tasks=runs[0].tasks, tokenizer=runs[0].tokenizer,
                         scores=scores)


def _total(run_dir: Path) -> int:
    report = run_dir / f"{REPORT_FILE}.json"
    return json.loads(report.read_text()).get("total", 0) if report.is_file() else 0


def expand_members(paths: list[str]) -> list[Path]:
    """The member run directories: each path as given, a cross-validation run as its folds.

    Raises:
        HfTlError: for a path that is not a finished run.
    """
    out = []
    for raw in paths:
        path = Path(raw)
        folds = sorted(path.glob("fold-*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else -1)
        if (path / "cv_results.json").is_file() and folds:
            out += folds
        else:
            out.append(path)
    return out


def member_config(path: Path):
    """A member's config, checking that it is a finished one-task run.

    Raises:
        HfTlError: naming the path and the fix.
    """
    if not (path / CONFIG_FILE).is_file() or not (path / RESULTS_FILE).is_file():
        raise HfTlError(f"Ensemble member '{path}' is not a finished hf_tl run (no {CONFIG_FILE} or "
                        f"{RESULTS_FILE}); give the output_dir of completed runs.")
    config = load_config(path / CONFIG_FILE)
    if config.is_multitask:
        raise HfTlError(f"Ensemble member '{path}' trained several tasks; an ensemble averages one task's "
                        f"predictions, so give one-task runs.")
    return config


def check_compatible(configs: list, members: list[Path]) -> None:
    """Refuse members that do not predict the same thing: the same task, and for classification the same labels.

    Raises:
        HfTlError: naming the first member that differs.
    """
    first = configs[0].data
    for path, config in zip(members[1:], configs[1:]):
        data = config.data
        if data.task != first.task:
            raise HfTlError(f"Ensemble member '{path}' does task {data.task}, but '{members[0]}' does {first.task}; "
                            f"an ensemble's members share one task.")
        if data.task != "similarity" and data.label_names != first.label_names:
            raise HfTlError(f"Ensemble member '{path}' has labels {data.label_names}, but '{members[0]}' has "
                            f"{first.label_names}; an ensemble's members share their labels, in the same order.")


def member_names(members: list[Path]) -> list[str]:
    """Unique folder names for the members: their own, with the parent's for a fold or a comparison's seed."""
    names = []
    for i, path in enumerate(members):
        base = f"{path.parent.name}-{path.name}" if path.name.startswith(("fold-", "seed-")) else path.name
        names.append(f"{i}-{base}")
    return names


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of class logits."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def combine(outputs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average of the members' outputs: scores as they are; class logits as probabilities, returned
    as log-probabilities."""
    stacked = np.stack([np.asarray(o, dtype=np.float64) for o in outputs])
    w = np.asarray(weights, dtype=np.float64).reshape(-1, *([1] * (stacked.ndim - 1)))
    if stacked.ndim == 3:
        return np.log((w * probabilities(stacked)).sum(0) + 1e-12)
    return (w * stacked).sum(0)


def fit_weights(outputs: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1, fitted on dev predictions: least squares against the scores, or the
    highest log-likelihood of the labels."""
    from scipy.optimize import minimize, nnls

    stacked = np.stack([np.asarray(o, dtype=np.float64) for o in outputs])
    n = len(outputs)
    if stacked.ndim == 2:
        design = np.column_stack([stacked.T, np.ones(stacked.shape[1])])  # an intercept, left out of the weights
        weights = nnls(design, np.asarray(targets, dtype=np.float64))[0][:n]
    else:
        probs = probabilities(stacked)[:, np.arange(stacked.shape[1]), np.asarray(targets, dtype=int)]

        def loss(z):
            w = np.exp(z - z.max())
            w = w / w.sum()
            return -np.mean(np.log(w @ probs + 1e-12))

        z = minimize(loss, np.zeros(n), method="L-BFGS-B").x
        weights = np.exp(z - z.max())
    return weights / weights.sum() if weights.sum() > 0 else np.full(n, 1 / n)


def make_ensemble(runs: list, output_dir: str | Path, weights: str = "equal", **options) -> Path:
    """Make an ensemble run directory from finished runs (what ``hf-tl ensemble`` does).

    Args:
        runs: The member run directories (a cross-validation run stands for its folds).
        output_dir: The ensemble's run directory.
        weights: ``equal``, or ``dev`` (fitted on the dev split's predictions).
        **options: Other run options, e.g. ``push_to_hub=True, hub_model_id="user/name"``.

    Returns:
        The run directory; it loads with :func:`hf_tl.load_run`.

    Raises:
        HfTlError: for members that are not finished one-task runs of the same task.
    """
    from hf_tl.config_io import parse_args

    flags = [f for key, value in options.items() for f in (f"--{key}", str(value))]
    train(parse_args([*ensemble_flags(runs, weights), "--output_dir", str(output_dir), *flags]))
    return Path(output_dir)
