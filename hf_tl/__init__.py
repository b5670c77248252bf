"""hf_tl: transfer learning for BERT- and GPT-style backbones on Hugging Face, one strategy setting at a time."""

import importlib

from hf_tl.config import DataArguments, ModelArguments, StrategyArguments, TrainArguments
from hf_tl.config_io import load_config, parse_args
from hf_tl.errors import HfTlError
from hf_tl.run_config import RunConfig
from hf_tl.strategies import STRATEGIES

__version__ = "0.1.0"

# Training and prediction pull in transformers, accelerate and peft: imported on first use, so that reading a config
# (and the command line's --help) does not wait for them.
_LAZY = {"Run": "hf_tl.predict", "load_run": "hf_tl.predict", "train": "hf_tl.runs",
         "make_ensemble": "hf_tl.runs.ensemble", "advise": "hf_tl.advisor"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_tl' has no attribute '{name}'")


__all__ = ["advise", "DataArguments", "HfTlError", "ModelArguments", "RunConfig", "Run", "STRATEGIES",
           "StrategyArguments", "TrainArguments", "load_config", "load_run", "make_ensemble", "parse_args", "train"]
