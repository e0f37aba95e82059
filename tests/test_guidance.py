"""Guided scores: exact identities, finite differences, guided sampling on a known toy problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import guidance
from fairjax.sampling import make_em_sampler
from fairjax.sde import make_vp_sde


def _linear_logits_fn(w, b):
    return lambda x, t: w @ jnp.tanh(x) * (1.0 + t) + b


def _random_problem(key, dtype=jnp.float32, d=3, classes=3):
    kw, kb, kx, ks = jax.random.split(key, 4)
    w = jax.random.normal(kw, (classes, d), dtype)
    b = jax.random.normal(kb, (classes,), dtype)
    shift = jax.random.normal(ks, (d,), dtype)
    x = jax.random.normal(kx, (d,), dtype)
    score_fn = lambda x, t, cond: -(x - shift) * (1.0 + t) + 0.1 * cond
    return score_fn, _linear_logits_fn(w, b), x


def test_zero_scale_is_exactly_the_unguided_score():
    score_fn, logits_fn, x = _random_problem(jax.random.key(0))
    t = jnp.float32(0.37)
    for cond in (0, 2):
        expected = score_fn(x, t, cond)
        variants = [
            guidance.label_guided(score_fn, logits_fn, 0.0),
            guidance.entropy_guided(score_fn, logits_fn, 0.0),
            guidance.fair_guided(
                score_fn,
                label_logits_fn=logits_fn,
                sensitive_logits_fn=logits_fn,
                label_scale=0.0,
                sensitive_scale=0.0,
            ),
        ]
        for guided in variants:
            np.testing.assert_array_equal(guided(x, t, cond), expected)
        # jitted too (XLA may fuse differently, so compare against the jitted unguided score)
        jit_guided, jit_score = jax.jit(variants[-1]), jax.jit(score_fn)
        np.testing.assert_array_equal(jit_guided(x, t, cond), jit_score(x, t, cond))


def test_classifier_free_guidance_interpolates_the_conditional_and_null_scores():
    """Two Gaussian classes N(m_y, I) with exact scores: scale 0 is the null (here: any fixed
    reference) score, 1 the conditional score, and the difference term is the closed-form
    grad log p(y | x) of the two-class problem with equal priors."""
    m = jnp.array([[1.0, -2.0], [-0.5, 0.5]])
    null = 2

    def score_fn(x, t, label):  # label 2: the mixture's score, equal priors
        class_scores = -(x[None] - m)
        w = jax.nn.softmax(-0.5 * jnp.sum((x[None] - m) ** 2, axis=1))
        mixture = jnp.sum(w[:, None] * class_scores, axis=0)
        return jnp.where(label == null, mixture, class_scores[jnp.minimum(label, 1)])

    x, t = jnp.array([0.3, -0.2]), jnp.float32(0.5)
    for y in (0, 1):
        for scale in (0.0, 1.0, 3.0):
            got = guidance.classifier_free_guided(score_fn, scale, null_cond=null)(x, t, y)

            def log_post(x, y=y):
                return jax.nn.log_softmax(-0.5 * jnp.sum((x[None] - m) ** 2, axis=1))[y]

            expected = score_fn(x, t, null) + scale * jax.grad(log_post)(x)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            guidance.classifier_free_guided(score_fn, 1.0, null_cond=null)(x, t, y),
            score_fn(x, t, y),
            rtol=1e-6,
        )
    picked = guidance.classifier_free_guided(
        score_fn, 1.0, null_cond=null, label_fn=lambda c: c["y"]
    )
    np.testing.assert_allclose(picked(x, t, {"y": 1, "z": 0}), score_fn(x, t, 1), rtol=1e-6)


def test_entropy_matches_closed_form_and_bounds():
    np.testing.assert_allclose(guidance.entropy(jnp.zeros(4)), np.log(4.0), rtol=1e-6)
    logits = jnp.array([1.0, -0.5, 2.0])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(guidance.entropy(logits), -(p * np.log(p)).sum(), rtol=1e-6)
    # saturated logits: finite, ~0
    assert 0.0 <= float(guidance.entropy(jnp.array([0.0, 200.0]))) < 1e-6


def test_entropy_gradient_matches_central_differences_float64():
    with jax.enable_x64(True):
        _, logits_fn, x = _random_problem(jax.random.key(1), jnp.float64)
        t = jnp.float64(0.2)
        h_fn = guidance.sensitive_entropy(logits_fn)
        grad = np.asarray(jax.grad(h_fn)(x, t, None))
        h, fd = 1e-6, np.zeros_like(grad)
        for i in range(x.shape[0]):
            e = np.zeros(x.shape[0])
            e[i] = h
            fd[i] = (h_fn(x + e, t, None) - h_fn(x - e, t, None)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
        # and the entropy-guided score adds exactly scale * that gradient
        score_fn = lambda x, t, cond: -x
        guided = guidance.entropy_guided(score_fn, logits_fn, 2.5)
        np.testing.assert_allclose(guided(x, t, None), -np.asarray(x) + 2.5 * fd, rtol=1e-7)


def test_label_log_prob_gradient_closed_form_for_softmax_regression():
    """For logits W x + b: grad_x log p(y|x) = W_y - sum_c p_c W_c."""
    w = jnp.array([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0]])
    b = jnp.array([0.1, 0.0, -0.2])
    logits_fn = lambda x, t: w @ x + b
    x, t = jnp.array([0.3, -0.7]), jnp.float32(0.5)
    p = jax.nn.softmax(logits_fn(x, t))
    for y in range(3):
        for cond, label_fn in ((y, guidance._identity), ({"y": y, "z": 1}, lambda c: c["y"])):
            log_prob = guidance.label_log_prob(logits_fn, label_fn=label_fn)
            np.testing.assert_allclose(
                jax.grad(log_prob)(x, t, cond), w[y] - p @ w, rtol=1e-5, atol=1e-6
            )


# --- toy problem: x = (a (2y - 1), a (2z - 1)) + s * noise, y and z independent fair coins ---
A, S = 2.0, 0.5


def _toy(sde):
    """Exact score of p_t and exact time-conditioned posteriors p_t(y|x), p_t(z|x)."""

    def kernel(t):
        coeff, std = sde.marginal(jnp.ones(()), t)
        return coeff, coeff**2 * S**2 + std**2

    def log_p(x, t):  # product of two symmetric 1-D two-component mixtures
        coeff, var = kernel(t)
        comp = jnp.stack([(x - coeff * A) ** 2, (x + coeff * A) ** 2])
        return jnp.sum(jax.nn.logsumexp(-0.5 * comp / var, axis=0))

    def logits(i):
        def logits_fn(x, t):  # exact logistic posterior: log p(1|x)/p(0|x) = 2 a coeff x_i / var
            coeff, var = kernel(t)
            return jnp.array([0.0, 2.0 * A * coeff * x[i] / var])

        return logits_fn

    score_fn = lambda x, t, cond: jax.grad(log_p)(x, t)
    return score_fn, logits(0), logits(1)


@pytest.fixture(scope="module")
def toy_samples():
    """Samples for (lambda_y, lambda_z) in a few settings; one compilation for all."""
    sde = make_vp_sde()
    score_fn, y_logits_fn, z_logits_fn = _toy(sde)
    n = 1000
    requested = jnp.arange(n) % 2  # per-row requested labels, half 0 and half 1

    @jax.jit
    def run(key, label_scale, sensitive_scale):
        guided = guidance.fair_guided(
            score_fn,
            label_logits_fn=y_logits_fn,
            sensitive_logits_fn=z_logits_fn,
            label_scale=label_scale,
            sensitive_scale=sensitive_scale,
        )
        x_T = sde.prior_sample(jax.random.fold_in(key, 0), (n, 2))
        return make_em_sampler(sde, guided, num_steps=200)(
            jax.random.fold_in(key, 1), x_T, requested
        )

    settings = {"none": (0.0, 0.0), "label": (1.0, 0.0), "entropy": (0.0, 8.0), "both": (1.0, 8.0)}
    out = {k: np.asarray(run(jax.random.key(7), *v)) for k, v in settings.items()}
    clean_z = jax.vmap(lambda x: jax.nn.softmax(z_logits_fn(x, jnp.float32(1e-3))).max())
    z_conf = {k: float(clean_z(jnp.asarray(x)).mean()) for k, x in out.items()}
    return out, np.asarray(requested), z_conf


def _label_accuracy(xs, requested):
    return float(np.mean((xs[:, 0] > 0) == (requested == 1)))


def test_label_guidance_puts_rows_in_their_requested_class(toy_samples):
    out, requested, _ = toy_samples
    # unguided: the class is a coin flip, independent of the request
    assert abs(_label_accuracy(out["none"], requested) - 0.5) < 5 * np.sqrt(0.25 / len(requested))
    assert _label_accuracy(out["label"], requested) >= 0.95
    assert _label_accuracy(out["both"], requested) >= 0.95  # eq. 11 keeps the label term working


def test_entropy_guidance_moves_sensitive_confidence_toward_half(toy_samples):
    out, _, z_conf = toy_samples
    assert z_conf["none"] > 0.95  # z is nearly perfectly recoverable without guidance
    for k in ("entropy", "both"):
        assert abs(z_conf[k] - 0.5) < abs(z_conf["none"] - 0.5) - 0.25, z_conf
    # label guidance alone does not touch z
    assert abs(z_conf["label"] - z_conf["none"]) < 0.03
    # the entropy term acts on the sensitive direction only: x[0] keeps its spread
    np.testing.assert_allclose(
        np.abs(out["entropy"][:, 0]).mean(), np.abs(out["none"][:, 0]).mean(), rtol=0.1
    )


def _binary_logistic(w, b):
    """Logits [0, w.x + b]: p(z = 1 | x) = sigmoid(w.x + b), independent of t."""
    return lambda x, t: jnp.stack([jnp.zeros(()), w @ x + b])


def test_sensitive_guides_match_closed_forms_on_a_logistic_classifier():
    """grad_x H = -l s (1 - s) w and grad_x mean_c log p_c = (1/2 - s) w, s = sigmoid(l)."""
    with jax.enable_x64(True):
        w, b = jnp.array([0.7, -1.3, 2.0]), 0.4
        logits_fn = _binary_logistic(w, b)
        t = jnp.float64(0.3)
        for x in (jnp.array([0.1, 0.2, -0.3]), jnp.array([3.0, -2.0, 4.0])):
            ell = float(w @ x + b)
            sig = 1.0 / (1.0 + np.exp(-ell))
            grads = {
                name: np.asarray(jax.grad(make(logits_fn))(x, t, None))
                for name, make in guidance.SENSITIVE_GUIDES.items()
            }
            np.testing.assert_allclose(grads["entropy"], -ell * sig * (1 - sig) * w, rtol=1e-10)
            np.testing.assert_allclose(grads["uniform"], (0.5 - sig) * w, rtol=1e-10)
        # Far from the boundary the entropy push vanishes, the uniform push does not.
        far = 20.0 * w / float(w @ w)
        g_h = jax.grad(guidance.sensitive_entropy(logits_fn))(far, t, None)
        g_u = jax.grad(guidance.sensitive_uniform_log_prob(logits_fn))(far, t, None)
        assert float(jnp.linalg.norm(g_h)) < 1e-6 * float(jnp.linalg.norm(w))
        np.testing.assert_allclose(g_u, -0.5 * w, rtol=1e-8)


def test_uniform_guide_value_is_minus_kl_from_uniform_minus_log_c():
    logits = jnp.array([0.3, -1.0, 2.2])
    p = np.exp(logits) / np.exp(logits).sum()
    kl = np.sum(np.log((1 / 3) / p) / 3)
    value = guidance.sensitive_uniform_log_prob(lambda x, t: logits)(None, 0.0, None)
    np.testing.assert_allclose(value, -kl - np.log(3.0), rtol=1e-6)


def test_uniform_guided_and_fair_guided_with_uniform_guide():
    score_fn, logits_fn, x = _random_problem(jax.random.key(5))
    t, cond = jnp.float32(0.4), 1
    np.testing.assert_array_equal(
        guidance.uniform_guided(score_fn, logits_fn, 0.0)(x, t, cond), score_fn(x, t, cond)
    )
    g = jax.grad(guidance.sensitive_uniform_log_prob(logits_fn))(x, t, cond)
    np.testing.assert_allclose(
        guidance.uniform_guided(score_fn, logits_fn, 3.0)(x, t, cond),
        score_fn(x, t, cond) + 3.0 * g,
        rtol=1e-6,
    )
    fair = guidance.fair_guided(
        score_fn,
        label_logits_fn=logits_fn,
        sensitive_logits_fn=logits_fn,
        label_scale=2.0,
        sensitive_scale=3.0,
        sensitive_guide="uniform",
    )
    composed = guidance.uniform_guided(
        guidance.label_guided(score_fn, logits_fn, 2.0), logits_fn, 3.0
    )
    np.testing.assert_allclose(fair(x, t, cond), composed(x, t, cond), rtol=1e-6)
    with pytest.raises(ValueError, match="sensitive_guide"):
        guidance.fair_guided(
            score_fn,
            label_logits_fn=logits_fn,
            sensitive_logits_fn=logits_fn,
            label_scale=1.0,
            sensitive_scale=1.0,
            sensitive_guide="kl",
        )


def test_time_window_guides_only_at_or_below_t_max():
    score_fn, logits_fn, x = _random_problem(jax.random.key(6))
    full = guidance.fair_guided(
        score_fn, label_logits_fn=logits_fn, sensitive_logits_fn=logits_fn,
        label_scale=0.0, sensitive_scale=2.0,
    )  # fmt: skip
    windowed = guidance.fair_guided(
        score_fn, label_logits_fn=logits_fn, sensitive_logits_fn=logits_fn,
        label_scale=0.0, sensitive_scale=2.0, sensitive_t_max=0.5,
    )  # fmt: skip
    for t in (0.1, 0.5):
        np.testing.assert_allclose(windowed(x, t, 0), full(x, t, 0), rtol=1e-6)
    np.testing.assert_allclose(windowed(x, 0.8, 0), score_fn(x, 0.8, 0), rtol=1e-6)
    assert not np.allclose(full(x, 0.8, 0), score_fn(x, 0.8, 0))
