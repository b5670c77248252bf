"""Language modelling as a task: plain text -> packed rows -> an LM head -> perplexity.

``masked_lm`` (encoders: BERT's masking, optionally of whole words) and ``causal_lm`` (decoders: next-token
prediction) read one text column, and optionally a second (``text_pair_column``, e.g. a pair task's second
sentence), each non-blank text a document: lines of a plain-text file (``.tokens``, ``.raw``), a column of any
dataset hf_tl reads, or a task's own train split (task-adaptive pretraining).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from hf_tl.data.lm_data import LanguageModelingDataset, pack_documents
from hf_tl.data.validation import check_columns, check_not_empty
from hf_tl.errors import HfTlError
from hf_tl.metrics.perplexity import PerplexityEvaluator
from hf_tl.tasks.base import Task

if TYPE_CHECKING:  # annotations only: tasks sit below the config
    from hf_tl.config import DataArguments


class LanguageModelingTask(Task):
    """What masked and causal LM share; a subclass sets ``name`` and ``masked``."""

    pair = False
    masked = True
    loss = "token_cross_entropy"
    column_defaults = {"text_column": "text"}
    token_level = True  # its head reads every token's hidden state, not pooled features
    reads_plain_text = True

    @classmethod
    def resolve(cls, data: DataArguments, raw_splits: dict | None = None) -> DataArguments:
        """Fill the default text column (``text``, what plain-text files give)."""
        if data.text_column is None:
            data = replace(data, text_column="text")
        return data

    @property
    def text_columns(self) -> dict[str, str]:
        columns = {"text_column": self.data.text_column}
        if self.data.text_pair_column:
            columns["text_pair_column"] = self.data.text_pair_column
        return columns

    def prepare_split(self, dataset, split: str):
        """The split's documents: every non-blank text of the text column(s), in order, as column ``text``.

        Raises:
            HfTlError: for a missing column or a split with no text.
        """
        from datasets import Dataset

        check_not_empty(dataset, split)
        check_columns(dataset, split, self.text_columns)
        docs = []
        for column in self.text_columns.values():
            docs.extend(str(v).strip() for v in dataset[column] if v is not None and str(v).strip())
        if not docs:
            raise HfTlError(f"The {split} split has no text in column(s) {', '.join(self.text_columns.values())}; "
                            f"check text_column.")
        return Dataset.from_dict({"text": docs})

    def tokenize(self, dataset):
        """Tokenize the documents and pack them into rows of ``max_length`` tokens (see ``packing``)."""
        from datasets import Dataset
        from tqdm.auto import tqdm

        tok, whole_word = self.tokenizer, self.masked and self.data.whole_word_mask
        docs, starts = [], [] if whole_word else None
        chunks = range(0, len(dataset), 1000)
        for i in tqdm(chunks, desc="Tokenizing documents", leave=False, disable=len(chunks) < 20):
            texts = dataset[i:i + 1000]["text"]
            # A causal LM reads one long stream: special tokens only where the tokenizer adds them to every text
            # (a BOS), and the EOS between documents; a masked LM's rows keep [CLS] ... [SEP] per document.
            encoded = tok(texts, add_special_tokens=True, truncation=False, verbose=False)
            docs.extend(encoded["input_ids"])
            if whole_word:
                for n in range(len(texts)):
                    words = encoded.word_ids(n)
                    starts.append([int(w is not None and (j == 0 or words[j - 1] != w)) for j, w in enumerate(words)])
        separator = [] if self.masked or tok.eos_token_id is None else [tok.eos_token_id]
        rows, row_starts = pack_documents(docs, self.max_length, self.data.packing, separator, starts)
        columns = {"input_ids": rows, "labels": [len(r) for r in rows]}
        if row_starts is not None:
            columns["word_starts"] = row_starts
        return Dataset.from_dict(columns)

    def model_inputs(self, tokenized, split: str, seed: int):
        """The rows as the model reads them: masked afresh each epoch (train) or once (dev), or as their own targets.

        Raises:
            HfTlError: for a masked LM whose tokenizer has no mask token.
        """
        tok = self.tokenizer
        if self.masked and tok.mask_token_id is None:
            raise HfTlError("task masked_lm needs a tokenizer with a mask token (BERT-style); use causal_lm for a "
                            "GPT-style model.")
        d = self.data
        masking = (d.mlm_probability, d.mask_replace_prob, d.random_replace_prob, tok.mask_token_id, len(tok),
                   d.whole_word_mask)
        special = set(tok.all_special_ids) | ({tok.pad_token_id} if tok.pad_token_id is not None else set())
        return LanguageModelingDataset(tokenized, self.masked, special, masking, seed, train=split == "train")

    def split_scores(self, model, prepared, seed: int, batch_size: int = 64):
        """Score a prepared held-out split as the run's evaluation did (the same rows, the same masks).

        Returns:
            ``(predictions, targets)``: each row's summed token loss and predicted tokens, and the tokens per row.
        """
        import torch

        from hf_tl.data.collate import PaddingCollator

        rows = self.model_inputs(self.tokenize(prepared), "validation", seed)
        collate = PaddingCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        device = next(model.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                batch = collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
                batch.pop("labels")
                out.append(model(task=self.name, **{k: v.to(device) for k, v in batch.items()})["predictions"].cpu())
        predictions = torch.cat(out).double().numpy()
        return predictions, predictions[:, 1].copy()

    def build_head(self, hidden_size: int, args, native_style: str | None = None, backbone=None):
        """The backbone family's own LM head (see :func:`hf_tl.lm_head.build_lm_head`)."""
        from hf_tl.lm_head import build_lm_head

        if backbone is None:
            raise HfTlError(f"task {self.name} builds its head from the backbone; build it through hf_tl.builder.")
        return build_lm_head(backbone.model, self.name, backbone.source, load_pretrained=not backbone.random_init)

    def make_loss(self, args):
        return None  # the LM head computes its own token loss

    def evaluator(self) -> PerplexityEvaluator:
        return PerplexityEvaluator()

    def decode(self, predictions) -> list:
        raise HfTlError(f"a {self.name} run predicts no labels; load the model at the run's root with transformers ("
                        f"pipeline('{'fill-mask' if self.masked else 'text-generation'}', model=RUN_DIR)).")


class MaskedLMTask(LanguageModelingTask):
    """Masked language modelling (``masked_lm``), BERT's pretraining objective."""

    name = "masked_lm"
    masked = True


class CausalLMTask(LanguageModelingTask):
    """Causal language modelling (``causal_lm``), GPT's pretraining objective."""

    name = "causal_lm"
    masked = False
