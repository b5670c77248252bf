"""The run kinds built on a TransferModel (a backbone with one head per task): trained, fitted and evaluated.

All three go the same way: open the run directory, read the data, build the model and apply the strategy, write
the record, then learn or score (the only step that differs), save the model and finish the record:

- ``trained``: the optimizer loop (:func:`hf_tl.training.loop.fit`), checkpoints, resume.
- ``fitted``: the heads are fitted in closed form on the backbone's features, then scored once.
- ``evaluated``: the model scores the dev set once as it is (its heads built by the strategy, e.g. zero-shot).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_tl.backbone import looks_like_path
from hf_tl.builder import build
from hf_tl.data import PaddingCollator, sorted_by_length
from hf_tl.errors import HfTlError
from hf_tl.metrics import MultiTaskEvaluator
from hf_tl.process import import_in_background
from hf_tl.report import format_report, trainable_report
from hf_tl.run_dir import (
    ADAPTER_DIR,
    BACKBONE_DIR,
    HEADS_DIR,
    TOKENIZER_DIR,
    load_heads,
    resume_fix,
    unfinished_hint,
)
from hf_tl.run_info import training_info
from hf_tl.runs.base import LoadedRun, RunKind, open_run, register_run_kind
from hf_tl.runs.cross_validation import fold_feature_splits, shares_train_features
from hf_tl.runs.record import RunRecord, best_results
from hf_tl.runs.resume import check_resumed_config
from hf_tl.runs.teacher import add_silver_pairs, distilled_targets
from hf_tl.safe_io import write_guard
from hf_tl.standard.one_copy import backbone_weights
from hf_tl.standard.place import write_root_model
from hf_tl.strategies import EVALUATED, FITTED, TRAINED, get_strategy
from hf_tl.tasks import TASKS
from hf_tl.training.engines import check_engine
from hf_tl.training.evaluate import evaluate
from hf_tl.training.export import export_run, save_initial_backbone
from hf_tl.training.setup import cached_feature_splits, make_loaders, resolve_config, tokenize_splits
from hf_tl.training.state import TrainState
from hf_tl.transfer import resolve_init_from_run


class ModelRun(RunKind):
    """What the TransferModel kinds share; a kind implements :meth:`learn`."""

    needs_features = False  # the heads need the backbone's features even with cache_features off
    standard_formats = True  # its model is backbone -> pooling -> head, which hf_tl.standard writes in standard forms
    prepares_model = False  # the model goes through accelerator.prepare (and may be sharded when saved)

    def execute(self, end_training: bool = True) -> dict:
        accelerator, run_dir, resume_from = open_run(self)
        # Every process reads and checks the raw data itself, so a data error stops all of them alike instead of
        # leaving the others waiting at a barrier.
        config, raw = resolve_config(self.config, need_train=self.needs_train_data)
        if any(d.silver_from for d in config.task_data().values()) and self.needs_train_data:
            raw, added = add_silver_pairs(raw, config)
            accelerator.print(f"hf_tl: {added} silver pairs scored by the teacher join the gold train pairs")
        if resume_from is not None:
            # Before anything in the run is rewritten.
            check_resumed_config(config, run_dir, resume_from, accelerator.num_processes)
        t = config.train
        built = build(config, apply_strategy=False)
        strategy, tasks, tokenizer = built.strategy, built.tasks, built.backbone.tokenizer
        if config.model.init_from_run and (strategy.is_peft or not strategy.trains_backbone_weights):
            save_initial_backbone(accelerator, built.model.backbone, tokenizer, run_dir)  # the base is not it
        model = strategy.apply(built.model)
        strategy.init_heads(model, tasks, built.backbone, config.model)
        report = trainable_report(model, strategy.name, strategy.describe(), strategy.stage_frozen_sets(model))
        check_engine(accelerator, config, strategy, report)
        # The first process on each machine fills the tokenized cache; the others then read what it wrote.
        with accelerator.local_main_process_first():
            splits, token_status = tokenize_splits(tasks, raw, store=t.cache_tokenized)
        if any(d.distill_from for d in config.task_data().values()) and self.needs_train_data:
            splits = distilled_targets(splits, raw, config, tasks)
        # What the model reads (a language-modelling task masks its rows here, afresh each epoch).
        splits = {name: {split: tasks[name].model_inputs(ds, split, t.seed) for split, ds in task_splits.items()}
                  for name, task_splits in splits.items()}
        notes = {name: head.note for name, head in model.heads.items() if getattr(head, "note", "")}
        for name, note in notes.items():
            accelerator.print(f"hf_tl: task {name} trains {note}")
        if accelerator.is_local_main_process and "hit" in token_status.values():
            print("hf_tl: tokens read from the cache of an earlier run: " + ", ".join(
                k for k, v in token_status.items() if v == "hit"), flush=True)
        cache_status = {}
        if strategy.fixed_features and (t.cache_features or self.needs_features):  # heads learn from features
            if shares_train_features(config):  # a cross-validation fold: cut from the whole train split's
                splits, cache_status = fold_feature_splits(model, config, tasks, tokenizer, accelerator,
                                                           store=t.cache_features)
            else:
                splits, cache_status = cached_feature_splits(model, splits, config, tokenizer, accelerator,
                                                             store=t.cache_features)
        with accelerator.main_process_first():  # evaluate copies the metric modules into its cache: once, main first
            evaluators = {name: task.evaluator() for name, task in tasks.items()}
        evaluator = next(iter(evaluators.values())) if len(evaluators) == 1 else MultiTaskEvaluator(evaluators)
        if t.metric_for_best_model and t.metric_for_best_model not in evaluator.metrics:
            raise HfTlError(f"metric_for_best_model '{t.metric_for_best_model}' is not computed by this run; choose "
                            f"one of {', '.join(evaluator.metrics)}.")
        metric_name = t.metric_for_best_model or evaluator.primary_metric
        loaders = make_loaders(splits, config, tokenizer, accelerator.num_processes)
        state = TrainState.load(resume_from) if resume_from else TrainState()
        record = RunRecord(run_dir, accelerator)
        record.start(config, report, state.history, state.global_step)

        start = time.perf_counter()
        if self.standard_formats and accelerator.is_main_process:  # its writer's library loads while the model learns
            import_in_background("sentence_transformers")
        model, state, figures, groups = self.learn(accelerator, config, model, strategy, splits, loaders, evaluators,
                                                   evaluator, metric_name, run_dir, record, state, resume_from)
        results = best_results(state.history, state.best_step, metric_name,
                               evaluator.greater_is_better_for(metric_name))
        results["train_runtime_s"] = round(time.perf_counter() - start, 2)
        results.update(figures)
        results["num_processes"] = accelerator.num_processes
        results["train_samples"] = {name: len(task_splits["train"]) for name, task_splits in splits.items()
                                    if "train" in task_splits}
        if cache_status:
            results["feature_cache"] = cache_status
        if notes:
            results["lm_head"] = notes
        base = config.model.model_name_or_path
        export_run(accelerator, model, strategy, tokenizer, run_dir, prepared=self.prepares_model,
                   base_hub_id=None if config.model.init_from_run or looks_like_path(base) else base)
        if accelerator.is_main_process:
            with write_guard(run_dir, resume_fix(run_dir)):  # read back from disk: what a loader will get
                write_root_model(run_dir, config, type(self))
        accelerator.wait_for_everyone()
        record.finish(config, results, training_info(accelerator, state, groups))
        if end_training:
            accelerator.end_training()
        return results

    @abstractmethod
    def learn(self, accelerator, config, model, strategy, splits, loaders, evaluators, evaluator, metric_name,
              run_dir, record, state, resume_from):
        """Train, fit or score the model; return ``(model, TrainState, speed figures, optimizer groups)``."""

    def describe(self) -> str:
        """Build the model the config describes and return its trainable-parameter report as text.

        The head's size can depend on the data (the number of labels), so the data is read and checked when needed.
        """
        config = resolve_init_from_run(self.config)
        if any(TASKS[d.task].needs_data(d) for d in config.task_data().values()):
            config, _ = resolve_config(config, need_train=self.needs_train_data)
        built = build(config)
        strategy = built.strategy
        return format_report(trainable_report(built.model, strategy.name, strategy.describe(),
                                              strategy.stage_frozen_sets(built.model)))

    @classmethod
    def load(cls, path: Path, config, device) -> LoadedRun:
        """Rebuild the run's model: its backbone (saved, or the base checkpoint), adapter, heads and tokenizer.

        A run whose strategy changed the backbone (or that started from another run's) loads only with its own
        saved weights: never the base checkpoint in their place.
        """
        strategy = get_strategy(config.strategy)
        needed = {HEADS_DIR: "its heads", TOKENIZER_DIR: "its tokenizer"}
        if strategy.is_peft:
            needed[ADAPTER_DIR] = "its adapter"
        own_backbone = (strategy.trains_backbone_weights and not strategy.is_peft) or config.model.init_from_run
        weights = backbone_weights(path)  # backbone/, or the root's standard model when it holds them
        missing = [(f"{path / folder}/", what) for folder, what in needed.items() if not (path / folder).is_dir()]
        if own_backbone and not weights.exists():
            missing.insert(0, (f"{weights}/" if weights.name == BACKBONE_DIR else str(weights),
                               "its trained backbone weights"))
        if missing:
            where, what = missing[0]
            raise HfTlError(f"Run '{path}' has lost {what} ({where} is missing), so it cannot load; restore it, "
                            f"or {unfinished_hint(path)}.")
        weights_dir = (weights if weights.is_dir() else weights.parent) if own_backbone else None
        built = build(config, apply_strategy=False, weights_dir=str(weights_dir) if weights_dir else None,
                      tokenizer_dir=str(path / TOKENIZER_DIR))
        model = built.model
        if (path / ADAPTER_DIR).is_dir():
            from peft import PeftModel

            model.backbone = PeftModel.from_pretrained(model.backbone, str(path / ADAPTER_DIR))
        load_heads(model.heads, path)
        return cls._ready(built, model, device)

    @classmethod
    def load_plain(cls, config, device) -> LoadedRun:
        """Load a plain model folder (``config.model.model_name_or_path``) as the zero-shot run ``config`` describes:
        its weights and tokenizer as they are, heads built by the strategy (nothing learned)."""
        built = build(config)
        return cls._ready(built, built.model, device)

    @staticmethod
    def _ready(built, model, device) -> LoadedRun:
        model = model.to(device).eval()
        tokenizer = built.backbone.tokenizer
        collate = PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side)

        @torch.inference_mode()
        def scores(inputs: list, task: str, batch_size: int) -> np.ndarray:
            spec = built.tasks[task]
            if not inputs:
                return np.zeros((0,))
            encoded = spec.encode([a for a, _ in inputs], [b for _, b in inputs]) if spec.pair else spec.encode(inputs)
            # Batches of similar length (little padding), longest first; the outputs go back to the inputs' order.
            order = sorted_by_length(encoded)
            outputs = []
            batches = range(0, len(order), batch_size)
            for start in tqdm(batches, desc="Predicting", leave=False, disable=len(batches) < 20):
                index = order[start:start + batch_size]
                batch = {k: v.to(device) for k, v in collate([{k: v[i] for k, v in encoded.items()}
                                                              for i in index]).items()}
                outputs.append(model(task=task, **batch)["predictions"].float().cpu())
            ordered = torch.cat(outputs).numpy()
            restored = np.empty_like(ordered)
            restored[order] = ordered
            return restored

        return LoadedRun(model=model, tasks=built.tasks, tokenizer=tokenizer, scores=scores)


@register_run_kind(TRAINED)
class TrainedRun(ModelRun):
    """Trained by gradient in the optimizer loop, with checkpoints to resume from."""

    prepares_model = True

    def learn(self, accelerator, config, model, strategy, splits, loaders, evaluators, evaluator, metric_name,
              run_dir, record, state, resume_from):
        from hf_tl.training.loop import fit  # the loop's libraries load when a run trains, not for a dry run

        return fit(config, accelerator, model, strategy, loaders, evaluators, evaluator, run_dir, record, state,
                   resume_from)


@register_run_kind(EVALUATED)
class EvaluatedRun(ModelRun):
    """Nothing learns: the model scores the dev set once, as the strategy built it."""

    needs_train_data = False

    def learn(self, accelerator, config, model, strategy, splits, loaders, evaluators, evaluator, metric_name,
              run_dir, record, state, resume_from):
        # No DDP wrapper: it refuses a model without trainable parameters, and nothing needs synchronising.
        model = model.to(accelerator.device)
        prepared = accelerator.prepare(*(loaders[n]["validation"] for n in loaders))
        prepared = prepared if isinstance(prepared, (list, tuple)) else [prepared]
        with accelerator.autocast():  # the precision the run asked for, as a prepared model would have
            metrics = evaluate(model, dict(zip(loaders, prepared)), accelerator, evaluators)
        entry = {"step": 0, "epoch": 0, **metrics}
        record.log_eval(entry)
        accelerator.print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        return model, TrainState(history=[entry], best_metric=metrics.get(metric_name)), {}, []


@register_run_kind(FITTED)
class FittedRun(EvaluatedRun):
    """The heads are fitted in closed form on the backbone's train features (every process alike), then scored."""

    needs_train_data = True
    needs_features = True

    def learn(self, accelerator, config, model, strategy, splits, loaders, evaluators, evaluator, metric_name,
              run_dir, record, state, resume_from):
        for name, estimator in strategy.fit_heads(model, splits, config.train.seed).items():
            accelerator.print(f"{name}: fitted {estimator}")
        return super().learn(accelerator, config, model, strategy, splits, loaders, evaluators, evaluator,
                             metric_name, run_dir, record, state, resume_from)
