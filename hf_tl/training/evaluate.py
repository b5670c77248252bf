"""One pass over the dev set: predictions gathered across processes exactly once, then the evaluator."""

from __future__ import annotations

import torch

from hf_tl.metrics import MultiTaskEvaluator


@torch.no_grad()
def predict_loader(model, loader, accelerator, task: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model over a prepared dataloader and gather predictions and labels from all processes.

    ``gather_for_metrics`` drops the samples that the distributed sampler repeated to even out the last batch,
    so every example counts exactly once.

    Returns:
        ``(predictions, labels)`` on the CPU, in dataset order.
    """
    model.eval()
    predictions, labels = [], []
    for batch in loader:
        targets = batch.pop("labels")
        out = model(task=task, **batch)["predictions"]
        out, targets = accelerator.gather_for_metrics((out, targets))
        predictions.append(out.float().cpu())
        labels.append(targets.cpu())
    model.train()
    return torch.cat(predictions), torch.cat(labels)


def evaluate(model, loaders: dict, accelerator, evaluators: dict) -> dict:
    """Score every task's dev set.

    Args:
        model: The prepared model.
        loaders: ``{task: prepared dev dataloader}``.
        accelerator: The run's Accelerator.
        evaluators: ``{task: Evaluator}``.

    Returns:
        One task: its evaluator's metrics plus ``eval_samples`` (dev examples scored). Several tasks: the same per
        task as ``TASK/metric``, plus their ``average`` (see :class:`hf_tl.metrics.MultiTaskEvaluator`).
    """
    per_task = {}
    for name, loader in loaders.items():
        predictions, labels = predict_loader(model, loader, accelerator, task=name)
        metrics = evaluators[name](predictions.numpy(), labels.numpy())
        metrics["eval_samples"] = int(predictions.shape[0])
        per_task[name] = metrics
    if len(per_task) == 1:
        return next(iter(per_task.values()))
    return MultiTaskEvaluator(evaluators).combine(per_task)
