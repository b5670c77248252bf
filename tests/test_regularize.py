"""Loss choice and regularisation settings: the model trains with them, they reach the backbone and the card, and
settings a run would ignore are refused."""

import pytest
import torch
from conftest import run_recipe, tiny_args
from test_strategies import batch_for, make, run_steps

from hf_tl.builder import build
from hf_tl.errors import HfTlError


@pytest.mark.parametrize("loss", ["cosent", "angle", "mnrl"])
def test_bi_encoder_trains_with_each_ranking_loss(tiny_model, loss):
    torch.manual_seed(0)
    built = build(make(tiny_model, "full", architecture="bi_encoder", head_type="none", loss=loss,
                       **({"positive_min_score": 3.0} if loss == "mnrl" else {})))
    assert built.model.losses["similarity"].name == loss
    losses = run_steps(built, batch_for(built), steps=10)
    assert losses[-1] < losses[0], losses


def test_penalties_are_added_to_the_loss(tiny_bert):
    torch.manual_seed(0)
    plain = build(make(tiny_bert, "full", head_type="mlp"))
    batch = batch_for(plain)
    plain.model.eval()  # no dropout: the two forwards differ by the penalty alone
    base = plain.model(**batch)["loss"].item()
    head_weights = [p for p in plain.model.heads.parameters() if p.dim() >= 2]
    l1 = sum(p.abs().sum().item() for p in head_weights)
    l2 = sum(p.pow(2).sum().item() for p in head_weights)
    plain.model.penalty = (1e-3, 1e-2, "head")
    assert plain.model(**batch)["loss"].item() == pytest.approx(base + 1e-3 * l1 + 1e-2 * l2, rel=1e-5)
    every = [p for p in plain.model.parameters() if p.dim() >= 2]
    plain.model.penalty = (0.0, 1e-4, "trained")
    assert plain.model(**batch)["loss"].item() == pytest.approx(
        base + 1e-4 * sum(p.pow(2).sum().item() for p in every), rel=1e-5)


@pytest.mark.parametrize("family, keys", [("bert", ("hidden_dropout_prob", "attention_probs_dropout_prob")),
                                          ("gpt2", ("resid_pdrop", "attn_pdrop"))])
def test_backbone_dropout_reaches_the_model(request, family, keys):
    model = request.getfixturevalue(f"tiny_{family}")
    built = build(make(model, "full", backbone_dropout=0.3, attention_dropout=0.2))
    config = built.model.backbone.config
    assert (getattr(config, keys[0]), getattr(config, keys[1])) == (0.3, 0.2)
    rates = {m.p for m in built.model.backbone.modules() if isinstance(m, torch.nn.Dropout)}
    assert 0.3 in rates


def test_a_run_with_loss_and_regularisation_records_them(tiny_bert, tmp_path):
    run_recipe(tiny_args(tiny_bert, tmp_path / "run", "--architecture", "bi_encoder", "--head_type", "none",
                         "--loss", "cosent", "--l2_penalty", "1e-6", "--penalty_on", "trained",
                         "--backbone_dropout", "0.2", train=16, dev=8))
    card = (tmp_path / "run" / "README.md").read_text()
    assert "loss: cosent" in card and "l2_penalty: 1e-06" in card and "backbone_dropout: 0.2" in card


@pytest.mark.parametrize("settings, message", [
    ({"task": "classification", "loss": "cosent"}, "loss cosent trains task similarity, not classification"),
    ({"loss": "angle"}, "reads the two embeddings of a bi-encoder"),
    ({"loss": "mse", "task": "pair_classification"}, "one of cross_entropy"),
    ({"positive_min_score": 4.0}, "read by loss mnrl only"),
    ({"architecture": "bi_encoder", "loss": "mnrl", "positive_min_score": 6.0}, "must lie in"),
    ({"label_smoothing": 0.1}, "no classification task"),
    ({"label_smoothing": 1.0, "task": "classification"}, r"label_smoothing must be in \[0, 1\)"),
    ({"strategy": "zero_shot", "architecture": "bi_encoder", "loss": "cosent"}, "trains nothing by gradient"),
    ({"strategy": "features", "l1_penalty": 1e-6}, "trains nothing by gradient"),
    ({"backbone_dropout": 1.5}, r"backbone_dropout must be in \[0, 1\)"),
])
def test_settings_a_run_cannot_use_are_refused(settings, message):
    from hf_tl import RunConfig

    with pytest.raises(HfTlError, match=message):
        RunConfig.from_flat_dict(settings)
