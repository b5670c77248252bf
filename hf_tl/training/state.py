"""Progress of a run: what a checkpoint must record so ``--resume_from_checkpoint`` continues the same run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hf_tl.safe_io import atomic_write_text

STATE_FILE = "trainer_state.json"


@dataclass
class TrainState:
    """Counters and best-so-far, saved next to Accelerate's state in every checkpoint."""

    global_step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch in progress
    batches_in_epoch: int = 0  # micro-batches of ``epoch`` already consumed
    task_passes: dict = field(default_factory=dict)  # per task: completed passes over its train data
    task_batches: dict = field(default_factory=dict)  # per task: batches of the current pass already consumed
    best_metric: float | None = None
    best_checkpoint: str | None = None  # folder name under the run's checkpoints/, so a moved run still resumes
    evals_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)  # one record per evaluation

    def save(self, folder: Path) -> None:
        """Write the state into a checkpoint folder."""
        atomic_write_text(folder / STATE_FILE, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> TrainState:
        """Read the state of a checkpoint folder."""
        return cls(**json.loads((folder / STATE_FILE).read_text()))
