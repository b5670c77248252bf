"""The similarity losses on tensors: hand-made examples, sentence-transformers' own functions as reference, and a
few optimizer steps on a batch."""

import math

import pytest
import torch

from hf_tl.losses import (
    Loss,
    angle_loss,
    angle_similarity,
    cosent_loss,
    cross_entropy_loss,
    in_batch_negatives_loss,
    rank_loss,
)


def test_cosent_on_a_hand_made_example():
    scores, targets = torch.tensor([0.3, 0.1, 0.25]), torch.tensor([1.0, 0.0, 0.5])
    # Ordered pairs (i above j): (0,1), (0,2), (2,1); the loss is log(1 + sum exp(20 * (s_j - s_i))).
    expected = math.log(1 + math.exp(20 * (0.1 - 0.3)) + math.exp(20 * (0.25 - 0.3)) + math.exp(20 * (0.1 - 0.25)))
    assert cosent_loss(scores, targets).item() == pytest.approx(expected, rel=1e-5)
    # A wrong order costs more than the right one; equal targets impose no order at all (log 1).
    assert cosent_loss(scores.flip(0), targets).item() > cosent_loss(scores, targets).item() + 0.5
    assert rank_loss(scores, torch.full((3,), 0.5)).item() == 0.0


def test_losses_equal_sentence_transformers():
    st_util = pytest.importorskip("sentence_transformers.util")
    pairwise_angle_sim = getattr(st_util, "pairwise_angle_sim", None)
    if pairwise_angle_sim is None:
        from sentence_transformers.util.similarity import pairwise_angle_sim
    torch.manual_seed(0)
    a, b, targets = torch.randn(6, 7), torch.randn(6, 7), torch.rand(6)
    assert torch.allclose(angle_similarity(a, b), pairwise_angle_sim(a, b), atol=1e-6)  # odd width: padded alike
    # CoSENT as sentence-transformers computes it from scores (its CoSENTLoss, the quadratic form).
    s = torch.nn.functional.cosine_similarity(a, b) * 20
    diff = (s[:, None] - s[None, :]) - (1 - (targets[:, None] < targets[None, :]).float()) * 1e12
    reference = torch.logsumexp(torch.cat([torch.zeros(1), diff.view(-1)]), 0)
    assert cosent_loss(torch.nn.functional.cosine_similarity(a, b), targets).item() == pytest.approx(
        reference.item(), rel=1e-5)
    sims = pairwise_angle_sim(a, b) * 20
    diff = (sims[:, None] - sims[None, :]) - (1 - (targets[:, None] < targets[None, :]).float()) * 1e12
    reference = torch.logsumexp(torch.cat([torch.zeros(1), diff.view(-1)]), 0)
    assert angle_loss(None, targets, (a, b)).item() == pytest.approx(reference.item(), rel=1e-5)


def test_in_batch_negatives_on_a_hand_made_example():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([1.0, 0.9, 0.2])  # the third pair is no positive; its b is still a negative
    logits = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T * 20
    expected = (torch.logsumexp(logits[0], 0) - logits[0, 0] + torch.logsumexp(logits[1], 0) - logits[1, 1]) / 2
    assert in_batch_negatives_loss(None, targets, (a, b)).item() == pytest.approx(expected.item(), rel=1e-5)
    # A batch with no positive gives zero, still attached to the graph (backward works).
    a.requires_grad_(True)
    zero = in_batch_negatives_loss(None, torch.zeros(3), (a, b))
    zero.backward()
    assert zero.item() == 0.0 and a.grad is not None


def test_label_smoothing_reaches_cross_entropy():
    logits, targets = torch.tensor([[4.0, 0.0]]), torch.tensor([0])
    smoothed = Loss("cross_entropy", label_smoothing=0.2)(logits, targets)
    expected = -(0.9 * torch.log_softmax(logits, -1)[0, 0] + 0.1 * torch.log_softmax(logits, -1)[0, 1])
    assert smoothed.item() == pytest.approx(expected.item(), rel=1e-6)
    assert smoothed.item() > cross_entropy_loss(logits, targets).item()


@pytest.mark.parametrize("name", ["mse", "cosent", "angle", "mnrl"])
def test_each_similarity_loss_decreases_on_a_batch(name):
    torch.manual_seed(0)
    encoder = torch.nn.Linear(8, 6)
    x_a, x_b = torch.randn(12, 8), torch.randn(12, 8)
    targets = torch.rand(12)
    targets[:4] = 0.95  # positives for in-batch negatives
    loss_fn = Loss(name)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.05)

    def step():
        a, b = encoder(x_a), encoder(x_b)
        loss = loss_fn(torch.nn.functional.cosine_similarity(a, b), targets, (a, b))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    first = step()
    for _ in range(20):
        last = step()
    assert last < first
