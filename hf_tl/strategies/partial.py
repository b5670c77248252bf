"""partial: train only the top N transformer blocks (or chosen blocks); embeddings and the rest stay frozen."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.layers import parse_layer_spec
from hf_tl.strategies.base import LayerwiseStrategy, register


@register("partial")
class Partial(LayerwiseStrategy):
    """Train the selected blocks, plus the final norm above the blocks when the top block is selected."""

    own_options = ("layers",)

    @classmethod
    def check_args(cls, args) -> None:
        super().check_args(args)
        if args.num_layers is None and args.layers is None:
            raise HfTlError("strategy 'partial' needs num_layers (top N blocks) or layers (e.g. '4-5').")

    @classmethod
    def compare_flags(cls, config) -> list[str]:
        """The top two blocks, unless the config already says how many."""
        if config.strategy.strategy == cls.name or config.strategy.num_layers is not None:
            return []
        return ["--num_layers", "2"]

    def selected_blocks(self, model: nn.Module) -> list[int]:
        """The block indices that train (0 = bottom).

        Raises:
            HfTlError: if more blocks are asked for than the model has, or an index is out of range.
        """
        _, num_blocks = self.blocks_of(model)
        if self.args.layers is not None:
            return parse_layer_spec(self.args.layers, num_blocks)
        if self.args.num_layers > num_blocks:
            raise HfTlError(f"strategy 'partial' asks for the top {self.args.num_layers} blocks, but the model has "
                            f"only {num_blocks}; set num_layers to at most {num_blocks} (or use strategy full).")
        return list(range(num_blocks - self.args.num_layers, num_blocks))

    def apply(self, model: nn.Module) -> nn.Module:
        _, num_blocks = self.blocks_of(model)
        blocks = self.selected_blocks(model)
        depths = set(blocks) | ({num_blocks} if num_blocks - 1 in blocks else set())
        self.unfreeze_depths(model, depths)
        self._blocks = blocks
        return model

    def describe(self) -> str:
        return f"partial: blocks {getattr(self, '_blocks', '?')} and the head train; embeddings and the rest frozen"
