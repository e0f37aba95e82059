"""Maximum mean discrepancy (MMD) with Gaussian (RBF) kernels, as pure JAX functions.

Two uses in fairjax:

* the training loss of the intersectional-augmentation generators, which match each
  intersectional group's synthetic rows to its real rows with a mixture-of-RBF kernel
  (arXiv 2405.14521). Groups have different sizes, so batches are padded to one shape and
  masked with `x_weights` / `y_weights`; `mmd2` is then vmapped over the group axis;
* a data-quality metric between real and synthetic rows (`metrics`), where `mmd2_chunked`
  keeps memory at O(chunk_size * (n + m)) for large tables.

Kernels are written for one pair of rows and lifted to Gram matrices with `gram` (nested
vmap). Nothing here is jitted: callers jit once at the edge, with `chunk_size` and
`unbiased` static.

Estimators, with row weights a_i >= 0 (x side, i = 1..n) and b_j >= 0 (y side, j = 1..m),
A = sum_i a_i, B = sum_j b_j, and k the mixture kernel:

    biased (V-statistic):
        MMD^2_b = sum_ij a_i a_j k(x_i, x_j) / A^2
                + sum_ij b_i b_j k(y_i, y_j) / B^2
                - 2 sum_ij a_i b_j k(x_i, y_j) / (A B)

    unbiased (U-statistic), the within-sample diagonal i == j dropped:
        MMD^2_u = sum_{i != j} a_i a_j k(x_i, x_j) / (A^2 - sum_i a_i^2)
                + sum_{i != j} b_i b_j k(y_i, y_j) / (B^2 - sum_j b_j^2)
                - 2 sum_ij a_i b_j k(x_i, y_j) / (A B)

With 0/1 weights marking n' real x rows and m' real y rows these are exactly the usual
estimators on the real rows (Gretton et al. 2012, JMLR 13, eqs. 3 and 5): A^2 - sum a^2 =
n'(n' - 1). A term whose denominator is exactly 0 (no real rows, or one real row in the
unbiased within-sample term) is taken to be 0, so padded empty groups give finite values
and gradients; mask such groups out of any loss.

References:
    Gretton, Borgwardt, Rasch, Schoelkopf, Smola. A Kernel Two-Sample Test. JMLR 2012.
    Li, Swersky, Zemel. Generative Moment Matching Networks. arXiv 1502.02761 (mixture of RBF).
    arXiv 2405.14521 (intersectional augmentation; mixture-of-RBF MMD training loss).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = [
    "gram",
    "median_bandwidths",
    "median_distance",
    "mixture_rbf_kernel",
    "mmd2",
    "mmd2_chunked",
    "rbf_kernel",
    "squared_distance",
]

KernelFn = Callable[[Array, Array], Array]

# float32 matmuls may run in TF32/bf16 on accelerators by default; the expanded squared
# distance below cancels large terms, so it needs full precision.
_PRECISION = jax.lax.Precision.HIGHEST


def squared_distance(x: ArrayLike, y: ArrayLike) -> Array:
    """Squared Euclidean distance ||x - y||^2 of one pair of rows, clamped at 0.

    Written as x.x + y.y - 2 x.y so that, under `gram`'s nested vmap, the cross term
    becomes one matrix product and no [n, m, d] difference tensor is formed (which reverse
    mode would otherwise keep as a residual). Rounding can make the expansion slightly
    negative for x ~ y, hence the clamp. No square root is taken, so gradients are finite
    everywhere, including at x == y (where they are 0).

    Args:
        x: [d] row.
        y: [d] row.

    Returns:
        [] nonnegative squared distance.
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    xx = jnp.dot(x, x, precision=_PRECISION)
    yy = jnp.dot(y, y, precision=_PRECISION)
    xy = jnp.dot(x, y, precision=_PRECISION)
    return jnp.maximum(xx + yy - 2.0 * xy, 0.0)


def rbf_kernel(x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike) -> Array:
    """Gaussian kernel exp(-||x - y||^2 / (2 bandwidth^2)) of one pair of rows.

    Args:
        x: [d] row.
        y: [d] row.
        bandwidth: [] positive length scale, in the units of the rows.

    Returns:
        [] kernel value in (0, 1].
    """
    bandwidth = jnp.asarray(bandwidth)
    return jnp.exp(-squared_distance(x, y) / (2.0 * bandwidth**2))


def mixture_rbf_kernel(x: ArrayLike, y: ArrayLike, bandwidths: ArrayLike) -> Array:
    """Sum of Gaussian kernels, k(x, y) = sum_s exp(-||x - y||^2 / (2 s^2)), of one pair.

    Args:
        x: [d] row.
        y: [d] row.
        bandwidths: [b] positive length scales s.

    Returns:
        [] kernel value in (0, b].

    References:
        arXiv 1502.02761 (GMMN), sec. 3; arXiv 2405.14521 (its MMD loss).
    """
    bandwidths = jnp.asarray(bandwidths)
    d2 = squared_distance(x, y)
    return jnp.sum(jnp.exp(-d2 / (2.0 * bandwidths**2)))


def gram(kernel_fn: KernelFn, xs: ArrayLike, ys: ArrayLike) -> Array:
    """Gram matrix K[i, j] = kernel_fn(xs[i], ys[j]) by nested vmap of a one-pair kernel.

    Args:
        kernel_fn: (x[d], y[d]) -> [] kernel of one pair.
        xs: [n, d] rows.
        ys: [m, d] rows.

    Returns:
        [n, m] kernel matrix.
    """
    # Rematerialise the per-pair kernel in reverse mode: otherwise its intermediates (for the
    # mixture kernel, one [n, m] exponential per bandwidth) are all kept as residuals, which
    # costs b times the memory of the Gram matrix and is slower than recomputing them.
    kernel_fn = jax.checkpoint(kernel_fn)
    return jax.vmap(lambda x: jax.vmap(lambda y: kernel_fn(x, y))(ys))(xs)


def _check_rows(xs: Array, ys: Array, bandwidths: Array) -> None:
    if xs.ndim != 2:
        raise FairjaxError(f"xs must have shape [n, d]; got shape {xs.shape}.")
    if ys.ndim != 2:
        raise FairjaxError(f"ys must have shape [m, d]; got shape {ys.shape}.")
    if xs.shape[1] != ys.shape[1]:
        raise FairjaxError(
            f"xs and ys must have the same number of columns d; got xs {xs.shape} "
            f"and ys {ys.shape}."
        )
    if bandwidths.ndim != 1 or bandwidths.shape[0] == 0:
        raise FairjaxError(
            f"bandwidths must be a nonempty 1-D array [b]; got shape {bandwidths.shape}."
        )


def _weights(weights: ArrayLike | None, n: int, dtype, name: str) -> Array:
    if weights is None:
        return jnp.ones((n,), dtype)
    weights = jnp.asarray(weights, dtype)
    if weights.shape != (n,):
        raise FairjaxError(
            f"{name} must have shape [{n}] (one weight per row); got {weights.shape}."
        )
    return weights


def _mass_sums(k: Array, row_masses: Array, col_masses: Array) -> Array:
    """row_masses.T @ k @ col_masses for k [r, c], row_masses [r, 2], col_masses [c, 2]."""
    # Written as multiply-and-reduce, not as dots: with constant masses (no weights given)
    # XLA:CPU fuses the dots together with the whole kernel computation into one custom
    # fusion that runs 20-40x slower; the reduce form fuses into plain loops instead.
    k_masses = jnp.sum(k[:, :, None] * col_masses[None, :, :], axis=1)  # [r, 2]
    return jnp.sum(row_masses[:, :, None] * k_masses[:, None, :], axis=0)


def _row_block_sums(
    kernel_fn: KernelFn,
    z_rows: Array,
    row_masses: Array,
    start: Array | int,
    zs: Array,
    masses: Array,
    *,
    drop_diagonal: bool,
) -> Array:
    """row_masses.T @ K @ masses for the rows start, start + 1, ... of K = gram(zs, zs)."""
    k = gram(kernel_fn, z_rows, zs)  # [r, n + m]
    if drop_diagonal:
        # compare indices rather than build an eye mask: this fuses and works per chunk
        rows = start + jnp.arange(z_rows.shape[0])
        k = jnp.where(rows[:, None] == jnp.arange(zs.shape[0])[None, :], 0.0, k)
    return _mass_sums(k, row_masses, masses)


def _block_kernel_sums(
    kernel_fn: KernelFn,
    zs: Array,
    masses: Array,
    *,
    drop_diagonal: bool,
    chunk_size: int | None,
) -> Array:
    """S = masses^T K masses for K[i, j] = kernel_fn(zs[i], zs[j]), optionally in row chunks.

    With zs the pooled rows [xs; ys] and masses [n + m, 2] holding (a, 0) on x rows and
    (0, b) on y rows, S[0, 0] = sum a_i a_j k(x_i, x_j), S[1, 1] = sum b_i b_j k(y_i, y_j) and
    S[0, 1] = sum a_i b_j k(x_i, y_j): one Gram matrix serves all three terms. drop_diagonal
    zeroes K[i, i], i.e. the i == j pairs within each sample.
    """
    block_sums = functools.partial(
        _row_block_sums, kernel_fn, zs=zs, masses=masses, drop_diagonal=drop_diagonal
    )
    num = zs.shape[0]
    if chunk_size is None:
        return block_sums(zs, masses, 0)

    num_chunks = -(-num // chunk_size)
    pad = num_chunks * chunk_size - num
    # padded rows are zeros with zero mass: finite kernel values that contribute nothing
    z_chunks = jnp.pad(zs, ((0, pad), (0, 0))).reshape(num_chunks, chunk_size, -1)
    mass_chunks = jnp.pad(masses, ((0, pad), (0, 0))).reshape(num_chunks, chunk_size, 2)
    starts = jnp.arange(num_chunks) * chunk_size
    # checkpoint: reverse mode recomputes each [chunk_size, n + m] block instead of stacking
    # all of them as scan residuals, which would bring memory back to O((n + m)^2).
    chunk_sums = jax.checkpoint(lambda args: block_sums(*args))
    return jnp.sum(jax.lax.map(chunk_sums, (z_chunks, mass_chunks, starts)), axis=0)


def _safe_ratio(num: Array, den: Array) -> Array:
    # den == 0 only when every weighted pair is absent, and then num == 0 too: define 0/0 = 0
    return num / jnp.where(den == 0, 1.0, den)


def _mmd2(xs, ys, bandwidths, unbiased, x_weights, y_weights, chunk_size) -> Array:
    xs = jnp.asarray(xs)
    ys = jnp.asarray(ys)
    dtype = jnp.result_type(xs, ys, float)
    xs = xs.astype(dtype)
    ys = ys.astype(dtype)
    bandwidths = jnp.asarray(bandwidths, dtype)
    _check_rows(xs, ys, bandwidths)
    a = _weights(x_weights, xs.shape[0], dtype, "x_weights")
    b = _weights(y_weights, ys.shape[0], dtype, "y_weights")
    a_sum, b_sum = jnp.sum(a), jnp.sum(b)

    zs = jnp.concatenate([xs, ys], axis=0)
    # The RBF kernel is translation invariant, so centring changes no value (and no gradient:
    # hence stop_gradient) but shrinks the x.x and y.y terms the expanded distance cancels.
    shift = _safe_ratio(a @ xs + b @ ys, a_sum + b_sum)
    zs = zs - jax.lax.stop_gradient(shift)
    masses = jnp.concatenate(
        [
            jnp.stack([a, jnp.zeros_like(a)], axis=1),
            jnp.stack([jnp.zeros_like(b), b], axis=1),
        ],
        axis=0,
    )
    kernel_fn = lambda x, y: mixture_rbf_kernel(x, y, bandwidths)
    s = _block_kernel_sums(kernel_fn, zs, masses, drop_diagonal=unbiased, chunk_size=chunk_size)

    if unbiased:
        den_xx = a_sum**2 - jnp.sum(a**2)
        den_yy = b_sum**2 - jnp.sum(b**2)
    else:
        den_xx = a_sum**2
        den_yy = b_sum**2
    return (
        _safe_ratio(s[0, 0], den_xx)
        + _safe_ratio(s[1, 1], den_yy)
        - 2.0 * _safe_ratio(s[0, 1], a_sum * b_sum)
    )


def mmd2(
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    bandwidths: ArrayLike,
    unbiased: bool = False,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
) -> Array:
    """Squared MMD between two weighted samples with the mixture-of-RBF kernel.

    See the module docstring for the weighted biased (V) and unbiased (U) formulas. One
    [n + m, n + m] Gram matrix of the pooled rows is formed; use `mmd2_chunked` when it does
    not fit in memory. Differentiable in xs, ys and bandwidths; vmap it over a leading group axis
    of padded batches (padded rows: finite values, e.g. zeros, with weight 0).

    Args:
        xs: [n, d] first sample (e.g. real rows).
        ys: [m, d] second sample (e.g. synthetic rows).
        bandwidths: [b] positive kernel length scales (see `median_bandwidths`).
        unbiased: static; True for the U-statistic (can be negative), False for the
            V-statistic (always >= 0, and 0 for identical samples).
        x_weights: [n] nonnegative row weights, usually a 0/1 mask of real rows; None = ones.
        y_weights: [m] nonnegative row weights; None = ones.

    Returns:
        [] squared MMD estimate.

    References:
        Gretton et al., JMLR 2012, eqs. 3 and 5; arXiv 2405.14521 (training loss).
    """
    return _mmd2(xs, ys, bandwidths, unbiased, x_weights, y_weights, None)


def mmd2_chunked(
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    bandwidths: ArrayLike,
    chunk_size: int,
    unbiased: bool = False,
    x_weights: ArrayLike | None = None,
    y_weights: ArrayLike | None = None,
) -> Array:
    """`mmd2` computed over row chunks, with memory O(chunk_size * (n + m)).

    The pooled rows [xs; ys] are visited `chunk_size` at a time with `lax.map` (the last
    chunk zero-padded with zero weight); each chunk's [chunk_size, n + m] kernel block is
    reduced to its weighted sums at once. Each chunk is checkpointed, so reverse-mode
    differentiation also stays at O(chunk_size * (n + m)) memory, at the cost of recomputing
    the kernel blocks in the backward pass. Same value as `mmd2` up to floating-point
    summation order.

    Args:
        xs: [n, d] first sample.
        ys: [m, d] second sample.
        bandwidths: [b] positive kernel length scales.
        chunk_size: static positive int, rows per chunk; need not divide n or m.
        unbiased: static; see `mmd2`.
        x_weights: [n] nonnegative row weights; None = ones.
        y_weights: [m] nonnegative row weights; None = ones.

    Returns:
        [] squared MMD estimate.
    """
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool):
        raise FairjaxError(
            f"chunk_size must be a static positive int; got {chunk_size!r} "
            f"({type(chunk_size).__name__})."
        )
    if chunk_size < 1:
        raise FairjaxError(f"chunk_size must be a positive int; got {chunk_size}.")
    return _mmd2(xs, ys, bandwidths, unbiased, x_weights, y_weights, int(chunk_size))


def median_distance(
    xs: ArrayLike,
    ys: ArrayLike | None = None,
    *,
    max_points: int = 1000,
    key: Array | None = None,
) -> Array:
    """Median Euclidean distance between distinct rows of the pooled sample (xs, ys).

    The median is over all pairs i < j of pooled rows (self-pairs excluded). If the pool has
    more than `max_points` rows, `max_points` of them are drawn without replacement with
    `key`, so the cost stays O(max_points^2). Gradients are finite even with duplicate
    rows (the square root is guarded at 0); bandwidths are usually computed once from real
    data and held fixed.

    Args:
        xs: [n, d] rows.
        ys: optional [m, d] rows pooled with xs.
        max_points: static; pool size above which rows are subsampled.
        key: PRNG key, required only when subsampling happens.

    Returns:
        [] median pairwise distance (0 if more than half of the pairs are duplicates).
    """
    xs = jnp.asarray(xs)
    if xs.ndim != 2:
        raise FairjaxError(f"xs must have shape [n, d]; got shape {xs.shape}.")
    if ys is not None:
        ys = jnp.asarray(ys)
        if ys.ndim != 2 or ys.shape[1] != xs.shape[1]:
            raise FairjaxError(
                f"ys must have shape [m, {xs.shape[1]}] to pool with xs {xs.shape}; got {ys.shape}."
            )
        xs = jnp.concatenate([xs, ys.astype(jnp.result_type(xs, ys))], axis=0)
    xs = xs.astype(jnp.result_type(xs, float))
    num = xs.shape[0]
    if num < 2:
        raise FairjaxError(f"median_distance needs at least 2 rows in total; got {num}.")
    if num > max_points:
        if key is None:
            raise FairjaxError(
                f"median_distance got {num} rows > max_points={max_points}; pass key= "
                "(a jax.random key) to subsample, or raise max_points."
            )
        if max_points < 2:
            raise FairjaxError(f"max_points must be >= 2; got {max_points}.")
        idx = jax.random.choice(key, num, (max_points,), replace=False)
        xs = xs[idx]
        num = max_points
    xs = xs - jax.lax.stop_gradient(jnp.mean(xs, axis=0))  # see _mmd2 on centring
    d2 = gram(squared_distance, xs, xs)
    rows, cols = np.triu_indices(num, k=1)
    d2 = d2[rows, cols]
    positive = d2 > 0
    # sqrt'(0) is infinite: evaluate it only on positive entries so gradients stay finite
    dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, d2, 1.0)), 0.0)
    return jnp.median(dist)


def median_bandwidths(
    xs: ArrayLike,
    ys: ArrayLike | None = None,
    *,
    multipliers: Sequence[float] | ArrayLike = (0.25, 0.5, 1.0, 2.0, 4.0),
    max_points: int = 1000,
    key: Array | None = None,
    min_distance: float = 1e-6,
) -> Array:
    """Mixture bandwidths from the median heuristic: multipliers * median pairwise distance.

    The documented default for fairjax encodings (standardised numeric columns and one-hot
    categoricals): five scales around the median distance, from a quarter to four times it,
    so the mixture kernel sees both local and global structure.

    Args:
        xs: [n, d] rows (usually the real data).
        ys: optional [m, d] rows pooled with xs.
        multipliers: [b] positive factors applied to the median distance.
        max_points: static; see `median_distance`.
        key: PRNG key, required only when the pool exceeds max_points.
        min_distance: floor on the median (which is 0 when most rows are duplicates), so
            bandwidths stay positive.

    Returns:
        [b] bandwidths.
    """
    multipliers = jnp.asarray(multipliers)
    if multipliers.ndim != 1 or multipliers.shape[0] == 0:
        raise FairjaxError(
            f"multipliers must be a nonempty 1-D sequence; got shape {multipliers.shape}."
        )
    median = median_distance(xs, ys, max_points=max_points, key=key)
    median = jnp.maximum(median, min_distance)
    return multipliers.astype(median.dtype) * median
