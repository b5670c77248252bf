"""Text similarity (STS-B style): two texts -> a score, as a cross-encoder or a bi-encoder.

Gold scores are scaled to [0, 1] for training; predictions are scaled back to the data's range.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from hf_tl.config import DataArguments, StrategyArguments
from hf_tl.data.collate import PAIR_SUFFIX
from hf_tl.data.validation import check_columns, check_not_empty, check_scores, check_texts
from hf_tl.heads import CosineHead, RegressionHead
from hf_tl.metrics import Evaluator

# Column names and score ranges of the Hub copies of STS-B, applied when the user kept the defaults.
HUB_PRESETS = {
    "sentence-transformers/stsb": {"label_column": "score", "score_min": 0.0, "score_max": 1.0},
    "glue": {"label_column": "label"},
    "nyu-mll/glue": {"label_column": "label"},
}


class SimilarityTask:
    """Data, head, loss and metric of the text-similarity task.

    Args:
        data: The data settings (columns, score range, architecture).
        tokenizer: The backbone's tokenizer.
        max_length: Maximum tokens per input.
    """

    name = "similarity"
    loss = "mse"

    def __init__(self, data: DataArguments, tokenizer, max_length: int):
        defaults = DataArguments()
        preset = HUB_PRESETS.get(data.dataset_name or "", {})
        overrides = {k: v for k, v in preset.items() if getattr(data, k) == getattr(defaults, k)}
        self.data = replace(data, **overrides) if overrides else data
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.bi_encoder = data.architecture == "bi_encoder"

    # --- data -------------------------------------------------------------------------------------------------
    def prepare_split(self, dataset, split: str):
        """Check a raw split and return it with columns ``text``, ``text_pair`` and ``label`` (scaled to [0, 1]).

        Raises:
            HfTlError: for missing columns, empty splits, missing texts or bad scores.
        """
        d = self.data
        check_not_empty(dataset, split)
        check_columns(dataset, split, {"text_column": d.text_column, "text_pair_column": d.text_pair_column,
                                       "label_column": d.label_column})
        texts, pairs = dataset[d.text_column], dataset[d.text_pair_column]
        check_texts(texts, split, d.text_column)
        check_texts(pairs, split, d.text_pair_column)
        scores = check_scores(dataset[d.label_column], split, d.label_column, d.score_min, d.score_max)
        span = d.score_max - d.score_min
        from datasets import Dataset

        return Dataset.from_dict({"text": [str(t) for t in texts], "text_pair": [str(t) for t in pairs],
                                  "label": [(s - d.score_min) / span for s in scores]})

    def encode(self, texts: list[str], pairs: list[str]) -> dict[str, list]:
        """Tokenize texts and their pairs into model inputs (no padding; the collator pads per batch)."""
        tok, n = self.tokenizer, self.max_length
        if self.bi_encoder:
            first = tok(texts, truncation=True, max_length=n)
            second = tok(pairs, truncation=True, max_length=n)
            out = {"input_ids": first["input_ids"], "attention_mask": first["attention_mask"]}
            out.update({f"{k}{PAIR_SUFFIX}": second[k] for k in ("input_ids", "attention_mask")})
            return out
        if tok.sep_token is None:
            # Decoder tokenizers (GPT-2, LLaMA) join a pair with no separator; mark the boundary with EOS.
            joined = [f"{a}{tok.eos_token}{b}" for a, b in zip(texts, pairs)]
            return dict(tok(joined, truncation=True, max_length=n))
        return dict(tok(texts, pairs, truncation=True, max_length=n))

    def tokenize(self, dataset):
        """Map a prepared split to model inputs plus ``labels``."""

        def fn(batch):
            out = self.encode(batch["text"], batch["text_pair"])
            out["labels"] = batch["label"]
            return out

        return dataset.map(fn, batched=True, remove_columns=dataset.column_names, desc="Tokenizing")

    # --- model ------------------------------------------------------------------------------------------------
    def build_head(self, hidden_size: int, args: StrategyArguments) -> nn.Module:
        """A cosine head for the bi-encoder, a one-output regression head for the cross-encoder."""
        if self.bi_encoder:
            return CosineHead(hidden_size, args.head_type, args.head_hidden_size, args.head_dropout)
        return RegressionHead(hidden_size, args.head_type, args.head_hidden_size, args.head_dropout)

    def evaluator(self) -> Evaluator:
        """Pearson and Spearman correlation; Spearman is primary (the usual STS-B figure)."""
        return Evaluator(["pearsonr", "spearmanr"], primary_metric="spearmanr", greater_is_better=True)

    def to_scores(self, predictions) -> list[float]:
        """Scale model outputs back to the data's score range."""
        span = self.data.score_max - self.data.score_min
        return [float(p) * span + self.data.score_min for p in predictions]
