"""A run's whole configuration: the four argument groups, plus the per-task data settings of a multi-task run."""

from __future__ import annotations

import functools
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields

from hf_tl.choices import check_finite
from hf_tl.config import DataArguments, ModelArguments, StrategyArguments, TrainArguments
from hf_tl.errors import HfTlError, suggest
from hf_tl.strategies import strategy_class


@dataclass
class RunConfig:
    """Every setting of one run, grouped. This is what a run directory records as ``config.yaml``.

    A multi-task run names its tasks in ``tasks`` (task name -> data settings); ``data`` then holds the settings
    the tasks share, and each task's own entries override them.
    """

    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    strategy: StrategyArguments = field(default_factory=StrategyArguments)
    train: TrainArguments = field(default_factory=TrainArguments)
    tasks: dict[str, DataArguments] = field(default_factory=dict)

    GROUPS = (("model", ModelArguments), ("data", DataArguments), ("strategy", StrategyArguments),
              ("train", TrainArguments))

    @property
    def is_multitask(self) -> bool:
        """Whether this run trains several tasks on one backbone."""
        return bool(self.tasks)

    def task_data(self) -> dict[str, DataArguments]:
        """Return ``{task name: data settings}``; a single-task run's one task is named after its task type."""
        return dict(self.tasks) if self.tasks else {self.data.task: self.data}

    def to_flat_dict(self) -> dict:
        """Return all settings as one flat ``{name: value}`` dict, the shape the YAML configs use.

        A multi-task run adds ``tasks: {name: {option: value}}`` with each task's differences from ``data``.
        """
        flat: dict = {}
        for name, _ in self.GROUPS:
            flat.update(asdict(getattr(self, name)))
        if self.tasks:
            shared = asdict(self.data)
            flat["tasks"] = {name: {k: v for k, v in asdict(d).items() if v != shared[k]}
                             for name, d in self.tasks.items()}
        return flat

    @classmethod
    def from_flat_dict(cls, values: dict, source: str | None = None) -> RunConfig:
        """Build a config from a flat dict; unknown keys and values of the wrong type raise :class:`HfTlError`.

        Args:
            values: ``{name: value}`` as in a YAML config, optionally with a ``tasks`` mapping.
            source: The file the values come from, named in messages.

        Returns:
            The validated config.

        Raises:
            HfTlError: for an unknown key or an invalid value.
        """
        values = dict(values)
        tasks = values.pop("tasks", None) or {}
        where = f" in {source}" if source else ""
        known = all_option_names()
        for key in values:
            if key not in known:
                raise HfTlError(unknown_option(str(key), known, where))
        groups = {}
        for name, klass in cls.GROUPS:
            typed = {f.name for f in fields(klass)}
            groups[name] = klass(**{k: coerce_option(k, v, where) for k, v in values.items() if k in typed})
        return cls(**groups, tasks=build_tasks(tasks, groups["data"], source))

    def __post_init__(self):
        for group in (self.model, self.data, self.strategy, self.train, *self.tasks.values()):
            check_finite(group)
        strategy_class(self.strategy.strategy).check_config(self)


def build_tasks(tasks: dict, shared: DataArguments, source: str | None = None) -> dict[str, DataArguments]:
    """Build each task's data settings: the shared ``data`` settings, overridden by the task's own entries.

    Args:
        tasks: ``{task name: {data option: value}}`` from a config's ``tasks`` mapping.
        shared: The data settings all tasks start from.
        source: The config file the mapping comes from, named in messages.

    Returns:
        ``{task name: DataArguments}`` (empty for a single-task run).

    Raises:
        HfTlError: for a malformed mapping, a bad task name or a non-data option.
    """
    if not isinstance(tasks, dict):
        raise HfTlError(f"tasks must map task names to their data options, got a {type(tasks).__name__}.")
    typed = {f.name for f in fields(DataArguments)}
    out = {}
    for name, options in tasks.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", str(name)):
            raise HfTlError(f"Task name '{name}' must be letters, digits, '_' or '-' (it names files and metrics).")
        if not isinstance(options, dict):
            raise HfTlError(f"tasks.{name} must be a mapping of data options, e.g. {{task: classification, "
                            f"train_file: ...}}.")
        where = f" under tasks.{name}" + (f" in {source}" if source else "")
        for key in options:
            if key not in typed:
                raise HfTlError(f"Option '{key}'{where} is not a data option." + suggest(str(key), typed))
        merged = {**asdict(shared), **{k: coerce_option(k, v, where) for k, v in options.items()}}
        out[str(name)] = DataArguments(**merged)
    if len(out) == 1:
        raise HfTlError("tasks names a single task; a single-task run needs no tasks mapping (set its data options "
                        "at the top level), a multi-task run needs two or more.")
    return out


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
            list: "a list of strings (or one comma-separated string)"}


@functools.cache
def option_types() -> dict[str, tuple[type, bool]]:
    """Return ``{option: (bool, int, float, str or list; whether it may be null)}``.

    Read from the annotations: HfArgumentParser overwrites ``Field.type`` and drops ``Optional`` from it.
    """
    out = {}
    for _, klass in RunConfig.GROUPS:
        for name, hint in typing.get_type_hints(klass).items():
            args = typing.get_args(hint)
            optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
            base = next(a for a in args if a is not type(None)) if optional else hint
            out[name] = (typing.get_origin(base) or base, optional)
    return out


def _number(text: str) -> int | float | None:
    """Parse '3', '1e-5' or '0.5'; None for anything else, infinities and NaN included."""
    for parse in (int, float):
        try:
            value = parse(text)
        except ValueError:
            continue
        return value if math.isfinite(value) else None
    return None


def coerce_option(name: str, value, where: str = ""):
    """Check a config value against its option's type, converting it where the meaning is plain.

    Strings are parsed (PyYAML reads ``1e-5`` as a string), whole floats such as ``1000.0`` become ints, numbers
    become strings for string options and one comma-separated string becomes a list; anything else is refused
    (``seed: true`` included, although bool is an int to Python).

    Args:
        name: The option.
        value: Its value, as read from YAML, a flag or Python.
        where: Where the value comes from, for the message, e.g. ``" in run.yaml"``.

    Returns:
        The value as the option's type.

    Raises:
        HfTlError: for a value of the wrong type, naming the option, the expected type, the value and ``where``.
    """
    kind, optional = option_types()[name]
    scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if value is None:
        if optional:
            return None
    elif kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif kind in (int, float):
        number = _number(value.strip()) if isinstance(value, str) else value if scalar else None
        if kind is float and number is not None:
            return float(number)
        if isinstance(number, int) or (isinstance(number, float) and number.is_integer()):
            return int(number)
    elif kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return [str(v) for v in value]
    elif scalar:
        return value if isinstance(value, str) else str(value)
    items = value if isinstance(value, (list, tuple)) else [value]
    # YAML 1.1 reads yes/no/on/off as booleans, so `mixed_precision: no` arrives as False.
    hint = "; quote words such as no, yes, on and off, which YAML reads as true/false" \
        if kind in (str, list) and any(isinstance(v, bool) for v in items) else ""
    shown = f"'{value}'" if isinstance(value, str) else json.dumps(value, default=str)
    raise HfTlError(f"Option '{name}' must be {EXPECTED.get(kind, kind.__name__)}, got {shown}{where}{hint}.")


# What users of the HF Trainer (and other trainers) type for an hf_tl option: name -> (option, value, note).
NEAR_MISSES = {
    "fp16": ("mixed_precision", "fp16", ""),
    "bf16": ("mixed_precision", "bf16", ""),
    "half_precision": ("mixed_precision", "fp16", ""),
    "evaluation_strategy": ("eval_strategy", None, ""),
    "lr": ("learning_rate", None, ""),
    "epochs": ("num_train_epochs", None, ""),
    "num_epochs": ("num_train_epochs", None, ""),
    "max_epochs": ("num_train_epochs", None, ""),
    "max_train_steps": ("max_steps", None, ""),
    "batch_size": ("per_device_train_batch_size", None, " (and {dash}per_device_eval_batch_size for evaluation)"),
    "train_batch_size": ("per_device_train_batch_size", None, ""),
    "per_gpu_train_batch_size": ("per_device_train_batch_size", None, ""),
    "eval_batch_size": ("per_device_eval_batch_size", None, ""),
    "per_gpu_eval_batch_size": ("per_device_eval_batch_size", None, ""),
    "max_seq_length": ("max_length", None, ""),
    "model_name": ("model_name_or_path", None, ""),
    "model": ("model_name_or_path", None, ""),
    "lr_scheduler": ("lr_scheduler_type", None, ""),
    "warmup_steps": ("warmup_ratio", None, " (a fraction of the training steps, e.g. 0.1)"),
    "dataset": ("dataset_name", None, ""),
    "eval_file": ("validation_file", None, ""),
    "dev_file": ("validation_file", None, ""),
    "lora_rank": ("lora_r", None, ""),
}


def unknown_option(name: str, known, where: str = "", flag: bool = False) -> str:
    """The message for an option hf_tl does not have: the hf_tl option for a common near-miss, else the closest name.

    Args:
        name: What the user wrote (``--fp16``, ``--lr=0.1`` or a YAML key).
        known: The valid names, written the same way (flags or YAML keys).
        where: Where it was written, e.g. ``" in run.yaml"``.
        flag: Whether ``name`` is a command-line flag (the hint is then written as a flag too).

    Returns:
        One sentence.
    """
    key = name.split("=", 1)[0]
    near = NEAR_MISSES.get(key.lstrip("-").replace("-", "_"))
    if near is None:
        return f"Unknown option '{key}'{where}." + suggest(key, known)
    option, value, note = near
    if flag:
        fix = f"--{option}" + (f" {value}" if value else "")
    else:
        fix = f"'{option}: {value}'" if value else f"'{option}'"
    return f"Unknown option '{key}'{where}; use {fix} instead{note.format(dash='--' if flag else '')}."


def all_option_names() -> list[str]:
    """Return the name of every option a config or flag may set."""
    return [f.name for _, klass in RunConfig.GROUPS for f in fields(klass)]
