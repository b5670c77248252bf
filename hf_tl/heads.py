"""Task heads: new layers on top of pooled backbone features. They take and return tensors only."""

from __future__ import annotations

import torch
from torch import nn


def _projection(hidden_size: int, out_size: int, head_type: str, inner_size: int | None, dropout: float) -> nn.Module:
    if head_type == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, out_size))
    inner = inner_size or hidden_size
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, inner), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(inner, out_size))


class NativeHead(nn.Module):
    """The backbone family's own sequence-classification head, so that the run is a standard
    ``AutoModelForSequenceClassification`` (``head_type: native``).

    Args:
        hidden_size: Width of the pooled features.
        out_size: Number of outputs (labels, or 1 for a score).
        style: ``pooler``: BERT's dense + tanh on the first token, then a linear layer; ``score``: GPT-style decoders'
            linear layer without bias on the last token.
        dropout: Dropout before the last linear layer (what the standard class does with ``classifier_dropout``).
    """

    def __init__(self, hidden_size: int, out_size: int, style: str, dropout: float = 0.1):
        super().__init__()
        self.style = style
        self.dense = nn.Linear(hidden_size, hidden_size) if style == "pooler" else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, out_size, bias=style == "pooler")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, out_size)`` outputs for ``(batch, hidden)`` features."""
        if self.dense is not None:
            features = torch.tanh(self.dense(features))
        return self.out(self.dropout(features))


def _net(hidden_size: int, out_size: int, head_type: str, inner_size: int | None, dropout: float,
         native_style: str | None) -> nn.Module:
    if head_type == "native":
        return NativeHead(hidden_size, out_size, native_style, dropout)
    return _projection(hidden_size, out_size, "linear" if head_type == "none" else head_type, inner_size, dropout)


class RegressionHead(nn.Module):
    """Map a pooled vector to one score (a cross-encoder's similarity)."""

    def __init__(self, hidden_size: int, head_type: str = "linear", inner_size: int | None = None,
                 dropout: float = 0.1, native_style: str | None = None):
        super().__init__()
        self.net = _net(hidden_size, 1, head_type, inner_size, dropout, native_style)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return ``(batch,)`` scores for ``(batch, hidden)`` features."""
        return self.net(features).squeeze(-1)


class ClassificationHead(nn.Module):
    """Map a pooled vector to class logits (single sentences or sentence pairs)."""

    def __init__(self, hidden_size: int, num_labels: int, head_type: str = "linear", inner_size: int | None = None,
                 dropout: float = 0.1, native_style: str | None = None):
        super().__init__()
        self.net = _net(hidden_size, num_labels, head_type, inner_size, dropout, native_style)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, num_labels)`` logits."""
        return self.net(features)


class CosineHead(nn.Module):
    """Bi-encoder (siamese) head: an optional shared projection, then the cosine of the two embeddings."""

    def __init__(self, hidden_size: int, head_type: str = "none", inner_size: int | None = None,
                 dropout: float = 0.1):
        super().__init__()
        out = inner_size or hidden_size
        self.proj = None if head_type == "none" else _projection(hidden_size, out, head_type, inner_size, dropout)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Return the embedding of ``(batch, hidden)`` features (after the projection, if any)."""
        return features if self.proj is None else self.proj(features)

    def forward(self, features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
        """Return ``(batch,)`` cosine similarities in [-1, 1]."""
        return nn.functional.cosine_similarity(self.embed(features_a), self.embed(features_b), dim=-1)
