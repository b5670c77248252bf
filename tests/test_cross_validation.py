"""cv_folds: K fold runs that each load alone, out-of-fold predictions of every train row, and the estimates."""

import csv
import json
import statistics

import pytest
from conftest import run_recipe, tiny_args

import hf_tl
from hf_tl.errors import HfTlError


@pytest.mark.real_data
def test_cross_validation_writes_folds_estimates_and_out_of_fold_predictions(tiny_bert, tmp_path, capsys):
    out = tmp_path / "cv"
    argv = tiny_args(tiny_bert, out, "--cv_folds", "3", "--logging_steps", "50", train=36, dev=12)
    run_recipe(argv)
    assert "Cross-validation saved to" in capsys.readouterr().out
    summary = json.loads((out / "cv_results.json").read_text())
    per_fold = summary["per_fold"]
    assert [f["fold"] for f in per_fold] == [0, 1, 2] and sum(f["rows"] for f in per_fold) == 36
    for f in per_fold:  # each fold is a finished run that loads alone; its recorded score is its own predictions'
        fold_results = json.loads((out / f"fold-{f['fold']}" / "eval_results.json").read_text())
        assert f["held_out"]["spearmanr"] == pytest.approx(fold_results["eval_spearmanr"], abs=1e-5)
        assert fold_results["eval_samples"] == f["rows"]
        assert len(hf_tl.load_run(out / f"fold-{f['fold']}").predict([("a cat sits", "a cat is sitting")])) == 1
    held = summary["held_out"]["spearmanr"]
    assert held["mean"] == pytest.approx(statistics.mean(f["held_out"]["spearmanr"] for f in per_fold))
    assert held["low"] <= held["mean"] <= held["high"]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_spearmanr"] == pytest.approx(held["mean"]) and results["cv_folds"] == 3
    rows = list(csv.DictReader((out / "oof_predictions.csv").open()))
    assert sorted(int(r["row"]) for r in rows) == list(range(36))  # every train row predicted exactly once
    assert {r["fold"] for r in rows} == {"0", "1", "2"}
    assert "held-out folds" in (out / "cv_results.md").read_text()
    with pytest.raises(HfTlError, match="cross-validation of 3 folds, not one model"):
        hf_tl.load_run(out)

    # Continued: the finished folds are kept, nothing trains again.
    before = {p: p.stat().st_mtime for p in out.glob("fold-*/eval_results.json")}
    run_recipe([*argv, "--resume_from_checkpoint", "latest"])
    assert capsys.readouterr().out.count("finished earlier, kept") == 3
    assert {p: p.stat().st_mtime for p in before} == before


@pytest.mark.real_data
def test_the_folds_of_a_frozen_run_share_one_backbone_pass(tiny_bert, tmp_path, monkeypatch):
    import hf_tl.feature_cache as feature_cache

    calls = []
    compute = feature_cache.compute_features

    def counted(model, dataset, *args, **kwargs):
        calls.append(len(dataset))
        return compute(model, dataset, *args, **kwargs)

    monkeypatch.setattr(feature_cache, "compute_features", counted)
    out = tmp_path / "cv"
    run_recipe(tiny_args(tiny_bert, out, "--strategy", "frozen", "--cv_folds", "3", "--feature_cache_dir",
                         str(tmp_path / "features"), train=36, dev=12))
    assert calls == [36]  # the whole train split, once, for all three folds
    summary = json.loads((out / "cv_results.json").read_text())
    for f in summary["per_fold"]:  # each fold trained on features of its own rows only: its records say so
        fold_results = json.loads((out / f"fold-{f['fold']}" / "eval_results.json").read_text())
        assert fold_results["train_samples"] == {"similarity": 36 - f["rows"]}
        assert fold_results["eval_samples"] == f["rows"]
        assert f["held_out"]["spearmanr"] == pytest.approx(fold_results["eval_spearmanr"], abs=1e-5)
