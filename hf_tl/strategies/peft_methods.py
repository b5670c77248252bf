"""PEFT strategies (lora, ia3, prompt_tuning, prefix_tuning): the backbone gets a PEFT adapter, the head trains.

Target modules are chosen per architecture so the user never has to name them; ``lora_target_modules`` overrides.
"""

from __future__ import annotations

from abc import abstractmethod

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import Strategy, register, set_trainable

# Attention and feed-forward projections by model_type. Others fall back to peft's own per-architecture tables.
ATTENTION_MODULES = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
MLP_MODULES = {
    "bert": ["intermediate.dense", "output.dense"],
    "roberta": ["intermediate.dense", "output.dense"],
    "distilbert": ["lin1", "lin2"],
    "gpt2": ["c_fc", "mlp.c_proj"],
    "llama": ["gate_proj", "up_proj", "down_proj"],
    "mistral": ["gate_proj", "up_proj", "down_proj"],
    "qwen2": ["gate_proj", "up_proj", "down_proj"],
}

VIRTUAL_TOKENS = ("trained virtual tokens (prompt or prefix tuning), which cannot be merged into a backbone; transfer "
                  "from a full, partial, gradual, LoRA or IA3 run instead")


def lora_targets(model_type: str, include_mlp: bool) -> list[str]:
    """LoRA target modules for an architecture.

    Args:
        model_type: ``config.model_type`` of the backbone.
        include_mlp: Also adapt the feed-forward projections.

    Returns:
        Module name suffixes for ``LoraConfig.target_modules``.

    Raises:
        HfTlError: if the architecture is unknown to hf_tl and to peft.
    """
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    attention = ATTENTION_MODULES.get(model_type) or PEFT_DEFAULTS.get(model_type)
    if not attention:
        raise HfTlError(f"No default LoRA target modules for model type '{model_type}'; name them with "
                        f"lora_target_modules (e.g. 'q_proj,v_proj').")
    return list(attention) + (MLP_MODULES.get(model_type, []) if include_mlp else [])


class PeftStrategy(Strategy):
    """Wrap the backbone with a PEFT config; the adapter and the head train, the rest stays frozen."""

    is_peft = True
    trains_backbone_weights = False

    @abstractmethod
    def peft_config(self, model_type: str):
        """Return the ``peft`` config for this method."""

    def _targets(self, model_type: str) -> list[str] | None:
        if self.args.lora_target_modules:
            return [m.strip() for m in self.args.lora_target_modules.split(",") if m.strip()]
        return None

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import get_peft_model

        model_type = model.backbone.config.model_type
        try:
            model.backbone = get_peft_model(model.backbone, self.peft_config(model_type))
        except ValueError as err:
            raise HfTlError(f"Cannot apply {self.name} to this {model_type} backbone: {err}") from None
        set_trainable(model.heads, True)
        return model

    def describe(self) -> str:
        return f"{self.name}: PEFT adapter on the frozen backbone, plus the head"


@register("lora")
class Lora(PeftStrategy):
    """LoRA on the attention projections (and the MLP with ``peft_include_mlp``)."""

    compare_settings = ("--learning_rate", "5e-4")  # low-rank updates need a larger step than full fine-tuning

    def peft_config(self, model_type: str):
        from peft import LoraConfig, TaskType

        return LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=self.args.lora_r, lora_alpha=self.args.lora_alpha,
                          lora_dropout=self.args.lora_dropout,
                          target_modules=self._targets(model_type) or lora_targets(model_type,
                                                                                   self.args.peft_include_mlp),
                          fan_in_fan_out=model_type == "gpt2")


@register("ia3")
class IA3(PeftStrategy):
    """(IA)^3: learned rescaling of keys, values and feed-forward activations."""

    def peft_config(self, model_type: str):
        from peft import IA3Config, TaskType

        targets = self._targets(model_type)
        return IA3Config(task_type=TaskType.FEATURE_EXTRACTION, target_modules=targets,
                         feedforward_modules=[] if targets else None, fan_in_fan_out=model_type == "gpt2")


@register("prompt_tuning")
class PromptTuning(PeftStrategy):
    """Learned virtual tokens prepended to the input embeddings."""

    # peft drops position ids under prompt tuning, so left padding would shift the real tokens' positions.
    padding_side = "right"
    transferable = False
    transfer_refusal = VIRTUAL_TOKENS

    def peft_config(self, model_type: str):
        from peft import PromptTuningConfig, TaskType

        return PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                  num_virtual_tokens=self.args.num_virtual_tokens)


@register("prefix_tuning")
class PrefixTuning(PeftStrategy):
    """Learned key/value prefixes in every attention layer."""

    transferable = False
    transfer_refusal = VIRTUAL_TOKENS

    def peft_config(self, model_type: str):
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                  num_virtual_tokens=self.args.num_virtual_tokens)
