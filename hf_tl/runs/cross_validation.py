"""The ``cross_validation`` run kind: ``cv_folds: K`` trains K runs of the config, each on all but one fold of the
train split and scored on that fold, and writes what they estimate together.

Layout of its run directory::

    fold-0 ... fold-K-1/   each fold's run directory (a normal run: it loads, predicts and pushes alone)
    cv_results.json, .md   per fold: the held-out fold's metrics and the fold model's dev metrics; their mean,
                           standard deviation and 95% interval (Student t over folds); the out-of-fold metrics; and the
                           dev metrics of the folds' averaged predictions
    oof_predictions.csv    every train row's prediction by the fold model that did not train on it
    oof_predictions.npz    the same, raw (scores in [0, 1] or logits), with the targets
    eval_results.json      written last: the mean held-out metrics (what ``hf-tl compare`` reads)

An interrupted cross-validation continues with ``--resume_from_checkpoint latest``: finished folds are kept, an
unfinished fold resumes from its last checkpoint (or starts again).
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from hf_tl.config_io import write_yaml
from hf_tl.data.folds import fold_ids_of
from hf_tl.errors import HfTlError
from hf_tl.predict_io import write_rows
from hf_tl.run_dir import CONFIG_FILE, REPORT_FILE, RESULTS_FILE, find_checkpoint, write_json
from hf_tl.runs.base import CROSS_VALIDATION, RunKind, register_run_kind, train
from hf_tl.runs.ensemble import combine
from hf_tl.runs.predictions import load_finished, split_predictions
from hf_tl.safe_io import atomic_write_arrays, atomic_write_text
from hf_tl.training.setup import resolve_config

OOF_ARRAYS = "oof_predictions.npz"
SUMMARY = "cv_results"
LEVEL = 0.95


@register_run_kind(CROSS_VALIDATION)
class CrossValidationRun(RunKind):
    """Train one run per fold, then summarise them."""

    def execute(self, end_training: bool = True) -> dict:
        config = self.config
        state = PartialState(cpu=not torch.cuda.is_available())
        run_dir = self.take_output_dir(state.is_main_process, state.num_processes)
        resolved, raw = resolve_config(config, need_train=True)  # the data is checked once, before any fold trains
        if state.is_main_process:
            write_yaml(resolved, run_dir / CONFIG_FILE)
        folds = config.data.cv_folds
        try:
            for i in range(folds):
                fold_dir = run_dir / f"fold-{i}"
                if (fold_dir / RESULTS_FILE).is_file():
                    state.print(f"Fold {i + 1}/{folds}: finished earlier, kept ({fold_dir})")
                    continue
                state.print(f"Fold {i + 1}/{folds}: training on the other {folds - 1} folds ({fold_dir})")
                train(self._fold_config(i, fold_dir), end_training=end_training and i == folds - 1)
        except BaseException:
            if state.is_main_process and not any(run_dir.glob("fold-*")):
                (run_dir / CONFIG_FILE).unlink(missing_ok=True)  # nothing ran: no folder is left to block a rerun
            raise
        if not state.is_main_process:
            return {}
        summary = summarise(run_dir, resolved, raw[next(iter(raw))]["train"])
        shutil.copyfile(run_dir / "fold-0" / f"{REPORT_FILE}.json", run_dir / f"{REPORT_FILE}.json")
        metric = summary["metric"]
        results = {"metric_for_best_model": metric, "greater_is_better": summary["greater_is_better"],
                   "cv_folds": folds, **{f"eval_{k}": v["mean"] for k, v in summary["held_out"].items()},
                   **{f"eval_{k}_std": v["std"] for k, v in summary["held_out"].items()}}
        write_json(run_dir / RESULTS_FILE, results)  # last: its presence marks a finished run
        held = summary["held_out"][metric]
        print(f"Cross-validation saved to {run_dir}: held-out {metric} {held['mean']:.4f} ± {held['std']:.4f} "
              f"(95% interval {held['low']:.4f} to {held['high']:.4f}); each fold loads with "
              f"hf_tl.load_run(\"{run_dir / 'fold-0'}\"); see {run_dir / (SUMMARY + '.md')}", flush=True)
        return results

    def _fold_config(self, fold: int, fold_dir: Path):
        """Fold ``fold``'s run: the same config on the other folds, into ``fold_dir``, never pushed on its own."""
        t = self.config.train
        resume = overwrite = None
        if fold_dir.exists():  # an interrupted fold: from its last checkpoint, else again (the old one kept aside)
            resume = "latest" if _resumable(fold_dir) else None
            overwrite = resume is None
        return replace(self.config, data=replace(self.config.data, cv_fold=fold),
                       train=replace(t, output_dir=str(fold_dir), push_to_hub=False, resume_from_checkpoint=resume,
                                     overwrite_output_dir=bool(overwrite)))

    def describe(self) -> str:
        folds = self.config.data.cv_folds
        return (f"cross-validation: {folds} runs, each training on {folds - 1} of {folds} folds of the train split "
                f"and scored on the fold it leaves out; each run: {self.strategy.describe()}")

    @classmethod
    def load(cls, path: Path, config, device):
        raise HfTlError(f"'{path}' is a cross-validation of {config.data.cv_folds} folds, not one model; load a fold "
                        f"with hf_tl.load_run(\"{Path(path) / 'fold-0'}\").")


def _resumable(run_dir: Path) -> bool:
    try:
        find_checkpoint(run_dir, "latest", announce=False)
    except HfTlError:
        return False
    return True


def interval(values: list[float]) -> dict:
    """Mean, standard deviation (ddof 1) and the 95% Student-t interval of the mean of ``values``."""
    from scipy import stats

    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    half = stats.t.ppf((1 + LEVEL) / 2, len(values) - 1) * std / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "values": values}


def summarise(run_dir: Path, config, train_split) -> dict:
    """Gather the folds: held-out and dev metrics per fold, out-of-fold predictions, the folds' averaged dev
    predictions; write ``cv_results.json`` / ``.md`` and the out-of-fold files.

    Args:
        run_dir: The cross-validation run directory (its folds finished).
        config: The resolved config.
        train_split: The raw train split the folds were drawn from.

    Returns:
        The summary written to ``cv_results.json``.
    """
    data = config.data
    ids = fold_ids_of(train_split, data, _text_columns(config))
    folds = data.cv_folds
    oof, targets, dev_outputs, dev_targets = None, None, [], None
    per_fold = []
    for i in range(folds):
        fold_dir = run_dir / f"fold-{i}"
        loaded = load_finished(fold_dir)
        run = loaded[1]
        predictions, held_targets = split_predictions(fold_dir, loaded=loaded)
        rows = np.flatnonzero(ids == i)
        if oof is None:
            oof = np.zeros((len(ids), *predictions.shape[1:]), dtype=np.float32)
            targets = np.zeros(len(ids), dtype=held_targets.dtype)
        oof[rows], targets[rows] = predictions, held_targets
        dev, dev_targets = split_predictions(fold_dir, {"cv_fold": None, "cv_folds": None}, loaded=loaded)
        dev_outputs.append(dev)
        evaluator = next(iter(run.tasks.values())).evaluator()
        per_fold.append({"fold": i, "rows": int(len(rows)), "held_out": evaluator(predictions, held_targets),
                         "dev": evaluator(dev, dev_targets)})
    metric, greater = evaluator.primary_metric, evaluator.greater_is_better
    names = list(per_fold[0]["held_out"])
    summary = {
        "metric": metric, "greater_is_better": greater, "folds": folds, "cv_seed": data.cv_seed,
        "per_fold": per_fold,
        "held_out": {k: interval([f["held_out"][k] for f in per_fold]) for k in names},
        "dev": {k: interval([f["dev"][k] for f in per_fold]) for k in names},
        "out_of_fold": evaluator(oof, targets),
        "dev_of_averaged_folds": evaluator(combine(dev_outputs, np.full(folds, 1 / folds)), dev_targets),
    }
    atomic_write_arrays(run_dir / OOF_ARRAYS, predictions=oof, targets=targets, folds=ids)
    task = next(iter(run.tasks.values()))
    columns = _text_columns(config)
    decoded = task.decode(oof)
    write_rows(run_dir / "oof_predictions.csv", [
        {"row": r, "fold": int(ids[r]), **{c: train_split[r][c] for c in columns.values()},
         "gold": train_split[r][data.label_column], "prediction": decoded[r]} for r in range(len(ids))])
    write_json(run_dir / f"{SUMMARY}.json", summary)
    atomic_write_text(run_dir / f"{SUMMARY}.md", markdown(summary))
    return summary


def _text_columns(config) -> dict[str, str]:
    from hf_tl.tasks import TASKS

    d = config.data
    return {"text_column": d.text_column, **({"text_pair_column": d.text_pair_column} if TASKS[d.task].pair else {})}


def markdown(summary: dict) -> str:
    """The summary as a page: per-fold table, then the estimates."""
    metric, folds = summary["metric"], summary["folds"]
    lines = [f"# Cross-validation, {folds} folds (cv_seed {summary['cv_seed']})", "",
             f"| fold | rows held out | held-out {metric} | dev {metric} |", "|---|---|---|---|"]
    lines += [f"| {f['fold']} | {f['rows']} | {f['held_out'][metric]:.4f} | {f['dev'][metric]:.4f} |"
              for f in summary["per_fold"]]
    lines += ["", "| estimate | " + " | ".join(summary["held_out"]) + " |",
              "|---|" + "---|" * len(summary["held_out"])]
    for label, key in (("held-out folds", "held_out"), ("dev, each fold model", "dev")):
        lines.append(f"| {label}: mean ± std [95% interval] | " + " | ".join(
            f"{v['mean']:.4f} ± {v['std']:.4f} [{v['low']:.4f}, {v['high']:.4f}]" for v in summary[key].values())
            + " |")
    lines.append("| out-of-fold predictions, pooled | " + " | ".join(
        f"{summary['out_of_fold'][k]:.4f}" for k in summary["held_out"]) + " |")
    lines.append("| dev, the folds' averaged predictions | " + " | ".join(
        f"{summary['dev_of_averaged_folds'][k]:.4f}" for k in summary["held_out"]) + " |")
    return "\n".join(lines) + "\n"


def shares_train_features(config) -> bool:
    """Whether a fold run's features can be cut from the whole train split's: one fold of a one-task run whose
    train rows are the file's own (no augmentation, silver pairs or teacher targets)."""
    d = config.data
    return (not config.is_multitask and d.cv_fold is not None
            and not (d.augment or d.silver_from or d.distill_from or d.few_shot_k))


def fold_feature_splits(model, config, tasks: dict, tokenizer, accelerator, store: bool) -> tuple[dict, dict]:
    """A fold run's train and held-out features, cut from the features of the whole train split, so the K folds of
    a cross-validation share one feature-cache entry and the backbone runs over the train split once.

    Returns:
        ``({task: {"train": FeatureDataset, "validation": FeatureDataset}}, {"task/split": cache status})``.
    """
    from hf_tl.training.setup import cached_feature_splits, tokenize_splits

    name, data = next(iter(tasks)), config.data
    _, raw = resolve_config(replace(config, data=replace(data, cv_fold=None, cv_folds=None)), need_train=True)
    whole_train = raw[name]["train"]
    tokenized, _ = tokenize_splits(tasks, {name: {"train": whole_train}}, store=config.train.cache_tokenized)
    features, status = cached_feature_splits(model, tokenized, config, tokenizer, accelerator, store=store)
    ids = fold_ids_of(whole_train, data, _text_columns(config))
    whole = features[name]["train"]
    splits = {name: {"train": whole.select(np.flatnonzero(ids != data.cv_fold)),
                     "validation": whole.select(np.flatnonzero(ids == data.cv_fold))}}
    return splits, {f"{name}/train": status[f"{name}/train"], f"{name}/validation": status[f"{name}/train"]}
