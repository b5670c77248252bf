"""A run keeps exactly the checkpoints its settings ask for, restores its best weights from whichever kind it wrote,
and stores its model once."""

import json

import pytest
import torch
from conftest import backbone_state, run_recipe, tiny_args, train_argv

import hf_tl
from hf_tl.errors import HfTlError
from hf_tl.metrics import Evaluator
from hf_tl.standard import root_model_info
from hf_tl.training import loop

pytestmark = pytest.mark.real_data

# Constant learning rate, no warm-up: the first steps of a long run are those of a short one.
COMMON = ["--strategy", "full", "--lr_scheduler_type", "constant", "--warmup_ratio", "0", "--eval_strategy", "steps",
          "--eval_steps", "2", "--max_steps", "6"]


def checkpoints(run) -> list[str]:
    folder = run / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_finished_run_keeps_one_resumable_checkpoint_by_default(tiny_bert, tmp_path):
    run = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, run, *COMMON, train=48, dev=8))
    assert checkpoints(run) == ["checkpoint-6"]
    kept = {p.name for p in (run / "checkpoints" / "checkpoint-6").iterdir()}
    assert {"optimizer.bin", "scheduler.bin", "model.safetensors"} <= kept
    # The model is stored once: the root's standard model holds the backbone, so there is no backbone/ copy.
    assert root_model_info(run)["holds_backbone"] and not (run / "backbone").exists()
    # The kept checkpoint continues the finished run.
    run_recipe(tiny_args(tiny_bert, run, *COMMON[:-1], "8", "--resume_from_checkpoint", "latest", train=48, dev=8))
    assert checkpoints(run) == ["checkpoint-8"]
    assert [e["step"] for e in map(json.loads, (run / "eval_log.jsonl").read_text().splitlines())] == [2, 4, 6, 8]


def test_save_total_limit_0_keeps_none_and_writes_no_final_one(tiny_bert, tmp_path, monkeypatch):
    written = []
    original = loop._save_checkpoint
    monkeypatch.setattr(loop, "_save_checkpoint", lambda *a, **k: (written.append(a[3].name), original(*a, **k)))
    run = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, run, *COMMON, "--save_total_limit", "0", train=48, dev=8))
    assert written == ["checkpoint-2", "checkpoint-4"]  # the last evaluation's weights are exported, not written
    assert not (run / "checkpoints").exists()
    with pytest.raises(HfTlError, match="save_total_limit 0 keeps none"):
        train_argv(tiny_args(tiny_bert, run, *COMMON[:-1], "8", "--resume_from_checkpoint", "latest", train=48,
                             dev=8), task="similarity")


class FirstIsBest(Evaluator):
    """Scores every evaluation lower than the one before, so the first checkpoint is the best."""

    calls = 0

    def __call__(self, predictions, references):
        FirstIsBest.calls += 1
        return {"pearsonr": 0.0, "spearmanr": 1.0 / FirstIsBest.calls}


@pytest.mark.parametrize("only_model", ["false", "true"], ids=["full-state", "weights-only"])
def test_the_best_checkpoint_is_restored(tiny_bert, tmp_path, monkeypatch, only_model):
    short = tmp_path / "two_steps"
    run_recipe(tiny_args(tiny_bert, short, *COMMON[:-1], "2", train=48, dev=8))
    from hf_tl.tasks.similarity import SimilarityTask

    FirstIsBest.calls = 0
    monkeypatch.setattr(SimilarityTask, "evaluator", lambda self: FirstIsBest(["pearsonr"], "spearmanr"))
    run = tmp_path / "run"
    results = run_recipe(tiny_args(tiny_bert, run, *COMMON, "--save_only_model", only_model, train=48, dev=8))
    assert results["best_step"] == 2
    # The exported weights are those of step 2 (as a run of 2 steps ends with), not of step 6.
    best, exported = backbone_state(short), backbone_state(run)
    assert best.keys() == exported.keys()
    assert all(torch.equal(best[k], exported[k]) for k in best)
    # Weights-only checkpoints served picking the best; a finished run keeps none of them.
    assert checkpoints(run) == ([] if only_model == "true" else ["checkpoint-6"])


def test_a_weights_only_checkpoint_is_not_resumed(tiny_bert, tmp_path, monkeypatch):
    original = loop._evaluate_and_checkpoint

    def stop_after_first_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the first checkpoint")

    monkeypatch.setattr(loop, "_evaluate_and_checkpoint", stop_after_first_checkpoint)
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, *COMMON, "--save_only_model", "true", train=48, dev=8)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(argv)
    assert checkpoints(run) == ["checkpoint-2"]
    assert set(p.name for p in (run / "checkpoints" / "checkpoint-2").iterdir()) == {"model.safetensors",
                                                                                     "trainer_state.json"}
    with pytest.raises(HfTlError, match="save_only_model"):
        train_argv([*argv, "--resume_from_checkpoint", "latest"], task="similarity")
    with pytest.raises(HfTlError, match="holds the weights only"):
        train_argv([*argv, "--resume_from_checkpoint", str(run / "checkpoints" / "checkpoint-2")], task="similarity")


def test_a_run_loads_from_its_root_when_the_root_holds_the_backbone(tiny_bert, tmp_path):
    run = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, run, "--strategy", "full", "--max_steps", "2", "--save_total_limit", "0",
                         train=16, dev=8))
    from sentence_transformers import CrossEncoder

    pairs = [("A man is playing a guitar.", "A man plays a guitar."), ("A cat sleeps.", "Stocks fell sharply.")]
    ours = hf_tl.load_run(run).predict(pairs)
    theirs = CrossEncoder(str(run)).predict(pairs)
    assert ours == pytest.approx([float(x) for x in theirs], abs=1e-5)
    assert not (run / "backbone").exists() and not (run / "checkpoints").exists()
