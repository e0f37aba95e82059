"""VAE baseline: a Gaussian variational autoencoder on the joint row [features, label, s].

    model = vae.fit(jax.random.key(0), datasets.load_adult(), config=vae.PRESETS["quick"])
    frame = model.sample(jax.random.key(1), 1000)

Encoder q(z | x) = N(mu(x), diag(exp(logvar(x)))) and decoder p(x | z) are MLPs
(`nets.MLP`). The decoder outputs one logit per one-hot slot and one mean per numeric slot;
p(x | z) is a product of a softmax categorical per one-hot block and a Gaussian per numeric
slot with a learned standard deviation per numeric column (clipped to [0.01, 1], as in
TVAE, Xu et al. 2019). Training minimises the negative ELBO per row,

    sum_blocks CE(x_block, softmax(logits_block)) + sum_numeric NLL_Gauss + kl_weight * KL,

with the reparameterisation z = mu + exp(logvar / 2) eps. Sampling draws z ~ N(0, I), decodes,
and (`decoder_noise=True`, the default) draws x ~ p(x | z): N(0, sigma^2) noise on the numeric
slots, and Gumbel noise on the block logits, so that the encoder's argmax per block is a
draw from the block's softmax (Gumbel-max). The mode (mean, argmax of the logits) would
collapse every category the latent does not encode onto the most frequent one.

References:
  Kingma & Welling, arXiv:1312.6114 (VAE); Xu et al., arXiv:1907.00503 (TVAE, the tabular
  VAE of the comparison in arXiv:2406.09495 Table 1).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import nets, persist, training
from fairjax.baselines import common
from fairjax.baselines.common import Layout
from fairjax.data import Schema, TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

METHOD = "vae"
LOG_SIGMA_RANGE = (float(np.log(0.01)), 0.0)


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Hyperparameters of the VAE baseline (all JSON-serialisable).

    Attributes:
      latent_dim: size of z.
      width, depth: hidden layers of the encoder and of the decoder MLPs.
      batch_size: rows per step.
      steps: Adam steps.
      lr: Adam learning rate.
      kl_weight: weight of the KL term (1 = the ELBO).
      decoder_noise: sample rows from p(x | z) (Gaussian noise on numeric slots, a
        softmax draw per block); False: the mode of p(x | z) (mean, argmax).
      scaling: numeric scaling of the encoder, one of `fairjax.data.encoder.SCALINGS`.
      holdout: share of the rows (stratified by label) held out for early stopping; 0
        (the quick preset's) trains `steps` steps on every row. With holdout > 0 the
        held-out negative ELBO (KL weight 1, whatever `kl_weight` trains with) at one
        fixed draw of the encoder's noise is evaluated every `eval_every` steps,
        training stops after `patience` evaluations without improvement (`steps` becomes
        a maximum) and the best evaluated parameters are kept.
      eval_every: steps between held-out evaluations.
      patience: evaluations without improvement before training stops.
    """

    latent_dim: int = 64
    width: int = 256
    depth: int = 2
    batch_size: int = 500
    steps: int = 20_000
    lr: float = 1e-3
    kl_weight: float = 1.0
    decoder_noise: bool = True
    scaling: str = "quantile"
    holdout: float = 0.0
    eval_every: int = 250
    patience: int = 6

    def __post_init__(self):
        common.check_config(
            self,
            positive=("latent_dim", "width", "depth", "batch_size", "steps", "lr"),
            scaling=self.scaling,
        )
        if not self.kl_weight >= 0:
            raise FairjaxError(f"kl_weight must be >= 0; got {self.kl_weight!r}")
        training.check_stopping(self.holdout, self.eval_every, self.patience)


PRESETS = {
    # Seconds on 2 CPU cores for Adult.
    "quick": VAEConfig(latent_dim=16, width=128, depth=2, batch_size=256, steps=2000),
    # TVAE's defaults (latent 128, 2 x 128 hidden, batch 500, lr 1e-3, 300 epochs ~ 27k
    # steps on Adult), rounded, as a maximum: stopped on the held-out negative ELBO of 10%
    # of the rows.
    "paper": VAEConfig(
        latent_dim=128,
        width=128,
        depth=2,
        batch_size=500,
        steps=25_000,
        holdout=0.1,
        eval_every=500,
    ),
}


class NetSpec(NamedTuple):
    """The fields of a config that fix the two networks: the compiled sampler and the
    training step are cached on this (with the few options each also uses)."""

    latent_dim: int
    width: int
    depth: int

    @classmethod
    def of(cls, config: VAEConfig) -> NetSpec:
        """The spec of a `VAEConfig`."""
        return cls(*(getattr(config, f) for f in cls._fields))


def make_modules(config: VAEConfig | NetSpec, dim: int) -> tuple:
    """(encoder, decoder) Flax modules: x[dim] -> [2 latent_dim], z[latent_dim] -> [dim]."""
    layers = common.hidden(config.width, config.depth)
    return nets.MLP(2 * config.latent_dim, layers), nets.MLP(dim, layers)


def reconstruction_nll(
    layout: Layout, out: jax.Array, log_sigma: jax.Array, x: jax.Array
) -> jax.Array:
    """-log p(x | z) of one row.

    Args:
      layout: the encoded row's layout.
      out: [dim] decoder output (block logits, numeric means).
      log_sigma: [num_numeric] log standard deviations (clipped to `LOG_SIGMA_RANGE`).
      x: [dim] encoded row.

    Returns:
      [] the sum of a softmax cross-entropy per one-hot block and a Gaussian NLL per
      numeric slot.
    """
    nll = -jnp.sum(x * common.block_log_softmax(layout, out))
    idx = np.asarray(layout.numeric, np.int32)
    log_sigma = jnp.clip(log_sigma, *LOG_SIGMA_RANGE)
    resid = (x[idx] - out[idx]) * jnp.exp(-log_sigma)
    return nll + jnp.sum(0.5 * resid**2 + log_sigma + 0.5 * jnp.log(2 * jnp.pi))


def make_loss(encode_fn, decode_fn, layout: Layout, *, kl_weight: float = 1.0):
    """`loss_fn(params, x[n, dim], key) -> []`: the mean negative ELBO of a batch.

    Args:
      encode_fn: `(params, x[dim]) -> [2 latent]` (mean, log-variance).
      decode_fn: `(params, z[latent]) -> [dim]`.
      layout: the encoded row's layout.
      kl_weight: weight of KL(q(z | x) || N(0, I)).

    params is {"encoder", "decoder", "log_sigma" [num_numeric]}.

    References:
      arXiv:1312.6114 eq. 10 (Gaussian encoder, closed-form KL).
    """

    def single(params, x, key):
        mu, logvar = jnp.split(encode_fn(params["encoder"], x), 2)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
        out = decode_fn(params["decoder"], z)
        kl = 0.5 * jnp.sum(jnp.exp(logvar) + mu**2 - 1.0 - logvar)
        return reconstruction_nll(layout, out, params["log_sigma"], x) + kl_weight * kl

    def loss_fn(params, xs, key):
        keys = jax.random.split(key, xs.shape[0])
        return jnp.mean(jax.vmap(single, in_axes=(None, 0, 0))(params, xs, keys))

    return loss_fn


@dataclasses.dataclass(frozen=True)
class VAEModel(common.JointModel):
    """A fitted VAE; `sample` draws z ~ N(0, I), then x ~ p(x | z) (or its mode, see the
    config).

    Attributes:
      config: hyperparameters.
      encoder: the joint-row encoder [features, label, sensitive].
      schema: schema of the training data.
      params: {"encoder", "decoder", "log_sigma"}.
      history: final mean loss (negative ELBO per row), for the record.
    """

    config: VAEConfig
    encoder: TabularEncoder
    schema: Schema
    params: dict
    history: dict

    method = METHOD
    config_cls = VAEConfig

    def _sampler(self):
        cfg = self.config
        layout = Layout.of(self.encoder)
        return _compiled_sampler(NetSpec.of(cfg), layout, cfg.decoder_noise), self.params

    def _param_shapes(self):
        layout = Layout.of(self.encoder)
        encoder, decoder = make_modules(self.config, layout.dim)
        return {
            "encoder": nets.param_shapes(encoder, layout.dim),
            "decoder": nets.param_shapes(decoder, self.config.latent_dim),
            "log_sigma": jax.ShapeDtypeStruct((len(layout.numeric),), jnp.float32),
        }


def load(path: str | Path) -> VAEModel:
    """Read and verify a model written by `VAEModel.save` (parameter shapes included)."""
    return persist.load_model(VAEModel, path)


@functools.lru_cache(maxsize=32)
def _compiled_sampler(spec: NetSpec, layout: Layout, decoder_noise: bool):
    """Jitted `run(params, keys[c]) -> rows[c, dim]`; row i uses keys[i] only."""
    _, decoder = make_modules(spec, layout.dim)
    decode_fn = nets.make_apply(decoder)
    idx = np.asarray(layout.numeric, np.int32)

    in_block = common.block_ids(layout) >= 0

    def row(params, key):
        z_key, noise_key, gumbel_key = jax.random.split(key, 3)
        out = decode_fn(params["decoder"], jax.random.normal(z_key, (spec.latent_dim,)))
        if decoder_noise:
            sigma = jnp.exp(jnp.clip(params["log_sigma"], *LOG_SIGMA_RANGE))
            out = out.at[idx].add(sigma * jax.random.normal(noise_key, idx.shape))
            # Gumbel-max: the decoder's argmax of logits + Gumbel noise is a draw from
            # softmax(logits), so categories are sampled from p(x | z), not its mode.
            out = out + jnp.where(in_block, jax.random.gumbel(gumbel_key, out.shape), 0.0)
        return out

    return jax.jit(jax.vmap(row, in_axes=(None, 0)))


@functools.lru_cache(maxsize=32)
def _train_step(spec: NetSpec, layout: Layout, kl_weight: float, lr: float):
    """(step, optimizer), built once per setting so `training.run` reuses compiled code."""
    optimizer = optax.adam(lr)
    return training.make_train_step(_loss(spec, layout, kl_weight), optimizer), optimizer


@functools.lru_cache(maxsize=32)
def _loss(spec: NetSpec, layout: Layout, kl_weight: float):
    """`make_loss` of `spec`'s networks (kl_weight 1: the held-out negative ELBO)."""
    enc_module, dec_module = make_modules(spec, layout.dim)
    return make_loss(
        nets.make_apply(enc_module), nets.make_apply(dec_module), layout, kl_weight=kl_weight
    )


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: VAEConfig = PRESETS["paper"],
    progress: bool = True,
    train_files: training.TrainFiles | None = None,
) -> VAEModel:
    """Train the VAE on the joint rows [features, label, sensitive] of `dataset`.

    Args:
      key: PRNG key (initialisation, batches, reparameterisation noise).
      dataset: training rows; the domain column, if any, is left out.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      progress: show a progress bar.
      train_files: checkpoints, resume and the CSV record of the training
        (`training.TrainFiles`; the network is called "vae").

    Returns:
      The fitted `VAEModel`.
    """
    encoder = common.fit_joint_encoder(dataset, scaling=config.scaling)
    layout = Layout.of(encoder)
    x = encoder.encode(dataset.frame)
    enc_module, dec_module = make_modules(config, layout.dim)
    enc_key, dec_key, train_key = jax.random.split(key, 3)
    params: dict[str, Any] = {
        "encoder": nets.init_params(enc_module, enc_key, jnp.zeros(layout.dim)),
        "decoder": nets.init_params(dec_module, dec_key, jnp.zeros(config.latent_dim)),
        # sigma starts at 0.1, as in TVAE.
        "log_sigma": jnp.full(len(layout.numeric), np.log(0.1), jnp.float32),
    }
    step, optimizer = _train_step(NetSpec.of(config), layout, config.kl_weight, config.lr)
    state, record = common.train(
        train_key,
        training.init_train_state(params, optimizer),
        step,
        x,
        batch_size=config.batch_size,
        num_steps=config.steps,
        progress=progress,
        desc="vae",
        config=config,
        train_files=train_files,
        eval_loss=_loss(NetSpec.of(config), layout, 1.0),
        strata=dataset.y,
    )
    return VAEModel(config, encoder, dataset.schema, state.params, common.history(record))
