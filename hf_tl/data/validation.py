"""Checks on raw splits, so bad data stops the run with one clear sentence before any training."""

from __future__ import annotations

import math

from hf_tl.errors import HfTlError


def check_columns(dataset, split: str, columns: dict[str, str]) -> None:
    """Check that every configured column exists.

    Args:
        dataset: The raw split.
        split: Its name, for the message.
        columns: ``{option name: column name}``, e.g. ``{"label_column": "score"}``.

    Raises:
        HfTlError: naming the missing column, the columns that exist, and the option to change.
    """
    for option, column in columns.items():
        if column not in dataset.column_names:
            raise HfTlError(f"The {split} data has no column '{column}' (it has: {', '.join(dataset.column_names)}); "
                            f"set {option}, or column_names for a file without a header row.")


def check_not_empty(dataset, split: str) -> None:
    """Raise :class:`HfTlError` if the split has no rows."""
    if len(dataset) == 0:
        raise HfTlError(f"The {split} split is empty; give a file with at least one data row.")


def check_texts(values: list, split: str, column: str, option: str = "text_column") -> None:
    """Check a text column: no missing rows, and not a column of numbers (a mixed-up column mapping).

    Raises:
        HfTlError: for a missing (null) text, naming its row, or a column that holds only numbers.
    """
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise HfTlError(f"Row {i + 1} of the {split} data has no text in column '{column}'; fill or drop it.")
    if values and all(_is_number(v) for v in values):
        raise HfTlError(f"Column '{column}' of the {split} data holds only numbers, not text; check {option} (the "
                        f"column mapping looks mixed up).")


def _is_number(value) -> bool:
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def check_scores(values: list, split: str, column: str, low: float, high: float) -> list[float]:
    """Convert scores to floats and check their range.

    Args:
        values: The raw score column.
        split: The split's name, for the message.
        column: The column's name, for the message.
        low: Lowest valid score.
        high: Highest valid score.

    Returns:
        The scores as floats.

    Raises:
        HfTlError: for a non-numeric or out-of-range score, naming its row.
    """
    scores = []
    for i, value in enumerate(values):
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise HfTlError(f"Row {i + 1} of the {split} data has a non-numeric score {value!r} in column "
                            f"'{column}'; the label column must hold numbers (check label_column/column_names).") \
                from None
        if math.isnan(score):
            raise HfTlError(f"Row {i + 1} of the {split} data has no score in column '{column}'; fill or drop it.")
        if not low <= score <= high:
            raise HfTlError(f"Row {i + 1} of the {split} data has score {score} in column '{column}', outside "
                            f"[{low}, {high}]; fix the row or set score_min/score_max.")
        scores.append(score)
    return scores
