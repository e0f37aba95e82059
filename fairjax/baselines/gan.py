"""GAN baseline: a Wasserstein GAN with gradient penalty on the joint row [features, label, s].

    model = gan.fit(jax.random.key(0), datasets.load_adult(), config=gan.PRESETS["quick"])
    frame = model.sample(jax.random.key(1), 1000)

The generator G(z) is an MLP whose raw output goes through `common.make_row_head`: numeric
slots stay linear, each one-hot block is a Gumbel-softmax sample at temperature 0.2 (CTGAN's
heads), so fake rows are nearly one-hot like real ones and the decoder's argmax of a block
is a draw from the block's softmax. The critic D(x) is an MLP to a scalar.

Why WGAN-GP rather than the non-saturating GAN: real one-hot blocks and generated relaxed
ones differ in kind, and a classifier-discriminator saturates on that difference early,
leaving the generator with vanishing gradients; the critic of WGAN-GP is kept 1-Lipschitz by
the penalty, so its gradients stay informative and training is stable with one setting
across data sets. It is also what the tabular GANs of the comparison (CTGAN) use. Each
`step` makes `n_critic` critic updates on fresh real batches, then one generator update, in
one pure function (`make_wgan_gp_step`), run by `training.run`.

References:
  Gulrajani et al., arXiv:1704.00028 (WGAN-GP, Algorithm 1: lambda = 10, n_critic = 5,
  Adam(1e-4, 0.5, 0.9)); Xu et al., arXiv:1907.00503 (CTGAN: Gumbel-softmax heads,
  temperature 0.2, lr 2e-4, batch 500).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fairjax import nets, persist, training
from fairjax.baselines import common
from fairjax.baselines.common import Layout
from fairjax.data import Schema, TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

METHOD = "gan"


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Hyperparameters of the WGAN-GP baseline (all JSON-serialisable).

    Attributes:
      latent_dim: size of the generator's noise z ~ N(0, I).
      width, depth: hidden layers of the generator and of the critic MLPs.
      batch_size: rows per critic / generator update.
      steps: generator updates (each after `n_critic` critic updates). A fixed count, not a
        maximum: a GAN has no held-out likelihood to stop on (the critic's loss measures the
        critic, which is trained against the generator, not the fit of the rows), so unlike
        FADM, DDPM and the VAE it has no `holdout` early stopping.
      n_critic: critic updates per generator update.
      lr: Adam learning rate of both players (b1 = 0.5, b2 = 0.9).
      gp_weight: gradient-penalty weight lambda.
      temperature: Gumbel-softmax temperature of the one-hot heads.
      scaling: numeric scaling of the encoder, one of `fairjax.data.encoder.SCALINGS`.
    """

    latent_dim: int = 128
    width: int = 256
    depth: int = 2
    batch_size: int = 500
    steps: int = 10_000
    n_critic: int = 5
    lr: float = 2e-4
    gp_weight: float = 10.0
    temperature: float = 0.2
    scaling: str = "quantile"

    def __post_init__(self):
        common.check_config(
            self,
            positive=(
                "latent_dim",
                "width",
                "depth",
                "batch_size",
                "steps",
                "n_critic",
                "lr",
                "temperature",
            ),
            scaling=self.scaling,
        )
        if not self.gp_weight >= 0:
            raise FairjaxError(f"gp_weight must be >= 0; got {self.gp_weight!r}")


PRESETS = {
    # Seconds on 2 CPU cores for Adult.
    "quick": GANConfig(latent_dim=32, width=128, depth=2, batch_size=256, steps=500),
    # CTGAN-sized networks (2 x 256, z of 128, batch 500, lr 2e-4) and WGAN-GP's
    # n_critic = 5, lambda = 10.
    "paper": GANConfig(),
}


class GANState(NamedTuple):
    """Step counter, both players' parameters and optimizer states."""

    step: jax.Array
    g_params: Any
    d_params: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState


def make_optimizer(lr: float) -> optax.GradientTransformation:
    """Adam(lr, b1 = 0.5, b2 = 0.9), WGAN-GP's setting for both players."""
    return optax.adam(lr, b1=0.5, b2=0.9)


def gradient_penalty(
    critic_fn: Callable, params: Any, real: jax.Array, fake: jax.Array, key: jax.Array
) -> jax.Array:
    """Mean of (||grad_x D(x_hat)|| - 1)^2 over random interpolates of real and fake rows.

    Args:
      critic_fn: `(params, x[dim]) -> []`.
      params: critic parameters.
      real, fake: [n, dim] rows.
      key: PRNG key of the interpolation weights.

    Returns:
      [] the penalty (without its weight).

    References:
      arXiv:1704.00028 eq. 3.
    """
    u = jax.random.uniform(key, (real.shape[0], 1))
    x_hat = u * real + (1.0 - u) * fake
    grads = jax.vmap(jax.grad(critic_fn, argnums=1), in_axes=(None, 0))(params, x_hat)
    return jnp.mean((jnp.linalg.norm(grads, axis=-1) - 1.0) ** 2)


def critic_loss(
    critic_fn: Callable,
    params: Any,
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
    *,
    gp_weight: float,
) -> tuple[jax.Array, jax.Array]:
    """WGAN-GP critic loss E[D(fake)] - E[D(real)] + gp_weight * GP.

    Returns:
      (loss [], Wasserstein estimate E[D(real)] - E[D(fake)] []).
    """
    d = jax.vmap(critic_fn, in_axes=(None, 0))
    wdist = jnp.mean(d(params, real)) - jnp.mean(d(params, fake))
    return -wdist + gp_weight * gradient_penalty(critic_fn, params, real, fake, key), wdist


def make_wgan_gp_step(
    generate_fn: Callable,
    critic_fn: Callable,
    optimizer: optax.GradientTransformation,
    *,
    gp_weight: float,
) -> Callable:
    """`step(state, real[n_critic, B, dim], key) -> (state, {"wasserstein": wdist})`:
    WGAN-GP Algorithm 1.

    Args:
      generate_fn: `(g_params, key) -> row[dim]`, one fake row.
      critic_fn: `(d_params, x[dim]) -> []`.
      optimizer: used for both players (each keeps its own state).
      gp_weight: gradient-penalty weight.

    Returns:
      The pure step: one critic update per real batch (n_critic of them, the generator
      fixed), then one generator update on -E[D(G(z))] with the new critic. The metric
      "wasserstein" is the last critic update's Wasserstein estimate.

    References:
      arXiv:1704.00028 Algorithm 1.
    """

    def fakes(g_params, key, n):
        return jax.vmap(generate_fn, in_axes=(None, 0))(g_params, jax.random.split(key, n))

    def step(state: GANState, real: jax.Array, key: jax.Array):
        critic_key, gen_key = jax.random.split(key)
        batch = real.shape[1]

        def critic_update(carry, inputs):
            d_params, d_opt_state = carry
            x_real, k = inputs
            fake_key, gp_key = jax.random.split(k)
            fake = jax.lax.stop_gradient(fakes(state.g_params, fake_key, batch))
            (_, wdist), grads = jax.value_and_grad(
                lambda p: critic_loss(critic_fn, p, x_real, fake, gp_key, gp_weight=gp_weight),
                has_aux=True,
            )(d_params)
            updates, d_opt_state = optimizer.update(grads, d_opt_state, d_params)
            return (optax.apply_updates(d_params, updates), d_opt_state), wdist

        keys = jax.random.split(critic_key, real.shape[0])
        (d_params, d_opt_state), wdists = jax.lax.scan(
            critic_update, (state.d_params, state.d_opt_state), (real, keys)
        )

        def generator_loss(g_params):
            fake = fakes(g_params, gen_key, batch)
            return -jnp.mean(jax.vmap(critic_fn, in_axes=(None, 0))(d_params, fake))

        grads = jax.grad(generator_loss)(state.g_params)
        updates, g_opt_state = optimizer.update(grads, state.g_opt_state, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)
        new = GANState(state.step + 1, g_params, d_params, g_opt_state, d_opt_state)
        return new, {"wasserstein": wdists[-1]}

    return step


class NetSpec(NamedTuple):
    """The fields of a config that fix the players' networks and the generator's head (also
    FairGAN's): networks, the compiled sampler and the training step are cached on this."""

    latent_dim: int
    width: int
    depth: int
    temperature: float

    @classmethod
    def of(cls, config: Any) -> NetSpec:
        """The spec of a `GANConfig` (or any config with these fields)."""
        return cls(*(getattr(config, f) for f in cls._fields))


def make_modules(config: GANConfig | NetSpec, dim: int) -> tuple:
    """(generator, critic) Flax modules: z[latent_dim] -> raw[dim], x[dim] -> [1]."""
    layers = common.hidden(config.width, config.depth)
    return nets.MLP(dim, layers), nets.MLP(1, layers)


def make_networks(config: GANConfig | NetSpec, layout: Layout) -> tuple[Callable, Callable]:
    """(generate_fn(g_params, key) -> row[dim], critic_fn(d_params, x[dim]) -> [])."""
    return _make_networks(NetSpec.of(config), layout)


@functools.lru_cache(maxsize=32)
def _make_networks(spec: NetSpec, layout: Layout) -> tuple[Callable, Callable]:
    generator, critic = make_modules(spec, layout.dim)
    g_apply, d_apply = nets.make_apply(generator), nets.make_apply(critic)
    head = common.make_row_head(layout, temperature=spec.temperature)

    def generate_fn(g_params, key):
        z_key, head_key = jax.random.split(key)
        return head(head_key, g_apply(g_params, jax.random.normal(z_key, (spec.latent_dim,))))

    def critic_fn(d_params, x):
        return d_apply(d_params, x)[0]

    return generate_fn, critic_fn


@dataclasses.dataclass(frozen=True)
class GANModel(common.JointModel):
    """A fitted WGAN-GP generator; `sample` makes rows x = G(z), z ~ N(0, I), one softmax
    draw per one-hot block.

    Attributes:
      config: hyperparameters.
      encoder: the joint-row encoder [features, label, sensitive].
      schema: schema of the training data.
      params: {"generator", "critic"}.
      history: "wasserstein", the critic's mean Wasserstein estimate over the last tenth
        of the steps, and "record", the training curve (`training.Record` as a dict).
    """

    config: GANConfig
    encoder: TabularEncoder
    schema: Schema
    params: dict
    history: dict

    method = METHOD
    config_cls = GANConfig

    def _sampler(self):
        run = _compiled_sampler(NetSpec.of(self.config), Layout.of(self.encoder))
        return run, self.params["generator"]

    def _param_shapes(self):
        dim = Layout.of(self.encoder).dim
        generator, critic = make_modules(self.config, dim)
        return {
            "generator": nets.param_shapes(generator, self.config.latent_dim),
            "critic": nets.param_shapes(critic, dim),
        }


def load(path: str | Path) -> GANModel:
    """Read and verify a model written by `GANModel.save` (parameter shapes included)."""
    return persist.load_model(GANModel, path)


@functools.lru_cache(maxsize=32)
def _compiled_sampler(spec: NetSpec, layout: Layout):
    """Jitted `run(g_params, keys[c]) -> rows[c, dim]`; row i uses keys[i] only."""
    generate_fn, _ = _make_networks(spec, layout)
    return jax.jit(jax.vmap(generate_fn, in_axes=(None, 0)))


@functools.lru_cache(maxsize=32)
def _train_step(spec: NetSpec, layout: Layout, lr: float, gp_weight: float):
    """(step, optimizer), built once per setting so `training.run` reuses compiled code."""
    generate_fn, critic_fn = _make_networks(spec, layout)
    optimizer = make_optimizer(lr)
    step = make_wgan_gp_step(generate_fn, critic_fn, optimizer, gp_weight=gp_weight)
    return step, optimizer


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: GANConfig = PRESETS["paper"],
    progress: bool = True,
    train_files: training.TrainFiles | None = None,
) -> GANModel:
    """Train the WGAN-GP on the joint rows [features, label, sensitive] of `dataset`.

    Args:
      key: PRNG key (initialisation, batches, noise).
      dataset: training rows; the domain column, if any, is left out.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      progress: show a progress bar.
      train_files: checkpoints, resume and the CSV record of the training
        (`training.TrainFiles`; the network is called "gan").

    Returns:
      The fitted `GANModel`.
    """
    encoder = common.fit_joint_encoder(dataset, scaling=config.scaling)
    layout = Layout.of(encoder)
    generator, critic = make_modules(config, layout.dim)
    g_key, d_key, train_key = jax.random.split(key, 3)
    g_params = nets.init_params(generator, g_key, jnp.zeros(config.latent_dim))
    d_params = nets.init_params(critic, d_key, jnp.zeros(layout.dim))
    step, optimizer = _train_step(NetSpec.of(config), layout, config.lr, config.gp_weight)
    state = GANState(
        jnp.zeros((), jnp.int32),
        g_params,
        d_params,
        optimizer.init(g_params),
        optimizer.init(d_params),
    )
    state, record = common.train(
        train_key,
        state,
        step,
        encoder.encode(dataset.frame),
        batch_size=config.batch_size,
        num_steps=config.steps,
        n_critic=config.n_critic,
        progress=progress,
        desc="gan",
        config=config,
        train_files=train_files,
    )
    params = {"generator": state.g_params, "critic": state.d_params}
    return GANModel(config, encoder, dataset.schema, params, common.history(record))
