"""init_from_run: a new task starts from a finished run's backbone, with a new head, and records the chain."""

import json

import pytest
import torch
from conftest import SST2_ARGS, backbone_state, run_recipe, tiny_args

import hf_tl
from hf_tl.runs import model_runs
from hf_tl.standard.one_copy import backbone_weights

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files


@pytest.fixture()
def capture_start(monkeypatch):
    """Record the model each run is built with, before its strategy is applied and before any step."""
    seen = {}
    original = model_runs.build

    def build(config, *args, **kwargs):
        built = original(config, *args, **kwargs)
        if kwargs.get("tokenizer_dir") is None:  # not the finished run read back (for its standard model)
            seen["backbone"] = {k: v.detach().clone() for k, v in built.model.backbone.state_dict().items()}
            seen["heads"] = list(built.model.heads)
        return built

    monkeypatch.setattr(model_runs, "build", build)
    return seen


def sentiment_run(model, out, *extra):
    run_recipe(tiny_args(model, out, *extra, train=16, dev=8, data=SST2_ARGS), recipe="sentiment")
    return out


def test_similarity_starts_from_a_sentiment_run_with_a_new_head(tiny_model, tmp_path, capture_start):
    first = sentiment_run(tiny_model, tmp_path / "sst2", "--strategy", "full")
    second = tmp_path / "stsb"
    run_recipe(tiny_args(tiny_model, second, "--init_from_run", str(first), "--model_name_or_path",
                         "sentence-transformers/all-MiniLM-L6-v2", train=16, dev=8))
    trained = backbone_state(first)
    assert trained.keys() == capture_start["backbone"].keys()
    for name, value in trained.items():  # the new run starts from exactly the intermediate run's backbone
        assert torch.equal(capture_start["backbone"][name], value), name
    assert capture_start["heads"] == ["similarity"]  # the sentiment head is gone
    assert sorted(p.name for p in (second / "heads").iterdir()) == ["similarity.safetensors"]
    chain = json.loads((second / "lineage.json").read_text())
    assert chain["base_checkpoint"]["model_name_or_path"] == tiny_model
    assert [r["path"] for r in chain["runs"]] == [str(first.resolve()), str(second.resolve())]
    assert chain["runs"][0]["tasks"] == {"classification": "classification"}
    assert chain["runs"][0]["results"]["eval_accuracy"] == json.loads((first / "eval_results.json").read_text())[
        "eval_accuracy"]
    assert hf_tl.load_config(second / "config.yaml").model.model_name_or_path == tiny_model


def test_a_lora_run_is_merged_and_a_frozen_transfer_run_reloads(tiny_model, tmp_path, capture_start):
    first = sentiment_run(tiny_model, tmp_path / "lora", "--strategy", "lora", "--learning_rate", "5e-2")
    from peft import PeftModel

    base = hf_tl.load_run(first).model.backbone
    assert isinstance(base, PeftModel)
    merged = base.merge_and_unload().state_dict()
    second = tmp_path / "frozen"
    results = run_recipe(tiny_args(tiny_model, second, "--init_from_run", str(first), "--strategy", "frozen",
                                   train=16, dev=8))
    start = capture_start["backbone"]
    assert start.keys() == merged.keys()
    assert all(torch.allclose(start[k], merged[k], atol=1e-6) for k in merged)
    # The backbone it started from is saved with the run, so the run reloads without the earlier one.
    assert backbone_weights(second).exists() and not (second / "adapter").exists()
    third = tmp_path / "lora_again"
    run_recipe(tiny_args(tiny_model, third, "--init_from_run", str(second), "--strategy", "lora", train=16, dev=8))
    assert [r["path"] for r in json.loads((third / "lineage.json").read_text())["runs"]] == [
        str(p.resolve()) for p in (first, second, third)]
    import shutil

    shutil.rmtree(first)
    predicted = hf_tl.load_run(second).predict([("a cat sits", "a cat is sitting")])
    assert len(predicted) == 1 and results["eval_samples"] == 8
    assert len(hf_tl.load_run(third).predict([("a", "b")])) == 1


def test_transfer_errors_are_one_sentence(tiny_bert, tmp_path, capsys):
    from test_errors import expect_user_error

    expect_user_error(tiny_args(tiny_bert, tmp_path / "a", "--init_from_run", str(tmp_path / "nowhere")),
                      "is not a finished hf_tl run", capsys)
    prompt = sentiment_run(tiny_bert, tmp_path / "prompt", "--strategy", "prompt_tuning", "--num_virtual_tokens", "2")
    expect_user_error(tiny_args(tiny_bert, tmp_path / "b", "--init_from_run", str(prompt)),
                      "cannot be merged into a backbone", capsys)
    full = sentiment_run(tiny_bert, tmp_path / "full")
    expect_user_error(tiny_args("gpt2", tmp_path / "c", "--init_from_run", str(full)),
                      "starts from .* but model_name_or_path is 'gpt2'; drop one", capsys)
