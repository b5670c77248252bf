"""Regularisation settings beyond early stopping and head dropout: the backbone's own dropout, L1/L2 penalties in
the loss, label smoothing; and the checks that they, and a non-default loss, fit the run.

Torch is imported inside the functions that need it: the config checks run before any model is loaded.
"""

from __future__ import annotations

from hf_tl.errors import HfTlError

# The names families give their dropout rates: hidden states and embeddings, then attention weights.
HIDDEN_DROPOUT_KEYS = ("hidden_dropout_prob", "resid_pdrop", "embd_pdrop", "hidden_dropout", "dropout",
                       "embedding_dropout", "mlp_dropout")
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout")


def training_settings(config) -> list[str]:
    """The loss and regularisation settings of ``config`` that differ from their defaults (what a card records).

    Returns:
        ``["option: value", ...]``.
    """
    out = []
    for option in ("backbone_dropout", "attention_dropout"):
        if getattr(config.model, option) is not None:
            out.append(f"{option}: {getattr(config.model, option)}")
    for name, data in config.task_data().items():
        where = f" ({name})" if config.is_multitask else ""
        if data.loss != "auto":
            out.append(f"loss{where}: {data.loss}")
        if data.positive_min_score is not None:
            out.append(f"positive_min_score{where}: {data.positive_min_score}")
        if data.distill_from:
            out.append(f"distill_from{where}: {data.distill_from} (teacher share {data.distill_alpha})")
    s = config.strategy
    for option in ("l1_penalty", "l2_penalty", "label_smoothing"):
        if getattr(s, option):
            out.append(f"{option}: {getattr(s, option)}")
    if s.l1_penalty or s.l2_penalty:
        out.append(f"penalty_on: {s.penalty_on}")
    return out


def data_settings(config) -> list[str]:
    """The augmentation settings of ``config`` (rows added to the train split), as ``["option: value", ...]``."""
    out = []
    for name, data in config.task_data().items():
        where = f" ({name})" if config.is_multitask else ""
        if data.augment:
            out.append(f"augment{where}: {', '.join(data.augment)} (x{data.augment_copies}, seed {data.augment_seed})")
        if data.silver_from:
            out.append(f"silver_from{where}: {data.silver_from} ({data.silver_pairs or 'as many as train'} pairs)")
    return out


def check_training_settings(config, trains_by_gradient: bool, strategy: str) -> None:
    """Refuse loss and regularisation settings the run would ignore.

    Args:
        config: The run config.
        trains_by_gradient: Whether the strategy's runs train by gradient (only those read a loss).
        strategy: The strategy's name, for the message.

    Raises:
        HfTlError: naming the setting and the fix.
    """
    used = training_settings(config)
    if used and not trains_by_gradient:
        raise HfTlError(f"strategy {strategy} trains nothing by gradient, so {used[0].split(':')[0]} would do "
                        f"nothing; remove it, or pick a strategy that trains (full, lora, partial, ...).")
    if config.strategy.label_smoothing and all(d.task == "similarity" for d in config.task_data().values()):
        raise HfTlError("label_smoothing smooths classification targets, and this run has no classification task; "
                        "remove it.")


def set_dropout(model_config, hidden: float | None, attention: float | None, model_name: str) -> None:
    """Set a backbone config's dropout rates (before the model is built from it).

    Args:
        model_config: The transformers config.
        hidden: Dropout on hidden states and embeddings, or None to keep the checkpoint's.
        attention: Dropout on attention weights, or None to keep the checkpoint's.
        model_name: The checkpoint, for the message.

    Raises:
        HfTlError: when the family has no such dropout to set.
    """
    for rate, keys, option in ((hidden, HIDDEN_DROPOUT_KEYS, "backbone_dropout"),
                               (attention, ATTENTION_DROPOUT_KEYS, "attention_dropout")):
        if rate is None:
            continue
        present = [k for k in keys if isinstance(getattr(model_config, k, None), (int, float))]
        if not present:
            raise HfTlError(f"{option} is set, but '{model_name}' ({model_config.model_type}) has no such dropout in "
                            f"its config (none of {', '.join(keys)}); remove {option}.")
        for key in present:
            setattr(model_config, key, rate)


def weight_penalty(parameters, l1: float, l2: float):
    """``l1 * sum |w| + l2 * sum w**2`` over the weight matrices among ``parameters`` that train (biases and norms,
    as with weight decay, are left out).

    Returns:
        A scalar tensor, or 0.0 when no weight trains.
    """
    total = 0.0
    for p in parameters:
        if p.requires_grad and p.dim() >= 2:
            w = p.float()
            if l1:
                total = total + l1 * w.abs().sum()
            if l2:
                total = total + l2 * w.pow(2).sum()
    return total
