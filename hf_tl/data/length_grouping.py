"""Length-grouped batching: batches of texts of similar length (little padding), still in a new random order every
epoch.

Each epoch draws a random permutation, cuts it into megabatches of ``50 x batch`` examples, sorts each megabatch
by length and cuts it into batches; the order of the full batches is then shuffled again, so the model does not see
long and short batches in a fixed rhythm. A shorter last batch stays last, which keeps every later batch aligned.

The sampler groups by the examples of one optimizer step (per-process batch x processes x accumulation steps):
Accelerate hands the consecutive per-process slices of a global batch to the processes, and accumulation takes
consecutive micro-batches, so 1 process with batch 8, 2 processes with batch 4, and batch 4 with 2 accumulation
steps all see the same examples at each step.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

MEGABATCH_FACTOR = 50  # as in HF Trainer's group_by_length: large enough to group, small enough to stay random


def example_lengths(dataset) -> list[int]:
    """Tokens per example of a tokenized split (both texts of a bi-encoder pair)."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    if "input_ids_b" in dataset.column_names:
        lengths = [a + len(b) for a, b in zip(lengths, dataset["input_ids_b"])]
    return lengths


def sorted_by_length(encoded: dict[str, list]) -> list[int]:
    """Indices of tokenized inputs (``{column: [ids per input]}``), longest first (both texts of a bi-encoder pair):
    batches cut from this order carry little padding, and an oversized batch fails at once rather than at the end."""
    lengths = [len(ids) for ids in encoded["input_ids"]]
    if "input_ids_b" in encoded:
        lengths = [a + len(b) for a, b in zip(lengths, encoded["input_ids_b"])]
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


class LengthGroupedSampler(Sampler[int]):
    """Yield example indices so that consecutive ``batch_size`` groups hold examples of similar length.

    Args:
        lengths: Tokens per example.
        batch_size: The examples of one optimizer step (per-process batch x processes x accumulation steps).
        seed: The run's seed; epoch ``e`` uses ``seed`` and ``e`` (set by :meth:`set_epoch`).
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (Accelerate calls this through the prepared dataloader)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega = self.batch_size * MEGABATCH_FACTOR
        batches = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start:start + mega], key=lambda i: self.lengths[i], reverse=True)
            batches.extend(chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size))
        full = [b for b in batches if len(b) == self.batch_size]
        last = [b for b in batches if len(b) < self.batch_size]  # at most one: megabatches are whole batches
        shuffled = [full[k] for k in torch.randperm(len(full), generator=generator).tolist()]
        return iter([i for batch in shuffled + last for i in batch])
