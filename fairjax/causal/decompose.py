"""Causal fairness decomposition of a data set: `decompose` and its text / JSON forms.

    table = decompose(frame, X="sex", Z=["age"], W=["education"], Y="death",
                      x0="female", x1="male", key=jax.random.key(0))
    print(format_decomposition(table))

The pipeline: validate and encode the frame (`inputs.prepare`), split the units into K folds
stratified by X, fit the four nuisances P(x1 | Z), P(x1 | Z, W), E[Y | x1, Z] and
E[Y | x1, Z, W] on K - 1 folds and predict them on the held-out fold (`nuisance.cross_fit`),
choosing per nuisance among logistic regression, an MLP and gradient boosting by
out-of-fold loss when model="auto" (`nuisance.cross_fit_select`), clip the propensities,
and hand everything to the one-step estimators
(`estimators.ctf_functionals`). See `fairjax.causal.estimators` for the influence functions.

References:
  Plečko & Bareinboim (2022), Causal Fairness Analysis, arXiv 2207.11385;
  the R package faircause (`fairness_cookbook`, method "debiasing");
  Chernozhukov et al. (2018), Double/debiased machine learning, arXiv 1608.00060.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from fairjax.causal.estimators import MEASURES, ctf_functionals, ctf_measures
from fairjax.causal.inputs import prepare
from fairjax.causal.nuisance import cross_fit_select, make_regressors, pad_columns
from fairjax.errors import FairjaxError


def check_key(key: Any) -> jax.Array:
    """A JAX PRNG key (typed `jax.random.key` or raw uint32[2]) or a FairjaxError."""
    if isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    ):
        return key
    raise FairjaxError(f"key must be a JAX PRNG key such as jax.random.key(0); got {key!r}.")


def stratified_folds(key: jax.Array, t: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index in [0, n_folds) of each unit, balanced within each X group.

    Args:
      key: PRNG key.
      t: [n] 0/1 group indicator.
      n_folds: K.

    Returns:
      [n] int64: within each group, a random permutation of the units dealt to the folds in
      turn, so fold sizes differ by at most one per group.
    """
    # One uniform draw per unit (one compilation per n, unlike a permutation per group size).
    u = np.asarray(jax.random.uniform(key, (len(t),)))
    folds = np.empty(len(t), np.int64)
    for g in (0.0, 1.0):
        ids = np.flatnonzero(t == g)
        folds[ids[np.argsort(u[ids], kind="stable")]] = np.arange(len(ids)) % n_folds
    return folds


def _check_options(n_folds: Any, clip: Any, level: Any) -> None:
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise FairjaxError(f"n_folds must be an integer >= 2, got {n_folds!r}.")
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 <= clip < 0.5:
        raise FairjaxError(f"clip must be a number in [0, 0.5), got {clip!r}.")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise FairjaxError(f"level must be a number in (0, 1), got {level!r}.")


def decompose(
    frame: pd.DataFrame,
    *,
    X: str,
    Z: Sequence[str],
    W: Sequence[str],
    Y: str,
    x0: Any,
    x1: Any,
    key: jax.Array,
    n_folds: int = 5,
    model: str = "auto",
    clip: float = 0.01,
    level: float = 0.95,
    categorical: Sequence[str] = (),
    model_kwargs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Estimate tv, ctfde, ctfie, ctfse and ett of x0 -> x1 on Y, with standard errors.

    One-step (AIPW) estimators with K-fold cross-fitted nuisances; `tv = ctfde - ctfie -
    ctfse` holds exactly (up to float rounding) for the estimates. Measures, for a binary
    protected attribute X with baseline x0 (faircause's x-specific definitions):

      tv    = E[Y | x1] - E[Y | x0]                      total variation
      ctfde = E[Y_{x1, W_{x0}} | x0] - E[Y | x0]         counterfactual direct effect
      ctfie = E[Y_{x1, W_{x0}} | x0] - E[Y_{x1} | x0]    counterfactual indirect effect
      ctfse = E[Y_{x1} | x0] - E[Y | x1]                 counterfactual spurious effect
      ett   = E[Y_{x1} | x0] - E[Y | x0]                 effect of treatment on the treated

    With W empty, ctfie = 0 and ctfde = ett exactly; with Z empty, ctfse = 0 exactly (its sd
    is 0 too) and ett = tv.

    Args:
      frame: one row per unit [n rows]; other columns are ignored.
      X: protected attribute column; it must take exactly the two values x0 and x1.
      Z: confounder columns (may be empty).
      W: mediator columns (may be empty).
      Y: outcome column: 0/1 (or bool), real values in [0, 1] (e.g. a predictor's
        probabilities) or any real values.
      x0, x1: baseline and comparison values of X.
      key: JAX PRNG key (folds, and MLP initialisation / shuffling).
      n_folds: number of cross-fitting folds K >= 2.
      model: nuisance regressions: "auto" (the default: per nuisance, whichever of the
        three below has the smallest cross-validated loss, a discrete super learner),
        "logistic" (fast: logistic regression fitted to its optimum by L-BFGS, with soft
        targets for Y in [0, 1], or ridge least squares for other real Y; biased when the
        nuisances are far from logistic-linear), "mlp" (ReLU MLPs with early stopping) or
        "hgb" (scikit-learn's histogram gradient boosting); see `fairjax.causal.nuisance`.
      clip: propensities P(x1 | Z) and P(x1 | Z, W) are clipped to [clip, 1 - clip];
        `table.attrs["clipped"]` counts the clipped values.
      level: confidence level of the normal-approximation intervals.
      categorical: numeric Z/W columns to one-hot encode anyway (non-numeric and boolean
        columns always are; other numeric columns are standardised).
      model_kwargs: options for the nuisance factories, e.g. {"l2": 1e-3} (logistic),
        {"hidden": (64, 64), "max_epochs": 100} (mlp), {"max_iter": 500} (hgb); for "auto"
        keyed by candidate, e.g. {"mlp": {"hidden": (64,)}}.

    Returns:
      DataFrame with rows tv, ctfde, ctfie, ctfse, ett and columns measure, value, sd
      (standard error), ci_low, ci_high. `table.attrs` holds the run's description:
      X, Y, x0, x1, Z, W, n, n_x0, n_x1, y_kind, model, n_folds, clip, level,
      clipped = {"P(x1|Z)": count, "P(x1|Z,W)": count} out of n each, and
      nuisances = {name: {"model": chosen candidate, "cv_loss": {candidate: loss}}} for
      the four nuisances P(x1|Z), P(x1|Z,W), E[Y|x1,Z], E[Y|x1,Z,W].

    References:
      Plečko & Bareinboim, arXiv 2207.11385 (Def. 4.2-4.4, Thm. 4.8 decomposition);
      Chernozhukov et al., arXiv 1608.00060 (cross-fitting).
    """
    key = check_key(key)
    _check_options(n_folds, clip, level)
    regressors = make_regressors(model, model_kwargs)
    data = prepare(frame, X=X, Z=Z, W=W, Y=Y, x0=x0, x1=x1, categorical=categorical)
    t, y = data.t, data.y
    n_x1 = int(t.sum())
    n_x0 = len(t) - n_x1
    if min(n_x0, n_x1) < 2 * n_folds:
        raise FairjaxError(
            f"each group of X needs at least 2 * n_folds = {2 * n_folds} rows; found "
            f"{n_x0} with x0={x0!r} and {n_x1} with x1={x1!r}."
        )

    fold_key, fit_key = jax.random.split(key)
    folds = stratified_folds(fold_key, t, n_folds)
    k_pz, k_pzw, k_mz, k_mzw = jax.random.split(fit_key, 4)
    # Z-only designs keep the W columns, zeroed, so all four fits share one shape.
    x_zw = pad_columns(np.concatenate([data.z, data.w], axis=1))
    x_z = x_zw.copy()
    x_z[:, data.z.shape[1] :] = 0.0
    if data.z.shape[1] == 0:
        x_z = x_z[:, :0]
    everyone, treated = np.ones(len(t), bool), t == 1.0

    def fit(k, x, target, rows, kind):
        return cross_fit_select(k, regressors, x, target, rows, folds, n_folds, kind)

    fits = {"P(x1|Z)": fit(k_pz, x_z, t, everyone, "binary")}
    fits["E[Y|x1,Z]"] = fit(k_mz, x_z, y, treated, data.y_kind)
    if data.w.shape[1] == 0:
        # Same adjustment set: reuse the fits, so that ctfie = 0 exactly.
        fits["P(x1|Z,W)"], fits["E[Y|x1,Z,W]"] = fits["P(x1|Z)"], fits["E[Y|x1,Z]"]
    else:
        fits["P(x1|Z,W)"] = fit(k_pzw, x_zw, t, everyone, "binary")
        fits["E[Y|x1,Z,W]"] = fit(k_mzw, x_zw, y, treated, data.y_kind)
    pi_z_raw, pi_zw_raw = fits["P(x1|Z)"].pred, fits["P(x1|Z,W)"].pred
    mu1_z, mu1_zw = fits["E[Y|x1,Z]"].pred, fits["E[Y|x1,Z,W]"].pred

    lo, hi = clip, 1.0 - clip
    clipped = {
        "P(x1|Z)": int(np.sum((pi_z_raw < lo) | (pi_z_raw > hi))),
        "P(x1|Z,W)": int(np.sum((pi_zw_raw < lo) | (pi_zw_raw > hi))),
    }
    # float64, so that the identity and the structural zeros hold to ~1e-16, not ~1e-7.
    with jax.enable_x64(True):
        est = ctf_measures(
            ctf_functionals(
                *(
                    jnp.asarray(a, jnp.float64)
                    for a in (
                        t,
                        y,
                        np.clip(pi_z_raw, lo, hi),
                        np.clip(pi_zw_raw, lo, hi),
                        mu1_z,
                        mu1_zw,
                    )
                )
            )
        )
        value, sd = np.asarray(est.value), np.asarray(est.sd)
    z_crit = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    table = pd.DataFrame(
        {
            "measure": list(MEASURES),
            "value": value,
            "sd": sd,
            "ci_low": value - z_crit * sd,
            "ci_high": value + z_crit * sd,
        }
    )
    table.attrs = {
        "X": X,
        "Y": Y,
        "x0": _jsonable(x0),
        "x1": _jsonable(x1),
        "Z": list(Z),
        "W": list(W),
        "n": len(t),
        "n_x0": n_x0,
        "n_x1": n_x1,
        "y_kind": data.y_kind,
        "model": model,
        "n_folds": int(n_folds),
        "clip": float(clip),
        "level": float(level),
        "clipped": clipped,
        "nuisances": {
            name: {"model": fits[name].model, "cv_loss": fits[name].cv_loss}
            for name in ("P(x1|Z)", "P(x1|Z,W)", "E[Y|x1,Z]", "E[Y|x1,Z,W]")
        },
    }
    return table


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


_DESCRIPTIONS = {
    "tv": "total variation  E[Y|x1] - E[Y|x0]",
    "ctfde": "direct           E[Y_{x1,W_x0}|x0] - E[Y|x0]",
    "ctfie": "indirect         E[Y_{x1,W_x0}|x0] - E[Y_{x1}|x0]",
    "ctfse": "spurious         E[Y_{x1}|x0] - E[Y|x1]",
    "ett": "total (ETT)      E[Y_{x1}|x0] - E[Y|x0]",
}


def format_decomposition(table: pd.DataFrame, *, digits: int = 4) -> str:
    """A plain-text report of a `decompose` table for the command line.

    Args:
      table: output of `decompose` (its `attrs` add a header and the clipping counts; a
        table without them prints the rows only).
      digits: decimals of the numbers.

    Returns:
      Multi-line string: header, one line per measure (value, sd, confidence interval,
      meaning), the check of tv = ctfde - ctfie - ctfse, and the clipping report.
    """
    missing = {"measure", "value", "sd", "ci_low", "ci_high"} - set(table.columns)
    if missing:
        raise FairjaxError(f"table lacks column(s) {sorted(missing)}; pass decompose's output.")
    a = table.attrs
    lines = []
    if a:
        lines.append(
            f"Causal fairness decomposition of {a['Y']!s} by {a['X']!s}: "
            f"x0 = {a['x0']!r} -> x1 = {a['x1']!r}"
        )
        lines.append(f"n = {a['n']} ({a['n_x0']} x0, {a['n_x1']} x1); Z = {a['Z']}; W = {a['W']}")
        lines.append(
            f"one-step estimator, {a['n_folds']}-fold cross-fitting, {a['model']} nuisances"
        )
        if a.get("nuisances"):
            lines.append(
                "nuisances: " + ", ".join(f"{k} {v['model']}" for k, v in a["nuisances"].items())
            )
    level = a.get("level", 0.95)
    ci = f"{round(100 * level)}% CI"
    w = digits + 4
    lines.append(f"{'measure':<8}{'value':>{w}}{'sd':>{w}}   {ci:<{2 * w + 4}}  meaning")
    for row in table.itertuples(index=False):
        lo, hi = f"{row.ci_low:.{digits}f}", f"{row.ci_high:.{digits}f}"
        lines.append(
            f"{row.measure:<8}{row.value:>{w}.{digits}f}{row.sd:>{w}.{digits}f}   "
            f"{'[' + lo + ', ' + hi + ']':<{2 * w + 4}}  {_DESCRIPTIONS.get(row.measure, '')}"
        )
    v = dict(zip(table["measure"], table["value"], strict=True))
    if {"tv", "ctfde", "ctfie", "ctfse"} <= set(v):
        gap = v["tv"] - (v["ctfde"] - v["ctfie"] - v["ctfse"])
        lines.append(f"check: tv - (ctfde - ctfie - ctfse) = {gap:.1e}")
    if a.get("clipped") is not None:
        c = a["clipped"]
        lines.append(
            f"propensities clipped to [{a['clip']}, {1 - a['clip']}]: "
            + ", ".join(f"{k} {v} of {a['n']}" for k, v in c.items())
        )
    return "\n".join(lines)


def decomposition_to_dict(table: pd.DataFrame) -> dict:
    """JSON-ready form of a `decompose` table: {"measures": [{measure, value, sd, ci_low,
    ci_high}, ...], **table.attrs}; floats are Python floats (NaN stays NaN)."""
    measures = [
        {k: (v if k == "measure" else float(v)) for k, v in row.items()}
        for row in table[["measure", "value", "sd", "ci_low", "ci_high"]].to_dict("records")
    ]
    out = {"measures": measures}
    for k, v in table.attrs.items():
        out[k] = v if not isinstance(v, float) or math.isfinite(v) else None
    return out
