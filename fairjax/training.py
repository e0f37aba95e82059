"""Plain gradient training shared by the generative pipelines: state, step, and the loop.

The loop runs `chunk_size` steps per compiled call inside `lax.scan`, so Python only
touches the host between chunks (for the progress bar). Batches are drawn inside the
compiled code by a pure `batch_fn(data, key) -> batch`, e.g. random rows of `data`. With
several devices the batch rows are split over them (`fairjax.parallel`); a batch whose rows
do not divide by the device count is refused before the first step.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm.auto import tqdm

from fairjax import parallel
from fairjax.errors import FairjaxError
from fairjax.meta import MetaState

LossFn = Callable[[Any, Any, jax.Array], jax.Array]  # (params, batch, key) -> []
StepFn = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]  # (state, batch, key)


class TrainState(NamedTuple):
    """Step counter, parameters and optimizer state of plain training."""

    step: jax.Array
    params: Any
    opt_state: optax.OptState


def init_train_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
    """A `TrainState` at step 0."""
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> StepFn:
    """`step(state, batch, key) -> (state, loss)`: one optimizer step on `loss_fn`."""

    def step(state: TrainState, batch: Any, key: jax.Array):
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), loss

    return step


def make_meta_train_step(meta_step: Callable) -> StepFn:
    """Adapt `meta.make_meta_step`'s `(state, batch_in, batch_out, key)` to the loop's
    `(state, (batch_in, batch_out), key) -> (state, loss)` signature."""

    def step(state: MetaState, batch: Any, key: jax.Array):
        state, metrics = meta_step(state, *batch, key)
        return state, metrics["loss"]

    return step


def run(
    key: jax.Array,
    state: Any,
    step_fn: StepFn,
    batch_fn: Callable[[Any, jax.Array], Any],
    data: Any = None,
    *,
    num_steps: int,
    chunk_size: int = 100,
    progress: bool = True,
    desc: str = "training",
    eval_fn: Callable[[Any], float] | None = None,
    patience: int | None = None,
    row_axis: int = 0,
) -> tuple[Any, np.ndarray]:
    """Run `num_steps` steps of `step_fn` on batches drawn by `batch_fn` from `data`.

    Step i uses `jax.random.fold_in(key, i)`, so a run is reproducible and independent of
    `chunk_size`. The compiled chunk is kept per (`step_fn`, `batch_fn`, `chunk_size`) for
    as long as `step_fn` lives: pass functions built once per static setting (a factory
    cached on the sizes and hyperparameters it uses) and the data as an argument, and
    later runs on data of the same shapes reuse the compiled code; a step function
    nothing else holds takes its compiled code with it.

    With several devices (`jax.devices()`), axis `row_axis` of every batch leaf is split
    over them (`parallel.constrain_rows`) and XLA partitions the step (data parallelism;
    gradients are all-reduced by the compiler); the result equals single-device training
    up to float reassociation. On one device nothing is placed.

    Args:
      key: PRNG key of the run.
      state: initial state (anything with a `step` field, e.g. `TrainState`, `MetaState`).
      step_fn: `(state, batch, key) -> (state, loss)`, pure; `loss` is a scalar or a
        small vector of logged values (e.g. both players' losses of a GAN).
      batch_fn: `(data, key) -> batch`, pure (runs inside the compiled chunk).
      data: pytree of arrays passed to `batch_fn`.
      num_steps: total steps.
      chunk_size: steps per compiled call.
      progress: show a tqdm progress bar.
      desc: progress bar label.
      eval_fn: optional `state -> float`, lower is better (e.g. a validation loss), called
        after every chunk; the run then returns the best evaluated state (early stopping).
      patience: with `eval_fn`, stop after this many chunks without improvement (None:
        run every step).
      row_axis: the batch (row) axis of every leaf of a batch, e.g. 1 for
        `[n_critic, batch_size, dim]` batches.

    Returns:
      (final or, with `eval_fn`, best state, [steps run, ...] float32 losses).

    Raises:
      FairjaxError: a loss is NaN or infinite (training diverged), naming `desc` and the step;
        or, before any step, the batch rows do not divide by the device count (the message
        names the batch size and the sizes that would).
    """
    mesh = parallel.make_mesh()
    if mesh.size > 1:
        batch = jax.eval_shape(batch_fn, data, key)
        parallel.check_rows(batch, mesh.size, axis=row_axis, what=f"training of {desc!r}")
    chunk = _compiled_chunk(step_fn, batch_fn, chunk_size, mesh, row_axis)
    losses = []
    best, best_score, since_best = state, np.inf, 0
    with tqdm(total=num_steps, desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, num_steps, chunk_size):
            n = min(chunk_size, num_steps - start)
            state, loss = chunk(state, data, key, start, jnp.arange(chunk_size) < n)
            losses.append(np.asarray(loss[:n]))
            _check_finite(losses[-1], desc, start, num_steps)
            bar.set_postfix(loss=f"{float(losses[-1].mean()):.4f}")
            bar.update(n)
            if eval_fn is None:
                continue
            score = float(eval_fn(state))
            if score < best_score:
                best, best_score, since_best = state, score, 0
            else:
                since_best += 1
                if patience is not None and since_best >= patience:
                    break
    losses = np.concatenate(losses) if losses else np.zeros(0, np.float32)
    return (state if eval_fn is None else best), losses


def _check_finite(losses: np.ndarray, desc: str, start: int, num_steps: int) -> None:
    """FairjaxError naming the network (`desc`) and the first step whose loss is not finite:
    training diverged, and its parameters must not be used or saved."""
    bad = ~np.isfinite(losses.reshape(len(losses), -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise FairjaxError(
            f"training of {desc!r} diverged: the loss is {losses[i].tolist()} at step "
            f"{start + i + 1} of {num_steps}; its parameters are unusable (try a smaller "
            "learning rate or another seed)"
        )


# step_fn -> {(batch_fn, chunk_size, mesh, row_axis): jitted chunk}. Weak keys: an entry lives
# as long as its step function, and the chunk holds the step only weakly, so a fresh
# closure passed once does not keep its executables alive.
_CHUNKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_chunk(
    step_fn: StepFn, batch_fn: Callable, chunk_size: int, mesh: Mesh, row_axis: int
):
    """Jitted `chunk(state, data, key, start, mask) -> (state, losses[chunk_size])`, one
    per (`step_fn`, `batch_fn`, `chunk_size`, `mesh`, `row_axis`) while `step_fn` lives."""
    try:
        per_step = _CHUNKS.setdefault(step_fn, {})
    except TypeError:  # not weak-referenceable (e.g. a builtin): compile for this run only
        return _make_chunk(lambda: step_fn, batch_fn, chunk_size, mesh, row_axis)
    key = (batch_fn, chunk_size, mesh, row_axis)
    if key not in per_step:
        per_step[key] = _make_chunk(weakref.ref(step_fn), batch_fn, chunk_size, mesh, row_axis)
    return per_step[key]


def _make_chunk(
    step_ref: Callable[[], StepFn], batch_fn: Callable, chunk_size: int, mesh: Mesh, row_axis: int
):
    def shard(batch):
        return parallel.constrain_rows(batch, mesh, axis=row_axis)

    @jax.jit
    def chunk(state, data, key, start, mask):
        step_fn = step_ref()  # alive: traced only inside `run`, which holds it

        def body(state, inputs):
            i, active = inputs
            batch_key, step_key = jax.random.split(jax.random.fold_in(key, i))
            new_state, loss = step_fn(state, shard(batch_fn(data, batch_key)), step_key)
            # The last chunk may be partial: inactive steps leave the state untouched.
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), new_state, state)
            return state, loss

        return jax.lax.scan(body, state, (start + jnp.arange(chunk_size), mask))

    return chunk
