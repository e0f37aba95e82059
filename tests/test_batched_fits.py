"""Many fits as one program: `training.run_many` and `fadm.fit_many` equal fits one by one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import fadm, training
from fairjax.errors import FairjaxError
from tests.test_fadm import toy_dataset

TINY = dataclasses.replace(
    fadm.PRESETS["quick"],
    width=16,
    num_blocks=1,
    time_dim=8,
    classifier_width=16,
    classifier_blocks=1,
    batch_size=32,
    score_steps=30,
    classifier_steps=20,
)


def _regression_data(n, seed):
    """Rows of y = x @ w + noise, zero-padded to 64 rows; `n` says how many are real."""
    rng = np.random.default_rng(seed)
    x = np.zeros((64, 3), np.float32)
    x[:n] = rng.normal(size=(n, 3))
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.1 * (np.arange(64) < n)
    return {"x": jnp.asarray(x), "y": jnp.asarray(y), "n": jnp.asarray(n, jnp.int32)}


def _batch(data, key):
    rows = jnp.floor(jax.random.uniform(key, (8,)) * data["n"]).astype(jnp.int32)
    return data["x"][rows], data["y"][rows]


def _loss(w, batch, key):
    x, y = batch
    noise = 0.01 * jax.random.normal(key, y.shape)  # uses the step key: it must match too
    return jnp.mean((x @ w - y + noise) ** 2)


OPTIMIZER = optax.adam(0.05)
STEP = training.make_train_step(_loss, OPTIMIZER)


def test_run_many_equals_runs_one_by_one_on_row_subsets_of_different_sizes():
    sizes, keys = [64, 17, 40], [jax.random.key(s) for s in (3, 4, 5)]
    data = [_regression_data(n, s) for s, n in enumerate(sizes)]
    inits = [training.init_train_state(jnp.full(3, float(s)), OPTIMIZER) for s in range(3)]
    # 25 steps in chunks of 10: the last chunk is partial
    kw = {"num_steps": 25, "chunk_size": 10, "progress": False, "log_every": 5}
    states, records = training.run_many(keys, inits, STEP, _batch, data, **kw)
    for k in range(3):
        state, record = training.run(keys[k], inits[k], STEP, _batch, data[k], **kw)
        np.testing.assert_allclose(states[k].params, state.params, rtol=1e-5, atol=1e-6)
        assert int(states[k].step) == 25
        np.testing.assert_array_equal(records[k].steps, record.steps)
        for name in ("loss", "grad_norm"):
            np.testing.assert_allclose(records[k].metrics[name], record.metrics[name], rtol=1e-5)
        assert records[k].final["loss"] == pytest.approx(record.final["loss"], rel=1e-5)
    # the fits really differ (their own rows, keys and starts)
    assert not np.allclose(states[0].params, states[1].params)


def test_run_many_refuses_fits_of_different_shapes_and_loop_options():
    keys = [jax.random.key(0), jax.random.key(1)]
    inits = [training.init_train_state(jnp.zeros(3), OPTIMIZER)] * 2
    wide = dict(_regression_data(10, 0), x=jnp.zeros((64, 4)))
    with pytest.raises(FairjaxError, match=r"data of fit 1 differs .*\['x'\].*\(64, 4\)"):
        training.run_many(keys, inits, STEP, _batch, [_regression_data(10, 0), wide], num_steps=2)
    with pytest.raises(FairjaxError, match="one key, state and data per fit"):
        training.run_many(keys, inits[:1], STEP, _batch, [_regression_data(10, 0)], num_steps=2)
    with pytest.raises(FairjaxError, match="take no eval_fn"):
        training.run(
            jnp.stack(keys), inits[0], STEP, _batch, None, num_steps=2, fits=2, eval_fn=float
        )


def test_run_many_names_the_fit_that_diverged():
    keys = [jax.random.key(0), jax.random.key(1)]
    data = [_regression_data(20, 0), _regression_data(20, 1)]
    data[1] = dict(data[1], y=data[1]["y"].at[:].set(jnp.inf))
    inits = [training.init_train_state(jnp.zeros(3), OPTIMIZER)] * 2
    with pytest.raises(FairjaxError, match=r"'fit \(fit 1\)' diverged"):
        training.run_many(keys, inits, STEP, _batch, data, num_steps=3, desc="fit", progress=False)


@pytest.mark.parametrize("meta", ["on", "off"])
def test_fit_many_equals_fits_one_by_one(meta):
    # first-order MLDG: the same batching as second-order, a third of the compile time
    config = dataclasses.replace(TINY, meta=meta, first_order=True)
    # different row counts (one padded length, 1024 rows: `_pad_common` is tested below)
    datasets = [toy_dataset(n=500, seed=1), toy_dataset(n=900, seed=2)]
    keys = [jax.random.key(10), jax.random.key(11)]
    many = fadm.fit_many(keys, datasets, config=config, progress=False)
    for key, ds, m in zip(keys, datasets, many, strict=True):
        one = fadm.fit(key, ds, config=config, progress=False)
        assert m.history["meta"] is one.history["meta"] is (meta == "on")
        for name in ("score", "label", "sensitive"):
            jax.tree.map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                m.params[name],
                one.params[name],
            )
            assert m.history[name] == pytest.approx(one.history[name], rel=1e-4)
        assert m.label_rate == one.label_rate
        assert m.sensitive_probs == one.sensitive_probs
        assert m.encoder.dim == one.encoder.dim
    a, b = (jax.tree.leaves(m.params["score"])[0] for m in many)
    assert not np.allclose(a, b)


def test_fit_many_refuses_fits_that_cannot_share_a_program():
    base = toy_dataset(n=300, seed=0)
    frame = base.frame.copy()
    frame["cat"] = np.where(np.arange(len(frame)) % 3 == 0, "mid", frame["cat"])
    wider = dataclasses.replace(base, frame=frame)  # one more category: a wider encoding
    keys = [jax.random.key(0), jax.random.key(1)]
    with pytest.raises(FairjaxError, match=r"fit 1 .*encoded width"):
        fadm.fit_many(keys, [base, wider], config=TINY, progress=False)
    with pytest.raises(FairjaxError, match=r"holdout=0\.1"):
        fadm.fit_many(keys, [base, base], config=dataclasses.replace(TINY, holdout=0.1))
    frame = base.frame.copy()
    frame["dom"] = np.where(np.arange(len(frame)) % 3 == 0, "c", frame["dom"])
    three = dataclasses.replace(base, frame=frame)
    with pytest.raises(FairjaxError, match=r"number of domains .* 3 vs 2"):
        fadm.fit_many(keys, [base, three], config=TINY, progress=False)
    with pytest.raises(FairjaxError, match="one key per dataset"):
        fadm.fit_many(keys[:1], [base, base], config=TINY, progress=False)


@pytest.mark.parametrize("use_meta", [True, False])
def test_padding_to_a_common_length_leaves_every_fits_batches_unchanged(use_meta):
    rng = np.random.default_rng(0)
    small = fadm._train_data(rng.normal(size=(300, 4)), rng.integers(0, 2, 300), np.arange(300) % 2)
    big = fadm._train_data(
        rng.normal(size=(1500, 4)), rng.integers(0, 2, 1500), np.zeros(1500, int)
    )
    # plain batches ignore the (empty) padding domains; meta batches need equal counts
    domains = 2 if use_meta else 3
    padded = fadm._pad_common([small, big], domains)
    assert padded[0].x.shape == padded[1].x.shape == (2048, 4)
    assert padded[0].counts.shape == padded[1].counts.shape == (domains,)
    batch = fadm._batch_fn(64, use_meta, True)
    key = jax.random.key(7)
    got, want = batch(padded[0], key), batch(small, key)
    jax.tree.map(np.testing.assert_array_equal, got, want)
