"""Pearsonr metric for the evaluate library, shipped with hf_tl so it loads offline by path."""

import datasets
import evaluate
import numpy as np
from scipy import stats

_DESCRIPTION = "Pearson correlation coefficient between predictions and references."
_KWARGS = "predictions: list of float32 predictions. references: list of float32 gold values."

class Pearsonr(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("float32"), "references": datasets.Value("float32")}
            ),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions, float), np.asarray(references, float)
        if predictions.std() == 0 or references.std() == 0:
            return {"pearsonr": float("nan")}  # undefined for constant input
        return {"pearsonr": float(stats.pearsonr(references, predictions)[0])}
