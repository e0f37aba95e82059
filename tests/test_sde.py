"""Forward SDEs against float64 closed forms, a Monte-Carlo forward simulation, and DSM losses
against their known irreducible values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax.errors import FairjaxError
from fairjax.sde import (
    make_dsm_loss,
    make_label_dsm_loss,
    make_noisy_classifier_loss,
    make_subvp_sde,
    make_vp_sde,
)

BETA_MIN, BETA_MAX = 0.1, 20.0
TIMES = np.array([1e-5, 1e-3, 0.05, 0.3, 0.7, 1.0])


def _np_int_beta(t):
    return BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2


def _np_kernel(kind, t):
    """float64 (mean coefficient, std) of p_0t for the VP and sub-VP SDEs."""
    big_b = _np_int_beta(np.asarray(t, np.float64))
    coeff = np.exp(-0.5 * big_b)
    std = np.sqrt(1.0 - np.exp(-big_b)) if kind == "vp" else 1.0 - np.exp(-big_b)
    return coeff, std


SDES = {"vp": make_vp_sde, "subvp": make_subvp_sde}


@pytest.mark.parametrize("kind", ["vp", "subvp"])
def test_marginal_equals_float64_closed_form(kind):
    sde = SDES[kind](beta_min=BETA_MIN, beta_max=BETA_MAX)
    x0 = jnp.array([1.5, -0.5, 0.0])
    means, stds = jax.vmap(sde.marginal, in_axes=(None, 0))(x0, jnp.asarray(TIMES, jnp.float32))
    coeff, std = _np_kernel(kind, TIMES)
    np.testing.assert_allclose(means, coeff[:, None] * np.asarray(x0)[None], rtol=1e-6, atol=1e-7)
    # relative accuracy even at t = 1e-5, where std ~ 1e-3 (VP) or 1e-6 (sub-VP)
    np.testing.assert_allclose(stds, std, rtol=2e-5)
    assert means.shape == (len(TIMES), 3) and stds.shape == (len(TIMES),)


@pytest.mark.parametrize("kind", ["vp", "subvp"])
def test_drift_diffusion_closed_form_and_variance_ode(kind):
    sde = SDES[kind](beta_min=BETA_MIN, beta_max=BETA_MAX)
    t = jnp.asarray(TIMES[1:], jnp.float32)
    beta = BETA_MIN + TIMES[1:] * (BETA_MAX - BETA_MIN)
    x = jnp.array([2.0, -1.0])
    drift = jax.vmap(sde.drift, in_axes=(None, 0))(x, t)
    np.testing.assert_allclose(drift, -0.5 * beta[:, None] * np.asarray(x)[None], rtol=1e-6)
    g2 = np.asarray(jax.vmap(sde.diffusion)(t), np.float64) ** 2
    expected_g2 = beta if kind == "vp" else beta * (1.0 - np.exp(-2.0 * _np_int_beta(TIMES[1:])))
    np.testing.assert_allclose(g2, expected_g2, rtol=1e-5)
    # The kernel variance v(t) of a linear SDE solves v' = -beta v + g^2: ties g to the marginal.
    dvar = jax.vmap(jax.grad(lambda s: sde.marginal(jnp.zeros(1), s)[1] ** 2))(t)
    var = np.asarray(jax.vmap(lambda s: sde.marginal(jnp.zeros(1), s)[1])(t), np.float64) ** 2
    np.testing.assert_allclose(dvar, -beta * var + expected_g2, rtol=1e-4, atol=1e-5)


def test_vp_forward_sde_monte_carlo_matches_marginal():
    """Euler-Maruyama simulation of the forward VP SDE hits the closed-form kernel."""
    sde = make_vp_sde()
    n, num_steps = 4000, 400
    x0 = jnp.array([1.5, -0.5])
    dt = 1.0 / num_steps
    checkpoints = {100: 0.25, 200: 0.5, 400: 1.0}

    def step(x, inputs):
        i, key = inputs
        t = i * dt
        noise = jax.random.normal(key, x.shape)
        x = x + jax.vmap(sde.drift, in_axes=(0, None))(x, t) * dt
        return x + sde.diffusion(t) * jnp.sqrt(dt) * noise, x

    keys = jax.random.split(jax.random.key(0), num_steps)
    x_final, path = jax.jit(
        lambda: jax.lax.scan(step, jnp.tile(x0, (n, 1)), (jnp.arange(num_steps), keys))
    )()
    path = jnp.concatenate([path[1:], x_final[None]])  # path[k - 1] is x at t = k dt
    for k, t in checkpoints.items():
        xs = np.asarray(path[k - 1], np.float64)
        coeff, std = _np_kernel("vp", t)
        se_mean = std / np.sqrt(n)
        se_std = std / np.sqrt(2 * n)
        # 5 standard errors plus O(dt) Euler bias (beta dt <= 0.05 per step)
        np.testing.assert_allclose(xs.mean(0), coeff * np.asarray(x0), atol=5 * se_mean + 0.01)
        np.testing.assert_allclose(xs.std(0), std, atol=5 * se_std + 0.01)


def _gaussian_setup():
    mu = np.array([1.0, -0.5])
    sigma = np.array([[1.0, 0.6], [0.6, 0.5]])
    lam, u = np.linalg.eigh(sigma)
    return mu, sigma, lam, u


def _exact_score_fn(sde, lam, u):
    """Score of p_t when p_0 = N(mu, U diag(lam) U^T); params = mu."""
    lam, u = jnp.asarray(lam, jnp.float32), jnp.asarray(u, jnp.float32)

    def score_fn(mu, x, t):
        coeff, std = sde.marginal(jnp.ones(()), t)
        return -u @ ((u.T @ (x - coeff * mu)) / (coeff**2 * lam + std**2))

    return score_fn


def _irreducible_dsm(kind, lam, shift, eps=1e-5):
    """float64 E_t[sum_i a^2 l_i / (a^2 l_i + s^2)] (+ the excess of a mean shifted by `shift`)."""
    # Dense grid in log-time: the integrand changes fastest near t = eps.
    t = np.concatenate([np.geomspace(eps, 1e-2, 20001), np.linspace(1e-2, 1.0, 20001)[1:]])
    a, s = _np_kernel(kind, t)
    c = a[:, None] ** 2 * lam[None] + s[:, None] ** 2
    base = np.sum(a[:, None] ** 2 * lam[None] / c, axis=1)
    # wrong mean mu + shift: s_wrong - s* = C^{-1} a shift, excess = s^2 a^2 shift^T C^{-2} shift
    excess = s**2 * a**2 * np.sum(shift[None] ** 2 / c**2, axis=1)
    return np.trapezoid(base, t) / (1 - eps), np.trapezoid(excess, t) / (1 - eps)


@pytest.mark.parametrize("kind", ["vp", "subvp"])
def test_dsm_loss_of_exact_score_is_irreducible_value(kind):
    sde = SDES[kind]()
    mu, sigma, lam, u = _gaussian_setup()
    score_fn = _exact_score_fn(sde, lam, u)
    loss_fn = make_dsm_loss(sde, score_fn, eps=1e-5)
    shift_eig = np.array([0.4, -0.3])  # shift in the eigenbasis of Sigma
    wrong_mu = jnp.asarray(mu + u @ shift_eig, jnp.float32)

    @jax.jit
    def replicate(key):
        data_key, loss_key = jax.random.split(key)
        x0 = jax.random.multivariate_normal(data_key, jnp.asarray(mu), jnp.asarray(sigma), (2048,))
        right = loss_fn(jnp.asarray(mu, jnp.float32), x0, loss_key)
        return right, loss_fn(wrong_mu, x0, loss_key) - right

    right, excess = map(np.asarray, jax.lax.map(replicate, jax.random.split(jax.random.key(1), 16)))
    expected, expected_excess = _irreducible_dsm(kind, lam, shift_eig)
    se = right.std(ddof=1) / np.sqrt(len(right))
    assert abs(right.mean() - expected) < 5 * se + 1e-3, (right.mean(), expected, se)
    # a wrong score pays exactly E lambda(t) ||s - s*||^2 on top (paired, same noise)
    se_excess = excess.std(ddof=1) / np.sqrt(len(excess))
    assert abs(excess.mean() - expected_excess) < 5 * se_excess + 1e-3
    assert excess.mean() > 10 * se_excess


def test_label_dsm_loss_of_exact_class_scores_is_irreducible_and_drops_labels():
    """Two classes N(mu_y, Sigma): with each class's exact score the label DSM loss is the
    single Gaussian's irreducible value (float64 quadrature), a wrong class mean pays on
    top; drop_prob = 1 scores every example at the null label."""
    sde = make_vp_sde()
    mu, sigma, lam, u = _gaussian_setup()
    exact = _exact_score_fn(sde, lam, u)
    shift = np.array([1.5, -1.0])
    means = jnp.asarray(np.stack([mu, mu + u @ shift, np.zeros(2)]), jnp.float32)  # row 2: null

    def score_fn(class_means, x, t, label):
        return exact(class_means[label], x, t)

    exact_loss = make_label_dsm_loss(sde, score_fn, null_label=2, drop_prob=0.0)

    @jax.jit
    def replicate(key):
        label_key, data_key, loss_key = jax.random.split(key, 3)
        y = jax.random.bernoulli(label_key, 0.5, (2048,)).astype(jnp.int32)
        x0 = means[y] + jax.random.multivariate_normal(
            data_key, jnp.zeros(2), jnp.asarray(sigma), (2048,)
        )
        return exact_loss(means, (x0, y), loss_key)

    right = np.asarray(jax.lax.map(replicate, jax.random.split(jax.random.key(1), 16)))
    expected, _ = _irreducible_dsm("vp", lam, np.zeros(2))
    se = right.std(ddof=1) / np.sqrt(len(right))
    assert abs(right.mean() - expected) < 5 * se + 1e-3, (right.mean(), expected, se)

    x0 = jax.random.normal(jax.random.key(2), (64, 2))
    y = jnp.arange(64, dtype=jnp.int32) % 2
    key = jax.random.key(3)
    dropped = make_label_dsm_loss(sde, score_fn, null_label=2, drop_prob=1.0)
    all_null = exact_loss(means, (x0, jnp.full(64, 2, jnp.int32)), key)
    np.testing.assert_array_equal(dropped(means, (x0, y), key), all_null)
    assert exact_loss(means, (x0, y), key) != all_null
    with pytest.raises(FairjaxError, match="drop_prob"):
        make_label_dsm_loss(sde, score_fn, null_label=2, drop_prob=1.5)


def test_dsm_loss_shape_and_grad():
    sde = make_vp_sde()
    loss_fn = make_dsm_loss(sde, lambda w, x, t: w * x)
    x0 = jnp.ones((5, 3))
    loss, grad = jax.jit(jax.value_and_grad(loss_fn))(jnp.float32(-1.0), x0, jax.random.key(0))
    assert loss.shape == () and grad.shape == () and np.isfinite(grad)


def test_noisy_classifier_loss_equals_cross_entropy_of_constant_logits():
    sde = make_vp_sde()
    logits = jnp.array([0.3, -1.0, 2.0])
    loss_fn = jax.jit(make_noisy_classifier_loss(sde, lambda p, x, t: p + 0.0 * jnp.sum(x) * t))
    labels = jnp.array([0, 2, 2, 1, 0])
    x0 = jax.random.normal(jax.random.key(3), (5, 4))
    loss = loss_fn(logits, (x0, labels), jax.random.key(0))
    expected = -np.mean(np.asarray(jax.nn.log_softmax(logits))[np.asarray(labels)])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    zero = loss_fn(jnp.zeros(3), (x0, labels), jax.random.key(0))
    np.testing.assert_allclose(zero, np.log(3.0), rtol=1e-6)


def test_noisy_classifier_sees_kernel_noised_inputs():
    """A classifier whose logit is x_t^2 / std(t)^2 - 1 averages to 0 iff x_t ~ N(0, std^2)."""
    sde = make_vp_sde()
    loss_fn = make_noisy_classifier_loss(
        sde, lambda p, x, t: jnp.array([0.0, x[0] ** 2 / sde.marginal(x, t)[1] ** 2 - 1.0]) * p
    )
    # d/dp CE at p = 0 with label 1 is -E[logit]/2 = 0 for x0 = 0, since E[x_t^2] = std^2.
    n = 20000
    batch = (jnp.zeros((n, 1)), jnp.ones(n, int))
    grad = jax.jit(jax.grad(loss_fn))(jnp.float32(0.0), batch, jax.random.key(5))
    assert abs(grad) < 5 * np.sqrt(2.0) / 2 / np.sqrt(n)


def test_prior_sample_and_logp():
    sde = make_vp_sde()
    x = sde.prior_sample(jax.random.key(0), (7, 3))
    assert x.shape == (7, 3)
    v = jnp.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(sde.prior_logp(v), -1.5 * np.log(2 * np.pi) - 0.5 * 5.25, rtol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(FairjaxError, match="beta_min"):
        make_vp_sde(beta_min=5.0, beta_max=1.0)
    with pytest.raises(FairjaxError, match="eps"):
        make_dsm_loss(make_subvp_sde(), lambda p, x, t: x, eps=0.0)
