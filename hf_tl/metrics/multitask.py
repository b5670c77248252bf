"""The evaluator contract over several tasks: per-task metrics as ``TASK/metric``, ranked by their average."""

from __future__ import annotations

from hf_tl.metrics.evaluator import Evaluator, improves

AVERAGE = "average"


class MultiTaskEvaluator:
    """Combine one :class:`Evaluator` per task.

    The primary metric ``average`` is the mean of the tasks' primary metrics (each with greater = better; a
    lower-is-better primary metric enters negated), so best-checkpoint selection and early stopping weigh the
    tasks equally.

    Args:
        evaluators: ``{task: Evaluator}``.
    """

    def __init__(self, evaluators: dict[str, Evaluator]):
        self.evaluators = evaluators
        self.metrics = [f"{task}/{m}" for task, e in evaluators.items() for m in e.metrics] + [AVERAGE]
        self.primary_metric = AVERAGE
        self.greater_is_better = True

    def combine(self, per_task: dict[str, dict]) -> dict[str, float]:
        """Turn ``{task: {metric: value}}`` into one flat dict with ``average``."""
        out = {f"{task}/{k}": v for task, metrics in per_task.items() for k, v in metrics.items()}
        primaries = []
        for task, evaluator in self.evaluators.items():
            value = per_task[task][evaluator.primary_metric]
            primaries.append(value if evaluator.greater_is_better else -value)
        out[AVERAGE] = sum(primaries) / len(primaries)
        return out

    def greater_is_better_for(self, metric: str) -> bool:
        """Direction of ``metric`` (``average`` or ``TASK/metric``)."""
        if metric == AVERAGE:
            return True
        task, _, name = metric.partition("/")
        return self.evaluators[task].greater_is_better_for(name)

    def is_better(self, value: float, best: float | None, metric: str | None = None) -> bool:
        """Whether ``value`` of ``metric`` improves on ``best``; NaN never does."""
        return improves(value, best, self.greater_is_better_for(metric or AVERAGE))
