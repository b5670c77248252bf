"""Benchmark: start-up of the hf-tl command, whole processes, against what any such command pays anyway.

    HF_TL_DATA_DIR=../shared/data python benchmarks/startup.py --repeats 5

Each command runs --repeats times, alternating with its baseline, in a child process (the wall time the user waits
for; the files are in the page cache after the first round):
  hf-tl --help                                  vs  python -c "import torch" (hf_tl's configs need torch's types)
  hf-tl trainable recipes/configs/stsb_full.yaml    vs  python -c "AutoModel.from_pretrained(all-MiniLM-L6-v2)"
                                                    (a dry run builds the model the config describes)
Prints the medians, the ratio command / baseline, and the targets (2 s and 5 s on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from runner import ROOT, run_process

LOAD = ("from transformers import AutoModel; from hf_tl.backbone import resolve_checkpoint; "
        "AutoModel.from_pretrained(resolve_checkpoint('sentence-transformers/all-MiniLM-L6-v2'))")
PAIRS = {
    "hf-tl --help": ([sys.executable, "-m", "hf_tl.cli", "--help"], [sys.executable, "-c", "import torch"], 2.0),
    "hf-tl trainable stsb_full.yaml": (
        [sys.executable, "-m", "hf_tl.cli", "trainable", str(ROOT / "recipes" / "configs" / "stsb_full.yaml")],
        [sys.executable, "-c", LOAD], 5.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None, help="Also write the results here (JSON).")
    args = parser.parse_args()
    rows = []
    for name, (command, baseline, target) in PAIRS.items():
        times = {"command": [], "baseline": []}
        for attempt in range(args.repeats):
            order = [("command", command), ("baseline", baseline)]
            for who, cmd in order if attempt % 2 == 0 else order[::-1]:
                times[who].append(run_process(cmd, name)[0])
        command_s, baseline_s = statistics.median(times["command"]), statistics.median(times["baseline"])
        rows.append({"command": name, "median_s": round(command_s, 2), "baseline": " ".join(baseline[1:]),
                     "baseline_median_s": round(baseline_s, 2), "x_baseline": round(command_s / baseline_s, 2),
                     "target_s": target, "met": command_s < target, "all_s": times})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "all_s"}), flush=True)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
