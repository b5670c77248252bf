"""The one place that reads YAML configs and ``--key value`` flags into a :class:`RunConfig`.

A YAML config is a flat mapping of option names (the same names as the flags). Flags override the YAML:
the YAML values become the parser's defaults, then :class:`transformers.HfArgumentParser` parses the flags.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from hf_tl.config import DataArguments, ModelArguments, StrategyArguments, TrainArguments
from hf_tl.errors import HfTlError, suggest
from hf_tl.run_config import RunConfig, build_tasks


def read_yaml(path: str | os.PathLike) -> dict:
    """Read a flat YAML config file.

    Args:
        path: The YAML file.

    Returns:
        Its ``{option: value}`` mapping (empty for an empty file).

    Raises:
        HfTlError: if the file is missing, unparsable or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise HfTlError(f"Config file '{path}' does not exist; check the path given to --config.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise HfTlError(f"Config file '{path}' is not valid YAML ({str(err).splitlines()[0]}).") from None
    if not isinstance(values, dict):
        raise HfTlError(f"Config file '{path}' must be a mapping of option: value, not a {type(values).__name__}.")
    return values


def write_yaml(config: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as a flat YAML file that :func:`parse_args` can read back."""
    Path(path).write_text(yaml.safe_dump(config.to_flat_dict(), sort_keys=False))


def load_config(path: str | os.PathLike, **overrides) -> RunConfig:
    """Load a YAML config (optionally overriding some options) for use from Python.

    Args:
        path: The YAML file.
        **overrides: Options that replace the file's values.

    Returns:
        The validated config.

    Raises:
        HfTlError: for a missing file, an unknown option or an invalid value.
    """
    values = read_yaml(path)
    values.update(overrides)
    return RunConfig.from_flat_dict(values)


def _pop_task_flags(argv: list[str]) -> tuple[list[str], dict]:
    """Split ``--tasks.NAME.OPTION VALUE`` flags (per-task overrides of a multi-task run) from the others."""
    rest, tasks = [], {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag.startswith("--tasks."):
            key, _, inline = flag[len("--tasks."):].partition("=")
            name, _, option = key.partition(".")
            if not option:
                raise HfTlError(f"Flag '{flag}' must look like --tasks.NAME.OPTION VALUE.")
            if not inline and i + 1 >= len(argv):
                raise HfTlError(f"Flag '{flag}' needs a value.")
            tasks.setdefault(name, {})[option] = inline or argv[i + 1]
            i += 1 if inline else 2
        else:
            rest.append(flag)
            i += 1
    return rest, tasks


def parse_args(argv: list[str] | None = None, defaults: dict | None = None) -> RunConfig:
    """Parse ``--config FILE.yaml`` plus ``--key value`` overrides, Hugging Face style.

    A multi-task config's ``tasks`` mapping is read from the YAML; ``--tasks.NAME.OPTION VALUE`` overrides one
    task's option.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
        defaults: Option defaults of the calling recipe (e.g. its task); the YAML and flags override them.

    Returns:
        The validated config.

    Raises:
        HfTlError: for an unknown flag or option, or an invalid value.
    """
    import sys

    from transformers import HfArgumentParser

    argv, task_flags = _pop_task_flags(list(sys.argv[1:] if argv is None else argv))
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)

    # No abbreviations: a typo such as --learning_rat must be an error, not silently --learning_rate.
    parser = HfArgumentParser((ModelArguments, DataArguments, StrategyArguments, TrainArguments), allow_abbrev=False)
    parser.add_argument("--config", default=None, help="A YAML config; flags given beside it override it.")
    parser.set_defaults(**(defaults or {}))
    tasks: dict = {}
    if known.config:
        values = read_yaml(known.config)
        tasks = values.pop("tasks", None) or {}
        names = {action.dest for action in parser._actions} - {"help", "config"}
        for key in values:
            if key not in names:
                raise HfTlError(f"Unknown option '{key}' in {known.config}." + suggest(key, names))
        parser.set_defaults(**values)
    # Validation lives in the dataclasses; parse without it first so a YAML value can be overridden by a flag.
    try:
        outputs = parser.parse_args_into_dataclasses(args=rest, return_remaining_strings=True)
    except SystemExit as err:  # argparse already printed what was wrong
        raise HfTlError("Invalid command-line flags (see the message above); run with --help for the options.") \
            from err
    # The outputs are the four dataclasses, a namespace holding --config, then the unparsed strings.
    groups, remaining = outputs[:4], outputs[-1]
    if remaining:
        flag = remaining[0]
        flags = [f"--{a.dest}" for a in parser._actions]
        raise HfTlError(f"Unknown option '{flag}'." + suggest(flag, flags))
    model, data, strategy, train = groups
    for name, options in task_flags.items():
        if not isinstance(tasks, dict) or name not in tasks:
            raise HfTlError(f"--tasks.{name}.* overrides a task the config does not define; its tasks are: "
                            f"{', '.join(tasks) if isinstance(tasks, dict) and tasks else 'none'}.")
        tasks[name] = {**(tasks[name] or {}), **options}
    return RunConfig(model=model, data=data, strategy=strategy, train=train, tasks=build_tasks(tasks, data))
