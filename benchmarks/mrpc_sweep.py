"""Benchmark: MRPC full fine-tuning of one checkpoint over learning rates and seeds, hf_tl beside HF Trainer.

    HF_TL_DATA_DIR=../shared/data python benchmarks/mrpc_sweep.py --output_root /tmp/mrpc_sweep \
        --learning_rates 2e-5,5e-5 --seeds 42,43 --trainer_seeds 42

For every learning rate x seed, two runs on the same train and dev files, batch size, epochs, warmup and weight
decay, each in its own child process:
  hf_tl    the paraphrase recipe with recipes/configs/mrpc_full.yaml (mean pooling, linear head, length-grouped)
  trainer  HF Trainer with AutoModelForSequenceClassification, as run_glue.py fine-tunes MRPC ([CLS] + pooler
           head, dynamic padding; here also group_by_length, as hf_tl), evaluated after every epoch like hf_tl
Both report the best dev accuracy over the epochs (the checkpoint each keeps) and the last epoch's. The Trainer
column answers whether a figure is this checkpoint's or hf_tl's. Writes OUTPUT_ROOT/results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from runner import run_config, run_process

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
COLUMNS = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


def trainer_child(model: str, out: Path, lr: float, seed: int, epochs: int, batch_size: int) -> None:
    """Fine-tune with HF Trainer (runs in the child process); writes out/trainer_result.json."""
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from hf_tl.backbone import resolve_checkpoint
    from hf_tl.data.loading import read_file, resolve_data_file

    source = resolve_checkpoint(model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    net = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)

    def encode(batch):
        out = tokenizer(batch["#1 String"], batch["#2 String"], truncation=True, max_length=128)
        out["labels"] = [int(q) for q in batch["Quality"]]
        return out

    splits = {}
    for name, file in (("train", "mrpc/train.tsv"), ("dev", "mrpc/dev.tsv")):
        rows = read_file(resolve_data_file(file, None), None)
        splits[name] = rows.map(encode, batched=True, remove_columns=rows.column_names)

    def metrics(pred):
        guess = np.argmax(pred.predictions, axis=-1)
        gold = pred.label_ids
        tp = int(((guess == 1) & (gold == 1)).sum())
        f1 = 2 * tp / max(1, int((guess == 1).sum()) + int((gold == 1).sum()))
        return {"accuracy": float((guess == gold).mean()), "f1": f1}

    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64, learning_rate=lr, warmup_steps=0.1, weight_decay=0.01, eval_strategy="epoch",
        save_strategy="no", logging_strategy="epoch", report_to=[], seed=seed, dataloader_num_workers=0,
        train_sampling_strategy="group_by_length")  # batches of similar length, as hf_tl's
    trainer = Trainer(model=net, args=args, train_dataset=splits["train"], eval_dataset=splits["dev"],
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics)
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_accuracy" in e]
    best = max(evals, key=lambda e: e["eval_accuracy"])
    (out / "trainer_result.json").write_text(json.dumps({
        "eval_accuracy": best["eval_accuracy"], "eval_f1": best["eval_f1"], "best_epoch": best["epoch"],
        "last_accuracy": evals[-1]["eval_accuracy"], "curve": [e["eval_accuracy"] for e in evals]}))


def hf_tl_row(out: Path, lr: float, seed: int, args) -> dict:
    extra = ["--model_name_or_path", args.model, "--learning_rate", str(lr), "--seed", str(seed),
             "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch_size)]
    row = run_config("paraphrase", "mrpc_full", out, extra)
    curve = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines() if line.strip()]
    accuracies = [e["accuracy"] for e in curve if "accuracy" in e]
    return {"eval_accuracy": row["eval_accuracy"], "eval_f1": row["eval_f1"], "last_accuracy": accuracies[-1],
            "curve": accuracies, "wall_s": row["wall_s"]}


def trainer_row(out: Path, lr: float, seed: int, args) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", "--output_root", str(out), "--model", args.model,
           "--learning_rates", str(lr), "--seeds", str(seed), "--epochs", str(args.epochs),
           "--batch_size", str(args.batch_size)]
    wall, _ = run_process(cmd, f"trainer lr {lr} seed {seed}")
    return {**json.loads((out / "trainer_result.json").read_text()), "wall_s": wall}


def summary(rows: list[dict]) -> str:
    lines = ["| system | learning rate | seeds | best dev accuracy, mean ± std | max | last epoch, mean | F1, mean |",
             "|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["system"], r["learning_rate"]), []).append(r)
    for (system, lr), rs in groups.items():
        acc = [r["eval_accuracy"] for r in rs]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"| {system} | {lr:g} | {len(rs)} | {statistics.mean(acc):.4f} ± {std:.4f} | {max(acc):.4f} | "
                     f"{statistics.mean(r['last_accuracy'] for r in rs):.4f} | "
                     f"{statistics.mean(r['eval_f1'] for r in rs):.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--learning_rates", default="2e-5,5e-5", help="Comma-separated.")
    parser.add_argument("--seeds", default="42,43", help="Comma-separated seeds of the hf_tl runs.")
    parser.add_argument("--trainer_seeds", default="42", help="Comma-separated seeds of the Trainer runs.")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lrs = [float(x) for x in args.learning_rates.split(",")]
    if args.child:
        return trainer_child(args.model, args.output_root, lrs[0], int(args.seeds), args.epochs, args.batch_size)
    args.output_root.mkdir(parents=True, exist_ok=True)
    rows = []
    for lr in lrs:
        for system, seeds, run in (("hf_tl", args.seeds, hf_tl_row), ("trainer", args.trainer_seeds, trainer_row)):
            for seed in (int(s) for s in seeds.split(",") if s):
                out = args.output_root / f"{system}_lr{lr:g}_seed{seed}"
                saved = out / "sweep_row.json"
                row = json.loads(saved.read_text()) if saved.is_file() else {
                    "system": system, "learning_rate": lr, "seed": seed, **run(out, lr, seed, args)}
                saved.write_text(json.dumps(row))
                rows.append(row)
                print(json.dumps(row), flush=True)
    text = summary(rows)
    print(text)
    (args.output_root / "results.json").write_text(json.dumps({"model": args.model, "epochs": args.epochs,
                                                               "batch_size": args.batch_size, "rows": rows}, indent=2))
    (args.output_root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
