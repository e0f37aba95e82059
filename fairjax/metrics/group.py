"""Group fairness metrics for a binary sensitive attribute (fairlearn-compatible).

Every function has the signature ``f(y_true, y_pred, *, sensitive)``:

- `y_true` [n] 0/1 labels. The demographic-parity functions do not use it and accept None;
  when it is given it is still validated (0/1, same length), so one call site can compute
  every metric.
- `y_pred` [n] 0/1 predictions.
- `sensitive` [n] with exactly two distinct values of any type (0/1, "F"/"M", True/False).
  For more groups, or several sensitive columns, use the `intersectional` metrics.

Differences and ratios are taken between the two groups' rates as fairlearn's defaults
(``method="between_groups"``): difference = max - min, ratio = min / max (<= 1, 1 = parity),
as FADM's R_DP and R_EOp.

Undefined values. A group without positives (TPR) or negatives (FPR) has an undefined rate:
it is nan, a `UserWarning` names the group, and every metric built on it is nan. A ratio
whose two rates are both 0 (e.g. all predictions 0 for the DP ratio) is 0/0: nan with a
`UserWarning`. fairlearn (0.15) differs: it silently scores a group without positives as TPR 0
(ratio 0, difference = the other group's TPR), returns nan for the DP ratio 0/0 without a
warning, and its `equalized_odds_ratio` takes Python's ``min`` of [tpr_ratio, nan], which
returns tpr_ratio: fairjax returns nan there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fairjax.errors import FairjaxError
from fairjax.metrics.intersectional import RATE_NAMES, _label, _prepare, _rates
from fairjax.metrics.utility import _as_1d, _warn

__all__ = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "selection_rates",
]


def _two_group_rates(
    y_true: ArrayLike | None, y_pred: ArrayLike, sensitive: ArrayLike, rates: tuple[str, ...]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Validated per-group rates ([2] each, in `rates` order) and the two group labels."""
    s = _as_1d("sensitive", sensitive)
    cells, labels = _prepare(y_true, y_pred, s, None, rates, groups_name="sensitive")
    if labels.shape[0] != 2:
        shown = [_label(labels, i) for i in range(min(labels.shape[0], 5))]
        raise FairjaxError(
            f"sensitive must have exactly 2 distinct values for the binary group metrics; got "
            f"{labels.shape[0]} ({shown}{'...' if labels.shape[0] > 5 else ''}); for more "
            "groups use fairjax.metrics.group_rates / differential_fairness / "
            "intersectional_fairness"
        )
    return [_rates(cells, r, 0.0, labels) for r in rates], labels


def _ratio(r: np.ndarray, rate: str, what: str, labels: np.ndarray) -> float:
    if np.isnan(r).any():  # the undefined rate has already been warned about
        return float("nan")
    mx = r.max()
    if mx == 0:
        _warn(
            f"{what} is undefined (nan): the {RATE_NAMES[rate]} is 0 in both groups "
            f"{_label(labels, 0)!r} and {_label(labels, 1)!r}, so min/max is 0/0"
        )
        return float("nan")
    return float(r.min() / mx)


def _difference(r: np.ndarray) -> float:
    return float(r.max() - r.min())  # nan propagates


def _worst_gap(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    sensitive: ArrayLike,
    rates: tuple[str, ...],
    ratio_of: str | None = None,
) -> float:
    """The worst case over `rates` of the two groups' gap: the largest difference, or with
    `ratio_of` (the metric's name, for warnings) the smallest min/max ratio; nan if any
    gap is nan."""
    per_rate, labels = _two_group_rates(y_true, y_pred, sensitive, rates)
    if ratio_of is None:
        gaps, worst = [_difference(r) for r in per_rate], max
    else:
        gaps = [_ratio(r, rate, ratio_of, labels) for r, rate in zip(per_rate, rates, strict=True)]
        worst = min
    return float("nan") if any(np.isnan(g) for g in gaps) else worst(gaps)


def selection_rates(
    y_true: ArrayLike | None, y_pred: ArrayLike, *, sensitive: ArrayLike
) -> dict[Any, float]:
    """Selection rate P(y_pred = 1 | A = a) of each of the two groups.

    Args:
      y_true: [n] 0/1 labels or None (unused; validated if given).
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      {group value: rate} for the two groups, in sorted order of the values.

    References:
      fairlearn `selection_rate` with `MetricFrame.by_group`.
    """
    (r,), labels = _two_group_rates(y_true, y_pred, sensitive, ("selection",))
    return {_label(labels, i): float(r[i]) for i in range(2)}


def demographic_parity_difference(
    y_true: ArrayLike | None, y_pred: ArrayLike, *, sensitive: ArrayLike
) -> float:
    """|P(y_pred=1 | A=a) - P(y_pred=1 | A=b)|, the demographic parity difference.

    Args:
      y_true: [n] 0/1 labels or None (unused; validated if given).
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The difference in [0, 1] (0 = parity).

    References:
      fairlearn `demographic_parity_difference`.
    """
    return _worst_gap(y_true, y_pred, sensitive, ("selection",))


def demographic_parity_ratio(
    y_true: ArrayLike | None, y_pred: ArrayLike, *, sensitive: ArrayLike
) -> float:
    """R_DP = min_a P(y_pred=1 | A=a) / max_a P(y_pred=1 | A=a).

    Args:
      y_true: [n] 0/1 labels or None (unused; validated if given).
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The ratio in [0, 1] (1 = parity); nan with a `UserWarning` when both selection rates are
      0 (0/0), e.g. all predictions 0.

    References:
      fairlearn `demographic_parity_ratio`; FADM, arXiv 2406.09495 (R_DP).
    """
    return _worst_gap(y_true, y_pred, sensitive, ("selection",), "demographic_parity_ratio")


def equal_opportunity_difference(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive: ArrayLike
) -> float:
    """|TPR_a - TPR_b| with TPR_a = P(y_pred=1 | y_true=1, A=a).

    Args:
      y_true: [n] 0/1 labels.
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The difference in [0, 1]; nan with a `UserWarning` if a group has no positives.

    References:
      fairlearn `equal_opportunity_difference`; Hardt, Price, Srebro, NeurIPS 2016.
    """
    return _worst_gap(y_true, y_pred, sensitive, ("tpr",))


def equal_opportunity_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive: ArrayLike) -> float:
    """R_EOp = min_a TPR_a / max_a TPR_a.

    Args:
      y_true: [n] 0/1 labels.
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The ratio in [0, 1]; nan with a `UserWarning` if a group has no positives or both TPRs
      are 0.

    References:
      fairlearn `equal_opportunity_ratio`; FADM, arXiv 2406.09495 (R_EOp).
    """
    return _worst_gap(y_true, y_pred, sensitive, ("tpr",), "equal_opportunity_ratio")


def equalized_odds_difference(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive: ArrayLike
) -> float:
    """max(|TPR_a - TPR_b|, |FPR_a - FPR_b|), the worst case of the two gaps.

    Args:
      y_true: [n] 0/1 labels.
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The difference in [0, 1]; nan with a `UserWarning` if a group has no positives or no
      negatives.

    References:
      fairlearn `equalized_odds_difference` (agg="worst_case"); Hardt et al., NeurIPS 2016.
    """
    return _worst_gap(y_true, y_pred, sensitive, ("tpr", "fpr"))


def equalized_odds_ratio(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive: ArrayLike) -> float:
    """min(TPR ratio, FPR ratio), each ratio min/max over the two groups.

    Args:
      y_true: [n] 0/1 labels.
      y_pred: [n] 0/1 predictions.
      sensitive: [n] attribute with exactly 2 distinct values.

    Returns:
      The ratio in [0, 1]; nan with a `UserWarning` if either ratio is undefined (a group
      without positives/negatives, or both groups' TPRs or FPRs 0, e.g. a perfect classifier
      has FPR 0/0).

    References:
      fairlearn `equalized_odds_ratio` (agg="worst_case").
    """
    return _worst_gap(y_true, y_pred, sensitive, ("tpr", "fpr"), "equalized_odds_ratio")
