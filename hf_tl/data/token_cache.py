"""Tokenized splits stored on disk and reused by later runs on the same data with the same tokenizer.

The key of a split is a hash of everything its tokens depend on: the raw split's ``datasets`` fingerprint (it
changes with the data file's path, contents and modification time, and with the rows selected from it), the task
and its data settings (columns, label names, prompt template, architecture), the tokenizer's vocabulary and rules,
and ``max_length``. Only splits read through ``datasets``' own cache have a fingerprint that lasts across processes;
others (an in-memory dataset) are tokenized every time. An entry is written under a temporary name and renamed into
place whole; an entry that cannot be read back is deleted and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from hf_tl.safe_io import remove_orphans, temp_sibling, write_guard

ENV_CACHE_DIR = "HF_TL_TOKENIZED_CACHE"
FORMAT_VERSION = 1
ROWS_FILE = "hf_tl_rows.json"  # written last into an entry: the rows it must hold


def cache_root() -> Path:
    """The cache folder: ``$HF_TL_TOKENIZED_CACHE``, else ``~/.cache/hf_tl/tokenized``."""
    return Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "hf_tl" / "tokenized")


def split_key(task, raw, split: str, tokenizer_fp: str) -> str | None:
    """The cache key of one raw split as ``task`` tokenizes it, or None when the split has no lasting fingerprint.

    Args:
        task: The :class:`hf_tl.tasks.base.Task` (its data settings and ``max_length``).
        raw: The raw split (a ``datasets.Dataset``).
        split: ``train`` or ``validation``.
        tokenizer_fp: :func:`hf_tl.feature_cache.tokenizer_fingerprint` of the task's tokenizer.
    """
    if not getattr(raw, "cache_files", None) or not getattr(raw, "_fingerprint", None):
        return None
    parts = {"format": FORMAT_VERSION, "task": type(task).__name__, "data": asdict(task.data), "split": split,
             "raw": raw._fingerprint, "rows": len(raw), "tokenizer": tokenizer_fp, "max_length": task.max_length}
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _read(entry: Path):
    """The entry's dataset, or None when it is missing or cannot be read whole (then it is deleted)."""
    from datasets import load_from_disk

    if not entry.is_dir():
        return None
    try:
        rows = json.loads((entry / ROWS_FILE).read_text())["rows"]
        dataset = load_from_disk(str(entry))
        if len(dataset) == rows:
            return dataset
    except Exception:  # a damaged entry fails in whichever reader meets it first; it is rebuilt below
        pass
    shutil.rmtree(entry, ignore_errors=True)
    return None


def tokenized_split(task, raw, split: str, tokenizer_fp: str | None, store: bool = True) -> tuple[object, str]:
    """Check and tokenize a raw split, or read its tokens from the cache.

    Args:
        task: The task that prepares and tokenizes the split.
        raw: The raw split.
        split: Its name.
        tokenizer_fp: The tokenizer's fingerprint (None with ``store`` off).
        store: Read and write the cache.

    Returns:
        ``(tokenized Dataset, "hit" | "built" | "computed")``.

    Raises:
        HfTlError: for data the task refuses (missing columns, texts or labels).
    """
    key = split_key(task, raw, split, tokenizer_fp) if store else None
    if key is None:
        return task.tokenize(task.prepare_split(raw, split)), "computed"
    root = cache_root()
    entry = root / key
    cached = _read(entry)
    if cached is not None:
        return cached, "hit"
    dataset = task.tokenize(task.prepare_split(raw, split))
    with write_guard(root, f"free space, or set {ENV_CACHE_DIR} to another folder, or --cache_tokenized false"):
        root.mkdir(parents=True, exist_ok=True)
        remove_orphans(root)
        staging = temp_sibling(entry)
        try:
            dataset.save_to_disk(str(staging))
            (staging / ROWS_FILE).write_text(json.dumps({"rows": len(dataset)}))
            os.rename(staging, entry)  # fails when another run put the same entry in place first: keep theirs
        except OSError:
            if not entry.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dataset, "built"
