"""Assemble backbone, heads and strategy from a config into a ready-to-train :class:`TransferModel`."""

from __future__ import annotations

from dataclasses import dataclass

from hf_tl.backbone import Backbone, default_pooling, load_backbone
from hf_tl.layer_select import LayerMix, MixedHead, feature_size, layers_needed
from hf_tl.model import TransferModel
from hf_tl.run_config import RunConfig
from hf_tl.strategies import Strategy, get_strategy
from hf_tl.tasks import Task, get_task
from hf_tl.transfer import load_init_backbone


@dataclass
class Built:
    """Everything a run needs besides data: the model, its tasks, the strategy and the loaded backbone."""

    model: TransferModel
    tasks: dict[str, Task]
    strategy: Strategy
    backbone: Backbone


def build(config: RunConfig, apply_strategy: bool = True, weights_dir: str | None = None,
          tokenizer_dir: str | None = None) -> Built:
    """Load the backbone, attach a new head per task and apply the strategy.

    Args:
        config: The run config, its data settings resolved (label names known; see ``hf_tl.training.setup``).
        apply_strategy: Set what trains (off when loading a finished run for prediction).
        weights_dir: Backbone weights to load instead of the configured checkpoint (a run's ``backbone/``).
        tokenizer_dir: Tokenizer to load instead of the checkpoint's (a run's ``tokenizer/``).

    Returns:
        The assembled :class:`Built`.

    Raises:
        HfTlError: for a checkpoint that cannot be loaded or a strategy that does not fit the model.
    """
    if config.model.init_from_run and weights_dir is None:
        backbone = load_init_backbone(config.model)
    else:
        backbone = load_backbone(config.model, weights_dir, tokenizer_dir)
    tasks = {name: get_task(data, backbone.tokenizer, config.model.max_length)
             for name, data in config.task_data().items()}
    hidden, layer = backbone.model.config.hidden_size, config.model.layer
    heads = {name: task.build_head(feature_size(layer, hidden), config.strategy) for name, task in tasks.items()}
    if layer == "weighted":  # each task learns its own mix of the layers
        n_layers = len(layers_needed(layer, backbone.model.config.num_hidden_layers))
        heads = {name: MixedHead(LayerMix(n_layers), head) for name, head in heads.items()}
    pooling = default_pooling(config.model, backbone.is_decoder)
    strategy = get_strategy(config.strategy)
    if strategy.padding_side:  # the strategy needs this side (prompt tuning: right)
        backbone.tokenizer.padding_side = strategy.padding_side
    # With left padding, positions must count from each row's first real token, not from the padding.
    model = TransferModel(backbone.model, heads, {name: task.loss for name, task in tasks.items()}, pooling,
                          pass_position_ids=backbone.tokenizer.padding_side == "left", layer=layer)
    if apply_strategy:
        model = strategy.apply(model)
    return Built(model=model, tasks=tasks, strategy=strategy, backbone=backbone)
