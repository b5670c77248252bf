"""--resume_from_checkpoint continues the same run: interrupted + resumed == uninterrupted."""

import json

import pytest
import torch
from conftest import backbone_state, run_recipe, tiny_args
from safetensors.torch import load_file

from hf_tl.training import loop

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files


def read_log(run):
    return [json.loads(line) for line in (run / "eval_log.jsonl").read_text().splitlines()]


def weights(run):
    tensors = load_file(str(run / "heads" / "similarity.safetensors"))
    tensors.update({f"backbone.{k}": v for k, v in backbone_state(run).items()})
    return tensors


EVAL_EVERY = [["--eval_strategy", "epoch"], ["--eval_strategy", "steps", "--eval_steps", "3"]]


@pytest.mark.parametrize("eval_every", EVAL_EVERY, ids=["at-epoch-end", "mid-epoch"])
def test_resumed_run_ends_like_an_uninterrupted_one(tiny_bert, tmp_path, monkeypatch, eval_every):
    common = ["--strategy", "full", "--num_train_epochs", "2", "--head_dropout", "0.2", *eval_every]
    full_run, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    run_recipe(tiny_args(tiny_bert, full_run, *common, train=32, dev=16))

    original = loop._evaluate_and_checkpoint

    def stop_after_first_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the first checkpoint")

    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", stop_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(tiny_args(tiny_bert, resumed, *common, train=32, dev=16))
    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", original)
    assert not (resumed / "eval_results.json").exists()
    assert len(read_log(resumed)) == 1

    run_recipe(tiny_args(tiny_bert, resumed, *common, "--resume_from_checkpoint", "latest", train=32, dev=16))
    expected, got = read_log(full_run), read_log(resumed)
    assert [r["step"] for r in got] == [r["step"] for r in expected] and len(got) >= 2
    for a, b in zip(expected, got):
        assert b["spearmanr"] == pytest.approx(a["spearmanr"], abs=1e-6)
        assert b["pearsonr"] == pytest.approx(a["pearsonr"], abs=1e-6)
    wa, wb = weights(full_run), weights(resumed)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=1e-6), name
    assert json.loads((resumed / "eval_results.json").read_text())["eval_spearmanr"] == pytest.approx(
        json.loads((full_run / "eval_results.json").read_text())["eval_spearmanr"], abs=1e-6)


def test_resumed_multitask_run_replays_the_same_schedule(tiny_bert, tmp_path, monkeypatch):
    from test_multitask import multitask_args

    common = ["--strategy", "full", "--num_train_epochs", "2", "--head_dropout", "0.2", "--eval_strategy", "steps",
              "--eval_steps", "5"]
    full_run, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    run_recipe(multitask_args(tiny_bert, full_run, *common), recipe="multitask")
    original = loop._evaluate_and_checkpoint

    def stop_after_first_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the first checkpoint")

    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", stop_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(multitask_args(tiny_bert, resumed, *common), recipe="multitask")
    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", original)
    run_recipe(multitask_args(tiny_bert, resumed, *common, "--resume_from_checkpoint", "latest"), recipe="multitask")
    expected, got = read_log(full_run), read_log(resumed)
    assert [r["step"] for r in got] == [r["step"] for r in expected] == [5, 10, 15, 20, 24]
    for a, b in zip(expected, got):
        for key in ("stsb/spearmanr", "mrpc/accuracy", "sst2/accuracy"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), key
    for name in ("stsb", "mrpc", "sst2"):
        wa, wb = (load_file(str(run / "heads" / f"{name}.safetensors")) for run in (full_run, resumed))
        assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa), name
