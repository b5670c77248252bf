"""What a run exports: every set of weights with its tokenizer, and an adapter that names its Hub base."""

import json

import pytest
from conftest import run_recipe, tiny_args
from transformers import AutoModel, AutoTokenizer

from hf_tl.standard.one_copy import backbone_weights

pytestmark = pytest.mark.real_data  # the runs here train on the real data files

TEXTS = ["A man is playing a guitar.", "Électricité, naïve café"]


def same_tokenizer(folder, reference):
    a, b = AutoTokenizer.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(reference))
    return a(TEXTS)["input_ids"] == b(TEXTS)["input_ids"] and a.pad_token == b.pad_token


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_weights_are_saved_with_their_tokenizer(tiny_model, tmp_path, strategy):
    run = tmp_path / "run"
    run_recipe(tiny_args(tiny_model, run, "--strategy", strategy, train=8, dev=8))
    # A full backbone lies in backbone/, or at the root when the root's standard model holds it (one copy).
    weights = backbone_weights(run)
    folder = run / "adapter" if strategy == "lora" else weights if weights.is_dir() else weights.parent
    assert same_tokenizer(folder, run / "tokenizer")
    if strategy == "full":  # a standard loader pointed at the folder gets the fine-tuned weights and vocabulary
        AutoModel.from_pretrained(str(folder))


def test_a_backbone_saved_for_init_from_run_has_its_tokenizer(tiny_bert, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    run_recipe(tiny_args(tiny_bert, first, "--strategy", "full", train=8, dev=8))
    run_recipe(tiny_args(tiny_bert, second, "--strategy", "frozen", "--init_from_run", str(first), train=8, dev=8))
    assert same_tokenizer(backbone_weights(second).parent, first / "tokenizer")  # at the root, which holds it


@pytest.mark.real_model
def test_an_adapter_names_its_hub_base_not_a_local_folder(minilm, tmp_path):
    """The packaged copy of all-MiniLM-L6-v2 is read from site-packages; the adapter names the Hub id."""
    run = tmp_path / "run"
    run_recipe(tiny_args("sentence-transformers/all-MiniLM-L6-v2", run, "--strategy", "lora", train=8, dev=8))
    config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    card = (run / "adapter" / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "site-packages" not in card
