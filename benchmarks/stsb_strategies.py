"""Benchmark: all-MiniLM-L6-v2 on STS-B with every core strategy, one table.

    HF_TL_DATA_DIR=../shared/data python benchmarks/stsb_strategies.py --output_root /tmp/stsb_bench

Each run is the shipped config in recipes/configs/ (the tuned defaults), trained in its own process so that the
peak memory (CPU RSS, or GPU max allocated) belongs to that run alone. Prints a Markdown table of dev Pearson and
Spearman, trainable parameters, wall time and peak memory, and writes it with the raw numbers to --output_root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runner import run_config

RUNS = [  # (label, config)
    ("full (cross-encoder)", "stsb_full"),
    ("lora (cross-encoder)", "stsb_lora"),
    ("full (bi-encoder)", "stsb_bi_encoder_full"),
    ("zero-shot (bi-encoder)", "stsb_zero_shot"),
    ("frozen (cross-encoder)", "stsb_frozen"),
    ("partial, top 2 blocks (cross-encoder)", "stsb_partial"),
    ("gradual (cross-encoder)", "stsb_gradual"),
]
OPTIONAL_RUNS = [("lora (bi-encoder)", "stsb_bi_encoder_lora"), ("ia3 (cross-encoder)", "stsb_ia3"),
                 ("prompt tuning (cross-encoder)", "stsb_prompt_tuning"),
                 ("prefix tuning (cross-encoder)", "stsb_prefix_tuning")]


def table(rows: list[dict]) -> str:
    lines = ["| run | dev Pearson | dev Spearman | trainable params | wall time (s) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['eval_pearsonr']:.4f} | {r['eval_spearmanr']:.4f} | "
                     f"{r['trainable']:,} ({100 * r['trainable'] / r['total']:.2f}%) | {r['wall_s']:.0f} | "
                     f"{r['peak_rss_mib']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="Folder for the runs and the results (must not exist).")
    parser.add_argument("--only", default=None,
                        help="Comma-separated config names to run (default: the core set; the optional PEFT configs "
                             "run only when named here).")
    parser.add_argument("extra", nargs="*", help="Flags passed to every run after --, e.g. -- --max_train_samples 200")
    args = parser.parse_args()
    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for label, config in RUNS + OPTIONAL_RUNS:
        if (only and config not in only) or (not only and (label, config) in OPTIONAL_RUNS):
            continue
        row = {"label": label, **run_config("text_similarity", config, root / config, args.extra)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    text = table(rows)
    print(text)
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
