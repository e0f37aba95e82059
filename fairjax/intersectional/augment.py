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
  by Adam on such batches with `fairjax.training.run` (one compiled chunk per epoch);
  early stopping keeps the epoch with the best validation balanced accuracy.
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

from fairjax import training
from fairjax.classifiers import init_mlp, logits_fn
from fairjax.errors import FairjaxError
from fairjax.intersectional.groups import GroupedRows
from fairjax.metrics import weighted_balanced_accuracy

__all__ = [
    "AUGMENT_MODES",
    "SAMPLINGS",
    "ClassifierFit",
    "augmentation_counts",
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
    return _cell_weight_table(rows)[rows.group, rows.label]


def _cell_weight_table(rows: GroupedRows) -> jax.Array:
    """[G, 2] the weight n / (C count_c) of a row of each cell (see `cell_weights`)."""
    count = rows.count.astype(jnp.float32)
    cells = jnp.sum(count > 0)
    return rows.x.shape[0] / (cells * jnp.maximum(count, 1.0))


class ClassifierFit(NamedTuple):
    """What a `make_classifier_trainer` train function returns.

    Attributes:
        params: MLP params of the best validation epoch (`fairjax.classifiers` layout).
        best_epoch: index of that epoch.
        val_balanced_accuracy: [epochs run] validation balanced accuracy per epoch.
        train_loss: [epochs run] mean training loss per epoch.
        record: the `fairjax.training.Record` of the run (its eval scores are minus the
            validation balanced accuracies).
    """

    params: list
    best_epoch: int
    val_balanced_accuracy: np.ndarray
    train_loss: np.ndarray
    record: training.Record


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
        `train(key, rows: GroupedRows, x_val [m, d], y_val [m]) -> ClassifierFit`, run by
        `fairjax.training.run` with one compiled chunk per epoch: step s draws its batch
        from the step key `fold_in(k, s)` of a split of `key`, so the same key and data
        give the same parameters.

    Raises:
        FairjaxError: a setting is invalid; from `train`, `y_val` lacks a label (the
            balanced accuracy is undefined) or the training loss became NaN or infinite.
    """
    if sampling not in SAMPLINGS:
        raise FairjaxError(f"sampling must be one of {SAMPLINGS}; got {sampling!r}")
    for name, v in (("batch_size", batch_size), ("max_epochs", max_epochs), ("patience", patience)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise FairjaxError(f"{name} must be a positive int; got {v!r}")
    if not lr > 0:
        raise FairjaxError(f"lr must be positive; got {lr!r}")
    hidden = tuple(int(h) for h in hidden)
    optimizer, step_fn, batch_fn, evaluate = _compiled_classifier(
        sampling, hidden, float(lr), int(batch_size)
    )

    def train(
        key: jax.Array, rows: GroupedRows, x_val: ArrayLike, y_val: ArrayLike
    ) -> ClassifierFit:
        y_host = np.asarray(y_val)  # numpy: no compiled check per validation size
        positives = int(np.sum(y_host == 1))
        if not 0 < positives < len(y_host):
            raise FairjaxError(
                "y_val must hold validation rows of both labels (early stopping scores the "
                f"balanced accuracy); got {positives} of {len(y_host)} with label 1"
            )
        x_val = jnp.asarray(x_val, jnp.float32)
        y_val = jnp.asarray(y_host, jnp.int32)
        steps = int(steps_per_epoch or -(-rows.x.shape[0] // int(batch_size)))
        init_key, train_key = jax.random.split(key)
        params = init_mlp(init_key, (rows.x.shape[1], *hidden, 1))
        state, record = training.run(
            train_key,
            training.init_train_state(params, optimizer),
            step_fn,
            batch_fn,
            rows,
            num_steps=int(max_epochs) * steps,
            chunk_size=steps,
            progress=False,
            desc=f"{sampling} classifier",
            eval_fn=lambda s: -float(evaluate(s.params, x_val, y_val)),
            patience=int(patience),
        )
        return ClassifierFit(
            params=state.params,
            best_epoch=max(record.best_step // steps - 1, 0),
            val_balanced_accuracy=-record.eval_scores,
            train_loss=record.metrics["loss"].astype(np.float64),
            record=record,
        )

    return train


@functools.lru_cache(maxsize=32)
def _compiled_classifier(sampling: str, hidden: tuple, lr: float, batch_size: int):
    """(optimizer, step_fn, batch_fn, jitted evaluate), built once per setting and shared
    by every trainer with that setting, so `training.run` reuses its compiled epochs
    across seeds and methods."""
    optimizer = optax.adam(lr)

    def bce(params, batch, key):
        x, y, w = batch
        return jnp.mean(w * optax.sigmoid_binary_cross_entropy(logits_fn(params, x), y))

    def batch_fn(rows: GroupedRows, key: jax.Array):
        if sampling == "equal":
            idx = make_equal_batch_fn(rows.start, rows.count, batch_size)(key)
        else:
            idx = make_uniform_batch_fn(rows.x.shape[0], batch_size)(key)
        if sampling == "reweighted":
            w = _cell_weight_table(rows)[rows.group[idx], rows.label[idx]]
        else:
            w = jnp.ones(batch_size, jnp.float32)
        return rows.x[idx], rows.label[idx].astype(jnp.float32), w

    @jax.jit
    def evaluate(params, x, y):
        return weighted_balanced_accuracy(y.astype(bool), logits_fn(params, x) >= 0.0, 1.0)

    return optimizer, training.make_train_step(bce, optimizer), batch_fn, evaluate


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
