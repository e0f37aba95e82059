"""Intersectional augmentation (arXiv 2405.14521) as a fit / sample / save / load pipeline.

    from fairjax.intersectional import pipeline, settings
    data = settings.load_setting("adult")                 # sex x race x age, 8 groups
    model = pipeline.fit(jax.random.key(0), data, config=pipeline.PRESETS["quick"])
    x, g, y = model.generate(jax.random.key(1), counts)   # encoded rows, for augmentation
    frame = model.sample(jax.random.key(2), 1000)         # decoded rows, for users

`fit`:
1. resolves the k binary axes (`settings.resolve_axes`) and the group of every row;
2. encodes the feature columns: every column except the label, the axis columns (the
   sensitive attributes are not features: the downstream classifier must not use them,
   and the generator never needs them since a row's group is known), the domain and
   `drop`;
3. trains the generators of all (group, label) cells from their source sets (the parents,
   or the authors' bit-flipped control) with the MMD loss (`generators.fit_generator`),
   with mixture-of-RBF bandwidths `bandwidth_multipliers` x the median pairwise distance
   of the encoded training rows (`fairjax.mmd.median_bandwidths`, computed on up to 1,000
   rows). Default multipliers 0.5, 1, 2, 4: on Adult's encoding (one-hot categoricals,
   quantile-normal numerics; median distance ~3.6) that is ~1.8 to ~14.5, bracketing the
   authors' fixed kernels exp(-d^2 / (2 a)) with a in {10, 15, 20, 50}, i.e. length scales
   3.2 to 7.1 on their encoding;
4. every `eval_every` steps rates the generated rows of every group with a classifier
   two-sample test (real vs generated rows of the group, up to `eval_rows` real rows,
   the label appended; `distinguish`) and keeps the checkpoint whose held-out balanced
   accuracies are closest to 0.5 (lowest mean |BA - 0.5| over groups). Generated rows
   are rated after `project` (decode, then encode again): mixing one-hot blocks gives
   fractional entries that any classifier spots at once, so the test compares the valid
   rows a user would get.

Generated rows are mixtures of real rows, so a fitted model keeps the encoded training
rows (in `arrays.msgpack`): treat a saved model as you would the training data.
Encoded generated rows (`generate`) keep their categorical blocks as continuous mixtures:
the downstream classifier consumes them directly, as in the authors' code; `sample`
decodes them (argmax per block) into a table with the axis columns (their two labels) and
the label.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from fairjax import mmd, persist
from fairjax.data import Schema, TabularDataset, TabularEncoder, fit_encoder
from fairjax.errors import FairjaxError
from fairjax.generators import check_labels
from fairjax.intersectional import distinguish, generators, groups, settings
from fairjax.intersectional.augment import augmentation_counts

METHOD = "intersectional"

__all__ = [
    "PRESETS",
    "IntersectionalConfig",
    "IntersectionalModel",
    "fit",
    "fit_encoded",
    "group_distinguishability",
    "load",
]


@dataclasses.dataclass(frozen=True)
class IntersectionalConfig:
    """Hyperparameters of the intersectional generator (JSON-serialisable).

    Attributes:
        axes: axis spec ("sex==Male,race==White,age>50") or "auto"
            (`settings.resolve_axes`).
        drop: comma-separated feature columns not to encode, or "auto" (the bundled
            setting's, e.g. COMPAS's age_cat and decile_score).
        sources: "parents" (the method), "flipped" (the authors' wrong-parents control)
            or "ancestors-<depth>" (groups marginalising `depth` axes; optional).
        parameterisation: "simple", "per-feature" or "linear" (`generators`).
        sharing: "label" (one parameter set per label, the authors') or "group" (one per
            (group, label) cell).
        beta: weight of the MMD to the parents in the loss (0 = the authors' code).
        bandwidth_multipliers: comma-separated factors of the median distance.
        batch_size: rows per cell and source in each step (64: on CPU the 2G kernel
            matrices of side 2B stay in cache; 128 is ~10x slower per step on 2 cores).
        steps: Adam steps; lr: its learning rate.
        eval_every: steps between checkpoint evaluations.
        eval_rows: real rows per group (at most) in the checkpoint two-sample tests.
        min_rows: real rows a cell needs to enter the loss.
        scaling: numeric scaling of the encoder.
    """

    axes: str = "auto"
    drop: str = "auto"
    sources: str = "parents"
    parameterisation: str = "simple"
    sharing: str = "label"
    beta: float = 0.0
    bandwidth_multipliers: str = "0.5,1,2,4"
    batch_size: int = 64
    steps: int = 1000
    lr: float = 0.1
    eval_every: int = 200
    eval_rows: int = 300
    min_rows: int = 2
    scaling: str = "quantile"

    def __post_init__(self):
        groups.check_sources(self.sources)
        if self.parameterisation not in generators.PARAMETERISATIONS:
            raise FairjaxError(
                f"parameterisation must be one of {list(generators.PARAMETERISATIONS)}; "
                f"got {self.parameterisation!r}"
            )
        if self.sharing not in generators.SHARINGS:
            raise FairjaxError(
                f"sharing must be one of {generators.SHARINGS}; got {self.sharing!r}"
            )
        for name in ("batch_size", "steps", "eval_every", "eval_rows", "min_rows"):
            if int(getattr(self, name)) < 1:
                raise FairjaxError(f"{name} must be a positive integer; got {getattr(self, name)}")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise FairjaxError(f"beta must be a finite number >= 0; got {self.beta}")
        self.multipliers()  # validates

    def multipliers(self) -> tuple[float, ...]:
        """The bandwidth multipliers as floats."""
        try:
            values = tuple(float(v) for v in self.bandwidth_multipliers.split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or any(not (np.isfinite(v) and v > 0) for v in values):
            raise FairjaxError(
                "bandwidth_multipliers must be comma-separated positive numbers, e.g. "
                f"'0.5,1,2,4'; got {self.bandwidth_multipliers!r}"
            )
        return values


PRESETS = {
    # A couple of minutes on 2 CPU cores for Adult; the test suite uses smaller overrides.
    "quick": IntersectionalConfig(steps=400, eval_every=200, eval_rows=200),
    "paper": IntersectionalConfig(),
}


@dataclasses.dataclass(frozen=True)
class IntersectionalModel:
    """A fitted intersectional generator.

    Attributes:
        config: its hyperparameters.
        encoder: encoder of the feature columns.
        schema: schema of the training data.
        axes: the k binary axes.
        params: stacked generator parameters (`generators.init_generator_params`).
        rows: the encoded training rows by cell, which the generators mix.
        bandwidths: [b] kernel bandwidths used in training.
        history: training facts (best step, checkpoint scores, losses).
    """

    config: IntersectionalConfig
    encoder: TabularEncoder
    schema: Schema
    axes: tuple[settings.Axis, ...]
    params: Any
    rows: groups.GroupedRows
    bandwidths: np.ndarray
    history: dict

    method = METHOD  # for `fairjax.persist` (class attributes, not fields)
    config_cls = IntersectionalConfig

    @property
    def num_groups(self) -> int:
        return 2 ** len(self.axes)

    @property
    def members(self) -> np.ndarray:
        """[G, k, G] bool source sets of the generators."""
        return groups.source_sets(len(self.axes), self.config.sources)

    def can_generate(self) -> np.ndarray:
        """[G, 2] bool: cells whose source sets all have rows of that label."""
        return np.asarray(generators.trainable_cells(self.rows.count, self.members)[0])

    def generate(
        self, key: jax.Array, counts: Any, *, chunk_rows: int = 512
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded synthetic rows, `counts[g, y]` of every cell.

        Args:
            key: PRNG key.
            counts: [G, 2] ints >= 0 (e.g. `augment.augmentation_counts`).
            chunk_rows: rows per cell per compiled call (static; bounds memory).

        Returns:
            (x [m, d] float32, group [m] int64, label [m] int64), sorted by cell.
        """
        counts = np.asarray(counts, np.int64)
        if counts.shape != (self.num_groups, 2) or (counts < 0).any():
            raise FairjaxError(
                f"counts must be a [{self.num_groups}, 2] array of ints >= 0; got {counts.shape}"
            )
        bad = (counts > 0) & ~self.can_generate()
        if bad.any():
            g, y = np.argwhere(bad)[0]
            raise FairjaxError(
                f"cell (group {self.group_label(g)}, label {y}) cannot be generated: one of "
                "its source sets has no training rows with that label"
            )
        return generators.generate_counts(
            key,
            self.params,
            self.rows,
            self.members,
            counts,
            parameterisation=self.config.parameterisation,
            sharing=self.config.sharing,
            chunk_rows=chunk_rows,
        )

    def group_label(self, g: int) -> tuple[str, ...]:
        """The axis labels of group g, e.g. ("Female", "not White", ">50")."""
        bits = groups.group_bits(len(self.axes))[int(g)]
        return tuple(a.labels[b] for a, b in zip(self.axes, bits, strict=True))

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        group_proportions: str = "uniform",
        progress: bool = False,
    ) -> pd.DataFrame:
        """`n` synthetic rows as a table, groups drawn uniformly (or as in the data).

        Args:
            key: PRNG key.
            n: number of rows.
            labels: optional [n] 0/1: row i has label labels[i] (its group drawn among
                the groups that can generate that label); exclusive with
                `label_proportion`.
            label_proportion: P(label = 1) of every row; None (default): the training
                rows' share.
            group_proportions: "uniform" (every group equally often: the point of the
                method) or "data" (the training frequencies).
            progress: unused (generation is one pass); kept for the common interface.

        Returns:
            DataFrame with the feature columns (categoricals decoded by argmax), one
            column per axis holding its two labels, and the 0/1 label column, in the
            schema's column order, rows shuffled.
        """
        del progress
        n = int(n)
        if n < 1:
            raise FairjaxError(f"n must be a positive integer; got {n}")
        labels = check_labels(labels, n, label_proportion)
        count = np.asarray(self.rows.count)
        if label_proportion is None:
            label_proportion = count[:, 1].sum() / max(count.sum(), 1)
        if not 0.0 <= float(label_proportion) <= 1.0:
            raise FairjaxError(f"label_proportion must lie in [0, 1]; got {label_proportion}")
        if group_proportions not in ("uniform", "data"):
            raise FairjaxError(
                f"group_proportions must be 'uniform' or 'data'; got {group_proportions!r}"
            )
        ok = self.can_generate()
        group_p = np.ones(self.num_groups) if group_proportions == "uniform" else count.sum(1)
        cell_key, gen_key, perm_key = jax.random.split(key, 3)
        if labels is None:
            label_p = np.array([1.0 - label_proportion, label_proportion])
            p = (group_p[:, None] * label_p[None, :]) * ok
            if p.sum() <= 0:
                raise FairjaxError(
                    "no (group, label) cell with positive probability can be generated"
                )
            cells = np.asarray(
                jax.random.choice(cell_key, p.size, (n,), p=jnp.asarray(p.reshape(-1) / p.sum()))
            )
        else:  # the group of each row given its label
            cells = np.zeros(n, np.int64)
            for c in (0, 1):
                rows = np.flatnonzero(labels == c)
                if not len(rows):
                    continue
                col = group_p * ok[:, c]
                if col.sum() <= 0:
                    raise FairjaxError(f"no group can generate rows with label {c}")
                g_c = jax.random.choice(
                    jax.random.fold_in(cell_key, c), self.num_groups, (len(rows),),
                    p=jnp.asarray(col / col.sum()),
                )  # fmt: skip
                cells[rows] = 2 * np.asarray(g_c) + c
        counts = np.bincount(cells, minlength=2 * self.num_groups).reshape(self.num_groups, 2)
        x, g, y = self.generate(gen_key, counts)
        frame = self.encoder.decode(x)
        bits = groups.group_bits(len(self.axes))[g]
        for j, a in enumerate(self.axes):
            frame[a.column] = np.asarray(a.labels, dtype=object)[bits[:, j]]
            frame[a.column] = frame[a.column].astype(str)
        frame[self.schema.label] = y.astype(np.int64)
        order = [c for c in self.schema.columns if c in frame.columns]
        if labels is None:
            perm = np.asarray(jax.random.permutation(perm_key, n))
        else:  # row i: one of the generated rows of label labels[i], shuffled within label
            perm = np.empty(n, np.int64)
            for c in (0, 1):
                mine = np.flatnonzero(y == c)
                shuffle = jax.random.permutation(jax.random.fold_in(perm_key, c), len(mine))
                perm[labels == c] = mine[np.asarray(shuffle)]
        return frame[order].iloc[perm].reset_index(drop=True)

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write the model to folder `path` (see `fairjax.persist`; `overwrite` replaces an
        existing model folder, `provenance` goes to the manifest): the axes and history in
        model.json, the training rows (x, group, label) and bandwidths in arrays.msgpack."""
        persist.save_model(self, path, overwrite=overwrite, provenance=provenance)

    def _extras(self) -> persist.Extras:
        rows = {"x": self.rows.x, "group": self.rows.group, "label": self.rows.label}
        return persist.Extras(
            info={"axes": [a.to_dict() for a in self.axes], "history": self.history},
            arrays={"rows": rows, "bandwidths": np.asarray(self.bandwidths, np.float32)},
        )

    @classmethod
    def _from_extras(cls, extras: persist.Extras) -> dict:
        axes = tuple(settings.Axis.from_dict(a) for a in extras.info["axes"])
        raw = extras.arrays["rows"]
        rows = groups.group_rows(raw["x"], raw["group"], raw["label"], 2 ** len(axes))
        bandwidths = np.asarray(extras.arrays["bandwidths"], np.float32)
        return dict(axes=axes, rows=rows, bandwidths=bandwidths, history=extras.info["history"])

    def _param_shapes(self) -> Any:
        """The shapes `params` must have for this config, encoder and axes."""
        if self.rows.x.shape[1] != self.encoder.dim:
            raise FairjaxError(
                f"the saved rows have {self.rows.x.shape[1]} encoded columns; the encoder "
                f"makes {self.encoder.dim}"
            )
        init = functools.partial(
            generators.init_generator_params,
            self.config.parameterisation,
            num_sources=self.members.shape[1],
            dim=self.encoder.dim,
            num_groups=self.num_groups,
            sharing=self.config.sharing,
        )
        return jax.eval_shape(init)


def load(path: str | Path) -> IntersectionalModel:
    """Read and verify a model written by `IntersectionalModel.save`; parameters whose
    shapes do not fit the config are refused."""
    return persist.load_model(IntersectionalModel, path)


# --------------------------------------------------------------------------- fitting


def _features(dataset: TabularDataset, axes, drop: str) -> list[str]:
    schema = dataset.schema
    if drop == "auto":
        setting = settings.SETTINGS.get(dataset.name)
        dropped = set(setting.drop) if setting else set()
    else:
        dropped = {c.strip() for c in drop.split(",") if c.strip()}
        unknown = sorted(dropped - set(schema.columns))
        if unknown:
            raise FairjaxError(
                f"drop lists unknown column(s) {unknown}; columns are {list(schema.columns)}"
            )
    excluded = {a.column for a in axes} | dropped
    features = [c for c in schema.features if c not in excluded]
    if not features:
        raise FairjaxError("no feature column left after removing the axes and `drop`")
    return features


def make_group_scorer(
    key: jax.Array,
    rows: groups.GroupedRows,
    members: np.ndarray,
    encoder: TabularEncoder,
    *,
    parameterisation: str,
    sharing: str,
    max_rows: int,
):
    """`score(params) -> [G]` per-group C2ST balanced accuracy, generated vs real rows.

    Real side of group g: up to `max_rows` of its training rows (a fixed random subset,
    both labels, the label appended as a feature). Generated side: as many rows with the
    same labels, projected to valid rows (decode, then encode). The tests run vmapped over
    groups (`distinguish.make_group_c2st`). The same key (hence the same real rows,
    generator draws and classifier splits) serves every call, so scores of two
    checkpoints differ only through the parameters. A group with fewer than 4 real rows,
    or with a cell that cannot be generated, scores nan.
    """
    real_key, gen_key, test_key = jax.random.split(key, 3)
    count = np.asarray(rows.count)
    start = np.asarray(rows.start)
    x_all = np.asarray(rows.x)
    y_all = np.asarray(rows.label)
    num_groups = count.shape[0]
    ok = np.asarray(generators.trainable_cells(rows.count, members)[0])
    usable = (count.sum(1) >= 4) & np.all(ok | (count == 0), axis=1)
    size = int(min(max_rows, count.sum(1)[usable].max(initial=1)))
    bits = np.asarray(jax.random.bits(real_key, (x_all.shape[0],), np.uint32))
    d = x_all.shape[1] + 1
    real = np.zeros((num_groups, size, d), np.float32)
    weight = np.zeros((num_groups, size), np.float32)
    labels = []
    for g in range(num_groups):
        ids = start[g, 0] + np.arange(int(count[g].sum()))
        ids = np.sort(ids[np.argsort(bits[ids], kind="stable")][:size]) if usable[g] else ids[:0]
        real[g, : len(ids)] = np.concatenate([x_all[ids], y_all[ids, None]], axis=1)
        weight[g, : len(ids)] = 1.0
        labels.append(np.bincount(y_all[ids], minlength=2))
    counts = np.stack(labels)
    c2st = distinguish.make_group_c2st()

    def score(params) -> np.ndarray:
        x, g, _ = generators.generate_counts(
            gen_key,
            params,
            rows,
            members,
            counts,
            parameterisation=parameterisation,
            sharing=sharing,
        )
        projected = encoder.encode(encoder.decode(x))
        fake = np.zeros_like(real)
        for h in range(num_groups):
            n0, n1 = counts[h]
            fake[h, : n0 + n1, :-1] = projected[g == h]  # label 0 rows, then label 1
            fake[h, n0 : n0 + n1, -1] = 1.0
        out = np.asarray(c2st(test_key, real, weight, fake, weight), np.float64)
        return np.where(usable, out, np.nan)

    return score


def fit_encoded(
    key: jax.Array,
    x: np.ndarray,
    group: np.ndarray,
    label: np.ndarray,
    *,
    num_axes: int,
    encoder: TabularEncoder,
    config: IntersectionalConfig,
    progress: bool = False,
) -> tuple[Any, groups.GroupedRows, np.ndarray, dict]:
    """Train the generators on encoded rows (the core of `fit`).

    Args:
        key: PRNG key.
        x: [n, d] encoded training rows; group: [n] ids in [0, 2^k); label: [n] 0/1.
        num_axes: k.
        encoder: the encoder of x (for the projection in the checkpoint test).
        config: hyperparameters.
        progress: show a progress bar.

    Returns:
        (params, rows, bandwidths [b], history dict).
    """
    num_groups = 2**num_axes
    rows = groups.group_rows(x, group, label, num_groups)
    members = groups.source_sets(num_axes, config.sources)
    band_key, score_key, train_key = jax.random.split(key, 3)
    bandwidths = np.asarray(_median_bandwidths(jnp.asarray(rows.x), config.multipliers(), band_key))
    scorer = make_group_scorer(
        score_key,
        rows,
        members,
        encoder,
        parameterisation=config.parameterisation,
        sharing=config.sharing,
        max_rows=config.eval_rows,
    )

    def score_fn(params) -> float:
        # mean over groups of how far each group's C2ST is from chance
        return float(np.nanmean(np.abs(scorer(params) - 0.5)))

    result = generators.fit_generator(
        train_key,
        rows,
        members,
        parameterisation=config.parameterisation,
        sharing=config.sharing,
        bandwidths=bandwidths,
        beta=config.beta,
        batch_size=config.batch_size,
        steps=config.steps,
        lr=config.lr,
        eval_every=config.eval_every,
        min_rows=config.min_rows,
        score_fn=score_fn,
        progress=progress,
    )
    history = {
        "best_step": int(result.best_step),
        "eval_steps": result.eval_steps.tolist(),
        "eval_scores": result.eval_scores.tolist(),
        "loss_first": float(np.mean(result.losses[: config.eval_every])),
        "loss_last": float(np.mean(result.losses[-config.eval_every :])),
    }
    return result.params, rows, bandwidths, history


@functools.partial(jax.jit, static_argnums=1)
def _median_bandwidths(x, multipliers, key):
    return mmd.median_bandwidths(x, multipliers=multipliers, key=key)


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: IntersectionalConfig = PRESETS["paper"],
    progress: bool = True,
) -> IntersectionalModel:
    """Fit the intersectional generators to `dataset` (see the module docstring).

    Args:
        key: PRNG key (bandwidth subsample, checkpoint test, training batches).
        dataset: training rows; the axes come from `config.axes`.
        config: hyperparameters (`PRESETS["quick"]`, `PRESETS["paper"]` or your own).
        progress: show a progress bar.

    Returns:
        The fitted `IntersectionalModel`.

    References:
        arXiv 2405.14521, sec. 3.
    """
    axes = settings.resolve_axes(dataset, config.axes)
    features = _features(dataset, axes, config.drop)
    encoder = fit_encoder(dataset, columns=features, scaling=config.scaling)
    x = encoder.encode(dataset.frame)
    group = settings.group_of_rows(dataset.frame, axes)
    params, rows, bandwidths, history = fit_encoded(
        key,
        x,
        group,
        dataset.y,
        num_axes=len(axes),
        encoder=encoder,
        config=config,
        progress=progress,
    )
    return IntersectionalModel(
        config=config,
        encoder=encoder,
        schema=dataset.schema,
        axes=axes,
        params=params,
        rows=rows,
        bandwidths=bandwidths,
        history=history,
    )


def augmented_rows(
    key: jax.Array, model: IntersectionalModel, n: int, *, mode: str = "add"
) -> groups.GroupedRows:
    """The model's training rows plus N synthetic rows per cell (or topped up to N).

    Args:
        key: PRNG key.
        model: a fitted model.
        n: N.
        mode: "add" or "top-up" (`augment.augmentation_counts`).

    Returns:
        `GroupedRows` of the real and synthetic encoded rows.
    """
    counts = augmentation_counts(
        np.asarray(model.rows.count), n, mode=mode, can_generate=model.can_generate()
    )
    x, g, y = model.generate(key, counts)
    return groups.append_rows(model.rows, x, g, y, model.num_groups)


def group_distinguishability(
    key: jax.Array, model: IntersectionalModel, *, max_rows: int = 1000
) -> np.ndarray:
    """Per-group C2ST balanced accuracy of generated vs real training rows (0.5 = alike).

    See `make_group_scorer`; up to `max_rows` real rows per group.

    Returns:
        [G] balanced accuracies (nan for groups too small to test).
    """
    members = model.members
    scorer = make_group_scorer(
        key,
        model.rows,
        members,
        model.encoder,
        parameterisation=model.config.parameterisation,
        sharing=model.config.sharing,
        max_rows=max_rows,
    )
    return scorer(model.params)
