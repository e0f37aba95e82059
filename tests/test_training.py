"""fairjax.training.run: early stopping on an evaluation function; compiled chunks reused
per step function and released with it."""

import gc

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import training


def _step(state, batch, key):
    # Gradient-free: the "parameter" walks up by 1 per step.
    return training.TrainState(state.step + 1, state.params + 1.0, state.opt_state), state.params


def _batch(data, key):
    return data


def _run(step_fn, num_steps=20, **options):
    """`training.run` of `step_fn` from params 0 in chunks of 10 steps."""
    state = training.TrainState(jnp.zeros((), jnp.int32), jnp.zeros(()), ())
    args = (jax.random.key(0), state, step_fn, _batch, jnp.zeros(()))
    return training.run(*args, num_steps=num_steps, chunk_size=10, progress=False, **options)


def test_run_keeps_the_best_evaluated_state_and_stops_after_patience():
    seen = []

    def eval_fn(s):  # best at params = 30, then worse
        seen.append(float(s.params))
        return abs(float(s.params) - 30.0)

    best, losses = _run(_step, 200, eval_fn=eval_fn, patience=3)
    assert seen == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # three chunks past the best
    assert float(best.params) == 30.0 and int(best.step) == 30
    np.testing.assert_array_equal(losses, np.arange(60.0))


def test_run_without_patience_runs_every_step_and_returns_the_best():
    best, losses = _run(_step, 55, eval_fn=lambda s: abs(float(s.params) - 21.0))
    assert len(losses) == 55 and float(best.params) == 20.0


def test_compiled_chunk_is_reused_per_step_function_and_released_with_it():
    traces = []

    def make_step():
        def step(state, batch, key):
            traces.append(1)  # runs only while jax traces the chunk
            return _step(state, batch, key)

        return step

    step = make_step()
    for num_steps in (20, 35):  # another run of the same step: no new trace
        best, losses = _run(step, num_steps)
        assert float(best.params) == num_steps and len(losses) == num_steps
    assert len(traces) == 1
    held = len(training._CHUNKS)
    _run(make_step())  # an equal but new closure is another program
    assert len(traces) == 2
    gc.collect()
    # ... whose compiled chunk went with it, while the held step keeps its own
    assert len(training._CHUNKS) == held and step in training._CHUNKS
