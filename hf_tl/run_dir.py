"""The run directory: everything a run leaves behind, and the guard that never loses a previous run.

Layout::

    config.yaml                 the resolved config (every option, flags applied)
    config.json, modules.json, model.safetensors, adapter_config.json, ...
                                the run's standard model (sentence-transformers, transformers or PEFT form), listed
                                with its format in standard_model.json (:mod:`hf_tl.standard`)
    backbone/ | adapter/        fine-tuned backbone weights (safetensors) or the PEFT adapter, with the tokenizer
    heads/TASK.safetensors      the head of each task
    tokenizer/                  the tokenizer
    eval_results.json           the best dev metrics (written last: its presence marks a finished run)
    eval_log.jsonl              one line per evaluation
    train_log.jsonl             the training loss (and learning rate) per logging step
    lineage.json                base checkpoint -> earlier runs (init_from_run) -> this run
    training_info.json          learning rate per parameter group, steps, hardware, library versions
    README.md                   the model card (Hub metadata, what trained, dev metrics), pushed with the run
    trainable_parameters.txt    what trained (also .json)
    checkpoints/checkpoint-N/   Accelerate states for --resume_from_checkpoint (while training the last and the
                                best; a finished run keeps the newest save_total_limit, 1 by default)
    .hf_tl.lock                 present while a run writes here (:mod:`hf_tl.run_lock`)

Nothing here is ever half-written where a reader looks: checkpoints and model folders are written under a temporary
name and renamed into place (:mod:`hf_tl.safe_io`), and ``eval_results.json`` is removed before the model files are
rewritten and written back last, so a run without it is unfinished and does not load.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hf_tl import run_lock
from hf_tl.errors import HfTlError
from hf_tl.safe_io import atomic_write_text, nearest_existing, remove_orphans, replace_dir, write_guard

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "eval_results.json"
LOG_FILE = "eval_log.jsonl"
TRAIN_LOG_FILE = "train_log.jsonl"
HEADS_DIR = "heads"
LINEAGE_FILE = "lineage.json"
INFO_FILE = "training_info.json"
CARD_FILE = "README.md"
BACKBONE_DIR = "backbone"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
REPORT_FILE = "trainable_parameters"
WEIGHTS_FILE = "model.safetensors"  # a weights-only checkpoint's one file (save_only_model)
ENSEMBLE_FILE = "ensemble.json"  # an ensemble's members and weights (hf_tl.runs.ensemble)
MEMBERS_DIR = "members"  # an ensemble's member runs
STAGING_SUFFIX = ".partial"  # checkpoints/.checkpoint-N.partial: a checkpoint being written
CHECKPOINT_PREFIX = "checkpoint-"  # checkpoints/checkpoint-N: the state after optimizer step N


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint written after optimizer step ``step``."""
    return f"{CHECKPOINT_PREFIX}{step}"


def checkpoint_step(name: str) -> int | None:
    """The step a checkpoint folder's name holds (None for a name that is not ``checkpoint-N``)."""
    digits = name[len(CHECKPOINT_PREFIX):]
    return int(digits) if name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


def numbered_checkpoints(folder: Path) -> list[Path]:
    """The ``checkpoint-N`` folders in ``folder``, oldest step first."""
    found = (p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(p.name) is not None)
    return sorted(found, key=lambda p: checkpoint_step(p.name))


def resume_fix(run_dir: Path):
    """What to do after a run ran out of space: a callable for :func:`hf_tl.safe_io.write_guard`, read then."""

    def fix() -> str:
        if any(complete_checkpoint(p) for p in (Path(run_dir) / CHECKPOINTS_DIR).glob(f"{CHECKPOINT_PREFIX}*")):
            return "free space and rerun with --resume_from_checkpoint latest"
        return "free space and train again with --overwrite_output_dir"

    return fix


def unfinished_hint(run_dir: Path) -> str:
    """How to finish a run whose training or export was interrupted."""
    return (f"resume it with hf-tl train --config {run_dir / CONFIG_FILE} --output_dir {run_dir} "
            f"--resume_from_checkpoint latest, or train it again")


def holds_run(path: Path) -> bool:
    """Whether ``path`` already holds (part of) an hf_tl run or any other files (its lock file aside)."""
    return path.is_dir() and any(p.name != run_lock.LOCK_FILE for p in path.iterdir())


def is_run(path: Path) -> bool:
    """Whether ``path`` is an hf_tl run directory (finished or not): its config and another file only runs write."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and any((path / name).exists() for name in (
        LINEAGE_FILE, RESULTS_FILE, f"{REPORT_FILE}.json", CHECKPOINTS_DIR))


def enclosing_run(path: str | os.PathLike) -> Path | None:
    """The run directory ``path`` lies in (or is), if any."""
    p = Path(os.path.abspath(path))
    for folder in [p, *p.parents]:
        if is_run(folder):
            return folder
    return None


def check_output_dir(output_dir: str | None, overwrite: bool, resuming: bool) -> Path:
    """Check the output directory before anything is written to it (read-only; safe on every process).

    A directory that already holds files is refused unless the run resumes in it, or ``overwrite`` is set and it
    holds a run (never the folder the user works in, or files that are not a run).

    Args:
        output_dir: The requested run directory.
        overwrite: ``--overwrite_output_dir``.
        resuming: Whether ``--resume_from_checkpoint`` continues a run in this directory.

    Returns:
        The run directory.

    Raises:
        HfTlError: when no directory is given, it cannot be written, or it holds files neither flag allows reusing.
    """
    if not output_dir:
        raise HfTlError("No output_dir given; set --output_dir to the folder the run should be written to.")
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise HfTlError(f"output_dir '{path}' is a file; give a folder path.")
    if not os.access(nearest_existing(path), os.W_OK | os.X_OK):
        raise HfTlError(f"output_dir '{path}' cannot be written (read-only or no permission); choose another "
                        f"--output_dir.")
    if holds_run(path) and not resuming:
        if not overwrite:
            raise HfTlError(f"output_dir '{path}' already holds a run; choose another --output_dir, resume it with "
                            f"--resume_from_checkpoint latest, or pass --overwrite_output_dir (the old run is kept "
                            f"under a .previous-* name).")
        here = Path.cwd().resolve()
        if path.resolve() == here or path.resolve() in here.parents:
            raise HfTlError(f"--overwrite_output_dir would move '{path}', the folder you are working in, aside; "
                            f"choose a subfolder as --output_dir.")
        if not (path / CONFIG_FILE).is_file():  # a run's first file: a run interrupted at once has only it
            raise HfTlError(f"output_dir '{path}' holds files that are not an hf_tl run, and --overwrite_output_dir "
                            f"only moves runs aside; choose another --output_dir.")
    return path


def prepare_output_dir(path: Path, overwrite: bool, resuming: bool) -> tuple[Path, bool]:
    """Create the run directory after :func:`check_output_dir` passed, and take its lock (main process only).

    With ``overwrite``, previous contents are moved aside to ``<output_dir>.previous-<time>``, never deleted.
    Temporary files that a killed run left behind are deleted.

    Returns:
        ``(run directory, whether this call created it)``; the lock is given back with ``run_lock.release``.

    Raises:
        HfTlError: when another run holds the directory, or it cannot be written.
    """
    created = not path.exists()
    with write_guard(path, "choose another --output_dir"):
        path.mkdir(parents=True, exist_ok=True)
    locked = run_lock.acquire(path)
    if holds_run(path) and not resuming and overwrite:
        backup = path.with_name(f"{path.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(backup)
        run_lock.moved(locked, backup)
        run_lock.release(backup.resolve())
        print(f"hf_tl: moved the previous run in {path} to {backup}")
        path.mkdir()
        run_lock.acquire(path)
        created = True
    for folder in (path, path / CHECKPOINTS_DIR):
        for name in remove_orphans(folder) + _remove_staging(folder):
            print(f"hf_tl: removed {folder / name}, left incomplete by an interrupted run")
    return path, created


def _remove_staging(folder: Path) -> list[str]:
    """Delete checkpoints being written when their run was killed (the folder is locked, so none is live)."""
    removed = []
    for staging in folder.glob(f".{CHECKPOINT_PREFIX}*{STAGING_SUFFIX}"):
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(staging.name)
    return removed


def checkpoint_staging(checkpoint: Path) -> Path:
    """Where ``checkpoint`` is written before :func:`commit_checkpoint` renames it into place.

    The name is the same on every process (all of them write into it) and does not match ``checkpoint-*``.
    """
    return checkpoint.with_name(f".{checkpoint.name}{STAGING_SUFFIX}")


def commit_checkpoint(staging: Path, checkpoint: Path) -> None:
    """Rename a fully written checkpoint into place (main process only, after every process wrote its part)."""
    replace_dir(staging, checkpoint)


def _checkpoint_state(path: Path) -> dict | None:
    """A checkpoint's trainer state (written last), or None when it is missing or unreadable."""
    try:
        return json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None


def complete_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a whole checkpoint: its trainer state, written last, is there and readable."""
    return _checkpoint_state(path) is not None


def resumable_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a whole checkpoint with the optimizer, schedule and random states (not weights only)."""
    state = _checkpoint_state(path)
    return state is not None and not state.get("weights_only", False)


def checkpoint_damage(path: Path) -> str | None:
    """What is wrong with a checkpoint's files (cut short or corrupt after it was written), or None.

    Reads only each file's header or index (a safetensors header, a zip's central directory), so it is quick.
    """
    import zipfile

    from safetensors import safe_open

    for file in sorted(path.iterdir()):
        try:
            if file.suffix == ".safetensors":
                with safe_open(str(file), framework="pt"):
                    pass
            elif file.suffix == ".bin":
                with zipfile.ZipFile(file):
                    pass
        except Exception as err:  # the readers raise their own error types
            return f"{file.name}: {(str(err).splitlines() or [type(err).__name__])[0][:160]}"
    return None


def checkpoint_damage_sentence(path: Path, damage: str) -> str:
    """The one sentence for a damaged checkpoint."""
    return (f"Checkpoint '{path}' cannot be loaded ({damage}); resume from another one with "
            f"--resume_from_checkpoint PATH, or train again with --overwrite_output_dir.")


def find_checkpoint(run_dir: Path, name: str, announce: bool = True) -> Path:
    """Resolve ``--resume_from_checkpoint``: ``latest`` (the newest complete checkpoint) or a checkpoint folder.

    ``announce`` prints which newer checkpoints were skipped (the main process of a run says it once).

    Raises:
        HfTlError: when there is no such (complete) checkpoint.
    """
    if name == "latest":
        found = numbered_checkpoints(run_dir / CHECKPOINTS_DIR)
        complete = [p for p in found if resumable_checkpoint(p)]
        damage = {p: checkpoint_damage(p) for p in complete}
        usable = [p for p in complete if damage[p] is None]
        if not usable:
            if complete:
                raise HfTlError(checkpoint_damage_sentence(complete[-1], damage[complete[-1]]))
            raise HfTlError(f"No complete checkpoint to resume in '{run_dir / CHECKPOINTS_DIR}' (a run with "
                            f"save_only_model writes none, a finished run with save_total_limit 0 keeps none); train "
                            f"without --resume_from_checkpoint to start the run (with --overwrite_output_dir if the "
                            f"folder holds one).")
        skipped = [f"{p.name} ({'damaged' if p in damage else 'incomplete'})" for p in found
                   if p not in usable and checkpoint_step(p.name) > checkpoint_step(usable[-1].name)]
        if skipped and announce:
            print(f"hf_tl: skipping {', '.join(skipped)} and resuming from {usable[-1].name}")
        return usable[-1]
    path = Path(name)
    if not complete_checkpoint(path):
        raise HfTlError(f"'{name}' is not a complete hf_tl checkpoint (no readable trainer_state.json); pass a "
                        f"folder under {CHECKPOINTS_DIR}/ or 'latest'.")
    if not resumable_checkpoint(path):
        raise HfTlError(f"'{name}' holds the weights only (the run set save_only_model), so training cannot resume "
                        f"from it; train again without save_only_model to have resumable checkpoints.")
    damage = checkpoint_damage(path)
    if damage is not None:
        raise HfTlError(checkpoint_damage_sentence(path, damage))
    if path.resolve().parent != (run_dir / CHECKPOINTS_DIR).resolve():
        # Resuming writes into output_dir; a checkpoint of another run would mix two runs in one folder.
        raise HfTlError(f"Checkpoint '{name}' belongs to another run than output_dir '{run_dir}'; resume with "
                        f"--output_dir set to the folder that holds it.")
    return path


def prune_checkpoints(run_dir: Path, keep: set[Path]) -> None:
    """Delete checkpoints of this run other than ``keep`` (the last and the best).

    Each is renamed to a staging name before it is deleted, so a kill meanwhile never leaves a part of one under a
    checkpoint's name (the next run in the folder deletes the rest).
    """
    keep = {p.resolve() for p in keep}
    for ckpt in (run_dir / CHECKPOINTS_DIR).glob(f"{CHECKPOINT_PREFIX}*"):
        if ckpt.resolve() not in keep:
            staging = checkpoint_staging(ckpt)
            ckpt.rename(staging)
            shutil.rmtree(staging, ignore_errors=True)


def keep_final_checkpoints(run_dir: Path, limit: int) -> None:
    """What a finished run keeps: its newest ``limit`` resumable checkpoints; weights-only ones served picking the
    best and go. With none left, ``checkpoints/`` goes too."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return
    resumable = [p for p in numbered_checkpoints(folder) if resumable_checkpoint(p)]
    prune_checkpoints(run_dir, set(resumable[-limit:]) if limit else set())
    if not any(folder.iterdir()):
        folder.rmdir()


def mark_unfinished(run_dir: Path) -> None:
    """Remove ``eval_results.json`` before a run's model files change: until it is written back, the run does not
    load (a kill meanwhile leaves an unfinished run, never a mix of old and new files that loads)."""
    (run_dir / RESULTS_FILE).unlink(missing_ok=True)


def save_heads(heads: torch.nn.ModuleDict, folder: Path, state_dict: dict | None = None) -> None:
    """Write each task's head as ``FOLDER/TASK.safetensors`` (the run's ``heads/``, or where it is staged).

    Args:
        heads: The model's heads.
        folder: The folder to write.
        state_dict: The whole model's gathered state (``heads.TASK.*`` keys), when the heads are sharded (FSDP).
    """
    folder.mkdir(exist_ok=True)
    for name, head in heads.items():
        if state_dict is None:
            state = head.state_dict()
        else:
            prefix = f"heads.{name}."
            state = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(tensors, str(folder / f"{name}.safetensors"))


def load_heads(heads: torch.nn.ModuleDict, run_dir: Path) -> None:
    """Load the heads written by :func:`save_heads` (strict: every task's file and tensor must match).

    Raises:
        HfTlError: if a task's head file is missing or not a whole safetensors file.
    """
    for name, head in heads.items():
        path = run_dir / HEADS_DIR / f"{name}.safetensors"
        if not path.is_file():
            raise HfTlError(f"Run '{run_dir}' has no head for task '{name}' ({path} is missing); the run is "
                            f"incomplete: {unfinished_hint(run_dir)}.")
        head.load_state_dict(read_safetensors(path))


def read_safetensors(path: Path) -> dict:
    """Read a safetensors file.

    Raises:
        HfTlError: naming the file when it is truncated or not safetensors.
    """
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for a cut or corrupt file
        raise HfTlError(f"'{path}' is not a whole safetensors file ({str(err).splitlines()[0]}); it was cut short "
                        f"or damaged: restore it, or train the run again.") from None


def write_json(path: Path, data) -> None:
    """Write JSON with a trailing newline, atomically; NaN is kept as JSON's NaN token."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line."""
    with write_guard(path, resume_fix(path.parent)), path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
