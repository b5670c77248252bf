"""The training loop: a plain Accelerate loop, readable top to bottom.

setup -> (resume) -> for each epoch: train steps, evaluate + checkpoint, early stopping -> restore best -> save.
"""

from __future__ import annotations

import math
import time

import torch
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from hf_tl.builder import build
from hf_tl.errors import HfTlError
from hf_tl.metrics import MultiTaskEvaluator
from hf_tl.optim import build_optimizer
from hf_tl.report import format_report, trainable_report
from hf_tl.run_config import RunConfig
from hf_tl.run_dir import (
    CHECKPOINTS_DIR,
    LOG_FILE,
    append_jsonl,
    check_output_dir,
    find_checkpoint,
    prepare_output_dir,
    prune_checkpoints,
)
from hf_tl.run_info import training_info
from hf_tl.training.engines import SHARDED, check_engine
from hf_tl.training.evaluate import evaluate
from hf_tl.training.export import export_run, finish_run, save_initial_backbone, write_run_record
from hf_tl.training.sampling import TaskSchedule, TaskStreams
from hf_tl.training.setup import (
    cached_feature_splits,
    make_accelerator,
    make_loaders,
    resolve_config,
    tokenize_splits,
)
from hf_tl.training.state import TrainState


def train(config: RunConfig, end_training: bool = True) -> dict:
    """Train (or, for ``zero_shot``, only evaluate) one run and write its run directory.

    Args:
        config: The validated run config (one task, or several in ``tasks``).
        end_training: Release Accelerate at the end (its trackers and the process group); a run that another run
            follows in the same processes (setfit's body) keeps them.

    Returns:
        The best dev metrics (also in ``eval_results.json``).

    Raises:
        HfTlError: for any problem with the user's settings or data, before training starts.
    """
    if config.strategy.strategy == "setfit":  # two chained runs: a contrastive body, then a head on it
        from hf_tl.few_shot import train_setfit

        return train_setfit(config)
    t = config.train
    resuming = t.resume_from_checkpoint is not None
    accelerator = make_accelerator(config, t.output_dir or ".")
    # Every process checks the output directory (so a refusal stops all of them); only the main one changes it.
    run_dir = check_output_dir(t.output_dir, t.overwrite_output_dir, resuming)
    resume_from = find_checkpoint(run_dir, t.resume_from_checkpoint) if resuming else None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        prepare_output_dir(run_dir, t.overwrite_output_dir, resuming)
    accelerator.wait_for_everyone()

    set_seed(t.seed)
    # Every process reads and checks the data itself (in memory, nothing cached), so a data error stops all of
    # them alike instead of leaving the others waiting at a barrier.
    config, raw = resolve_config(config, need_train=config.strategy.strategy != "zero_shot")
    if config.strategy.strategy == "zero_shot" and config.strategy.zero_shot_method == "nli":
        from hf_tl.nli import run_nli  # the NLI checkpoint scores as it is: no backbone + head to build

        return run_nli(config, accelerator, run_dir, raw, end_training)
    built = build(config, apply_strategy=False)
    strategy = built.strategy
    if config.model.init_from_run and (strategy.is_peft or not strategy.trains_backbone_weights):
        # The run must hold the backbone it started from: its base checkpoint is not it.
        save_initial_backbone(accelerator, built.model.backbone, run_dir)
    model = strategy.apply(built.model)
    strategy.init_heads(model, built.tasks, built.backbone, config.model)
    report = trainable_report(model, strategy)
    check_engine(accelerator, config, strategy, report)
    splits = tokenize_splits(built.tasks, raw)
    cache_status = {}
    if strategy.fixed_features and (t.cache_features or strategy.fits_heads):  # heads train on features
        splits, cache_status = cached_feature_splits(model, splits, config, built.backbone.tokenizer, accelerator,
                                                     store=t.cache_features)
    if strategy.fits_heads:  # fitted in closed form here (every process alike); the loop then only evaluates
        for name, estimator in strategy.fit_heads(model, splits, t.seed).items():
            accelerator.print(f"{name}: fitted {estimator}")
    with accelerator.main_process_first():  # evaluate copies the metric modules into its cache: once, main first
        evaluators = {name: task.evaluator() for name, task in built.tasks.items()}
    evaluator = next(iter(evaluators.values())) if len(evaluators) == 1 else MultiTaskEvaluator(evaluators)
    if t.metric_for_best_model and t.metric_for_best_model not in evaluator.metrics:
        raise HfTlError(f"metric_for_best_model '{t.metric_for_best_model}' is not computed by this run; choose one "
                        f"of {', '.join(evaluator.metrics)}.")
    if resuming and report["trainable"] == 0:
        raise HfTlError(f"strategy '{strategy.name}' trains nothing, so there is nothing to resume; drop "
                        f"--resume_from_checkpoint.")
    loaders = make_loaders(splits, config, built.backbone.tokenizer, accelerator.num_processes)
    if accelerator.is_main_process:
        write_run_record(config, run_dir, report)
        accelerator.print(format_report(report))

    start = time.perf_counter()
    if report["trainable"] == 0:  # zero_shot, features: nothing trains by gradient, evaluate once
        # No DDP wrapper: it refuses a model without trainable parameters, and nothing needs synchronising.
        model = model.to(accelerator.device)
        eval_loaders = accelerator.prepare(*(loaders[n]["validation"] for n in loaders))
        eval_loaders = eval_loaders if isinstance(eval_loaders, (list, tuple)) else [eval_loaders]
        with accelerator.autocast():  # the precision the run asked for, as a prepared model would have
            metrics = evaluate(model, dict(zip(loaders, eval_loaders)), accelerator, evaluators)
        state = TrainState(history=[{"step": 0, "epoch": 0, **metrics}])
        if accelerator.is_main_process:
            (run_dir / LOG_FILE).write_text("")
            append_jsonl(run_dir / LOG_FILE, state.history[0])
        state.best_metric = metrics.get(t.metric_for_best_model or evaluator.primary_metric)
    else:
        model, state, fit_info = _fit(config, accelerator, model, strategy, loaders, evaluators, evaluator, run_dir,
                                      resume_from)
    results = _best_results(state, evaluator, config)
    results["train_runtime_s"] = round(time.perf_counter() - start, 2)
    if report["trainable"]:
        results.update(fit_info["speed"])
    results["num_processes"] = accelerator.num_processes
    results["train_samples"] = {name: len(task_splits["train"]) for name, task_splits in splits.items()
                                if "train" in task_splits}
    if cache_status:
        results["feature_cache"] = cache_status
    export_run(accelerator, model, strategy, built.backbone.tokenizer, run_dir, prepared=report["trainable"] > 0)
    if accelerator.is_main_process:
        groups = fit_info["param_groups"] if report["trainable"] else []
        finish_run(accelerator, config, run_dir, results, training_info(accelerator, state, groups))
    if end_training:
        accelerator.end_training()
    return results


def _fit(config, accelerator, model, strategy, loaders, evaluators, evaluator, run_dir, resume_from):
    t = config.train
    names = list(loaders)
    metric_name = t.metric_for_best_model or evaluator.primary_metric
    # Fused AdamW (one kernel for all parameters) on a GPU without a sharding engine; it needs the weights there.
    fused = accelerator.device.type == "cuda" and accelerator.distributed_type not in SHARDED
    if fused:
        model.to(accelerator.device)
    optimizer = build_optimizer(model, config, strategy.uses_layerwise_lr, fused=fused)
    groups = [{"name": g["name"], "learning_rate": g["lr"], "weight_decay": g["weight_decay"],
               "parameters": sum(p.numel() for p in g["params"])} for g in optimizer.param_groups]  # for the card
    model, optimizer, *prepared = accelerator.prepare(
        model, optimizer, *(loaders[n]["train"] for n in names), *(loaders[n]["validation"] for n in names))
    train_loaders, eval_loaders = dict(zip(names, prepared[:len(names)])), dict(zip(names, prepared[len(names):]))
    schedule = TaskSchedule({n: len(dl) for n, dl in train_loaders.items()}, t.task_sampling, t.sampling_temperature,
                            t.seed, multiple_of=t.gradient_accumulation_steps)
    steps_per_epoch = math.ceil(schedule.epoch_length / t.gradient_accumulation_steps)
    total_steps = t.max_steps or math.ceil(t.num_train_epochs * steps_per_epoch)
    strategy.plan(total_steps)
    # A prepared scheduler steps once per process per optimizer step, so it is sized for all processes.
    scheduler = accelerator.prepare(get_scheduler(
        t.lr_scheduler_type, optimizer, num_warmup_steps=int(t.warmup_ratio * total_steps) * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes))
    unwrapped = accelerator.unwrap_model(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    fsdp = accelerator.distributed_type == DistributedType.FSDP
    if t.report_to != "none":
        accelerator.init_trackers("hf_tl", config={k: v for k, v in config.to_flat_dict().items()
                                                   if isinstance(v, (int, float, str, bool))})

    state = TrainState()
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        state = TrainState.load(resume_from)
        accelerator.print(f"Resumed from {resume_from} at step {state.global_step}")
    # from_pretrained leaves the backbone in eval mode; training needs dropout on (a frozen backbone stays in eval).
    model.train()
    if accelerator.is_main_process:  # the log holds exactly the evaluations of this run's history
        (run_dir / LOG_FILE).write_text("")
        for record in state.history:
            append_jsonl(run_dir / LOG_FILE, record)

    streams = TaskStreams(train_loaders, accelerator, state.task_passes, state.task_batches)
    progress = tqdm(total=total_steps, initial=state.global_step, disable=not accelerator.is_local_main_process,
                    desc=f"{strategy.name}")
    running_loss, loss_steps, stop, window = torch.zeros((), device=accelerator.device), 0, False, set()
    # Training speed, evaluation and checkpoints excluded: samples and real (unpadded) tokens per second.
    first_step, eval_seconds, loop_start = state.global_step, 0.0, time.perf_counter()
    tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)  # summed on the device: no sync per step
    while not stop and state.global_step < total_steps:
        for task in schedule.tasks_for_epoch(state.epoch)[state.batches_in_epoch:]:
            batch = streams.next(task)
            window.add(task)
            for mask in ("attention_mask", "attention_mask_b"):
                if mask in batch:
                    tokens += batch[mask].sum()
            with accelerator.accumulate(model):
                loss = model(task=task, **batch)["loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    strategy.before_optimizer_step(unwrapped, state.global_step, state.epoch)
                    _drop_idle_head_grads(unwrapped, window)
                    if t.max_grad_norm:
                        # FSDP clips by the global norm only when given all of the model's parameters.
                        accelerator.clip_grad_norm_(model.parameters() if fsdp else trainable, t.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_in_epoch += 1
            state.task_passes, state.task_batches = dict(streams.passes), dict(streams.consumed)
            running_loss += loss.detach()
            loss_steps += 1
            if not accelerator.sync_gradients:
                continue
            window = set()
            stage = strategy.stage_at(state.global_step, state.epoch)  # the stage this step trained in
            state.global_step += 1
            progress.update(1)
            if state.global_step % t.logging_steps == 0:  # the only place the loss is read back to the host
                train_loss = accelerator.reduce(running_loss / loss_steps, "mean").item()
                progress.set_postfix(loss=f"{train_loss:.4f}")
                accelerator.log({"train_loss": train_loss, "lr": scheduler.get_last_lr()[0]}, step=state.global_step)
                running_loss.zero_()
                loss_steps = 0
            end_of_epoch = state.batches_in_epoch == schedule.epoch_length
            if end_of_epoch:  # a checkpoint taken now resumes at the start of the next epoch
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
            if (t.eval_strategy == "steps" and state.global_step % t.eval_steps == 0) or (
                    t.eval_strategy == "epoch" and end_of_epoch) or state.global_step >= total_steps:
                eval_start = time.perf_counter()
                stop = _evaluate_and_checkpoint(accelerator, model, eval_loaders, evaluators, evaluator, stage,
                                                state, metric_name, run_dir, t)
                eval_seconds += time.perf_counter() - eval_start
            if stop or state.global_step >= total_steps or end_of_epoch:
                break
        else:  # the epoch's batches ran out between optimizer steps (cannot happen with aligned epochs); move on
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    progress.close()
    seconds = max(time.perf_counter() - loop_start - eval_seconds, 1e-9)  # before restoring the best checkpoint
    if state.best_checkpoint:  # finish with the best weights, not the last
        accelerator.load_state(str(run_dir / CHECKPOINTS_DIR / state.best_checkpoint))
    accelerator.wait_for_everyone()
    samples = (state.global_step - first_step) * t.per_device_train_batch_size * t.gradient_accumulation_steps \
        * accelerator.num_processes
    all_tokens = accelerator.reduce(tokens, "sum").item()
    speed = {"train_loop_s": round(seconds, 2), "train_samples_per_second": round(samples / seconds, 2)}
    if all_tokens:  # batches of cached features carry no tokens
        speed["train_tokens_per_second"] = round(all_tokens / seconds, 1)
    if accelerator.device.type == "cuda":
        speed["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(accelerator.device) / 2 ** 20)
    return model, state, {"speed": speed, "param_groups": groups}


def _drop_idle_head_grads(model, window: set[str]) -> None:
    """Give the heads of tasks absent from this accumulation window no gradient, so AdamW leaves them alone.

    Distributed training zero-fills gradients of parameters a step did not use; a zero gradient would still move
    an idle head through AdamW's momentum and weight decay.
    """
    for name, head in model.heads.items():
        if name not in window:
            for p in head.parameters():
                p.grad = None


def _evaluate_and_checkpoint(accelerator, model, eval_loaders, evaluators, evaluator, stage, state, metric_name,
                             run_dir, t):
    """Evaluate, log, checkpoint, and return whether early stopping ends training."""
    metrics = evaluate(model, eval_loaders, accelerator, evaluators)
    record = {"step": state.global_step, "epoch": state.epoch, "stage": stage, **metrics}
    state.history.append(record)
    ckpt = run_dir / CHECKPOINTS_DIR / f"checkpoint-{state.global_step}"
    if evaluator.is_better(metrics[metric_name], state.best_metric, metric_name):
        state.best_metric, state.best_checkpoint, state.evals_without_improvement = metrics[metric_name], ckpt.name, 0
    else:
        state.evals_without_improvement += 1
    accelerator.log({f"eval_{k}": v for k, v in metrics.items()}, step=state.global_step)
    accelerator.save_state(str(ckpt))
    if accelerator.is_main_process:
        state.save(ckpt)
        append_jsonl(run_dir / LOG_FILE, record)
        prune_checkpoints(run_dir, {ckpt, run_dir / CHECKPOINTS_DIR / (state.best_checkpoint or ckpt.name)})
    accelerator.print(f"step {state.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                                if isinstance(v, float)))
    accelerator.wait_for_everyone()
    return t.early_stopping_patience is not None and state.evals_without_improvement >= t.early_stopping_patience


def _best_results(state: TrainState, evaluator, config: RunConfig) -> dict:
    metric_name = config.train.metric_for_best_model or evaluator.primary_metric
    best = next((r for r in state.history if r.get(metric_name) == state.best_metric), None)
    best = best or (state.history[-1] if state.history else {})
    return {"best_step": best.get("step"), "metric_for_best_model": metric_name,
            "greater_is_better": evaluator.greater_is_better_for(metric_name),
            **{(k if k.startswith("eval_") else f"eval_{k}"): v for k, v in best.items()
               if k not in ("step", "epoch", "stage")}}
