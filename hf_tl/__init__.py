"""hf_tl: transfer learning for BERT- and GPT-style backbones on Hugging Face, one strategy setting at a time."""

from hf_tl.config import DataArguments, ModelArguments, StrategyArguments, TrainArguments
from hf_tl.config_io import load_config, parse_args
from hf_tl.errors import HfTlError
from hf_tl.predict import Run, load_run
from hf_tl.run_config import RunConfig
from hf_tl.runs import train
from hf_tl.strategies import STRATEGIES

__version__ = "0.1.0"

__all__ = ["DataArguments", "HfTlError", "ModelArguments", "RunConfig", "Run", "STRATEGIES", "StrategyArguments",
           "TrainArguments", "load_config", "load_run", "parse_args", "train"]
