"""Validation and encoding of a DataFrame for causal fairness analysis.

`prepare` checks the column roles of the standard fairness model (X, Z, W, Y) against a
frame and turns it into arrays: t = 1(X = x1), the encoded confounders z and mediators w
(categorical columns one-hot, numeric ones standardised, by `fairjax.data.TabularEncoder`)
and the outcome y. Every problem raises a `FairjaxError` that names the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from fairjax.causal.nuisance import target_kind
from fairjax.data import TabularEncoder
from fairjax.errors import FairjaxError


class CausalData(NamedTuple):
    """A frame as arrays for the standard fairness model.

    Attributes:
      t: [n] float32, 1.0 where X = x1 and 0.0 where X = x0.
      z: [n, dz] float32 encoded confounders (dz = 0 when Z is empty).
      w: [n, dw] float32 encoded mediators (dw = 0 when W is empty).
      y: [n] float32 outcome.
      y_kind: "binary", "unit" (real in [0, 1]) or "real".
      encoder: the encoder of the Z and W columns (None when both are empty).
    """

    t: np.ndarray
    z: np.ndarray
    w: np.ndarray
    y: np.ndarray
    y_kind: str
    encoder: TabularEncoder | None


def _column_list(arg: str, cols: Any) -> tuple[str, ...]:
    if isinstance(cols, str):
        raise FairjaxError(
            f"{arg} must be a list of column names; got the string {cols!r} "
            f"(did you mean [{cols!r}]?)."
        )
    try:
        cols = tuple(cols)
    except TypeError as e:
        raise FairjaxError(f"{arg} must be a list of column names; got {cols!r}.") from e
    dup = sorted({c for c in cols if cols.count(c) > 1}, key=str)
    if dup:
        raise FairjaxError(f"{arg} lists column(s) {dup} more than once.")
    return cols


def check_roles(
    frame: Any, *, X: str, Z: Sequence[str], W: Sequence[str], Y: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check that the role columns exist and that no column has two roles.

    Returns:
      (Z, W) as tuples.
    """
    if not isinstance(frame, pd.DataFrame):
        raise FairjaxError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    if len(frame) == 0:
        raise FairjaxError("frame has no rows.")
    Z, W = _column_list("Z", Z), _column_list("W", W)
    columns = list(frame.columns)
    for arg, names in (("X", [X]), ("Y", [Y]), ("Z", Z), ("W", W)):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise FairjaxError(
                f"{arg}: column(s) {missing} not found in frame; columns are {columns}."
            )
    roles: dict[str, list[str]] = {}
    for arg, names in (("X", [X]), ("Y", [Y]), ("Z", Z), ("W", W)):
        for c in names:
            roles.setdefault(c, []).append(arg)
    twice = {c: r for c, r in roles.items() if len(r) > 1}
    if twice:
        c, r = next(iter(twice.items()))
        raise FairjaxError(
            f"column {c!r} is given two roles ({' and '.join(r)}); each column may be only "
            "one of X (protected attribute), Z (confounders), W (mediators), Y (outcome)."
        )
    for c in [X, Y, *Z, *W]:
        n_missing = int(frame[c].isna().sum())
        if n_missing:
            raise FairjaxError(
                f"column {c!r} ({roles[c][0]}) has {n_missing} missing (NaN) value(s), first "
                f"at row {int(np.argmax(frame[c].isna().to_numpy()))}; drop or impute them first."
            )
    return Z, W


def protected_indicator(frame: pd.DataFrame, X: str, x0: Any, x1: Any) -> np.ndarray:
    """t = 1(X = x1) as float32 [n]; raises unless X takes exactly the values x0 and x1."""
    col = frame[X]
    if x0 == x1:
        raise FairjaxError(f"x0 and x1 must differ, both are {x0!r}.")
    is0, is1 = (col == x0).to_numpy(bool), (col == x1).to_numpy(bool)
    counts = col.value_counts().to_dict()
    for name, value, mask in (("x0", x0, is0), ("x1", x1, is1)):
        if not mask.any():
            raise FairjaxError(
                f"{name}={value!r} does not occur in column X={X!r}; its values (with counts) "
                f"are {counts}."
            )
    other = ~(is0 | is1)
    if other.any():
        extra = pd.unique(col[other]).tolist()
        raise FairjaxError(
            f"column X={X!r} holds value(s) other than x0={x0!r} and x1={x1!r}: {extra[:5]} in "
            f"{int(other.sum())} row(s); restrict the frame first, e.g. "
            f"frame[frame[{X!r}].isin([{x0!r}, {x1!r}])]."
        )
    return is1.astype(np.float32)


def outcome_values(frame: pd.DataFrame, Y: str) -> tuple[np.ndarray, str]:
    """Y as float32 [n] and its kind ("binary", "unit", "real")."""
    col = frame[Y]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(np.float32), "binary"
    if not pd.api.types.is_numeric_dtype(col):
        raise FairjaxError(
            f"Y={Y!r} must be numeric (0/1 for a binary outcome, or real-valued); it has "
            f"dtype {col.dtype} with values like {pd.unique(col)[:3].tolist()}. Map it to 0/1 "
            "first."
        )
    y = col.to_numpy(np.float64)
    if not np.all(np.isfinite(y)):
        raise FairjaxError(f"Y={Y!r} has infinite values.")
    return y.astype(np.float32), target_kind(y)


def fit_feature_encoder(
    frame: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str] = ()
) -> TabularEncoder | None:
    """Encoder for the Z and W columns: one-hot for non-numeric, boolean or listed
    `categorical` columns, z-scores ("standard" scaling) for the other numeric ones."""
    if not columns:
        return None
    categorical = _column_list("categorical", categorical)
    unknown = [c for c in categorical if c not in columns]
    if unknown:
        raise FairjaxError(
            f"categorical: column(s) {unknown} are not among Z or W ({list(columns)})."
        )
    is_cat = lambda c: (
        c in categorical
        or not pd.api.types.is_numeric_dtype(frame[c])
        or pd.api.types.is_bool_dtype(frame[c])
    )
    return TabularEncoder.fit(
        frame[list(columns)],
        categorical=[c for c in columns if is_cat(c)],
        numeric=[c for c in columns if not is_cat(c)],
        scaling="standard",
    )


def encode_features(
    encoder: TabularEncoder | None, frame: pd.DataFrame, Z: Sequence[str], W: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded z [n, dz] and w [n, dw] (float32; zero-width when the list is empty)."""
    n = len(frame)
    if encoder is None:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.float32)
    enc = encoder.encode(frame)
    sl = encoder.slices()
    block = lambda cols: (
        np.concatenate([enc[:, sl[c]] for c in cols], axis=1)
        if cols
        else np.zeros((n, 0), np.float32)
    )
    return block(Z), block(W)


def prepare(
    frame: pd.DataFrame,
    *,
    X: str,
    Z: Sequence[str],
    W: Sequence[str],
    Y: str,
    x0: Any,
    x1: Any,
    categorical: Sequence[str] = (),
) -> CausalData:
    """Validate the roles and encode the frame (see the module docstring)."""
    Z, W = check_roles(frame, X=X, Z=Z, W=W, Y=Y)
    t = protected_indicator(frame, X, x0, x1)
    y, kind = outcome_values(frame, Y)
    encoder = fit_feature_encoder(frame, [*Z, *W], categorical)
    z, w = encode_features(encoder, frame, Z, W)
    return CausalData(t, z, w, y, kind, encoder)
