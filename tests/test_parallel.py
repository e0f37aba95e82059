"""fairjax.parallel: the divisibility rule and its message, the mesh and row sharding on 8 fake
devices, and `training.run`'s use of them (refusal before training, same parameters as one
device). Rows of the samplers on 1 and 8 devices: tests/test_sampling.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from host_devices import run_on_host_devices, run_processes

from fairjax import parallel, training
from fairjax.errors import FairjaxError


def _shapes(*shapes):
    return tuple(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes)


def test_padded_rows_is_the_next_multiple_of_the_device_count():
    assert [parallel.padded_rows(n, 8) for n in (1, 8, 9, 13, 16)] == [8, 8, 16, 16, 16]
    assert parallel.padded_rows(13, 1) == 13


def test_row_buckets_are_powers_of_two_above_a_minimum_and_pad_with_zeros():
    assert [parallel.bucket_rows(n, minimum=256) for n in (1, 256, 257, 1000)] == [
        256,
        256,
        512,
        1024,
    ]
    assert [parallel.bucket_rows(n, minimum=1) for n in (1, 2, 3, 5, 4096, 4097)] == [
        1,
        2,
        4,
        8,
        4096,
        8192,
    ]
    a = np.arange(1, 7, dtype=np.int32).reshape(3, 2)
    padded = parallel.zero_pad_rows(a, minimum=4)
    assert padded.dtype == np.int32 and padded.shape == (4, 2)
    np.testing.assert_array_equal(padded, [[1, 2], [3, 4], [5, 6], [0, 0]])


def test_check_rows_accepts_divisible_batches_and_anything_on_one_device():
    parallel.check_rows(_shapes((64, 3), (64,)), 8)
    parallel.check_rows(_shapes((5, 64, 3)), 8, axis=1)  # [n_critic, batch, dim]
    parallel.check_rows(_shapes((100, 3), ()), 1)  # one device: nothing to split


def test_check_rows_names_batch_size_devices_and_what_to_choose():
    with pytest.raises(FairjaxError) as info:
        parallel.check_rows(_shapes((100, 3), (100,)), 8, what="training of 'fadm score'")
    msg = str(info.value)
    assert msg.startswith("training of 'fadm score': batch size 100 ")
    assert "8 devices" in msg and "divisible by 8 (e.g. 96 or 104)" in msg
    # A meta-learning batch: (B_in [(D - 1) * B], B_out [B]); the message names B.
    with pytest.raises(FairjaxError, match=r"batch size 100 .* \(e\.g\. 96 or 104\)"):
        parallel.check_rows(_shapes((300, 3), (100, 3)), 8)
    with pytest.raises(FairjaxError, match=r"batch size 5 .* \(e\.g\. 8\)"):
        parallel.check_rows(_shapes((5, 3)), 8)
    with pytest.raises(FairjaxError, match=r"batch size 60 .*divisible by 8"):
        parallel.check_rows(_shapes((5, 60, 3)), 8, axis=1)  # the row axis, not n_critic
    with pytest.raises(FairjaxError, match=r"row axis 1 .*shape \(5,\)"):
        parallel.check_rows(_shapes((5,)), 2, axis=1)


def test_make_mesh_refuses_empty_or_repeated_devices():
    mesh = parallel.make_mesh()
    assert mesh.axis_names == ("rows",) and mesh.size == jax.device_count()
    with pytest.raises(FairjaxError, match="at least one device"):
        parallel.make_mesh([])
    with pytest.raises(FairjaxError, match="distinct"):
        parallel.make_mesh([jax.devices()[0]] * 2)


def test_one_device_places_nothing():
    mesh = parallel.make_mesh(jax.devices()[:1])
    batch = (jnp.ones((3, 2)), jnp.ones(3))
    assert parallel.constrain_rows(batch, mesh) is batch
    fn = lambda x, c: x * c[:, None]
    x, c = jnp.arange(6.0).reshape(3, 2), jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(parallel.shard_rows(fn, mesh)(x, c), jax.jit(fn)(x, c))


def _fit(rows, num_steps=20, row_axis=0):
    """Least squares w on `rows` random rows (per step) of a fixed table, by Adam."""
    x = jax.random.normal(jax.random.key(0), (256, 3))
    data = (x, x @ jnp.array([1.0, -2.0, 0.5]))
    optimizer = optax.adam(0.1)

    def loss_fn(w, batch, key):
        xb, yb = batch
        return jnp.mean((xb @ w - yb) ** 2)

    def batch_fn(data, key):
        idx = jax.random.randint(key, rows, 0, 256)
        return data[0][idx], data[1][idx]

    step = training.make_train_step(loss_fn, optimizer)
    if row_axis == 1:  # two sub-batches per step, [2, rows, ...], as the GANs' critic batches
        inner = step
        step = lambda state, batch, key: inner(state, jax.tree.map(lambda a: a[0], batch), key)
        one_batch = batch_fn
        batch_fn = lambda data, key: jax.tree.map(lambda a: jnp.stack([a, a]), one_batch(data, key))
    state = training.init_train_state(jnp.zeros(3), optimizer)
    state, _ = training.run(
        jax.random.key(1), state, step, batch_fn, data, num_steps=num_steps, chunk_size=8,
        progress=False, desc="toy", row_axis=row_axis,
    )  # fmt: skip
    return np.asarray(state.params)


_SUBPROCESS = """
import json
import jax, jax.numpy as jnp, numpy as np
from test_parallel import _fit
from fairjax import parallel
from fairjax.errors import FairjaxError
mesh = parallel.make_mesh()
out = {"size": mesh.size}
x = jax.device_put(jnp.zeros((16, 3)), parallel.row_sharding(mesh))
out["row_shards"] = sorted(s.data.shape[0] for s in x.addressable_shards)
x = jax.device_put(jnp.zeros((2, 16, 3)), parallel.row_sharding(mesh, axis=1))
out["axis1_shards"] = sorted(list(s.data.shape) for s in x.addressable_shards)
x = jax.device_put(jnp.zeros((16, 3)), parallel.replicated(mesh))
out["replicated_shards"] = sorted(s.data.shape[0] for s in x.addressable_shards)
out["fit16"] = _fit(16).tolist()
out["fit16_axis1"] = _fit(16, row_axis=1).tolist()
try:
    _fit(12, num_steps=10**9)  # refused before the first step, or this would never end
except FairjaxError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def test_eight_devices_shard_rows_train_like_one_and_refuse_odd_batches():
    got = run_on_host_devices(_SUBPROCESS)
    assert got["size"] == 8
    assert got["row_shards"] == [2] * 8
    assert got["axis1_shards"] == [[2, 2, 3]] * 8
    assert got["replicated_shards"] == [16] * 8
    # Sharded batches: the same parameters as one device, up to float reassociation.
    np.testing.assert_allclose(got["fit16"], _fit(16), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["fit16_axis1"], _fit(16, row_axis=1), rtol=1e-5, atol=1e-6)
    assert got["error"] == (
        "training of 'toy': batch size 12 does not divide over 8 devices; choose a batch size "
        "divisible by 8 (e.g. 8 or 16), or make fewer devices visible (e.g. "
        "CUDA_VISIBLE_DEVICES=0)."
    )


def test_initialize_needs_all_three_addresses_or_none():
    with pytest.raises(FairjaxError, match="together, or none"):
        parallel.initialize("localhost:1234", None, 0)
    with pytest.raises(FairjaxError, match="0 <= process_id < num_processes"):
        parallel.initialize("localhost:1234", 2, 2)


# A tiny FADM on German; the same command line in every process, as a launcher runs it.
_FIT = [
    "fit", "--method", "fadm", "--data", "german", "--quiet", "--seed", "3",
    "--set", "width=16", "--set", "num_blocks=1", "--set", "classifier_width=16",
    "--set", "score_steps=40", "--set", "classifier_steps=40", "--set", "batch_size=64",
    "--set", "meta=off",
]  # fmt: skip


@pytest.mark.slow
def test_two_processes_fit_and_sample_like_one(tmp_path):
    """`fairjax --coordinator ... fit/sample` over 2 processes x 2 host devices (one global
    mesh of 4, Gloo collectives) equals the same commands in this single-device process, and
    only process 0 writes."""
    from fairjax.cli import main
    from fairjax.fadm import load as load_fadm

    spread, alone = tmp_path / "spread", tmp_path / "alone"
    for i, proc in enumerate(run_processes([*_FIT, "--out", str(spread)])):
        assert proc.returncode == 0, f"process {i}: {proc.stderr[-2000:]}"
    assert main([*_FIT, "--out", str(alone)]) == 0
    leaves = [jax.tree.leaves(load_fadm(p).params) for p in (spread, alone)]
    for a, b in zip(*leaves, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "spread"]  # no strays

    sample = ["sample", "--model", str(alone), "-n", "101", "--steps", "20", "--quiet"]
    procs = run_processes([*sample, "--seed", "5", "--out", str(tmp_path / "spread.csv")])
    assert all(p.returncode == 0 for p in procs), procs[0].stderr[-2000:]
    assert main([*sample, "--seed", "5", "--out", str(tmp_path / "alone.csv")]) == 0
    import pandas as pd

    got, want = (pd.read_csv(tmp_path / f"{n}.csv") for n in ("spread", "alone"))
    assert got.shape == want.shape == (101, want.shape[1])
    numeric = want.select_dtypes("number").columns
    np.testing.assert_allclose(got[numeric], want[numeric], rtol=1e-3, atol=1e-3)
    other = want.columns.difference(numeric)
    assert (got[other] == want[other]).to_numpy().mean() >= 0.99
