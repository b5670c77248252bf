"""F1 metric for the evaluate library, shipped with hf_tl so it loads offline by path."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "F1 score: binary (pos_label) or averaged over classes (macro, micro, weighted)."
_KWARGS = "predictions: list of int32 predictions. references: list of int32 gold values."

class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(self, predictions, references, average="binary", pos_label=1):
        predictions, references = np.asarray(predictions), np.asarray(references)

        def f1_of(label):
            tp = np.sum((predictions == label) & (references == label))
            fp = np.sum((predictions == label) & (references != label))
            fn = np.sum((predictions != label) & (references == label))
            return 0.0 if tp == 0 else float(2 * tp / (2 * tp + fp + fn))

        if average == "binary":
            return {"f1": f1_of(pos_label)}
        labels = np.unique(np.concatenate([predictions, references]))
        if average == "micro":
            return {"f1": float((predictions == references).mean())}  # micro-F1 equals accuracy (single label)
        scores = np.array([f1_of(label) for label in labels])
        if average == "macro":
            return {"f1": float(scores.mean())}
        if average == "weighted":
            weights = np.array([np.sum(references == label) for label in labels], float)
            return {"f1": float((scores * weights).sum() / max(weights.sum(), 1.0))}
        raise ValueError(f"average must be binary, micro, macro or weighted, got {average}")
