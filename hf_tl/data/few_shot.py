"""Few-shot data: k training rows per label drawn by seed, and SetFit's contrastive pairs of those rows."""

from __future__ import annotations

import random
from collections import defaultdict

from hf_tl.data.labels import label_key
from hf_tl.errors import HfTlError

MAX_PAIRS = 200_000  # contrastive pairs beyond this are not few-shot any more (and take hours)


def few_shot_indices(values: list, k: int, seed: int, regression: bool) -> list[int]:
    """Draw ``k`` rows per label (per score rounded to a whole number for regression), reproducibly by ``seed``.

    Args:
        values: The raw label (or score) column.
        k: Rows per label.
        seed: The draw's seed; the same seed and data give the same rows.
        regression: Group by rounded score instead of label.

    Returns:
        The drawn row indices, in dataset order.

    Raises:
        HfTlError: when a label has fewer than ``k`` rows.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, value in enumerate(values):
        key = label_key(value)
        if key is not None and regression:
            try:
                key = str(round(float(key)))
            except ValueError:
                continue  # the task's own checks name the bad row
        if key is not None:
            groups[key].append(i)
    small = {g: len(rows) for g, rows in groups.items() if len(rows) < k}
    if small:
        what = "score bin" if regression else "label"
        listed = ", ".join(f"{g} ({n})" for g, n in sorted(small.items()))
        raise HfTlError(f"few_shot_k {k} needs {k} train rows per {what}, but some have fewer: {listed}; lower "
                        f"few_shot_k.")
    rng = random.Random(seed)
    return sorted(i for g in sorted(groups) for i in rng.sample(groups[g], k))


def contrastive_pairs(texts: list[str], labels: list, num_iterations: int, seed: int) -> list[dict]:
    """SetFit's pair generation: per iteration, each text once with a same-label partner (target 1.0) and once
    with a different-label partner (target 0.0).

    Returns:
        ``[{"sentence1", "sentence2", "score"}, ...]``.

    Raises:
        HfTlError: when a label has a single example (no positive partner) or there is only one label.
    """
    by_label: dict = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    if len(by_label) < 2 or any(len(rows) < 2 for rows in by_label.values()):
        raise HfTlError("setfit pairs examples by label, so it needs at least two labels with two or more train "
                        "examples each; raise few_shot_k (or give more rows).")
    rng = random.Random(seed)
    position = {i: p for rows in by_label.values() for p, i in enumerate(rows)}
    others = {label: [j for j, other in enumerate(labels) if other != label] for label in by_label}
    pairs = []
    for _ in range(num_iterations):
        for i, label in enumerate(labels):
            # A uniform draw from the label's other rows (the rows without i, indexed without building that list).
            k = rng.randrange(len(by_label[label]) - 1)
            same = by_label[label][k if k < position[i] else k + 1]
            other = rng.choice(others[label])
            pairs.append({"sentence1": texts[i], "sentence2": texts[same], "score": 1.0})
            pairs.append({"sentence1": texts[i], "sentence2": texts[other], "score": 0.0})
    return pairs
