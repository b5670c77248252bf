"""Write the trained model into the run directory: backbone or adapter, heads, tokenizer.

Each folder is written under a temporary name and swapped into place, and the run is marked unfinished
(:func:`hf_tl.run_dir.mark_unfinished`) before the first one changes: a kill while exporting leaves a run that says it
is unfinished and resumes, never a new backbone beside an old head that loads.
"""

from __future__ import annotations

from pathlib import Path

from hf_tl.run_dir import ADAPTER_DIR, BACKBONE_DIR, HEADS_DIR, TOKENIZER_DIR, mark_unfinished, resume_fix, save_heads
from hf_tl.safe_io import staged_dir, write_guard
from hf_tl.training.engines import SHARDED


def save_initial_backbone(accelerator, backbone, run_dir: Path) -> None:
    """Save the backbone a run starts from (main process only), before any adapter wraps it.

    A run that starts from another run's backbone (``init_from_run``) and leaves it unchanged (frozen) or adds an
    adapter to it needs these weights to be reloaded: the base checkpoint in ``config.yaml`` is not them.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        mark_unfinished(run_dir)
        with write_guard(run_dir / BACKBONE_DIR, resume_fix(run_dir)), staged_dir(run_dir / BACKBONE_DIR) as folder:
            backbone.save_pretrained(str(folder), safe_serialization=True)
    accelerator.wait_for_everyone()


def export_run(accelerator, model, strategy, tokenizer, run_dir: Path, prepared: bool = True) -> None:
    """Save what the strategy changed (main process only).

    Full, partial and gradual runs save the whole backbone; PEFT runs save only the adapter; frozen and zero-shot
    runs save neither, since their backbone is the base checkpoint named in ``config.yaml`` (or, after
    ``init_from_run``, the ``backbone/`` saved at the start). ``prepared`` says whether the model went through
    ``accelerator.prepare`` (and so may be sharded); runs that train nothing by gradient skip it.
    """
    accelerator.wait_for_everyone()
    # FSDP and DeepSpeed ZeRO-3 shard the weights: every process takes part in gathering them, the main one saves.
    state = accelerator.get_state_dict(model) if prepared and accelerator.distributed_type in SHARDED else None
    backbone_state = None if state is None else {k[len("backbone."):]: v for k, v in state.items()
                                                 if k.startswith("backbone.")}
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        mark_unfinished(run_dir)
        with write_guard(run_dir, resume_fix(run_dir)):
            if strategy.is_peft:
                with staged_dir(run_dir / ADAPTER_DIR) as folder:
                    unwrapped.backbone.save_pretrained(str(folder), state_dict=backbone_state)
            elif strategy.trains_backbone_weights:
                with staged_dir(run_dir / BACKBONE_DIR) as folder:
                    unwrapped.backbone.save_pretrained(str(folder), safe_serialization=True,
                                                       state_dict=backbone_state)
            with staged_dir(run_dir / HEADS_DIR) as folder:
                save_heads(unwrapped.heads, folder, state)
            with staged_dir(run_dir / TOKENIZER_DIR) as folder:
                tokenizer.save_pretrained(str(folder))
    accelerator.wait_for_everyone()
