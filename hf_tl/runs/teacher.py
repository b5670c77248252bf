"""Learning from a finished run (the teacher): silver pairs it scores (augmented SBERT), and distillation onto its
outputs."""

from __future__ import annotations

import random

import numpy as np

from hf_tl.errors import HfTlError
from hf_tl.runs.ensemble import probabilities
from hf_tl.runs.predictions import load_finished

CANDIDATES = 20  # silver pairs: the sentences a sentence's most word-sharing partner is chosen from


def _teacher(path: str, data, what: str):
    """Load a teacher run and check that it does this task.

    Raises:
        HfTlError: for a run that is not finished, or does another task.
    """
    config, run = load_finished(path)
    if config.data.task != data.task:
        raise HfTlError(f"{what} '{path}' does task {config.data.task}, not {data.task}; give a run of the same task.")
    if data.task != "similarity" and config.data.label_names != data.label_names:
        raise HfTlError(f"{what} '{path}' has labels {config.data.label_names}, but this run has "
                        f"{data.label_names}; give a run with the same labels in the same order.")
    return run


def silver_pairs(sentences: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    """New pairs from the train sentences: half random, half each sentence with the candidate (of 20 drawn) that
    shares most words with it, so the teacher also sees pairs that score high. Pairs already drawn are not repeated.

    Returns:
        ``count`` pairs (fewer if the sentences cannot make that many).
    """
    rng = random.Random(seed)
    unique = list(dict.fromkeys(sentences))
    if len(unique) < 2:
        return []
    words = {s: set(s.lower().split()) for s in unique}
    seen, out = set(), []
    for attempt in range(count * 4):
        if len(out) >= count:
            break
        a = rng.choice(unique)
        candidates = [b for b in rng.sample(unique, min(CANDIDATES, len(unique))) if b != a]
        if not candidates:
            continue
        b = max(candidates, key=lambda c: len(words[a] & words[c])) if attempt % 2 else candidates[0]
        key = tuple(sorted((a, b)))
        if key not in seen:
            seen.add(key)
            out.append((a, b))
    return out


def add_silver_pairs(raw: dict, config) -> tuple[dict, int]:
    """The raw splits with the teacher's silver pairs appended to each similarity task's train split.

    Returns:
        ``(raw splits, silver pairs added)``.

    Raises:
        HfTlError: for a teacher of another task.
    """
    from datasets import Dataset, concatenate_datasets

    added = 0
    for name, data in config.task_data().items():
        if not data.silver_from or "train" not in raw[name]:
            continue
        train = raw[name]["train"]
        a, b, label = data.text_column, data.text_pair_column, data.label_column
        sentences = [str(t) for t in train[a]] + [str(t) for t in train[b]]
        pairs = silver_pairs(sentences, data.silver_pairs or len(train), config.train.seed)
        run = _teacher(data.silver_from, data, "silver_from")
        scaled = run(pairs, next(iter(run.tasks)), 64)
        scores = np.clip(data.score_min + scaled * (data.score_max - data.score_min), data.score_min, data.score_max)
        silver = Dataset.from_dict({a: [p[0] for p in pairs], b: [p[1] for p in pairs],
                                    label: [float(s) for s in scores]})
        raw[name]["train"] = concatenate_datasets([train.select_columns([a, b, label]).cast(silver.features),
                                                   silver])
        added += len(silver)
    return raw, added


def distilled_targets(splits: dict, raw: dict, config, tasks: dict) -> dict:
    """The tokenized splits with each distilled task's train targets replaced by the teacher's outputs on the same
    rows (blended with the gold targets by ``distill_alpha``): scores in [0, 1], or class probabilities.

    Raises:
        HfTlError: for a teacher of another task.
    """
    for name, data in config.task_data().items():
        if not data.distill_from or "train" not in splits[name]:
            continue
        train = splits[name]["train"]
        run = _teacher(data.distill_from, data, "distill_from")
        prepared = tasks[name].prepare_split(raw[name]["train"], "train")  # the rows the split was tokenized from
        pair = tasks[name].pair
        inputs = list(zip(prepared["text"], prepared["text_pair"])) if pair else list(prepared["text"])
        teacher = np.asarray(run(inputs, next(iter(run.tasks)), 64), dtype=np.float64)
        gold = np.asarray(train["labels"])
        if teacher.ndim == 2:  # class logits -> probabilities; the gold labels as one-hot rows
            teacher = probabilities(teacher)
            gold = np.eye(teacher.shape[1])[gold.astype(int)]
        targets = data.distill_alpha * teacher + (1 - data.distill_alpha) * gold
        splits[name]["train"] = train.remove_columns("labels").add_column("labels", targets.tolist())
    return splits
