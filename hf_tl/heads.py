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


class RegressionHead(nn.Module):
    """Map a pooled vector to one score (a cross-encoder's similarity)."""

    def __init__(self, hidden_size: int, head_type: str = "linear", inner_size: int | None = None,
                 dropout: float = 0.1):
        super().__init__()
        self.net = _projection(hidden_size, 1, "linear" if head_type == "none" else head_type, inner_size, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return ``(batch,)`` scores for ``(batch, hidden)`` features."""
        return self.net(features).squeeze(-1)


class ClassificationHead(nn.Module):
    """Map a pooled vector to class logits (single sentences or sentence pairs)."""

    def __init__(self, hidden_size: int, num_labels: int, head_type: str = "linear", inner_size: int | None = None,
                 dropout: float = 0.1):
        super().__init__()
        self.net = _projection(hidden_size, num_labels, "linear" if head_type == "none" else head_type, inner_size,
                               dropout)

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
