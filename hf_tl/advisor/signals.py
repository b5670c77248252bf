"""The advisor's measurements, as plain functions of arrays and token ids (no model loading here).

Each one answers a question of the strategy matrix on data whose answer can be checked by hand: how much labelled
data there is, how the tokenizer copes with the text, how far the task's embeddings sit from a reference corpus's,
and how a linear head on frozen features improves with more rows.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

SCORE_BINS = 5  # a similarity score's range is cut into this many bins to count rows "per label"


def data_size(labels: list, regression: bool, lengths: list[int]) -> dict:
    """How much labelled data a task has.

    Args:
        labels: The train split's targets (class ids, or scores for a regression task).
        regression: Scores rather than classes: rows are counted per bin of the score's range.
        lengths: Tokens per train example.

    Returns:
        ``{"rows", "groups" ({label or bin: rows}), "min_per_group", "tokens_median", "tokens_p95"}``.
    """
    if regression and labels:
        low, high = float(min(labels)), float(max(labels))
        width = (high - low) / SCORE_BINS or 1.0
        keys = [f"bin {min(int((float(v) - low) / width), SCORE_BINS - 1) + 1}" for v in labels]
    else:
        keys = [str(v) for v in labels]
    groups = dict(sorted(Counter(keys).items()))
    return {"rows": len(labels), "groups": groups, "min_per_group": min(groups.values()) if groups else 0,
            "tokens_median": float(np.median(lengths)) if lengths else 0.0,
            "tokens_p95": float(np.percentile(lengths, 95)) if lengths else 0.0}


def token_stats(tokenizer, texts: list[str]) -> dict:
    """How the tokenizer copes with ``texts``: the share of unknown tokens and subword tokens per word.

    A word the vocabulary never saw is cut into many pieces (or one unknown token), so a high fragmentation or
    unknown rate says the pretraining text looked different.

    Returns:
        ``{"tokens", "words", "unk_rate", "tokens_per_word"}``.
    """
    unk = tokenizer.unk_token_id
    tokens = words = unknown = 0
    for ids, text in zip(tokenizer(list(texts), add_special_tokens=False)["input_ids"], texts):
        tokens += len(ids)
        words += len(text.split())
        unknown += sum(1 for i in ids if unk is not None and i == unk)
    return {"tokens": tokens, "words": words, "unk_rate": unknown / tokens if tokens else 0.0,
            "tokens_per_word": tokens / words if words else 0.0}


def domain_similarity(task: np.ndarray, reference: np.ndarray, seed: int = 0, folds: int = 5) -> dict:
    """How far the task's embeddings sit from the reference corpus's: a domain classifier's held-out accuracy.

    A logistic regression learns to tell task texts from reference texts (balanced, ``folds``-fold). If it cannot
    (accuracy 0.5) the two are one domain: similarity 1. If it always can (accuracy 1): similarity 0. This is the
    proxy A-distance of Ben-David et al. (2007), ``2 (1 - 2 error)``, as ``similarity = 1 - distance / 2``. The
    cosine of the two corpora's mean embeddings is reported beside it.

    Args:
        task: ``(n, dim)`` embeddings of task texts.
        reference: ``(m, dim)`` embeddings of reference texts.
        seed: Shuffling and subsampling seed.
        folds: Cross-validation folds.

    Returns:
        ``{"similarity", "classifier_accuracy", "centroid_cosine", "rows"}`` (rows per side).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(task), len(reference))
    a = task[rng.permutation(len(task))[:n]]
    b = reference[rng.permutation(len(reference))[:n]]
    x = StandardScaler().fit_transform(np.concatenate([a, b]).astype(np.float64))
    y = np.r_[np.ones(n), np.zeros(n)]
    splits = StratifiedKFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
    predicted = cross_val_predict(LogisticRegression(C=0.1, max_iter=2000), x, y, cv=splits)
    accuracy = float((predicted == y).mean())
    ca, cb = task.mean(0), reference.mean(0)
    cosine = float(ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb) + 1e-12))
    return {"similarity": float(min(1.0, max(0.0, 2 * (1 - accuracy)))), "classifier_accuracy": accuracy,
            "centroid_cosine": cosine, "rows": n}


def perplexity(losses: np.ndarray, counts: np.ndarray | None = None) -> float:
    """exp of the mean token loss: ``losses`` summed per row and ``counts`` tokens per row, or one loss a token."""
    losses = np.asarray(losses, dtype=np.float64)
    total = float(losses.sum())
    tokens = float(np.sum(counts)) if counts is not None else float(losses.size)
    return math.exp(total / tokens) if tokens else float("nan")


def unigram_perplexity(train_ids: list[list[int]], targets: np.ndarray, vocab_size: int) -> float:
    """Perplexity of ``targets`` under token frequencies counted in ``train_ids`` (add-one smoothed): what a model
    that knows nothing but how often tokens occur scores, the floor a backbone's own perplexity is judged against."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for ids in train_ids:
        np.add.at(counts, np.asarray(ids, dtype=np.int64), 1.0)
    log_p = np.log(counts / counts.sum())
    return math.exp(-float(log_p[np.asarray(targets, dtype=np.int64)].mean())) if len(targets) else float("nan")


def knowledge(model_ppl: float, unigram_ppl: float) -> float:
    """How much better than token frequencies a backbone predicts text: ``1 - log(model) / log(unigram)``; 0 when it
    knows nothing more than frequencies (a random backbone whose head learned them), towards 1 as it predicts well."""
    if not (model_ppl > 0 and unigram_ppl > 1):
        return float("nan")
    return 1.0 - math.log(model_ppl) / math.log(unigram_ppl)


def curve_sizes(rows: int, smallest: int = 32, points: int = 5) -> list[int]:
    """Train sizes of a learning curve: geometric from ``smallest`` up to ``rows`` (always the last point)."""
    if rows <= smallest:
        return [rows]
    ratio = (rows / smallest) ** (1 / (points - 1))
    sizes = sorted({min(rows, int(round(smallest * ratio ** i))) for i in range(points)})
    return sizes if sizes[-1] == rows else [*sizes, rows]


def linear_curve(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, dev_y: np.ndarray, sizes: list[int],
                 score, regression: bool, seeds: int = 3) -> list[dict]:
    """A linear head on frozen features at several train sizes: the mean and spread over ``seeds`` draws.

    Args:
        train_x, train_y: Train features and targets.
        dev_x, dev_y: Dev features and targets.
        sizes: Train rows per point (see :func:`curve_sizes`).
        score: ``score(predictions, references) -> float``, the task's primary metric (class scores or values).
        regression: Ridge regression on scores instead of logistic regression on classes.
        seeds: Draws per size (one at the full size: every draw is the same rows).

    Returns:
        ``[{"rows", "mean", "std", "scores"}]`` in size order.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    tx, dx = scaler.transform(train_x), scaler.transform(dev_x)
    out = []
    for size in sizes:
        scores = []
        for seed in range(1 if size >= len(train_y) else seeds):
            rows = np.random.default_rng(seed).permutation(len(train_y))[:size]
            y = train_y[rows]
            if regression:
                predictions = Ridge(alpha=max(1.0, tx.shape[1] / max(size, 1))).fit(tx[rows], y).predict(dx)
            elif len(np.unique(y)) < 2:
                continue  # a draw with one class cannot be fitted; the other draws stand for this size
            else:
                model = LogisticRegression(C=0.1, max_iter=2000).fit(tx[rows], y)
                predictions = np.full((len(dx), int(max(train_y.max(), dev_y.max())) + 1), -np.inf)
                predictions[:, model.classes_.astype(int)] = model.decision_function(dx).reshape(len(dx), -1) \
                    if len(model.classes_) > 2 else np.c_[np.zeros(len(dx)), model.decision_function(dx)]
            scores.append(float(score(predictions, dev_y)))
        if scores:
            out.append({"rows": size, "mean": float(np.mean(scores)),
                        "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0, "scores": scores})
    return out


def curve_slope(curve: list[dict]) -> float:
    """The metric gained per doubling of the train rows over the curve's last two points (0 with one point)."""
    if len(curve) < 2:
        return 0.0
    a, b = curve[-2], curve[-1]
    doublings = math.log2(b["rows"] / a["rows"]) if b["rows"] > a["rows"] else 0.0
    return (b["mean"] - a["mean"]) / doublings if doublings else 0.0
