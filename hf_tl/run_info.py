"""How a run trained, beyond its config: learning rate per parameter group, steps, hardware, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform

import torch


def hardware(accelerator) -> dict:
    """The device, its name, the number of processes, the precision, and the CPU threads and cores a run used."""
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    return {"device": device.type, "device_name": name, "num_processes": accelerator.num_processes,
            "mixed_precision": str(accelerator.mixed_precision), "cpu_threads": torch.get_num_threads(),
            "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}


def versions() -> dict:
    """Versions of the libraries that trained the run."""
    out = {}
    for package in ("hf_tl", "torch", "transformers", "accelerate", "peft", "datasets"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def training_info(accelerator, state, param_groups: list[dict]) -> dict:
    """What ``training_info.json`` holds.

    Args:
        accelerator: The run's Accelerator.
        state: The final :class:`hf_tl.training.state.TrainState`.
        param_groups: ``[{"name", "learning_rate", "weight_decay", "parameters"}]`` of the optimizer (empty when
            nothing trains by gradient).

    Returns:
        ``{"param_groups", "optimizer_steps", "epochs", "hardware", "versions"}``.
    """
    return {"param_groups": param_groups, "optimizer_steps": state.global_step, "epochs": state.epoch,
            "hardware": hardware(accelerator), "versions": versions()}
