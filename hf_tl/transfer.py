"""Task-to-task transfer: start a run from the backbone of a finished run, and record the chain of runs.

The previous run's head is dropped; its backbone is loaded as it ended (full weights, or the base checkpoint with
its LoRA/IA3 adapter merged in), with its tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hf_tl.backbone import Backbone, load_backbone
from hf_tl.config import DEFAULT_MODEL, ModelArguments
from hf_tl.config_io import load_config
from hf_tl.errors import HfTlError
from hf_tl.run_config import RunConfig
from hf_tl.run_dir import ADAPTER_DIR, CONFIG_FILE, LINEAGE_FILE, RESULTS_FILE, TOKENIZER_DIR
from hf_tl.strategies import strategy_class


def _previous_run(path: str) -> Path:
    """The finished run ``path`` names, if its strategy allows starting from it.

    Raises:
        HfTlError: if it is not a finished run, or its strategy cannot be transferred from.
    """
    run = Path(path).expanduser().resolve()
    if not (run / CONFIG_FILE).is_file() or not (run / RESULTS_FILE).is_file():
        raise HfTlError(f"init_from_run '{path}' is not a finished hf_tl run (no {CONFIG_FILE} and {RESULTS_FILE}); "
                        f"pass the output_dir of a completed run.")
    trained_by = strategy_class(load_config(run / CONFIG_FILE).strategy.strategy)
    if not trained_by.transferable:
        raise HfTlError(f"Run '{run}' {trained_by.transfer_refusal}.")
    return run


def resolve_init_from_run(config: RunConfig) -> RunConfig:
    """Take the base checkpoint settings from the run named by ``init_from_run`` (a no-op without it).

    Returns:
        The config with ``init_from_run`` made absolute and the previous run's checkpoint settings.

    Raises:
        HfTlError: if the path is not a finished run, or the config names a different base checkpoint.
    """
    if not config.model.init_from_run:
        return config
    run = _previous_run(config.model.init_from_run)
    previous = load_config(run / CONFIG_FILE).model
    mine = config.model.model_name_or_path
    if mine not in (DEFAULT_MODEL, previous.model_name_or_path):
        raise HfTlError(f"init_from_run takes its backbone from '{run}', which starts from "
                        f"'{previous.model_name_or_path}', but model_name_or_path is '{mine}'; drop one of the two.")
    # trust_remote_code stays the caller's: a run's own files never switch remote code on.
    model = replace(config.model, init_from_run=str(run), model_name_or_path=previous.model_name_or_path,
                    gguf_file=previous.gguf_file)
    return replace(config, model=model)


def load_init_backbone(args: ModelArguments) -> Backbone:
    """Load the backbone a previous run ended with (its head is not loaded).

    Args:
        args: Model settings whose ``init_from_run`` names the run (see :func:`resolve_init_from_run`).

    Returns:
        The backbone, with the previous run's tokenizer; a LoRA/IA3 adapter is merged into the weights.

    Raises:
        HfTlError: if the run is not a finished run, or its strategy cannot be transferred from.
    """
    run = _previous_run(args.init_from_run)
    from hf_tl.standard.one_copy import backbone_weights

    weights = backbone_weights(run)  # backbone/, or the root's standard model when it holds the weights
    folder = (weights if weights.is_dir() else weights.parent) if weights.exists() else None
    backbone = load_backbone(args, str(folder) if folder else None, str(run / TOKENIZER_DIR))
    if (run / ADAPTER_DIR).is_dir():  # its strategy allows the transfer (_previous_run), so the adapter merges
        from peft import PeftModel

        backbone.model = PeftModel.from_pretrained(backbone.model, str(run / ADAPTER_DIR)).merge_and_unload()
    return backbone


def lineage(config: RunConfig, run_dir: Path) -> dict:
    """The chain this run continues: base checkpoint -> earlier runs -> this run.

    Returns:
        ``{"base_checkpoint": {...}, "runs": [{"path", "tasks", "strategy", "results"}, ..., this run]}``.
    """
    runs = []
    if config.model.init_from_run:
        previous = Path(config.model.init_from_run)
        runs = json.loads((previous / LINEAGE_FILE).read_text())["runs"] if (previous / LINEAGE_FILE).is_file() \
            else []
        if runs:
            runs[-1]["results"] = json.loads((previous / RESULTS_FILE).read_text())
    this = {"path": str(Path(run_dir).resolve()), "tasks": {name: d.task for name, d in config.task_data().items()},
            "strategy": config.strategy.strategy}
    base = {"model_name_or_path": config.model.model_name_or_path, "gguf_file": config.model.gguf_file}
    return {"base_checkpoint": base, "runs": [*runs, this]}
