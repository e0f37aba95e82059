"""The hierarchy of intersectional groups, and rows stored by (group, label) cell.

k binary sensitive axes define G = 2^k intersectional groups. Group g is identified with
its bits b_0 ... b_{k-1} (axis 0 most significant), g = sum_i b_i 2^(k-1-i), so sorting
groups by id sorts their bit patterns lexicographically.

A *source set* of a group is a set of groups whose rows feed the generator of that group:

- `parents(k)`: the k parents of g (arXiv 2405.14521, sec. 3). Parent i marginalises
  axis i: it is the union of the two groups that agree with g on every axis except i, so
  it contains g. For k = 2 and g = (1, 0) the parents are {(0, 0), (1, 0)} (axis 0
  marginalised, written (*, 0)) and {(1, 0), (1, 1)} (written (1, *)).
- `ancestors(k, depth)`: the C(k, depth) ancestors that marginalise `depth` axes at once
  (depth 1 = the parents). Deeper ancestors are an option, not the default.
- `flipped_groups(k)`: the authors' control ("wrong parents"): source i of g is the single
  group with bit i of g flipped, a sibling that does *not* contain g.

Every source set is returned as a membership table `member[g, i, h]` (True when group h
belongs to source i of group g), so one sampling routine serves all three.

Rows are stored sorted by cell c = 2 g + y (group g, label y) in a `GroupedRows`; a cell is
the contiguous slice `[start[g, y], start[g, y] + count[g, y])`. `draw_rows` draws row
indices uniformly, with replacement, from any union of cells, with static shapes, so it
runs inside jit/vmap/scan.

References:
    Maheshwari, Bellet, Denis, Keller. Synthetic Data Generation for Intersectional
    Fairness by Leveraging Hierarchical Group Structure. arXiv 2405.14521.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fairjax.errors import FairjaxError

__all__ = [
    "GroupedRows",
    "ancestors",
    "check_sources",
    "draw_rows",
    "flipped_groups",
    "group_bits",
    "group_ids",
    "group_rows",
    "parents",
    "source_sets",
]

SOURCES = ("parents", "flipped")


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 16:
        raise FairjaxError(f"the number of sensitive axes k must be an int in [1, 16]; got {k!r}")
    return int(k)


def group_bits(k: int) -> np.ndarray:
    """Bits of every group, axis 0 most significant.

    Args:
        k: number of binary axes.

    Returns:
        [2^k, k] int array; row g holds the bits of group g.
    """
    k = _check_k(k)
    g = np.arange(2**k)
    return (g[:, None] >> (k - 1 - np.arange(k))[None, :]) & 1


def group_ids(bits: ArrayLike) -> np.ndarray:
    """Group id of each row of bits, the inverse of `group_bits`.

    Args:
        bits: [n, k] 0/1 values (one row per example).

    Returns:
        [n] int64 ids in [0, 2^k).
    """
    b = np.asarray(bits)
    if b.ndim != 2 or not np.isin(b, (0, 1)).all():
        raise FairjaxError(f"bits must be an [n, k] array of 0/1; got shape {b.shape}")
    k = b.shape[1]
    return (b.astype(np.int64) << (k - 1 - np.arange(k))).sum(axis=1)


def ancestors(k: int, depth: int = 1) -> np.ndarray:
    """Ancestors of every group that marginalise `depth` axes.

    Ancestor j of g, for the j-th combination A_j (in `itertools.combinations` order) of
    `depth` axes, is the union of the 2^depth groups that agree with g outside A_j.

    Args:
        k: number of binary axes.
        depth: number of marginalised axes, 1 <= depth <= k (1 gives the parents).

    Returns:
        [2^k, C(k, depth), 2^k] bool membership table member[g, j, h].
    """
    k = _check_k(k)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= k:
        raise FairjaxError(f"depth must be an int in [1, k={k}]; got {depth!r}")
    bits = group_bits(k)
    combos = list(itertools.combinations(range(k), int(depth)))
    keep = np.ones((len(combos), k), bool)
    for j, axes in enumerate(combos):
        keep[j, list(axes)] = False
    # h is in ancestor j of g iff bits agree on every kept axis
    agree = bits[:, None, None, :] == bits[None, None, :, :]  # [G, 1, G, k]
    return np.all(agree | ~keep[None, :, None, :], axis=-1)


def parents(k: int) -> np.ndarray:
    """The k parents of every group: parent i marginalises axis i (and contains g).

    Args:
        k: number of binary axes.

    Returns:
        [2^k, k, 2^k] bool membership table member[g, i, h].
    """
    return ancestors(k, 1)


def flipped_groups(k: int) -> np.ndarray:
    """The authors' "wrong parents" control: source i of g is g with bit i flipped.

    Args:
        k: number of binary axes.

    Returns:
        [2^k, k, 2^k] bool membership table; each source holds a single group, never g.
    """
    k = _check_k(k)
    g = np.arange(2**k)
    flipped = g[:, None] ^ (1 << (k - 1 - np.arange(k)))[None, :]  # [G, k]
    return flipped[:, :, None] == g[None, None, :]


def check_sources(kind: str) -> str:
    """Validate a source kind: "parents", "flipped" or "ancestors-<depth>" (depth >= 1)."""
    if kind in SOURCES:
        return kind
    if isinstance(kind, str) and kind.startswith("ancestors-") and kind[10:].isdigit():
        if int(kind[10:]) >= 1:
            return kind
    raise FairjaxError(
        f"sources must be one of {SOURCES} or 'ancestors-<depth>' (e.g. 'ancestors-2'); "
        f"got {kind!r}"
    )


def source_sets(k: int, kind: str = "parents") -> np.ndarray:
    """Membership table of a source kind.

    Args:
        k: number of binary axes.
        kind: "parents" (`parents`), "flipped" (`flipped_groups`) or "ancestors-<depth>"
            (`ancestors(k, depth)`, C(k, depth) sources per group).

    Returns:
        [2^k, num_sources, 2^k] bool membership table.
    """
    kind = check_sources(kind)
    if kind == "parents":
        return parents(k)
    if kind == "flipped":
        return flipped_groups(k)
    return ancestors(k, int(kind[10:]))


class GroupedRows(NamedTuple):
    """Encoded rows sorted by (group, label) cell.

    Attributes:
        x: [n, d] rows, sorted by cell c = 2 g + y.
        group: [n] int32 group id of each row.
        label: [n] int32 label of each row.
        start: [G, 2] int32 index of the first row of cell (g, y).
        count: [G, 2] int32 number of rows of cell (g, y) (may be 0).
    """

    x: jax.Array
    group: jax.Array
    label: jax.Array
    start: jax.Array
    count: jax.Array


def group_rows(x: ArrayLike, group: ArrayLike, label: ArrayLike, num_groups: int) -> GroupedRows:
    """Sort rows by (group, label) cell (stable, so equal cells keep their order).

    Args:
        x: [n, d] encoded rows.
        group: [n] int group ids in [0, num_groups).
        label: [n] 0/1 labels.
        num_groups: G, the number of groups (cells of absent groups are empty).

    Returns:
        A `GroupedRows` of jax arrays (float32 x, int32 indices).
    """
    x = np.asarray(x, np.float32)
    group = np.asarray(group).astype(np.int64)
    label = np.asarray(label).astype(np.int64)
    n = x.shape[0]
    if x.ndim != 2 or group.shape != (n,) or label.shape != (n,):
        raise FairjaxError(
            f"x must be [n, d] with group and label [n]; got {x.shape}, {group.shape}, "
            f"{label.shape}"
        )
    if n and (group.min() < 0 or group.max() >= num_groups):
        raise FairjaxError(
            f"group ids must lie in [0, {num_groups}); got {group.min()}..{group.max()}"
        )
    if not np.isin(label, (0, 1)).all():
        raise FairjaxError("label must hold only 0 and 1")
    cell = 2 * group + label
    order = np.argsort(cell, kind="stable")
    count = np.bincount(cell, minlength=2 * num_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return GroupedRows(
        x=jnp.asarray(x[order]),
        group=jnp.asarray(group[order], jnp.int32),
        label=jnp.asarray(label[order], jnp.int32),
        start=jnp.asarray(start.reshape(num_groups, 2), jnp.int32),
        count=jnp.asarray(count.reshape(num_groups, 2), jnp.int32),
    )


def append_rows(
    rows: GroupedRows, x: ArrayLike, group: ArrayLike, label: ArrayLike, num_groups: int
) -> GroupedRows:
    """`rows` plus the extra rows x [m, d], group [m], label [m], re-sorted by cell."""
    return group_rows(
        np.concatenate([np.asarray(rows.x), np.asarray(x, np.float32)]),
        np.concatenate([np.asarray(rows.group), np.asarray(group)]),
        np.concatenate([np.asarray(rows.label), np.asarray(label)]),
        num_groups,
    )


def draw_rows(key: jax.Array, start: jax.Array, count: jax.Array, cells: jax.Array, n: int):
    """Indices of `n` rows drawn uniformly, with replacement, from a union of cells.

    Every row of the selected cells is equally likely (a cell is hit in proportion to its
    size). Pure and shape-static: use it under jit, vmap and scan.

    Args:
        key: PRNG key.
        start: [G, 2] int first row of each cell (`GroupedRows.start`).
        count: [G, 2] int rows per cell (`GroupedRows.count`).
        cells: [G, 2] bool (or 0/1) selection of cells.
        n: static number of draws.

    Returns:
        ([n] int32 row indices, [] int32 number of rows in the union). When the union is
        empty the indices are 0 (valid to gather, meaningless): mask such draws out.
    """
    sizes = jnp.where(jnp.asarray(cells, bool), count, 0).reshape(-1)
    cum = jnp.cumsum(sizes)
    total = cum[-1]
    # floor(U * total) rather than randint with a traced bound: same law up to float32
    # resolution (2^-24 relative), and much cheaper to compile under vmap
    u = jnp.floor(jax.random.uniform(key, (n,)) * total).astype(cum.dtype)
    u = jnp.minimum(u, jnp.maximum(total - 1, 0))
    # compare_all: 2G cells are few, and it compiles much faster than the default scan
    c = jnp.minimum(
        jnp.searchsorted(cum, u, side="right", method="compare_all"), sizes.shape[0] - 1
    )
    idx = start.reshape(-1)[c] + u - (cum[c] - sizes[c])
    return jnp.where(total > 0, idx, 0).astype(jnp.int32), total.astype(jnp.int32)
