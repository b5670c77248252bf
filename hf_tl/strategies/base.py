"""The strategy plug-in contract and its registry.

A strategy decides what trains, and when. It is applied once to a :class:`~hf_tl.model.TransferModel` before the
model is handed to Accelerate, so distributed wrappers see a fixed set of trainable parameters for the whole run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from hf_tl.config import StrategyArguments
from hf_tl.errors import HfTlError
from hf_tl.layers import find_blocks, param_depth

STRATEGIES: dict[str, type[Strategy]] = {}


def register(name: str):
    """Class decorator that registers a strategy under ``name`` (the value of the ``strategy:`` setting)."""

    def wrap(cls):
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return wrap


def get_strategy(args: StrategyArguments) -> Strategy:
    """Instantiate the strategy named by ``args.strategy``.

    Raises:
        HfTlError: for an unknown name.
    """
    if args.strategy not in STRATEGIES:
        raise HfTlError(f"Unknown strategy '{args.strategy}'; choose one of {', '.join(STRATEGIES)}.")
    return STRATEGIES[args.strategy](args)


FIXED_LAYER_CHOICES = "choose layer last, second_to_last, mean_last4 or concat_last4."


def refuse_learned_mix(model: nn.Module, reason: str) -> None:
    """Stop a strategy that learns nothing by gradient from running with ``layer: weighted`` (a learned mix).

    Raises:
        HfTlError: ``reason`` and the layer choices that work.
    """
    if model.layer == "weighted":
        raise HfTlError(f"{reason}; {FIXED_LAYER_CHOICES}")


def freeze_model(model: nn.Module) -> nn.Module:
    """Nothing trains by gradient: every parameter frozen, the backbone kept in eval mode."""
    set_trainable(model, False)
    model.backbone_frozen = True
    return model


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Turn ``requires_grad`` on or off for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)


class Strategy(ABC):
    """Base class. Subclasses implement :meth:`apply` and, if training changes over time, the stage hooks."""

    name = "base"
    is_peft = False  # the backbone is saved as an adapter
    trains_backbone_weights = True  # the backbone's own weights change (saved in full)
    uses_layerwise_lr = False
    fixed_features = False  # the backbone never changes while the head trains, so its features can be cached
    fits_heads = False  # the heads are fitted in closed form on the features (``fit_heads``), not by the loop

    def __init__(self, args: StrategyArguments):
        self.args = args

    @abstractmethod
    def apply(self, model: nn.Module) -> nn.Module:
        """Set what trains on ``model`` (a TransferModel) and return it (possibly with a wrapped backbone)."""

    def init_heads(self, model: nn.Module, tasks: dict, backbone, model_args) -> None:
        """Set the heads' weights before training (zero-shot heads are built from the label texts here).

        Args:
            model: The TransferModel, strategy applied.
            tasks: ``{task name: Task}``.
            backbone: The loaded :class:`hf_tl.backbone.Backbone` (tokenizer, family, checkpoint).
            model_args: The run's model settings.
        """
        return None  # most strategies train their heads from the random start the task built

    def num_stages(self) -> int:
        """How many training stages the strategy has (1 unless it unfreezes gradually)."""
        return 1

    def plan(self, total_steps: int) -> None:
        """Told the run's total number of optimizer steps before training starts (staged strategies use it)."""
        return None

    def stage_at(self, step: int, epoch: int) -> int:
        """The stage in force at optimizer step ``step`` of epoch ``epoch``."""
        return 0

    def frozen_at_stage(self, model: nn.Module, stage: int) -> set[str]:
        """Names of parameters that require grad but must not change during ``stage``."""
        return set()

    def before_optimizer_step(self, model: nn.Module, step: int, epoch: int) -> None:
        """Drop the gradients of parameters that are not yet unfrozen, so the optimizer skips them.

        Gradients are computed (and, under DDP, all-reduced) for every parameter that ever trains; the parameters of
        later stages simply have their gradient removed before the step. That keeps the DDP wrapper valid for the
        whole run: nothing is re-wrapped and no parameter goes unused.
        """
        frozen = self.frozen_at_stage(model, self.stage_at(step, epoch))
        if frozen:
            for name, p in model.named_parameters():
                if name in frozen:
                    p.grad = None

    def describe(self) -> str:
        """One line saying what trains."""
        return self.name


class LayerwiseStrategy(Strategy):
    """Shared helpers for strategies that select backbone blocks by depth."""

    uses_layerwise_lr = True

    @staticmethod
    def blocks_of(model: nn.Module) -> tuple[str, int]:
        name, blocks = find_blocks(model.backbone)
        return name, len(blocks)

    def unfreeze_depths(self, model: nn.Module, depths: set[int]) -> None:
        """Freeze the backbone, then unfreeze the parameters at ``depths`` (see :func:`param_depth`)."""
        blocks_name, num_blocks = self.blocks_of(model)
        set_trainable(model.backbone, False)
        for name, p in model.backbone.named_parameters():
            if param_depth(name, blocks_name, num_blocks) in depths:
                p.requires_grad_(True)
        set_trainable(model.heads, True)
