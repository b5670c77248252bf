"""Train-split augmentation: reproducible by seed, made from train rows only, never from a held-out row."""

import pytest
from conftest import STSB_ARGS
from datasets import Dataset

from hf_tl.config_io import parse_args
from hf_tl.data.augment import augment_split, random_deletion, random_swap
from hf_tl.errors import HfTlError
from hf_tl.training.setup import resolve_config

COLUMNS = {"text": "a", "text_pair": "b", "label": "y"}


def tiny_split():
    return Dataset.from_dict({"a": ["the cat sat on the mat", "a dog runs in the park today"],
                              "b": ["a cat is sitting", "the dog is running"], "y": [4.0, 3.5]})


def test_augmentation_is_reproducible_and_keeps_the_original_rows_first():
    train = tiny_split()
    first = augment_split(train, ["swap_pairs", "random_swap", "random_deletion"], 2, seed=5, columns=COLUMNS)
    again = augment_split(train, ["swap_pairs", "random_swap", "random_deletion"], 2, seed=5, columns=COLUMNS)
    other = augment_split(train, ["swap_pairs", "random_swap", "random_deletion"], 2, seed=6, columns=COLUMNS)
    assert first.to_dict() == again.to_dict() and first.to_dict() != other.to_dict()
    assert len(first) == 2 + 2 + 2 * 2 * 2  # originals, swapped pairs, 2 copies x 2 word operations
    assert first[:2] == train[:2]
    assert (first[2]["a"], first[2]["b"], first[2]["y"]) == (train[0]["b"], train[0]["a"], 4.0)
    swapped = random_swap("one two three four", __import__("random").Random(0))
    assert sorted(swapped.split()) == ["four", "one", "three", "two"] and swapped != "one two three four"
    assert random_deletion("single", __import__("random").Random(0)) == "single"


def test_swap_pairs_needs_pairs():
    with pytest.raises(HfTlError, match="swaps the two texts of a pair"):
        augment_split(Dataset.from_dict({"a": ["x"], "y": [1]}), ["swap_pairs"], 1, 0, {"text": "a", "label": "y"})


@pytest.mark.real_data
def test_a_held_out_row_never_reaches_the_augmented_train_split():
    config = parse_args([*STSB_ARGS, "--max_train_samples", "60", "--cv_folds", "3", "--cv_fold", "1",
                         "--augment", "swap_pairs", "random_swap"])
    _, raw = resolve_config(config, need_train=True)
    train, held = raw["similarity"]["train"], raw["similarity"]["validation"]
    assert len(train) == 3 * (60 - len(held))  # every train row, swapped, and changed once
    held_pairs = {frozenset(p) for p in zip(held["sentence1"], held["sentence2"])}
    assert not held_pairs & {frozenset(p) for p in zip(train["sentence1"], train["sentence2"])}
