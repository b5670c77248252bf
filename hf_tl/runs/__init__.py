"""Runs: a config goes to a finished run directory by its strategy's run kind (see :mod:`hf_tl.runs.base`).

Importing this package registers the built-in kinds: ``trained``, ``fitted``, ``evaluated`` (TransferModel runs),
``nli`` (an NLI checkpoint's entailment), ``chained`` (several runs in a row), ``cross_validation`` (one run per
fold of the train split) and ``ensemble`` (finished runs that predict together).
"""

from hf_tl.runs import chained, cross_validation, ensemble, model_runs, nli  # noqa: F401  (registration)
from hf_tl.runs.base import RUN_KINDS, LoadedRun, RunKind, register_run_kind, run_kind_of, train

__all__ = ["RUN_KINDS", "LoadedRun", "RunKind", "register_run_kind", "run_kind_of", "train"]
