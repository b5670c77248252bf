"""The transfer model: backbone -> pooling -> head, as a cross-encoder (one input) or a bi-encoder (two inputs).

One backbone can carry several heads, one per task (multi-task training); each batch names the task whose head
scores it.
"""

from __future__ import annotations

import torch
from torch import nn

from hf_tl.data.collate import PAIR_SUFFIX
from hf_tl.data.lm_data import LM_LABELS
from hf_tl.errors import HfTlError
from hf_tl.heads import CosineHead
from hf_tl.layer_select import MixedHead, combine_layers, layers_needed
from hf_tl.layers import find_blocks
from hf_tl.losses import Loss
from hf_tl.pooling import pool
from hf_tl.regularize import weight_penalty

FEATURES_KEY = "features"  # a batch of cached backbone features (a layer stack per text) instead of token ids


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted from each row's first real token (left padding leaves the pads at position 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def is_cosine_head(head: nn.Module) -> bool:
    """Whether a head scores a pair by the cosine of two embeddings (also behind a layer mix)."""
    return isinstance(head.head if isinstance(head, MixedHead) else head, CosineHead)


class TransferModel(nn.Module):
    """A backbone with a new head per task on top.

    Args:
        backbone: The bare transformer (or a PEFT model wrapping it).
        heads: ``{task name: head}``, heads from :mod:`hf_tl.heads`; a :class:`CosineHead` scores a pair as a
            bi-encoder.
        losses: ``{task name: Loss}``, or ``{task name: key of hf_tl.losses.LOSSES}``.
        pooling: ``cls``, ``mean`` or ``last``.
        pass_position_ids: Give the backbone position ids computed from the mask (decoders with left padding).
        layer: Which hidden layers make the features (:data:`hf_tl.layer_select.LAYER_CHOICES`).
        penalty: ``(l1, l2, scope)``: L1 and L2 penalties added to the loss, on the heads' weights (``head``) or on
            every weight that trains (``trained``).
    """

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Module], losses: dict, pooling: str,
                 pass_position_ids: bool = False, layer: str = "last", penalty: tuple = (0.0, 0.0, "head")):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        # A token-level head (language modelling) computes its own loss: its entry is None.
        self.losses = {name: loss if loss is None or isinstance(loss, Loss) else Loss(loss)
                       for name, loss in losses.items()}
        self.penalty = penalty
        self.pooling = pooling
        self.pass_position_ids = pass_position_ids
        self.layer = layer
        self.layer_indices = layers_needed(layer, backbone.config.num_hidden_layers)
        try:  # FSDP's transformer wrap policy makes each block of the backbone (BertLayer, GPT2Block, ...) a unit
            self._no_split_modules = [type(find_blocks(backbone)[1][0]).__name__]
        except HfTlError:
            pass
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
    def task_names(self) -> list[str]:
        return list(self.heads)

    @property
    def is_bi_encoder(self) -> bool:
        """Whether every head scores pairs by the cosine of two embeddings."""
        return all(is_cosine_head(h) for h in self.heads.values())

    def encode_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        """Run the backbone and pool each layer the ``layer`` setting reads.

        Returns:
            ``(batch, n_layers, hidden)``: the pooled layers, bottom first (what the feature cache stores).
        """
        peft_config = getattr(self.backbone, "active_peft_config", None)
        if peft_config is not None and peft_config.is_prompt_learning:
            extra.pop("token_type_ids", None)  # peft ignores them (with a warning per batch) for prompt learning
        if self.pass_position_ids:
            extra["position_ids"] = positions_from_mask(attention_mask)
        many = self.layer_indices != [-1]
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=many, **extra)
        # last_hidden_state, not hidden_states[-1]: only it is certain to carry the final norm (GPT-2, LLaMA).
        states = [out.last_hidden_state if i == -1 else out.hidden_states[i] for i in self.layer_indices]
        return torch.stack([pool(h, attention_mask, self.pooling) for h in states], dim=1)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        """Run the backbone, pool and combine layers: ``(batch, seq)`` token ids -> features.

        Returns:
            ``(batch, feature_size)``, or the ``(batch, n_layers, hidden)`` stack for ``layer: weighted`` (each
            head mixes it).
        """
        return combine_layers(self.encode_layers(input_ids, attention_mask, **extra), self.layer)

    def _features(self, inputs: dict, suffix: str = "") -> torch.Tensor:
        """Features of one side of a batch: from the cache when the batch carries them, else from the backbone."""
        cached = inputs.get(FEATURES_KEY + suffix)
        if cached is not None:
            return combine_layers(cached, self.layer)
        return self.encode(**{k[: len(k) - len(suffix)]: v for k, v in inputs.items()
                              if k.endswith(suffix) and (suffix or not k.endswith(PAIR_SUFFIX))})

    def forward(self, task: str | None = None, labels: torch.Tensor | None = None, **inputs) -> dict:
        """Score a batch of one task.

        Args:
            task: The task whose head scores the batch (optional when there is one head).
            labels: Optional targets; when given the loss is returned too.
            **inputs: Tokenizer outputs; a bi-encoder also takes the second text's as ``input_ids_b`` etc.

        Returns:
            ``{"predictions": tensor, "loss": tensor}`` (loss only with labels); a token-level head adds
            ``loss_tokens``.
        """
        name = task if task is not None else next(iter(self.heads))
        head = self.heads[name]
        if getattr(head, "token_level", False):
            return self._token_level(head, labels is not None, **inputs)
        weight = next(head.parameters(), None)  # features go to the head in its dtype (bf16 backbone, fp32 head)
        to_head = (lambda x: x) if weight is None else (lambda x: x.to(weight.dtype))
        embeddings = None
        if is_cosine_head(head):
            embeddings = (head.embed(to_head(self._features(inputs))),
                          head.embed(to_head(self._features(inputs, PAIR_SUFFIX))))
            predictions = nn.functional.cosine_similarity(*embeddings, dim=-1)
        else:
            predictions = head(to_head(self._features(inputs)))
        out = {"predictions": predictions}
        if labels is not None:
            out["loss"] = self.losses[name](predictions, labels, embeddings) + self._penalty()
        return out

    def _token_level(self, head: nn.Module, with_loss: bool, **inputs) -> dict:
        """A language-modelling batch: the LM head reads every token's last hidden state.

        Returns:
            ``predictions``: ``(batch, 2)``, each row's summed token loss and its number of predicted tokens (what
            perplexity is computed from); ``loss``: the mean loss per predicted token of the batch;
            ``loss_tokens``: how many tokens it averages over (the loop weighs processes by it).
        """
        targets = inputs.pop(LM_LABELS)
        if self.pass_position_ids:
            inputs["position_ids"] = positions_from_mask(inputs["attention_mask"])
        hidden = self.backbone(**inputs).last_hidden_state
        sums, counts = head.token_losses(hidden, targets)
        out = {"predictions": torch.stack([sums.detach(), counts], dim=1)}
        if with_loss:
            out["loss"] = sums.sum() / counts.sum().clamp(min=1) + self._penalty()
            out["loss_tokens"] = counts.sum()
        return out

    def _penalty(self):
        """The L1/L2 penalty on the weights its scope names (0.0 when off)."""
        l1, l2, scope = self.penalty
        if not (l1 or l2):
            return 0.0
        return weight_penalty((self.heads if scope == "head" else self).parameters(), l1, l2)
