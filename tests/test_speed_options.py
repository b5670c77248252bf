"""Speed settings of the loop: measured throughput in the results, and torch.compile through Accelerate."""

import pytest
from conftest import run_recipe, tiny_args
from safetensors.torch import load_file

import hf_tl

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files


def test_results_report_training_throughput(tiny_bert, tmp_path):
    results = run_recipe(tiny_args(tiny_bert, tmp_path / "run", "--max_steps", "5", train=64, dev=8))
    assert results["train_loop_s"] > 0
    # 5 steps x 8 pairs, over the training loop's own time (evaluation and checkpoints excluded).
    loop_s = results["train_loop_s"]  # rounded to 0.01 s, which matters for a loop this short
    assert 40 / (loop_s + 0.005) <= results["train_samples_per_second"] <= 40 / max(loop_s - 0.005, 1e-9)
    tokens_per_pair = results["train_tokens_per_second"] / results["train_samples_per_second"]
    assert 10 < tokens_per_pair < 128  # real tokens of an STS-B pair (padding not counted), truncated at 128


def test_torch_compile_trains_and_saves_plain_weights(tiny_bert, tmp_path):
    out = tmp_path / "run"
    results = run_recipe(tiny_args(tiny_bert, out, "--torch_compile", "true", "--max_steps", "3", train=64, dev=8))
    assert results["best_step"] == 3
    keys = load_file(out / "model.safetensors").keys()  # the root's standard model holds the backbone
    assert keys and not any("_orig_mod" in k for k in keys)  # the compiled wrapper is not in the saved names
    assert len(hf_tl.load_run(out).predict([("a cat sits", "a cat is sitting")])) == 1
