"""Text similarity (STS-B style): two texts -> a score, as a cross-encoder or a bi-encoder.

Gold scores are scaled to [0, 1] for training; predictions are scaled back to the data's range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from hf_tl.data.collate import PAIR_SUFFIX
from hf_tl.data.validation import check_scores
from hf_tl.errors import HfTlError
from hf_tl.heads import CosineHead, RegressionHead
from hf_tl.metrics import Evaluator
from hf_tl.tasks.base import Task

if TYPE_CHECKING:  # annotations only: tasks sit below the config
    from hf_tl.config import StrategyArguments

POSITIVE_SHARE = 0.8  # loss mnrl: by default a pair is a positive from 80% of the score range up (4.0 on STS-B)


class SimilarityTask(Task):
    """Data, head, loss and metric of the text-similarity task."""

    name = "similarity"
    pair = True
    loss = "mse"
    column_defaults = {"text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score"}
    # Column names and score ranges of the Hub copies of STS-B.
    hub_presets = {
        "sentence-transformers/stsb": {"score_min": 0.0, "score_max": 1.0},
        "glue": {"label_column": "label"},
        "nyu-mll/glue": {"label_column": "label"},
    }

    @property
    def bi_encoder(self) -> bool:
        return self.data.architecture == "bi_encoder"

    def labels_of(self, values: list, split: str) -> list[float]:
        """Check the scores' range and scale them to [0, 1]."""
        d = self.data
        scores = check_scores(values, split, d.label_column, d.score_min, d.score_max)
        return [(s - d.score_min) / (d.score_max - d.score_min) for s in scores]

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> dict[str, list]:
        """Tokenize pairs: jointly for a cross-encoder, each text on its own for a bi-encoder."""
        if not self.bi_encoder:
            return super().encode(texts, pairs)
        first = super().encode(texts)
        second = super().encode(pairs)
        out = {k: first[k] for k in ("input_ids", "attention_mask")}
        out.update({f"{k}{PAIR_SUFFIX}": second[k] for k in ("input_ids", "attention_mask")})
        return out

    def build_head(self, hidden_size: int, args: StrategyArguments, native_style: str | None = None,
                   backbone=None) -> nn.Module:
        """A cosine head for the bi-encoder, a one-output regression head for the cross-encoder.

        Raises:
            HfTlError: for ``head_type native`` on a bi-encoder (a sequence-classification head scores one input).
        """
        if self.bi_encoder:
            if args.head_type == "native":
                raise HfTlError("head_type native is a cross-encoder's sequence-classification head; a bi-encoder "
                                "uses head_type none (or linear, mlp).")
            return CosineHead(hidden_size, args.head_type, args.head_hidden_size, args.head_dropout)
        return RegressionHead(hidden_size, args.head_type, args.head_hidden_size, args.head_dropout, native_style)

    def loss_options(self, name: str, args) -> dict:
        """In-batch negatives: the scaled gold score from which a pair is a positive."""
        if name != "mnrl":
            return {}
        d = self.data
        threshold = d.positive_min_score if d.positive_min_score is not None \
            else d.score_min + POSITIVE_SHARE * (d.score_max - d.score_min)
        return {"min_target": (threshold - d.score_min) / (d.score_max - d.score_min)}

    def evaluator(self) -> Evaluator:
        """Pearson and Spearman correlation; Spearman is primary (the usual STS-B figure)."""
        return Evaluator(["pearsonr", "spearmanr"], primary_metric="spearmanr", greater_is_better=True)

    def decode(self, predictions) -> list[float]:
        """Scale model outputs back to the data's score range."""
        span = self.data.score_max - self.data.score_min
        return [float(p) * span + self.data.score_min for p in predictions]
