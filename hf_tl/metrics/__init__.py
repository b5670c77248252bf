"""Metrics through the evaluate API, with offline modules shipped in ``hf_tl/metrics/modules``."""

from hf_tl.metrics.evaluator import BUILTIN_METRICS, Evaluator, load_metric
from hf_tl.metrics.multitask import MultiTaskEvaluator
from hf_tl.metrics.perplexity import PerplexityEvaluator

__all__ = ["BUILTIN_METRICS", "Evaluator", "MultiTaskEvaluator", "PerplexityEvaluator", "load_metric"]
