"""Cross-fitted nuisance regressions for the one-step estimators.

A nuisance is E[target | features] fitted on some rows (e.g. the units with X = x1 for
mu(x1, .)) and predicted out-of-fold for every row (cross-fitting, arXiv 1608.00060 Def. 3.1).
How it is fitted depends on the target and on `model`:

| target         | "logistic"                    | "mlp"          | "hgb"                       |
|----------------|-------------------------------|----------------|-----------------------------|
| 0/1 "binary"   | `classifiers` logistic, L-BFGS| `classifiers`  | sklearn HistGradientBoosting|
|                |                               | MLP            | Classifier                  |
| [0, 1] "unit"  | logistic, soft-target loss    | MLP, soft      | classifier, soft targets    |
| real "real"    | ridge least squares           | MLP, squares   | HistGradientBoostingRegressor|

The soft-target log-loss (quasi-binomial) is minimised by the conditional mean, like the
squared error, but keeps predictions inside (0, 1). The logistic and gradient-boosting
versions are exactly the hard-label fit on the rows duplicated with labels 1 and 0 and
weights y and 1 - y.

model="auto" (the default of `decompose`) is a discrete super learner over the three:
`cross_fit_select` cross-fits every candidate on the same folds and keeps, per nuisance, the
one with the smallest out-of-fold loss (log loss for 0/1 and [0, 1] targets, squared error
for real ones) on the rows the nuisance is fitted on. Choosing among a fixed, small library by
its cross-validated risk does as well as the best candidate up to a term of order
log(#candidates) / n (the oracle inequality of van der Laan, Polley & Hubbard 2007), so the
one-step estimator keeps its rate and its normal-approximation intervals; the alternative,
a convex stack, adds a second-level fit for little gain over choosing between
candidates this different (linear / smooth / piecewise constant).

References:
  van der Laan, Polley & Hubbard (2007), Super Learner, Stat. Appl. Genet. Mol. Biol. 6(1);
  Chernozhukov et al. (2018), arXiv 1608.00060 (cross-fitting).

All folds are fitted on the full [n, d] design with zero sample weights outside the
training rows, so each jitted solver compiles once per design shape rather than once per
fold size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax.causal.training import make_trainer
from fairjax.classifiers import (
    Params,
    init_mlp,
    logits_fn,
    make_classifier,
)
from fairjax.errors import FairjaxError

MODELS = ("auto", "logistic", "mlp", "hgb")
AUTO_CANDIDATES = ("logistic", "mlp", "hgb")
TARGET_KINDS = ("binary", "unit", "real")
# Defaults of the MLP nuisances: small nets, as the nuisance data sets are small.
MLP_DEFAULTS = {"hidden": (32, 32), "lr": 1e-3, "batch_size": 256, "max_epochs": 50}
# Gradient boosting: shallow trees, early-stopped on 10% of the fitting rows.
HGB_DEFAULTS = {
    "max_iter": 300,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}
HGB_MIN_EARLY_STOPPING = 200  # fitting rows (10x those of the rarer class) to early-stop
_OWN_MLP_OPTIONS = ("hidden", "lr", "batch_size", "max_epochs", "patience", "val_fraction")


def target_kind(y: np.ndarray) -> str:
    """ "binary" if y only holds 0 and 1, "unit" if it lies in [0, 1], else "real"."""
    if np.all((y == 0) | (y == 1)):
        return "binary"
    if np.all((y >= 0) & (y <= 1)):
        return "unit"
    return "real"


def _frozen(kwargs: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))


@functools.lru_cache(maxsize=32)
def _cached_classifier(name: str, frozen: tuple):
    # One factory per configuration, so its jitted solver compiles once per session.
    return make_classifier(name, **dict(frozen))


@functools.lru_cache(maxsize=32)
def _cached_trainer(loss: str, frozen: tuple):
    opts = dict(frozen)
    loss_fn = {"unit": _soft_bce, "real": _squared_error}[loss]
    return make_trainer(
        loss_fn,
        lr=opts["lr"],
        batch_size=opts["batch_size"],
        max_epochs=opts["max_epochs"],
        patience=opts["patience"],
    )


def _soft_bce(params: Params, batch, aux=None) -> jax.Array:
    """Weighted mean log-loss with soft targets; batch = (x [b, d], y [b] in [0, 1], w [b])."""
    x, y, w = batch
    loss = optax.sigmoid_binary_cross_entropy(logits_fn(params, x), y)
    return jnp.sum(w * loss) / jnp.maximum(jnp.sum(w), 1e-12)


def _squared_error(params: Params, batch, aux=None) -> jax.Array:
    """Weighted mean squared error; batch = (x [b, d], y [b], w [b])."""
    x, y, w = batch
    return jnp.sum(w * jnp.square(logits_fn(params, x) - y)) / jnp.maximum(jnp.sum(w), 1e-12)


def check_model(model: str, model_kwargs: Mapping[str, Any] | None) -> dict:
    """Validate one candidate `model` and its options; returns the options with defaults
    filled in ("auto" is handled by `make_regressors`)."""
    if model not in MODELS or model == "auto":
        raise FairjaxError(f"model must be one of {list(MODELS)}, got {model!r}.")
    kwargs = dict(model_kwargs or {})
    if model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        kwargs = {**HGB_DEFAULTS, **kwargs}
        try:
            HistGradientBoostingClassifier(**kwargs)._validate_params()
        except (TypeError, ValueError) as e:
            raise FairjaxError(f"bad option(s) for model 'hgb' in {kwargs}: {e}") from e
        return kwargs
    if model == "mlp":
        kwargs = {**MLP_DEFAULTS, **kwargs}
    # make_classifier validates the option names (and values) against the factory.
    _cached_classifier(model, _frozen(kwargs))
    return kwargs


# (key, x [n, d], y [n], weight [n], kind) -> E[y | x] [n]: see `make_regressor`.
RegressFn = Callable[[jax.Array, np.ndarray, np.ndarray, np.ndarray, str], np.ndarray]


def make_regressors(
    model: str = "auto", model_kwargs: Mapping[str, Any] | None = None
) -> dict[str, RegressFn]:
    """The candidate regressions of a `model` choice: {name: regress_fn}.

    Args:
      model: "auto" (all of `AUTO_CANDIDATES`) or one of "logistic", "mlp", "hgb".
      model_kwargs: the options of a single model (see `make_regressor`); for "auto",
        None or {candidate name: options}, e.g. {"mlp": {"hidden": (64,)}}.

    Returns:
      Ordered dict from candidate name to its `regress_fn`.
    """
    if model != "auto":
        return {model: make_regressor(model, model_kwargs)}
    per = dict(model_kwargs or {})
    unknown = sorted(set(per) - set(AUTO_CANDIDATES), key=str)
    if unknown:
        raise FairjaxError(
            f"model_kwargs for model='auto' maps candidate names {list(AUTO_CANDIDATES)} to "
            f"their options; got unknown key(s) {unknown}."
        )
    return {name: make_regressor(name, per.get(name)) for name in AUTO_CANDIDATES}


def make_regressor(model: str = "logistic", model_kwargs: Mapping[str, Any] | None = None):
    """A regression `regress_fn(key, x, y, weight, kind) -> [n]` for one configuration.

    `regress_fn` fits E[y | x] on the rows with weight > 0 (a constant when the target
    does not vary there) and predicts it for every row, by the method of the module table.

    Args (of the factory):
      model: "logistic", "mlp" or "hgb".
      model_kwargs: options of `fairjax.classifiers.make_classifier(model, ...)` (l2 for
        "logistic"; hidden, lr, batch_size, max_epochs, patience, val_fraction, ... for
        "mlp", defaults `MLP_DEFAULTS`) or of scikit-learn's HistGradientBoosting
        estimators for "hgb" (defaults `HGB_DEFAULTS`).

    Args (of regress_fn):
      key: PRNG key (MLP initialisation, shuffling, validation split; the boosting seed).
      x: [n, d] float32 features (d >= 1).
      y: [n] float32 targets of kind `kind` ("binary", "unit" or "real").
      weight: [n] float32 in {0, 1}: the training rows.
      kind: see `target_kind`.

    Returns:
      `regress_fn`, returning [n] float64 predictions. The solvers it uses are cached per
      configuration, so they compile once per design shape in a session.
    """
    kwargs = check_model(model, model_kwargs)
    frozen = _frozen(kwargs)

    def regress_fn(
        key: jax.Array, x: np.ndarray, y: np.ndarray, weight: np.ndarray, kind: str
    ) -> np.ndarray:
        values = y[weight > 0]
        if values.min() == values.max():  # nothing to learn (e.g. one class only)
            return np.full(len(y), float(values[0]))
        if model == "hgb":
            return _hgb(key, x, y, weight, kind, kwargs)
        if kind == "binary":
            clf = _cached_classifier(model, frozen)
            params = clf.fit(key, x, y, sample_weight=weight)
            return np.asarray(clf.predict_proba(params, jnp.asarray(x)), np.float64)
        if model == "logistic" and kind == "unit":
            return _soft_logistic(key, x, y, weight, frozen)
        if model == "logistic":
            return _ridge(x, y, weight, l2=float(kwargs.get("l2", 1e-4)))
        return _mlp_regression(key, x, y, weight, kind, kwargs)

    return regress_fn


def _hgb(key, x, y, weight, kind, kwargs):
    """scikit-learn histogram gradient boosting on the rows with weight > 0; soft targets
    ("unit") by the duplicated-rows log-loss of `_soft_logistic`. One OpenMP thread: the
    fits are small, and a thread pool per fit on a busy machine costs ~50x more time."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return _hgb_fit_predict(key, x, y, weight, kind, kwargs)


def _hgb_fit_predict(key, x, y, weight, kind, kwargs):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    seed = int(jax.random.bits(key, dtype=jnp.uint32)) % (2**31 - 1)
    keep = weight > 0
    xf, yf = x[keep].astype(np.float64), y[keep].astype(np.float64)
    rarest = len(yf) if kind != "binary" else int(min(yf.sum(), len(yf) - yf.sum()))
    if kwargs.get("early_stopping") and min(len(yf), 10 * rarest) < HGB_MIN_EARLY_STOPPING:
        # Too few rows (of the rarer class) for a stratified validation split: a fixed,
        # short run instead.
        kwargs = {**kwargs, "early_stopping": False, "max_iter": min(kwargs["max_iter"], 50)}
    if kind == "real":
        reg = HistGradientBoostingRegressor(random_state=seed, **kwargs).fit(xf, yf)
        return reg.predict(x).astype(np.float64)
    clf = HistGradientBoostingClassifier(random_state=seed, **kwargs)
    if kind == "unit":
        both = np.concatenate([yf, 1.0 - yf])
        labels = np.concatenate([np.ones(len(yf)), np.zeros(len(yf))])
        clf.fit(np.concatenate([xf, xf]), labels, sample_weight=both)
    else:
        clf.fit(xf, yf.astype(np.int64))
    proba = clf.predict_proba(x)
    return proba[:, list(clf.classes_).index(1)].astype(np.float64)


def out_of_fold_loss(pred: np.ndarray, y: np.ndarray, rows: np.ndarray, kind: str) -> float:
    """Mean loss of predictions on `rows`: log loss (binary / unit; predictions clipped to
    [1e-6, 1 - 1e-6]) or squared error (real)."""
    p, t = pred[rows].astype(np.float64), y[rows].astype(np.float64)
    if kind == "real":
        return float(np.mean((t - p) ** 2))
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)))


class NuisanceFit(NamedTuple):
    """A cross-fitted nuisance and how it was chosen.

    Attributes:
      pred: [n] float64 out-of-fold predictions of the chosen candidate.
      model: the chosen candidate ("mean" when there are no features).
      cv_loss: candidate -> out-of-fold loss on the fitting rows (`out_of_fold_loss`).
    """

    pred: np.ndarray
    model: str
    cv_loss: dict[str, float]


def cross_fit_select(
    key: jax.Array,
    regressors: Mapping[str, RegressFn],
    x: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    folds: np.ndarray,
    n_folds: int,
    kind: str,
) -> NuisanceFit:
    """`cross_fit` of every candidate on the same folds and key; keeps the one of smallest
    out-of-fold loss on `rows` (the discrete super learner, module docstring).

    Args: as `cross_fit`, with `regressors` {name: regress_fn} (`make_regressors`).

    Returns:
      `NuisanceFit`; with one candidate its predictions are exactly `cross_fit`'s.
    """
    if x.shape[1] == 0:
        pred = cross_fit(key, next(iter(regressors.values())), x, y, rows, folds, n_folds, kind)
        return NuisanceFit(pred, "mean", {})
    preds = {
        name: cross_fit(key, fn, x, y, rows, folds, n_folds, kind)
        for name, fn in regressors.items()
    }
    losses = {name: out_of_fold_loss(p, y, rows, kind) for name, p in preds.items()}
    best = min(losses, key=lambda name: (not np.isfinite(losses[name]), losses[name]))
    return NuisanceFit(preds[best], best, losses)


def _soft_logistic(key, x, y, weight, frozen):
    """Soft-target logistic regression = hard-label fit on rows duplicated as (x, 1) with
    weight y and (x, 0) with weight 1 - y (the weighted log-losses are identical)."""
    clf = _cached_classifier("logistic", frozen)
    x2 = np.concatenate([x, x])
    y2 = np.concatenate([np.ones_like(y), np.zeros_like(y)])
    params = clf.fit(key, x2, y2, sample_weight=np.concatenate([weight * y, weight * (1 - y)]))
    return np.asarray(clf.predict_proba(params, jnp.asarray(x)), np.float64)


def _mlp_regression(key, x, y, weight, kind, kwargs):
    """MLP on soft-target log-loss ("unit") or squared error ("real"), early-stopped on a
    random `val_fraction` of the rows."""
    unsupported = sorted(set(kwargs) - set(_OWN_MLP_OPTIONS))
    if unsupported:
        raise FairjaxError(
            f"option(s) {unsupported} are not supported for MLP regression of a "
            f"non-binary outcome; supported: {list(_OWN_MLP_OPTIONS)}."
        )
    opts = {"patience": 5, "val_fraction": 0.1, **kwargs}
    init_key, split_key, train_key = jax.random.split(key, 3)
    # Standardise real targets so that the default learning rate fits any scale.
    loc, scale = 0.0, 1.0
    if kind == "real":
        loc = float(np.average(y, weights=weight))
        scale = float(np.sqrt(np.average((y - loc) ** 2, weights=weight))) or 1.0
    ys = ((y - loc) / scale).astype(np.float32)
    order = np.argsort(np.asarray(jax.random.uniform(split_key, (len(y),))), kind="stable")
    n_val = max(1, round(opts["val_fraction"] * len(y)))
    val, tr = order[:n_val], order[n_val:]
    data = (jnp.asarray(x), jnp.asarray(ys), jnp.asarray(weight, jnp.float32))
    train = _cached_trainer(kind, _frozen(opts))
    params = init_mlp(init_key, (x.shape[1], *opts["hidden"], 1))
    result = train(
        train_key,
        params,
        jax.tree.map(lambda a: a[tr], data),
        jax.tree.map(lambda a: a[val], data),
    )
    out = logits_fn(result.params, jnp.asarray(x))
    out = jax.nn.sigmoid(out) if kind == "unit" else out * scale + loc
    return np.asarray(out, np.float64)


def _ridge(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float) -> np.ndarray:
    """Ridge regression with an unpenalised intercept, in float64: minimises
    sum_i w_i (y_i - b - x_i beta)^2 / (2 sum_i w_i) + l2 / 2 ||beta||^2 (the penalty on the
    mean-loss scale, as in the logistic regression); x [n, d] -> predictions [n]."""
    x = x.astype(np.float64)
    xi = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    w = weight.astype(np.float64) / weight.sum()
    gram = xi.T @ (w[:, None] * xi) + l2 * np.diag([0.0] + [1.0] * x.shape[1])
    beta = np.linalg.lstsq(gram, xi.T @ (w * y), rcond=None)[0]
    return xi @ beta


def cross_fit(
    key: jax.Array,
    regress_fn: RegressFn,
    x: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    folds: np.ndarray,
    n_folds: int,
    kind: str,
) -> np.ndarray:
    """Out-of-fold predictions of E[y | x] fitted on `rows`, for every unit.

    Args:
      key: PRNG key; fold k uses `fold_in(key, k)`.
      regress_fn: the regression to use (`make_regressor`).
      x: [n, d] features; d = 0 gives the plain mean of y over `rows` (a single number
        needs no cross-fitting, and the full-sample mean makes the estimators exact in the
        no-covariate case, e.g. ctfse = 0 when Z is empty).
      y: [n] targets.
      rows: [n] bool, the units the regression is fitted on (all of them, or one X group).
      folds: [n] int fold of each unit, in [0, n_folds).
      n_folds: number of folds K.
      kind: target kind (see `target_kind`).

    Returns:
      [n] float64: for a unit in fold k, the prediction of the model fitted on
      `rows & (folds != k)`.
    """
    if x.shape[1] == 0:
        return np.full(len(y), float(np.mean(y[rows], dtype=np.float64)))
    n = len(y)
    # Zero-weight padding rows up to a bucketed size: the jitted solvers compile once per
    # design shape, and nearby sample sizes then share a compilation.
    pad = bucket_size(n) - n
    x_pad = np.pad(x, ((0, pad), (0, 0)))
    y_pad = np.pad(y, (0, pad), constant_values=y[rows][0])
    out = np.empty(n)
    for k in range(n_folds):
        weight = np.pad((rows & (folds != k)).astype(np.float32), (0, pad))
        pred = regress_fn(jax.random.fold_in(key, k), x_pad, y_pad, weight, kind)[:n]
        out[folds == k] = pred[folds == k]
    return out


def fit_predict_all(
    key: jax.Array, regress_fn: RegressFn, x: np.ndarray, y: np.ndarray, kind: str
) -> np.ndarray:
    """In-sample predictions of E[y | x] fitted on all rows (no cross-fitting), with the
    same row and column padding as `cross_fit`; x [n, d], y [n] -> [n] float64."""
    if x.shape[1] == 0:
        return np.full(len(y), float(np.mean(y, dtype=np.float64)))
    n = len(y)
    pad = bucket_size(n) - n
    x_pad = np.pad(pad_columns(x), ((0, pad), (0, 0)))
    y_pad = np.pad(y, (0, pad), constant_values=y[0])
    weight = np.pad(np.ones(n, np.float32), (0, pad))
    return regress_fn(key, x_pad, y_pad, weight, kind)[:n]


def pad_columns(x: np.ndarray, multiple: int = 8) -> np.ndarray:
    """x [n, d] with zero columns appended up to a multiple of `multiple` columns.

    Zero columns leave logistic and ridge fits unchanged (their coefficients stay 0) and
    let designs of similar width share one compiled solver.
    """
    d = x.shape[1]
    if d == 0:
        return x
    return np.pad(x, ((0, 0), (0, -(-d // multiple) * multiple - d)))


def bucket_size(n: int) -> int:
    """n rounded up to a multiple of 2^(floor(log2 n) - 3): at most 12.5% more rows,
    eight sizes per octave."""
    step = 2 ** max(0, n.bit_length() - 4)
    return -(-n // step) * step
