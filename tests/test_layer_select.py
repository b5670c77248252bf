"""Layer choices: tensor maths, feature sizes, and training/reloading with each choice on both model families."""

import json

import pytest
import torch
from conftest import run_recipe, tiny_args

import hf_tl
from hf_tl import RunConfig
from hf_tl.builder import build
from hf_tl.errors import HfTlError
from hf_tl.layer_select import LAYER_CHOICES, LayerMix, combine_layers, feature_size, layers_needed
from hf_tl.pooling import pool
from hf_tl.run_dir import RESULTS_FILE


def test_layers_needed_and_feature_sizes():
    assert layers_needed("last", 6) == [-1]
    assert layers_needed("second_to_last", 6) == [-2]
    assert layers_needed("mean_last4", 6) == [-4, -3, -2, -1]
    assert layers_needed("weighted", 6) == list(range(-7, 0))
    assert feature_size("concat_last4", 32) == 128 and feature_size("mean_last4", 32) == 32
    with pytest.raises(HfTlError, match="needs 4 hidden layers but the backbone has 2 blocks"):
        layers_needed("concat_last4", 2)


def test_pooling_each_layer_then_combining_equals_combining_then_pooling():
    torch.manual_seed(0)
    layers = torch.randn(4, 3, 7, 8)  # (n_layers, batch, seq, hidden)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]])
    for pooling in ("cls", "mean", "last"):
        stack = torch.stack([pool(h, mask, pooling) for h in layers], dim=1)
        torch.testing.assert_close(combine_layers(stack, "mean_last4"), pool(layers.mean(0), mask, pooling))
        torch.testing.assert_close(combine_layers(stack, "concat_last4"),
                                   pool(torch.cat(list(layers), dim=-1), mask, pooling))
        mix = LayerMix(4)
        with torch.no_grad():
            mix.weights.copy_(torch.tensor([0.1, -1.0, 2.0, 0.5]))
            mix.scale.fill_(1.5)
        w = torch.softmax(mix.weights.detach(), 0)
        mixed_tokens = 1.5 * torch.einsum("l,lbsh->bsh", w, layers)
        torch.testing.assert_close(mix(stack).detach(), pool(mixed_tokens, mask, pooling))


@pytest.mark.real_data
@pytest.mark.parametrize("layer", LAYER_CHOICES)
def test_each_layer_choice_trains_and_reloads(four_block_bert, tmp_path, layer):
    out = tmp_path / "run"
    run_recipe(tiny_args(four_block_bert, out, "--strategy", "frozen", "--layer", layer, train=16, dev=8))
    results = json.loads((out / RESULTS_FILE).read_text())
    run = hf_tl.load_run(out)
    assert run.model.layer == layer
    scores = run.predict([("a cat sits", "a cat is sitting"), ("a man runs", "the sky is blue")])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert results["eval_samples"] == 8


def test_weighted_layers_learn_one_mix_per_head_on_both_families(tiny_model):
    config = RunConfig.from_flat_dict({"model_name_or_path": tiny_model, "strategy": "frozen", "layer": "weighted"})
    built = build(config)
    head = built.model.heads["similarity"]
    assert head.mix.weights.shape == (3,) and head.mix.weights.requires_grad  # embeddings + 2 blocks
    tok = built.backbone.tokenizer
    batch = {k: torch.tensor(v) for k, v in tok(["one text", "another"], padding=True).items()}
    out = built.model(labels=torch.tensor([0.3, 0.8]), **batch)
    out["loss"].backward()
    assert head.mix.weights.grad is not None and head.mix.weights.grad.abs().sum() > 0
    assert all(p.grad is None for p in built.model.backbone.parameters())


def test_concat_widens_the_head_and_zero_shot_refuses_a_learned_mix(four_block_bert):
    built = build(RunConfig.from_flat_dict({"model_name_or_path": four_block_bert, "strategy": "frozen",
                                            "layer": "concat_last4"}))
    assert built.model.heads["similarity"].net[1].in_features == 128
    with pytest.raises(HfTlError, match="layer weighted learns its mix"):
        build(RunConfig.from_flat_dict({"model_name_or_path": four_block_bert, "strategy": "zero_shot",
                                        "architecture": "bi_encoder", "head_type": "none", "layer": "weighted"}))
    with pytest.raises(HfTlError, match="layer must be one of"):
        RunConfig.from_flat_dict({"layer": "top"})


@pytest.mark.parametrize("strategy", ["full", "lora", "prompt_tuning"])
def test_a_layer_choice_trains_the_backbone_too(tiny_model, strategy):
    config = RunConfig.from_flat_dict({"model_name_or_path": tiny_model, "strategy": strategy,
                                       "layer": "second_to_last", "num_virtual_tokens": 4})
    built = build(config)
    tok = built.backbone.tokenizer
    batch = {k: torch.tensor(v) for k, v in tok(["one text here", "another"], padding=True).items()}
    built.model(labels=torch.tensor([0.3, 0.8]), **batch)["loss"].backward()
    trained = [n for n, p in built.model.backbone.named_parameters() if p.requires_grad and p.grad is not None
               and p.grad.abs().sum() > 0]
    assert trained, f"{strategy} with layer second_to_last sent no gradient into the backbone"
