"""Learning from a finished run: silver pairs it scores, and distillation onto its outputs."""

import json

import numpy as np
import pytest
from conftest import SST2_ARGS, run_recipe, tiny_args, train_argv

import hf_tl
from hf_tl.config_io import parse_args
from hf_tl.errors import HfTlError
from hf_tl.runs.predictions import split_predictions
from hf_tl.runs.teacher import silver_pairs

BI = ["--architecture", "bi_encoder", "--head_type", "none"]


@pytest.fixture(scope="module")
def teacher(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "bi"
    run_recipe(tiny_args(tiny_bert, out, *BI, train=24, dev=12))
    return out


def test_silver_pairs_are_new_distinct_and_reproducible():
    sentences = [f"the {w} sat on a mat number {i}" for i, w in enumerate(["cat", "dog", "bird", "cow"] * 5)]
    pairs = silver_pairs(sentences, 30, seed=1)
    assert pairs == silver_pairs(sentences, 30, seed=1) and pairs != silver_pairs(sentences, 30, seed=2)
    assert len(pairs) == 30 and len({frozenset(p) for p in pairs}) == 30 and all(a != b for a, b in pairs)
    assert all(a in sentences and b in sentences for a, b in pairs)


@pytest.mark.real_data
def test_the_teacher_as_its_own_student_keeps_its_scores(teacher, tmp_path):
    student = tmp_path / "student"
    run_recipe(["--config", str(teacher / "config.yaml"), "--init_from_run", str(teacher), "--distill_from",
                str(teacher), "--learning_rate", "1e-6", "--output_dir", str(student)])
    before, _ = split_predictions(teacher)
    after, _ = split_predictions(student)
    assert np.abs(after - before).max() < 0.02
    card = (student / "README.md").read_text()
    assert f"distill_from: {teacher}" in card


@pytest.mark.real_data
def test_classification_distils_onto_probabilities(tiny_bert, tmp_path):
    run_recipe(tiny_args(tiny_bert, tmp_path / "t", train=24, dev=12, data=SST2_ARGS), recipe="sentiment")
    config = parse_args([*tiny_args(tiny_bert, tmp_path / "s", train=24, dev=12, data=SST2_ARGS), "--distill_from",
                         str(tmp_path / "t"), "--distill_alpha", "0.5"], defaults={"task": "classification"})
    from hf_tl.builder import build
    from hf_tl.runs.teacher import distilled_targets
    from hf_tl.training.setup import resolve_config, tokenize_splits

    config, raw = resolve_config(config, need_train=True)
    tasks = build(config, apply_strategy=False).tasks
    splits, _ = tokenize_splits(tasks, raw, store=False)
    gold = np.asarray(splits["classification"]["train"]["labels"])
    targets = np.asarray(distilled_targets(splits, raw, config, tasks)["classification"]["train"]["labels"])
    assert targets.shape == (24, 2) and np.allclose(targets.sum(-1), 1.0)
    assert (targets[np.arange(24), gold] >= 0.5).all()  # half the mass on the gold label, half the teacher's
    hf_tl.train(replace_output(config, tmp_path / "s"))
    assert json.loads((tmp_path / "s" / "eval_results.json").read_text())["eval_samples"] == 12


def replace_output(config, out):
    from dataclasses import replace

    return replace(config, train=replace(config.train, output_dir=str(out)))


@pytest.mark.real_data
def test_silver_pairs_join_the_gold_pairs(teacher, tiny_bert, tmp_path):
    out = tmp_path / "aug"
    run_recipe(tiny_args(tiny_bert, out, *BI, "--silver_from", str(teacher), "--silver_pairs", "20", train=24,
                         dev=12))
    assert json.loads((out / "eval_results.json").read_text())["train_samples"] == {"similarity": 44}
    with pytest.raises(HfTlError, match="so it is for task similarity, not classification"):
        train_argv(tiny_args(tiny_bert, tmp_path / "sst", "--silver_from", str(teacher), train=24, dev=12,
                             data=SST2_ARGS))
