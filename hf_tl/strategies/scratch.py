"""The strategies that start from random weights: scratch (the baseline that shows what pretraining buys) and
greedy layer-wise pretraining (one block at a time, then everything)."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.layers import find_blocks, param_depth
from hf_tl.strategies.base import LayerwiseStrategy, register, set_trainable


class RandomInit(LayerwiseStrategy):
    """What the random-start strategies share: the checkpoint's architecture and tokenizer, not its weights."""

    random_init = True

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.model.init_from_run:
            raise HfTlError(f"strategy {cls.name} starts from random weights, so init_from_run has nothing to give "
                            f"it; remove init_from_run, or use strategy full.")
        if config.model.gguf_file:
            raise HfTlError(f"strategy {cls.name} reads no weights, so gguf_file does not apply; remove it.")


@register("scratch")
class Scratch(RandomInit):
    """Everything trains from the architecture's own random initialisation (the baseline without pretraining)."""

    # Random weights learn at a larger step than pretrained ones are fine-tuned at.
    compare_settings = ("--learning_rate", "1e-4")

    def apply(self, model: nn.Module) -> nn.Module:
        set_trainable(model, True)
        return model

    def describe(self) -> str:
        return "scratch: the checkpoint's architecture from random weights, everything trains"


@register("greedy_layerwise")
class GreedyLayerwise(RandomInit):
    """Greedy layer-wise training from random weights: stage ``k`` runs blocks ``0..k`` and trains block ``k`` (with
    the embeddings at stage 0, and the head and anything above the blocks at every stage), the blocks below frozen;
    after the last block's stage, everything trains together (the fine-tuning stage).

    Blocks above the current stage are skipped in the forward pass, so early stages cost less per step. Every stage
    but the last trains ``greedy_stage_steps`` optimizer steps; the best checkpoint is chosen from the last stage
    alone, the one whose model has every block.
    """

    own_options = ("greedy_stage_steps",)
    skips_blocks = True

    def apply(self, model: nn.Module) -> nn.Module:
        if model.layer != "last":
            raise HfTlError("strategy greedy_layerwise builds the model one block at a time, so the features must be "
                            "the top block's; set layer last.")
        blocks_name, blocks = find_blocks(model.backbone)
        self._num_blocks = len(blocks)
        self._depth_of = {f"backbone.{n}": param_depth(n, blocks_name, self._num_blocks)
                          for n, _ in model.backbone.named_parameters()}
        self.active = self._num_blocks
        for index, block in enumerate(blocks):
            block.forward = self._gated(block.forward, index)
        set_trainable(model, True)
        return model

    def _gated(self, forward, index: int):
        """The block's forward, or the identity while the block is above the current stage's depth."""

        def gated(*args, **kwargs):
            if index >= self.active:
                return args[0] if args else kwargs["hidden_states"]
            return forward(*args, **kwargs)

        return gated

    @property
    def stage_steps(self) -> int:
        return self.args.greedy_stage_steps or 100

    def num_stages(self) -> int:
        return self._num_blocks + 1

    def plan(self, total_steps: int) -> None:
        needed = self._num_blocks * self.stage_steps
        if total_steps <= needed:
            raise HfTlError(f"strategy greedy_layerwise trains {self._num_blocks} blocks for {self.stage_steps} steps "
                            f"each before the stage that trains everything, which needs more than {needed} optimizer "
                            f"steps; the run has {total_steps}. Raise max_steps or num_train_epochs, or lower "
                            f"greedy_stage_steps.")

    def stage_at(self, step: int, epoch: int) -> int:
        return min(step // self.stage_steps, self._num_blocks)

    def on_step(self, model: nn.Module, step: int, epoch: int) -> None:
        self.active = min(self.stage_at(step, epoch) + 1, self._num_blocks)

    def counts_for_best(self, stage: int) -> bool:
        return stage == self._num_blocks

    def frozen_at_stage(self, model: nn.Module, stage: int) -> set[str]:
        if stage >= self._num_blocks:
            return set()
        frozen = set()
        for name, _ in model.named_parameters():
            depth = self._depth_of.get(name)
            if depth is None or depth == self._num_blocks:  # the head, and norms above the blocks, always train
                continue
            if depth == stage or (depth == -1 and stage == 0):
                continue
            frozen.add(name)
        return frozen

    def describe(self) -> str:
        return (f"greedy_layerwise: from random weights, one block at a time ({self.stage_steps} steps each, the "
                f"blocks below frozen), then everything")
