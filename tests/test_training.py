"""fairjax.training.run: early stopping on an evaluation function."""

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import training


def _step(state, batch, key):
    # Gradient-free: the "parameter" walks up by 1 per step.
    return training.TrainState(state.step + 1, state.params + 1.0, state.opt_state), state.params


def _batch(data, key):
    return data


def test_run_keeps_the_best_evaluated_state_and_stops_after_patience():
    state = training.TrainState(jnp.zeros((), jnp.int32), jnp.zeros(()), ())
    seen = []

    def eval_fn(s):  # best at params = 30, then worse
        seen.append(float(s.params))
        return abs(float(s.params) - 30.0)

    best, losses = training.run(
        jax.random.key(0),
        state,
        _step,
        _batch,
        jnp.zeros(()),
        num_steps=200,
        chunk_size=10,
        progress=False,
        eval_fn=eval_fn,
        patience=3,
    )
    assert seen == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # three chunks past the best
    assert float(best.params) == 30.0 and int(best.step) == 30
    np.testing.assert_array_equal(losses, np.arange(60.0))


def test_run_without_patience_runs_every_step_and_returns_the_best():
    state = training.TrainState(jnp.zeros((), jnp.int32), jnp.zeros(()), ())
    best, losses = training.run(
        jax.random.key(0),
        state,
        _step,
        _batch,
        jnp.zeros(()),
        num_steps=55,
        chunk_size=10,
        progress=False,
        eval_fn=lambda s: abs(float(s.params) - 21.0),
    )
    assert len(losses) == 55 and float(best.params) == 20.0
