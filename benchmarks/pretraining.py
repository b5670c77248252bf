"""Benchmark: does pretraining help, does domain adaptation help, and greedy layer-wise against end-to-end
pretraining from scratch, each with its cost in wall time.

    HF_TL_DATA_DIR=../shared/data python benchmarks/pretraining.py --output_root /tmp/pretraining

Sections (``--sections``, all by default):

- ``helps``: ``scratch`` (all-MiniLM-L6-v2's architecture and tokenizer, random weights) against the pretrained
  checkpoint, both ``full``, on STS-B (bi-encoder), SICK relatedness (train -> trial) and SST-2, at 100%, 10% and 1%
  of the train rows (one epoch on SST-2, whose 100% runs take ~13 minutes each here). Scratch runs use learning rate
  1e-4 (what ``hf-tl compare`` gives them), the pretrained ones the shipped configs' rate. ``--tasks`` and
  ``--fractions`` run some of its cells only.
- ``adapt``: all-MiniLM-L6-v2 continued on masked LM over WikiText-2 (domain-adaptive) and over STS-B's own train
  text (task-adaptive), then fine-tuned on STS-B, against fine-tuning it directly (from ``helps``); held-out
  perplexity before (one step at a learning rate of 1e-12: the new LM head as initialised) and after. SmolLM2-135M:
  causal LM on MRPC's train text, then LoRA on MRPC, against LoRA directly (both on the same 500 train pairs).
- ``greedy``: a 4-block BERT (hidden 256) pretrained from scratch on WikiText-2 by greedy layer-wise training and
  end to end, the same 600 steps: held-out perplexity per step and per wall-second, then each fine-tuned on STS-B.

Every run trains in its own process (its wall time is the whole process); each is recorded as it finishes, so an
interrupted benchmark goes on where it stopped. One seed per cell (the runs take minutes; said in the tables).
Writes OUTPUT_ROOT/results.json and .md, and pretraining.png.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from runner import run_config, smollm2_flags

SECTIONS = ("helps", "adapt", "greedy")
SICK = ["--train_file", "sick/SICK_train.txt", "--validation_file", "sick/SICK_trial.txt", "--column_names", "",
        "--text_column", "sentence_A", "--text_pair_column", "sentence_B", "--label_column", "relatedness_score",
        "--score_min", "1.0", "--score_max", "5.0", "--fallback_dataset_name", ""]
TASKS = {  # name -> (recipe, config, flags, metric, train rows)
    "STS-B": ("text_similarity", "stsb_bi_encoder_full", [], "spearmanr", 5749),
    "SICK": ("text_similarity", "stsb_bi_encoder_full", SICK, "spearmanr", 4439),
    "SST-2": ("sentiment", "sst2_full", ["--num_train_epochs", "1"], "accuracy", 67349),
}
FRACTIONS = {"STS-B": (1.0, 0.1, 0.01), "SICK": (1.0, 0.1, 0.01), "SST-2": (1.0, 0.1, 0.01)}
SCRATCH = ["--strategy", "scratch", "--learning_rate", "1e-4"]
SMALL = ["--max_steps", "600"]


def cell(root: Path, name: str, recipe: str, config: str, flags: list[str]) -> dict:
    """Train a config with flags into ROOT/NAME once (later calls read its record)."""
    record = root / f"{name}.json"
    if not record.is_file():
        row = run_config(recipe, config, root / name, flags)
        record.write_text(json.dumps(row))
    return {**json.loads(record.read_text()), "path": str(root / name)}


def curve(run: Path) -> list[dict]:
    """The eval log of a run, each evaluation with ``train_s``: the seconds the loop had trained by its step (from
    the train log's last line at or before it; evaluations are not counted)."""
    seconds = {}
    for line in (run / "train_log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        seconds[entry["step"]] = entry["train_s"]
    out = []
    for line in (run / "eval_log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        before = [s for s in seconds if s <= entry["step"]]
        out.append({**entry, "train_s": seconds[max(before)] if before else 0.0})
    return out


def helps(root: Path, tasks: set[str] | None = None, fractions: set[float] | None = None) -> list[dict]:
    """Pretrained against scratch per task and train fraction (all cells, or those in TASKS and FRACTIONS)."""
    rows = []
    for task, (recipe, config, flags, metric, n) in TASKS.items():
        if tasks and task not in tasks:
            continue
        for fraction in FRACTIONS[task]:
            if fractions and fraction not in fractions:
                continue
            size = ["--max_train_samples", str(max(16, int(n * fraction)))] if fraction < 1 else []
            for init, extra in (("pretrained", []), ("scratch", SCRATCH)):
                name = f"helps_{task}_{fraction:g}_{init}".replace("-", "")
                r = cell(root, name, recipe, config, [*flags, *size, *extra])
                rows.append({"section": "helps", "task": task, "fraction": fraction, "init": init,
                             "metric": metric, "score": r[f"eval_{metric}"], "wall_s": r["wall_s"],
                             "train_rows": sum(r["train_samples"].values())})
    return rows


def adapt(root: Path) -> list[dict]:
    rows = []
    tiny = ["--max_steps", "1", "--learning_rate", "1e-12", "--eval_strategy", "steps", "--eval_steps", "1"]
    for kind, config in (("WikiText-2 (domain-adaptive)", "pretrain_minilm_mlm_wikitext"),
                         ("STS-B train text (task-adaptive)", "pretrain_minilm_mlm_stsb_text")):
        short = config.split("_")[-1]
        before = cell(root, f"adapt_{short}_before", "pretrain", config, tiny)
        after = cell(root, f"adapt_{short}", "pretrain", config, [])
        tuned = cell(root, f"adapt_{short}_stsb", "text_similarity", "stsb_bi_encoder_full",
                     ["--init_from_run", after["path"]])
        rows.append({"section": "adapt", "model": "all-MiniLM-L6-v2", "corpus": kind,
                     "perplexity_before": before["eval_perplexity"], "perplexity_after": after["eval_perplexity"],
                     "pretrain_wall_s": after["wall_s"], "task": "STS-B", "metric": "spearmanr",
                     "score": tuned["eval_spearmanr"], "finetune_wall_s": tuned["wall_s"]})
    smol = smollm2_flags()
    pairs = ["--max_train_samples", "500"]
    before = cell(root, "adapt_smollm2_before", "pretrain", "pretrain_smollm2_clm_mrpc_text", [*smol, *pairs, *tiny])
    after = cell(root, "adapt_smollm2", "pretrain", "pretrain_smollm2_clm_mrpc_text", [*smol, *pairs])
    tuned = cell(root, "adapt_smollm2_mrpc", "paraphrase", "mrpc_smollm2_lora",
                 [*smol, *pairs, "--init_from_run", after["path"]])
    direct = cell(root, "adapt_smollm2_mrpc_direct", "paraphrase", "mrpc_smollm2_lora", [*smol, *pairs])
    rows.append({"section": "adapt", "model": "SmolLM2-135M", "corpus": "MRPC train text (task-adaptive)",
                 "perplexity_before": before["eval_perplexity"], "perplexity_after": after["eval_perplexity"],
                 "pretrain_wall_s": after["wall_s"], "task": "MRPC (500 pairs, LoRA)", "metric": "accuracy",
                 "score": tuned["eval_accuracy"], "finetune_wall_s": tuned["wall_s"],
                 "direct_score": direct["eval_accuracy"], "direct_wall_s": direct["wall_s"]})
    return rows


def greedy(root: Path) -> list[dict]:
    rows = []
    for kind, config in (("end to end", "pretrain_bert_small_scratch_wikitext"),
                         ("greedy layer-wise", "pretrain_bert_small_greedy_layerwise_wikitext")):
        short = "greedy" if "greedy" in config else "e2e"
        pre = cell(root, f"greedy_{short}", "pretrain", config, [])
        tuned = cell(root, f"greedy_{short}_stsb", "text_similarity", "stsb_bi_encoder_full",
                     ["--init_from_run", pre["path"], "--learning_rate", "1e-4"])
        rows.append({"section": "greedy", "pretraining": kind, "perplexity": pre["eval_perplexity"],
                     "pretrain_wall_s": pre["wall_s"], "train_loop_s": pre.get("train_loop_s"),
                     "curve": curve(Path(pre["path"])), "task": "STS-B", "metric": "spearmanr",
                     "score": tuned["eval_spearmanr"], "finetune_wall_s": tuned["wall_s"]})
    # The same small architecture fine-tuned on STS-B with no pretraining at all: what the 600 steps bought.
    small = "num_hidden_layers=4,hidden_size=256,num_attention_heads=4,intermediate_size=1024"
    bare = cell(root, "greedy_none_stsb", "text_similarity", "stsb_bi_encoder_full",
                ["--strategy", "scratch", "--config_overrides", small, "--learning_rate", "1e-4"])
    rows.append({"section": "greedy", "pretraining": "none (scratch on STS-B)", "perplexity": None,
                 "pretrain_wall_s": 0.0, "train_loop_s": 0.0, "curve": [], "task": "STS-B", "metric": "spearmanr",
                 "score": bare["eval_spearmanr"], "finetune_wall_s": bare["wall_s"]})
    return rows


def tables(rows: list[dict]) -> list[str]:
    lines = []
    helps_rows = [r for r in rows if r["section"] == "helps"]
    if helps_rows:
        lines += ["## Does pretraining help? (all-MiniLM-L6-v2's architecture, `full`, 1 seed)", "",
                  "| task | train rows | pretrained | scratch | gain from pretraining | wall s (pretrained / "
                  "scratch) |",
                  "|---|---|---|---|---|---|"]
        for task in TASKS:
            for fraction in FRACTIONS[task]:
                pair = {r["init"]: r for r in helps_rows if r["task"] == task and r["fraction"] == fraction}
                if len(pair) < 2:
                    continue
                p, s = pair["pretrained"], pair["scratch"]
                lines.append(f"| {task} ({p['metric']}) | {p['train_rows']:,} ({fraction:.0%}) | {p['score']:.4f} | "
                             f"{s['score']:.4f} | {p['score'] - s['score']:+.4f} | {p['wall_s']:.0f} / "
                             f"{s['wall_s']:.0f} |")
        lines.append("")
    adapt_rows = [r for r in rows if r["section"] == "adapt"]
    if adapt_rows:
        base = next((r for r in helps_rows if r["task"] == "STS-B" and r["fraction"] == 1.0
                     and r["init"] == "pretrained"), None)
        lines += ["## Does domain adaptation help? (1 seed)", "",
                  "| model | continued on | held-out perplexity before -> after | pretraining s | then | dev score | "
                  "fine-tuned directly | fine-tuning s |", "|---|---|---|---|---|---|---|---|"]
        for r in adapt_rows:
            direct = r.get("direct_score", base["score"] if base else float("nan"))
            lines.append(f"| {r['model']} | {r['corpus']} | {r['perplexity_before']:.1f} -> "
                         f"{r['perplexity_after']:.1f} | {r['pretrain_wall_s']:.0f} | {r['task']} | "
                         f"{r['score']:.4f} | {direct:.4f} | {r['finetune_wall_s']:.0f} |")
        lines.append("")
    greedy_rows = [r for r in rows if r["section"] == "greedy"]
    if greedy_rows:
        lines += ["## Greedy layer-wise against end-to-end pretraining from scratch (4-block BERT, 600 steps)", "",
                  "| pretraining | held-out perplexity | pretraining wall s | train loop s | STS-B dev Spearman after "
                  "fine-tuning | fine-tuning s |", "|---|---|---|---|---|---|"]
        for r in greedy_rows:
            perplexity = "-" if r["perplexity"] is None else f"{r['perplexity']:.1f}"
            lines.append(f"| {r['pretraining']} | {perplexity} | {r['pretrain_wall_s']:.0f} | "
                         f"{r['train_loop_s']:.0f} | {r['score']:.4f} | {r['finetune_wall_s']:.0f} |")
        e2e = next((r for r in greedy_rows if r["pretraining"] == "end to end"), None)
        for r in greedy_rows:
            if e2e and r["pretraining"] == "greedy layer-wise":
                lines.append(f"\nGreedy against end to end: perplexity {r['perplexity'] / e2e['perplexity']:.2f}x, "
                             f"pretraining wall time {r['pretrain_wall_s'] / e2e['pretrain_wall_s']:.2f}x.")
        lines.append("")
    return lines


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    helps_rows = [r for r in rows if r["section"] == "helps"]
    ax = axes[0]
    for task, marker in zip(TASKS, "osd"):
        for init, style in (("pretrained", "-"), ("scratch", "--")):
            mine = sorted((r["train_rows"], r["score"]) for r in helps_rows if r["task"] == task and r["init"] == init)
            if mine:
                ax.plot(*zip(*mine), style + marker, label=f"{task} {init}")
    ax.set_xscale("log")
    ax.set_xlabel("train rows")
    ax.set_ylabel("dev score (Spearman; SST-2 accuracy)")
    ax.set_title("pretrained vs scratch")
    ax.legend(fontsize=7)
    for r in (r for r in rows if r["section"] == "greedy" and r["curve"]):
        axes[1].plot([c["step"] for c in r["curve"]], [c["perplexity"] for c in r["curve"]], marker=".",
                     label=r["pretraining"])
        axes[2].plot([c["train_s"] for c in r["curve"]], [c["perplexity"] for c in r["curve"]], marker=".",
                     label=r["pretraining"])
    for ax, xlabel in ((axes[1], "optimizer step"), (axes[2], "seconds of training (evaluations left out)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out perplexity (WikiText-2 valid)")
        if ax.get_lines():
            ax.legend(fontsize=8)
    axes[1].set_title("greedy layer-wise vs end to end: per step")
    axes[2].set_title("... per second")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_root", required=True, help="Folder for the runs and the results.")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"Comma-separated: {', '.join(SECTIONS)}.")
    parser.add_argument("--tasks", default="", help=f"helps: only these tasks, comma-separated ({', '.join(TASKS)}).")
    parser.add_argument("--fractions", default="", help="helps: only these train fractions, comma-separated (1,0.1).")
    parser.add_argument("--chart", default=None, help="Where to write the chart (default: OUTPUT_ROOT).")
    args = parser.parse_args()
    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    tasks = {t for t in args.tasks.split(",") if t}
    if tasks - set(TASKS):
        parser.error(f"--tasks {args.tasks!r}: the tasks are {', '.join(TASKS)}.")
    fractions = {float(f) for f in args.fractions.split(",") if f}
    runners = {"helps": partial(helps, tasks=tasks, fractions=fractions), "adapt": adapt, "greedy": greedy}
    rows = []
    for section in args.sections.split(","):
        rows += runners[section](root)
        lines = tables(rows)
        (root / "results.json").write_text(json.dumps({"rows": rows}, indent=2))
        (root / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(tables(rows)))
    chart(rows, Path(args.chart) if args.chart else root / "pretraining.png")


if __name__ == "__main__":
    main()
