"""Typed configuration of a run: model, data, strategy and training settings.

Each group is a dataclass with help text and checks in ``__post_init__``, so a bad value stops the run before any
model is loaded; :mod:`hf_tl.run_config` groups them into one run. :mod:`hf_tl.config_io` reads YAML and
command-line flags into these classes; nothing else in the package reads raw dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hf_tl.choices import (
    DTYPES,
    HEAD_TYPES,
    LAYER_CHOICES,
    PADDING_SIDES,
    PENALTY_SCOPES,
    POOLING_CHOICES,
    SKLEARN_HEADS,
    STAGE_UNITS,
    ZERO_SHOT_METHODS,
    check_choice,
    check_fraction,
    check_positive,
    parse_overrides,
)
from hf_tl.config_data import DataArguments
from hf_tl.config_train import TrainArguments
from hf_tl.errors import HfTlError
from hf_tl.strategies import DEFAULT_STRATEGY, STRATEGIES, strategy_class

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class ModelArguments:
    """Which backbone to load and how to turn its hidden states into one vector."""

    _argument_group_name = "model"  # the section of --help (HfArgumentParser)

    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "Hub id or local directory of a BERT-family encoder or GPT-family decoder."},
    )
    gguf_file: Optional[str] = field(
        default=None, metadata={"help": "Name of a GGUF file inside model_name_or_path to load (dequantized)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom modelling code from the checkpoint (off by default)."}
    )
    pooling: str = field(
        default="auto",
        metadata={"choices": POOLING_CHOICES,
                  "help": "cls, mean or last (last non-padding token); auto = mean for encoders, last for decoders."},
    )
    layer: str = field(
        default="last",
        metadata={"choices": LAYER_CHOICES,
                  "help": "Hidden layers that make the features: last, second_to_last, mean_last4, concat_last4, or "
                          "weighted (a learned mix of all layers, one per task head)."},
    )
    padding_side: str = field(
        default="auto",
        metadata={"choices": PADDING_SIDES, "help": "left or right; auto keeps right padding (pooling handles "
                                                    "either)."},
    )
    max_length: int = field(default=128, metadata={"help": "Maximum tokens per text (or per pair)."})
    torch_dtype: str = field(
        default="float32", metadata={"choices": DTYPES, "help": "Weights dtype: float32, bfloat16 or float16."}
    )
    backbone_dropout: Optional[float] = field(
        default=None,
        metadata={"help": "Regularisation: dropout on the backbone's hidden states and embeddings while training "
                          "(BERT hidden_dropout_prob, GPT-2 resid_pdrop and embd_pdrop); default: the checkpoint's "
                          "own."},
    )
    attention_dropout: Optional[float] = field(
        default=None,
        metadata={"help": "Regularisation: dropout on the backbone's attention weights while training (BERT "
                          "attention_probs_dropout_prob, GPT-2 attn_pdrop); default: the checkpoint's own."},
    )
    init_from_run: Optional[str] = field(
        default=None,
        metadata={"help": "Start from the backbone of a finished hf_tl run (task-to-task transfer); its head is "
                          "dropped and this run's task gets a new one."},
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "Strategies that start from random weights (scratch, greedy_layerwise): change the "
                          "checkpoint's architecture, e.g. 'num_hidden_layers=4,hidden_size=256,num_attention_heads=4,"
                          "intermediate_size=1024' (a smaller model with the same tokenizer)."},
    )

    def __post_init__(self):
        check_choice("pooling", self.pooling, POOLING_CHOICES)
        check_choice("layer", self.layer, LAYER_CHOICES)
        check_choice("padding_side", self.padding_side, PADDING_SIDES)
        check_choice("torch_dtype", self.torch_dtype, DTYPES)
        check_positive("max_length", self.max_length)
        check_fraction("backbone_dropout", self.backbone_dropout)
        check_fraction("attention_dropout", self.attention_dropout)
        if self.config_overrides is not None:
            parse_overrides(self.config_overrides)


@dataclass
class StrategyArguments:
    """What trains, and when. One setting that means the same for BERT and GPT backbones."""

    _argument_group_name = "strategy"  # the section of --help (HfArgumentParser)

    strategy: str = field(
        default=DEFAULT_STRATEGY,
        metadata={"choices": STRATEGIES,
                  "help": f"What trains, and when: {', '.join(STRATEGIES)} (see the README's strategies table)."},
    )
    zero_shot_method: str = field(
        default="auto",
        metadata={"choices": ZERO_SHOT_METHODS,
                  "help": "zero_shot: cosine (bi-encoder similarity), label_description (cosine between the text and "
                          "each label's description), label_likelihood (a decoder's next-token likelihood of each "
                          "label word after prompt_template) or nli (an NLI cross-encoder's entailment of "
                          "nli_hypothesis_template); auto = cosine for similarity, label_likelihood for a decoder, "
                          "label_description for an encoder."},
    )
    nli_hypothesis_template: str = field(
        default="This example is {}.",
        metadata={"help": "zero_shot nli: the hypothesis per label; {} is replaced by the label's description."},
    )
    setfit_num_iterations: int = field(
        default=20,
        metadata={"help": "setfit: contrastive pairs per training example (one with the same label, one with "
                          "another, per iteration)."},
    )
    setfit_epochs: float = field(
        default=1.0, metadata={"help": "setfit: epochs of contrastive fine-tuning over the generated pairs."}
    )
    num_layers: Optional[int] = field(
        default=None,
        metadata={"help": "partial: train the top N transformer blocks; gradual: unfreeze down to N blocks."},
    )
    layers: Optional[str] = field(
        default=None, metadata={"help": "partial: explicit block indices/ranges, e.g. '0,4-5' (0 = bottom)."}
    )
    unfreeze_every: str = field(
        default="epoch",
        metadata={"choices": STAGE_UNITS,
                  "help": "gradual: a new stage every 'epoch', every unfreeze_steps 'steps', or 'auto': the stages "
                          "spread evenly over the first half of training, so every block trains in the second half."},
    )
    unfreeze_steps: int = field(default=100, metadata={"help": "gradual: optimizer steps per stage (with steps)."})
    layers_per_stage: int = field(default=1, metadata={"help": "gradual: blocks unfrozen at each new stage."})
    greedy_stage_steps: Optional[int] = field(
        default=None,
        metadata={"help": "greedy_layerwise: optimizer steps that train each new block (default 100) before the "
                          "stage that trains everything."},
    )
    layerwise_lr_decay: float = field(
        default=1.0, metadata={"help": "Multiply the learning rate by this per block going down (1.0 = off)."}
    )
    head_learning_rate: Optional[float] = field(
        default=None, metadata={"help": "Learning rate of the head (default: learning_rate)."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout."})
    lora_target_modules: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated module names; default: chosen per architecture."}
    )
    peft_include_mlp: bool = field(
        default=False, metadata={"help": "lora/ia3: also adapt the feed-forward projections."}
    )
    num_virtual_tokens: int = field(default=20, metadata={"help": "prompt_tuning/prefix_tuning: virtual tokens."})
    sklearn_head: str = field(
        default="logistic",
        metadata={"choices": SKLEARN_HEADS,
                  "help": "features: the scikit-learn model fitted as the head: logistic, ridge or linear_svm."},
    )
    sklearn_regularization: float = field(
        default=1.0,
        metadata={"help": "features: C of logistic and linear_svm (larger = weaker), alpha of ridge (larger = "
                          "stronger)."},
    )
    ensemble_members: Optional[list[str]] = field(
        default=None,
        metadata={"help": "ensemble: the finished runs whose predictions are averaged (a cross-validation run "
                          "stands for its folds); they must share the task (and labels)."},
    )
    ensemble_weights: Optional[str] = field(
        default=None,
        metadata={"help": "ensemble: equal (the default) or dev: non-negative weights fitted on the dev split's "
                          "predictions (least squares for scores, log-likelihood for labels); the ensemble's dev "
                          "score is then optimistic, and the card says so."},
    )
    head_type: str = field(
        default="linear",
        metadata={"choices": HEAD_TYPES,
                  "help": "linear, mlp, none (bi-encoder: plain cosine of the embeddings), or native: the backbone's "
                          "own sequence-classification head ([CLS] + pooler for BERT, last token for GPT-style "
                          "models), so the run loads as a standard AutoModelForSequenceClassification."},
    )
    head_hidden_size: Optional[int] = field(default=None, metadata={"help": "MLP head width (default: hidden size)."})
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout before the head."})
    l1_penalty: float = field(
        default=0.0,
        metadata={"help": "Regularisation: add this times the sum of |w| over the weight matrices of penalty_on to "
                          "the loss (0 = off; try 1e-6 for the head, 1e-8 for all trained weights)."},
    )
    l2_penalty: float = field(
        default=0.0,
        metadata={"help": "Regularisation: add this times the sum of w**2 over the weight matrices of penalty_on to "
                          "the loss (0 = off; unlike weight_decay it is part of the loss, pulling towards zero "
                          "through the gradient)."},
    )
    penalty_on: str = field(
        default="head",
        metadata={"choices": PENALTY_SCOPES,
                  "help": "Which weights l1_penalty and l2_penalty cover: head (the task heads) or trained (every "
                          "weight matrix that trains, adapters included)."},
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={"help": "Regularisation for classification: the share of each target spread evenly over all "
                          "labels (0 = off, 0.1 is usual)."},
    )

    def __post_init__(self):
        strategy = strategy_class(self.strategy)  # an unknown name stops here, with the closest one
        check_choice("unfreeze_every", self.unfreeze_every, STAGE_UNITS)
        check_choice("head_type", self.head_type, HEAD_TYPES)
        check_choice("sklearn_head", self.sklearn_head, SKLEARN_HEADS)
        check_choice("zero_shot_method", self.zero_shot_method, ZERO_SHOT_METHODS)
        if "{}" not in self.nli_hypothesis_template:
            raise HfTlError(f"nli_hypothesis_template must contain {{}} where the label goes, got "
                            f"{self.nli_hypothesis_template!r}.")
        check_positive("setfit_num_iterations", self.setfit_num_iterations)
        check_positive("setfit_epochs", self.setfit_epochs)
        check_positive("sklearn_regularization", self.sklearn_regularization)
        if self.num_layers is not None:
            check_positive("num_layers", self.num_layers)
        check_positive("unfreeze_steps", self.unfreeze_steps)
        check_positive("layers_per_stage", self.layers_per_stage)
        if not 0 < self.layerwise_lr_decay <= 1:
            raise HfTlError(f"layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}.")
        if self.head_learning_rate is not None:
            check_positive("head_learning_rate", self.head_learning_rate)
        check_positive("lora_r", self.lora_r)
        check_positive("num_virtual_tokens", self.num_virtual_tokens)
        if not 0 <= self.head_dropout < 1:
            raise HfTlError(f"head_dropout must be in [0, 1), got {self.head_dropout}.")
        check_positive("l1_penalty", self.l1_penalty, allow_zero=True)
        check_positive("l2_penalty", self.l2_penalty, allow_zero=True)
        check_choice("penalty_on", self.penalty_on, PENALTY_SCOPES)
        check_fraction("label_smoothing", self.label_smoothing)
        strategy.check_args(self)  # what only this strategy knows about its options


__all__ = ["DEFAULT_MODEL", "DataArguments", "ModelArguments", "StrategyArguments", "TrainArguments"]
