"""Augmentation, equal sampling and model selection for intersectional fairness.

- `augmentation_counts`: how many synthetic rows each (group, label) cell gets, either N
  each ("add", the paper's setting) or up to N in total ("top-up").
- `make_equal_batch_fn` / `make_uniform_batch_fn`: pure `batch_fn(key) -> row indices`.
  Equal sampling (arXiv 2405.14521, sec. 4; Maheshwari et al. 2023) picks one group
  uniformly among those with both labels and draws half of the batch from its positives,
  half from its negatives, with replacement; uniform sampling draws rows uniformly with
  replacement (ERM).
- `cell_weights`: inverse-frequency weights of the (group, label) cells, the loss weights
  of "reweighted" training (uniform batches, every cell the same total weight).
- `make_classifier_trainer`: an MLP (`fairjax.classifiers.init_mlp` / `logits_fn`) trained
  by Adam on such batches; each epoch is one jitted `lax.scan`; early stopping keeps the
  epoch with the best validation balanced accuracy.
- `select_model`: among candidate configurations, keep those whose validation balanced
  accuracy is within `tolerance` of the best, then take the lowest validation DF.

References:
    arXiv 2405.14521 (augmentation + equal sampling); Maheshwari, Bellet, Denis, Keller,
    "Fair Without Leveling Down", arXiv 2305.12495 (equal sampling, selection rule).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from fairjax.classifiers import init_mlp, logits_fn
from fairjax.errors import FairjaxError
from fairjax.intersectional.groups import GroupedRows

__all__ = [
    "AUGMENT_MODES",
    "SAMPLINGS",
    "ClassifierFit",
    "augmentation_counts",
    "balanced_accuracy",
    "cell_weights",
    "make_classifier_trainer",
    "make_equal_batch_fn",
    "make_uniform_batch_fn",
    "select_model",
]

AUGMENT_MODES = ("add", "top-up")
SAMPLINGS = ("uniform", "equal", "reweighted")


def augmentation_counts(
    count: ArrayLike, n: int, *, mode: str = "add", can_generate: ArrayLike | None = None
) -> np.ndarray:
    """Synthetic rows per (group, label) cell.

    Args:
        count: [G, 2] real rows per cell.
        n: N >= 0.
        mode: "add" (N synthetic rows per cell) or "top-up" (max(N - count, 0), so every
            cell ends with at least N rows).
        can_generate: optional [G, 2] bool; cells that cannot be generated get 0.

    Returns:
        [G, 2] int64 counts.
    """
    count = np.asarray(count, np.int64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise FairjaxError(f"the number of synthetic rows N must be an int >= 0; got {n!r}")
    if mode == "add":
        out = np.full_like(count, n)
    elif mode == "top-up":
        out = np.maximum(n - count, 0)
    else:
        raise FairjaxError(f"augmentation mode must be one of {AUGMENT_MODES}; got {mode!r}")
    if can_generate is not None:
        out = np.where(np.asarray(can_generate, bool), out, 0)
    return out


def make_equal_batch_fn(
    start: ArrayLike, count: ArrayLike, batch_size: int
) -> Callable[[jax.Array], jax.Array]:
    """`batch_fn(key) -> [batch_size] row indices` of one equal-sampling batch.

    One group is drawn uniformly among the groups that have rows of both labels; the first
    half of the batch are its positives (label 1), the second half its negatives, each
    drawn uniformly with replacement. Rows must be sorted by cell (`groups.group_rows`).

    Args:
        start: [G, 2] first row of each cell.
        count: [G, 2] rows per cell.
        batch_size: static even batch size B.

    Returns:
        The pure batch function (jit/vmap/scan-safe).
    """
    if int(batch_size) < 2 or int(batch_size) % 2:
        raise FairjaxError(f"equal sampling needs an even batch_size >= 2; got {batch_size}")
    start = jnp.asarray(start, jnp.int32)
    count = jnp.asarray(count, jnp.int32)
    half = int(batch_size) // 2
    eligible = jnp.all(count > 0, axis=1)
    logits = jnp.where(eligible, 0.0, -jnp.inf)

    def batch_fn(key: jax.Array) -> jax.Array:
        group_key, pos_key, neg_key = jax.random.split(key, 3)
        g = jax.random.categorical(group_key, logits)
        pos = start[g, 1] + _below(pos_key, count[g, 1], half)
        neg = start[g, 0] + _below(neg_key, count[g, 0], half)
        return jnp.concatenate([pos, neg])

    return batch_fn


def _below(key: jax.Array, n: jax.Array, size: int) -> jax.Array:
    """[size] ints uniform in [0, n) (0 if n == 0), as floor(U * n) (cheap to compile)."""
    u = jnp.floor(jax.random.uniform(key, (size,)) * n).astype(jnp.int32)
    return jnp.clip(u, 0, jnp.maximum(n - 1, 0))


def make_uniform_batch_fn(num_rows: int, batch_size: int) -> Callable[[jax.Array], jax.Array]:
    """`batch_fn(key) -> [batch_size]` indices drawn uniformly with replacement (ERM)."""
    num_rows = int(num_rows)
    return lambda key: jax.random.randint(key, (int(batch_size),), 0, num_rows)


def cell_weights(rows: GroupedRows) -> jax.Array:
    """[n] inverse-frequency loss weights of the rows' (group, label) cells.

    A row of cell c weighs n / (C count_c), C the number of non-empty cells: every
    non-empty cell carries the same total weight n / C and the weights average to 1
    (Kamiran & Calders 2012, reweighing, with the cells as the strata).
    """
    count = rows.count.astype(jnp.float32)
    cells = jnp.sum(count > 0)
    w = rows.x.shape[0] / (cells * jnp.maximum(count, 1.0))
    return w[rows.group, rows.label]


def balanced_accuracy(y: jax.Array, pred: jax.Array) -> jax.Array:
    """(TPR + TNR) / 2 of 0/1 predictions, in jnp (a class with no rows counts as 0)."""
    y = y.astype(bool)
    pred = pred.astype(bool)
    tpr = jnp.sum(y & pred) / jnp.maximum(jnp.sum(y), 1)
    tnr = jnp.sum(~y & ~pred) / jnp.maximum(jnp.sum(~y), 1)
    return 0.5 * (tpr + tnr)


class ClassifierFit(NamedTuple):
    """What a `make_classifier_trainer` train function returns.

    Attributes:
        params: MLP params of the best validation epoch (`fairjax.classifiers` layout).
        best_epoch: index of that epoch.
        val_balanced_accuracy: [epochs run] validation balanced accuracy per epoch.
        train_loss: [epochs run] mean training loss per epoch.
    """

    params: list
    best_epoch: int
    val_balanced_accuracy: np.ndarray
    train_loss: np.ndarray


def make_classifier_trainer(
    *,
    sampling: str = "equal",
    hidden: Sequence[int] = (64, 64),
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 30,
    patience: int = 5,
    steps_per_epoch: int | None = None,
) -> Callable[..., ClassifierFit]:
    """MLP training on uniform or equal-sampling batches, early-stopped on validation BA.

    Args:
        sampling: "equal" (one group per batch, half positives; `make_equal_batch_fn`),
            "uniform" (rows uniformly with replacement) or "reweighted" (uniform rows,
            the loss weighted by `cell_weights`).
        hidden: hidden widths of the ReLU MLP.
        lr: Adam learning rate.
        batch_size: rows per step (even for equal sampling).
        max_epochs: maximum number of epochs.
        patience: epochs without a better validation balanced accuracy before stopping.
        steps_per_epoch: steps per epoch; default ceil(n_train / batch_size) of the rows
            passed to `train` (pass the real training size to give every method the same
            number of steps whatever its augmentation).

    Returns:
        `train(key, rows: GroupedRows, x_val [m, d], y_val [m]) -> ClassifierFit`. Epoch t
        uses `fold_in(key, t)`: same key, same data -> same parameters.
    """
    if sampling not in SAMPLINGS:
        raise FairjaxError(f"sampling must be one of {SAMPLINGS}; got {sampling!r}")
    for name, v in (("batch_size", batch_size), ("max_epochs", max_epochs), ("patience", patience)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise FairjaxError(f"{name} must be a positive int; got {v!r}")
    if not lr > 0:
        raise FairjaxError(f"lr must be positive; got {lr!r}")
    hidden = tuple(int(h) for h in hidden)
    optimizer, run_epoch, evaluate = _compiled_classifier(
        sampling, hidden, float(lr), int(batch_size)
    )

    def train(
        key: jax.Array, rows: GroupedRows, x_val: ArrayLike, y_val: ArrayLike
    ) -> ClassifierFit:
        x_val = jnp.asarray(x_val, jnp.float32)
        y_val = jnp.asarray(y_val, jnp.int32)
        n = rows.x.shape[0]
        steps = steps_per_epoch or -(-n // int(batch_size))
        init_key, train_key = jax.random.split(key)
        params = init_mlp(init_key, (rows.x.shape[1], *hidden, 1))
        opt_state = optimizer.init(params)
        best, best_epoch, best_ba, since = params, 0, -np.inf, 0
        bas, losses = [], []
        for epoch in range(int(max_epochs)):
            params, opt_state, loss = run_epoch(
                params, opt_state, rows, jax.random.fold_in(train_key, epoch), int(steps)
            )
            ba = float(evaluate(params, x_val, y_val))
            bas.append(ba)
            losses.append(float(loss))
            if ba > best_ba:
                best, best_epoch, best_ba, since = params, epoch, ba, 0
            else:
                since += 1
                if since >= patience:
                    break
        return ClassifierFit(best, best_epoch, np.asarray(bas), np.asarray(losses))

    return train


@functools.lru_cache(maxsize=32)
def _compiled_classifier(sampling: str, hidden: tuple, lr: float, batch_size: int):
    """(optimizer, jitted run_epoch, jitted evaluate), built once per setting and shared
    by every trainer with that setting (so no recompilation across seeds and methods)."""
    optimizer = optax.adam(lr)

    def bce(params, x, y, w):
        return jnp.mean(w * optax.sigmoid_binary_cross_entropy(logits_fn(params, x), y))

    @functools.partial(jax.jit, static_argnums=4)
    def run_epoch(params, opt_state, rows: GroupedRows, key, steps: int):
        if sampling == "equal":
            batch_fn = make_equal_batch_fn(rows.start, rows.count, batch_size)
        else:
            batch_fn = make_uniform_batch_fn(rows.x.shape[0], batch_size)
        if sampling == "reweighted":
            weights = cell_weights(rows)
        else:
            weights = jnp.ones(rows.x.shape[0], jnp.float32)

        def step(carry, i):
            params, opt_state = carry
            idx = batch_fn(jax.random.fold_in(key, i))
            loss, grads = jax.value_and_grad(bce)(
                params, rows.x[idx], rows.label[idx].astype(jnp.float32), weights[idx]
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), loss = jax.lax.scan(step, (params, opt_state), jnp.arange(steps))
        return params, opt_state, jnp.mean(loss)

    @jax.jit
    def evaluate(params, x, y):
        return balanced_accuracy(y, logits_fn(params, x) >= 0.0)

    return optimizer, run_epoch, evaluate


def select_model(
    val_balanced_accuracy: ArrayLike, val_df: ArrayLike, *, tolerance: float = 0.03
) -> int:
    """The selection rule: BA within `tolerance` of the best, then the lowest DF.

    Args:
        val_balanced_accuracy: [M] validation balanced accuracy of each candidate.
        val_df: [M] validation differential fairness (lower is fairer).
        tolerance: allowed drop in balanced accuracy (0.03 = 3 points).

    Returns:
        Index of the selected candidate. Among equal DFs the higher BA wins, then the
        first. nan BAs are never eligible; nan DFs lose to any number.

    References:
        Maheshwari et al., arXiv 2305.12495 and arXiv 2405.14521 (model selection).
    """
    ba = np.asarray(val_balanced_accuracy, np.float64)
    df = np.asarray(val_df, np.float64)
    if ba.ndim != 1 or ba.shape != df.shape or ba.size == 0:
        raise FairjaxError(
            f"val_balanced_accuracy and val_df must be non-empty [M] arrays of one length; "
            f"got {ba.shape} and {df.shape}"
        )
    if not np.isfinite(ba).any():
        raise FairjaxError("no candidate has a finite validation balanced accuracy")
    ok = np.isfinite(ba) & (ba >= np.nanmax(ba) - tolerance)
    df_key = np.where(np.isnan(df), np.inf, df)
    order = np.lexsort((np.arange(ba.size), -ba, df_key))  # last key is primary
    return int(next(i for i in order if ok[i]))
