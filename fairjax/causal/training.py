"""Early-stopped minibatch Adam for an arbitrary loss with array hyperparameters.

`fairjax.classifiers.make_mlp_trainer` hard-wires the binary cross-entropy with hard 0/1
labels. The causal module fits other losses: soft-target cross-entropy and squared error
(nuisance regressions of non-binary outcomes) and the fair predictor's cross-entropy plus
effect penalties, whose value depends on the whole minibatch. The trainer here takes the
loss as a function of `(params, batch, aux)`, where `batch` is a pytree of arrays with a
leading row axis (rows drawn with replacement) and `aux` a pytree of arrays of loss
hyperparameters (penalty weights, targets) that must not trigger a recompilation. The loop
is `fairjax.training.run`, one compiled chunk per epoch; `aux` rides in the state, not in
the batch, because it has no rows to split over devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from fairjax import training
from fairjax.classifiers import Params, random_rows

# (params, batch, aux) -> []
LossFn = Callable[[Params, Any, Any], jax.Array]


class TrainResult(NamedTuple):
    """What a trainer returns.

    Attributes:
      params: parameters of the epoch with the lowest validation loss.
      train_loss: [epochs_run] mean minibatch loss per epoch.
      val_loss: [epochs_run] validation loss after each epoch.
      best_epoch: index of `params` in `val_loss`.
      record: the `fairjax.training.Record` of the run.
    """

    params: Params
    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    record: training.Record


class AuxState(NamedTuple):
    """A `training.TrainState` and the loss's `aux` arrays, which no step changes."""

    train: training.TrainState
    aux: Any

    @property
    def step(self) -> jax.Array:
        return self.train.step


def make_trainer(
    loss_fn: LossFn,
    *,
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 50,
    patience: int = 5,
) -> Callable[..., TrainResult]:
    """Adam on minibatches of random rows, early-stopped on a validation loss.

    An epoch is ceil(n_train / batch_size) steps of `batch_size` rows drawn with
    replacement; the validation loss is computed after every epoch.

    Args:
      loss_fn: `loss_fn(params, batch, aux) -> []`; `batch` is a pytree of arrays with
        leading axis [b], and `aux` is the pytree given to `train` (None by default). It is
        also the validation loss, called once on the whole validation pytree.
      lr: Adam learning rate.
      batch_size: rows per minibatch.
      max_epochs: maximum number of epochs.
      patience: epochs without validation improvement before stopping.

    Returns:
      `train(key, params, train_data, val_data, aux=None) -> TrainResult`; one
      compilation per trainer and per shape of the data (and of aux).

    Raises:
      FairjaxError (from `train`): the training loss became NaN or infinite.
    """
    opt = optax.adam(lr)
    inner = training.make_train_step(lambda p, batch, key: loss_fn(p, *batch), opt)

    def step_fn(state: AuxState, batch: Any, key: jax.Array):
        train, metrics = inner(state.train, (batch, state.aux), key)
        return AuxState(train, state.aux), metrics

    batch_fn = random_rows(batch_size)
    val_loss_fn = jax.jit(loss_fn)

    def train(
        key: jax.Array, params: Params, train_data: Any, val_data: Any, aux: Any = None
    ) -> TrainResult:
        steps = -(-jax.tree.leaves(train_data)[0].shape[0] // batch_size)
        state, record = training.run(
            key,
            AuxState(training.init_train_state(params, opt), aux),
            step_fn,
            batch_fn,
            train_data,
            num_steps=max_epochs * steps,
            chunk_size=steps,
            progress=False,
            desc="causal MLP",
            eval_fn=lambda s: float(val_loss_fn(s.train.params, val_data, s.aux)),
            patience=patience,
        )
        return TrainResult(
            params=state.train.params,
            train_loss=record.metrics["loss"].astype(np.float64),
            val_loss=record.eval_scores,
            best_epoch=max(record.best_step // steps - 1, 0),
            record=record,
        )

    return train
