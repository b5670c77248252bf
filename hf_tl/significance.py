"""Is one strategy better than another, or within noise? A paired bootstrap over dev examples and seeds.

Each replicate draws the dev examples with replacement (the same draw for both strategies: the test is paired) and,
independently per strategy, its seeds with replacement, then takes the difference of the two strategies' mean
metric. The 95% interval of that difference says whether it is larger than the noise of the dev sample and of the
seeds together; with one seed per strategy only the dev sample's noise is measured.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import numpy as np

N_BOOTSTRAP = 1000
LEVEL = 0.95


def dev_predictions(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The raw predictions of a finished single-task run on its own dev split, and the targets, in dev order; for a
    cross-validation run, its out-of-fold predictions of the train split.

    Returns:
        ``(predictions, targets)``, or None for a multi-task run.

    Raises:
        HfTlError: if the run cannot be loaded or its dev data read.
    """
    from hf_tl.config_io import load_config
    from hf_tl.run_dir import CONFIG_FILE
    from hf_tl.runs.cross_validation import OOF_ARRAYS
    from hf_tl.runs.predictions import split_predictions

    if (Path(run_dir) / OOF_ARRAYS).is_file():
        with np.load(Path(run_dir) / OOF_ARRAYS) as data:
            return data["predictions"], data["targets"]
    if load_config(Path(run_dir) / CONFIG_FILE).is_multitask:
        return None
    return split_predictions(run_dir)


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], targets: np.ndarray, metric,
                     greater_is_better: bool = True, n: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """Compare two strategies' dev predictions (one array per seed each) on the same dev examples.

    Args:
        a: Predictions of strategy A, one array per seed.
        b: Predictions of strategy B, one array per seed.
        targets: The dev targets.
        metric: ``metric(predictions, targets) -> float``.
        greater_is_better: The metric's direction; the difference is reported so that positive means A is better.
        n: Bootstrap replicates.
        seed: Seed of the resampling.

    Returns:
        ``{"difference", "low", "high", "p_value", "within_noise"}``: the observed difference of the mean metric
        (A minus B, sign-flipped for a metric that goes down), its bootstrap interval, a two-sided bootstrap p-value,
        and whether the interval holds 0.
    """
    sign = 1.0 if greater_is_better else -1.0
    rng = np.random.default_rng(seed)
    rows = len(targets)
    observed = sign * (statistics.mean(metric(p, targets) for p in a) - statistics.mean(metric(p, targets) for p in b))
    differences = np.empty(n)
    for i in range(n):
        idx = rng.integers(0, rows, rows)
        t = targets[idx]
        pick_a, pick_b = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        mean_a = statistics.mean(metric(a[j][idx], t) for j in pick_a)
        mean_b = statistics.mean(metric(b[j][idx], t) for j in pick_b)
        differences[i] = sign * (mean_a - mean_b)
    differences = np.nan_to_num(differences, nan=0.0)  # a resample with constant predictions: no evidence
    low, high = np.quantile(differences, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    p_value = min(1.0, 2 * min(float(np.mean(differences <= 0)), float(np.mean(differences >= 0))))
    return {"difference": float(observed), "low": float(low), "high": float(high), "p_value": p_value,
            "within_noise": bool(low <= 0 <= high)}


def compare_strategies(predictions: dict[str, list[np.ndarray]], targets: np.ndarray, evaluator, metric: str,
                       greater_is_better: bool, n: int = N_BOOTSTRAP, best: str | None = None,
                       examples: str = "dev examples") -> dict:
    """Every pair of strategies, and each strategy against the best one.

    Args:
        predictions: ``{strategy: [dev predictions per seed]}``.
        targets: The dev targets.
        evaluator: The task's :class:`hf_tl.metrics.Evaluator`.
        metric: The metric compared (an evaluator key).
        greater_is_better: Its direction.
        n: Bootstrap replicates.
        best: The strategy to mark as best (default: the best mean of the metric on these predictions), e.g. the
            best of a table whose means come from elsewhere (the folds' own scores).
        examples: What the predictions are of, for the page.

    Returns:
        ``{"best": strategy, "vs_best": {strategy: "best" | "within noise" | "worse"}, "pairs": [...]}``; each pair
        as :func:`paired_bootstrap` returns it, with ``a`` and ``b``.
    """
    def score(p, t):
        return evaluator.metric_value(p, t, metric)

    means = {s: statistics.mean(score(p, targets) for p in preds) for s, preds in predictions.items()}
    best = best or (max if greater_is_better else min)(means, key=means.get)
    pairs = []
    for a, b in itertools.combinations(predictions, 2):
        result = paired_bootstrap(predictions[a], predictions[b], targets, score, greater_is_better, n)
        pairs.append({"a": a, "b": b, **result})
    vs_best = {}
    for s in predictions:
        if s == best:
            vs_best[s] = "best"
            continue
        pair = next(p for p in pairs if {p["a"], p["b"]} == {s, best})
        vs_best[s] = "within noise" if pair["within_noise"] else "worse"
    return {"best": best, "vs_best": vs_best, "pairs": pairs, "metric": metric, "replicates": n,
            "seeds": {s: len(p) for s, p in predictions.items()}, "examples": examples}


def markdown(result: dict) -> str:
    """The pairwise table: difference, interval, p-value and verdict per pair of strategies."""
    seeds = sorted(set(result["seeds"].values()))
    examples = result.get("examples", "dev examples")
    noise = f"the {examples} and the seeds" if max(seeds) > 1 else f"the {examples} (one seed per strategy)"
    lines = [f"Paired bootstrap over {noise}, {result['replicates']} replicates, {LEVEL:.0%} intervals; positive "
             f"differences favour A. Best: **{result['best']}**.", "",
             f"| A | B | {result['metric']} A - B | {LEVEL:.0%} interval | p | verdict |", "|---|---|---|---|---|---|"]
    for p in result["pairs"]:
        verdict = "within noise" if p["within_noise"] else f"{p['a'] if p['difference'] > 0 else p['b']} better"
        lines.append(f"| {p['a']} | {p['b']} | {p['difference']:+.4f} | [{p['low']:+.4f}, {p['high']:+.4f}] | "
                     f"{p['p_value']:.3f} | {verdict} |")
    return "\n".join(lines) + "\n"


def test_runs(runs: list[dict], metric: str, means: dict[str, float], folder: Path,
              bootstrap: int = N_BOOTSTRAP) -> dict | None:
    """Test every pair of strategies of a comparison on their runs' dev predictions; write ``significance.md``.

    Each run's dev predictions are computed once from the finished run and stored beside it
    (``seed-N.dev.npz``), so a resumed comparison reads them back.

    Args:
        runs: The comparison's runs (``strategy``, ``path``, ``results``), as :func:`hf_tl.compare.run_one` gives them.
        metric: The metric compared.
        means: ``{strategy: mean of the metric}`` as the comparison's table shows it (its best is marked best).
        folder: The comparison folder.
        bootstrap: Replicates.

    Returns:
        :func:`hf_tl.significance.compare_strategies`'s result, or None for multi-task runs (no single dev set).
    """
    from hf_tl.config_io import load_config
    from hf_tl.run_dir import CONFIG_FILE
    from hf_tl.runs.predictions import evaluator_of
    from hf_tl.safe_io import atomic_write_arrays, atomic_write_text

    predictions, targets = {}, None
    for run in runs:
        out = Path(run["path"])
        stored = out.parent / f"{out.name}.dev.npz"
        if stored.is_file():
            with np.load(stored) as data:
                pred, target = data["predictions"], data["targets"]
        else:
            found = dev_predictions(out)
            if found is None:
                return None
            pred, target = found
            atomic_write_arrays(stored, predictions=pred, targets=target)
        targets = target if targets is None else targets
        predictions.setdefault(run["strategy"], []).append(pred)
    evaluator = evaluator_of(load_config(Path(runs[0]["path"]) / CONFIG_FILE))
    greater = runs[0]["results"]["greater_is_better"]
    cross_validated = "cv_folds" in runs[0]["results"]
    result = compare_strategies(predictions, targets, evaluator, metric, greater, bootstrap,
                                best=(max if greater else min)(means, key=means.get),
                                examples="train rows' out-of-fold predictions" if cross_validated else "dev examples")
    atomic_write_text(folder / "significance.md", markdown(result))
    return result
