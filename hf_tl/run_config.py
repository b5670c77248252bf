"""A run's whole configuration: the four argument groups, plus the per-task data settings of a multi-task run."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

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
    def from_flat_dict(cls, values: dict) -> RunConfig:
        """Build a config from a flat dict; unknown keys raise :class:`HfTlError`.

        Args:
            values: ``{name: value}`` as in a YAML config, optionally with a ``tasks`` mapping.

        Returns:
            The validated config.

        Raises:
            HfTlError: for an unknown key or an invalid value.
        """
        values = dict(values)
        tasks = values.pop("tasks", None) or {}
        known = all_option_names()
        for key in values:
            if key not in known:
                raise HfTlError(f"Unknown option '{key}'." + suggest(key, known))
        groups = {}
        for name, klass in cls.GROUPS:
            typed = {f.name: f.type for f in fields(klass)}
            groups[name] = klass(**{k: _coerce(k, v, typed[k]) for k, v in values.items() if k in typed})
        return cls(**groups, tasks=build_tasks(tasks, groups["data"]))

    def __post_init__(self):
        strategy_class(self.strategy.strategy).check_config(self)


def build_tasks(tasks: dict, shared: DataArguments) -> dict[str, DataArguments]:
    """Build each task's data settings: the shared ``data`` settings, overridden by the task's own entries.

    Args:
        tasks: ``{task name: {data option: value}}`` from a config's ``tasks`` mapping.
        shared: The data settings all tasks start from.

    Returns:
        ``{task name: DataArguments}`` (empty for a single-task run).

    Raises:
        HfTlError: for a malformed mapping, a bad task name or a non-data option.
    """
    if not isinstance(tasks, dict):
        raise HfTlError(f"tasks must map task names to their data options, got a {type(tasks).__name__}.")
    typed = {f.name: f.type for f in fields(DataArguments)}
    out = {}
    for name, options in tasks.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", str(name)):
            raise HfTlError(f"Task name '{name}' must be letters, digits, '_' or '-' (it names files and metrics).")
        if not isinstance(options, dict):
            raise HfTlError(f"tasks.{name} must be a mapping of data options, e.g. {{task: classification, "
                            f"train_file: ...}}.")
        for key in options:
            if key not in typed:
                raise HfTlError(f"Option '{key}' under tasks.{name} is not a data option." + suggest(key, typed))
        merged = {**asdict(shared), **{k: _coerce(k, v, typed[k]) for k, v in options.items()}}
        out[str(name)] = DataArguments(**merged)
    if len(out) == 1:
        raise HfTlError("tasks names a single task; a single-task run needs no tasks mapping (set its data options "
                        "at the top level), a multi-task run needs two or more.")
    return out


def _coerce(name: str, value, field_type) -> object:
    """Convert a YAML string to the option's type (PyYAML reads ``1e-5`` as a string, for instance)."""
    if not isinstance(value, str):
        return value
    type_name = str(field_type)  # an annotation string, or a type once HfArgumentParser has resolved it
    try:
        if "float" in type_name:
            return float(value)
        if "int" in type_name:
            return int(value)
    except ValueError:
        raise HfTlError(f"Option '{name}' must be a number, got '{value}'.") from None
    if "list" in type_name:
        return [v.strip() for v in value.split(",") if v.strip()]
    if "bool" in type_name:
        if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise HfTlError(f"Option '{name}' must be true or false, got '{value}'.")
        return value.lower() in ("true", "yes", "1")
    return value


def all_option_names() -> list[str]:
    """Return the name of every option a config or flag may set."""
    return [f.name for _, klass in RunConfig.GROUPS for f in fields(klass)]
