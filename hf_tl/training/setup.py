"""Set-up of a training run: the Accelerator, each task's resolved settings, tokenized splits and dataloaders."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    DistributedDataParallelKwargs,
    GradientAccumulationPlugin,
    TorchDynamoPlugin,
)
from torch.utils.data import DataLoader

from hf_tl.data import PaddingCollator, load_raw_splits, with_data_source
from hf_tl.data.augment import augment_split
from hf_tl.data.few_shot import few_shot_indices
from hf_tl.data.folds import split_fold
from hf_tl.data.length_grouping import LengthGroupedSampler, example_lengths
from hf_tl.errors import HfTlError
from hf_tl.feature_cache import (
    FeatureDataset,
    cache_root,
    compute_features,
    key_parts,
    load_or_build,
    model_fingerprint,
    tokenizer_fingerprint,
)
from hf_tl.run_config import RunConfig
from hf_tl.strategies import get_strategy
from hf_tl.tasks import TASKS
from hf_tl.transfer import resolve_init_from_run


def cpu_threads(requested: int | None) -> int:
    """The CPU threads this process should use: ``requested``, else its share of this machine's cores.

    ``accelerate launch`` on a machine without a GPU sets ``OMP_NUM_THREADS=1`` for every process unless told
    otherwise, which would train one process on one core of many; hf_tl gives each process an equal share of the
    cores available to it instead. A user's own ``OMP_NUM_THREADS`` above 1 is kept (1 cannot be told from the
    launcher's default: say ``cpu_threads 1`` for that).
    """
    if requested:
        return requested
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 1:
        return int(omp)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # processes of this run on this machine
    return max(1, cores // max(1, local_processes))


def make_accelerator(config: RunConfig, project_dir: str) -> Accelerator:
    """Create the Accelerator: precision, accumulation, trackers, and a seedable sampler for exact resumes.

    Without a GPU, the process's CPU threads are set first (see :func:`cpu_threads`).
    """
    from accelerate.state import AcceleratorState

    if not torch.cuda.is_available():
        torch.set_num_threads(cpu_threads(config.train.cpu_threads))

    # Accelerate keeps its settings in a process-wide singleton; a second run in the same Python process (a
    # notebook, a comparison loop) may ask for another precision or accumulation, so start from a clean state.
    # The distributed set-up (PartialState) is kept.
    AcceleratorState._reset_state()
    trackers = None if config.train.report_to == "none" else config.train.report_to
    multitask = config.is_multitask
    return Accelerator(
        # Without a GPU, say so: Accelerate then runs several launched processes as MULTI_CPU (gloo) instead of
        # one process each thinking it is alone.
        cpu=not torch.cuda.is_available(),
        mixed_precision=config.train.mixed_precision,
        # Multi-task batches interleave several dataloaders, so the end of one is not the end of an accumulation
        # window; the schedule's epoch length is a multiple of the accumulation steps instead.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=config.train.gradient_accumulation_steps, sync_with_dataloader=not multitask),
        # Each step trains one task's head; the other heads take no part in it. A strategy that skips blocks runs
        # only part of the backbone on some steps.
        kwargs_handlers=[DistributedDataParallelKwargs(
            find_unused_parameters=multitask or get_strategy(config.strategy).skips_blocks)],
        log_with=trackers,
        project_dir=project_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # Dynamic shapes: dynamic padding makes every batch a new length, which a static graph would recompile for.
        dynamo_plugin=TorchDynamoPlugin(backend="inductor", dynamic=True) if config.train.torch_compile else None,
    )


def resolve_config(config: RunConfig, need_train: bool) -> tuple[RunConfig, dict]:
    """Read every task's raw data and fill what the config left to the tasks (columns, label names, the checkpoint
    of ``init_from_run``), so the run directory records settings that predict without the data.

    Args:
        config: The config as given.
        need_train: Whether train splits are required (not for zero-shot evaluation).

    Returns:
        ``(resolved config, {task: {split: raw Dataset, capped to max_*_samples}})``.

    Raises:
        HfTlError: for missing data, columns or labels.
    """
    config = resolve_init_from_run(config)
    resolved, raw = {}, {}
    for name, data in config.task_data().items():
        data = with_data_source(data)
        splits = load_raw_splits(data, need_train=need_train, plain_text=TASKS[data.task].reads_plain_text)
        if not need_train:
            splits.pop("train", None)
        resolved[name] = TASKS[data.task].resolve(data, splits)  # label names from all rows, before capping
        caps = {"train": data.max_train_samples, "validation": data.max_eval_samples}
        raw[name] = {split: ds.select(range(min(caps[split], len(ds)))) if caps[split] else ds
                     for split, ds in splits.items()}
        if data.few_shot_k and "train" in raw[name]:
            train = raw[name]["train"]
            if resolved[name].label_column not in train.column_names:
                raise HfTlError(f"The train data has no column '{resolved[name].label_column}' (label_column); "
                                f"few_shot_k draws rows by label.")
            rows = few_shot_indices(train[resolved[name].label_column], data.few_shot_k, data.few_shot_seed,
                                    regression=data.task == "similarity")
            raw[name]["train"] = train.select(rows)
        if data.cv_fold is not None and "train" in raw[name]:  # a fold run: the rest of train, and the fold as dev
            d = resolved[name]
            columns = {"text_column": d.text_column, **({"text_pair_column": d.text_pair_column}
                                                        if TASKS[d.task].pair else {})}
            raw[name]["train"], raw[name]["validation"] = split_fold(raw[name]["train"], d, columns)
        if data.augment and "train" in raw[name]:  # after the folds: a held-out row is never augmented into train
            d = resolved[name]
            columns = {"text": d.text_column, **({"text_pair": d.text_pair_column} if TASKS[d.task].pair else {}),
                       "label": d.label_column}
            raw[name]["train"] = augment_split(raw[name]["train"], d.augment, d.augment_copies, d.augment_seed,
                                               columns)
    if config.is_multitask:
        return replace(config, tasks=resolved), raw
    return replace(config, data=next(iter(resolved.values()))), raw


def tokenize_splits(tasks: dict, raw: dict, store: bool = True) -> tuple[dict, dict]:
    """Check and tokenize each task's raw splits, or read their tokens from the cache of earlier runs.

    Args:
        tasks: ``{task: Task}``.
        raw: ``{task: {split: raw Dataset}}``.
        store: Read and write the tokenized cache (``cache_tokenized``).

    Returns:
        ``({task: {split: Dataset}}`` with model inputs and ``labels``, ``{"task/split": "hit" | "built" |
        "computed"})``.
    """
    from hf_tl.data.token_cache import tokenized_split
    from hf_tl.feature_cache import tokenizer_fingerprint

    splits, status, prints = {}, {}, {}
    for name, task in tasks.items():
        if store and task.tokenizer not in prints:
            prints[task.tokenizer] = tokenizer_fingerprint(task.tokenizer)
        splits[name] = {}
        for split, dataset in raw[name].items():
            splits[name][split], status[f"{name}/{split}"] = tokenized_split(
                task, dataset, split, prints.get(task.tokenizer), store)
    return splits, status


def make_loaders(splits: dict, config: RunConfig, tokenizer, num_processes: int = 1) -> dict:
    """Build dataloaders with dynamic padding; train loaders shuffle (seeded per pass by Accelerate), grouped by
    length with ``group_by_length``.

    Args:
        splits: ``{task: {split: tokenized Dataset or FeatureDataset}}``.
        config: The run config (batch sizes, padding, workers, length grouping).
        tokenizer: The run's tokenizer (pad id and side).
        num_processes: Processes that share each global batch (length groups are global batches).

    Returns:
        ``{task: {split: DataLoader}}``.
    """
    collate = PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side, config.train.pad_to_multiple_of)
    t = config.train

    def loader(split: str, dataset) -> DataLoader:
        features = isinstance(dataset, FeatureDataset)  # fixed-size tensors: the default collation stacks them
        train = split == "train"
        sampler = None
        if train and t.group_by_length:
            # One group is one optimizer step's examples: every process's micro-batches of every accumulation step.
            lengths = getattr(dataset, "lengths", None) or example_lengths(dataset)
            sampler = LengthGroupedSampler(lengths, t.per_device_train_batch_size * num_processes
                                           * t.gradient_accumulation_steps, t.seed)
        return DataLoader(dataset, shuffle=train and sampler is None, sampler=sampler,
                          collate_fn=None if features else collate,
                          batch_size=t.per_device_train_batch_size if train else t.per_device_eval_batch_size,
                          num_workers=t.dataloader_num_workers,
                          pin_memory=torch.cuda.is_available())  # page-locked batches copy to the GPU faster

    return {name: {split: loader(split, dataset) for split, dataset in task_splits.items()}
            for name, task_splits in splits.items()}


def cached_feature_splits(model, splits: dict, config: RunConfig, tokenizer, accelerator,
                          store: bool = True) -> tuple[dict, dict]:
    """Replace each tokenized split by its backbone features, read from the feature cache or computed into it.

    The main process of each machine goes first and fills the cache; the others then read what it wrote, so the
    backbone runs once per split however many processes train.

    Args:
        model: The :class:`hf_tl.model.TransferModel`, backbone frozen.
        splits: ``{task: {split: tokenized Dataset}}``.
        config: The run config (cache folder, max length, eval batch size).
        tokenizer: The run's tokenizer.
        accelerator: The run's Accelerator.
        store: Read and write the cache; ``False`` computes the features in memory only.

    Returns:
        ``({task: {split: FeatureDataset}}, {"task/split": "hit", "built" or "computed"})``.
    """
    root = cache_root(config.train.feature_cache_dir)
    collate = PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side, config.train.pad_to_multiple_of)
    batch_size = config.train.per_device_eval_batch_size
    model_fp = model_fingerprint(model) if store else None
    tokenizer_fp = tokenizer_fingerprint(tokenizer) if store else None
    model.to(accelerator.device)
    out, status = {}, {}
    # With the cache, the first process on each machine fills it and the others read it; without, each computes.
    with accelerator.local_main_process_first() if store else contextlib.nullcontext():
        for name, task_splits in splits.items():
            out[name] = {}
            for split, dataset in task_splits.items():
                with accelerator.autocast():  # the precision the backbone would run in without the cache
                    if store:
                        parts = key_parts(model_fp, tokenizer_fp, config.model.max_length, dataset,
                                          config.train.mixed_precision)
                        features, built = load_or_build(model, dataset, parts, root, collate, batch_size,
                                                        accelerator.device)
                    else:
                        arrays = compute_features(model, dataset, collate, batch_size, accelerator.device)
                        features, built = {k: torch.from_numpy(v) for k, v in arrays.items()}, None
                out[name][split] = FeatureDataset(features, dataset["labels"], example_lengths(dataset))
                status[f"{name}/{split}"] = "computed" if built is None else "built" if built else "hit"
    # Every process says what it did, so a multi-process run shows the cache was built once.
    prefix = f"[process {accelerator.process_index}] " if accelerator.num_processes > 1 else ""
    print(f"{prefix}feature cache: " + ", ".join(f"{k} {v}" for k, v in status.items()), flush=True)
    return out, status
