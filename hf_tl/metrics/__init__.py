"""Metrics through the evaluate API, with offline modules shipped in ``hf_tl/metrics/modules``."""

from hf_tl.metrics.evaluator import BUILTIN_METRICS, Evaluator, load_metric
from hf_tl.metrics.multitask import MultiTaskEvaluator

__all__ = ["BUILTIN_METRICS", "Evaluator", "MultiTaskEvaluator", "load_metric"]
