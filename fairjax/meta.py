"""Meta-learning across domains (MLDG / MAML) as pure functions.

FADM pre-trains its score model and classifiers so they generalise to unseen domains: each meta
step holds out some source domains (meta-test, ``B_out``), adapts the parameters on the others
(meta-train, ``B_in``) with an inner gradient step, and minimises

    L(B_in, theta) + beta * L(B_out, theta'),   theta' = theta - alpha grad L(B_in, theta).

Every loss here is ``loss_fn(params, batch, key) -> []`` (the key may be ignored), e.g.
:func:`fairjax.sde.make_dsm_loss` or :func:`fairjax.sde.make_noisy_classifier_loss`.

References:
    Li et al., "Learning to Generalize: Meta-Learning for Domain Generalization" (MLDG),
    arXiv:1710.03463, Algorithm 1.
    Finn et al., "Model-Agnostic Meta-Learning" (MAML; first-order FOMAML), arXiv:1703.03400.
    Lin et al., arXiv:2406.09495 (FADM/FADE), Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array
from jax.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = [
    "MetaState",
    "init_meta_state",
    "inner_update",
    "make_meta_step",
    "mldg_loss",
    "split_domains",
]

LossFn = Callable[[Any, Any, Array], Array]  # (params, batch, key) -> []


class MetaState(NamedTuple):
    """State of the outer (meta) optimisation.

    Attributes:
        step: ``int32[]`` number of meta steps taken.
        params: model parameters (any pytree).
        opt_state: state of the optax optimizer of :func:`make_meta_step`.
    """

    step: Array
    params: Any
    opt_state: optax.OptState


def inner_update(
    params: Any,
    batch: Any,
    key: Array,
    *,
    loss_fn: LossFn,
    inner_lr: ArrayLike,
    num_steps: int = 1,
    first_order: bool = False,
) -> Any:
    """``num_steps`` of plain gradient descent ``theta <- theta - inner_lr grad L(batch, theta)``.

    The loop is a ``lax.scan``; it stays differentiable in ``params`` (second-order MAML)
    unless ``first_order``, which stops the gradient through each inner gradient (FOMAML), so
    that ``d theta' / d theta = I``.

    Args:
        params: parameter pytree ``theta``.
        batch: the batch ``loss_fn`` takes (the meta-train batch ``B_in``).
        key: PRNG key; step ``i`` calls ``loss_fn`` with ``fold_in(key, i)`` (step 0 with ``key``
            itself, so a one-step update differentiates the very loss :func:`mldg_loss` reports).
        loss_fn: ``(params, batch, key) -> []``.
        inner_lr: inner learning rate ``alpha``.
        num_steps: number of inner steps.
        first_order: drop second-order terms.

    Returns:
        The adapted parameters ``theta'``, same structure as ``params``.

    References:
        arXiv:1710.03463 Algorithm 1 (line 5); arXiv:1703.03400.
    """
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise FairjaxError(f"num_steps must be a positive int, got {num_steps!r}.")
    grad_fn = jax.grad(loss_fn)

    later_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(1, num_steps))
    step_keys = jnp.concatenate([key[None], later_keys])

    def body(p, step_key):
        g = grad_fn(p, batch, step_key)
        if first_order:
            g = jax.lax.stop_gradient(g)
        return jax.tree.map(lambda w, gw: w - inner_lr * gw, p, g), None

    return jax.lax.scan(body, params, step_keys)[0]


def mldg_loss(
    params: Any,
    batch_in: Any,
    batch_out: Any,
    key: Array,
    *,
    loss_fn: LossFn,
    inner_lr: ArrayLike,
    beta: ArrayLike,
    first_order: bool = False,
    num_inner_steps: int = 1,
) -> tuple[Array, dict[str, Array]]:
    """The MLDG objective ``L(B_in, theta) + beta * L(B_out, theta')``.

    ``theta' = inner_update(theta, B_in)``; differentiate this function in ``params`` for the
    meta-gradient (second order through ``theta'`` unless ``first_order``).

    Args:
        params: parameter pytree ``theta``.
        batch_in: meta-train batch ``B_in``.
        batch_out: meta-test batch ``B_out`` (held-out domains).
        key: PRNG key; the meta-train loss and the inner step share one stream (MLDG takes the
            gradient of the very loss it reports), the meta-test loss gets another.
        loss_fn: ``(params, batch, key) -> []``.
        inner_lr: inner learning rate ``alpha``.
        beta: weight of the meta-test loss.
        first_order: FOMAML-style, ``stop_gradient`` on the inner gradient.
        num_inner_steps: inner gradient steps.

    Returns:
        ``(loss, aux)`` with ``aux = {"loss_in": L(B_in, theta), "loss_out": L(B_out, theta')}``.

    References:
        arXiv:1710.03463 Algorithm 1 (eq. 3); arXiv:2406.09495 Algorithm 1.
    """
    in_key, out_key = jax.random.split(key)
    loss_in = loss_fn(params, batch_in, in_key)
    adapted = inner_update(
        params,
        batch_in,
        in_key,
        loss_fn=loss_fn,
        inner_lr=inner_lr,
        num_steps=num_inner_steps,
        first_order=first_order,
    )
    loss_out = loss_fn(adapted, batch_out, out_key)
    return loss_in + beta * loss_out, {"loss_in": loss_in, "loss_out": loss_out}


def _global_norm(tree: Any) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def init_meta_state(params: Any, optimizer: optax.GradientTransformation) -> MetaState:
    """Fresh :class:`MetaState` at step 0 for ``params`` and the optimizer of the meta step."""
    return MetaState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


def make_meta_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    inner_lr: ArrayLike,
    beta: ArrayLike,
    first_order: bool = False,
    num_inner_steps: int = 1,
) -> Callable[[MetaState, Any, Any, Array], tuple[MetaState, dict[str, Array]]]:
    """Build a pure MLDG meta step; jit it at the call site.

    Args:
        loss_fn: ``(params, batch, key) -> []``.
        optimizer: optax transformation applied to the meta-gradient (outer learning rate).
        inner_lr: inner learning rate ``alpha``.
        beta: weight of the meta-test loss.
        first_order: drop second-order terms of the meta-gradient.
        num_inner_steps: inner gradient steps.

    Returns:
        ``step(state, batch_in, batch_out, key) -> (state, metrics)``; ``metrics`` holds
        ``loss`` (the MLDG objective), ``loss_in``, ``loss_out`` and ``grad_norm``.

    References:
        arXiv:1710.03463 Algorithm 1; arXiv:2406.09495 Algorithm 1.
    """
    value_and_grad = jax.value_and_grad(mldg_loss, has_aux=True)

    def step(state: MetaState, batch_in: Any, batch_out: Any, key: Array):
        (loss, aux), grads = value_and_grad(
            state.params,
            batch_in,
            batch_out,
            key,
            loss_fn=loss_fn,
            inner_lr=inner_lr,
            beta=beta,
            first_order=first_order,
            num_inner_steps=num_inner_steps,
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **aux, "grad_norm": _global_norm(grads)}
        return MetaState(state.step + 1, params, opt_state), metrics

    return step


def split_domains(key: Array, domain_batches: Any, *, num_held_out: int = 1) -> tuple[Any, Any]:
    """Draw held-out domains at random and build the meta-train / meta-test batches.

    A random permutation of the ``D`` domains puts its first ``num_held_out`` into ``B_out``
    and the rest into ``B_in``; the domain and batch axes are then merged. Only ``jnp.take``
    with traced indices is used, so shapes are static and this jits.

    Args:
        key: PRNG key choosing the held-out domains.
        domain_batches: pytree whose leaves are ``[D, B, ...]`` (one batch per domain).
        num_held_out: number of meta-test domains, ``1 <= num_held_out < D``.

    Returns:
        ``(batch_in, batch_out)`` with leaves ``[(D - num_held_out) * B, ...]`` and
        ``[num_held_out * B, ...]``.

    References:
        arXiv:1710.03463 Algorithm 1 (line 3: split source domains into meta-train/meta-test).
    """
    leaves = jax.tree.leaves(domain_batches)
    if not leaves:
        raise FairjaxError("domain_batches has no arrays; expected leaves shaped [D, B, ...].")
    num_domains = leaves[0].shape[0]
    if any(leaf.ndim < 2 or leaf.shape[0] != num_domains for leaf in leaves):
        shapes = [leaf.shape for leaf in leaves]
        raise FairjaxError(
            f"every leaf of domain_batches must be [D, B, ...] with the same D, got {shapes}."
        )
    if not (isinstance(num_held_out, int) and 1 <= num_held_out < num_domains):
        raise FairjaxError(
            f"num_held_out must be an int in [1, D - 1] = [1, {num_domains - 1}], "
            f"got {num_held_out!r}."
        )
    order = jax.random.permutation(key, num_domains)

    def gather(indices):
        def take(leaf):
            picked = jnp.take(leaf, indices, axis=0)
            return picked.reshape((-1, *leaf.shape[2:]))

        return jax.tree.map(take, domain_batches)

    return gather(order[num_held_out:]), gather(order[:num_held_out])
