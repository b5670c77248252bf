"""The strategy x model-family matrix on tiny random BERT and GPT-2 backbones."""

import json

import numpy as np
import pytest
import torch
from conftest import run_recipe, tiny_args
from scipy import stats

import hf_tl
from hf_tl import RunConfig
from hf_tl.builder import build
from hf_tl.errors import HfTlError
from hf_tl.run_dir import RESULTS_FILE
from hf_tl.standard import root_model_info

STRATEGY_SETTINGS = {
    "frozen": {},
    "partial": {"num_layers": 1},
    "full": {},
    "gradual": {},
    "lora": {},
    "ia3": {},
    "prompt_tuning": {"num_virtual_tokens": 4},
    "prefix_tuning": {"num_virtual_tokens": 4},
}


def make(model_path: str, strategy: str, **extra) -> RunConfig:
    values = {"model_name_or_path": model_path, "strategy": strategy, **STRATEGY_SETTINGS.get(strategy, {}), **extra}
    return RunConfig.from_flat_dict(values)


def block_prefix(model) -> str:
    from hf_tl.layers import find_blocks

    return "backbone." + find_blocks(model.backbone)[0] + "."


def expected_trainable(model, strategy: str, stage: int | None = None) -> set[str]:
    """What must train, written from the strategy's definition (not from its code)."""
    names = [n for n, _ in model.named_parameters()]
    head = {n for n in names if n.startswith("heads.")}
    if strategy == "frozen":
        return head
    if strategy == "full":
        return set(names)
    if strategy in ("lora", "ia3", "prompt_tuning", "prefix_tuning"):
        marker = {"lora": ("lora_A", "lora_B"), "ia3": ("ia3_l",), "prompt_tuning": ("prompt_encoder",),
                  "prefix_tuning": ("prompt_encoder",)}[strategy]
        return head | {n for n in names if any(m in n for m in marker)}
    prefix = block_prefix(model)
    final_norm = {n for n in names if n.startswith(("backbone.ln_f.", "backbone.norm."))}
    top_block = {n for n in names if n.startswith(prefix + "1.")}
    bottom_block = {n for n in names if n.startswith(prefix + "0.")}
    if strategy == "partial":  # num_layers=1: the top block (and the final norm above it)
        return head | top_block | final_norm
    if strategy == "gradual":
        return [head, head | top_block | final_norm, head | top_block | final_norm | bottom_block][stage]
    raise AssertionError(strategy)


def batch_for(built, n: int = 8):
    from hf_tl.data import PaddingCollator

    texts = [f"a sentence number {i} about {'cats' if i % 2 else 'the stock market'}" for i in range(n)]
    pairs = [f"another text {i} on {'dogs' if i % 3 else 'trading'}" for i in range(n)]
    enc = built.tasks["similarity"].encode(texts, pairs)
    features = [{k: v[i] for k, v in enc.items()} | {"labels": (i % 4) / 3} for i in range(n)]
    tok = built.backbone.tokenizer
    return PaddingCollator(tok.pad_token_id, tok.padding_side)(features)


def run_steps(built, batch, steps: int, epoch: int = 0) -> list[float]:
    model, strategy = built.model, built.strategy
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    losses = []
    for step in range(steps):
        loss = model(**batch)["loss"]
        loss.backward()
        strategy.before_optimizer_step(model, step, epoch)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def snapshot(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(before: dict, model) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize("strategy", list(STRATEGY_SETTINGS))
def test_exactly_the_expected_parameters_train(tiny_model, strategy):
    torch.manual_seed(0)
    built = build(make(tiny_model, strategy))
    model = built.model
    stages = range(built.strategy.num_stages()) if strategy == "gradual" else [None]
    all_trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if strategy == "gradual":
        assert all_trainable == expected_trainable(model, strategy, stage=2)
    else:
        assert all_trainable == expected_trainable(model, strategy)
    batch = batch_for(built)
    for stage in stages:
        expected = expected_trainable(model, strategy, stage)
        before = snapshot(model)
        run_steps(built, batch, steps=3, epoch=stage or 0)
        moved = changed(before, model)
        assert moved <= expected, f"stage {stage}: {sorted(moved - expected)[:5]} changed but must be frozen"
        # Every trained part moved: the head, and each block that should train at this stage.
        for group in ("heads.", block_prefix(model) + "0.", block_prefix(model) + "1."):
            if any(n.startswith(group) for n in expected):
                assert any(n.startswith(group) for n in moved), f"stage {stage}: nothing under {group} trained"


@pytest.mark.parametrize("strategy", list(STRATEGY_SETTINGS))
def test_loss_goes_down_on_a_small_batch(tiny_model, strategy):
    torch.manual_seed(0)
    built = build(make(tiny_model, strategy, unfreeze_every="steps", unfreeze_steps=2))
    losses = run_steps(built, batch_for(built), steps=15)
    assert losses[-1] < 0.7 * losses[0], losses


def test_bi_encoder_full_and_lora_train_through_the_cosine_head(tiny_model):
    for strategy in ("full", "lora"):
        torch.manual_seed(0)
        built = build(make(tiny_model, strategy, architecture="bi_encoder", head_type="none"))
        assert not any(True for _ in built.model.heads.parameters())
        losses = run_steps(built, batch_for(built), steps=15)
        assert losses[-1] < losses[0], (strategy, losses)


def test_partial_with_explicit_layers_trains_those_blocks(tiny_bert):
    built = build(make(tiny_bert, "partial", layers="0", num_layers=None))
    prefix = block_prefix(built.model)
    trainable = {n for n, p in built.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in built.model.named_parameters()
                         if n.startswith("heads.") or n.startswith(prefix + "0.")}


def test_partial_asking_for_more_blocks_than_the_model_has_is_refused(tiny_gpt2):
    with pytest.raises(HfTlError, match="asks for the top 5 blocks, but the model has only 2"):
        build(make(tiny_gpt2, "partial", num_layers=5))


def test_gradual_auto_spreads_the_stages_over_the_first_half_of_training(tiny_bert):
    built = build(make(tiny_bert, "gradual", unfreeze_every="auto"))
    strategy = built.strategy  # tiny BERT: 2 blocks, so 3 stages and 2 unfreezings in the first half
    with pytest.raises(HfTlError, match="call plan"):
        strategy.stage_at(0, 0)
    strategy.plan(40)
    assert [strategy.stage_at(step, 0) for step in (0, 9, 10, 19, 20, 39)] == [0, 0, 1, 1, 2, 2]
    assert "every 10 steps" in strategy.describe()
    strategy.plan(3)  # a run with as many steps as stages still reaches the last one
    assert [strategy.stage_at(step, 0) for step in range(3)] == [0, 1, 2]


@pytest.mark.real_data
def test_gradual_auto_run_logs_every_stage_in_the_first_half(tiny_bert, tmp_path):
    out = tmp_path / "auto"  # 16 rows in batches of 8 for 4 epochs: 8 steps, 2 per stage in the first half
    run_recipe(tiny_args(tiny_bert, out, "--strategy", "gradual", "--unfreeze_every", "auto", "--num_train_epochs",
                         "4", train=16, dev=8))
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == [0, 1, 2, 2]  # the stage of each epoch's last step (steps 1, 3, 5, 7)
    assert "Unfreezing schedule (the stages spread evenly over the first half of training)" in \
        (out / "README.md").read_text()


def test_layerwise_decay_and_head_learning_rate_make_param_groups(tiny_bert):
    from hf_tl.optim import param_groups

    config = make(tiny_bert, "full", layerwise_lr_decay=0.5, head_learning_rate=1e-2, learning_rate=1e-3)
    built = build(config)
    groups = {g["name"]: g["lr"] for g in param_groups(built.model, config, layerwise=True)}
    assert groups["head"] == pytest.approx(1e-2)
    assert groups["depth1"] == pytest.approx(1e-3 * 0.5)  # top block: one step below the top
    assert groups["depth0"] == pytest.approx(1e-3 * 0.25)
    assert groups["depth-1/no_decay"] == pytest.approx(1e-3 * 0.125)  # embeddings, the lowest


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["frozen", "partial", "full", "gradual", "lora", "ia3", "prompt_tuning",
                                      "prefix_tuning"])
def test_save_load_run_predict_reproduces_the_dev_metrics(tiny_model, strategy, tmp_path):
    settings = [f"--{k}={v}" for k, v in STRATEGY_SETTINGS[strategy].items()]
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_model, out, "--strategy", strategy, *settings, train=16, dev=24))
    results = json.loads((out / RESULTS_FILE).read_text())
    run = hf_tl.load_run(out)
    from hf_tl.data.loading import read_file, resolve_data_file

    rows = read_file(resolve_data_file("stsb/dev.csv", None), ["sentence1", "sentence2", "score"]).select(range(24))
    dev = list(zip(rows["sentence1"], rows["sentence2"]))
    predictions = np.array(run.predict(dev, batch_size=7))
    assert predictions.shape == (24,)
    assert stats.spearmanr(rows["score"], predictions)[0] == pytest.approx(results["eval_spearmanr"], abs=1e-5)
    assert stats.pearsonr(rows["score"], predictions)[0] == pytest.approx(results["eval_pearsonr"], abs=1e-5)
    saved = {p.name for p in out.iterdir()}
    if strategy in ("lora", "ia3", "prompt_tuning", "prefix_tuning"):
        assert "adapter" in saved and "backbone" not in saved
    elif strategy == "frozen":
        assert "adapter" not in saved and "backbone" not in saved
    else:  # saved once: in backbone/, or in the root's standard model
        assert ("backbone" in saved) != bool(root_model_info(out).get("holds_backbone"))


def test_a_frozen_backbone_stays_in_eval_mode_while_the_head_trains(tiny_bert):
    built = build(make(tiny_bert, "frozen"))
    built.model.train()
    assert built.model.heads.training
    assert not any(m.training for m in built.model.backbone.modules())
