"""hf_tl's evaluate modules load offline by path and follow the evaluator contract."""

import math

import numpy as np
import pytest
from scipy import stats

from hf_tl.errors import HfTlError
from hf_tl.metrics import BUILTIN_METRICS, Evaluator, load_metric


def test_builtin_modules_are_shipped():
    assert set(BUILTIN_METRICS) >= {"pearsonr", "spearmanr", "accuracy", "f1"}


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    refs = rng.uniform(0, 5, 50)
    preds = refs + rng.normal(0, 1, 50)
    assert load_metric("pearsonr").compute(predictions=preds, references=refs)["pearsonr"] == pytest.approx(
        stats.pearsonr(refs, preds)[0], abs=1e-6)
    assert load_metric("spearmanr").compute(predictions=preds, references=refs)["spearmanr"] == pytest.approx(
        stats.spearmanr(refs, preds)[0], abs=1e-6)


def test_accuracy_and_f1():
    preds, refs = [1, 0, 1, 1, 0, 2], [1, 0, 0, 1, 1, 2]
    assert load_metric("accuracy").compute(predictions=preds, references=refs)["accuracy"] == pytest.approx(4 / 6)
    # class 1: tp=2, fp=1, fn=1 -> f1 = 4/6
    assert load_metric("f1").compute(predictions=preds, references=refs)["f1"] == pytest.approx(4 / 6)
    macro = load_metric("f1").compute(predictions=preds, references=refs, average="macro")["f1"]
    assert macro == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)  # class 0: tp=1, fp=1, fn=1


def test_evaluator_contract():
    evaluator = Evaluator(["pearsonr", "spearmanr"], primary_metric="spearmanr", greater_is_better=True)
    result = evaluator([0.1, 0.5, 0.9], [0.0, 0.4, 1.0])
    assert set(result) == {"pearsonr", "spearmanr"} and all(isinstance(v, float) for v in result.values())
    assert evaluator.is_better(0.5, None) and evaluator.is_better(0.6, 0.5) and not evaluator.is_better(0.4, 0.5)
    assert not evaluator.is_better(float("nan"), 0.1)
    assert evaluator.is_better(0.1, 0.2, "mse")  # errors go down
    constant = evaluator([0.5, 0.5, 0.5], [0.0, 0.4, 1.0])
    assert math.isnan(constant["spearmanr"])  # undefined, never picked as the best


def test_hub_metric_offline_is_a_clear_error():
    with pytest.raises(HfTlError, match="Cannot load metric 'glue'.*offline metrics"):
        load_metric("glue")
