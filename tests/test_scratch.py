"""Strategies that start from random weights: scratch and greedy layer-wise training."""

import json

import pytest
import torch
from conftest import lm_args, log_of, run_recipe

from hf_tl.builder import build
from hf_tl.config_io import parse_args
from hf_tl.errors import HfTlError
from hf_tl.layers import find_blocks
from hf_tl.strategies import strategy_class


@pytest.fixture(scope="module")
def trained_looking_bert(tmp_path_factory, tiny_bert):
    """tiny_bert with every weight moved off its initial value (norms no longer exactly 1 and 0), as a pretrained
    checkpoint's are."""
    from transformers import AutoModel, AutoTokenizer

    path = tmp_path_factory.mktemp("perturbed")
    model = AutoModel.from_pretrained(tiny_bert)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(path)
    return str(path)


def similarity_args(model, *extra):
    return ["--model_name_or_path", model, "--task", "similarity", "--train_file", "x.csv", "--validation_file",
            "x.csv", "--output_dir", "/tmp/unused", *extra]


def test_scratch_keeps_no_weight_of_the_checkpoint(trained_looking_bert):
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(trained_looking_bert).state_dict()
    torch.manual_seed(0)
    built = build(parse_args(similarity_args(trained_looking_bert, "--strategy", "scratch")))
    scratch = built.model.backbone.state_dict()
    assert built.backbone.random_init and all(p.requires_grad for p in built.model.parameters())
    shared = [k for k in scratch if k in pretrained and scratch[k].shape == pretrained[k].shape]
    assert len(shared) == len(scratch)  # the same architecture...
    assert not [k for k in shared if torch.equal(scratch[k], pretrained[k])]  # ...and none of its weights
    # The same seed draws the same random model (a run seeds before it builds).
    torch.manual_seed(0)
    again = build(parse_args(similarity_args(trained_looking_bert, "--strategy", "scratch"))).model.backbone
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in scratch.items())


def test_config_overrides_shape_a_smaller_model_with_the_same_tokenizer(tiny_bert):
    built = build(parse_args(similarity_args(tiny_bert, "--strategy", "scratch", "--config_overrides",
                                             "num_hidden_layers=1,hidden_size=16,intermediate_size=32")))
    config = built.model.backbone.config
    assert (config.num_hidden_layers, config.hidden_size) == (1, 16)
    assert config.vocab_size == built.backbone.tokenizer.vocab_size
    with pytest.raises(HfTlError, match="'num_blocks', which the bert config does not have"):
        build(parse_args(similarity_args(tiny_bert, "--strategy", "scratch", "--config_overrides", "num_blocks=2")))
    with pytest.raises(HfTlError, match="not key=value"):
        parse_args(similarity_args(tiny_bert, "--strategy", "scratch", "--config_overrides", "num_hidden_layers"))


def test_scratch_joins_a_comparison_with_a_larger_step(tiny_bert):
    config = parse_args(similarity_args(tiny_bert))
    assert strategy_class("scratch").compare_flags(config) == ["--learning_rate", "1e-4"]
    with pytest.raises(HfTlError, match="init_from_run has nothing to give it"):
        parse_args(similarity_args(tiny_bert, "--strategy", "scratch", "--init_from_run", "/tmp"))


@pytest.mark.parametrize("task", ["similarity", "masked_lm"])
def test_greedy_layerwise_runs_and_trains_exactly_the_new_block_at_each_stage(four_block_bert, corpus, task):
    args = lm_args(four_block_bert, corpus, "/tmp/unused", task) if task == "masked_lm" else \
        similarity_args(four_block_bert)
    built = build(parse_args([*args, "--strategy", "greedy_layerwise", "--greedy_stage_steps", "3"]))
    model, strategy = built.model, built.strategy
    blocks_name, blocks = find_blocks(model.backbone)
    ran = []
    for i, block in enumerate(blocks):  # a skipped block is called but computes nothing: watch its first part
        next(block.children()).register_forward_hook(lambda module, inputs, output, i=i: ran.append(i))
    ids = torch.tensor([[101, 2000, 2001, 2002, 102], [101, 2003, 2004, 2005, 102]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if task == "masked_lm":
        batch["lm_labels"] = torch.where(torch.arange(5) == 2, ids, -100)
        batch["labels"] = torch.ones(2)
    else:
        batch.update(input_ids_b=ids, attention_mask_b=torch.ones_like(ids))
        batch["labels"] = torch.tensor([0.2, 0.9])
    head = {f"heads.{n}" for n, _ in model.heads.named_parameters()}
    for stage in range(5):
        step = 3 * stage
        strategy.on_step(model, step, 0)
        ran.clear()
        model.zero_grad(set_to_none=True)
        model(task=task, **batch)["loss"].backward()
        strategy.before_optimizer_step(model, step, 0)
        changed = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        expected_depth = {stage} | ({-1} if stage == 0 else set())
        if stage == 4:  # the last stage: everything, every block
            assert set(ran) == {0, 1, 2, 3} and changed >= {n for n, _ in model.named_parameters()
                                                             if n.startswith("backbone.") and ".pooler" not in n}
            continue
        assert sorted(set(ran)) == list(range(stage + 1)), stage  # the blocks built so far, and no more
        backbone = {n for n in changed if n.startswith("backbone.")}
        depths = {strategy._depth_of[n] for n in backbone}
        assert depths <= expected_depth | {4} and stage in depths, (stage, depths)
        assert head & changed, "the head trains at every stage"


def test_greedy_layerwise_end_to_end_picks_its_best_from_the_last_stage(tiny_bert, corpus, tmp_path):
    out = tmp_path / "greedy"
    run_recipe(lm_args(tiny_bert, corpus, out, "masked_lm", "--strategy", "greedy_layerwise", "--greedy_stage_steps",
                       "4", "--max_steps", "14", "--eval_strategy", "steps", "--eval_steps", "2"), "pretrain")
    log = log_of(out)
    assert [r["stage"] for r in log] == [0, 0, 1, 1, 2, 2, 2]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["best_step"] in (10, 12, 14)  # never an earlier stage's model, which has fewer blocks
    with pytest.raises(SystemExit):  # too few steps for its stages: one sentence, before training
        run_recipe(lm_args(tiny_bert, corpus, tmp_path / "short", "masked_lm", "--strategy", "greedy_layerwise",
                           "--greedy_stage_steps", "10", "--max_steps", "15"), "pretrain")


def test_supervised_greedy_layerwise_stacks_blocks_under_a_task_head_then_fine_tunes_all(tiny_bert, pairs_csv,
                                                                                        tmp_path):
    from conftest import pair_data, tiny_args

    out = tmp_path / "greedy_sts"
    run_recipe(tiny_args(tiny_bert, out, "--strategy", "greedy_layerwise", "--greedy_stage_steps", "2", "--max_steps",
                         "8", "--eval_strategy", "steps", "--eval_steps", "2",
                         data=[*pair_data(pairs_csv), "--label_column", "score"]))
    log = log_of(out)
    assert [r["stage"] for r in log] == [0, 1, 2, 2]  # a block, the next on top, then everything (fine-tuning)
    assert "spearmanr" in log[0]  # the task's head and metric from the first stage on
    assert json.loads((out / "eval_results.json").read_text())["best_step"] in (6, 8)
    from conftest import backbone_state
    from transformers import AutoModel

    start, trained = AutoModel.from_pretrained(tiny_bert).state_dict(), backbone_state(out)
    for block in range(2):  # the saved model holds every block, each trained
        names = [n for n in trained if n.startswith(f"encoder.layer.{block}.")]
        assert names and any(not torch.equal(trained[n], start[n]) for n in names), block


def test_compare_ranks_pretraining_runs_by_perplexity_lower_first(tiny_bert, corpus, tmp_path):
    import csv

    from hf_tl.cli import main as cli

    config = tmp_path / "lm.yaml"
    config.write_text(f"""model_name_or_path: {tiny_bert}
task: masked_lm
train_file: {corpus / 'train.tokens'}
validation_file: {corpus / 'valid.tokens'}
max_length: 32
per_device_train_batch_size: 8
learning_rate: 0.002
num_train_epochs: 1
strategy: full
output_dir: unused
""")
    folder = tmp_path / "cmp"
    cli(["compare", str(config), "--strategies", "full,scratch", "--seeds", "1", "--output_dir", str(folder),
         "--bootstrap", "200"])
    rows = {r["strategy"]: r for r in csv.DictReader((folder / "table.csv").open())}
    for strategy in ("full", "scratch"):
        run = json.loads((folder / "runs" / strategy / "seed-42" / "eval_results.json").read_text())
        assert float(rows[strategy]["mean"]) == pytest.approx(run["eval_perplexity"])
    best = min(rows, key=lambda s: float(rows[s]["mean"]))  # perplexity: lower is better
    line = next(r for r in (folder / "table.md").read_text().splitlines() if r.startswith(f"| {best} |"))
    assert line.endswith("| best |") and "dev perplexity" in (folder / "table.md").read_text()
