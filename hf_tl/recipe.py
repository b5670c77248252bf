"""What every recipe script does: parse the config, dry-run or train, print the best dev metrics."""

from __future__ import annotations

from hf_tl.config_io import parse_args
from hf_tl.errors import HfTlError
from hf_tl.run_config import RunConfig


def run_recipe(argv: list[str] | None, task_types: tuple[str, ...], multitask: bool = False) -> dict | None:
    """Parse ``--config FILE.yaml [--key value ...]`` and train, or with ``--dry_run`` print what would train.

    Args:
        argv: The script's arguments.
        task_types: The task types this recipe runs; the first is its default.
        multitask: Whether the recipe trains several tasks (a ``tasks`` mapping is then required).

    Returns:
        The best dev metrics, or None for a dry run.

    Raises:
        HfTlError: for a config this recipe does not run, or any error of the run.
    """
    runs = f"one backbone on several tasks ({', '.join(task_types)})" if multitask else \
        f"a {' or '.join(task_types)} task"
    config = parse_args(argv, defaults={"task": task_types[0]},
                        description=f"Train {runs} from a YAML config and/or flags; --dry_run prints what would "
                                    f"train.")
    check_recipe_fits(config, task_types, multitask)
    # Imported once the flags are read, so --help and a flag error do not wait for the training libraries.
    from hf_tl.dry_run import describe_config
    from hf_tl.runs import train

    if config.train.dry_run:  # say what would train, and stop
        print(describe_config(config))
        return None
    return train(config)  # its last line says where the run is and how to load it


def check_recipe_fits(config: RunConfig, task_types: tuple[str, ...], multitask: bool) -> None:
    """Check that a config is one the recipe runs.

    Raises:
        HfTlError: for a task type the recipe does not run, or a single/multi-task mismatch.
    """
    if multitask and not config.is_multitask:
        raise HfTlError("The multi-task recipe needs a tasks mapping (two or more tasks) in its config.")
    if not multitask and config.is_multitask:
        raise HfTlError("This config defines several tasks; run it with recipes/multitask.py.")
    for name, data in config.task_data().items():
        if data.task not in task_types:
            raise HfTlError(f"Task '{name}' is a {data.task} task, which this recipe does not run; it runs "
                            f"{', '.join(task_types)} (use the recipe for {data.task}).")
