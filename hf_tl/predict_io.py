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
