"""Networks: written for one example, the same on a batch; causal attention; save/load bytes.

Small and fast on purpose: part of the floor-version CI subset, where it is the check that
the oldest supported Flax still builds, applies and serialises these modules.
"""

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from fairjax import nets


def test_time_conditioned_mlp_on_one_example_equals_the_batch():
    net = nets.TimeConditionedMLP(out_dim=3, width=16, num_blocks=2, time_dim=8)
    params = nets.init_params(net, jax.random.key(0), jnp.zeros(5), jnp.zeros(()))
    apply = nets.make_apply(net)
    x = jax.random.normal(jax.random.key(1), (4, 5))
    t = jnp.linspace(0.1, 0.9, 4)
    batch = apply(params, x, t)
    single = jax.vmap(lambda xi, ti: apply(params, xi, ti))(x, t)
    assert batch.shape == (4, 3)
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)


def test_row_transformer_is_causal_and_round_trips_through_msgpack():
    net = nets.RowTransformer(vocab_size=11, max_len=6, d_model=16, n_heads=2, n_layers=1)
    tokens = jnp.array([1, 2, 3, 4, 5, 6])
    params = nets.init_params(net, jax.random.key(0), tokens)
    apply = nets.make_apply(net)
    logits = apply(params, tokens)
    changed = apply(params, tokens.at[4].set(9))
    assert logits.shape == (6, 11)
    np.testing.assert_allclose(logits[:4], changed[:4], rtol=1e-6, atol=1e-6)  # past only
    assert not np.allclose(logits[4:], changed[4:])
    restored = flax.serialization.msgpack_restore(flax.serialization.msgpack_serialize(params))
    np.testing.assert_array_equal(apply(restored, tokens), logits)
