"""Load a finished run directory and predict with it: ``hf_tl.load_run(path).predict(inputs, task=...)``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hf_tl.builder import build
from hf_tl.config_io import load_config
from hf_tl.data import PaddingCollator
from hf_tl.errors import HfTlError, suggest
from hf_tl.run_dir import ADAPTER_DIR, BACKBONE_DIR, CONFIG_FILE, HEADS_DIR, RESULTS_FILE, TOKENIZER_DIR, load_heads
from hf_tl.tasks import Task


class Run:
    """A trained run, ready to predict. A PEFT run loads and predicts exactly like a fully fine-tuned one; a
    multi-task run predicts with the head of the task you name.

    Args:
        path: The run directory, or the Hub repo id (``user/name``) it was pushed to.
        device: Torch device for inference (default: CUDA if available, else CPU).
        trust_remote_code: For a run from the Hub: allow modelling code from its checkpoint (off; the run's own
            config.yaml cannot switch it on).

    Raises:
        HfTlError: if ``path`` is not a finished run.
    """

    def __init__(self, path: str | Path, device: str | None = None, trust_remote_code: bool = False):
        from hf_tl.hub import download_run, looks_like_repo_id

        from_hub = looks_like_repo_id(path)
        self.path = download_run(str(path)) if from_hub else Path(path)
        self._trust = trust_remote_code if from_hub else None  # a downloaded config may not switch it on itself
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.nli = None
        # An NLI zero-shot run holds no heads: its checkpoint scores as it is.
        finished = (self.path / RESULTS_FILE).is_file()
        if (self.path / CONFIG_FILE).is_file() and (finished or (self.path / HEADS_DIR).is_dir()):
            self.config = self._load_config()
            strategy = self.config.strategy
            if finished and strategy.strategy == "zero_shot" and strategy.zero_shot_method == "nli":
                self._load_nli()
                return
        if not (self.path / CONFIG_FILE).is_file() or not (self.path / HEADS_DIR).is_dir():
            raise HfTlError(f"'{self.path}' is not a finished hf_tl run (no {CONFIG_FILE} and {HEADS_DIR}/); pass "
                            f"the output_dir of a completed training run.")
        backbone_dir = self.path / BACKBONE_DIR
        built = build(self.config, apply_strategy=False,
                      weights_dir=str(backbone_dir) if backbone_dir.is_dir() else None,
                      tokenizer_dir=str(self.path / TOKENIZER_DIR))
        model = built.model
        if (self.path / ADAPTER_DIR).is_dir():
            from peft import PeftModel

            model.backbone = PeftModel.from_pretrained(model.backbone, str(self.path / ADAPTER_DIR))
        load_heads(model.heads, self.path)
        self.model = model.to(self.device).eval()
        self.tasks: dict[str, Task] = built.tasks
        self.tokenizer = built.backbone.tokenizer
        self._collate = PaddingCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)

    def _load_config(self):
        config = load_config(self.path / CONFIG_FILE)
        if self._trust is not None and config.model.trust_remote_code != self._trust:
            config = replace(config, model=replace(config.model, trust_remote_code=self._trust))
        return config

    def _load_nli(self) -> None:
        from hf_tl.nli import NliScorer
        from hf_tl.tasks import get_task

        name, data = next(iter(self.config.task_data().items()))
        task = get_task(data, None, self.config.model.max_length)
        self.nli = NliScorer(self.config.model, task, self.config.strategy.nli_hypothesis_template,
                             tokenizer_dir=str(self.path / TOKENIZER_DIR), device=self.device)
        self.tasks: dict[str, Task] = {name: task}
        self.tokenizer = self.nli.tokenizer
        self.model = self.nli.model

    def task(self, name: str | None = None) -> tuple[str, Task]:
        """Return ``(name, task)`` for ``name`` (optional when the run has one task).

        Raises:
            HfTlError: for a task the run did not train, or a missing name in a multi-task run.
        """
        if name is None:
            if len(self.tasks) > 1:
                raise HfTlError(f"This run trained several tasks ({', '.join(self.tasks)}); say which with task=NAME "
                                f"(--task NAME).")
            name = next(iter(self.tasks))
        if name not in self.tasks:
            raise HfTlError(f"This run has no task '{name}'; it trained: {', '.join(self.tasks)}."
                            + suggest(name, self.tasks))
        return name, self.tasks[name]

    def predict(self, inputs, task: str | None = None, batch_size: int = 64) -> list:
        """Predict for texts (one-text tasks) or ``(text, text_pair)`` pairs (pair tasks).

        Args:
            inputs: A sequence of strings, or of pairs of strings for pair tasks.
            task: The task whose head predicts (optional when the run has one task).
            batch_size: Inputs per forward pass.

        Returns:
            One prediction per input: a score on the training data's scale (similarity, e.g. 0-5 for STS-B) or a
            label name (classification).

        Raises:
            HfTlError: for an unknown task, or inputs of the wrong shape for it.
        """
        return self.task(task)[1].decode(self.predict_raw(inputs, task, batch_size))

    @torch.no_grad()
    def predict_raw(self, inputs, task: str | None = None, batch_size: int = 64) -> np.ndarray:
        """Like :meth:`predict`, but return the head's raw outputs: scores scaled to [0, 1], or class logits.

        Raises:
            HfTlError: for an unknown task, or inputs of the wrong shape for it.
        """
        name, spec = self.task(task)
        inputs = list(inputs)
        for i, item in enumerate(inputs):
            if spec.pair and not (isinstance(item, (tuple, list)) and len(item) == 2
                                  and all(isinstance(t, str) for t in item)):
                raise HfTlError(f"Item {i + 1} to predict is {item!r}; task '{name}' scores pairs, so give "
                                f"(text, text_pair) pairs of strings.")
            if not spec.pair and not isinstance(item, str):
                raise HfTlError(f"Item {i + 1} to predict is {item!r}; task '{name}' takes one text per item, so "
                                f"give strings.")
        if self.nli is not None:
            return self.nli.logits(inputs, batch_size).numpy()
        outputs = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            if spec.pair:
                encoded = spec.encode([a for a, _ in chunk], [b for _, b in chunk])
            else:
                encoded = spec.encode(chunk)
            features = [{k: v[i] for k, v in encoded.items()} for i in range(len(chunk))]
            batch = {k: v.to(self.device) for k, v in self._collate(features).items()}
            outputs.append(self.model(task=name, **batch)["predictions"].float().cpu())
        return torch.cat(outputs).numpy() if outputs else np.zeros((0,))


def load_run(path: str | Path, device: str | None = None, trust_remote_code: bool = False) -> Run:
    """Load a run directory, or a run pushed to the Hub, for prediction (see :class:`Run`).

    Raises:
        HfTlError: if ``path`` is not a finished run.
    """
    return Run(path, device, trust_remote_code)
