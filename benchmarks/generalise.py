"""Benchmark: ensembles, the SICK relatedness task, the data-poor remedies, and cross-validation against dev.

    HF_TL_DATA_DIR=../shared/data python benchmarks/generalise.py --remedies /tmp/remedies --output_root /tmp/gen

Sections (``--sections``, default all; each run is kept, so an interrupted benchmark resumes):

- ``ensembles``: STS-B ensembles made with ``hf_tl.make_ensemble`` from the runs of ``benchmarks/remedies.py`` (the
  shipped bi-encoder config, two seeds, and its CoSENT variant) and from the shipped cross-encoder config, trained
  here: two seeds; bi-encoder + CoSENT bi-encoder; bi-encoder + cross-encoder with equal and dev-fitted weights.
- ``sick``: SICK relatedness (``../shared/data/sick``), trained on SICK_train and scored on SICK_trial:
  all-MiniLM-L6-v2 as a bi-encoder zero-shot, fine-tuned with the STS-B config's settings over two seeds, and the
  two seeds' ensemble.
- ``poor``: the data-poor case, the first 500 STS-B train pairs: the shipped bi-encoder config alone, with word-level
  augmentation, with 1,000 silver pairs scored by a cross-encoder trained on the same 500 pairs (augmented SBERT),
  and distilled from that cross-encoder.
- ``cv``: does 3-fold cross-validation on train predict the dev score? For ``features``, ``frozen`` (cross-encoder
  configs) and the bi-encoder ``full`` config (one epoch): the folds' held-out mean ± std and interval, the fold
  models' dev mean, and the plain run's dev score.

Prints one table (dev Spearman, wall time) and writes it, the raw numbers and a chart to --output_root.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from runner import ROOT, run_config, run_process

SECTIONS = ("ensembles", "sick", "poor", "cv")
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
POOR = ["--max_train_samples", "500"]


def spearman(run: Path) -> float:
    return json.loads((run / "eval_results.json").read_text())["eval_spearmanr"]


def ensemble(members: list[Path], out: Path, weights: str) -> tuple[float, float]:
    """Make an ensemble (or read a finished one); return its dev Spearman and the seconds it took."""
    import hf_tl

    start = time.perf_counter()
    if not (out / "eval_results.json").is_file():
        hf_tl.make_ensemble(members, out, weights=weights)
    return spearman(out), round(time.perf_counter() - start, 1)


def shipped(root: Path, config: str, name: str, flags: list[str]) -> dict:
    """Train a shipped config with flags into ROOT/NAME once; later calls read its record."""
    record = root / f"{name}.json"
    if not record.is_file():
        record.write_text(json.dumps(run_config("text_similarity", config, root / name, flags)))
    return {**json.loads(record.read_text()), "path": str(root / name)}


def sick_run(root: Path, strategy: str, seed: int) -> dict:
    out = root / f"sick_{strategy}_seed{seed}"
    record = root / f"{out.name}.json"
    if not record.is_file():
        config = root / f"{out.name}.yaml"
        config.write_text(SICK + f"strategy: {strategy}\nseed: {seed}\noutput_dir: {out}\n")
        wall, rss = run_process([sys.executable, str(ROOT / "recipes" / "text_similarity.py"), "--config",
                                 str(config)], out.name)
        record.write_text(json.dumps({"wall_s": wall, "peak_rss_mib": rss, "eval_spearmanr": spearman(out)}))
    return {**json.loads(record.read_text()), "path": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remedies", required=True, help="The --output_root of benchmarks/remedies.py (finished).")
    parser.add_argument("--output_root", required=True, help="Folder for the new runs and the results.")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"Comma-separated: {', '.join(SECTIONS)}.")
    args = parser.parse_args()
    remedies, root = Path(args.remedies), Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    sections = args.sections.split(",")
    rows = []

    def add(section: str, what: str, score: float, wall: float, note: str = "") -> None:
        rows.append({"section": section, "what": what, "spearman": score, "wall_s": wall, "note": note})
        print(json.dumps(rows[-1]), flush=True)

    if "ensembles" in sections:
        bi = {seed: remedies / f"baseline-seed{seed}" for seed in (42, 43)}
        for seed, run in bi.items():
            add("STS-B", f"bi-encoder, seed {seed}", spearman(run),
                json.loads((remedies / f"baseline-seed{seed}.json").read_text())["wall_s"])
        cross = shipped(root, "stsb_full", "stsb_full-seed42", ["--seed", "42"])
        add("STS-B", "cross-encoder, seed 42", cross["eval_spearmanr"], cross["wall_s"])
        add("STS-B", "ensemble: bi-encoder seeds 42 + 43", *ensemble(list(bi.values()), root / "ens_seeds", "equal"))
        add("STS-B", "ensemble: bi-encoder mse + cosent",
            *ensemble([bi[42], remedies / "cosent-seed42"], root / "ens_losses", "equal"))
        add("STS-B", "ensemble: bi + cross, equal weights",
            *ensemble([bi[42], Path(cross["path"])], root / "ens_bi_cross", "equal"))
        add("STS-B", "ensemble: bi + cross, dev-fitted weights",
            *ensemble([bi[42], Path(cross["path"])], root / "ens_bi_cross_dev", "dev"), "optimistic: fitted on dev")
    if "sick" in sections:
        zero = sick_run(root, "zero_shot", 42)
        add("SICK", "zero-shot bi-encoder", zero["eval_spearmanr"], zero["wall_s"])
        fine = [sick_run(root, "full", seed) for seed in (42, 43)]
        for seed, row in zip((42, 43), fine):
            add("SICK", f"bi-encoder full, seed {seed}", row["eval_spearmanr"], row["wall_s"])
        add("SICK", "ensemble: seeds 42 + 43", *ensemble([Path(r["path"]) for r in fine], root / "sick_ens", "equal"))
    if "poor" in sections:
        base = shipped(root, "stsb_bi_encoder_full", "poor_bi", POOR)
        add("STS-B, 500 pairs", "bi-encoder", base["eval_spearmanr"], base["wall_s"])
        augmented = shipped(root, "stsb_bi_encoder_full", "poor_bi_augment",
                            [*POOR, "--augment", "random_swap", "random_deletion"])
        add("STS-B, 500 pairs", "+ augment random_swap, random_deletion", augmented["eval_spearmanr"],
            augmented["wall_s"])
        teacher = shipped(root, "stsb_full", "poor_cross", POOR)
        add("STS-B, 500 pairs", "cross-encoder (the teacher)", teacher["eval_spearmanr"], teacher["wall_s"])
        silver = shipped(root, "stsb_bi_encoder_full", "poor_bi_silver",
                         [*POOR, "--silver_from", teacher["path"], "--silver_pairs", "1000"])
        add("STS-B, 500 pairs", "+ 1,000 silver pairs (augmented SBERT)", silver["eval_spearmanr"], silver["wall_s"])
        distilled = shipped(root, "stsb_bi_encoder_full", "poor_bi_distil",
                            [*POOR, "--distill_from", teacher["path"], "--distill_alpha", "0.5"])
        add("STS-B, 500 pairs", "+ distilled from the cross-encoder (alpha 0.5)", distilled["eval_spearmanr"],
            distilled["wall_s"])
    if "cv" in sections:
        for config, flags in (("stsb_features", []), ("stsb_frozen", []),
                              ("stsb_bi_encoder_full", ["--num_train_epochs", "1"])):
            plain = shipped(root, config, f"cv_{config}_plain", flags)
            add("CV vs dev", f"{config}{' (1 epoch)' if flags else ''}: dev", plain["eval_spearmanr"],
                plain["wall_s"])
            cv = shipped(root, config, f"cv_{config}", [*flags, "--cv_folds", "3"])
            summary = json.loads((Path(cv["path"]) / "cv_results.json").read_text())
            held, dev = summary["held_out"]["spearmanr"], summary["dev"]["spearmanr"]
            add("CV vs dev", f"{config}: 3-fold held-out mean", held["mean"], cv["wall_s"],
                f"± {held['std']:.4f}, 95% [{held['low']:.4f}, {held['high']:.4f}]; fold models on dev "
                f"{dev['mean']:.4f} ± {dev['std']:.4f}; folds averaged on dev "
                f"{summary['dev_of_averaged_folds']['spearmanr']:.4f}")

    previous = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else []
    rows = [r for r in previous if r["section"] not in {x["section"] for x in rows}] + rows
    lines = ["| section | model | dev Spearman | wall time (s) | note |", "|---|---|---|---|---|"]
    lines += [f"| {r['section']} | {r['what']} | {r['spearman']:.4f} | {r['wall_s']} | {r['note']} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    (root / "results.md").write_text(text + "\n")
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    chart(rows, root / "generalise.png")


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = list(dict.fromkeys(r["section"] for r in rows))
    fig, axes = plt.subplots(len(sections), 1, figsize=(8, 1.2 + 0.45 * len(rows)),
                             gridspec_kw={"height_ratios": [sum(r["section"] == s for r in rows) for s in sections]},
                             squeeze=False)
    for ax, section in zip(axes[:, 0], sections):
        mine = [r for r in rows if r["section"] == section]
        colors = ["#3b75af" if r["what"].startswith(("ensemble", "+")) or "3-fold" in r["what"] else "#888888"
                  for r in mine]
        ax.barh([r["what"] for r in mine], [r["spearman"] for r in mine], color=colors)
        low, high = min(r["spearman"] for r in mine), max(r["spearman"] for r in mine)
        ax.set_xlim(max(0.0, low - 0.03), min(1.0, high + 0.02))
        ax.invert_yaxis()
        ax.set_title(section, fontsize=10)
    axes[-1, 0].set_xlabel("Spearman (dev; SICK: trial split)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
