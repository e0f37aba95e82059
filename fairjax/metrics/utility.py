"""Utility metrics of a binary classifier: accuracy, balanced accuracy, ROC AUC.

Evaluation code, not a jit hot path: numpy in float64, Python floats out. Inputs may be numpy
or JAX arrays, lists or pandas Series. Labels must be 0/1 (or False/True).

The private helpers below (label validation, warnings that point at the caller's line) are
shared by `group.py` and `intersectional.py`.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
from numpy.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = ["accuracy", "balanced_accuracy", "roc_auc", "weighted_balanced_accuracy"]

_METRICS_DIR = os.path.dirname(os.path.abspath(__file__))


def _warn(message: str) -> None:
    """`UserWarning` attributed to the first frame outside `fairjax.metrics` (the user's call)."""
    level, frame = 2, sys._getframe(1)  # stacklevel=2 is the caller of _warn
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == (
        _METRICS_DIR
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _as_1d(name: str, x: ArrayLike) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise FairjaxError(f"{name} could not be read as an array: {e}") from None
    if a.ndim != 1:
        raise FairjaxError(
            f"{name} must be 1-D with one entry per row; got shape {a.shape}"
            + (" (flatten it, e.g. y.ravel())" if a.ndim == 2 and 1 in a.shape else "")
        )
    if a.size == 0:
        raise FairjaxError(f"{name} is empty; metrics need at least one row")
    return a


def _binary(name: str, y: ArrayLike) -> np.ndarray:
    """Validate 0/1 labels; returns a bool array."""
    a = _as_1d(name, y)
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise FairjaxError(
            f"{name} must hold binary labels 0/1 (or False/True); got dtype {a.dtype} "
            f"(first values {a[:3].tolist()}); map your labels to 0/1 first"
        )
    bad = ~np.isin(a, (0, 1))
    if bad.any():
        shown = np.unique(a[bad])[:5].tolist()
        raise FairjaxError(
            f"{name} must hold binary labels 0/1 (or False/True); got value(s) {shown}"
            " (threshold scores or map your labels to 0/1 first)"
        )
    return a == 1


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise FairjaxError(f"inputs must have one entry per row and the same length; {shown}")


def _labels_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = _binary("y_true", y_true), _binary("y_pred", y_pred)
    _same_length(y_true=t, y_pred=p)
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of correct predictions, mean(y_pred == y_true).

    Args:
      y_true: [n] true labels in {0, 1}.
      y_pred: [n] predicted labels in {0, 1}.

    Returns:
      Accuracy in [0, 1].

    References:
      scikit-learn `accuracy_score`.
    """
    t, p = _labels_pair(y_true, y_pred)
    return float(np.mean(t == p))


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of the true positive and true negative rates, (TPR + TNR) / 2.

    TPR = #(y_pred=1, y_true=1) / #(y_true=1), TNR = #(y_pred=0, y_true=0) / #(y_true=0).

    Args:
      y_true: [n] true labels in {0, 1}.
      y_pred: [n] predicted labels in {0, 1}.

    Returns:
      Balanced accuracy in [0, 1]. If `y_true` holds a single class one of the two rates is
      undefined: the result is nan and a `UserWarning` says which. (scikit-learn's
      `balanced_accuracy_score` instead warns and returns the recall of the class present.)

    References:
      scikit-learn `balanced_accuracy_score` (binary case); Brodersen et al., ICPR 2010.
    """
    t, p = _labels_pair(y_true, y_pred)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        missing = "positive (y_true == 1)" if n_pos == 0 else "negative (y_true == 0)"
        _warn(
            f"balanced_accuracy is undefined (nan): y_true has no {missing} rows, so the "
            f"{'true positive' if n_pos == 0 else 'true negative'} rate is 0/0"
        )
        return float("nan")
    return float(weighted_balanced_accuracy(t, p, np.float64(1.0)))


def weighted_balanced_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, weight: ArrayLike
) -> ArrayLike:
    """(TPR + TNR) / 2 with row weights, as plain array arithmetic: no validation, so it
    runs on numpy arrays and inside `jax.jit` / `vmap` alike (the one implementation
    behind `balanced_accuracy` and the jitted scores of `fairjax.intersectional`).

    TPR = sum(w [y_true & y_pred]) / sum(w [y_true]), TNR likewise for the negatives.

    Args:
      y_true: [n] bool labels.
      y_pred: [n] bool predictions.
      weight: [n] or [] non-negative row weights (0 leaves a row out).

    Returns:
      [] balanced accuracy; nan when a class has zero total weight.
    """
    tp = (weight * (y_true & y_pred)).sum()
    tn = (weight * (~y_true & ~y_pred)).sum()
    n_pos = (weight * y_true).sum()
    n_neg = (weight * ~y_true).sum()
    return 0.5 * (tp / n_pos + tn / n_neg)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of `x`, ties sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    start = np.cumsum(counts) - counts  # 0-based position of each tie block in sorted order
    return (start + (counts + 1) / 2.0)[inverse.reshape(-1)]


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve from the Mann-Whitney U statistic, ties counted as 1/2.

    AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-), with R_+ the sum over positives of their
    average ranks among all scores; equals P(s_+ > s_-) + P(s_+ = s_-) / 2.

    Args:
      y_true: [n] true labels in {0, 1}.
      scores: [n] finite real scores, higher meaning more likely positive.

    Returns:
      AUC in [0, 1]. If `y_true` holds a single class the AUC is undefined: nan and a
      `UserWarning` (scikit-learn's `roc_auc_score` raises a ValueError there).

    References:
      scikit-learn `roc_auc_score`; Hanley & McNeil, Radiology 1982.
    """
    t = _binary("y_true", y_true)
    s = _as_1d("scores", scores)
    if s.dtype.kind not in "biuf":
        raise FairjaxError(f"scores must be real numbers; got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        raise FairjaxError(
            f"scores must be finite; got {int((~np.isfinite(s)).sum())} nan/inf value(s)"
        )
    _same_length(y_true=t, scores=s)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        missing = "positive (y_true == 1)" if n_pos == 0 else "negative (y_true == 0)"
        _warn(f"roc_auc is undefined (nan): y_true has no {missing} rows")
        return float("nan")
    r_pos = _average_ranks(s)[t].sum()
    return float((r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
