"""Typed configuration of a run, its data group: where the task's data comes from, which columns hold what, which
rows train (few-shot, folds, augmentation, a teacher's silver pairs or targets) and the task's loss
(:mod:`hf_tl.config` holds the model and strategy groups and re-exports this one)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

from hf_tl.choices import (
    ARCHITECTURES,
    AUGMENTATIONS,
    LM_TASKS,
    LOSS_CHOICES,
    LOSS_FITS,
    PACKINGS,
    TASK_TYPES,
    check_choice,
    check_positive,
)
from hf_tl.errors import HfTlError

# Options read by the language-modelling tasks alone (masking ones by masked_lm alone).
LM_OPTIONS = ("packing", "mlm_probability", "mask_replace_prob", "random_replace_prob", "whole_word_mask")


@dataclass
class DataArguments:
    """Where the task's data comes from and which columns hold what."""

    _argument_group_name = "data"  # the section of --help (HfArgumentParser)

    task: str = field(
        default="similarity",
        metadata={"choices": TASK_TYPES,
                  "help": "similarity (pair -> score), pair_classification (pair -> label, e.g. paraphrase), "
                          "classification (one text -> label, e.g. sentiment), or the pretraining objectives "
                          "masked_lm (encoders) and causal_lm (decoders) on plain text."},
    )
    architecture: str = field(
        default="cross_encoder",
        metadata={"choices": ARCHITECTURES,
                  "help": "similarity: cross_encoder (pair -> regression head) or bi_encoder (cosine of two "
                          "embeddings)."},
    )
    loss: str = field(
        default="auto",
        metadata={"choices": LOSS_CHOICES,
                  "help": "What the task trains on: auto (mse for similarity, cross_entropy for classification), "
                          "cosent or angle (similarity: rank the pairs of each batch by gold score; angle reads a "
                          "bi-encoder's embeddings), or mnrl (bi-encoder: in-batch negatives, each pair scoring at "
                          "least positive_min_score must pick its own partner out of the batch)."},
    )
    positive_min_score: Optional[float] = field(
        default=None,
        metadata={"help": "loss mnrl: the gold score from which a pair is a positive (default: four fifths of the way "
                          "from score_min to score_max, 4.0 on STS-B)."},
    )
    dataset_name: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset id, e.g. sentence-transformers/stsb or glue (with config)."}
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset config, e.g. mrpc."})
    fallback_dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "Hub copy of the local files: read it when no data folder is set (data_dir and "
                          "HF_TL_DATA_DIR unset) and the relative train/validation files are not found (the run says "
                          "so), e.g. sentence-transformers/stsb."},
    )
    data_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Folder that relative train/validation file paths are read from (env HF_TL_DATA_DIR)."},
    )
    train_file: Optional[str] = field(default=None, metadata={"help": "Local CSV/TSV/JSON(L) training file."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Local CSV/TSV/JSON(L) dev file."})
    column_names: Optional[str] = field(
        default=None,
        metadata={"help": "Comma-separated names for a headerless CSV/TSV, e.g. 'sentence1,sentence2,score'."},
    )
    text_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the (first) text; default: sentence1, or sentence for "
                                        "classification."}
    )
    text_pair_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the second text (pair tasks); default: sentence2."}
    )
    label_column: Optional[str] = field(
        default=None, metadata={"help": "Column of the gold score or label; default: score for similarity, label "
                                        "otherwise."}
    )
    label_names: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Classification: names of the labels in id order (e.g. negative positive); integer "
                          "labels in the data index into them. Default: read from the data."},
    )
    score_min: float = field(default=0.0, metadata={"help": "Similarity: lowest valid gold score."})
    score_max: float = field(default=5.0, metadata={"help": "Similarity: highest valid gold score."})
    prompt_template: Optional[str] = field(
        default=None,
        metadata={"help": "Wrap each input in this template before tokenizing, e.g. 'Review: {text}\\nSentiment:' "
                          "({text_pair} joins a pair into one text). Recorded in the run, so predict applies it too."},
    )
    label_descriptions: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Zero-shot: one text per label, in label order: its description (label_description), "
                          "its word after the prompt (label_likelihood) or what fills the NLI hypothesis (nli). "
                          "Default: the label names."},
    )
    few_shot_k: Optional[int] = field(
        default=None,
        metadata={"help": "Few-shot: train on k examples per label (similarity: per score rounded to a whole "
                          "number), drawn by few_shot_seed."},
    )
    few_shot_seed: int = field(default=0, metadata={"help": "Few-shot: the seed that draws the k examples."})
    cv_folds: Optional[int] = field(
        default=None,
        metadata={"help": "Cross-validation: train one run per fold of the train split (each scored on the fold it "
                          "did not see) into output_dir/fold-N, and report the metrics' mean, standard deviation and "
                          "95 percent interval, out-of-fold predictions, and each fold model's score on the dev "
                          "split. Folds are stratified by label (score bin for similarity) and keep a pair with its "
                          "swap."},
    )
    cv_fold: Optional[int] = field(
        default=None,
        metadata={"help": "Cross-validation: run fold N (0-based) alone, training on the other folds and scoring on "
                          "this one (what each run of cv_folds does)."},
    )
    cv_seed: int = field(default=0, metadata={"help": "Cross-validation: the seed that draws the folds."})
    augment: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Add train rows made from the train rows (never dev): swap_pairs (each pair swapped), "
                          "random_swap, random_deletion (word-level, augment_copies new rows per row each)."},
    )
    augment_copies: int = field(default=1, metadata={"help": "augment: new rows per train row and word operation."})
    augment_seed: int = field(default=0, metadata={"help": "augment: the seed of the word operations."})
    silver_from: Optional[str] = field(
        default=None,
        metadata={"help": "Similarity (augmented SBERT): a finished run, e.g. a cross-encoder or an ensemble, that "
                          "scores silver_pairs new pairs recombined from the train sentences; the run trains on the "
                          "gold pairs plus these silver ones."},
    )
    silver_pairs: Optional[int] = field(
        default=None, metadata={"help": "silver_from: how many silver pairs (default: as many as train rows)."}
    )
    distill_from: Optional[str] = field(
        default=None,
        metadata={"help": "Distillation: a finished run of the same task (the teacher) whose outputs on the train "
                          "rows become the targets: its scores (similarity), its probabilities (classification, "
                          "soft cross-entropy = KL). A small backbone can learn from a large one this way."},
    )
    distill_alpha: float = field(
        default=1.0,
        metadata={"help": "distill_from: the teacher's share of each target (1 = the teacher's alone; 0.5 = half "
                          "teacher, half gold)."},
    )
    packing: str = field(
        default="concat",
        metadata={"choices": PACKINGS,
                  "help": "masked_lm/causal_lm: concat (documents joined, EOS between them for causal_lm, and cut "
                          "into full max_length rows), chunk (each document cut on its own: no row mixes "
                          "documents) or none (one row per document, truncated)."},
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "masked_lm: share of tokens predicted."})
    mask_replace_prob: float = field(
        default=0.8, metadata={"help": "masked_lm: share of the predicted tokens replaced by the mask token."})
    random_replace_prob: float = field(
        default=0.1, metadata={"help": "masked_lm: share replaced by a random token (the rest stay as they are)."})
    whole_word_mask: bool = field(
        default=False, metadata={"help": "masked_lm: choose whole words, all their tokens together."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N train rows."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N dev rows."})

    def __post_init__(self):
        check_choice("task", self.task, TASK_TYPES)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if self.architecture == "bi_encoder" and self.task != "similarity":
            raise HfTlError(f"architecture bi_encoder is for task similarity; task {self.task} uses cross_encoder.")
        if self.label_names is not None:
            self.label_names = [str(n) for n in self.label_names]
            if len(set(self.label_names)) != len(self.label_names) or len(self.label_names) < 2:
                raise HfTlError(f"label_names must name at least two distinct labels, got {self.label_names}.")
        columns = {k: getattr(self, k) for k in ("text_column", "text_pair_column", "label_column")
                   if getattr(self, k) is not None}
        if len(set(columns.values())) < len(columns):
            raise HfTlError(f"text_column, text_pair_column and label_column must be different columns, got "
                            f"{columns}; check the column mapping.")
        if self.score_max <= self.score_min:
            raise HfTlError(f"score_max ({self.score_max}) must be greater than score_min ({self.score_min}).")
        self._check_loss()
        if self.prompt_template is not None and "{text}" not in self.prompt_template:
            raise HfTlError(f"prompt_template must contain {{text}} where the input goes, got "
                            f"{self.prompt_template!r}.")
        if self.label_descriptions is not None:
            self.label_descriptions = [str(d) for d in self.label_descriptions]
            if self.label_names is not None and len(self.label_descriptions) != len(self.label_names):
                raise HfTlError(f"label_descriptions has {len(self.label_descriptions)} entries but label_names has "
                                f"{len(self.label_names)}; give one description per label, in label order.")
        if self.cv_folds is not None and self.cv_folds < 2:
            raise HfTlError(f"cv_folds must be at least 2, got {self.cv_folds}.")
        if self.cv_fold is not None and (self.cv_folds is None or not 0 <= self.cv_fold < self.cv_folds):
            raise HfTlError(f"cv_fold {self.cv_fold} needs cv_folds set and must lie in [0, cv_folds); "
                            f"got cv_folds {self.cv_folds}.")
        self._check_teachers()
        self._check_language_modeling()
        for name in ("max_train_samples", "max_eval_samples", "few_shot_k", "augment_copies", "silver_pairs"):
            value = getattr(self, name)
            if value is not None:
                check_positive(name, value)

    def _check_teachers(self) -> None:
        if self.augment is not None:
            for op in self.augment:
                check_choice("augment", op, AUGMENTATIONS)
        if self.silver_from is not None and self.task != "similarity":
            raise HfTlError(f"silver_from labels new sentence pairs with scores (augmented SBERT), so it is for task "
                            f"similarity, not {self.task}; use distill_from for a classification teacher.")
        if self.silver_pairs is not None and self.silver_from is None:
            raise HfTlError("silver_pairs is read with silver_from only; name the teacher run, or remove it.")
        if not 0 < self.distill_alpha <= 1:
            raise HfTlError(f"distill_alpha must be in (0, 1], got {self.distill_alpha}.")
        if self.distill_alpha != 1.0 and self.distill_from is None:
            raise HfTlError("distill_alpha is read with distill_from only; name the teacher run, or remove it.")

    def _check_language_modeling(self) -> None:
        check_choice("packing", self.packing, PACKINGS)
        lm_only = {f.name: f.default for f in fields(self) if f.name in LM_OPTIONS}  # set only when not default
        if self.task not in LM_TASKS:
            for name, default in lm_only.items():
                if getattr(self, name) != default:
                    raise HfTlError(f"{name} is read by tasks masked_lm and causal_lm only, not {self.task}; remove "
                                    f"it.")
            return
        if self.task == "causal_lm":
            for name in ("mlm_probability", "mask_replace_prob", "random_replace_prob", "whole_word_mask"):
                if getattr(self, name) != lm_only[name]:
                    raise HfTlError(f"{name} is read by task masked_lm only (causal_lm predicts every next token); "
                                    f"remove it.")
        if not 0 < self.mlm_probability < 1:
            raise HfTlError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}.")
        for name in ("mask_replace_prob", "random_replace_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise HfTlError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise HfTlError(f"mask_replace_prob + random_replace_prob must be at most 1, got "
                            f"{self.mask_replace_prob} + {self.random_replace_prob}.")
        teachers = [n for n in ("few_shot_k", "cv_folds", "augment", "silver_from", "distill_from", "label_names",
                                "prompt_template") if getattr(self, n) is not None]
        if teachers or self.loss != "auto" or self.architecture != "cross_encoder":
            raise HfTlError(f"task {self.task} learns from plain text, so "
                            f"{(teachers or ['loss' if self.loss != 'auto' else 'architecture'])[0]} does not apply; "
                            f"remove it.")

    def _check_loss(self) -> None:
        check_choice("loss", self.loss, LOSS_CHOICES)
        if self.positive_min_score is not None and self.loss != "mnrl":
            raise HfTlError("positive_min_score is read by loss mnrl only; remove it, or set loss mnrl.")
        if self.loss == "auto":
            return
        tasks, embeddings = LOSS_FITS[self.loss]
        if self.task not in tasks:
            raise HfTlError(f"loss {self.loss} trains task {' or '.join(tasks)}, not {self.task}; set loss auto (or "
                            f"one of {', '.join(k for k, v in LOSS_FITS.items() if self.task in v[0])}).")
        if embeddings and self.architecture != "bi_encoder":
            raise HfTlError(f"loss {self.loss} reads the two embeddings of a bi-encoder; set architecture bi_encoder, "
                            f"or use loss cosent or mse with a cross-encoder.")
        if self.positive_min_score is not None and not self.score_min < self.positive_min_score <= self.score_max:
            raise HfTlError(f"positive_min_score ({self.positive_min_score}) must lie in (score_min, score_max] = "
                            f"({self.score_min}, {self.score_max}].")
