"""Flax networks for the generative models: the only module of fairjax that knows Flax.

Every network here is written for one example (x [d], t []) and works unchanged on a
batch (x [n, d], t [n]), so callers may `jax.vmap` it or not. Algorithm modules never see
these classes: pipelines turn them into plain functions `fn(params, x, t)` with
`make_apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class FourierTimeEmbedding(nn.Module):
    """Sinusoidal embedding of a time t in [0, 1] (Vaswani et al. 2017; Song et al. 2021).

    Frequencies are geometrically spaced from 1 to `max_period`; t is scaled by 1000 so
    the embedding resolves the small times near the data end of the diffusion.

    Input t: [] or [n]. Output: [..., dim].
    """

    dim: int = 64
    max_period: float = 10_000.0

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        half = self.dim // 2
        freqs = jnp.exp(-jnp.log(self.max_period) * jnp.arange(half) / half)
        angles = 1000.0 * jnp.asarray(t, jnp.float32)[..., None] * freqs
        return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class ResidualBlock(nn.Module):
    """x + Dense(SiLU(LayerNorm(Dense(SiLU(LayerNorm(x))) + time projection)))."""

    width: int

    @nn.compact
    def __call__(self, h: jax.Array, temb: jax.Array) -> jax.Array:
        z = nn.Dense(self.width)(nn.silu(nn.LayerNorm()(h)))
        z = z + nn.Dense(self.width)(temb)
        z = nn.Dense(self.width, kernel_init=nn.initializers.zeros)(nn.silu(nn.LayerNorm()(z)))
        return h + z


class TimeConditionedMLP(nn.Module):
    """Residual MLP f(x, t[, label]) -> [out_dim], conditioned on t through a Fourier
    embedding and, when `num_labels` > 0, on a class label.

    Used both as the score network (`score_net`: out_dim = data dim; it predicts the
    noise eps, see `make_score_fn`) and as the time-conditioned label / sensitive
    classifiers (out_dim = number of classes; outputs are logits).

    Attributes:
      out_dim: size of the output.
      width: hidden width of every residual block.
      num_blocks: number of residual blocks.
      time_dim: size of the Fourier time embedding.
      num_labels: 0 (no label input) or C: the network takes an integer label in
        {0, ..., C}, where C is "no label" (classifier-free guidance's null class),
        embedded and added to the time embedding.
    """

    out_dim: int
    width: int = 256
    num_blocks: int = 3
    time_dim: int = 64
    num_labels: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        temb = FourierTimeEmbedding(self.time_dim)(t)
        temb = nn.Dense(self.width)(nn.silu(nn.Dense(self.width)(temb)))
        if self.num_labels:
            onehot = jax.nn.one_hot(jnp.asarray(label, jnp.int32), self.num_labels + 1)
            temb = temb + nn.Dense(self.width, name="label_embedding")(onehot)
        h = nn.Dense(self.width)(x)
        for _ in range(self.num_blocks):
            h = ResidualBlock(self.width)(h, temb)
        return nn.Dense(self.out_dim)(nn.silu(nn.LayerNorm()(h)))


def score_net(
    dim: int, *, width: int, num_blocks: int, time_dim: int, num_labels: int = 0
) -> TimeConditionedMLP:
    """The score network of FADM and DDPM: eps(x[dim], t[][, label[]]) -> [dim], the
    predicted noise of a noised row (turn it into a score with `make_score_fn`).

    Args:
      dim: size of an encoded row.
      width, num_blocks, time_dim, num_labels: see `TimeConditionedMLP` (num_labels > 0:
        a label-conditioned score net, label C meaning "no label").
    """
    return TimeConditionedMLP(dim, width, num_blocks, time_dim, num_labels)


def make_score_fn(module: nn.Module, sde: Any) -> Callable:
    """`score_fn(params, x[d], t[], *cond) -> [d]` of a noise-predicting `module`
    (`score_net`): s(x, t) = -eps(x, t) / std(t), std from `sde.marginal` (a
    `fairjax.sde.SDE`); `cond` (a label[] of a label-conditioned net) goes to the module.

    References:
      Song et al., arXiv:2011.13456 (score_sde's VP models parameterise the score so).
    """
    eps_fn = make_apply(module)

    def score_fn(params, x, t, *cond):
        _, std = sde.marginal(x, t)
        return -eps_fn(params, x, t, *cond) / std

    return score_fn


class MLP(nn.Module):
    """Plain MLP x -> [out_dim] with SiLU activations (used by the VAE/GAN baselines)."""

    out_dim: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.silu(nn.Dense(width)(x))
        return nn.Dense(self.out_dim)(x)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm decoder block: h + Attn(LN(h)), then h + MLP(LN(h)), causal attention.

    Input h: [L, d_model]. Output: [L, d_model].
    """

    d_model: int
    n_heads: int
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        mask = nn.make_causal_mask(jnp.ones(h.shape[:-1]))  # [..., 1, L, L]
        attn = nn.MultiHeadDotProductAttention(num_heads=self.n_heads, qkv_features=self.d_model)
        h = h + attn(nn.LayerNorm()(h), mask=mask)
        z = nn.gelu(nn.Dense(self.mlp_ratio * self.d_model)(nn.LayerNorm()(h)))
        return h + nn.Dense(self.d_model)(z)


class RowTransformer(nn.Module):
    """Decoder-only Transformer over one token sequence: logits of the next token.

    Token embedding plus a learned position embedding, `n_layers` pre-LayerNorm blocks with
    causal self-attention (position i sees positions <= i only), a final LayerNorm and a
    linear map to the vocabulary. No dropout.

    Input tokens: int [L] (L <= max_len). Output: [L, vocab_size] logits, row i scoring the
    token that follows tokens[: i + 1].

    Attributes:
      vocab_size: number of token ids.
      max_len: longest sequence (size of the position embedding).
      d_model: width of the residual stream.
      n_heads: attention heads (must divide d_model).
      n_layers: number of blocks.
      mlp_ratio: hidden width of each block's MLP, in multiples of d_model.

    References:
      Vaswani et al. (2017), arXiv 1706.03762; Radford et al. (2019), GPT-2 (pre-LN).
    """

    vocab_size: int
    max_len: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        length = tokens.shape[-1]
        init = nn.initializers.normal(0.02)
        pos = self.param("pos_embedding", init, (self.max_len, self.d_model))
        h = nn.Embed(self.vocab_size, self.d_model, embedding_init=init)(tokens) + pos[:length]
        for _ in range(self.n_layers):
            h = TransformerBlock(self.d_model, self.n_heads, self.mlp_ratio)(h)
        return nn.Dense(self.vocab_size)(nn.LayerNorm()(h))


def init_params(module: nn.Module, key: jax.Array, *example_inputs: jax.Array):
    """Parameters of `module` for inputs shaped like `example_inputs` (one example)."""
    return module.init(key, *example_inputs)["params"]


def param_shapes(module: nn.Module, *input_shapes: int | tuple[int, ...]):
    """Shapes (`jax.ShapeDtypeStruct`s) of `init_params(module, key, zeros(shape), ...)`,
    without computing them (e.g. `param_shapes(net, dim, ())` for inputs x[dim], t[]);
    for checking loaded parameters against a config."""
    inputs = [jnp.zeros(shape) for shape in input_shapes]
    return jax.eval_shape(lambda key: init_params(module, key, *inputs), jax.random.key(0))


def make_apply(module: nn.Module) -> Callable:
    """`fn(params, *inputs)`: the module as a pure function of its parameter pytree."""
    return lambda params, *inputs: module.apply({"params": params}, *inputs)
