"""FSDP 2 (fully_shard) over gloo on CPU: two processes train, gather and save the run that DDP saves.

Accelerate 1.x never selects FSDP for CPU processes: with ``cpu=True`` (as hf_tl asks without a GPU) it keeps
MULTI_CPU, so an FSDP launch config would silently run DDP (hf_tl refuses that launch). The launch here goes through
a small shim that turns the
MULTI_CPU state into FSDP with the launch config's own plugin; everything else (wrapping, sharded checkpoints, the
gathered export) is Accelerate's and torch's own code. Why FSDP 1 and DeepSpeed cannot run on CPU:
docs/distributed.md.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from accelerate.utils import is_torch_version
from conftest import REPO, launch_two_processes, tiny_args
from safetensors.torch import load_file

import hf_tl

pytestmark = pytest.mark.real_data

SHIM = '''
import runpy, sys
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _init_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin


AcceleratorState.__init__ = _init_fsdp_on_cpu
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
'''

FSDP2_CPU = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
machine_rank: 0
mixed_precision: 'no'
use_cpu: true
rdzv_backend: static
same_network: true
main_training_function: main
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
  fsdp_activation_checkpointing: false
"""

SAVED = {"full": "model.safetensors", "lora": "adapter/adapter_model.safetensors"}  # the root holds a full backbone


def launch_fsdp2(argv, tmp_path):
    (tmp_path / "fsdp_shim.py").write_text(SHIM)
    (tmp_path / "fsdp2_cpu.yaml").write_text(FSDP2_CPU)
    port = str(29500 + os.getpid() % 1000 + 11)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "fsdp2_cpu.yaml"),
           "--main_process_port", port, str(tmp_path / "fsdp_shim.py"), str(REPO / "recipes" / "text_similarity.py"),
           *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.skipif(not is_torch_version(">=", "2.6.0"), reason="Accelerate's FSDP 2 needs torch >= 2.6")
@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_fsdp2_on_cpu_saves_the_ddp_run(tiny_bert, tmp_path, strategy):
    extra = ["--strategy", strategy, "--head_dropout", "0.0", "--per_device_train_batch_size", "4"]
    fsdp, ddp = tmp_path / "fsdp", tmp_path / "ddp"
    launch_fsdp2(tiny_args(tiny_bert, fsdp, *extra, train=32, dev=25), tmp_path)
    launch_two_processes("text_similarity", tiny_args(tiny_bert, ddp, *extra, train=32, dev=25), tmp_path)
    # FSDP really sharded the run: its checkpoint is a distributed one, one file per process.
    assert sorted(p.name for p in (fsdp / "checkpoints" / "checkpoint-4" / "pytorch_model_fsdp_0").glob("*.distcp"))\
        == ["__0_0.distcp", "__1_0.distcp"]
    one, two = (json.loads((run / "eval_results.json").read_text()) for run in (ddp, fsdp))
    assert two["num_processes"] == 2 and two["eval_samples"] == 25
    for metric in ("eval_spearmanr", "eval_pearsonr"):
        assert two[metric] == pytest.approx(one[metric], abs=1e-4)
    for saved in (SAVED[strategy], "heads/similarity.safetensors"):  # the gathered weights, whole
        a, b = load_file(ddp / saved), load_file(fsdp / saved)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=1e-4)
    pairs = [("A man is playing a guitar.", "A man plays a guitar."), ("A cat sleeps.", "Stocks fell sharply.")]
    assert hf_tl.load_run(fsdp).predict(pairs) == pytest.approx(hf_tl.load_run(ddp).predict(pairs), abs=1e-4)
