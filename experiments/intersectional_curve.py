"""Intersectional augmentation under controlled under-representation (arXiv 2405.14521).

    python -m experiments.intersectional_curve --preset quick   # COMPAS, 2 seeds, ~1 min
    python -m experiments.intersectional_curve --preset paper --out results/intersectional/curve

The question: when a few intersectional groups have only n_g training rows, do rows
generated from their parent groups make an ordinary classifier fairer, and more so than
what a practitioner would try first? For every data set, seed and n_g:

1. **Splits** (`controlled_split`), stratified by (group, label) cell: the test split takes
   from every cell max(`test_min`, `test_fraction` of the cell) rows, at most half of the
   cell, so that every cell the data allow has >= 150 test rows (pooled over the data set,
   not 20% per group); validation takes max(`val_min`, `val_fraction`) of every cell, at
   most half of what is left; the rest is the training pool.
2. **Under-representation** (`subsample`): the chosen small groups keep n_g rows of their
   training pool (labels in the pool's proportion, at least one of each); every other
   group keeps its whole pool. "all" keeps every group whole. Every method sees the same
   rows (paired design); the seed draws the splits, the subsample and every fit.
3. **Methods**, each an MLP (hidden 64-64, Adam, early stopping on validation balanced
   accuracy, the same number of steps per epoch) unless said otherwise:
   - "unconstrained": ERM on uniform batches of the real rows;
   - "equal_sampling": one group per batch, half positives, half negatives (ES);
   - "reweighting": uniform batches, loss weights inverse to the (group, label) cell size;
   - "exponentiated_gradient": fairlearn's `ExponentiatedGradient` with
     `TruePositiveRateParity` over the intersectional groups, logistic regression base;
   - "oversampling": the small groups' cells topped up to `top_up` rows by duplicating
     real rows, uniform batches;
   - "ddpm_es": the same cells topped up with rows of the DDPM baseline fitted on the
     small groups' training rows, the group as its sensitive column (a general generator
     conditioned on the group, without the hierarchy), ES;
   - "augmentation_es": the same cells topped up with rows the hierarchical generators
     make from the groups' parents (`fairjax.intersectional`), ES;
   - "wrong_parents_es": the same from bit-flipped source groups (the authors' control).
4. **Test metrics** per seed: balanced accuracy, DF of the TPR over all 2^k groups
   ((count + 2) / (total + 4) smoothing), IF_0.5 of the TPR, worst-group TPR.
5. **Statistics** (`summarise`): per (data set, method, n_g) the mean over seeds with a 95%
   bootstrap interval over seeds, and the paired difference against the unconstrained MLP
   and against equal sampling alone (per seed, the same splits), with its 95% interval.

Outputs in --out (default runs/intersectional_curve/PRESET): `{dataset}_seed{seed}.json`
records, `curve.csv` (one row per data set, method and n_g), `curve.md` and
`curve.png` (each metric against n_g per method).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from experiments import common
from experiments.common import log, preset_config, preset_parser
from experiments.intersectional import fairness, predict, seen_rows
from fairjax.baselines import ddpm
from fairjax.data import Schema, TabularDataset
from fairjax.errors import FairjaxError
from fairjax.intersectional import augment, groups, pipeline, settings

METHODS = (
    "unconstrained",
    "equal_sampling",
    "reweighting",
    "exponentiated_gradient",
    "oversampling",
    "ddpm_es",
    "augmentation_es",
    "wrong_parents_es",
)
METHOD_NAMES = {
    "unconstrained": "Unconstrained MLP",
    "equal_sampling": "Equal sampling (ES)",
    "reweighting": "Reweighting (group, label)",
    "exponentiated_gradient": "fairlearn EG, TPR parity",
    "oversampling": "Oversampling (duplicates)",
    "ddpm_es": "DDPM rows + ES",
    "augmentation_es": "Augmentation + ES",
    "wrong_parents_es": "Wrong parents + ES",
}
# training rows and batch sampling of each MLP method
_ROWS = {
    "unconstrained": ("real", "uniform"),
    "equal_sampling": ("real", "equal"),
    "reweighting": ("real", "reweighted"),
    "oversampling": ("duplicates", "uniform"),
    "ddpm_es": ("ddpm", "equal"),
    "augmentation_es": ("parents", "equal"),
    "wrong_parents_es": ("flipped", "equal"),
}
ALL = "all"
# The paper preset's generator, 500 steps with checkpoints at 250 and 500 (on Adult the
# best of 1000 steps was at 400); the DDPM baseline's quick net, 1000 steps, 100 EM steps.
GENERATOR = dataclasses.replace(pipeline.PRESETS["paper"], steps=500, eval_every=250)
DDPM = dataclasses.replace(ddpm.PRESETS["quick"], steps=1000, sample_steps=100)


@dataclasses.dataclass(frozen=True)
class CurveConfig:
    """What one run of the experiment does.

    Attributes:
        datasets: bundled settings ("adult", "compas").
        seeds: one split, subsample and set of fits per seed.
        n_g: training rows kept in each small group; "all" keeps them whole.
        small_groups: {data set: group ids} under-represented in training.
        test_min, test_fraction: test rows per cell, max(test_min, fraction * cell),
            at most half of the cell.
        val_min, val_fraction: validation rows per cell, the same rule on what is left.
        top_up: rows each cell of a small group has after augmentation or oversampling.
        generator: hierarchical generator hyperparameters (sources set per method).
        ddpm: DDPM baseline hyperparameters.
        lr, hidden, batch_size, max_epochs, patience: the MLP classifiers.
        eg_bound, eg_max_iter: fairlearn ExponentiatedGradient's TPR-parity bound and
            iterations (10: each is a logistic fit, ~2 s on Adult's 27k rows).
        n_bootstrap: bootstrap resamples of the seeds for every interval.
    """

    datasets: tuple[str, ...] = ("adult", "compas")
    seeds: tuple[int, ...] = tuple(range(10))
    n_g: tuple[int | str, ...] = (25, 50, 100, 200, ALL)
    # Adult: (female, White, > 50) and (male, non-White, <= 50), the two groups outside
    # the majority whose cells can give ~150 test positives; COMPAS: (female, other race,
    # >= 25) and (male, African-American, < 25), the two such groups with the most rows.
    small_groups: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("adult", (3, 4)),
        ("compas", (0, 7)),
    )
    test_min: int = 150
    test_fraction: float = 0.2
    val_min: int = 50
    val_fraction: float = 0.1
    top_up: int = 500
    generator: pipeline.IntersectionalConfig = GENERATOR
    ddpm: ddpm.DDPMConfig = DDPM
    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 5
    eg_bound: float = 0.05
    eg_max_iter: int = 10
    n_bootstrap: int = 2000


NAME = "intersectional_curve"
PRESETS = {
    # COMPAS, 2 seeds, two n_g, short fits: about a minute on 2 cores (the test runs it).
    "quick": CurveConfig(
        datasets=("compas",),
        seeds=(0, 1),
        n_g=(25, ALL),
        top_up=200,
        generator=dataclasses.replace(
            pipeline.PRESETS["quick"], steps=100, eval_every=50, eval_rows=100
        ),
        ddpm=dataclasses.replace(ddpm.PRESETS["quick"], steps=100, sample_steps=20),
        max_epochs=4,
        patience=2,
        eg_max_iter=5,
        n_bootstrap=200,
    ),
    # Both data sets, 10 seeds, n_g in {25, 50, 100, 200, all}: 53 min on 2 shared cores.
    "paper": CurveConfig(),
}


# ------------------------------------------------------------------------------ the design


def _take(bits: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the k rows of `ids` first in `bits` order, the rest)."""
    ids = ids[np.argsort(bits[ids], kind="stable")]
    return ids[:k], ids[k:]


def controlled_split(
    key: jax.Array, group: np.ndarray, label: np.ndarray, cfg: CurveConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train pool, validation, test) row indices, stratified by (group, label) cell.

    Test gets min(max(test_min, ceil(test_fraction c)), floor(c / 2)) rows of a cell of c
    rows; validation the same rule with val_min / val_fraction on the c' rows left (at
    most floor(c' / 2)); the training pool the rest.

    Args:
        key: PRNG key of the shuffle.
        group: [n] group ids; label: [n] 0/1.
        cfg: the split sizes.

    Returns:
        Three sorted int64 index arrays.
    """
    bits = np.asarray(jax.random.bits(key, (len(group),), np.uint32))
    cells = 2 * np.asarray(group, np.int64) + np.asarray(label, np.int64)
    parts = ([], [], [])
    for c in np.unique(cells):
        ids = np.flatnonzero(cells == c)
        k_test = min(max(cfg.test_min, int(np.ceil(cfg.test_fraction * len(ids)))), len(ids) // 2)
        test, rest = _take(bits, ids, k_test)
        k_val = min(max(cfg.val_min, int(np.ceil(cfg.val_fraction * len(ids)))), len(rest) // 2)
        val, pool = _take(bits, rest, k_val)
        for part, rows in zip(parts, (pool, val, test), strict=True):
            part.append(rows)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def subsample(
    key: jax.Array,
    pool: np.ndarray,
    group: np.ndarray,
    label: np.ndarray,
    small: tuple[int, ...],
    n_g: int | str,
) -> np.ndarray:
    """The training rows: each small group cut to n_g rows of `pool`, the rest whole.

    A small group keeps round(n_g p) positives and n_g minus that negatives (p its pool's
    positive share; at least one of each label when the pool has one), or its whole pool
    when that is smaller; n_g = "all" keeps everything.

    Returns:
        Sorted int64 row indices, a subset of `pool`.
    """
    if n_g == ALL:
        return np.sort(pool)
    if isinstance(n_g, bool) or not isinstance(n_g, (int, np.integer)) or n_g < 2:
        raise FairjaxError(f"n_g must be an int >= 2 or {ALL!r}; got {n_g!r}")
    bits = np.asarray(jax.random.bits(key, (len(group),), np.uint32))
    keep = [pool[~np.isin(group[pool], small)]]
    for g in small:
        ids = pool[group[pool] == g]
        pos, neg = ids[label[ids] == 1], ids[label[ids] == 0]
        n_pos = int(np.clip(round(n_g * len(pos) / max(len(ids), 1)), 1, n_g - 1))
        n_pos = min(n_pos, len(pos))
        n_neg = min(n_g - n_pos, len(neg))
        keep += [_take(bits, pos, n_pos)[0], _take(bits, neg, n_neg)[0]]
    return np.sort(np.concatenate(keep))


def top_up_counts(count: np.ndarray, small: tuple[int, ...], n: int) -> np.ndarray:
    """[G, 2] synthetic rows per cell: the small groups' cells up to n rows, others 0."""
    out = np.zeros_like(np.asarray(count, np.int64))
    out[list(small)] = augment.augmentation_counts(np.asarray(count)[list(small)], n, mode="top-up")
    return out


def duplicate_rows(key: jax.Array, rows: groups.GroupedRows, counts: np.ndarray) -> np.ndarray:
    """Indices into `rows` of counts[g, y] real rows of each cell, drawn with replacement."""
    start, have = np.asarray(rows.start), np.asarray(rows.count)
    out = []
    for g, y in np.argwhere(counts > 0):
        k = jax.random.fold_in(key, 2 * int(g) + int(y))
        out.append(start[g, y] + np.asarray(jax.random.randint(k, (counts[g, y],), 0, have[g, y])))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def ddpm_rows(
    key: jax.Array,
    data: TabularDataset,
    train: np.ndarray,
    group: np.ndarray,
    small: tuple[int, ...],
    counts: np.ndarray,
    model_encoder,
    cfg: CurveConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Encoded rows of the DDPM baseline for the small groups' cells.

    The DDPM is fitted on the small groups' training rows (the feature columns of
    `model_encoder`, the label, and the group as its sensitive column), then sampled
    until every cell has counts[g, y] rows or 8 rounds have passed (each round sized by
    the cells' shares in the previous one).

    Returns:
        (x [m, d], group [m], label [m], [G, 2] rows it fell short of `counts`).
    """
    fit_key, sample_key = jax.random.split(key)
    schema = data.schema
    features = [c.name for c in model_encoder.codecs]
    rows = train[np.isin(group[train], small)]
    frame = data.frame.iloc[rows][[*features, schema.label]].reset_index(drop=True)
    frame["group"] = pd.array([f"g{g}" for g in group[rows]], dtype="string")
    sub = TabularDataset(
        frame,
        Schema(
            label=schema.label,
            sensitive=("group",),
            categorical=(*[c for c in features if c in schema.categorical], "group", schema.label),
            numeric=tuple(c for c in features if c in schema.numeric),
            label_names=schema.label_names,
        ),
        name=f"{data.name}-small-groups",
    )
    model = ddpm.fit(fit_key, sub, config=cfg.ddpm, progress=False)
    need = counts.copy()
    share = np.where(counts > 0, 0.25, 1.0)  # first guess of each cell's share of samples
    xs, gs, ys = [], [], []
    for r in range(8):
        if not need.any():
            break
        size = int(min(1.2 * np.max(need / np.maximum(share, 0.01)), 20 * need.sum())) + 64
        out = model.sample(jax.random.fold_in(sample_key, r), size)
        g_out = out["group"].str.slice(1).astype(int).to_numpy()
        y_out = out[schema.label].to_numpy(np.int64)
        for g, y in np.argwhere(counts > 0):
            share[g, y] = max(np.mean((g_out == g) & (y_out == y)), 1.0 / size)
        for g, y in np.argwhere(need > 0):
            hit = np.flatnonzero((g_out == g) & (y_out == y))[: need[g, y]]
            if len(hit):
                xs.append(model_encoder.encode(out.iloc[hit]))
                gs.append(np.full(len(hit), g))
                ys.append(np.full(len(hit), y))
                need[g, y] -= len(hit)
    if not xs:
        empty = np.zeros(0, np.int64)
        return np.zeros((0, model_encoder.dim), np.float32), empty, empty, need
    return np.concatenate(xs), np.concatenate(gs), np.concatenate(ys), need


def _eg_predict(key, x, y, g, cfg: CurveConfig):
    """fairlearn ExponentiatedGradient with TPR parity over the groups; x -> 0/1.

    References:
        Agarwal, Beygelzimer, Dudik, Langford, Wallach, "A Reductions Approach to Fair
        Classification", ICML 2018.
    """
    from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity
    from sklearn.linear_model import LogisticRegression

    model = ExponentiatedGradient(
        LogisticRegression(max_iter=200, tol=1e-3),
        TruePositiveRateParity(difference_bound=cfg.eg_bound),
        max_iter=cfg.eg_max_iter,
        run_linprog_step=False,  # the averaged iterates of Agarwal et al. (2018); the LP
        # refinement costs ~20 s per fit on Adult
    )
    model.fit(np.asarray(x, np.float64), y, sensitive_features=g)
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    return lambda x: model.predict(np.asarray(x, np.float64), random_state=seed).astype(np.int64)


def run_cell(key, data, group, label, pool, val, test, small, n_g, cfg: CurveConfig) -> dict:
    """Every method on one data set, split and n_g; returns the test metrics per method."""
    t0 = time.time()
    num_groups = 2 ** len(settings.resolve_axes(data))
    sub_key, gen_key, dup_key, ddpm_key, clf_key, eg_key = jax.random.split(key, 6)
    train = subsample(sub_key, pool, group, label, small, n_g)
    train_ds = data.select(train)
    models = {
        sources: pipeline.fit(
            gen_key,
            train_ds,
            config=dataclasses.replace(cfg.generator, sources=sources),
            progress=False,
        )
        for sources in ("parents", "flipped")
    }
    encoder_model = models["parents"]
    encoder = encoder_model.encoder
    val, test, dropped = seen_rows(encoder, data.frame, train_ds.frame, val, test)
    x_val, y_val = encoder.encode(data.frame.iloc[val]), label[val]
    x_test, y_test, g_test = encoder.encode(data.frame.iloc[test]), label[test], group[test]
    real = groups.group_rows(encoder.encode(train_ds.frame), group[train], label[train], num_groups)
    counts = top_up_counts(np.asarray(real.count), small, cfg.top_up)

    dup = duplicate_rows(dup_key, real, counts)
    x_d, g_d, y_d, short = ddpm_rows(ddpm_key, data, train, group, small, counts, encoder, cfg)
    sources = {
        "real": real,
        "duplicates": groups.append_rows(
            real,
            np.asarray(real.x)[dup],
            np.asarray(real.group)[dup],
            np.asarray(real.label)[dup],
            num_groups,
        ),
        "ddpm": groups.append_rows(real, x_d, g_d, y_d, num_groups),
    }
    for name in ("parents", "flipped"):
        gen_counts = np.where(models[name].can_generate(), counts, 0)
        x_s, g_s, y_s = models[name].generate(jax.random.fold_in(gen_key, 1), gen_counts)
        sources[name] = groups.append_rows(real, x_s, g_s, y_s, num_groups)

    steps_per_epoch = -(-len(train) // cfg.batch_size)
    results = {}
    for i, method in enumerate(METHODS):
        if method == "exponentiated_gradient":
            pred = _eg_predict(eg_key, real.x, np.asarray(real.label), np.asarray(real.group), cfg)
            pred_test, best_epoch = pred(x_test), None
        else:
            rows_name, sampling = _ROWS[method]
            trainer = augment.make_classifier_trainer(
                sampling=sampling,
                hidden=cfg.hidden,
                lr=cfg.lr,
                batch_size=cfg.batch_size,
                max_epochs=cfg.max_epochs,
                patience=cfg.patience,
                steps_per_epoch=steps_per_epoch,
            )
            fit = trainer(jax.random.fold_in(clf_key, i), sources[rows_name], x_val, y_val)
            pred_test, best_epoch = predict(fit.params, x_test), fit.best_epoch
        results[method] = {
            **fairness(y_test, pred_test, g_test, num_groups, n_bootstrap=0, seed=0),
            "best_epoch": best_epoch,
        }
    return {
        "n_g": n_g,
        "train_counts": np.asarray(real.count).tolist(),
        "synthetic_counts": counts.tolist(),
        "ddpm_shortfall": short.tolist(),
        "generator_best_step": {k: m.history["best_step"] for k, m in models.items()},
        "group_labels": [list(encoder_model.group_label(g)) for g in range(num_groups)],
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "n_dropped_unseen_category": dropped,
        "methods": results,
        "seconds": time.time() - t0,
    }


def run_one(name: str, seed: int, cfg: CurveConfig) -> dict:
    """Every n_g on one data set and seed (one split per seed); the JSON-ready record."""
    t0 = time.time()
    split_key, cell_key = jax.random.split(jax.random.key(seed))
    data = settings.load_setting(name)
    axes = settings.resolve_axes(data)
    group = settings.group_of_rows(data.frame, axes)
    label = data.y
    small = tuple(dict(cfg.small_groups)[name])
    pool, val, test = controlled_split(split_key, group, label, cfg)
    cells = []
    for n_g in cfg.n_g:
        cell = run_cell(
            jax.random.fold_in(cell_key, 0 if n_g == ALL else int(n_g)),
            data,
            group,
            label,
            pool,
            val,
            test,
            small,
            n_g,
            cfg,
        )
        cells.append(cell)
        m = cell["methods"]
        log(
            f"  [{name} seed {seed} n_g {n_g}] {cell['seconds']:.0f}s  DF "
            + "  ".join(f"{k} {m[k]['df_tpr']:.3f}" for k in METHODS)
        )
    return {
        "dataset": name,
        "seed": seed,
        "axes": settings.format_axes(axes),
        "small_groups": list(small),
        "test_counts": [
            [int(np.sum((group[test] == g) & (label[test] == y))) for y in (0, 1)]
            for g in range(2 ** len(axes))
        ],
        "cells": cells,
        "seconds": time.time() - t0,
    }


# ------------------------------------------------------------------------------ reporting

METRICS = (
    ("ba", "balanced_accuracy", "BA"),
    ("df", "df_tpr", "DF (TPR)"),
    ("if", "if_tpr_0.5", "IF_0.5 (TPR)"),
    ("worst", "worst_group_tpr", "worst-group TPR"),
    ("small", "small_groups_tpr", "mean TPR of the small groups"),
)
# paired differences of every metric against these (column tag), and of DF alone
# against the controls of the hierarchy: other sources of rows for the same cells
REFERENCES = (("unconstrained", ""), ("equal_sampling", "_vs_es"))
DF_REFERENCES = (
    ("wrong_parents_es", "_vs_wrong_parents"),
    ("oversampling", "_vs_oversampling"),
    ("ddpm_es", "_vs_ddpm"),
)


def _metric_values(test: dict, small: list[int]) -> dict:
    """The `METRICS` of one method's test record; the small groups' TPR from its per-group
    TPRs."""
    values = {col: test[col] for _, col, _ in METRICS if col in test}
    values["small_groups_tpr"] = float(np.mean(np.asarray(test["group_tpr"])[small]))
    return values


def _interval(values: np.ndarray, boot: np.ndarray) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of the seed mean; `boot` [B, S] resampled seed indices."""
    means = np.nanmean(values[boot], axis=1)
    return float(np.nanmean(values)), *map(float, np.nanpercentile(means, (2.5, 97.5)))


def summarise(records: list[dict], n_bootstrap: int) -> pd.DataFrame:
    """One row per (data set, method, n_g): seed means with 95% bootstrap intervals, and
    the paired differences against the unconstrained MLP and against equal sampling.

    The seeds are resampled with replacement (`n_bootstrap` times, numpy seed 0), the same
    resample for every method, so a difference's interval is that of a paired design.
    """
    long = pd.DataFrame(
        [
            {"dataset": r["dataset"], "seed": r["seed"], "n_g": str(c["n_g"]), "method": m}
            | _metric_values(res, r["small_groups"])
            for r in records
            for c in r["cells"]
            for m, res in c["methods"].items()
        ]
    )
    rows = []
    for (dataset, n_g), part in long.groupby(["dataset", "n_g"], sort=False):
        wide = {
            col: part.pivot(index="seed", columns="method", values=col) for _, col, _ in METRICS
        }
        seeds = len(wide["df_tpr"])
        rng = np.random.default_rng(0)
        boot = rng.integers(0, seeds, size=(n_bootstrap, seeds))
        for method in [m for m in METHODS if m in wide["df_tpr"].columns]:
            row = {"dataset": dataset, "method": method, "n_g": n_g, "seeds": seeds}
            for short, col, _ in METRICS:
                v = wide[col][method].to_numpy(np.float64)
                row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = _interval(v, boot)
                for ref, tag in REFERENCES + (DF_REFERENCES if short == "df" else ()):
                    d = v - wide[col][ref].to_numpy(np.float64)
                    mean, lo, hi = _interval(d, boot)
                    row[f"{short}_diff{tag or '_vs_unconstrained'}"] = mean
                    row[f"{short}_diff{tag}_ci_low"] = lo
                    row[f"{short}_diff{tag}_ci_high"] = hi
            base = float(np.nanmean(wide["df_tpr"]["unconstrained"]))
            row["df_change_vs_unconstrained_pct"] = 100.0 * row["df_diff_vs_unconstrained"] / base
            rows.append(row)
    return pd.DataFrame(rows)


def _ci(r: dict, col: str, lo: str, hi: str, scale: float = 1.0) -> str:
    return f"{scale * r[col]:+.3f} [{scale * r[lo]:+.3f}, {scale * r[hi]:+.3f}]"


def verdicts(curve: pd.DataFrame) -> list[str]:
    """The issue's targets read off the curve: augmentation + ES against the MLP at
    n_g <= 100, against wrong parents at every n_g, and against oversampling and the DDPM
    rows at n_g <= 50; one line each."""
    lines = ["### Augmentation + ES against the unconstrained MLP (n_g <= 100)", ""]
    aug = [r for r in curve.to_dict("records") if r["method"] == "augmentation_es"]
    small = [r for r in aug if r["n_g"] != ALL and int(r["n_g"]) <= 100]
    for r in small:
        df_ok = r["df_change_vs_unconstrained_pct"] <= -25 and r["df_diff_ci_high"] < 0
        ba_ok = r["ba_diff_vs_unconstrained"] >= -0.015
        worst_ok = r["worst_diff_vs_unconstrained"] >= 0
        diff = _ci(r, "df_diff_vs_unconstrained", "df_diff_ci_low", "df_diff_ci_high")
        lines.append(
            f"- {r['dataset']}, n_g = {r['n_g']}: DF {r['df_change_vs_unconstrained_pct']:+.1f}% "
            f"vs the MLP, paired difference {diff} "
            f"({'meets' if df_ok else 'misses'} -25% with the interval below 0); "
            f"BA {100 * r['ba_diff_vs_unconstrained']:+.2f} pts "
            f"({'at most' if ba_ok else 'more than'} 1.5 below); "
            f"worst-group TPR {r['worst_diff_vs_unconstrained']:+.3f} "
            f"({'not lower' if worst_ok else 'lower'})."
        )
    for tag, name, rows in (
        ("_vs_wrong_parents", "wrong parents", aug),
        ("_vs_oversampling", "oversampling", [r for r in small if int(r["n_g"]) <= 50]),
        ("_vs_ddpm", "DDPM rows + ES", [r for r in small if int(r["n_g"]) <= 50]),
    ):
        lines += ["", f"### Augmentation + ES against {name} (paired DF difference)", ""]
        for r in rows:
            d, lo, hi = r[f"df_diff{tag}"], r[f"df_diff{tag}_ci_low"], r[f"df_diff{tag}_ci_high"]
            verdict = "lower" if hi < 0 else "higher" if lo > 0 else "inside the noise"
            lines.append(
                f"- {r['dataset']}, n_g = {r['n_g']}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] ({verdict})"
            )
    return lines


def markdown(curve: pd.DataFrame, header: str) -> str:
    """curve.md: the targets' verdicts, then one table per data set."""
    out = [header, "", "## Targets", ""]
    out += verdicts(curve)
    head = [
        "n_g",
        "method",
        "BA",
        "DF (TPR)",
        "ΔDF vs MLP [95% CI]",
        "ΔDF %",
        "ΔDF vs ES [95% CI]",
        "worst-group TPR",
        "Δworst vs MLP [95% CI]",
        "small-group TPR",
        "ΔBA vs MLP (pts)",
    ]
    for dataset, part in curve.groupby("dataset", sort=False):
        out += ["", f"## {dataset}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in part.to_dict("records"):
            cells = [
                r["n_g"],
                METHOD_NAMES[r["method"]],
                f"{r['balanced_accuracy']:.3f}",
                f"{r['df_tpr']:.3f} [{r['df_tpr_ci_low']:.3f}, {r['df_tpr_ci_high']:.3f}]",
                _ci(r, "df_diff_vs_unconstrained", "df_diff_ci_low", "df_diff_ci_high"),
                f"{r['df_change_vs_unconstrained_pct']:+.1f}%",
                _ci(r, "df_diff_vs_es", "df_diff_vs_es_ci_low", "df_diff_vs_es_ci_high"),
                f"{r['worst_group_tpr']:.3f}",
                _ci(r, "worst_diff_vs_unconstrained", "worst_diff_ci_low", "worst_diff_ci_high"),
                f"{r['small_groups_tpr']:.3f}",
                f"{100 * r['ba_diff_vs_unconstrained']:+.2f}",
            ]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


COLORS = dict(
    zip(
        METHODS,
        (
            "tab:gray",
            "tab:blue",
            "tab:cyan",
            "tab:purple",
            "tab:olive",
            "tab:orange",
            "tab:green",
            "tab:red",
        ),
        strict=True,
    )
)


def plot(curve: pd.DataFrame, path: Path) -> None:
    """Each metric against n_g (mean and 95% interval over seeds), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(curve.dataset))
    fig, axes = plt.subplots(
        len(names), len(METRICS), figsize=(4.2 * len(METRICS), 3.6 * len(names)), squeeze=False
    )
    for row, name in enumerate(names):
        part = curve[curve.dataset == name]
        ticks = list(dict.fromkeys(part.n_g))
        for col, (_, metric, title) in enumerate(METRICS):
            ax = axes[row, col]
            for j, method in enumerate(METHODS):
                m = part[part.method == method]
                x = np.array([ticks.index(v) for v in m.n_g]) + (j - 3.5) * 0.04
                ax.errorbar(
                    x,
                    m[metric],
                    yerr=[m[metric] - m[f"{metric}_ci_low"], m[f"{metric}_ci_high"] - m[metric]],
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=COLORS[method],
                    label=METHOD_NAMES[method],
                )
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlabel("training rows per small group (n_g)")
            ax.set_title(f"{name}: {title}")
        axes[row, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------ main

TABLES = ("curve.csv", "curve.md", "curve.png")


def main(argv: list[str] | None = None) -> int:
    """Run a preset; write the JSON records, curve.csv, curve.md and curve.png to --out
    (default runs/intersectional_curve/PRESET)."""
    parser = preset_parser("experiments.intersectional_curve", __doc__, PRESETS, NAME)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    cfg = preset_config(parser, args, PRESETS, dict(PRESETS[args.preset].small_groups))
    out = common.out_folder(args, NAME)
    t0 = time.time()
    tables = [t for t in TABLES if not (args.no_plot and t.endswith(".png"))]
    records, replace = common.run_records(args, cfg, out, NAME, tables, run_one)
    curve = summarise(records, cfg.n_bootstrap)
    with common.table_file(out / "curve.csv", overwrite=replace) as tmp:
        curve.to_csv(tmp, index=False)
    wall = sum(r["seconds"] for r in records) if args.report_only else time.time() - t0
    header = (
        f"# Intersectional augmentation under controlled under-representation, preset "
        f"`{args.preset}`\n\n"
        f"Data sets {', '.join(cfg.datasets)}; seeds {', '.join(map(str, cfg.seeds))}; "
        f"small groups {dict(cfg.small_groups)} cut to n_g training rows; wall time "
        f"{wall / 60:.1f} min. Means over seeds with 95% bootstrap intervals (seeds "
        "resampled); Δ: paired differences on the same splits. DF: differential fairness of "
        "the TPR over all groups, smoothing (count+2)/(total+4); lower is fairer."
    )
    common.write_table(out / "curve.md", markdown(curve, header), overwrite=replace)
    if not args.no_plot:
        with common.table_file(out / "curve.png", overwrite=replace) as tmp:
            plot(curve, tmp)
    print((out / "curve.md").read_text())
    log(f"wall time {wall:.0f}s")
    return 0


if __name__ == "__main__":
    common.entry_point(main)
