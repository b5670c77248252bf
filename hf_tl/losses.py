"""Losses on tensors (predictions and targets), independent of any model."""

from __future__ import annotations

import torch
from torch.nn import functional


def mse_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error, computed in float32 so mixed precision does not lose the small differences."""
    return functional.mse_loss(predictions.float(), targets.float())


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(batch, classes)`` logits against integer targets."""
    return functional.cross_entropy(logits.float(), targets.long())


LOSSES = {"mse": mse_loss, "cross_entropy": cross_entropy_loss}
