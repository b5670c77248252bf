"""Find the transformer blocks of any BERT- or GPT-family backbone, so strategies can address them by depth."""

from __future__ import annotations

import re

from torch import nn

from hf_tl.errors import HfTlError

# Attribute names that hold the block list in common architectures (BERT: encoder.layer, GPT-2: h, LLaMA: layers).
_BLOCK_NAMES = ("layer", "layers", "h", "blocks", "block")


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Return the qualified name and the ModuleList of the transformer blocks.

    Args:
        model: A bare backbone (``AutoModel``) or a PEFT model wrapping one.

    Returns:
        ``(name, blocks)`` with block 0 at the bottom.

    Raises:
        HfTlError: if no block list can be found.
    """
    config = getattr(model, "config", None)
    expected = None
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        expected = expected or getattr(config, attr, None)
    candidates = [(name, module) for name, module in model.named_modules()
                  if isinstance(module, nn.ModuleList) and name.split(".")[-1] in _BLOCK_NAMES and len(module) > 0]
    if expected:
        candidates = [c for c in candidates if len(c[1]) == expected] or candidates
    if not candidates:
        raise HfTlError(f"Cannot find the transformer blocks of {type(model).__name__}; the layer-wise strategies "
                        f"support BERT- and GPT-family backbones.")
    return max(candidates, key=lambda c: len(c[1]))


def parse_layer_spec(spec: str, num_blocks: int) -> list[int]:
    """Parse '0,4-5' into sorted block indices.

    Args:
        spec: Comma-separated indices and inclusive ranges; negative indices count from the top.
        num_blocks: How many blocks the backbone has.

    Returns:
        Sorted unique indices.

    Raises:
        HfTlError: for malformed text or an index outside the model.
    """
    indices: set[int] = set()
    for part in str(spec).split(","):
        match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", part)
        if not match:
            raise HfTlError(f"Cannot read layers '{spec}'; write indices and ranges like '0,4-5' or '-2--1'.")
        lo, hi = (int(g) if g is not None else None for g in match.groups())
        lo = lo if lo >= 0 else num_blocks + lo
        hi = lo if hi is None else (hi if hi >= 0 else num_blocks + hi)
        if hi < lo:
            raise HfTlError(f"layers '{spec}' has the empty range '{part.strip()}'; write the lower block first.")
        indices.update(range(lo, hi + 1))
    bad = [i for i in indices if not 0 <= i < num_blocks]
    if bad:
        raise HfTlError(f"layers '{spec}' names block {bad[0]}, but the model has {num_blocks} blocks "
                        f"(0-{num_blocks - 1}).")
    return sorted(indices)


def param_depth(name: str, blocks_name: str, num_blocks: int) -> int:
    """Depth of a backbone parameter: -1 for embeddings, ``i`` inside block ``i``, ``num_blocks`` above the blocks.

    Args:
        name: The parameter's qualified name within the backbone.
        blocks_name: The qualified name of the block list (from :func:`find_blocks`).
        num_blocks: Number of blocks.

    Returns:
        The depth, used for layer-wise learning rates and partial/gradual unfreezing.
    """
    prefix = blocks_name + "."
    if name.startswith(prefix):
        return int(name[len(prefix):].split(".", 1)[0])
    # Parameters outside the blocks are either input embeddings (below) or final norms / PEFT prompts (above).
    parts = name.lower().split(".")
    if "prompt_encoder" in parts:  # PEFT virtual tokens sit with the adapters, above the frozen model
        return num_blocks
    if any("embed" in part or part in ("wte", "wpe") for part in parts):
        return -1
    return num_blocks
