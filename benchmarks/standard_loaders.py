"""Benchmark: the shipped runs, loaded by the ecosystem's own libraries (hf_tl not importable), score on dev what
hf_tl reported for them.

    HF_TL_DATA_DIR=../shared/data python benchmarks/standard_loaders.py --output_root /tmp/standard_loaders \
        [--configs stsb_bi_encoder_full,mrpc_full,sst2_full] [--key value ...]

Each config trains in its own child process as shipped, plus the flags given after the options (e.g.
``--max_train_samples 2000 --num_train_epochs 1`` to fit a CPU budget; the dev sets are always whole). Then, in a
child process where ``import hf_tl`` fails:
  bi-encoder       SentenceTransformer(RUN) scored by sentence-transformers' EmbeddingSimilarityEvaluator (Spearman
                   of cosine) on STS-B dev
  cross-encoder    CrossEncoder(RUN).predict on the dev pairs: accuracy (classification) or Spearman (similarity)
  transformers     pipeline("text-classification", model=RUN) on the dev texts: accuracy
  peft             AutoPeftModelForSequenceClassification.from_pretrained(RUN): accuracy
Prints and writes OUTPUT_ROOT/results.json and results.md: hf_tl's dev metric (eval_results.json) beside the
standard library's, and their difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from runner import run_config, write_results

RECIPES = {"mrpc": "paraphrase", "sst2": "sentiment", "stsb": "text_similarity"}

# Runs in a child process: DEV is {"a": [...], "b": [...] or None, "gold": [...], "labels": [...] or None}.
CHILD = r'''
import json, sys
sys.modules["hf_tl"] = None  # the standard library alone
fmt, run, dev_file = sys.argv[1:4]
dev = json.loads(open(dev_file).read())
a, b, gold, labels = dev["a"], dev["b"], dev["gold"], dev["labels"]
if fmt == "sentence-transformers":
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator
    model = SentenceTransformer(run, device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(a, b, gold, main_similarity="cosine", name="dev")
    result = evaluator(model)
    print(json.dumps({"metric": "spearmanr", "value": result["dev_spearman_cosine"]}))
    sys.exit()
if fmt == "cross-encoder":
    from sentence_transformers import CrossEncoder
    model = CrossEncoder(run, device="cpu")
    scores = model.predict(list(zip(a, b)), batch_size=64)
    if labels is None:
        from scipy.stats import spearmanr
        print(json.dumps({"metric": "spearmanr", "value": float(spearmanr(scores, gold)[0])}))
        sys.exit()
    predicted = [model.config.id2label[i] for i in scores.argmax(1).tolist()]
elif fmt == "transformers":
    from transformers import pipeline
    classifier = pipeline("text-classification", model=run, device="cpu")
    inputs = a if b is None else [{"text": x, "text_pair": y} for x, y in zip(a, b)]
    predicted = [out["label"] for out in classifier(inputs, batch_size=64, truncation=True)]
else:
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer
    model = AutoPeftModelForSequenceClassification.from_pretrained(
        run, num_labels=len(labels), id2label=dict(enumerate(labels))).eval()
    tokenizer = AutoTokenizer.from_pretrained(run)
    predicted = []
    for i in range(0, len(a), 64):
        enc = tokenizer(a[i:i + 64], None if b is None else b[i:i + 64], padding=True, truncation=True,
                        return_tensors="pt")
        with torch.no_grad():
            predicted += [model.config.id2label[j] for j in model(**enc).logits.argmax(-1).tolist()]
accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
print(json.dumps({"metric": "accuracy", "value": accuracy}))
'''


def dev_set(run: Path) -> dict:
    """The run's dev split as its config read it (columns, label names), from the local files."""
    from hf_tl.config_io import load_config
    from hf_tl.data.loading import read_file, resolve_data_file

    data = next(iter(load_config(run / "config.yaml").task_data().values()))
    names = [c.strip() for c in data.column_names.split(",")] if data.column_names else None
    rows = read_file(resolve_data_file(data.validation_file, data.data_dir), names)
    a = [str(x) for x in rows[data.text_column]]
    b = [str(x) for x in rows[data.text_pair_column]] if data.text_pair_column else None
    if data.task == "similarity":
        return {"a": a, "b": b, "gold": [float(x) for x in rows[data.label_column]], "labels": None}
    labels = list(data.label_names)
    gold = [v if str(v) in labels else labels[int(v)] for v in rows[data.label_column]]
    return {"a": a, "b": b, "gold": [str(g) for g in gold], "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", required=True, type=Path)
    parser.add_argument("--configs", default="stsb_bi_encoder_full,mrpc_full,sst2_full")
    args, extra = parser.parse_known_args()
    rows = []
    for config in args.configs.split(","):
        run = args.output_root / config
        if not (run / "eval_results.json").is_file():
            run_config(RECIPES[config.split("_")[0]], config, run, ["--overwrite_output_dir", *extra])
        results = json.loads((run / "eval_results.json").read_text())
        info = json.loads((run / "standard_model.json").read_text())
        if not info.get("format"):
            rows.append({"config": config, "format": None, "reason": info.get("reason")})
            print(f"{config}: no standard form ({info.get('reason')})", flush=True)
            continue
        dev_file = args.output_root / f"{config}.dev.json"
        dev_file.write_text(json.dumps(dev_set(run)))
        proc = subprocess.run([sys.executable, "-c", CHILD, info["format"], str(run), str(dev_file)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{config}: the standard loader failed:\n{proc.stderr[-3000:]}")
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
        ours = results[f"eval_{theirs['metric']}"]
        rows.append({"config": config, "format": info["format"], "loader": info["loader"], "metric": theirs["metric"],
                     "hf_tl": ours, "standard": theirs["value"], "difference": theirs["value"] - ours})
        print(f"{config}: hf_tl {theirs['metric']} {ours:.4f}, {info['loader']} {theirs['value']:.4f}", flush=True)
    lines = [f"Flags beside each config: `{' '.join(extra) or '(none)'}`", "",
             "| config | loaded with (no hf_tl) | dev metric | hf_tl | standard library | difference |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r["format"] is None:
            lines.append(f"| {r['config']} | none: {r['reason']} | | | | |")
        else:
            lines.append(f"| {r['config']} | `{r['loader']}` | {r['metric']} | {r['hf_tl']:.4f} | "
                         f"{r['standard']:.4f} | {r['difference']:+.1e} |")
    write_results(args.output_root, extra, rows, lines)


if __name__ == "__main__":
    main()
