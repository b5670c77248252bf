"""What ``--resume_from_checkpoint`` may change: a resumed run continues the run its folder holds, as configured.

Resuming with another model, strategy, data or optimizer setting would load a checkpoint into a model it does not
fit (or silently train on with the checkpoint's settings), after rewriting the run's record. So the resolved config
is compared with the run's ``config.yaml`` before anything is written, and any difference outside the options below
stops the resume with one sentence.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hf_tl.config_io import read_yaml
from hf_tl.errors import HfTlError
from hf_tl.run_dir import CONFIG_FILE

# Where the run goes, how long it trains, how often it evaluates and logs, and what happens around it: nothing
# that changes the model a checkpoint holds or how it steps.
RESUME_MAY_CHANGE = (
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "num_train_epochs", "max_steps", "eval_strategy",
    "eval_steps", "logging_steps", "early_stopping_patience", "per_device_eval_batch_size", "dataloader_num_workers",
    "cpu_threads", "torch_compile", "report_to", "dry_run", "cache_features", "feature_cache_dir", "cache_tokenized",
    "save_total_limit", "save_only_model", "push_to_hub", "hub_model_id", "hub_private",
)


# How the global batch is split may change (to resume on another number of processes), not the global batch itself.
BATCH_SPLIT = ("per_device_train_batch_size", "gradient_accumulation_steps")


def check_resumed_config(config, run_dir: Path, checkpoint: Path, num_processes: int) -> None:
    """Refuse a resume whose config differs from the run's own in anything but :data:`RESUME_MAY_CHANGE` (and the
    split of an unchanged global batch).

    Args:
        config: The resolved config of the resumed run.
        run_dir: The run directory it resumes.
        checkpoint: The checkpoint it resumes from (its process count: one RNG state file per process).
        num_processes: The processes of the resumed run.

    Raises:
        HfTlError: naming the first option that differs, both values, and how many more differ.
    """
    saved_file = Path(run_dir) / CONFIG_FILE
    if not saved_file.is_file():
        return  # nothing recorded to compare with (a checkpoint is only written after config.yaml)
    saved = read_yaml(saved_file)
    current = yaml.safe_load(yaml.safe_dump(config.to_flat_dict(), sort_keys=False))  # the same types as saved
    free = set(RESUME_MAY_CHANGE + BATCH_SPLIT)
    differ = [k for k in dict.fromkeys([*current, *saved]) if k not in free and current.get(k) != saved.get(k)]
    if not differ and any(current.get(k) != saved.get(k) for k in BATCH_SPLIT):
        saved_processes = max(1, len(list(Path(checkpoint).glob("random_states_*.pkl"))))
        before = saved.get(BATCH_SPLIT[0], 0) * saved.get(BATCH_SPLIT[1], 1) * saved_processes
        now = current.get(BATCH_SPLIT[0], 0) * current.get(BATCH_SPLIT[1], 1) * num_processes
        if before != now:
            raise HfTlError(f"--resume_from_checkpoint continues the run in '{run_dir}' with its global batch of "
                            f"{before} (per_device_train_batch_size x gradient_accumulation_steps x "
                            f"{saved_processes} process(es)), but it would be {now} here; split the same global "
                            f"batch over this run's {num_processes} process(es), or start a new run.")
    if differ:
        first = differ[0]
        more = f" (and {len(differ) - 1} more: {', '.join(differ[1:])})" if len(differ) > 1 else ""
        raise HfTlError(f"--resume_from_checkpoint continues the run in '{run_dir}' as it was configured, but "
                        f"{first} is {current.get(first)!r} here and {saved.get(first)!r} in its {CONFIG_FILE}{more}; "
                        f"drop what changes it, or start a new run in another --output_dir.")
