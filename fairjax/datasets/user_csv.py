"""`load_csv`: a user's own CSV file as a validated `TabularDataset`.

Every problem with the file or the arguments raises `FairjaxError` with a message that
names the file, the column or argument, the bad value and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairjax.data import TabularDataset, infer_schema
from fairjax.datasets._frames import strip_strings
from fairjax.errors import FairjaxError


def _preview(values, limit: int = 10) -> str:
    """Up to `limit` distinct values, sorted by their text, for error messages."""
    shown = sorted(values, key=str)[:limit]
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return ", ".join(repr(v) for v in shown) + more


def _read(path: Path) -> pd.DataFrame:
    """Parse the file; strip column names and string cells."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise FairjaxError(f"data file {str(path)!r} {what}")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise FairjaxError(f"data file {str(path)!r} is empty; expected a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise FairjaxError(f"could not parse {str(path)!r} as CSV: {e}") from None
    if len(frame) == 0:
        raise FairjaxError(f"data file {str(path)!r} has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return strip_strings(frame)


def _check_columns(frame: pd.DataFrame, roles: list[tuple[str, str]]) -> None:
    """Each (argument, column) pair must name a column of `frame`."""
    for argument, column in roles:
        if column not in frame.columns:
            raise FairjaxError(
                f"{argument}={column!r} is not a column of the file; "
                f"columns are {list(frame.columns)}"
            )


def _check_no_missing(frame: pd.DataFrame) -> None:
    """No empty cells anywhere: the schema allows none, so say where the first one is."""
    for c in frame.columns:
        missing = frame[c].isna().to_numpy()
        if missing.any():
            raise FairjaxError(
                f"column {c!r} has {int(missing.sum())} missing value(s) (empty or NaN), "
                f"first in data row {int(np.argmax(missing)) + 1} (not counting the header); "
                "drop or impute them first"
            )


def _encode_label(col: pd.Series, positive: object) -> tuple[pd.Series, tuple[str, str]]:
    """Binary label -> (int64 0/1 series, (name of 0, name of 1))."""
    values = col.unique().tolist()
    if len(values) != 2:
        found = f"the single value {values[0]!r}" if len(values) == 1 else f"{len(values)} values"
        raise FairjaxError(
            f"label column {col.name!r} must be binary; found {found}: {_preview(values)}"
        )
    if positive is None:
        if set(values) <= {0, 1}:  # also True/False and 0.0/1.0
            names = ("False", "True") if pd.api.types.is_bool_dtype(col) else ("0", "1")
            return col.astype(np.int64), names
        raise FairjaxError(
            f"label column {col.name!r} has the two values {_preview(values)}; pass "
            "positive=<value> naming the one that becomes 1 (the favourable outcome)"
        )
    # match by text too, so positive="1" works for an integer column
    hits = [v for v in values if v == positive or str(v) == str(positive)]
    if len(hits) != 1:
        raise FairjaxError(
            f"positive={positive!r} is not a value of label column {col.name!r}; "
            f"its values are {_preview(values)}"
        )
    (pos,) = hits
    neg = values[1 - values.index(pos)]
    return (col == pos).astype(np.int64), (str(neg), str(pos))


def load_csv(
    path: str | os.PathLike,
    *,
    label: str,
    sensitive: str | Sequence[str],
    domain: str | None = None,
    categorical: str | Sequence[str] | None = None,
    positive: object = None,
) -> TabularDataset:
    """Load a user's CSV file (header row, one row per record) as a `TabularDataset`.

    Column names and string cells are stripped of surrounding whitespace. The label,
    sensitive and domain columns and those in `categorical` are categorical; the others
    are split by `fairjax.data.infer_schema` (strings, booleans and integers with at most
    10 distinct values are categorical, other numbers numeric). Boolean feature columns
    become int64 0/1.

    Args:
      path: CSV file.
      label: name of the binary outcome column. Values already 0/1 (or False/True) are
        kept; with any other two values, `positive` must say which one becomes 1.
      sensitive: name of the sensitive column, or a sequence of names.
      domain: optional column whose values define domains.
      categorical: extra column name(s) to treat as categorical (e.g. integer codes with
        more than 10 values).
      positive: the label value that means the favourable outcome; it becomes 1 and the
        other value 0. Required when the label values are not 0/1; may be given as text
        ("1") for a numeric label.

    Returns:
      TabularDataset named after the file stem, `schema.label_names` = (text of the
      value that became 0, text of the value that became 1); source and licence empty.

    Raises:
      FairjaxError: the file is missing, empty, header-only or unparsable; an argument
        names no column; a cell is missing; the label is not binary or needs `positive`;
        a sensitive column has a single value; a numeric column is infinite. Every
        message names the file.
    """
    path = Path(path)
    sens = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    if isinstance(categorical, str):
        categorical = (categorical,)
    frame = _read(path)
    try:
        if not sens:
            raise FairjaxError("sensitive=() names no column; give at least one")
        _check_columns(
            frame,
            [("label", label)]
            + [("sensitive", s) for s in sens]
            + ([("domain", domain)] if domain is not None else [])
            + [("categorical", c) for c in categorical or ()],
        )
        if label in sens or label == domain:
            raise FairjaxError(f"label={label!r} cannot also be a sensitive or domain column")
        _check_no_missing(frame)
        frame[label], label_names = _encode_label(frame[label], positive)
        for c in frame.columns:
            if c != label and pd.api.types.is_bool_dtype(frame[c]):
                frame[c] = frame[c].astype(np.int64)
        schema = infer_schema(
            frame, label=label, sensitive=sens, domain=domain, categorical=categorical
        )
        return TabularDataset(
            frame=frame,
            schema=dataclasses.replace(schema, label_names=label_names),
            name=path.stem,
        )
    except FairjaxError as e:
        raise FairjaxError(f"{path}: {e}") from None
