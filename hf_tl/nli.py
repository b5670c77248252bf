"""Zero-shot classification with an NLI cross-encoder: does the text entail "This example is LABEL."?

Each text is paired with one hypothesis per label; the label's score is the checkpoint's entailment logit for its
pair, and the softmax over the labels is the usual zero-shot-classification score (as in the transformers
``zero-shot-classification`` pipeline). The checkpoint's own classification layer does the work, so this path
uses the sequence-classification model as it is instead of a backbone with a new head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hf_tl.backbone import _load_error, looks_like_path, resolve_checkpoint
from hf_tl.errors import HfTlError
from hf_tl.tasks import Task
from hf_tl.tasks.classification import ClassificationTask


def entailment_index(id2label: dict) -> int:
    """The output index whose label name starts with "entail".

    Raises:
        HfTlError: when the checkpoint has no such label (it is not an NLI model).
    """
    for index, name in id2label.items():
        if str(name).lower().startswith("entail"):
            return int(index)
    raise HfTlError(f"The checkpoint's labels ({', '.join(map(str, id2label.values()))}) have no 'entailment'; "
                    f"zero_shot_method nli needs an NLI cross-encoder (e.g. one fine-tuned on MNLI).")


class NliScorer:
    """An NLI cross-encoder that scores each text against one hypothesis per label.

    Args:
        model_args: The run's model settings (checkpoint, max length, remote code).
        task: The classification task (label names, descriptions, prompt template).
        hypothesis_template: The hypothesis with ``{}`` where each label's description goes.
        tokenizer_dir: Load the tokenizer from this folder (a finished run's ``tokenizer/``).
        device: Torch device.

    Raises:
        HfTlError: for a pair or similarity task, a checkpoint that cannot be loaded, or one without an entailment
            label.
    """

    def __init__(self, model_args, task: Task, hypothesis_template: str, tokenizer_dir: str | None = None,
                 device: str | torch.device = "cpu"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not isinstance(task, ClassificationTask) or task.pair:
            raise HfTlError("zero_shot_method nli classifies one text per example (task classification); a pair or "
                            "similarity task has no hypothesis to test.")
        source = resolve_checkpoint(model_args.model_name_or_path)
        if looks_like_path(source) and not Path(source).expanduser().is_dir():
            raise HfTlError(f"Checkpoint folder '{source}' does not exist; check --model_name_or_path.")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or source,
                                                           trust_remote_code=model_args.trust_remote_code)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=True, dtype=getattr(torch, model_args.torch_dtype),
                trust_remote_code=model_args.trust_remote_code)
        except (OSError, ValueError) as err:
            raise _load_error(model_args.model_name_or_path, err) from None
        if self.tokenizer.pad_token is None:  # a GPT-style NLI model: batches of pairs need a pad token
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:  # ... and the model must know it to find each row's last token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.entailment = entailment_index(self.model.config.id2label)
        self.task = task
        self.hypotheses = [hypothesis_template.replace("{}", text) for text in task.label_texts()]
        self.max_length = model_args.max_length
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)  # it scores as it is: nothing trains

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Entailment logits of every text against every label's hypothesis.

        Args:
            texts: The inputs (``prompt_template`` is applied to them).
            batch_size: Text-hypothesis pairs per forward pass (rounded down to whole texts).

        Returns:
            ``(len(texts), num_labels)`` float tensor on the CPU.
        """
        texts, _ = self.task.apply_template(list(texts))
        n_labels = len(self.hypotheses)
        per_batch = max(1, batch_size // n_labels)
        out = []
        for start in range(0, len(texts), per_batch):
            chunk = texts[start:start + per_batch]
            premises = [t for t in chunk for _ in range(n_labels)]
            batch = self.tokenizer(premises, self.hypotheses * len(chunk), truncation="only_first",
                                   max_length=self.max_length, padding=True, return_tensors="pt")
            logits = self.model(**batch.to(self.device)).logits[:, self.entailment]
            out.append(logits.float().view(len(chunk), n_labels).cpu())
        return torch.cat(out) if out else torch.zeros((0, n_labels))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def evaluate_nli(config, accelerator, task: Task, scorer: NliScorer, prepared) -> dict:
    """Score the dev split with an NLI checkpoint; the processes share the texts and gather the scores in order.

    Args:
        config: The resolved run config (one classification task).
        accelerator: The run's Accelerator.
        task: The task.
        scorer: The NLI checkpoint.
        prepared: The dev split, checked (``task.prepare_split``).

    Returns:
        The evaluator's metrics plus ``eval_samples``.
    """
    from accelerate.utils import gather_object

    texts, labels = list(prepared["text"]), np.asarray(prepared["label"])
    # Contiguous shards, gathered in process order: every text is scored exactly once, in dataset order.
    with accelerator.split_between_processes(list(range(len(texts)))) as mine:
        logits = scorer.logits([texts[i] for i in mine], config.train.per_device_eval_batch_size)
    rows = gather_object([row for row in logits.numpy()]) if accelerator.num_processes > 1 else list(logits.numpy())
    with accelerator.main_process_first():
        evaluator = task.evaluator()
    metrics = evaluator(np.stack(rows), labels)
    metrics["eval_samples"] = len(rows)
    return metrics
