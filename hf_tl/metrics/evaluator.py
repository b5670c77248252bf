"""The evaluator contract: metrics computed through the ``evaluate`` API, returned as one dict.

An evaluator names its primary metric and whether greater is better; early stopping and best-checkpoint selection
read only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_tl.errors import HfTlError

MODULES_DIR = Path(__file__).parent / "modules"
BUILTIN_METRICS = sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load_metric(name: str):
    """Load an ``evaluate`` metric: hf_tl's own modules by name (offline), anything else as evaluate resolves it.

    Args:
        name: ``pearsonr``, ``spearmanr``, ``accuracy``, ``f1``, a local module path, or a Hub metric name.

    Returns:
        An ``evaluate.EvaluationModule``.

    Raises:
        HfTlError: if the metric cannot be loaded (for example a Hub metric while offline).
    """
    import evaluate

    target = str(MODULES_DIR / name) if name in BUILTIN_METRICS else name
    try:
        return evaluate.load(target)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
        raise HfTlError(f"Cannot load metric '{name}' ({type(err).__name__}); use one of hf_tl's offline metrics "
                        f"({', '.join(BUILTIN_METRICS)}) or a local evaluate module path.") from None


@dataclass
class Evaluator:
    """Compute named metrics over all predictions of a split.

    Args:
        metrics: Metric names for :func:`load_metric`.
        primary_metric: The key that early stopping and best-checkpoint selection read.
        greater_is_better: Direction of the primary metric.
        compute_kwargs: Extra keyword arguments per metric (e.g. ``{"f1": {"average": "macro"}}``).
    """

    metrics: list[str]
    primary_metric: str
    greater_is_better: bool = True
    compute_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self._modules = {name: load_metric(name) for name in self.metrics}

    def __call__(self, predictions, references) -> dict[str, float]:
        """Return ``{metric: value}`` for all predictions and references of a split.

        Two-dimensional predictions are class scores (logits); their argmax is the predicted class.
        """
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.ndim == 2:
            predictions = predictions.argmax(-1)
        results: dict[str, float] = {}
        for name, module in self._modules.items():
            results.update(module.compute(predictions=predictions, references=references,
                                          **self.compute_kwargs.get(name, {})))
        return {k: float(v) for k, v in results.items()}

    def metric_value(self, predictions, references, metric: str | None = None) -> float:
        """One metric (default: the primary) for one split, computed by the same modules as :meth:`__call__` but
        without ``evaluate``'s per-call bookkeeping, so resampling (a bootstrap) can call it thousands of times.

        Raises:
            HfTlError: for a metric none of the evaluator's modules computes.
        """
        metric = metric or self.primary_metric
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.ndim == 2:
            predictions = predictions.argmax(-1)
        for name, module in self._modules.items():
            values = module._compute(predictions=predictions, references=references,
                                     **self.compute_kwargs.get(name, {}))
            if metric in values:
                return float(values[metric])
        raise HfTlError(f"No metric '{metric}' among {', '.join(self.metrics)}.")

    def greater_is_better_for(self, metric: str) -> bool:
        """Direction of ``metric``: the evaluator's own for its primary metric; errors and losses go down."""
        if metric == self.primary_metric:
            return self.greater_is_better
        return not any(word in metric for word in ("loss", "error", "mse", "mae"))

    def is_better(self, value: float, best: float | None, metric: str | None = None) -> bool:
        """Whether ``value`` of ``metric`` (default: the primary metric) improves on ``best``; NaN never does."""
        return improves(value, best, self.greater_is_better_for(metric or self.primary_metric))


def improves(value: float, best: float | None, greater_is_better: bool) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet) in the given direction; NaN never does."""
    if value != value:  # NaN: undefined metric, e.g. constant predictions
        return False
    if best is None or best != best:
        return True
    return value > best if greater_is_better else value < best
