"""Helpers shared by the experiment scripts."""

from __future__ import annotations

import numpy as np


def jsonable(x):
    """`x` with numpy scalars as Python numbers, non-finite floats as None, keys as str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
