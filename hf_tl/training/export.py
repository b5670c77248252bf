"""Write the trained model into the run directory: backbone or adapter, head, tokenizer."""

from __future__ import annotations

from pathlib import Path

from hf_tl.run_dir import ADAPTER_DIR, BACKBONE_DIR, HEAD_FILE, TOKENIZER_DIR, save_head


def export_run(accelerator, model, strategy, tokenizer, run_dir: Path) -> None:
    """Save what the strategy changed (main process only).

    Full, partial and gradual runs save the whole backbone; PEFT runs save only the adapter; frozen and zero-shot
    runs save neither, since their backbone is the base checkpoint named in ``config.yaml``.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if strategy.is_peft:
            unwrapped.backbone.save_pretrained(str(run_dir / ADAPTER_DIR))
        elif strategy.trains_backbone_weights:
            unwrapped.backbone.save_pretrained(str(run_dir / BACKBONE_DIR), safe_serialization=True)
        save_head(unwrapped.head, run_dir / HEAD_FILE)
        tokenizer.save_pretrained(str(run_dir / TOKENIZER_DIR))
    accelerator.wait_for_everyone()
