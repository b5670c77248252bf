"""The tokenized cache: a second read of the same split with the same tokenizer and settings is a hit with the same
tokens; a changed tokenizer, max length, data file or data setting is a miss; a damaged entry is rebuilt."""

import os
import shutil

import pytest
from conftest import run_recipe, tiny_args
from transformers import AutoTokenizer

from hf_tl.config import DataArguments
from hf_tl.data.loading import read_file
from hf_tl.data.token_cache import ENV_CACHE_DIR, tokenized_split
from hf_tl.feature_cache import tokenizer_fingerprint
from hf_tl.tasks.similarity import SimilarityTask

ROWS = "A man plays a guitar.,A man is playing a guitar.,4.8\nA cat sleeps.,Stocks fell sharply.,0.1\n"
COLUMNS = ["sentence1", "sentence2", "score"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def tokenize(path, tokenizer, max_length=128, **data):
    task = SimilarityTask(DataArguments(text_column="sentence1", text_pair_column="sentence2", label_column="score",
                                        **data), tokenizer, max_length)
    return tokenized_split(task, read_file(path, COLUMNS), "train", tokenizer_fingerprint(tokenizer))


def test_the_same_split_is_a_hit_with_the_same_tokens(tiny_bert, tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text(ROWS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    built, status = tokenize(data, tokenizer)
    assert status == "built"
    again, status = tokenize(data, tokenizer)
    assert status == "hit"
    assert again.to_dict() == built.to_dict() and again["labels"] == pytest.approx([0.96, 0.02])  # scaled to [0, 1]


def test_a_changed_tokenizer_max_length_file_or_setting_is_a_miss(tiny_bert, tiny_gpt2, tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text(ROWS)
    bert = AutoTokenizer.from_pretrained(tiny_bert)
    assert tokenize(data, bert)[1] == "built"
    gpt2 = AutoTokenizer.from_pretrained(tiny_gpt2)
    gpt2.pad_token = gpt2.eos_token
    assert tokenize(data, gpt2)[1] == "built"  # another vocabulary
    extended = AutoTokenizer.from_pretrained(tiny_bert)
    extended.add_tokens(["guitarist"])
    assert tokenize(data, extended)[1] == "built"  # the same folder, one more token
    short, status = tokenize(data, bert, max_length=8)
    assert status == "built" and max(len(ids) for ids in short["input_ids"]) == 8
    assert tokenize(data, bert, architecture="bi_encoder")[1] == "built"  # another data setting
    data.write_text(ROWS.replace("4.8", "3.9"))  # the same file, new contents
    changed, status = tokenize(data, bert)
    assert status == "built" and changed["labels"] == pytest.approx([0.78, 0.02])
    moved = tmp_path / "copy.csv"
    shutil.copy(data, moved)  # another file with the same rows: the same tokens (whether hit or built)
    assert tokenize(moved, bert)[0].to_dict() == changed.to_dict()
    assert tokenize(data, bert)[1] == "hit"


def test_a_damaged_entry_is_rebuilt_not_used(tiny_bert, tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text(ROWS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    built, _ = tokenize(data, tokenizer)
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    arrow = next(entry.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: os.path.getsize(arrow) // 2])
    rebuilt, status = tokenize(data, tokenizer)
    assert status == "built" and rebuilt.to_dict() == built.to_dict()
    assert tokenize(data, tokenizer)[1] == "hit"


def test_an_in_memory_split_is_tokenized_every_time(tiny_bert, cache):
    from datasets import Dataset

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    task = SimilarityTask(DataArguments(text_column="sentence1", text_pair_column="sentence2", label_column="score"),
                          tokenizer, 128)
    raw = Dataset.from_dict({"sentence1": ["a b"], "sentence2": ["c d"], "score": [1.0]})
    assert tokenized_split(task, raw, "train", tokenizer_fingerprint(tokenizer))[1] == "computed"
    assert not cache.exists()


@pytest.mark.real_data
def test_a_second_run_reads_its_tokens_and_ends_the_same(tiny_bert, tmp_path, cache, capsys):
    first, second, off = tmp_path / "first", tmp_path / "second", tmp_path / "off"
    a = run_recipe(tiny_args(tiny_bert, first, "--max_steps", "2", train=16, dev=8))
    assert "tokens read from the cache" not in capsys.readouterr().out
    b = run_recipe(tiny_args(tiny_bert, second, "--max_steps", "2", train=16, dev=8))
    assert "tokens read from the cache of an earlier run: similarity/train, similarity/validation" in \
        capsys.readouterr().out
    c = run_recipe(tiny_args(tiny_bert, off, "--max_steps", "2", "--cache_tokenized", "false", train=16, dev=8))
    assert "tokens read from the cache" not in capsys.readouterr().out
    assert a["eval_spearmanr"] == b["eval_spearmanr"] == c["eval_spearmanr"]
