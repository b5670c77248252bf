"""The one place that reads YAML configs and ``--key value`` flags into a :class:`RunConfig`.

A YAML config is a flat mapping of option names (the same names as the flags). Flags override the YAML:
the YAML values become the parser's defaults, then :class:`transformers.HfArgumentParser` parses the flags.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import yaml

from hf_tl.config import DataArguments, ModelArguments, StrategyArguments, TrainArguments
from hf_tl.errors import HfTlError
from hf_tl.run_config import RunConfig, all_option_names, build_tasks, coerce_option, unknown_option

USAGE = "%(prog)s [--config FILE.yaml] [--OPTION VALUE ...] [--tasks.NAME.OPTION VALUE ...]"
EPILOG = ("Every option can also be set in the YAML given with --config (option: value); flags override it. "
          "--option_name may also be written --option-name. --tasks.NAME.OPTION VALUE overrides one data option "
          "of one task of a multi-task config.")


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
    """Write the resolved config, atomically, as a flat YAML file that :func:`parse_args` can read back."""
    from hf_tl.safe_io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_flat_dict(), sort_keys=False))


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
    return RunConfig.from_flat_dict(values, source=str(path))


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


def parse_args(argv: list[str] | None = None, defaults: dict | None = None, prog: str | None = None,
               description: str | None = None) -> RunConfig:
    """Parse ``--config FILE.yaml`` plus ``--key value`` overrides, Hugging Face style.

    A multi-task config's ``tasks`` mapping is read from the YAML; ``--tasks.NAME.OPTION VALUE`` overrides one
    task's option. ``--help`` prints the options by group (with the YAML's values as defaults) and exits 0.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
        defaults: Option defaults of the calling recipe (e.g. its task); the YAML and flags override them.
        prog: The command, for help and messages (default: the script as invoked, ``sys.argv[0]``).
        description: The first paragraph of ``--help``.

    Returns:
        The validated config.

    Raises:
        HfTlError: for an unknown flag or option, or an invalid value.
    """
    import sys

    from hf_tl.flags import ArgumentParser, dataclass_parser

    argv, task_flags = _pop_task_flags(list(sys.argv[1:] if argv is None else argv))
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None, metavar="FILE.yaml")
    known, rest = pre.parse_known_args(argv)

    parser = dataclass_parser((ModelArguments, DataArguments, StrategyArguments, TrainArguments),
                              prog=prog or sys.argv[0] or "hf-tl train", usage=USAGE, description=description,
                              epilog=EPILOG)
    parser.add_argument("--config", default=None, metavar="FILE.yaml",
                        help="A YAML config; flags given beside it override it.")
    parser.set_defaults(**(defaults or {}))
    tasks: dict = {}
    if known.config:
        values = read_yaml(known.config)
        tasks = values.pop("tasks", None) or {}
        where, names = f" in {known.config}", all_option_names()
        for key in values:
            if key not in names:
                raise HfTlError(unknown_option(str(key), names, where))
        # Typed here, since argparse takes defaults as they are; the help then shows the YAML's values.
        parser.set_defaults(**{key: coerce_option(key, value, where) for key, value in values.items()})
        parser.description = f"{description or ''} Defaults below include the values of {known.config}.".strip()
    # Validation lives in the dataclasses; parse without it first so a YAML value can be overridden by a flag.
    # A flag mistake raises HfTlError from the parser (hf_tl.flags); --help exits 0.
    outputs = parser.parse_args_into_dataclasses(args=rest, return_remaining_strings=True)
    # The outputs are the four dataclasses, a namespace holding --config, then the unparsed strings.
    groups, remaining = outputs[:4], outputs[-1]
    if remaining:
        flag = remaining[0]
        if not flag.startswith("-"):
            raise HfTlError(f"Unexpected argument '{flag}'; options are written --OPTION VALUE (a YAML config goes "
                            f"after --config).")
        raise HfTlError(unknown_option(flag, [f"--{a.dest}" for a in parser._actions], flag=True))
    model, data, strategy, train = groups
    data_options = {f.name for f in fields(DataArguments)}
    for name, options in task_flags.items():
        if not isinstance(tasks, dict) or name not in tasks:
            raise HfTlError(f"--tasks.{name}.* overrides a task the config does not define; its tasks are: "
                            f"{', '.join(tasks) if isinstance(tasks, dict) and tasks else 'none'}.")
        typed = {option: coerce_option(option, value, f" (flag --tasks.{name}.{option})")
                 if option in data_options else value for option, value in options.items()}
        current = tasks[name] or {}
        tasks[name] = {**current, **typed} if isinstance(current, dict) else current  # build_tasks names a non-dict
    return RunConfig(model=model, data=data, strategy=strategy, train=train,
                     tasks=build_tasks(tasks, data, known.config))
