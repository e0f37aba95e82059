"""FADM: fairness-aware score-based diffusion with meta-learning, as a fit/sample pipeline.

    model = fadm.fit(jax.random.key(0), datasets.load_adult(), config=fadm.PRESETS["quick"])
    frame = model.sample(jax.random.key(1), 1000, lambda_z=1.0)

`fit` encodes the feature columns (neither label, sensitive nor domain column: none of
them is an input of the score net), then trains three networks on the encoded rows:
the score net s(x_t, t) by denoising score matching, and two time-conditioned
classifiers p_t(y | x_t) (label) and p_t(z | x_t) (first sensitive column) on noised rows.
When the data have two or more domains (and `config.meta` allows), each network is
meta-trained across domains with MLDG (arXiv 2406.09495 Algorithm 1): every step holds
one random domain out, takes an inner SGD step on the others and updates on
L(B_in, theta) + beta L(B_out, theta').

`FADMModel.sample` draws a label for every row, runs the guided reverse SDE of eq. 11
(label guidance toward the row's label, entropy guidance on the sensitive classifier),
and decodes the rows. Choices where the paper is silent, and why:
- beta_min = 0.1, beta_max = 20 (VP SDE of score_sde, which the paper builds on);
- the score net predicts the noise eps and s = -eps / std(t) (score_sde's VP models);
- the sensitive column of a synthetic row is drawn independently of everything else from
  its training marginal (so a downstream classifier sees no z-y association created by
  the generator); `config.sensitive_output = "omit"` leaves it out;
- the domain column is not generated (the generator is meant for unseen domains).
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
import pandas as pd
from tqdm.auto import tqdm

from fairjax import classifiers, guidance, meta, nets, parallel, persist, sampling, sde, training
from fairjax.data import Schema, TabularDataset, TabularEncoder, fit_encoder
from fairjax.errors import FairjaxError

SAMPLERS = tuple(sampling.SAMPLERS)
LABEL_GUIDANCE = ("classifier", "free")
# Share of the training examples whose label a "free" score net sees as "no label" (Ho &
# Salimans, arXiv:2207.12598, found 0.1-0.2 best).
LABEL_DROPOUT = 0.1
NUM_LABELS = 2  # binary label y; label NUM_LABELS means "no label" to a "free" score net


@dataclasses.dataclass(frozen=True)
class FADMConfig:
    """Hyperparameters of FADM (all JSON-serialisable).

    Attributes:
      sde: "vp" or "subvp".
      beta_min, beta_max: linear noise schedule of the SDE.
      width, num_blocks, time_dim: score network size (`nets.TimeConditionedMLP`).
      classifier_width, classifier_blocks: size of both time-conditioned classifiers.
      batch_size: rows per step (per domain when meta-learning).
      score_steps, classifier_steps: optimizer steps for the score net / each classifier.
      lr, classifier_lr: Adam learning rates (the outer rate gamma when meta-learning).
      meta: "auto" (meta-learn when the data have >= 2 domains), "on" or "off".
      inner_lr: inner SGD rate alpha of MLDG.
      meta_beta: weight beta of the held-out-domain loss.
      first_order: drop second-order terms of the meta-gradient.
      scaling: numeric scaling of the encoder, one of `fairjax.data.encoder.SCALINGS`
        ("quantile_spread" spreads repeated values such as capital gain's zeros).
      sampler, sample_steps: default reverse-time solver and its number of steps.
      lambda_y, lambda_z: default label / sensitive guidance scales.
      label_guidance: how rows are steered toward their labels. "classifier" (the
        paper's): an unconditional score net plus lambda_y grad log p_t(y | x) of the
        label classifier. "free": a label-conditioned score net s(x, t, y), trained with
        the label dropped (set to "no label") for `LABEL_DROPOUT` of the examples, sampled
        with classifier-free guidance s(x, t, -) + lambda_y (s(x, t, y) - s(x, t, -))
        (`guidance.classifier_free_guided`; lambda_y = 1 is the conditional score). The
        label classifier is trained either way (one folder layout) but guides only under
        "classifier".
      guide: default sensitive guide, a key of `guidance.SENSITIVE_GUIDES`: "entropy"
        (the paper's grad H) or "uniform" (grad of mean_c log p_t(c | x), whose push does
        not vanish on the rows the sensitive classifier is sure about).
      guide_t_max: the sensitive guide acts at times t <= guide_t_max only (1 = always).
      sensitive_output: "independent" (draw from the training marginal) or "omit".
      holdout: share of the rows held out (stratified by domain and label) for early
        stopping; 0 (the quick preset's) trains every network for its full step count on
        all rows. With holdout > 0 each network is scored every `eval_every` steps on
        the held-out rows at a fixed set of times and noises (the score net by its DSM
        loss, the classifiers by their noisy-row log loss), training stops after
        `patience` evaluations without improvement, the step counts become maxima and
        the best evaluated parameters are kept.
      eval_every: steps between held-out evaluations.
      patience: evaluations without improvement before a network stops.
    """

    sde: str = "vp"
    beta_min: float = 0.1
    beta_max: float = 20.0
    width: int = 256
    num_blocks: int = 3
    time_dim: int = 64
    classifier_width: int = 128
    classifier_blocks: int = 2
    batch_size: int = 256
    score_steps: int = 20_000
    classifier_steps: int = 5_000
    lr: float = 1e-3
    classifier_lr: float = 1e-3
    meta: str = "auto"
    inner_lr: float = 1e-3
    meta_beta: float = 1.0
    first_order: bool = False
    scaling: str = "quantile"
    sampler: str = "em"
    sample_steps: int = 1000
    lambda_y: float = 1.0
    lambda_z: float = 1.0
    label_guidance: str = "classifier"
    guide: str = "entropy"
    guide_t_max: float = 1.0
    sensitive_output: str = "independent"
    holdout: float = 0.0
    eval_every: int = 250
    patience: int = 6

    def __post_init__(self):
        choices = {
            "sde": sde.KINDS,
            "meta": ("auto", "on", "off"),
            "sampler": SAMPLERS,
            "label_guidance": LABEL_GUIDANCE,
            "guide": tuple(guidance.SENSITIVE_GUIDES),
            "sensitive_output": ("independent", "omit"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise FairjaxError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        for name in ("width", "num_blocks", "batch_size", "score_steps", "classifier_steps"):
            if int(getattr(self, name)) < 1:
                raise FairjaxError(f"{name} must be a positive integer; got {getattr(self, name)}")
        if not 0.0 < float(self.guide_t_max) <= 1.0:
            raise FairjaxError(f"guide_t_max must lie in (0, 1]; got {self.guide_t_max}")
        training.check_stopping(self.holdout, self.eval_every, self.patience)


PRESETS = {
    # Minutes on 2 CPU cores: a demo and the test suite's end-to-end runs.
    "quick": FADMConfig(
        width=128,
        num_blocks=2,
        classifier_width=64,
        classifier_blocks=1,
        score_steps=1500,
        classifier_steps=600,
        sample_steps=200,
    ),
    # The paper's networks and step counts, which become maxima: 10% of the rows held out,
    # scored every 500 steps, stopped after 6 evaluations (3,000 steps) without improvement.
    "paper": FADMConfig(holdout=0.1, eval_every=500),
}


class Networks(NamedTuple):
    """The three FADM networks as pure functions of their parameters (per example)."""

    sde: sde.SDE
    score_fn: Any  # (params, x[d], t[]) -> [d], s = -eps / std(t) (`nets.make_score_fn`)
    label_logits_fn: Any  # (params, x[d], t[]) -> [C_y]
    sensitive_logits_fn: Any  # (params, x[d], t[]) -> [C_z]


class NetSpec(NamedTuple):
    """The fields of a config that fix the SDE and the networks (not training or sampling):
    compiled samplers are cached on this, so a sampling-only option never re-traces."""

    sde: str
    beta_min: float
    beta_max: float
    width: int
    num_blocks: int
    time_dim: int
    classifier_width: int
    classifier_blocks: int
    label_guidance: str

    @classmethod
    def of(cls, config: Any) -> NetSpec:
        """The spec of an `FADMConfig` (or any object with these fields)."""
        return cls(*(getattr(config, f) for f in cls._fields))


class TrainSpec(NamedTuple):
    """What one network's compiled training step depends on, and nothing else: the SDE,
    the network, its loss, Adam's rate and MLDG's settings. `_step_fn` is cached on this,
    so fits whose configs differ only in other fields (sampling options, the other
    networks' sizes or rates, step counts) share the step and its compiled chunk.

    Attributes:
      sde, beta_min, beta_max: the forward SDE.
      network: the Flax module (`nets.TimeConditionedMLP`, hashable by its fields).
      loss: "dsm" (the score net), "label_dsm" (a label-conditioned score net, with label
        dropout) or "classifier" (a noisy-row classifier).
      lr: Adam learning rate (the outer rate gamma when meta-learning).
      mldg: None (plain training) or (inner_lr, meta_beta, first_order).
    """

    sde: str
    beta_min: float
    beta_max: float
    network: Any
    loss: str
    lr: float
    mldg: tuple[float, float, bool] | None

    @classmethod
    def of(cls, config: FADMConfig, network: Any, name: str, use_meta: bool) -> TrainSpec:
        """The spec of network `name` ("score", "label" or "sensitive") of `config`."""
        mldg = (config.inner_lr, config.meta_beta, config.first_order) if use_meta else None
        if name == "score":
            loss, lr = ("label_dsm" if config.label_guidance == "free" else "dsm"), config.lr
        else:
            loss, lr = "classifier", config.classifier_lr
        return cls(config.sde, config.beta_min, config.beta_max, network, loss, lr, mldg)


def make_modules(config: Any, dim: int, num_labels: int, num_sensitive: int) -> tuple:
    """Flax modules (score net, label classifier, sensitive classifier) of a config or spec."""

    def classifier(c):
        return nets.TimeConditionedMLP(c, config.classifier_width, config.classifier_blocks)

    score = nets.score_net(
        dim,
        width=config.width,
        num_blocks=config.num_blocks,
        time_dim=config.time_dim,
        num_labels=num_labels if config.label_guidance == "free" else 0,
    )
    return score, classifier(num_labels), classifier(num_sensitive)


def example_inputs(config: Any, dim: int) -> dict:
    """{network: the inputs of one example} for initialising (and checking the shapes of)
    the three networks of a config: x[dim] and t[] (and a label[] for a "free" score net)."""
    x, t = jnp.zeros(dim), jnp.zeros(())
    score = (x, t, jnp.zeros((), jnp.int32)) if config.label_guidance == "free" else (x, t)
    return {"score": score, "label": (x, t), "sensitive": (x, t)}


def make_networks(config: Any, dim: int, num_labels: int, num_sensitive: int) -> Networks:
    """The SDE and the three networks of a config, for rows of `dim` encoded features."""
    return _make_networks(NetSpec.of(config), dim, num_labels, num_sensitive)


@functools.lru_cache(maxsize=32)
def _make_networks(spec: NetSpec, dim: int, num_labels: int, num_sensitive: int) -> Networks:
    score, label, sensitive = make_modules(spec, dim, num_labels, num_sensitive)
    forward = sde.make_sde(spec.sde, beta_min=spec.beta_min, beta_max=spec.beta_max)
    return Networks(
        sde=forward,
        score_fn=nets.make_score_fn(score, forward),
        label_logits_fn=nets.make_apply(label),
        sensitive_logits_fn=nets.make_apply(sensitive),
    )


@dataclasses.dataclass(frozen=True)
class FADMModel:
    """A fitted FADM generator.

    Attributes:
      config: the hyperparameters it was trained with.
      encoder: encoder of the feature columns.
      schema: schema of the training data.
      params: {"score", "label", "sensitive"} parameter pytrees.
      sensitive_values: values of the first sensitive column, in classifier order.
      sensitive_probs: their training frequencies.
      history: {"score", "label", "sensitive"} final training losses (mean of the last
        tenth of the steps; with meta-learning the MLDG objective), "meta" (whether
        meta-learning was used), "domains", and "record": {network: `training.Record`
        as a dict} with the curves of every metric ("loss", "grad_norm"; with
        meta-learning also "loss_in" and "loss_out", the held-out-domain loss); with
        `config.holdout` > 0 each record also holds the held-out criterion's curve
        ("eval_steps", "eval_scores"), the steps run ("num_steps", where the network
        stopped) and "best_step" (the kept parameters').
      label_rate: share of label 1 in the training rows, the default label proportion of
        `sample` (None in folders saved before it was recorded: then 0.5).
    """

    config: FADMConfig
    encoder: TabularEncoder
    schema: Schema
    params: dict
    sensitive_values: tuple
    sensitive_probs: tuple[float, ...]
    history: dict
    label_rate: float | None = None

    method = "fadm"  # for `fairjax.persist` (class attributes, not fields)
    config_cls = FADMConfig

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        lambda_y: float | None = None,
        lambda_z: float | None = None,
        guide: str | None = None,
        guide_t_max: float | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        chunk_size: int = 4096,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Generate `n` rows with the guided reverse-time SDE (FADM eq. 11).

        Args:
          key: PRNG key; the same key gives the same rows (on any number of devices).
          n: number of rows.
          labels: [n] requested label of each row (0/1); default: drawn with
            P(y = 1) = `label_proportion`.
          label_proportion: P(y = 1) of the drawn labels when `labels` is None; default
            the training rows' share of label 1 (`label_rate`).
          lambda_y, lambda_z: label / sensitive guidance scales (default: the config's).
          guide: sensitive guide, "entropy" or "uniform" (default: the config's).
          guide_t_max: the sensitive guide acts at t <= guide_t_max (default: the config's).
          sampler: "em" (Euler-Maruyama, the paper's), "pc" (predictor-corrector) or
            "ode" (probability-flow ODE, Heun); default the config's.
          steps: solver steps (default the config's `sample_steps`).
          chunk_size: most rows per compiled call (memory bound; results do not depend
            on it); a smaller request runs in the next power of two >= 256 rows.
          progress: show a progress bar counting rows.

        Returns:
          DataFrame of `n` rows: the feature columns, the sensitive column (unless the
          config omits it) and the label, with the training data's dtypes.
        """
        cfg = self.config
        sampler = cfg.sampler if sampler is None else sampler
        steps = cfg.sample_steps if steps is None else int(steps)
        guide = cfg.guide if guide is None else guide
        t_max = cfg.guide_t_max if guide_t_max is None else float(guide_t_max)
        if sampler not in SAMPLERS:
            raise FairjaxError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
        if guide not in guidance.SENSITIVE_GUIDES:
            raise FairjaxError(
                f"guide must be one of {tuple(guidance.SENSITIVE_GUIDES)}; got {guide!r}"
            )
        if not 0.0 < t_max <= 1.0:
            raise FairjaxError(f"guide_t_max must lie in (0, 1]; got {t_max}")
        if int(n) < 1 or steps < 1:
            raise FairjaxError(f"n and steps must be positive; got n={n}, steps={steps}")
        n = int(n)
        if label_proportion is None and labels is None:
            label_proportion = 0.5 if self.label_rate is None else self.label_rate
        label_key, z_key, row_key = jax.random.split(key, 3)
        y = _labels(label_key, n, labels, label_proportion)
        run = _compiled_sampler(
            NetSpec.of(cfg),
            self.encoder.dim,
            NUM_LABELS,
            len(self.sensitive_values),
            sampler,
            steps,
            guide,
        )
        keys = jax.random.split(row_key, n)
        scales = (
            jnp.float32(cfg.lambda_y if lambda_y is None else lambda_y),
            jnp.float32(cfg.lambda_z if lambda_z is None else lambda_z),
            jnp.float32(t_max),
        )
        size = min(int(chunk_size), max(256, 1 << (n - 1).bit_length()))
        xs = []
        with tqdm(total=n, desc="sampling", unit="rows", disable=not progress) as bar:
            for start in range(0, n, size):
                stop = min(start + size, n)
                pad = size - (stop - start)
                k = jnp.concatenate([keys[start:stop], jnp.repeat(keys[stop - 1 : stop], pad, 0)])
                c = jnp.concatenate([y[start:stop], jnp.repeat(y[stop - 1 : stop], pad, 0)])
                xs.append(np.asarray(run(self.params, k, c, *scales))[: stop - start])
                bar.update(stop - start)
        frame = self.encoder.decode(np.concatenate(xs))
        return self._finish(frame, np.asarray(y), z_key)

    def _finish(self, frame: pd.DataFrame, y: np.ndarray, key: jax.Array) -> pd.DataFrame:
        """Add the sensitive column (drawn from its marginal) and the label."""
        schema = self.schema
        if self.config.sensitive_output == "independent":
            idx = np.asarray(
                jax.random.choice(
                    key,
                    len(self.sensitive_values),
                    (len(frame),),
                    p=jnp.asarray(self.sensitive_probs),
                )
            )
            values = np.array(self.sensitive_values, dtype=object)[idx]
            frame[schema.sensitive[0]] = pd.Series(values).astype(self._sensitive_dtype)
        frame[schema.label] = y.astype(np.int64)
        order = [c for c in schema.columns if c in frame.columns]
        return frame[order]

    @property
    def _sensitive_dtype(self):
        v = self.sensitive_values[0]
        return "int64" if isinstance(v, (int, np.integer)) else object

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write the model to folder `path` (see `fairjax.persist`; `overwrite` replaces an
        existing model folder, `provenance` goes to the manifest)."""
        persist.save_model(self, path, overwrite=overwrite, provenance=provenance)

    def _param_shapes(self) -> dict:
        """The shapes `params` must have for this config and encoder (`fairjax.persist`)."""
        dim = self.encoder.dim
        modules = make_modules(self.config, dim, NUM_LABELS, len(self.sensitive_values))
        examples = example_inputs(self.config, dim)
        names = ("score", "label", "sensitive")
        return {
            n: nets.param_shapes(m, *(e.shape for e in examples[n]))
            for n, m in zip(names, modules, strict=True)
        }


def load(path: str | Path) -> FADMModel:
    """Read and verify a model written by `FADMModel.save` (whatever device it was trained
    on); parameters whose shapes do not fit the config are refused."""
    return persist.load_model(FADMModel, path)


def _labels(key, n: int, labels, proportion: float) -> jax.Array:
    if labels is None:
        if not 0.0 <= float(proportion) <= 1.0:
            raise FairjaxError(f"label_proportion must lie in [0, 1]; got {proportion}")
        return jax.random.bernoulli(key, proportion, (n,)).astype(jnp.int32)
    y = np.asarray(labels)
    if y.shape != (n,) or not np.isin(y, (0, 1)).all():
        raise FairjaxError(f"labels must be {n} values in {{0, 1}}; got shape {y.shape}")
    return jnp.asarray(y, jnp.int32)


@functools.lru_cache(maxsize=32)
def _compiled_sampler(
    spec: NetSpec, dim: int, num_labels: int, num_sensitive: int, sampler: str, steps: int,
    guide: str,
):  # fmt: skip
    """Jitted `run(params, keys[c], y[c], lambda_y, lambda_z, t_max) -> x_0[c, dim]`, built
    once per static setting (networks, solver, steps, guide), so `sample` calls that differ
    only in scales or `guide_t_max` do not retrace. Rows are split over all visible devices
    (`parallel.shard_rows`, any count); row i's prior draw and noise come from keys[i] only."""
    nw = _make_networks(spec, dim, num_labels, num_sensitive)

    @jax.jit
    def run(params, keys, y, lambda_y, lambda_z, t_max):
        if spec.label_guidance == "free":
            label_score = guidance.classifier_free_guided(
                lambda x, t, label: nw.score_fn(params["score"], x, t, label),
                lambda_y,
                null_cond=num_labels,
            )
        else:  # guidance.fair_guided's label term
            label_score = guidance.label_guided(
                lambda x, t, cond: nw.score_fn(params["score"], x, t),
                lambda x, t: nw.label_logits_fn(params["label"], x, t),
                lambda_y,
            )
        score = guidance.sensitive_guided(
            label_score,
            lambda x, t: nw.sensitive_logits_fn(params["sensitive"], x, t),
            lambda_z,
            guide=guide,
            t_max=t_max,
        )
        return sampling.sample_from_prior(
            nw.sde,
            score,
            keys,
            y,
            dim=dim,
            sampler=sampler,
            num_steps=steps,
            mesh=parallel.make_mesh(),
        )

    return run


# ---------------------------------------------------------------------------- fitting


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: FADMConfig = PRESETS["paper"],
    domain: str | None = None,
    progress: bool = True,
    train_files: training.TrainFiles | None = None,
) -> FADMModel:
    """Train FADM's score net and its two classifiers on `dataset`.

    Args:
      key: PRNG key (initialisation, batches, noise).
      dataset: training rows; label = y, first sensitive column = z.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      domain: domain column for meta-learning (default: the schema's domain).
      progress: show progress bars.
      train_files: checkpoints, resume and CSV records of the three networks' training
        (`training.TrainFiles`; networks "score", "label", "sensitive"). A resumed fit
        gives the same parameters as an uninterrupted one.

    Returns:
      The fitted `FADMModel`.

    References:
      arXiv:2406.09495, Algorithm 1 and eqs. 4-5, 11.
    """
    prep = _prepare(dataset, config, domain)
    _, x, y, _, z_values, d, domain_values, use_meta = prep
    dim, num_z = x.shape[1], len(z_values)
    modules = make_modules(config, dim, NUM_LABELS, num_z)
    init_keys = jax.random.split(key, 6)
    examples = example_inputs(config, dim)
    params = {}
    history = {"meta": use_meta, "domains": [str(v) for v in domain_values], "record": {}}
    jobs = [
        (name, _targets(prep, name, config), steps)
        for name, steps in (
            ("score", config.score_steps),
            ("label", config.classifier_steps),
            ("sensitive", config.classifier_steps),
        )
    ]
    files = training.TrainFiles() if train_files is None else train_files
    rows, held = _holdout_split(key, config.holdout, d, y)
    for i, (name, targets, steps) in enumerate(jobs):
        spec = TrainSpec.of(config, modules[i], name, use_meta)
        step, optimizer = _step_fn(spec)
        init = nets.init_params(modules[i], init_keys[2 * i], *examples[name])
        state = (meta.init_meta_state if use_meta else training.init_train_state)(init, optimizer)
        stopping = {}
        if held is not None:  # early stopping on the held-out rows (`FADMConfig.holdout`)
            data = (
                jnp.asarray(x[held])
                if targets is None
                else tuple(jnp.asarray(a[held]) for a in (x, targets))
            )
            eval_key = jax.random.fold_in(jax.random.fold_in(key, _EVAL_STREAM), i)
            stopping = training.stopping_options(_loss_fn(spec), data, eval_key, config)
        state, record = training.run(
            init_keys[2 * i + 1],
            state,
            step,
            _batch_fn(config.batch_size, use_meta, targets is not None),
            _train_data(x[rows], None if targets is None else targets[rows], d[rows]),
            num_steps=steps,
            progress=progress,
            desc=f"fadm {name}",
            setting=" ".join(repr(spec).split()),
            **stopping,
            **files.options(name),
        )
        params[name] = state.params
        history[name] = record.final["loss"]
        history["record"][name] = record.to_dict()
    return _model(config, dataset.schema, prep, params, history)


class _Prepared(NamedTuple):
    """A fit's encoded training rows (`_prepare`)."""

    encoder: TabularEncoder
    x: np.ndarray  # [n, dim] encoded features
    y: np.ndarray  # [n] int32 labels
    z: np.ndarray  # [n] index of the first sensitive column's value in z_values
    z_values: np.ndarray
    d: np.ndarray  # [n] index of the row's domain in domain_values
    domain_values: np.ndarray
    use_meta: bool


def _prepare(dataset: TabularDataset, config: FADMConfig, domain: str | None) -> _Prepared:
    """Check the domain column and encode the rows of `dataset` for `fit`."""
    schema = dataset.schema
    domain = schema.domain if domain is None else domain
    if domain is not None and domain not in dataset.frame.columns:
        raise FairjaxError(
            f"domain column {domain!r} not found; columns are {list(dataset.frame.columns)}"
        )
    z_name = schema.sensitive[0]
    features = [c for c in schema.features if c != domain]
    if not features:
        raise FairjaxError("FADM needs at least one feature column besides label/sensitive/domain")
    encoder = fit_encoder(dataset, columns=features, scaling=config.scaling)
    x = encoder.encode(dataset.frame)
    y = dataset.y.astype(np.int32)
    z_values, z = np.unique(dataset.frame[z_name].to_numpy(), return_inverse=True)
    domains = dataset.frame[domain].to_numpy() if domain is not None else np.zeros(len(x))
    domain_values, d = np.unique(domains, return_inverse=True)
    use_meta = config.meta == "on" or (config.meta == "auto" and len(domain_values) >= 2)
    if use_meta and len(domain_values) < 2:
        raise FairjaxError(f"meta='on' needs >= 2 domains; {domain!r} has {len(domain_values)}")
    return _Prepared(encoder, x, y, z, z_values, d, domain_values, use_meta)


def _targets(prep: _Prepared, name: str, config: FADMConfig) -> np.ndarray | None:
    """The class targets network `name` trains on: labels (label classifier, "free" score
    net), sensitive indices (sensitive classifier) or None (an unconditional score net)."""
    if name == "score":
        return prep.y if config.label_guidance == "free" else None
    return prep.y if name == "label" else prep.z.astype(np.int32)


def _model(
    config: FADMConfig, schema: Schema, prep: _Prepared, params: dict, history: dict
) -> FADMModel:
    """The `FADMModel` of a fit's prepared rows and trained parameters."""
    counts = np.bincount(prep.z, minlength=len(prep.z_values))
    return FADMModel(
        config=config,
        encoder=prep.encoder,
        schema=schema,
        params=params,
        sensitive_values=tuple(prep.z_values.tolist()),
        sensitive_probs=tuple(float(c) / len(prep.z) for c in counts),
        history=history,
        label_rate=float(np.mean(prep.y)),
    )


def fit_many(
    keys: Any,
    datasets: list[TabularDataset],
    *,
    config: FADMConfig,
    domain: str | None = None,
    progress: bool = True,
) -> list[FADMModel]:
    """`fit` on each of K datasets, trained together as one compiled program per network.

    The K fits' parameters and Adam (or MLDG) states are stacked on a leading axis and
    every network's steps run vmapped over it (`training.run_many`); each fit draws its
    batches from its own rows with its own keys, so model k equals
    `fit(keys[k], datasets[k], config=config, domain=domain)` up to float reassociation.
    Meant for the leave-one-domain-out protocol: many fits of one architecture on
    different row subsets (and seeds). The datasets may have different row counts (their
    rows are zero-padded to a common length and never drawn beyond their own). On a CPU
    that one fit already keeps busy it is not faster than fitting one by one (measured
    on 2 cores: `benchmarks/bench_batched_fits.py`); it is meant for devices that one
    small fit leaves idle.

    Args:
      keys: K PRNG keys (a sequence or a key array [K]), one per fit.
      datasets: K training tables, each as for `fit`.
      config: hyperparameters shared by every fit, with `holdout=0` (every fit runs its
        full step counts: stacked fits cannot stop one by one).
      domain: domain column for meta-learning (default: each schema's domain).
      progress: show progress bars.

    Returns:
      K fitted `FADMModel`s, in the order of `datasets`.

    Raises:
      FairjaxError: `keys` and `datasets` differ in length or are empty; the fits cannot
        share one program: they differ in encoded width, in the number of sensitive
        values, in whether they meta-learn or (when meta-learning) in the number of
        domains; the message names what differs and in which fits; `config.holdout` > 0.
        As for `fit`.

    References:
      arXiv:2406.09495, Algorithm 1 and eqs. 4-5, 11.
    """
    keys = list(keys)
    if not datasets or len(keys) != len(datasets):
        raise FairjaxError(
            f"fit_many needs one key per dataset, at least one; got {len(keys)} keys and "
            f"{len(datasets)} datasets"
        )
    if config.holdout > 0:
        raise FairjaxError(
            f"fit_many trains every fit for its full step counts, so it takes no early "
            f"stopping; got holdout={config.holdout} (pass a config with holdout=0)"
        )
    preps = [_prepare(ds, config, domain) for ds in datasets]
    _check_shareable(preps)
    first = preps[0]
    use_meta, dim, num_z = first.use_meta, first.x.shape[1], len(first.z_values)
    num_domains = max(len(p.domain_values) for p in preps)
    modules = make_modules(config, dim, NUM_LABELS, num_z)
    init_keys = [jax.random.split(k, 6) for k in keys]
    examples = example_inputs(config, dim)
    params = [{} for _ in preps]
    history = [
        {"meta": use_meta, "domains": [str(v) for v in p.domain_values], "record": {}}
        for p in preps
    ]
    for i, name in enumerate(("score", "label", "sensitive")):
        spec = TrainSpec.of(config, modules[i], name, use_meta)
        step, optimizer = _step_fn(spec)
        init_state = meta.init_meta_state if use_meta else training.init_train_state
        states = [
            init_state(nets.init_params(modules[i], ks[2 * i], *examples[name]), optimizer)
            for ks in init_keys
        ]
        data = [_train_data(p.x, _targets(p, name, config), p.d) for p in preps]
        states, records = training.run_many(
            [ks[2 * i + 1] for ks in init_keys],
            states,
            step,
            _batch_fn(config.batch_size, use_meta, _targets(first, name, config) is not None),
            _pad_common(data, num_domains),
            num_steps=config.score_steps if name == "score" else config.classifier_steps,
            progress=progress,
            desc=f"fadm {name} (x{len(preps)})",
        )
        for k, (state, record) in enumerate(zip(states, records, strict=True)):
            params[k][name] = state.params
            history[k][name] = record.final["loss"]
            history[k]["record"][name] = record.to_dict()
    return [
        _model(config, ds.schema, p, pr, h)
        for ds, p, pr, h in zip(datasets, preps, params, history, strict=True)
    ]


def _check_shareable(preps: list[_Prepared]) -> None:
    """FairjaxError unless the fits of `fit_many` can share one compiled program, naming
    what differs and the first fit that differs from fit 0."""
    facts = {
        "encoded width": lambda p: p.x.shape[1],
        "number of sensitive values": lambda p: len(p.z_values),
        "meta-learning": lambda p: p.use_meta,
    }
    if preps[0].use_meta:
        facts["number of domains (MLDG holds one of them out per step)"] = lambda p: len(
            p.domain_values
        )
    for what, fact in facts.items():
        for k, p in enumerate(preps[1:], start=1):
            if fact(p) != fact(preps[0]):
                raise FairjaxError(
                    f"fit_many: fit {k} cannot share a program with fit 0: {what} "
                    f"{fact(p)!r} vs {fact(preps[0])!r}; fit such datasets in separate "
                    "fit_many calls (or with fit)"
                )


def _pad_common(data: list[TrainData], num_domains: int) -> list[TrainData]:
    """Zero-pad every fit's rows to the longest fit's and its domain arrays to
    `num_domains` (padding domains have no rows: plain batches draw from
    floor(u * sum(counts)) rows, which they do not change; meta-learning fits have
    equal domain counts, `_check_shareable`)."""
    rows = max(td.x.shape[0] for td in data)

    def pad(a, n):
        return jnp.concatenate([a, jnp.zeros((n - a.shape[0], *a.shape[1:]), a.dtype)])

    return [
        TrainData(
            pad(td.x, rows),
            pad(td.targets, rows),
            pad(td.starts, num_domains),
            pad(td.counts, num_domains),
        )
        for td in data
    ]


_EVAL_STREAM, _SPLIT_STREAM = 7, 8  # fold_in streams of the fit key (split(key, 6) is used)


def _holdout_split(
    key: jax.Array, share: float, domain_ids: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """(training rows, held-out rows or None): `share` of the rows of every (domain, label)
    stratum held out (`classifiers.stratified_split`); share 0 keeps every row."""
    _, strata = np.unique(np.stack([domain_ids, y], 1), axis=0, return_inverse=True)
    return classifiers.holdout_rows(jax.random.fold_in(key, _SPLIT_STREAM), strata.ravel(), share)


class TrainData(NamedTuple):
    """Training rows sorted by domain and zero-padded to a power-of-two row count, so that
    fits on tables of similar size share compiled training code.

    Attributes:
      x: [N, d] encoded rows (rows >= sum(counts) are padding, never drawn).
      targets: [N] int32 class labels (zeros when the network has none).
      starts: [D] first row of each domain.
      counts: [D] rows of each domain.
    """

    x: jax.Array
    targets: jax.Array
    starts: jax.Array
    counts: jax.Array


def _train_data(x: np.ndarray, targets: np.ndarray | None, domain_ids: np.ndarray) -> TrainData:
    order = np.argsort(domain_ids, kind="stable")
    x_pad = parallel.zero_pad_rows(x[order].astype(np.float32))
    t = np.zeros(len(x), np.int32) if targets is None else targets[order].astype(np.int32)
    t_pad = parallel.zero_pad_rows(t)
    counts = np.bincount(domain_ids)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return TrainData(*(jnp.asarray(a) for a in (x_pad, t_pad, starts.astype(np.int32), counts)))


@functools.lru_cache(maxsize=16)
def _batch_fn(batch_size: int, use_meta: bool, with_targets: bool):
    """`batch(data: TrainData, key)`: random rows (with replacement).

    Plain training: `batch_size` rows of the whole table, as x[b] or (x[b], targets[b]).
    Meta-learning: `batch_size` rows from every domain, split into (B_in, B_out) with one
    random held-out domain (`meta.split_domains`).
    """

    def take(data, rows):
        return (data.x[rows], data.targets[rows]) if with_targets else data.x[rows]

    def plain(data, key):
        u = jax.random.uniform(key, (batch_size,))
        return take(data, jnp.floor(u * jnp.sum(data.counts)).astype(jnp.int32))

    def per_domain(data, key):
        draw_key, split_key = jax.random.split(key)
        u = jax.random.uniform(draw_key, (data.counts.shape[0], batch_size))
        rows = data.starts[:, None] + jnp.floor(u * data.counts[:, None]).astype(jnp.int32)
        return meta.split_domains(split_key, take(data, rows))

    return per_domain if use_meta else plain


@functools.lru_cache(maxsize=32)
def _loss_fn(spec: TrainSpec):
    """`loss(params, batch, key)` of the network of `spec`: DSM (score net) or the noisy-row
    cross-entropy (classifiers); its training loss and its held-out criterion."""
    forward = sde.make_sde(spec.sde, beta_min=spec.beta_min, beta_max=spec.beta_max)
    if spec.loss == "dsm":
        return sde.make_dsm_loss(forward, nets.make_score_fn(spec.network, forward))
    if spec.loss == "label_dsm":
        score_fn = nets.make_score_fn(spec.network, forward)
        return sde.make_label_dsm_loss(
            forward, score_fn, null_label=spec.network.num_labels, drop_prob=LABEL_DROPOUT
        )
    return sde.make_noisy_classifier_loss(forward, nets.make_apply(spec.network))


@functools.lru_cache(maxsize=32)
def _step_fn(spec: TrainSpec):
    """(step, optimizer) training the network of `spec`, built once per spec."""
    loss_fn = _loss_fn(spec)
    optimizer = optax.adam(spec.lr)
    if spec.mldg is None:
        return training.make_train_step(loss_fn, optimizer), optimizer
    inner_lr, beta, first_order = spec.mldg
    meta_step = meta.make_meta_step(
        loss_fn, optimizer, inner_lr=inner_lr, beta=beta, first_order=first_order
    )
    return training.make_meta_train_step(meta_step), optimizer
