"""Few-shot transfer: k training examples per label, drawn by seed, and the SetFit method on them.

``few_shot_k`` works with every strategy (``frozen``, ``lora``, ``features``, ...). Strategy ``setfit`` runs two
chained runs:

1. ``OUTPUT-body``: the backbone is fine-tuned in full as a bi-encoder on pairs generated from the training
   examples (same label -> cosine target 1, different labels -> 0), SetFit's contrastive step;
2. ``OUTPUT``: strategy ``features`` on that backbone (``init_from_run``): a scikit-learn head (logistic
   regression by default, as in SetFit) is fitted on its embeddings of the same examples.

The final run is an ordinary run directory (its ``lineage.json`` names the body run), so it loads and predicts
like any other.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import FIXED_LAYER_CHOICES
from hf_tl.tasks.classification import label_key

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


def body_dir_of(output_dir: str) -> Path:
    """Where a setfit run puts its contrastive body run: beside the final run, named ``OUTPUT-body``."""
    out = Path(output_dir)
    return out.with_name(out.name + "-body")


def train_setfit(config) -> dict:
    """Train with SetFit: contrastive body run, then a ``features`` run on it (see the module docstring).

    Args:
        config: A run config with ``strategy: setfit`` and one ``classification`` task.

    Returns:
        The final run's dev metrics (its ``eval_results.json``).

    Raises:
        HfTlError: for several tasks, a pair or similarity task, resuming, or an output folder that holds a run.
    """
    from accelerate import PartialState

    from hf_tl.config import DataArguments, StrategyArguments
    from hf_tl.run_config import RunConfig
    from hf_tl.run_dir import check_output_dir
    from hf_tl.tasks import get_task
    from hf_tl.training.loop import train
    from hf_tl.training.setup import resolve_config

    t, s = config.train, config.strategy
    if config.is_multitask or config.data.task != "classification":
        raise HfTlError("strategy 'setfit' trains one single-text classification task (it pairs texts by label); "
                        "for pairs or scores use few_shot_k with frozen, lora or full.")
    if config.model.layer == "weighted":
        raise HfTlError(f"strategy 'setfit' fits a closed-form head, which cannot learn layer weights; "
                        f"{FIXED_LAYER_CHOICES}")
    if t.resume_from_checkpoint:
        raise HfTlError("strategy 'setfit' runs two short chained runs and cannot resume; start it again.")
    if not t.output_dir:
        raise HfTlError("strategy 'setfit' needs output_dir (its body run goes beside it as OUTPUT-body).")
    body_dir = body_dir_of(t.output_dir)
    check_output_dir(t.output_dir, t.overwrite_output_dir, False)  # refuse before the body run, not after it
    check_output_dir(str(body_dir), t.overwrite_output_dir, False)
    resolved, raw = resolve_config(config, need_train=True)  # few_shot_k is drawn here, and again (alike) below
    task = get_task(resolved.data, None, config.model.max_length)
    examples = task.prepare_split(raw["classification"]["train"], "train")
    if 2 * s.setfit_num_iterations * len(examples) > MAX_PAIRS:
        raise HfTlError(f"setfit is a few-shot method: {len(examples):,} train rows would make "
                        f"{2 * s.setfit_num_iterations * len(examples):,} pairs; set few_shot_k (e.g. 16) or lower "
                        f"setfit_num_iterations.")
    pairs = contrastive_pairs(list(examples["text"]), list(examples["label"]), s.setfit_num_iterations, t.seed)
    with tempfile.TemporaryDirectory(prefix="hf_tl_setfit_") as tmp:  # every process writes the same pairs
        pairs_file = Path(tmp) / "pairs.jsonl"
        pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        body = RunConfig(
            model=config.model,
            # Few-shot has no held-out data: the body run's dev metric is measured on (part of) its own pairs.
            data=DataArguments(task="similarity", architecture="bi_encoder", train_file=str(pairs_file),
                               validation_file=str(pairs_file), score_min=0.0, score_max=1.0,
                               max_eval_samples=min(256, len(pairs)), prompt_template=config.data.prompt_template),
            strategy=StrategyArguments(strategy="full", head_type="none"),
            train=replace(t, output_dir=str(body_dir), num_train_epochs=s.setfit_epochs, max_steps=None,
                          eval_strategy="epoch", early_stopping_patience=None, metric_for_best_model=None,
                          cache_features=False, push_to_hub=False))  # only the final run is the model
        train(body, end_training=False)  # the head run follows in the same processes
        if PartialState().is_main_process:
            (body_dir / "pairs.jsonl").write_text(pairs_file.read_text())
    if PartialState().is_main_process:
        print(f"setfit: contrastive body trained on {len(pairs)} pairs from {len(examples)} examples ({body_dir})")
    head = replace(config, model=replace(config.model, init_from_run=str(body_dir)),
                   strategy=replace(s, strategy="features"))
    return train(head)
