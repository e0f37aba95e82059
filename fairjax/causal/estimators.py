"""One-step (AIPW) estimators of the x-specific causal fairness measures, as pure math.

Standard fairness model (SFM) of Plečko & Bareinboim (arXiv 2207.11385, Def. 4.1): a
binary protected attribute X in {x0, x1}, confounders Z, mediators W, outcome Y, with
Z -> X -> W -> Y and Z -> {W, Y}, and no unobserved confounding apart from X <-> Z. Under
the SFM (their Thm. 4.8 / Eq. 4.20-4.22) the four counterfactual means every x-specific
measure is built from are identified as

  psi_y0  = E[Y | x0]                       = E[Y | X = x0]
  psi_y1  = E[Y | x1]                       = E[Y | X = x1]
  psi_te  = E[Y_{x1} | x0]                  = E[ mu(x1, Z) | X = x0 ]
  psi_de  = E[Y_{x1, W_{x0}} | x0]          = E_{Z|x0} E_{W|x0,Z} [ mu(x1, Z, W) ]
                                            = E[ mu(x1, Z, W) | X = x0 ]

with mu(x, z) = E[Y | x, z] and mu(x, z, w) = E[Y | x, z, w]. The nested mean
nu(z) = E[mu(x1, Z, W) | x0, z] of the general-population natural direct effect cancels here:
integrating W | x0, Z and then Z | x0 is integrating the joint law of (Z, W) | x0. Both
psi_te and psi_de are therefore "effect of treatment on the untreated" functionals with
adjustment set C = Z resp. C = (Z, W), and they share one efficient influence function.

Efficient influence function (EIF) of psi = E[mu(x1, C) | X = x0], with t = 1(X = x1),
p0 = P(X = x0), pi(c) = P(X = x1 | C = c):

  IF(O) = ( A(O) - (1 - t) psi ) / p0,
  A(O)  = t (1 - pi(C)) / pi(C) (Y - mu(x1, C)) + (1 - t) mu(x1, C).

The term -(1 - t) psi / p0 is the contribution of the estimated p0 (the functional is a
ratio E[(1 - t) mu(x1, C)] / E[1 - t]). The one-step estimator solves the estimating
equation mean(IF) = 0: psi_hat = mean(A) / mean(1 - t), with cross-fitted pi and mu plugged
into A (Chernozhukov et al. 2018, arXiv 1608.00060, "DML2"). The plain means have
A = (1 - t) Y (psi_y0) and A = t Y with p1 in place of p0 (psi_y1). Standard errors are
sd(IF) / sqrt(n); since every IF has mean exactly zero at psi_hat, sd = sqrt(mean(IF^2)).

Measures (faircause's x-specific definitions; arXiv 2207.11385 Def. 4.2-4.4):

  tv    = psi_y1 - psi_y0      ctfde = psi_de - psi_y0     ctfie = psi_de - psi_te
  ctfse = psi_te - psi_y1      ett   = psi_te - psi_y0

so tv = ctfde - ctfie - ctfse holds exactly for the estimates (the same four psi_hat enter
both sides; only float rounding separates them), and so does the identity for the influence
functions, hence sd(tv) is consistent with the other rows.

Propensities are clipped to [clip, 1 - clip] before they enter A; the estimator then
targets the functional with clipped weights, which differs from psi only where the true
propensity leaves that range (a positivity problem the caller should hear about: the
pipeline reports how many were clipped).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

MEASURES = ("tv", "ctfde", "ctfie", "ctfse", "ett")
FUNCTIONALS = ("y0", "y1", "te", "de")  # E[Y|x0], E[Y|x1], E[Y_x1|x0], E[Y_{x1,W_x0}|x0]

# CONTRASTS[m] @ (psi_y0, psi_y1, psi_te, psi_de) = measure m.
CONTRASTS = jnp.array(
    [
        [-1.0, 1.0, 0.0, 0.0],  # tv
        [-1.0, 0.0, 0.0, 1.0],  # ctfde
        [0.0, 0.0, -1.0, 1.0],  # ctfie
        [0.0, -1.0, 1.0, 0.0],  # ctfse
        [-1.0, 0.0, 1.0, 0.0],  # ett
    ]
)


class OneStepEstimate(NamedTuple):
    """Point estimates with their influence functions.

    Attributes:
      value: [m] estimates.
      influence: [n, m] estimated influence function of each estimate at each unit
        (mean zero over units); `sd = sqrt(mean(influence**2, 0) / n)`.
    """

    value: jax.Array
    influence: jax.Array

    @property
    def sd(self) -> jax.Array:
        """[m] standard errors sd(IF) / sqrt(n)."""
        n = self.influence.shape[0]
        return jnp.sqrt(jnp.mean(jnp.square(self.influence), axis=0) / n)


def ett_pseudo_outcome(t: ArrayLike, y: ArrayLike, pi: ArrayLike, mu1: ArrayLike) -> jax.Array:
    """Pseudo-outcome A of E[mu(x1, C) | x0] for one unit (see the module docstring).

    Args:
      t: [] 1.0 if X = x1, 0.0 if X = x0.
      y: [] outcome.
      pi: [] P(X = x1 | C) at the unit, already clipped away from 0 and 1.
      mu1: [] E[Y | X = x1, C] at the unit.

    Returns:
      [] A = t (1 - pi) / pi (y - mu1) + (1 - t) mu1; E[A] = P(x0) E[Y_{x1} | x0] when C
      satisfies the back-door criterion for X -> Y.
    """
    return t * (1.0 - pi) / pi * (y - mu1) + (1.0 - t) * mu1


def ratio_estimate(a: jax.Array, denom: jax.Array) -> OneStepEstimate:
    """Solve mean(a - denom * psi) = 0 for psi and return psi with its influence function.

    Args:
      a: [n] pseudo-outcomes with E[a] = psi * E[denom].
      denom: [n] the indicator whose mean estimates the normalising probability.

    Returns:
      `OneStepEstimate` with value [1] and influence [n, 1] = (a - denom psi) / mean(denom).
    """
    p = jnp.mean(denom)
    psi = jnp.mean(a) / p
    return OneStepEstimate(psi[None], ((a - denom * psi) / p)[:, None])


def ctf_functionals(
    t: ArrayLike,
    y: ArrayLike,
    pi_z: ArrayLike,
    pi_zw: ArrayLike,
    mu1_z: ArrayLike,
    mu1_zw: ArrayLike,
) -> OneStepEstimate:
    """One-step estimates of (E[Y|x0], E[Y|x1], E[Y_{x1}|x0], E[Y_{x1,W_{x0}}|x0]).

    Args:
      t: [n] 1.0 where X = x1, 0.0 where X = x0.
      y: [n] outcome (binary or real).
      pi_z: [n] cross-fitted, clipped P(X = x1 | Z).
      pi_zw: [n] cross-fitted, clipped P(X = x1 | Z, W).
      mu1_z: [n] cross-fitted E[Y | X = x1, Z].
      mu1_zw: [n] cross-fitted E[Y | X = x1, Z, W].

    Returns:
      `OneStepEstimate` with value [4] and influence [n, 4], in the order of `FUNCTIONALS`.

    References:
      Plečko & Bareinboim, arXiv 2207.11385, Sec. 4 and App. on estimation; the EIF of the
      ETT functional: Hahn (1998), Econometrica 66(2); cross-fitting: arXiv 1608.00060.
    """
    t, y = jnp.asarray(t), jnp.asarray(y)
    pseudo = jax.vmap(ett_pseudo_outcome)
    parts = [
        ratio_estimate((1.0 - t) * y, 1.0 - t),
        ratio_estimate(t * y, t),
        ratio_estimate(pseudo(t, y, jnp.asarray(pi_z), jnp.asarray(mu1_z)), 1.0 - t),
        ratio_estimate(pseudo(t, y, jnp.asarray(pi_zw), jnp.asarray(mu1_zw)), 1.0 - t),
    ]
    return OneStepEstimate(
        jnp.concatenate([p.value for p in parts]),
        jnp.concatenate([p.influence for p in parts], axis=1),
    )


def ctf_measures(functionals: OneStepEstimate) -> OneStepEstimate:
    """Contrasts of the four functionals: the measures of `MEASURES` with their IFs.

    Args:
      functionals: output of `ctf_functionals` (value [4], influence [n, 4]).

    Returns:
      `OneStepEstimate` with value [5] and influence [n, 5] (tv, ctfde, ctfie, ctfse, ett).
    """
    c = CONTRASTS.astype(functionals.value.dtype)
    return OneStepEstimate(c @ functionals.value, functionals.influence @ c.T)
