"""Benchmark: paraphrase (MRPC) and sentiment (SST-2) per strategy and backbone, task-to-task transfer into STS-B,
and multi-task vs single-task training.

    HF_TL_DATA_DIR=../shared/data python benchmarks/glue_transfer.py --output_root /tmp/glue_bench [--groups ...]

Groups (run in this order; later groups reuse earlier runs in the same --output_root):
  tasks      MRPC dev accuracy/F1 and SST-2 dev accuracy: all-MiniLM-L6-v2 with frozen, lora, full; SmolLM2-135M
             (GGUF, offline) with frozen and lora, on --smollm2_train_samples train rows per task.
  transfer   STS-B dev Spearman of MiniLM fine-tuned directly (stsb_full) and from the finished SST-2 and MRPC full
             runs (stsb_full_from_*), with the same STS-B budget; and the reverse, MRPC fine-tuned directly
             (mrpc_full) vs from the STS-B run (mrpc_full_from_stsb), with the same MRPC budget.
  multitask  STS-B + MRPC + SST-2 jointly (multitask_glue, --multitask_train_samples rows per task) vs each task
             alone on the same rows, with the same total number of optimizer steps.
Each run is a shipped config in recipes/configs/ trained in its own process; results go to OUTPUT_ROOT/results.json
and a Markdown table per group to OUTPUT_ROOT/results.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from runner import run_config, smollm2_flags

TASK_RUNS = [  # (label, recipe, config, backbone)
    ("MRPC frozen", "paraphrase", "mrpc_frozen", "minilm"),
    ("MRPC lora", "paraphrase", "mrpc_lora", "minilm"),
    ("MRPC full", "paraphrase", "mrpc_full", "minilm"),
    ("SST-2 frozen", "sentiment", "sst2_frozen", "minilm"),
    ("SST-2 lora", "sentiment", "sst2_lora", "minilm"),
    ("SST-2 full", "sentiment", "sst2_full", "minilm"),
    ("MRPC frozen", "paraphrase", "mrpc_smollm2_frozen", "smollm2"),
    ("MRPC lora", "paraphrase", "mrpc_smollm2_lora", "smollm2"),
    ("SST-2 frozen", "sentiment", "sst2_smollm2_frozen", "smollm2"),
    ("SST-2 lora", "sentiment", "sst2_smollm2_lora", "smollm2"),
]
SINGLE_TASKS = {"stsb": ("text_similarity", "stsb_full"), "mrpc": ("paraphrase", "mrpc_full"),
                "sst2": ("sentiment", "sst2_full")}
PRIMARY = {"stsb": "spearmanr", "mrpc": "accuracy", "sst2": "accuracy"}


def _metrics(r: dict, prefix: str = "") -> str:
    keys = [k for k in ("accuracy", "f1", "spearmanr", "pearsonr") if f"eval_{prefix}{k}" in r]
    return ", ".join(f"{k} {r[f'eval_{prefix}{k}']:.4f}" for k in keys)


def tasks_group(root: Path, args, only) -> list[dict]:
    rows = []
    for label, recipe, config, backbone in TASK_RUNS:
        if only and config not in only:
            continue
        out = root / config
        extra = list(args.extra)
        if backbone == "smollm2":
            extra = [*smollm2_flags(), "--max_train_samples", str(args.smollm2_train_samples), *extra]
        row = _run_or_reuse(recipe, config, out, extra)
        rows.append({"group": "tasks", "label": f"{label} ({backbone})", **row})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def transfer_group(root: Path, args) -> list[dict]:
    rows = []
    for label, recipe, config, source in (("STS-B directly", "text_similarity", "stsb_full", None),
                                          ("STS-B via SST-2", "text_similarity", "stsb_full_from_sst2", "sst2_full"),
                                          ("STS-B via MRPC", "text_similarity", "stsb_full_from_mrpc", "mrpc_full"),
                                          ("MRPC directly", "paraphrase", "mrpc_full", None),
                                          ("MRPC via STS-B", "paraphrase", "mrpc_full_from_stsb", "stsb_full")):
        out = root / config
        extra = list(args.extra)
        if source:
            if not (root / source / "eval_results.json").is_file():
                raise SystemExit(f"{config} starts from {root / source}; run the tasks group first.")
            extra = ["--init_from_run", str(root / source), *extra]
        row = _run_or_reuse(recipe, config, out, extra)
        rows.append({"group": "transfer", "label": label, **row})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def multitask_group(root: Path, args) -> list[dict]:
    n, batch = args.multitask_train_samples, 16
    rows, total_steps = [], 0
    for name, (recipe, config) in SINGLE_TASKS.items():
        steps = math.ceil(n / batch)
        total_steps += steps
        out = root / f"single_{name}_{n}"
        extra = ["--max_train_samples", str(n), "--num_train_epochs", "1", "--per_device_train_batch_size",
                 str(batch), "--eval_strategy", "epoch", *args.extra]
        row = _run_or_reuse(recipe, config, out, extra)
        rows.append({"group": "multitask", "label": f"{name} alone ({steps} steps)", "task": name, **row})
        print(json.dumps(rows[-1]), flush=True)
    out = root / f"multitask_{n}"
    extra = [*(f for name in SINGLE_TASKS for f in (f"--tasks.{name}.max_train_samples", str(n))),
             "--max_steps", str(total_steps), "--per_device_train_batch_size", str(batch), *args.extra]
    row = _run_or_reuse("multitask", "multitask_glue", out, extra)
    rows.append({"group": "multitask", "label": f"all three jointly ({total_steps} steps)", **row})
    print(json.dumps(rows[-1]), flush=True)
    return rows


def _run_or_reuse(recipe: str, config: str, out: Path, extra: list[str]) -> dict:
    """Train a config, or report the finished run already in the output root (so groups can run one at a time)."""
    saved = out / "benchmark_row.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    row = run_config(recipe, config, out, extra)
    saved.write_text(json.dumps(row))
    return row


def tables(rows: list[dict]) -> str:
    out = []
    tasks = [r for r in rows if r["group"] == "tasks"]
    if tasks:
        out += ["| run | dev metrics | trainable params | wall time (s) | peak RSS (MiB) |", "|---|---|---|---|---|"]
        out += [f"| {r['label']} | {_metrics(r)} | {r['trainable']:,} ({100 * r['trainable'] / r['total']:.2f}%) | "
                f"{r['wall_s']:.0f} | {r['peak_rss_mib']:,} |" for r in tasks]
    transfer = [r for r in rows if r["group"] == "transfer"]
    if transfer:
        out += ["", "| transfer run | dev metrics (target task) | wall time (s) |", "|---|---|---|"]
        out += [f"| {r['label']} | {_metrics(r)} | {r['wall_s']:.0f} |" for r in transfer]
    multi = [r for r in rows if r["group"] == "multitask"]
    if multi:
        out += ["", "| run | STS-B Spearman | MRPC accuracy / F1 | SST-2 accuracy | wall time (s) |",
                "|---|---|---|---|---|"]
        joint = multi[-1]
        singles = {r["task"]: r for r in multi[:-1]}
        out.append(f"| each task alone (sum of {len(singles)} runs) | {singles['stsb']['eval_spearmanr']:.4f} | "
                   f"{singles['mrpc']['eval_accuracy']:.4f} / {singles['mrpc']['eval_f1']:.4f} | "
                   f"{singles['sst2']['eval_accuracy']:.4f} | {sum(r['wall_s'] for r in singles.values()):.0f} |")
        out.append(f"| {joint['label']} | {joint['eval_stsb/spearmanr']:.4f} | {joint['eval_mrpc/accuracy']:.4f} / "
                   f"{joint['eval_mrpc/f1']:.4f} | {joint['eval_sst2/accuracy']:.4f} | {joint['wall_s']:.0f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="Folder for the runs and the results.")
    parser.add_argument("--groups", default="tasks,transfer,multitask", help="Comma-separated groups to run.")
    parser.add_argument("--only", default=None, help="tasks group: comma-separated config names to run.")
    parser.add_argument("--smollm2_train_samples", type=int, default=2000, help="Train rows per task for SmolLM2.")
    parser.add_argument("--multitask_train_samples", type=int, default=2000, help="Train rows per task (multitask).")
    parser.add_argument("extra", nargs="*", help="Flags passed to every run after --")
    args = parser.parse_args()
    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    groups = args.groups.split(",")
    only = set(args.only.split(",")) if args.only else None
    rows = []
    if "tasks" in groups:
        rows += tasks_group(root, args, only)
    if "transfer" in groups:
        rows += transfer_group(root, args)
    if "multitask" in groups:
        rows += multitask_group(root, args)
    text = tables(rows)
    print(text)
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
