"""Faults lose nothing: a training process killed (SIGKILL) while it writes a checkpoint, while it exports, or in
mid-epoch resumes to the run an uninterrupted one ends with; a full disk ends in one sentence and stays resumable;
two runs in one folder cannot both write; a diverging run stops; no mixed run ever loads."""

import errno
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, run_recipe, tiny_args
from safetensors.torch import load_file
from test_errors import expect_user_error, tree_digest
from test_resume import read_log, weights

sys.path.insert(0, str(REPO / "benchmarks"))
from faults import CHILD  # noqa: E402  (the benchmark's fault injector, so both inject faults alike)

pytestmark = pytest.mark.real_data  # every test here trains on the real data files

# 2 epochs of 4 steps, evaluated (and checkpointed) every 3 steps: checkpoints 3, 6 and 8.
COMMON = ["--strategy", "full", "--num_train_epochs", "2", "--eval_strategy", "steps", "--eval_steps", "3"]
SIZE = {"train": 32, "dev": 16}

def child(argv, module, attr, at=1, match="", pause="", tmp_path=None, wait=True):
    """Run the text_similarity recipe in a child process, SIGKILLed (or paused) at the ``at``-th call of
    ``module.attr`` whose arguments mention ``match`` (the fault injector of benchmarks/faults.py)."""
    script = tmp_path / f"child_{time.monotonic_ns()}.py"
    script.write_text(CHILD.format(module=module, attr=attr, match=match, at=at, pause=str(pause),
                                   recipe=str(REPO / "recipes" / "text_similarity.py"), argv=[str(a) for a in argv]))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    if not wait:
        return proc
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def assert_same_run(expected, got):
    """The same evaluations and bit-identical weights."""
    assert [r["step"] for r in read_log(got)] == [r["step"] for r in read_log(expected)]
    for a, b in zip(read_log(expected), read_log(got)):
        assert a["spearmanr"] == b["spearmanr"] and a["pearsonr"] == b["pearsonr"], (a, b)
    wa, wb = weights(expected), weights(got)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert json.loads((got / "eval_results.json").read_text())["eval_spearmanr"] == \
        json.loads((expected / "eval_results.json").read_text())["eval_spearmanr"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert, tmp_path_factory):
    run = tmp_path_factory.mktemp("faults") / "uninterrupted"
    run_recipe(tiny_args(tiny_bert, run, *COMMON, **SIZE))
    return run


# Where the kill lands: (function, the call that is killed, text its arguments contain).
KILLS = {
    "checkpoint-model-written": ("accelerate.checkpointing", "save", 2, "optimizer"),
    "checkpoint-optimizer-written": ("accelerate.checkpointing", "save", 2, "scheduler"),
    "checkpoint-before-trainer-state": ("hf_tl.training.state", "TrainState.save", 2, ""),
    "checkpoint-before-rename": ("hf_tl.training.loop", "commit_checkpoint", 2, ""),
    "checkpoint-before-prune": ("hf_tl.training.loop", "prune_checkpoints", 2, ""),
    "mid-epoch": ("hf_tl.training.loop", "_micro_step", 5, ""),
}


@pytest.mark.parametrize("module, attr, at, match", KILLS.values(), ids=KILLS.keys())
def test_killed_run_resumes_to_the_uninterrupted_run(tiny_bert, tmp_path, uninterrupted, module, attr, at, match,
                                                     capsys):
    run = tmp_path / "killed"
    argv = tiny_args(tiny_bert, run, *COMMON, **SIZE)
    code, err = child(argv, module, attr, at, match, tmp_path=tmp_path)
    assert code == -9, err[-2000:]
    assert not (run / "eval_results.json").exists()
    with pytest.raises(Exception, match="unfinished run"):
        __import__("hf_tl").load_run(run)
    run_recipe([*argv, "--resume_from_checkpoint", "latest"])
    assert "Resumed from" in capsys.readouterr().out
    assert_same_run(uninterrupted, run)
    assert not [p.name for p in run.rglob("*") if ".partial" in p.name or ".tmp-" in p.name]
    assert not (run / ".hf_tl.lock").exists()


def test_killed_export_leaves_an_unfinished_run_that_resumes(tiny_bert, tmp_path, capsys):
    """Continuing a finished run (more epochs), killed while the new weights replace the old: it must not load as a
    mix of the new backbone and the old head, and resuming ends where the uninterrupted continuation ends."""
    one_epoch = [a if a != "2" else "1" for a in COMMON]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for run in (reference, killed):
        run_recipe(tiny_args(tiny_bert, run, *one_epoch, **SIZE))
    more = [*COMMON, "--resume_from_checkpoint", "latest"]
    run_recipe(tiny_args(tiny_bert, reference, *more, **SIZE))
    code, err = child(tiny_args(tiny_bert, killed, *more, **SIZE), "hf_tl.training.export", "save_heads",
                      tmp_path=tmp_path)
    assert code == -9, err[-2000:]
    assert not (killed / "eval_results.json").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        __import__("hf_tl.cli").cli.main(["predict", "--run", str(killed), "--input", str(tmp_path / "in.csv"),
                                          "--output", str(tmp_path / "out.csv")])
    assert exit_.value.code == 2
    assert "is an unfinished run" in capsys.readouterr().err
    run_recipe(tiny_args(tiny_bert, killed, *more, **SIZE))
    assert_same_run(reference, killed)


def small_filesystem(path, megabytes: int) -> bool:
    """Mount a size-limited tmpfs at ``path`` (root only); False where that is not possible."""
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_full_disk_ends_in_one_sentence_and_stays_resumable(tiny_bert, tmp_path, uninterrupted, capsys):
    disk = tmp_path / "small"
    # One checkpoint of the tiny BERT (weights and AdamW state) is about 13 MB: the second one cannot fit in 20.
    if not small_filesystem(disk, 20):
        pytest.skip("mounting a size-limited filesystem needs root; test_injected_full_disk covers the same path")
    try:
        run = disk / "run"
        argv = tiny_args(tiny_bert, run, *COMMON, **SIZE)
        expect_user_error(argv, r"no space left on .*small while writing .*checkpoint-6; free space and rerun "
                                r"with --resume_from_checkpoint latest\.$", capsys)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-3"]
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        run_recipe([*argv, "--resume_from_checkpoint", "latest"])
        assert_same_run(uninterrupted, run)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("writer", ["checkpoint", "export", "log"])
def test_injected_full_disk(tiny_bert, tmp_path, uninterrupted, monkeypatch, capsys, writer):
    """Where no small filesystem can be mounted (not root), the writers get ENOSPC injected: the same sentence."""
    import accelerate.checkpointing

    from hf_tl.runs import record
    from hf_tl.training import export

    calls = []

    def full_on(nth, original, match=""):
        def write(*args, **kwargs):
            if match in repr(args):
                calls.append(1)
                if len(calls) == nth:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return original(*args, **kwargs)
        return write

    if writer == "checkpoint":  # the optimizer state of the second checkpoint
        monkeypatch.setattr(accelerate.checkpointing, "save", full_on(2, accelerate.checkpointing.save, "optimizer"))
    elif writer == "export":
        monkeypatch.setattr(export, "save_heads", full_on(1, export.save_heads))
    else:  # a line of the eval log, after the second checkpoint
        monkeypatch.setattr(record, "append_jsonl", full_on(2, record.append_jsonl, "eval_log"))
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, *COMMON, **SIZE)
    expect_user_error(argv, r"no space left on /.* while writing .*; free space and rerun with "
                            r"--resume_from_checkpoint latest\.$", capsys)
    monkeypatch.undo()
    assert not (run / "eval_results.json").exists()
    run_recipe([*argv, "--resume_from_checkpoint", "latest"])
    assert_same_run(uninterrupted, run)


# Where the first run is held while the second starts: before it wrote anything (the folder holds only its lock,
# so the second passes every check but the lock), and in mid-training.
HOLD = {"before-writing": ("hf_tl.runs.model_runs", "resolve_config", "is in use by another run"),
        "mid-training": ("hf_tl.training.loop", "_evaluate_and_checkpoint", "already holds a run")}


@pytest.mark.parametrize("module, attr, plain_refusal", HOLD.values(), ids=HOLD.keys())
def test_two_runs_into_one_folder(tiny_bert, tmp_path, uninterrupted, capsys, module, attr, plain_refusal):
    """The second run stops at once (with --overwrite_output_dir or a resume too) and changes nothing of the first,
    which ends as if it had run alone."""
    run = tmp_path / "shared"
    argv = tiny_args(tiny_bert, run, *COMMON, **SIZE)
    first = child(argv, module, attr, pause=tmp_path, tmp_path=tmp_path, wait=False)
    try:
        for _ in range(1200):
            if (tmp_path / "paused").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (tmp_path / "paused").exists(), first.communicate()[1][-2000:]
        before = tree_digest(run)
        expect_user_error(argv, plain_refusal, capsys)
        expect_user_error([*argv, "--overwrite_output_dir"], "is in use by another run \\(pid \\d+ on .*\\); wait "
                                                            "for it to end", capsys)
        expect_user_error([*argv, "--resume_from_checkpoint", "latest"], "is in use by another run", capsys)
        assert tree_digest(run) == before
    finally:
        (tmp_path / "go").touch()
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert_same_run(uninterrupted, run)
    assert not (run / ".hf_tl.lock").exists()


def test_a_kill_leaves_no_stale_lock(tiny_bert, tmp_path):
    """The lock dies with its process: a run killed while holding it resumes at once."""
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, *COMMON, **SIZE)
    code, _ = child(argv, "hf_tl.training.loop", "_micro_step", 2, tmp_path=tmp_path)
    assert code == -9 and (run / ".hf_tl.lock").exists()
    run_recipe([*argv, "--overwrite_output_dir"])  # no checkpoint yet: start again in the same folder
    assert (run / "eval_results.json").is_file() and not (run / ".hf_tl.lock").exists()


@pytest.mark.parametrize("rate", ["inf", "nan", "-inf"])
def test_non_finite_settings_are_refused_when_read(tiny_bert, tmp_path, capsys, rate):
    run = tmp_path / "run"
    expect_user_error(tiny_args(tiny_bert, run, f"--learning_rate={rate}"), "learning_rate must be a finite number",
                      capsys)
    assert not run.exists()


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_bert, tmp_path, capsys):
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, *COMMON, "--learning_rate", "1e30", "--max_grad_norm", "0",
                     "--warmup_ratio", "0", **SIZE)
    expect_user_error(argv, r"Training diverged: the loss became non-finite at step \d+, so the run stopped "
                            r"\((its last good checkpoint, checkpoint-\d+, is kept|no checkpoint had been written)\); "
                            r"lower --learning_rate \(now 1e\+30\)", capsys)
    assert not (run / "eval_results.json").exists()
    for checkpoint in (run / "checkpoints").glob("checkpoint-*"):
        tensors = load_file(str(checkpoint / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in tensors.values()), checkpoint
    run_recipe([*argv, "--learning_rate", "1e-3", "--overwrite_output_dir"])  # the sentence's fix works
    assert (run / "eval_results.json").is_file()


@pytest.mark.parametrize("flags, message", [
    (["--strategy", "lora"], "strategy is 'lora' here and 'full' in its config.yaml"),
    (["--learning_rate", "0.01"], "learning_rate is 0.01 here and 0.001 in its config.yaml"),
    (["--max_length", "64", "--seed", "7"], r"max_length is 64 here and 128 in its config.yaml \(and 1 more: seed\)"),
], ids=["strategy", "learning-rate", "two-options"])
def test_a_resume_with_other_settings_is_refused_before_writing(tiny_bert, tmp_path, capsys, flags, message):
    run = tmp_path / "run"
    argv = tiny_args(tiny_bert, run, "--strategy", "full", train=16, dev=8)
    run_recipe(argv)
    before = tree_digest(run)
    expect_user_error([*argv, *flags, "--resume_from_checkpoint", "latest"],
                      f"--resume_from_checkpoint continues the run in '{run}' as it was configured, but {message}; "
                      f"drop what changes it", capsys)
    assert tree_digest(run) == before
