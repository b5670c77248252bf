"""The ``chained`` run kind: a strategy that is several whole runs in a row (setfit: a contrastive body run, then a
head run on it).

The strategy plans the runs (:meth:`hf_tl.strategies.Strategy.chain`); each then runs as its own kind, in the same
processes, and writes its own run directory. The last run's results are the chain's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from accelerate import PartialState

from hf_tl.runs.base import RunKind, refuse_resume, register_run_kind, train
from hf_tl.strategies import CHAINED
from hf_tl.training.setup import resolve_config


@register_run_kind(CHAINED)
class ChainedRun(RunKind):
    """Run the strategy's chain of runs, one after the other."""

    def execute(self, end_training: bool = True) -> dict:
        refuse_resume(self.config, self.strategy)
        # The distributed set-up the runs' Accelerators keep (as make_accelerator starts it: on CPU without a GPU).
        state = PartialState(cpu=not torch.cuda.is_available())
        # Locked for the whole chain (its last run writes here and shares this lock), so a second run stops now.
        self.take_output_dir(state.is_main_process, state.num_processes)
        # Few-shot rows are drawn here for the plan, and again (alike) by the runs themselves.
        config, raw = resolve_config(self.config, need_train=self.needs_train_data)
        results = {}
        with tempfile.TemporaryDirectory(prefix=f"hf_tl_{self.strategy.name}_") as workspace:
            steps = self.strategy.chain(config, raw, Path(workspace))
            for i, step in enumerate(steps):
                # The runs share the processes: only the last one releases them.
                results = train(step.config, end_training=end_training and i == len(steps) - 1)
                if state.is_main_process:
                    for name, source in step.keep.items():
                        shutil.copyfile(source, Path(step.config.train.output_dir) / name)
                    if step.done:
                        print(step.done, flush=True)
        return results
