"""Write a loaded run's model in a standard form, with the libraries that define the form.

Every writer takes the model as hf_tl loads it (:class:`hf_tl.model.TransferModel`: a backbone, possibly a PEFT
model, and one head), the tokenizer and the task, and writes a folder the standard loader reads. Heads become
sentence-transformers ``Dense`` modules or the standard class's own layers with the same weights; the similarity
scale (gold scores were scaled to [0, 1] for training) is folded into the last layer, so scores come back on the
data's scale.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hf_tl.backbone import quiet_transformers
from hf_tl.errors import HfTlError
from hf_tl.heads import CosineHead, NativeHead

ST_POOLING = {"cls": "cls", "mean": "mean", "last": "lasttoken"}


def merged_backbone(backbone: nn.Module) -> nn.Module:
    """The backbone with a LoRA/IA3 adapter folded into its weights (a copy; the run's model is unchanged)."""
    if hasattr(backbone, "merge_and_unload"):
        return copy.deepcopy(backbone).merge_and_unload()
    return backbone


@dataclass
class Parts:
    """What a standard form is written from.

    Attributes:
        backbone: The backbone (a PEFT model for the ``peft`` form; merged already for the others).
        head: The task's head.
        pooling: hf_tl's pooling (``cls``, ``mean``, ``last``).
        tokenizer: The run's tokenizer.
        task: The run's task.
        max_length: The run's maximum tokens per input.
    """

    backbone: nn.Module
    head: nn.Module
    pooling: str
    tokenizer: object
    task: object
    max_length: int


def _labels(task) -> list[str] | None:
    return None if task.data.task == "similarity" else list(task.label_names)


def _scale(task) -> tuple[float, float] | None:
    """``(span, minimum)`` that maps a similarity output in [0, 1] to the data's score scale."""
    data = task.data
    return (data.score_max - data.score_min, data.score_min) if data.task == "similarity" else None


def native_part(head: nn.Module) -> NativeHead | None:
    """The :class:`NativeHead` inside a task's head (``head_type native``), else None."""
    net = getattr(head, "net", head)
    return net if isinstance(net, NativeHead) else None


def _layers(head: nn.Module) -> list[tuple[nn.Linear, nn.Module]]:
    """The head's linear layers in order, each with the activation after it (dropout is inactive at inference)."""
    head = native_part(head) or head
    if isinstance(head, NativeHead):
        return [*([(head.dense, nn.Tanh())] if head.dense is not None else []), (head.out, nn.Identity())]
    net = head.proj if isinstance(head, CosineHead) else head.net
    if net is None:
        return []
    modules = list(net)
    out = []
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            after = next((m for m in modules[i + 1:] if not isinstance(m, nn.Dropout)), None)
            out.append((module, copy.deepcopy(after) if isinstance(after, nn.GELU) else nn.Identity()))
    return out


def _folded(linear: nn.Linear, scale: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = linear.weight.detach().float().clone()
    bias = None if linear.bias is None else linear.bias.detach().float().clone()
    if scale is not None:
        span, low = scale
        weight = weight * span
        bias = (torch.zeros(weight.shape[0]) if bias is None else bias) * span + low
    return weight, bias


def _dense_modules(head: nn.Module, scores: bool, scale) -> list:
    from sentence_transformers.base.modules import Dense

    layers, modules = _layers(head), []
    for i, (linear, activation) in enumerate(layers):
        last = i == len(layers) - 1
        weight, bias = _folded(linear, scale if last else None)
        modules.append(Dense(linear.in_features, linear.out_features, bias=bias is not None,
                             activation_function=activation, init_weight=nn.Parameter(weight),
                             init_bias=None if bias is None else nn.Parameter(bias),
                             module_output_name="scores" if scores and last else None))
    return modules


def _save_tokenizer(tokenizer, folder: Path, max_length: int) -> None:
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.model_max_length = max_length  # what hf_tl truncates at
    tokenizer.save_pretrained(str(folder))


def _save_backbone(backbone: nn.Module, tokenizer, folder: Path, max_length: int) -> None:
    backbone.save_pretrained(str(folder), safe_serialization=True)
    _save_tokenizer(tokenizer, folder, max_length)


def _st_modules(parts: Parts, backbone: nn.Module, work: Path, scores: bool, scale) -> list:
    """Transformer (``backbone`` saved to ``work``) -> Pooling -> the head's Dense layers."""
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    _save_backbone(backbone, parts.tokenizer, work, parts.max_length)
    with quiet_transformers():  # it adds BERT's pooler, which hf_tl does not use, and would report it "missing"
        transformer = Transformer(str(work), max_seq_length=parts.max_length)
    return [transformer, Pooling(backbone.config.hidden_size, ST_POOLING[parts.pooling]),
            *_dense_modules(parts.head, scores=scores, scale=scale)]


def write_sentence_transformer(parts: Parts, folder: Path, work: Path) -> None:
    """A bi-encoder as a ``SentenceTransformer``: Transformer -> Pooling -> the projection head's Dense layers.

    Args:
        parts: The model (its adapter already merged when there was one).
        folder: Where to write (created).
        work: An empty scratch folder on the same disk.
    """
    from sentence_transformers import SentenceTransformer

    modules = _st_modules(parts, parts.backbone, work, scores=False, scale=None)
    st = SentenceTransformer(modules=modules, device="cpu", similarity_fn_name="cosine")
    st.save(str(folder), create_model_card=False)


def write_cross_encoder(parts: Parts, folder: Path, work: Path) -> None:
    """A cross-encoder as a ``CrossEncoder``: Transformer -> Pooling -> Dense layers whose last outputs the scores
    (identity activation: a similarity on the data's scale, or the class logits, with the label names in
    ``config.json``). Arguments as :func:`write_sentence_transformer`."""
    from sentence_transformers import CrossEncoder

    backbone = copy.copy(parts.backbone)  # its own config (the label names), the same weights
    backbone.config = copy.deepcopy(parts.backbone.config)
    labels = _labels(parts.task)
    if labels:
        backbone.config.id2label = dict(enumerate(labels))
        backbone.config.label2id = {name: i for i, name in enumerate(labels)}
    modules = _st_modules(parts, backbone, work, scores=True, scale=_scale(parts.task))
    ce = CrossEncoder(modules=modules, device="cpu", activation_fn=nn.Identity())
    ce.save(str(folder), create_model_card=False)


def sequence_classifier(backbone: nn.Module, head: nn.Module, task, pad_token_id: int | None):
    """``AutoModelForSequenceClassification`` with ``backbone``'s weights and the native head's (``pad_token_id``:
    the tokenizer's, which GPT-style classes use to find each row's last token).

    Raises:
        HfTlError: if the weights do not fit the standard class exactly.
    """
    from transformers import AutoModelForSequenceClassification

    head = native_part(head)
    config = copy.deepcopy(backbone.config)
    config.pad_token_id = pad_token_id
    labels = _labels(task)
    config.num_labels = len(labels) if labels else 1
    if labels:
        config.id2label, config.label2id = dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}
    else:
        config.problem_type = "regression"
    classifier = AutoModelForSequenceClassification.from_config(config, dtype=next(backbone.parameters()).dtype)
    result = classifier.base_model.load_state_dict(backbone.state_dict(), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if missing or result.unexpected_keys:
        raise HfTlError(f"the backbone's weights do not fit {type(classifier).__name__} (missing "
                        f"{missing[:3]}, unexpected {result.unexpected_keys[:3]})")
    weight, bias = _folded(head.out, _scale(task))
    with torch.no_grad():
        if head.dense is not None:
            classifier.base_model.pooler.dense.load_state_dict(head.dense.state_dict())
            classifier.classifier.weight.copy_(weight)
            classifier.classifier.bias.copy_(bias)
        else:
            classifier.score.weight.copy_(weight)
            if bias is not None and bias.abs().max() > 0:  # a similarity's minimum score needs a bias
                raise HfTlError("a GPT-style score layer has no bias to carry the similarity scale's minimum; "
                                "set score_min 0")
    return classifier


def write_transformers(parts: Parts, folder: Path, work: Path) -> None:
    """A native-head run as ``AutoModelForSequenceClassification`` (and so ``pipeline``). Arguments as
    :func:`write_sentence_transformer`."""
    classifier = sequence_classifier(parts.backbone, parts.head, parts.task, parts.tokenizer.pad_token_id)
    _save_backbone(classifier, parts.tokenizer, folder, parts.max_length)


def write_peft(parts: Parts, folder: Path, work: Path, base_name: str) -> None:
    """A native-head PEFT run as a ``SEQ_CLS`` adapter whose ``modules_to_save`` hold the head, as
    ``AutoPeftModelForSequenceClassification`` loads it.

    Args:
        base_name: What the adapter names as its base (the Hub id, or the local checkpoint folder).
        Others: as :func:`write_sentence_transformer`.

    Raises:
        HfTlError: if the adapter's weights do not fit the standard class.
    """
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    peft_model, head = parts.backbone, parts.head
    base = copy.deepcopy(peft_model).unload()  # the base weights, adapter removed (not merged)
    classifier = sequence_classifier(base, head, parts.task, parts.tokenizer.pad_token_id)
    config = copy.deepcopy(peft_model.peft_config["default"])
    config.task_type = "SEQ_CLS"
    config.modules_to_save = ["classifier", "pooler"] if native_part(head).dense is not None else ["score"]
    config.base_model_name_or_path = base_name
    wrapped = get_peft_model(classifier, config)
    prefix = classifier.base_model_prefix
    weights = get_peft_model_state_dict(wrapped)  # the head in modules_to_save, as copied in above
    weights.update({k.replace("base_model.model.", f"base_model.model.{prefix}.", 1): v
                    for k, v in get_peft_model_state_dict(peft_model).items()})
    result = set_peft_model_state_dict(wrapped, weights)
    if result.unexpected_keys:
        raise HfTlError(f"the adapter's weights do not fit the standard class (e.g. {result.unexpected_keys[:3]})")
    wrapped.save_pretrained(str(folder), save_embedding_layers=False)
    _save_tokenizer(parts.tokenizer, folder, parts.max_length)


def write_language_model(parts: Parts, folder: Path, work: Path) -> None:
    """A language-modelling run as its family's ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` (backbone and LM
    head, the output layer tied as the checkpoint had it). Arguments as :func:`write_sentence_transformer`."""
    from hf_tl.lm_head import standard_lm

    _save_backbone(standard_lm(parts.backbone, parts.head), parts.tokenizer, folder, parts.max_length)
