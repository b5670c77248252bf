"""The trainable-parameter report: which parts of a model train, and how many parameters that is (pure counting)."""

from __future__ import annotations

import re

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.layers import find_blocks, param_depth


def _part_of(name: str, blocks: tuple[str, int] | None) -> str:
    if name.startswith("heads."):
        return "head"
    if blocks is None:
        return "backbone"
    depth = param_depth(name[len("backbone."):], *blocks)
    return "embeddings" if depth < 0 else ("top (final norm, adapters)" if depth == blocks[1] else f"block {depth}")


def _blocks(model: nn.Module) -> tuple[str, int] | None:
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return None
    try:
        blocks_name, block_list = find_blocks(backbone)
    except HfTlError:
        return None
    return blocks_name, len(block_list)


def trainable_report(model: nn.Module, strategy_name: str, description: str, stage_frozen: list[set[str]] = (),
                     part: str | None = None) -> dict:
    """Count trainable and total parameters, overall and per part (embeddings, each block, head).

    Args:
        model: A TransferModel after its strategy was applied, or any other model (then counted as one ``part``).
        strategy_name: The strategy, recorded in the report.
        description: One line saying what trains (the strategy's own).
        stage_frozen: Per training stage, the names of parameters that require grad but stay still in it.
        part: Count every parameter under this one part name instead of splitting a TransferModel into parts.

    Returns:
        ``{"strategy", "description", "trainable", "total", "percent", "parts": [...], "stages": [...]}``.
    """
    blocks = None if part is not None else _blocks(model)
    parts: dict[str, dict] = {}
    for name, p in model.named_parameters():
        key = part if part is not None else _part_of(name, blocks)
        entry = parts.setdefault(key, {"trainable": 0, "total": 0, "modules": set()})
        entry["total"] += p.numel()
        if p.requires_grad:
            entry["trainable"] += p.numel()
            # Name the kind of module that trains, without indices: "attention.self.query.lora_A".
            leaf = re.sub(r"\.\d+\.", ".", name.rsplit(".", 1)[0])
            entry["modules"].add(".".join(leaf.split(".")[-3:]))
    trainable = sum(p["trainable"] for p in parts.values())
    total = sum(p["total"] for p in parts.values())
    stages = [{"stage": stage, "trainable": sum(p.numel() for n, p in model.named_parameters()
                                                if p.requires_grad and n not in frozen)}
              for stage, frozen in enumerate(stage_frozen)]
    return {
        "strategy": strategy_name,
        "description": description,
        "trainable": trainable,
        "total": total,
        "percent": 100.0 * trainable / max(total, 1),
        "parts": [{"part": k, "trainable": v["trainable"], "total": v["total"], "modules": sorted(v["modules"])}
                  for k, v in parts.items()],
        "stages": stages,
    }


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
