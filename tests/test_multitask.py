"""Multi-task training: one backbone, a head per task, batches drawn per task as configured."""

import csv
import json
from collections import Counter

import pytest
import torch
from conftest import DATA_DIR, REPO, launch_two_processes, run_recipe

import hf_tl
from hf_tl.training import sampling
from hf_tl.training.sampling import TaskSchedule

CONFIG = REPO / "recipes" / "configs" / "multitask_glue.yaml"
TASKS = ("stsb", "mrpc", "sst2")


def multitask_args(model, out, *extra, train=(24, 16, 8), dev=12):
    caps = [f for name, n in zip(TASKS, train) for f in (f"--tasks.{name}.max_train_samples", str(n))]
    return ["--config", str(CONFIG), "--model_name_or_path", model, *caps, "--max_eval_samples", str(dev),
            "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--head_dropout", "0.0",
            "--output_dir", str(out), "--logging_steps", "1", *extra]


@pytest.mark.parametrize("scheme,expected", [
    ("proportional", {"a": 0.6, "b": 0.3, "c": 0.1}),
    ("equal", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}),
    ("temperature", {"a": 60 ** 0.5 / (60 ** 0.5 + 30 ** 0.5 + 10 ** 0.5), "b": 30 ** 0.5 / (60 ** 0.5 + 30 ** 0.5
                                                                                              + 10 ** 0.5),
                     "c": 10 ** 0.5 / (60 ** 0.5 + 30 ** 0.5 + 10 ** 0.5)}),
])
def test_schedule_draws_tasks_with_the_configured_probabilities(scheme, expected):
    schedule = TaskSchedule({"a": 60, "b": 30, "c": 10}, scheme, temperature=2.0, seed=1, multiple_of=4)
    assert schedule.epoch_length == 100 and schedule.probabilities == pytest.approx(expected)
    counts = Counter(t for epoch in range(200) for t in schedule.tasks_for_epoch(epoch))
    for name, p in expected.items():
        assert counts[name] / 20_000 == pytest.approx(p, abs=0.01)
    assert schedule.tasks_for_epoch(3) == schedule.tasks_for_epoch(3) != schedule.tasks_for_epoch(4)


def test_each_head_gets_gradients_only_from_its_own_task(tiny_bert):
    from hf_tl.builder import build
    from hf_tl.config_io import load_config
    from hf_tl.training.loop import _drop_idle_head_grads

    config = load_config(CONFIG, model_name_or_path=tiny_bert)
    built = build(config)
    model, tok = built.model, built.backbone.tokenizer
    batch = dict(tok(["a fine day", "rain"], ["sun", "a storm"], return_tensors="pt", padding=True))
    model(task="mrpc", labels=torch.tensor([0, 1]), **batch)["loss"].backward()
    assert all(p.grad is not None for p in model.heads["mrpc"].parameters())
    assert all(p.grad is None for name in ("stsb", "sst2") for p in model.heads[name].parameters())
    # Under DDP an unused head's gradient arrives zero-filled; the loop drops it so AdamW leaves the head alone.
    for p in model.heads["stsb"].parameters():
        p.grad = torch.zeros_like(p)
    _drop_idle_head_grads(model, {"mrpc"})
    assert all(p.grad is None for p in model.heads["stsb"].parameters())
    assert all(p.grad is not None for p in model.heads["mrpc"].parameters())


def read_dev(task, n):
    if task == "stsb":
        with open(DATA_DIR / "stsb" / "dev.csv", newline="") as fh:
            rows = [r for _, r in zip(range(n), csv.reader(fh))]
        return [(r[0], r[1]) for r in rows], [float(r[2]) for r in rows]
    with open(DATA_DIR / task / "dev.tsv", encoding="utf-8-sig", newline="") as fh:
        rows = [r for _, r in zip(range(n), csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))]
    if task == "mrpc":
        return [(r["#1 String"], r["#2 String"]) for r in rows], [["not_paraphrase", "paraphrase"][int(r["Quality"])]
                                                                  for r in rows]
    return [r["sentence"] for r in rows], [["negative", "positive"][int(r["label"])] for r in rows]


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["full", "lora", "frozen", "gradual", "partial", "ia3", "prompt_tuning",
                                      "prefix_tuning"])
def test_multitask_recipe_trains_saves_and_predicts_per_task(tiny_model, tmp_path, strategy, monkeypatch):
    drawn = Counter()
    original = sampling.TaskStreams.next

    def counting_next(self, task):
        drawn[task] += 1
        return original(self, task)

    monkeypatch.setattr(sampling.TaskStreams, "next", counting_next)
    extra = {"partial": ["--num_layers", "1"], "prompt_tuning": ["--num_virtual_tokens", "4"],
             "prefix_tuning": ["--num_virtual_tokens", "4"]}.get(strategy, [])
    out = tmp_path / strategy
    results = run_recipe(multitask_args(tiny_model, out, "--strategy", strategy, "--task_sampling", "proportional",
                                        "--num_train_epochs", "2", *extra), recipe="multitask")
    # 24 + 16 + 8 rows at 4 per batch: 12 batches an epoch, all three tasks drawn.
    assert sum(drawn.values()) == 24 and set(drawn) == set(TASKS)
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [12, 24]
    assert {"stsb/spearmanr", "mrpc/accuracy", "mrpc/f1", "sst2/accuracy", "average"} <= set(log[0])
    assert sorted(p.name for p in (out / "heads").iterdir()) == [f"{t}.safetensors" for t in sorted(TASKS)]
    run = hf_tl.load_run(out)
    for task in ("mrpc", "sst2"):  # reloaded, each head reproduces its task's dev accuracy
        inputs, gold = read_dev(task, 12)
        predicted = run.predict(inputs, task=task)
        assert sum(p == g for p, g in zip(predicted, gold)) / 12 == pytest.approx(results[f"eval_{task}/accuracy"])
    assert len(run.predict([("a", "b")], task="stsb")) == 1


@pytest.mark.real_data
@pytest.mark.real_model
def test_real_minilm_multitask_for_a_few_steps(minilm, tmp_path):
    out = tmp_path / "minilm"
    results = run_recipe(multitask_args(minilm, out, "--max_steps", "6", "--learning_rate", "5e-5",
                                        "--task_sampling", "equal"), recipe="multitask")
    assert results["best_step"] == 6
    assert all(0.0 <= results[f"eval_{t}/accuracy"] <= 1.0 for t in ("mrpc", "sst2"))
    assert -1.0 <= results["eval_stsb/spearmanr"] <= 1.0
    run = hf_tl.load_run(out)
    assert run.predict(["a gorgeous, witty film"], task="sst2")[0] in ("negative", "positive")
    assert run.predict([("He said no.", "He refused.")], task="mrpc")[0] in ("not_paraphrase", "paraphrase")


@pytest.mark.real_data
def test_two_processes_match_one(tiny_bert, tmp_path):
    single, double = tmp_path / "one_process", tmp_path / "two_processes"
    common = ("--strategy", "full", "--num_train_epochs", "1", "--task_sampling", "equal")
    run_recipe(multitask_args(tiny_bert, single, *common, train=(16, 16, 16), dev=13), recipe="multitask")
    argv = multitask_args(tiny_bert, double, *common, train=(16, 16, 16), dev=13)
    argv[argv.index("--per_device_train_batch_size") + 1] = "2"  # same effective batch: 2 processes x 2
    launch_two_processes("multitask", argv, tmp_path)
    one = json.loads((single / "eval_results.json").read_text())
    two = json.loads((double / "eval_results.json").read_text())
    assert two["num_processes"] == 2 and one["best_step"] == two["best_step"] == 12
    for task in TASKS:
        assert two[f"eval_{task}/eval_samples"] == 13  # every dev example once, padding repeats dropped
    for key in ("eval_stsb/spearmanr", "eval_mrpc/accuracy", "eval_sst2/accuracy"):
        assert two[key] == pytest.approx(one[key], abs=2e-3), key


@pytest.mark.real_data
def test_multitask_errors_are_one_sentence(tiny_bert, tmp_path, capsys):
    from test_errors import expect_user_error

    out = tmp_path / "run"
    run_recipe(multitask_args(tiny_bert, out, "--max_steps", "2"), recipe="multitask")
    run = hf_tl.load_run(out)
    with pytest.raises(hf_tl.HfTlError, match="no task 'sts'; it trained: stsb, mrpc, sst2"):
        run.predict([("a", "b")], task="sts")
    with pytest.raises(hf_tl.HfTlError, match="trained several tasks"):
        run.predict([("a", "b")])
    with pytest.raises(hf_tl.HfTlError, match="takes one text per item"):
        run.predict([("a", "b")], task="sst2")
    with pytest.raises(SystemExit):
        run_recipe(multitask_args(tiny_bert, tmp_path / "x", "--tasks.qnli.max_train_samples", "3"),
                   recipe="multitask")
    assert "overrides a task the config does not define" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_recipe(["--config", str(REPO / "recipes" / "configs" / "stsb_full.yaml"), "--model_name_or_path",
                    tiny_bert, "--output_dir", str(tmp_path / "y")], recipe="multitask")
    assert "needs a tasks mapping" in capsys.readouterr().err
    expect_user_error(["--config", str(CONFIG), "--model_name_or_path", tiny_bert, "--output_dir",
                       str(tmp_path / "z")], "defines several tasks; run it with recipes/multitask.py", capsys)
