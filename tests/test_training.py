"""fairjax.training.run: early stopping on an evaluation function; compiled chunks reused
per step function and released with it."""

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import training
from fairjax.errors import FairjaxError


def _step(state, batch, key):
    # Gradient-free: the "parameter" walks up by 1 per step.
    new = training.TrainState(state.step + 1, state.params + 1.0, state.opt_state)
    return new, {"loss": state.params}


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

    best, record = _run(_step, 200, eval_fn=eval_fn, patience=3)
    assert seen == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # three chunks past the best
    assert float(best.params) == 30.0 and int(best.step) == 30
    # step i logs params = i (0-based): window means 4.5, 14.5, ...; last tenth = steps 54..59
    np.testing.assert_array_equal(record.steps, [10, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(record.metrics["loss"], np.arange(6) * 10 + 4.5)
    assert record.final == {"loss": 56.5} and record.num_steps == 60
    np.testing.assert_array_equal(record.eval_steps, [10, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(record.eval_scores, [20, 10, 0, 10, 20, 30])
    assert record.best_step == 30


def test_run_without_patience_runs_every_step_and_returns_the_best():
    best, record = _run(_step, 55, eval_fn=lambda s: abs(float(s.params) - 21.0))
    assert record.num_steps == 55 and float(best.params) == 20.0 and record.best_step == 20
    np.testing.assert_array_equal(record.eval_steps, [10, 20, 30, 40, 50, 55])


def test_record_windows_csv_and_dict():
    """Windows of `log_every` steps across chunks, the last one short; CSV and dict forms."""
    _, record = _run(_step, 25, log_every=7)
    np.testing.assert_array_equal(record.steps, [7, 14, 21, 25])
    np.testing.assert_array_equal(record.metrics["loss"], [3.0, 10.0, 17.0, 22.5])
    assert record.final == {"loss": 23.5} and record.best_step is None  # steps 23, 24
    assert record.to_csv().splitlines() == ["step,loss", "7,3.0", "14,10.0", "21,17.0", "25,22.5"]
    back = training.Record.from_dict(record.to_dict())
    for a, b in zip(back, record, strict=True):
        np.testing.assert_equal(a, b)
    _, record = _run(_step, 20, eval_fn=lambda s: float(s.params), log_every=15)
    lines = record.to_csv().splitlines()
    assert lines == ["step,loss,eval_score", "10,,10.0", "15,7.0,", "20,17.0,20.0"]


def test_metrics_must_be_a_dict_of_scalars():
    def vector_step(state, batch, key):
        new, metrics = _step(state, batch, key)
        return new, jnp.stack([metrics["loss"], metrics["loss"]])

    with pytest.raises(FairjaxError, match="dict of named scalars"):
        _run(vector_step)
    with pytest.raises(FairjaxError, match="log_every must be a positive integer; got 0"):
        _run(_step, log_every=0)


def test_divergence_names_every_metric_that_is_not_finite():
    def step(state, batch, key):
        new, metrics = _step(state, batch, key)
        bad = jnp.where(state.params >= 13, jnp.inf, 0.0)
        return new, {**metrics, "grad_norm": bad, "other": jnp.zeros(())}

    with pytest.raises(FairjaxError, match=r"'training' diverged: grad_norm is inf at step 14 "):
        _run(step)


def test_compiled_chunk_is_reused_per_step_function_and_released_with_it():
    traces = []

    def make_step():
        def step(state, batch, key):
            traces.append(1)  # runs only while jax traces the chunk
            return _step(state, batch, key)

        return step

    step = make_step()
    for num_steps in (20, 35):  # another run of the same step: no new trace
        best, record = _run(step, num_steps)
        assert float(best.params) == num_steps and record.num_steps == num_steps
    assert len(traces) == 1
    held = len(training._CHUNKS)
    _run(make_step())  # an equal but new closure is another program
    assert len(traces) == 2
    gc.collect()
    # ... whose compiled chunk went with it, while the held step keeps its own
    assert len(training._CHUNKS) == held and step in training._CHUNKS
