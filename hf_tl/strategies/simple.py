"""The strategies that fix what trains once: zero_shot, frozen, full."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import LayerwiseStrategy, Strategy, register, set_trainable


@register("zero_shot")
class ZeroShot(Strategy):
    """Nothing trains: the pretrained backbone is evaluated as it is (a bi-encoder with a plain cosine head)."""

    trains_backbone_weights = False

    def apply(self, model: nn.Module) -> nn.Module:
        if model.layer == "weighted":
            raise HfTlError("layer weighted learns its mix of layers, but strategy 'zero_shot' trains nothing; "
                            "choose layer last, second_to_last, mean_last4 or concat_last4.")
        if not model.is_bi_encoder or any(True for _ in model.heads.parameters()):
            raise HfTlError("strategy 'zero_shot' needs architecture bi_encoder with head_type none (an untrained "
                            "head would score at random).")
        set_trainable(model, False)
        model.backbone_frozen = True
        return model

    def describe(self) -> str:
        return "zero_shot: nothing trains; the pretrained backbone scores by cosine similarity"


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
