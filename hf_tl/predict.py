"""Load a finished run directory and predict with it: ``hf_tl.load_run(path).predict(pairs)``."""

from __future__ import annotations

from pathlib import Path

import torch

from hf_tl.builder import build
from hf_tl.config_io import load_config
from hf_tl.data import PaddingCollator
from hf_tl.errors import HfTlError
from hf_tl.run_dir import ADAPTER_DIR, BACKBONE_DIR, CONFIG_FILE, HEAD_FILE, TOKENIZER_DIR, load_head


class Run:
    """A trained run, ready to predict. A PEFT run loads and predicts exactly like a fully fine-tuned one.

    Args:
        path: The run directory.
        device: Torch device for inference (default: CUDA if available, else CPU).
    """

    def __init__(self, path: str | Path, device: str | None = None):
        self.path = Path(path)
        if not (self.path / CONFIG_FILE).is_file() or not (self.path / HEAD_FILE).is_file():
            raise HfTlError(f"'{self.path}' is not a finished hf_tl run (no {CONFIG_FILE} and {HEAD_FILE}); pass "
                            f"the output_dir of a completed training run.")
        self.config = load_config(self.path / CONFIG_FILE)
        backbone_dir = self.path / BACKBONE_DIR
        built = build(self.config, apply_strategy=False,
                      weights_dir=str(backbone_dir) if backbone_dir.is_dir() else None,
                      tokenizer_dir=str(self.path / TOKENIZER_DIR))
        model = built.model
        if (self.path / ADAPTER_DIR).is_dir():
            from peft import PeftModel

            model.backbone = PeftModel.from_pretrained(model.backbone, str(self.path / ADAPTER_DIR))
        load_head(model.head, self.path / HEAD_FILE)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.task = built.task
        self.tokenizer = built.backbone.tokenizer
        self._collate = PaddingCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)

    @torch.no_grad()
    def predict(self, pairs, batch_size: int = 64) -> list[float]:
        """Score pairs of texts.

        Args:
            pairs: A sequence of ``(text, text_pair)`` tuples.
            batch_size: Pairs per forward pass.

        Returns:
            One score per pair, on the training data's scale (e.g. 0-5 for STS-B).

        Raises:
            HfTlError: if an item is not a pair of strings.
        """
        pairs = list(pairs)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise HfTlError(f"Item {i + 1} to predict is {pair!r}; give (text, text_pair) pairs of strings.")
        outputs = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            encoded = self.task.encode([a for a, _ in chunk], [b for _, b in chunk])
            features = [{k: v[i] for k, v in encoded.items()} for i in range(len(chunk))]
            batch = {k: v.to(self.device) for k, v in self._collate(features).items()}
            outputs.append(self.model(**batch)["predictions"].float().cpu())
        return self.task.to_scores(torch.cat(outputs).tolist()) if outputs else []


def load_run(path: str | Path, device: str | None = None) -> Run:
    """Load a run directory for prediction (see :class:`Run`).

    Raises:
        HfTlError: if ``path`` is not a finished run.
    """
    return Run(path, device)
