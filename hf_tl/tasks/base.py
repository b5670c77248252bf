"""What every task shares: column defaults, checks of the raw text columns, tokenizing one text or a pair."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from hf_tl.data.validation import check_columns, check_not_empty, check_texts
from hf_tl.errors import HfTlError
from hf_tl.metrics import Evaluator

if TYPE_CHECKING:  # annotations only: tasks sit below the config
    from hf_tl.config import DataArguments


class Task:
    """Base of the tasks: data + head + loss + metric.

    A subclass sets ``pair`` (one text or two), ``loss``, ``column_defaults`` and ``hub_presets``, and implements
    :meth:`labels_of`, :meth:`build_head`, :meth:`evaluator` and :meth:`decode`.

    Args:
        data: The data settings; defaults the user left are filled by :meth:`resolve` (label names need the data,
            so a classification task also needs them resolved, as a run's ``config.yaml`` has them).
        tokenizer: The backbone's tokenizer.
        max_length: Maximum tokens per input.
    """

    name = "task"
    pair = True
    loss = "mse"
    column_defaults: dict = {}
    hub_presets: dict = {}  # {dataset name: {option: value}}, applied where the user kept the default
    reads_plain_text = False  # whether a .txt file is plain text (one document a line) rather than tab-separated

    def __init__(self, data: DataArguments, tokenizer, max_length: int):
        self.data = self.resolve(data)
        self.tokenizer = tokenizer
        self.max_length = max_length

    # --- settings ---------------------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, data: DataArguments, raw_splits: dict | None = None) -> DataArguments:
        """Fill what the user left to the task: default columns, Hub presets (and, for labels, the label names).

        Args:
            data: The data settings as configured.
            raw_splits: The raw splits (unused here; subclasses read labels from them).

        Returns:
            The settings a run records in its ``config.yaml``, so prediction needs no data.
        """
        defaults = type(data)()
        preset = {**cls.column_defaults, **cls.hub_presets.get(data.dataset_name or "", {})}
        changes = {k: v for k, v in preset.items() if getattr(data, k) == getattr(defaults, k)}
        if not cls.pair and data.text_pair_column is not None:
            raise HfTlError(f"task {data.task} reads one text, but text_pair_column is set "
                            f"('{data.text_pair_column}'); use task pair_classification for pairs, or drop it.")
        return replace(data, **changes) if changes else data

    @classmethod
    def needs_data(cls, data: DataArguments) -> bool:
        """Whether :meth:`resolve` must read the data before the head can be built."""
        return False

    @property
    def text_columns(self) -> dict[str, str]:
        """``{option: column}`` of the text columns this task reads."""
        columns = {"text_column": self.data.text_column}
        if self.pair:
            columns["text_pair_column"] = self.data.text_pair_column
        return columns

    # --- data -------------------------------------------------------------------------------------------------
    def prepare_split(self, dataset, split: str):
        """Check a raw split and return it with columns ``text`` (``text_pair`` for pairs) and ``label``.

        Raises:
            HfTlError: for missing columns, empty splits, missing texts or bad labels.
        """
        from datasets import Dataset

        check_not_empty(dataset, split)
        check_columns(dataset, split, {**self.text_columns, "label_column": self.data.label_column})
        out = {}
        for key, (option, column) in zip(("text", "text_pair"), self.text_columns.items()):
            values = dataset[column]
            check_texts(values, split, column, option)
            out[key] = [str(v) for v in values]
        out["label"] = self.labels_of(dataset[self.data.label_column], split)
        return Dataset.from_dict(out)

    def labels_of(self, values: list, split: str) -> list:
        """Check the raw label column and return training targets."""
        raise NotImplementedError

    def apply_template(self, texts: list[str], pairs: list[str] | None = None) -> tuple[list[str], list | None]:
        """Wrap inputs in ``prompt_template`` (if set); a template naming ``{text_pair}`` joins a pair into one text.

        Returns:
            ``(texts, pairs)``, pairs ``None`` once joined.
        """
        template = self.data.prompt_template
        if template is None:
            return texts, pairs
        # str.replace, not format: the texts and the template may hold other braces.
        if pairs is not None and "{text_pair}" in template:
            return [template.replace("{text}", a).replace("{text_pair}", b) for a, b in zip(texts, pairs)], None
        return [template.replace("{text}", a) for a in texts], pairs

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> dict[str, list]:
        """Tokenize texts (and their pairs) into model inputs; the collator pads per batch."""
        tok, n = self.tokenizer, self.max_length
        texts, pairs = self.apply_template(texts, pairs)
        if pairs is None:
            return dict(tok(texts, truncation=True, max_length=n))
        if tok.sep_token is None:
            # Decoder tokenizers (GPT-2, LLaMA) join a pair with no separator; mark the boundary with EOS.
            joined = [f"{a}{tok.eos_token}{b}" for a, b in zip(texts, pairs)]
            return dict(tok(joined, truncation=True, max_length=n))
        return dict(tok(texts, pairs, truncation=True, max_length=n))

    def tokenize(self, dataset):
        """Map a prepared split to model inputs plus ``labels``."""

        def fn(batch):
            out = self.encode(batch["text"], batch.get("text_pair"))
            out["labels"] = batch["label"]
            return out

        return dataset.map(fn, batched=True, remove_columns=dataset.column_names, desc="Tokenizing")

    # --- model and metrics ------------------------------------------------------------------------------------
    def build_head(self, hidden_size: int, args, native_style: str | None = None, backbone=None):
        """Return the task's new head for ``hidden_size`` features (``native_style``: see
        :class:`hf_tl.heads.NativeHead`, for ``head_type native``; ``backbone``: the loaded
        :class:`hf_tl.backbone.Backbone`, for heads built from it)."""
        raise NotImplementedError

    def model_inputs(self, tokenized, split: str, seed: int):
        """The tokenized split as the model reads it (a language-modelling task masks it here); as it is by default."""
        return tokenized

    def make_loss(self, args):
        """The loss this task trains with: its ``loss`` setting, or the task's own (``auto``).

        Args:
            args: The strategy settings (``label_smoothing``).

        Returns:
            A :class:`hf_tl.losses.Loss`.
        """
        from hf_tl.losses import Loss

        name = self.loss if self.data.loss == "auto" else self.data.loss
        return Loss(name, **self.loss_options(name, args))

    def loss_options(self, name: str, args) -> dict:
        """Keyword settings of loss ``name`` that this task's settings fix."""
        return {}

    def evaluator(self) -> Evaluator:
        """Return the task's :class:`Evaluator`."""
        raise NotImplementedError

    def decode(self, predictions) -> list:
        """Turn model outputs into user-facing predictions (scores, label names)."""
        raise NotImplementedError
