"""The language-modelling head of a backbone, taken from the family's own ``AutoModelForMaskedLM`` /
``AutoModelForCausalLM`` class, so a pretraining run saves as that class exactly.

When the checkpoint ties its output layer to the input embeddings (BERT, GPT-2, SmolLM2), the head holds no copy of
them: its output layer reads the backbone's embedding matrix at each call. A checkpoint without its pretraining head
(all-MiniLM-L6-v2 ships the encoder alone) gets the class's freshly initialised head, its output tied to the input
embeddings, and the run says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hf_tl.backbone import quiet_transformers
from hf_tl.data.lm_data import IGNORE_INDEX
from hf_tl.errors import HfTlError

OBJECTIVES = {"masked_lm": "AutoModelForMaskedLM", "causal_lm": "AutoModelForCausalLM"}


def lm_class(objective: str):
    """The transformers auto class of ``objective`` (``masked_lm`` or ``causal_lm``)."""
    import transformers

    return getattr(transformers, OBJECTIVES[objective])


class TiedOutput(nn.Module):
    """The output layer of a tied head: logits = hidden @ embeddings.T (+ bias), the embeddings read from the
    backbone at each call (held outside the module tree, so they are trained, saved and counted once, there)."""

    def __init__(self, embeddings: nn.Module, bias: torch.Tensor | None):
        super().__init__()
        object.__setattr__(self, "embeddings", embeddings)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        weight = self.embeddings.weight
        return nn.functional.linear(hidden, weight.to(hidden.dtype), None if self.bias is None else
                                    self.bias.to(hidden.dtype))


class LanguageModelHead(nn.Module):
    """Token-level head: hidden states -> vocabulary logits -> the summed loss of the predicted tokens.

    Args:
        body: The LM class's head module (BERT's ``cls``, GPT-2's ``lm_head``), output layer tied or its own.
        objective: ``masked_lm`` (predict the chosen tokens) or ``causal_lm`` (predict each next token).
        layout: ``{"child": name in the LM class, "out": path of the output layer in it, "tied": bool,
            "bias_alias": path of a second name of the output bias in the LM class, or ""}``.
        note: How the head started (said by the run and kept in its results).
        pretrained: Whether its weights are the checkpoint's (False: new, as the class initialises them).
    """

    token_level = True

    def __init__(self, body: nn.Module, objective: str, layout: dict, note: str, pretrained: bool = False):
        super().__init__()
        self.body = body
        self.objective = objective
        self.layout = layout
        self.note = note
        self.pretrained = pretrained

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.body(hidden)

    def token_losses(self, hidden: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed cross-entropy and the number of predicted tokens of each row.

        Only the predicted positions go through the output layer (a masked LM predicts ~15% of them), which saves
        most of the vocabulary-sized matrix product.

        Args:
            hidden: ``(batch, seq, hidden)`` last hidden states.
            targets: ``(batch, seq)`` token ids, :data:`IGNORE_INDEX` where nothing is predicted; a causal LM's are
                the inputs, shifted here.

        Returns:
            ``(sum of losses per row, predicted tokens per row)``, both ``(batch,)``.
        """
        if self.objective == "causal_lm":
            hidden, targets = hidden[:, :-1], targets[:, 1:]
        keep = targets != IGNORE_INDEX
        rows = keep.nonzero()[:, 0]
        logits = self.body(hidden[keep]).float()
        losses = nn.functional.cross_entropy(logits, targets[keep], reduction="none")
        sums = torch.zeros(targets.shape[0], device=hidden.device, dtype=losses.dtype).index_add(0, rows, losses)
        return sums, keep.sum(1).to(losses.dtype)


def _checkpoint_tensors(source: str, prefix: str) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under ``prefix`` (its LM head's), read from its safetensors file(s); {} if none."""
    from safetensors import safe_open

    folder = Path(source)

    def fetch(name: str) -> Path:  # a Hub checkpoint's file, from the cache the backbone was loaded through
        if folder.is_dir():
            return folder / name
        from transformers.utils import cached_file

        found = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
        return Path(found) if found else folder / name

    files = [fetch("model.safetensors")]
    index = fetch("model.safetensors.index.json")
    if index.is_file():
        files = [fetch(f) for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    tensors = {}
    for file in files:
        if file.is_file():
            with safe_open(str(file), framework="pt") as f:
                tensors.update({k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)})
    return tensors


def build_lm_head(backbone: nn.Module, objective: str, source: str, load_pretrained: bool = True
                  ) -> LanguageModelHead:
    """The family's LM head for ``backbone``: the checkpoint's own when it has one, else a new one tied to the input
    embeddings.

    Args:
        backbone: The bare transformer (``AutoModel``).
        objective: ``masked_lm`` or ``causal_lm``.
        source: Where the backbone's weights came from (a folder or Hub id), to read its LM head from.
        load_pretrained: Read the checkpoint's head (off for a model trained from scratch).

    Raises:
        HfTlError: when the family has no such LM class, or its head has more than one part.
    """
    config = backbone.config
    try:
        with quiet_transformers():
            lm = lm_class(objective).from_config(config)
    except ValueError:
        raise HfTlError(f"model type '{config.model_type}' has no {OBJECTIVES[objective]} class, so it cannot "
                        f"train task {objective}; use " + ("causal_lm" if objective == "masked_lm" else "masked_lm")
                        + " or another checkpoint.") from None
    children = [(n, m) for n, m in lm.named_children() if n != lm.base_model_prefix]
    if len(children) != 1:
        raise HfTlError(f"the {type(lm).__name__} head has several parts ({', '.join(n for n, _ in children)}), which "
                        f"hf_tl does not assemble; pretrain a BERT-, RoBERTa-, GPT-2- or LLaMA-style model.")
    child_name, body = children[0]
    out = lm.get_output_embeddings()
    out_path = next(n for n, m in body.named_modules() if m is out)
    tied = bool(getattr(config, "tie_word_embeddings", True)) and out.weight.shape == \
        backbone.get_input_embeddings().weight.shape
    parent_path, _, leaf = out_path.rpartition(".")
    parent = body.get_submodule(parent_path) if leaf else None
    # BERT-style heads hold the output bias twice (``predictions.bias`` is ``predictions.decoder.bias``): one name.
    alias = f"{parent_path}.bias" if parent is not None and isinstance(parent._parameters.get("bias"), nn.Parameter) \
        else ""
    if tied:
        replacement = TiedOutput(backbone.get_input_embeddings(), out.bias)
        if parent is None:
            body = replacement
        else:
            if alias:
                del parent._parameters["bias"]
            setattr(parent, leaf, replacement)
    layout = {"child": child_name, "out": out_path, "tied": tied, "bias_alias": alias}
    found = _checkpoint_tensors(source, f"{child_name}.") if load_pretrained else {}
    if tied:
        found.pop(f"{out_path}.weight" if out_path else "weight", None)
    if alias and alias in found:
        found[f"{out_path}.bias"] = found.pop(alias)
    tied_only = tied and load_pretrained and not any(True for _ in body.parameters())  # nothing but the embeddings
    if found:
        result = body.load_state_dict(found, strict=False)
        if result.missing_keys:
            raise HfTlError(f"the checkpoint '{source}' holds part of its {OBJECTIVES[objective]} head (missing "
                            f"{result.missing_keys[:3]}); restore the checkpoint.")
        note = f"the checkpoint's own {objective.replace('_', '-')} head"
    elif tied_only:
        note = "the checkpoint's own output layer: its input embeddings (tied)"
    else:
        what = "its output tied to the input embeddings" if tied else "its output layer new"
        kind = objective.replace("_", "-")
        note = (f"a new {kind} head ({what}), as the model trains from scratch" if not load_pretrained else
                f"no {kind} head in the checkpoint, so a new one ({what}, the rest initialised as "
                f"{type(lm).__name__} does)")
    return LanguageModelHead(body, objective, layout, note, pretrained=bool(found) or tied_only)


def standard_lm(backbone: nn.Module, head: LanguageModelHead) -> nn.Module:
    """The LM class holding ``backbone`` and ``head`` exactly (what a pretraining run saves at its root).

    Raises:
        HfTlError: if the weights do not fit the class.
    """
    with quiet_transformers():
        lm = lm_class(head.objective).from_config(backbone.config, dtype=next(backbone.parameters()).dtype)
    result = lm.base_model.load_state_dict(backbone.state_dict(), strict=False)
    body = getattr(lm, head.layout["child"])
    state = head.body.state_dict()
    loaded = body.load_state_dict(state, strict=False)
    expected_missing = {f"{head.layout['out']}.weight".lstrip(".")} if head.layout["tied"] else set()
    missing = set(loaded.missing_keys) - expected_missing - {head.layout["bias_alias"]}
    if result.missing_keys or result.unexpected_keys or missing or loaded.unexpected_keys:
        raise HfTlError(f"the weights do not fit {type(lm).__name__} (missing {sorted(result.missing_keys)[:3]} "
                        f"{sorted(missing)[:3]}, unexpected {result.unexpected_keys[:3]} "
                        f"{loaded.unexpected_keys[:3]})")
    if head.layout["tied"]:
        lm.tie_weights()
    return lm
