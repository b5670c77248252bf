"""Benchmark: sentence-transformers' own training recipe beside hf_tl's on STS-B, cosine regression and CoSENT.

    HF_TL_DATA_DIR=../shared/data python benchmarks/st_peer.py --output_root /tmp/st_peer [--losses cosine,cosent]

all-MiniLM-L6-v2 trained by ``SentenceTransformerTrainer`` (the peer library's own loop) with ``CosineSimilarityLoss``
or ``CoSENTLoss``, with the settings of hf_tl's ``stsb_bi_encoder_full`` config (2 epochs, batch 16, learning rate
2e-5, warmup 10%, seed 42), and scored on the dev split by ``EmbeddingSimilarityEvaluator`` after each epoch (the
best kept, as hf_tl does). Each loss trains in its own process; prints and writes dev Spearman and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

LOSSES = ("cosine", "cosent")


def child(loss_name: str, out: Path) -> None:
    """Train and evaluate one loss in this process."""
    import csv

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.losses import CoSENTLoss, CosineSimilarityLoss

    from hf_tl.backbone import resolve_checkpoint

    data = Path(os.environ.get("HF_TL_DATA_DIR", "../shared/data")) / "stsb"

    def read(name: str) -> dict:
        with open(data / name, newline="") as fh:
            rows = list(csv.reader(fh))
        return {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows],
                "score": [float(r[2]) / 5.0 for r in rows]}

    train, dev = Dataset.from_dict(read("train.csv")), read("dev.csv")
    model = SentenceTransformer(resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")
    loss = CosineSimilarityLoss(model) if loss_name == "cosine" else CoSENTLoss(model)
    evaluator = EmbeddingSimilarityEvaluator(dev["sentence1"], dev["sentence2"], dev["score"], name="dev")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=16, learning_rate=2e-5,
        warmup_ratio=0.1, seed=42, eval_strategy="epoch", save_strategy="no", logging_steps=50, report_to="none",
        use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator)
    trainer.train()
    history = [e["eval_dev_spearman_cosine"] for e in trainer.state.log_history if "eval_dev_spearman_cosine" in e]
    (out / "result.json").write_text(json.dumps({"loss": loss_name, "dev_spearman_per_epoch": history,
                                                 "dev_spearman": max(history)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="Folder for the runs and the results.")
    parser.add_argument("--losses", default=",".join(LOSSES), help=f"Comma-separated: {', '.join(LOSSES)}.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.output_root)
    if args.child:
        child(args.child, root / args.child)
        return
    from runner import run_process

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.losses.split(","):
        (root / name).mkdir(exist_ok=True)
        if not (root / name / "result.json").is_file():
            start = time.perf_counter()
            run_process([sys.executable, __file__, "--output_root", str(root), "--child", name], name)
            wall = round(time.perf_counter() - start, 1)
            result = json.loads((root / name / "result.json").read_text())
            (root / name / "result.json").write_text(json.dumps({**result, "wall_s": wall}))
        rows.append(json.loads((root / name / "result.json").read_text()))
        print(json.dumps(rows[-1]), flush=True)
    lines = ["| loss (sentence-transformers) | dev Spearman per epoch | best | wall time (s) |", "|---|---|---|---|"]
    lines += [f"| {r['loss']} | {', '.join(f'{v:.4f}' for v in r['dev_spearman_per_epoch'])} | "
              f"{r['dev_spearman']:.4f} | {r['wall_s']} |" for r in rows]
    print("\n".join(lines))
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    (root / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
