"""Benchmark: the cheap transfer paths on SST-2 dev and STS-B dev: zero-shot, few-shot, features per layer choice,
and frozen, next to full fine-tuning from the earlier benchmarks.

    HF_TL_DATA_DIR=../shared/data python benchmarks/few_zero_shot.py --output_root /tmp/few_zero [--groups ...]

Groups:
  zero_shot  SST-2: MiniLM label descriptions (sst2_zero_shot), SmolLM2-135M label-word likelihood
             (sst2_smollm2_zero_shot, GGUF, offline); STS-B: MiniLM cosine (stsb_zero_shot). The NLI mode needs an
             NLI checkpoint, and none installs offline, so it is not run here.
  few_shot   k = 8, 16, 64 examples per label (STS-B: per whole score 0-5), seeds 0-4 (the seed draws the examples
             and seeds training). SST-2: setfit, frozen, lora; STS-B: bi-encoder fine-tuning, frozen cross-encoder.
             Reported as mean ± standard deviation over the seeds (ddof 1).
  features   the features strategy with each layer choice on the full train splits (SST-2 logistic regression,
             STS-B ridge), and frozen with layer weighted (the learned mix; features cannot learn it).
Every run is a shipped config in recipes/configs/ trained in this process on all of the dev split; a run whose
folder already holds eval_results.json is read, not rerun, so an interrupted benchmark continues. Results go to
OUTPUT_ROOT/results.json, tables to OUTPUT_ROOT/results.md. full and frozen (linear head) come from
docs/benchmarks/glue_transfer_cpu.json and stsb_strategies_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from runner import ROOT, smollm2_flags

from hf_tl.recipe import run_recipe
from hf_tl.run_dir import RESULTS_FILE

TASKS = {"sst2": (("classification",), "accuracy"), "stsb": (("similarity",), "spearmanr")}
ZERO_SHOT = [("sst2", "label description (MiniLM)", "sst2_zero_shot", False),
             ("sst2", "label likelihood (SmolLM2-135M)", "sst2_smollm2_zero_shot", True),
             ("stsb", "cosine (MiniLM bi-encoder)", "stsb_zero_shot", False)]
FEW_SHOT = [("sst2", "setfit", "sst2_setfit"), ("sst2", "frozen", "sst2_few_shot_frozen"),
            ("sst2", "lora", "sst2_few_shot_lora"), ("stsb", "bi-encoder full", "stsb_few_shot_bi_encoder"),
            ("stsb", "frozen cross-encoder", "stsb_few_shot_frozen")]
LAYERS = ["last", "second_to_last", "mean_last4", "concat_last4"]


def run(task: str, config: str, out: Path, extra: list[str]) -> dict:
    """Train one config in this process (or read its finished run) and return its results plus wall seconds."""
    wall_file = out.with_name(out.name + ".wall_s")  # beside the run: the run directory stays as the run wrote it
    if (out / RESULTS_FILE).is_file() and wall_file.is_file():
        return {**json.loads((out / RESULTS_FILE).read_text()), "wall_s": float(wall_file.read_text())}
    start = time.perf_counter()
    results = run_recipe(["--config", str(ROOT / "recipes" / "configs" / f"{config}.yaml"), "--output_dir", str(out),
                          "--overwrite_output_dir", "true", *extra], TASKS[task][0])
    wall = round(time.perf_counter() - start, 1)
    wall_file.write_text(str(wall))
    return {**results, "wall_s": wall}


def zero_shot_group(root: Path, rows: list) -> None:
    for task, label, config, smollm2 in ZERO_SHOT:
        r = run(task, config, root / config, smollm2_flags() if smollm2 else [])
        rows.append({"group": "zero_shot", "task": task, "method": label, "config": config, **r})


def few_shot_group(root: Path, rows: list, ks: list[int], seeds: list[int]) -> None:
    for task, label, config in FEW_SHOT:
        for k in ks:
            for seed in seeds:
                out = root / f"{config}_k{k}_s{seed}"
                r = run(task, config, out, ["--few_shot_k", str(k), "--few_shot_seed", str(seed), "--seed", str(seed)])
                rows.append({"group": "few_shot", "task": task, "method": label, "config": config, "k": k,
                             "seed": seed, **r})


def features_group(root: Path, rows: list) -> None:
    for task, config in (("sst2", "sst2_features"), ("stsb", "stsb_features")):
        for layer in LAYERS:
            r = run(task, config, root / f"{config}_{layer}", ["--layer", layer])
            rows.append({"group": "features", "task": task, "method": f"features, layer {layer}", "config": config,
                         **r})
    for task, config, extra in (("sst2", "sst2_frozen", []), ("stsb", "stsb_frozen", ["--head_type", "linear"])):
        r = run(task, config, root / f"{config}_weighted", ["--layer", "weighted", *extra])
        rows.append({"group": "features", "task": task, "method": "frozen, layer weighted", "config": config, **r})


def reference_rows() -> list[dict]:
    """full and frozen (layer last) from the earlier CPU benchmarks, as they were measured there."""
    docs = ROOT / "docs" / "benchmarks"
    glue = {r["config"]: r for r in json.loads((docs / "glue_transfer_cpu.json").read_text())
            if r.get("group") == "tasks"}
    stsb = {r["config"]: r for r in json.loads((docs / "stsb_strategies_cpu.json").read_text())}
    picks = [("sst2", "frozen, layer last (glue_transfer)", glue["sst2_frozen"]),
             ("sst2", "full (glue_transfer)", glue["sst2_full"]),
             ("stsb", "frozen MLP head (stsb_strategies)", stsb["stsb_frozen"]),
             ("stsb", "full cross-encoder (stsb_strategies)", stsb["stsb_full"]),
             ("stsb", "full bi-encoder (stsb_strategies)", stsb["stsb_bi_encoder_full"])]
    return [{**r, "group": "reference", "task": task, "method": method} for task, method, r in picks]


def markdown(rows: list[dict], ks: list[int]) -> str:
    """One table per task: single runs with their metric, few-shot cells as mean ± std over the seeds."""
    lines = []
    for task, (_, metric) in TASKS.items():
        lines += [f"### {task} dev {metric}", "", "| method | " + " | ".join(f"k = {k}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks)]
        few = [r for r in rows if r["task"] == task and r["group"] == "few_shot"]
        for method in dict.fromkeys(r["method"] for r in few):
            cells = []
            for k in ks:
                values = [r[f"eval_{metric}"] for r in few if r["method"] == method and r["k"] == k]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ± {std:.4f} ({len(values)} seeds)" if values else "")
            lines.append(f"| few-shot {method} | " + " | ".join(cells) + " |")
        lines += ["", "| method | " + metric + " | trained on |", "|---|---|---|"]
        for r in rows:
            if r["task"] == task and r["group"] != "few_shot":
                data = "nothing" if r["group"] == "zero_shot" else "full train split"
                lines.append(f"| {r['group']}: {r['method']} | {r[f'eval_{metric}']:.4f} | {data} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--groups", nargs="+", default=["zero_shot", "few_shot", "features"])
    parser.add_argument("--ks", type=int, nargs="+", default=[8, 16, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    args.output_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_TL_FEATURE_CACHE", str(args.output_root / "feature_cache"))
    rows: list[dict] = []
    if "zero_shot" in args.groups:
        zero_shot_group(args.output_root, rows)
    if "features" in args.groups:
        features_group(args.output_root, rows)
    if "few_shot" in args.groups:
        few_shot_group(args.output_root, rows, args.ks, args.seeds)
    rows += reference_rows()
    (args.output_root / "results.json").write_text(json.dumps(rows, indent=2))
    table = markdown(rows, args.ks)
    (args.output_root / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
