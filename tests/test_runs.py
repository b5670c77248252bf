"""Run kinds: each kind leaves the same record files the same way; the training log; CPU threads under a launcher."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SST2_ARGS, run_recipe, tiny_args

import hf_tl
from hf_tl.runs import RUN_KINDS
from hf_tl.strategies import STRATEGIES, get_strategy
from hf_tl.training import loop

RECORD = {"config.yaml", "lineage.json", "trainable_parameters.json", "trainable_parameters.txt", "eval_log.jsonl",
          "train_log.jsonl", "eval_results.json", "training_info.json", "README.md", "tokenizer"}
RESULTS_KEYS = {"best_step", "metric_for_best_model", "greater_is_better", "eval_accuracy", "eval_f1",
                "eval_samples", "train_runtime_s", "num_processes", "train_samples"}

# One strategy per run kind, on SST-2 (single-text classification, which every kind runs).
KINDS = {
    "trained": ["--strategy", "frozen"],
    "fitted": ["--strategy", "features"],
    "evaluated": ["--strategy", "zero_shot"],
    "nli": ["--strategy", "zero_shot", "--zero_shot_method", "nli"],
    "chained": ["--strategy", "setfit", "--few_shot_k", "4", "--setfit_num_iterations", "2"],
}


def test_every_strategy_names_a_registered_run_kind():
    from hf_tl.config import StrategyArguments

    needs = {"partial": {"num_layers": 1}, "ensemble": {"ensemble_members": ["a"]}}
    kinds = {get_strategy(StrategyArguments(strategy=name, **needs.get(name, {}))).run_kind for name in STRATEGIES}
    # The ensemble kind needs finished members, so its record is checked in test_ensemble.
    assert kinds <= set(RUN_KINDS) and kinds == set(KINDS) - {"nli"} | {"ensemble"}
    assert get_strategy(StrategyArguments(strategy="zero_shot", zero_shot_method="nli")).run_kind == "nli"


@pytest.mark.real_data
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_run_kind_writes_the_same_record(kind, tiny_bert, tiny_nli, tmp_path, capsys):
    out = tmp_path / kind
    model = tiny_nli if kind == "nli" else tiny_bert
    results = run_recipe(tiny_args(model, out, *KINDS[kind], train=64, dev=16, data=SST2_ARGS), recipe="sentiment")
    printed = capsys.readouterr().out.strip().splitlines()
    runs = [out] + ([out.with_name(out.name + "-body")] if kind == "chained" else [])
    for run in runs:
        assert RECORD <= {p.name for p in run.iterdir()}, run
        info = json.loads((run / "training_info.json").read_text())
        assert {"param_groups", "optimizer_steps", "epochs", "hardware", "versions"} <= set(info)
        assert info["hardware"]["cpu_threads"] >= 1
        report = json.loads((run / "trainable_parameters.json").read_text())
        assert {"strategy", "description", "trainable", "total", "percent", "parts", "stages"} <= set(report)
        learns_by_gradient = kind == "trained" or run.name.endswith("-body")
        assert (report["trainable"] > 0) == learns_by_gradient and report["total"] > 0
        log = [json.loads(line) for line in (run / "eval_log.jsonl").read_text().splitlines()]
        assert log and all({"step", "epoch"} <= set(r) for r in log)
    assert RESULTS_KEYS <= set(results) and json.loads((out / "eval_results.json").read_text()) == results
    # The run's last line says where it is and how to load it.
    assert printed[-1].startswith(f"Run saved to {out} (dev accuracy ") and "hf_tl.load_run(" in printed[-1]
    assert len(hf_tl.load_run(out).predict(["a fine film", "a dull film"])) == 2


@pytest.mark.real_data
def test_train_log_records_each_logged_loss_and_survives_a_resume(tiny_bert, tmp_path, monkeypatch):
    common = ["--strategy", "full", "--num_train_epochs", "2", "--eval_strategy", "steps", "--eval_steps", "3"]
    full_run, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    run_recipe(tiny_args(tiny_bert, full_run, *common, train=32, dev=16))
    log = [json.loads(line) for line in (full_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))  # 32 rows / 8 per batch, 2 epochs, logging_steps 1
    assert all(isinstance(r["train_loss"], float) and r["learning_rate"] >= 0 for r in log)
    assert [r["epoch"] for r in log] == [0, 0, 0, 0, 1, 1, 1, 1]  # the epoch each step belongs to

    original = loop._log_loss

    def crash_after_logging_step_5(accelerator, setup, state, *args, **kwargs):
        loss = original(accelerator, setup, state, *args, **kwargs)
        if state.global_step == 5:  # after the checkpoint of step 3, before the one of step 6
            raise KeyboardInterrupt("simulated crash")
        return loss

    monkeypatch.setattr(loop, "_log_loss", crash_after_logging_step_5)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(tiny_args(tiny_bert, resumed, *common, train=32, dev=16))
    monkeypatch.setattr(loop, "_log_loss", original)
    assert len((resumed / "train_log.jsonl").read_text().splitlines()) == 5
    run_recipe(tiny_args(tiny_bert, resumed, *common, "--resume_from_checkpoint", "latest", train=32, dev=16))
    got = [json.loads(line) for line in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got] == list(range(1, 9))  # steps 4 and 5 of the crashed run are not kept twice
    for a, b in zip(log, got):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5)


@pytest.mark.real_data
@pytest.mark.slow
def test_launched_run_on_cpu_uses_every_core(tiny_bert, tmp_path):
    """accelerate launch sets OMP_NUM_THREADS=1 on a machine without a GPU; a single process still uses all cores."""
    out = tmp_path / "launched"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "recipes" / "text_similarity.py"),
           *tiny_args(tiny_bert, out, train=16, dev=8)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hardware = json.loads((out / "training_info.json").read_text())["hardware"]
    cores = len(os.sched_getaffinity(0))
    assert hardware["cpu_cores"] == cores and hardware["cpu_threads"] == cores
    # Said otherwise, it is kept (in this process: the count is put back for the tests that follow).
    import torch

    before = torch.get_num_threads()
    try:
        run_recipe(tiny_args(tiny_bert, tmp_path / "one", "--cpu_threads", "1", train=16, dev=8))
    finally:
        torch.set_num_threads(before)
    assert json.loads((tmp_path / "one" / "training_info.json").read_text())["hardware"]["cpu_threads"] == 1


PAIRS = [("A man is playing a guitar.", "A man plays a guitar."), ("A cat sleeps.", "Stocks fell sharply."),
         ("Two dogs run across a wide green field in the afternoon sun, chasing a red ball.", "Dogs play."),
         ("Hi.", "Hello."), ("The committee approved the budget after a long debate about schools.", "It passed.")]


@pytest.mark.real_data
@pytest.mark.parametrize("case", ["cross_encoder", "bi_encoder", "gpt2_classification"])
def test_batched_predictions_equal_one_at_a_time(tiny_bert, tiny_gpt2, tmp_path, case):
    """Prediction sorts inputs by length into batches and puts the outputs back in order: the same numbers as one
    input per forward pass (no padding at all), in the inputs' order."""
    run = tmp_path / case
    if case == "gpt2_classification":  # left padding and last-token pooling
        run_recipe(tiny_args(tiny_gpt2, run, "--max_steps", "1", train=16, dev=8, data=SST2_ARGS), recipe="sentiment")
        inputs = [text for pair in PAIRS for text in pair]
    else:
        run_recipe(tiny_args(tiny_bert, run, "--max_steps", "1", "--architecture", case, train=16, dev=8))
        inputs = PAIRS * 3
    loaded = hf_tl.load_run(run)
    alone = np.concatenate([loaded.predict_raw([item], batch_size=1) for item in inputs])
    batched = loaded.predict_raw(inputs, batch_size=4)
    assert batched.shape == alone.shape
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5)
    np.testing.assert_allclose(loaded.predict_raw(inputs[::-1], batch_size=4), batched[::-1], rtol=0, atol=1e-5)


def test_results_are_those_of_the_kept_checkpoint_even_when_an_earlier_evaluation_scored_the_same():
    from hf_tl.runs.record import best_results

    history = [{"step": 2, "stage": 0, "spearmanr": 0.5}, {"step": 4, "stage": 1, "spearmanr": 0.5, "loss": 1.0}]
    results = best_results(history, 4, "spearmanr", True)
    assert results["best_step"] == 4 and results["eval_loss"] == 1.0
    assert best_results(history, None, "spearmanr", True)["best_step"] == 4  # none best: the last
