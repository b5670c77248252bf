"""The run directory: everything a run leaves behind, and the guard that never loses a previous run.

Layout::

    config.yaml                 the resolved config (every option, flags applied)
    backbone/ | adapter/        fine-tuned backbone weights (safetensors) or the PEFT adapter
    heads/TASK.safetensors      the head of each task
    tokenizer/                  the tokenizer
    eval_results.json           the best dev metrics (written last: its presence marks a finished run)
    eval_log.jsonl              one line per evaluation
    train_log.jsonl             the training loss (and learning rate) per logging step
    lineage.json                base checkpoint -> earlier runs (init_from_run) -> this run
    training_info.json          learning rate per parameter group, steps, hardware, library versions
    README.md                   the model card (Hub metadata, what trained, dev metrics), pushed with the run
    trainable_parameters.txt    what trained (also .json)
    checkpoints/checkpoint-N/   Accelerate states for --resume_from_checkpoint (last and best kept)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hf_tl.errors import HfTlError

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


def holds_run(path: Path) -> bool:
    """Whether ``path`` already holds (part of) an hf_tl run or any other files."""
    return path.is_dir() and any(path.iterdir())


def check_output_dir(output_dir: str | None, overwrite: bool, resuming: bool) -> Path:
    """Check the output directory before anything is written to it (read-only; safe on every process).

    A directory that already holds files is refused unless the run resumes in it, or ``overwrite`` is set.

    Args:
        output_dir: The requested run directory.
        overwrite: ``--overwrite_output_dir``.
        resuming: Whether ``--resume_from_checkpoint`` continues a run in this directory.

    Returns:
        The run directory.

    Raises:
        HfTlError: when no directory is given, or it holds a run and neither flag allows reusing it.
    """
    if not output_dir:
        raise HfTlError("No output_dir given; set --output_dir to the folder the run should be written to.")
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise HfTlError(f"output_dir '{path}' is a file; give a folder path.")
    if holds_run(path) and not resuming and not overwrite:
        raise HfTlError(f"output_dir '{path}' already holds a run; choose another --output_dir, resume it with "
                        f"--resume_from_checkpoint latest, or pass --overwrite_output_dir (the old run is kept "
                        f"under a .previous-* name).")
    return path


def prepare_output_dir(path: Path, overwrite: bool, resuming: bool) -> Path:
    """Create the run directory after :func:`check_output_dir` passed (main process only).

    With ``overwrite``, previous contents are moved aside to ``<output_dir>.previous-<time>``, never deleted.

    Returns:
        The run directory (created).
    """
    if holds_run(path) and not resuming and overwrite:
        backup = path.with_name(f"{path.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(backup)
        print(f"hf_tl: moved the previous run in {path} to {backup}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_checkpoint(run_dir: Path, name: str) -> Path:
    """Resolve ``--resume_from_checkpoint``: ``latest`` or a checkpoint folder.

    Raises:
        HfTlError: when there is no such checkpoint.
    """
    if name == "latest":
        found = sorted((run_dir / CHECKPOINTS_DIR).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        if not found:
            raise HfTlError(f"No checkpoint to resume in '{run_dir / CHECKPOINTS_DIR}'; train without "
                            f"--resume_from_checkpoint first.")
        return found[-1]
    path = Path(name)
    if not (path / "trainer_state.json").is_file():
        raise HfTlError(f"'{name}' is not an hf_tl checkpoint (no trainer_state.json); pass a folder under "
                        f"{CHECKPOINTS_DIR}/ or 'latest'.")
    if path.resolve().parent != (run_dir / CHECKPOINTS_DIR).resolve():
        # Resuming writes into output_dir; a checkpoint of another run would mix two runs in one folder.
        raise HfTlError(f"Checkpoint '{name}' belongs to another run than output_dir '{run_dir}'; resume with "
                        f"--output_dir set to the folder that holds it.")
    return path


def prune_checkpoints(run_dir: Path, keep: set[Path]) -> None:
    """Delete checkpoints of this run other than ``keep`` (the last and the best)."""
    keep = {p.resolve() for p in keep}
    for ckpt in (run_dir / CHECKPOINTS_DIR).glob("checkpoint-*"):
        if ckpt.resolve() not in keep:
            shutil.rmtree(ckpt, ignore_errors=True)


def save_heads(heads: torch.nn.ModuleDict, run_dir: Path, state_dict: dict | None = None) -> None:
    """Write each task's head as ``heads/TASK.safetensors``.

    Args:
        heads: The model's heads.
        run_dir: The run directory.
        state_dict: The whole model's gathered state (``heads.TASK.*`` keys), when the heads are sharded (FSDP).
    """
    (run_dir / HEADS_DIR).mkdir(exist_ok=True)
    for name, head in heads.items():
        if state_dict is None:
            state = head.state_dict()
        else:
            prefix = f"heads.{name}."
            state = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(tensors, str(run_dir / HEADS_DIR / f"{name}.safetensors"))


def load_heads(heads: torch.nn.ModuleDict, run_dir: Path) -> None:
    """Load the heads written by :func:`save_heads` (strict: every task's file and tensor must match).

    Raises:
        HfTlError: if a task's head file is missing.
    """
    for name, head in heads.items():
        path = run_dir / HEADS_DIR / f"{name}.safetensors"
        if not path.is_file():
            raise HfTlError(f"Run '{run_dir}' has no head for task '{name}' ({path} is missing); the run is "
                            f"incomplete.")
        head.load_state_dict(load_file(str(path)))


def write_json(path: Path, data) -> None:
    """Write JSON with a trailing newline; NaN is kept as JSON's NaN token."""
    path.write_text(json.dumps(data, indent=2) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line."""
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
