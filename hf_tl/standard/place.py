"""Put a run's standard model at the run's root (beside hf_tl's record), or write it to an export folder.

At the root, the files are moved in one by one with the file each loader looks for first (``modules.json``,
``adapter_config.json``, ``config.json``) moved last and removed first, so a root cut short by a kill is never
loaded by a standard loader as a half model; ``standard_model.json`` records which files are the model's, what
loads it, or why nothing standard does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch

from hf_tl.backbone import is_decoder_config, looks_like_path, resolve_checkpoint
from hf_tl.errors import HfTlError
from hf_tl.safe_io import atomic_write_text, replace_dir, temp_sibling
from hf_tl.standard.manifest import MANIFEST, root_model_info
from hf_tl.standard.one_copy import backbone_weights, drop_backbone_copy, held_backbone, restore_backbone
from hf_tl.standard.plan import LIBRARY, LOADERS, Plan, plan_format
from hf_tl.standard.writers import (
    Parts,
    merged_backbone,
    write_cross_encoder,
    write_language_model,
    write_peft,
    write_sentence_transformer,
    write_transformers,
)

MARKERS = ("modules.json", "adapter_config.json", "config.json")  # what the loaders open first
OWN_CARD = "README.md"  # the libraries' own cards: hf_tl's card describes the run
WRITERS = {"sentence-transformers": write_sentence_transformer, "cross-encoder": write_cross_encoder,
           "transformers": write_transformers, "peft": write_peft, "masked-lm": write_language_model,
           "causal-lm": write_language_model}


def _base_name(config) -> str:
    """What a PEFT adapter names as its base: the Hub id when the base is a Hub checkpoint, else its folder."""
    base = config.model.model_name_or_path
    return base if not looks_like_path(base) else str(Path(resolve_checkpoint(base)).expanduser().resolve())


def _load(run_dir: Path, config, kind):
    """The run loaded on the CPU by its kind, or None for a kind whose model has no standard form."""
    if not getattr(kind, "standard_formats", False):
        return None
    return kind.load(run_dir, config, torch.device("cpu"))


def run_is_decoder(run_dir: Path, config) -> bool:
    """Whether a run's backbone is a GPT-style decoder (read from its config, no weights loaded)."""
    from transformers import AutoConfig

    saved = backbone_weights(run_dir)
    if saved.exists():
        return is_decoder_config(AutoConfig.from_pretrained(str(saved if saved.is_dir() else saved.parent)))
    gguf = {"gguf_file": config.model.gguf_file} if config.model.gguf_file else {}
    return is_decoder_config(AutoConfig.from_pretrained(resolve_checkpoint(config.model.model_name_or_path),
                                                        trust_remote_code=config.model.trust_remote_code, **gguf))


def _write(plan: Plan, config, loaded, folder: Path, work: Path) -> None:
    model = loaded.model
    backbone = merged_backbone(model.backbone) if plan.merge else model.backbone
    parts = Parts(backbone=backbone, head=next(iter(model.heads.values())), pooling=model.pooling,
                  tokenizer=loaded.tokenizer, task=next(iter(loaded.tasks.values())),
                  max_length=config.model.max_length)
    extra = {"base_name": _base_name(config)} if plan.format == "peft" else {}
    WRITERS[plan.format](parts, folder, work, **extra)
    (folder / OWN_CARD).unlink(missing_ok=True)


def manifest(plan: Plan, files: list[str]) -> dict:
    """What ``standard_model.json`` records for a written form."""
    return {"format": plan.format, "loader": LOADERS[plan.format], "library": LIBRARY[plan.format],
            "merged": plan.merge, "files": files}


def _record(run_dir: Path, info: dict) -> dict:
    atomic_write_text(run_dir / MANIFEST, json.dumps(info, indent=2) + "\n")
    return info


def remove_root_model(run_dir: Path) -> None:
    """Remove the standard model a previous export put at the root (what loaders open first goes first); when it
    holds the run's backbone, ``backbone/`` is written back from it first, so the weights are never lost."""
    info = root_model_info(run_dir)
    restore_backbone(run_dir, info)
    files = info.get("files", [])
    for name in sorted(files, key=lambda n: n not in MARKERS):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    (run_dir / MANIFEST).unlink(missing_ok=True)


def write_root_model(run_dir: Path, config, kind) -> dict:
    """Write the run's standard model at its root (main process only, while the run is marked unfinished).

    Args:
        run_dir: The run directory, its hf_tl model folders (backbone/adapter, heads, tokenizer) written.
        config: The run's config.
        kind: Its run kind (:class:`hf_tl.runs.base.RunKind`); kinds with ``standard_formats`` load its model.

    Returns:
        The manifest (see :func:`root_model_info`).
    """
    run_dir = Path(run_dir)
    remove_root_model(run_dir)
    try:  # the plan first: a run with no standard form is not read back
        standard = getattr(kind, "standard_formats", False)
        plan = plan_format(config, None, False, standard_kind=standard,
                           is_decoder=standard and run_is_decoder(run_dir, config))
        loaded = _load(run_dir, config, kind)
    except HfTlError as err:
        return _record(run_dir, {"format": None, "reason": str(err).rstrip(".")})
    staging, work = temp_sibling(run_dir / ".standard"), temp_sibling(run_dir / ".standard-work")
    try:
        staging.mkdir()
        work.mkdir()
        try:
            _write(plan, config, loaded, staging, work)
        except OSError:
            raise  # a full disk or a lost folder: write_guard says so, and the run stays resumable
        except Exception as err:  # the form cannot hold these weights exactly, or a library refused: the trained
            # run stays whole and loads with hf_tl; the reason is recorded and said
            reason = str(err).rstrip(".") if isinstance(err, HfTlError) else \
                f"writing its {plan.format} form failed ({type(err).__name__}: {(str(err).splitlines() or [''])[0]})"
            print(f"hf_tl: no standard model at the run's root: {reason}", file=sys.stderr)
            return _record(run_dir, {"format": None, "reason": reason})
        files = sorted(p.name for p in staging.iterdir())
        clashes = [n for n in files if n in _record_names()]
        if clashes:
            raise HfTlError(f"the standard model's files {clashes} would replace the run's own record")
        for name in sorted(files, key=lambda n: n in MARKERS):  # what loaders open first comes last
            source, target = staging / name, run_dir / name
            if source.is_dir():
                replace_dir(source, target)
            else:
                os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    info = _record(run_dir, {**manifest(plan, files), "holds_backbone": held_backbone(run_dir)})
    if info["holds_backbone"]:  # recorded first: a kill before backbone/ is gone leaves both, still loading
        drop_backbone_copy(run_dir)
    return info


def _record_names() -> set[str]:
    from hf_tl import run_dir as names

    return {names.CONFIG_FILE, names.RESULTS_FILE, names.LOG_FILE, names.TRAIN_LOG_FILE, names.HEADS_DIR,
            names.LINEAGE_FILE, names.INFO_FILE, names.BACKBONE_DIR, names.ADAPTER_DIR, names.TOKENIZER_DIR,
            names.CHECKPOINTS_DIR, f"{names.REPORT_FILE}.json", f"{names.REPORT_FILE}.txt", MANIFEST}
