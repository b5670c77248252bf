"""Cross-validation folds of a train split: stratified by label (by score bin for similarity), and grouped so that
a pair, its swap and its duplicates always fall in the same fold (else a model would be scored on rows it trained
on, mirrored). Folds depend on the data and ``cv_seed`` only, so every strategy and training seed sees the same
folds.
"""

from __future__ import annotations

import warnings

import numpy as np

from hf_tl.data.labels import label_key
from hf_tl.errors import HfTlError

SCORE_BINS = 5  # similarity: strata are five equal-width bins of the score range


def strata(values: list, regression: bool, score_min: float = 0.0, score_max: float = 1.0) -> list[str]:
    """The stratum of each row: its label, or its score's bin for regression (unreadable values form one stratum;
    the task's own checks name those rows later)."""
    out = []
    for value in values:
        key = label_key(value)
        if regression and key is not None:
            try:
                share = (float(key) - score_min) / (score_max - score_min)
                key = str(min(SCORE_BINS - 1, max(0, int(share * SCORE_BINS))))
            except ValueError:
                key = None
        out.append(str(key))
    return out


def fold_ids(texts: list[str], pairs: list[str] | None, row_strata: list[str], folds: int, seed: int) -> np.ndarray:
    """Assign each row to one of ``folds`` folds.

    Args:
        texts: The first text of each row.
        pairs: The second text of each row (pair tasks), else None.
        row_strata: Each row's stratum (see :func:`strata`).
        folds: How many folds.
        seed: The seed of the assignment.

    Returns:
        ``(rows,)`` fold numbers in ``[0, folds)``.

    Raises:
        HfTlError: when there are fewer groups of rows than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    keys = [(a,) if pairs is None else tuple(sorted((a, b))) for a, b in zip(texts, pairs or texts)]
    index: dict = {}
    groups = np.asarray([index.setdefault(k, len(index)) for k in keys])  # by first occurrence: the same every run
    if len(set(keys)) < folds:
        raise HfTlError(f"cv_folds {folds} needs at least {folds} distinct train rows, but the train split has "
                        f"{len(set(keys))}; lower cv_folds.")
    out = np.empty(len(keys), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a stratum smaller than the fold count is spread as well as it can be
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(keys, row_strata, groups)):
            out[held_out] = fold
    return out


def split_fold(train, data, text_columns: dict[str, str]) -> tuple:
    """A fold run's data: the train split without fold ``data.cv_fold`` to train on, and that fold to evaluate on.

    Args:
        train: The raw train split (a ``datasets.Dataset``).
        data: The task's data settings (``cv_folds``, ``cv_fold``, ``cv_seed``, ``label_column``, score range).
        text_columns: ``{option: column}`` of the task's text columns.

    Returns:
        ``(train part, held-out fold)``.

    Raises:
        HfTlError: for a missing column, or too few rows for the folds.
    """
    ids = fold_ids_of(train, data, text_columns)
    held_out = np.flatnonzero(ids == data.cv_fold)
    return train.select(np.flatnonzero(ids != data.cv_fold)), train.select(held_out)


def fold_ids_of(train, data, text_columns: dict[str, str]) -> np.ndarray:
    """:func:`fold_ids` of a raw train split under the task's settings.

    Raises:
        HfTlError: for a missing column, or too few rows for the folds.
    """
    for option, column in {**text_columns, "label_column": data.label_column}.items():
        if column not in train.column_names:
            raise HfTlError(f"The train data has no column '{column}' ({option}); cross-validation folds are drawn "
                            f"from it.")
    columns = list(text_columns.values())
    texts = [str(t) for t in train[columns[0]]]
    pairs = [str(t) for t in train[columns[1]]] if len(columns) > 1 else None
    regression = data.task == "similarity"
    row_strata = strata(train[data.label_column], regression, data.score_min, data.score_max)
    return fold_ids(texts, pairs, row_strata, data.cv_folds, data.cv_seed)


def check_cross_validation(config, learns: bool, strategy: str) -> None:
    """Refuse cross-validation settings the run cannot use.

    Args:
        config: The run config.
        learns: Whether the strategy learns anything from the train split.
        strategy: The strategy's name, for the message.

    Raises:
        HfTlError: naming the setting and the fix.
    """
    if not any(d.cv_folds for d in config.task_data().values()):
        return
    if config.is_multitask:
        raise HfTlError("cv_folds splits one train split into folds; cross-validate each task of a multi-task run on "
                        "its own.")
    if not learns:
        raise HfTlError(f"strategy {strategy} learns nothing from the train split, so cross-validation has nothing "
                        f"to estimate (its dev score is the estimate); remove cv_folds.")
    if config.data.cv_fold is None and config.train.push_to_hub:
        raise HfTlError("A cross-validation is several models, not one to push; push a fold afterwards (hf-tl push "
                        "OUTPUT_DIR/fold-0 user/name) or drop push_to_hub.")
