"""Load a plain sentence-transformers or transformers model folder (not an hf_tl run) as a zero-shot run: the
bi-encoder it is, scored by the cosine of its pooled embeddings."""

from __future__ import annotations

import json
from pathlib import Path

from hf_tl.errors import HfTlError

ST_TO_HF_TL = {"cls": "cls", "mean": "mean", "lasttoken": "last"}
HARMLESS = ("Transformer", "Pooling", "Normalize")  # cosine is the same with or without normalising


def is_plain_model(path: Path) -> bool:
    """Whether ``path`` holds a standard model (sentence-transformers ``modules.json`` or transformers
    ``config.json``) and no hf_tl run record."""
    return (path / "modules.json").is_file() or (path / "config.json").is_file()


def _st_pooling(path: Path) -> str:
    """hf_tl's pooling for a sentence-transformers folder.

    Raises:
        HfTlError: for modules hf_tl's zero-shot bi-encoder does not reproduce (Dense layers, a CrossEncoder, a
            Transformer that is not at the folder's root).
    """
    modules = json.loads((path / "modules.json").read_text())
    kinds = {m["type"].rsplit(".", 1)[-1]: m for m in modules}
    st_config = path / "config_sentence_transformers.json"
    if st_config.is_file() and json.loads(st_config.read_text()).get("model_type") == "CrossEncoder":
        raise HfTlError(f"'{path}' is a sentence-transformers CrossEncoder; load it with "
                        f"sentence_transformers.CrossEncoder (hf_tl loads plain encoders as zero-shot bi-encoders).")
    other = [k for k in kinds if k not in HARMLESS]
    if other or kinds.get("Transformer", {}).get("path", "") != "":
        raise HfTlError(f"'{path}' has sentence-transformers modules hf_tl does not reproduce "
                        f"({', '.join(other) or 'a Transformer outside the folder root'}); load it with "
                        f"sentence_transformers.SentenceTransformer.")
    pooling = kinds.get("Pooling")
    if pooling is None:
        return "auto"
    config = json.loads((path / pooling["path"] / "config.json").read_text())
    mode = config.get("pooling_mode") or next((k[len("pooling_mode_"):] for k, v in config.items()
                                               if k.startswith("pooling_mode_") and v is True), "mean")
    mode = {"cls_token": "cls", "mean_tokens": "mean"}.get(mode, mode)
    if mode not in ST_TO_HF_TL:
        raise HfTlError(f"'{path}' pools by '{mode}', which hf_tl does not; load it with "
                        f"sentence_transformers.SentenceTransformer.")
    return ST_TO_HF_TL[mode]


def plain_config(path: Path, trust_remote_code: bool = False):
    """The zero-shot similarity config that loads a plain model folder as an hf_tl run (bi-encoder, cosine).

    Raises:
        HfTlError: for a folder hf_tl cannot score exactly (see :func:`_st_pooling`).
    """
    from hf_tl.config_io import parse_args

    if (path / "modules.json").is_file():
        pooling = _st_pooling(path)
    else:
        pooling = "auto"
        architectures = json.loads((path / "config.json").read_text()).get("architectures") or []
        heads = [a for a in architectures if a.endswith(("ForSequenceClassification", "ForTokenClassification",
                                                         "ForQuestionAnswering"))]
        if heads:  # a task model: hf_tl would drop its head and silently score something else (a language-model
            # head is fine to drop: the encoder or decoder under it is what a zero-shot bi-encoder reads)
            raise HfTlError(f"'{path}' is a {heads[0]} (a model with its own task head); load it with "
                            f"transformers (pipeline), which uses that head. hf_tl.load_run loads plain encoders as "
                            f"zero-shot bi-encoders.")
    argv = ["--model_name_or_path", str(path), "--task", "similarity", "--architecture", "bi_encoder",
            "--strategy", "zero_shot", "--head_type", "none", "--pooling", pooling, "--output_dir", str(path)]
    if trust_remote_code:
        argv += ["--trust_remote_code", "true"]
    return parse_args(argv, prog="hf_tl.load_run")
