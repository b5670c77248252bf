"""The advice as a reader sees it: the evidence behind each axis, the matrix placement, the ranked strategies, and
the top one written as a config ready to run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from hf_tl.advisor.rules import LITTLE_DATA_ROWS
from hf_tl.safe_io import atomic_write_text

CONFIG_FILE = "recommended.yaml"
ADVICE_FILE = "advice.json"
REPORT_FILE = "advice.md"
CHART_FILE = "learning_curve.png"


def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def markdown(evidence: dict, advice: dict) -> str:
    """The advice as Markdown: matrix placement, the evidence of each axis, the ranked strategies."""
    f, data, metric = advice["facts"], evidence["data"], evidence["task"]["metric"]
    lm, domain, tok = evidence.get("lm") or {}, evidence.get("domain") or {}, evidence["tokenizer"]
    lines = [f"# Advice: {advice['quadrant']}", "",
             f"Rule **{advice['rule']}** applies: {advice['evidence_cited']}.", ""]
    if advice["stop"]:
        lines += [f"> {advice['stop']}", ""]
    groups = ", ".join(f"{k}: {v:,}" for k, v in data["groups"].items())
    lines += ["## Data size: " + ("little" if f["little"] else "lots"), "",
              f"- {f['rows']:,} train rows ({'<' if f['little'] else '≥'} {LITTLE_DATA_ROWS:,}); per "
              f"{'score bin' if evidence['task']['regression'] else 'label'}: {groups}",
              f"- tokens per example: median {data['tokens_median']:.0f}, 95th percentile {data['tokens_p95']:.0f}",
              "", "## Domain: " + ("similar" if f["similar"] else "dissimilar"), ""]
    lines += [f"- {why}" for why in f["similar_why"]]
    if lm and "task_ppl" in lm:
        lines.append(f"- perplexity ({lm['objective'].replace('_', ' ')}, {lm['head']}"
                     + (f", fitted {lm['fit_steps']} steps" if lm["fit_steps"] else "") + f"): task "
                     f"{_num(lm['task_ppl'], 1)} (token-frequency floor {_num(lm['task_unigram_ppl'], 1)}), "
                     f"reference {_num(lm['reference_ppl'], 1)} (floor {_num(lm['reference_unigram_ppl'], 1)})")
    lines.append(f"- tokenizer on task text: {tok['task']['unk_rate']:.2%} unknown, "
                 f"{tok['task']['tokens_per_word']:.2f} tokens per word (reference text: "
                 f"{tok['reference']['unk_rate']:.2%}, {tok['reference']['tokens_per_word']:.2f})")
    if domain:
        lines.append(f"- embeddings: a domain classifier tells task from reference texts with accuracy "
                     f"{domain['classifier_accuracy']:.3f} (similarity {domain['similarity']:.3f}; 1 = "
                     f"indistinguishable); centroid cosine {domain['centroid_cosine']:.3f}")
    b = evidence["backbone"]
    kind = ("decoder" if b["decoder"] else "encoder") + (", sentence-transformers" if b["sentence_transformers"]
                                                         else "") + (", NLI classifier" if b["nli"] else "")
    lines += ["", "## What the backbone already knows", "",
              f"- backbone: {b['model']} ({kind}, {b['parameters']:,} parameters; full fine-tuning needs about "
              f"{b['full_finetune_gib']} GiB, {'fits' if b['fits_full_finetune'] else 'does not fit'} this machine)",
              f"- zero-shot dev {metric}: " + (_num(f["zero"]) if f["zero"] is not None else
                                               f"not measured ({evidence['zero_shot_run'].get('reason', '')})")]
    curve = evidence.get("curve") or []
    if curve:
        points = ", ".join(f"{p['rows']:,} rows {p['mean']:.4f}" for p in curve)
        lines.append(f"- linear head on frozen features (dev {metric}, {evidence.get('curve_dev_rows', 0):,} dev "
                     f"rows): {points}; {f['slope']:+.4f} per doubling; carried to all rows: {f['probe']:.4f}")
    lines += ["", "## Recommended, best first", "",
              f"| # | strategy | settings | predicted dev {metric} | predicted cost (s) | why |",
              "|---|---|---|---|---|---|"]
    for i, option in enumerate(advice["options"], 1):
        predicted = "n/a" if option["predicted"] is None else \
            f"{option['predicted'][0]:.3f} – {option['predicted'][1]:.3f}"
        lines.append(f"| {i} | {option['strategy']} | {' '.join(option['flags']) or '(config as is)'} | "
                     f"{predicted} | {option['cost_s']:,.0f} | {option['why']} |")
    if evidence["skipped"]:
        lines += ["", "Not measured within the budget: " + "; ".join(f"{k}: {v}" for k, v in
                                                                    evidence["skipped"].items()) + "."]
    lines += ["", f"Measured in {evidence['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def write_chart(evidence: dict, advice: dict, path: Path) -> bool:
    """The linear head's learning curve with the zero-shot score beside it; False when there is no curve."""
    curve = evidence.get("curve") or []
    if not curve:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rows = [p["rows"] for p in curve]
    ax.errorbar(rows, [p["mean"] for p in curve], yerr=[p["std"] for p in curve], marker="o", capsize=3,
                label="linear head on frozen features")
    zero = advice["facts"]["zero"]
    if zero is not None:
        ax.axhline(zero, color="tab:green", linestyle="--", label="zero-shot")
    ax.set_xscale("log")
    ax.set_xticks(rows, [f"{r:,}" for r in rows])  # the measured sizes, not powers of ten
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("train rows")
    ax.set_ylabel(f"dev {evidence['task']['metric']}")
    ax.set_title(advice["quadrant"])
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return True


def option_flags(config_path: str, overrides: list[str], option: dict) -> list[str]:
    """The flags that turn the config into a run of ``option``: the user's overrides, what a comparison gives the
    strategy (a similarity zero-shot run as a bi-encoder, say), the option's own settings, and the strategy."""
    from hf_tl.compare import strategy_flags
    from hf_tl.config_io import parse_args

    base = parse_args(["--config", config_path, *overrides])
    return [*overrides, *strategy_flags(option["strategy"], base), *option["flags"], "--strategy", option["strategy"]]


def write_config(config_path: str, overrides: list[str], option: dict, folder: Path) -> Path:
    """The top recommendation as a config: the given one with the option's strategy and settings.

    Returns:
        The written file (its first line is the command that trains it).
    """
    from hf_tl.config_io import parse_args

    out = folder / CONFIG_FILE
    flags = option_flags(config_path, overrides, option)
    config = parse_args(["--config", config_path, *flags, "--output_dir", str(folder / "recommended_run")])
    text = (f"# hf-tl train --config {out}\n# Written by hf-tl advise from {config_path}: "
            f"{' '.join(flags[len(overrides):])}" + "\n"
            + yaml.safe_dump(config.to_flat_dict(), sort_keys=False))
    atomic_write_text(out, text)
    return out


def write_advice(evidence: dict, advice: dict, folder: Path) -> None:
    """``advice.json`` (every measurement and the ranking) and ``advice.md``."""
    atomic_write_text(folder / ADVICE_FILE, json.dumps({"evidence": evidence, "advice": advice}, indent=2,
                                                       default=str))
    atomic_write_text(folder / REPORT_FILE, markdown(evidence, advice))
