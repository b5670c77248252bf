"""Recipe: (continued) pretraining: masked LM for encoders, causal LM for decoders, on plain text or a task's text.

    accelerate launch recipes/pretrain.py --config recipes/configs/pretrain_minilm_mlm_wikitext.yaml [--key value ...]

setup (config, backbone, head, strategy, data) -> train (Accelerate loop) -> save (run directory) -> cleanup.
All logic lives in hf_tl; this script only wires it together.
"""

import sys

from hf_tl.errors import exit_on_user_error
from hf_tl.process import exit_when_done
from hf_tl.recipe import run_recipe

TASK_TYPES = ("masked_lm", "causal_lm")  # the tasks this recipe runs; the first is its default
MULTITASK = False


@exit_on_user_error
def main(argv=None):
    return run_recipe(argv, TASK_TYPES, MULTITASK)


if __name__ == "__main__":
    exit_when_done(main, sys.argv[1:])  # ends at once: no second of module teardown after the last line
