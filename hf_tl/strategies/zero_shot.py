"""The ``zero_shot`` strategy: nothing trains; the pretrained model scores as it is.

Similarity scores pairs by the cosine of their embeddings (a bi-encoder with head_type none). Classification gets a
head built from the label texts, so a zero-shot run saves, reloads and predicts like any other run:

- ``label_description``: each row of the head is the normalised embedding of a label's description. The text's
  logits are then its dot products with them, which rank the labels exactly as their cosine similarities do (the
  text's own norm scales every logit of a row alike).
- ``label_likelihood``: each row is the decoder's output embedding of the label word's first token. With the
  hidden state of the prompt's last token as the feature, the logits are the decoder's next-token logits of the
  label words, so their softmax compares the likelihoods of the label words after the prompt.
- ``nli``: an NLI cross-encoder's entailment of a hypothesis per label; that checkpoint's own classifier scores, so
  the run is of its own kind (``hf_tl.runs.nli``) and builds no backbone + head.
"""

from __future__ import annotations

import torch
from torch import nn

from hf_tl.backbone import Backbone, _load_error, resolve_checkpoint
from hf_tl.errors import HfTlError
from hf_tl.heads import ClassificationHead, CosineHead
from hf_tl.layer_select import MixedHead
from hf_tl.strategies.base import EVALUATED, Strategy, freeze_model, refuse_learned_mix, register
from hf_tl.tasks import Task
from hf_tl.tasks.classification import ClassificationTask
from hf_tl.tasks.similarity import SimilarityTask

NLI = "nli"  # the run kind of zero_shot_method nli (hf_tl.runs.nli)


@register("zero_shot")
class ZeroShot(Strategy):
    """Nothing trains: the pretrained backbone is evaluated as it is (see the module docstring)."""

    learns = False
    multitask = False
    trains_backbone_weights = False
    resumable = False
    resume_refusal = "trains nothing, so there is nothing to resume; drop --resume_from_checkpoint"

    @property
    def run_kind(self) -> str:
        return NLI if self.args.zero_shot_method == "nli" else EVALUATED

    @classmethod
    def compare_flags(cls, config) -> list[str]:
        """A similarity comparison scores zero-shot as a bi-encoder by cosine (the other strategies' configs are
        usually cross-encoders)."""
        if config.strategy.strategy == cls.name:
            return []
        similarity = all(d.task == "similarity" for d in config.task_data().values())
        return ["--architecture", "bi_encoder", "--head_type", "none"] if similarity else []

    def apply(self, model: nn.Module) -> nn.Module:
        refuse_learned_mix(model.layer, "layer weighted learns its mix of layers, but strategy 'zero_shot' trains "
                                        "nothing")
        for name, head in model.heads.items():
            check_head(name, head, self.args.zero_shot_method)
        return freeze_model(model)

    def init_heads(self, model: nn.Module, tasks: dict, backbone, model_args) -> None:
        for name, task in tasks.items():
            method = resolve_method(self.args.zero_shot_method, task, backbone.is_decoder)
            init_head(model, name, task, method, backbone, model_args)

    def describe(self) -> str:
        return f"zero_shot ({self.args.zero_shot_method}): nothing trains; the pretrained model scores as it is"


def resolve_method(method: str, task: Task, is_decoder: bool) -> str:
    """The zero-shot method a task uses: ``auto`` picks cosine (similarity), label_likelihood (decoder) or
    label_description (encoder).

    Raises:
        HfTlError: for a method that does not fit the task.
    """
    if isinstance(task, SimilarityTask):
        if method not in ("auto", "cosine"):
            raise HfTlError(f"zero_shot_method {method} is for classification; a similarity task scores by cosine "
                            f"(zero_shot_method cosine, architecture bi_encoder).")
        return "cosine"
    if method == "cosine":
        raise HfTlError(f"zero_shot_method cosine scores pairs of texts (task similarity); task {task.name} needs "
                        f"label_description, label_likelihood or nli.")
    if method == "auto":
        return "label_likelihood" if is_decoder else "label_description"
    return method


def check_head(name: str, head: nn.Module, method: str) -> None:
    """Refuse a head that a zero-shot method cannot fill.

    Raises:
        HfTlError: for a trainable cosine projection, a regression head, or an MLP head.
    """
    if isinstance(head, MixedHead):
        head = head.head
    if isinstance(head, CosineHead):
        if head.proj is not None:
            raise HfTlError(f"strategy 'zero_shot' needs head_type none for the bi-encoder task '{name}' (an "
                            f"untrained projection would score at random).")
        return
    if not isinstance(head, ClassificationHead):
        raise HfTlError(f"strategy 'zero_shot' needs architecture bi_encoder with head_type none for the similarity "
                        f"task '{name}' (an untrained regression head would score at random).")
    linear = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(linear) != 1 or linear[0].bias is None:
        raise HfTlError(f"zero_shot_method {method} writes a linear head; set head_type linear (or none), not "
                        f"{'mlp' if len(linear) > 1 else 'native'}.")


def _linear(head: nn.Module) -> nn.Linear:
    return next(m for m in head.modules() if isinstance(m, nn.Linear))


@torch.no_grad()
def description_weights(model, task: ClassificationTask, descriptions: list[str]) -> torch.Tensor:
    """Normalised embeddings of the label descriptions, encoded like the texts (same template, pooling, layer).

    Returns:
        ``(num_labels, feature_size)``.
    """
    encoded = task.encode(descriptions)
    tok = task.tokenizer
    batch = tok.pad({k: encoded[k] for k in ("input_ids", "attention_mask")}, return_tensors="pt")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    features = model.encode(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float()
    model.train(was_training)
    return nn.functional.normalize(features, dim=-1)


def label_word_ids(tokenizer, words: list[str], template: str) -> list[int]:
    """The first token of each label word as it follows the prompt (with a space unless the prompt ends in one).

    Raises:
        HfTlError: for a word that tokenizes to nothing, or two labels that share their first token.
    """
    lead = "" if template[-1:].isspace() else " "
    ids = []
    for word in words:
        tokens = tokenizer(lead + word, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise HfTlError(f"The label word {word!r} tokenizes to nothing; give label_descriptions with one word "
                            f"per label.")
        ids.append(tokens[0])
    if len(set(ids)) < len(ids):
        raise HfTlError(f"The label words {words} share their first token, which label_likelihood compares; give "
                        f"label_descriptions whose first words differ.")
    return ids


def output_embeddings(backbone: Backbone, model_args) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The decoder's language-model head: tied to its input embeddings, or loaded from the checkpoint.

    Returns:
        ``(weight (vocab, hidden), bias or None)``.
    """
    if getattr(backbone.model.config, "tie_word_embeddings", False) or getattr(
            backbone.model.config.get_text_config(), "tie_word_embeddings", False):
        return backbone.model.get_input_embeddings().weight.detach(), None
    from transformers import AutoModelForCausalLM

    if model_args.init_from_run:
        raise HfTlError("This decoder's language-model head is not tied to its embeddings, and a run started with "
                        "init_from_run has no head of its own to score label words with; use the base checkpoint, "
                        "or zero_shot_method label_description.")
    extra = {"gguf_file": model_args.gguf_file} if model_args.gguf_file else {"use_safetensors": True}
    try:
        lm = AutoModelForCausalLM.from_pretrained(resolve_checkpoint(model_args.model_name_or_path),
                                                  dtype=backbone.model.dtype,
                                                  trust_remote_code=model_args.trust_remote_code, **extra)
    except (OSError, ValueError) as err:
        raise _load_error(model_args.model_name_or_path, err) from None
    head = lm.get_output_embeddings()
    bias = head.bias.detach() if getattr(head, "bias", None) is not None else None
    return head.weight.detach(), bias


def init_head(model, name: str, task: Task, method: str, backbone: Backbone, model_args) -> None:
    """Write the zero-shot head of task ``name`` (a no-op for a cosine head).

    Raises:
        HfTlError: for a method that the model or task cannot use.
    """
    if method == "cosine":
        return
    head = _linear(model.heads[name])
    words = task.label_texts()
    if method == "label_description":
        if task.pair:
            raise HfTlError(f"zero_shot_method label_description compares one text with each label's "
                            f"description; task '{name}' has pairs: use label_likelihood with a prompt_template "
                            f"that names {{text}} and {{text_pair}}, or nli.")
        weight, bias = description_weights(model, task, words), None
    else:
        if not backbone.is_decoder:
            raise HfTlError("zero_shot_method label_likelihood needs a GPT-style decoder (its language-model head "
                            "scores the label words); use label_description with an encoder.")
        template = task.data.prompt_template
        if template is None or (task.pair and "{text_pair}" not in template):
            raise HfTlError("zero_shot_method label_likelihood needs a prompt_template that ends where the label "
                            "word goes, e.g. 'Review: {text}\\nSentiment:'" + (" (naming {text} and {text_pair})"
                                                                              if task.pair else "") + ".")
        if model.pooling != "last" or model.layer != "last":
            raise HfTlError("zero_shot_method label_likelihood reads the last token's final hidden state; set "
                            "pooling last (or auto) and layer last.")
        probe = task.encode(["x"], ["x"] if task.pair else None)["input_ids"][0]
        if probe and probe[-1] in task.tokenizer.all_special_ids:
            raise HfTlError("The tokenizer ends every input with a special token, so the last token is not the "
                            "prompt's end; label_likelihood needs a tokenizer that adds no end token.")
        lm_weight, lm_bias = output_embeddings(backbone, model_args)
        ids = label_word_ids(task.tokenizer, words, template)
        weight, bias = lm_weight[ids].float(), None if lm_bias is None else lm_bias[ids].float()
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(torch.zeros_like(head.bias) if bias is None else bias.to(head.bias.dtype))
