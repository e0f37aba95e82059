"""fairjax.training.run: early stopping on an evaluation function; compiled chunks reused
per step function and released with it."""

import gc

import jax
import jax.numpy as jnp
import numpy as np
import optax
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


# ------------------------------------------------------------------ checkpoints and resume


def _adam_problem():
    """Noisy least squares by Adam: (state, step, batch_fn, data) of a small real run."""
    x = jax.random.normal(jax.random.key(0), (64, 3))
    data = (x, x @ jnp.array([1.0, -2.0, 0.5]))
    optimizer = optax.adam(0.05)

    def loss_fn(w, batch, key):
        xb, yb = batch
        return jnp.mean((xb @ w - yb + 0.1 * jax.random.normal(key, yb.shape)) ** 2)

    def batch_fn(data, key):
        idx = jax.random.randint(key, (16,), 0, 64)
        return data[0][idx], data[1][idx]

    step = training.make_train_step(loss_fn, optimizer)
    return training.init_train_state(jnp.zeros(3), optimizer), step, batch_fn, data


_PROBLEM = _adam_problem()  # one step function for the module: compiled once


def _adam_run(num_steps=60, **options):
    """`run` of the Adam problem in chunks of 10 steps."""
    state, step, batch_fn, data = _PROBLEM
    return training.run(
        jax.random.key(1), state, step, batch_fn, data, num_steps=num_steps, chunk_size=10,
        progress=False, **options,
    )  # fmt: skip


def _assert_same(a, b):
    (sa, ra), (sb, rb) = a, b
    for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert ra.to_csv() == rb.to_csv() and ra.final == rb.final and ra.best_step == rb.best_step


def test_resume_after_interruption_is_bit_exact(tmp_path, stop_after_checkpoints):
    whole = _adam_run(65)
    folder = tmp_path / "ckpt"
    stop_after_checkpoints(2)  # at step 40
    with pytest.raises(KeyboardInterrupt):
        _adam_run(65, checkpoint_dir=folder, checkpoint_every=20)
    resumed = _adam_run(65, checkpoint_dir=folder, checkpoint_every=20, resume=True)
    _assert_same(resumed, whole)
    # the final checkpoint marks the run finished: resuming again returns it at once
    _assert_same(_adam_run(65, checkpoint_dir=folder, resume=True), whole)


def test_resume_with_early_stopping_and_a_log_file(tmp_path, stop_after_checkpoints):
    def eval_fn(state):  # improves until step 30, then flat
        return -min(float(state.step), 30.0)

    options = dict(eval_fn=eval_fn, patience=2, log_every=7)
    whole = _adam_run(200, **options)
    assert whole[1].best_step == 30 and whole[1].num_steps == 50  # 2 chunks past the best
    folder, log = tmp_path / "ckpt", tmp_path / "logs" / "net.csv"
    stop_after_checkpoints(4)  # at step 40, one chunk past the best (step 30)
    with pytest.raises(KeyboardInterrupt):
        _adam_run(200, checkpoint_dir=folder, checkpoint_every=10, log_file=log, **options)
    assert log.read_text().splitlines()[0] == "step,grad_norm,loss,eval_score"
    resumed = _adam_run(
        200, checkpoint_dir=folder, checkpoint_every=10, resume=True, log_file=log, **options
    )
    _assert_same(resumed, whole)
    assert log.read_text() == whole[1].to_csv()


def test_checkpoints_refuse_another_run_and_bad_options(tmp_path):
    folder = tmp_path / "ckpt"
    _adam_run(20, checkpoint_dir=folder)
    with pytest.raises(FairjaxError, match="holds a checkpoint; pass resume=True"):
        _adam_run(20, checkpoint_dir=folder)
    with pytest.raises(FairjaxError, match="num_steps: 20 there, 30 here"):
        _adam_run(30, checkpoint_dir=folder, resume=True)
    with pytest.raises(FairjaxError, match=r"setting: None there, \{'lr': 0.1\} here"):
        _adam_run(20, checkpoint_dir=folder, resume=True, setting={"lr": 0.1})
    state, step, batch_fn, data = _PROBLEM
    with pytest.raises(FairjaxError, match="key digest differs"):
        training.run(jax.random.key(2), state, step, batch_fn, data, num_steps=20,
                     chunk_size=10, progress=False, checkpoint_dir=folder, resume=True)  # fmt: skip
    with pytest.raises(FairjaxError, match=r"multiple of the chunk size 10.*got 15"):
        _adam_run(20, checkpoint_dir=tmp_path / "other", checkpoint_every=15)
    with pytest.raises(FairjaxError, match="need checkpoint_dir"):
        _adam_run(20, resume=True)
    _adam_run(20, checkpoint_dir=folder, overwrite=True)  # starts afresh
