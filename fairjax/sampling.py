"""Reverse-time samplers for a forward :class:`~fairjax.sde.SDE` and a score function.

Each factory closes over ``(sde, score_fn, num_steps, ...)`` and returns a pure

    sample(key, x_T[n, d], cond=None) -> x_0[n, d]

written for one row, ``vmap``ped over rows, with the time loop in ``lax.scan``. Nothing is
jitted inside (apply ``jax.jit`` at the call site) and the solvers know nothing of devices;
:func:`sample_from_prior` splits rows over a mesh only when its caller (a pipeline's ``sample``)
passes one from :mod:`fairjax.parallel`.

* ``score_fn(x[d], t[], cond) -> [d]`` is per example. Wrap a trained model as
  ``lambda x, t, cond: model_score(params, x, t)``; guided scores from :mod:`fairjax.guidance`
  already have this form.
* ``x_T`` is the starting point, usually ``sde.prior_sample(key, (n, d))``.
* ``cond`` is a pytree whose leaves have a leading axis ``n`` (or ``None``); row ``i`` is
  sampled with ``cond[i]``, which is how per-row requested labels reach a guided score.
* ``key`` is one PRNG key, split into one key per row with ``jax.random.split(key, n)``, or
  already an array of ``n`` per-row keys. Row ``i`` draws all its noise from its own key, so a
  row's sample does not depend on the batch size, the other rows or the number of devices.

References:
    Song et al., arXiv:2011.13456 (reverse SDE eq. 6, probability-flow ODE eq. 13,
    predictor-corrector Algorithms 2-3; score_sde ``sampling.py``).
    Karras et al., arXiv:2206.00364 (Heun's 2nd-order ODE solver, Algorithm 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import Mesh

from fairjax import parallel
from fairjax.errors import FairjaxError
from fairjax.sde import SDE

__all__ = [
    "SAMPLERS",
    "make_em_sampler",
    "make_ode_sampler",
    "make_pc_sampler",
    "row_keys",
    "sample_from_prior",
]

ScoreFn = Callable[[Array, Array, Any], Array]  # (x[d], t[], cond) -> [d]
SampleFn = Callable[..., Array]  # (key, x_T[n, d], cond=None) -> x_0[n, d]
_RowFn = Callable[[Array, Array, Any], Array]  # (key, x_T[d], cond) -> x_0[d]


def row_keys(key: Array, n: int) -> Array:
    """One PRNG key per row: ``key`` itself if it already holds ``n`` keys, else ``split(key, n)``.

    Args:
        key: a single key (typed ``jax.random.key`` or raw ``uint32[2]``) or ``n`` keys.
        n: number of rows.

    Returns:
        ``n`` keys.
    """
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    single_ndim = 0 if typed else 1
    if key.ndim == single_ndim:
        return jax.random.split(key, n)
    if key.ndim == single_ndim + 1 and key.shape[0] == n:
        return key
    raise FairjaxError(
        f"key must be one PRNG key or {n} per-row keys, got an array of shape {key.shape}."
    )


def _batched(row_fn: _RowFn) -> SampleFn:
    def sample(key: Array, x_T: Array, cond: Any = None) -> Array:
        return jax.vmap(row_fn)(row_keys(key, x_T.shape[0]), x_T, cond)

    return sample


def _check(sde: SDE, num_steps: int, eps: float) -> None:
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise FairjaxError(f"num_steps must be a positive int, got {num_steps!r}.")
    if not (0.0 < eps < sde.T):
        raise FairjaxError(f"eps must lie in (0, T={sde.T}), got eps={eps!r}.")


def _time_grid(sde: SDE, num_steps: int, eps: float) -> tuple[Array, Array]:
    ts = jnp.linspace(sde.T, eps, num_steps + 1)
    return ts[:-1], ts[1:]


def _reverse_step(
    sde: SDE, score_fn: ScoreFn, x: Array, t: Array, t_to: Array, cond: Any, key: Array
) -> tuple[Array, Array]:
    """One Euler-Maruyama step of the reverse-time SDE from ``t`` down to ``t_to``.

    Returns:
        ``(x, x_mean)`` at ``t_to``: the noisy state and its mean before the noise.
    """
    dt = t_to - t  # negative: time runs backwards
    g = sde.diffusion(t)
    x_mean = x + (sde.drift(x, t) - g**2 * score_fn(x, t, cond)) * dt
    return x_mean + g * jnp.sqrt(-dt) * jax.random.normal(key, x.shape), x_mean


def _final_mean(step: Callable, key: Array, x: Array, t_now: Array, t_next: Array) -> Array:
    """Scan ``step((x, x_mean), (t, t_to, key)) -> ((x, x_mean), None)`` over the time grid
    from ``x`` at ``t_now[0]``; returns the last step's mean (no noise on the last step)."""
    keys = jax.random.split(key, t_now.shape[0])
    (_, x_mean), _ = jax.lax.scan(step, (x, x), (t_now, t_next, keys))
    return x_mean


def make_em_sampler(
    sde: SDE, score_fn: ScoreFn, *, num_steps: int = 1000, eps: float = 1e-3
) -> SampleFn:
    """Euler-Maruyama on the reverse-time SDE ``dx = [f - g^2 s] dt + g dw_bar``.

    ``num_steps`` uniform steps from ``t = T`` down to ``t = eps``; the last step returns its mean
    without adding noise, as score_sde does.

    Args:
        sde: the forward SDE.
        score_fn: ``(x[d], t[], cond) -> [d]``, possibly guided.
        num_steps: number of reverse steps ``N``.
        eps: final time (score_sde samples VP/sub-VP to ``1e-3``).

    Returns:
        ``sample(key, x_T[n, d], cond=None) -> x_0[n, d]``.

    References:
        arXiv:2011.13456 eq. 6; arXiv:2406.09495 eq. 11 (with a guided ``score_fn``).
    """
    _check(sde, num_steps, eps)
    t_now, t_next = _time_grid(sde, num_steps, eps)

    def row(key, x, cond):
        def step(carry, inputs):
            t, t_to, k = inputs
            return _reverse_step(sde, score_fn, carry[0], t, t_to, cond, k), None

        return _final_mean(step, key, x, t_now, t_next)

    return _batched(row)


def make_pc_sampler(
    sde: SDE,
    score_fn: ScoreFn,
    *,
    num_steps: int = 1000,
    eps: float = 1e-3,
    snr: float = 0.16,
    num_corrector_steps: int = 1,
) -> SampleFn:
    """Predictor-corrector: Langevin corrector then reverse-diffusion (EM) predictor per step.

    At each time ``t`` the corrector runs ``num_corrector_steps`` Langevin steps
    ``x <- x + e s + sqrt(2 e) z`` towards ``p_t``, then the predictor takes one Euler-Maruyama
    step to the next time; the final predictor mean is returned.

    Step size: score_sde sets ``e = 2 alpha (snr ||z|| / ||s||)^2`` with both norms averaged over
    the batch. Here the norms are replaced by their expectations under the perturbation kernel,
    ``E||z||^2 = d`` and ``E||grad log p_0t||^2 = d / std(t)^2``, giving
    ``e = 2 (snr std(t))^2``. This keeps rows independent (no batch statistics, so results do
    not depend on the batch or the device count), and, unlike per-row norms, it does not depend
    on ``x``: a state-dependent step biases unadjusted Langevin, badly so in the low dimensions
    of tabular data, and a near-zero ``||s||`` makes it blow up. Since
    ``E||grad log p_t||^2 <= d / std(t)^2``, this step is never larger than score_sde's would
    be on average.

    Args:
        sde: the forward SDE.
        score_fn: ``(x[d], t[], cond) -> [d]``.
        num_steps: number of predictor steps.
        eps: final time.
        snr: signal-to-noise ratio of the Langevin step (score_sde uses 0.16 for VP).
        num_corrector_steps: Langevin steps per time.

    Returns:
        ``sample(key, x_T[n, d], cond=None) -> x_0[n, d]``.

    References:
        arXiv:2011.13456 Algorithms 2 and 4 (score_sde ``LangevinCorrector``).
    """
    _check(sde, num_steps, eps)
    if snr <= 0:
        raise FairjaxError(f"snr must be positive, got {snr!r}.")
    if not (isinstance(num_corrector_steps, int) and num_corrector_steps >= 0):
        raise FairjaxError(
            f"num_corrector_steps must be a non-negative int, got {num_corrector_steps!r}."
        )
    t_now, t_next = _time_grid(sde, num_steps, eps)

    def row(key, x, cond):
        def step(carry, inputs):
            x, _ = carry
            t, t_to, k = inputs
            corrector_key, predictor_key = jax.random.split(k)
            _, std = sde.marginal(jnp.zeros_like(x), t)
            step_size = 2.0 * (snr * std) ** 2

            def langevin(x, k):
                z = jax.random.normal(k, x.shape)
                return x + step_size * score_fn(x, t, cond) + jnp.sqrt(2.0 * step_size) * z, None

            ks = jax.random.split(corrector_key, num_corrector_steps)
            x, _ = jax.lax.scan(langevin, x, ks)
            return _reverse_step(sde, score_fn, x, t, t_to, cond, predictor_key), None

        return _final_mean(step, key, x, t_now, t_next)

    return _batched(row)


def make_ode_sampler(
    sde: SDE, score_fn: ScoreFn, *, num_steps: int = 50, eps: float = 1e-3
) -> SampleFn:
    """Heun's 2nd-order method on the probability-flow ODE ``dx/dt = f - 1/2 g^2 s``.

    Deterministic given ``x_T`` (``key`` is accepted for a uniform signature and unused). The
    ODE is integrated on a uniform grid from ``T`` to ``eps > 0``, where the score is finite, so
    every step, the last included, is a full Heun step.

    Args:
        sde: the forward SDE.
        score_fn: ``(x[d], t[], cond) -> [d]``.
        num_steps: Heun steps (2 score evaluations each).
        eps: final time.

    Returns:
        ``sample(key, x_T[n, d], cond=None) -> x_0[n, d]``.

    References:
        arXiv:2011.13456 eq. 13; arXiv:2206.00364 Algorithm 1.
    """
    _check(sde, num_steps, eps)
    t_now, t_next = _time_grid(sde, num_steps, eps)

    def row(key, x, cond):
        del key

        def velocity(x, t):
            return sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score_fn(x, t, cond)

        def step(x, inputs):
            t, t_to = inputs
            dt = t_to - t
            d1 = velocity(x, t)
            d2 = velocity(x + dt * d1, t_to)
            return x + 0.5 * dt * (d1 + d2), None

        return jax.lax.scan(step, x, (t_now, t_next))[0]

    return _batched(row)


SAMPLERS = {"em": make_em_sampler, "pc": make_pc_sampler, "ode": make_ode_sampler}


def sample_from_prior(
    sde: SDE,
    score_fn: ScoreFn,
    keys: Array,
    cond: Any = None,
    *,
    dim: int,
    sampler: str = "em",
    num_steps: int = 1000,
    mesh: Mesh | None = None,
) -> Array:
    """Draw rows from the prior and solve the reverse-time process, row i from keys[i] only.

    Row i's prior draw uses ``fold_in(keys[i], 0)`` and its solver noise ``fold_in(keys[i],
    1)``, so a row does not depend on the other rows, the chunking or the number of devices.
    Not jitted: call it inside the caller's jit.

    Args:
        sde: the forward SDE.
        score_fn: ``(x[d], t[], cond) -> [d]``, possibly guided.
        keys: [n] per-row PRNG keys.
        cond: per-row conditioning pytree with leading axis n, or None.
        dim: row dimension d.
        sampler: "em", "pc" or "ode" (the factories above, default settings).
        num_steps: solver steps.
        mesh: a mesh from :func:`fairjax.parallel.make_mesh` to split the rows over its
            devices (:func:`fairjax.parallel.shard_rows`: any n, padded and trimmed), or None
            to leave placement to the caller's jit.

    Returns:
        [n, dim] samples at t = eps.
    """
    if sampler not in SAMPLERS:
        raise FairjaxError(f"sampler must be one of {sorted(SAMPLERS)}; got {sampler!r}")
    solver = SAMPLERS[sampler](sde, score_fn, num_steps=num_steps)
    if mesh is not None:
        solver = parallel.shard_rows(solver, mesh)
    x_T = jax.vmap(lambda k: sde.prior_sample(jax.random.fold_in(k, 0), (dim,)))(keys)
    solver_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    return solver(solver_keys, x_T, cond)
