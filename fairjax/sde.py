"""Forward-time SDEs and the losses that train against them, as pure per-example functions.

A forward SDE ``dx = f(x, t) dt + g(t) dw`` on ``t in [0, T]`` is an :class:`SDE` record of
functions written for one example ``x[d]`` and a scalar time ``t[]``; batch code ``vmap``s them.
The two factories here are the variance-preserving (VP) SDE and the sub-VP SDE of Song et al.
(2021), both with the Gaussian prior ``N(0, I)`` at ``t = T = 1``.

Losses are factories in the style of score_sde's ``get_sde_loss_fn``: they close over the SDE and a
model callable and return ``loss_fn(params, batch, key) -> scalar`` ready for ``jax.grad``.

References:
    Song et al., "Score-Based Generative Modeling through Stochastic Differential Equations",
    arXiv:2011.13456 (eqs. 7, 11, 29 and Appendix B).
    Lin et al., "FADE/FADM: fairness-aware classifier-guided score-based diffusion models",
    arXiv:2406.09495 (eqs. 4-5: denoising score matching with lambda(t) = std^2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = [
    "KINDS",
    "SDE",
    "make_dsm_loss",
    "make_label_dsm_loss",
    "make_noisy_classifier_loss",
    "make_sde",
    "make_subvp_sde",
    "make_vp_sde",
]

KINDS = ("vp", "subvp")  # the names `make_sde` takes


class SDE(NamedTuple):
    """Forward SDE ``dx = f(x, t) dt + g(t) dw`` as pure per-example functions.

    Attributes:
        drift: ``(x[d], t[]) -> f(x, t) [d]``.
        diffusion: ``t[] -> g(t) []``.
        marginal: ``(x0[d], t[]) -> (mean[d], std[])`` of the transition kernel
            ``p_0t(x_t | x_0) = N(mean, std^2 I)``.
        prior_sample: ``(key, shape) -> x_T`` drawn from the prior ``p_T`` (any shape).
        prior_logp: ``x[d] -> log p_T(x) []``.
        T: final time of the forward process.
    """

    drift: Callable[[Array, Array], Array]
    diffusion: Callable[[Array], Array]
    marginal: Callable[[Array, Array], tuple[Array, Array]]
    prior_sample: Callable[[Array, tuple[int, ...]], Array]
    prior_logp: Callable[[Array], Array]
    T: float = 1.0


def _check_betas(beta_min: float, beta_max: float) -> None:
    if not (0.0 < beta_min < beta_max):
        raise FairjaxError(
            f"beta_min and beta_max must satisfy 0 < beta_min < beta_max, got "
            f"beta_min={beta_min!r}, beta_max={beta_max!r} (score_sde uses 0.1 and 20)."
        )


def _standard_normal_prior() -> tuple[Callable, Callable]:
    def prior_sample(key: Array, shape: tuple[int, ...]) -> Array:
        return jax.random.normal(key, shape)

    def prior_logp(x: Array) -> Array:
        d = x.size
        return -0.5 * d * jnp.log(2.0 * jnp.pi) - 0.5 * jnp.sum(x**2)

    return prior_sample, prior_logp


def make_vp_sde(*, beta_min: float = 0.1, beta_max: float = 20.0) -> SDE:
    """The variance-preserving SDE ``dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw``.

    ``beta(t) = beta_min + t (beta_max - beta_min)`` on ``t in [0, 1]``; the transition kernel is
    ``N(x0 exp(-1/2 B(t)), (1 - exp(-B(t))) I)`` with ``B(t) = int_0^t beta``.

    Args:
        beta_min: ``beta(0)`` (score_sde default 0.1).
        beta_max: ``beta(1)`` (score_sde default 20).

    Returns:
        An :class:`SDE` with prior ``N(0, I)`` and ``T = 1``.

    References:
        arXiv:2011.13456, eq. 11 and eq. 29.
    """
    _check_betas(beta_min, beta_max)

    def beta(t):
        return beta_min + t * (beta_max - beta_min)

    def log_mean_coeff(t):  # -1/2 int_0^t beta
        return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min

    def drift(x, t):
        return -0.5 * beta(t) * x

    def diffusion(t):
        return jnp.sqrt(beta(t))

    def marginal(x0, t):
        lmc = log_mean_coeff(t)
        # -expm1 keeps the std accurate at small t, where 1 - exp(2 lmc) cancels.
        return jnp.exp(lmc) * x0, jnp.sqrt(-jnp.expm1(2.0 * lmc))

    prior_sample, prior_logp = _standard_normal_prior()
    return SDE(drift, diffusion, marginal, prior_sample, prior_logp, 1.0)


def make_subvp_sde(*, beta_min: float = 0.1, beta_max: float = 20.0) -> SDE:
    """The sub-VP SDE ``dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 B(t)))) dw``.

    Same drift and mean as the VP SDE; its kernel std is ``1 - exp(-B(t))``, below the VP std at
    every ``t``.

    Args:
        beta_min: ``beta(0)``.
        beta_max: ``beta(1)``.

    Returns:
        An :class:`SDE` with prior ``N(0, I)`` and ``T = 1``.

    References:
        arXiv:2011.13456, Section 3.4 and Appendix B (score_sde ``subVPSDE``).
    """
    _check_betas(beta_min, beta_max)

    def beta(t):
        return beta_min + t * (beta_max - beta_min)

    def log_mean_coeff(t):
        return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min

    def drift(x, t):
        return -0.5 * beta(t) * x

    def diffusion(t):
        return jnp.sqrt(-beta(t) * jnp.expm1(4.0 * log_mean_coeff(t)))

    def marginal(x0, t):
        lmc = log_mean_coeff(t)
        return jnp.exp(lmc) * x0, -jnp.expm1(2.0 * lmc)

    prior_sample, prior_logp = _standard_normal_prior()
    return SDE(drift, diffusion, marginal, prior_sample, prior_logp, 1.0)


def make_sde(kind: str, *, beta_min: float = 0.1, beta_max: float = 20.0) -> SDE:
    """The forward SDE named `kind`: "vp" (`make_vp_sde`) or "subvp" (`make_subvp_sde`).

    Raises:
        FairjaxError: `kind` is not one of `KINDS`, or the betas are invalid.
    """
    if kind not in KINDS:
        raise FairjaxError(f"sde must be one of {KINDS}; got {kind!r}")
    factory = make_vp_sde if kind == "vp" else make_subvp_sde
    return factory(beta_min=beta_min, beta_max=beta_max)


def _check_eps(eps: float, sde: SDE) -> None:
    if not (0.0 < eps < sde.T):
        raise FairjaxError(f"eps must lie in (0, T={sde.T}), got eps={eps!r}.")


def make_dsm_loss(
    sde: SDE,
    score_fn: Callable[[Any, Array, Array], Array],
    *,
    eps: float = 1e-5,
) -> Callable[[Any, Array, Array], Array]:
    """Denoising score-matching loss with the likelihood-style weight ``lambda(t) = std(t)^2``.

    Per example: draw ``t ~ U(eps, T)`` and ``z ~ N(0, I)``, set ``x_t = mean(x0, t) + std(t) z``
    and score ``|| std(t) s(x_t, t) + z ||^2`` (summed over features); the batch loss is the mean
    over examples. With ``lambda(t) = std^2`` this equals
    ``lambda(t) || s(x_t, t) - grad log p_0t(x_t | x0) ||^2`` of FADM eq. 4/5.

    Args:
        sde: the forward SDE.
        score_fn: ``score_fn(params, x[d], t[]) -> [d]``, per example.
        eps: smallest training time (score_sde default 1e-5); avoids the ``t -> 0`` singularity.

    Returns:
        ``loss_fn(params, x0_batch[n, d], key) -> []``.

    References:
        arXiv:2406.09495 eqs. 4-5; arXiv:2011.13456 eq. 7.
    """
    _check_eps(eps, sde)

    def loss_fn(params, x0_batch, key):
        keys = jax.random.split(key, x0_batch.shape[0])
        losses = jax.vmap(
            lambda x0, k: _dsm_term(sde, lambda x, t: score_fn(params, x, t), x0, k, eps)
        )(x0_batch, keys)
        return jnp.mean(losses)

    return loss_fn


def make_label_dsm_loss(
    sde: SDE,
    score_fn: Callable[[Any, Array, Array, Array], Array],
    *,
    null_label: int,
    drop_prob: float,
    eps: float = 1e-5,
) -> Callable[[Any, tuple[Array, ArrayLike], Array], Array]:
    """Denoising score matching of a label-conditioned score ``s(x, t, y)`` with label dropout.

    The loss of :func:`make_dsm_loss` with each example's own label, except that with
    probability ``drop_prob`` an example's label is replaced by ``null_label``: one network
    learns both the conditional score ``grad log p_t(x | y)`` and the unconditional
    ``grad log p_t(x)`` (at ``null_label``), which classifier-free guidance combines
    (:func:`fairjax.guidance.classifier_free_guided`).

    Args:
        sde: the forward SDE.
        score_fn: ``score_fn(params, x[d], t[], label[]) -> [d]``, per example.
        null_label: the label that means "no label".
        drop_prob: probability in [0, 1] of training an example unconditionally.
        eps: smallest training time.

    Returns:
        ``loss_fn(params, (x0_batch[n, d], labels[n] int), key) -> []``.

    References:
        Ho & Salimans, arXiv:2207.12598 (classifier-free guidance, Algorithm 1).
    """
    _check_eps(eps, sde)
    if not 0.0 <= float(drop_prob) <= 1.0:
        raise FairjaxError(f"drop_prob must lie in [0, 1]; got {drop_prob}")

    def single_loss(params, x0, label, key):
        drop_key, key = jax.random.split(key)
        label = jnp.where(jax.random.bernoulli(drop_key, drop_prob), null_label, label)
        return _dsm_term(sde, lambda x, t: score_fn(params, x, t, label), x0, key, eps)

    def loss_fn(params, batch, key):
        x0_batch, labels = batch
        keys = jax.random.split(key, x0_batch.shape[0])
        losses = jax.vmap(single_loss, in_axes=(None, 0, 0, 0))(params, x0_batch, labels, keys)
        return jnp.mean(losses)

    return loss_fn


def _dsm_term(sde: SDE, score_at: Callable, x0: Array, key: Array, eps: float) -> Array:
    """One example's DSM term ``|| std(t) s(x_t, t) + z ||^2``, t ~ U(eps, T), z ~ N(0, I);
    ``score_at(x[d], t[]) -> [d]``."""
    t_key, z_key = jax.random.split(key)
    t = jax.random.uniform(t_key, (), minval=eps, maxval=sde.T)
    z = jax.random.normal(z_key, x0.shape)
    mean, std = sde.marginal(x0, t)
    return jnp.sum((std * score_at(mean + std * z, t) + z) ** 2)


def make_noisy_classifier_loss(
    sde: SDE,
    logits_fn: Callable[[Any, Array, Array], Array],
    *,
    eps: float = 1e-5,
) -> Callable[[Any, tuple[Array, ArrayLike], Array], Array]:
    """Cross-entropy of a time-conditioned classifier on noised inputs ``x_t ~ p_0t(. | x0)``.

    This trains the ``p_t(y | x_t)`` used by classifier guidance: per example draw
    ``t ~ U(eps, T)``, noise ``x0`` with the SDE kernel, and score ``-log softmax(logits)[label]``.

    Args:
        sde: the forward SDE.
        logits_fn: ``logits_fn(params, x[d], t[]) -> [C]``, per example.
        eps: smallest training time.

    Returns:
        ``loss_fn(params, (x0_batch[n, d], labels[n] int), key) -> []``, the mean cross-entropy.

    References:
        arXiv:2406.09495 Section 3.3 (classifiers p_t(y|x), p_t(z|x) on perturbed data);
        arXiv:2011.13456 Appendix I.
    """
    _check_eps(eps, sde)

    def single_loss(params, x0, label, key):
        t_key, z_key = jax.random.split(key)
        t = jax.random.uniform(t_key, (), minval=eps, maxval=sde.T)
        mean, std = sde.marginal(x0, t)
        x_t = mean + std * jax.random.normal(z_key, x0.shape)
        log_probs = jax.nn.log_softmax(logits_fn(params, x_t, t))
        return -log_probs[label]

    def loss_fn(params, batch, key):
        x0_batch, labels = batch
        keys = jax.random.split(key, x0_batch.shape[0])
        losses = jax.vmap(single_loss, in_axes=(None, 0, 0, 0))(
            params, x0_batch, jnp.asarray(labels), keys
        )
        return jnp.mean(losses)

    return loss_fn
