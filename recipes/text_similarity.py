"""Recipe: text similarity (STS-B) as a cross-encoder or a bi-encoder, with any transfer strategy.

    accelerate launch recipes/text_similarity.py --config recipes/configs/stsb_full.yaml [--key value ...]

setup (config, backbone, head, strategy, data) -> train (Accelerate loop) -> save (run directory) -> cleanup.
All logic lives in hf_tl; this script only wires it together.
"""

import sys

from hf_tl.errors import exit_on_user_error
from hf_tl.process import exit_when_done
from hf_tl.recipe import run_recipe

TASK_TYPES = ("similarity",)  # the tasks this recipe runs; the first is its default
MULTITASK = False


@exit_on_user_error
def main(argv=None):
    return run_recipe(argv, TASK_TYPES, MULTITASK)


if __name__ == "__main__":
    exit_when_done(main, sys.argv[1:])  # ends at once: no second of module teardown after the last line
