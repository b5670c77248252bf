"""The advisor's rules: where the measurements place a task in the strategy matrix, and what to try there.

The matrix has two axes. **Data size**: little below ``LITTLE_DATA_ROWS`` train rows, lots from there. **Domain
similarity**: the backbone knows the task's text when its own language-model head predicts that text better than
token frequencies by ``MIN_KNOWLEDGE`` (see :func:`hf_tl.advisor.signals.knowledge`) at no more than
``MAX_PPL_RATIO`` times its perplexity on generic reference text, and its tokenizer meets few unknown tokens and
cuts words no finer than ``MAX_FRAGMENTATION`` times as finely as generic text's. A backbone that does not know
the text (a different domain, or an architecture with random weights) is "dissimilar".

``RULES`` is the table a reader checks: the first rule whose condition holds ranks the strategies. Each option
predicts its dev metric from a measured base (the zero-shot score, or the linear-head learning curve carried to
the whole train split) plus a gain range, and each rule cites the benchmark measurements behind those gains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LITTLE_DATA_ROWS = 1000
# SmolLM2-135M's own head: 0.38 on WikiText, 0.24 on SST-2's text (docs/benchmarks/advise.md); frequencies alone: 0
MIN_KNOWLEDGE = 0.2
MAX_PPL_RATIO = 8.0
MAX_UNK_RATE = 0.01
MAX_FRAGMENTATION = 1.5  # task tokens per word over the reference's
SKIPPED_FOR_TIME = "budget"  # the reason a measurement records when the budget had no time for it
NOISE = 0.01  # seed-to-seed spread of a dev metric on these data sizes (compare_stsb.md: std 0.0006-0.0092)


@dataclass(frozen=True)
class Option:
    """One strategy a rule recommends.

    Attributes:
        strategy: The ``strategy`` setting.
        flags: Settings beyond the config's (architecture, learning rate, epochs, layers).
        base: What the prediction starts from: ``zero`` (the zero-shot score), ``probe`` (the linear head's
            curve at the whole train split) or ``best`` (the better of the two).
        gain: ``(low, high)`` added to the base.
        passes: Backbone-pass equivalents per train row and epoch (forward 1, backward about 2 more), for cost.
        epochs: Epochs the cost counts (0: no training).
        why: One line: what it does here.
    """

    strategy: str
    flags: tuple[str, ...] = ()
    base: str = "best"
    gain: tuple[float, float] = (0.0, 0.0)
    passes: float = 3.0
    epochs: float = 3.0
    why: str = ""


@dataclass(frozen=True)
class Rule:
    """A row of the table: when it applies, what it ranks, and the measurements behind it."""

    name: str
    quadrant: str
    when: object  # callable(facts) -> bool
    options: tuple[Option, ...]
    evidence: str
    stop: str = ""  # said when the measurements say to stop early


BI = ("--architecture", "bi_encoder", "--head_type", "none")
ZERO = Option("zero_shot", base="zero", passes=0, epochs=0, why="the pretrained model as it is")
FULL = Option("full", ("--learning_rate", "5e-5"), gain=(0.02, 0.09), why="every weight adapts to the task")
LORA = Option("lora", ("--learning_rate", "5e-4"), gain=(0.0, 0.06), passes=2.5,
              why="low-rank updates: most of full's gain, a few % of the weights")
PARTIAL = Option("partial", ("--num_layers", "2", "--learning_rate", "1e-4"), gain=(-0.02, 0.04), passes=1.7,
                 why="the top two blocks adapt, the rest stays: less to overfit")
FEATURES = Option("features", base="probe", gain=(-0.01, 0.01), passes=1.0, epochs=1,
                  why="a linear model fitted on frozen features: one backbone pass")
SETFIT = Option("setfit", base="probe", gain=(0.0, 0.06), passes=3.0, epochs=40,
                why="contrastive pairs from few labels, then a linear head")

RANDOM_STOP = ("The backbone's weights are random: start from a pretrained checkpoint (pretraining.md: +0.13 to "
               "+0.32), or pretrain on in-domain text first (recipes/pretrain.py).")

RULES: tuple[Rule, ...] = (
    Rule("random_weights_few_rows", "dissimilar", lambda f: f["random_init"] and f["little"],
         (FEATURES, ZERO, Option("full", ("--learning_rate", "1e-4"), base="probe", gain=(-0.05, 0.02),
                                 why="every weight trains, from random: too few rows to learn features")),
         "pretraining.md: from random weights SST-2 with 673 rows reached 0.526, the majority class; advise.md: "
         "with 100 rows full fine-tuning of random weights scored 0.530 on SST-2 (the majority class, every seed) "
         "and 0.087 on STS-B, below a linear model on the random features (0.548) and the untrained cosine (0.448)",
         stop=RANDOM_STOP),
    Rule("random_weights", "dissimilar", lambda f: f["random_init"],
         (Option("full", ("--learning_rate", "1e-4"), base="probe", gain=(0.0, 0.1),
                 why="nothing pretrained to keep: train every weight"), FEATURES, ZERO),
         "pretraining.md: the same MiniLM architecture from random weights scores 0.52-0.72 against 0.80-0.90 "
         "pretrained (STS-B, SICK, SST-2 at 1-100% of the data); only training every weight moves it",
         stop=RANDOM_STOP),
    Rule("in_trouble", "little data, dissimilar domain", lambda f: f["little"] and not f["similar"],
         (FULL, FEATURES, ZERO),
         "pretraining.md: with 44-673 rows the pretrained backbone's gain over random weights is largest "
         "(+0.18 to +0.32); what the backbone lacks, this little data cannot teach",
         stop="In trouble (little data, unfamiliar text): try domain-adaptive pretraining on this text first "
              "(recipes/pretrain.py with train_file set to your text), augmentation (augment) or more labels."),
    Rule("full_for_new_domain", "lots of data, dissimilar domain", lambda f: not f["little"] and not f["similar"],
         (FULL, LORA, PARTIAL),
         "stsb_strategies.md: on STS-B the lower blocks must adapt (frozen 0.50, top-2 partial 0.78, full 0.86 "
         "as a cross-encoder); an unfamiliar domain needs every block"),
    Rule("bi_encoder_few_rows", "little data, similar domain",
         lambda f: f["regression"] and f["sentence_transformers"] and f["little"],
         (Option("full", (*BI, "--learning_rate", "2e-5"), base="zero", gain=(0.0, 0.01),
                 why="the bi-encoder fine-tuned on its own objective: it keeps what zero-shot knows"), ZERO,
          Option("lora", (*BI, "--learning_rate", "5e-4"), base="zero", gain=(0.0, 0.006), passes=2.5,
                 why="low-rank updates of the bi-encoder")),
         "few_zero_shot.md: all-MiniLM-L6-v2 zero-shot STS-B 0.8672, bi-encoder fine-tuning on 40-320 pairs "
         "0.8698-0.8774 (+0.003 to +0.010); advise.md: with 100 pairs, STS-B -0.0003 and SICK +0.009 over "
         "zero-shot (3 seeds, std under 0.001), LoRA +0.000 and +0.005; a frozen cross-encoder scores near 0",
         stop="Zero-shot is within 0.01 of what fine-tuning the bi-encoder on this few pairs reached "
              "(few_zero_shot.md, advise.md): if a training run is not worth its cost, use the checkpoint as it is."),
    Rule("bi_encoder_many_rows", "lots of data, similar domain",
         lambda f: f["regression"] and f["sentence_transformers"],
         (Option("full", (*BI, "--learning_rate", "2e-5"), base="zero", gain=(-0.005, 0.03),
                 why="the bi-encoder fine-tuned on the whole train split"),
          Option("lora", (*BI, "--learning_rate", "5e-4"), base="zero", gain=(-0.005, 0.01), passes=2.5,
                 why="low-rank updates of the bi-encoder"), ZERO),
         "stsb_strategies.md: full bi-encoder (lr 2e-5) 0.8963 vs zero-shot 0.8672 and full cross-encoder 0.8608 on "
         "5,749 STS-B pairs; advise.md: on 1,000 pairs (lr 2e-5) STS-B -0.002 and SICK +0.021 against zero-shot, "
         "LoRA -0.002 and +0.013 (1 seed)"),
    Rule("decoder_few_rows", "little data, similar domain", lambda f: f["decoder"] and f["little"],
         (ZERO, Option("lora", ("--learning_rate", "5e-4"), base="zero", gain=(-0.21, 0.03), passes=2.5,
                       why="low-rank updates of the decoder, last-token pooling"), FEATURES),
         "few_zero_shot.md: SmolLM2-135M label-word likelihood 0.7867 on SST-2, above MiniLM's SetFit with 64 "
         "rows per label (0.7798); advise.md: with 100 SST-2 rows zero-shot 0.782, features 0.786, LoRA 0.574, "
         "full 0.606, a frozen head trained by gradient 0.536 (what the linear-head curve predicts is a fitted "
         "linear model: features); with 100 MRPC pairs (no zero-shot form) LoRA 0.6920 ± 0.0102 and full "
         "0.6977 ± 0.0075 over 3 seeds, features 0.6765, the majority class 0.6838"),
    Rule("classify_few_rows", "little data, similar domain",
         lambda f: f["little"] and not f["regression"] and not f["pair"],
         (SETFIT, FEATURES, Option("lora", ("--learning_rate", "5e-4"), base="probe", gain=(-0.02, 0.04),
                                   passes=2.5, why="low-rank updates: little to overfit"), ZERO),
         "few_zero_shot.md: SST-2 with 8-64 rows per label: SetFit 0.6216-0.7798, LoRA 0.5995-0.7571, frozen "
         "0.6167-0.7202 (LoRA -0.02 to +0.04 from frozen, SetFit +0.005 to +0.06), zero-shot label descriptions "
         "0.6892"),
    Rule("few_rows", "little data, similar domain", lambda f: f["little"],
         (FULL, FEATURES, LORA),
         "pretraining.md: full fine-tuning of the pretrained MiniLM on 44-574 rows reaches 0.80-0.87 (STS-B, "
         "SICK); mrpc_sweep.md: full fine-tuning suits pairs"),
    Rule("many_rows", "lots of data, similar domain", lambda f: True,
         (FULL, LORA, PARTIAL),
         "few_zero_shot.md and stsb_strategies.md: full 0.8991 vs features 0.8142 (SST-2, 67,349 rows); full 0.8608 "
         "vs top-2 partial 0.7841 and LoRA 0.8666 (STS-B cross-encoder)"),
)


def facts(evidence: dict) -> dict:
    """The measurements the rules read, with each matrix axis decided.

    Returns:
        ``{"rows", "little", "similar", "similar_why", "zero", "probe", "probe_std", "slope", ...}``.
    """
    data, backbone, task = evidence["data"], evidence["backbone"], evidence["task"]
    rows = data["rows"]  # as the config trains: max_train_samples and few_shot_k already applied
    lm = evidence.get("lm") or {}
    tok = evidence["tokenizer"]["task"]
    own_head = lm.get("pretrained_head", False)  # a head fitted in seconds says too little (lm_probe.py)
    knows = lm.get("task_knowledge") if own_head else None
    ratio = lm.get("ppl_ratio") if own_head else None
    why = []
    similar = not backbone["random_init"]
    if backbone.get("untrained_checkpoint"):
        why.append("every normalisation weight of the checkpoint is still at its initial value (1, bias 0): it was "
                   "saved untrained, its weights random")
    elif backbone["random_init"]:
        why.append("the backbone's weights are random (the strategy starts from the architecture's initialisation)")
    if knows is not None and not math.isnan(knows):
        ok = knows >= MIN_KNOWLEDGE
        similar &= ok
        why.append(f"it predicts the task's text {'well' if ok else 'poorly'}: knowledge {knows:.2f} "
                   f"({'≥' if ok else '<'} {MIN_KNOWLEDGE})")
    if ratio is not None and not math.isnan(ratio):
        ok = ratio <= MAX_PPL_RATIO
        similar &= ok
        why.append(f"task perplexity is {ratio:.2f}x the reference's ({'≤' if ok else '>'} {MAX_PPL_RATIO})")
    fragmentation = tok["tokens_per_word"] / max(evidence["tokenizer"]["reference"]["tokens_per_word"], 1e-9)
    if fragmentation > MAX_FRAGMENTATION:
        similar = False
        why.append(f"the tokenizer cuts the task's words into {fragmentation:.2f}x as many pieces as generic text's "
                   f"(> {MAX_FRAGMENTATION})")
    if tok["unk_rate"] > MAX_UNK_RATE:
        similar = False
        why.append(f"{tok['unk_rate']:.1%} of the task's tokens are unknown to the tokenizer (> {MAX_UNK_RATE:.0%})")
    curve = evidence.get("curve") or []
    probe = probe_std = probe_se = slope = None
    if curve:
        from hf_tl.advisor.signals import curve_slope

        slope = curve_slope(curve)
        last = curve[-1]
        # Carry the curve to the whole train split at its last slope, half-weighted (curves flatten).
        extra = math.log2(rows / last["rows"]) if rows > last["rows"] else 0.0
        probe = last["mean"] + 0.5 * slope * extra
        probe_std = max((p["std"] for p in curve[-2:]), default=0.0)
        # A curve scored on few dev rows is noisy whatever its draws agree on: the score's own sampling error.
        probe_se = sampling_error(last["mean"], evidence.get("curve_dev_rows") or 0, task["regression"])
    zero = (evidence.get("zero_shot_run") or {}).get("score")
    return {"rows": rows, "little": rows < LITTLE_DATA_ROWS, "similar": similar, "similar_why": why,
            "zero": zero, "probe": probe, "probe_std": probe_std, "probe_se": probe_se, "slope": slope,
            "regression": task["regression"], "pair": task["pair"], "decoder": backbone["decoder"],
            "sentence_transformers": backbone["sentence_transformers"], "nli": backbone["nli"],
            "random_init": backbone["random_init"], "greater_is_better": task["greater_is_better"]}


def place(f: dict) -> Rule:
    """The first rule of :data:`RULES` whose condition holds for facts ``f``."""
    return next(rule for rule in RULES if rule.when(f))


def sampling_error(value: float, n: int, regression: bool) -> float:
    """The standard error of a dev score measured on ``n`` rows: ``sqrt(p (1 - p) / n)`` for an accuracy-like
    score, ``(1 - r^2) / sqrt(n - 3)`` for a correlation (Fisher); 0 when ``n`` is unknown."""
    if n <= 3:
        return 0.0
    value = min(max(value, 0.0), 1.0)
    return (1 - value**2) / math.sqrt(n - 3) if regression else math.sqrt(value * (1 - value) / n)


def uncertainty(option: Option, f: dict) -> float:
    """How far an option's prediction may be off beyond its gain range: for a prediction from the linear-head
    curve, the larger of the draws' spread, the dev rows' sampling error and ``NOISE``; 0 for the zero-shot base,
    measured on dev as the runs are."""
    if option.base == "zero" or f["probe"] is None:
        return 0.0
    return max(NOISE, f["probe_std"] or 0.0, f["probe_se"] or 0.0)


def predict(option: Option, f: dict) -> tuple[float, float] | None:
    """The option's predicted dev metric range from its base and gain; None when its base was not measured."""
    bases = {"zero": f["zero"], "probe": f["probe"],
             "best": max((v for v in (f["zero"], f["probe"]) if v is not None), default=None)}
    base = bases[option.base]
    if base is None:
        return None
    spread = uncertainty(option, f)
    return base + option.gain[0] - spread, base + option.gain[1] + spread


def cost_s(option: Option, f: dict, evidence: dict, eval_points: int = 2) -> float:
    """Predicted wall seconds of a run: the process start-up, the backbone load, the train passes and the
    evaluations, from the speeds measured on this machine."""
    per_row = 1 / evidence["speed"]["texts_per_s"] * (2 if f["pair"] else 1)
    dev = evidence["task"]["dev_rows"] * per_row
    train = f["rows"] * per_row * option.passes * option.epochs
    evals = dev * (eval_points if option.epochs else 1)
    return evidence["speed"].get("startup_s", 0.0) + evidence["speed"]["load_s"] + train + evals


def recommend(evidence: dict) -> dict:
    """Place the task in the matrix and rank the strategies.

    Returns:
        ``{"rule", "quadrant", "facts", "options": [{"strategy", "flags", "predicted", "cost_s", "why"}], "stop",
        "evidence_cited"}``, options best first.
    """
    f = facts(evidence)
    rule = place(f)
    from hf_tl.strategies import strategy_class

    ranked, margins = [], {}
    # Zero-shot skipped for lack of time is still worth its one evaluation; one the task has no form for is not.
    unmeasured = (evidence.get("zero_shot_run") or {}).get("reason") == SKIPPED_FOR_TIME
    for option in rule.options:
        predicted = predict(option, f)
        if predicted is None and not strategy_class(option.strategy).learns and not unmeasured:
            continue  # a strategy that learns nothing is its measurement, and it refused this task and backbone
        ranked.append({"strategy": option.strategy, "flags": list(option.flags), "predicted": predicted,
                       "cost_s": cost_s(option, f, evidence), "why": option.why})
        margins[id(ranked[-1])] = uncertainty(option, f)
    # Measurements overrule the table's order where they disagree by more than noise: an option predicted better
    # by over twice the error of the two predictions (and NOISE) moves up; a stable sort keeps the table's order
    # among the rest.
    sign = 1 if f["greater_is_better"] else -1

    def centre(r):
        return None if r["predicted"] is None else sum(r["predicted"]) / 2

    top = centre(ranked[0]) if ranked else None
    if top is not None:
        first = margins[id(ranked[0])]

        def clearly_better(r) -> bool:
            margin = max(NOISE, 2 * max(margins[id(r)], first))
            return centre(r) is not None and sign * (centre(r) - top) > margin

        ranked.sort(key=lambda r: (0, -sign * centre(r)) if clearly_better(r) else (1, 0.0))
    stop = rule.stop
    if not stop and f["little"] and f["zero"] is not None and f["probe"] is not None \
            and sign * (f["zero"] - f["probe"]) >= -NOISE:
        stop = (f"Zero-shot ({f['zero']:.4f}) is within noise of or above a trained linear head "
                f"({f['probe']:.4f}): try it first.")
    return {"rule": rule.name, "quadrant": rule.quadrant, "facts": f, "options": ranked[:3], "stop": stop,
            "evidence_cited": rule.evidence}
