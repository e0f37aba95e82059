"""Tests for fairjax.mmd: values against a float64 numpy double loop, estimator properties,
padding/weights, chunking, gradients, vmap and jit."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax.errors import FairjaxError
from fairjax.mmd import (
    gram,
    median_bandwidths,
    median_distance,
    mixture_rbf_kernel,
    mmd2,
    mmd2_chunked,
    rbf_kernel,
)

BANDWIDTH_SETS = {
    "single": (1.0,),
    "pair": (0.5, 2.0),
    "five": (0.25, 0.5, 1.0, 2.0, 4.0),
}


# Tests call jitted wrappers: one compilation per shape instead of one per primitive in eager
# mode, which keeps the file fast. `test_jit_and_nojit_agree_with_reference` covers eager.
mmd2_jit = jax.jit(mmd2, static_argnames="unbiased")
median_distance_jit = jax.jit(median_distance, static_argnames="max_points")
median_bandwidths_jit = jax.jit(median_bandwidths, static_argnames=("multipliers", "max_points"))


@functools.partial(jax.jit, static_argnames=("unbiased", "argnums"))
def mmd2_grad(xs, ys, *, bandwidths, unbiased=False, x_weights=None, y_weights=None, argnums=1):
    """Gradient of mmd2 with respect to xs (argnums=0), ys (1) or both ((0, 1))."""
    f = lambda x, y: mmd2(
        x, y, bandwidths=bandwidths, unbiased=unbiased, x_weights=x_weights, y_weights=y_weights
    )
    return jax.grad(f, argnums=argnums)(xs, ys)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def np_mixture_kernel(x, y, bandwidths):
    d2 = sum((xi - yi) ** 2 for xi, yi in zip(x, y, strict=True))
    return sum(np.exp(-d2 / (2.0 * s**2)) for s in bandwidths)


def np_mmd2(xs, ys, bandwidths, unbiased, a=None, b=None):
    """Reference weighted MMD^2 by explicit double loops in float64."""
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    a = np.ones(len(xs)) if a is None else np.asarray(a, np.float64)
    b = np.ones(len(ys)) if b is None else np.asarray(b, np.float64)

    def within(zs, w):
        num = den = 0.0
        for i in range(len(zs)):
            for j in range(len(zs)):
                if unbiased and i == j:
                    continue
                num += w[i] * w[j] * np_mixture_kernel(zs[i], zs[j], bandwidths)
                den += w[i] * w[j]
        return num / den

    cross_num = cross_den = 0.0
    for i in range(len(xs)):
        for j in range(len(ys)):
            cross_num += a[i] * b[j] * np_mixture_kernel(xs[i], ys[j], bandwidths)
            cross_den += a[i] * b[j]
    return within(xs, a) + within(ys, b) - 2.0 * cross_num / cross_den


def samples(seed, n=12, m=9, d=3, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


# ---------------------------------------------------------------- kernels


def test_rbf_kernel_closed_form():
    x, y = jnp.array([0.0, 0.0]), jnp.array([3.0, 4.0])  # ||x - y||^2 = 25
    np.testing.assert_allclose(rbf_kernel(x, y, 5.0), np.exp(-0.5), rtol=1e-6)
    np.testing.assert_allclose(rbf_kernel(x, x, 5.0), 1.0, rtol=1e-7)
    bws = jnp.array([5.0, 2.5])
    np.testing.assert_allclose(
        mixture_rbf_kernel(x, y, bws), np.exp(-0.5) + np.exp(-2.0), rtol=1e-6
    )
    np.testing.assert_allclose(mixture_rbf_kernel(x, x, bws), 2.0, rtol=1e-7)


def test_gram_matches_double_loop():
    xs, ys = samples(0, n=5, m=4)
    bws = BANDWIDTH_SETS["pair"]
    kernel_fn = functools.partial(mixture_rbf_kernel, bandwidths=jnp.array(bws))
    k = jax.jit(gram, static_argnums=0)(kernel_fn, xs, ys)
    assert k.shape == (5, 4)
    expected = [[np_mixture_kernel(x, y, bws) for y in ys] for x in xs]
    np.testing.assert_allclose(k, expected, rtol=1e-5)


def test_kernel_gradient_finite_at_identical_points():
    x = jnp.array([0.3, -1.2, 2.0])
    for fn in (
        lambda x, y: rbf_kernel(x, y, 0.7),
        lambda x, y: mixture_rbf_kernel(x, y, jnp.array([0.1, 1.0, 10.0])),
    ):
        gx, gy = jax.jit(jax.grad(fn, argnums=(0, 1)))(x, x)
        assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))
        np.testing.assert_allclose(gx, 0.0, atol=1e-5)
        np.testing.assert_allclose(gy, 0.0, atol=1e-5)


# ---------------------------------------------------------------- values


# Most tests share the shapes of `samples()` and the "five" bandwidths, so that the jitted
# wrappers above compile once for many tests.


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("bw_name", list(BANDWIDTH_SETS))
def test_weighted_mmd2_matches_numpy_double_loop(x64, unbiased, bw_name):
    bws = BANDWIDTH_SETS[bw_name]
    xs, ys = samples(1, n=10, m=7, shift=0.5)
    rng = np.random.default_rng(2)
    a = rng.uniform(0.1, 2.0, size=10)
    b = rng.uniform(0.1, 2.0, size=7)
    got = mmd2_jit(xs, ys, bandwidths=jnp.array(bws), unbiased=unbiased, x_weights=a, y_weights=b)
    assert got.dtype == jnp.float64 and got.shape == ()
    np.testing.assert_allclose(got, np_mmd2(xs, ys, bws, unbiased, a, b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd2_float32_close_to_float64_reference(unbiased):
    bws = BANDWIDTH_SETS["five"]
    xs, ys = samples(3, shift=0.3)
    # an offset far from the origin: centring keeps the expanded distances accurate
    xs, ys = xs + 50.0, ys + 50.0
    got = mmd2_jit(
        jnp.asarray(xs, jnp.float32),
        jnp.asarray(ys, jnp.float32),
        bandwidths=jnp.array(bws),
        unbiased=unbiased,
    )
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, np_mmd2(xs, ys, bws, unbiased), rtol=1e-4, atol=1e-5)


def test_mmd2_of_sample_with_itself_is_zero():
    xs, _ = samples(4)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    np.testing.assert_allclose(mmd2_jit(xs, xs, bandwidths=bws), 0.0, atol=1e-6)
    # the U-statistic of (x, x) is not 0 (its cross term keeps the diagonal the others drop)
    np.testing.assert_allclose(
        mmd2_jit(xs, xs, bandwidths=bws, unbiased=True),
        np_mmd2(xs, xs, BANDWIDTH_SETS["five"], True),
        rtol=1e-4,
    )


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd2_symmetric(unbiased):
    xs, ys = samples(5, shift=1.0)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    np.testing.assert_allclose(
        mmd2_jit(xs, ys, bandwidths=bws, unbiased=unbiased),
        mmd2_jit(ys, xs, bandwidths=bws, unbiased=unbiased),
        rtol=1e-5,
        atol=1e-7,
    )


def test_unbiased_is_centred_and_biased_is_positive_under_the_null():
    num_repeats, n, d = 400, 40, 3
    bws = jnp.array(BANDWIDTH_SETS["five"])
    xs, ys = np.random.default_rng(0).normal(size=(2, num_repeats, n, d))

    def one(x, y):
        return (
            mmd2(x, y, bandwidths=bws, unbiased=True),
            mmd2(x, y, bandwidths=bws, unbiased=False),
        )

    unb, bia = jax.jit(jax.vmap(one))(xs, ys)
    unb, bia = np.asarray(unb, np.float64), np.asarray(bia, np.float64)
    se = unb.std(ddof=1) / np.sqrt(num_repeats)
    assert abs(unb.mean()) < 3 * se, (unb.mean(), se)
    assert np.all(bia > 0)
    assert bia.mean() > 10 * se  # its bias is of order 1/n, far above the U-statistic's noise
    assert np.sum(unb < 0) > num_repeats // 10  # the U-statistic does go negative


@pytest.mark.parametrize("unbiased", [False, True])
def test_different_distributions_give_larger_mmd(unbiased):
    rng = np.random.default_rng(1)
    n, d = 200, 4
    xs, same, other = rng.normal(size=(3, n, d))
    other = other + 1.0
    bws = median_bandwidths_jit(xs, same)
    v_same = mmd2_jit(xs, same, bandwidths=bws, unbiased=unbiased)
    v_other = mmd2_jit(xs, other, bandwidths=bws, unbiased=unbiased)
    assert v_other > 0.1
    assert v_other > 20 * abs(v_same)


# ---------------------------------------------------------------- weights and padding


@pytest.mark.parametrize("unbiased", [False, True])
def test_padded_rows_with_zero_weight_change_nothing(unbiased):
    xs, ys = samples(7, shift=0.4)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    rng = np.random.default_rng(8)
    # padded rows hold arbitrary finite junk, interleaved with the real ones
    xs_pad = np.concatenate([xs, 10 * rng.normal(size=(5, 3)) + 3])
    ys_pad = np.concatenate([rng.normal(size=(4, 3)) - 7, ys])
    a = np.r_[np.ones(12), np.zeros(5)]
    b = np.r_[np.zeros(4), np.ones(9)]
    perm = rng.permutation(17)
    xs_pad, a = xs_pad[perm], a[perm]
    expected = mmd2_jit(xs, ys, bandwidths=bws, unbiased=unbiased)
    got = mmd2_jit(xs_pad, ys_pad, bandwidths=bws, unbiased=unbiased, x_weights=a, y_weights=b)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # gradients on real rows agree and gradients on padded rows are exactly 0
    g_pad = mmd2_grad(xs_pad, ys_pad, bandwidths=bws, unbiased=unbiased, x_weights=a, y_weights=b)
    g = mmd2_grad(xs, ys, bandwidths=bws, unbiased=unbiased)
    np.testing.assert_allclose(g_pad[4:], g, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(g_pad[:4], 0.0)


def test_integer_weights_equal_repeated_rows_for_biased():
    xs, ys = samples(9)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    counts = np.array([1, 3, 0, 2, 1, 0, 0, 1, 2, 0, 1, 1])  # 12 rows again after repeating
    np.testing.assert_allclose(
        mmd2_jit(xs, ys, bandwidths=bws, x_weights=counts.astype(float)),
        mmd2_jit(np.repeat(xs, counts, axis=0), ys, bandwidths=bws),
        rtol=1e-5,
    )


@pytest.mark.parametrize("unbiased", [False, True])
def test_empty_group_gives_finite_value_and_gradient(unbiased):
    xs, ys = samples(10)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    zeros = np.zeros(12)
    value = mmd2_jit(xs, ys, bandwidths=bws, unbiased=unbiased, x_weights=zeros)
    grad = mmd2_grad(xs, ys, bandwidths=bws, unbiased=unbiased, x_weights=zeros)
    # finite, so a loss that multiplies the group's term by 0 gets an exactly zero gradient;
    # the value is the y-sample's within term alone
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    k = np.array([[np_mixture_kernel(y1, y2, BANDWIDTH_SETS["five"]) for y2 in ys] for y1 in ys])
    within_y = (k.sum() - np.trace(k)) / (9 * 8) if unbiased else k.mean()
    np.testing.assert_allclose(value, within_y, rtol=1e-5)


def test_vmap_over_padded_groups_equals_python_loop():
    rng = np.random.default_rng(11)
    sizes_x, sizes_y, n_max, d = [7, 3, 12], [5, 9, 2], 12, 3
    bws = jnp.array(BANDWIDTH_SETS["five"])
    groups_x = [rng.normal(size=(k, d)) + g for g, k in enumerate(sizes_x)]
    groups_y = [rng.normal(size=(k, d)) for k in sizes_y]

    def pad(rows):
        return np.concatenate([rows, np.zeros((n_max - len(rows), d))])

    xs = np.stack([pad(r) for r in groups_x])  # [G, n_max, d]
    ys = np.stack([pad(r) for r in groups_y])
    a = np.stack([np.arange(n_max) < k for k in sizes_x]).astype(float)  # [G, n_max]
    b = np.stack([np.arange(n_max) < k for k in sizes_y]).astype(float)

    for unbiased in (False, True):
        per_group = lambda x, y, wa, wb, u=unbiased: mmd2(
            x, y, bandwidths=bws, unbiased=u, x_weights=wa, y_weights=wb
        )
        got = jax.jit(jax.vmap(per_group))(xs, ys, a, b)
        expected = [
            np_mmd2(gx, gy, BANDWIDTH_SETS["five"], unbiased)
            for gx, gy in zip(groups_x, groups_y, strict=True)
        ]
        assert got.shape == (3,)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- chunking


@functools.partial(jax.jit, static_argnames=("unbiased", "chunk_size"))
def chunked_value_and_grads(xs, ys, a, bws, *, unbiased, chunk_size):
    if chunk_size is None:
        f = lambda x, y: mmd2(x, y, bandwidths=bws, unbiased=unbiased, x_weights=a)
    else:
        f = lambda x, y: mmd2_chunked(
            x, y, bandwidths=bws, unbiased=unbiased, x_weights=a, chunk_size=chunk_size
        )
    return jax.value_and_grad(f, argnums=(0, 1))(xs, ys)


# pooled n + m = 21 rows: chunk 7 divides it, 5 does not, 50 exceeds it
@pytest.mark.parametrize(
    ("unbiased", "chunk_size"), [(False, 5), (False, 50), (True, 5), (True, 7)]
)
def test_chunked_equals_unchunked_values_and_gradients(unbiased, chunk_size):
    xs, ys = samples(12, shift=0.5)
    bws = jnp.array(BANDWIDTH_SETS["five"])
    a = np.random.default_rng(13).uniform(0.0, 1.0, 12)
    v_full, g_full = chunked_value_and_grads(xs, ys, a, bws, unbiased=unbiased, chunk_size=None)
    v_chunk, g_chunk = chunked_value_and_grads(
        xs, ys, a, bws, unbiased=unbiased, chunk_size=chunk_size
    )
    np.testing.assert_allclose(v_chunk, v_full, rtol=1e-5, atol=1e-7)
    for gc, gf in zip(g_chunk, g_full, strict=True):
        np.testing.assert_allclose(gc, gf, rtol=1e-4, atol=1e-6)


def test_chunked_rejects_bad_chunk_size():
    xs, ys = samples(14)
    bws = jnp.array([1.0])
    for bad in (0, -3, 2.5, None):
        with pytest.raises(FairjaxError, match="chunk_size"):
            mmd2_chunked(xs, ys, bandwidths=bws, chunk_size=bad)


# ---------------------------------------------------------------- gradients


def test_gradients_match_central_differences(x64):
    # the unbiased, weighted estimator, in every argument: xs, ys and the bandwidths
    unbiased = True
    xs, ys = samples(15, n=6, m=5, shift=0.3)
    rng = np.random.default_rng(16)
    a = rng.uniform(0.2, 1.0, 6)
    params = (jnp.asarray(xs), jnp.asarray(ys), jnp.array([0.7, 1.5]))
    eps = 1e-5

    def f(p):
        x, y, bws = p
        return mmd2(x, y, bandwidths=bws, unbiased=unbiased, x_weights=a)

    @jax.jit
    def derivatives(p, directions):  # directions: a batch of tangents, each shaped like p
        def one(v):
            shifted = lambda s: jax.tree.map(lambda w, dw: w + s * dw, p, v)
            fd = (f(shifted(eps)) - f(shifted(-eps))) / (2 * eps)
            fwd = jax.jvp(f, (p,), (v,))[1]
            return fd, fwd

        fd, fwd = jax.vmap(one)(directions)
        rev = jax.grad(f)(p)
        rev = sum(jnp.tensordot(d, g, axes=g.ndim) for d, g in zip(directions, rev, strict=True))
        return fd, fwd, rev

    num_dirs = 8
    directions = tuple(jnp.asarray(rng.normal(size=(num_dirs, *w.shape))) for w in params)
    directions = (directions[0], directions[1], 0.1 * directions[2])  # keep bandwidths > 0
    fd, fwd, rev = derivatives(params, directions)
    np.testing.assert_allclose(fwd, fd, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(rev, fd, rtol=1e-7, atol=1e-10)


def test_gradient_wrt_ys_equals_coordinatewise_central_differences(x64):
    xs, ys = samples(17, n=5, m=4)
    bws = jnp.array(BANDWIDTH_SETS["pair"])
    f = lambda y: mmd2(xs, y, bandwidths=bws)
    eps = 1e-6
    basis = jnp.eye(ys.size).reshape(ys.size, *ys.shape)
    fd = jax.jit(jax.vmap(lambda e: (f(ys + eps * e) - f(ys - eps * e)) / (2 * eps)))(basis)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(ys), fd.reshape(ys.shape), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("unbiased", [False, True])
def test_gradient_finite_when_samples_coincide(unbiased):
    xs, _ = samples(18, n=9)
    xs = np.concatenate([xs, xs[:3]])  # duplicated rows as well
    bws = jnp.array(BANDWIDTH_SETS["five"])
    gx, gy = mmd2_grad(xs, xs, bandwidths=bws, unbiased=unbiased, argnums=(0, 1))
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))
    if not unbiased:  # x == y is the minimum of the V-statistic
        np.testing.assert_allclose(gy, 0.0, atol=1e-6)


# ---------------------------------------------------------------- jit


@pytest.mark.parametrize("fn", [mmd2, mmd2_jit], ids=["nojit", "jit"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_jit_and_nojit_agree_with_reference(fn, unbiased):
    xs, ys = samples(19, shift=0.2)
    bws = BANDWIDTH_SETS["five"]
    np.testing.assert_allclose(
        fn(xs, ys, bandwidths=jnp.array(bws), unbiased=unbiased),
        np_mmd2(xs, ys, bws, unbiased),
        rtol=1e-5,
        atol=1e-7,
    )


def test_jitted_mmd2_traces_once_for_new_values_and_bandwidths():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(x, y, bw):
        return mmd2_chunked(x, y, bandwidths=bw, chunk_size=3)

    xs, ys = samples(20)
    loss(xs, ys, jnp.array([1.0, 2.0]))
    loss(xs + 1.0, ys, jnp.array([0.5, 3.0]))


# ---------------------------------------------------------------- bandwidths


def test_median_distance_equals_numpy():
    xs, ys = samples(21)
    pooled = np.concatenate([xs, ys])
    dists = [
        np.linalg.norm(pooled[i] - pooled[j])
        for i in range(len(pooled))
        for j in range(i + 1, len(pooled))
    ]
    np.testing.assert_allclose(median_distance_jit(xs, ys), np.median(dists), rtol=1e-5)
    np.testing.assert_allclose(
        median_distance_jit(xs),
        np.median([np.linalg.norm(xs[i] - xs[j]) for i in range(12) for j in range(i + 1, 12)]),
        rtol=1e-5,
    )
    mult = (0.5, 1.0, 3.0)
    np.testing.assert_allclose(
        median_bandwidths_jit(xs, ys, multipliers=mult),
        np.array(mult) * np.median(dists),
        rtol=1e-5,
    )


def test_median_distance_subsamples_with_explicit_key():
    rng = np.random.default_rng(22)
    xs = rng.normal(size=(600, 2))
    with pytest.raises(FairjaxError, match="key"):
        median_distance(xs, max_points=200)
    key = jax.random.key(0)
    sub = median_distance_jit(xs, max_points=200, key=key)
    np.testing.assert_array_equal(sub, median_distance_jit(xs, max_points=200, key=key))
    # the median of 2-D standard normal distances is sqrt(2 * 2 ln 2) ~ 1.665
    np.testing.assert_allclose(sub, np.sqrt(4 * np.log(2)), rtol=0.1)
    np.testing.assert_allclose(sub, median_distance_jit(xs), rtol=0.1)


def test_median_bandwidths_positive_for_duplicated_rows():
    xs = np.zeros((12, 3))
    assert median_distance_jit(xs) == 0.0
    bws = median_bandwidths_jit(xs)
    assert bws.shape == (5,) and np.all(bws > 0)
    # sqrt is not differentiated at 0: gradients stay finite with duplicated rows
    xs[6:] = np.random.default_rng(24).normal(size=(6, 3))
    assert np.all(np.isfinite(jax.jit(jax.grad(median_distance))(xs)))


def test_shape_errors_name_the_argument():
    xs, ys = samples(23, d=3)
    bws = jnp.array([1.0])
    with pytest.raises(FairjaxError, match="same number of columns"):
        mmd2(xs, ys[:, :2], bandwidths=bws)
    with pytest.raises(FairjaxError, match="bandwidths"):
        mmd2(xs, ys, bandwidths=jnp.ones((2, 2)))
    with pytest.raises(FairjaxError, match="x_weights"):
        mmd2(xs, ys, bandwidths=bws, x_weights=jnp.ones(3))
    with pytest.raises(FairjaxError, match="xs"):
        mmd2(xs[0], ys, bandwidths=bws)
