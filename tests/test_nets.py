"""Networks: written for one example, the same on a batch; the score of the noise-predicting
score net; causal attention; save/load bytes.

Small and fast on purpose: part of the floor-version CI subset, where it is the check that
the oldest supported Flax still builds, applies and serialises these modules.
"""

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from fairjax import nets, sde


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


def test_score_fn_of_the_score_net_is_minus_eps_over_the_vp_std():
    net = nets.score_net(5, width=16, num_blocks=1, time_dim=8)
    assert net == nets.TimeConditionedMLP(5, 16, 1, 8)  # the parameter tree FADM/DDPM save
    params = nets.init_params(net, jax.random.key(0), jnp.zeros(5), jnp.zeros(()))
    x, t = jax.random.normal(jax.random.key(1), (5,)), 0.3
    eps = np.asarray(nets.make_apply(net)(params, x, t), np.float64)
    # VP kernel std (arXiv:2011.13456 eq. 29): sqrt(1 - exp(-int_0^t beta)), in float64.
    std = np.sqrt(1.0 - np.exp(-(0.5 * t**2 * (20.0 - 0.1) + t * 0.1)))
    score_fn = nets.make_score_fn(net, sde.make_vp_sde(beta_min=0.1, beta_max=20.0))
    np.testing.assert_allclose(score_fn(params, x, t), -eps / std, rtol=1e-5)


def test_label_conditioned_score_net_reads_its_label_and_keeps_the_unconditioned_tree():
    plain = nets.score_net(5, width=16, num_blocks=1, time_dim=8)
    conditioned = nets.score_net(5, width=16, num_blocks=1, time_dim=8, num_labels=2)
    key, x, t = jax.random.key(0), jax.random.normal(jax.random.key(1), (5,)), jnp.float32(0.3)
    params = nets.init_params(conditioned, key, jnp.zeros(5), jnp.zeros(()), jnp.zeros((), int))
    base = nets.init_params(plain, key, jnp.zeros(5), jnp.zeros(()))
    # the same tree plus one embedding of the labels 0, 1 and "no label" (2)
    assert set(params) - set(base) == {"label_embedding"}
    assert params["label_embedding"]["kernel"].shape == (3, 16)
    # off the initialisation (its residual blocks start at zero, so nothing reads temb yet)
    leaves, tree = jax.tree.flatten(params)
    noise = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree.unflatten(
        tree, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, noise, strict=True)]
    )
    apply = nets.make_apply(conditioned)
    outs = [np.asarray(apply(params, x, t, jnp.int32(y))) for y in (0, 1, 2)]
    assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[1], outs[2])
    embedding = params["label_embedding"]["kernel"]
    # the embedding is the only way the label enters: equal rows give equal outputs
    tied = {**params, "label_embedding": {**params["label_embedding"], "kernel": embedding * 0}}
    np.testing.assert_array_equal(apply(tied, x, t, jnp.int32(0)), apply(tied, x, t, jnp.int32(2)))


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
