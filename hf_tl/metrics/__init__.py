"""Metrics through the evaluate API, with offline modules shipped in ``hf_tl/metrics/modules``."""

from hf_tl.metrics.evaluator import BUILTIN_METRICS, Evaluator, load_metric

__all__ = ["BUILTIN_METRICS", "Evaluator", "load_metric"]
