"""One pass over the dev set: predictions gathered across processes exactly once, then the evaluator."""

from __future__ import annotations

import torch


@torch.no_grad()
def predict_loader(model, loader, accelerator) -> tuple[torch.Tensor, torch.Tensor]:
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
        out = model(**batch)["predictions"]
        out, targets = accelerator.gather_for_metrics((out, targets))
        predictions.append(out.float().cpu())
        labels.append(targets.cpu())
    model.train()
    return torch.cat(predictions), torch.cat(labels)


def evaluate(model, loader, accelerator, evaluator) -> dict:
    """Return the evaluator's metrics plus ``eval_samples`` (how many dev examples were scored)."""
    predictions, labels = predict_loader(model, loader, accelerator)
    metrics = evaluator(predictions.numpy(), labels.numpy())
    metrics["eval_samples"] = int(predictions.shape[0])
    return metrics
