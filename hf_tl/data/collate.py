"""Dynamic padding: each batch is padded to its own longest sequence (optionally to a multiple of N)."""

from __future__ import annotations

import torch

PAD_ZERO_KEYS = ("attention_mask", "token_type_ids")
PAD_IGNORED_KEYS = ("lm_labels",)  # per-token targets: padding is not predicted (cross-entropy's ignore_index)
PAIR_SUFFIX = "_b"  # a bi-encoder batch carries the second text's tensors under these suffixed keys


class PaddingCollator:
    """Pad tokenized features into tensors; a bi-encoder's second text (``*_b`` keys) is padded on its own.

    Args:
        pad_token_id: The tokenizer's pad id.
        padding_side: ``right`` or ``left``.
        pad_to_multiple_of: Round the padded length up to a multiple of this (tensor cores like 8).
    """

    def __init__(self, pad_token_id: int, padding_side: str = "right", pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side
        self.multiple = pad_to_multiple_of

    def _pad(self, rows: list[list[int]], value: int) -> torch.Tensor:
        length = max(len(r) for r in rows)
        if self.multiple:
            length = -(-length // self.multiple) * self.multiple
        out = torch.full((len(rows), length), value, dtype=torch.long)
        for i, row in enumerate(rows):
            if self.padding_side == "left":
                out[i, length - len(row):] = torch.tensor(row, dtype=torch.long)
            else:
                out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if key == "labels":
                batch[key] = torch.tensor(values)
            else:
                base = key.removesuffix(PAIR_SUFFIX)
                pad = 0 if base in PAD_ZERO_KEYS else -100 if base in PAD_IGNORED_KEYS else self.pad_token_id
                batch[key] = self._pad(values, pad)
        return batch
