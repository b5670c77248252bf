"""Training speed as a run reports it: samples and real (unpadded) tokens per second of the optimizer loop, with
evaluation and checkpoints left out."""

from __future__ import annotations

import contextlib
import time

import torch


class SpeedMeter:
    """Counts the loop's time and tokens.

    Args:
        accelerator: The run's Accelerator (device, processes).
        first_step: The optimizer step the loop starts from (a resumed run counts only its own steps).
    """

    def __init__(self, accelerator, first_step: int):
        self.accelerator = accelerator
        self.first_step = first_step
        self.start = time.perf_counter()
        self.paused_seconds = 0.0
        self.tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)  # summed there: no sync per step

    def count_tokens(self, batch: dict) -> None:
        """Add a micro-batch's real tokens (both texts of a bi-encoder pair; cached features carry none)."""
        for mask in ("attention_mask", "attention_mask_b"):
            if mask in batch:
                self.tokens += batch[mask].sum()

    @contextlib.contextmanager
    def paused(self):
        """Leave what runs inside (evaluation, checkpoints) out of the loop's time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.paused_seconds += time.perf_counter() - start

    def training_seconds(self) -> float:
        """Seconds this process's loop has trained so far (evaluations and checkpoints left out)."""
        return time.perf_counter() - self.start - self.paused_seconds

    def figures(self, last_step: int, samples_per_step_per_process: int) -> dict:
        """``train_loop_s``, ``train_samples_per_second``, ``train_tokens_per_second`` (when tokens were seen) and,
        on a GPU, ``peak_gpu_memory_mib``."""
        seconds = max(self.training_seconds(), 1e-9)
        samples = (last_step - self.first_step) * samples_per_step_per_process * self.accelerator.num_processes
        all_tokens = self.accelerator.reduce(self.tokens, "sum").item()
        out = {"train_loop_s": round(seconds, 2), "train_samples_per_second": round(samples / seconds, 2)}
        if all_tokens:
            out["train_tokens_per_second"] = round(all_tokens / seconds, 1)
        if self.accelerator.device.type == "cuda":
            out["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(self.accelerator.device) / 2 ** 20)
        return out
