"""The strategy plug-in contract and its registry.

A strategy decides what trains, and when, and declares everything the rest of hf_tl needs to know about it: which
kind of run it is (trained by gradient, fitted in closed form, evaluated only, chained), the padding side it needs,
the settings a comparison should give it, whether a run of it may be resumed or transferred from, and which options
it alone reads. Nothing outside ``hf_tl.strategies`` tests a strategy's name; a new strategy is one new class here.

A strategy is applied once to a :class:`~hf_tl.model.TransferModel` before the model is handed to Accelerate, so
distributed wrappers see a fixed set of trainable parameters for the whole run.

This package sits below the configuration: it imports no config module, so the config can ask it to check options.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from hf_tl.choices import LM_TASKS
from hf_tl.data.folds import check_cross_validation
from hf_tl.errors import HfTlError, suggest
from hf_tl.layers import find_blocks, param_depth
from hf_tl.regularize import check_training_settings

STRATEGIES: dict[str, type[Strategy]] = {}
DEFAULT_STRATEGY = "full"

# The run kinds (hf_tl.runs registers one implementation under each name).
TRAINED, FITTED, EVALUATED, CHAINED = "trained", "fitted", "evaluated", "chained"


@dataclass
class ChainStep:
    """One run of a chained strategy (see :meth:`Strategy.chain`).

    Attributes:
        config: The run's whole config (its ``output_dir`` is where it goes).
        keep: ``{file name: path}``: files copied into the run's directory once it finished (e.g. generated data).
        done: A line said once the run finished.
    """

    config: object
    keep: dict[str, Path] = field(default_factory=dict)
    done: str = ""


def register(name: str):
    """Class decorator that registers a strategy under ``name`` (the value of the ``strategy:`` setting)."""

    def wrap(cls):
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return wrap


def strategy_class(name: str) -> type[Strategy]:
    """The registered class of strategy ``name``.

    Raises:
        HfTlError: for an unknown name, with the closest one.
    """
    if name not in STRATEGIES:
        raise HfTlError(f"Unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}."
                        + suggest(name, STRATEGIES))
    return STRATEGIES[name]


def get_strategy(args) -> Strategy:
    """Instantiate the strategy named by ``args.strategy`` (:class:`hf_tl.config.StrategyArguments`).

    Raises:
        HfTlError: for an unknown name.
    """
    return strategy_class(args.strategy)(args)


FIXED_LAYER_CHOICES = "choose layer last, second_to_last, mean_last4 or concat_last4."


def refuse_learned_mix(layer: str, reason: str) -> None:
    """Stop a strategy that learns nothing by gradient from running with ``layer: weighted`` (a learned mix).

    Raises:
        HfTlError: ``reason`` and the layer choices that work.
    """
    if layer == "weighted":
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
    """Base class. Subclasses implement :meth:`apply` and override the declarations that differ from these."""

    name = "base"
    # --- what kind of run it is, and what that run must do -----------------------------------------------------
    run_kind = TRAINED  # trained | fitted | evaluated | chained (see hf_tl.runs)
    is_peft = False  # the backbone is saved as an adapter
    trains_backbone_weights = True  # the backbone's own weights change (saved in full)
    uses_layerwise_lr = False
    fixed_features = False  # the backbone never changes while the head trains, so its features can be cached
    learns = True  # something is learned (by gradient or fitted); False: the pretrained model scores as it is
    multitask = True  # one run may train several tasks
    padding_side: str | None = None  # the tokenizer padding side the strategy needs (None: the backbone's own)
    random_init = False  # the backbone starts from the architecture's random weights, not the checkpoint's
    skips_blocks = False  # some steps run only part of the backbone (distributed training must allow unused weights)
    # --- what a run of it allows afterwards ----------------------------------------------------------------------
    resumable = True  # a run can continue from its checkpoints
    resume_refusal = ""  # why not, when not resumable
    transferable = True  # another run may start from its backbone (init_from_run)
    transfer_refusal = ""  # why not, when not transferable
    # --- options and comparisons --------------------------------------------------------------------------------
    own_options: tuple[str, ...] = ()  # options only this strategy reads: any other strategy refuses them
    compare_settings: tuple[str, ...] = ()  # flags a comparison gives it when the config was written for another

    def __init__(self, args):
        self.args = args

    # --- checks ------------------------------------------------------------------------------------------------
    @classmethod
    def check_args(cls, args) -> None:
        """Refuse strategy settings this strategy cannot run; called when the settings are created.

        Args:
            args: The :class:`hf_tl.config.StrategyArguments`.

        Raises:
            HfTlError: naming the option and the fix.
        """
        for other in STRATEGIES.values():
            for option in other.own_options:
                if other is not cls and option not in cls.own_options and getattr(args, option, None) is not None:
                    raise HfTlError(f"{option} is only used by strategy '{other.name}', not '{cls.name}'; remove it.")

    @classmethod
    def check_config(cls, config) -> None:
        """Refuse a whole run config this strategy cannot run; called when the config is assembled.

        Args:
            config: The :class:`hf_tl.run_config.RunConfig`.

        Raises:
            HfTlError: naming the setting and the fix.
        """
        if config.model.torch_dtype == "float16" and cls.learns:
            raise HfTlError("Training float16 weights is unstable (and fp16 mixed precision refuses it); keep "
                            "torch_dtype float32 and set mixed_precision fp16 or bf16 instead.")
        check_training_settings(config, cls.run_kind == TRAINED, cls.name)
        if config.model.config_overrides and not cls.random_init:
            raise HfTlError(f"config_overrides changes the architecture, so its weights start random; strategy "
                            f"{cls.name} starts from the checkpoint's. Use strategy scratch or greedy_layerwise, or "
                            f"remove config_overrides.")
        check_cross_validation(config, cls.learns, cls.name)
        lm = [d.task for d in config.task_data().values() if d.task in LM_TASKS]
        if lm and (cls.run_kind != TRAINED or cls.fixed_features):
            raise HfTlError(f"task {lm[0]} trains its language-modelling head with the backbone's every token; "
                            f"strategy {cls.name} does not train that way. Use full, scratch, greedy_layerwise, "
                            f"partial, gradual or lora.")
        if config.tasks and not cls.multitask:
            why = "trains nothing, so it " if not cls.learns else ""
            raise HfTlError(f"strategy {cls.name} {why}has no multi-task form; run each task alone.")

    # --- comparisons -------------------------------------------------------------------------------------------
    @classmethod
    def compare_flags(cls, config) -> list[str]:
        """Flags that make ``config`` (written for another strategy) run this one sensibly in a comparison."""
        if config.strategy.strategy == cls.name:
            return []
        return list(cls.compare_settings)

    @classmethod
    def parameter_report_dir(cls, run_dir: Path) -> Path:
        """The run directory whose trainable-parameter report counts what a run of this strategy trained."""
        return Path(run_dir)

    # --- applying it -------------------------------------------------------------------------------------------
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

    def fit_heads(self, model: nn.Module, splits: dict, seed: int) -> dict[str, str]:
        """Fitted run kinds: fit each head in closed form on its train features.

        Returns:
            ``{task: a description of the fitted estimator}``.
        """
        raise HfTlError(f"strategy '{self.name}' fits no heads in closed form.")

    def chain(self, config, raw: dict, workspace: Path) -> list[ChainStep]:
        """Chained run kinds: the runs to do, in order, each a whole run of its own (see :mod:`hf_tl.runs.chained`).

        Args:
            config: The resolved run config.
            raw: ``{task: {split: raw Dataset}}`` (few-shot rows already drawn).
            workspace: A folder for files the runs read (removed when the chain ends; keep them with ``keep``).
        """
        raise HfTlError(f"strategy '{self.name}' is not a chain of runs.")

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

    def stage_frozen_sets(self, model: nn.Module) -> list[set[str]]:
        """The frozen parameter names of every stage (empty for a single-stage strategy), for the report."""
        if self.num_stages() <= 1:
            return []
        return [self.frozen_at_stage(model, stage) for stage in range(self.num_stages())]

    def on_step(self, model: nn.Module, step: int, epoch: int) -> None:
        """Told, before each micro-batch of optimizer step ``step``, where training is (greedy stages set the depth
        the model runs to)."""
        return None

    def counts_for_best(self, stage: int) -> bool:
        """Whether an evaluation in ``stage`` may be chosen as the best checkpoint (and counts for early stopping)."""
        return True

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
