"""The one writer of a run's record and results, for every run kind, so every run leaves the same files the same way.

Before it trains (:meth:`RunRecord.start`): ``config.yaml``, ``lineage.json``, ``trainable_parameters.json`` and
``.txt``, and the logs ``eval_log.jsonl`` (one line per evaluation) and ``train_log.jsonl`` (the training loss per
logging step), emptied, or cut back to the checkpoint a run resumes from. While it trains: one line per evaluation
and per logged loss. When it ends (:meth:`RunRecord.finish`): ``training_info.json``, ``eval_results.json`` (its
presence marks a finished run), the model card; the push when asked; then one line saying where the run is and how
to load it. Only the main process writes; the calls do nothing on the others.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_tl.config_io import write_yaml
from hf_tl.hub import push_folder
from hf_tl.model_card import write_model_card
from hf_tl.report import format_report
from hf_tl.run_dir import (
    CONFIG_FILE,
    INFO_FILE,
    LINEAGE_FILE,
    LOG_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    TRAIN_LOG_FILE,
    append_jsonl,
    keep_final_checkpoints,
    write_json,
)
from hf_tl.safe_io import atomic_write_text
from hf_tl.standard import root_model_info
from hf_tl.standard.usage import final_hint
from hf_tl.transfer import lineage


class RunRecord:
    """What a run writes besides its model.

    Args:
        run_dir: The run directory (created).
        accelerator: The run's Accelerator (only its main process writes).
    """

    def __init__(self, run_dir: Path, accelerator):
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator
        self.writes = accelerator.is_main_process

    def start(self, config, report: dict, history: list[dict] = (), resumed_step: int = 0) -> None:
        """Write what the run is, before it trains.

        Args:
            config: The resolved run config.
            report: The trainable-parameter report (:func:`hf_tl.report.trainable_report`).
            history: The evaluations a resumed run already made (its checkpoint's); empty for a new run.
            resumed_step: The optimizer step a resumed run continues from: later lines of the training log go.
        """
        if not self.writes:
            return
        write_yaml(config, self.run_dir / CONFIG_FILE)
        write_json(self.run_dir / LINEAGE_FILE, lineage(config, self.run_dir))
        write_json(self.run_dir / f"{REPORT_FILE}.json", report)
        atomic_write_text(self.run_dir / f"{REPORT_FILE}.txt", format_report(report) + "\n")
        self.accelerator.print(format_report(report))
        # The eval log holds exactly the evaluations of the run's history; the train log the losses up to its step.
        atomic_write_text(self.run_dir / LOG_FILE, "".join(json.dumps(r) + "\n" for r in history))
        train_log = self.run_dir / TRAIN_LOG_FILE
        lines = train_log.read_text().splitlines() if resumed_step and train_log.is_file() else []
        kept = [line for line in lines if _step_of(line) <= resumed_step]  # a line cut by a kill has no step
        atomic_write_text(train_log, "".join(line + "\n" for line in kept))

    def log_eval(self, record: dict) -> None:
        """Append one evaluation (``step``, ``epoch``, ``stage`` and the metrics) to ``eval_log.jsonl``."""
        if self.writes:
            append_jsonl(self.run_dir / LOG_FILE, record)

    def log_train(self, record: dict) -> None:
        """Append one logged training loss (``step``, ``epoch``, ``train_loss``, ``learning_rate``, and ``train_s``:
        the seconds this process's loop has trained, evaluations left out)."""
        if self.writes:
            append_jsonl(self.run_dir / TRAIN_LOG_FILE, record)

    def finish(self, config, results: dict, info: dict) -> None:
        """Write what the run ended with, push it when asked, and say where it is.

        Args:
            config: The resolved run config.
            results: The best dev metrics and the run's figures (``eval_results.json``).
            info: ``training_info.json`` (:func:`hf_tl.run_info.training_info`).

        Raises:
            HfTlError: when the push fails (the run directory is complete by then).
        """
        if not self.writes:
            return
        write_json(self.run_dir / INFO_FILE, info)
        write_model_card(self.run_dir, results)
        write_json(self.run_dir / RESULTS_FILE, results)  # last: its presence marks a finished run
        t = config.train
        keep_final_checkpoints(self.run_dir, t.save_total_limit)  # once finished: until then they resume it
        pushed = push_folder(self.run_dir, t.hub_model_id, private=t.hub_private) if t.push_to_hub else None
        if pushed:
            self.accelerator.print(f"Pushed to {pushed}")
        self.accelerator.print(final_line(self.run_dir, results, t.hub_model_id if pushed else None))


def _step_of(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


def final_line(run_dir: Path, results: dict, repo_id: str | None = None) -> str:
    """One line: where the run is, its best dev figure, and how to load it."""
    metric = results.get("metric_for_best_model")
    value = results.get(f"eval_{metric}")
    score = f" (dev {metric} {value:.4f})" if isinstance(value, float) else ""
    where = f"{run_dir}" + (f" and https://huggingface.co/{repo_id}" if repo_id else "")
    info = root_model_info(run_dir)
    standard = final_hint(info, str(run_dir))
    if info.get("format") in ("masked-lm", "causal-lm"):  # a language model: tasks start from it
        return (f"Run saved to {where}{score}; load it with {info['loader'].split('.')[-1]}.from_pretrained("
                f"\"{run_dir}\"), or fine-tune any task from it with --init_from_run {run_dir}")
    return (f"Run saved to {where}{score}; load it with hf_tl.load_run(\"{run_dir}\"){standard}, or score a file "
            f"with hf-tl predict --run {run_dir} --input FILE --output OUT.csv")


def best_results(history: list[dict], best_step: int | None, metric_name: str, greater_is_better: bool) -> dict:
    """The results of a run: the metrics of the evaluation whose weights it kept (the last one when none was best).

    The evaluation is found by its step, not by its value: two evaluations can score the same (a small dev set),
    and one of them may not count (a stage of ``greedy_layerwise`` with fewer blocks).

    Args:
        history: The run's evaluations, as in ``eval_log.jsonl``.
        best_step: The step of the best checkpoint (:attr:`hf_tl.training.state.TrainState.best_step`).
        metric_name: The metric that picked it.
        greater_is_better: Its direction.

    Returns:
        ``{"best_step", "metric_for_best_model", "greater_is_better", "eval_METRIC": value, ...}``.
    """
    best = next((r for r in history if best_step is not None and r.get("step") == best_step), None)
    best = best or (history[-1] if history else {})
    metrics = {(k if k.startswith("eval_") else f"eval_{k}"): v for k, v in best.items()
               if k not in ("step", "epoch", "stage")}
    return {"best_step": best.get("step"), "metric_for_best_model": metric_name,
            "greater_is_better": greater_is_better, **metrics}
