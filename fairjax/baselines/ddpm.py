"""DDPM baseline: FADM's diffusion model without guidance and without meta-learning.

    model = ddpm.fit(jax.random.key(0), datasets.load_adult(), config=ddpm.PRESETS["quick"])
    frame = model.sample(jax.random.key(1), 1000)

The same VP SDE (`sde.make_sde`), score network (`nets.score_net`, predicting the noise;
s = -eps / std by `nets.make_score_fn`) and reverse-time samplers as `fairjax.fadm`, from
the same builders so the two cannot drift apart, but trained by plain denoising score matching
(`sde.make_dsm_loss`) on the joint row [features, label, sensitive] and sampled without
classifier guidance. The label and the sensitive columns are generated like any other
column (argmax of their block), so the comparison with FADM isolates guidance and
meta-learning.

References:
  Song et al., arXiv:2011.13456 (VP SDE, DSM, samplers); arXiv:2406.09495 (FADM; the
  DDPM row of Table 1).
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
import pandas as pd

from fairjax import nets, parallel, persist, sampling, sde, training
from fairjax.baselines import common
from fairjax.data import Schema, TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

METHOD = "ddpm"
SAMPLERS = tuple(sampling.SAMPLERS)
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class DDPMConfig:
    """Hyperparameters of the DDPM baseline (all JSON-serialisable); the score-net fields
    mean what they mean in `fadm.FADMConfig`.

    Attributes:
      sde: "vp" or "subvp".
      beta_min, beta_max: linear noise schedule of the SDE.
      width, num_blocks, time_dim: score network size (`nets.TimeConditionedMLP`).
      batch_size: rows per step.
      steps: Adam steps of denoising score matching.
      lr: Adam learning rate.
      lr_schedule: "constant" (FADM's) or "cosine" (decays lr to 0 over `steps`, so the
        last iterate of a short run carries far less gradient noise; with a constant rate
        it shows as label / category shares off by up to ~0.15 after 1.5k steps).
      scaling: numeric scaling of the encoder, one of `fairjax.data.encoder.SCALINGS`.
      sampler, sample_steps: default reverse-time solver ("em", "pc", "ode") and steps.
      holdout: share of the rows (stratified by label) held out for early stopping; 0
        (the quick preset's) trains `steps` steps on every row. With holdout > 0 the
        held-out DSM loss (FADM's score-net criterion) at one fixed draw of times and
        noises is evaluated every `eval_every` steps, training stops after
        `patience` evaluations without improvement (`steps` becomes a maximum) and the
        best evaluated parameters are kept.
      eval_every: steps between held-out evaluations.
      patience: evaluations without improvement before training stops.
    """

    sde: str = "vp"
    beta_min: float = 0.1
    beta_max: float = 20.0
    width: int = 256
    num_blocks: int = 3
    time_dim: int = 64
    batch_size: int = 256
    steps: int = 20_000
    lr: float = 1e-3
    lr_schedule: str = "constant"
    scaling: str = "quantile"
    sampler: str = "em"
    sample_steps: int = 1000
    holdout: float = 0.0
    eval_every: int = 250
    patience: int = 6

    def __post_init__(self):
        common.check_config(
            self,
            positive=(
                "width",
                "num_blocks",
                "time_dim",
                "batch_size",
                "steps",
                "lr",
                "sample_steps",
            ),
            scaling=self.scaling,
        )
        if self.lr_schedule not in LR_SCHEDULES:
            raise FairjaxError(
                f"lr_schedule must be one of {LR_SCHEDULES}; got {self.lr_schedule!r}"
            )
        for name, allowed in (("sde", sde.KINDS), ("sampler", SAMPLERS)):
            if getattr(self, name) not in allowed:
                raise FairjaxError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("width", "num_blocks", "batch_size", "steps"):
            if int(getattr(self, name)) < 1:
                raise FairjaxError(f"{name} must be a positive integer; got {getattr(self, name)}")
        training.check_stopping(self.holdout, self.eval_every, self.patience)


class NetSpec(NamedTuple):
    """The fields of a config that fix the SDE and the score net: the compiled sampler and
    (with the optimizer's settings) the training step are cached on this."""

    sde: str
    beta_min: float
    beta_max: float
    width: int
    num_blocks: int
    time_dim: int

    @classmethod
    def of(cls, config: DDPMConfig) -> NetSpec:
        """The spec of a `DDPMConfig`."""
        return cls(*(getattr(config, f) for f in cls._fields))


PRESETS = {
    # FADM's quick score net and sampler steps; 3000 steps with a cosine decay of the
    # learning rate (FADM quick: 1500 at a constant rate). On Adult, 1500 constant-rate
    # steps leave label / category shares off by up to ~0.1 from one seed to the next,
    # 1500 cosine steps underfit the 101-dim rows; 3000 cosine steps fix both (~30 s).
    "quick": DDPMConfig(
        width=128, num_blocks=2, steps=3000, sample_steps=200, lr_schedule="cosine"
    ),
    # FADM's paper score net and training: 3 residual blocks of 256, at most 20k Adam steps
    # at a constant 1e-3 (stopped on 10% held-out rows as FADM's paper preset), batch 256,
    # 1000 EM steps.
    "paper": DDPMConfig(holdout=0.1, eval_every=500),
}


@dataclasses.dataclass(frozen=True)
class DDPMModel(common.JointModel):
    """A fitted DDPM; `sample` runs the unguided reverse-time SDE (or ODE).

    Attributes:
      config: hyperparameters.
      encoder: the joint-row encoder [features, label, sensitive].
      schema: schema of the training data.
      params: {"score"}.
      history: final mean DSM loss, for the record.
    """

    config: DDPMConfig
    encoder: TabularEncoder
    schema: Schema
    params: dict
    history: dict

    method = METHOD
    config_cls = DDPMConfig

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        max_oversample: float = 50.0,
        chunk_size: int = 4096,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Generate `n` rows with the unguided reverse-time SDE (or ODE).

        Args:
          sampler: "em", "pc" or "ode" (default the config's).
          steps: solver steps (default the config's `sample_steps`).
          key, n, labels, label_proportion, max_oversample, chunk_size, progress: as in
            `common.JointModel.sample`.

        Returns:
          DataFrame [n rows]: the feature, sensitive and label columns with the training
          data's dtypes.
        """
        sampler = self.config.sampler if sampler is None else sampler
        steps = self.config.sample_steps if steps is None else steps
        if sampler not in SAMPLERS:
            raise FairjaxError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
        if isinstance(steps, bool) or int(steps) != steps or int(steps) < 1:
            raise FairjaxError(f"steps must be a positive integer; got {steps!r}")
        run = _compiled_sampler(NetSpec.of(self.config), self.encoder.dim, sampler, int(steps))
        return self._generate(
            run,
            self.params["score"],
            key,
            n,
            labels=labels,
            label_proportion=label_proportion,
            max_oversample=max_oversample,
            chunk_size=chunk_size,
            progress=progress,
        )

    def _param_shapes(self):
        dim = self.encoder.dim
        return {"score": nets.param_shapes(make_module(self.config, dim), dim, ())}


def load(path: str | Path) -> DDPMModel:
    """Read and verify a model written by `DDPMModel.save` (parameter shapes included)."""
    return persist.load_model(DDPMModel, path)


def make_module(config: DDPMConfig | NetSpec, dim: int) -> nets.TimeConditionedMLP:
    """The score net of `config` for rows of `dim` encoded slots (FADM's `nets.score_net`)."""
    return nets.score_net(
        dim, width=config.width, num_blocks=config.num_blocks, time_dim=config.time_dim
    )


def make_score(config: DDPMConfig | NetSpec, dim: int) -> tuple[sde.SDE, Callable]:
    """(forward SDE, `score_fn(params, x[dim], t[]) -> [dim]`) of `config`."""
    forward = sde.make_sde(config.sde, beta_min=config.beta_min, beta_max=config.beta_max)
    return forward, nets.make_score_fn(make_module(config, dim), forward)


@functools.lru_cache(maxsize=32)
def _compiled_sampler(spec: NetSpec, dim: int, sampler: str, steps: int):
    """Jitted `run(params, keys[c]) -> x_0[c, dim]`; row i's prior draw and noise come from
    keys[i] only (as in `fadm`), rows split over all visible devices (`parallel.shard_rows`)."""
    forward, score_fn = make_score(spec, dim)

    @jax.jit
    def run(params, keys):
        score = lambda x, t, cond: score_fn(params, x, t)
        return sampling.sample_from_prior(
            forward,
            score,
            keys,
            dim=dim,
            sampler=sampler,
            num_steps=steps,
            mesh=parallel.make_mesh(),
        )

    return run


@functools.lru_cache(maxsize=32)
def _train_step(spec: NetSpec, dim: int, lr: float, decay_steps: int | None):
    """(step, optimizer) of denoising score matching, as FADM's score net is trained, with
    Adam at rate `lr` (cosine-decayed to 0 over `decay_steps` unless None); built once per
    setting so `training.run` reuses compiled code."""
    schedule = lr if decay_steps is None else optax.cosine_decay_schedule(lr, decay_steps)
    optimizer = optax.adam(schedule)
    return training.make_train_step(_dsm_loss(spec, dim), optimizer), optimizer


@functools.lru_cache(maxsize=32)
def _dsm_loss(spec: NetSpec, dim: int):
    """The DSM loss of `spec`'s score net: training loss and held-out criterion."""
    return sde.make_dsm_loss(*make_score(spec, dim))


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: DDPMConfig = PRESETS["paper"],
    progress: bool = True,
    train_files: training.TrainFiles | None = None,
) -> DDPMModel:
    """Train the score net by denoising score matching on the joint rows of `dataset`.

    Args:
      key: PRNG key (initialisation, batches, noise).
      dataset: training rows; the domain column, if any, is left out.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      progress: show a progress bar.
      train_files: checkpoints, resume and the CSV record of the training
        (`training.TrainFiles`; the network is called "ddpm").

    Returns:
      The fitted `DDPMModel`.

    References:
      arXiv:2406.09495 eqs. 4-5 (the DSM objective FADM also uses).
    """
    encoder = common.fit_joint_encoder(dataset, scaling=config.scaling)
    dim = encoder.dim
    module = make_module(config, dim)
    init_key, train_key = jax.random.split(key)
    params = nets.init_params(module, init_key, jnp.zeros(dim), jnp.zeros(()))
    decay_steps = config.steps if config.lr_schedule == "cosine" else None
    step, optimizer = _train_step(NetSpec.of(config), dim, config.lr, decay_steps)
    state, record = common.train(
        train_key,
        training.init_train_state(params, optimizer),
        step,
        encoder.encode(dataset.frame),
        batch_size=config.batch_size,
        num_steps=config.steps,
        progress=progress,
        desc="ddpm",
        config=config,
        train_files=train_files,
        eval_loss=_dsm_loss(NetSpec.of(config), dim),
        strata=dataset.y,
    )
    return DDPMModel(
        config, encoder, dataset.schema, {"score": state.params}, common.history(record)
    )
