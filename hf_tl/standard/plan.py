"""Which standard form a run's model can take, exactly, and which it cannot and why.

A run's model is backbone -> pooling -> head. The standard forms and what each can express:

- ``sentence-transformers``: a bi-encoder (Transformer -> Pooling(cls|mean|lasttoken) -> optional Dense layers);
- ``cross-encoder``: a cross-encoder for similarity or pair classification (Transformer -> Pooling -> Dense
  layers that output the scores), the similarity scale folded into the last layer;
- ``transformers``: ``AutoModelForSequenceClassification``, which only the backbone's own head (``head_type
  native``) matches;
- ``peft``: an adapter of a native-head run, as ``AutoPeftModelForSequenceClassification`` loads it;
- ``masked-lm`` / ``causal-lm``: a language-modelling run as ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM``
  (its adapter merged), what ``pipeline("fill-mask")`` / ``pipeline("text-generation")`` and a later fine-tuning
  load.

Inputs that standard tokenization does not reproduce (a prompt template, a decoder's pair joined by EOS), layer
mixes and several tasks have no exact standard form. A LoRA/IA3 adapter is merged for the non-PEFT forms.
"""

from __future__ import annotations

from dataclasses import dataclass

from hf_tl.errors import HfTlError
from hf_tl.strategies import get_strategy

FORMATS = ("sentence-transformers", "cross-encoder", "transformers", "peft", "masked-lm", "causal-lm")
# What loads each form, as the card and the final line name it.
LOADERS = {
    "sentence-transformers": "sentence_transformers.SentenceTransformer",
    "cross-encoder": "sentence_transformers.CrossEncoder",
    "transformers": "transformers.AutoModelForSequenceClassification",
    "peft": "peft.AutoPeftModelForSequenceClassification",
    "masked-lm": "transformers.AutoModelForMaskedLM",
    "causal-lm": "transformers.AutoModelForCausalLM",
}
# The library the Hub shows a model's "Use this model" snippet for.
LIBRARY = {"sentence-transformers": "sentence-transformers", "cross-encoder": "sentence-transformers",
           "transformers": "transformers", "peft": "peft", "masked-lm": "transformers", "causal-lm": "transformers"}
LM_FORMATS = {"masked_lm": "masked-lm", "causal_lm": "causal-lm"}  # a language-modelling task's one form


@dataclass(frozen=True)
class Plan:
    """A standard form of one run: its format, and whether an adapter is merged into the backbone for it."""

    format: str
    merge: bool = False


def _facts(config) -> tuple:
    """``(task data, strategy)`` of a single-task run, or refuse a run with several tasks.

    Raises:
        HfTlError: for a multi-task run.
    """
    tasks = config.task_data()
    if len(tasks) != 1:
        raise HfTlError(f"this run trained {len(tasks)} tasks on one backbone ({', '.join(tasks)}); a standard model "
                        f"has one head")
    return next(iter(tasks.values())), get_strategy(config.strategy)


def natural_format(config, standard_kind: bool = True, is_decoder: bool = False) -> str:
    """The standard form a run's model takes at its root.

    Args:
        config: The run's config.
        standard_kind: Whether its run kind builds a backbone-and-head model (the kinds that do not have none).
        is_decoder: Whether the backbone is a GPT-style decoder.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        HfTlError: with the reason when the run has no exact standard form.
    """
    data, strategy = _facts(config) if standard_kind else (None, None)
    if not standard_kind:
        raise HfTlError("this kind of run scores with a checkpoint's own task head and label texts, not a trained "
                        "model of its own")
    if data.task in LM_FORMATS:
        return LM_FORMATS[data.task]
    if config.strategy.head_type == "native":
        return "peft" if strategy.is_peft and not config.model.init_from_run else "transformers"
    if data.task == "similarity" and data.architecture == "bi_encoder":
        return "sentence-transformers"
    if data.task == "classification":
        raise HfTlError("hf_tl's head reads pooled features that AutoModelForSequenceClassification does not compute, "
                        "since that class has its own [CLS] + pooler or last-token head; train with head_type native "
                        "for a run that transformers loads")
    return "cross-encoder"


def plan_format(config, fmt: str | None = None, merge: bool = False, standard_kind: bool = True,
                is_decoder: bool = False) -> Plan:
    """Check that a run's model can take a standard form exactly.

    Args:
        config: The run's config.
        fmt: The form asked for (default: the run's natural one, :func:`natural_format`).
        merge: Whether the user allows merging an adapter into the backbone (``--merge``).
        standard_kind: Whether its run kind builds a backbone-and-head model.
        is_decoder: Whether the backbone is a GPT-style decoder.

    Returns:
        The :class:`Plan`.

    Raises:
        HfTlError: with the reason (no trailing period) when the form cannot express the run exactly.
    """
    natural = natural_format(config, standard_kind, is_decoder)
    fmt = fmt or natural
    if fmt not in FORMATS:
        raise HfTlError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    data, strategy = _facts(config)
    if data.task in LM_FORMATS or fmt in LM_FORMATS.values():
        if fmt != natural:
            raise HfTlError(f"a {data.task} run is a language model, whose standard form is --format {natural}"
                            if data.task in LM_FORMATS else f"--format {fmt} is for language-modelling runs")
        if strategy.is_peft and not strategy.transferable:
            raise HfTlError(f"its {strategy.transfer_refusal.split(';')[0]}")
        return Plan(fmt, merge=strategy.is_peft)
    if config.model.layer != "last":
        raise HfTlError(f"its features are layer {config.model.layer} (a mix of hidden layers), which no standard "
                        f"class computes; train with layer last")
    if data.prompt_template is not None:
        raise HfTlError("its inputs are wrapped in prompt_template, which standard loaders do not apply")
    if data.task != "classification" and is_decoder and fmt != "sentence-transformers":
        raise HfTlError("a GPT-style backbone reads a pair joined by its EOS token, which the standard pair "
                        "tokenization does not insert")
    bi_encoder = data.task == "similarity" and data.architecture == "bi_encoder"
    native = config.strategy.head_type == "native"
    if fmt == "sentence-transformers" and not bi_encoder:
        raise HfTlError("sentence-transformers' SentenceTransformer embeds single texts, and this run is a "
                        "cross-encoder or classifier; choose --format cross-encoder or transformers")
    if fmt == "cross-encoder" and (bi_encoder or data.task == "classification"):
        raise HfTlError("CrossEncoder scores pairs; this run " + (
            "embeds each text on its own (choose --format sentence-transformers)" if bi_encoder else
            "classifies single texts (choose --format transformers with a head_type native run)"))
    if fmt in ("transformers", "peft") and not native:
        raise HfTlError(f"{LOADERS[fmt]} has the backbone's own [CLS] + pooler or last-token head, and this run "
                        f"trained hf_tl's {config.strategy.head_type} head; train with head_type native, or choose "
                        f"--format " + (
                            "sentence-transformers" if bi_encoder else "cross-encoder"))
    if fmt == "peft":
        if not strategy.is_peft:
            raise HfTlError(f"strategy {config.strategy.strategy} trained no adapter; choose --format transformers")
        if config.model.init_from_run:
            raise HfTlError("its adapter sits on another run's backbone, which is not a Hub model PEFT could load; "
                            "choose --format transformers --merge")
    needs_merge = strategy.is_peft and fmt != "peft"
    if needs_merge and not strategy.transferable:
        raise HfTlError(f"its {strategy.transfer_refusal.split(';')[0]}")
    if needs_merge and not merge and fmt != natural:
        raise HfTlError(f"its weights are a {config.strategy.strategy} adapter; add --merge to fold it into the "
                        f"backbone for --format {fmt}, or choose --format peft")
    return Plan(fmt, merge=needs_merge)
