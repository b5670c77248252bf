"""Optimizer parameter groups (weight decay, head learning rate, layer-wise decay) and the LR schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from hf_tl.layers import find_blocks, param_depth

if TYPE_CHECKING:  # annotations only: the optimizer sits below the run config
    from hf_tl.run_config import RunConfig


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # Biases and normalisation weights (1-D) are not decayed, as in BERT's original recipe.
    return param.ndim < 2 or name.endswith(".bias") or "norm" in name.lower()


def param_groups(model: nn.Module, config: RunConfig, layerwise: bool) -> list[dict]:
    """Group the trainable parameters of a TransferModel by learning rate and weight decay.

    Args:
        model: The (unwrapped) TransferModel after its strategy was applied.
        config: The run config (learning rates, weight decay, layer-wise decay).
        layerwise: Whether the strategy supports layer-wise learning-rate decay.

    Returns:
        Groups for ``torch.optim.AdamW``, each with a ``name`` for logging and the model card.
    """
    lr, decay = config.train.learning_rate, config.strategy.layerwise_lr_decay
    head_lr = config.strategy.head_learning_rate or lr
    depth_of = None
    if layerwise and decay < 1.0:
        blocks_name, blocks = find_blocks(model.backbone)
        depth_of = (blocks_name, len(blocks))
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("heads."):
            key, group_lr = ("head",), head_lr
        elif depth_of is not None:
            depth = param_depth(name[len("backbone."):], *depth_of)
            key, group_lr = (f"depth{depth}",), lr * decay ** (depth_of[1] - depth)
        else:
            key, group_lr = ("backbone",), lr
        wd = 0.0 if _no_decay(name, p) else config.train.weight_decay
        key = key + (wd,)
        group = groups.setdefault(key, {"params": [], "lr": group_lr, "weight_decay": wd,
                                        "name": f"{key[0]}{'' if wd else '/no_decay'}"})
        group["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, config: RunConfig, layerwise: bool,
                    fused: bool = False) -> torch.optim.Optimizer:
    """Return AdamW over :func:`param_groups`.

    Args:
        model: The TransferModel, strategy applied.
        config: The run config.
        layerwise: Whether the strategy supports layer-wise learning-rate decay.
        fused: Use the fused CUDA kernel (the parameters must already be on the GPU).
    """
    return torch.optim.AdamW(param_groups(model, config, layerwise), lr=config.train.learning_rate,
                             fused=True if fused else None)
