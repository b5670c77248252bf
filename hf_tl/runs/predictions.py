"""A finished run's raw predictions on a split of its own data (its dev split, or, for a cross-validation fold, the
fold it did not train on), for the statistics that need them per example: significance tests, out-of-fold
predictions, ensembles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hf_tl.errors import HfTlError


def load_finished(run_dir: str | Path, device=None) -> tuple:
    """Load a finished single-task run for scoring, as its kind loads it (its own modelling code is never run).

    Returns:
        ``(config, LoadedRun)``.

    Raises:
        HfTlError: for an unfinished or multi-task run.
    """
    from hf_tl.config_io import load_config
    from hf_tl.run_dir import CONFIG_FILE, RESULTS_FILE
    from hf_tl.runs.base import run_kind_of

    run_dir = Path(run_dir)
    if not (run_dir / RESULTS_FILE).is_file():
        raise HfTlError(f"'{run_dir}' is not a finished run (no {RESULTS_FILE}).")
    config = load_config(run_dir / CONFIG_FILE)
    if config.is_multitask:
        raise HfTlError(f"'{run_dir}' trained several tasks; per-example predictions are read from one-task runs.")
    config = replace(config, model=replace(config.model, trust_remote_code=False))
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return config, run_kind_of(config).load(run_dir, config, device)


@torch.inference_mode()
def split_predictions(run_dir: str | Path, data_changes: dict | None = None,
                      loaded: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predict a single-task run's validation split, as its config reads it.

    Args:
        run_dir: The finished run directory.
        data_changes: Data settings to change first, e.g. ``{"cv_fold": None, "cv_folds": None}`` to read the dev
            split of a fold run instead of its held-out fold.
        loaded: :func:`load_finished`'s result for this run, to skip loading it again.

    Returns:
        ``(raw predictions, targets)`` in split order: scores scaled to [0, 1], or class logits.

    Raises:
        HfTlError: for a multi-task or unfinished run, or data that cannot be read.
    """
    from hf_tl.training.setup import resolve_config

    config, run = loaded or load_finished(run_dir)
    if data_changes:
        config = replace(config, data=replace(config.data, **data_changes))
    _, raw = resolve_config(config, need_train=config.data.cv_fold is not None)
    name, task = next(iter(run.tasks.items()))
    dev = task.prepare_split(raw[name]["validation"], "validation")
    if getattr(task, "token_level", False):  # language modelling: each held-out row's (token loss, tokens)
        return task.split_scores(run.model, dev, config.train.seed)
    inputs = list(zip(dev["text"], dev["text_pair"])) if task.pair else list(dev["text"])
    return np.asarray(run(inputs, name, 64)), np.asarray(dev["label"])


def evaluator_of(config):
    """The evaluator of a single-task config's task (its metrics depend on the task and its labels only)."""
    from hf_tl.tasks import TASKS

    data = config.data
    return TASKS[data.task](data, None, config.model.max_length).evaluator()
