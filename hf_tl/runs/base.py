"""Run kinds, the plug-ins that take a config to a finished run directory, and the dispatch to them.

A strategy names its run kind (``Strategy.run_kind``); :func:`train` runs the config with that kind. Each kind owns
its whole path (what it builds, how it learns or scores, what it saves, how a finished run of it loads for
prediction, what a dry run prints) and writes the run's record through :class:`hf_tl.runs.record.RunRecord`, so
every kind leaves the same record files the same way. A new kind is a class registered with
:func:`register_run_kind`; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed

from hf_tl.errors import HfTlError
from hf_tl.run_dir import check_output_dir, find_checkpoint, prepare_output_dir, resume_fix
from hf_tl.run_lock import release
from hf_tl.safe_io import write_guard
from hf_tl.strategies import Strategy, get_strategy
from hf_tl.training.setup import make_accelerator

RUN_KINDS: dict[str, type[RunKind]] = {}


def register_run_kind(name: str):
    """Class decorator that registers a run kind under ``name`` (the value a strategy's ``run_kind`` names)."""

    def wrap(cls):
        cls.name = name
        RUN_KINDS[name] = cls
        return cls

    return wrap


CROSS_VALIDATION = "cross_validation"


def kind_name(config) -> str:
    """The name of the run kind that runs ``config``: cross-validation when it asks for folds (and is not one fold),
    else its strategy's."""
    if not config.is_multitask and config.data.cv_folds and config.data.cv_fold is None:
        return CROSS_VALIDATION
    return get_strategy(config.strategy).run_kind


def run_kind_of(config) -> type[RunKind]:
    """The run kind that runs ``config`` (see :func:`kind_name`)."""
    return RUN_KINDS[kind_name(config)]


def train(config, end_training: bool = True) -> dict:
    """Run one config and write its run directory: train it, fit it or evaluate it, as its strategy's kind does.

    Args:
        config: The validated run config (one task, or several in ``tasks``).
        end_training: Release Accelerate at the end (its trackers and the process group); a run that another run
            follows in the same processes (a chain's earlier runs) keeps them.

    Returns:
        The best dev metrics (also in ``eval_results.json``).

    Raises:
        HfTlError: for any problem with the user's settings or data, before training starts.
    """
    run = run_kind_of(config)(config, get_strategy(config.strategy))
    try:
        # A write that fails for want of space anywhere in the run ends in one sentence; the run stays resumable.
        with write_guard(config.train.output_dir or ".", resume_fix(Path(config.train.output_dir or "."))):
            return run.execute(end_training)
    finally:
        run.close()


@dataclass
class LoadedRun:
    """A finished run, loaded for prediction by its kind.

    Attributes:
        model: The model that scores (a TransferModel, or the checkpoint's own model).
        tasks: ``{task name: Task}``.
        tokenizer: Its tokenizer.
        scores: ``scores(inputs, task_name, batch_size) -> np.ndarray``: the raw outputs for checked inputs.
    """

    model: object
    tasks: dict
    tokenizer: object
    scores: object

    def __call__(self, inputs: list, task: str, batch_size: int) -> np.ndarray:
        return self.scores(inputs, task, batch_size)


class RunKind(ABC):
    """How one kind of run goes from a config to a finished run directory.

    Args:
        config: The run config.
        strategy: Its strategy, instantiated.
    """

    name = "base"
    needs_train_data = True  # whether the train split must exist

    def __init__(self, config, strategy: Strategy):
        self.config = config
        self.strategy = strategy
        self.locked: Path | None = None  # the output directory this process locked (main process only)
        self.created = False  # whether this run created it

    def take_output_dir(self, is_main: bool, num_processes: int = 1) -> Path:
        """Check the output directory on every process; on the main one, create it, lock it and clean it.

        A refusal on the main process (another run holds the folder) reaches every process, so all stop alike.

        Returns:
            The run directory.

        Raises:
            HfTlError: for an output directory that holds another run, is in use, or cannot be written.
        """
        t = self.config.train
        resuming = t.resume_from_checkpoint is not None
        run_dir = check_output_dir(t.output_dir, t.overwrite_output_dir, resuming)
        refusal = None
        if is_main:
            try:
                run_dir, self.created = prepare_output_dir(run_dir, t.overwrite_output_dir, resuming)
                self.locked = run_dir.resolve()
            except HfTlError as err:
                refusal = str(err)
        if num_processes > 1:
            from accelerate.utils import broadcast_object_list

            refusal = broadcast_object_list([refusal])[0]
        if refusal:
            raise HfTlError(refusal)
        return run_dir

    def close(self) -> None:
        """Give back the output directory's lock; remove the directory if this run created it and left it empty."""
        if self.locked is None:
            return
        release(self.locked)
        if self.created and self.locked.is_dir() and not any(self.locked.iterdir()):
            self.locked.rmdir()  # a run stopped by bad data leaves no empty folder that blocks the next one
        self.locked = None

    @abstractmethod
    def execute(self, end_training: bool = True) -> dict:
        """Run the config and return the best dev metrics (see :func:`train`)."""

    def describe(self) -> str:
        """What the run would train, without training (a dry run)."""
        return self.strategy.describe()

    @classmethod
    def load(cls, path: Path, config, device) -> LoadedRun:
        """Load a finished run of this kind for prediction.

        Raises:
            HfTlError: if ``path`` is not a finished run of this kind.
        """
        raise HfTlError(f"Runs of kind '{cls.name}' cannot be loaded for prediction.")


def refuse_resume(config, strategy: Strategy) -> None:
    """Stop a resume of a strategy whose runs cannot resume, saying why.

    Raises:
        HfTlError: with the strategy's reason.
    """
    if config.train.resume_from_checkpoint is not None and not strategy.resumable:
        raise HfTlError(f"strategy '{strategy.name}' {strategy.resume_refusal}.")


def open_run(run: RunKind):
    """Start a run: refuse what cannot resume, create the Accelerator, check, create and lock the run directory, seed.

    Returns:
        ``(accelerator, run directory, checkpoint to resume from or None)``.

    Raises:
        HfTlError: for a run that cannot resume, or an output directory that holds another run or is in use.
    """
    config, strategy = run.config, run.strategy
    refuse_resume(config, strategy)
    t = config.train
    accelerator = make_accelerator(config, t.output_dir or ".")
    run_dir = run.take_output_dir(accelerator.is_main_process, accelerator.num_processes)
    resume_from = find_checkpoint(run_dir, t.resume_from_checkpoint, accelerator.is_main_process) \
        if t.resume_from_checkpoint else None
    accelerator.wait_for_everyone()
    set_seed(t.seed)
    return accelerator, run_dir, resume_from
