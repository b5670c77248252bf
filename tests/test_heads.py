"""Heads and losses on plain tensors."""

import pytest
import torch

from hf_tl.heads import ClassificationHead, CosineHead, RegressionHead
from hf_tl.losses import cross_entropy_loss, mse_loss


@pytest.mark.parametrize("head_type", ["linear", "mlp"])
def test_regression_and_classification_heads_shapes(head_type):
    features = torch.randn(5, 16)
    assert RegressionHead(16, head_type, 8, 0.1)(features).shape == (5,)
    assert ClassificationHead(16, 3, head_type, 8, 0.1)(features).shape == (5, 3)


def test_cosine_head_scores_identical_texts_one_and_projects_when_asked():
    a = torch.randn(4, 16)
    assert torch.allclose(CosineHead(16)(a, a), torch.ones(4), atol=1e-6)
    assert not any(True for _ in CosineHead(16).parameters())  # head_type none: pure cosine
    projected = CosineHead(16, "linear", 8, 0.0)
    assert projected.embed(a).shape == (4, 8)


def test_losses_on_tensors():
    assert mse_loss(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(0.5)
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert cross_entropy_loss(logits, torch.tensor([0, 1])).item() < 1e-4
    assert mse_loss(torch.tensor([1.0], dtype=torch.bfloat16), torch.tensor([0.0])).dtype == torch.float32
