"""Benchmark: what each remedy against overfitting gains on its own, measured against the shipped config.

    HF_TL_DATA_DIR=../shared/data python benchmarks/remedies.py --output_root /tmp/remedies --seeds 42,43

Each variant is the shipped STS-B bi-encoder config (``stsb_bi_encoder_full``, all-MiniLM-L6-v2) with one setting
changed: the loss (CoSENT, AnglE, in-batch negatives instead of cosine regression) or a regulariser (backbone
dropout, an L2 penalty). Every run trains in its own process; the table gives dev Spearman mean ± std over the
seeds, the gain over the baseline run in the same session, and the wall time. A chart (``remedies.png``) shows the
same. ``--only`` picks variants by name; flags after ``--`` go to every run (e.g. ``-- --max_train_samples 500``).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from runner import run_config

CONFIG = "stsb_bi_encoder_full"
VARIANTS = {  # name -> (what changes, flags)
    "baseline": ("cosine regression (mse), the shipped config", []),
    "cosent": ("loss cosent", ["--loss", "cosent"]),
    "angle": ("loss angle", ["--loss", "angle"]),
    "mnrl": ("loss mnrl (in-batch negatives, pairs >= 4.0)", ["--loss", "mnrl"]),
    "dropout": ("backbone_dropout 0.2, attention_dropout 0.2", ["--backbone_dropout", "0.2",
                                                                 "--attention_dropout", "0.2"]),
    "l2": ("l2_penalty 1e-6 on every trained weight", ["--l2_penalty", "1e-6", "--penalty_on", "trained"]),
}


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of dev Spearman and wall time per variant, and the gain over the baseline."""
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        scores = [r["eval_spearmanr"] for r in mine]
        out.append({"variant": name, "change": VARIANTS[name][0], "seeds": [r["seed"] for r in mine],
                    "spearman_mean": statistics.mean(scores),
                    "spearman_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "wall_s_mean": statistics.mean(r["wall_s"] for r in mine)})
    base = next((s for s in out if s["variant"] == "baseline"), None)
    for s in out:
        s["gain"] = s["spearman_mean"] - base["spearman_mean"] if base else None
        s["time_ratio"] = s["wall_s_mean"] / base["wall_s_mean"] if base else None
    return out


def table(summary: list[dict]) -> str:
    lines = ["| variant | change | seeds | dev Spearman (mean ± std) | gain vs baseline | wall time (s) | time vs "
             "baseline |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        gain = "" if s["gain"] is None else f"{s['gain']:+.4f}"
        ratio = "" if s["time_ratio"] is None else f"{s['time_ratio']:.2f}x"
        lines.append(f"| {s['variant']} | {s['change']} | {len(s['seeds'])} | {s['spearman_mean']:.4f} ± "
                     f"{s['spearman_std']:.4f} | {gain} | {s['wall_s_mean']:.0f} | {ratio} |")
    return "\n".join(lines)


def chart(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [s["variant"] for s in summary]
    ax.bar(names, [s["spearman_mean"] for s in summary], yerr=[s["spearman_std"] for s in summary], capsize=4,
           color=["#888888" if n == "baseline" else "#3b75af" for n in names])
    low = min(s["spearman_mean"] - s["spearman_std"] for s in summary)
    ax.set_ylim(low - 0.01, max(s["spearman_mean"] + s["spearman_std"] for s in summary) + 0.005)
    ax.set_ylabel("dev Spearman")
    ax.set_title("STS-B, all-MiniLM-L6-v2 bi-encoder: one remedy at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="Folder for the runs and the results.")
    parser.add_argument("--seeds", default="42", help="Comma-separated seeds; each variant runs once per seed.")
    parser.add_argument("--only", default=None, help=f"Comma-separated variants (default: all of "
                                                     f"{', '.join(VARIANTS)}); baseline is always run.")
    parser.add_argument("--report_only", action="store_true",
                        help="Run nothing: tabulate every finished run under --output_root (any seed).")
    parser.add_argument("extra", nargs="*", help="Flags passed to every run after --.")
    args = parser.parse_args()
    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    names = ["baseline", *[n for n in (args.only.split(",") if args.only else VARIANTS) if n != "baseline"]]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"Unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}.")
    rows = []
    seeds = [] if args.report_only else [int(s) for s in args.seeds.split(",")]
    if args.report_only:
        found = [json.loads(p.read_text()) for p in sorted(root.glob("*-seed*.json"))]
        rows = sorted((r for r in found if r["variant"] in names),
                      key=lambda r: (names.index(r["variant"]), r["seed"]))
    for seed in seeds:
        for name in names:
            out = root / f"{name}-seed{seed}"
            record = root / f"{name}-seed{seed}.json"
            if record.is_file():  # an interrupted benchmark resumes where it stopped
                row = json.loads(record.read_text())
            else:
                row = {"variant": name, "seed": seed,
                       **run_config("text_similarity", CONFIG, out,
                                    [*VARIANTS[name][1], "--seed", str(seed), *args.extra])}
                record.write_text(json.dumps(row))
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("variant", "seed", "eval_spearmanr", "wall_s")}), flush=True)
    summary = summarise(rows)
    text = table(summary)
    print(text)
    (root / "results.json").write_text(json.dumps({"flags": args.extra, "runs": rows, "summary": summary}, indent=2))
    (root / "results.md").write_text(text + "\n")
    chart(summary, root / "remedies.png")


if __name__ == "__main__":
    main()
