"""The ``features`` strategy: a scikit-learn linear model fitted on the frozen backbone's features.

Logistic regression, ridge and linear SVMs are all linear maps, so the fitted coefficients are copied into the
task's ordinary linear head: the run directory, ``load_run(...).predict`` and the metrics are the same as for every
other strategy, and prediction needs no scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.heads import ClassificationHead, RegressionHead
from hf_tl.layer_select import combine_layers
from hf_tl.strategies.base import FITTED, Strategy, freeze_model, refuse_learned_mix, register


def make_estimator(kind: str, regression: bool, regularization: float, seed: int):
    """The scikit-learn estimator for ``kind``.

    Args:
        kind: ``logistic``, ``ridge`` or ``linear_svm``.
        regression: A score target (similarity) rather than labels.
        regularization: ``C`` (logistic, linear_svm: larger = weaker) or ``alpha`` (ridge: larger = stronger).
        seed: Random state of the solvers that use one.

    Raises:
        HfTlError: for logistic regression on a score target.
    """
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
    from sklearn.svm import SVR, LinearSVC

    if kind == "logistic":
        if regression:
            raise HfTlError("sklearn_head logistic needs labels; for a score (similarity) use ridge or linear_svm.")
        return LogisticRegression(C=regularization, max_iter=2000)
    if kind == "ridge":
        return (Ridge if regression else RidgeClassifier)(alpha=regularization)
    if regression:  # a linear-kernel SVR exposes coef_ like LinearSVR, and converges without tuning
        return SVR(kernel="linear", C=regularization)
    return LinearSVC(C=regularization, random_state=seed, max_iter=5000)


def _linear_layer(head: nn.Module) -> nn.Linear:
    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(layers) != 1 or layers[0].bias is None:
        raise HfTlError("strategy 'features' fits a linear head; set head_type linear.")
    return layers[0]


def copy_into_head(estimator, head: nn.Module, num_labels: int | None) -> None:
    """Copy a fitted linear estimator's coefficients into the head's ``nn.Linear``.

    A binary classifier has one row of coefficients (the score of class 1); it becomes logits ``(0, w.x + b)``,
    which give the same decisions and, for logistic regression, the same probabilities.

    Raises:
        HfTlError: if the train split lacked some label (the head would have no weights for it).
    """
    coef = np.atleast_2d(np.array(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.array(estimator.intercept_, dtype=np.float64))
    if num_labels is not None:
        classes = list(getattr(estimator, "classes_", []))
        if classes != list(range(num_labels)):
            raise HfTlError(f"strategy 'features' needs every label in the train split; it holds label ids {classes} "
                            f"of {num_labels}.")
        if num_labels == 2 and coef.shape[0] == 1:
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    linear = _linear_layer(head)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(intercept, dtype=linear.bias.dtype))


@register("features")
class Features(Strategy):
    """Feature-based transfer: the backbone is frozen and a scikit-learn linear model is fitted on its features."""

    run_kind = FITTED
    trains_backbone_weights = False
    fixed_features = True
    resumable = False
    resume_refusal = "trains nothing by gradient, so there is nothing to resume; drop --resume_from_checkpoint"

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        # Before the backbone pass, not after it: logistic regression cannot fit a score.
        scores = [name for name, d in config.task_data().items() if d.task == "similarity"]
        if scores and config.strategy.sklearn_head == "logistic":
            raise HfTlError(f"strategy 'features' with sklearn_head logistic needs labels, but task '{scores[0]}' is "
                            f"a score (similarity); set --sklearn_head ridge (or linear_svm).")

    @classmethod
    def compare_flags(cls, config) -> list[str]:
        """A score target (similarity) is fitted by ridge regression: logistic regression needs labels."""
        flags = super().compare_flags(config)
        scores = any(d.task == "similarity" for d in config.task_data().values())
        return [*flags, "--sklearn_head", "ridge"] if scores and config.strategy.sklearn_head == "logistic" else flags

    def apply(self, model: nn.Module) -> nn.Module:
        refuse_learned_mix(model.layer, "strategy 'features' fits a closed-form linear head, which cannot learn layer "
                                  "weights")
        for name, head in model.heads.items():
            if not isinstance(head, (ClassificationHead, RegressionHead)):
                raise HfTlError(f"strategy 'features' needs a cross-encoder or single-text task; task '{name}' is a "
                                f"bi-encoder (use strategy frozen for it).")
            _linear_layer(head)
        return freeze_model(model)

    def fit_heads(self, model: nn.Module, splits: dict, seed: int) -> dict[str, str]:
        """Fit each task's head on its train features.

        Args:
            model: The :class:`hf_tl.model.TransferModel`.
            splits: ``{task: {"train": FeatureDataset, ...}}``.
            seed: Random state of the solvers.

        Returns:
            ``{task: estimator description}``.
        """
        fitted = {}
        for name, head in model.heads.items():
            train = splits[name]["train"].columns
            x = combine_layers(train["features"], model.layer).double().numpy()
            y = train["labels"].numpy()
            regression = isinstance(head, RegressionHead)
            estimator = make_estimator(self.args.sklearn_head, regression, self.args.sklearn_regularization, seed)
            estimator.fit(x, y)
            copy_into_head(estimator, head, None if regression else _linear_layer(head).out_features)
            fitted[name] = repr(estimator)
        return fitted

    def describe(self) -> str:
        return f"features: backbone frozen, a scikit-learn {self.args.sklearn_head} model is fitted as the head"
