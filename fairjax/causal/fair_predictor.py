"""Causally fair prediction: an MLP trained with penalties on its own causal effects.

The predictor is f(x, z, w) = sigmoid(MLP([1(x = x1), z, w])), trained on

  mean BCE(f(X, Z, W), Y) + lam * sum_{e in effects} | e(f) - eta_e |,

where e(f) is the x-specific effect e in {ctfde, ctfie, ctfse, tv, ett} of the predictor's
output (taking f as the outcome), estimated on each minibatch, and eta_e = 0 unless e is a
business-necessity effect, whose target is the effect measured on the real outcome by
`decompose` (Plečko & Bareinboim, arXiv 2207.11385, Sec. 6 "fair prediction"; faircause's
`fair_predictions`).

Estimating the effects of f inside the loss. f is a known function that can be evaluated
at the counterfactual value of X, and under the standard fairness model W_{x0} = W for a
unit with X = x0 (consistency), so f's counterfactual means are plug-in averages:

  E[f | x0]              = mean over X = x0 units of f(x0, Z, W)
  E[f | x1]              = mean over X = x1 units of f(x1, Z, W)
  E[f_{x1, W_{x0}} | x0] = mean over X = x0 units of f(x1, Z, W)     (no weights needed)
  E[f_{x1} | x0]         = sum_{X = x1} o(Z) f(x1, Z, W) / sum_{X = x1} o(Z),

with o(Z) = (1 - pi(Z)) / pi(Z), pi(Z) = P(X = x1 | Z): the x1 units' (Z, W) follow
P(z | x1) P(w | x1, z), and the odds o(Z) ∝ P(z | x0) / P(z | x1) move Z to its law given
x0 while W keeps its law given (x1, Z), which is W_{x1} under the SFM. This is the
self-normalised (Hajek) inverse-propensity estimator. So ctfde(f) needs no propensity at
all, and ctfie(f), ctfse(f) need only pi(Z), fitted once before training by logistic
regression and clipped to [clip, 1 - clip]. The identity tv = ctfde - ctfie - ctfse holds
for these plug-in estimates exactly. Because |.| of a minibatch estimate is biased upwards
by its noise, use minibatches of a few hundred rows or more.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from fairjax.causal.decompose import check_key, decompose
from fairjax.causal.estimators import MEASURES
from fairjax.causal.inputs import (
    check_roles,
    encode_features,
    fit_feature_encoder,
    outcome_values,
    protected_indicator,
)
from fairjax.causal.nuisance import fit_predict_all, make_regressor
from fairjax.causal.training import TrainResult, make_trainer
from fairjax.classifiers import Params, init_mlp, logits_fn
from fairjax.data import TabularEncoder
from fairjax.errors import FairjaxError


class FairPredictor(NamedTuple):
    """A fitted causally fair predictor and what is needed to apply it to a frame.

    Attributes:
      params: MLP layers `[(W [d_in, d_out], b [d_out]), ...]` on inputs [t, z, w] with
        t = 1(X = x1) (`fairjax.classifiers.logits_fn` gives the logit).
      encoder: encoder of the Z and W columns (None when both are empty).
      X, Z, W: column names of the protected attribute, confounders and mediators.
      x0, x1: the two values of X.
      eta: the target of each penalised effect (0, or the real outcome's effect for
        business-necessity effects).
      history: the training run (losses per epoch, best epoch).
    """

    params: Params
    encoder: TabularEncoder | None
    X: str
    Z: tuple[str, ...]
    W: tuple[str, ...]
    x0: Any
    x1: Any
    eta: dict[str, float]
    history: TrainResult


def plugin_effects(
    f0: jax.Array, f1: jax.Array, t: jax.Array, odds: jax.Array, mask: jax.Array
) -> dict[str, jax.Array]:
    """Plug-in x-specific effects of a predictor f (see the module docstring).

    Args:
      f0: [b] f(x0, Z, W) of each unit.
      f1: [b] f(x1, Z, W) of each unit.
      t: [b] 1.0 where X = x1, else 0.0.
      odds: [b] (1 - pi(Z)) / pi(Z) with pi(Z) = P(X = x1 | Z), clipped.
      mask: [b] 1.0 for rows to use, 0.0 for padding.

    Returns:
      {"tv", "ctfde", "ctfie", "ctfse", "ett"} -> [] estimates; an empty group gives 0 for
      its means (guarded divisions) rather than NaN.
    """
    m0, m1 = mask * (1.0 - t), mask * t
    mean = lambda v, wt: jnp.sum(wt * v) / jnp.maximum(jnp.sum(wt), 1e-12)
    e_y0, e_y1 = mean(f0, m0), mean(f1, m1)
    e_de = mean(f1, m0)  # E[f_{x1, W_x0} | x0]
    e_te = mean(f1, m1 * odds)  # E[f_{x1} | x0]
    return {
        "tv": e_y1 - e_y0,
        "ctfde": e_de - e_y0,
        "ctfie": e_de - e_te,
        "ctfse": e_te - e_y1,
        "ett": e_te - e_y0,
    }


def _with_t(t: jax.Array, zw: jax.Array) -> jax.Array:
    """Inputs [t, z, w]: t [b], zw [b, d] -> [b, 1 + d]."""
    return jnp.concatenate([t[:, None], zw], axis=1)


class FairPenalty(NamedTuple):
    """Penalty of the fair loss, as arrays (so changing it does not recompile training).

    Attributes:
      lam: [] penalty weight.
      eta: [5] target of each effect, in the order of `MEASURES`.
      active: [5] 1.0 for the penalised effects, else 0.0.
    """

    lam: jax.Array
    eta: jax.Array
    active: jax.Array


def make_penalty(lam: float, eta: Mapping[str, float]) -> FairPenalty:
    """`FairPenalty` penalising the effects named in `eta` towards their values."""
    return FairPenalty(
        jnp.asarray(lam, jnp.float32),
        jnp.asarray([eta.get(m, 0.0) for m in MEASURES], jnp.float32),
        jnp.asarray([float(m in eta) for m in MEASURES], jnp.float32),
    )


def fair_loss(params: Params, batch, penalty: FairPenalty) -> jax.Array:
    """Mean BCE of f(X, Z, W) plus lam * sum_e |e(f) - eta_e| on one minibatch.

    Args:
      params: MLP layers on inputs [t, z, w].
      batch: (t [b], zw [b, d], y [b] in [0, 1], odds [b]) with odds = (1 - pi(Z)) / pi(Z).
      penalty: which effects to penalise, towards what, how strongly.

    Returns:
      [] loss; the effects are the `plugin_effects` of the minibatch.
    """
    t, zw, y, odds = batch
    l0 = logits_fn(params, _with_t(jnp.zeros_like(t), zw))
    l1 = logits_fn(params, _with_t(jnp.ones_like(t), zw))
    bce = jnp.mean(optax.sigmoid_binary_cross_entropy(jnp.where(t > 0.5, l1, l0), y))
    eff = plugin_effects(jax.nn.sigmoid(l0), jax.nn.sigmoid(l1), t, odds, jnp.ones_like(t))
    values = jnp.stack([eff[m] for m in MEASURES])
    return bce + penalty.lam * jnp.sum(penalty.active * jnp.abs(values - penalty.eta))


@functools.lru_cache(maxsize=8)
def _trainer(lr: float, batch_size: int, max_epochs: int, patience: int):
    # Cached per configuration: fits with different lam / eta reuse one compilation.
    return make_trainer(
        fair_loss, lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience
    )


def _check_effects(effects: Any, business_necessity: Any) -> tuple[tuple, tuple]:
    def as_tuple(arg, v):
        if isinstance(v, str):
            raise FairjaxError(f"{arg} must be a list of effect names; got the string {v!r}.")
        v = tuple(v)
        bad = [e for e in v if e not in MEASURES]
        if bad:
            raise FairjaxError(f"{arg}: unknown effect(s) {bad}; choose from {list(MEASURES)}.")
        return v

    effects = as_tuple("effects", effects)
    bn = as_tuple("business_necessity", business_necessity)
    extra = [e for e in bn if e not in effects]
    if extra:
        raise FairjaxError(
            f"business_necessity effect(s) {extra} must also be listed in effects {list(effects)} "
            "(a business-necessity effect is constrained to its value on the real outcome)."
        )
    return effects, bn


def fit_fair_predictor(
    key: jax.Array,
    frame: pd.DataFrame,
    *,
    X: str,
    Z: Sequence[str],
    W: Sequence[str],
    Y: str,
    x0: Any,
    x1: Any,
    lam: float = 1.0,
    effects: Sequence[str] = ("ctfde", "ctfie", "ctfse"),
    business_necessity: Sequence[str] = (),
    hidden: Sequence[int] = (32, 32),
    lr: float = 1e-3,
    batch_size: int = 512,
    max_epochs: int = 100,
    patience: int = 10,
    val_fraction: float = 0.2,
    clip: float = 0.01,
    categorical: Sequence[str] = (),
) -> FairPredictor:
    """Train an MLP f(x, z, w) ~ P(Y = 1) whose causal effects of X are penalised.

    Args:
      key: JAX PRNG key (initialisation, split, minibatches, business-necessity targets).
      frame: training rows with the X, Z, W and Y columns.
      X, Z, W, Y, x0, x1: roles as in `decompose`; Y must be 0/1 (or probabilities in
        [0, 1], used as soft targets).
      lam: penalty weight >= 0 (0 trains an unconstrained MLP).
      effects: effects to penalise, from tv, ctfde, ctfie, ctfse, ett.
      business_necessity: effects among `effects` to hold at their value on the real
        outcome (estimated by `decompose` with logistic nuisances) instead of 0.
      hidden: hidden layer widths of the MLP.
      lr, batch_size, max_epochs, patience: Adam and early stopping (on the validation
        loss, penalty included).
      val_fraction: fraction of rows held out for early stopping, in (0, 1).
      clip: the propensity P(x1 | Z) is clipped to [clip, 1 - clip].
      categorical: numeric Z/W columns to one-hot encode anyway.

    Returns:
      `FairPredictor`; apply it with `predict_fair`.

    References:
      Plečko & Bareinboim, arXiv 2207.11385, Sec. 6 (fair prediction with business
      necessity).
    """
    key = check_key(key)
    effects, bn = _check_effects(effects, business_necessity)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise FairjaxError(f"lam must be a non-negative number, got {lam!r}.")
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise FairjaxError(f"val_fraction must lie in (0, 1), got {val_fraction!r}.")
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 <= clip < 0.5:
        raise FairjaxError(f"clip must be a number in [0, 0.5), got {clip!r}.")
    for name, v in (("batch_size", batch_size), ("max_epochs", max_epochs), ("patience", patience)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise FairjaxError(f"{name} must be a positive integer, got {v!r}.")
    if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
        raise FairjaxError(f"hidden must list positive integer widths, got {hidden!r}.")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise FairjaxError(f"lr must be a positive number, got {lr!r}.")
    Z, W = check_roles(frame, X=X, Z=Z, W=W, Y=Y)
    t = protected_indicator(frame, X, x0, x1)
    y, kind = outcome_values(frame, Y)
    if kind == "real":
        raise FairjaxError(f"Y={Y!r} must hold 0/1 labels or probabilities in [0, 1].")
    encoder = fit_feature_encoder(frame, [*Z, *W], categorical)
    z, w = encode_features(encoder, frame, Z, W)
    zw = np.concatenate([z, w], axis=1)

    init_key, split_key, train_key, prop_key, bn_key = jax.random.split(key, 5)
    pi = fit_predict_all(prop_key, make_regressor("logistic"), z, t, "binary")
    pi = np.clip(pi, clip, 1 - clip)
    odds = ((1 - pi) / pi).astype(np.float32)

    eta = dict.fromkeys(effects, 0.0)
    if bn:
        table = decompose(frame, X=X, Z=Z, W=W, Y=Y, x0=x0, x1=x1, key=bn_key)
        values = dict(zip(table["measure"], table["value"], strict=True))
        eta.update({e: float(values[e]) for e in bn})

    u = np.asarray(jax.random.uniform(split_key, (len(t),)))
    order = np.argsort(u, kind="stable")
    n_val = max(1, round(val_fraction * len(t)))
    val, tr = order[:n_val], order[n_val:]
    data = tuple(jnp.asarray(a) for a in (t, zw, y, odds))
    train = _trainer(float(lr), int(batch_size), int(max_epochs), int(patience))
    params = init_mlp(init_key, (1 + zw.shape[1], *hidden, 1))
    result = train(
        train_key,
        params,
        jax.tree.map(lambda a: a[tr], data),
        jax.tree.map(lambda a: a[val], data),
        make_penalty(float(lam), eta),
    )
    return FairPredictor(result.params, encoder, X, Z, W, x0, x1, eta, result)


def predict_fair(predictor: FairPredictor, frame: pd.DataFrame, *, x: Any = None) -> np.ndarray:
    """P(Y = 1) of the fair predictor for each row of `frame`.

    Args:
      predictor: output of `fit_fair_predictor`.
      frame: rows with the X, Z and W columns (X may be omitted when `x` is given).
      x: evaluate every row at X = x (x0 or x1) instead of its own X (counterfactual
        predictions).

    Returns:
      [n] float64 probabilities.
    """
    p = predictor
    if x is None:
        missing = [c for c in (p.X, *p.Z, *p.W) if c not in frame.columns]
        if missing:
            raise FairjaxError(f"column(s) {missing} not found in frame.")
        t = protected_indicator(frame, p.X, p.x0, p.x1)
    else:
        if x not in (p.x0, p.x1):
            raise FairjaxError(f"x must be x0={p.x0!r} or x1={p.x1!r}, got {x!r}.")
        t = np.full(len(frame), float(x == p.x1), np.float32)
    z, w = encode_features(p.encoder, frame, p.Z, p.W)
    inputs = _with_t(jnp.asarray(t), jnp.asarray(np.concatenate([z, w], axis=1)))
    return np.asarray(jax.nn.sigmoid(logits_fn(p.params, inputs)), np.float64)
