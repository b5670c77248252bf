"""Configs: YAML + flag overrides, validation, and every YAML file in the repository."""

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import REPO

from hf_tl import HfTlError, RunConfig, load_config, parse_args
from hf_tl.config_io import write_yaml
from hf_tl.recipe import check_recipe_fits

LAUNCH_DIR = REPO / "recipes" / "accelerate"  # Accelerate launch configurations: tests/test_launch_configs.py
ALL_YAML = sorted(p for p in REPO.rglob("*.y*ml")
                  if not any(part.startswith(".") or part == "runs" for part in p.relative_to(REPO).parts)
                  and p.parent != LAUNCH_DIR)


def test_repository_ships_yaml_configs():
    assert len(ALL_YAML) >= 8


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_in_the_repo_loads_and_validates(path):
    first_line = path.read_text().splitlines()[0]
    match = re.fullmatch(r"# accelerate launch recipes/(\w+)\.py --config (\S+)", first_line)
    assert match and match.group(2) == str(path.relative_to(REPO)), first_line
    recipe = REPO / "recipes" / f"{match.group(1)}.py"
    spec = importlib.util.spec_from_file_location(f"recipe_{recipe.stem}", recipe)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = load_config(path)
    check_recipe_fits(config, module.TASK_TYPES, module.MULTITASK)  # the launch line names the right recipe
    assert config.strategy.strategy in path.stem or config.strategy.strategy == "full"
    assert config.train.output_dir


def test_flags_override_the_yaml(tmp_path):
    config = parse_args(["--config", str(REPO / "recipes/configs/stsb_lora.yaml"), "--learning_rate", "0.01",
                         "--strategy", "full", "--overwrite_output_dir"])
    assert config.train.learning_rate == 0.01
    assert config.strategy.strategy == "full"
    assert config.train.overwrite_output_dir is True
    assert config.strategy.lora_r == 16  # untouched YAML value


def test_resolved_config_round_trips(tmp_path):
    config = parse_args(["--config", str(REPO / "recipes/configs/stsb_gradual.yaml")])
    write_yaml(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "lora2"], "Unknown strategy 'lora2'.*Did you mean 'lora'"),
    (["--learning_rat", "1"], "Unknown option '--learning_rat'.*Did you mean '--learning_rate'"),
    (["--pooling", "max"], "pooling must be one of"),
    (["--strategy", "partial"], "needs num_layers"),
    (["--num_train_epochs", "0"], "num_train_epochs must be > 0"),
])
def test_bad_flags_stop_with_one_clear_sentence(argv, message):
    with pytest.raises(HfTlError, match=message):
        parse_args(argv)


def test_unknown_yaml_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("strategy: full\nlearnig_rate: 0.1\n")
    with pytest.raises(HfTlError, match="Unknown option 'learnig_rate'.*learning_rate"):
        parse_args(["--config", str(path)])
    with pytest.raises(HfTlError, match="does not exist"):
        parse_args(["--config", str(tmp_path / "missing.yaml")])


def test_from_flat_dict_rejects_unknown_keys():
    with pytest.raises(HfTlError, match="Unknown option 'foo'"):
        RunConfig.from_flat_dict({"foo": 1})
    assert RunConfig.from_flat_dict({}).model.model_name_or_path.endswith("all-MiniLM-L6-v2")


def test_yaml_must_be_a_mapping(tmp_path):
    path = Path(tmp_path / "list.yaml")
    path.write_text("- a\n- b\n")
    with pytest.raises(HfTlError, match="must be a mapping"):
        load_config(path)


def test_yaml_strings_are_coerced_to_the_option_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-5\nlora_r: '4'\noverwrite_output_dir: 'true'\n")  # PyYAML: 1e-5 is a str
    config = load_config(path)
    assert config.train.learning_rate == 1e-5 and config.strategy.lora_r == 4 and config.train.overwrite_output_dir
    path.write_text("learning_rate: fast\n")
    with pytest.raises(HfTlError, match="'learning_rate' must be a number"):
        load_config(path)


def test_float16_weights_for_training_are_refused():
    with pytest.raises(HfTlError, match="keep torch_dtype float32"):
        parse_args(["--torch_dtype", "float16", "--strategy", "full"])


def test_a_tracker_that_is_not_installed_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(HfTlError, match="report_to wandb needs the 'wandb' package; pip install wandb"):
        parse_args(["--report_to", "wandb"])
