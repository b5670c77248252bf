"""The model card of a run directory (``README.md``): Hub metadata, then what trained and how, from the run's files.

The YAML block is what the Hub reads (``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``datasets``,
``license`` when the base checkpoint's card names one, and ``model-index`` with every dev metric); the prose is
generated from ``config.yaml``, ``eval_results.json``, ``trainable_parameters.json``, ``training_info.json``,
``lineage.json`` and the adapter's config, so it can only say what the run recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_tl.backbone import looks_like_path, resolve_checkpoint
from hf_tl.config_io import load_config
from hf_tl.regularize import data_settings, training_settings
from hf_tl.run_dir import (
    ADAPTER_DIR,
    CARD_FILE,
    CONFIG_FILE,
    ENSEMBLE_FILE,
    INFO_FILE,
    LINEAGE_FILE,
    MEMBERS_DIR,
    REPORT_FILE,
    RESULTS_FILE,
)
from hf_tl.safe_io import atomic_write_text
from hf_tl.standard import root_model_info
from hf_tl.standard.usage import hf_tl_usage, loading_lines, standard_usage

PIPELINE_TAGS = {"similarity": "text-ranking", "pair_classification": "text-classification",
                 "classification": "text-classification", "masked_lm": "fill-mask", "causal_lm": "text-generation"}
# The public sets the shipped configs read from local files, by their relative train file: (Hub id, config).
KNOWN_SETS = {"stsb/train.csv": ("sentence-transformers/stsb", None), "mrpc/train.tsv": ("nyu-mll/glue", "mrpc"),
              "sst2/train.tsv": ("nyu-mll/glue", "sst2")}
COMPARISON_FILE = "comparison.md"  # a comparison's table, copied into each of its runs (hf_tl.compare)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def base_license(model_name_or_path: str) -> str | None:
    """The license in the base checkpoint's own card, when the checkpoint is on disk (nothing is downloaded)."""
    from huggingface_hub import ModelCard

    folder = Path(resolve_checkpoint(model_name_or_path)).expanduser()
    card = folder / CARD_FILE
    if not card.is_file():
        return None
    try:
        return ModelCard.load(card).data.license
    except Exception:  # a base card we cannot parse leaves the license unknown, not the run unwritten
        return None


def _task_metrics(results: dict, names: list[str]) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` from eval_results.json (``eval_TASK/metric`` keys for several tasks)."""
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for key, value in results.items():
        if not key.startswith("eval_") or not isinstance(value, float) or key == "eval_samples":
            continue
        metric = key[len("eval_"):]
        if len(names) == 1:
            out[names[0]][metric] = value
        elif "/" in metric and metric.split("/", 1)[0] in out:
            task, metric = metric.split("/", 1)
            out[task][metric] = value
    return out


def hub_dataset(data) -> tuple[str | None, str | None]:
    """``(Hub id, config)`` of a task's data: the Hub dataset it read, the Hub copy its config names for its local
    files, or the public set the files are (the shipped layout of STS-B, MRPC, SST-2); ``(None, None)`` otherwise."""
    if data.dataset_name:
        return data.dataset_name, data.dataset_config_name
    if data.fallback_dataset_name:
        return data.fallback_dataset_name, None
    return KNOWN_SETS.get(Path(data.train_file or "").as_posix(), (None, None))


def _pipeline_tag(data, fmt: str | None) -> str:
    if fmt == "sentence-transformers" or (data.task == "similarity" and data.architecture == "bi_encoder"):
        return "sentence-similarity"
    if fmt in ("transformers", "peft"):
        return "text-classification"  # what transformers' pipeline runs it as (a similarity: one regression logit)
    return PIPELINE_TAGS[data.task]


def card_data(run_dir: Path, results: dict | None = None):
    """The card's metadata (``huggingface_hub.ModelCardData``) for a finished run (``results``: its
    ``eval_results.json``, read from the run when not given).

    ``library_name`` is the library whose loader loads the run's standard model (none when the run has no standard
    form), ``pipeline_tag`` what the model does (``sentence-similarity`` for a bi-encoder, ``text-ranking`` for a
    similarity cross-encoder, ``text-classification``), ``datasets`` Hub ids only.
    """
    from huggingface_hub import EvalResult, ModelCardData

    config = load_config(run_dir / CONFIG_FILE)
    results = _read(run_dir / RESULTS_FILE) if results is None else results
    info = root_model_info(run_dir)
    fmt = info.get("format")
    tasks = config.task_data()
    metrics = _task_metrics(results, list(tasks))
    evals, datasets = [], set()
    for name, data in tasks.items():
        hub_id, hub_config = hub_dataset(data)
        datasets |= {hub_id} - {None}
        source = hub_id or Path(data.validation_file or "local").parent.name or "local"
        for metric, value in metrics[name].items():
            evals.append(EvalResult(task_type=_pipeline_tag(data, fmt), task_name=name, dataset_type=source,
                                    dataset_name=source, dataset_config=hub_config, dataset_split="validation",
                                    metric_type=metric, metric_value=value))
    base = config.model.model_name_or_path
    pipeline = {_pipeline_tag(d, fmt) for d in tasks.values()}
    library = info.get("library")
    if library is None and (run_dir / ADAPTER_DIR).is_dir():
        library = "peft"  # its adapter/ loads with peft (subfolder="adapter")
    tags = ["hf_tl", "transfer-learning", config.strategy.strategy, *sorted({d.task for d in tasks.values()})]
    if fmt in ("sentence-transformers", "cross-encoder"):
        tags.insert(0, "sentence-transformers")
        tags.insert(1, "cross-encoder" if fmt == "cross-encoder" else "feature-extraction")
    return ModelCardData(
        model_name=run_dir.resolve().name, base_model=None if looks_like_path(base) else base,
        library_name=library, pipeline_tag=pipeline.pop() if len(pipeline) == 1 else None, tags=tags,
        datasets=sorted(datasets) or None, license=base_license(base), eval_results=evals or None)


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def render(run_dir: Path, results: dict | None = None) -> str:
    """The whole card: metadata block, then the run's training details and results (see :func:`card_data`)."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    results = _read(run_dir / RESULTS_FILE) if results is None else results
    report = _read(run_dir / f"{REPORT_FILE}.json")
    info, lineage = _read(run_dir / INFO_FILE), _read(run_dir / LINEAGE_FILE)
    m, s, t = config.model, config.strategy, config.train
    tasks = config.task_data()
    lines = [f"# {run_dir.resolve().name}", "",
             f"A `{s.strategy}` transfer of `{m.model_name_or_path}` trained with "
             f"[hf_tl](https://pypi.org/project/hf-tl/): {report.get('description', s.strategy)}.", "",
             "## Tasks and data", ""]
    for name, data in tasks.items():
        source = f"Hub dataset `{data.dataset_name}`" + (f" ({data.dataset_config_name})" if
                                                       data.dataset_config_name else "") if data.dataset_name \
            else f"files `{data.train_file}` / `{data.validation_file}`"
        labels = f"; labels {', '.join(data.label_names)}" if data.label_names else ""
        lines.append(f"- `{name}`: {data.task} from {source}{labels}")
    lines += ["", "## What trained", ""]
    if report:
        lines.append(f"{report['trainable']:,} of {report['total']:,} parameters ({report['percent']:.2f}%).")
        lines += ["", *_table(["part", "trainable", "total", "modules"],
                              [[p["part"], f"{p['trainable']:,}", f"{p['total']:,}", ", ".join(p["modules"][:4])]
                               for p in report.get("parts", [])])]
        if report.get("stages"):
            when = {"steps": f"a new stage every {s.unfreeze_steps} steps", "epoch": "a new stage every epoch",
                    "auto": "the stages spread evenly over the first half of training"}[s.unfreeze_every]
            lines += ["", f"Unfreezing schedule ({when}):", "",
                      *_table(["stage", "trainable parameters"],
                              [[st["stage"], f"{st['trainable']:,}"] for st in report["stages"]])]
    if info.get("param_groups"):
        lines += ["", "Learning rate per parameter group (peak, before warmup and decay):", "",
                  *_table(["group", "learning rate", "weight decay", "parameters"],
                          [[g["name"], g["learning_rate"], g["weight_decay"], f"{g['parameters']:,}"]
                           for g in info["param_groups"]])]
    adapter = _read(run_dir / ADAPTER_DIR / "adapter_config.json")
    if adapter:
        keys = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "num_virtual_tokens")
        lines += ["", "PEFT configuration:", "", *_table(["setting", "value"],
                                                         [[k, adapter[k]] for k in keys if adapter.get(k)])]
    ensemble = _read(run_dir / ENSEMBLE_FILE)
    if ensemble:
        metric = ensemble["metric"]
        fitted = "fitted on the dev split (so the ensemble's dev score is optimistic)" \
            if ensemble["weights"] == "dev" else "equal"
        lines += ["", "## Members", "", f"The ensemble averages its members' predictions; weights {fitted}. Each "
                  f"member is a run directory under `{MEMBERS_DIR}/` and loads on its own too.", "",
                  *_table(["member", "strategy", "model", "architecture", "weight", f"dev {metric}"],
                          [[f"`{m['name']}`", m["strategy"], f"`{m['model']}`", m["architecture"],
                            f"{m['weight']:.3f}", f"{m[f'dev_{metric}']:.4f}"] for m in ensemble["members"]])]
    lines += ["", "## Training settings", "", *_table(["setting", "value"], [
        ["pooling / layer", f"{m.pooling} / {m.layer}"], ["max length", m.max_length],
        ["epochs (configured)", t.max_steps and f"{t.max_steps} steps" or t.num_train_epochs],
        ["optimizer steps / epochs done", f"{info.get('optimizer_steps', '-')} / {info.get('epochs', '-')}"],
        ["batch size per device x accumulation",
         f"{t.per_device_train_batch_size} x {t.gradient_accumulation_steps}"],
        ["scheduler / warmup", f"{t.lr_scheduler_type} / {t.warmup_ratio}"], ["seed", t.seed],
        ["precision", t.mixed_precision],
        ["loss and regularisation", "; ".join([f"head_dropout: {s.head_dropout}", f"weight_decay: {t.weight_decay}",
                                               *training_settings(config)])],
        ["data augmentation", "; ".join(data_settings(config)) or "none"],
        ["wall time (s)", results.get("train_runtime_s", "-")],
        ["hardware", _hardware(info)],
        ["libraries", ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())],
    ])]
    metrics = _task_metrics(results, list(tasks))
    lines += ["", "## Dev results", "", *_table(["task", "metric", "value"], [
        [name, metric, f"{value:.4f}"] for name, values in metrics.items() for metric, value in values.items()])]
    if len(lineage.get("runs", [])) > 1:
        base = lineage["base_checkpoint"]["model_name_or_path"]
        lines += ["", "## Transfer chain", "", f"- base checkpoint `{base}`",
                  *(f"- {r['strategy']} on {', '.join(r['tasks'].values())} (`{Path(r['path']).name}`)"
                    for r in lineage["runs"])]
    comparison = run_dir / COMPARISON_FILE
    if comparison.is_file():
        lines += ["", "## Comparison", "", comparison.read_text().strip()]
    where = t.hub_model_id or run_dir.resolve().name
    info = root_model_info(run_dir)
    lines += ["", "## Use", "", *loading_lines(info, where), ""]
    task = next(iter(tasks.values()))
    if info.get("format"):
        lines += ["```python", *standard_usage(info["format"], where, task), "```", ""]
    lines += ["With hf_tl (every task of the run, scores on the data's scale, label names):", "", "```python",
              *hf_tl_usage(where, task), "```"]
    if adapter:
        lines += ["", "The adapter alone loads with peft: `PeftModel.from_pretrained(AutoModel.from_pretrained("
                  f"\"{m.model_name_or_path}\"), REPO, subfolder=\"adapter\")`."]
    return f"---\n{card_data(run_dir, results).to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"


def _hardware(info: dict) -> str:
    hw = info.get("hardware")
    if not hw:
        return "-"
    threads = f", {hw['cpu_threads']} CPU thread(s) each" if hw["device"] == "cpu" and hw.get("cpu_threads") else ""
    return f"{hw['device_name'] or hw['device']} x {hw['num_processes']} process(es){threads}"


def write_model_card(run_dir: Path, results: dict | None = None) -> Path:
    """Write ``README.md`` (the model card) into a run directory and return its path.

    Args:
        run_dir: The run directory.
        results: Its results, when they are not yet in ``eval_results.json`` (a run writes that file last).
    """
    path = Path(run_dir) / CARD_FILE
    atomic_write_text(path, render(Path(run_dir), results))
    return path
