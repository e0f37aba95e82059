"""`load_csv`: a user's own CSV file as a validated `TabularDataset`.

Every problem with the file or the arguments raises `FairjaxError` with a message that
names the file, the column or argument, the bad value and what would be accepted.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairjax.data import TabularDataset, infer_schema
from fairjax.datasets._frames import strip_strings
from fairjax.errors import FairjaxError, FairjaxWarning


def _preview(values, limit: int = 10) -> str:
    """Up to `limit` distinct values, sorted by their text, for error messages."""
    shown = sorted(values, key=str)[:limit]
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return ", ".join(repr(v) for v in shown) + more


def _read(path: Path, categorical: Sequence[str] = ()) -> pd.DataFrame:
    """Parse the file (UTF-8, one header row, the same number of fields in every row, no
    duplicate column names); strip column names and string cells; refuse a numeric column
    with a few non-numeric cells (unless it is in `categorical`); warn about a column that
    looks like an identifier."""
    name = repr(str(path))
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise FairjaxError(f"data file {name} {what}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FairjaxError(
            f"data file {name} is not UTF-8 text (byte {raw[e.start]:#04x} at offset "
            f"{e.start}); save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise FairjaxError(f"data file {name} is empty; expected a header row")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    header = [c.strip() for c in rows[0]]
    seen = {c for c in header if header.count(c) > 1}
    if seen:
        raise FairjaxError(f"data file {name} has duplicate column names {sorted(seen)}")
    for i, r in enumerate(rows[1:], start=1):
        if len(r) != len(header):
            raise FairjaxError(
                f"data file {name} is ragged: data row {i} has {len(r)} fields, the header "
                f"has {len(header)}"
            )
    try:
        frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise FairjaxError(f"data file {name} is empty; expected a header row") from None
    except pd.errors.ParserError as e:
        raise FairjaxError(f"could not parse {name} as CSV: {e}") from None
    if len(frame) == 0:
        raise FairjaxError(f"data file {name} has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = strip_strings(frame)
    for c in frame.columns:
        if c not in categorical:
            _check_numeric(frame[c], name)
    _warn_identifiers(frame, name)
    return frame


def _check_numeric(col: pd.Series, name: str) -> None:
    """A text column whose cells are numbers but for a few (<= 10%): an error naming the
    column, the first bad data row (1-based) and its value, not a silent categorical."""
    if not _is_text(col):
        return
    present = col.notna().to_numpy()
    numbers = pd.to_numeric(col, errors="coerce").notna().to_numpy()
    bad = present & ~numbers
    n_present = int(present.sum())
    if bad.any() and numbers.sum() >= 0.9 * n_present:
        row = int(np.argmax(bad))
        raise FairjaxError(
            f"data file {name}: column {col.name!r} is numeric but data row {row + 1} holds "
            f"{col.iloc[row]!r} ({int(bad.sum())} such cell(s)); fix those cells, or declare "
            "the column categorical (categorical= / --categorical)"
        )


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col)


def _warn_identifiers(frame: pd.DataFrame, name: str) -> None:
    """Warn about a column that looks like a row identifier: text that is (nearly) all
    distinct, or integers that count the rows (n distinct consecutive values)."""
    n = len(frame)
    if n < 20:
        return
    for c in frame.columns:
        col = frame[c]
        distinct = col.nunique()
        is_text = _is_text(col) and distinct >= 0.95 * n
        is_count = (
            pd.api.types.is_integer_dtype(col)
            and distinct == n
            and int(col.max()) - int(col.min()) == n - 1
        )
        if is_text or is_count:
            warnings.warn(
                f"data file {name}: column {c!r} looks like an identifier ({distinct} distinct "
                f"values in {n} rows); drop it, or a model will treat it as a feature",
                FairjaxWarning,
                stacklevel=3,
            )


def read_table(path: str | os.PathLike, *, categorical: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV file of rows (e.g. synthetic ones) with the checks of `load_csv`'s file:
    UTF-8, not ragged, no duplicate column names, no missing cells, numeric columns numeric.

    Args:
      path: CSV file with a header row.
      categorical: columns allowed to mix numbers and text.

    Returns:
      the frame, column names and string cells stripped.

    Raises:
      FairjaxError naming the file and the problem (column, 1-based data row, value).
    """
    frame = _read(Path(path), tuple(categorical))
    try:
        _check_no_missing(frame)
    except FairjaxError as e:
        raise FairjaxError(f"{path}: {e}") from None
    return frame


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
    frame = _read(path, tuple(categorical or ()))
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
