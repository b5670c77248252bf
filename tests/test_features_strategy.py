"""The `features` strategy: scikit-learn linear heads fitted on frozen features, saved as ordinary linear heads."""

import json

import numpy as np
import pytest
from conftest import SST2_ARGS, run_recipe, tiny_args
from scipy import stats

import hf_tl
from hf_tl.data.loading import read_file, resolve_data_file
from hf_tl.embed import embed_texts
from hf_tl.errors import HfTlError
from hf_tl.run_dir import RESULTS_FILE
from hf_tl.strategies.features import make_estimator

TRAIN, DEV = 64, 32


def sst2_rows(split: str, n: int):
    rows = read_file(resolve_data_file(f"sst2/{split}.tsv", None), None).select(range(n))
    return list(rows["sentence"]), np.array([int(label) for label in rows["label"]])


@pytest.mark.real_data
@pytest.mark.parametrize("head", ["logistic", "ridge", "linear_svm"])
def test_each_sklearn_head_matches_scikit_learn_on_the_same_features(tiny_model, tmp_path, head):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_model, out, *["--strategy", "features", "--sklearn_head", head],
                         "--layer", "second_to_last", train=TRAIN, dev=DEV, data=SST2_ARGS), recipe="sentiment")
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["feature_cache"]["classification/train"] in ("built", "hit")
    run = hf_tl.load_run(out)
    train_texts, train_labels = sst2_rows("train", TRAIN)
    dev_texts, dev_labels = sst2_rows("dev", DEV)
    predicted = run.predict(dev_texts)
    names = run.tasks["classification"].label_names
    ids = np.array([names.index(p) for p in predicted])
    assert results["eval_accuracy"] == pytest.approx(float((ids == dev_labels).mean()))
    # The same estimator fitted by scikit-learn itself on the same features predicts the same labels.
    estimator = make_estimator(head, False, 1.0, 42)
    estimator.fit(embed_texts(run.model, run.tokenizer, train_texts, 128).astype(np.float64), train_labels)
    reference = estimator.predict(embed_texts(run.model, run.tokenizer, dev_texts, 128).astype(np.float64))
    assert (reference == ids).mean() >= 0.95


@pytest.mark.real_data
@pytest.mark.parametrize("head", ["ridge", "linear_svm"])
def test_similarity_scores_with_a_regression_head(tiny_bert, tmp_path, head):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, "--strategy", "features", "--sklearn_head", head, "--cache_features",
                         "false", train=TRAIN, dev=DEV))
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["feature_cache"] == {"similarity/train": "computed", "similarity/validation": "computed"}
    rows = read_file(resolve_data_file("stsb/dev.csv", None), ["sentence1", "sentence2", "score"]).select(range(DEV))
    scores = hf_tl.load_run(out).predict(list(zip(rows["sentence1"], rows["sentence2"])))
    assert stats.spearmanr(rows["score"], scores)[0] == pytest.approx(results["eval_spearmanr"], abs=1e-5)
    assert not (out / "backbone").exists() and not (out / "adapter").exists()


@pytest.mark.real_data
@pytest.mark.parametrize("flags, message", [
    (["--sklearn_head", "logistic"], "logistic needs labels"),
    (["--sklearn_head", "ridge", "--architecture", "bi_encoder"], "is a bi-encoder"),
    (["--sklearn_head", "ridge", "--head_type", "mlp"], "set head_type linear"),
    (["--sklearn_head", "ridge", "--layer", "weighted"], "cannot learn layer weights"),
    (["--sklearn_head", "svm"], "sklearn_head must be one of"),
])
def test_settings_features_cannot_fit_are_refused(tiny_bert, tmp_path, flags, message):
    with pytest.raises(HfTlError, match=message):
        from hf_tl.config_io import parse_args
        from hf_tl.runs import train

        train(parse_args(tiny_args(tiny_bert, tmp_path / "run", "--strategy", "features", *flags, train=16, dev=8)))


@pytest.mark.real_data
def test_two_processes_fit_the_same_head_as_one(tiny_bert, tmp_path, monkeypatch):
    from conftest import launch_two_processes

    monkeypatch.setenv("HF_TL_FEATURE_CACHE", str(tmp_path / "cache"))
    flags = ["--strategy", "features", "--per_device_train_batch_size", "4"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_recipe(tiny_args(tiny_bert, one, *flags, train=TRAIN, dev=DEV, data=SST2_ARGS), recipe="sentiment")
    proc = launch_two_processes("sentiment", tiny_args(tiny_bert, two, *flags, train=TRAIN, dev=DEV, data=SST2_ARGS),
                                cwd=tmp_path)
    assert "[process 1] feature cache: classification/train hit" in proc.stdout + proc.stderr
    first, second = (json.loads((d / RESULTS_FILE).read_text()) for d in (one, two))
    assert second["num_processes"] == 2 and second["eval_samples"] == DEV
    assert second["eval_accuracy"] == pytest.approx(first["eval_accuracy"])
    from safetensors.torch import load_file

    heads = [load_file(d / "heads" / "classification.safetensors") for d in (one, two)]
    assert all(np.allclose(heads[0][k].numpy(), heads[1][k].numpy(), atol=1e-6) for k in heads[0])


@pytest.mark.real_data
def test_logistic_on_scores_is_refused_before_any_pass_and_compare_fits_ridge(tiny_bert, tmp_path):
    from hf_tl.compare import strategy_flags
    from hf_tl.config_io import parse_args

    args = tiny_args(tiny_bert, tmp_path / "run", train=16, dev=8)  # STS-B: a score per pair
    with pytest.raises(HfTlError, match="logistic needs labels.*--sklearn_head ridge"):
        parse_args([*args, "--strategy", "features", "--sklearn_head", "logistic"])
    assert not (tmp_path / "run").exists()
    flags = strategy_flags("features", parse_args(args))
    assert flags[-2:] == ["--sklearn_head", "ridge"]
    assert parse_args([*args, *flags, "--strategy", "features"]).strategy.sklearn_head == "ridge"
