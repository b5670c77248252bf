"""The trainable-parameter report: which parts of the model train, and how many parameters that is."""

from __future__ import annotations

import re

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.layers import find_blocks, param_depth
from hf_tl.strategies import Strategy


def _part_of(name: str, blocks: tuple[str, int] | None) -> str:
    if name.startswith("heads."):
        return "head"
    if blocks is None:
        return "backbone"
    depth = param_depth(name[len("backbone."):], *blocks)
    return "embeddings" if depth < 0 else ("top (final norm, adapters)" if depth == blocks[1] else f"block {depth}")


def trainable_report(model: nn.Module, strategy: Strategy) -> dict:
    """Count trainable and total parameters, overall and per part (embeddings, each block, head).

    Args:
        model: A TransferModel after its strategy was applied.
        strategy: The applied strategy (for its description and stages).

    Returns:
        ``{"strategy", "description", "trainable", "total", "percent", "parts": [...], "stages": [...]}``.
    """
    try:
        blocks_name, block_list = find_blocks(model.backbone)
        blocks = (blocks_name, len(block_list))
    except HfTlError:
        blocks = None
    parts: dict[str, dict] = {}
    for name, p in model.named_parameters():
        part = parts.setdefault(_part_of(name, blocks), {"trainable": 0, "total": 0, "modules": set()})
        part["total"] += p.numel()
        if p.requires_grad:
            part["trainable"] += p.numel()
            # Name the kind of module that trains, without indices: "attention.self.query.lora_A".
            leaf = re.sub(r"\.\d+\.", ".", name.rsplit(".", 1)[0])
            part["modules"].add(".".join(leaf.split(".")[-3:]))
    trainable = sum(p["trainable"] for p in parts.values())
    total = sum(p["total"] for p in parts.values())
    stages = []
    if strategy.num_stages() > 1:
        for stage in range(strategy.num_stages()):
            frozen = strategy.frozen_at_stage(model, stage)
            active = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n not in frozen)
            stages.append({"stage": stage, "trainable": active})
    return {
        "strategy": strategy.name,
        "description": strategy.describe(),
        "trainable": trainable,
        "total": total,
        "percent": 100.0 * trainable / max(total, 1),
        "parts": [{"part": k, "trainable": v["trainable"], "total": v["total"], "modules": sorted(v["modules"])}
                  for k, v in parts.items()],
        "stages": stages,
    }


def describe_config(config) -> str:
    """Build the model a config describes and return its trainable-parameter report as text (a dry run).

    Raises:
        HfTlError: for a checkpoint that cannot be loaded or a strategy that does not fit the model.
    """
    from hf_tl.builder import build
    from hf_tl.tasks import TASKS
    from hf_tl.training.setup import resolve_config
    from hf_tl.transfer import resolve_init_from_run

    if config.strategy.strategy == "setfit":  # two chained runs, each described when it starts
        from hf_tl.strategies import get_strategy

        return get_strategy(config.strategy).describe()
    config = resolve_init_from_run(config)
    if any(TASKS[d.task].needs_data(d) for d in config.task_data().values()):
        # The head's size depends on the data (the number of labels), so the data is read and checked too.
        config, _ = resolve_config(config, need_train=config.strategy.strategy != "zero_shot")
    built = build(config)
    return format_report(trainable_report(built.model, built.strategy))


def format_report(report: dict) -> str:
    """Render :func:`trainable_report` as text for the terminal and ``trainable_parameters.txt``."""
    lines = [report["description"],
             f"trainable params: {report['trainable']:,} || all params: {report['total']:,} || "
             f"trainable%: {report['percent']:.4f}", "", f"{'part':<28} {'trainable':>12} {'total':>12}  modules"]
    for part in report["parts"]:
        mods = ", ".join(part["modules"][:6]) + (" ..." if len(part["modules"]) > 6 else "")
        lines.append(f"{part['part']:<28} {part['trainable']:>12,} {part['total']:>12,}  {mods}")
    if report["stages"]:
        lines.append("")
        lines.extend(f"stage {s['stage']}: {s['trainable']:,} parameters train" for s in report["stages"])
    return "\n".join(lines)
