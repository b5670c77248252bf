"""Load a finished run directory and predict with it: ``hf_tl.load_run(path).predict(inputs, task=...)``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hf_tl.config_io import load_config
from hf_tl.errors import HfTlError, suggest
from hf_tl.run_dir import CONFIG_FILE, RESULTS_FILE, unfinished_hint
from hf_tl.runs import run_kind_of
from hf_tl.standard.plain import is_plain_model, plain_config
from hf_tl.tasks import Task


class Run:
    """A finished run, ready to predict. A PEFT run loads and predicts exactly like a fully fine-tuned one; a
    multi-task run predicts with the head of the task you name. The run's kind (its strategy's) loads it. A plain
    sentence-transformers or transformers model folder (no hf_tl record) loads as a zero-shot bi-encoder: the
    cosine of its pooled embeddings, reported on a 0-5 scale like STS-B (``predict_raw``: the cosine).

    Args:
        path: The run directory, or the Hub repo id (``user/name``) it was pushed to, or a plain model folder.
        device: Torch device for inference (default: CUDA if available, else CPU).
        trust_remote_code: Allow modelling code shipped with the run's checkpoint (off). Only this argument
            switches it on, for a local run as for a Hub one: the run's own ``config.yaml`` cannot.

    Raises:
        HfTlError: if ``path`` is not a finished run.
    """

    def __init__(self, path: str | Path, device: str | None = None, trust_remote_code: bool = False):
        from hf_tl.hub import local_run_path

        self.path, from_hub = local_run_path(path)
        if from_hub:
            print(f"hf_tl: loaded run '{path}' from the Hugging Face Hub (no local folder of that name)",
                  file=sys.stderr)
        self._trust = trust_remote_code
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if not (self.path / CONFIG_FILE).is_file() and is_plain_model(self.path):
            # A plain sentence-transformers / transformers folder: the zero-shot bi-encoder it is.
            self.config = plain_config(self.path, trust_remote_code)
            self._loaded = run_kind_of(self.config).load_plain(self.config, self.device)
            self.model, self.tasks, self.tokenizer = self._loaded.model, self._loaded.tasks, self._loaded.tokenizer
            return
        if not (self.path / CONFIG_FILE).is_file():
            raise HfTlError(f"'{self.path}' is not a finished hf_tl run (no {CONFIG_FILE}) nor a model folder (no "
                            f"modules.json or config.json); pass the output_dir of a completed training run.")
        if not (self.path / RESULTS_FILE).is_file():
            raise HfTlError(f"'{self.path}' is an unfinished run: its {RESULTS_FILE}, written last, is missing, so "
                            f"its training or export did not complete; {unfinished_hint(self.path)}.")
        self.config = self._load_config()
        self._loaded = run_kind_of(self.config).load(self.path, self.config, self.device)
        self.model = self._loaded.model
        self.tasks: dict[str, Task] = self._loaded.tasks
        self.tokenizer = self._loaded.tokenizer

    def _load_config(self):
        config = load_config(self.path / CONFIG_FILE)
        if config.model.trust_remote_code != self._trust:
            config = replace(config, model=replace(config.model, trust_remote_code=self._trust))
        return config

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

    @torch.inference_mode()
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
        return self._loaded(inputs, name, batch_size)


def load_run(path: str | Path, device: str | None = None, trust_remote_code: bool = False) -> Run:
    """Load a run directory, or a run pushed to the Hub, for prediction (see :class:`Run`).

    Raises:
        HfTlError: if ``path`` is not a finished run.
    """
    return Run(path, device, trust_remote_code)
