"""The ``setfit`` strategy: few-shot SetFit as two chained runs (see :mod:`hf_tl.few_shot`)."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import Strategy, register


@register("setfit")
class SetFit(Strategy):
    """Contrastive fine-tuning of the backbone as a bi-encoder, then a scikit-learn head on its embeddings.

    ``hf_tl.train`` runs it as a body run (strategy ``full`` on generated pairs) and a ``features`` run on that
    body, so this class only names the strategy; it is never applied to a model itself.
    """

    def apply(self, model: nn.Module) -> nn.Module:
        raise HfTlError("strategy 'setfit' runs as two chained runs (a contrastive body, then a features head); "
                        "train it with a recipe or hf_tl.train, which run both.")

    def describe(self) -> str:
        return ("setfit: the backbone trains contrastively on pairs of the examples (OUTPUT-body), then a "
                f"scikit-learn {self.args.sklearn_head} head is fitted on its embeddings")
