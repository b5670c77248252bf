"""Read the rows to predict from CSV/JSONL and write them back with a ``prediction`` column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hf_tl.errors import HfTlError


def read_rows(path: str | Path) -> list[dict]:
    """Read a CSV (with a header row), TSV or JSONL file into dicts.

    Raises:
        HfTlError: for a missing file, an unknown extension or a malformed JSON line.
    """
    path = Path(path)
    if not path.is_file():
        raise HfTlError(f"Input file '{path}' does not exist; check --input.")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix in (".jsonl", ".json"):
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise HfTlError(f"Line {i + 1} of '{path}' is not valid JSON; write one object per line.") \
                        from None
        return rows
    raise HfTlError(f"Input file '{path}' must end in .csv, .tsv or .jsonl.")


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write dicts as CSV or JSONL, chosen by the file's extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["prediction"],
                                    delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def predict_rows(run, rows: list[dict], task: str | None = None, batch_size: int = 64,
                 source: str = "input") -> tuple[list[dict], dict | None]:
    """Predict for rows read by :func:`read_rows`, reading the texts from the columns the run trained on.

    When the rows also hold the task's label column, they are scored against it too.

    Args:
        run: A loaded :class:`hf_tl.predict.Run`.
        rows: The rows.
        task: The task to predict (optional for a single-task run).
        batch_size: Inputs per forward pass.
        source: The file's name, for messages.

    Returns:
        ``(rows with a 'prediction' column, metrics or None)``.

    Raises:
        HfTlError: for a missing text column, or a label the run does not know.
    """
    name, spec = run.task(task)
    columns = list(spec.text_columns.values())
    for i, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise HfTlError(f"Row {i + 1} of '{source}' has no column '{missing[0]}' (it has: {', '.join(row)}); "
                            f"task '{name}' reads its texts from {', '.join(repr(c) for c in columns)}.")
    if len(columns) == 2:
        inputs = [(str(r[columns[0]]), str(r[columns[1]])) for r in rows]
    else:
        inputs = [str(r[columns[0]]) for r in rows]
    raw = run.predict_raw(inputs, task=name, batch_size=batch_size)
    out = [{**r, "prediction": p} for r, p in zip(rows, spec.decode(raw) if rows else [])]
    label = spec.data.label_column
    if not rows or any(label not in r for r in rows):
        return out, None
    # Labels are checked like training data: an unseen label stops with its row named.
    references = spec.labels_of([r[label] for r in rows], f"'{source}'")
    return out, spec.evaluator()(raw, references)
