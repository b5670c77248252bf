"""A run as a standard model: the sentence-transformers, transformers or PEFT form a run's model takes, so the
ecosystem's own loaders use it without hf_tl (:mod:`.plan` decides, :mod:`.writers` writes, :mod:`.place` puts it at
the run's root, :mod:`.export` in a folder of its own)."""

from hf_tl.standard.place import root_model_info, write_root_model
from hf_tl.standard.plan import FORMATS, Plan, plan_format

__all__ = ["FORMATS", "Plan", "plan_format", "root_model_info", "write_root_model"]
