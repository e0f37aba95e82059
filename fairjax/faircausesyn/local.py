"""FairCauseSyn's row generator, run locally: a small autoregressive Transformer over rows.

    roles = make_roles(frame, X="sex", Z=["age", "race"], W=["education"], Y="death",
                       x0="female", x1="male")
    model = fit_local(jax.random.key(0), frame, roles, config=PRESETS["quick"])
    rows = model.sample(jax.random.key(1), 1000, guidance=PathGuidance(direct=-1.0))
    prefix = balanced_rows(jax.random.key(3), frame, roles, per_cell=250)[["sex"]]
    rows = model.sample(jax.random.key(2), 1000, prefix=prefix)

Each row is the token sequence of its role columns in causal order (X, *Z, *W, Y)
(`tokens.RowTokenizer`), modelled as p(row) = prod_j p(t_j | t_<j) by a decoder-only
Transformer (`nets.RowTransformer`) trained with next-token cross-entropy restricted to the
tokens valid at each position. Generation samples one column after the other
(`lax.scan` over positions, temperature and nucleus sampling).

Path-specific guidance (`PathGuidance`): while the model generates the columns of a group
g (Z spurious, W indirect, Y direct) of a row with protected value x, its next-token
log-probabilities (over the valid tokens) are

    logits = logits(. | x) + gamma_g * (logits(. | x) - logits(. | x'_g)),

where logits(. | x') is the same model seeing x' in place of the row's X: x'_Z = X', an
independent draw from p_model(X) per row (the spurious path carries the Z | X dependence),
and x'_W = x'_Y = x0 (the indirect and direct paths carry the effect of x1 against x0). So
gamma = -1 generates the group as if the row had x' (the path's intervention), gamma = 0
leaves the model alone, gamma in (-1, 0) weakens the path and gamma > 0 strengthens it
(classifier-free-guidance style extrapolation). The row keeps its own X; rows with
x = x0 are unchanged on the W and Y paths. X' is drawn with the row's temperature and top_p.

`PathWeights` (the older interface, still accepted) removes each path from a random
fraction of the rows instead: with probability `spurious` / `indirect` / `direct` the row's
group uses gamma = -1, otherwise the guidance's gamma. Both can be combined; a PathWeights
weight w scales a path's effect by about (1 - w) and cannot exceed the model's own effect,
which is why the refinement loop now steers gamma (`refine.path_guidance_adjuster`).
Migration: `PathWeights(direct=1.0)` is `PathGuidance(direct=-1.0)` exactly (the same rows
for the same key); fractional weights have no exact gamma equivalent (a mixture of rows
against a geometric interpolation of the conditionals).

The paper prompts an LLM with example rows balanced over the (X, Y) cells; here
`roles.balanced_rows` draws such rows and `sample(prefix=...)` forces their leading columns.

References:
  Nagesh, Wang & Rahmani (2025), FairCauseSyn, arXiv 2506.19082 (causally fair synthetic
  rows, path-specific effects, examples balanced by X and Y);
  Plečko & Bareinboim (2022), Causal Fairness Analysis, arXiv 2207.11385 (spurious,
  indirect and direct paths of the standard fairness model);
  Holtzman et al. (2019), arXiv 1904.09751 (nucleus sampling).
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

from fairjax import nets, parallel, persist, training
from fairjax.errors import FairjaxError
from fairjax.faircausesyn.roles import CausalRoles
from fairjax.faircausesyn.tokens import BOS, RowTokenizer, fit_tokenizer, segment_mask

METHOD = "faircausesyn-local"
# Column groups of the causal order, as the sampler sees them.
GROUP_X, GROUP_Z, GROUP_W, GROUP_Y = 0, 1, 2, 3


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise FairjaxError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _check_sampling(temperature: Any, top_p: Any) -> None:
    if not _is_number(temperature) or not temperature >= 0:
        raise FairjaxError(f"temperature must be a number >= 0; got {temperature!r}.")
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise FairjaxError(f"top_p must lie in (0, 1]; got {top_p!r}.")


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.number))


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    """Hyperparameters of the local row generator (all JSON-serialisable).

    Attributes:
      n_bins: most quantile bins per numeric column (`tokens.fit_tokenizer`).
      d_model, n_heads, n_layers, mlp_ratio: Transformer size (`nets.RowTransformer`).
      batch_size: rows per step.
      steps: AdamW steps. Small tables are memorised after roughly ten epochs
        (steps * batch_size / rows); see `PRESETS`.
      lr: peak learning rate (linear warmup, then cosine decay to lr / 100).
      warmup_steps: warmup length (at most half of `steps`).
      weight_decay: AdamW decoupled weight decay.
      temperature: default sampling temperature (0: the most probable token).
      top_p: default nucleus mass in (0, 1] (1: plain sampling).
      val_fraction: fraction of the rows held out to choose the number of steps (early
        stopping on their NLL), in [0, 0.5); 0 trains on every row for `steps` steps.
      eval_every: steps between two evaluations of the held-out NLL.
      patience: stop after this many evaluations without improvement.
    """

    n_bins: int = 16
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp_ratio: int = 4
    batch_size: int = 256
    steps: int = 3000
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    temperature: float = 1.0
    top_p: float = 1.0
    val_fraction: float = 0.2
    eval_every: int = 50
    patience: int = 4

    def __post_init__(self):
        sizes = (
            "n_bins",
            "d_model",
            "n_heads",
            "n_layers",
            "mlp_ratio",
            "batch_size",
            "steps",
            "eval_every",
            "patience",
        )
        for name in sizes:
            _check_count(name, getattr(self, name))
        if self.n_bins < 2:
            raise FairjaxError(f"n_bins must be >= 2; got {self.n_bins!r}.")
        if self.d_model % self.n_heads:
            raise FairjaxError(
                f"n_heads must divide d_model; got d_model={self.d_model}, n_heads={self.n_heads}."
            )
        w = self.warmup_steps
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0:
            raise FairjaxError(f"warmup_steps must be an integer >= 0; got {w!r}.")
        if not self.lr > 0:
            raise FairjaxError(f"lr must be positive; got {self.lr!r}.")
        if not self.weight_decay >= 0:
            raise FairjaxError(f"weight_decay must be >= 0; got {self.weight_decay!r}.")
        _check_sampling(self.temperature, self.top_p)
        if not _is_number(self.val_fraction) or not 0 <= self.val_fraction < 0.5:
            raise FairjaxError(f"val_fraction must lie in [0, 0.5); got {self.val_fraction!r}.")


PRESETS = {
    # The Transformer memorises small tables fast: on a 1,200 / 333 row split of NHEFS the
    # held-out NLL (nats per token) of the "quick" size trained for a fixed number of steps
    # is 1.35 at 100 steps, 1.38 at 150, 1.49 at 300, 1.90 at 600 and 2.87 at 1,200, so both
    # presets stop on the held-out NLL (`val_fraction`, `patience`); `steps` is a cap.
    "quick": LocalConfig(
        d_model=32, n_heads=4, n_layers=2, batch_size=128, steps=1000, eval_every=25
    ),
    "paper": LocalConfig(
        d_model=64, n_heads=4, n_layers=2, batch_size=256, steps=3000, eval_every=50
    ),
}


class PathWeights(NamedTuple):
    """Per-row probabilities of removing each causal path while generating (module docstring).

    Attributes:
      spurious: P(the Z columns are generated seeing X' ~ p_model(X) instead of X).
      indirect: P(the W columns are generated seeing X = x0).
      direct: P(Y is generated seeing X = x0).
    """

    spurious: float = 0.0
    indirect: float = 0.0
    direct: float = 0.0


NO_PATH_REMOVED = PathWeights()


class PathGuidance(NamedTuple):
    """Per-path guidance weights gamma in logit space (module docstring).

    Attributes:
      spurious: gamma of the Z columns (counterfactual X' ~ p_model(X)).
      indirect: gamma of the W columns (counterfactual x0).
      direct: gamma of Y (counterfactual x0).
    -1 removes the path, 0 leaves it as learned, > 0 strengthens it.
    """

    spurious: float = 0.0
    indirect: float = 0.0
    direct: float = 0.0


NO_GUIDANCE = PathGuidance()
GAMMA_RANGE = (-5.0, 5.0)


@dataclasses.dataclass(frozen=True)
class LocalRowModel:
    """A fitted local row generator.

    Attributes:
      config: hyperparameters.
      roles: causal roles; the generated columns are `roles.order`.
      tokenizer: the row tokenizer (columns in `roles.order`).
      params: Transformer parameters.
      history: training record ("loss": mean next-token cross-entropy over the last tenth
        of the steps, in nats per token; "steps": optimizer steps run; with a validation
        split also "val_nll" (nats per token of the kept parameters), "best_step" and
        "val_rows"; "record": the `training.Record` of the run as a dict).
    """

    config: LocalConfig
    roles: CausalRoles
    tokenizer: RowTokenizer
    params: Any
    history: dict

    method = METHOD  # for `fairjax.persist` (class attributes, not fields)
    config_cls = LocalConfig

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        weights: PathWeights = NO_PATH_REMOVED,
        guidance: PathGuidance = NO_GUIDANCE,
        temperature: float | None = None,
        top_p: float | None = None,
        prefix: pd.DataFrame | None = None,
        chunk_size: int = 4096,
    ) -> pd.DataFrame:
        """Generate `n` rows column by column in causal order.

        Args:
          key: PRNG key; the same key (and arguments) gives the same rows.
          n: number of rows.
          weights: path-removal probabilities (`PathWeights`, module docstring).
          guidance: per-path gamma in logit space (`PathGuidance`, module docstring).
          temperature: logits are divided by it; 0 takes the most probable token
            (default: `config.temperature`).
          top_p: sample from the smallest set of most probable tokens whose mass reaches
            top_p (default: `config.top_p`).
          prefix: None, or a frame [n rows] holding the first k columns of `roles.order`
            (k >= 1): their tokens are forced and their values copied to the output.
          chunk_size: most rows per compiled call (results do not depend on it).

        Returns:
          DataFrame [n rows] with the columns `roles.order` and the training dtypes.
        """
        n = _check_count("n", n)
        chunk_size = _check_count("chunk_size", chunk_size)
        w = _check_weights(weights)
        gamma = _check_guidance(guidance)
        temperature = self.config.temperature if temperature is None else temperature
        top_p = self.config.top_p if top_p is None else top_p
        _check_sampling(temperature, top_p)
        forced, k = self._prefix_tokens(prefix, n)
        gen_key, decode_key = jax.random.split(key)
        keys = jax.random.split(gen_key, n)
        run = _compiled_sampler(_net_spec(self.config, self.tokenizer))
        x0 = self.tokenizer.token_of(self.roles.X, self.roles.x0)
        shared = (
            jnp.asarray(k, jnp.int32),
            jnp.asarray(w),
            jnp.asarray(gamma),
            jnp.asarray(temperature, jnp.float32),
            jnp.asarray(top_p, jnp.float32),
            jnp.asarray(self.tokenizer.valid_mask),
            jnp.asarray(_groups(self.roles)),
            jnp.asarray(x0, jnp.int32),
        )
        size = min(chunk_size, parallel.bucket_rows(n, minimum=256))
        out = []
        for start in range(0, n, size):
            stop = min(start + size, n)
            pad = size - (stop - start)
            k_chunk = jnp.concatenate([keys[start:stop], jnp.repeat(keys[stop - 1 :], pad, 0)])
            f_chunk = np.concatenate([forced[start:stop], np.repeat(forced[stop - 1 :], pad, 0)])
            out.append(np.asarray(run(self.params, k_chunk, f_chunk, *shared))[: stop - start])
        frame = self.tokenizer.decode(decode_key, np.concatenate(out))
        # Forced numeric columns keep their given values rather than a within-bin redraw.
        for column in self.roles.order[:k]:
            frame[column] = pd.Series(prefix[column].to_numpy()).astype(frame[column].dtype)
        return frame

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write the model to folder `path` with a manifest (see `fairjax.persist`): config,
        roles, tokenizer and history in JSON, the parameters in msgpack (never pickled)."""
        persist.save_model(self, path, overwrite=overwrite, provenance=provenance)

    def _extras(self) -> persist.Extras:
        info = {"roles": self.roles.to_dict(), "tokenizer": self.tokenizer.to_dict()}
        return persist.Extras(info={**info, "history": self.history})

    @classmethod
    def _from_extras(cls, extras: persist.Extras) -> dict:
        return dict(
            roles=CausalRoles.from_dict(extras.info["roles"]),
            tokenizer=RowTokenizer.from_dict(extras.info["tokenizer"]),
            history=extras.info["history"],
        )

    def _param_shapes(self) -> Any:
        """The shapes `params` must have for this config and tokenizer."""
        spec = _net_spec(self.config, self.tokenizer)
        init = lambda key: nets.init_params(_module(spec), key, jnp.zeros(spec[1], jnp.int32))
        return jax.eval_shape(init, jax.random.key(0))

    def _prefix_tokens(self, prefix: pd.DataFrame | None, n: int) -> tuple[np.ndarray, int]:
        """(forced tokens [n, n_cols] (0 beyond the prefix), number k of forced columns)."""
        forced = np.zeros((n, len(self.roles.order)), np.int32)
        if prefix is None:
            return forced, 0
        if not isinstance(prefix, pd.DataFrame):
            raise FairjaxError(f"prefix must be a DataFrame or None; got {type(prefix).__name__}.")
        order = self.roles.order
        k = len(prefix.columns)
        if k == 0 or set(prefix.columns) != set(order[:k]) or k != prefix.columns.nunique():
            raise FairjaxError(
                f"prefix must hold the first k >= 1 columns of the causal order {list(order)} "
                f"(e.g. {list(order[:1])} or {list(order[:2])}); got {list(prefix.columns)}."
            )
        if len(prefix) != n:
            raise FairjaxError(f"prefix has {len(prefix)} rows; it must have n={n}.")
        forced[:, :k] = self.tokenizer.encode(prefix, columns=order[:k])
        return forced, k


def load_local(path: str | Path) -> LocalRowModel:
    """Read and verify a model written by `LocalRowModel.save`; parameters whose shapes do
    not fit the config and tokenizer are refused."""
    return persist.load_model(LocalRowModel, path)


def fit_local(
    key: jax.Array,
    frame: pd.DataFrame,
    roles: CausalRoles,
    *,
    config: LocalConfig = LocalConfig(),
    progress: bool = False,
) -> LocalRowModel:
    """Fit the tokenizer on the role columns (causal order) and train the Transformer.

    With `config.val_fraction > 0`, that fraction of the rows is held out and the
    parameters with the lowest held-out NLL (evaluated every `eval_every` steps) are kept;
    training stops after `patience` evaluations without improvement. The tokenizer sees
    every row.

    Args:
      key: PRNG key (initialisation, validation split and batches).
      frame: training rows with the role columns (from `roles.make_roles`).
      roles: causal roles; X and Y are tokenized as categorical.
      config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
      progress: show a progress bar.

    Returns:
      The fitted `LocalRowModel`; its history holds the final training loss, the steps run
      and, with a validation split, the best held-out NLL per token and its step.
    """
    if not isinstance(roles, CausalRoles):
        raise FairjaxError(f"roles must be a CausalRoles (make_roles); got {type(roles).__name__}.")
    if not isinstance(config, LocalConfig):
        raise FairjaxError(f"config must be a LocalConfig; got {type(config).__name__}.")
    tokenizer = fit_tokenizer(
        frame, roles.order, n_bins=config.n_bins, categorical=(roles.X, roles.Y)
    )
    for value in (roles.x0, roles.x1):
        tokenizer.token_of(roles.X, value)
    init_key, split_key, train_key = jax.random.split(key, 3)
    spec = _net_spec(config, tokenizer)
    params = nets.init_params(_module(spec), init_key, jnp.zeros(spec[1], jnp.int32))
    tokens = tokenizer.encode(frame)
    n_val = round(config.val_fraction * len(tokens))
    order = np.argsort(np.asarray(jax.random.uniform(split_key, (len(tokens),))))
    val, train = tokens[order[:n_val]], tokens[order[n_val:]]
    eval_fn = None
    if n_val:
        nll = _compiled_log_likelihood(spec)
        valid = jnp.asarray(tokenizer.valid_mask)

        def eval_fn(state) -> float:
            # Mean held-out NLL per token (nats).
            return -float(np.mean(nll(state.params, val, valid))) / val.shape[1]

    params, record = _train(train_key, params, train, config, tokenizer, progress, eval_fn)
    history = {"loss": record.final["loss"], "steps": record.num_steps}
    if n_val:
        best = record.eval_scores[record.eval_steps == record.best_step]
        val_nll = float(best[0]) if len(best) else float("nan")  # nan: no score was finite
        history.update(val_nll=val_nll, best_step=record.best_step, val_rows=n_val)
    history["record"] = record.to_dict()
    return LocalRowModel(config, roles, tokenizer, params, history)


# ---------------------------------------------------------------------------- internals


def _net_spec(config: LocalConfig, tokenizer: RowTokenizer) -> tuple[int, ...]:
    """Hashable description of the Transformer: (vocab, length, d_model, heads, layers, mlp)."""
    return (
        tokenizer.vocab_size,
        len(tokenizer.columns),
        config.d_model,
        config.n_heads,
        config.n_layers,
        config.mlp_ratio,
    )


def _module(spec: tuple[int, ...]) -> nets.RowTransformer:
    vocab, length, d_model, n_heads, n_layers, mlp_ratio = spec
    return nets.RowTransformer(vocab, length, d_model, n_heads, n_layers, mlp_ratio)


def _shift(tokens: jax.Array) -> jax.Array:
    """Model input of a row [L]: BOS, then every token but the last (teacher forcing)."""
    return jnp.concatenate([jnp.full((1,), BOS, tokens.dtype), tokens[:-1]])


def _log_probs(apply_fn, params, inputs: jax.Array, valid: jax.Array) -> jax.Array:
    """[L, vocab] log-probabilities of each position's token, over its valid tokens only."""
    logits = jnp.where(valid, apply_fn(params, inputs), -jnp.inf)
    return jax.nn.log_softmax(logits, axis=-1)


def _row_log_probs(apply_fn, params, tokens: jax.Array, valid: jax.Array) -> jax.Array:
    """[L] log p(t_j | t_<j) of one row of tokens [L]."""
    logp = _log_probs(apply_fn, params, _shift(tokens), valid)
    return jnp.take_along_axis(logp, tokens[:, None], axis=1)[:, 0]


def make_loss(apply_fn, valid_mask: np.ndarray):
    """`loss_fn(params, tokens[b, L], key) -> []`: mean next-token cross-entropy (nats per
    token), each position's softmax restricted to its valid tokens `valid_mask` [L, V]."""
    valid = jnp.asarray(valid_mask)

    def loss_fn(params, tokens, key):
        del key
        logp = jax.vmap(_row_log_probs, in_axes=(None, None, 0, None))(
            apply_fn, params, tokens, valid
        )
        return -jnp.mean(logp)

    return loss_fn


def make_choose():
    """`choose(key, logits[V], temperature, top_p) -> token`: temperature and nucleus
    sampling of one token; temperature 0 returns the argmax. Invalid tokens carry -inf."""

    def choose(key, logits, temperature, top_p):
        greedy = temperature <= 0
        scaled = logits / jnp.where(greedy, 1.0, temperature)
        probs = jax.nn.softmax(scaled)
        order = jnp.argsort(-scaled)
        sorted_probs = probs[order]
        # Keep the most probable tokens until their mass reaches top_p (the first always).
        keep_sorted = jnp.cumsum(sorted_probs) - sorted_probs < top_p
        keep = jnp.zeros_like(keep_sorted).at[order].set(keep_sorted)
        draw = jax.random.categorical(key, jnp.where(keep, scaled, -jnp.inf))
        return jnp.where(greedy, jnp.argmax(logits), draw).astype(jnp.int32)

    return choose


@functools.lru_cache(maxsize=16)
def _compiled_sampler(spec: tuple[int, ...]):
    """Jitted `run(params, keys[c], forced[c, L], k, weights[3], gammas[3], temperature,
    top_p, valid[L, V], groups[L], x0_token) -> tokens[c, L]`; row i uses keys[i] only."""
    apply_fn = nets.make_apply(_module(spec))
    choose = make_choose()
    length = spec[1]

    def row(params, key, forced, k, weights, gammas, temperature, top_p, valid, groups, x0):
        path_key, xprime_key, pos_key = jax.random.split(key, 3)
        removed = jax.random.uniform(path_key, (3,)) < weights
        gamma = jnp.where(removed, -1.0, gammas)  # (spurious, indirect, direct) of this row

        def body(carry, p):
            tokens, x_prime = carry
            g = groups[p]
            # The counterfactual X of position p's column group, and its gamma.
            other = jnp.where(g == GROUP_Z, x_prime, x0)
            gam = jnp.select(
                [g == GROUP_Z, g == GROUP_W, g == GROUP_Y], [gamma[0], gamma[1], gamma[2]], 0.0
            )
            inputs = _shift(tokens)
            own = jax.nn.log_softmax(jnp.where(valid[p], apply_fn(params, inputs)[p], -jnp.inf))
            cf = apply_fn(params, inputs.at[1].set(other))[p]
            cf = jax.nn.log_softmax(jnp.where(valid[p], cf, -jnp.inf))
            logits = jnp.where(valid[p], own + gam * (own - cf), -jnp.inf)
            token = choose(jax.random.fold_in(pos_key, p), logits, temperature, top_p)
            token = jnp.where(p < k, forced[p], token)
            # Position 0 sees only BOS: its logits are p_model(X), where X' is drawn from.
            x_prime = jnp.where(p == 0, choose(xprime_key, logits, temperature, top_p), x_prime)
            return (tokens.at[p].set(token), x_prime), None

        init = (jnp.zeros(length, jnp.int32), jnp.zeros((), jnp.int32))
        (tokens, _), _ = jax.lax.scan(body, init, jnp.arange(length))
        return tokens

    in_axes = (None, 0, 0, None, None, None, None, None, None, None, None)
    return jax.jit(jax.vmap(row, in_axes=in_axes))


@functools.lru_cache(maxsize=16)
def _compiled_log_likelihood(spec: tuple[int, ...]):
    """Jitted `fn(params, tokens[c, L], valid[L, V]) -> [c]` row log-likelihoods."""
    apply_fn = nets.make_apply(_module(spec))

    def row(params, tokens, valid):
        return jnp.sum(_row_log_probs(apply_fn, params, tokens, valid))

    return jax.jit(jax.vmap(row, in_axes=(None, 0, None)))


@functools.lru_cache(maxsize=16)
def _train_step(
    spec: tuple[int, ...],
    sizes: tuple[int, ...],
    lr: float,
    warmup_steps: int,
    decay_steps: int,
    weight_decay: float,
):
    """(step, optimizer) for the Transformer `spec` (`_net_spec`) on a tokenizer with column
    `sizes`: AdamW with weight decay `weight_decay`, clipped gradients, a linear warm-up
    to `lr` over `warmup_steps` and a cosine decay to lr / 100 at `decay_steps`. Built once
    per setting so that `training.run` reuses its compiled code."""
    loss_fn = make_loss(nets.make_apply(_module(spec)), segment_mask(sizes))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=warmup_steps, decay_steps=decay_steps, end_value=lr / 100
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, weight_decay=weight_decay),
    )
    return training.make_train_step(loss_fn, optimizer), optimizer


class TrainTokens(NamedTuple):
    """Token rows zero-padded to a power-of-two count (shared compiled code across fits).

    Attributes:
      tokens: int32 [N, L]; rows >= n are padding and never drawn.
      n: [] number of real rows.
    """

    tokens: jax.Array
    n: jax.Array


@functools.lru_cache(maxsize=16)
def _batch_fn(batch_size: int):
    """`batch_fn(data: TrainTokens, key) -> tokens[batch_size, L]`: rows with replacement."""

    def batch_fn(data: TrainTokens, key: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, (batch_size,))
        return data.tokens[jnp.floor(u * data.n).astype(jnp.int32)]

    return batch_fn


def _train(
    key, params, tokens, config, tokenizer, progress, eval_fn
) -> tuple[Any, training.Record]:
    step, optimizer = _train_step(
        _net_spec(config, tokenizer),
        tokenizer.sizes,
        config.lr,
        min(config.warmup_steps, config.steps // 2),
        config.steps,
        config.weight_decay,
    )
    padded = parallel.zero_pad_rows(np.asarray(tokens, np.int32))
    state, record = training.run(
        key,
        training.init_train_state(params, optimizer),
        step,
        _batch_fn(config.batch_size),
        TrainTokens(jnp.asarray(padded), jnp.asarray(len(tokens), jnp.int32)),
        num_steps=config.steps,
        chunk_size=config.eval_every,
        progress=progress,
        desc="faircausesyn-local",
        eval_fn=eval_fn,
        patience=config.patience,
    )
    return state.params, record


def _groups(roles: CausalRoles) -> np.ndarray:
    """[L] int: the column group (X, Z, W, Y) of each position of `roles.order`."""
    sizes = (1, len(roles.Z), len(roles.W), 1)
    return np.repeat(np.array([GROUP_X, GROUP_Z, GROUP_W, GROUP_Y], np.int32), sizes)


def _check_guidance(guidance: Any) -> np.ndarray:
    """[3] float32 (spurious, indirect, direct) gammas of a `PathGuidance`."""
    if not isinstance(guidance, PathGuidance):
        raise FairjaxError(f"guidance must be a PathGuidance; got {type(guidance).__name__}.")
    lo, hi = GAMMA_RANGE
    for name, value in guidance._asdict().items():
        if not _is_number(value) or not lo <= value <= hi:
            raise FairjaxError(
                f"PathGuidance.{name} must be a number in [{lo}, {hi}]; got {value!r}."
            )
    return np.asarray(guidance, np.float32)


def _check_weights(weights: Any) -> np.ndarray:
    """[3] float32 (spurious, indirect, direct) of a `PathWeights`, each in [0, 1]."""
    if not isinstance(weights, PathWeights):
        raise FairjaxError(f"weights must be a PathWeights; got {type(weights).__name__}.")
    for name, value in weights._asdict().items():
        if not _is_number(value) or not 0 <= value <= 1:
            raise FairjaxError(
                f"PathWeights.{name} must be a probability in [0, 1]; got {value!r}."
            )
    return np.asarray(weights, np.float32)
