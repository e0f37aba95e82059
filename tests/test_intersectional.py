"""Tests for fairjax.intersectional: hierarchy by hand, generator forward passes, MMD
training on a known mixture, equal sampling frequencies, augmentation counts, model
selection, settings, save/load, and one tiny end-to-end experiment run."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from fairjax.data import Schema, TabularDataset
from fairjax.errors import FairjaxError
from fairjax.intersectional import (
    augment,
    distinguish,
    generators,
    groups,
    pipeline,
    settings,
)


def _sets(member_row):
    """[k, G] membership of one group -> list of sets of group ids."""
    return [set(np.flatnonzero(m).tolist()) for m in member_row]


# ----------------------------------------------------------------------------- hierarchy


def test_group_bits_and_ids_round_trip():
    bits = groups.group_bits(3)
    np.testing.assert_array_equal(bits[5], [1, 0, 1])
    np.testing.assert_array_equal(bits[3], [0, 1, 1])
    np.testing.assert_array_equal(groups.group_ids(bits), np.arange(8))


def test_parents_k2_by_hand():
    # groups 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1); parent i marginalises axis i
    expected = {
        0: [{0, 2}, {0, 1}],
        1: [{1, 3}, {0, 1}],
        2: [{0, 2}, {2, 3}],
        3: [{1, 3}, {2, 3}],
    }
    member = groups.parents(2)
    assert member.shape == (4, 2, 4)
    for g, want in expected.items():
        assert _sets(member[g]) == want


def test_parents_k3_by_hand():
    member = groups.parents(3)
    assert member.shape == (8, 3, 8)
    # g = 5 = (1, 0, 1): (*, 0, 1) = {1, 5}; (1, *, 1) = {5, 7}; (1, 0, *) = {4, 5}
    assert _sets(member[5]) == [{1, 5}, {5, 7}, {4, 5}]
    # g = 2 = (0, 1, 0): (*, 1, 0) = {2, 6}; (0, *, 0) = {0, 2}; (0, 1, *) = {2, 3}
    assert _sets(member[2]) == [{2, 6}, {0, 2}, {2, 3}]
    bits = groups.group_bits(3)
    for g in range(8):
        for i, s in enumerate(_sets(member[g])):
            assert g in s and len(s) == 2
            (h,) = s - {g}
            np.testing.assert_array_equal(np.flatnonzero(bits[g] != bits[h]), [i])


def test_flipped_and_deeper_ancestors_by_hand():
    flipped = groups.flipped_groups(3)
    assert _sets(flipped[5]) == [{1}, {7}, {4}]
    assert not any(flipped[g, :, g].any() for g in range(8))  # never the group itself
    deep = groups.ancestors(3, 2)
    # combinations (0, 1), (0, 2), (1, 2) marginalised; g = 5 keeps b2 = 1, b1 = 0, b0 = 1
    assert _sets(deep[5]) == [{1, 3, 5, 7}, {0, 1, 4, 5}, {4, 5, 6, 7}]
    assert groups.ancestors(3, 3).all()
    with pytest.raises(FairjaxError, match="depth"):
        groups.ancestors(3, 4)
    np.testing.assert_array_equal(groups.source_sets(3, "ancestors-2"), deep)
    with pytest.raises(FairjaxError, match="sources"):
        groups.source_sets(3, "cousins")


def test_draw_rows_is_uniform_over_the_union_of_cells():
    # cells (g, y): (0, 1) has 3 rows, (1, 0) 1 row, (1, 1) 6 rows, the rest empty
    group = np.array([0] * 3 + [1] * 7)
    label = np.array([1] * 3 + [0] + [1] * 6)
    rows = groups.group_rows(np.arange(10, dtype=np.float32)[:, None], group, label, 2)
    np.testing.assert_array_equal(rows.count, [[0, 3], [1, 6]])
    cells = jnp.array([[False, True], [True, False]])  # 3 + 1 rows
    idx, total = jax.jit(groups.draw_rows, static_argnums=4)(
        jax.random.key(0), rows.start, rows.count, cells, 40_000
    )
    assert int(total) == 4
    freq = np.bincount(np.asarray(idx), minlength=10) / 40_000
    np.testing.assert_allclose(freq[:4], 0.25, atol=0.01)
    assert freq[4:].sum() == 0
    _, empty = groups.draw_rows(
        jax.random.key(1), rows.start, rows.count, jnp.zeros((2, 2), bool), 5
    )
    assert int(empty) == 0


# ---------------------------------------------------------------------------- generators


XS = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # k = 2 source examples, d = 3


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("simple", {"lam": jnp.array([0.25, 0.75])}, [3.25, 4.25, 5.25]),
        ("per-feature", {"w": jnp.array([1.0, 2.0, 0.5])}, [5.0, 14.0, 4.5]),
        (
            "linear",
            {"W": jnp.array([[1.0, 0, 0], [0, 0, 1], [0, 2, 0]])},
            [5.0, 18.0, 7.0],  # (5, 7, 9) @ W
        ),
    ],
)
def test_parameterisation_forward_by_hand(name, params, expected):
    spec = generators.PARAMETERISATIONS[name]
    np.testing.assert_allclose(spec.apply(params, XS), expected, rtol=1e-6)
    # every parameterisation starts at the mean of its k inputs
    np.testing.assert_allclose(spec.apply(spec.init(2, 3), XS), [2.5, 3.5, 4.5], rtol=1e-6)


def test_parameter_sharing_layouts():
    np.testing.assert_array_equal(generators.cell_param_index(3, "label"), [[0, 1]] * 3)
    np.testing.assert_array_equal(generators.cell_param_index(3, "group"), [[0, 1], [2, 3], [4, 5]])
    p = generators.init_generator_params(
        "per-feature", num_sources=3, dim=5, num_groups=8, sharing="group"
    )
    assert p["w"].shape == (16, 5)
    np.testing.assert_allclose(p["w"], 1 / 3)


def _mixture_toy(seed=0):
    """k = 2; group 0 = 0.7 * (a row like group 2) + 0.3 * (a row like group 1).

    Parent 0 of group 0 is {0, 2} (mostly group 2 rows), parent 1 is {0, 1} (mostly group
    1 rows), so the simple generator of group 0 should learn lambda ~ (0.7, 0.3).
    """
    rng = np.random.default_rng(seed)
    means = {1: (0.0, 4.0), 2: (4.0, 0.0), 3: (4.0, 4.0)}
    xs, gs = [], []
    for g, m in means.items():
        xs.append(rng.normal(m, 0.5, (1500, 2)))
        gs.append(np.full(1500, g))
    xs.append(0.7 * rng.normal(means[2], 0.5, (150, 2)) + 0.3 * rng.normal(means[1], 0.5, (150, 2)))
    gs.append(np.zeros(150, int))
    x, g = np.concatenate(xs), np.concatenate(gs)
    return groups.group_rows(x, g, np.ones(len(x), int), 4)


def test_mmd_training_recovers_known_mixture_weights():
    rows = _mixture_toy()
    members = groups.parents(2)
    fit = generators.fit_generator(
        jax.random.key(0),
        rows,
        members,
        parameterisation="simple",
        sharing="group",
        bandwidths=jnp.array([0.5, 1.0, 2.0, 4.0]),
        batch_size=64,
        steps=300,
        lr=0.05,
        eval_every=150,
    )
    lam = np.asarray(fit.params["lam"][1])  # set of cell (group 0, label 1)
    np.testing.assert_allclose(lam, [0.7, 0.3], atol=0.08)
    assert fit.losses[-50:].mean() < 0.5 * fit.losses[:10].mean()
    assert fit.best_step == 300 and fit.losses.shape == (300,)


def test_generator_scores_the_initial_params_ties_keep_them_and_nan_never_wins():
    # same settings and chunk as the test above: its compiled chunk is reused
    rows, members = _mixture_toy(), groups.parents(2)

    def fit(scores):
        it = iter(scores)
        return generators.fit_generator(
            jax.random.key(0),
            rows,
            members,
            parameterisation="simple",
            sharing="group",
            bandwidths=jnp.array([0.5, 1.0, 2.0, 4.0]),
            batch_size=64,
            steps=150,
            lr=0.05,
            eval_every=150,
            score_fn=lambda params: next(it),
        )

    tie = fit([0.5, 0.5])  # initial params, then after 150 steps
    assert tie.best_step == 0 and tie.eval_steps.tolist() == [0, 150]
    np.testing.assert_array_equal(tie.params["lam"], np.full((8, 2), 0.5, np.float32))
    assert len(tie.losses) == 150 and tie.record.eval_steps.tolist() == [150]
    better = fit([float("nan"), 1.0])  # a nan initial score does not block the checkpoint
    assert better.best_step == 150 and not np.allclose(better.params["lam"], 0.5)


def test_parent_term_weight_beta():
    rows = _mixture_toy()
    params = generators.init_generator_params(
        "simple", num_sources=2, dim=2, num_groups=4, sharing="label"
    )
    data = generators.GeneratorData(rows, jnp.asarray(groups.parents(2)), jnp.array([1.0, 2.0]))
    loss = lambda beta: generators.make_generator_loss(
        parameterisation="simple", sharing="label", batch_size=32, beta=beta
    )
    both = jax.jit(lambda p, d, k: (loss(0.0)(p, d, k), loss(1.0)(p, d, k)))  # one compile
    l0, l1 = (float(v) for v in both(params, data, jax.random.key(3)))
    # same draws, plus a nonnegative (biased) MMD to each parent: strictly larger here
    # since the initial mean of two far-apart parents matches neither
    assert l1 > l0 + 0.1
    with pytest.raises(FairjaxError, match="beta"):
        generators.make_generator_loss(parameterisation="simple", sharing="label", beta=-1.0)


def test_trainable_cells_with_empty_sources():
    # group 3 has no label-0 rows and group 1 none at all: the label-0 sources of group 3
    # are {1, 3} (empty) and {2, 3}; group 1 can still be generated from its parents
    count = np.array([[1, 1], [0, 0], [1, 1], [0, 2]])
    cells = np.asarray(generators.trainable_cells(count, groups.parents(2)))
    np.testing.assert_array_equal(
        cells[0], [[True, True], [False, True], [True, True], [False, True]]
    )
    np.testing.assert_array_equal(
        cells[1], [[False, False], [False, False], [False, False], [False, True]]
    )


# ------------------------------------------------------------------------ equal sampling


def test_equal_sampling_batches_are_uniform_over_groups_and_balanced():
    # 4 groups; group 2 has no positives, so only groups 0, 1 and 3 are eligible
    group = np.repeat([0, 0, 1, 1, 2, 3, 3], [50, 5, 3, 200, 40, 7, 9])
    label = np.repeat([0, 1, 0, 1, 0, 0, 1], [50, 5, 3, 200, 40, 7, 9])
    rows = groups.group_rows(np.zeros((len(group), 1)), group, label, 4)
    batch_fn = augment.make_equal_batch_fn(rows.start, rows.count, 8)
    idx = np.asarray(jax.jit(jax.vmap(batch_fn))(jax.random.split(jax.random.key(0), 6000)))
    g = np.asarray(rows.group)[idx]
    y = np.asarray(rows.label)[idx]
    assert (g == g[:, :1]).all()  # one group per batch
    assert (y[:, :4] == 1).all() and (y[:, 4:] == 0).all()  # half positives, then negatives
    counts = np.bincount(g[:, 0], minlength=4)
    assert counts[2] == 0
    # chi-square against uniform over the 3 eligible groups (2 dof; 13.8 = p 0.001)
    expected = 6000 / 3
    chi2 = sum((counts[j] - expected) ** 2 / expected for j in (0, 1, 3))
    assert chi2 < 13.8
    # within a cell, rows are uniform: the 5 positives of group 0 each ~ 1/5
    pos0 = idx[g[:, 0] == 0][:, :4].ravel()
    freq = np.bincount(pos0 - int(rows.start[0, 1]), minlength=5) / pos0.size
    np.testing.assert_allclose(freq, 0.2, atol=0.03)


def test_uniform_batches_and_odd_batch_size():
    idx = jax.jit(augment.make_uniform_batch_fn(10, 20_000))(jax.random.key(0))
    np.testing.assert_allclose(np.bincount(np.asarray(idx), minlength=10) / 20_000, 0.1, atol=0.01)
    with pytest.raises(FairjaxError, match="even"):
        augment.make_equal_batch_fn(jnp.zeros((2, 2), int), jnp.ones((2, 2), int), 7)


def test_classifier_trainer_learns_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    g = (x[:, 2] > 0).astype(int)
    rows = groups.group_rows(x[:400], g[:400], y[:400], 2)
    train = augment.make_classifier_trainer(
        sampling="equal", hidden=(16,), lr=1e-2, batch_size=32, max_epochs=8, patience=3
    )
    a = train(jax.random.key(0), rows, x[400:], y[400:])
    b = train(jax.random.key(0), rows, x[400:], y[400:])
    assert a.val_balanced_accuracy.max() > 0.9
    chex.assert_trees_all_equal(a.params, b.params)
    assert a.val_balanced_accuracy[a.best_epoch] == a.val_balanced_accuracy.max()


# ----------------------------------------------------------------- augmentation, selection


def test_augmentation_counts_both_modes():
    count = np.array([[10, 2], [0, 7], [30, 40]])
    np.testing.assert_array_equal(
        augment.augmentation_counts(count, 20, mode="add"), [[20, 20], [20, 20], [20, 20]]
    )
    np.testing.assert_array_equal(
        augment.augmentation_counts(count, 20, mode="top-up"), [[10, 18], [20, 13], [0, 0]]
    )
    can = np.array([[True, True], [False, True], [True, True]])
    np.testing.assert_array_equal(
        augment.augmentation_counts(count, 20, mode="top-up", can_generate=can),
        [[10, 18], [0, 13], [0, 0]],
    )
    with pytest.raises(FairjaxError, match="mode"):
        augment.augmentation_counts(count, 5, mode="double")


def test_generate_counts_shapes_and_cells(tiny_model):
    counts = np.array([[3, 0], [0, 1], [0, 0], [2, 2], [0, 0], [1, 0], [0, 0], [600, 0]])
    x, g, y = tiny_model.generate(jax.random.key(0), counts)
    assert x.shape == (counts.sum(), tiny_model.encoder.dim)
    np.testing.assert_array_equal(np.bincount(2 * g + y, minlength=16), counts.ravel())
    again = tiny_model.generate(jax.random.key(0), counts)
    np.testing.assert_array_equal(x, again[0])


def test_augmented_rows_counts_in_both_modes(tiny_model):
    count = np.asarray(tiny_model.rows.count)
    ok = tiny_model.can_generate()
    for mode in ("add", "top-up"):
        rows = pipeline.augmented_rows(jax.random.key(0), tiny_model, 30, mode=mode)
        want = count + augment.augmentation_counts(count, 30, mode=mode, can_generate=ok)
        np.testing.assert_array_equal(rows.count, want)
    # the real rows come first within each cell, unchanged
    rows = pipeline.augmented_rows(jax.random.key(0), tiny_model, 30)
    s, c = int(rows.start[1, 1]), int(count[1, 1])
    np.testing.assert_array_equal(
        rows.x[s : s + c],
        tiny_model.rows.x[int(tiny_model.rows.start[1, 1]) : int(tiny_model.rows.start[1, 1]) + c],
    )


def test_select_model_on_a_hand_table():
    ba = [0.80, 0.78, 0.76, 0.79, np.nan]
    df = [0.50, 0.30, 0.10, 0.30, 0.00]
    # eligible: BA >= 0.77 -> candidates 0, 1, 3; lowest DF 0.30 tied -> higher BA (3)
    assert augment.select_model(ba, df, tolerance=0.03) == 3
    assert augment.select_model(ba, df, tolerance=0.05) == 2
    assert augment.select_model(ba, df, tolerance=0.0) == 0
    assert augment.select_model([0.7, 0.7], [np.nan, 0.4]) == 1
    with pytest.raises(FairjaxError):
        augment.select_model([0.7], [0.1, 0.2])


# ------------------------------------------------------------------------------ settings


def test_axis_specs_and_binarise():
    frame = pd.DataFrame(
        {
            "sex": ["M", "F", "F", "M"],
            "race": ["a", "b", "c", "a"],
            "age": [20, 60, 51, 50],
            "y": [0, 1, 1, 0],
        }
    )
    axes = settings.parse_axes("sex, race==a, age>50", frame)
    assert [a.labels for a in axes] == [("F", "M"), ("not a", "a"), ("<=50", ">50")]
    np.testing.assert_array_equal(
        settings.axis_bits(frame, axes), [[1, 1, 0], [0, 0, 1], [0, 0, 1], [1, 1, 0]]
    )
    assert settings.format_axes(axes) == "sex==M,race==a,age>50"
    schema = Schema(
        label="y", sensitive=("sex",), categorical=("sex", "race", "y"), numeric=("age",)
    )
    ds = TabularDataset(frame, schema)
    b = settings.binarise(ds, axes)
    assert b.schema.sensitive == ("sex", "race", "age") and "age" in b.schema.categorical
    assert b.frame["age"].tolist() == ["<=50", ">50", ">50", "<=50"]
    np.testing.assert_array_equal(
        settings.axis_bits(b.frame, axes), settings.axis_bits(frame, axes)
    )
    assert settings.binarise(b, axes).frame.equals(b.frame)  # idempotent
    with pytest.raises(FairjaxError, match="numeric"):
        settings.parse_axes("race>3", frame)
    with pytest.raises(FairjaxError, match="exactly 2"):
        settings.parse_axes("race", frame)
    with pytest.raises(FairjaxError, match="not found"):
        settings.parse_axes("income==1", frame)


def test_bundled_compas_setting_counts():
    data = settings.load_setting("compas")
    axes = settings.resolve_axes(data)
    assert settings.format_axes(axes) == "sex==Male,race==African-American,age<25"
    g = settings.group_of_rows(data.frame, axes)
    # counted from the ProPublica-filtered file: (sex, AA, age < 25) groups
    np.testing.assert_array_equal(np.bincount(g), [525, 101, 404, 145, 1934, 437, 1962, 664])
    assert data.schema.label == "no_recidivism" and abs(data.y.mean() - 0.54488) < 1e-4
    assert "decile_score" not in data.frame and "age_cat" not in data.frame


def test_split_cells_is_stratified_disjoint_and_complete():
    cells = np.repeat([0, 1, 2], [100, 10, 55])
    parts = settings.split_cells(jax.random.key(0), cells, (0.6, 0.2, 0.2))
    allidx = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(165))
    np.testing.assert_array_equal(np.bincount(cells[parts[0]]), [60, 6, 33])
    np.testing.assert_array_equal(np.bincount(cells[parts[1]]), [20, 2, 11])


# ------------------------------------------------------------------ distinguishability


def test_group_c2st_chance_for_same_and_one_for_separated():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2, 300, 2)).astype(np.float32)
    fake = rng.normal(size=(2, 300, 2)).astype(np.float32)
    fake[1] += 3.0  # group 1: shifted
    w = np.ones((2, 300), np.float32)
    w[0, 250:] = 0.0  # padding in group 0
    ba = np.asarray(distinguish.make_group_c2st(steps=150)(jax.random.key(0), real, w, fake, w))
    assert abs(ba[0] - 0.5) < 0.1
    assert ba[1] > 0.95


# ---------------------------------------------------------------------------- pipeline


def _toy_dataset(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.integers(0, 2, n) for _ in range(3))
    num = rng.normal(size=n) + a - b
    cat = np.where(rng.random(n) < 0.3 + 0.4 * c, "u", "v")
    y = (num + rng.normal(size=n) > 0).astype(np.int64)
    frame = pd.DataFrame(
        {
            "a": np.where(a == 1, "A1", "A0"),
            "b": np.where(b == 1, "B1", "B0"),
            "c": np.where(c == 1, "C1", "C0"),
            "num": num,
            "cat": cat,
            "y": y,
        }
    )
    schema = Schema(
        label="y",
        sensitive=("a", "b", "c"),
        categorical=("a", "b", "c", "cat", "y"),
        numeric=("num",),
    )
    return TabularDataset(frame, schema, name="toy")


TINY = pipeline.IntersectionalConfig(batch_size=16, steps=40, eval_every=20, eval_rows=40)


@pytest.fixture(scope="module")
def tiny_model():
    return pipeline.fit(jax.random.key(0), _toy_dataset(), config=TINY, progress=False)


def test_fit_uses_axes_not_as_features(tiny_model):
    assert settings.format_axes(tiny_model.axes) == "a==A1,b==B1,c==C1"
    assert tiny_model.encoder.columns == ("cat", "num")
    assert tiny_model.params["lam"].shape == (2, 3)
    h = tiny_model.history
    assert h["eval_steps"] == [0, 20, 40] and h["best_step"] in (0, 20, 40)
    assert h["eval_scores"][h["eval_steps"].index(h["best_step"])] == min(h["eval_scores"])


def test_sample_decodes_valid_rows(tiny_model):
    frame = tiny_model.sample(jax.random.key(1), 300, label_proportion=0.25)
    assert list(frame.columns) == ["a", "b", "c", "cat", "y", "num"]
    assert set(frame["cat"]) <= {"u", "v"} and set(frame["a"]) <= {"A0", "A1"}
    assert abs(frame["y"].mean() - 0.25) < 0.08
    # groups drawn uniformly: 8 groups of ~37 rows
    counts = frame.groupby(["a", "b", "c"]).size().to_numpy()
    assert len(counts) == 8 and counts.min() > 15


def test_save_load_round_trip(tmp_path, tiny_model):
    tiny_model.save(tmp_path / "m")
    from fairjax import generators as registry

    loaded = registry.load(tmp_path / "m")
    assert loaded.axes == tiny_model.axes and loaded.config == tiny_model.config
    chex.assert_trees_all_close(loaded.params, tiny_model.params)
    chex.assert_trees_all_equal(loaded.rows, tiny_model.rows)
    key = jax.random.key(7)
    pd.testing.assert_frame_equal(loaded.sample(key, 50), tiny_model.sample(key, 50))
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["method"] == "intersectional"


def test_config_validation():
    with pytest.raises(FairjaxError, match="parameterisation"):
        pipeline.IntersectionalConfig(parameterisation="deep")
    with pytest.raises(FairjaxError, match="bandwidth_multipliers"):
        pipeline.IntersectionalConfig(bandwidth_multipliers="1,-2")
    cfg = dataclasses.replace(TINY, sources="flipped", sharing="group", beta=0.5)
    assert cfg.multipliers() == (0.5, 1.0, 2.0, 4.0)


# -------------------------------------------------------------------------- experiment


def test_experiment_quick_preset_runs(tmp_path):
    from experiments import intersectional as exp

    assert exp.main(["--preset", "quick", "--out", str(tmp_path), "--no-plot"]) == 0
    table = pd.read_csv(tmp_path / "table.csv")
    assert list(table["method"]) == list(exp.METHODS)
    rec = json.loads((tmp_path / "compas_seed0.json").read_text())
    test = rec["methods"]["augmentation_es"]["test"]
    assert len(test["group_tpr"]) == 8 and 0 <= test["df_tpr"] < 5
    assert rec["n_train"] + rec["n_val"] + rec["n_test"] + rec["n_dropped_unseen_category"] == 6172
    assert "| compas | Augmentation + ES |" in (tmp_path / "table.md").read_text()
