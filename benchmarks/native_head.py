"""Benchmark: the shipped classification configs with hf_tl's head (mean pooling + linear) beside ``head_type native``
(the backbone's own [CLS] + pooler head, which loads as a standard AutoModelForSequenceClassification).

    HF_TL_DATA_DIR=../shared/data python benchmarks/native_head.py --output_root /tmp/native_head \
        --configs mrpc_full,sst2_full --seeds 42,43 [--key value ...]

Each config x head type x seed trains in its own child process with the config as shipped, plus the flags given
after the options (e.g. ``--max_train_samples 8000 --num_train_epochs 1`` to cut SST-2 to a CPU budget). Prints
and writes OUTPUT_ROOT/results.json and results.md: dev accuracy (the run's best) per seed and the mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from runner import run_config, write_results

RECIPES = {"mrpc": "paraphrase", "sst2": "sentiment", "stsb": "text_similarity"}
HEADS = {"linear": ["--head_type", "linear", "--pooling", "auto"], "native": ["--head_type", "native"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", required=True, type=Path)
    parser.add_argument("--configs", default="mrpc_full,sst2_full")
    parser.add_argument("--seeds", default="42")
    args, extra = parser.parse_known_args()
    rows = []
    for config in args.configs.split(","):
        for head, flags in HEADS.items():
            for seed in [int(s) for s in args.seeds.split(",")]:
                out = args.output_root / config / head / f"seed-{seed}"
                done = out / "eval_results.json"
                result = json.loads(done.read_text()) if done.is_file() else run_config(
                    RECIPES[config.split("_")[0]], config, out,
                    [*flags, "--seed", str(seed), "--overwrite_output_dir", *extra])
                rows.append({"config": config, "head": head, "seed": seed, "accuracy": result["eval_accuracy"],
                             "f1": result.get("eval_f1"), "wall_s": result.get("wall_s")})
                print(f"{config} {head} seed {seed}: accuracy {result['eval_accuracy']:.4f}", flush=True)
    lines = [f"Flags beside each config: `{' '.join(extra) or '(none)'}`", "",
             "| config | head | dev accuracy per seed | mean |", "|---|---|---|---|"]
    for config in args.configs.split(","):
        for head in HEADS:
            accs = [r["accuracy"] for r in rows if r["config"] == config and r["head"] == head]
            lines.append(f"| {config} | {head} | {', '.join(f'{a:.4f}' for a in accs)} | "
                         f"{statistics.mean(accs):.4f} |")
    write_results(args.output_root, extra, rows, lines)


if __name__ == "__main__":
    main()
