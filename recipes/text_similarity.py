"""Recipe: text similarity (STS-B) as a cross-encoder or a bi-encoder, with any transfer strategy.

    accelerate launch recipes/text_similarity.py --config recipes/configs/stsb_full.yaml [--key value ...]

setup (config, backbone, head, strategy, data) -> train (Accelerate loop) -> save (run directory) -> cleanup.
All logic lives in hf_tl; this script only wires it together.
"""

import sys

from accelerate import PartialState

from hf_tl import parse_args, train
from hf_tl.errors import exit_on_user_error
from hf_tl.report import describe_config


@exit_on_user_error
def main(argv=None):
    config = parse_args(argv)
    if config.train.dry_run:  # say what would train, and stop
        print(describe_config(config))
        return None
    results = train(config)
    if PartialState().is_main_process:
        print({k: v for k, v in results.items() if k.startswith("eval_") or k == "best_step"})
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
