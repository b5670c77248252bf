"""Cached backbone features for ``frozen`` training: computed once, stored on disk (Arrow), reused by every epoch
and every later run with the same key.

A frozen backbone in eval mode maps the same tokens to the same features every time, so the head can train on
stored features without running the backbone. The key of one split's entry is a hash of everything the features
depend on: the backbone's weights (hashed, so a fine-tuned or merged checkpoint at the same path is a new key),
the tokenizer, pooling, layer choice, max length, padding side, and the token ids of the split itself. An entry is
written to a temporary folder and renamed into place, with a manifest of its files' hashes; an entry whose files
do not match their manifest (a killed writer, a truncated file) is deleted and rebuilt, never used, and a temporary
folder whose writer was killed is deleted by the next run that finds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hf_tl.data.collate import PAIR_SUFFIX, PaddingCollator
from hf_tl.model import FEATURES_KEY
from hf_tl.safe_io import ORPHAN_AGE_S, remove_orphans, temp_sibling, write_guard

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
ENV_CACHE_DIR = "HF_TL_FEATURE_CACHE"
LEGACY_TMP = re.compile(r"\.[0-9a-f]{32}\.[0-9a-f]{32}\.tmp")  # how earlier versions named a temporary entry


def cache_root(configured: str | None) -> Path:
    """The cache folder: the configured one, else ``$HF_TL_FEATURE_CACHE``, else ``~/.cache/hf_tl/features``."""
    return Path(configured or os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "hf_tl" / "features")


def _hash_update(h, value) -> None:
    h.update(json.dumps(value, sort_keys=True, default=str).encode())


def model_fingerprint(model) -> str:
    """Hash of what turns token ids into features: backbone weights, pooling, layer choice, position-id handling.

    Args:
        model: A :class:`hf_tl.model.TransferModel`.

    Returns:
        A hex digest.
    """
    h = hashlib.blake2b(digest_size=16)
    _hash_update(h, {"pooling": model.pooling, "layer": model.layer, "position_ids": model.pass_position_ids,
                     "class": type(model.backbone).__name__})
    for name, tensor in model.backbone.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        _hash_update(h, [name, str(tensor.dtype), list(tensor.shape)])
        h.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's vocabulary, rules and special tokens."""
    h = hashlib.blake2b(digest_size=16)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding are per-call settings the backend keeps from its last call, not the tokenizer's.
        rules = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        _hash_update(h, rules)
    else:
        _hash_update(h, sorted(tokenizer.get_vocab().items()))
    _hash_update(h, {"special": tokenizer.special_tokens_map, "padding_side": tokenizer.padding_side,
                     "class": type(tokenizer).__name__})
    return h.hexdigest()


def data_fingerprint(dataset) -> str:
    """Hash of a tokenized split's model inputs (token ids, masks, segment ids), in row order."""
    h = hashlib.blake2b(digest_size=16)
    for column in sorted(c for c in dataset.column_names if c != "labels"):
        _hash_update(h, column)
        for row in dataset[column]:
            h.update(np.asarray(row, dtype=np.int64).tobytes())
            h.update(b"|")
    return h.hexdigest()


def feature_key(parts: dict) -> str:
    """The cache key of one split: a hash of its named parts (see :func:`key_parts`)."""
    h = hashlib.blake2b(digest_size=16)
    _hash_update(h, {"format": FORMAT_VERSION, **parts})
    return h.hexdigest()


def key_parts(model_fp: str, tokenizer_fp: str, max_length: int, dataset, mixed_precision: str = "no") -> dict:
    """Everything a split's features depend on, as recorded in the entry's manifest.

    Args:
        model_fp: :func:`model_fingerprint` of the model.
        tokenizer_fp: :func:`tokenizer_fingerprint` of its tokenizer.
        max_length: Tokens per text the split was cut to.
        dataset: The tokenized split.
        mixed_precision: The autocast precision the backbone runs in (``no``, ``fp16``, ``bf16``).

    Returns:
        The parts, to hash with :func:`feature_key`.
    """
    return {"model": model_fp, "tokenizer": tokenizer_fp, "max_length": max_length, "precision": mixed_precision,
            "data": data_fingerprint(dataset), "rows": len(dataset)}


def _file_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[str(path.relative_to(folder))] = h.hexdigest()
    return out


def _valid(entry: Path) -> bool:
    manifest = entry / MANIFEST
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return recorded == _file_hashes(entry)


@torch.inference_mode()
def compute_features(model, dataset, collate: PaddingCollator, batch_size: int, device) -> dict[str, np.ndarray]:
    """Run the backbone once over a tokenized split, in length-sorted batches (little padding).

    Args:
        model: A :class:`hf_tl.model.TransferModel` with the frozen backbone.
        dataset: Tokenized split (``input_ids`` etc., ``*_b`` for a bi-encoder's second text).
        collate: The run's padding collator (its padding side and pad id).
        batch_size: Texts per forward pass.
        device: Where the backbone runs.

    Returns:
        ``{"features": (rows, n_layers, hidden)}``, plus ``features_b`` for a bi-encoder, float32, in row order.
    """
    was_training = model.training
    model.eval()
    sides = [""] + ([PAIR_SUFFIX] if f"input_ids{PAIR_SUFFIX}" in dataset.column_names else [])
    out = {}
    for suffix in sides:
        columns = [c for c in dataset.column_names if c != "labels" and c.endswith(suffix)
                   and (suffix or not c.endswith(PAIR_SUFFIX))]
        rows = {c[: len(c) - len(suffix)]: dataset[c] for c in columns}
        order = np.argsort([len(ids) for ids in rows["input_ids"]], kind="stable")
        chunks = []
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            batch = collate([{k: v[i] for k, v in rows.items()} for i in index])
            stack = model.encode_layers(**{k: v.to(device) for k, v in batch.items()})
            chunks.append(stack.float().cpu())
        features = torch.cat(chunks).numpy()
        restored = np.empty_like(features)
        restored[order] = features
        out[FEATURES_KEY + suffix] = restored
    model.train(was_training)
    return out


def _write_entry(root: Path, key: str, arrays: dict[str, np.ndarray], parts: dict) -> None:
    """Write an entry under a temporary name, then rename it into place (another writer's finished entry wins)."""
    from datasets import Dataset as ArrowDataset

    entry = root / key
    tmp = temp_sibling(entry)  # names its writer, so a later run can tell a killed write from a live one
    shape = next(iter(arrays.values())).shape
    table = {name: a.reshape(a.shape[0], -1) for name, a in arrays.items()}
    try:
        ArrowDataset.from_dict(table).save_to_disk(str(tmp))
        (tmp / MANIFEST).write_text(json.dumps({"key": key, "parts": parts, "shape": list(shape[1:]),
                                                "files": _file_hashes(tmp)}, indent=1))
    except BaseException:  # a full disk, an interrupt: leave nothing half-written behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, entry)
    except OSError:  # a finished entry appeared meanwhile (a concurrent run): keep it
        shutil.rmtree(tmp, ignore_errors=True)


def _read_entry(entry: Path) -> dict[str, torch.Tensor]:
    from datasets import load_from_disk

    shape = json.loads((entry / MANIFEST).read_text())["shape"]
    stored = load_from_disk(str(entry)).with_format("numpy")
    return {name: torch.from_numpy(np.ascontiguousarray(stored[name], dtype=np.float32)).view(-1, *shape)
            for name in stored.column_names}


def _remove_legacy_orphans(root: Path) -> list[str]:
    """Delete temporary entries in the form earlier versions named them (``.KEY.HEX.tmp``, no writer in the name)
    once they are a day old: no write takes that long, so their writer is gone."""
    removed = []
    for path in root.glob(".*.tmp"):
        if LEGACY_TMP.fullmatch(path.name) and time.time() - path.lstat().st_mtime > ORPHAN_AGE_S:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def load_or_build(model, dataset, parts: dict, root: Path, collate: PaddingCollator, batch_size: int,
                  device) -> tuple[dict[str, torch.Tensor], bool]:
    """Return a split's features from the cache, computing and storing them first if needed.

    Args:
        model: The :class:`hf_tl.model.TransferModel` (frozen backbone).
        dataset: The tokenized split.
        parts: Its :func:`key_parts`.
        root: The cache folder.
        collate: The run's padding collator.
        batch_size: Texts per forward pass when computing.
        device: Where the backbone runs.

    Returns:
        ``({"features": tensor, ...}, built)`` where ``built`` says whether the backbone ran.
    """
    key = feature_key(parts)
    entry = root / key
    if root.is_dir():
        for name in remove_orphans(root) + _remove_legacy_orphans(root):
            print(f"hf_tl: removed {root / name}, a feature-cache entry left half-written by a killed run")
    if entry.exists():
        if _valid(entry):
            return _read_entry(entry), False
        warnings.warn(f"Feature cache entry {entry} is incomplete or corrupt; rebuilding it.", stacklevel=2)
        shutil.rmtree(entry, ignore_errors=True)
    arrays = compute_features(model, dataset, collate, batch_size, device)
    with write_guard(entry, f"free space there, or point feature_cache_dir (or ${ENV_CACHE_DIR}) elsewhere, and "
                            f"run again"):
        root.mkdir(parents=True, exist_ok=True)
        _write_entry(root, key, arrays, parts)
    return {name: torch.from_numpy(a) for name, a in arrays.items()}, True


class FeatureDataset(Dataset):
    """Rows of cached features with their labels, for a plain DataLoader (default collation stacks them).

    Args:
        features: ``{"features": (rows, n_layers, hidden), ...}``.
        labels: The split's labels, in row order.
        lengths: Tokens per row of the split the features came from, so length-grouped batching draws the same
            batches from the features as from the tokens (the cache changes nothing about training).
    """

    def __init__(self, features: dict[str, torch.Tensor], labels, lengths: list[int] | None = None):
        self.columns = dict(features)
        self.columns["labels"] = torch.as_tensor(labels)
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.columns["labels"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: column[index] for name, column in self.columns.items()}

    def select(self, indices) -> FeatureDataset:
        """The rows ``indices`` (in that order), e.g. a cross-validation fold's rows of the whole train split."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        out = FeatureDataset.__new__(FeatureDataset)
        out.columns = {name: column[index] for name, column in self.columns.items()}
        out.lengths = None if self.lengths is None else [self.lengths[i] for i in index.tolist()]
        return out
