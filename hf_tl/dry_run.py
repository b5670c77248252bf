"""A dry run: what a config would train, printed without training (``--dry_run``, ``hf-tl trainable``)."""

from __future__ import annotations

from hf_tl.runs import run_kind_of
from hf_tl.strategies import get_strategy


def describe_config(config) -> str:
    """Describe what ``config`` would train, as its run kind builds it (no data is written, nothing trains).

    Returns:
        The trainable-parameter report as text (or, for a chain of runs, what each run does).

    Raises:
        HfTlError: for a checkpoint that cannot be loaded or a strategy that does not fit the model.
    """
    return run_kind_of(config)(config, get_strategy(config.strategy)).describe()
