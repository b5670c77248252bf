"""The fixed sets of values some options take, and the checks every option group shares.

A field names its set in metadata ``choices``, so ``--help`` lists it and argparse refuses a flag outside it; the
groups' ``__post_init__`` checks again, since YAML values and Python callers bypass argparse.
"""

from __future__ import annotations

import dataclasses
import math

from hf_tl.errors import HfTlError

POOLING_CHOICES = ("auto", "cls", "mean", "last")
PADDING_SIDES = ("auto", "left", "right")
DTYPES = ("float32", "bfloat16", "float16")
ARCHITECTURES = ("cross_encoder", "bi_encoder")
HEAD_TYPES = ("linear", "mlp", "none", "native")
STAGE_UNITS = ("epoch", "steps", "auto")
PRECISIONS = ("no", "fp16", "bf16")
EVAL_STRATEGIES = ("epoch", "steps")
TRACKERS = ("none", "tensorboard", "wandb", "mlflow", "all")
TASK_TYPES = ("similarity", "pair_classification", "classification", "masked_lm", "causal_lm")
LM_TASKS = ("masked_lm", "causal_lm")
PACKINGS = ("concat", "chunk", "none")  # how a language-modelling task cuts documents into rows
SAMPLING_SCHEMES = ("proportional", "equal", "temperature")
SKLEARN_HEADS = ("logistic", "ridge", "linear_svm")
ZERO_SHOT_METHODS = ("auto", "cosine", "label_description", "label_likelihood", "nli")
LAYER_CHOICES = ("last", "second_to_last", "mean_last4", "concat_last4", "weighted")  # hidden layers -> features
LOSS_CHOICES = ("auto", "mse", "cross_entropy", "cosent", "angle", "mnrl")
# loss -> (the task types it trains, whether it reads a bi-encoder's two embeddings); the functions: hf_tl.losses
LOSS_FITS = {
    "mse": (("similarity",), False),
    "cross_entropy": (("pair_classification", "classification"), False),
    "cosent": (("similarity",), False),
    "angle": (("similarity",), True),
    "mnrl": (("similarity",), True),
}
AUGMENTATIONS = ("swap_pairs", "random_swap", "random_deletion")  # word-level and pair operations (hf_tl.data.augment)
PENALTY_SCOPES = ("head", "trained")  # which weights l1_penalty and l2_penalty cover


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`HfTlError` naming the option and its choices when ``value`` is not one of them."""
    if value not in choices:
        raise HfTlError(f"{name} must be one of {', '.join(choices)}, got '{value}'.")


def check_finite(group) -> None:
    """Raise :class:`HfTlError` naming the first number option of a dataclass that is NaN or infinite.

    ``nan`` and ``inf`` pass every comparison a range check makes (or fail it silently), and a learning rate of
    ``inf`` trains to NaN; they are refused when the config is read.
    """
    for f in dataclasses.fields(group):
        value = getattr(group, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise HfTlError(f"{f.name} must be a finite number, got {value}.")


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise :class:`HfTlError` naming the option when ``value`` is negative (or zero, unless allowed) or infinite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise HfTlError(f"{name} must be a finite number, got {value}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise HfTlError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}.")


def check_fraction(name: str, value: float | None) -> None:
    """Raise :class:`HfTlError` naming the option when ``value`` (if set) is not in [0, 1)."""
    if value is not None and not 0 <= value < 1:
        raise HfTlError(f"{name} must be in [0, 1), got {value}.")


def parse_overrides(text: str) -> dict:
    """``'key=value,key=value'`` -> ``{key: value}``, values read as int, float or bool where they look like one.

    Raises:
        HfTlError: for an entry without ``=``.
    """
    out = {}
    for item in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HfTlError(f"config_overrides entry '{item}' is not key=value; write e.g. "
                            f"'num_hidden_layers=4,hidden_size=256'.")
        value = value.strip()
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        if value in ("true", "false", "True", "False"):
            value = value.lower() == "true"
        out[key.strip()] = value
    return out
