"""The transfer model: backbone -> pooling -> head, as a cross-encoder (one input) or a bi-encoder (two inputs)."""

from __future__ import annotations

import torch
from torch import nn

from hf_tl.data.collate import PAIR_SUFFIX
from hf_tl.heads import CosineHead
from hf_tl.losses import LOSSES
from hf_tl.pooling import pool


class TransferModel(nn.Module):
    """A backbone with a new head on top.

    Args:
        backbone: The bare transformer (or a PEFT model wrapping it).
        head: A head from :mod:`hf_tl.heads`; a :class:`CosineHead` makes this a bi-encoder.
        pooling: ``cls``, ``mean`` or ``last``.
        loss: A key of :data:`hf_tl.losses.LOSSES`.
        pass_position_ids: Give the backbone position ids computed from the mask (decoders with left padding).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, pooling: str, loss: str = "mse",
                 pass_position_ids: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.loss_name = loss
        self.pass_position_ids = pass_position_ids
        # Set by strategies that keep the backbone fixed: it then stays in eval mode (no dropout), so it acts as
        # the deterministic feature extractor that feature extraction means.
        self.backbone_frozen = False

    def train(self, mode: bool = True) -> TransferModel:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    @property
    def is_bi_encoder(self) -> bool:
        return isinstance(self.head, CosineHead)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        """Run the backbone and pool: ``(batch, seq)`` token ids -> ``(batch, hidden)`` features."""
        peft_config = getattr(self.backbone, "active_peft_config", None)
        if peft_config is not None and peft_config.is_prompt_learning:
            extra.pop("token_type_ids", None)  # peft ignores them (with a warning per batch) for prompt learning
        if self.pass_position_ids:
            extra["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        head_dtype = next(self.head.parameters(), hidden).dtype
        return pool(hidden, attention_mask, self.pooling).to(head_dtype)

    def forward(self, labels: torch.Tensor | None = None, **inputs) -> dict:
        """Score a batch.

        Args:
            labels: Optional targets; when given the loss is returned too.
            **inputs: Tokenizer outputs; a bi-encoder also takes the second text's as ``input_ids_b`` etc.

        Returns:
            ``{"predictions": tensor, "loss": tensor}`` (loss only with labels).
        """
        first = {k: v for k, v in inputs.items() if not k.endswith(PAIR_SUFFIX)}
        if self.is_bi_encoder:
            second = {k[: -len(PAIR_SUFFIX)]: v for k, v in inputs.items() if k.endswith(PAIR_SUFFIX)}
            predictions = self.head(self.encode(**first), self.encode(**second))
        else:
            predictions = self.head(self.encode(**first))
        out = {"predictions": predictions}
        if labels is not None:
            out["loss"] = LOSSES[self.loss_name](predictions, labels)
        return out
