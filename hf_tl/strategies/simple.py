"""The strategies that fix what trains once: frozen (feature extraction) and full."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import LayerwiseStrategy, Strategy, register, set_trainable


@register("frozen")
class Frozen(Strategy):
    """Feature extraction: the backbone is frozen and only the new head trains."""

    trains_backbone_weights = False
    fixed_features = True
    compare_settings = ("--learning_rate", "1e-3")  # a new head alone needs a larger step than fine-tuning

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
