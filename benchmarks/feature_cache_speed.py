"""Benchmark: `frozen` training with the feature cache vs without it vs Hugging Face `Trainer`, one session.

    HF_TL_DATA_DIR=../shared/data python benchmarks/feature_cache_speed.py --output_root /tmp/cache_bench

The same model (all-MiniLM-L6-v2, frozen, with the MLP head of recipes/configs/stsb_frozen.yaml), data (STS-B train,
scored on the full dev split after every epoch), optimizer settings, seed and number of epochs (10) in four child
processes, timed end to end (start-up, loading, tokenizing, training, evaluating, checkpointing, saving):
  trainer    HF Trainer training hf_tl's own model (built from the same config) with the backbone frozen; it
             runs the backbone on every batch of every epoch, as any frozen fine-tuning with Trainer does.
  uncached   hf_tl with --cache_features false: the same work in the Accelerate loop.
  cold       hf_tl with an empty feature cache: the backbone runs once per split, then the head trains on features.
  warm       hf_tl again with the cache the cold run filled (a second run on the same data and backbone).
Prints wall times, dev Spearman and the ratio of each to the Trainer run; writes them to OUTPUT_ROOT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from runner import ROOT, run_config, run_process

CONFIG = "stsb_frozen"


def trainer_child(out_dir: Path, epochs: float, max_train_samples: int | None) -> None:
    """Train the stsb_frozen model with HF Trainer and write eval_results.json (runs in the child process)."""
    import numpy as np
    from scipy import stats
    from transformers import Trainer, TrainingArguments

    from hf_tl.builder import build
    from hf_tl.config_io import load_config
    from hf_tl.data import PaddingCollator
    from hf_tl.training.setup import resolve_config, tokenize_splits

    overrides = {"num_train_epochs": epochs, "max_train_samples": max_train_samples}
    config = load_config(ROOT / "recipes" / "configs" / f"{CONFIG}.yaml",
                         **{k: v for k, v in overrides.items() if v is not None})
    config, raw = resolve_config(config, need_train=True)
    built = build(config)  # strategy frozen applied: backbone requires no grad and stays in eval mode
    splits = tokenize_splits(built.tasks, raw, store=False)[0]["similarity"]
    tok = built.backbone.tokenizer
    t = config.train

    def metrics(pred) -> dict:
        scores = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return {"spearmanr": float(stats.spearmanr(pred.label_ids, np.asarray(scores))[0])}

    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=t.num_train_epochs, learning_rate=t.learning_rate,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay, lr_scheduler_type=t.lr_scheduler_type,
        max_grad_norm=t.max_grad_norm, seed=t.seed, eval_strategy="epoch", save_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="spearmanr", greater_is_better=True, save_total_limit=2,
        logging_steps=t.logging_steps, report_to="none", remove_unused_columns=False, dataloader_num_workers=0)
    trainer = Trainer(model=built.model, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
                      data_collator=PaddingCollator(tok.pad_token_id, tok.padding_side), compute_metrics=metrics)
    trainer.train()
    final = trainer.evaluate()
    (out_dir / "eval_results.json").write_text(json.dumps(final, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--max_train_samples", type=int, default=None, help="Fewer train rows (a quick check).")
    parser.add_argument("--trainer_child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer_child:
        return trainer_child(args.trainer_child, args.epochs, args.max_train_samples)
    if args.output_root.exists():
        raise SystemExit(f"{args.output_root} exists; choose a new --output_root (this benchmark starts from an "
                         f"empty feature cache).")
    cache = args.output_root / "feature_cache"
    os.environ["HF_TL_FEATURE_CACHE"] = str(cache)
    extra = ["--num_train_epochs", str(args.epochs)]
    if args.max_train_samples:
        extra += ["--max_train_samples", str(args.max_train_samples)]
    rows = []
    out = args.output_root / "trainer"
    out.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--output_root", str(args.output_root), "--trainer_child", str(out),
           "--epochs", str(args.epochs), *(["--max_train_samples", str(args.max_train_samples)]
                                           if args.max_train_samples else [])]
    wall, rss = run_process(cmd, "trainer")
    for checkpoint in out.glob("checkpoint-*"):  # only the metrics are needed; the weights take disk space
        shutil.rmtree(checkpoint)
    trainer = json.loads((out / "eval_results.json").read_text())
    rows.append({"run": "trainer", "wall_s": wall, "peak_rss_mib": rss, "eval_spearmanr": trainer["eval_spearmanr"]})
    for name, flags in (("uncached", ["--cache_features", "false"]), ("cold", []), ("warm", [])):
        result = run_config("text_similarity", CONFIG, args.output_root / name, [*extra, *flags])
        rows.append({"run": name, "wall_s": result["wall_s"], "peak_rss_mib": result["peak_rss_mib"],
                     "eval_spearmanr": result["eval_spearmanr"], "feature_cache": result.get("feature_cache")})
    base = rows[0]["wall_s"]
    lines = ["| run | wall time (s) | speed-up vs Trainer | dev Spearman | peak RSS (MiB) |", "|---|---|---|---|---|"]
    for r in rows:
        r["speedup_vs_trainer"] = round(base / r["wall_s"], 2)
        lines.append(f"| {r['run']} | {r['wall_s']:.1f} | {r['speedup_vs_trainer']:.2f}x | "
                     f"{r['eval_spearmanr']:.4f} | {r['peak_rss_mib']:,} |")
    print("\n".join(lines))
    (args.output_root / "results.json").write_text(json.dumps({"epochs": args.epochs, "rows": rows}, indent=1))
    (args.output_root / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
