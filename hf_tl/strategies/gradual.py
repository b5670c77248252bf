"""gradual: staged unfreezing, head first, then one more block (or ``layers_per_stage`` blocks) from the top."""

from __future__ import annotations

import math

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.layers import param_depth
from hf_tl.strategies.base import LayerwiseStrategy, register


@register("gradual")
class Gradual(LayerwiseStrategy):
    """Stage 0 trains the head; stage k also trains the top ``k * layers_per_stage`` blocks, down to ``num_layers``.

    A new stage starts every epoch (``unfreeze_every: epoch``), every ``unfreeze_steps`` optimizer steps, or at even
    intervals over the first half of training (``auto``).
    """

    compare_settings = ("--unfreeze_every", "auto")  # whatever the run's length, every block trains in its 2nd half

    def apply(self, model: nn.Module) -> nn.Module:
        blocks_name, num_blocks = self.blocks_of(model)
        depth = self.args.num_layers or num_blocks
        if depth > num_blocks:
            raise HfTlError(f"strategy 'gradual' asks to unfreeze {depth} blocks, but the model has only "
                            f"{num_blocks}; set num_layers to at most {num_blocks}.")
        self._depth, self._num_blocks, self._blocks_name = depth, num_blocks, blocks_name
        self._total_steps: int | None = None  # set by plan()
        # Everything that will ever train requires grad from the start (see Strategy.before_optimizer_step).
        self.unfreeze_depths(model, set(range(num_blocks - depth, num_blocks + 1)))
        self._depth_of = {f"backbone.{n}": param_depth(n, blocks_name, num_blocks)
                          for n, _ in model.backbone.named_parameters()}
        return model

    def num_stages(self) -> int:
        return 1 + math.ceil(self._depth / self.args.layers_per_stage)

    def plan(self, total_steps: int) -> None:
        self._total_steps = total_steps

    def steps_per_stage(self) -> int | None:
        """Optimizer steps per stage: unfreeze_steps, the auto length once planned, or None (epochs, not planned)."""
        if self.args.unfreeze_every == "steps":
            return self.args.unfreeze_steps
        if self.args.unfreeze_every == "auto" and self._total_steps:
            # The num_stages - 1 unfreezings share the first half of training; the last stage trains the rest.
            return max(1, self._total_steps // (2 * (self.num_stages() - 1)))
        return None

    def stage_at(self, step: int, epoch: int) -> int:
        if self.args.unfreeze_every == "epoch":
            return min(epoch, self.num_stages() - 1)
        per_stage = self.steps_per_stage()
        if per_stage is None:
            raise HfTlError("strategy 'gradual' with unfreeze_every auto needs the run's length; call plan() first.")
        return min(step // per_stage, self.num_stages() - 1)

    def lowest_trained_depth(self, stage: int) -> int:
        """The lowest block depth that trains in ``stage`` (``num_blocks`` = only the head)."""
        return max(self._num_blocks - stage * self.args.layers_per_stage, self._num_blocks - self._depth)

    def frozen_at_stage(self, model: nn.Module, stage: int) -> set[str]:
        lowest = self.lowest_trained_depth(stage)
        # The final norm above the blocks joins with the first block, at stage 1.
        top_open = stage >= 1
        frozen = set()
        for name, p in model.named_parameters():
            depth = self._depth_of.get(name)
            if not p.requires_grad or depth is None:
                continue
            if depth == self._num_blocks and top_open:
                continue
            if depth == self._num_blocks or depth < lowest:
                frozen.add(name)
        return frozen

    def describe(self) -> str:
        per_stage = self.steps_per_stage()
        when = "every epoch" if self.args.unfreeze_every == "epoch" else f"every {per_stage} steps" if per_stage \
            else "at even intervals over the first half of training"
        return (f"gradual: head first, then {self.args.layers_per_stage} more block(s) from the top {when}, "
                f"down to {self._depth} blocks ({self.num_stages()} stages)")
