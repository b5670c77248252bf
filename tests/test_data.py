"""Reading the shared data as it lies, checking it, and padding batches."""

import pytest
import torch
from conftest import DATA_DIR, REPO

from hf_tl.config import DataArguments
from hf_tl.data import PaddingCollator, load_raw_splits
from hf_tl.data.loading import read_file, resolve_data_file
from hf_tl.errors import HfTlError
from hf_tl.tasks import SimilarityTask


@pytest.mark.real_data
def test_stsb_headerless_csv_reads_as_it_lies():
    args = DataArguments(train_file="stsb/train.csv", validation_file="stsb/dev.csv",
                         column_names="sentence1,sentence2,score")
    splits = load_raw_splits(args)
    assert len(splits["train"]) == 5749 and len(splits["validation"]) == 1500
    assert splits["train"].column_names == ["sentence1", "sentence2", "score"]
    assert all(0.0 <= s <= 5.0 for s in splits["validation"]["score"])
    assert any("," in s for s in splits["train"]["sentence1"])  # quoted fields with commas survive


def test_tsv_with_byte_order_mark_and_quotes_reads(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes('\ufeffs1\ts2\tscore\n"quoted start\tother\t3\n'.encode())
    ds = read_file(path, None)
    assert ds.column_names == ["s1", "s2", "score"] and ds[0]["s1"] == '"quoted start'


@pytest.mark.real_data
def test_relative_paths_resolve_under_the_data_dir(monkeypatch):
    monkeypatch.setenv("HF_TL_DATA_DIR", str(DATA_DIR))
    assert resolve_data_file("stsb/dev.csv", None) == DATA_DIR / "stsb" / "dev.csv"
    with pytest.raises(HfTlError, match="does not exist"):
        resolve_data_file("stsb/missing.csv", None)


def test_scores_are_scaled_for_training_and_back_for_prediction(tiny_bert):
    from transformers import AutoTokenizer

    task = SimilarityTask(DataArguments(), AutoTokenizer.from_pretrained(tiny_bert), 32)
    from datasets import Dataset

    prepared = task.prepare_split(Dataset.from_dict({"sentence1": ["a", "b"], "sentence2": ["c", "d"],
                                                     "score": [5.0, 1.0]}), "train")
    assert prepared["label"] == [1.0, 0.2]
    assert task.decode([1.0, 0.2]) == pytest.approx([5.0, 1.0])


def test_hub_presets_fill_in_stsb_columns_and_range():
    from transformers import AutoTokenizer  # noqa: F401

    task = SimilarityTask(DataArguments(dataset_name="sentence-transformers/stsb"), None, 32)
    assert task.data.score_max == 1.0 and task.data.label_column == "score"
    glue = SimilarityTask(DataArguments(dataset_name="glue", dataset_config_name="stsb"), None, 32)
    assert glue.data.label_column == "label" and glue.data.score_max == 5.0


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_pads_each_text_of_a_pair_on_its_own(side):
    collate = PaddingCollator(pad_token_id=9, padding_side=side, pad_to_multiple_of=4)
    batch = collate([{"input_ids": [1, 2], "attention_mask": [1, 1], "input_ids_b": [5], "attention_mask_b": [1],
                      "labels": 0.5},
                     {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "input_ids_b": [5, 6],
                      "attention_mask_b": [1, 1], "labels": 1.0}])
    assert batch["input_ids"].shape == (2, 4) and batch["input_ids_b"].shape == (2, 4)
    first = [1, 2, 9, 9] if side == "right" else [9, 9, 1, 2]
    assert batch["input_ids"][0].tolist() == first
    assert batch["attention_mask"][0].tolist() == [1 if t != 9 else 0 for t in first]
    assert batch["labels"].dtype == torch.float32


def test_with_no_data_folder_the_main_job_reads_stsb_from_the_hub(monkeypatch, tmp_path, tiny_bert, capsys):
    """stsb_full.yaml names the Hub copy of its files: read when no data folder is set (said in one line), and the
    run records the source it read."""
    from datasets import Dataset

    import hf_tl
    from hf_tl.data import loading

    rows = {"sentence1": ["A man plays.", "A dog runs.", "Stocks fell."] * 4,
            "sentence2": ["A man is playing.", "A cat sleeps.", "Markets fell."] * 4,
            "score": [0.9, 0.1, 0.8] * 4}  # the Hub copy's 0-1 scale
    asked = []

    def hub(name, config_name):
        asked.append(name)
        return {"train": Dataset.from_dict(rows), "validation": Dataset.from_dict(rows)}

    monkeypatch.setattr(loading, "load_hub_splits", hub)  # the Hub read itself is datasets' job
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # as a user online; nothing reaches the network (patched above)
    monkeypatch.delenv("HF_TL_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # stsb/train.csv is not found from here
    config = hf_tl.load_config(REPO / "recipes/configs/stsb_full.yaml", model_name_or_path=tiny_bert,
                               output_dir=str(tmp_path / "run"), num_train_epochs=1, per_device_train_batch_size=4)
    results = hf_tl.train(config)
    assert asked == ["sentence-transformers/stsb"] and results["eval_samples"] == 12
    assert "reading the Hub dataset 'sentence-transformers/stsb' instead" in capsys.readouterr().out
    recorded = hf_tl.load_config(tmp_path / "run" / "config.yaml").data
    assert recorded.dataset_name == "sentence-transformers/stsb" and recorded.train_file is None
    assert (recorded.score_min, recorded.score_max) == (0.0, 1.0)  # the Hub copy's range, from the task's presets


def test_offline_without_a_data_folder_names_both_ways_to_give_the_data(monkeypatch, tmp_path):
    import hf_tl

    monkeypatch.delenv("HF_TL_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    config = hf_tl.load_config(REPO / "recipes/configs/stsb_full.yaml", output_dir=str(tmp_path / "run"))
    with pytest.raises(HfTlError, match=r"HF_TL_DATA_DIR .*stsb/train.csv and stsb/dev.csv, or go online") as err:
        hf_tl.train(config)
    assert "sentence-transformers/stsb" in str(err.value) and "\n" not in str(err.value)
    # A data folder that lacks the files is an error, never a reason to read the Hub.
    monkeypatch.setenv("HF_TL_DATA_DIR", str(tmp_path))
    with pytest.raises(HfTlError, match="Data file 'stsb/train.csv' does not exist"):
        hf_tl.train(config)
