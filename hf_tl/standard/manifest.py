"""``standard_model.json``: which of a run's root files are its standard model, what loads it, or why nothing does."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "standard_model.json"


def root_model_info(run_dir: Path) -> dict:
    """What ``standard_model.json`` says: ``format`` (None when nothing standard loads the run), ``loader``,
    ``library``, ``merged``, ``files`` or ``reason``, and ``holds_backbone`` (see :mod:`hf_tl.standard.one_copy`);
    empty for a run written before runs held a standard model."""
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}
