"""Classifier guidance as score_fn -> score_fn transformers.

Every score function handed to :mod:`fairjax.sampling` has the per-example signature
``score_fn(x[d], t[], cond) -> [d]``, where ``cond`` is that row's conditioning pytree (a label,
a dict of labels, or ``None``). A guided score keeps exactly this signature, so samplers never
change and guides compose by nesting:

    score = lambda x, t, cond: model_score(params, x, t)     # unconditional model, cond ignored
    score = label_guided(score, y_logits_fn, 2.0)           # cond is the requested label y
    score = entropy_guided(score, z_logits_fn, 1.0)         # cond passed through untouched
    x0 = make_em_sampler(sde, score)(key, x_T, y_requested)  # y_requested: int[n], one per row

**Per-row labels.** The samplers ``vmap`` ``cond`` along with ``x``: row ``i`` is generated with
``cond[i]`` (every leaf of the ``cond`` pytree has a leading axis ``n``). A label guide reads its
label out of the row's ``cond`` with ``label_fn`` (default: ``cond`` *is* the integer label), so
one ``cond`` dict such as ``{"y": y, "z": z}`` can drive several guides. Classifiers are
``logits_fn(x[d], t[]) -> [C]`` with their params closed over; the guidance scales are closed over
too (a Python float or a traced scalar both work).

References:
    Lin et al., arXiv:2406.09495 (FADM/FADE), eq. 11: the guided reverse SDE
    ``dx = [f - g^2 (s + lambda_y grad log p_t(y|x) + lambda_z grad H(p_t(z|x)))] dt + g dw``.
    Dhariwal & Nichol, arXiv:2105.05233 (classifier guidance); Song et al., arXiv:2011.13456
    Section 5 (controllable generation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = [
    "SENSITIVE_GUIDES",
    "classifier_free_guided",
    "entropy",
    "entropy_guided",
    "fair_guided",
    "guided",
    "label_guided",
    "label_log_prob",
    "sensitive_entropy",
    "sensitive_guided",
    "sensitive_uniform_log_prob",
    "time_window",
    "uniform_guided",
]

ScoreFn = Callable[[Array, Array, Any], Array]  # (x[d], t[], cond) -> [d]
LogitsFn = Callable[[Array, Array], Array]  # (x[d], t[]) -> [C]
GuideFn = Callable[[Array, Array, Any], Array]  # (x[d], t[], cond) -> []


def _identity(cond: Any) -> Any:
    return cond


def entropy(logits: Array) -> Array:
    """Shannon entropy ``H = -sum_c p_c log p_c`` (nats) of ``softmax(logits)``.

    Args:
        logits: ``[C]`` unnormalised log-probabilities.

    Returns:
        ``[]``, in ``[0, log C]``.
    """
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p)


def label_log_prob(
    logits_fn: LogitsFn, *, label_fn: Callable[[Any], ArrayLike] = _identity
) -> GuideFn:
    """``(x, t, cond) -> log p_t(y | x)`` with ``y = label_fn(cond)``.

    Args:
        logits_fn: time-conditioned classifier ``(x[d], t[]) -> [C]``.
        label_fn: picks the row's integer label out of its ``cond`` (default: ``cond`` itself).

    Returns:
        A per-example guide function returning a scalar.
    """

    def log_prob(x, t, cond):
        return jax.nn.log_softmax(logits_fn(x, t))[label_fn(cond)]

    return log_prob


def sensitive_entropy(logits_fn: LogitsFn) -> GuideFn:
    """``(x, t, cond) -> H(p_t(z | x))``; ``cond`` is ignored.

    Args:
        logits_fn: time-conditioned classifier of the sensitive attribute ``(x[d], t[]) -> [C]``.

    Returns:
        A per-example guide function returning a scalar (nats).
    """
    return lambda x, t, cond: entropy(logits_fn(x, t))


def sensitive_uniform_log_prob(logits_fn: LogitsFn) -> GuideFn:
    """``(x, t, cond) -> mean_c log p_t(c | x) = -KL(U || p_t(. | x)) - log C``; ``cond`` ignored.

    The log-likelihood of the uniform distribution ``U`` over the ``C`` sensitive values under
    the classifier: maximal (``-log C``) exactly where the classifier cannot tell the values
    apart, like the entropy. Unlike the entropy its gradient does not vanish where the
    classifier is confident: for binary ``z`` with logit ``l = l_1 - l_0``,
    ``d/dl = 1/2 - sigmoid(l)`` tends to ``-+1/2`` as ``l -> +-inf``, whereas
    ``dH/dl = -l sigmoid(l) (1 - sigmoid(l))`` tends to 0. So the rows that carry the most
    sensitive information are pushed hardest rather than least.

    Args:
        logits_fn: time-conditioned classifier of the sensitive attribute ``(x[d], t[]) -> [C]``.

    Returns:
        A per-example guide function returning a scalar (nats).
    """
    return lambda x, t, cond: jnp.mean(jax.nn.log_softmax(logits_fn(x, t)))


# Sensitive-attribute guides by name: logits_fn -> guide_fn, all maximal where p_t(z | x) is
# uniform. "entropy" is FADM's (arXiv 2406.09495 eq. 11).
SENSITIVE_GUIDES: dict[str, Callable[[LogitsFn], GuideFn]] = {
    "entropy": sensitive_entropy,
    "uniform": sensitive_uniform_log_prob,
}


def time_window(guide_fn: GuideFn, t_max: ArrayLike) -> GuideFn:
    """``guide_fn`` where ``t <= t_max``, 0 (so no gradient) at noisier times.

    At large ``t`` the noised rows carry little of ``z`` and a time-conditioned classifier is
    least reliable; guiding only the last part of the reverse process (``t <= t_max``) keeps
    its push where the sensitive information is decided. ``t_max >= T`` is the identity.

    Args:
        guide_fn: scalar ``(x[d], t[], cond) -> []``.
        t_max: last (largest) time at which the guide acts.

    Returns:
        A guide function with the same signature.
    """
    return lambda x, t, cond: jnp.where(t <= t_max, guide_fn(x, t, cond), 0.0)


def guided(score_fn: ScoreFn, guide_fn: GuideFn, scale: ArrayLike) -> ScoreFn:
    """``s(x, t, cond) + scale * grad_x guide_fn(x, t, cond)``; same signature as ``score_fn``.

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        guide_fn: scalar ``(x[d], t[], cond) -> []`` whose ``x``-gradient is added, e.g. a
            log-probability (classifier guidance) or an entropy.
        scale: guidance weight; ``0`` gives back ``score_fn``'s values exactly.

    Returns:
        The guided ``score_fn``.
    """
    grad_guide = jax.grad(guide_fn)

    def guided_score(x, t, cond):
        return score_fn(x, t, cond) + scale * grad_guide(x, t, cond)

    return guided_score


def label_guided(
    score_fn: ScoreFn,
    logits_fn: LogitsFn,
    scale: ArrayLike,
    *,
    label_fn: Callable[[Any], ArrayLike] = _identity,
) -> ScoreFn:
    """Label (classifier) guidance ``s + scale * grad_x log p_t(y | x)``, ``y = label_fn(cond)``.

    With the exact scores and ``scale = 1`` this is the exact conditional score
    ``grad log p_t(x | y)``; larger scales sharpen the class.

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        logits_fn: time-conditioned label classifier ``(x[d], t[]) -> [C]``.
        scale: ``lambda_y`` of FADM eq. 11.
        label_fn: picks the row's requested label from ``cond`` (default: ``cond`` itself).

    Returns:
        The guided ``score_fn``.

    References:
        arXiv:2406.09495 eq. 11 (label term); arXiv:2105.05233.
    """
    return guided(score_fn, label_log_prob(logits_fn, label_fn=label_fn), scale)


def entropy_guided(score_fn: ScoreFn, logits_fn: LogitsFn, scale: ArrayLike) -> ScoreFn:
    """Sensitive-entropy guidance ``s + scale * grad_x H(p_t(z | x))``.

    Climbing the entropy of the sensitive classifier moves samples to where ``z`` cannot be
    told apart, removing sensitive information from the generated rows.

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        logits_fn: time-conditioned sensitive-attribute classifier ``(x[d], t[]) -> [C]``.
        scale: ``lambda_z`` of FADM eq. 11.

    Returns:
        The guided ``score_fn``; ``cond`` is passed through to ``score_fn`` unchanged.

    References:
        arXiv:2406.09495 eq. 11 (entropy term).
    """
    return guided(score_fn, sensitive_entropy(logits_fn), scale)


def uniform_guided(score_fn: ScoreFn, logits_fn: LogitsFn, scale: ArrayLike) -> ScoreFn:
    """Uniform-target guidance ``s + scale * grad_x mean_c log p_t(c | x)``.

    See :func:`sensitive_uniform_log_prob` for why its push does not vanish on the rows where
    the sensitive classifier is confident, unlike :func:`entropy_guided`.

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        logits_fn: time-conditioned sensitive-attribute classifier ``(x[d], t[]) -> [C]``.
        scale: guidance weight.

    Returns:
        The guided ``score_fn``; ``cond`` is passed through to ``score_fn`` unchanged.
    """
    return guided(score_fn, sensitive_uniform_log_prob(logits_fn), scale)


def fair_guided(
    score_fn: ScoreFn,
    *,
    label_logits_fn: LogitsFn,
    sensitive_logits_fn: LogitsFn,
    label_scale: ArrayLike,
    sensitive_scale: ArrayLike,
    label_fn: Callable[[Any], ArrayLike] = _identity,
    sensitive_guide: str = "entropy",
    sensitive_t_max: ArrayLike = jnp.inf,
) -> ScoreFn:
    """The FADM guided score ``s + lambda_y grad log p_t(y|x) + lambda_z grad G(p_t(z|x))``.

    With ``G`` the entropy this is FADM eq. 11; plugging it into any sampler gives the guided
    reverse SDE (or its probability-flow ODE).

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        label_logits_fn: ``(x[d], t[]) -> [C_y]``, classifier of the label ``y``.
        sensitive_logits_fn: ``(x[d], t[]) -> [C_z]``, classifier of the sensitive ``z``.
        label_scale: ``lambda_y``.
        sensitive_scale: ``lambda_z``.
        label_fn: picks the row's requested label from ``cond`` (default: ``cond`` itself).
        sensitive_guide: ``G``, a key of :data:`SENSITIVE_GUIDES`: ``"entropy"`` (the
            paper's) or ``"uniform"`` (:func:`sensitive_uniform_log_prob`).
        sensitive_t_max: the sensitive guide acts only at ``t <= sensitive_t_max``
            (:func:`time_window`; default: at every time).

    Returns:
        The guided ``score_fn``.

    References:
        arXiv:2406.09495 eq. 11.
    """
    score_fn = label_guided(score_fn, label_logits_fn, label_scale, label_fn=label_fn)
    return sensitive_guided(
        score_fn, sensitive_logits_fn, sensitive_scale, guide=sensitive_guide, t_max=sensitive_t_max
    )


def sensitive_guided(
    score_fn: ScoreFn,
    logits_fn: LogitsFn,
    scale: ArrayLike,
    *,
    guide: str = "entropy",
    t_max: ArrayLike = jnp.inf,
) -> ScoreFn:
    """``s + scale * grad_x G(p_t(z | x))`` at ``t <= t_max`` (``s`` elsewhere): the
    sensitive term of FADM eq. 11 with the guide ``G`` of :data:`SENSITIVE_GUIDES`.

    Args:
        score_fn: ``(x[d], t[], cond) -> [d]``.
        logits_fn: ``(x[d], t[]) -> [C_z]``, classifier of the sensitive ``z``.
        scale: ``lambda_z``.
        guide: ``"entropy"`` (the paper's) or ``"uniform"``.
        t_max: last time at which the guide acts (:func:`time_window`).

    Returns:
        The guided ``score_fn``; ``cond`` is passed through to ``score_fn`` unchanged.
    """
    if guide not in SENSITIVE_GUIDES:
        raise FairjaxError(
            f"sensitive_guide must be one of {sorted(SENSITIVE_GUIDES)}; got {guide!r}"
        )
    return guided(score_fn, time_window(SENSITIVE_GUIDES[guide](logits_fn), t_max), scale)


def classifier_free_guided(
    score_fn: ScoreFn,
    scale: ArrayLike,
    *,
    null_cond: Any,
    label_fn: Callable[[Any], ArrayLike] = _identity,
) -> ScoreFn:
    """Classifier-free label guidance ``s(x, t, null) + scale * (s(x, t, y) - s(x, t, null))``.

    ``score_fn`` is a label-conditioned score (trained with label dropout,
    :func:`fairjax.sde.make_label_dsm_loss`) that reads the label as its ``cond``. Since
    ``s(x, t, y) - s(x, t, null)`` estimates ``grad log p_t(y | x)``, this is label guidance
    with an implicit classifier: ``scale = 1`` gives the conditional score ``grad log
    p_t(x | y)`` exactly, ``0`` the unconditional one, larger scales sharpen the class.

    Args:
        score_fn: ``(x[d], t[], label) -> [d]``.
        scale: guidance weight (``lambda_y``).
        null_cond: the label that means "no label".
        label_fn: picks the row's requested label from ``cond`` (default: ``cond`` itself).

    Returns:
        ``(x[d], t[], cond) -> [d]``.

    References:
        Ho & Salimans, arXiv:2207.12598 eq. 6.
    """

    def guided_score(x, t, cond):
        unconditional = score_fn(x, t, null_cond)
        return unconditional + scale * (score_fn(x, t, label_fn(cond)) - unconditional)

    return guided_score
