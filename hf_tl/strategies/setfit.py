"""The ``setfit`` strategy: few-shot SetFit as a chain of two runs.

1. ``OUTPUT-body``: the backbone is fine-tuned in full as a bi-encoder on pairs generated from the training
   examples (same label -> cosine target 1, different labels -> 0), SetFit's contrastive step; the pairs are kept
   in its ``pairs.jsonl``.
2. ``OUTPUT``: strategy ``features`` on that backbone (``init_from_run``): a scikit-learn head (logistic regression
   by default, as in SetFit) is fitted on its embeddings of the same examples.

The final run is an ordinary run directory (its ``lineage.json`` names the body run), so it loads and predicts like
any other. :mod:`hf_tl.runs.chained` runs the chain.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from torch import nn

from hf_tl.data.few_shot import MAX_PAIRS, contrastive_pairs
from hf_tl.errors import HfTlError
from hf_tl.run_dir import check_output_dir
from hf_tl.strategies.base import CHAINED, ChainStep, Strategy, refuse_learned_mix, register
from hf_tl.tasks import get_task

PAIRS_FILE = "pairs.jsonl"


def body_dir_of(output_dir: str | Path) -> Path:
    """Where a setfit run puts its contrastive body run: beside the final run, named ``OUTPUT-body``."""
    out = Path(output_dir)
    return out.with_name(out.name + "-body")


@register("setfit")
class SetFit(Strategy):
    """Contrastive fine-tuning of the backbone as a bi-encoder, then a scikit-learn head on its embeddings."""

    run_kind = CHAINED
    multitask = False
    resumable = False
    resume_refusal = "runs two short chained runs and cannot resume; start it again"

    @classmethod
    def parameter_report_dir(cls, run_dir: Path) -> Path:
        """The body run trained the backbone; the final run only fits a scikit-learn head."""
        return body_dir_of(run_dir)

    def apply(self, model: nn.Module) -> nn.Module:
        raise HfTlError("strategy 'setfit' runs as two chained runs (a contrastive body, then a features head); "
                        "train it with a recipe or hf_tl.train, which run both.")

    def chain(self, config, raw: dict, workspace: Path) -> list[ChainStep]:
        """The body run (contrastive, on generated pairs), then the head run on its backbone.

        Raises:
            HfTlError: for several tasks, a pair or similarity task, a learned layer mix, no output_dir, an output
                folder that holds a run, or too many pairs for a few-shot method.
        """
        t, s = config.train, config.strategy
        if config.tasks or config.data.task != "classification":
            raise HfTlError("strategy 'setfit' trains one single-text classification task (it pairs texts by "
                            "label); for pairs or scores use few_shot_k with frozen, lora or full.")
        refuse_learned_mix(config.model.layer, "strategy 'setfit' fits a closed-form head, which cannot learn layer "
                                               "weights")
        if not t.output_dir:
            raise HfTlError("strategy 'setfit' needs output_dir (its body run goes beside it as OUTPUT-body).")
        body_dir = body_dir_of(t.output_dir)
        check_output_dir(t.output_dir, t.overwrite_output_dir, False)  # refuse before the body run, not after it
        check_output_dir(str(body_dir), t.overwrite_output_dir, False)
        task = get_task(config.data, None, config.model.max_length)
        examples = task.prepare_split(raw[config.data.task]["train"], "train")
        if 2 * s.setfit_num_iterations * len(examples) > MAX_PAIRS:
            raise HfTlError(f"setfit is a few-shot method: {len(examples):,} train rows would make "
                            f"{2 * s.setfit_num_iterations * len(examples):,} pairs; set few_shot_k (e.g. 16) or "
                            f"lower setfit_num_iterations.")
        pairs = contrastive_pairs(list(examples["text"]), list(examples["label"]), s.setfit_num_iterations, t.seed)
        pairs_file = workspace / PAIRS_FILE  # every process writes the same pairs into its own workspace
        pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        # Fresh data and strategy settings (their classes, not a copy of the user's values).
        data = type(config.data)(
            task="similarity", architecture="bi_encoder", train_file=str(pairs_file),
            # Few-shot has no held-out data: the body run's dev metric is measured on (part of) its own pairs.
            validation_file=str(pairs_file), score_min=0.0, score_max=1.0, max_eval_samples=min(256, len(pairs)),
            prompt_template=config.data.prompt_template)
        body = replace(config, data=data, strategy=type(s)(strategy="full", head_type="none"),
                       train=replace(t, output_dir=str(body_dir), num_train_epochs=s.setfit_epochs, max_steps=None,
                                     eval_strategy="epoch", early_stopping_patience=None, metric_for_best_model=None,
                                     cache_features=False, push_to_hub=False))  # only the final run is the model
        head = replace(config, model=replace(config.model, init_from_run=str(body_dir)),
                       strategy=replace(s, strategy="features"))
        return [ChainStep(body, keep={PAIRS_FILE: pairs_file},
                          done=f"setfit: contrastive body trained on {len(pairs)} pairs from {len(examples)} examples "
                               f"({body_dir})"),
                ChainStep(head)]

    def describe(self) -> str:
        return ("setfit: the backbone trains contrastively on pairs of the examples (OUTPUT-body), then a "
                f"scikit-learn {self.args.sklearn_head} head is fitted on its embeddings")
