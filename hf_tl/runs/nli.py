"""The ``nli`` run kind: an NLI cross-encoder scores the dev set as it is, by entailment (zero_shot_method nli).

There is no backbone + head to build: the checkpoint's own sequence-classification model scores each text against
one hypothesis per label (:class:`hf_tl.nli.NliScorer`). The run directory holds the usual record and the
tokenizer; ``config.yaml`` names the checkpoint, which is the model.
"""

from __future__ import annotations

import time
from pathlib import Path

from hf_tl.errors import HfTlError
from hf_tl.nli import NliScorer, evaluate_nli
from hf_tl.report import trainable_report
from hf_tl.run_dir import RESULTS_FILE, TOKENIZER_DIR, mark_unfinished, resume_fix
from hf_tl.run_info import training_info
from hf_tl.runs.base import LoadedRun, RunKind, open_run, register_run_kind
from hf_tl.runs.record import RunRecord, best_results
from hf_tl.safe_io import staged_dir, write_guard
from hf_tl.strategies.zero_shot import NLI
from hf_tl.tasks import get_task
from hf_tl.training.setup import resolve_config
from hf_tl.training.state import TrainState


@register_run_kind(NLI)
class NliRun(RunKind):
    """Zero-shot classification by an NLI checkpoint's entailment; nothing trains."""

    needs_train_data = False

    def execute(self, end_training: bool = True) -> dict:
        if self.config.is_multitask or self.config.model.init_from_run:
            raise HfTlError("zero_shot_method nli scores one task with an NLI checkpoint as it is; drop tasks and "
                            "init_from_run.")
        accelerator, run_dir, _ = open_run(self)
        config, raw = resolve_config(self.config, need_train=False)
        start = time.perf_counter()
        name, data = next(iter(config.task_data().items()))
        task = get_task(data, None, config.model.max_length)
        dev = task.prepare_split(raw[name]["validation"], "validation")  # the data is checked before the model loads
        scorer = NliScorer(config.model, task, config.strategy.nli_hypothesis_template, device=accelerator.device)
        description = (f"zero_shot (nli): nothing trains; the NLI checkpoint scores '{scorer.hypotheses[0]}' and the "
                       f"other labels' hypotheses by entailment")
        record = RunRecord(run_dir, accelerator)
        record.start(config, trainable_report(scorer.model, self.strategy.name, description, part="nli cross-encoder"))
        metrics = evaluate_nli(config, accelerator, task, scorer, dev)
        entry = {"step": 0, "epoch": 0, **metrics}
        record.log_eval(entry)
        accelerator.print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        with accelerator.main_process_first():
            evaluator = task.evaluator()
        state = TrainState(history=[entry], best_metric=metrics[evaluator.primary_metric])
        results = best_results(state.history, None, evaluator.primary_metric,
                               evaluator.greater_is_better)
        results.update({"train_runtime_s": round(time.perf_counter() - start, 2),
                        "num_processes": accelerator.num_processes, "train_samples": {}})
        if accelerator.is_main_process:
            mark_unfinished(run_dir)
            with write_guard(run_dir, resume_fix(run_dir)), staged_dir(run_dir / TOKENIZER_DIR) as folder:
                scorer.tokenizer.save_pretrained(str(folder))
        record.finish(config, results, training_info(accelerator, state, []))
        if end_training:
            accelerator.end_training()
        return results

    @classmethod
    def load(cls, path: Path, config, device) -> LoadedRun:
        """The checkpoint named in ``config.yaml``, with the run's tokenizer."""
        if not (path / RESULTS_FILE).is_file():
            raise HfTlError(f"'{path}' is not a finished hf_tl run (no {RESULTS_FILE}); pass the output_dir of a "
                            f"completed run.")
        name, data = next(iter(config.task_data().items()))
        task = get_task(data, None, config.model.max_length)
        scorer = NliScorer(config.model, task, config.strategy.nli_hypothesis_template,
                           tokenizer_dir=str(path / TOKENIZER_DIR), device=device)
        return LoadedRun(model=scorer.model, tasks={name: task}, tokenizer=scorer.tokenizer,
                         scores=lambda inputs, _task, batch_size: scorer.logits(inputs, batch_size).numpy())
