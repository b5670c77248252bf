"""Text classification: one text (sentiment) or a pair of texts (paraphrase, entailment) -> one of N labels.

Label names are resolved once, from the configured ``label_names`` or the data, and recorded in the run's
config, so predictions come back as names and a label the run never saw is an error, not a silent new class.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from hf_tl.data.labels import label_key
from hf_tl.errors import HfTlError
from hf_tl.heads import ClassificationHead
from hf_tl.metrics import Evaluator
from hf_tl.tasks.base import Task

if TYPE_CHECKING:  # annotations only: tasks sit below the config
    from hf_tl.config import DataArguments, StrategyArguments

MAX_AUTO_LABELS = 100  # more distinct values than this in a label column is a mixed-up column mapping


def _label_names_from(dataset, column: str) -> list[str]:
    feature = dataset.features.get(column)
    if getattr(feature, "names", None):  # a Hub ClassLabel column knows its names
        return list(feature.names)
    keys = {label_key(v) for v in dataset[column]} - {None}
    if len(keys) > MAX_AUTO_LABELS:
        raise HfTlError(f"Label column '{column}' has {len(keys)} distinct values, which looks like text or "
                        f"scores, not labels; check label_column (or give label_names).")
    if all(k.lstrip("-").isdigit() for k in keys):
        return [str(k) for k in sorted(int(k) for k in keys)]
    return sorted(keys)


def _check_named_labels_occur(data: DataArguments, train) -> None:
    """Refuse ``label_names`` that name a class the train data never has: its head output would never learn, and
    F1 would silently average over it (macro instead of binary).

    Raises:
        HfTlError: naming the label, the option and the fix.
    """
    if data.label_column not in train.column_names:
        return  # prepare_split names the missing column
    keys = {label_key(v) for v in train[data.label_column]} - {None}
    known = set(data.label_names) | {str(i) for i in range(len(data.label_names))}
    if not keys <= known:
        return  # a label the names lack, or a column of text: prepare_split names the row
    for i, name in enumerate(data.label_names):
        if name not in keys and str(i) not in keys:
            held = ", ".join(sorted(keys))
            raise HfTlError(f"label_names has {len(data.label_names)} labels but '{name}' never occurs in the train "
                            f"data's column '{data.label_column}' (it holds {held}); drop '{name}' from label_names, "
                            f"or add train rows with it.")


class ClassificationTask(Task):
    """Single-text classification (``classification``), e.g. SST-2 sentiment."""

    name = "classification"
    pair = False
    loss = "cross_entropy"
    column_defaults = {"text_column": "sentence", "label_column": "label"}

    @classmethod
    def resolve(cls, data: DataArguments, raw_splits: dict | None = None) -> DataArguments:
        """Fill default columns and read the label names from the train split (or dev) when not given.

        Raises:
            HfTlError: for a label column that is missing, looks like text, or has fewer than two labels.
        """
        data = super().resolve(data, raw_splits)
        if data.label_names is None and raw_splits:
            split = "train" if "train" in raw_splits else "validation"
            dataset = raw_splits[split]
            if data.label_column not in dataset.column_names:
                return data  # prepare_split names the missing column
            names = _label_names_from(dataset, data.label_column)
            if len(names) < 2:
                raise HfTlError(f"The {split} data has only the label {names} in column '{data.label_column}'; "
                                f"classification needs at least two (or set label_names).")
            data = replace(data, label_names=names)
        elif data.label_names is not None and raw_splits and "train" in raw_splits:
            _check_named_labels_occur(data, raw_splits["train"])
        return data

    @classmethod
    def needs_data(cls, data: DataArguments) -> bool:
        """The head's size is the number of labels: the data must be read unless label_names are given."""
        return data.label_names is None

    @property
    def label_names(self) -> list[str]:
        if not self.data.label_names:
            raise HfTlError("The label names are not known yet; resolve the data settings first.")
        return self.data.label_names

    def label_texts(self) -> list[str]:
        """The text that stands for each label (zero-shot): ``label_descriptions``, else the label names.

        Raises:
            HfTlError: when the number of descriptions is not the number of labels.
        """
        names = self.label_names
        texts = self.data.label_descriptions or names
        if len(texts) != len(names):
            raise HfTlError(f"label_descriptions has {len(texts)} entries for the {len(names)} labels "
                            f"({', '.join(names)}); give one per label, in that order.")
        return list(texts)

    def label_id(self, value) -> int | None:
        """The id of a raw label: by name, else an integer index into the names; None if unknown."""
        key = label_key(value)
        names = self.label_names
        if key in names:
            return names.index(key)
        if key is not None and key.isdigit() and int(key) < len(names):
            return int(key)
        return None

    def labels_of(self, values: list, split: str) -> list[int]:
        """Map raw labels to ids.

        Raises:
            HfTlError: for a missing label or one the run does not know, naming its row.
        """
        ids = []
        for i, value in enumerate(values):
            label = self.label_id(value)
            if label is None:
                what = "no label" if label_key(value) is None else f"label {value!r}"
                raise HfTlError(f"Row {i + 1} of the {split} data has {what} in column '{self.data.label_column}', "
                                f"which is not one of the run's labels ({', '.join(self.label_names)}); fix the row "
                                f"or set label_names.")
            ids.append(label)
        return ids

    def build_head(self, hidden_size: int, args: StrategyArguments, native_style: str | None = None,
                   backbone=None) -> nn.Module:
        """A classification head with one logit per label."""
        return ClassificationHead(hidden_size, len(self.label_names), args.head_type, args.head_hidden_size,
                                  args.head_dropout, native_style)

    def loss_options(self, name: str, args) -> dict:
        """Cross-entropy takes the run's label smoothing."""
        return {"label_smoothing": args.label_smoothing} if name == "cross_entropy" else {}

    def evaluator(self) -> Evaluator:
        """Accuracy (primary) and F1: of the second label for two labels (GLUE's MRPC F1), macro otherwise."""
        average = "binary" if len(self.label_names) == 2 else "macro"
        return Evaluator(["accuracy", "f1"], primary_metric="accuracy", greater_is_better=True,
                         compute_kwargs={"f1": {"average": average}})

    def decode(self, predictions) -> list[str]:
        """Turn ``(n, num_labels)`` logits into label names."""
        return [self.label_names[i] for i in np.asarray(predictions).argmax(-1).tolist()]


class PairClassificationTask(ClassificationTask):
    """Sentence-pair classification (``pair_classification``), e.g. MRPC paraphrase or NLI."""

    name = "pair_classification"
    pair = True
    column_defaults = {"text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "label"}
