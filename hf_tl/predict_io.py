"""Read the rows to predict from CSV/JSONL and write them back with a ``prediction`` column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hf_tl.errors import HfTlError


def read_rows(path: str | Path, column_names: list[str] | None = None) -> list[dict]:
    """Read a CSV/TSV or JSONL file into dicts.

    A CSV/TSV is parsed with the quoting rules training reads its files with
    (:func:`hf_tl.data.loading.read_file`): CSV with quoting, TSV with quoting off (GLUE-style TSVs hold bare quote
    characters), a UTF-8 byte-order mark dropped, blank lines skipped. Without ``column_names`` its first row is the
    header. With them, the rows are data named in column order, unless the first row is a header (all its fields
    among the names): it is then skipped and names the columns.

    Args:
        path: The file.
        column_names: The columns of a headerless CSV/TSV (ignored for JSONL).

    Returns:
        One dict per row.

    Raises:
        HfTlError: for a missing file, an unknown extension, a row with more or fewer fields than columns, or a
            malformed JSON line.
    """
    path = Path(path)
    if not path.is_file():
        raise HfTlError(f"Input file '{path}' does not exist; check --input.")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",",
                                quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL)
            table = [fields for fields in reader if fields]
        names = [c for c in column_names or [] if c]
        if table and (not names or {f.strip() for f in table[0]} <= set(names)):
            header, table = table[0], table[1:]
        else:
            header = names
        for i, fields in enumerate(table):
            if len(fields) > len(header):
                raise HfTlError(f"Row {i + 1} of '{path}' has {len(fields)} fields but only {len(header)} columns "
                                f"are named ({', '.join(header)}); name every column with --column_names.")
            if len(fields) < len(header):
                raise HfTlError(f"Row {i + 1} of '{path}' has {len(fields)} field(s) but the file has {len(header)} "
                                f"columns ({', '.join(header)}); give every row all its fields (an empty one as "
                                f"nothing between two separators).")
        return [dict(zip(header, fields)) for fields in table]
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


def check_output_file(output: str | Path, overwrite: bool, protected: list[str | Path] = ()) -> Path:
    """Check where a command writes its result, before any work: never an existing file unless ``overwrite``,
    never a file the command reads (``protected``), never inside a run directory.

    Raises:
        HfTlError: naming the file and the fix.
    """
    from hf_tl.run_dir import enclosing_run

    path = Path(output)
    if path.is_dir():
        raise HfTlError(f"'{path}' is a folder; give --output a file name.")
    if any(path.resolve() == Path(p).resolve() for p in protected):
        raise HfTlError(f"--output '{path}' is the file being read; write the results to another file.")
    run = enclosing_run(path)
    if run is not None:
        raise HfTlError(f"--output '{path}' lies inside the run directory '{run}', which only training writes; "
                        f"choose a file outside it.")
    if path.exists() and not overwrite:
        raise HfTlError(f"'{path}' already exists; choose another --output or pass --overwrite.")
    return path


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write dicts as CSV or JSONL, chosen by the file's extension, atomically (a reader sees all or nothing)."""
    import io

    from hf_tl.safe_io import atomic_write_text, write_guard

    path = Path(path)
    with write_guard(path, "free space (or choose another --output) and run the command again"):
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".csv", ".tsv"):
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["prediction"],
                                delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buffer.getvalue())
    else:
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


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
            headerless = " (a CSV/TSV without a header row needs --column_names)" \
                if str(source).lower().endswith((".csv", ".tsv")) else ""
            raise HfTlError(f"Row {i + 1} of '{source}' has no column '{missing[0]}' (it has: {', '.join(row)}); "
                            f"task '{name}' reads its texts from {', '.join(repr(c) for c in columns)}{headerless}.")
        empty = [c for c in columns if row[c] is None or not str(row[c]).strip()]
        if empty:
            raise HfTlError(f"Row {i + 1} of '{source}' has no text in column '{empty[0]}'; give every row its "
                            f"text, or drop the row.")
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
