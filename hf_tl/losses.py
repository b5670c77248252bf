"""Losses on tensors (predictions, targets and, for some, the two embeddings of a bi-encoder), independent of any
model.

Which loss a task trains with is its ``loss`` setting (:data:`hf_tl.choices.LOSS_CHOICES`); :func:`make_loss`
turns the setting into one callable ``loss(predictions, targets, embeddings)``. Similarity targets are gold scores
scaled to [0, 1]; a bi-encoder's predictions are cosines in [-1, 1].
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional

RANK_SCALE = 20.0  # CoSENT, AnglE and in-batch negatives: 1 / temperature, the value their papers and ST use


def mse_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error, computed in float32 so mixed precision does not lose the small differences."""
    return functional.mse_loss(predictions.float(), targets.float())


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of ``(batch, classes)`` logits against integer targets, or against ``(batch, classes)`` target
    probabilities (a teacher's: the KL divergence to them plus their constant entropy), optionally label-smoothed."""
    soft = targets.is_floating_point() and targets.dim() == 2
    return functional.cross_entropy(logits.float(), targets.float() if soft else targets.long(),
                                    label_smoothing=label_smoothing)


def rank_loss(scores: torch.Tensor, targets: torch.Tensor, scale: float = RANK_SCALE) -> torch.Tensor:
    """CoSENT's ranking loss: ``log(1 + sum over pairs (i, j) with target_i > target_j of exp(scale * (s_j -
    s_i)))``, which only asks that a pair with a higher gold score scores higher (Su, 2022).

    Args:
        scores: ``(batch,)`` similarity scores (cosines, or AnglE similarities).
        targets: ``(batch,)`` gold scores; ties impose no order.
        scale: Multiplies the score differences.

    Returns:
        The scalar loss; ``log 1 = 0`` for a batch whose targets are all equal.
    """
    s = scores.float() * scale
    targets = targets.float()
    differences = s[None, :] - s[:, None]  # [i, j] = s_j - s_i
    ordered = targets[:, None] > targets[None, :]  # target_i > target_j: s_i should exceed s_j
    differences = differences.masked_fill(~ordered, float("-inf"))
    return torch.logsumexp(torch.cat([s.new_zeros(1), differences.flatten()]), dim=0)


def cosent_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CoSENT: the ranking loss on the model's scores (a bi-encoder's cosines, or a cross-encoder's outputs)."""
    return rank_loss(predictions, targets)


def angle_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """AnglE's pairwise similarity ``|cos + sin|`` of L2-normalised embeddings, dimension ``i`` paired with
    ``i + D/2`` as one complex number (Li and Li, 2023); an odd width is padded with a zero.

    Returns:
        ``(batch,)`` similarities.
    """
    a, b = a.float(), b.float()
    if a.shape[-1] % 2:
        a, b = functional.pad(a, (0, 1)), functional.pad(b, (0, 1))
    a, b = functional.normalize(a, dim=-1), functional.normalize(b, dim=-1)
    a_first, a_last = a.chunk(2, dim=-1)
    b_first, b_last = b.chunk(2, dim=-1)
    cosines = (a * b).sum(-1)
    sines = (a_last * b_first - a_first * b_last).sum(-1)
    return (cosines + sines).abs()


def angle_loss(predictions: torch.Tensor, targets: torch.Tensor, embeddings: tuple) -> torch.Tensor:
    """AnglE: the ranking loss on the angle similarity of the two embeddings, whose gradient does not vanish where
    the cosine saturates."""
    return rank_loss(angle_similarity(*embeddings), targets)


def in_batch_negatives_loss(predictions: torch.Tensor, targets: torch.Tensor, embeddings: tuple,
                            min_target: float = 0.8) -> torch.Tensor:
    """Multiple-negatives ranking: each positive pair's first text must pick its own second text out of every
    second text in the batch (cross-entropy over scaled cosines).

    Args:
        predictions: Unused (the cosines are recomputed against the whole batch).
        targets: ``(batch,)`` gold scores in [0, 1].
        embeddings: ``(a, b)``, each ``(batch, dim)``.
        min_target: Pairs scoring at least this are positives; the other pairs serve only as negatives.

    Returns:
        The mean loss over the batch's positive pairs, or a zero that keeps the graph when it has none.
    """
    a, b = (functional.normalize(e.float(), dim=-1) for e in embeddings)
    logits = a @ b.T * RANK_SCALE
    positive = targets.float() >= min_target
    if not positive.any():
        return logits.sum() * 0.0
    rows = positive.nonzero().squeeze(-1)
    return functional.cross_entropy(logits[rows], rows)


# name -> (function, whether it takes the two embeddings)
LOSSES = {
    "mse": (mse_loss, False),
    "cross_entropy": (cross_entropy_loss, False),
    "cosent": (cosent_loss, False),
    "angle": (angle_loss, True),
    "mnrl": (in_batch_negatives_loss, True),
}


class Loss:
    """One task's loss, as its settings chose it: ``loss(predictions, targets, embeddings)``.

    Args:
        name: A key of :data:`LOSSES`.
        **options: Keyword settings of its function (``label_smoothing``, ``min_target``).
    """

    def __init__(self, name: str, **options):
        self.name = name
        fn, self.takes_embeddings = LOSSES[name]
        self.fn = functools.partial(fn, **options)

    def __call__(self, predictions: torch.Tensor, targets: torch.Tensor, embeddings: tuple | None = None):
        if self.takes_embeddings:
            return self.fn(predictions, targets, embeddings)
        return self.fn(predictions, targets)

    def __repr__(self) -> str:
        return f"Loss({self.name})"
