"""Multi-task batch sampling: which task each micro-batch comes from, and one endless stream of batches per task.

Every batch holds one task's examples, so each head sees only its own task. The schedule is drawn from a generator
seeded by the run's seed and the epoch, so every process picks the same task at the same step (their heads and
collectives stay in step) and a resumed run replays the same schedule.
"""

from __future__ import annotations

import math

import torch


def epoch_length(batches: dict[str, int], multiple_of: int = 1) -> int:
    """Micro-batches in one epoch: one task's batches (a pass over its data); several tasks' batches summed and
    rounded up to a multiple of ``multiple_of`` (gradient accumulation), so an epoch ends on an optimizer step."""
    total = sum(batches.values())
    return total if len(batches) == 1 else math.ceil(total / multiple_of) * multiple_of


def total_optimizer_steps(train, micro_batches_per_epoch: int) -> int:
    """The optimizer steps of a run: ``max_steps``, else its epochs of ``micro_batches_per_epoch`` each.

    Args:
        train: The run's :class:`hf_tl.config.TrainArguments`.
        micro_batches_per_epoch: See :func:`epoch_length`.
    """
    steps_per_epoch = math.ceil(micro_batches_per_epoch / train.gradient_accumulation_steps)
    return train.max_steps or math.ceil(train.num_train_epochs * steps_per_epoch)


class TaskSchedule:
    """The task of every micro-batch of an epoch.

    Args:
        batches: ``{task: train batches per process per pass over its data}``.
        scheme: ``proportional`` (to the batches), ``equal``, or ``temperature``.
        temperature: For ``temperature``: probabilities proportional to ``batches ** (1 / temperature)``.
        seed: The run's seed.
        multiple_of: Round the epoch up to a multiple of this (gradient accumulation), so an epoch ends on an
            optimizer step.
    """

    def __init__(self, batches: dict[str, int], scheme: str = "proportional", temperature: float = 2.0,
                 seed: int = 0, multiple_of: int = 1):
        self.names = list(batches)
        sizes = torch.tensor([float(batches[n]) for n in self.names], dtype=torch.float64)
        weights = {"proportional": sizes, "equal": torch.ones_like(sizes),
                   "temperature": sizes ** (1.0 / temperature)}[scheme]
        self.probabilities = {n: float(p) for n, p in zip(self.names, weights / weights.sum())}
        self.epoch_length = epoch_length(batches, multiple_of)
        self.seed = seed

    def tasks_for_epoch(self, epoch: int) -> list[str]:
        """Return the task of each micro-batch of ``epoch`` (the same on every process)."""
        if len(self.names) == 1:
            return self.names * self.epoch_length
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        probs = torch.tensor([self.probabilities[n] for n in self.names], dtype=torch.float64)
        draws = torch.multinomial(probs, self.epoch_length, replacement=True, generator=generator)
        return [self.names[i] for i in draws.tolist()]


class TaskStreams:
    """An endless stream of batches per task: each task's prepared dataloader, restarted when it runs out.

    Args:
        loaders: ``{task: prepared train dataloader}``.
        accelerator: The run's Accelerator (for ``skip_first_batches`` on resume).
        passes: ``{task: completed passes over its data}`` (from a checkpoint).
        consumed: ``{task: batches of the current pass already used}`` (from a checkpoint).
    """

    def __init__(self, loaders: dict, accelerator, passes: dict | None = None, consumed: dict | None = None):
        self.loaders = loaders
        self.accelerator = accelerator
        self.passes = {n: (passes or {}).get(n, 0) for n in loaders}
        self.consumed = {n: (consumed or {}).get(n, 0) for n in loaders}
        self._iterators: dict = {}

    def next(self, task: str) -> dict:
        """Return the next batch of ``task``."""
        if task not in self._iterators:
            loader = self.loaders[task]
            loader.set_epoch(self.passes[task])  # each pass is shuffled differently, reproducibly
            if self.consumed[task]:  # resuming mid-pass: same shuffled order, minus the batches already used
                iterator = iter(self.accelerator.skip_first_batches(loader, self.consumed[task]))
                # Starting an iterator draws from the global RNG, which the uninterrupted run did not do at this
                # point; put the RNG back so dropout masks match.
                rng = torch.get_rng_state()
                batch = next(iterator)
                torch.set_rng_state(rng)
                self._iterators[task] = iterator
                return self._advance(task, batch)
            self._iterators[task] = iter(loader)
        return self._advance(task, next(self._iterators[task]))

    def _advance(self, task: str, batch: dict) -> dict:
        self.consumed[task] += 1
        if self.consumed[task] == len(self.loaders[task]):
            # Finish the iterator so Accelerate's bookkeeping of the active dataloader is closed, then start a new
            # pass next time.
            for _ in self._iterators.pop(task):
                pass
            self.passes[task] += 1
            self.consumed[task] = 0
        return batch
