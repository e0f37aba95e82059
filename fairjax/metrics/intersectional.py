"""Intersectional fairness metrics over any number of groups.

A *group* is a distinct value of `groups`, given either as

- a 1-D array [n] of group ids (ints, strings, ...), or
- a 2-D array [n, k] of k sensitive columns (e.g. sex, race); each distinct row is one
  intersectional group, labelled by that row.

Groups are reported in sorted order (lexicographic over the columns for 2-D input) unless
`group_values` lists them explicitly: then exactly those groups are reported, in that order,
and a listed group with no rows is an *empty group* (its rates are undefined, see below).

Per group three rates of a binary classifier are used (prediction 1 = favourable outcome):

- ``"selection"``: P(y_pred = 1 | g)               (demographic parity; y_true may be None)
- ``"tpr"``:       P(y_pred = 1 | y_true = 1, g)   (equal opportunity)
- ``"fpr"``:       P(y_pred = 1 | y_true = 0, g)   (with tpr: equalized odds)

Undefined rates. A rate whose denominator is zero (an empty group; no rows with y_true == 1
for the TPR; none with y_true == 0 for the FPR) is nan, and a `UserWarning` names the group
and the reason. Every metric that combines rates is then nan too: never a silent 0, never a
crash. With additive smoothing (count + a) / (total + 2a), a > 0, the rate is instead the
prior 1/2, still with a warning that the group has no data for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from fairjax.errors import FairjaxError
from fairjax.metrics.utility import _binary, _same_length, _warn

__all__ = [
    "DifferentialFairness",
    "GroupRate",
    "GroupRates",
    "best_group_rate",
    "differential_fairness",
    "group_rates",
    "intersectional_fairness",
    "worst_best_ratio",
    "worst_group_rate",
]

RATE_NAMES = {
    "selection": "selection rate",
    "tpr": "true positive rate",
    "fpr": "false positive rate",
}


class GroupRates(NamedTuple):
    """Per-group counts and rates; entry i of every field belongs to group `groups[i]`."""

    groups: np.ndarray  # [G] group ids, or [G, k] rows of sensitive values
    count: np.ndarray  # [G] int, rows in the group
    positives: np.ndarray  # [G] int, rows with y_true == 1
    negatives: np.ndarray  # [G] int, rows with y_true == 0
    selection_rate: np.ndarray  # [G] float, P(y_pred=1 | g)
    tpr: np.ndarray  # [G] float, P(y_pred=1 | y_true=1, g)
    fpr: np.ndarray  # [G] float, P(y_pred=1 | y_true=0, g)


class GroupRate(NamedTuple):
    """One group's rate: `group` is its id (a tuple for 2-D `groups`), None if undefined."""

    rate: float
    group: Any


class DifferentialFairness(NamedTuple):
    """Differential fairness epsilon with its bootstrap summary."""

    epsilon: float  # point estimate on the full data
    bootstrap_mean: float  # mean of epsilon over bootstrap resamples (nan if n_bootstrap=0)
    ci_low: float  # lower end of the percentile interval (nan if n_bootstrap=0)
    ci_high: float  # upper end of the percentile interval (nan if n_bootstrap=0)
    rates: np.ndarray  # [G] smoothed rates on the full data
    groups: np.ndarray  # [G] or [G, k] group labels, aligned with `rates`


# --- validation and counting (shared with group.py) ------------------------------------------


def _check_rate(rate: str) -> str:
    if rate not in RATE_NAMES:
        raise FairjaxError(f"rate must be one of {sorted(RATE_NAMES)}; got {rate!r}")
    return rate


def _check_nonneg(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FairjaxError(f"{name} must be a non-negative number; got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise FairjaxError(f"{name} must be a finite number >= 0; got {value!r}")
    return v


def _is_missing(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "f":
        return np.isnan(col)
    if col.dtype == object:
        return np.array([v is None or (isinstance(v, float) and v != v) for v in col], bool)
    return np.zeros(col.shape, bool)


def _label(labels: np.ndarray, i: int) -> Any:
    """Group i's id as a plain Python value (a tuple for 2-D labels)."""
    v = labels[i]
    if labels.ndim == 2:
        return tuple(v.tolist())
    return v.item() if isinstance(v, np.generic) else v


def _encode_groups(
    groups: ArrayLike, group_values: ArrayLike | None, name: str = "groups"
) -> tuple[np.ndarray, np.ndarray]:
    """Map rows to group codes 0..G-1; returns (codes [n], labels [G] or [G, k])."""
    try:
        a = np.asarray(groups)
    except Exception as e:
        raise FairjaxError(f"{name} could not be read as an array: {e}") from None
    if a.ndim not in (1, 2) or (a.ndim == 2 and a.shape[1] == 0):
        raise FairjaxError(
            f"{name} must be a 1-D array [n] of group ids or a 2-D array [n, k] of sensitive "
            f"columns; got shape {a.shape}"
        )
    if a.shape[0] == 0:
        raise FairjaxError(f"{name} is empty; metrics need at least one row")
    cols = a[:, None] if a.ndim == 1 else a
    for j in range(cols.shape[1]):
        miss = _is_missing(cols[:, j])
        if miss.any():
            where = "" if a.ndim == 1 else f" (column {j})"
            raise FairjaxError(
                f"{name}{where} has {int(miss.sum())} missing value(s) (nan/None); every row "
                "needs a group: drop those rows or give missing values their own label"
            )
    # Per-column codes first, so 2-D input of mixed types still gets a well-defined row order.
    uniq_cols, col_codes = [], []
    for j in range(cols.shape[1]):
        try:
            u, inv = np.unique(cols[:, j], return_inverse=True)
        except TypeError:
            raise FairjaxError(
                f"{name} mixes value types that cannot be compared (e.g. str and int): "
                f"{sorted({type(v).__name__ for v in cols[:, j].tolist()})}"
            ) from None
        uniq_cols.append(u)
        col_codes.append(inv.reshape(-1))
    if a.ndim == 1:
        codes, labels = col_codes[0], uniq_cols[0]
    else:
        _, first, inv = np.unique(
            np.stack(col_codes, axis=1), axis=0, return_index=True, return_inverse=True
        )
        codes, labels = inv.reshape(-1), a[first]
    if group_values is None:
        return codes, labels

    # object data (mixed-type columns) needs object group_values, or ("F", 0) reads ("F", "0")
    gv = np.asarray(group_values, dtype=object if a.dtype == object else None)
    if gv.ndim != a.ndim or (a.ndim == 2 and gv.shape[1] != a.shape[1]):
        want = "a 1-D list of group ids" if a.ndim == 1 else f"a 2-D array [G, {a.shape[1]}]"
        raise FairjaxError(f"group_values must be {want} to match {name}; got shape {gv.shape}")
    if gv.shape[0] == 0:
        raise FairjaxError("group_values is empty; list at least one group")
    keys = [_label(gv, i) for i in range(gv.shape[0])]
    if len(set(keys)) != len(keys):
        dup = sorted({repr(k) for k in keys if keys.count(k) > 1})
        raise FairjaxError(f"group_values lists group(s) more than once: {', '.join(dup)}")
    position = {k: i for i, k in enumerate(keys)}
    present = [_label(labels, i) for i in range(labels.shape[0])]
    unlisted = [g for g in present if g not in position]
    if unlisted:
        raise FairjaxError(
            f"{name} has group(s) not listed in group_values: {unlisted[:5]}; list every "
            "group present in the data (extra groups with no rows are allowed)"
        )
    remap = np.array([position[g] for g in present], dtype=np.int64)
    return remap[codes], gv


def _cells(t: np.ndarray | None, p: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """[G, 2, 2] counts of (y_true, y_pred) per group; y_true None counts as 0 (selection only)."""
    t_int = np.zeros_like(codes) if t is None else t.astype(np.int64)
    idx = codes * 4 + t_int * 2 + p.astype(np.int64)
    return np.bincount(idx, minlength=4 * n_groups).reshape(n_groups, 2, 2)


def _num_den(cells: np.ndarray, rate: str) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator counts of `rate` from cells [..., G, 2, 2] (y_true, y_pred)."""
    if rate == "selection":
        return cells[..., 1].sum(-1), cells.sum((-1, -2))
    row = 1 if rate == "tpr" else 0
    return cells[..., row, 1], cells[..., row, :].sum(-1)


def _smoothed(num: np.ndarray, den: np.ndarray, smoothing: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (num + smoothing) / (den + 2.0 * smoothing)


def _rates(cells: np.ndarray, rate: str, smoothing: float, labels: np.ndarray) -> np.ndarray:
    """Per-group `rate` [G], warning once per group whose denominator is zero."""
    num, den = _num_den(cells, rate)
    for g in np.flatnonzero(den == 0):
        if cells[g].sum() == 0:
            reason = "the group has no rows"
        else:
            reason = f"the group has no rows with y_true == {1 if rate == 'tpr' else 0}"
        name = f"{RATE_NAMES[rate]} of group {_label(labels, g)!r}"
        if smoothing == 0:
            _warn(f"{name} is undefined (nan): {reason}")
        else:
            _warn(f"{name} has no data ({reason}); its smoothed value is the prior 1/2")
    return _smoothed(num, den, smoothing)


def _prepare(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    group_values: ArrayLike | None,
    rates: tuple[str, ...],
    groups_name: str = "groups",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs; returns (cells [G, 2, 2], labels)."""
    if y_true is None and any(r != "selection" for r in rates):
        raise FairjaxError(
            f"y_true is required for the {' and '.join(RATE_NAMES[r] for r in rates)}; it may "
            "be None only for selection-rate (demographic parity) metrics"
        )
    t = None if y_true is None else _binary("y_true", y_true)
    p = _binary("y_pred", y_pred)
    codes, labels = _encode_groups(groups, group_values, groups_name)
    _same_length(y_true=t, y_pred=p, **{groups_name: codes})
    return _cells(t, p, codes, labels.shape[0]), labels


def _require_two(labels: np.ndarray, what: str) -> None:
    if labels.shape[0] < 2:
        raise FairjaxError(
            f"{what} compares groups but groups has a single group "
            f"{_label(labels, 0)!r}; pass data with at least 2 groups"
        )


def _min_max_ratio(r: np.ndarray, labels: np.ndarray, rate: str, what: str) -> float:
    """min/max of rates; nan (warned) if a rate is nan or every rate is 0."""
    if np.isnan(r).any():
        return float("nan")
    mx = r.max()
    if mx == 0:
        _warn(
            f"{what} is undefined (nan): the {RATE_NAMES[rate]} is 0 in every group, so "
            "min/max is 0/0"
        )
        return float("nan")
    return float(r.min() / mx)


def _rate_of_groups(
    y_true, y_pred, groups, rate, smoothing, group_values, what=None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the inputs of a one-rate metric; returns (rates [G], group labels).

    `what`: the metric's name when it needs at least two groups (FairjaxError otherwise).
    """
    _check_rate(rate)
    s = _check_nonneg("smoothing", smoothing)
    cells, labels = _prepare(y_true, y_pred, groups, group_values, (rate,))
    if what is not None:
        _require_two(labels, what)
    return _rates(cells, rate, s, labels), labels


# --- public metrics ---------------------------------------------------------------------------


def group_rates(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    smoothing: float = 0.0,
    group_values: ArrayLike | None = None,
) -> GroupRates:
    """Per-group counts, selection rate, true positive rate and false positive rate.

    rate_g = (count_g + a) / (total_g + 2a) with a = `smoothing`: a = 0 gives the empirical
    rate; a > 0 the posterior mean under a Beta(a, a) prior (a = 2 as in arXiv 2405.14521).

    Args:
      y_true: [n] true labels in {0, 1}.
      y_pred: [n] predicted labels in {0, 1}.
      groups: [n] group ids or [n, k] sensitive columns (each distinct row is a group).
      smoothing: additive smoothing a >= 0.
      group_values: optional [G] ids (or [G, k] rows) to report, in this order; may include
        groups with no rows, must include every group present.

    Returns:
      `GroupRates` of [G] arrays. An undefined rate (zero denominator, a = 0) is nan with a
      `UserWarning` naming the group and the reason.

    References:
      fairlearn `MetricFrame` (per-group metrics); Foulds et al., "An intersectional
      definition of fairness", ICDE 2020 (smoothed empirical rates).
    """
    a = _check_nonneg("smoothing", smoothing)
    cells, labels = _prepare(y_true, y_pred, groups, group_values, ("tpr", "fpr"))
    _, positives = _num_den(cells, "tpr")
    _, negatives = _num_den(cells, "fpr")
    return GroupRates(
        groups=labels,
        count=cells.sum((1, 2)),
        positives=positives,
        negatives=negatives,
        selection_rate=_rates(cells, "selection", a, labels),
        tpr=_rates(cells, "tpr", a, labels),
        fpr=_rates(cells, "fpr", a, labels),
    )


def _epsilon(r: np.ndarray) -> np.ndarray:
    """log(max r / min r) over the last axis; nan if any rate is nan or all are 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(r.max(-1)) - np.log(r.min(-1))


def differential_fairness(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    rate: str = "tpr",
    alpha: float = 2.0,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int | np.random.Generator = 0,
    group_values: ArrayLike | None = None,
) -> DifferentialFairness:
    """Differential fairness epsilon of one rate across groups, with a bootstrap interval.

    epsilon = max_{i,j} |log r_i - log r_j| = log(max_g r_g / min_g r_g), where
    r_g = (count_g + alpha) / (total_g + 2 alpha) is the smoothed rate of group g. The default
    alpha = 2 reproduces the (count + 2) / (total + 4) estimate of arXiv 2405.14521. 0 means
    equal rates; e^epsilon bounds the ratio of any two groups' rates.

    Foulds et al. define DF for a binary outcome with both outcomes: epsilon is the max of
    log-ratios of P(y=1 | g) *and* of P(y=0 | g) = 1 - r_g. This function implements the
    one-sided form used by arXiv 2405.14521 (log max/min of the rate itself); pass the
    complementary labels (1 - y_pred) to get the other side.

    Bootstrap: each replicate resamples rows with replacement *within each group*, so every
    group keeps its size (a stratified bootstrap; the counts of the four (y_true, y_pred) cells
    of group g are drawn as Multinomial(n_g, observed cell frequencies), which is the same
    distribution as resampling its rows). The reference code of arXiv 2405.14521 resamples all
    rows jointly instead, so group sizes vary there. The interval is the percentile interval
    [q_{(1-ci)/2}, q_{(1+ci)/2}] of the replicate epsilons.

    Args:
      y_true: [n] true labels in {0, 1}; may be None when rate="selection".
      y_pred: [n] predicted labels in {0, 1}.
      groups: [n] group ids or [n, k] sensitive columns (each distinct row is a group).
      rate: "tpr", "selection" or "fpr".
      alpha: additive smoothing >= 0. With alpha = 0 an undefined rate gives nan and a zero
        rate gives epsilon = inf, each with a `UserWarning`.
      n_bootstrap: number of bootstrap replicates; 0 skips the bootstrap (its fields are nan).
      ci: coverage of the percentile interval, in (0, 1).
      seed: int seed or a `np.random.Generator` (advanced in place); the global RNG is never
        used, so equal seeds give equal results.
      group_values: optional [G] ids (or [G, k] rows) of the groups to compare.

    Returns:
      `DifferentialFairness(epsilon, bootstrap_mean, ci_low, ci_high, rates, groups)`.

    References:
      Foulds, Islam, Keya, Pan, "An intersectional definition of fairness", ICDE 2020
      (arXiv 1807.08362), Def. 2.1 and the smoothed estimator; Maheshwari, Bellet, Denis,
      Keller, arXiv 2405.14521 (smoothing (count + 2)/(total + 4), 1000 bootstrap resamples).
    """
    _check_rate(rate)
    a = _check_nonneg("alpha", alpha)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise FairjaxError(f"n_bootstrap must be an int >= 0; got {n_bootstrap!r}")
    if n_bootstrap < 0:
        raise FairjaxError(f"n_bootstrap must be >= 0; got {n_bootstrap}")
    if not isinstance(ci, (int, float, np.floating)) or not 0 < ci < 1:
        raise FairjaxError(f"ci must be a number in (0, 1), e.g. 0.95; got {ci!r}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng(int(seed))
    else:
        raise FairjaxError(
            f"seed must be a non-negative int or a numpy.random.Generator; got {seed!r}"
        )

    cells, labels = _prepare(y_true, y_pred, groups, group_values, (rate,))
    _require_two(labels, "differential_fairness")
    r = _rates(cells, rate, a, labels)
    eps = float(_epsilon(r))
    if not np.isnan(r).any():
        if r.max() == 0:
            _warn(
                f"differential_fairness epsilon is undefined (nan): the {RATE_NAMES[rate]} "
                "is 0 in every group, so log(max/min) is log(0/0); use alpha > 0"
            )
        elif r.min() == 0:
            g = _label(labels, int(np.argmin(r)))
            _warn(
                f"differential_fairness epsilon is infinite: the {RATE_NAMES[rate]} of group "
                f"{g!r} is 0 while another group's is positive; use alpha > 0"
            )

    if n_bootstrap == 0:
        nan = float("nan")
        return DifferentialFairness(eps, nan, nan, nan, r, labels)
    flat = cells.reshape(cells.shape[0], 4)
    boot = np.zeros((n_bootstrap, *flat.shape), dtype=np.int64)
    for g, cell_g in enumerate(flat):
        n_g = int(cell_g.sum())
        if n_g:
            boot[:, g] = rng.multinomial(n_g, cell_g / n_g, size=n_bootstrap)
    eps_b = _epsilon(_smoothed(*_num_den(boot.reshape(-1, *cells.shape), rate), a))
    bad = ~np.isfinite(eps_b)
    if bad.any():
        _warn(
            f"{int(bad.sum())} of {n_bootstrap} bootstrap replicates gave a nan/inf epsilon "
            "(a rate was 0 or undefined in the resample); the bootstrap mean and interval "
            "include them; use alpha > 0"
        )
    with np.errstate(invalid="ignore"):
        lo, hi = np.quantile(eps_b, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
        mean = eps_b.mean()
    return DifferentialFairness(eps, float(mean), float(lo), float(hi), r, labels)


def intersectional_fairness(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    rate: str = "tpr",
    alpha: float = 0.5,
    smoothing: float = 0.0,
    group_values: ArrayLike | None = None,
) -> float:
    """IF_alpha: a convex combination of the relative and absolute worst-vs-best group gaps.

    IF_alpha = alpha * (1 - min_g r_g / max_g r_g) + (1 - alpha) * (max_g r_g - min_g r_g),

    with r_g the (optionally smoothed) rate of group g. Both terms lie in [0, 1] and are 0 only
    when all groups have equal rates, so IF_alpha is in [0, 1], lower is fairer. alpha = 1
    gives the relative gap (one minus the worst/best ratio of Ghosh et al.), alpha = 0 the
    absolute gap (the max-min difference, fairlearn's "between_groups" difference).

    Which definition: Maheshwari et al. introduced alpha-Intersectional Fairness ("Fair Without
    Leveling Down", EMNLP 2023, arXiv 2305.12495) as a combination of absolute and relative
    performance across groups, generalising differential fairness, and arXiv 2405.14521
    evaluates with it. Its exact equation could not be retrieved when this was written, so
    this is fairjax's own definition in that spirit, not a reproduction of theirs: values are
    not comparable with numbers reported in those papers.

    Args:
      y_true: [n] true labels in {0, 1}; may be None when rate="selection".
      y_pred: [n] predicted labels in {0, 1}.
      groups: [n] group ids or [n, k] sensitive columns (each distinct row is a group).
      rate: "tpr", "selection" or "fpr".
      alpha: weight in [0, 1] of the relative term.
      smoothing: additive smoothing of the rates (see `group_rates`).
      group_values: optional [G] ids (or [G, k] rows) of the groups to compare.

    Returns:
      IF_alpha as a float; nan (with a `UserWarning`) if a rate is undefined, or if every
      rate is 0 and alpha > 0 (0/0 in the relative term).

    References:
      Maheshwari et al., arXiv 2305.12495 and arXiv 2405.14521; Ghosh, Genuit, Reagan,
      "Characterizing intersectional group fairness with worst-case comparisons", AIDBEI 2021.
    """
    _check_rate(rate)
    w = _check_nonneg("alpha", alpha)
    if w > 1:
        raise FairjaxError(f"alpha must be in [0, 1] (the weight of the relative term); got {w}")
    r, labels = _rate_of_groups(
        y_true, y_pred, groups, rate, smoothing, group_values, "intersectional_fairness"
    )
    if np.isnan(r).any():
        return float("nan")
    value = (1.0 - w) * float(r.max() - r.min())
    if w > 0:
        value += w * (1.0 - _min_max_ratio(r, labels, rate, "intersectional_fairness"))
    return value


def worst_best_ratio(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    rate: str = "tpr",
    smoothing: float = 0.0,
    group_values: ArrayLike | None = None,
) -> float:
    """Worst-case ratio min_g r_g / max_g r_g of one rate across all groups (1 = parity).

    Args:
      y_true: [n] true labels in {0, 1}; may be None when rate="selection".
      y_pred: [n] predicted labels in {0, 1}.
      groups: [n] group ids or [n, k] sensitive columns (each distinct row is a group).
      rate: "tpr", "selection" or "fpr".
      smoothing: additive smoothing of the rates (see `group_rates`).
      group_values: optional [G] ids (or [G, k] rows) of the groups to compare.

    Returns:
      The ratio in [0, 1]; nan with a `UserWarning` if a rate is undefined or all are 0.

    References:
      Ghosh, Genuit, Reagan, "Characterizing intersectional group fairness with worst-case
      comparisons", AIDBEI 2021 (min/max ratio over intersectional groups).
    """
    what = "worst_best_ratio"
    r, labels = _rate_of_groups(y_true, y_pred, groups, rate, smoothing, group_values, what)
    return _min_max_ratio(r, labels, rate, what)


def _extreme_group(y_true, y_pred, groups, rate, smoothing, group_values, pick) -> GroupRate:
    r, labels = _rate_of_groups(y_true, y_pred, groups, rate, smoothing, group_values)
    if np.isnan(r).any():
        return GroupRate(float("nan"), None)
    g = int(pick(r))
    return GroupRate(float(r[g]), _label(labels, g))


def worst_group_rate(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    rate: str = "tpr",
    smoothing: float = 0.0,
    group_values: ArrayLike | None = None,
) -> GroupRate:
    """Lowest rate over groups and the group that has it.

    Prediction 1 is taken as the favourable outcome, so "worst" is the lowest selection rate
    or TPR (and, by the same convention, the lowest FPR: the fewest favourable errors). Ties go
    to the first group in the reported order.

    Args:
      y_true: [n] true labels in {0, 1}; may be None when rate="selection".
      y_pred: [n] predicted labels in {0, 1}.
      groups: [n] group ids or [n, k] sensitive columns (each distinct row is a group).
      rate: "tpr", "selection" or "fpr".
      smoothing: additive smoothing of the rates (see `group_rates`).
      group_values: optional [G] ids (or [G, k] rows) of the groups to compare.

    Returns:
      `GroupRate(rate, group)`, group a plain value or a tuple (2-D groups). If some group's
      rate is undefined: `GroupRate(nan, None)` with a `UserWarning` naming that group.

    References:
      Ghosh, Genuit, Reagan, AIDBEI 2021 (worst-case group comparisons).
    """
    return _extreme_group(y_true, y_pred, groups, rate, smoothing, group_values, np.argmin)


def best_group_rate(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    rate: str = "tpr",
    smoothing: float = 0.0,
    group_values: ArrayLike | None = None,
) -> GroupRate:
    """Highest rate over groups and the group that has it (see `worst_group_rate`).

    Args:
      y_true, y_pred, groups, rate, smoothing, group_values: as in `worst_group_rate`.

    Returns:
      `GroupRate(rate, group)`; `GroupRate(nan, None)` with a warning if a rate is undefined.

    References:
      Ghosh, Genuit, Reagan, AIDBEI 2021 (worst-case group comparisons).
    """
    return _extreme_group(y_true, y_pred, groups, rate, smoothing, group_values, np.argmax)
