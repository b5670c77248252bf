"""The launch configurations in recipes/accelerate/: each is read and validated by Accelerate's own launcher code;
the CPU one is run; the engine checks refuse what FSDP and DeepSpeed cannot run as asked."""

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import pytest
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from conftest import REPO, tiny_args

from hf_tl.config import StrategyArguments
from hf_tl.errors import HfTlError
from hf_tl.run_config import RunConfig
from hf_tl.strategies import get_strategy
from hf_tl.training.engines import check_engine

LAUNCH_DIR = REPO / "recipes" / "accelerate"
CONFIGS = sorted(LAUNCH_DIR.glob("*.yaml"))
EXPECTED = {  # file: (distributed type, processes, machines)
    "single_gpu.yaml": ("NO", 1, 1), "multi_gpu.yaml": ("MULTI_GPU", 8, 1), "multi_node.yaml": ("MULTI_GPU", 16, 2),
    "fsdp.yaml": ("FSDP", 8, 1), "deepspeed_zero2.yaml": ("DEEPSPEED", 8, 1),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 8, 1), "cpu_multi_process.yaml": ("MULTI_GPU", 2, 1),
}


def validated(path):
    """Parse `accelerate launch --config_file PATH script` the way the launcher does; return (args, config)."""
    args = launch_command_parser().parse_args(["--config_file", str(path), "recipes/text_similarity.py"])
    args, defaults, _ = _validate_launch_command(args)
    return args, defaults


def test_every_launch_setting_is_shipped():
    assert sorted(p.name for p in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_launch_config_is_valid_for_accelerate(path):
    first = path.read_text().splitlines()[0]
    match = re.fullmatch(r"# accelerate launch --config_file (\S+) recipes/(\w+)\.py --config (\S+)", first)
    assert match and match.group(1) == str(path.relative_to(REPO)), first
    assert (REPO / "recipes" / f"{match.group(2)}.py").is_file() and (REPO / match.group(3)).is_file()
    args, config = validated(path)
    kind, processes, machines = EXPECTED[path.name]
    assert config.distributed_type == getattr(DistributedType, kind)
    assert (args.num_processes, args.num_machines) == (processes, machines)


def test_multi_node_names_the_main_machine():
    args, config = validated(LAUNCH_DIR / "multi_node.yaml")
    assert config.machine_rank == 0 and config.main_process_ip and config.main_process_port
    assert "--machine_rank 1" in (LAUNCH_DIR / "multi_node.yaml").read_text()


def test_deepspeed_stages():
    for name, stage in (("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)):
        _, config = validated(LAUNCH_DIR / name)
        assert config.deepspeed_config["zero_stage"] == stage


@pytest.mark.parametrize("family, block", [("bert", "BertLayer"), ("gpt2", "GPT2Block")])
def test_fsdp_wraps_each_transformer_block(tiny_bert, tiny_gpt2, family, block):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    from hf_tl.builder import build

    args, _ = validated(LAUNCH_DIR / "fsdp.yaml")
    env = {k: v for k, v in prepare_multi_gpu_env(args).items() if k.startswith("FSDP")}
    assert env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD" and env["FSDP_USE_ORIG_PARAMS"] == "true"
    # sync_module_states asks for the current GPU at construction; the wrap policy does not depend on it.
    with mock.patch.dict(os.environ, {**env, "ACCELERATE_USE_FSDP": "true", "FSDP_SYNC_MODULE_STATES": "false"}):
        plugin = FullyShardedDataParallelPlugin()
    model = build(RunConfig.from_flat_dict({"model_name_or_path": tiny_bert if family == "bert" else tiny_gpt2})).model
    plugin.set_auto_wrap_policy(model)  # what Accelerate does when it prepares the model
    assert {cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]} == {block}


@pytest.mark.real_data
def test_cpu_launch_config_runs_two_processes(tiny_bert, tmp_path):
    out = tmp_path / "run"
    port = str(29500 + os.getpid() % 1000 + 7)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(LAUNCH_DIR / "cpu_multi_process.yaml"), "--main_process_port", port,
           str(REPO / "recipes" / "text_similarity.py"), *tiny_args(tiny_bert, out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "eval_results.json").read_text())["num_processes"] == 2


def fake_accelerator(kind: str, use_orig_params: bool = True, version: int = 1):
    plugin = SimpleNamespace(use_orig_params=use_orig_params, fsdp_version=version)
    return SimpleNamespace(distributed_type=getattr(DistributedType, kind), state=SimpleNamespace(fsdp_plugin=plugin))


PARTLY = {"trainable": 10, "total": 100}


@pytest.mark.parametrize("kind", ["FSDP", "DEEPSPEED"])
def test_sharding_engines_refuse_gradual_and_multitask(kind):
    gradual = SimpleNamespace(name="gradual", num_stages=lambda: 3)  # a gradual strategy after apply()
    with pytest.raises(HfTlError, match="unfreezes blocks by dropping their gradients.*launch it with DDP"):
        check_engine(fake_accelerator(kind), RunConfig(), gradual, PARTLY)
    multitask = RunConfig.from_flat_dict({"tasks": {"a": {"task": "similarity"}, "b": {"task": "similarity"}}})
    with pytest.raises(HfTlError, match="Multi-task training keeps idle heads still"):
        check_engine(fake_accelerator(kind), multitask, get_strategy(StrategyArguments()), PARTLY)
    check_engine(fake_accelerator("MULTI_GPU"), multitask, gradual, PARTLY)  # DDP runs both


def test_fsdp1_needs_orig_params_for_a_partly_frozen_model():
    partial = get_strategy(StrategyArguments(strategy="partial", num_layers=1))
    with pytest.raises(HfTlError, match="fsdp_use_orig_params: true"):
        check_engine(fake_accelerator("FSDP", use_orig_params=False), RunConfig(), partial, PARTLY)
    check_engine(fake_accelerator("FSDP", use_orig_params=True), RunConfig(), partial, PARTLY)
    check_engine(fake_accelerator("FSDP", use_orig_params=False, version=2), RunConfig(), partial, PARTLY)
    check_engine(fake_accelerator("FSDP", use_orig_params=False), RunConfig(), partial, {"trainable": 5, "total": 5})


@pytest.mark.parametrize("variable, engine", [("ACCELERATE_USE_FSDP", "FSDP"),
                                              ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")])
def test_a_sharded_launch_that_accelerate_runs_as_ddp_is_refused(monkeypatch, variable, engine):
    """Without a GPU Accelerate keeps MULTI_CPU whatever the launch config asks: refused, not a silent DDP run."""
    monkeypatch.setenv(variable, "true")
    full = get_strategy(StrategyArguments(strategy="full"))
    with pytest.raises(HfTlError, match=f"asks for {engine}, but Accelerate runs these processes as .*MULTI_CPU.*"
                                        f"cpu_multi_process.yaml"):
        check_engine(fake_accelerator("MULTI_CPU"), RunConfig(), full, PARTLY)
    check_engine(fake_accelerator("FSDP" if engine == "FSDP" else "DEEPSPEED"), RunConfig(), full, PARTLY)


def test_save_only_model_is_refused_by_sharded_engines():
    full = get_strategy(StrategyArguments(strategy="full"))
    config = RunConfig.from_flat_dict({"save_only_model": True})
    for kind in ("FSDP", "DEEPSPEED"):
        with pytest.raises(HfTlError, match="save_only_model writes the weights of one process"):
            check_engine(fake_accelerator(kind), config, full, PARTLY)
    check_engine(fake_accelerator("MULTI_CPU"), config, full, PARTLY)


def test_deepspeed_accumulation_must_match_the_run():
    """DeepSpeed's own gradient_accumulation_steps overrides Accelerate's: a mismatch would train other steps."""
    full = get_strategy(StrategyArguments(strategy="full"))
    accelerator = fake_accelerator("DEEPSPEED")
    accelerator.gradient_accumulation_steps = 1
    config = RunConfig.from_flat_dict({"gradient_accumulation_steps": 2})
    with pytest.raises(HfTlError, match="sets gradient_accumulation_steps 1, but the run asks for 2"):
        check_engine(accelerator, config, full, PARTLY)
    accelerator.gradient_accumulation_steps = 2
    check_engine(accelerator, config, full, PARTLY)
