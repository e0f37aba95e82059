"""Small frame helpers shared by the bundled loaders and `load_csv`."""

from __future__ import annotations

import pandas as pd


def strip_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of `frame` with leading/trailing whitespace removed from every string cell.

    Missing cells stay missing; non-string columns are left as they are.
    """
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].str.strip()
    return out
