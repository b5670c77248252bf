"""Train-split augmentation for the data-poor case: new rows made from the train rows alone (never from dev), the
same for the same seed.

- ``swap_pairs``: each pair once more with its texts swapped (for symmetric pair tasks: similarity, paraphrase).
- ``random_swap``: two words of each text change places, about one swap per ten words.
- ``random_deletion``: each word is dropped with probability 0.1 (one word always stays).

WordNet synonym replacement is not offered: every package that provides WordNet downloads its data at run time.
"""

from __future__ import annotations

import random

from hf_tl.choices import AUGMENTATIONS
from hf_tl.errors import HfTlError

WORD_RATE = 0.1  # the share of a text's words that random_swap swaps and random_deletion drops


def random_swap(text: str, rng: random.Random) -> str:
    """Swap two words, ``max(1, words * 0.1)`` times."""
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(max(1, int(len(words) * WORD_RATE))):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def random_deletion(text: str, rng: random.Random) -> str:
    """Drop each word with probability 0.1, keeping at least one."""
    words = text.split()
    if len(words) < 2:
        return text
    kept = [w for w in words if rng.random() >= WORD_RATE]
    return " ".join(kept) if kept else rng.choice(words)


TEXT_OPERATIONS = {"random_swap": random_swap, "random_deletion": random_deletion}


def augment_split(train, operations: list[str], copies: int, seed: int, columns: dict[str, str]):
    """The train split with augmented rows appended (the original rows first, unchanged).

    Args:
        train: The raw train split (a ``datasets.Dataset``).
        operations: Names from :data:`AUGMENTATIONS`.
        copies: New rows per train row and text operation.
        seed: The seed of the text operations.
        columns: ``{"text": column, "text_pair": column or absent, "label": column}``.

    Returns:
        The split with the new rows (only the task's columns are kept).

    Raises:
        HfTlError: for an unknown operation, or swap_pairs on single texts.
    """
    from datasets import Dataset

    unknown = [op for op in operations if op not in AUGMENTATIONS]
    if unknown:
        raise HfTlError(f"Unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)}.")
    if any(column not in train.column_names for column in columns.values()):
        return train  # the task's own checks name the missing column
    pair = "text_pair" in columns
    if "swap_pairs" in operations and not pair:
        raise HfTlError("augment swap_pairs swaps the two texts of a pair, and this task reads one text; use "
                        "random_swap or random_deletion.")
    original = {key: list(train[column]) for key, column in columns.items()}
    rows = {key: list(values) for key, values in original.items()}
    rng = random.Random(seed)
    for op in operations:
        if op == "swap_pairs":
            rows["text"] += original["text_pair"]
            rows["text_pair"] += original["text"]
            rows["label"] += original["label"]
            continue
        change = TEXT_OPERATIONS[op]
        for _ in range(copies):
            rows["text"] += [change(str(t), rng) for t in original["text"]]
            if pair:
                rows["text_pair"] += [change(str(t), rng) for t in original["text_pair"]]
            rows["label"] += original["label"]
    return Dataset.from_dict({columns[key]: values for key, values in rows.items()})
