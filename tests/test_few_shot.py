"""Few-shot: k examples per label drawn by seed, any strategy on them, and SetFit as two chained runs."""

import json
from collections import Counter

import numpy as np
import pytest
from conftest import MRPC_ARGS, SST2_ARGS, backbone_state, run_recipe, tiny_args, train_argv

import hf_tl
from hf_tl.data.few_shot import contrastive_pairs, few_shot_indices
from hf_tl.data.loading import read_file, resolve_data_file
from hf_tl.errors import HfTlError
from hf_tl.run_dir import RESULTS_FILE


def test_k_per_label_reproducible_by_seed():
    labels = ["0"] * 30 + ["1"] * 20 + ["2"] * 10
    picked = few_shot_indices(labels, 8, seed=3, regression=False)
    assert Counter(labels[i] for i in picked) == {"0": 8, "1": 8, "2": 8}
    assert picked == sorted(picked) == few_shot_indices(labels, 8, seed=3, regression=False)
    assert picked != few_shot_indices(labels, 8, seed=4, regression=False)
    with pytest.raises(HfTlError, match=r"some have fewer: 2 \(10\); lower few_shot_k"):
        few_shot_indices(labels, 11, seed=0, regression=False)


def test_similarity_draws_per_whole_score():
    scores = [0.2, 0.4, 1.0, 1.2, 4.6, 4.8, 5.0, 3.9]
    picked = few_shot_indices(scores, 1, seed=0, regression=True)
    assert sorted(round(scores[i]) for i in picked) == [0, 1, 4, 5]


def test_contrastive_pairs_follow_the_labels():
    texts = [f"t{i}" for i in range(6)]
    labels = [0, 0, 0, 1, 1, 1]
    pairs = contrastive_pairs(texts, labels, num_iterations=3, seed=0)
    assert len(pairs) == 2 * 3 * len(texts)
    label_of = dict(zip(texts, labels))
    for p in pairs:
        same = label_of[p["sentence1"]] == label_of[p["sentence2"]]
        assert p["score"] == (1.0 if same else 0.0) and p["sentence1"] != p["sentence2"]
    with pytest.raises(HfTlError, match="two or more train examples"):
        contrastive_pairs(["a", "b", "c"], [0, 1, 1], 1, 0)


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["frozen", "lora"])
def test_few_shot_trains_on_k_rows_per_label(tiny_model, tmp_path, strategy):
    out = tmp_path / "run"
    results = run_recipe(tiny_args(tiny_model, out, "--strategy", strategy, "--few_shot_k", "4", "--few_shot_seed",
                                   "1", train=400, dev=16, data=SST2_ARGS), recipe="sentiment")
    assert results["train_samples"] == {"classification": 8}
    rows = read_file(resolve_data_file("sst2/train.tsv", None), None).select(range(400))
    expected = few_shot_indices(rows["label"], 4, 1, regression=False)
    assert Counter(str(rows["label"][i]) for i in expected) == {"0": 4, "1": 4}


@pytest.mark.real_data
def test_setfit_trains_a_contrastive_body_then_a_head_on_it(tiny_model, tmp_path):
    out = tmp_path / "run"
    results = run_recipe(tiny_args(tiny_model, out, "--strategy", "setfit", "--few_shot_k", "4",
                                   "--setfit_num_iterations", "2", train=200, dev=16, data=SST2_ARGS),
                         recipe="sentiment")
    body = tmp_path / "run-body"
    pairs = [json.loads(line) for line in (body / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2 * 2 * 8 and {p["score"] for p in pairs} == {0.0, 1.0}
    body_results = json.loads((body / RESULTS_FILE).read_text())
    assert body_results["best_step"] == 4  # 32 pairs, batch 8, one epoch: the body did train
    # The final run holds exactly the body's backbone, and a fitted head on it.
    final_weights, body_weights = backbone_state(out), backbone_state(body)
    assert final_weights.keys() == body_weights.keys()
    assert all(np.array_equal(final_weights[k].numpy(), body_weights[k].numpy()) for k in final_weights)
    chain = json.loads((out / "lineage.json").read_text())["runs"]
    assert [r["strategy"] for r in chain] == ["full", "features"] and chain[0]["path"] == str(body.resolve())
    assert results["train_samples"] == {"classification": 8}
    run = hf_tl.load_run(out)
    texts = read_file(resolve_data_file("sst2/dev.tsv", None), None).select(range(16))
    predicted = run.predict(list(texts["sentence"]))
    gold = [["negative", "positive"][int(v)] for v in texts["label"]]
    assert results["eval_accuracy"] == pytest.approx(np.mean([p == g for p, g in zip(predicted, gold)]))


@pytest.mark.real_data
def test_setfit_refuses_pairs_and_an_existing_body(tiny_bert, tmp_path):
    with pytest.raises(HfTlError, match="one single-text classification task"):
        train_argv(tiny_args(tiny_bert, tmp_path / "a", "--strategy", "setfit", data=MRPC_ARGS), "pair_classification")
    (tmp_path / "b-body").mkdir()
    (tmp_path / "b-body" / RESULTS_FILE).write_text("{}")
    (tmp_path / "b-body" / "config.yaml").write_text("")
    with pytest.raises(HfTlError, match="already holds"):
        train_argv(tiny_args(tiny_bert, tmp_path / "b", "--strategy", "setfit", "--few_shot_k", "2", data=SST2_ARGS))


@pytest.mark.real_data
def test_setfit_under_two_processes(tiny_bert, tmp_path):
    from conftest import launch_two_processes

    out = tmp_path / "run"
    argv = tiny_args(tiny_bert, out, "--strategy", "setfit", "--few_shot_k", "4", "--setfit_num_iterations", "2",
                     train=200, dev=16, data=SST2_ARGS)
    argv[argv.index("--per_device_train_batch_size") + 1] = "4"
    launch_two_processes("sentiment", argv, tmp_path)
    assert json.loads((out / RESULTS_FILE).read_text())["num_processes"] == 2
    assert (tmp_path / "run-body" / "pairs.jsonl").is_file()


@pytest.mark.real_data
def test_setfit_on_a_whole_large_split_asks_for_few_shot_k(tiny_bert, tmp_path):
    with pytest.raises(HfTlError, match="setfit is a few-shot method"):
        train_argv(tiny_args(tiny_bert, tmp_path / "run", "--strategy", "setfit", train=6000, dev=8, data=SST2_ARGS))
