"""Which hidden layers become a text's features: the last, the second-to-last, or a mix of several.

Works on tensors only. The backbone's layers are pooled one by one into a ``(batch, n_layers, hidden)`` stack and
then combined. Pooling (first, mean or last real token) and every combination here are linear, so pooling each layer
and then combining gives the same vector as combining per token and then pooling; the stack is also what the feature
cache stores.
"""

from __future__ import annotations

import torch
from torch import nn

from hf_tl.choices import LAYER_CHOICES
from hf_tl.errors import HfTlError


def layers_needed(choice: str, num_hidden_layers: int) -> list[int]:
    """Indices into the backbone's ``hidden_states`` (0 = embeddings, -1 = last block) that a choice reads.

    Args:
        choice: One of :data:`LAYER_CHOICES`.
        num_hidden_layers: Transformer blocks of the backbone.

    Returns:
        Negative indices, bottom first.

    Raises:
        HfTlError: for an unknown choice or a backbone too shallow for it.
    """
    needed = {"last": 1, "second_to_last": 2, "mean_last4": 4, "concat_last4": 4,
              "weighted": num_hidden_layers + 1}.get(choice)
    if needed is None:
        raise HfTlError(f"Unknown layer '{choice}'; choose one of {', '.join(LAYER_CHOICES)}.")
    if needed > num_hidden_layers + 1:
        raise HfTlError(f"layer {choice} needs {needed} hidden layers but the backbone has {num_hidden_layers} blocks "
                        f"(plus embeddings); choose last or second_to_last.")
    if choice == "second_to_last":
        return [-2]
    return list(range(-needed, 0))


def feature_size(choice: str, hidden_size: int) -> int:
    """The width of the combined features: four times the hidden size for ``concat_last4``."""
    return 4 * hidden_size if choice == "concat_last4" else hidden_size


def combine_layers(stack: torch.Tensor, choice: str) -> torch.Tensor:
    """Combine a ``(batch, n_layers, hidden)`` stack of pooled layers into features.

    ``weighted`` keeps the stack: each task's head mixes it with weights of its own (:class:`LayerMix`).

    Returns:
        ``(batch, feature_size)`` features, or the stack unchanged for ``weighted``.
    """
    if choice in ("last", "second_to_last"):
        return stack[:, -1]
    if choice == "mean_last4":
        return stack.mean(dim=1)
    if choice == "concat_last4":
        return stack.flatten(1)
    return stack


class LayerMix(nn.Module):
    """A learned weighted sum of all layers (ELMo's scalar mix): softmax-normalised weights times a scale.

    Args:
        num_layers: Layers in the stack (blocks + embeddings).
    """

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        """``(batch, num_layers, hidden)`` -> ``(batch, hidden)``."""
        mix = torch.softmax(self.weights, dim=0).to(stack.dtype)
        return self.scale.to(stack.dtype) * torch.einsum("l,blh->bh", mix, stack)


class MixedHead(nn.Module):
    """A task head that first mixes the layer stack with its own :class:`LayerMix` (``layer: weighted``).

    Args:
        mix: The layer mix.
        head: The task's head, taking one (or, for a bi-encoder's cosine head, two) feature tensors.
    """

    def __init__(self, mix: LayerMix, head: nn.Module):
        super().__init__()
        self.mix = mix
        self.head = head

    def forward(self, *stacks: torch.Tensor) -> torch.Tensor:
        """Mix each input's stack, then score with the inner head."""
        return self.head(*(self.mix(s) for s in stacks))

    def embed(self, stack: torch.Tensor) -> torch.Tensor:
        """A cosine head's embedding of one input's mixed stack."""
        return self.head.embed(self.mix(stack))
