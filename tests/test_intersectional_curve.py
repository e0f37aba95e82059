"""The controlled under-representation experiment: its design pieces and a quick run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments import intersectional_curve as exp
from fairjax.errors import FairjaxError
from fairjax.intersectional import augment, groups


def _toy(seed=0, sizes=((900, 400), (60, 30), (700, 320), (500, 500))):
    """group, label arrays with the given (negatives, positives) per group."""
    g, y = [], []
    for k, (neg, pos) in enumerate(sizes):
        g += [k] * (neg + pos)
        y += [0] * neg + [1] * pos
    order = np.random.default_rng(seed).permutation(len(g))
    return np.asarray(g)[order], np.asarray(y)[order]


def test_controlled_split_sizes_follow_the_rule():
    g, y = _toy()
    cfg = exp.CurveConfig()
    pool, val, test = exp.controlled_split(jax.random.key(0), g, y, cfg)
    assert len(np.intersect1d(pool, val)) == len(np.intersect1d(pool, test)) == 0
    assert len(np.intersect1d(val, test)) == 0
    assert len(pool) + len(val) + len(test) == len(g)
    for k in range(4):
        for lab in (0, 1):
            c = int(np.sum((g == k) & (y == lab)))
            want_test = min(max(150, int(np.ceil(0.2 * c))), c // 2)
            want_val = min(max(50, int(np.ceil(0.1 * c))), (c - want_test) // 2)
            cell = lambda idx, k=k, lab=lab: int(np.sum((g[idx] == k) & (y[idx] == lab)))
            assert cell(test) == want_test and cell(val) == want_val
    # a cell of 400 positives gives 150 test rows; a cell of 30 gives half of it
    assert np.sum((g[test] == 0) & (y[test] == 1)) == 150
    assert np.sum((g[test] == 1) & (y[test] == 1)) == 15
    again = exp.controlled_split(jax.random.key(0), g, y, cfg)
    assert all(np.array_equal(a, b) for a, b in zip((pool, val, test), again, strict=True))


def test_subsample_cuts_only_the_small_groups_with_labels_in_proportion():
    g, y = _toy()
    pool = np.arange(len(g))
    for n_g in (25, 100):
        kept = exp.subsample(jax.random.key(1), pool, g, y, (2, 3), n_g)
        assert np.isin(kept, pool).all() and len(np.unique(kept)) == len(kept)
        for k in (0, 1):
            assert np.sum(g[kept] == k) == np.sum(g == k)
        for k, share in ((2, 320 / 1020), (3, 0.5)):
            rows = kept[g[kept] == k]
            assert len(rows) == n_g
            assert np.sum(y[rows]) == round(n_g * share)
    assert np.array_equal(exp.subsample(jax.random.key(1), pool, g, y, (2,), "all"), pool)
    # a group smaller than n_g keeps what it has
    assert np.sum(g[exp.subsample(jax.random.key(1), pool, g, y, (1,), 200)] == 1) == 90
    with pytest.raises(FairjaxError, match="n_g"):
        exp.subsample(jax.random.key(1), pool, g, y, (2,), 1)


def test_top_up_counts_and_duplicates_touch_only_the_small_groups():
    count = np.array([[900, 400], [60, 30], [700, 320], [20, 5]])
    counts = exp.top_up_counts(count, (1, 3), 100)
    np.testing.assert_array_equal(counts, [[0, 0], [40, 70], [0, 0], [80, 95]])
    g, y = _toy(sizes=((9, 4), (6, 3), (7, 3), (2, 5)))
    x = np.arange(len(g), dtype=np.float32)[:, None]
    rows = groups.group_rows(x, g, y, 4)
    idx = exp.duplicate_rows(jax.random.key(2), rows, np.array([[0, 0], [5, 0], [0, 0], [0, 7]]))
    assert len(idx) == 12
    cells = list(zip(np.asarray(rows.group)[idx], np.asarray(rows.label)[idx], strict=True))
    assert cells.count((1, 0)) == 5 and cells.count((3, 1)) == 7


def test_cell_weights_give_every_cell_the_same_total():
    g, y = _toy(sizes=((90, 10), (6, 3), (0, 4)))
    rows = groups.group_rows(np.zeros((len(g), 1)), g, y, 3)
    w = np.asarray(augment.cell_weights(rows), np.float64)
    cells = 2 * np.asarray(rows.group) + np.asarray(rows.label)
    totals = [w[cells == c].sum() for c in np.unique(cells)]
    np.testing.assert_allclose(totals, len(g) / 5, rtol=1e-5)  # 5 non-empty cells
    assert w.mean() == pytest.approx(1.0, rel=1e-5)


def test_reweighted_training_runs_and_differs_from_uniform():
    key = jax.random.key(3)
    g, y = _toy(sizes=((300, 20), (40, 40)))
    x = jax.random.normal(key, (len(g), 3)) + jnp.asarray(y)[:, None]
    rows = groups.group_rows(x, g, y, 2)
    fits = {
        s: augment.make_classifier_trainer(sampling=s, max_epochs=2, patience=2, batch_size=32)(
            key, rows, x, y
        )
        for s in ("uniform", "reweighted")
    }
    assert not np.allclose(fits["uniform"].train_loss, fits["reweighted"].train_loss)
    with pytest.raises(FairjaxError, match="sampling"):
        augment.make_classifier_trainer(sampling="weights")


def _record(dataset, seed, values):
    """A record with one n_g cell whose methods have the given DF (other metrics 0.5)."""
    methods = {
        m: {
            "balanced_accuracy": 0.5,
            "df_tpr": v,
            "if_tpr_0.5": 0.1,
            "worst_group_tpr": 0.5,
            "group_tpr": [0.5, v, 0.7, 0.0],
        }
        for m, v in values.items()
    }
    cells = [{"n_g": 25, "methods": methods}]
    return {"dataset": dataset, "seed": seed, "small_groups": [1, 2], "cells": cells}


def test_summarise_paired_differences():
    rng = np.random.default_rng(0)
    records = []
    for seed in range(10):
        base = 0.5 + 0.2 * rng.standard_normal()  # seed noise shared by every method
        values = {m: base for m in exp.METHODS}
        values["augmentation_es"] = base - 0.1  # a constant paired shift
        values["oversampling"] = base + 0.05 * rng.standard_normal()
        records.append(_record("toy", seed, values))
    curve = exp.summarise(records, 500).set_index("method")
    aug = curve.loc["augmentation_es"]
    assert aug["df_diff_vs_unconstrained"] == pytest.approx(-0.1)
    assert aug["df_diff_ci_low"] == pytest.approx(-0.1) and aug["df_diff_ci_high"] == pytest.approx(
        -0.1
    )
    # the unpaired interval of the mean is much wider than the paired one
    assert aug["df_tpr_ci_high"] - aug["df_tpr_ci_low"] > 0.1
    pct = 100 * -0.1 / curve.loc["unconstrained", "df_tpr"]
    assert aug["df_change_vs_unconstrained_pct"] == pytest.approx(pct)
    over = curve.loc["oversampling"]
    d = np.array(
        [
            r["cells"][0]["methods"]["oversampling"]["df_tpr"]
            - r["cells"][0]["methods"]["unconstrained"]["df_tpr"]
            for r in records
        ]
    )
    assert over["df_diff_vs_unconstrained"] == pytest.approx(d.mean())
    assert over["df_diff_ci_low"] < d.mean() < over["df_diff_ci_high"]
    half_width = 1.96 * d.std(ddof=1) / np.sqrt(len(d))  # normal approximation
    assert over["df_diff_ci_high"] - over["df_diff_ci_low"] == pytest.approx(
        2 * half_width, rel=0.35
    )
    assert curve.loc["equal_sampling", "df_diff_vs_es"] == 0.0
    # the small groups' TPR is the mean over the record's small groups (1 and 2)
    dfs = [r["cells"][0]["methods"]["augmentation_es"]["df_tpr"] for r in records]
    assert aug["small_groups_tpr"] == pytest.approx(np.mean([(v + 0.7) / 2 for v in dfs]))


def test_quick_preset_writes_the_curve(tmp_path):
    assert exp.main(["--preset", "quick", "--out", str(tmp_path), "--no-plot"]) == 0
    curve = pd.read_csv(tmp_path / "curve.csv", dtype={"n_g": str})
    required = [
        "dataset",
        "method",
        "n_g",
        "balanced_accuracy",
        "df_tpr",
        "worst_group_tpr",
        "df_diff_vs_unconstrained",
        "df_diff_ci_low",
        "df_diff_ci_high",
    ]
    assert set(required) <= set(curve.columns)
    assert len(curve) == len(exp.METHODS) * 2 and set(curve.n_g) == {"25", "all"}
    rec = json.loads((tmp_path / "compas_seed0.json").read_text())
    small = rec["cells"][0]
    count = np.array(small["train_counts"])
    assert count[list(rec["small_groups"])].sum() == 2 * 25
    # every small-group cell is topped up to the preset's 200 rows and nothing else is
    synth = np.array(small["synthetic_counts"])
    np.testing.assert_array_equal(
        synth, exp.top_up_counts(count, tuple(rec["small_groups"]), exp.PRESETS["quick"].top_up)
    )
    assert np.array(rec["test_counts"]).min() >= 1
    assert "## Targets" in (tmp_path / "curve.md").read_text()
    # the tables rebuild from the records alone
    before = (tmp_path / "curve.csv").read_bytes()
    assert (
        exp.main(["--preset", "quick", "--out", str(tmp_path), "--no-plot", "--report-only"]) == 0
    )
    assert (tmp_path / "curve.csv").read_bytes() == before
