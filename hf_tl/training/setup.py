"""Set-up of a training run: the Accelerator, tokenized splits and dataloaders."""

from __future__ import annotations

from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from torch.utils.data import DataLoader

from hf_tl.config import RunConfig
from hf_tl.data import PaddingCollator, load_raw_splits


def make_accelerator(config: RunConfig, project_dir: str) -> Accelerator:
    """Create the Accelerator: precision, accumulation, trackers, and a seedable sampler for exact resumes."""
    import torch
    from accelerate.state import AcceleratorState

    # Accelerate keeps its settings in a process-wide singleton; a second run in the same Python process (a
    # notebook, a comparison loop) may ask for another precision or accumulation, so start from a clean state.
    # The distributed set-up (PartialState) is kept.
    AcceleratorState._reset_state()
    trackers = None if config.train.report_to == "none" else config.train.report_to
    return Accelerator(
        # Without a GPU, say so: Accelerate then runs several launched processes as MULTI_CPU (gloo) instead of
        # one process each thinking it is alone.
        cpu=not torch.cuda.is_available(),
        mixed_precision=config.train.mixed_precision,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        log_with=trackers,
        project_dir=project_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def load_splits(task, config: RunConfig, need_train: bool) -> dict:
    """Read, check, cap and tokenize the train and validation splits of ``task``.

    Returns:
        ``{"train": Dataset, "validation": Dataset}`` with model inputs and ``labels``.
    """
    raw = load_raw_splits(config.data, need_train=need_train)
    caps = {"train": config.data.max_train_samples, "validation": config.data.max_eval_samples}
    out = {}
    for split, dataset in raw.items():
        if split == "train" and not need_train:
            continue
        if caps[split]:
            dataset = dataset.select(range(min(caps[split], len(dataset))))
        out[split] = task.tokenize(task.prepare_split(dataset, split))
    return out


def make_loaders(splits: dict, config: RunConfig, tokenizer) -> dict:
    """Build dataloaders with dynamic padding; the train loader shuffles (seeded per epoch by Accelerate)."""
    collate = PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side, config.train.pad_to_multiple_of)
    loaders = {}
    for split, dataset in splits.items():
        train = split == "train"
        batch = config.train.per_device_train_batch_size if train else config.train.per_device_eval_batch_size
        loaders[split] = DataLoader(dataset, batch_size=batch, shuffle=train, collate_fn=collate,
                                    num_workers=config.train.dataloader_num_workers)
    return loaders
