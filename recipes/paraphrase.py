"""Recipe: paraphrase detection (MRPC) as sentence-pair classification, with any transfer strategy.

    accelerate launch recipes/paraphrase.py --config recipes/configs/mrpc_full.yaml [--key value ...]

setup (config, backbone, head, strategy, data) -> train (Accelerate loop) -> save (run directory) -> cleanup.
Reports accuracy and F1; any sentence-pair classification data (e.g. NLI) runs the same way.
"""

import sys

from hf_tl.errors import exit_on_user_error
from hf_tl.process import exit_when_done
from hf_tl.recipe import run_recipe

TASK_TYPES = ("pair_classification",)  # the tasks this recipe runs; the first is its default
MULTITASK = False


@exit_on_user_error
def main(argv=None):
    return run_recipe(argv, TASK_TYPES, MULTITASK)


if __name__ == "__main__":
    exit_when_done(main, sys.argv[1:])  # ends at once: no second of module teardown after the last line
