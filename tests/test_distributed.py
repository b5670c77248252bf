"""Two processes through `accelerate launch` (gloo on CPU) give one run directory and the 1-process metrics.

On a machine without a GPU, `accelerate launch --multi_gpu --num_processes 2` starts two torch.distributed
processes and hf_tl's Accelerator runs them as MULTI_CPU over gloo. (`--cpu --num_processes 2` starts only one
process in Accelerate 1.x: its simple launcher ignores the count.)
"""

import json

import pytest
from conftest import launch_two_processes, run_recipe, tiny_args

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files

DEV = 25  # odd, so the distributed sampler pads the last batch with repeats that must not be counted


def log_of(run):
    return [json.loads(line) for line in (run / "eval_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["full", "gradual", "lora"])
def test_two_processes_match_one(tiny_bert, tmp_path, strategy):
    extra = ["--strategy", strategy, "--num_train_epochs", "2", "--head_dropout", "0.0", "--unfreeze_every", "steps",
             "--unfreeze_steps", "2"]
    single, double = tmp_path / "one_process", tmp_path / "two_processes"
    run_recipe(tiny_args(tiny_bert, single, *extra, "--per_device_train_batch_size", "8", train=32, dev=DEV))
    # Same effective batch: 2 processes x 4.
    argv = tiny_args(tiny_bert, double, *extra, train=32, dev=DEV)
    argv[argv.index("--per_device_train_batch_size") + 1] = "4"
    launch_two_processes("text_similarity", argv, tmp_path)
    assert json.loads((double / "eval_results.json").read_text())["num_processes"] == 2
    assert json.loads((single / "eval_results.json").read_text())["num_processes"] == 1

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["one_process", "two_processes"]
    one, two = log_of(single), log_of(double)
    assert [r["step"] for r in two] == [r["step"] for r in one] == [4, 8]  # 32 samples / 8 per step, 2 epochs
    for a, b in zip(one, two):
        assert b["eval_samples"] == DEV  # every dev example exactly once, the padding repeats dropped
        assert b["spearmanr"] == pytest.approx(a["spearmanr"], abs=2e-3)
        assert b["pearsonr"] == pytest.approx(a["pearsonr"], abs=2e-3)
    saved = "adapter/adapter_model.safetensors" if strategy == "lora" else "model.safetensors"  # the root holds it
    assert (double / "eval_results.json").is_file() and (double / saved).is_file()


def test_checkpoint_of_two_processes_resumes_in_one(tiny_bert, tmp_path):
    # A constant learning rate, so that stopping at step 4 and going on to step 8 is the same run as 8 steps.
    common = ["--strategy", "full", "--head_dropout", "0.0", "--lr_scheduler_type", "constant", "--warmup_ratio",
              "0", "--eval_strategy", "steps", "--eval_steps", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_recipe(tiny_args(tiny_bert, straight, *common, "--max_steps", "8", train=32, dev=DEV))
    argv = tiny_args(tiny_bert, resumed, *common, "--max_steps", "4", train=32, dev=DEV)
    argv[argv.index("--per_device_train_batch_size") + 1] = "4"  # 2 processes x 4 = the 1-process batch of 8
    launch_two_processes("text_similarity", argv, tmp_path)
    assert [r["step"] for r in log_of(resumed)] == [2, 4]
    run_recipe(tiny_args(tiny_bert, resumed, *common, "--max_steps", "8", "--resume_from_checkpoint", "latest",
                         train=32, dev=DEV))
    one, two = log_of(straight), log_of(resumed)
    assert [r["step"] for r in two] == [r["step"] for r in one] == [2, 4, 6, 8]
    for a, b in zip(one, two):
        assert b["spearmanr"] == pytest.approx(a["spearmanr"], abs=2e-3)
    assert json.loads((resumed / "eval_results.json").read_text())["num_processes"] == 1
