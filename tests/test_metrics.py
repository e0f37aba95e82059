"""Metrics check numbers: fairlearn / scikit-learn agreement, hand-computed tables, edge cases."""

import math
import warnings

import fairlearn.metrics as flm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fairjax.metrics as M
from fairjax.errors import FairjaxError

# --- helpers ------------------------------------------------------------------------------------


def _quiet(fn, *args, **kwargs):
    """(result, list of UserWarning messages) of fn, other warnings suppressed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _rows(table, seed=0):
    """Rows from {group: (pos & pred1, pos & pred0, neg & pred1, neg & pred0)}, shuffled."""
    yt, yp, g = [], [], []
    for group, counts in table.items():
        for (t, p), c in zip([(1, 1), (1, 0), (0, 1), (0, 0)], counts, strict=True):
            yt += [t] * c
            yp += [p] * c
            g += [group] * c
    perm = np.random.default_rng(seed).permutation(len(yt))
    return np.array(yt)[perm], np.array(yp)[perm], np.array(g)[perm]


# A: TPR 3/6, FPR 1/4, selection 4/10; B: 4/4, 2/4, 6/8; C: 1/2, 1/4, 2/6.
TABLE = {"A": (3, 3, 1, 3), "B": (4, 0, 2, 2), "C": (1, 1, 1, 3)}


# --- utility metrics vs scikit-learn --------------------------------------------------------------


def test_utility_metrics_match_sklearn_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(2, 300))
        yt = rng.random(n) < rng.uniform(0.1, 0.9)
        yt[:2] = [0, 1]  # both classes present
        yp = rng.random(n) < rng.uniform(0.1, 0.9)
        scores = np.round(rng.normal(size=n) + yt, 1)  # rounding makes ties
        assert M.accuracy(yt, yp) == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-12)
        assert M.balanced_accuracy(yt, yp) == pytest.approx(
            skm.balanced_accuracy_score(yt, yp), abs=1e-12
        )
        assert M.roc_auc(yt, scores) == pytest.approx(skm.roc_auc_score(yt, scores), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(-3, 3)), min_size=2, max_size=30))
def test_roc_auc_matches_sklearn_with_heavy_ties(rows):
    yt = np.array([r[0] for r in rows])
    scores = np.array([r[1] for r in rows])
    assume(0 < yt.sum() < len(yt))
    assert M.roc_auc(yt, scores) == pytest.approx(skm.roc_auc_score(yt, scores), abs=1e-12)


def test_weighted_balanced_accuracy_matches_sklearn_jitted_and_vmapped():
    rng = np.random.default_rng(1)
    yt = rng.random((4, 50)) < 0.4
    yt[:, :2] = [0, 1]
    yp = rng.random((4, 50)) < 0.5
    w = rng.random((4, 50)) * (rng.random((4, 50)) < 0.8)  # some rows weigh 0
    w[:, :2] = 1.0
    expected = [
        skm.balanced_accuracy_score(a, b, sample_weight=c)
        for a, b, c in zip(yt, yp, w, strict=True)
    ]
    got = jax.jit(jax.vmap(M.weighted_balanced_accuracy))(yt, yp, w.astype(np.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
    host = M.weighted_balanced_accuracy(yt[0], yp[0], w[0])  # numpy in, float64 out
    assert host == pytest.approx(expected[0], abs=1e-12)
    # a class of zero total weight: nan (the host `balanced_accuracy` also warns)
    assert math.isnan(float(jax.jit(M.weighted_balanced_accuracy)(yt[0], yp[0], 1.0 * ~yt[0])))


def test_utility_closed_forms_and_input_types():
    yt, yp = [1, 1, 1, 0], [1, 0, 0, 0]
    assert M.accuracy(yt, yp) == 0.5
    assert M.balanced_accuracy(jnp.array(yt), jnp.array(yp)) == pytest.approx((1 / 3 + 1) / 2)
    assert M.roc_auc([0, 1], [0.2, 0.2]) == 0.5  # a tie counts 1/2
    assert M.roc_auc([0, 0, 1, 1], [1.0, 2.0, 3.0, 4.0]) == 1.0
    assert M.roc_auc([True, False], jnp.array([0.0, 1.0])) == 0.0
    assert isinstance(M.accuracy(np.array(yt, float), yp), float)


def test_utility_single_class_is_nan_with_warning():
    with pytest.warns(UserWarning, match=r"balanced_accuracy is undefined \(nan\).*no negative"):
        assert math.isnan(M.balanced_accuracy([1, 1], [1, 0]))
    with pytest.warns(UserWarning, match=r"roc_auc is undefined \(nan\).*no positive"):
        assert math.isnan(M.roc_auc([0, 0], [0.1, 0.9]))


# --- binary group metrics vs fairlearn ---------------------------------------------------------

GROUP_METRICS = {
    "demographic_parity_difference": (M.demographic_parity_difference, "dp", "diff"),
    "demographic_parity_ratio": (M.demographic_parity_ratio, "dp", "ratio"),
    "equal_opportunity_difference": (M.equal_opportunity_difference, "eop", "diff"),
    "equal_opportunity_ratio": (M.equal_opportunity_ratio, "eop", "ratio"),
    "equalized_odds_difference": (M.equalized_odds_difference, "eodds", "diff"),
    "equalized_odds_ratio": (M.equalized_odds_ratio, "eodds", "ratio"),
}


def _defined(kind, form, yt, yp, s):
    """Whether the metric is well defined, from raw counts (independent of fairjax)."""
    groups = [s == v for v in np.unique(s)]
    if kind == "dp":
        return form == "diff" or max(yp[g].mean() for g in groups) > 0
    rows = [1] if kind == "eop" else [1, 0]
    for y in rows:
        if any(not np.any(yt[g] == y) for g in groups):
            return False  # a group without positives (TPR) or negatives (FPR)
        if form == "ratio" and max(yp[g & (yt == y)].mean() for g in groups) == 0:
            return False  # 0/0
    return True


def _check_against_fairlearn(yt, yp, s_int):
    s_str = np.array(["female", "male"])[s_int]
    for name, (fn, kind, form) in GROUP_METRICS.items():
        ref, _ = _quiet(getattr(flm, name), yt, yp, sensitive_features=s_int)
        for s in (s_int, s_str, s_int.astype(bool)):
            ours, warned = _quiet(fn, yt, yp, sensitive=s)
            assert isinstance(ours, float)
            if _defined(kind, form, yt, yp, s_int):
                assert ours == pytest.approx(ref, abs=1e-6), name
                assert not warned, (name, warned)
            else:
                assert math.isnan(ours), name
                assert warned, name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=2, max_size=24))
def test_group_metrics_match_fairlearn_hypothesis(rows):
    yt, yp, s = (np.array(c, dtype=int) for c in zip(*rows, strict=True))
    assume(len(np.unique(s)) == 2)
    _check_against_fairlearn(yt, yp, s)


def test_group_metrics_match_fairlearn_seeded():
    rng = np.random.default_rng(1)
    for _ in range(15):
        n = int(rng.integers(20, 400))
        s = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
        yt = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
        yp = (rng.random(n) < 0.3 + 0.4 * yt * rng.uniform(0, 1) + 0.2 * s).astype(int)
        _check_against_fairlearn(yt, yp, s)


def test_group_metrics_closed_form_and_selection_rates():
    yt, yp, s = _rows({"a": (3, 1, 1, 3), "b": (1, 3, 0, 4)})
    # a: TPR 3/4, FPR 1/4, sel 4/8; b: TPR 1/4, FPR 0, sel 1/8
    assert M.selection_rates(None, yp, sensitive=s) == {"a": 0.5, "b": 0.125}
    assert M.demographic_parity_ratio(None, yp, sensitive=s) == pytest.approx(0.25)
    assert M.demographic_parity_difference(yt, yp, sensitive=s) == pytest.approx(0.375)
    assert M.equal_opportunity_ratio(yt, yp, sensitive=s) == pytest.approx(1 / 3)
    assert M.equal_opportunity_difference(yt, yp, sensitive=s) == pytest.approx(0.5)
    assert M.equalized_odds_difference(yt, yp, sensitive=s) == pytest.approx(0.5)
    assert M.equalized_odds_ratio(yt, yp, sensitive=s) == 0.0  # FPR ratio 0 / (1/4)
    # JAX arrays in, Python float out
    out = M.demographic_parity_ratio(jnp.array(yt), jnp.array(yp), sensitive=jnp.array(s == "a"))
    assert isinstance(out, float) and out == pytest.approx(0.25)


# --- binary group metrics: edge cases ----------------------------------------------------------


def test_all_zero_predictions_dp_ratio_is_nan_with_warning():
    s = ["a", "a", "b", "b"]
    with pytest.warns(
        UserWarning,
        match=r"demographic_parity_ratio is undefined.*0 in both groups 'a' and 'b'.*0/0",
    ):
        assert math.isnan(M.demographic_parity_ratio([1, 0, 1, 0], [0, 0, 0, 0], sensitive=s))
    # the difference 0 - 0 is well defined: no warning
    value, warned = _quiet(M.demographic_parity_difference, None, [0, 0, 0, 0], sensitive=s)
    assert value == 0.0 and not warned


def test_group_without_positives_gives_nan_not_zero():
    yt, yp, s = [1, 1, 0, 0, 0], [1, 0, 1, 0, 0], ["a", "a", "b", "b", "a"]
    why = r"true positive rate of group 'b' is undefined \(nan\): the group has no rows with y_true"
    fns = [M.equal_opportunity_ratio, M.equal_opportunity_difference]
    for fn in [*fns, M.equalized_odds_ratio, M.equalized_odds_difference]:
        with pytest.warns(UserWarning, match=why + " == 1"):
            assert math.isnan(fn(yt, yp, sensitive=s))
    # fairlearn scores it 0 silently
    assert _quiet(flm.equal_opportunity_ratio, yt, yp, sensitive_features=s)[0] == 0.0


def test_group_without_negatives_nan_for_equalized_odds():
    yt, yp, s = [1, 0, 1, 1], [1, 0, 1, 0], [0, 0, 1, 1]
    with pytest.warns(
        UserWarning, match=r"false positive rate of group 1 is undefined.*y_true == 0"
    ):
        assert math.isnan(M.equalized_odds_difference(yt, yp, sensitive=s))
    # equal opportunity only needs positives: defined, no warning
    value, warned = _quiet(M.equal_opportunity_difference, yt, yp, sensitive=s)
    assert value == 0.5 and not warned


def test_perfect_classifier_equalized_odds_ratio_is_nan():
    yt = [1, 0, 1, 0]
    with pytest.warns(UserWarning, match=r"false positive rate is 0 in both groups"):
        assert math.isnan(M.equalized_odds_ratio(yt, yt, sensitive=[0, 0, 1, 1]))
    assert M.equalized_odds_difference(yt, yt, sensitive=[0, 0, 1, 1]) == 0.0


BINARY = r"must hold binary labels 0/1 \(or False/True\); got"
TWO = r"sensitive must have exactly 2 distinct values for the binary group metrics; got"


@pytest.mark.parametrize(
    "y_true, y_pred, sensitive, match",
    [
        ([1, 0], [1, 0, 1], [0, 1, 0], r"same length; y_true has 2, y_pred has 3"),
        ([1, 0, 1], [1, 0, 1], [0, 1], r"sensitive has 2"),
        ([1, 0], [1, 0], ["a", "a"], TWO + r" 1 \(\['a'\]\)"),
        ([1, 0, 1], [1, 0, 1], [0, 1, 2], TWO + r" 3 \(\[0, 1, 2\]\)"),
        ([1, 2], [1, 0], [0, 1], "y_true " + BINARY + r" value\(s\) \[2\]"),
        ([1, 0], [0.5, 0], [0, 1], "y_pred " + BINARY + r" value\(s\) \[0.5\]"),
        (["y", "n"], [1, 0], [0, 1], "y_true " + BINARY + " dtype <U1"),
        ([[1], [0]], [1, 0], [0, 1], r"y_true must be 1-D .*shape \(2, 1\).*ravel"),
        ([1, 0], [1, 0], [[0, 1], [1, 0]], r"sensitive must be 1-D .*got shape \(2, 2\)"),
        ([], [], [], r"(sensitive|y_true) is empty; metrics need at least one row"),
        ([1, 0], [1, 0], [0.0, np.nan], r"sensitive has 1 missing value\(s\) \(nan/None\)"),
    ],
)
def test_group_metrics_reject_bad_input(y_true, y_pred, sensitive, match):
    for fn in (M.demographic_parity_ratio, M.equalized_odds_difference):
        with pytest.raises(FairjaxError, match=match):
            fn(y_true, y_pred, sensitive=sensitive)


def test_tpr_metrics_require_y_true():
    with pytest.raises(FairjaxError, match=r"y_true is required for the true positive rate"):
        M.equal_opportunity_ratio(None, [1, 0], sensitive=[0, 1])


# --- intersectional: hand-computed tables ------------------------------------------------------


def test_group_rates_table():
    yt, yp, g = _rows(TABLE)
    out = M.group_rates(yt, yp, g)
    assert out.groups.tolist() == ["A", "B", "C"]
    np.testing.assert_array_equal(out.count, [10, 8, 6])
    np.testing.assert_array_equal(out.positives, [6, 4, 2])
    np.testing.assert_array_equal(out.negatives, [4, 4, 4])
    np.testing.assert_allclose(out.selection_rate, [4 / 10, 6 / 8, 2 / 6], rtol=1e-15)
    np.testing.assert_allclose(out.tpr, [3 / 6, 4 / 4, 1 / 2], rtol=1e-15)
    np.testing.assert_allclose(out.fpr, [1 / 4, 2 / 4, 1 / 4], rtol=1e-15)
    smooth = M.group_rates(yt, yp, g, smoothing=2.0)
    np.testing.assert_allclose(smooth.selection_rate, [6 / 14, 8 / 12, 4 / 10], rtol=1e-15)
    np.testing.assert_allclose(smooth.tpr, [5 / 10, 6 / 8, 3 / 6], rtol=1e-15)
    np.testing.assert_allclose(smooth.fpr, [3 / 8, 4 / 8, 3 / 8], rtol=1e-15)


def test_differential_fairness_table():
    yt, yp, g = _rows(TABLE)
    expected = {
        "tpr": math.log(0.75 / 0.5),
        "selection": math.log((8 / 12) / (4 / 10)),
        "fpr": math.log(0.5 / 0.375),
    }
    for rate, eps in expected.items():
        out = M.differential_fairness(yt, yp, g, rate=rate, n_bootstrap=0)
        assert out.epsilon == pytest.approx(eps, rel=1e-12)
        assert math.isnan(out.bootstrap_mean) and math.isnan(out.ci_low)
    sel = M.differential_fairness(None, yp, g, rate="selection", n_bootstrap=0)
    np.testing.assert_allclose(sel.rates, [6 / 14, 8 / 12, 4 / 10], rtol=1e-15)
    raw = M.differential_fairness(yt, yp, g, alpha=0.0, n_bootstrap=0)  # TPR .5, 1, .5
    assert raw.epsilon == pytest.approx(math.log(2.0), rel=1e-12)


def test_intersectional_fairness_and_extremes_table():
    yt, yp, g = _rows(TABLE)
    # TPR .5, 1, .5: relative 1 - .5 = .5, absolute .5
    assert M.intersectional_fairness(yt, yp, g) == pytest.approx(0.5)
    # selection 2/5, 3/4, 1/3: relative 1 - 4/9 = 5/9, absolute 5/12
    for a in (0.0, 0.3, 1.0):
        got = M.intersectional_fairness(None, yp, g, rate="selection", alpha=a)
        assert got == pytest.approx(a * 5 / 9 + (1 - a) * 5 / 12, rel=1e-12)
    assert M.worst_best_ratio(None, yp, g, rate="selection") == pytest.approx(4 / 9)
    assert M.worst_group_rate(yt, yp, g) == (0.5, "A")  # tie with C: first in order
    assert M.best_group_rate(yt, yp, g) == (1.0, "B")
    assert M.worst_group_rate(None, yp, g, rate="selection") == pytest.approx((1 / 3, "C"))
    assert M.best_group_rate(yt, yp, g, rate="fpr") == (0.5, "B")
    worst = M.worst_group_rate(yt, yp, g, smoothing=2.0)
    assert worst.rate == 0.5 and worst.group == "A"


def test_two_column_groups_equal_group_ids():
    yt, yp, g = _rows(TABLE)
    cols = {"A": ("F", 0), "B": ("F", 1), "C": ("M", 0)}
    g2 = np.array([cols[v] for v in g], dtype=object)
    out = M.group_rates(yt, yp, g2)
    assert [tuple(r) for r in out.groups.tolist()] == [("F", 0), ("F", 1), ("M", 0)]
    np.testing.assert_array_equal(out.tpr, M.group_rates(yt, yp, g).tpr)
    assert M.best_group_rate(yt, yp, g2) == (1.0, ("F", 1))
    df1 = M.differential_fairness(yt, yp, g, n_bootstrap=50, seed=3)
    df2 = M.differential_fairness(yt, yp, g2, n_bootstrap=50, seed=3)
    assert df1.epsilon == df2.epsilon and df1.bootstrap_mean == df2.bootstrap_mean
    # integer columns, e.g. from a JAX array
    g_int = jnp.array([[0 if c[0] == "F" else 1, c[1]] for c in g2.tolist()])
    assert M.intersectional_fairness(yt, yp, g_int) == pytest.approx(0.5)


def test_group_values_order_and_empty_group():
    yt, yp, g = _rows(TABLE)
    out = M.group_rates(yt, yp, g, group_values=["C", "A", "B"])
    np.testing.assert_allclose(out.tpr, [0.5, 0.5, 1.0])
    out, warned = _quiet(M.group_rates, yt, yp, g, group_values=["A", "B", "C", "D"])
    assert warned == [
        f"{rate} of group 'D' is undefined (nan): the group has no rows"
        for rate in ("selection rate", "true positive rate", "false positive rate")
    ]
    assert out.count[3] == 0 and np.isnan(out.tpr[3]) and np.isnan(out.selection_rate[3])
    for fn in (M.intersectional_fairness, M.worst_best_ratio):
        with pytest.warns(UserWarning, match=r"group 'D' is undefined"):
            assert math.isnan(fn(yt, yp, g, group_values=["A", "B", "C", "D"]))
    with pytest.warns(UserWarning, match=r"group 'D' is undefined"):
        assert M.worst_group_rate(yt, yp, g, group_values=["A", "B", "C", "D"]) == (
            pytest.approx(np.nan, nan_ok=True),
            None,
        )
    # smoothed: the empty group gets the prior 1/2, still with a warning
    with pytest.warns(
        UserWarning, match=r"group 'D' has no data \(the group has no rows\).*prior 1/2"
    ):
        df = M.differential_fairness(yt, yp, g, group_values=["A", "B", "C", "D"], n_bootstrap=20)
    np.testing.assert_allclose(df.rates, [0.5, 0.75, 0.5, 0.5])
    assert df.epsilon == pytest.approx(math.log(1.5)) and np.isfinite(df.ci_high)


def test_intersectional_undefined_and_zero_rates():
    yt, yp, g = _rows({"A": (2, 0, 0, 2), "B": (0, 2, 1, 1), "C": (0, 0, 1, 1)})
    with pytest.warns(
        UserWarning, match=r"true positive rate of group 'C' is undefined.*no rows with y_true == 1"
    ):
        assert math.isnan(M.differential_fairness(yt, yp, g, alpha=0, n_bootstrap=0).epsilon)
    with pytest.warns(UserWarning, match=r"'C' has no data.*prior 1/2"):
        out = M.differential_fairness(yt, yp, g, n_bootstrap=0)
    np.testing.assert_allclose(out.rates, [4 / 6, 2 / 6, 0.5])
    # TPR 1 vs 0 without smoothing: epsilon infinite
    ab = g != "C"
    with pytest.warns(
        UserWarning, match=r"epsilon is infinite: the true positive rate of group 'B' is 0"
    ):
        eps = M.differential_fairness(yt[ab], yp[ab], g[ab], alpha=0, n_bootstrap=0)
    assert eps.epsilon == math.inf
    # every selection rate 0: 0/0
    zeros = np.zeros_like(yp)
    with pytest.warns(
        UserWarning, match=r"epsilon is undefined \(nan\): the selection rate is 0 in every group"
    ):
        out = M.differential_fairness(None, zeros, g, rate="selection", alpha=0, n_bootstrap=0)
    assert math.isnan(out.epsilon)
    with pytest.warns(UserWarning, match=r"intersectional_fairness is undefined.*0/0"):
        assert math.isnan(M.intersectional_fairness(None, zeros, g, rate="selection"))
    assert M.intersectional_fairness(None, zeros, g, rate="selection", alpha=0.0) == 0.0


# --- differential fairness bootstrap -----------------------------------------------------------


def _biased_data(n=900, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    yt = (rng.random(n) < 0.5).astype(int)
    yp = (rng.random(n) < np.array([0.8, 0.6, 0.4])[g] * yt + 0.1).astype(int)
    return yt, yp, g


def test_bootstrap_interval_contains_point_and_is_reproducible():
    yt, yp, g = _biased_data()
    out = M.differential_fairness(yt, yp, g, n_bootstrap=500, seed=11)
    assert out.ci_low <= out.epsilon <= out.ci_high
    assert out.ci_low < out.ci_high
    assert abs(out.bootstrap_mean - out.epsilon) < 0.1
    same = M.differential_fairness(yt, yp, g, n_bootstrap=500, seed=11)
    assert same[:4] == out[:4]
    np.testing.assert_array_equal(same.rates, out.rates)
    via_rng = M.differential_fairness(yt, yp, g, n_bootstrap=500, seed=np.random.default_rng(11))
    assert via_rng[:4] == out[:4]
    other = M.differential_fairness(yt, yp, g, n_bootstrap=500, seed=12)
    assert other.epsilon == out.epsilon and other.bootstrap_mean != out.bootstrap_mean
    wide = M.differential_fairness(yt, yp, g, n_bootstrap=500, seed=11, ci=0.99)
    assert wide.ci_low <= out.ci_low and wide.ci_high >= out.ci_high


def test_bootstrap_is_stratified_within_groups():
    # every row of a group is the same (y_true, y_pred) cell: a within-group resample is the
    # group itself, so every replicate equals the point estimate. Resampling all rows jointly
    # would change the group sizes and hence the smoothed rates.
    yt, yp, g = _rows({"A": (5, 0, 0, 0), "B": (0, 9, 0, 0), "C": (20, 0, 0, 0)})
    out = M.differential_fairness(yt, yp, g, n_bootstrap=200, seed=0)
    assert out.epsilon == pytest.approx(math.log((22 / 24) / (2 / 13)))
    assert out.ci_low == pytest.approx(out.epsilon) and out.ci_high == pytest.approx(out.epsilon)
    assert out.bootstrap_mean == pytest.approx(out.epsilon)


def test_bootstrap_matches_explicit_row_resampling():
    yt, yp, g = _biased_data(n=300, seed=2)
    ours = M.differential_fairness(yt, yp, g, n_bootstrap=2000, seed=0)
    rng = np.random.default_rng(5)
    members = [np.flatnonzero(g == k) for k in range(3)]
    eps = []
    for _ in range(2000):
        idx = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members])
        eps.append(M.differential_fairness(yt[idx], yp[idx], g[idx], n_bootstrap=0).epsilon)
    assert ours.bootstrap_mean == pytest.approx(np.mean(eps), abs=0.01)
    assert ours.ci_high == pytest.approx(np.quantile(eps, 0.975), abs=0.03)


def test_bootstrap_nonfinite_replicates_warn():
    yt, yp, g = _rows({"A": (1, 9, 0, 0), "B": (5, 5, 0, 0)})
    with pytest.warns(UserWarning, match=r"of 300 bootstrap replicates gave a nan/inf epsilon"):
        M.differential_fairness(yt, yp, g, alpha=0.0, n_bootstrap=300, seed=0)


# --- intersectional: bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rate="ppv"), r"rate must be one of \['fpr', 'selection', 'tpr'\]; got 'ppv'"),
        (dict(alpha=-1.0), r"alpha must be a finite number >= 0; got -1.0"),
        (dict(n_bootstrap=-5), r"n_bootstrap must be >= 0; got -5"),
        (dict(n_bootstrap=2.5), r"n_bootstrap must be an int >= 0; got 2.5"),
        (dict(ci=95), r"ci must be a number in \(0, 1\), e.g. 0.95; got 95"),
        (dict(seed=1.5), r"seed must be a non-negative int or a numpy.random.Generator; got 1.5"),
        (dict(seed=None), r"seed must be .*got None"),
        (dict(group_values=["A", "B"]), r"groups has group\(s\) not listed in group_values: \['C"),
        (dict(group_values=["A", "B", "C", "A"]), r"group_values lists group\(s\) more than once"),
        (dict(group_values=[["A", 0]]), r"group_values must be a 1-D list of group ids"),
    ],
)
def test_differential_fairness_rejects_bad_options(kwargs, match):
    yt, yp, g = _rows(TABLE)
    with pytest.raises(FairjaxError, match=match):
        M.differential_fairness(yt, yp, g, **kwargs)


def test_intersectional_rejects_bad_input():
    yt, yp, g = _rows(TABLE)
    with pytest.raises(FairjaxError, match=r"alpha must be in \[0, 1\].*got 1.5"):
        M.intersectional_fairness(yt, yp, g, alpha=1.5)
    with pytest.raises(FairjaxError, match=r"smoothing must be a finite number >= 0; got -1"):
        M.group_rates(yt, yp, g, smoothing=-1)
    with pytest.raises(
        FairjaxError, match=r"same length; y_true has 24, y_pred has 24, groups has 23"
    ):
        M.group_rates(yt, yp, g[:-1])
    with pytest.raises(FairjaxError, match=r"single group 'A'"):
        M.differential_fairness(yt, yp, np.full(len(yt), "A"))
    with pytest.raises(FairjaxError, match=r"groups \(column 1\) has 1 missing value"):
        M.group_rates([1, 0], [1, 0], np.array([["a", None], ["b", 1]], dtype=object))
    with pytest.raises(
        FairjaxError, match=r"groups must be a 1-D array \[n\] of group ids or a 2-D"
    ):
        M.group_rates([1, 0], [1, 0], np.zeros((2, 1, 1)))
    with pytest.raises(FairjaxError, match=r"y_true is required for the true positive rate"):
        M.worst_group_rate(None, yp, g)
    with pytest.raises(FairjaxError, match=r"scores must be finite; got 1 nan/inf"):
        M.roc_auc([0, 1], [0.1, np.nan])


def test_public_api_is_exported():
    for name in M.__all__:
        assert getattr(M, name) is not None
    assert {"differential_fairness", "equalized_odds_ratio", "roc_auc"} <= set(M.__all__)
