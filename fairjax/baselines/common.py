"""What the joint baselines (VAE, GAN, DDPM, FairGAN) share: the joint encoding of a row,
the heads that turn a network's raw output into a row, batches, chunked generation,
sampling with a requested label proportion, and the fitted model's `sample` / `save` /
`load` (`JointModel`, a `fairjax.persist.Persistable`).

The joint row. The baselines of FADM's Table 1 (arXiv 2406.09495) generate the label and
the sensitive attribute(s) together with the features, so every baseline encodes

    [feature columns (schema.features minus the domain), label, sensitive column(s)]

with one `TabularEncoder`. The domain column is neither generated nor an input.

Label proportion. These models generate the label, so `label_proportion=None` returns the
rows as generated. A float p is honoured by selection: rows are generated in rounds until
there are round(p * n) rows with label 1 and n - round(p * n) with label 0, those are kept
(first come first kept) and shuffled. The kept rows are exact draws from the model's own
conditionals p_model(x, s | y), mixed with P(y = 1) = p. When the model generates one of the
labels too rarely to finish within `max_oversample * n` generated rows, `FairjaxError`.
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
import pandas as pd
from tqdm.auto import tqdm

from fairjax import classifiers, generators, parallel, persist, training
from fairjax.data import Schema, TabularDataset, TabularEncoder, fit_encoder
from fairjax.data.encoder import SCALINGS
from fairjax.errors import FairjaxError


class Layout(NamedTuple):
    """Static, hashable facts about the encoded row that the networks need.

    Attributes:
      dim: width of the encoded row.
      blocks: (start, stop) of each one-hot block, in order.
      numeric: positions of the numeric slots, in order.
    """

    dim: int
    blocks: tuple[tuple[int, int], ...]
    numeric: tuple[int, ...]

    @classmethod
    def of(cls, encoder: TabularEncoder) -> Layout:
        """The layout of `encoder`'s rows."""
        blocks = tuple(encoder.categorical_blocks())
        numeric = tuple(c.start for c in encoder.codecs if c.kind == "numeric")
        return cls(encoder.dim, blocks, numeric)


def joint_columns(schema: Schema) -> tuple[list[str], list[str]]:
    """(generated columns in encoded order, sensitive columns among them).

    The order is [features minus the domain, label, sensitive columns minus the domain].

    Raises:
      FairjaxError: no feature column, or every sensitive column is the domain.
    """
    domain = schema.domain
    features = [c for c in schema.features if c != domain]
    sensitive = [c for c in schema.sensitive if c != domain]
    if not features:
        raise FairjaxError(
            "the baselines need at least one feature column besides label/sensitive/domain; "
            f"columns are {list(schema.columns)}"
        )
    if not sensitive:
        raise FairjaxError(
            f"every sensitive column {list(schema.sensitive)} is the domain column {domain!r}, "
            "which is never generated; name another sensitive column"
        )
    return [*features, schema.label, *sensitive], sensitive


def fit_joint_encoder(dataset: TabularDataset, *, scaling: str) -> TabularEncoder:
    """One encoder for the joint row [features, label, sensitive] of `dataset`."""
    columns, _ = joint_columns(dataset.schema)
    return fit_encoder(dataset, columns=columns, scaling=scaling)


def check_config(config: Any, *, positive: tuple[str, ...], scaling: str) -> None:
    """Validate a config dataclass at construction (FairjaxError naming the field)."""
    if scaling not in SCALINGS:
        raise FairjaxError(f"scaling must be one of {SCALINGS}; got {scaling!r}")
    for name in positive:
        value = getattr(config, name)
        if isinstance(value, bool) or not value > 0:
            raise FairjaxError(f"{name} must be positive; got {value!r}")


def hidden(width: int, depth: int) -> tuple[int, ...]:
    """Hidden layer sizes of an MLP with `depth` layers of `width` units."""
    return (int(width),) * int(depth)


# ---------------------------------------------------------------------------- heads


def make_row_head(layout: Layout, *, temperature: float) -> Callable:
    """`head(key, raw[dim]) -> row[dim]`: numeric slots as they are, each one-hot block a
    Gumbel-softmax sample at `temperature` (a relaxed one-hot whose argmax is a draw from
    softmax(raw[block])).

    References:
      Jang et al., arXiv:1611.01144 (Gumbel-softmax); Xu et al., arXiv:1907.00503 (CTGAN's
      generator heads, temperature 0.2).
    """
    block_id = block_ids(layout)

    def head(key: jax.Array, raw: jax.Array) -> jax.Array:
        gumbel = jax.random.gumbel(key, raw.shape)
        logits = (raw + gumbel) / temperature
        return jnp.where(block_id >= 0, block_softmax(layout, logits), raw)

    return head


def block_softmax(layout: Layout, logits: jax.Array) -> jax.Array:
    """Softmax within every one-hot block of `logits` [dim]; numeric slots become 0."""
    return jnp.exp(block_log_softmax(layout, logits)) * (block_ids(layout) >= 0)


def block_log_softmax(layout: Layout, logits: jax.Array) -> jax.Array:
    """Log-softmax within every one-hot block of `logits` [dim]; numeric slots become 0."""
    # Dense [dim, blocks] membership products rather than segment ops: blocks are few,
    # and dense ops compile and run faster on CPU than scatters.
    block_id = block_ids(layout)
    member = block_id[:, None] == np.arange(len(layout.blocks))[None, :]  # [dim, B]
    in_block = block_id >= 0
    peak = jnp.max(jnp.where(member, logits[:, None], -jnp.inf), axis=0)  # [B]
    shifted = logits - member.astype(np.float32) @ peak
    total = jnp.where(in_block, jnp.exp(shifted), 0.0) @ member.astype(np.float32)  # [B]
    return jnp.where(in_block, shifted - member.astype(np.float32) @ jnp.log(total), 0.0)


def block_ids(layout: Layout) -> np.ndarray:
    """[dim] int: index of the one-hot block of each slot, -1 for numeric slots."""
    ids = np.full(layout.dim, -1, np.int32)
    for i, (start, stop) in enumerate(layout.blocks):
        ids[start:stop] = i
    return ids


# ---------------------------------------------------------------------------- batches


class TrainRows(NamedTuple):
    """Encoded training rows, zero-padded to a power-of-two row count so that fits on
    tables of similar size share compiled training code (as in `fadm`).

    Attributes:
      x: [N, dim] rows; rows >= n are padding and never drawn.
      n: [] number of real rows.
    """

    x: jax.Array
    n: jax.Array


def train_rows(x: np.ndarray) -> TrainRows:
    """`TrainRows` of encoded rows `x` [n, dim]."""
    x_pad = parallel.zero_pad_rows(np.asarray(x, np.float32))
    return TrainRows(jnp.asarray(x_pad), jnp.asarray(len(x), jnp.int32))


@functools.lru_cache(maxsize=32)
def make_batch_fn(batch_size: int, num: int | None = None) -> Callable:
    """`batch_fn(data: TrainRows, key) -> rows`: random rows (with replacement).

    Returns [batch_size, dim] rows, or [num, batch_size, dim] when `num` is given (one batch
    per critic update of an adversarial step). Cached, so that `training.run` reuses its
    compiled code across fits.
    """
    shape = (batch_size,) if num is None else (num, batch_size)

    def batch_fn(data: TrainRows, key: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, shape)
        return data.x[jnp.floor(u * data.n).astype(jnp.int32)]

    return batch_fn


def train(
    key: jax.Array,
    state: Any,
    step: Callable,
    x: np.ndarray,
    *,
    batch_size: int,
    num_steps: int,
    n_critic: int | None = None,
    progress: bool,
    desc: str,
    config: Any,
    train_files: training.TrainFiles | None = None,
    eval_loss: Callable | None = None,
    strata: np.ndarray | None = None,
) -> tuple[Any, training.Record]:
    """`training.run` of `step` on random batches of the encoded rows `x` [n, dim].

    Batches are [batch_size, dim], or [n_critic, batch_size, dim] when `n_critic` is given
    (one batch per critic update of an adversarial step, split over devices on axis 1).
    The network is called `desc` in `train_files` (its checkpoint subfolder and CSV
    file); the fields of `config` (a dataclass) are part of the checkpoint fingerprint.

    Early stopping: with `eval_loss` (`(params, x[m, dim], key) -> []`, lower is better)
    and `config.holdout` > 0, that share of the rows of every stratum of `strata` [n]
    (e.g. the label) is held out, `eval_loss` on them with one fixed key is evaluated every
    `config.eval_every` steps (`training.make_holdout_eval`), training stops after
    `config.patience` evaluations without improvement (`num_steps` becomes a maximum)
    and the best evaluated state is returned.

    Returns:
      (final or best state, the run's `training.Record`).
    """
    stopping = {}
    if eval_loss is not None and config.holdout > 0:
        strata = np.zeros(len(x), np.int64) if strata is None else np.asarray(strata)
        split_key, eval_key = jax.random.split(jax.random.fold_in(key, _HOLDOUT_STREAM))
        rows, held = classifiers.holdout_rows(split_key, strata, config.holdout)
        stopping = training.stopping_options(eval_loss, jnp.asarray(x[held]), eval_key, config)
        x = x[rows]
    return training.run(
        key,
        state,
        step,
        make_batch_fn(batch_size, n_critic),
        train_rows(x),
        num_steps=num_steps,
        progress=progress,
        desc=desc,
        row_axis=0 if n_critic is None else 1,
        setting=dataclasses.asdict(config),
        **stopping,
        **(training.TrainFiles() if train_files is None else train_files).options(desc),
    )


_HOLDOUT_STREAM = 9  # fold_in stream of a fit's training key: the held-out split and key


# ---------------------------------------------------------------------------- sampling


def generate_rows(
    run: Callable,
    params: Any,
    key: jax.Array,
    n: int,
    *,
    chunk_size: int = 4096,
    progress: bool = False,
) -> np.ndarray:
    """Encoded rows [n, dim] from a jitted `run(params, keys[c]) -> rows[c, dim]`.

    Row i is made from `jax.random.split(key, n)[i]` alone, so results do not depend on
    `chunk_size`. Calls have a power-of-two number of rows between 256 and `chunk_size`
    (the last chunk padded with copies of its last key), so few shapes are compiled and a
    small `n` does not pay for `chunk_size` rows.
    """
    keys = jax.random.split(key, n)
    size = min(int(chunk_size), parallel.bucket_rows(n, minimum=256))
    out = []
    for start in tqdm(range(0, n, size), desc="sampling", disable=not progress):
        stop = min(start + size, n)
        pad = size - (stop - start)
        k = jnp.concatenate([keys[start:stop], jnp.repeat(keys[stop - 1 : stop], pad, 0)])
        out.append(np.asarray(run(params, k))[: stop - start])
    return np.concatenate(out)


def sample_frame(
    key: jax.Array,
    n: int,
    *,
    draw_fn: Callable[[jax.Array, int], pd.DataFrame],
    schema: Schema,
    label_proportion: float | None,
    labels: Any = None,
    max_oversample: float = 50.0,
) -> pd.DataFrame:
    """`n` rows from `draw_fn(key, m) -> m decoded rows` with the label share or labels
    asked for (`fairjax.generators.select_labels`), columns in `schema.columns` order."""
    frame = generators.select_labels(
        key,
        n,
        draw_fn=draw_fn,
        label=schema.label,
        label_proportion=label_proportion,
        labels=labels,
        max_oversample=max_oversample,
    )
    return order_columns(frame, schema)


def sample_generated(
    run: Callable,
    params: Any,
    key: jax.Array,
    n: int,
    *,
    encoder: TabularEncoder,
    schema: Schema,
    label_proportion: float | None,
    labels: Any = None,
    max_oversample: float = 50.0,
    chunk_size: int = 4096,
    progress: bool = False,
) -> pd.DataFrame:
    """`n` decoded rows from a jitted `run(params, keys[c]) -> rows[c, dim]`, with the label
    share handled by `sample_frame` (None: as generated; p: exactly round(p n) ones;
    labels: row i has label labels[i])."""

    def draw(k, m):
        rows = generate_rows(run, params, k, m, chunk_size=chunk_size, progress=progress)
        return encoder.decode(rows)

    return sample_frame(
        key,
        n,
        draw_fn=draw,
        schema=schema,
        label_proportion=label_proportion,
        labels=labels,
        max_oversample=max_oversample,
    )


def order_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    return frame[[c for c in schema.columns if c in frame.columns]]


def history(record: training.Record) -> dict:
    """A fitted baseline's history: the mean of each metric over the last tenth of the steps
    and, under "record", the whole `training.Record` as a dict."""
    return {**record.final, "record": record.to_dict()}


# ------------------------------------------------------------------------- fitted models


class JointModel:
    """`sample`, `save` and the parameter-shape check that the joint baselines' fitted
    models share; the frozen model dataclasses (`VAEModel`, `GANModel`, `DDPMModel`,
    `FairGANModel`) inherit them.

    A subclass has the fields `config`, `encoder`, `schema`, `params` (and JSON-serialisable
    others), sets the class attributes `method` (the registry name) and `config_cls`, and
    defines `_sampler()` (its compiled sampler) and `_param_shapes()`: it is a
    `persist.Persistable` with the default hooks.
    """

    method: str  # set by each subclass, not annotated there (not a dataclass field)
    config_cls: type

    def _sampler(self) -> tuple[Callable, Any]:
        """(jitted `run(params, keys[c]) -> rows[c, dim]`, the params it takes); row i
        uses keys[i] only."""
        raise NotImplementedError

    def _param_shapes(self) -> Any:
        """The pytree of `jax.ShapeDtypeStruct` that `params` must match (for `load`)."""
        raise NotImplementedError

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        max_oversample: float = 50.0,
        chunk_size: int = 4096,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Generate `n` rows as the model's class docstring describes.

        Args:
          key: PRNG key; the same key gives the same rows.
          n: number of rows.
          labels: optional [n] 0/1 labels, row i gets labels[i] (selected from
            generated rows like `label_proportion`; exclusive with it).
          label_proportion: None (default): the label as generated. A float p: exactly
            round(p n) rows with label 1, selected from generated rows
            (`fairjax.baselines.common`); FairjaxError when the model generates that
            label too rarely to reach p within `max_oversample * n` rows.
          max_oversample: cap on generated rows per requested row when selecting.
          chunk_size: rows per compiled call (results do not depend on it).
          progress: progress bar over chunks.

        Returns:
          DataFrame [n rows]: the feature, sensitive and label columns with the training
          data's dtypes.
        """
        run, params = self._sampler()
        return self._generate(
            run,
            params,
            key,
            n,
            labels=labels,
            label_proportion=label_proportion,
            max_oversample=max_oversample,
            chunk_size=chunk_size,
            progress=progress,
        )

    def _generate(self, run: Callable, params: Any, key: jax.Array, n: int, **options):
        """`sample_generated` with this model's encoder and schema (`options`: labels,
        label_proportion, max_oversample, chunk_size, progress)."""
        return sample_generated(
            run, params, key, n, encoder=self.encoder, schema=self.schema, **options
        )

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write the model to folder `path` (see `fairjax.persist`; `overwrite` replaces an
        existing model folder, `provenance` goes to the manifest)."""
        persist.save_model(self, path, overwrite=overwrite, provenance=provenance)
