"""Typed configuration of a run, its training group: how the Accelerate loop trains, evaluates, checkpoints and
logs (:mod:`hf_tl.config` holds the model, data and strategy groups and re-exports this one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hf_tl.choices import (
    EVAL_STRATEGIES,
    PRECISIONS,
    SAMPLING_SCHEMES,
    TRACKERS,
    check_choice,
    check_positive,
)
from hf_tl.errors import HfTlError


@dataclass
class TrainArguments:
    """How the Accelerate loop trains, evaluates, checkpoints and logs."""

    _argument_group_name = "train"  # the section of --help (HfArgumentParser)

    output_dir: Optional[str] = field(default=None, metadata={"help": "The run directory to write."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start over in an output_dir that holds a run (the old run is moved aside)."}
    )
    resume_from_checkpoint: Optional[str] = field(
        default=None, metadata={"help": "A checkpoint folder of this run, or 'latest', to continue training."}
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs to train (fractions allowed)."})
    max_steps: Optional[int] = field(default=None, metadata={"help": "Optimizer steps to train; overrides epochs."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Train batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Eval batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate of the backbone."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on biases and norms)."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps with linear warmup."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "transformers scheduler name after warmup."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 = off)."})
    mixed_precision: str = field(default="no", metadata={"choices": PRECISIONS, "help": "no, fp16 or bf16."})
    seed: int = field(default=42, metadata={"help": "Seed for weights of the head, shuffling and dropout."})
    eval_strategy: str = field(
        default="epoch", metadata={"choices": EVAL_STRATEGIES, "help": "Evaluate every 'epoch' or every eval_steps."}
    )
    eval_steps: int = field(default=500, metadata={"help": "Optimizer steps between evaluations (with steps)."})
    metric_for_best_model: Optional[str] = field(
        default=None, metadata={"help": "Metric that picks the best checkpoint (default: the task's primary)."}
    )
    early_stopping_patience: Optional[int] = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement."}
    )
    save_total_limit: int = field(
        default=1,
        metadata={"help": "Checkpoints a finished run keeps (the newest; each holds what --resume_from_checkpoint "
                          "needs to train on); 0 keeps none. While training, the last and the best are kept."},
    )
    save_only_model: bool = field(
        default=False,
        metadata={"help": "Checkpoints hold the weights only (for picking the best), not the optimizer, schedule and "
                          "random states: a third of the size and faster to write, but a run cannot resume from "
                          "them."},
    )
    pad_to_multiple_of: Optional[int] = field(default=None, metadata={"help": "Pad batches to a multiple of N."})
    torch_compile: bool = field(
        default=False,
        metadata={"help": "Compile the model with torch.compile (Accelerate's dynamo plugin, inductor, dynamic shapes "
                          "so batches of new lengths do not recompile)."},
    )
    group_by_length: bool = field(
        default=True,
        metadata={"help": "Batch texts of similar length together (less padding), in a new random order each epoch; "
                          "false = plain random batches."},
    )
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    cpu_threads: Optional[int] = field(
        default=None,
        metadata={"help": "Without a GPU: CPU threads per process (default: the machine's cores shared equally by "
                          "its processes, also under accelerate launch, which would otherwise set one)."},
    )
    logging_steps: int = field(default=50, metadata={"help": "Optimizer steps between training-loss logs."})
    report_to: str = field(
        default="none", metadata={"choices": TRACKERS, "help": "Tracker: none, tensorboard, wandb, mlflow or all."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Print what would train and exit."})
    cache_features: bool = field(
        default=True,
        metadata={"help": "frozen: compute the backbone's features once, store them on disk, and train the head "
                          "from them (later epochs and runs with the same checkpoint, settings and data skip the "
                          "backbone)."},
    )
    feature_cache_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Folder of the feature cache (default: env HF_TL_FEATURE_CACHE, else "
                          "~/.cache/hf_tl/features)."},
    )
    cache_tokenized: bool = field(
        default=True,
        metadata={"help": "Store each split's tokens on disk and reuse them in later runs with the same data file, "
                          "data settings, tokenizer and max_length (default folder: env HF_TL_TOKENIZED_CACHE, else "
                          "~/.cache/hf_tl/tokenized)."},
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "Upload the finished run to the Hub as hub_model_id (main process only)."}
    )
    hub_model_id: Optional[str] = field(default=None, metadata={"help": "The Hub repo to push to, e.g. user/name."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    task_sampling: str = field(
        default="proportional",
        metadata={"choices": SAMPLING_SCHEMES,
                  "help": "Multi-task: which task each batch comes from: proportional (to train size), equal, or "
                          "temperature (size ** (1 / sampling_temperature))."},
    )
    sampling_temperature: float = field(
        default=2.0, metadata={"help": "Multi-task temperature sampling: 1 = proportional, larger = more equal."}
    )

    def __post_init__(self):
        check_positive("num_train_epochs", self.num_train_epochs)
        if self.max_steps is not None:
            check_positive("max_steps", self.max_steps)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            check_positive(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if not 0 <= self.warmup_ratio < 1:
            raise HfTlError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        check_choice("mixed_precision", self.mixed_precision, PRECISIONS)
        check_choice("eval_strategy", self.eval_strategy, EVAL_STRATEGIES)
        check_positive("eval_steps", self.eval_steps)
        check_positive("logging_steps", self.logging_steps)
        check_positive("save_total_limit", self.save_total_limit, allow_zero=True)
        if self.cpu_threads is not None:
            check_positive("cpu_threads", self.cpu_threads)
        check_choice("report_to", self.report_to, TRACKERS)
        if self.report_to not in ("none", "all"):
            import importlib.util

            if importlib.util.find_spec(self.report_to) is None:
                raise HfTlError(f"report_to {self.report_to} needs the '{self.report_to}' package; "
                                f"pip install {self.report_to}, or set report_to none.")
        if self.early_stopping_patience is not None:
            check_positive("early_stopping_patience", self.early_stopping_patience)
        if self.push_to_hub and not self.hub_model_id:
            raise HfTlError("push_to_hub needs hub_model_id (the repo to create or update, e.g. user/name).")
        check_choice("task_sampling", self.task_sampling, SAMPLING_SCHEMES)
        check_positive("sampling_temperature", self.sampling_temperature)
