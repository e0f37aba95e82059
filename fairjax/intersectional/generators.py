"""Generators that build examples of a group from examples of its parents, trained by MMD.

For a (group g, label y) cell, one generated example mixes one example drawn (with
replacement, label y) from each of g's k source sets (its parents, `groups.parents`):

    "simple":       x_gen = sum_i lambda_i x_i        params lambda [k], init 1/k
    "per-feature":  x_gen = w * sum_i x_i             params w [d] (elementwise), init 1/k
    "linear":       x_gen = sum_i x_i W               params W [d, d], init I / k

(the authors' code, arXiv 2405.14521). Every parameterisation starts at the mean of the
parents' examples. Parameter sets are shared per label (`sharing="label"`: 2 sets, the
authors' default) or separate per cell (`sharing="group"`: 2 G sets); params are stacked
along a leading axis of that size.

Loss of a cell, with X_g a batch of real examples of the cell, X_i the parents' batches
and X_gen = f(X_1, ..., X_k):

    L_gy = MMD^2(X_g, X_gen) + beta * sum_i MMD^2(X_i, X_gen)

(biased MMD^2, mixture-of-RBF kernel, `fairjax.mmd`). The paper writes the parent term;
the authors' code detaches it (beta = 0), and beta = 0 is fairjax's default too: the
parent term pulls the generated rows toward the parents, i.e. away from the target group.

The loss reads a `GeneratorData` (rows, source sets, bandwidths) passed as an argument,
so one compiled training chunk serves the right and the wrong parents, every seed and
every data set of one shape.

JAX formulation. The authors draw one random target group per step. Here every step
evaluates all 2 G cells at once: fixed-size batches (`batch_size` rows per cell, drawn
with replacement, so no padding is needed) are gathered into [2G, B, d] arrays and the
per-cell loss is vmapped. Cells that cannot be trained (fewer than `min_rows` real rows,
or an empty source set) get weight 0; the loss is the mean over the others. This is the
expectation of the authors' one-group step over a uniformly drawn group, with less
variance. Training is `fairjax.training.run`, `eval_every` steps per compiled call;
between calls a host-side `score_fn` (e.g. a real-vs-generated classifier's balanced
accuracy) rates the current parameters and the best-scoring checkpoint is kept.

References:
    arXiv 2405.14521, sec. 3 (generators from parents, MMD loss); Gretton et al., JMLR 2012.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from fairjax import mmd, training
from fairjax.errors import FairjaxError
from fairjax.intersectional.groups import GroupedRows, draw_rows

__all__ = [
    "PARAMETERISATIONS",
    "SHARINGS",
    "GeneratorData",
    "GeneratorFit",
    "Parameterisation",
    "cell_param_index",
    "fit_generator",
    "generate_cells",
    "generate_counts",
    "init_generator_params",
    "make_generator_loss",
    "trainable_cells",
]

Params = Any


class GeneratorData(NamedTuple):
    """The arrays the MMD loss reads, passed as an argument (not closed over) so that one
    compiled step serves every data set, seed and source kind of the same shapes.

    Attributes:
        rows: real training rows by cell (`groups.group_rows`).
        members: [G, k, G] bool source sets (`groups.parents`, `groups.flipped_groups`).
        bandwidths: [b] RBF length scales of the mixture kernel, in encoded units.
    """

    rows: GroupedRows
    members: jax.Array
    bandwidths: jax.Array


class Parameterisation(NamedTuple):
    """How one parameter set mixes one example from each of k source sets.

    Attributes:
        init: `(k, d) -> params` of one set (the mean of the k examples).
        apply: `(params, xs [k, d]) -> [d]`, one generated example.
    """

    init: Callable[[int, int], Params]
    apply: Callable[[Params, jax.Array], jax.Array]


def _simple_init(k: int, d: int) -> Params:
    return {"lam": jnp.full((k,), 1.0 / k, jnp.float32)}


def _simple_apply(params: Params, xs: jax.Array) -> jax.Array:
    return params["lam"] @ xs


def _per_feature_init(k: int, d: int) -> Params:
    return {"w": jnp.full((d,), 1.0 / k, jnp.float32)}


def _per_feature_apply(params: Params, xs: jax.Array) -> jax.Array:
    return params["w"] * jnp.sum(xs, axis=0)


def _linear_init(k: int, d: int) -> Params:
    return {"W": jnp.eye(d, dtype=jnp.float32) / k}


def _linear_apply(params: Params, xs: jax.Array) -> jax.Array:
    return jnp.sum(xs, axis=0) @ params["W"]


PARAMETERISATIONS: dict[str, Parameterisation] = {
    "simple": Parameterisation(_simple_init, _simple_apply),
    "per-feature": Parameterisation(_per_feature_init, _per_feature_apply),
    "linear": Parameterisation(_linear_init, _linear_apply),
}
SHARINGS = ("label", "group")


def _parameterisation(name: str) -> Parameterisation:
    if name not in PARAMETERISATIONS:
        raise FairjaxError(
            f"parameterisation must be one of {list(PARAMETERISATIONS)}; got {name!r}"
        )
    return PARAMETERISATIONS[name]


def cell_param_index(num_groups: int, sharing: str) -> np.ndarray:
    """Which parameter set serves cell (g, y).

    Args:
        num_groups: G.
        sharing: "label" (set y, 2 sets) or "group" (set 2 g + y, 2 G sets).

    Returns:
        [G, 2] int32 indices into the leading axis of the stacked params.
    """
    if sharing not in SHARINGS:
        raise FairjaxError(f"sharing must be one of {SHARINGS}; got {sharing!r}")
    g, y = np.meshgrid(np.arange(num_groups), np.arange(2), indexing="ij")
    return (y if sharing == "label" else 2 * g + y).astype(np.int32)


def init_generator_params(
    parameterisation: str, *, num_sources: int, dim: int, num_groups: int, sharing: str
) -> Params:
    """Initial parameters, one set per label or per cell, stacked on a leading axis.

    Args:
        parameterisation: "simple", "per-feature" or "linear".
        num_sources: k, source sets per group.
        dim: d, width of the encoded rows.
        num_groups: G.
        sharing: "label" (2 sets) or "group" (2 G sets).

    Returns:
        Params pytree with leaves [P, ...], P = 2 or 2 G.
    """
    spec = _parameterisation(parameterisation)
    num_sets = int(cell_param_index(num_groups, sharing).max()) + 1
    one = spec.init(int(num_sources), int(dim))
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (num_sets, *a.shape)), one)


def _source_cells(members: jax.Array, label: int) -> jax.Array:
    """[G, k, G] membership -> [G, k, G, 2] cell selections for one label."""
    onehot = jax.nn.one_hot(label, 2, dtype=bool)
    return members[..., None] & onehot


def trainable_cells(count: ArrayLike, members: ArrayLike, *, min_rows: int = 2) -> jax.Array:
    """Which cells can be generated, and which can also be trained.

    Args:
        count: [G, 2] rows per cell.
        members: [G, k, G] bool source sets.
        min_rows: real rows a cell needs to enter the MMD loss.

    Returns:
        [2, G, 2] bool: [0] cells whose k source sets all have rows of that label (can be
        generated), [1] those that also have >= `min_rows` real rows (enter the loss).
    """
    count = jnp.asarray(count)
    members = jnp.asarray(members, bool)
    # rows of label y in source i of g: sum_h members[g, i, h] count[h, y]
    source_rows = jnp.einsum("gih,hy->giy", members.astype(count.dtype), count)
    can_generate = jnp.all(source_rows > 0, axis=1)
    return jnp.stack([can_generate, can_generate & (count >= min_rows)])


def _draw_sources(key, rows: GroupedRows, sources: jax.Array, n: int) -> jax.Array:
    """Row indices [k, n]: n draws from each of the k source cell selections [k, G, 2]."""
    keys = jax.random.split(key, sources.shape[0])
    idx, _ = jax.vmap(lambda k, c: draw_rows(k, rows.start, rows.count, c, n))(keys, sources)
    return idx


def _mix(apply_fn, params_cell: Params, xs: jax.Array) -> jax.Array:
    """xs [k, n, d] -> [n, d]: apply one parameter set to n tuples of source examples."""
    return jax.vmap(apply_fn, in_axes=(None, 1))(params_cell, xs)


def generate_cells(
    key: jax.Array,
    params: Params,
    rows: GroupedRows,
    members: jax.Array,
    n: int,
    *,
    parameterisation: str,
    sharing: str,
) -> tuple[jax.Array, jax.Array]:
    """`n` generated examples of every (group, label) cell.

    Args:
        key: PRNG key; cell (g, y) uses `fold_in(key, 2 g + y)`.
        params: stacked generator params (`init_generator_params`).
        rows: the real rows the generator mixes (`groups.group_rows`).
        members: [G, k, G] bool source sets (`groups.parents` / `groups.flipped_groups`).
        n: static rows per cell.
        parameterisation, sharing: as for `init_generator_params`.

    Returns:
        (x [G, 2, n, d] generated rows, ok [G, 2] bool: the cell's sources have rows of
        that label; rows of cells that are not ok are meaningless).
    """
    apply_fn = _parameterisation(parameterisation).apply
    members = jnp.asarray(members, bool)
    num_groups = members.shape[0]
    index = jnp.asarray(cell_param_index(num_groups, sharing))
    ok = trainable_cells(rows.count, members)[0]

    def one(g, y):
        p = jax.tree.map(lambda a: a[index[g, y]], params)
        sources = _source_cells(members[g], y)
        idx = _draw_sources(jax.random.fold_in(key, 2 * g + y), rows, sources, n)
        return _mix(apply_fn, p, rows.x[idx])

    g, y = jnp.meshgrid(jnp.arange(num_groups), jnp.arange(2), indexing="ij")
    x = jax.vmap(jax.vmap(one))(g, y)
    return x, ok


@functools.lru_cache(maxsize=16)
def _compiled_generate(parameterisation: str, sharing: str, n: int):
    def run(key, params, rows, members):
        return generate_cells(
            key, params, rows, members, n, parameterisation=parameterisation, sharing=sharing
        )

    return jax.jit(run)


def generate_counts(
    key: jax.Array,
    params: Params,
    rows: GroupedRows,
    members: ArrayLike,
    counts: ArrayLike,
    *,
    parameterisation: str,
    sharing: str,
    chunk_rows: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`counts[g, y]` generated rows of every cell, on the host.

    Calls a jitted `generate_cells` with `chunk_rows` rows per cell as often as the largest
    count needs (call c uses `fold_in(key, c)`), so one compilation serves every count.

    Args:
        key: PRNG key.
        params, rows, members, parameterisation, sharing: see `generate_cells`.
        counts: [G, 2] ints >= 0; cells that cannot be generated must have count 0.
        chunk_rows: static rows per cell per call.

    Returns:
        (x [m, d] float32, group [m] int64, label [m] int64), sorted by cell.
    """
    counts = np.asarray(counts, np.int64)
    run = _compiled_generate(parameterisation, sharing, int(chunk_rows))
    members = jnp.asarray(members, bool)
    parts = [
        np.asarray(run(jax.random.fold_in(key, c), params, rows, members)[0])
        for c in range(-(-int(counts.max(initial=0)) // int(chunk_rows)))
    ]
    xs, gs, ys = [], [], []
    for g, y in zip(*np.nonzero(counts), strict=True):
        m = int(counts[g, y])
        xs.append(np.concatenate([p[g, y] for p in parts])[:m])
        gs.append(np.full(m, g, np.int64))
        ys.append(np.full(m, y, np.int64))
    if not xs:
        d = rows.x.shape[1]
        return np.zeros((0, d), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(gs), np.concatenate(ys)


def make_generator_loss(
    *,
    parameterisation: str,
    sharing: str,
    beta: float = 0.0,
    batch_size: int = 256,
    min_rows: int = 2,
) -> Callable[[Params, GeneratorData, jax.Array], jax.Array]:
    """`loss_fn(params, data, key) -> []`: the mean MMD loss over all trainable cells.

    Each call draws, for every cell, `batch_size` real rows of the cell and `batch_size`
    rows from each source set (with replacement, label of the cell), generates
    `batch_size` rows and evaluates L_gy (module docstring); the per-cell losses are
    vmapped and averaged over cells with enough rows.

    Args:
        parameterisation, sharing: as for `init_generator_params`.
        beta: weight of the parent term (0 = the authors' code, the default); static.
        batch_size: static rows per cell and source.
        min_rows: real rows a cell needs to enter the loss.

    Returns:
        The loss function; differentiable in params, pure, not jitted. `data` is a
        `GeneratorData`.

    References:
        arXiv 2405.14521, sec. 3 (MMD to the group, beta * MMD to the parents).
    """
    if not np.isfinite(beta) or beta < 0:
        raise FairjaxError(f"beta must be a finite number >= 0; got {beta!r}")
    if int(batch_size) < 2:
        raise FairjaxError(f"batch_size must be >= 2; got {batch_size!r}")
    apply_fn = _parameterisation(parameterisation).apply
    if sharing not in SHARINGS:
        raise FairjaxError(f"sharing must be one of {SHARINGS}; got {sharing!r}")
    beta = float(beta)
    batch_size = int(batch_size)

    def cell_loss(params_cell, x_target, x_sources, bandwidths):
        x_gen = _mix(apply_fn, params_cell, x_sources)
        loss = mmd.mmd2(x_target, x_gen, bandwidths=bandwidths)
        if beta > 0:  # static: beta = 0 skips the k extra kernel matrices
            to_parents = jax.vmap(lambda xs: mmd.mmd2(xs, x_gen, bandwidths=bandwidths))
            loss = loss + beta * jnp.sum(to_parents(x_sources))
        return loss

    def loss_fn(params: Params, data: GeneratorData, key: jax.Array) -> jax.Array:
        rows, members = data.rows, jnp.asarray(data.members, bool)
        num_groups = members.shape[0]
        index = jnp.asarray(cell_param_index(num_groups, sharing))
        weight = trainable_cells(rows.count, members, min_rows=min_rows)[1]

        def one(g, y):
            target_key, source_key = jax.random.split(jax.random.fold_in(key, 2 * g + y))
            own = jax.nn.one_hot(g, num_groups, dtype=bool)[:, None] & jax.nn.one_hot(
                y, 2, dtype=bool
            )
            t_idx, _ = draw_rows(target_key, rows.start, rows.count, own, batch_size)
            s_idx = _draw_sources(source_key, rows, _source_cells(members[g], y), batch_size)
            p = jax.tree.map(lambda a: a[index[g, y]], params)
            return cell_loss(p, rows.x[t_idx], rows.x[s_idx], data.bandwidths)

        g, y = jnp.meshgrid(jnp.arange(num_groups), jnp.arange(2), indexing="ij")
        losses = jax.vmap(jax.vmap(one))(g, y)
        weight = weight.astype(losses.dtype)
        return jnp.sum(weight * losses) / jnp.maximum(jnp.sum(weight), 1.0)

    return loss_fn


class GeneratorFit(NamedTuple):
    """What `fit_generator` returns.

    Attributes:
        params: the kept (best-scoring) parameters.
        best_step: optimizer steps taken by `params`.
        losses: [steps] training loss of every step.
        eval_steps: [E] steps at which `score_fn` was evaluated (0 = initial params).
        eval_scores: [E] the scores (lower is better); empty without `score_fn`.
        record: the `fairjax.training.Record` of the run, one logged window per step
            (its evaluations leave out the initial parameters' score).
    """

    params: Params
    best_step: int
    losses: np.ndarray
    eval_steps: np.ndarray
    eval_scores: np.ndarray
    record: training.Record


@functools.lru_cache(maxsize=16)
def _compiled_step(parameterisation, sharing, beta, batch_size, min_rows, lr):
    """(optimizer, step_fn) of the MMD loss, one per setting, so `training.run` reuses its
    compiled chunks across seeds, parents and data sets of one shape.

    The state is `(TrainState, GeneratorData)`: the loss draws its own batches of every
    cell from the step key, so the data ride in the state (no step changes them) rather
    than in a batch, which `training.run` would split by rows over devices.
    """
    loss_fn = make_generator_loss(
        parameterisation=parameterisation,
        sharing=sharing,
        beta=beta,
        batch_size=batch_size,
        min_rows=min_rows,
    )
    optimizer = optax.adam(lr)
    inner = training.make_train_step(loss_fn, optimizer)

    def step_fn(state, batch, key):
        del batch  # empty: see above
        train, data = state
        train, metrics = inner(train, data, key)
        return (train, data), metrics

    return optimizer, step_fn


def _no_batch(data: Any, key: jax.Array) -> tuple:
    return ()


def fit_generator(
    key: jax.Array,
    rows: GroupedRows,
    members: ArrayLike,
    *,
    parameterisation: str = "simple",
    sharing: str = "label",
    bandwidths: ArrayLike,
    beta: float = 0.0,
    batch_size: int = 256,
    steps: int = 1000,
    lr: float = 0.1,
    eval_every: int = 100,
    min_rows: int = 2,
    score_fn: Callable[[Params], float] | None = None,
    progress: bool = False,
) -> GeneratorFit:
    """Train the generators of all cells with Adam on the MMD loss; keep the best checkpoint.

    Runs `fairjax.training.run` with `eval_every` steps per compiled chunk and `score_fn`
    as its evaluation (no early stopping: every step runs).

    Args:
        key: PRNG key (step t draws its batches from the step key of `fold_in(key, t)`).
        rows: real training rows by cell (`groups.group_rows`).
        members: [G, k, G] bool source sets.
        parameterisation, sharing: see `init_generator_params`.
        bandwidths: [b] RBF length scales of the mixture kernel (e.g.
            `fairjax.mmd.median_bandwidths` of the real rows).
        beta, batch_size, min_rows: see `make_generator_loss`.
        steps: optimizer steps (rounded up to a multiple of `eval_every`).
        lr: Adam learning rate (0.1 as in the paper's setup).
        eval_every: steps per compiled chunk; `score_fn` runs after each chunk.
        score_fn: host function `params -> float`, lower is better (e.g. |C2ST balanced
            accuracy - 0.5| of generated vs real rows); the initial parameters are scored
            too and kept if nothing beats them. None keeps the last parameters.
        progress: show a progress bar.

    Returns:
        A `GeneratorFit`.
    """
    if int(steps) < 1 or int(eval_every) < 1:
        raise FairjaxError(f"steps and eval_every must be >= 1; got {steps}, {eval_every}")
    members = np.asarray(members, bool)
    num_groups, num_sources = members.shape[:2]
    params = init_generator_params(
        parameterisation,
        num_sources=num_sources,
        dim=rows.x.shape[1],
        num_groups=num_groups,
        sharing=sharing,
    )
    optimizer, step_fn = _compiled_step(
        parameterisation, sharing, float(beta), int(batch_size), int(min_rows), float(lr)
    )
    data = GeneratorData(rows, jnp.asarray(members), jnp.asarray(bandwidths, jnp.float32))
    eval_every = int(eval_every)
    num_steps = -(-int(steps) // eval_every) * eval_every
    eval_fn = None if score_fn is None else (lambda state: score_fn(state[0].params))
    initial = None if score_fn is None else float(score_fn(params))
    (state, _), record = training.run(
        key,
        (training.init_train_state(params, optimizer), data),
        step_fn,
        _no_batch,
        None,
        num_steps=num_steps,
        chunk_size=eval_every,
        progress=progress,
        desc="generator",
        eval_fn=eval_fn,
        log_every=1,
    )
    best_params, best_step = state.params, int(state.step)
    eval_steps, eval_scores = record.eval_steps, record.eval_scores
    if score_fn is not None:
        eval_steps = np.concatenate([[0], eval_steps]).astype(np.int64)
        eval_scores = np.concatenate([[initial], eval_scores]).astype(np.float64)
        # `run` kept its best score (nan never wins); ties keep the earlier checkpoint
        run_best = np.min(record.eval_scores[~np.isnan(record.eval_scores)], initial=np.inf)
        if not np.isnan(initial) and not run_best < initial:
            best_params, best_step = params, 0
    return GeneratorFit(
        params=best_params,
        best_step=best_step,
        losses=record.metrics["loss"].astype(np.float32),
        eval_steps=eval_steps,
        eval_scores=eval_scores,
        record=record,
    )
