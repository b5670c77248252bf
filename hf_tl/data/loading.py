"""Read a task's raw splits from local CSV/TSV/JSON(L) files or from the Hugging Face Hub."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hf_tl.errors import HfTlError, hub_is_offline

if TYPE_CHECKING:  # annotations only: the data code sits below the config
    from hf_tl.config import DataArguments

DATA_DIR_ENV = "HF_TL_DATA_DIR"
# Plain text (one document or paragraph a line, column "text"): WikiText's .tokens and .raw files, and .txt for
# tasks that read plain text (language modelling) unless column_names asks for tab-separated columns; other tasks
# read .txt as tab-separated (SICK's files).
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json", ".tokens": "text",
            ".raw": "text"}


def resolve_data_file(path: str, data_dir: str | None) -> Path:
    """Find a data file: as given, else under ``data_dir`` (or the ``HF_TL_DATA_DIR`` environment variable).

    Args:
        path: The file as written in the config or flag.
        data_dir: Optional base folder.

    Returns:
        The existing file.

    Raises:
        HfTlError: if the file does not exist in either place.
    """
    candidate = Path(os.path.expanduser(os.path.expandvars(path)))
    base = data_dir or os.environ.get(DATA_DIR_ENV)
    if not candidate.is_file() and base and not candidate.is_absolute():
        candidate = Path(os.path.expanduser(base)) / candidate
    if not candidate.is_file():
        where = f" (also looked under {base})" if base else f" (set {DATA_DIR_ENV} or data_dir for relative paths)"
        raise HfTlError(f"Data file '{path}' does not exist{where}; check train_file/validation_file, or read a Hub "
                        f"dataset with --dataset_name.")
    if candidate.suffix.lower() not in SUFFIXES:
        raise HfTlError(f"Data file '{candidate}' must end in .csv, .tsv, .txt, .json or .jsonl (or .tokens "
                        f"or .raw: plain text, one document a line).")
    return candidate


def read_file(path: Path, column_names: list[str] | None, split: str = "data", plain_text: bool = False):
    """Read one local file into a ``datasets.Dataset``.

    CSV is read with quoting (fields with commas are quoted); TSV with quoting off, since GLUE-style TSVs hold
    bare quote characters. A UTF-8 byte-order mark is dropped.

    Args:
        path: The file.
        column_names: Names for a CSV/TSV file's columns (its first row is then data).
        split: The split's name, for messages.
        plain_text: Read a ``.txt`` file as plain text (one document a line, column ``text``) unless
            ``column_names`` is given.

    Raises:
        HfTlError: if the file cannot be parsed.
    """
    from datasets import load_dataset

    kind = SUFFIXES[path.suffix.lower()]
    if plain_text and path.suffix.lower() == ".txt" and not column_names:
        kind = "text"
    kwargs: dict = {}
    if kind == "csv":
        kwargs["encoding"] = "utf-8-sig"
        if path.suffix.lower() in (".tsv", ".txt"):
            kwargs.update(sep="\t", quoting=csv.QUOTE_NONE)
        if column_names:
            kwargs["column_names"] = column_names
    try:
        return load_dataset(kind, data_files={"split": str(path)}, split="split", **kwargs)
    except Exception as err:  # datasets wraps pandas/arrow errors in many types
        if "corresponds to no data" in str(err) or "No columns to parse" in str(err):
            raise HfTlError(f"The {split} split is empty ('{path}' has no data rows); give a file with at least one "
                            f"row.") from None
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise HfTlError(f"Cannot read '{path}' as {kind} ({first}); check its format and column_names.") from None


def load_hub_splits(name: str, config_name: str | None) -> dict:
    """Load a dataset's train and validation splits from the Hub.

    Raises:
        HfTlError: when offline, or the dataset or config does not exist.
    """
    from datasets import load_dataset

    try:
        dataset = load_dataset(name, config_name)
    except Exception as err:
        if hub_is_offline() or "connect" in str(err).lower() or "offline" in str(err).lower():
            raise HfTlError(f"Cannot load dataset '{name}' from the Hub while offline; pass local files with "
                            f"--train_file and --validation_file (relative ones are read under {DATA_DIR_ENV}) "
                            f"instead.") from None
        raise HfTlError(f"Cannot load dataset '{name}'{f' ({config_name})' if config_name else ''}: "
                        f"{str(err).splitlines()[0]}") from None
    splits = {}
    for split, names in (("train", ("train",)), ("validation", ("validation", "dev", "validation_matched"))):
        found = next((n for n in names if n in dataset), None)
        if found:
            splits[split] = dataset[found]
    return splits


def _missing_relative_files(args: DataArguments) -> list[str]:
    """The configured relative data files that do not exist from the working directory."""
    files = [f for f in (args.train_file, args.validation_file) if f]
    return [f for f in files if not Path(f).is_absolute() and not Path(os.path.expanduser(f)).is_file()]


def with_data_source(args: DataArguments) -> DataArguments:
    """The data settings with their source decided: the local files, or the Hub copy they name.

    A config may name the Hub copy of its local files (``fallback_dataset_name``). It is read instead of the files,
    with a line saying so, only when no data folder is set (``data_dir`` and ``HF_TL_DATA_DIR`` unset) and the
    relative files are not found from the working directory; a data folder that lacks the files is an error, never
    a reason to read something else. The returned settings name the source actually read, so the run's
    ``config.yaml`` records it.

    Raises:
        HfTlError: when the Hub copy is needed but the Hub is switched off, naming both ways to give the data.
    """
    from dataclasses import replace

    if args.dataset_name or not args.fallback_dataset_name or args.data_dir or os.environ.get(DATA_DIR_ENV):
        return args
    missing = _missing_relative_files(args)
    if not missing:
        return args
    name = args.fallback_dataset_name
    if hub_is_offline():
        raise HfTlError(f"No data folder is set for '{missing[0]}' and the Hub is offline (HF_HUB_OFFLINE=1), so "
                        f"'{name}' cannot be read either; set {DATA_DIR_ENV} (or data_dir) to the folder that holds "
                        f"{' and '.join(missing)}, or go online to read it from the Hub.")
    print(f"hf_tl: no data folder is set ({DATA_DIR_ENV} or data_dir) for {', '.join(missing)}; reading the Hub "
          f"dataset '{name}' instead", flush=True)
    return replace(args, dataset_name=name, train_file=None, validation_file=None, column_names=None)


def load_raw_splits(args: DataArguments, need_train: bool = True, plain_text: bool = False) -> dict:
    """Load the raw ``train`` and ``validation`` splits named by the data settings.

    Args:
        args: The data settings.
        need_train: Whether a train split is required (not for zero-shot evaluation).
        plain_text: The task reads ``.txt`` files as plain text (see :func:`read_file`).

    Returns:
        ``{"train": Dataset, "validation": Dataset}`` (train may be missing when not needed).

    Raises:
        HfTlError: when no source is given or a required split is missing.
    """
    names = [c.strip() for c in args.column_names.split(",")] if args.column_names else None
    if args.dataset_name:  # a Hub dataset wins over local files, so --dataset_name overrides a config's files
        splits = load_hub_splits(args.dataset_name, args.dataset_config_name)
    elif args.train_file or args.validation_file:
        splits = {}
        for split, path in (("train", args.train_file), ("validation", args.validation_file)):
            if path:
                splits[split] = read_file(resolve_data_file(path, args.data_dir), names, split, plain_text)
    else:
        raise HfTlError("No data given; set train_file and validation_file (local files) or dataset_name (Hub).")
    for split in ("validation",) + (("train",) if need_train else ()):
        if split not in splits:
            flag = "validation_file" if split == "validation" else "train_file"
            raise HfTlError(f"No {split} split; set {flag} (or a dataset_name that has a {split} split).")
    return splits
