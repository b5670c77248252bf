"""Length-grouped batching: every example once per epoch, a new order each epoch, and less padding than random."""

import json

import pytest
import torch
from conftest import launch_two_processes, run_recipe, tiny_args
from transformers import AutoTokenizer

from hf_tl.data.length_grouping import LengthGroupedSampler
from hf_tl.data.loading import read_file, resolve_data_file

BATCH = 32


@pytest.fixture(scope="module")
def stsb_lengths(tiny_bert):
    rows = read_file(resolve_data_file("stsb/train.csv", None), ["sentence1", "sentence2", "score"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    encoded = tokenizer(list(rows["sentence1"]), list(rows["sentence2"]), truncation=True, max_length=128)
    return [len(ids) for ids in encoded["input_ids"]]


def padded_tokens(order: list[int], lengths: list[int]) -> int:
    """Tokens the batches of ``order`` hold once each is padded to its longest example."""
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


@pytest.mark.real_data
def test_every_example_once_per_epoch_in_a_new_order(stsb_lengths):
    sampler = LengthGroupedSampler(stsb_lengths, BATCH, seed=7)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
        assert sorted(epochs[-1]) == list(range(len(stsb_lengths)))
    assert epochs[0] != epochs[1] != epochs[2]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1]  # reproducible: an epoch's order depends only on seed and epoch
    # The batches themselves are shuffled: the first batches of two epochs are not the longest ones both times.
    firsts = [max(stsb_lengths[i] for i in order[:BATCH]) for order in epochs]
    assert len(set(firsts)) > 1


@pytest.mark.real_data
def test_less_padding_than_random_batches_on_stsb(stsb_lengths):
    real = sum(stsb_lengths)
    sampler = LengthGroupedSampler(stsb_lengths, BATCH, seed=0)
    grouped = padded_tokens(list(sampler), stsb_lengths) - real
    random_order = torch.randperm(len(stsb_lengths), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = padded_tokens(random_order, stsb_lengths) - real
    print(f"padding tokens per epoch: grouped {grouped:,}, random {shuffled:,}")
    assert grouped < 0.25 * shuffled


def test_only_the_last_batch_is_short():
    lengths = list(range(103))
    order = list(LengthGroupedSampler(lengths, 10, seed=1))
    batches = [order[i:i + 10] for i in range(0, len(order), 10)]
    assert [len(b) for b in batches] == [10] * 10 + [3]
    for b in batches[:-1]:  # each batch comes from one sorted megabatch: its lengths are contiguous here
        assert max(b) - min(b) == 9


@pytest.mark.real_data
def test_two_processes_with_length_groups_match_one(tiny_bert, tmp_path):
    extra = ["--strategy", "full", "--num_train_epochs", "2", "--head_dropout", "0.0", "--group_by_length", "true"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_recipe(tiny_args(tiny_bert, one, *extra, train=32, dev=25))
    argv = tiny_args(tiny_bert, two, *extra, train=32, dev=25)
    argv[argv.index("--per_device_train_batch_size") + 1] = "4"  # 2 processes x 4 = the same global batch of 8
    launch_two_processes("text_similarity", argv, tmp_path)
    logs = [[json.loads(line) for line in (d / "eval_log.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]] == [4, 8]
    for a, b in zip(*logs):
        assert b["eval_samples"] == 25
        assert b["spearmanr"] == pytest.approx(a["spearmanr"], abs=2e-3)
