"""Measure, within a time budget, what the strategy matrix asks about a config's task and backbone.

One backbone load serves every measurement but the zero-shot score, which is a real ``zero_shot`` run (the one
``hf-tl compare`` would make) so that its number is exactly the comparison's. Each step is sized from the speed
measured on the first batch, so that the whole fits the budget; a step that cannot fit is skipped and says so.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hf_tl.advisor import signals
from hf_tl.advisor.reference import reference_path, reference_sentences
from hf_tl.advisor.rules import SKIPPED_FOR_TIME
from hf_tl.errors import HfTlError

CURVE_TRAIN_CAP = 4000  # train rows a learning curve reads at most (its last point)
CURVE_DEV_CAP = 1000  # dev rows it is scored on at most
DOMAIN_TEXTS = 300  # texts per side of the domain classifier
LM_TEXTS = 200  # task texts scored by the LM probe (and as many reference texts fit a head, as many are scored)
REFERENCE_TEXTS = 20_000  # reference sentences read; those the probe does not score count token frequencies
FIT_STEPS = 200  # head-only MLM fitting steps for an encoder without its head (stopped by the budget)
SPEED_TEXTS = 32


@dataclass
class Budget:
    """Seconds for the whole measurement, counted from creation."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def spent(self) -> float:
        return time.monotonic() - self.start

    def rows(self, per_row: float, share: float, cap: int, floor: int = 0) -> int:
        """How many rows (of ``per_row`` seconds each) fit in ``share`` of the time left, between ``floor`` and
        ``cap`` (0 when not even ``floor`` fits)."""
        n = int(max(0.0, self.left() * share) / max(per_row, 1e-6))
        return min(cap, n) if n >= floor else 0


def _texts(split, pair: bool) -> list[str]:
    return list(split["text"]) + (list(split["text_pair"]) if pair else [])


def _features(model, tokenized, collate, device, batch_size: int) -> np.ndarray:
    """Frozen features of a tokenized split as a linear head sees them (a bi-encoder pair as ``[a*b, |a-b|]``)."""
    from hf_tl.feature_cache import compute_features
    from hf_tl.layer_select import combine_layers
    from hf_tl.model import FEATURES_KEY

    arrays = compute_features(model, tokenized, collate, batch_size, device)
    layer = model.layer if model.layer != "weighted" else "mean_last4"  # a fixed mix: nothing learns it here

    def combined(key: str) -> np.ndarray:
        stack = torch.from_numpy(arrays[key])
        return (combine_layers(stack, layer) if stack.dim() == 3 else stack).numpy()

    a = combined(FEATURES_KEY)
    if f"{FEATURES_KEY}_b" in arrays:
        b = combined(f"{FEATURES_KEY}_b")
        return np.concatenate([a * b, np.abs(a - b)], axis=1)
    return a


def backbone_nature(backbone, model_args) -> dict:
    """What the backbone is, read from its files: a sentence-transformers checkpoint, an NLI classifier, a decoder,
    and its size against this machine's memory."""
    import psutil

    from hf_tl.backbone import resolve_checkpoint

    source = resolve_checkpoint(model_args.model_name_or_path)
    folder = Path(source)

    def has(name: str) -> bool:
        if folder.is_dir():
            return (folder / name).is_file()
        try:
            from transformers.utils import cached_file

            return cached_file(source, name, _raise_exceptions_for_missing_entries=False) is not None
        except OSError:
            return False

    config = backbone.model.config
    labels = [str(v).lower() for v in (getattr(config, "id2label", None) or {}).values()]
    norms = [m for m in backbone.model.modules() if "norm" in type(m).__name__.lower()
             and isinstance(getattr(m, "weight", None), torch.Tensor)]
    # Training moves every normalisation weight off its initial 1 (and bias off 0); all still there means the
    # checkpoint is an architecture's random initialisation that was saved untrained.
    untrained = bool(norms) and all(bool((m.weight == 1).all()) and (getattr(m, "bias", None) is None
                                                                    or bool((m.bias == 0).all())) for m in norms)
    params = sum(p.numel() for p in backbone.model.parameters())
    memory = psutil.virtual_memory().total
    gpu = torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None
    # Full fine-tuning with AdamW holds the weights, their gradients and two moments: 16 bytes a float32 weight.
    full_bytes = params * 16
    return {"model": model_args.model_name_or_path, "model_type": config.model_type, "parameters": params,
            "decoder": bool(backbone.is_decoder), "random_init": bool(backbone.random_init) or untrained,
            "untrained_checkpoint": untrained,
            "sentence_transformers": has("modules.json") or has("config_sentence_transformers.json"),
            "nli": any("entail" in label for label in labels), "machine_memory_gib": round(memory / 2**30, 1),
            "gpu_memory_gib": round(gpu / 2**30, 1) if gpu else None,
            "full_finetune_gib": round(full_bytes / 2**30, 2),
            "fits_full_finetune": full_bytes < 0.5 * (gpu or memory)}


def zero_shot_score(config_path: str, overrides: list[str], workdir: Path, metric: str) -> dict:
    """The zero-shot run ``hf-tl compare`` would make, trained (evaluated) in this process.

    Returns:
        ``{"score", "wall_s", "run"}``, or ``{"score": None, "reason"}`` when the task and backbone have no
        zero-shot form (the reason is the run's own refusal).
    """
    from hf_tl.config_io import parse_args
    from hf_tl.runs import train
    from hf_tl.strategies import strategy_class

    start = time.monotonic()
    base = parse_args(["--config", config_path, *overrides])
    flags = [*strategy_class("zero_shot").compare_flags(base), *overrides, "--strategy", "zero_shot",
             "--output_dir", str(workdir / "zero_shot"), "--overwrite_output_dir", "true", "--report_to", "none",
             "--push_to_hub", "false"]
    try:
        config = parse_args(["--config", config_path, *flags])
        with contextlib.redirect_stdout(io.StringIO()):  # the run's own lines would bury the advice
            results = train(config)
    except HfTlError as err:
        return {"score": None, "reason": str(err)}
    return {"score": float(results[f"eval_{metric}"]), "wall_s": time.monotonic() - start,
            "run": str(workdir / "zero_shot")}


@dataclass
class _Probe:
    """What the measurement steps share: the loaded model and task, the splits, the text sample and the speed."""

    config: object
    backbone: object  # the loaded backbone (hf_tl.backbone), for the LM probe
    model: torch.nn.Module
    tokenizer: object
    task: object
    train_split: object
    dev_split: object
    train_tokens: object
    evaluator: object
    metric: str
    regression: bool
    device: torch.device
    collate: object
    batch_size: int
    sample: list[str]  # up to 2,000 task texts, shuffled by the seed
    references: list[str]
    rng: np.random.Generator
    per_text: float = 0.0  # seconds the backbone takes per text here
    ref_scale: float = 1.0  # a reference text's cost in task texts (it may be longer)

    @property
    def texts_per_row(self) -> int:
        return 2 if self.task.pair else 1

    @property
    def per_row(self) -> float:
        return self.per_text * self.texts_per_row


def measure(config_path: str, overrides: list[str], budget: Budget, reference: str | None, workdir: Path,
            say=print) -> dict:
    """Every measurement of the advisor, within ``budget``.

    Args:
        config_path: The recipe config (YAML).
        overrides: ``--key value`` flags applied on top of it (as for ``hf-tl compare``).
        budget: The time budget (already running).
        reference: The reference corpus file (see :func:`hf_tl.advisor.reference.reference_path`).
        workdir: A folder for the zero-shot run.
        say: Where progress lines go.

    Returns:
        The evidence: ``task``, ``backbone``, ``data``, ``tokenizer``, ``speed``, ``zero_shot_run``, ``curve``,
        ``domain``, ``lm``, ``skipped`` ({step: why}), ``timings`` ({step: seconds}) and ``wall_s`` (see
        docs/advise.md).

    Raises:
        HfTlError: for a multi-task or language-modelling config, or anything a run of the config would refuse.
    """
    from hf_tl.choices import LM_TASKS
    from hf_tl.config_io import parse_args

    config = parse_args(["--config", config_path, *overrides])
    if config.is_multitask:
        raise HfTlError("hf-tl advise measures one task; give a config with one task (not tasks:).")
    if config.data.task in LM_TASKS:
        raise HfTlError(f"hf-tl advise recommends how to transfer to a labelled task; task {config.data.task} is "
                        f"pretraining (see docs/pretraining.md).")
    ref_file = reference_path(reference)  # before any model loads: a missing corpus stops at once
    evidence: dict = {"skipped": {}, "timings": {}}
    mark = [time.monotonic()]

    def timed(step: str) -> None:  # seconds since the previous step ended
        now = time.monotonic()
        evidence["timings"][step] = round(now - mark[0], 2)
        mark[0] = now

    probe = _load(config, ref_file, budget, evidence, say)
    timed("data, backbone, tokenizer, speed")
    _zero_shot_step(probe, config_path, overrides, workdir, budget, evidence, say)
    timed("zero_shot")
    _curve_step(probe, budget, evidence, say)
    timed("curve")
    _lm_step(probe, budget, evidence, say)
    timed("lm")
    _domain_step(probe, budget, evidence, say)
    timed("domain")
    evidence["wall_s"] = budget.spent()
    return evidence


def _load(config, ref_file: Path, budget: Budget, evidence: dict, say) -> _Probe:
    """Read the data, load the backbone once, and measure the data, the tokenizer, the backbone and its speed."""
    import psutil
    from datasets import Dataset

    from hf_tl.builder import build
    from hf_tl.data import PaddingCollator
    from hf_tl.training.setup import resolve_config

    # What starting a process cost this one (imports included): each predicted run pays it too. A process older
    # than two minutes (a notebook) did other things since it started: its age says nothing, so count none.
    startup_s = max(0.0, time.time() - psutil.Process().create_time() - budget.spent())
    startup_s = startup_s if startup_s < 120 else 0.0
    say("advise: reading the data and loading the backbone")
    resolved, raw = resolve_config(config, need_train=True)
    loading = time.monotonic()
    built = build(resolved, apply_strategy=False)
    load_s = time.monotonic() - loading
    name, task = next(iter(built.tasks.items()))
    tokenizer, model = built.backbone.tokenizer, built.model.eval()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    train_split = task.prepare_split(raw[name]["train"], "train")
    dev_split = task.prepare_split(raw[name]["validation"], "validation")
    evaluator = task.evaluator()
    metric = config.train.metric_for_best_model or evaluator.primary_metric
    regression = config.data.task == "similarity"
    evidence["task"] = {"name": config.data.task, "metric": metric,
                        "greater_is_better": evaluator.greater_is_better_for(metric), "regression": regression,
                        "pair": task.pair, "architecture": getattr(config.data, "architecture", None),
                        "dev_rows": len(dev_split)}
    evidence["backbone"] = backbone_nature(built.backbone, config.model)

    train_tokens = task.tokenize(train_split)
    lengths = [len(ids) for ids in train_tokens["input_ids"]]
    evidence["data"] = signals.data_size(list(train_split["label"]), regression, lengths)

    seed = config.train.seed
    references = reference_sentences(ref_file, REFERENCE_TEXTS, seed)
    task_texts = _texts(train_split, task.pair)
    rng = np.random.default_rng(seed)
    sample = [task_texts[i] for i in rng.permutation(len(task_texts))[:2000]]
    evidence["tokenizer"] = {"task": signals.token_stats(tokenizer, sample),
                             "reference": signals.token_stats(tokenizer, references[:2000]),
                             "reference_file": str(ref_file)}
    probe = _Probe(config, built.backbone, model, tokenizer, task, train_split, dev_split, train_tokens, evaluator,
                   metric, regression, device, PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side),
                   config.train.per_device_eval_batch_size, sample, references, rng)

    texts = Dataset.from_dict(dict(tokenizer(sample[:SPEED_TEXTS], truncation=True,
                                             max_length=config.model.max_length)))
    _features(model, texts.select(range(min(4, len(texts)))), probe.collate, device, probe.batch_size)  # warm-up
    start = time.monotonic()
    _features(model, texts, probe.collate, device, probe.batch_size)
    probe.per_text = (time.monotonic() - start) / len(texts)
    # Reference sentences can be longer than the task's texts: a text costs in proportion to its tokens.
    task_tokens = evidence["tokenizer"]["task"]["tokens"] / max(1, len(sample))
    ref_tokens = evidence["tokenizer"]["reference"]["tokens"] / max(1, len(references[:2000]))
    probe.ref_scale = max(1.0, ref_tokens / max(task_tokens, 1e-9))
    evidence["speed"] = {"texts_per_s": 1 / probe.per_text, "load_s": load_s, "startup_s": startup_s}
    say(f"advise: {len(train_split):,} train rows; the backbone reads {1 / probe.per_text:.0f} texts/s here")
    return probe


def _zero_shot_step(probe: _Probe, config_path: str, overrides: list[str], workdir: Path, budget: Budget,
                    evidence: dict, say) -> None:
    """Zero-shot first, the strongest signal: a whole evaluation of dev as compare runs it (a second backbone load).
    It may take all the time left: the steps after it shrink to what remains, and are worth less."""
    zero_cost = 2 * evidence["speed"]["load_s"] + len(probe.dev_split) * probe.per_row
    if zero_cost < budget.left():
        say("advise: zero-shot run on dev")
        evidence["zero_shot_run"] = zero_shot_score(config_path, overrides, workdir, probe.metric)
    else:
        evidence["zero_shot_run"] = {"score": None, "reason": SKIPPED_FOR_TIME}
        evidence["skipped"]["zero_shot_run"] = f"needs about {zero_cost:.0f} s, more than the budget left allows"


def _curve_step(probe: _Probe, budget: Budget, evidence: dict, say) -> None:
    """A linear head on frozen features at several train sizes: one backbone pass over the rows it reads."""
    p = probe
    affordable = budget.rows(p.per_row, 0.5, CURVE_TRAIN_CAP + CURVE_DEV_CAP)
    n_train = min(len(p.train_split), CURVE_TRAIN_CAP, max(affordable // 2, affordable - CURVE_DEV_CAP))
    n_dev = min(len(p.dev_split), CURVE_DEV_CAP, affordable - n_train)
    if not (n_train >= min(len(p.train_split), 16) and n_dev >= min(len(p.dev_split), 50)):
        evidence["curve"] = []
        evidence["skipped"]["curve"] = "the budget left no time for a backbone pass over enough train and dev rows"
        return
    say(f"advise: frozen features of {n_train:,} train and {n_dev:,} dev rows, linear-head learning curve")
    train_rows = np.sort(p.rng.permutation(len(p.train_split))[:n_train])
    dev_rows = np.sort(p.rng.permutation(len(p.dev_split))[:n_dev])
    dev_tokens = p.task.tokenize(p.dev_split.select(dev_rows))
    passing = time.monotonic()
    x_train = _features(p.model, p.train_tokens.select(train_rows), p.collate, p.device, p.batch_size)
    x_dev = _features(p.model, dev_tokens, p.collate, p.device, p.batch_size)
    # The speed probe read 32 texts; this pass read hundreds: its rate sizes the steps after it.
    p.per_text = max(p.per_text, (time.monotonic() - passing) / ((n_train + n_dev) * p.texts_per_row))
    evidence["speed"]["texts_per_s"] = 1 / p.per_text
    y_train = np.asarray(p.train_split.select(train_rows)["label"])
    y_dev = np.asarray(dev_tokens["labels"])

    def score(predictions, references):
        return p.evaluator.metric_value(predictions, references, p.metric)

    evidence["curve"] = signals.linear_curve(x_train, y_train, x_dev, y_dev, signals.curve_sizes(n_train), score,
                                             p.regression)
    evidence["curve_dev_rows"] = n_dev


def _lm_step(probe: _Probe, budget: Budget, evidence: dict, say) -> None:
    """Perplexity of task text against reference text (a fitted head for an encoder without its own). Per task text:
    itself scored, and a reference text fitted on and one scored, each through the vocabulary head."""
    p = probe
    n = budget.rows(1.5 * p.per_text * (1 + 2 * p.ref_scale), 0.6, LM_TEXTS, floor=30)
    if not n:
        evidence["lm"] = None
        evidence["skipped"]["lm"] = "no time left for the perplexity probe"
        return
    say(f"advise: language-model perplexity on {n} task and {n} reference texts")
    evidence["lm"] = _lm(p.backbone, p.config, p.sample[:n], p.references, n, p.config.train.seed,
                         time.monotonic() + max(1.0, budget.left() * 0.1))


def _domain_step(probe: _Probe, budget: Budget, evidence: dict, say) -> None:
    """How far the task's embeddings sit from the reference corpus's."""
    from hf_tl.embed import embed_texts

    p = probe
    n = budget.rows(p.per_text * (1 + p.ref_scale), 0.8, DOMAIN_TEXTS, floor=50)
    if not n:
        evidence["domain"] = None
        evidence["skipped"]["domain"] = "no time left for the embeddings of task and reference texts"
        return
    say(f"advise: embeddings of {n} task and {n} reference texts")
    pooled = {side: embed_texts(p.model, p.tokenizer, texts[:n], p.config.model.max_length, p.batch_size)
              for side, texts in (("task", p.sample), ("reference", p.references))}
    pooled = {k: v.reshape(len(v), -1, v.shape[-1]).mean(1) if v.ndim == 3 else v for k, v in pooled.items()}
    evidence["domain"] = signals.domain_similarity(pooled["task"], pooled["reference"], p.config.train.seed)


def _lm(loaded, config, task_texts, references, n, seed, deadline) -> dict | None:
    """The perplexity probe on ``n`` task texts: ``references[:n]`` fit a head (when needed), the next ``n`` are
    scored, and all the rest count token frequencies."""
    from hf_tl.advisor.lm_probe import lm_perplexities

    if not loaded.is_decoder and loaded.tokenizer.mask_token_id is None:
        return None
    n = min(n, len(references) // 2)  # a short corpus: half fits, half is scored, and they count frequencies
    try:
        return lm_perplexities(loaded.model, loaded.tokenizer, loaded.source, task_texts, references[:n],
                               references[n:2 * n], references[2 * n:] or references[:n], config.model.max_length,
                               loaded.is_decoder, loaded.random_init, FIT_STEPS, seed, deadline)
    except HfTlError as err:  # a family with no LM class: the other signals stand
        return {"error": str(err)}
