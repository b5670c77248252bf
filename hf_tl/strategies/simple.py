"""The strategies that fix what trains once: zero_shot, frozen, full."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import (
    LayerwiseStrategy,
    Strategy,
    freeze_model,
    refuse_learned_mix,
    register,
    set_trainable,
)


@register("zero_shot")
class ZeroShot(Strategy):
    """Nothing trains: the pretrained backbone is evaluated as it is.

    Similarity scores pairs by the cosine of their embeddings (a bi-encoder with head_type none); classification
    gets a head built from the label texts (see :mod:`hf_tl.zero_shot`), or an NLI cross-encoder's entailment
    (:mod:`hf_tl.nli`, which runs without a TransferModel).
    """

    trains_backbone_weights = False

    def apply(self, model: nn.Module) -> nn.Module:
        from hf_tl.zero_shot import check_head

        refuse_learned_mix(model, "layer weighted learns its mix of layers, but strategy 'zero_shot' trains nothing")
        for name, head in model.heads.items():
            check_head(name, head, self.args.zero_shot_method)
        return freeze_model(model)

    def init_heads(self, model: nn.Module, tasks: dict, backbone, model_args) -> None:
        from hf_tl.zero_shot import init_head, resolve_method

        for name, task in tasks.items():
            method = resolve_method(self.args.zero_shot_method, task, backbone.is_decoder)
            init_head(model, name, task, method, backbone, model_args)

    def describe(self) -> str:
        return f"zero_shot ({self.args.zero_shot_method}): nothing trains; the pretrained model scores as it is"


@register("frozen")
class Frozen(Strategy):
    """Feature extraction: the backbone is frozen and only the new head trains."""

    trains_backbone_weights = False
    fixed_features = True

    def apply(self, model: nn.Module) -> nn.Module:
        set_trainable(model.backbone, False)
        set_trainable(model.heads, True)
        model.backbone_frozen = True
        if not any(p.requires_grad for p in model.parameters()):
            raise HfTlError("strategy 'frozen' with head_type none leaves nothing to train; use head_type linear or "
                            "mlp, or strategy zero_shot.")
        return model

    def describe(self) -> str:
        return "frozen: backbone frozen, head trains"


@register("full")
class Full(LayerwiseStrategy):
    """Everything trains."""

    def apply(self, model: nn.Module) -> nn.Module:
        set_trainable(model, True)
        return model

    def describe(self) -> str:
        return "full: backbone and head train"
