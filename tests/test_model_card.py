"""The model card every run directory gets: Hub metadata that parses, metrics and training details from the run."""

import json

import pytest
from conftest import REPO, run_recipe, tiny_args
from huggingface_hub import ModelCard

from hf_tl.config_io import load_config

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files


def card_of(run):
    return ModelCard.load(run / "README.md")


def test_card_metadata_holds_the_real_metrics_and_details(tiny_bert, tmp_path):
    out = tmp_path / "run"
    results = run_recipe(tiny_args(tiny_bert, out, "--strategy", "gradual", "--num_layers", "2", "--num_train_epochs",
                                   "2", "--learning_rate", "3e-4", "--head_learning_rate", "1e-3", "--seed", "7"))
    card = card_of(out)
    assert card.data.library_name == "sentence-transformers" and card.data.pipeline_tag == "text-ranking"
    assert "gradual" in card.data.tags and card.data.base_model is None  # a local folder is not a Hub id
    metrics = {e.metric_type: e.metric_value for e in card.data.eval_results}
    assert metrics == {"pearsonr": results["eval_pearsonr"], "spearmanr": results["eval_spearmanr"]}
    assert {e.dataset_split for e in card.data.eval_results} == {"validation"}
    text = card.text
    config = load_config(out / "config.yaml")
    assert "| seed | 7 |" in text and f"| backbone | {config.train.learning_rate} |" in text
    assert "| head | 0.001 |" in text  # the head's own learning rate
    assert "Unfreezing schedule" in text and "| 0 |" in text  # gradual's stages
    info = json.loads((out / "training_info.json").read_text())
    assert f"optimizer steps / epochs done | {info['optimizer_steps']} / 2" in text


def test_lora_card_names_peft_and_its_config(tiny_gpt2, tmp_path):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_gpt2, out, "--strategy", "lora", "--lora_r", "4"))
    card = card_of(out)
    assert card.data.library_name == "peft" and "lora" in card.data.tags
    assert "| r | 4 |" in card.text and 'subfolder="adapter"' in card.text


def test_hub_checkpoint_gives_base_model_and_license(minilm, tmp_path):
    out = tmp_path / "run"
    run_recipe(["--config", str(REPO / "recipes/configs/stsb_zero_shot.yaml"), "--max_eval_samples", "16",
                "--output_dir", str(out)])
    card = card_of(out)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.license == ModelCard.load(f"{minilm}/README.md").data.license is not None


def test_transfer_chain_is_in_the_card(tiny_bert, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    run_recipe(tiny_args(tiny_bert, first))
    run_recipe(tiny_args(tiny_bert, second, "--init_from_run", str(first)))
    assert "## Transfer chain" in card_of(second).text and "(`first`)" in card_of(second).text


def test_zero_shot_card_has_no_optimizer_table(tiny_bert, tmp_path):
    out = tmp_path / "run"
    run_recipe(tiny_args(tiny_bert, out, "--strategy", "zero_shot", "--architecture", "bi_encoder", "--head_type",
                         "none"))
    assert "Learning rate per parameter group" not in card_of(out).text
