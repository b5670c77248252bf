"""What each distributed engine (DDP, FSDP, DeepSpeed) needs from a run, checked before anything is prepared.

DDP runs every strategy. FSDP and DeepSpeed own the gradients (flattened, sharded buffers), so the two things hf_tl
does to gradients between backward and the optimizer step, dropping those of blocks that ``gradual`` has not
unfrozen yet and those of idle heads in multi-task training, would silently do nothing there; those combinations
are refused up front instead of training something other than what was asked.
"""

from __future__ import annotations

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
    if kind not in SHARDED:
        return
    name = engine_name(accelerator)
    if config.train.torch_compile:
        raise HfTlError(f"torch_compile under {name} would save the compiled wrapper's names instead of the model's; "
                        f"drop torch_compile, or launch with DDP (recipes/accelerate/multi_gpu.yaml).")
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
