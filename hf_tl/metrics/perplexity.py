"""Perplexity through the evaluator contract: what a language-modelling run reports, early-stops on and compares."""

from __future__ import annotations

import math

import numpy as np

from hf_tl.metrics.evaluator import Evaluator


class PerplexityEvaluator(Evaluator):
    """``perplexity`` (primary, lower is better) and ``lm_loss``, the mean cross-entropy per predicted token.

    Predictions are one row per example: ``(summed token loss, predicted tokens)``; the references (tokens
    predicted per row) are not needed. Perplexity is exp of the loss averaged over all predicted tokens of the split.
    """

    def __init__(self):
        super().__init__(["perplexity", "lm_loss"], primary_metric="perplexity", greater_is_better=False)

    def __post_init__(self):
        self._modules = {}  # computed here, with no evaluate module

    def __call__(self, predictions, references=None) -> dict[str, float]:
        predictions = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
        tokens = predictions[:, 1].sum()
        loss = float(predictions[:, 0].sum() / tokens) if tokens else float("nan")
        return {"perplexity": math.exp(min(loss, 700.0)) if loss == loss else loss, "lm_loss": loss}

    def metric_value(self, predictions, references=None, metric: str | None = None) -> float:
        return self(predictions)[metric or self.primary_metric]
