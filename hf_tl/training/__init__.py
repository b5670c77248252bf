"""The Accelerate training loop and its helpers."""

from hf_tl.training.loop import train

__all__ = ["train"]
