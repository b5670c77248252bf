"""What each distributed engine (DDP, FSDP, DeepSpeed) needs from a run, checked before anything is prepared.

DDP runs every strategy. FSDP and DeepSpeed own the gradients (flattened, sharded buffers), so the two things hf_tl
does to gradients between backward and the optimizer step, dropping those of blocks that ``gradual`` has not
unfrozen yet and those of idle heads in multi-task training, would silently do nothing there; those combinations
are refused up front instead of training something other than what was asked.
"""

from __future__ import annotations

import os

from accelerate.utils import DistributedType

from hf_tl.errors import HfTlError

SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)


def engine_name(accelerator) -> str:
    """``FSDP``, ``DeepSpeed`` or the distributed type's own name."""
    return {DistributedType.FSDP: "FSDP", DistributedType.DEEPSPEED: "DeepSpeed"}.get(
        accelerator.distributed_type, str(accelerator.distributed_type))


def check_engine(accelerator, config, strategy, report: dict) -> None:
    """Refuse a strategy or setting that the launch configuration's engine cannot run as asked.

    Args:
        accelerator: The run's Accelerator (its distributed type and plugins come from ``accelerate launch``).
        config: The run config.
        strategy: The applied strategy.
        report: The trainable-parameter report (``trainable`` and ``total``).

    Raises:
        HfTlError: naming the combination and what to use instead.
    """
    kind = accelerator.distributed_type
    for engine, variable in (("FSDP", "ACCELERATE_USE_FSDP"), ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED")):
        if os.environ.get(variable, "").lower() == "true" and kind not in SHARDED:
            # Accelerate keeps CPU processes as MULTI_CPU whatever the launch config asks: a silent DDP run.
            raise HfTlError(f"The launch config asks for {engine}, but Accelerate runs these processes as {kind} "
                            f"(it does not start {engine} without a GPU), so nothing would be sharded; launch with "
                            f"recipes/accelerate/cpu_multi_process.yaml on a CPU machine, or run on GPUs.")
    if kind not in SHARDED:
        return
    name = engine_name(accelerator)
    if config.train.torch_compile:
        raise HfTlError(f"torch_compile under {name} would save the compiled wrapper's names instead of the model's; "
                        f"drop torch_compile, or launch with DDP (recipes/accelerate/multi_gpu.yaml).")
    steps = getattr(accelerator, "gradient_accumulation_steps", config.train.gradient_accumulation_steps)
    if steps != config.train.gradient_accumulation_steps:  # DeepSpeed's config wins over Accelerate's setting
        raise HfTlError(f"The {name} launch config sets gradient_accumulation_steps {steps}, but the run asks for "
                        f"{config.train.gradient_accumulation_steps}; {name} would train with its own value while "
                        f"hf_tl plans the steps for the run's, so set the same value in both (deepspeed_config's "
                        f"gradient_accumulation_steps in the launch file).")
    if config.train.save_only_model:
        raise HfTlError(f"save_only_model writes the weights of one process, which {name} shards over all of them; "
                        f"drop save_only_model, or launch with DDP (recipes/accelerate/multi_gpu.yaml).")
    if strategy.num_stages() > 1:
        raise HfTlError(f"strategy '{strategy.name}' unfreezes blocks by dropping their gradients between steps, "
                        f"which {name}'s sharded gradient buffers do not allow; launch it with DDP "
                        f"(recipes/accelerate/multi_gpu.yaml) or use strategy partial or full.")
    if config.is_multitask:
        raise HfTlError(f"Multi-task training keeps idle heads still by dropping their gradients, which {name}'s "
                        f"sharded gradient buffers do not allow; launch it with DDP "
                        f"(recipes/accelerate/multi_gpu.yaml).")
    if kind == DistributedType.FSDP:
        plugin = accelerator.state.fsdp_plugin
        partly_frozen = 0 < report["trainable"] < report["total"]
        if partly_frozen and getattr(plugin, "fsdp_version", 1) == 1 and not plugin.use_orig_params:
            raise HfTlError(f"strategy '{strategy.name}' freezes part of each FSDP unit, which FSDP 1 allows only "
                            f"with use_orig_params; set fsdp_use_orig_params: true in the launch config (as "
                            f"recipes/accelerate/fsdp.yaml does) or use fsdp_version: 2.")
