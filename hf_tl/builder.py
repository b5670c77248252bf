"""Assemble backbone, heads and strategy from a config into a ready-to-train :class:`TransferModel`."""

from __future__ import annotations

from dataclasses import dataclass

from hf_tl.backbone import Backbone, default_pooling, load_backbone, native_head_style, pretrained_pooler
from hf_tl.errors import HfTlError
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
    strategy = get_strategy(config.strategy)
    if config.model.init_from_run and weights_dir is None:
        backbone = load_init_backbone(config.model)
    else:
        backbone = load_backbone(config.model, weights_dir, tokenizer_dir, random_init=strategy.random_init)
    tasks = {name: get_task(data, backbone.tokenizer, config.model.max_length)
             for name, data in config.task_data().items()}
    hidden, layer = backbone.model.config.hidden_size, config.model.layer
    pooling, style = default_pooling(config.model, backbone.is_decoder), None
    if config.strategy.head_type == "native":
        style, pooling = _native(config, backbone)
    heads = {name: task.build_head(feature_size(layer, hidden), config.strategy, native_style=style,
                                   backbone=backbone) for name, task in tasks.items()}
    if style == "pooler" and weights_dir is None:
        weights = pretrained_pooler(backbone.source)
        for head in heads.values():
            if weights is not None:
                head.net.load_state_dict(weights, strict=False)
    if layer == "weighted":  # each task learns its own mix of the layers
        n_layers = len(layers_needed(layer, backbone.model.config.num_hidden_layers))
        heads = {name: MixedHead(LayerMix(n_layers), head) for name, head in heads.items()}
    if strategy.padding_side:  # the strategy needs this side (prompt tuning: right)
        backbone.tokenizer.padding_side = strategy.padding_side
    # With left padding, positions must count from each row's first real token, not from the padding.
    s = config.strategy
    model = TransferModel(backbone.model, heads, {name: task.make_loss(s) for name, task in tasks.items()}, pooling,
                          pass_position_ids=backbone.tokenizer.padding_side == "left", layer=layer,
                          penalty=(s.l1_penalty, s.l2_penalty, s.penalty_on))
    if apply_strategy:
        model = strategy.apply(model)
    return Built(model=model, tasks=tasks, strategy=strategy, backbone=backbone)


def _native(config: RunConfig, backbone: Backbone) -> tuple[str, str]:
    """The native head's style and the pooling it implies (the first token for a pooler, the last for a score).

    Raises:
        HfTlError: for a backbone without such a head, or a pooling or layer setting the standard class cannot use.
    """
    style = native_head_style(backbone.model.config, backbone.is_decoder)
    pooling = "cls" if style == "pooler" else "last"
    if config.model.pooling not in ("auto", pooling):
        raise HfTlError(f"head_type native reads the {'first' if pooling == 'cls' else 'last'} token, as the "
                        f"standard sequence-classification class does; set pooling {pooling} (or auto), not "
                        f"{config.model.pooling}.")
    if config.model.layer != "last":
        raise HfTlError(f"head_type native reads the last layer, as the standard class does; set layer last, not "
                        f"{config.model.layer}.")
    return style, pooling
