"""One copy of a run's backbone: when the standard model at the run's root holds every backbone tensor, ``backbone/``
is dropped and the run loads its backbone from the root.

``standard_model.json`` then records under ``holds_backbone`` where the tensors lie in the root's
``model.safetensors`` (a name prefix such as ``bert.``, the backbone's tensor names) and the backbone's own config,
so ``backbone/`` can be written back whole before the root model is removed or rewritten: the weights always lie
somewhere whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from hf_tl.run_dir import BACKBONE_DIR, TOKENIZER_DIR
from hf_tl.safe_io import staged_dir, temp_sibling
from hf_tl.standard.manifest import root_model_info

WEIGHTS = "model.safetensors"


def held_backbone(run_dir: Path) -> dict | None:
    """What the root's ``model.safetensors`` holds of ``backbone/``: ``{"prefix", "keys", "config"}`` when it holds
    every backbone tensor, equal (under the same names or one prefix); None otherwise (an adapter run, a sharded
    backbone, a form that changed the weights)."""
    own, root = Path(run_dir) / BACKBONE_DIR / WEIGHTS, Path(run_dir) / WEIGHTS
    if not own.is_file() or not root.is_file():
        return None
    from safetensors.torch import load_file

    mine, theirs = load_file(str(own)), load_file(str(root))
    first = next(iter(mine), None)
    if first is None:
        return None
    prefixes = {"" if first in theirs else k[:-len(first)] for k in theirs if k == first or k.endswith(f".{first}")}
    if len(prefixes) != 1:
        return None
    prefix = prefixes.pop()
    for name, tensor in mine.items():
        held = theirs.get(f"{prefix}{name}")
        if held is None or held.dtype != tensor.dtype or held.shape != tensor.shape or not torch.equal(held, tensor):
            return None
    config = json.loads((own.parent / "config.json").read_text())
    return {"prefix": prefix, "keys": sorted(mine), "config": config}


def drop_backbone_copy(run_dir: Path) -> None:
    """Delete ``backbone/`` (its weights are held by the root, as recorded): renamed out of sight first, so a kill
    meanwhile never leaves part of it in place."""
    folder = Path(run_dir) / BACKBONE_DIR
    if folder.is_dir():
        gone = temp_sibling(folder)
        folder.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)


def restore_backbone(run_dir: Path, info: dict) -> None:
    """Write ``backbone/`` back from the root's weights (config, weights, the run's tokenizer), when the root holds
    them and ``backbone/`` is gone; written under a temporary name and renamed whole."""
    held = info.get("holds_backbone")
    run_dir = Path(run_dir)
    if not held or (run_dir / BACKBONE_DIR).is_dir():
        return
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run_dir / WEIGHTS))
    with staged_dir(run_dir / BACKBONE_DIR) as folder:
        save_file({k: tensors[f"{held['prefix']}{k}"].contiguous() for k in held["keys"]}, str(folder / WEIGHTS),
                  metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(held["config"], indent=2) + "\n")
        for file in (run_dir / TOKENIZER_DIR).iterdir():
            shutil.copy2(file, folder / file.name)


def backbone_weights(run_dir: Path) -> Path:
    """Where a run's own backbone weights are: ``backbone/``, or the root's ``model.safetensors`` when its standard
    model holds them. The path may be missing (a run that saved none, or lost them)."""
    run_dir = Path(run_dir)
    if not (run_dir / BACKBONE_DIR).is_dir() and root_model_info(run_dir).get("holds_backbone"):
        return run_dir / WEIGHTS
    return run_dir / BACKBONE_DIR
