"""Feature-based transfer: write a backbone's embeddings of a dataset to Parquet or NumPy, for use as the inputs of
another model.

``hf-tl embed --model_name_or_path M --input FILE --text_column COL --output OUT.parquet|OUT.npy`` with the
model options of a run (``layer``, ``pooling``, ``max_length``, ``gguf_file`` ...), or ``--run DIR`` to embed with a
finished run's backbone (fine-tuned weights or adapter) and its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from hf_tl.errors import HfTlError
from hf_tl.predict_io import check_output_file
from hf_tl.safe_io import atomic_file, write_guard

OUTPUT_FORMATS = (".parquet", ".npy")


@dataclass
class EmbedArguments:
    """What to embed and where to write it."""

    input: str = field(metadata={"help": "CSV/TSV (with header) or JSONL file of rows."})
    output: str = field(metadata={"help": "OUT.parquet (the rows plus an 'embedding' column) or OUT.npy (an array)."})
    text_column: str = field(default="sentence", metadata={"help": "Column holding the text to embed."})
    run: Optional[str] = field(
        default=None, metadata={"help": "Embed with a finished run's backbone and model settings instead."}
    )
    batch_size: int = field(default=64, metadata={"help": "Texts per forward pass."})
    normalize: bool = field(default=False, metadata={"help": "Scale each embedding to unit length."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})

    def __post_init__(self):
        if Path(self.output).suffix.lower() not in OUTPUT_FORMATS:
            raise HfTlError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got '{self.output}'.")
        check_output_file(self.output, self.overwrite, protected=[self.input])
        if self.batch_size <= 0:
            raise HfTlError(f"batch_size must be > 0, got {self.batch_size}.")


def _model_for(model_args, run: str | None):
    """The model whose backbone embeds (its heads are not used), its tokenizer and its max length.

    A checkpoint is assembled by :func:`hf_tl.builder.build`, as for training; a run is loaded with its own settings.
    """
    if run is not None:
        from hf_tl.predict import load_run

        loaded = load_run(run, device="cpu", trust_remote_code=model_args.trust_remote_code)
        return loaded.model, loaded.tokenizer, loaded.config.model.max_length
    from hf_tl.builder import build
    from hf_tl.run_config import RunConfig

    built = build(RunConfig(model=model_args), apply_strategy=False)
    return built.model.eval(), built.backbone.tokenizer, model_args.max_length


def embed_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
                normalize: bool = False) -> np.ndarray:
    """Embed texts with a model's backbone, pooling and layer choice.

    Args:
        model: A :class:`hf_tl.model.TransferModel` (its heads are not used).
        tokenizer: Its tokenizer.
        texts: The texts.
        max_length: Tokens per text.
        batch_size: Texts per forward pass (batches are sorted by length, so little padding).
        normalize: Scale each embedding to unit length.

    Returns:
        ``(len(texts), feature_size)`` float32, or ``(len(texts), layers, hidden)`` for ``layer: weighted`` (every
        layer, for a downstream model to learn the mix).
    """
    from datasets import Dataset

    from hf_tl.data import PaddingCollator
    from hf_tl.feature_cache import compute_features
    from hf_tl.layer_select import combine_layers
    from hf_tl.model import FEATURES_KEY

    tokenized = Dataset.from_dict(dict(tokenizer(texts, truncation=True, max_length=max_length)))
    collate = PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side)
    device = next(model.parameters()).device
    stack = compute_features(model, tokenized, collate, batch_size, device)[FEATURES_KEY]
    out = combine_layers(torch.from_numpy(stack), model.layer)
    if normalize:
        out = torch.nn.functional.normalize(out, dim=-1)
    return out.numpy()


def embed_file(model_args, args: EmbedArguments) -> Path:
    """Embed the ``text_column`` of a file and write the result (see :class:`EmbedArguments`).

    Returns:
        The output path.

    Raises:
        HfTlError: for a missing file or column, an empty text, or an unwritable output.
    """
    from hf_tl.predict_io import read_rows

    rows = read_rows(args.input)
    if not rows:
        raise HfTlError(f"'{args.input}' has no rows to embed.")
    if args.text_column not in rows[0]:
        raise HfTlError(f"Column '{args.text_column}' is not in '{args.input}'; it has: {', '.join(rows[0])}. Set "
                        f"--text_column.")
    texts = []
    for i, row in enumerate(rows):
        text = row.get(args.text_column)
        if not isinstance(text, str) or not text.strip():
            raise HfTlError(f"Row {i + 1} of '{args.input}' has no text in column '{args.text_column}'.")
        texts.append(text)
    model, tokenizer, max_length = _model_for(model_args, args.run)
    embeddings = embed_texts(model, tokenizer, texts, max_length, args.batch_size, args.normalize)
    out = Path(args.output)
    fix = "free space (or choose another --output) and run the command again"
    with write_guard(out, fix):
        out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out, fix) as tmp:  # written whole, then renamed: a reader never sees part of it
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, embeddings)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(rows)
            table = table.append_column("embedding", pa.array(list(embeddings.reshape(len(rows), -1))))
            metadata = {b"hf_tl.embedding_shape": str(list(embeddings.shape[1:])).encode(),
                        b"hf_tl.layer": model.layer.encode(), b"hf_tl.pooling": model.pooling.encode()}
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata}), tmp)
    return out
