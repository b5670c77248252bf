"""The significance test behind hf-tl compare: a paired bootstrap over dev examples and seeds."""

import numpy as np
import pytest

from hf_tl.metrics import Evaluator
from hf_tl.significance import compare_strategies, markdown, paired_bootstrap


@pytest.fixture(scope="module")
def spearman():
    return Evaluator(["pearsonr", "spearmanr"], primary_metric="spearmanr")


def test_identical_strategies_are_within_noise(spearman):
    rng = np.random.default_rng(0)
    targets = rng.random(200)
    seeds = [targets + rng.normal(0, 0.3, 200) for _ in range(3)]
    result = compare_strategies({"a": seeds, "b": [s.copy() for s in seeds]}, targets, spearman, "spearmanr", True,
                                n=200)
    pair = result["pairs"][0]
    assert pair["difference"] == 0.0 and pair["within_noise"] and pair["p_value"] == 1.0
    assert result["vs_best"] == {"a": "best", "b": "within noise"}
    assert "within noise" in markdown(result)


def test_a_clearly_better_strategy_is_not_within_noise(spearman):
    rng = np.random.default_rng(1)
    targets = rng.random(300)
    good = [targets + rng.normal(0, 0.05, 300) for _ in range(2)]
    poor = [targets + rng.normal(0, 1.0, 300) for _ in range(2)]
    result = compare_strategies({"poor": poor, "good": good}, targets, spearman, "spearmanr", True, n=200)
    pair = result["pairs"][0]
    assert pair["difference"] < 0 and pair["high"] < 0 and not pair["within_noise"] and pair["p_value"] < 0.01
    assert result["best"] == "good" and result["vs_best"]["poor"] == "worse"
    assert "good better" in markdown(result)


def test_bootstrap_follows_the_metric_direction_and_is_reproducible():
    targets = np.arange(50, dtype=float)
    close, far = [targets + 0.1], [targets + 5.0]

    def error(p, t):
        return float(np.mean(np.abs(p - t)))

    first = paired_bootstrap(close, far, targets, error, greater_is_better=False, n=100, seed=3)
    assert first["difference"] == pytest.approx(4.9) and not first["within_noise"]
    assert paired_bootstrap(close, far, targets, error, greater_is_better=False, n=100, seed=3) == first


def test_evaluator_metric_value_matches_the_full_evaluation(spearman):
    rng = np.random.default_rng(2)
    predictions, targets = rng.random(40), rng.random(40)
    assert spearman.metric_value(predictions, targets) == pytest.approx(spearman(predictions, targets)["spearmanr"])
    accuracy = Evaluator(["accuracy", "f1"], primary_metric="accuracy")
    logits, labels = rng.random((40, 2)), rng.integers(0, 2, 40)
    assert accuracy.metric_value(logits, labels, "f1") == pytest.approx(accuracy(logits, labels)["f1"])
