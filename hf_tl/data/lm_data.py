"""Language-modelling data: documents packed into fixed-length rows, and the masking of masked-LM pretraining.

Masks are drawn per row from ``(seed, epoch, row)``, so every epoch masks afresh (RoBERTa's dynamic masking) while a
resumed run, or the same run split over several processes, masks every row exactly as one uninterrupted process.
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE_INDEX = -100  # the target of a token that is not predicted (cross-entropy's ignore_index)
LM_LABELS = "lm_labels"  # the batch key of per-token targets (``labels`` stays one value per row)


def pack_documents(documents: list[list[int]], max_length: int, packing: str, separator: list[int],
                   word_starts: list[list[int]] | None = None) -> tuple[list[list[int]], list[list[int]] | None]:
    """Cut tokenized documents into rows of at most ``max_length`` tokens.

    Args:
        documents: Token ids per document (with the tokenizer's special tokens, if any).
        max_length: Tokens per row.
        packing: ``concat``: documents joined (``separator`` after each) and cut into full rows, so a row may span a
            boundary; ``chunk``: each document cut into rows on its own (no row mixes two documents); ``none``: one
            row per document, truncated.
        separator: Token ids put after each document with ``concat`` (e.g. the EOS token), or none.
        word_starts: Per document, 1 where a token starts a word (whole-word masking), cut alongside.

    Returns:
        ``(rows, word starts per row or None)``.
    """
    rows, starts = [], [] if word_starts is not None else None

    def cut(ids, flags):
        for i in range(0, len(ids), max_length):
            rows.append(ids[i:i + max_length])
            if starts is not None:
                starts.append(flags[i:i + max_length])

    if packing == "concat":
        ids, flags = [], []
        for n, doc in enumerate(documents):
            ids.extend(doc)
            ids.extend(separator)
            if starts is not None:
                flags.extend(word_starts[n])
                flags.extend([1] * len(separator))
        full = len(ids) // max_length * max_length or len(ids)  # the ragged tail is dropped, as in run_mlm/run_clm
        cut(ids[:full], flags[:full] if starts is not None else None)
    else:
        for n, doc in enumerate(documents):
            flags = word_starts[n] if starts is not None else None
            if packing == "none":
                doc, flags = doc[:max_length], flags[:max_length] if flags is not None else None
            cut(doc, flags)
    return rows, starts


def mask_tokens(ids: np.ndarray, candidates: np.ndarray, rng: np.random.Generator, probability: float,
                mask_replace_prob: float, random_replace_prob: float, mask_id: int, vocab_size: int,
                word_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking of one row: each candidate token (or whole word) is chosen with ``probability``; of the chosen,
    ``mask_replace_prob`` become the mask token, ``random_replace_prob`` a random token, the rest stay as they are.

    Args:
        ids: The row's token ids.
        candidates: True where a token may be chosen (not a special or padding token).
        rng: The row's random generator.
        probability: Share of tokens (or words) predicted.
        mask_replace_prob, random_replace_prob: Shares of the chosen tokens replaced by the mask / a random token.
        mask_id: The mask token's id.
        vocab_size: Random replacements are drawn from ``[0, vocab_size)``.
        word_starts: 1 where a token starts a word: a word's tokens are chosen together (whole-word masking).

    Returns:
        ``(input ids, targets)``: targets hold the original id where chosen, :data:`IGNORE_INDEX` elsewhere.
    """
    if word_starts is None:
        chosen = (rng.random(len(ids)) < probability) & candidates
    else:
        word = np.cumsum(word_starts) - 1  # the word each token belongs to
        picked = rng.random(int(word[-1]) + 1 if len(word) else 0) < probability
        chosen = picked[np.maximum(word, 0)] & candidates
    targets = np.where(chosen, ids, IGNORE_INDEX)
    action = rng.random(len(ids))
    inputs = ids.copy()
    inputs[chosen & (action < mask_replace_prob)] = mask_id
    randomised = chosen & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    inputs[randomised] = rng.integers(0, vocab_size, int(randomised.sum()))
    return inputs, targets


class LanguageModelingDataset(torch.utils.data.Dataset):
    """Packed rows as model inputs: masked (masked LM) or as their own targets (causal LM).

    Args:
        rows: The tokenized split (``input_ids``, ``attention_mask``, optionally ``word_starts``).
        masked: Masked LM (else causal LM: the model shifts the targets itself).
        special_ids: Token ids never chosen for masking.
        masking: ``(probability, mask_replace_prob, random_replace_prob, mask_id, vocab_size, whole_word)``.
        seed: The run's seed.
        train: Train rows are masked afresh every epoch; dev rows the same way every time, so perplexities compare.
    """

    def __init__(self, rows, masked: bool, special_ids: set[int], masking: tuple, seed: int, train: bool):
        self.ids = [np.asarray(r, dtype=np.int64) for r in rows["input_ids"]]
        self.word_starts = [np.asarray(w) for w in rows["word_starts"]] if "word_starts" in rows.column_names \
            else None
        self.masked, self.masking, self.seed, self.train = masked, masking, seed, train
        self.special = np.asarray(sorted(special_ids), dtype=np.int64)
        self.epoch = 0
        self.lengths = [len(r) for r in self.ids]

    def set_epoch(self, epoch: int) -> None:
        """Called by Accelerate's dataloader at the start of each pass over the train rows."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        ids = self.ids[i]
        if self.masked:
            probability, mask_rate, random_rate, mask_id, vocab, whole_word = self.masking
            rng = np.random.default_rng((self.seed, self.epoch if self.train else 0, i))
            inputs, targets = mask_tokens(ids, ~np.isin(ids, self.special), rng, probability, mask_rate, random_rate,
                                          mask_id, vocab, self.word_starts[i] if whole_word else None)
        else:
            inputs, targets = ids, ids
        return {"input_ids": inputs.tolist(), "attention_mask": [1] * len(ids), LM_LABELS: targets.tolist(),
                "labels": int((targets != IGNORE_INDEX).sum())}
