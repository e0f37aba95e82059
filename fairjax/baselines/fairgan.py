"""FairGAN baseline (Xu, Yuan, Zhang, Wu 2018): a GAN conditioned on s with a second
discriminator that tries to recover s from the generated (x, y).

    model = fairgan.fit(jax.random.key(0), datasets.load_adult(),
                        config=fairgan.PRESETS["quick"])
    frame = model.sample(jax.random.key(1), 1000)

Players (s = the first sensitive column, one-hot; (x, y) = every other generated column:
the features, the label and any further sensitive columns):
- the generator G(z, s) -> (x, y), with the heads of the GAN baseline (linear numeric slots,
  Gumbel-softmax one-hot blocks);
- D1, a critic on whole rows (x, y, s): real rows against (G(z, s), s) with s drawn from the
  real rows, so G learns P(x, y | s) and the joint P(x, y, s);
- D2, a classifier of s from generated (x, y) only, trained by cross-entropy.

The game is FairGAN's eq. 4, min_G max_{D1, D2} V1(G, D1) + lambda V2(G, D2), with
V2 = E_{s, (x, y) ~ P_G(. | s)} log D2(s | x, y). G therefore minimises
L_WGAN(G) + `fairness_weight` * E log D2(s | G(z, s)), i.e. it *raises* D2's cross-entropy:
at the optimum of D2 that is the Jensen-Shannon divergence between P_G(x, y | s) of the
groups, which is zero exactly when the generated (x, y) carry no information about s
(FairGAN Theorem 2). `fairness_weight` is the paper's lambda, default 1 as in the paper.

Differences from the paper, and why: the paper builds on medGAN (a pre-trained
autoencoder whose decoder is the generator's last layers) and uses the standard GAN loss for
D1. Here D1 is the same WGAN-GP critic and the generator the same network with the same
heads as `fairjax.baselines.gan`, so that FairGAN and GAN in a comparison differ only in
the conditioning on s and the D2 term. At sampling time s is drawn from its training
marginal and the generated rows keep it as their value of the sensitive column.

References:
  Xu, Yuan, Zhang, Wu, "FairGAN: Fairness-aware Generative Adversarial Networks",
  arXiv:1805.11202 (eqs. 2-4, Algorithm 1, lambda = 1); Gulrajani et al., arXiv:1704.00028.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import nets, persist, training
from fairjax.baselines import common, gan
from fairjax.baselines.common import Layout
from fairjax.data import Schema, TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

METHOD = "fairgan"


@dataclasses.dataclass(frozen=True)
class FairGANConfig:
    """Hyperparameters of FairGAN (all JSON-serialisable); the GAN fields are those of
    `gan.GANConfig`.

    Attributes:
      latent_dim: size of the generator's noise z ~ N(0, I).
      width, depth: hidden layers of the generator, D1 and D2 MLPs.
      batch_size: rows per update.
      steps: generator updates (each after `n_critic` updates of D1 and of D2). A fixed
        count, not a maximum: a GAN has no held-out likelihood to stop on (the critic's loss
        measures the critic, which is trained against the generator, not the fit of the
        rows), so unlike FADM, DDPM and the VAE it has no `holdout` early stopping.
      n_critic: D1 / D2 updates per generator update.
      lr: Adam learning rate of all players (b1 = 0.5, b2 = 0.9).
      gp_weight: gradient-penalty weight of D1.
      temperature: Gumbel-softmax temperature of the one-hot heads.
      fairness_weight: lambda of FairGAN eq. 4 (weight of the D2 term; the paper's 1).
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
    fairness_weight: float = 1.0
    scaling: str = "quantile"

    def __post_init__(self):
        self.gan_config()  # validates the shared fields
        if not self.fairness_weight >= 0:
            raise FairjaxError(f"fairness_weight must be >= 0; got {self.fairness_weight!r}")

    def gan_config(self) -> gan.GANConfig:
        """The `gan.GANConfig` of the shared fields."""
        fields = {f.name for f in dataclasses.fields(gan.GANConfig)}
        return gan.GANConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in fields})


PRESETS = {
    # The GAN baseline's quick and paper settings, with the paper's lambda = 1.
    "quick": FairGANConfig(**dataclasses.asdict(gan.PRESETS["quick"])),
    "paper": FairGANConfig(**dataclasses.asdict(gan.PRESETS["paper"])),
}


class FairGANState(NamedTuple):
    """Step counter, the three players' parameters and optimizer states."""

    step: jax.Array
    g_params: Any
    d1_params: Any
    d2_params: Any
    g_opt_state: optax.OptState
    d1_opt_state: optax.OptState
    d2_opt_state: optax.OptState


class Networks(NamedTuple):
    """The three players as pure per-example functions.

    Attributes:
      generate_fn: `(g_params, key, s[k]) -> row[dim]`, s one-hot; the row holds s in its
        s block.
      critic_fn: `(d1_params, row[dim]) -> []`.
      sensitive_logits_fn: `(d2_params, row[dim]) -> [k]`, reading only the non-s slots.
      s_block: (start, stop) of the s block in the row.
    """

    generate_fn: Callable
    critic_fn: Callable
    sensitive_logits_fn: Callable
    s_block: tuple[int, int]


def make_modules(config: FairGANConfig | gan.NetSpec, dim: int, num_sensitive: int) -> tuple:
    """(generator, D1, D2) Flax modules: [z, s] -> raw[dim], row[dim] -> [1],
    (x, y)[dim - k] -> [k]."""
    layers = common.hidden(config.width, config.depth)
    return nets.MLP(dim, layers), nets.MLP(1, layers), nets.MLP(num_sensitive, layers)


def make_networks(
    config: FairGANConfig | gan.NetSpec, layout: Layout, s_block: tuple[int, int]
) -> Networks:
    """The players of `config` for rows of `layout` whose s one-hot is `s_block`."""
    return _make_networks(gan.NetSpec.of(config), layout, s_block)


@functools.lru_cache(maxsize=32)
def _make_networks(spec: gan.NetSpec, layout: Layout, s_block: tuple[int, int]) -> Networks:
    start, stop = s_block
    generator, d1, d2 = make_modules(spec, layout.dim, stop - start)
    g_apply, d1_apply, d2_apply = map(nets.make_apply, (generator, d1, d2))
    head = common.make_row_head(layout, temperature=spec.temperature)
    keep = np.r_[0:start, stop : layout.dim]  # the (x, y) slots

    def generate_fn(g_params, key, s):
        z_key, head_key = jax.random.split(key)
        z = jax.random.normal(z_key, (spec.latent_dim,))
        row = head(head_key, g_apply(g_params, jnp.concatenate([z, s])))
        return row.at[start:stop].set(s)

    def critic_fn(d1_params, row):
        return d1_apply(d1_params, row)[0]

    def sensitive_logits_fn(d2_params, row):
        return d2_apply(d2_params, row[keep])

    return Networks(generate_fn, critic_fn, sensitive_logits_fn, s_block)


def make_fairgan_step(
    networks: Networks,
    optimizer: optax.GradientTransformation,
    *,
    gp_weight: float,
    fairness_weight: float,
) -> Callable:
    """`step(state, real[n_critic, B, dim], key) -> (state, {"wasserstein", "sensitive_ce"})`.

    Per real batch (n_critic of them), with G fixed: fake rows G(z, s) for the batch's s;
    one WGAN-GP update of D1 (real against fake rows) and one cross-entropy update of D2
    (s from the fake rows' (x, y)). Then one generator update on

        -E[D1(G(z, s))] + fairness_weight * E[log D2(s | G(z, s))]

    with s from the last real batch. Returns the last D1 Wasserstein estimate and D2's
    cross-entropy on the generator's rows (log k means no information about s).

    References:
      arXiv:1805.11202 eq. 4 and Algorithm 1; arXiv:1704.00028 Algorithm 1.
    """
    nw = networks
    start, stop = nw.s_block

    def fakes(g_params, key, s):
        keys = jax.random.split(key, s.shape[0])
        return jax.vmap(nw.generate_fn, in_axes=(None, 0, 0))(g_params, keys, s)

    def d2_cross_entropy(d2_params, rows, s):
        logits = jax.vmap(nw.sensitive_logits_fn, in_axes=(None, 0))(d2_params, rows)
        return -jnp.mean(jnp.sum(s * jax.nn.log_softmax(logits), axis=-1))

    def step(state: FairGANState, real: jax.Array, key: jax.Array):
        critic_key, gen_key = jax.random.split(key)

        def discriminators_update(carry, inputs):
            d1_params, d2_params, d1_opt_state, d2_opt_state = carry
            x_real, k = inputs
            fake_key, gp_key = jax.random.split(k)
            s = x_real[:, start:stop]
            fake = jax.lax.stop_gradient(fakes(state.g_params, fake_key, s))
            (_, wdist), g1 = jax.value_and_grad(
                lambda p: gan.critic_loss(
                    nw.critic_fn, p, x_real, fake, gp_key, gp_weight=gp_weight
                ),
                has_aux=True,
            )(d1_params)
            ce, g2 = jax.value_and_grad(d2_cross_entropy)(d2_params, fake, s)
            u1, d1_opt_state = optimizer.update(g1, d1_opt_state, d1_params)
            u2, d2_opt_state = optimizer.update(g2, d2_opt_state, d2_params)
            carry = (
                optax.apply_updates(d1_params, u1),
                optax.apply_updates(d2_params, u2),
                d1_opt_state,
                d2_opt_state,
            )
            return carry, jnp.stack([wdist, ce])

        keys = jax.random.split(critic_key, real.shape[0])
        carry = (state.d1_params, state.d2_params, state.d1_opt_state, state.d2_opt_state)
        (d1_params, d2_params, d1_opt_state, d2_opt_state), metrics = jax.lax.scan(
            discriminators_update, carry, (real, keys)
        )

        def generator_loss(g_params):
            s = real[-1][:, start:stop]
            fake = fakes(g_params, gen_key, s)
            adversarial = -jnp.mean(jax.vmap(nw.critic_fn, in_axes=(None, 0))(d1_params, fake))
            # V2 = E log D2(s | x, y) = -cross-entropy: G maximises D2's cross-entropy.
            return adversarial - fairness_weight * d2_cross_entropy(d2_params, fake, s)

        grads = jax.grad(generator_loss)(state.g_params)
        updates, g_opt_state = optimizer.update(grads, state.g_opt_state, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)
        new = FairGANState(
            state.step + 1, g_params, d1_params, d2_params, g_opt_state, d1_opt_state, d2_opt_state
        )
        return new, {"wasserstein": metrics[-1, 0], "sensitive_ce": metrics[-1, 1]}

    return step


@dataclasses.dataclass(frozen=True)
class FairGANModel(common.JointModel):
    """A fitted FairGAN; `sample` draws s from its training marginal, then (x, y) = G(z, s).

    Attributes:
      config: hyperparameters.
      encoder: the joint-row encoder [features, label, sensitive]; the first sensitive
        column is the condition s.
      schema: schema of the training data.
      params: {"generator", "critic", "sensitive"} (G, D1, D2).
      sensitive_probs: training frequencies of s's categories, in one-hot order.
      history: "wasserstein" and "sensitive_ce", D1's Wasserstein estimate and D2's
        cross-entropy averaged over the last tenth of the steps, and "record", the training
        curve (`training.Record` as a dict).
    """

    config: FairGANConfig
    encoder: TabularEncoder
    schema: Schema
    params: dict
    sensitive_probs: tuple[float, ...]
    history: dict

    method = METHOD
    config_cls = FairGANConfig

    def _sampler(self):
        run = _compiled_sampler(
            gan.NetSpec.of(self.config),
            Layout.of(self.encoder),
            _s_block(self.encoder, self.schema),
            self.sensitive_probs,
        )
        return run, self.params["generator"]

    def _param_shapes(self):
        dim = Layout.of(self.encoder).dim
        start, stop = _s_block(self.encoder, self.schema)
        generator, d1, d2 = make_modules(self.config, dim, stop - start)
        return {
            "generator": nets.param_shapes(generator, self.config.latent_dim + stop - start),
            "critic": nets.param_shapes(d1, dim),
            "sensitive": nets.param_shapes(d2, dim - (stop - start)),
        }


def load(path: str | Path) -> FairGANModel:
    """Read and verify a model written by `FairGANModel.save` (parameter shapes included)."""
    return persist.load_model(FairGANModel, path)


def _s_block(encoder: TabularEncoder, schema: Schema) -> tuple[int, int]:
    """(start, stop) of the first sensitive column's one-hot block; FairjaxError if numeric."""
    _, sensitive = common.joint_columns(schema)
    codec = next(c for c in encoder.codecs if c.name == sensitive[0])
    if codec.kind != "categorical":
        raise FairjaxError(
            f"FairGAN conditions on the first sensitive column {codec.name!r}, which must be "
            "categorical; it is numeric in the schema (declare it categorical, or list a "
            "categorical sensitive column first)"
        )
    return codec.start, codec.stop


@functools.lru_cache(maxsize=32)
def _compiled_sampler(
    spec: gan.NetSpec, layout: Layout, s_block: tuple[int, int], probs: tuple[float, ...]
):
    """Jitted `run(g_params, keys[c]) -> rows[c, dim]`; row i uses keys[i] only."""
    nw = _make_networks(spec, layout, s_block)
    log_p = jnp.log(jnp.asarray(probs, jnp.float32))

    def row(g_params, key):
        s_key, g_key = jax.random.split(key)
        s = jax.nn.one_hot(jax.random.categorical(s_key, log_p), len(probs))
        return nw.generate_fn(g_params, g_key, s)

    return jax.jit(jax.vmap(row, in_axes=(None, 0)))


@functools.lru_cache(maxsize=32)
def _train_step(
    spec: gan.NetSpec,
    layout: Layout,
    s_block: tuple[int, int],
    lr: float,
    gp_weight: float,
    fairness_weight: float,
):
    """(step, optimizer), built once per setting so `training.run` reuses compiled code."""
    optimizer = gan.make_optimizer(lr)
    step = make_fairgan_step(
        _make_networks(spec, layout, s_block),
        optimizer,
        gp_weight=gp_weight,
        fairness_weight=fairness_weight,
    )
    return step, optimizer


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: FairGANConfig = PRESETS["paper"],
    progress: bool = True,
    train_files: training.TrainFiles | None = None,
) -> FairGANModel:
    """Train FairGAN on the joint rows [features, label, sensitive] of `dataset`.

    Args:
      key: PRNG key (initialisation, batches, noise).
      dataset: training rows; s = the first sensitive column (categorical); the domain
        column, if any, is left out.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      progress: show a progress bar.
      train_files: checkpoints, resume and the CSV record of the training
        (`training.TrainFiles`; the network is called "fairgan").

    Returns:
      The fitted `FairGANModel`.

    References:
      arXiv:1805.11202 Algorithm 1.
    """
    encoder = common.fit_joint_encoder(dataset, scaling=config.scaling)
    layout = Layout.of(encoder)
    s_block = _s_block(encoder, dataset.schema)
    k = s_block[1] - s_block[0]
    x = encoder.encode(dataset.frame)
    generator, d1, d2 = make_modules(config, layout.dim, k)
    g_key, d1_key, d2_key, train_key = jax.random.split(key, 4)
    g_params = nets.init_params(generator, g_key, jnp.zeros(config.latent_dim + k))
    d1_params = nets.init_params(d1, d1_key, jnp.zeros(layout.dim))
    d2_params = nets.init_params(d2, d2_key, jnp.zeros(layout.dim - k))
    step, optimizer = _train_step(
        gan.NetSpec.of(config),
        layout,
        s_block,
        config.lr,
        config.gp_weight,
        config.fairness_weight,
    )
    state = FairGANState(
        jnp.zeros((), jnp.int32),
        g_params,
        d1_params,
        d2_params,
        *(optimizer.init(p) for p in (g_params, d1_params, d2_params)),
    )
    state, record = common.train(
        train_key,
        state,
        step,
        x,
        batch_size=config.batch_size,
        num_steps=config.steps,
        n_critic=config.n_critic,
        progress=progress,
        desc="fairgan",
        config=config,
        train_files=train_files,
    )
    probs = x[:, s_block[0] : s_block[1]].mean(axis=0)
    params = {"generator": state.g_params, "critic": state.d1_params, "sensitive": state.d2_params}
    return FairGANModel(
        config,
        encoder,
        dataset.schema,
        params,
        tuple(float(p) for p in probs / probs.sum()),
        common.history(record),
    )
