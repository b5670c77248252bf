"""Recipe: one backbone, one head per task, trained jointly (e.g. STS-B + MRPC + SST-2), any transfer strategy.

    accelerate launch recipes/multitask.py --config recipes/configs/multitask_glue.yaml [--key value ...]

Each batch comes from one task, drawn by task_sampling (proportional, equal or temperature); the dev metrics of
every task are logged as TASK/metric, and their average picks the best checkpoint.
"""

import sys

from hf_tl.errors import exit_on_user_error
from hf_tl.process import exit_when_done
from hf_tl.recipe import run_recipe

TASK_TYPES = ("similarity", "pair_classification", "classification")  # the tasks it runs; first = default
MULTITASK = True


@exit_on_user_error
def main(argv=None):
    return run_recipe(argv, TASK_TYPES, MULTITASK)


if __name__ == "__main__":
    exit_when_done(main, sys.argv[1:])  # ends at once: no second of module teardown after the last line
