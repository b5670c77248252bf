"""Benchmark: hf_tl end to end, whole processes, each row against its baseline run in the same session.

    HF_TL_DATA_DIR=../shared/data python benchmarks/end_to_end.py --output_root /tmp/bench

runs, one after the other (each script alternates its runs and reports medians):
  throughput.py --steps 40  --runs hf_tl trainer_best hf_tl_keep0 hf_tl_cold --repeats 3   -> OUTPUT_ROOT/e2e40
  throughput.py --steps 180 --runs hf_tl trainer_best --repeats 3   (one epoch of STS-B)   -> OUTPUT_ROOT/epoch
  throughput.py --steps 40  --runs hf_tl hf_tl_launch --repeats 3   (accelerate launch)     -> OUTPUT_ROOT/launch
  startup.py --repeats 5                                                                   -> OUTPUT_ROOT/startup.json
  inference_speed.py --repeats 3  (predict and embed against sentence-transformers)        -> OUTPUT_ROOT/infer
then writes OUTPUT_ROOT/end_to_end.json (one row per target: hf_tl's figure, the baseline's, the ratio, the target)
and OUTPUT_ROOT/end_to_end.png (the ratios against their targets). --collect_only rebuilds those two from the
outputs already there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from runner import ROOT

HERE = ROOT / "benchmarks"


def run_all(root: Path) -> None:
    py = sys.executable
    steps = [
        [py, "throughput.py", "--output_root", str(root / "e2e40"), "--steps", "40", "--batch_size", "32", "--runs",
         "hf_tl", "trainer_best", "hf_tl_keep0", "hf_tl_cold", "--repeats", "3"],
        [py, "throughput.py", "--output_root", str(root / "epoch"), "--steps", "180", "--batch_size", "32", "--runs",
         "hf_tl", "trainer_best", "--repeats", "3"],
        [py, "throughput.py", "--output_root", str(root / "launch"), "--steps", "40", "--batch_size", "32", "--runs",
         "hf_tl", "hf_tl_launch", "--repeats", "3"],
        [py, "startup.py", "--repeats", "5", "--output", str(root / "startup.json")],
        [py, "inference_speed.py", "--output_root", str(root / "infer"), "--repeats", "3"],
    ]
    for cmd in steps:
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=HERE, check=True)


def collect(root: Path) -> list[dict]:
    """One row per target of the end-to-end table (ratio > 1: hf_tl is faster, except where said)."""
    rows = []

    def runs(name):
        return {r["run"]: r for r in json.loads((root / name / "results.json").read_text())["runs"]}

    variants = {"hf_tl": "", "hf_tl_keep0": ", save_total_limit 0", "hf_tl_cold": ", cache_tokenized false"}
    for name, what, short in (("e2e40", "40 steps x 32 STS-B pairs, cross-encoder full", "train 40 steps"),
                              ("epoch", "one epoch of STS-B", "train 1 epoch")):
        r = runs(name)
        for variant, setting in variants.items():
            if variant in r:
                rows.append({"row": f"{what}: {variant} vs HF Trainer at its best",
                             "short": f"{short}{setting} vs Trainer", "hf_tl_s": r[variant]["wall_s"],
                             "baseline_s": r["trainer_best"]["wall_s"],
                             "ratio": r[variant]["wall_speedup_x_trainer_best"], "target": 1.15,
                             "run_dir_mib": r[variant].get("run_dir_mib"), "model_mib": r[variant].get("model_mib")})
    r = runs("launch")
    rows.append({"row": "accelerate launch vs python recipes/... (40 steps)", "short": "accelerate launch vs python",
                 "hf_tl_s": r["hf_tl_launch"]["wall_s"],
                 "baseline_s": r["hf_tl"]["wall_s"], "ratio": r["hf_tl_launch"]["speed_x_python"], "target": 0.98,
                 "cpu_threads": r["hf_tl_launch"].get("cpu_threads")})
    infer = json.loads((root / "infer" / "results.json").read_text())["jobs"]
    names = {"predict_cross": ("load_run().predict, 10,000 STS-B pairs, cross-encoder vs CrossEncoder.predict",
                               "predict cross-encoder vs CrossEncoder"),
             "predict_bi": ("load_run().predict, 10,000 STS-B pairs, bi-encoder vs SentenceTransformer.encode",
                            "predict bi-encoder vs SentenceTransformer"),
             "embed": ("hf-tl embed, SST-2 train (67,349 sentences) vs SentenceTransformer.encode",
                       "hf-tl embed vs SentenceTransformer")}
    for job, (what, short) in names.items():
        if job in infer:
            j = infer[job]
            rows.append({"row": what, "short": short, "hf_tl_s": j["medians"]["hf_tl"]["wall_s"],
                         "baseline_s": j["medians"]["sentence-transformers"]["wall_s"],
                         "ratio": j["wall_speedup_x_peer"], "call_ratio": j["call_speedup_x_peer"], "target": 1.0,
                         "max_abs_difference": j["max_abs_difference"]})
    for s in json.loads((root / "startup.json").read_text()):
        rows.append({"row": f"{s['command']} (seconds; target under {s['target_s']:g} s)",
                     "short": f"{s['command'].split(' stsb')[0]} (target {s['target_s']:g} s / time)",
                     "hf_tl_s": s["median_s"],
                     "baseline_s": s["baseline_median_s"], "baseline": s["baseline"],
                     "ratio": round(s["target_s"] / s["median_s"], 3), "target": 1.0})
    return rows


def chart(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.42 * len(rows) + 1.2))
    ax = fig.add_subplot()
    labels = [r["short"] for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    targets = [r["target"] for r in rows][::-1]
    colors = ["tab:green" if x >= t else "tab:red" for x, t in zip(ratios, targets)]
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.scatter(targets, range(len(rows)), marker="|", s=300, color="black", label="target", zorder=3)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel("times faster than the baseline (start-up: target s / s); green: target met", fontsize=8)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--collect_only", action="store_true", help="Only rebuild the summary from earlier outputs.")
    args = parser.parse_args()
    if not args.collect_only:
        run_all(args.output_root)
    rows = collect(args.output_root)
    (args.output_root / "end_to_end.json").write_text(json.dumps(rows, indent=2))
    chart(rows, args.output_root / "end_to_end.png")
    for r in rows:
        print(f"{r['ratio']:>6.3f}x (target {r['target']:g})  hf_tl {r['hf_tl_s']} s  baseline {r['baseline_s']} s  "
              f"{r['row']}")


if __name__ == "__main__":
    main()
