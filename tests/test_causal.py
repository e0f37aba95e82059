"""fairjax.causal checks numbers: estimates against the exact effects of structural causal
models, hand-computed influence functions, exact structural zeros, and input errors.

The true effects of each SCM come from its potential outcomes (`experiments.causal_calibration
.truth`): draw 4e6 units (Z, X, mediator noise U), compute W_{x0} = f_W(x0, Z, U) and
W_{x1} = f_W(x1, Z, U), and average the exact outcome means E[Y | x, z, w] (no Bernoulli
noise) over the X = x0 or X = x1 units. The Monte-Carlo error of a truth is ~2e-4, small
against the tolerances. The estimator tests pin model="logistic" (fast, and the SCMs are
built so that each functional has one correct logistic nuisance); the default
model="auto" is tested on the calibration SCMs.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments.causal_calibration import SCM, SCMS, estimate, sample, truth
from experiments.causal_calibration import main as calibration_main
from experiments.causal_calibration import sigmoid as _sigmoid
from fairjax.causal import (
    MEASURES,
    ctf_functionals,
    ctf_measures,
    decompose,
    decomposition_to_dict,
    fit_fair_predictor,
    format_decomposition,
    plugin_effects,
    predict_fair,
)
from fairjax.causal.decompose import stratified_folds
from fairjax.causal.estimators import ett_pseudo_outcome
from fairjax.errors import FairjaxError

# --- structural causal models ---------------------------------------------------------------
# SCM, sample and truth (exact measures from the potential outcomes, float64 numpy) are the
# calibration experiment's; the SCMs below are this file's own.


# Logistic-linear throughout, a categorical confounder, one binary and one continuous
# mediator. P(x1 | Z) and E[Y | x1, Z, W] are logistic-linear (correct), the other two
# nuisances are not: each functional has one correct nuisance, enough for the AIPW.
LINEAR = SCMS["linear"]
# X | Z logistic-linear and W | X, Z Gaussian with means linear in (X, Z) and fixed variances,
# so both propensities are logistic-linear; the outcome is nonlinear (sin, squares,
# interactions), so both outcome regressions are misspecified: double robustness at work.
NONLINEAR = SCM(
    confounders=lambda rng, n: {"z1": rng.uniform(-2, 2, size=n), "z2": rng.normal(size=n)},
    propensity=lambda z: _sigmoid(0.6 * z["z1"] - 0.4 * z["z2"]),
    mediator_noise=lambda rng, n: rng.normal(size=(2, n)),
    mediators=lambda x, z, u: {
        "w1": 0.5 * x + 0.5 * z["z1"] + u[0],
        "w2": -0.3 * x + 0.3 * z["z2"] + u[1],
    },
    outcome_mean=lambda x, z, w: _sigmoid(
        -0.8
        + 0.8 * x
        + np.sin(2 * z["z1"])
        + 0.5 * z["z2"] ** 2
        + 0.8 * np.tanh(w["w1"])
        + 0.5 * x * w["w2"]
        + 0.3 * w["w1"] * z["z2"]
    ),
)
NO_Z = SCM(
    confounders=lambda rng, n: {},
    propensity=lambda z: 0.45,
    mediator_noise=lambda rng, n: (rng.normal(size=n), rng.random(n)),
    mediators=lambda x, z, u: {
        "w1": 0.5 * x + u[0],
        "w2": (u[1] < 0.3 + 0.3 * x).astype(np.int64),
    },
    outcome_mean=lambda x, z, w: _sigmoid(-0.5 + 0.5 * x + 0.6 * w["w1"] - 0.5 * w["w2"]),
)
NO_W = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n), "z2": rng.normal(size=n)},
    propensity=lambda z: _sigmoid(0.3 + 0.7 * z["z1"] - 0.5 * z["z2"]),
    mediator_noise=lambda rng, n: None,
    mediators=lambda x, z, u: {},
    outcome_mean=lambda x, z, w: _sigmoid(-0.3 + 0.8 * x + 0.6 * z["z1"] + 0.4 * z["z2"]),
)
# Real-valued outcome, linear: ctfde = 0.3, ctfie = -0.25 * 0.6 = -0.15, ett = 0.45 exactly.
REAL = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n)},
    propensity=lambda z: _sigmoid(0.5 * z["z1"]),
    mediator_noise=lambda rng, n: rng.normal(size=n),
    mediators=lambda x, z, u: {"w1": 0.6 * x + 0.4 * z["z1"] + u},
    outcome_mean=lambda x, z, w: 0.3 * x + 0.2 * z["z1"] + 0.25 * w["w1"],
    noise_sd=0.4,
)
# A strong direct effect, for the fair predictor.
DIRECT = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n)},
    propensity=lambda z: _sigmoid(0.5 * z["z1"]),
    mediator_noise=lambda rng, n: rng.normal(size=n),
    mediators=lambda x, z, u: {"w1": 0.6 * x + 0.4 * z["z1"] + u},
    outcome_mean=lambda x, z, w: _sigmoid(-0.6 + 1.5 * x + 0.7 * z["z1"] + 0.7 * w["w1"]),
)

# name: (scm, Z, W, outcome column)
CASES = {
    "linear": (LINEAR, ["z1", "z2"], ["w1", "w2"], "y"),
    # the exact outcome probability as a real outcome in [0, 1] (soft-target nuisances)
    "linear_unit_y": (LINEAR, ["z1", "z2"], ["w1", "w2"], "y_mean"),
    "nonlinear": (NONLINEAR, ["z1", "z2"], ["w1", "w2"], "y"),
    "no_z": (NO_Z, [], ["w1", "w2"], "y"),
    "no_w": (NO_W, ["z1", "z2"], [], "y"),
    "real_y": (REAL, ["z1"], ["w1"], "y"),
}
N = 20_000  # for the comparisons with the truth
N_SMALL = 4_000  # elsewhere: one size, so that the jitted solvers compile once


def _decompose(df, Z, W, y="y", key=0, model="logistic", **kw):
    return decompose(
        df, X="x", Z=Z, W=W, Y=y, x0=0, x1=1, key=jax.random.key(key), model=model, **kw
    ).set_index("measure")


def _check_against_truth(table, true, tol):
    for m in MEASURES:
        value, sd = table.loc[m, "value"], table.loc[m, "sd"]
        err = value - true[m]
        assert abs(err) <= tol, f"{m}: estimate {value:.4f}, truth {true[m]:.4f}"
        if sd > 1e-12:  # sd = 0 only for structural zeros, checked exactly elsewhere
            assert abs(err) <= 3 * sd, f"{m}: error {err:.4f} > 3 sd = {3 * sd:.4f}"


# --- estimators: pure math -------------------------------------------------------------------


def test_ett_pseudo_outcome_hand_computed():
    # treated: 1 * (1 - 0.25) / 0.25 * (1 - 0.4) = 1.8; untreated: mu1 = 0.4
    assert float(ett_pseudo_outcome(1.0, 1.0, 0.25, 0.4)) == pytest.approx(1.8)
    assert float(ett_pseudo_outcome(0.0, 1.0, 0.25, 0.4)) == pytest.approx(0.4)


def test_ctf_functionals_match_numpy_formulas():
    rng = np.random.default_rng(0)
    n = 50
    t = (rng.random(n) < 0.4).astype(np.float64)
    y = rng.random(n)
    pi_z, pi_zw = rng.uniform(0.2, 0.8, n), rng.uniform(0.2, 0.8, n)
    mu_z, mu_zw = rng.random(n), rng.random(n)
    with jax.enable_x64(True):
        est = ctf_functionals(t, y, pi_z, pi_zw, mu_z, mu_zw)
        meas = ctf_measures(est)
        jitted = jax.jit(ctf_functionals)(t, y, pi_z, pi_zw, mu_z, mu_zw)
        meas_sd = np.asarray(meas.sd)
    influence = np.asarray(est.influence)
    p0, p1 = 1 - t.mean(), t.mean()
    psi_y0, psi_y1 = y[t == 0].mean(), y[t == 1].mean()

    def ett(pi, mu):
        a = t * (1 - pi) / pi * (y - mu) + (1 - t) * mu
        psi = a.mean() / p0
        return psi, (a - (1 - t) * psi) / p0

    (psi_te, if_te), (psi_de, if_de) = ett(pi_z, mu_z), ett(pi_zw, mu_zw)
    np.testing.assert_allclose(est.value, [psi_y0, psi_y1, psi_te, psi_de], rtol=1e-12)
    if_y0 = (1 - t) * (y - psi_y0) / p0
    if_y1 = t * (y - psi_y1) / p1
    np.testing.assert_allclose(influence, np.stack([if_y0, if_y1, if_te, if_de], 1), atol=1e-12)
    np.testing.assert_allclose(influence.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(jitted.value, est.value, rtol=1e-12)
    # measures: contrasts of the functionals, sd = sqrt(mean(IF^2) / n)
    tv, de, ie, se, te = np.asarray(meas.value)
    assert tv == pytest.approx(psi_y1 - psi_y0, abs=1e-12)
    assert de == pytest.approx(psi_de - psi_y0, abs=1e-12)
    assert ie == pytest.approx(psi_de - psi_te, abs=1e-12)
    assert se == pytest.approx(psi_te - psi_y1, abs=1e-12)
    assert te == pytest.approx(psi_te - psi_y0, abs=1e-12)
    assert tv == pytest.approx(de - ie - se, abs=1e-12)
    sd_tv = np.sqrt(np.mean((if_y1 - if_y0) ** 2) / n)
    assert meas_sd[0] == pytest.approx(sd_tv, rel=1e-10)


def test_oracle_nuisances_are_doubly_robust():
    # With the true propensity and a wrong (constant) outcome model, or the true outcome
    # model and a wrong (constant) propensity, E[Y_{x1} | x0] is still estimated.
    rng = np.random.default_rng(1)
    n = 400_000
    z = rng.normal(size=n)
    pi = _sigmoid(0.8 * z)
    t = (rng.random(n) < pi).astype(np.float64)
    mu1 = _sigmoid(0.5 + z)
    y = (rng.random(n) < np.where(t == 1, mu1, _sigmoid(z))).astype(np.float64)
    true_te = np.sum((1 - pi) * mu1) / np.sum(1 - pi)  # E[mu1(Z) | x0]
    with jax.enable_x64(True):
        good_pi = ctf_functionals(t, y, pi, pi, np.full(n, 0.5), np.full(n, 0.5))
        good_mu = ctf_functionals(t, y, np.full(n, 0.5), np.full(n, 0.5), mu1, mu1)
        results = [(float(e.value[2]), float(e.sd[2])) for e in (good_pi, good_mu)]
    for value, sd in results:
        assert value == pytest.approx(true_te, abs=4 * sd)


# --- decompose against the truth of SCMs -----------------------------------------------------


def test_truth_machinery_matches_closed_forms():
    true = truth(REAL)
    assert true["ctfde"] == pytest.approx(0.3, abs=1e-9)
    assert true["ctfie"] == pytest.approx(-0.15, abs=1e-9)
    assert true["ett"] == pytest.approx(0.45, abs=1e-9)
    assert true["tv"] == pytest.approx(true["ctfde"] - true["ctfie"] - true["ctfse"], abs=1e-12)
    no_w = truth(NO_W)
    assert no_w["ctfie"] == 0.0


@pytest.mark.parametrize("case", list(CASES))
def test_decompose_recovers_true_effects(case):
    scm, Z, W, y = CASES[case]
    df = sample(scm, seed=0, n=N)
    table = _decompose(df, Z, W, y)
    _check_against_truth(table, truth(scm), tol=0.02)
    v = table["value"]
    # the decomposition holds by construction, up to float64 rounding
    assert v["tv"] == pytest.approx(v["ctfde"] - v["ctfie"] - v["ctfse"], abs=1e-12)
    # tv is the plain difference of group means
    assert v["tv"] == pytest.approx(df[y][df.x == 1].mean() - df[y][df.x == 0].mean(), abs=1e-6)
    kind = "unit" if y == "y_mean" else "real" if case == "real_y" else "binary"
    assert table.attrs["y_kind"] == kind
    assert (table["ci_low"] <= v).all() and (v <= table["ci_high"]).all()


def test_empty_w_gives_zero_indirect_effect():
    table = _decompose(sample(NO_W, seed=1, n=N_SMALL), ["z1", "z2"], [])
    assert table.loc["ctfie", "value"] == 0.0 and table.loc["ctfie", "sd"] == 0.0
    assert table.loc["ctfde", "value"] == table.loc["ett", "value"]
    assert table.loc["ctfde", "sd"] == table.loc["ett", "sd"]


def test_empty_z_gives_zero_spurious_effect():
    df = sample(NO_Z, seed=1, n=N_SMALL)
    table = _decompose(df, [], ["w1", "w2"])
    assert table.loc["ctfse", "value"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["ctfse", "sd"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["ett", "value"] == pytest.approx(table.loc["tv", "value"], abs=1e-12)


def test_empty_z_and_w_everything_is_direct():
    df = sample(NO_Z, seed=2, n=N_SMALL)
    table = _decompose(df, [], [])
    v = table["value"]
    assert v["ctfie"] == 0.0
    assert v["ctfse"] == pytest.approx(0.0, abs=1e-12)
    assert v["ctfde"] == pytest.approx(v["tv"], abs=1e-12)
    assert v["ett"] == pytest.approx(v["tv"], abs=1e-12)


def test_standard_errors_match_monte_carlo_spread():
    # 16 independent samples of n = 4000: the reported sd must be within a factor 2 of the
    # spread of the estimates (the spread itself is known to about +-18% here).
    true = truth(LINEAR)
    errors, sds = [], []
    for seed in range(16):
        table = _decompose(
            sample(LINEAR, seed=100 + seed, n=N_SMALL), ["z1", "z2"], ["w1", "w2"], key=seed
        )
        errors.append([table.loc[m, "value"] - true[m] for m in MEASURES])
        sds.append(table["sd"].to_numpy())
    errors, sds = np.array(errors), np.array(sds)
    ratio = sds.mean(0) / errors.std(0, ddof=1)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), dict(zip(MEASURES, ratio.round(2), strict=True))
    # and 95% intervals cover the truth in most runs
    assert np.mean(np.abs(errors) <= 1.96 * sds) >= 0.8


def test_mlp_nuisances_recover_nonlinear_effects():
    df = sample(NONLINEAR, seed=3, n=8000)
    table = _decompose(df, ["z1", "z2"], ["w1", "w2"], model="mlp", n_folds=3)
    _check_against_truth(table, truth(NONLINEAR), tol=0.03)
    assert table.attrs["model"] == "mlp"


# --- the default nuisances (model="auto") and the calibration SCMs -----------------------------


def test_auto_chooses_each_nuisance_by_out_of_fold_loss():
    scm = SCMS["saturating"]
    df = sample(scm, seed=11, n=N_SMALL)
    auto = estimate(scm, df, jax.random.key(3))
    assert auto.attrs["model"] == "auto"
    nuisances = auto.attrs["nuisances"]
    assert list(nuisances) == ["P(x1|Z)", "P(x1|Z,W)", "E[Y|x1,Z]", "E[Y|x1,Z,W]"]
    for fit in nuisances.values():
        assert set(fit["cv_loss"]) == {"logistic", "mlp", "hgb"}
        assert fit["model"] == min(fit["cv_loss"], key=fit["cv_loss"].get)
    # E[Y | x1, Z, W] has a -0.6 z2^2 term: a logistic regression is not the best fit
    assert nuisances["E[Y|x1,Z,W]"]["model"] != "logistic"
    # A single candidate, same key and folds: the same out-of-fold fits (hence losses).
    hgb = estimate(scm, df, jax.random.key(3), model="hgb")
    for name, fit in hgb.attrs["nuisances"].items():
        assert fit["model"] == "hgb" and list(fit["cv_loss"]) == ["hgb"]
        assert fit["cv_loss"]["hgb"] == pytest.approx(nuisances[name]["cv_loss"]["hgb"], rel=1e-12)
    text = format_decomposition(auto.reset_index())
    assert "nuisances: P(x1|Z) " in text and "auto nuisances" in text
    json.dumps(decomposition_to_dict(auto.reset_index()))


def test_cross_fit_select_with_one_candidate_is_cross_fit():
    from fairjax.causal.nuisance import cross_fit, cross_fit_select, make_regressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = (rng.random(300) < _sigmoid(x[:, 0])).astype(np.float32)
    rows, folds = np.ones(300, bool), np.arange(300) % 3
    fn = make_regressor("logistic")
    fit = cross_fit_select(jax.random.key(0), {"logistic": fn}, x, y, rows, folds, 3, "binary")
    np.testing.assert_array_equal(
        fit.pred, cross_fit(jax.random.key(0), fn, x, y, rows, folds, 3, "binary")
    )
    p = np.clip(fit.pred, 1e-6, 1 - 1e-6)
    assert fit.cv_loss["logistic"] == pytest.approx(
        -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-9
    )


def test_hgb_on_a_small_sample():
    # 40 rows, 1 of them positive: too few for gradient boosting's stratified
    # early-stopping split (decompose with n = 60 used to fail there).
    from fairjax.causal.nuisance import make_regressor

    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    y = (np.arange(40) == 7).astype(np.float32)
    pred = make_regressor("hgb")(jax.random.key(0), x, y, np.ones(40, np.float32), "binary")
    assert pred.shape == (40,) and np.all((pred > 0) & (pred < 1))


@pytest.mark.parametrize("kind", ["unit", "real"])
def test_hgb_handles_soft_and_real_targets(kind):
    # soft targets: the fit of the duplicated rows predicts E[y | x] inside (0, 1); real
    # targets: a regression. Both close to the truth on a smooth non-linear mean.
    from fairjax.causal.nuisance import make_regressor

    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(4000, 1)).astype(np.float32)
    mean = _sigmoid(2 * np.sin(2 * x[:, 0]))
    y = mean if kind == "unit" else mean + rng.normal(scale=0.3, size=4000)
    weight = (np.arange(4000) % 2).astype(np.float32)  # fitted on the odd rows only

    def rmse(model):
        pred = make_regressor(model)(jax.random.key(0), x, y.astype(np.float32), weight, kind)
        return np.sqrt(np.mean((pred - mean)[weight == 0] ** 2)), pred

    err, pred = rmse("hgb")
    assert err < (0.05 if kind == "unit" else 0.08)
    assert err < 0.5 * rmse("logistic")[0]  # the linear fit misses the sine
    if kind == "unit":
        assert np.all((pred > 0) & (pred < 1))


@pytest.mark.slow
def test_defaults_are_unbiased_on_a_saturating_mediator_where_logistic_is_not():
    # The case: a saturating mediator and an X * W interaction, n = 20,000.
    scm = SCMS["saturating"]
    df = sample(scm, seed=21, n=20_000)
    true = truth(scm)
    auto = estimate(scm, df, jax.random.key(0))
    logistic = estimate(scm, df, jax.random.key(0), model="logistic")
    for m in MEASURES:
        assert abs(auto.loc[m, "value"] - true[m]) <= 3 * auto.loc[m, "sd"], m
    z = [abs(logistic.loc[m, "value"] - true[m]) / logistic.loc[m, "sd"] for m in MEASURES]
    assert max(z) > 3, dict(zip(MEASURES, np.round(z, 1), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["interaction", "no_direct", "real_categorical"])
def test_calibration_scms_one_draw(name):
    # The fast subset of experiments/causal_calibration.py (100 draws of n = 5,000 per SCM,
    # results/causal_calibration/): one draw, every measure within 3 sd of the truth
    # (linear and saturating are covered by the tests above).
    scm = SCMS[name]
    table = estimate(scm, sample(scm, seed=31, n=5_000), jax.random.key(31))
    true = truth(scm, n=1_000_000)  # Monte-Carlo error ~4e-4
    for m in MEASURES:
        err = table.loc[m, "value"] - true[m]
        assert abs(err) <= 3 * table.loc[m, "sd"] + 1e-3, f"{m}: error {err:+.4f}"


def test_calibration_script_smoke(tmp_path, capsys):
    out = tmp_path / "calib"
    args = ["--scms", "no_direct", "--reps", "2", "--n", "1000", "--n-large", "0"]
    args += ["--truth-n", "100000", "--model", "logistic"]  # the script, not the nuisances
    calibration_main([*args, "--out", str(out)])
    record = json.loads((out / "calibration.json").read_text())
    runs = record["scms"]["no_direct"]["runs"]
    assert len(runs) == 2 and record["scms"]["no_direct"]["truth"]["ctfde"] == 0.0
    table = (out / "tables.md").read_text()
    assert "| no_direct | ctfde | 0.0000 |" in table and "E[Y\\|x1,Z,W]" in table
    # the record is not overwritten by accident; the tables rebuild identically from it
    with pytest.raises(SystemExit):
        calibration_main([*args, "--out", str(out)])
    calibration_main(["--report-only", "--out", str(out)])
    assert (out / "tables.md").read_text() == table
    capsys.readouterr()


def test_labels_categories_and_swapping_groups():
    df = sample(LINEAR, seed=4, n=N_SMALL)
    df["x"] = np.where(df["x"] == 1, "group b", "group a")
    df["w1"] = df["w1"].map({0: "no", 1: "yes"})
    kw = dict(X="x", Z=["z1", "z2"], W=["w1", "w2"], Y="y", key=jax.random.key(0))
    kw["model"] = "logistic"
    ab = decompose(df, x0="group a", x1="group b", **kw).set_index("measure")["value"]
    ba = decompose(df, x0="group b", x1="group a", **kw).set_index("measure")["value"]
    # tv flips sign exactly; the rest are different (x-specific) quantities
    assert ba["tv"] == pytest.approx(-ab["tv"], abs=1e-12)
    # same key, same numbers
    again = decompose(df, x0="group a", x1="group b", **kw).set_index("measure")["value"]
    pd.testing.assert_series_equal(ab, again)
    # a numeric column can be one-hot encoded on request
    df["z3"] = np.digitize(df["z1"], [-1.0, 0.0, 1.0])
    kw["Z"] = ["z3", "z2"]
    cat = decompose(df, x0="group a", x1="group b", categorical=["z3"], **kw)
    num = decompose(df, x0="group a", x1="group b", **kw)
    assert np.all(np.isfinite(cat["value"])) and not np.allclose(cat["value"], num["value"])


def test_stratified_folds_are_balanced():
    t = (np.arange(103) % 3 == 0).astype(np.float32)
    folds = stratified_folds(jax.random.key(0), t, 5)
    for g in (0.0, 1.0):
        counts = np.bincount(folds[t == g], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_clipping_is_counted():
    df = sample(LINEAR, seed=5, n=N_SMALL)
    # z3 nearly determines X, so many propensities leave [0.05, 0.95]
    df["z3"] = df["x"] * 4.0 + np.random.default_rng(0).normal(size=len(df))
    table = decompose(
        df,
        X="x",
        Z=["z3"],
        W=["w2"],
        Y="y",
        x0=0,
        x1=1,
        key=jax.random.key(0),
        clip=0.05,
        model="logistic",
    )
    clipped = table.attrs["clipped"]
    assert clipped["P(x1|Z)"] > 200 and clipped["P(x1|Z,W)"] > 200
    assert np.all(np.isfinite(table["value"]))


def test_format_and_json():
    table = decompose(
        sample(NO_W, seed=6, n=N_SMALL),
        X="x",
        Z=["z1"],
        W=[],
        Y="y",
        x0=0,
        x1=1,
        key=jax.random.key(0),
    )
    text = format_decomposition(table)
    for m in MEASURES:
        assert f"\n{m} " in text
    assert "95% CI" in text and "clipped" in text and "tv - (ctfde - ctfie - ctfse)" in text
    d = json.loads(json.dumps(decomposition_to_dict(table)))
    assert [r["measure"] for r in d["measures"]] == list(MEASURES)
    assert d["measures"][0]["value"] == pytest.approx(table["value"].iloc[0])
    assert d["n"] == N_SMALL and d["x1"] == 1 and d["W"] == []
    # a table without attrs still formats
    bare = pd.DataFrame(table.to_dict("list"))
    assert not bare.attrs and "\nctfde " in format_decomposition(bare)


# --- input validation ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return sample(LINEAR, seed=7, n=200)


GOOD = dict(X="x", Z=["z1"], W=["w1"], Y="y", x0=0, x1=1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(X="nope"), "X: column"),
        (dict(Z=["z1", "zz"]), "Z: column"),
        (dict(W="w1"), "W must be a list"),
        (dict(Z=["z1", "w1"]), "two roles"),
        (dict(W=["y"]), "two roles"),
        (dict(Z=["x"]), "two roles"),
        (dict(x1=2), "x1=2 does not occur"),
        (dict(x0=1), "x0 and x1 must differ"),
        (dict(n_folds=1), "n_folds"),
        (dict(clip=0.5), "clip"),
        (dict(model="forest"), "model must be one of"),
        (dict(key=0), "key must be a JAX PRNG key"),
        (dict(categorical=["y"]), "categorical"),
        (dict(model="logistic", model_kwargs={"depth": 3}), "Unknown option"),
        (dict(model_kwargs={"depth": 3}), "maps candidate names"),
        (dict(model="hgb", model_kwargs={"depth": 3}), "bad option"),
        (dict(model="hgb", model_kwargs={"max_iter": -1}), "bad option"),
    ],
)
def test_bad_arguments_raise(small, change, match):
    kw = {**GOOD, "key": jax.random.key(0), **change}
    with pytest.raises(FairjaxError, match=match):
        decompose(small, **kw)


def test_bad_frames_raise(small):
    kw = {**GOOD, "key": jax.random.key(0)}
    bad = small.assign(y=np.where(small.y == 1, "yes", "no"))
    with pytest.raises(FairjaxError, match="Y='y' must be numeric"):
        decompose(bad, **kw)
    bad = small.assign(z1=small.z1.where(small.index != 3))
    with pytest.raises(FairjaxError, match=r"'z1' \(Z\) has 1 missing"):
        decompose(bad, **kw)
    bad = small.assign(x=np.where(small.index < 5, 2, small.x))
    with pytest.raises(FairjaxError, match="other than x0=0 and x1=1"):
        decompose(bad, **kw)
    with pytest.raises(FairjaxError, match="at least 2 \\* n_folds"):
        decompose(small.iloc[:12], **kw)
    with pytest.raises(FairjaxError, match="DataFrame"):
        decompose(small.to_numpy(), **kw)


# --- bundled data sets (smoke) ---------------------------------------------------------------


def _smoke(table, frame, X, Y, x0, x1):
    v = table.set_index("measure")
    assert np.all(np.isfinite(table[["value", "sd", "ci_low", "ci_high"]].to_numpy()))
    assert np.all(table["sd"] > 0)
    assert v.loc["tv", "value"] == pytest.approx(
        v.loc["ctfde", "value"] - v.loc["ctfie", "value"] - v.loc["ctfse", "value"], abs=1e-12
    )
    y = frame[Y].to_numpy(float)
    tv = y[frame[X] == x1].mean() - y[frame[X] == x0].mean()
    assert v.loc["tv", "value"] == pytest.approx(tv, abs=1e-6)


def test_nhefs_smoke():
    from fairjax.datasets import load_nhefs

    frame = load_nhefs().frame
    W = ["education", "smokeintensity", "smokeyrs", "sbp", "dbp", "wt71"]
    W += ["diabetes", "exercise", "active"]
    roles = dict(X="sex", Z=["age", "race"], W=W, Y="death", x0="female", x1="male")
    table = decompose(frame, **roles, key=jax.random.key(0), model="logistic")  # compas: auto
    _smoke(table, frame, "sex", "death", "female", "male")


def test_compas_smoke():
    from fairjax.datasets import load_compas

    frame = load_compas().frame
    frame = frame[frame["race"].isin(["African-American", "Caucasian"])].reset_index(drop=True)
    W = ["juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count", "c_charge_degree"]
    roles = dict(X="race", Z=["age", "sex"], W=W, Y="two_year_recid")
    table = decompose(frame, **roles, x0="Caucasian", x1="African-American", key=jax.random.key(0))
    _smoke(table, frame, "race", "two_year_recid", "Caucasian", "African-American")


# --- fair predictor --------------------------------------------------------------------------


def test_plugin_effects_hand_computed():
    # units: (t, f0, f1, odds)
    t = jnp.array([0.0, 0.0, 1.0, 1.0, 1.0])
    f0 = jnp.array([0.2, 0.4, 0.9, 0.9, 0.9])
    f1 = jnp.array([0.5, 0.9, 0.6, 0.8, 1.0])
    odds = jnp.array([9.0, 9.0, 1.0, 3.0, 0.0])
    mask = jnp.ones(5)
    eff = jax.jit(plugin_effects)(f0, f1, t, odds, mask)
    e_y0, e_y1, e_de = 0.3, 0.8, 0.7  # means of f0 on x0, f1 on x1, f1 on x0
    e_te = (1.0 * 0.6 + 3.0 * 0.8) / 4.0  # odds-weighted f1 on x1 = 0.75
    expected = {
        "tv": e_y1 - e_y0,
        "ctfde": e_de - e_y0,
        "ctfie": e_de - e_te,
        "ctfse": e_te - e_y1,
        "ett": e_te - e_y0,
    }
    for k, v in expected.items():
        assert float(eff[k]) == pytest.approx(v, abs=1e-6), k
    # padding rows are ignored
    pad = lambda a, v: jnp.concatenate([a, jnp.full(3, v)])
    eff_pad = plugin_effects(
        pad(f0, 0.0), pad(f1, 1.0), pad(t, 1.0), pad(odds, 5.0), pad(mask, 0.0)
    )
    for k in expected:
        assert float(eff_pad[k]) == pytest.approx(float(eff[k]), abs=1e-6)


def test_fair_predictor_removes_the_direct_effect():
    train, test = sample(DIRECT, seed=10, n=N_SMALL), sample(DIRECT, seed=11, n=N_SMALL)
    roles = dict(X="x", Z=["z1"], W=["w1"], x0=0, x1=1)
    plain = fit_fair_predictor(jax.random.key(0), train, Y="y", **roles, lam=0.0)
    fair = fit_fair_predictor(
        jax.random.key(0),
        train,
        Y="y",
        **roles,
        lam=5.0,
        business_necessity=("ctfie", "ctfse"),
    )
    results = {}
    for name, model in (("plain", plain), ("fair", fair)):
        pred = predict_fair(model, test)
        table = decompose(test.assign(pred=pred), Y="pred", key=jax.random.key(1), **roles)
        results[name] = (table.set_index("measure")["value"], np.mean((pred > 0.5) == test.y))
    (plain_eff, plain_acc), (fair_eff, fair_acc) = results["plain"], results["fair"]
    print(
        f"\nctfde plain {plain_eff['ctfde']:.4f} fair {fair_eff['ctfde']:.4f}; "
        f"accuracy plain {plain_acc:.4f} fair {fair_acc:.4f}"
    )
    assert plain_eff["ctfde"] > 0.15  # the unconstrained MLP inherits the direct effect
    assert abs(fair_eff["ctfde"]) < 0.02
    assert abs(fair_eff["ctfde"]) < 0.1 * plain_eff["ctfde"]
    # business necessity: indirect and spurious effects stay near the real outcome's
    for e in ("ctfie", "ctfse"):
        assert fair_eff[e] == pytest.approx(fair.eta[e], abs=0.03)
    assert fair.eta["ctfde"] == 0.0
    assert fair_acc > plain_acc - 0.08  # the price of fairness is bounded here
    # counterfactual predictions: f(x1, z, w) - f(x0, z, w) is ~0 for the fair predictor
    gap = predict_fair(fair, test, x=1) - predict_fair(fair, test, x=0)
    assert abs(gap[test.x == 0].mean()) < 0.02


def test_fair_predictor_bad_arguments():
    df = sample(DIRECT, seed=12, n=200)
    roles = dict(X="x", Z=["z1"], W=["w1"], Y="y", x0=0, x1=1)
    key = jax.random.key(0)
    with pytest.raises(FairjaxError, match="unknown effect"):
        fit_fair_predictor(key, df, **roles, effects=("de",))
    with pytest.raises(FairjaxError, match="must also be listed in effects"):
        fit_fair_predictor(key, df, **roles, effects=("ctfde",), business_necessity=("ctfie",))
    with pytest.raises(FairjaxError, match="lam"):
        fit_fair_predictor(key, df, **roles, lam=-1.0)
    with pytest.raises(FairjaxError, match="hidden"):
        fit_fair_predictor(key, df, **roles, hidden=(8, 0))
    with pytest.raises(FairjaxError, match="0/1 labels or probabilities"):
        fit_fair_predictor(key, df.assign(y=df.y * 3.0), **roles)
