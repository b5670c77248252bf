"""Benchmark: ensembles on STS-B and the SICK relatedness task (zero-shot, fine-tuned, ensemble).

    HF_TL_DATA_DIR=../shared/data python benchmarks/generalise.py --remedies /tmp/remedies --output_root /tmp/gen

STS-B: ensembles made with ``hf_tl.make_ensemble`` from the runs of ``benchmarks/remedies.py`` (the shipped
bi-encoder config over two seeds, and its CoSENT variant) and from the shipped cross-encoder config, trained here:
two seeds, bi-encoder + CoSENT bi-encoder, bi-encoder + cross-encoder with equal and with dev-fitted weights.
SICK (``../shared/data/sick``): trained on SICK_train, scored on SICK_trial, all-MiniLM-L6-v2 as a bi-encoder,
zero-shot and fine-tuned with the STS-B config's settings over two seeds, and the two seeds' ensemble. Prints a table
(dev Spearman, wall time) and writes it, the raw numbers and a chart to --output_root.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from runner import ROOT, run_config, run_process

SICK = """model_name_or_path: sentence-transformers/all-MiniLM-L6-v2
task: similarity
architecture: bi_encoder
train_file: sick/SICK_train.txt
validation_file: sick/SICK_trial.txt
text_column: sentence_A
text_pair_column: sentence_B
label_column: relatedness_score
score_min: 1.0
score_max: 5.0
max_length: 128
head_type: none
per_device_train_batch_size: 16
warmup_ratio: 0.1
weight_decay: 0.01
num_train_epochs: 2
learning_rate: 2.0e-05
"""


def spearman(run: Path) -> float:
    return json.loads((run / "eval_results.json").read_text())["eval_spearmanr"]


def ensemble(members: list[Path], out: Path, weights: str) -> tuple[float, float]:
    """Make an ensemble (or read a finished one); return its dev Spearman and the seconds it took."""
    import hf_tl

    start = time.perf_counter()
    if not (out / "eval_results.json").is_file():
        hf_tl.make_ensemble(members, out, weights=weights)
    return spearman(out), round(time.perf_counter() - start, 1)


def train_sick(root: Path, strategy: str, seed: int) -> dict:
    out = root / f"sick_{strategy}_seed{seed}"
    config = root / "sick.yaml"
    config.write_text(SICK + f"strategy: {strategy}\nseed: {seed}\noutput_dir: {out}\n")
    record = root / f"{out.name}.json"
    if record.is_file():
        return json.loads(record.read_text())
    wall, rss = run_process([sys.executable, str(ROOT / "recipes" / "text_similarity.py"), "--config", str(config)],
                            out.name)
    row = {"wall_s": wall, "peak_rss_mib": rss, "eval_spearmanr": spearman(out), "path": str(out)}
    record.write_text(json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remedies", required=True, help="The --output_root of benchmarks/remedies.py (finished).")
    parser.add_argument("--output_root", required=True, help="Folder for the new runs and the results.")
    args = parser.parse_args()
    remedies, root = Path(args.remedies), Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []

    def add(task: str, what: str, score: float, wall: float, note: str = "") -> None:
        rows.append({"task": task, "what": what, "spearman": score, "wall_s": wall, "note": note})
        print(json.dumps(rows[-1]), flush=True)

    runs = {name: remedies / name for name in ("baseline-seed42", "baseline-seed43", "cosent-seed42")}
    record = json.loads((remedies / "baseline-seed42.json").read_text())
    add("STS-B", "bi-encoder, seed 42 (remedies baseline)", spearman(runs["baseline-seed42"]), record["wall_s"])
    cross = root / "stsb_full-seed42"
    if not (cross / "eval_results.json").is_file():
        cross_row = run_config("text_similarity", "stsb_full", cross, ["--seed", "42"])
        (root / "stsb_full-seed42.json").write_text(json.dumps(cross_row))
    cross_row = json.loads((root / "stsb_full-seed42.json").read_text())
    add("STS-B", "cross-encoder, seed 42 (stsb_full)", cross_row["eval_spearmanr"], cross_row["wall_s"])
    if runs["baseline-seed43"].is_dir():
        add("STS-B", "ensemble: bi-encoder seeds 42 + 43",
            *ensemble([runs["baseline-seed42"], runs["baseline-seed43"]], root / "ens_seeds", "equal"))
    add("STS-B", "ensemble: bi-encoder mse + cosent",
        *ensemble([runs["baseline-seed42"], runs["cosent-seed42"]], root / "ens_losses", "equal"))
    add("STS-B", "ensemble: bi + cross, equal weights",
        *ensemble([runs["baseline-seed42"], cross], root / "ens_bi_cross", "equal"))
    add("STS-B", "ensemble: bi + cross, dev-fitted weights",
        *ensemble([runs["baseline-seed42"], cross], root / "ens_bi_cross_dev", "dev"), "optimistic: fitted on dev")

    zero = train_sick(root, "zero_shot", 42)
    add("SICK", "zero-shot bi-encoder", zero["eval_spearmanr"], zero["wall_s"])
    sick = [train_sick(root, "full", seed) for seed in (42, 43)]
    for seed, row in zip((42, 43), sick):
        add("SICK", f"bi-encoder full, seed {seed}", row["eval_spearmanr"], row["wall_s"])
    add("SICK", "ensemble: seeds 42 + 43", *ensemble([Path(r["path"]) for r in sick], root / "sick_ens", "equal"))

    lines = ["| task | model | dev Spearman | wall time (s) | note |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['what']} | {r['spearman']:.4f} | {r['wall_s']} | {r['note']} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    (root / "results.md").write_text(text + "\n")
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    chart(rows, root / "generalise.png")


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for ax, task in zip(axes, ("STS-B", "SICK")):
        mine = [r for r in rows if r["task"] == task]
        labels = [r["what"].replace("ensemble: ", "ens: ").replace(" (remedies baseline)", "") for r in mine]
        colors = ["#3b75af" if r["what"].startswith("ensemble") else "#888888" for r in mine]
        ax.barh(labels, [r["spearman"] for r in mine], color=colors)
        low = min(r["spearman"] for r in mine)
        ax.set_xlim(low - 0.02, max(r["spearman"] for r in mine) + 0.01)
        ax.invert_yaxis()
        ax.set_xlabel("dev Spearman" if task == "STS-B" else "trial Spearman")
        ax.set_title(task)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
