"""Pool per-token hidden states into one vector per text. Works on tensors only."""

from __future__ import annotations

import torch

from hf_tl.errors import HfTlError

POOLING_MODES = ("cls", "mean", "last")


def align_mask(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Extend the mask on the left when the backbone prepended virtual tokens (prompt tuning).

    Args:
        hidden: ``(batch, seq_out, dim)`` hidden states.
        attention_mask: ``(batch, seq_in)`` mask of the real tokens, ``seq_in <= seq_out``.

    Returns:
        A ``(batch, seq_out)`` mask.
    """
    extra = hidden.shape[1] - attention_mask.shape[1]
    if extra > 0:
        ones = attention_mask.new_ones(attention_mask.shape[0], extra)
        attention_mask = torch.cat([ones, attention_mask], dim=1)
    return attention_mask


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool hidden states.

    Args:
        hidden: ``(batch, seq, dim)`` hidden states.
        attention_mask: ``(batch, seq)``, 1 for real tokens; left or right padding both work.
        mode: ``cls`` (first token), ``mean`` (average of real tokens) or ``last`` (last real token).

    Returns:
        ``(batch, dim)`` pooled vectors.

    Raises:
        HfTlError: for an unknown mode.
    """
    virtual = hidden.shape[1] - attention_mask.shape[1]
    if mode == "cls":
        # The first real token: with left padding it is not at position 0, and prompt tuning puts virtual tokens
        # before it.
        first = attention_mask.long().argmax(dim=1) + max(virtual, 0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    attention_mask = align_mask(hidden, attention_mask)
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if mode == "last":
        # The index of the last 1 in each row: right padding gives len-1, left padding gives seq-1.
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.long() * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise HfTlError(f"Unknown pooling '{mode}'; choose one of {', '.join(POOLING_MODES)}.")
