"""Progress of a run: what a checkpoint must record so ``--resume_from_checkpoint`` continues the same run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hf_tl.run_dir import checkpoint_step
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
    weights_only: bool = False  # the checkpoint holds the weights alone (save_only_model): it cannot be resumed

    @property
    def best_step(self) -> int | None:
        """The step of the best checkpoint (None when no evaluation was best)."""
        return checkpoint_step(self.best_checkpoint) if self.best_checkpoint else None

    def rebase_best(self, checkpoints: Path, resumed: Path, metric: str) -> str | None:
        """Pick the best afresh from the resumed checkpoint on when the recorded best one was not kept (a finished
        run keeps only its newest checkpoints; its best weights went into its model, not into a checkpoint).

        Returns:
            What changed, to say, or None.
        """
        if not self.best_checkpoint or (checkpoints / self.best_checkpoint).is_dir():
            return None
        lost = self.best_checkpoint
        here = next((e for e in reversed(self.history) if e.get("step") == self.global_step), {})
        self.best_checkpoint, self.best_metric, self.evals_without_improvement = resumed.name, here.get(metric), 0
        return (f"the best checkpoint of the run ({lost}) was not kept when it finished, so the best is picked from "
                f"{resumed.name} on")

    def save(self, folder: Path) -> None:
        """Write the state into a checkpoint folder."""
        atomic_write_text(folder / STATE_FILE, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> TrainState:
        """Read the state of a checkpoint folder."""
        return cls(**json.loads((folder / STATE_FILE).read_text()))
