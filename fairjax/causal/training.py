"""Minibatch Adam training with early stopping for an arbitrary per-batch loss.

`fairjax.classifiers.make_mlp_trainer` hard-wires the binary cross-entropy with hard 0/1
labels. The causal module needs the same loop for other losses: soft-target cross-entropy
and squared error (nuisance regressions of non-binary outcomes) and the fair predictor's
cross-entropy plus effect penalties, whose value depends on the whole minibatch. The
trainer here takes the loss as a function of `(params, batch, mask)`, where `batch` is a
pytree of arrays with a leading row axis and `mask` [batch] is 1 for real rows and 0 for
the padding of the last minibatch, so that every epoch is one jitted `lax.scan` with static
shapes. Loss hyperparameters that should not trigger a recompilation (penalty weights,
targets) travel as a pytree of arrays `aux`, the loss's last argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax.classifiers import Params

# (params, batch, mask [b], aux) -> []
LossFn = Callable[[Params, Any, jax.Array, Any], jax.Array]


class TrainResult(NamedTuple):
    """What a trainer returns.

    Attributes:
      params: parameters of the epoch with the lowest validation loss.
      train_loss: [epochs_run] mean minibatch loss per epoch.
      val_loss: [epochs_run] validation loss after each epoch.
      best_epoch: index of `params` in `val_loss`.
    """

    params: Params
    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int


def make_trainer(
    loss_fn: LossFn,
    *,
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 50,
    patience: int = 5,
) -> Callable[..., TrainResult]:
    """Adam on shuffled minibatches, early-stopped on a validation loss.

    Args:
      loss_fn: `loss_fn(params, batch, mask, aux) -> []`; `batch` is a pytree of arrays
        with leading axis [b], `mask` [b] marks real rows (1) against padding (0), and `aux`
        is the pytree given to `train` (None by default). It is also the validation loss,
        called once on the whole validation pytree with mask = 1.
      lr: Adam learning rate.
      batch_size: rows per minibatch (capped at the number of training rows).
      max_epochs: maximum number of passes over the training rows.
      patience: epochs without validation improvement before stopping.

    Returns:
      `train(key, params, train_data, val_data, aux=None) -> TrainResult`; one
      compilation per trainer and per shape of the data (and of aux).
    """
    opt = optax.adam(lr)

    @jax.jit
    def run_epoch(params, opt_state, key, data, aux):
        n = jax.tree.leaves(data)[0].shape[0]
        bs = min(batch_size, n)
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        idx = jnp.concatenate([jax.random.permutation(key, n), jnp.zeros(pad, jnp.int32)])
        keep = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)])

        def step(carry, batch_idx):
            params, opt_state = carry
            i, m = batch_idx
            batch = jax.tree.map(lambda a: a[i], data)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, m, aux)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            step, (params, opt_state), (idx.reshape(n_batches, bs), keep.reshape(n_batches, bs))
        )
        return params, opt_state, jnp.mean(losses)

    @jax.jit
    def val_loss_fn(params, data, aux):
        n = jax.tree.leaves(data)[0].shape[0]
        return loss_fn(params, data, jnp.ones(n), aux)

    def train(
        key: jax.Array, params: Params, train_data: Any, val_data: Any, aux: Any = None
    ) -> TrainResult:
        opt_state = opt.init(params)
        best, best_loss, best_epoch, since = params, np.inf, 0, 0
        train_hist, val_hist = [], []
        for epoch in range(max_epochs):
            params, opt_state, tl = run_epoch(
                params, opt_state, jax.random.fold_in(key, epoch), train_data, aux
            )
            vl = float(val_loss_fn(params, val_data, aux))
            train_hist.append(float(tl))
            val_hist.append(vl)
            if vl < best_loss:  # NaN never counts as an improvement
                best, best_loss, best_epoch, since = params, vl, epoch, 0
            else:
                since += 1
                if since >= patience:
                    break
        return TrainResult(best, np.asarray(train_hist), np.asarray(val_hist), best_epoch)

    return train
