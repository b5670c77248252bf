"""Write the trained model into the run directory: backbone or adapter, heads, tokenizer.

Each folder is written under a temporary name and swapped into place, and the run is marked unfinished
(:func:`hf_tl.run_dir.mark_unfinished`) before the first one changes: a kill while exporting leaves a run that says it
is unfinished and resumes, never a new backbone beside an old head that loads.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hf_tl.run_dir import ADAPTER_DIR, BACKBONE_DIR, HEADS_DIR, TOKENIZER_DIR, mark_unfinished, resume_fix, save_heads
from hf_tl.safe_io import staged_dir, write_guard
from hf_tl.training.engines import SHARDED


def save_initial_backbone(accelerator, backbone, tokenizer, run_dir: Path) -> None:
    """Save the backbone a run starts from (main process only), before any adapter wraps it, with its tokenizer.

    A run that starts from another run's backbone (``init_from_run``) and leaves it unchanged (frozen) or adds an
    adapter to it needs these weights to be reloaded: the base checkpoint in ``config.yaml`` is not them.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        mark_unfinished(run_dir)
        with write_guard(run_dir / BACKBONE_DIR, resume_fix(run_dir)), staged_dir(run_dir / BACKBONE_DIR) as folder:
            backbone.save_pretrained(str(folder), safe_serialization=True)
            tokenizer.save_pretrained(str(folder))  # weights never without their tokenizer (see export_run)
    accelerator.wait_for_everyone()


@contextlib.contextmanager
def _named_base(peft_model, hub_id: str | None):
    """While an adapter is saved, name its base by its Hub id: in ``adapter_config.json`` and in the card PEFT
    writes (its ``base_model`` and tags read the base model's config and ``name_or_path``)."""
    if not hub_id:
        yield
        return
    base = peft_model.get_base_model()
    previous = base.config._name_or_path, getattr(base, "name_or_path", None)
    base.config._name_or_path = base.name_or_path = hub_id
    for peft_config in peft_model.peft_config.values():
        peft_config.base_model_name_or_path = hub_id
    try:
        yield
    finally:
        base.config._name_or_path, base.name_or_path = previous


def export_run(accelerator, model, strategy, tokenizer, run_dir: Path, prepared: bool = True,
               base_hub_id: str | None = None) -> None:
    """Save what the strategy changed (main process only).

    Full, partial and gradual runs save the whole backbone; PEFT runs save only the adapter; frozen and zero-shot
    runs save neither, since their backbone is the base checkpoint named in ``config.yaml`` (or, after
    ``init_from_run``, the ``backbone/`` saved at the start). ``prepared`` says whether the model went through
    ``accelerator.prepare`` (and so may be sharded); runs that train nothing by gradient skip it.

    The tokenizer is saved beside every set of weights (``backbone/``, ``adapter/``), so a standard loader pointed
    at either folder finds the vocabulary the weights were trained with instead of building another. An adapter
    names ``base_hub_id`` as its base (``base_model_name_or_path``, and so in its own card) when the base is a Hub
    checkpoint, rather than the local folder it was read from (a packaged copy of it, a cache).
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
                with staged_dir(run_dir / ADAPTER_DIR) as folder, _named_base(unwrapped.backbone, base_hub_id):
                    # hf_tl never resizes the vocabulary, so the embedding matrix is not saved, and PEFT does not
                    # ask the Hub for the base's config to find out (a network call at every save).
                    unwrapped.backbone.save_pretrained(str(folder), state_dict=backbone_state,
                                                       save_embedding_layers=False)
                    tokenizer.save_pretrained(str(folder))
            elif strategy.trains_backbone_weights:
                with staged_dir(run_dir / BACKBONE_DIR) as folder:
                    unwrapped.backbone.save_pretrained(str(folder), safe_serialization=True,
                                                       state_dict=backbone_state)
                    tokenizer.save_pretrained(str(folder))
            with staged_dir(run_dir / HEADS_DIR) as folder:
                save_heads(unwrapped.heads, folder, state)
            with staged_dir(run_dir / TOKENIZER_DIR) as folder:
                tokenizer.save_pretrained(str(folder))
    accelerator.wait_for_everyone()
