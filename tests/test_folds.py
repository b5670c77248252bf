"""Cross-validation folds: an exact partition of the train split, stratified, a pair and its swap together, and the
same folds for the same seed."""

from collections import Counter

import numpy as np
import pytest
from datasets import Dataset

from hf_tl import RunConfig
from hf_tl.data.folds import fold_ids, split_fold, strata
from hf_tl.errors import HfTlError


def pairs_with_swaps(n: int = 60):
    texts = [f"text {i}" for i in range(n)]
    partners = [f"partner {i}" for i in range(n)]
    scores = [float(i % 6) for i in range(n)]
    # Every fifth pair also appears swapped, and the first pair twice: each must stay in its pair's fold.
    for i in range(0, n, 5):
        texts.append(partners[i])
        partners.append(texts[i])
        scores.append(scores[i])
    texts.append(texts[0])
    partners.append(partners[0])
    scores.append(scores[0])
    return texts, partners, scores


def test_folds_partition_stratify_group_and_repeat_by_seed():
    texts, partners, scores = pairs_with_swaps()
    row_strata = strata(scores, regression=True, score_min=0.0, score_max=5.0)
    ids = fold_ids(texts, partners, row_strata, 5, seed=7)
    assert sorted(set(ids)) == [0, 1, 2, 3, 4] and len(ids) == len(texts)  # every row in exactly one fold
    where = {}
    for i, (a, b) in enumerate(zip(texts, partners)):
        where.setdefault(frozenset((a, b)), set()).add(int(ids[i]))
    assert all(len(folds) == 1 for folds in where.values())  # a pair, its swap and its copy: one fold
    sizes = Counter(ids.tolist())
    assert max(sizes.values()) - min(sizes.values()) <= 3
    for stratum in set(row_strata):  # each score bin spread over the folds
        in_stratum = Counter(int(ids[i]) for i, s in enumerate(row_strata) if s == stratum)
        assert len(in_stratum) >= 4, (stratum, in_stratum)
    assert np.array_equal(fold_ids(texts, partners, row_strata, 5, seed=7), ids)
    assert not np.array_equal(fold_ids(texts, partners, row_strata, 5, seed=8), ids)


def test_classification_strata_are_labels_and_split_fold_gives_the_rest_to_train():
    labels = ["pos", "neg"] * 20
    texts = [f"review {i}" for i in range(40)]
    assert strata(labels, regression=False)[:2] == ["pos", "neg"]
    data = RunConfig.from_flat_dict({"task": "classification", "text_column": "sentence", "label_column": "label",
                                     "label_names": ["neg", "pos"], "cv_folds": 4, "cv_fold": 1}).data
    train = Dataset.from_dict({"sentence": texts, "label": labels})
    part, held = split_fold(train, data, {"text_column": "sentence"})
    assert len(part) + len(held) == 40 and not set(part["sentence"]) & set(held["sentence"])
    assert Counter(held["label"]) == Counter({"pos": 5, "neg": 5})  # stratified: the label mix of the split


@pytest.mark.parametrize("settings, message", [
    ({"cv_folds": 1}, "cv_folds must be at least 2"),
    ({"cv_fold": 0}, "needs cv_folds set"),
    ({"cv_folds": 3, "cv_fold": 3}, r"must lie in \[0, cv_folds\)"),
    ({"cv_folds": 3, "strategy": "zero_shot", "architecture": "bi_encoder"}, "nothing to estimate"),
    ({"cv_folds": 3, "push_to_hub": True, "hub_model_id": "u/m"}, "push a fold afterwards"),
])
def test_cross_validation_settings_that_cannot_run_are_refused(settings, message):
    with pytest.raises(HfTlError, match=message):
        RunConfig.from_flat_dict(settings)


def test_too_few_rows_for_the_folds_is_one_sentence():
    with pytest.raises(HfTlError, match="cv_folds 5 needs at least 5 distinct train rows"):
        fold_ids(["a", "b", "a"], ["b", "a", "b"], ["0", "0", "0"], 5, seed=0)
