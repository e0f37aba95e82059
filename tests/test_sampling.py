"""Samplers driven by exact scores must reproduce known targets; jit and multi-device behaviour."""

import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from host_devices import run_on_host_devices

from fairjax import sampling
from fairjax.errors import FairjaxError
from fairjax.sde import make_subvp_sde, make_vp_sde

N = 4000
MU = np.array([1.0, -0.5])
SIGMA = np.array([[1.0, 0.6], [0.6, 0.5]])
EPS = 1e-3


def gaussian_score_fn(sde, mu, sigma):
    """Exact score of p_t for p_0 = N(mu, sigma) under a VP-type SDE: N(a mu, a^2 sigma + s^2 I)."""
    lam, u = np.linalg.eigh(sigma)
    lam, u, mu = (jnp.asarray(v, jnp.float32) for v in (lam, u, mu))

    def score_fn(x, t, cond):
        coeff, std = sde.marginal(jnp.ones(()), t)
        return -u @ ((u.T @ (x - coeff * mu)) / (coeff**2 * lam + std**2))

    return score_fn


def mixture_score_fn(sde, weights, means, var):
    """Exact score of p_t for p_0 = sum_k w_k N(m_k, var I)."""
    log_w, means = jnp.log(jnp.asarray(weights)), jnp.asarray(means, jnp.float32)

    def log_p(x, t):
        coeff, std = sde.marginal(jnp.ones(()), t)
        c = coeff**2 * var + std**2
        sq = jnp.sum((x[None] - coeff * means) ** 2, axis=1)
        return jax.nn.logsumexp(log_w - 0.5 * sq / c)

    return lambda x, t, cond: jax.grad(log_p)(x, t)


def _target_at_eps(sde):
    coeff, std = sde.marginal(jnp.ones(()), jnp.float32(EPS))
    coeff, std = float(coeff), float(std)
    return coeff * MU, coeff**2 * SIGMA + std**2 * np.eye(2)


def _assert_gaussian_moments(xs, mean, cov, slack):
    """Sample mean/cov within 5 standard errors of the target plus a discretisation slack."""
    xs = np.asarray(xs, np.float64)
    n = xs.shape[0]
    se_mean = np.sqrt(np.diag(cov) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    np.testing.assert_array_less(np.abs(xs.mean(0) - mean), 5 * se_mean + slack)
    np.testing.assert_array_less(np.abs(np.cov(xs.T) - cov), 5 * se_cov + slack)


@pytest.mark.parametrize(
    ("name", "make", "kwargs", "slack"),
    [
        ("em", sampling.make_em_sampler, {"num_steps": 500}, 0.02),
        ("pc", sampling.make_pc_sampler, {"num_steps": 200, "snr": 0.16}, 0.03),
        ("ode", sampling.make_ode_sampler, {"num_steps": 50}, 0.02),
        ("ode-subvp", sampling.make_ode_sampler, {"num_steps": 50}, 0.02),
    ],
)
def test_sampler_reproduces_gaussian(name, make, kwargs, slack):
    sde = make_subvp_sde() if name.endswith("subvp") else make_vp_sde()
    sample = jax.jit(make(sde, gaussian_score_fn(sde, MU, SIGMA), eps=EPS, **kwargs))
    key = jax.random.key(zlib.crc32(name.encode()))  # fixed per sampler, unlike hash()
    x_T = sde.prior_sample(jax.random.fold_in(key, 1), (N, 2))
    xs = sample(jax.random.fold_in(key, 2), x_T)
    assert xs.shape == (N, 2) and xs.dtype == jnp.float32
    _assert_gaussian_moments(xs, *_target_at_eps(sde), slack)
    assert np.isfinite(np.asarray(xs)).all()


@pytest.mark.parametrize("make", [sampling.make_em_sampler, sampling.make_ode_sampler])
def test_sampler_reproduces_mixture_weights(make):
    sde = make_vp_sde()
    weights, means, var = np.array([0.3, 0.7]), np.array([[-2.0, 0.5], [2.0, -0.5]]), 0.25
    steps = 200 if make is sampling.make_em_sampler else 50
    sample = jax.jit(make(sde, mixture_score_fn(sde, weights, means, var), num_steps=steps))
    x_T = sde.prior_sample(jax.random.key(11), (N, 2))
    xs = np.asarray(sample(jax.random.key(12), x_T), np.float64)
    left = xs[:, 0] < 0  # components sit 8 std apart along x[0]
    se = np.sqrt(weights[0] * weights[1] / N)
    assert abs(left.mean() - weights[0]) < 5 * se, left.mean()
    for mask, k in ((left, 0), (~left, 1)):
        comp = xs[mask]
        np.testing.assert_array_less(
            np.abs(comp.mean(0) - means[k]), 5 * np.sqrt(var / len(comp)) + 0.02
        )
        np.testing.assert_array_less(
            np.abs(comp.var(0) - var), 5 * var * np.sqrt(2 / len(comp)) + 0.02
        )


def test_jitted_sampler_traces_once_and_is_deterministic():
    sde = make_vp_sde()
    score_fn = gaussian_score_fn(sde, MU, SIGMA)
    sample_fn = sampling.make_em_sampler(sde, score_fn, num_steps=20)
    sample = jax.jit(chex.assert_max_traces(sample_fn, n=1))
    x_T = sde.prior_sample(jax.random.key(0), (64, 2))
    a = sample(jax.random.key(1), x_T)
    b = sample(jax.random.key(1), x_T)
    c = sample(jax.random.key(2), x_T)
    chex.clear_trace_counter()
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a - c)).max() > 1e-3
    # a row's result depends only on its own key: passing the per-row keys gives the same rows,
    # and so does sampling a subset of the rows
    keys = jax.random.split(jax.random.key(1), 64)
    np.testing.assert_allclose(jax.jit(sample_fn)(keys, x_T), a, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        jax.jit(sample_fn)(keys[10:20], x_T[10:20]), a[10:20], rtol=1e-6, atol=1e-6
    )


def test_cond_is_vmapped_per_row():
    """Row i is sampled with cond[i]: a score attracted to cond gives per-row targets."""
    sde = make_vp_sde()

    def score_fn(x, t, cond):  # exact score of N(cond, 0.01 I)
        coeff, std = sde.marginal(jnp.ones(()), t)
        return -(x - coeff * cond) / (coeff**2 * 0.01 + std**2)

    targets = jnp.array([[3.0, 0.0], [-3.0, 1.0], [0.0, -2.0]])
    x_T = jnp.zeros((3, 2))
    xs = jax.jit(sampling.make_ode_sampler(sde, score_fn, num_steps=50))(
        jax.random.key(0), x_T, targets
    )
    np.testing.assert_allclose(xs, targets, atol=0.05)


def test_row_keys_and_errors():
    assert sampling.row_keys(jax.random.key(0), 5).shape == (5,)
    assert sampling.row_keys(jax.random.PRNGKey(0), 5).shape == (5, 2)
    keys = jax.random.split(jax.random.key(0), 5)
    assert sampling.row_keys(keys, 5) is keys
    with pytest.raises(FairjaxError, match="per-row keys"):
        sampling.row_keys(keys, 4)
    sde = make_vp_sde()
    with pytest.raises(FairjaxError, match="num_steps"):
        sampling.make_em_sampler(sde, lambda x, t, c: x, num_steps=0)
    with pytest.raises(FairjaxError, match="eps"):
        sampling.make_ode_sampler(sde, lambda x, t, c: x, eps=1.5)


def toy_conditional_sampler():
    """A small sampler whose score uses a per-row integer cond (imported by the subprocess)."""
    sde = make_vp_sde()
    centers = jnp.array([[2.0, 0.0], [-2.0, 1.0]])

    def score_fn(x, t, cond):
        coeff, std = sde.marginal(jnp.ones(()), t)
        center = centers[0] if cond is None else centers[cond]
        return -(x - coeff * center) / (coeff**2 * 0.3 + std**2)

    return sde, sampling.make_pc_sampler(sde, score_fn, num_steps=20)


def _inputs(n):
    sde, _ = toy_conditional_sampler()
    x_T = sde.prior_sample(jax.random.key(n), (n, 2))
    return jax.random.key(100 + n), x_T, jnp.arange(n) % 2


_SUBPROCESS = """
import json
import jax, numpy as np
from test_sampling import _inputs, _prior_rows, toy_conditional_sampler
from fairjax import parallel, sampling
assert jax.device_count() == 8, jax.devices()
_, sample_fn = toy_conditional_sampler()
sharded = parallel.shard_rows(sample_fn, parallel.make_mesh())
out = {}
key, x_T, cond = _inputs(13)  # 13 rows: padded to 16, 2 per device
out["cond13"] = np.asarray(sharded(sampling.row_keys(key, 13), x_T, cond)).tolist()
key, x_T, _ = _inputs(16)
out["none16"] = np.asarray(sharded(sampling.row_keys(key, 16), x_T, None)).tolist()
out["prior13"] = np.asarray(_prior_rows(13, parallel.make_mesh())).tolist()
print(json.dumps(out))
"""


def _prior_rows(n, mesh):
    """`sample_from_prior` on the toy score, rows split over `mesh` (None: no placement)."""
    sde = make_vp_sde()
    score_fn = lambda x, t, cond: -x * (cond + 1.0)
    keys = jax.random.split(jax.random.key(7), n)
    run = jax.jit(
        lambda keys, cond: sampling.sample_from_prior(
            sde, score_fn, keys, cond, dim=2, sampler="em", num_steps=10, mesh=mesh
        )
    )
    return run(keys, jnp.arange(n) % 2)


def test_shard_rows_on_8_devices_equals_single_device():
    """`parallel.shard_rows` and `sample_from_prior(mesh=...)` on 8 devices: the same rows as
    one device without placement, for a row count that does not divide (13) and one that does."""
    got = run_on_host_devices(_SUBPROCESS)
    _, sample_fn = toy_conditional_sampler()
    single = jax.jit(sample_fn)
    with jax.default_device(jax.devices("cpu")[0]):  # same backend as the subprocess
        key, x_T, cond = _inputs(13)
        np.testing.assert_allclose(got["cond13"], single(key, x_T, cond), rtol=1e-5, atol=1e-5)
        key, x_T, _ = _inputs(16)
        np.testing.assert_allclose(got["none16"], single(key, x_T), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["prior13"], _prior_rows(13, None), rtol=1e-5, atol=1e-5)
