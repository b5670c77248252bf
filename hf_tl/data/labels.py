"""Raw label values, normalised to the names a run records."""

from __future__ import annotations

import math

import numpy as np


def label_key(value) -> str | None:
    """Normalise a raw label to its name: ``1``, ``1.0`` and ``'1'`` all become ``'1'``; missing -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
