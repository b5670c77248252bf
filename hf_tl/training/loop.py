"""The optimizer loop: a plain Accelerate loop, readable top to bottom in :func:`fit`.

prepare (optimizer, schedule, Accelerate) -> (resume) -> for each epoch: micro-batches, optimizer steps, the loss
logged, evaluate + checkpoint, early stopping -> restore the best checkpoint. It knows nothing of run kinds: the run
(:mod:`hf_tl.runs`) builds the model, the data and the record it writes to, and saves what it returns.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace

import torch
from accelerate.utils import DistributedType
from tqdm.auto import tqdm
from transformers import get_scheduler

from hf_tl.errors import HfTlError
from hf_tl.optim import build_optimizer
from hf_tl.run_dir import (
    CHECKPOINTS_DIR,
    WEIGHTS_FILE,
    checkpoint_name,
    checkpoint_staging,
    commit_checkpoint,
    numbered_checkpoints,
    prune_checkpoints,
    resume_fix,
)
from hf_tl.safe_io import write_guard
from hf_tl.training.engines import SHARDED
from hf_tl.training.evaluate import evaluate
from hf_tl.training.sampling import TaskSchedule, TaskStreams, total_optimizer_steps
from hf_tl.training.speed import SpeedMeter
from hf_tl.training.state import TrainState


def fit(config, accelerator, model, strategy, loaders: dict, evaluators: dict, evaluator, run_dir, record,
        state: TrainState | None = None, resume_from=None):
    """Train ``model`` until the run's steps are done or early stopping ends it, then restore its best checkpoint.

    Args:
        config: The run config.
        accelerator: The run's Accelerator.
        model: The TransferModel, strategy applied (not yet prepared).
        strategy: The applied strategy (stages, layer-wise learning rates, gradients dropped before a step).
        loaders: ``{task: {"train": DataLoader, "validation": DataLoader}}``.
        evaluators: ``{task: Evaluator}``; ``evaluator`` is their combination (one task: its own).
        evaluator: Picks the best checkpoint and decides early stopping.
        run_dir: Where checkpoints go.
        record: The run's :class:`hf_tl.runs.record.RunRecord` (evaluations and losses are logged to it).
        state: The progress of a resumed run (its checkpoint's ``TrainState``); None for a new run.
        resume_from: The checkpoint folder to resume from.

    Returns:
        ``(prepared model, final TrainState, speed figures, optimizer parameter groups)``.
    """
    t = config.train
    metric_name = t.metric_for_best_model or evaluator.primary_metric
    setup = _prepare(config, accelerator, model, strategy, loaders)
    model, state = setup.model, state or TrainState()
    if resume_from is not None:
        _load_checkpoint(accelerator, resume_from, setup.unwrapped)
        accelerator.print(f"Resumed from {resume_from} at step {state.global_step}")
        rebased = state.rebase_best(run_dir / CHECKPOINTS_DIR, resume_from, metric_name)
        if rebased:
            accelerator.print(f"hf_tl: {rebased}")
    model.train()  # from_pretrained leaves the backbone in eval mode (a frozen backbone stays there)
    streams = TaskStreams(setup.train_loaders, accelerator, state.task_passes, state.task_batches)
    progress = tqdm(total=setup.total_steps, initial=state.global_step, desc=strategy.name,
                    disable=not accelerator.is_local_main_process)
    speed = SpeedMeter(accelerator, state.global_step)
    loss_sum, loss_steps, stop, window = torch.zeros((), device=accelerator.device), 0, False, set()
    first_bad = torch.full((), -1, device=accelerator.device)  # the step whose loss was first non-finite, or -1
    try:  # the bar ends its line even when the run stops with an error, so the message starts a new one
        while not stop and state.global_step < setup.total_steps:
            for task in setup.schedule.tasks_for_epoch(state.epoch)[state.batches_in_epoch:]:
                batch = streams.next(task)
                strategy.on_step(setup.unwrapped, state.global_step, state.epoch)
                window.add(task)
                speed.count_tokens(batch)
                loss = _micro_step(accelerator, setup, strategy, state, batch, task, window, t.max_grad_norm)
                # Marked on the device (no sync); read where the host waits anyway: logging, evaluation.
                first_bad.masked_fill_(~torch.isfinite(loss) & (first_bad < 0), state.global_step + 1)
                loss_sum += loss
                loss_steps += 1
                state.batches_in_epoch += 1
                state.task_passes, state.task_batches = dict(streams.passes), dict(streams.consumed)
                if not accelerator.sync_gradients:  # inside an accumulation window
                    continue
                window = set()
                stage = strategy.stage_at(state.global_step, state.epoch)  # the stage this step trained in
                state.global_step += 1
                progress.update(1)
                if state.global_step % t.logging_steps == 0:  # the only place the loss is read back to the host
                    loss = _log_loss(accelerator, setup, state, loss_sum / loss_steps, record, progress, first_bad,
                                     run_dir, t.learning_rate, speed.training_seconds())
                    loss_sum, loss_steps = torch.zeros_like(loss), 0
                end_of_epoch = state.batches_in_epoch == setup.schedule.epoch_length
                if end_of_epoch:  # a checkpoint taken now resumes at the start of the next epoch
                    state.epoch, state.batches_in_epoch = state.epoch + 1, 0
                if (t.eval_strategy == "steps" and state.global_step % t.eval_steps == 0) or (
                        t.eval_strategy == "epoch" and end_of_epoch) or state.global_step >= setup.total_steps:
                    with speed.paused():
                        # Nothing non-finite is evaluated or saved as a checkpoint.
                        _stop_if_diverged(accelerator, first_bad, run_dir, t.learning_rate, setup.trainable,
                                          state.global_step)
                        stop = _evaluate_and_checkpoint(accelerator, model, setup.eval_loaders, evaluators, evaluator,
                                                        stage, state, metric_name, run_dir, t, record, progress,
                                                        last_step=state.global_step >= setup.total_steps,
                                                        selectable=strategy.counts_for_best(stage))
                if stop or state.global_step >= setup.total_steps or end_of_epoch:
                    break
            else:  # the epoch's batches ran out between optimizer steps (cannot happen with aligned epochs); move on
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
    finally:
        progress.close()
    figures = speed.figures(state.global_step, t.per_device_train_batch_size * t.gradient_accumulation_steps)
    if state.best_checkpoint and state.best_checkpoint != checkpoint_name(state.global_step):
        # Finish with the best weights, not the last (the last ones, when best, are already in the model).
        _load_checkpoint(accelerator, run_dir / CHECKPOINTS_DIR / state.best_checkpoint, setup.unwrapped)
    accelerator.wait_for_everyone()
    return model, state, figures, setup.param_groups


@dataclass
class _Setup:
    """The prepared pieces of a training run."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loaders: dict
    eval_loaders: dict
    schedule: TaskSchedule
    total_steps: int
    param_groups: list[dict]  # name, learning rate, weight decay and size of each optimizer group (for the card)
    trainable: list  # the parameters clipped together
    unwrapped: torch.nn.Module
    clip_all: bool  # FSDP clips by the global norm only when given all of the model's parameters


def _prepare(config, accelerator, model, strategy, loaders: dict) -> _Setup:
    """The optimizer, the task schedule and the learning-rate schedule, all prepared by Accelerate."""
    t = config.train
    names = list(loaders)
    # Fused AdamW (one kernel for all parameters, on a GPU or the CPU: 8x faster than the per-tensor loop for
    # MiniLM on 2 cores) without a sharding engine, which brings its own; it needs the weights on the device first.
    fused = accelerator.device.type in ("cuda", "cpu") and accelerator.distributed_type not in SHARDED
    if fused:
        model.to(accelerator.device)
    optimizer = build_optimizer(model, config, strategy.uses_layerwise_lr, fused=fused)
    groups = [{"name": g["name"], "learning_rate": g["lr"], "weight_decay": g["weight_decay"],
               "parameters": sum(p.numel() for p in g["params"])} for g in optimizer.param_groups]

    def lr_schedule(lengths: dict):
        schedule = TaskSchedule(lengths, t.task_sampling, t.sampling_temperature, t.seed,
                                multiple_of=t.gradient_accumulation_steps)
        total_steps = total_optimizer_steps(t, schedule.epoch_length)
        strategy.plan(total_steps)
        # A prepared scheduler steps once per process per optimizer step, so it is sized for all processes.
        return schedule, total_steps, get_scheduler(
            t.lr_scheduler_type, optimizer,
            num_warmup_steps=int(t.warmup_ratio * total_steps) * accelerator.num_processes,
            num_training_steps=total_steps * accelerator.num_processes)

    # DeepSpeed prepares the scheduler (stepped with the optimizer, saved in checkpoints) only together with the model
    # and optimizer, so it is sized first, from each process's share of the train batches: Accelerate's even batches
    # give every process ceil(batches / processes).
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    if deepspeed:
        lengths = {n: math.ceil(len(loaders[n]["train"]) / accelerator.num_processes) for n in names}
        schedule, total_steps, scheduler = lr_schedule(lengths)
    model, optimizer, *prepared = accelerator.prepare(
        model, optimizer, *([scheduler] if deepspeed else []), *(loaders[n]["train"] for n in names),
        *(loaders[n]["validation"] for n in names))
    if deepspeed:
        scheduler, *prepared = prepared
    train_loaders, eval_loaders = dict(zip(names, prepared[:len(names)])), dict(zip(names, prepared[len(names):]))
    sharded = {n: len(dl) for n, dl in train_loaders.items()}
    if not deepspeed:
        schedule, total_steps, scheduler = lr_schedule(sharded)
        scheduler = accelerator.prepare(scheduler)
    elif sharded != lengths:
        raise HfTlError(f"The DeepSpeed learning-rate schedule was sized for {lengths} train batches per process, "
                        f"but the prepared loaders have {sharded}; keep Accelerate's even_batches on and "
                        f"split_batches off.")
    if t.report_to != "none":
        accelerator.init_trackers("hf_tl", config={k: v for k, v in config.to_flat_dict().items()
                                                   if isinstance(v, (int, float, str, bool))})
    return _Setup(model, optimizer, scheduler, train_loaders, eval_loaders, schedule, total_steps, groups,
                  [p for p in model.parameters() if p.requires_grad], accelerator.unwrap_model(model),
                  accelerator.distributed_type == DistributedType.FSDP)


def _micro_step(accelerator, setup: _Setup, strategy, state: TrainState, batch: dict, task: str, window: set,
                max_grad_norm: float) -> torch.Tensor:
    """Forward and backward one micro-batch; at the end of an accumulation window, step the optimizer.

    Returns:
        The micro-batch's loss, detached (still on the device).
    """
    with accelerator.accumulate(setup.model):
        out = setup.model(task=task, **batch)
        loss = out["loss"]
        if "loss_tokens" in out and accelerator.num_processes > 1:
            # A token-averaged loss: every token of the step weighs the same, however the processes' shares of
            # predicted tokens differ (MLM masks, unpacked rows). The gradients' average over processes then equals
            # one process's over the whole batch.
            total = accelerator.reduce(out["loss_tokens"].detach(), "sum").clamp(min=1)
            loss = loss * out["loss_tokens"] * accelerator.num_processes / total
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            strategy.before_optimizer_step(setup.unwrapped, state.global_step, state.epoch)
            _drop_idle_head_grads(setup.unwrapped, window)
            if max_grad_norm:
                accelerator.clip_grad_norm_(setup.model.parameters() if setup.clip_all else setup.trainable,
                                            max_grad_norm)
        setup.optimizer.step()
        setup.scheduler.step()
        setup.optimizer.zero_grad()
    return loss.detach()


def _log_loss(accelerator, setup: _Setup, state: TrainState, mean_loss: torch.Tensor, record, progress,
              first_bad: torch.Tensor, run_dir, learning_rate: float, seconds: float) -> torch.Tensor:
    """Average the loss over processes and log it: progress bar, trackers, ``train_log.jsonl``.

    Raises:
        HfTlError: when the loss became non-finite (see :func:`_stop_if_diverged`).
    """
    train_loss = accelerator.reduce(mean_loss, "mean").item()
    if not math.isfinite(train_loss):
        _stop_if_diverged(accelerator, first_bad, run_dir, learning_rate)
    lr = setup.scheduler.get_last_lr()[0]
    progress.set_postfix(loss=f"{train_loss:.4f}")
    accelerator.log({"train_loss": train_loss, "lr": lr}, step=state.global_step)
    record.log_train({"step": state.global_step, "epoch": state.epoch, "train_loss": train_loss,
                      "learning_rate": lr, "train_s": round(seconds, 3)})
    return mean_loss


def _stop_if_diverged(accelerator, first_bad: torch.Tensor, run_dir, learning_rate: float, params=None,
                      step: int = 0) -> None:
    """Stop a run whose loss (or, when ``params`` are given, a weight) became non-finite, before it logs or saves
    anything computed from it.

    Raises:
        HfTlError: naming the step, the checkpoint kept and what to change.
    """
    bad = first_bad.reshape(1).clone()
    if params:
        # FSDP2 holds each parameter as a DTensor: every process checks its own shard (the gather below joins them).
        finite = torch.stack([torch.isfinite(p.to_local() if hasattr(p, "to_local") else p).all()
                              for p in params]).all()
        bad.masked_fill_(~finite & (bad < 0), step)
    step = int(accelerator.gather(bad).max().item())  # every process stops alike
    if step < 0:
        return
    kept = numbered_checkpoints(run_dir / CHECKPOINTS_DIR)
    kept_text = f"its last good checkpoint, {kept[-1].name}, is kept" if kept else "no checkpoint had been written"
    raise HfTlError(f"Training diverged: the loss became non-finite at step {step}, so the run stopped ({kept_text}); "
                    f"lower --learning_rate (now {learning_rate:g}) and train again with --overwrite_output_dir.")


def _load_checkpoint(accelerator, checkpoint, unwrapped) -> None:
    """Load a checkpoint into the prepared objects (a weights-only one into the model alone).

    Raises:
        HfTlError: naming the checkpoint when it cannot be read (damaged after it was written).
    """
    try:
        if TrainState.load(checkpoint).weights_only:
            from safetensors.torch import load_model

            load_model(unwrapped, str(checkpoint / WEIGHTS_FILE))
        else:
            accelerator.load_state(str(checkpoint))
    except Exception as err:  # a damaged file surfaces as whatever its reader raises
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise HfTlError(f"Checkpoint '{checkpoint}' cannot be loaded ({type(err).__name__}: {first}); resume from "
                        f"another one with --resume_from_checkpoint PATH, or train again with "
                        f"--overwrite_output_dir.") from None


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
                             run_dir, t, record, progress, last_step: bool, selectable: bool = True):
    """Evaluate, log, checkpoint, and return whether early stopping ends training.

    A checkpoint is written when it serves something: resuming a run that goes on (or a finished one, with
    ``save_total_limit`` > 0), or restoring the best weights later. At the end of a run with nothing to keep, the
    weights in memory are the ones exported, so none is written.
    """
    metrics = evaluate(model, eval_loaders, accelerator, evaluators)
    entry = {"step": state.global_step, "epoch": state.epoch, "stage": stage, **metrics}
    state.history.append(entry)
    ckpt = run_dir / CHECKPOINTS_DIR / checkpoint_name(state.global_step)
    # A stage whose model is not the final one (fewer blocks) is neither chosen nor counted for early stopping.
    if selectable and evaluator.is_better(metrics[metric_name], state.best_metric, metric_name):
        state.best_metric, state.best_checkpoint, state.evals_without_improvement = metrics[metric_name], ckpt.name, 0
    elif selectable:
        state.evals_without_improvement += 1
    stop = t.early_stopping_patience is not None and state.evals_without_improvement >= t.early_stopping_patience
    accelerator.log({f"eval_{k}": v for k, v in metrics.items()}, step=state.global_step)
    if not (last_step or stop) or (t.save_total_limit and not t.save_only_model):
        _save_checkpoint(accelerator, model, state, ckpt, run_dir, t.save_only_model)
    if accelerator.is_main_process:
        record.log_eval(entry)
        prune_checkpoints(run_dir, {ckpt, run_dir / CHECKPOINTS_DIR / (state.best_checkpoint or ckpt.name)})
        # Written through the progress bar, so the line does not land inside it.
        progress.write(f"step {state.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                                 if isinstance(v, float)))
    accelerator.wait_for_everyone()
    return stop


def _save_checkpoint(accelerator, model, state: TrainState, ckpt, run_dir, weights_only: bool) -> None:
    """Write a checkpoint under a staging name and rename it into place once every process wrote its part."""
    staging = checkpoint_staging(ckpt)  # renamed to ckpt once whole: a kill meanwhile leaves no checkpoint-N
    try:
        with write_guard(ckpt, resume_fix(run_dir)):
            if weights_only:  # weights alone (save_only_model; sharded engines are refused it up front)
                if accelerator.is_main_process:
                    from safetensors.torch import save_model

                    staging.mkdir(parents=True, exist_ok=True)
                    save_model(accelerator.unwrap_model(model), str(staging / WEIGHTS_FILE))
            else:
                accelerator.save_state(str(staging))
            accelerator.wait_for_everyone()  # every process has written its part
            if accelerator.is_main_process:
                replace(state, weights_only=weights_only).save(staging)  # written last: a checkpoint with it is whole
                commit_checkpoint(staging, ckpt)
    except BaseException:
        if accelerator.is_main_process:  # free what the failed write took (a kill leaves it to the next run)
            shutil.rmtree(staging, ignore_errors=True)
        raise
