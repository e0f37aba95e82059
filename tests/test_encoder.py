"""Tests for fairjax.data.encoder: layout, hand-computed encodings, round trips, errors."""

import json
import statistics

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairjax.data import Schema, TabularDataset, TabularEncoder, fit_encoder
from fairjax.data.encoder import CDF_CLIP, SCALINGS
from fairjax.errors import FairjaxError

Z_MAX = statistics.NormalDist().inv_cdf(1 - CDF_CLIP)  # 5.1993...


def _toy():
    return pd.DataFrame(
        {
            "a": ["x", "y", "x"],
            "b": [1, 5, 3],
            "c": [0.5, 0.5, 2.0],
            "d": [3, 1, 3],
        }
    )


def _assert_numeric_close(decoded, original):
    """Floats within 1e-6 of |x| + column range.

    The encoding is float32 (~7 digits); relative to |x| alone a value near 0 in a wide
    column cannot come back closer. The hypothesis frames have <= 60 rows, so quantile
    scaling has <= 59 knot intervals and its error bound (module docstring) stays < 1e-6.
    Below float32's smallest normal number (~1.2e-38) nothing is resolved: a column
    spanning [0, 1e-284] is one float32 value, so that much absolute error is allowed.
    """
    x, y = original.to_numpy(np.float64), decoded.to_numpy(np.float64)
    tol = 1e-6 * (np.abs(x) + (x.max() - x.min())) + np.finfo(np.float32).tiny
    assert np.all(np.abs(y - x) <= tol), np.max(np.abs(y - x) - tol)


def _assert_round_trip(enc, frame):
    x = enc.encode(frame)
    assert x.dtype == np.float32
    assert x.shape == (len(frame), enc.dim)
    assert np.isfinite(x).all()
    for start, stop in enc.categorical_blocks():
        block = x[:, start:stop]
        assert set(np.unique(block)) <= {0.0, 1.0}
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
    out = enc.decode(x)
    assert tuple(out.columns) == enc.columns
    for c in enc.codecs:
        assert out[c.name].dtype == frame[c.name].dtype, c.name
        if c.kind == "categorical" or c.is_integer:
            assert out[c.name].tolist() == frame[c.name].tolist(), c.name
        else:
            _assert_numeric_close(out[c.name], frame[c.name])


# --- layout and hand-computed values ---------------------------------------------------


def test_layout_follows_frame_order():
    enc = TabularEncoder.fit(_toy(), categorical=["d", "a"], numeric=["c", "b"])
    assert enc.columns == ("a", "b", "c", "d")
    assert enc.dim == 6
    assert enc.slices() == {"a": slice(0, 2), "b": slice(2, 3), "c": slice(3, 4), "d": slice(4, 6)}
    assert enc.categorical_blocks() == [(0, 2), (4, 6)]
    assert enc.codecs[0].categories == ("x", "y")
    assert enc.codecs[3].categories == (1, 3)
    assert all(type(v) is int for v in enc.codecs[3].categories)


def test_quantile_encoding_by_hand():
    # b = [1, 5, 3]: knots [1, 3, 5] -> CDF [0, 1, 0.5] -> clipped -> [-5.199, 5.199, 0].
    # c = [0.5, 0.5, 2]: knots [0.5, 0.5, 2]; the tie at knots 0..1 gets the middle level
    # 0.25 -> ppf(0.25) = -0.6745; 2 -> CDF 1 -> 5.199.
    enc = TabularEncoder.fit(_toy(), categorical=["a", "d"], numeric=["b", "c"])
    q25 = statistics.NormalDist().inv_cdf(0.25)
    expected = [
        [1, 0, -Z_MAX, q25, 0, 1],
        [0, 1, Z_MAX, q25, 1, 0],
        [1, 0, 0.0, Z_MAX, 0, 1],
    ]
    np.testing.assert_allclose(enc.encode(_toy()), expected, rtol=1e-6)
    assert enc.codecs[1].knots == (1.0, 3.0, 5.0)
    assert enc.codecs[2].knots == (0.5, 0.5, 2.0)


def test_minmax_and_standard_by_hand():
    frame = pd.DataFrame({"v": [0.0, 5.0, 10.0], "w": [1, 2, 3]})
    mm = TabularEncoder.fit(frame, categorical=[], numeric=["v", "w"], scaling="minmax")
    np.testing.assert_allclose(mm.encode(frame), [[-1, -1], [0, 0], [1, 1]], atol=1e-7)
    sd = TabularEncoder.fit(frame, categorical=[], numeric=["v", "w"], scaling="standard")
    s = np.sqrt(2 / 3)
    np.testing.assert_allclose(sd.encode(frame), [[-1 / s] * 2, [0, 0], [1 / s] * 2], rtol=1e-6)


def test_quantile_matches_scikit_learn_with_ties():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(size=300), np.zeros(100), np.full(50, 2.5)])
    frame = pd.DataFrame({"v": rng.permutation(v)})
    enc = TabularEncoder.fit(frame, categorical=[], numeric=["v"], n_quantiles=200)
    qt = QuantileTransformer(n_quantiles=200, output_distribution="normal", subsample=None)
    ref = qt.fit_transform(frame[["v"]].to_numpy())
    np.testing.assert_allclose(enc.encode(frame), ref, atol=1e-5)
    z = np.linspace(-4, 4, 101)[:, None]
    np.testing.assert_allclose(enc.decode(z)["v"], qt.inverse_transform(z)[:, 0], atol=1e-9)


def test_quantile_encoding_is_standard_normal_on_continuous_data():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"v": rng.lognormal(size=5000), "w": rng.uniform(size=5000)})
    x = TabularEncoder.fit(frame, categorical=[], numeric=["v", "w"]).encode(frame)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=0.03)
    np.testing.assert_allclose(np.median(x, axis=0), 0.0, atol=0.01)
    assert np.abs(x).max() <= Z_MAX + 1e-5


def _zero_inflated(n, seed):
    """Like Adult's capital gain: 90% zeros, the rest log-normal integers."""
    rng = np.random.default_rng(seed)
    positive = rng.uniform(size=n) < 0.1
    gain = np.where(positive, np.round(rng.lognormal(8.0, 1.0, size=n)) + 1, 0).astype(np.int64)
    return pd.DataFrame({"gain": gain, "f": rng.normal(size=n)})


def test_quantile_spread_makes_an_atom_standard_normal():
    from scipy import stats

    frame = _zero_inflated(20_000, seed=4)
    zero = (frame["gain"] == 0).to_numpy()
    mid = TabularEncoder.fit(frame, categorical=[], numeric=["gain"]).encode(frame)[:, 0]
    enc = TabularEncoder.fit(frame, categorical=[], numeric=["gain"], scaling="quantile_spread")
    x = enc.encode(frame)[:, 0]
    # Middle-of-interval encoding: the zeros are one point mass, far from normal.
    assert np.unique(mid[zero]).size == 1
    assert stats.kstest(mid, "norm").statistic > 0.4
    # Spread: the zeros fill [0, P(gain = 0)] of the CDF uniformly, so the column is N(0, 1).
    assert stats.kstest(x, "norm").statistic < 0.01
    u = stats.norm.cdf(x[zero])
    assert u.max() == pytest.approx(zero.mean(), abs=2e-3)
    assert stats.kstest(u / zero.mean(), "uniform").statistic < 0.02
    # Values off the atoms (each positive gain is nearly unique) encode as with "quantile".
    unique = ~frame["gain"].duplicated(keep=False).to_numpy()
    np.testing.assert_array_equal(x[unique], mid[unique])
    pd.testing.assert_frame_equal(enc.decode(enc.encode(frame)), frame[["gain"]])


def test_quantile_spread_is_reproducible_for_a_seed():
    frame = _zero_inflated(2_000, seed=5)
    enc = TabularEncoder.fit(
        frame, categorical=[], numeric=["gain", "f"], scaling="quantile_spread"
    )
    a, b, c = enc.encode(frame), enc.encode(frame), enc.encode(frame, seed=1)
    np.testing.assert_array_equal(a, b)
    zero = (frame["gain"] == 0).to_numpy()
    assert (a[zero, 0] != c[zero, 0]).all()
    np.testing.assert_array_equal(a[:, 1], c[:, 1])  # a continuous column has no atoms
    pd.testing.assert_frame_equal(enc.decode(c), enc.decode(a))
    plain = TabularEncoder.fit(frame, categorical=[], numeric=["gain", "f"])
    np.testing.assert_array_equal(plain.encode(frame, seed=1), plain.encode(frame))


def test_other_scalings_ranges():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"v": rng.lognormal(size=1000)})
    mm = TabularEncoder.fit(frame, categorical=[], numeric=["v"], scaling="minmax").encode(frame)
    assert mm.min() == pytest.approx(-1.0) and mm.max() == pytest.approx(1.0)
    sd = TabularEncoder.fit(frame, categorical=[], numeric=["v"], scaling="standard").encode(frame)
    assert sd.mean() == pytest.approx(0.0, abs=1e-6) and sd.std() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("scaling", SCALINGS)
def test_constant_column_encodes_to_zero_and_back(scaling):
    frame = pd.DataFrame({"v": [2.5] * 4, "i": [7] * 4})
    enc = TabularEncoder.fit(frame, categorical=[], numeric=["v", "i"], scaling=scaling)
    if scaling == "quantile_spread":
        # One atom spread over the whole CDF: normal noise, which decodes to the constant.
        assert np.unique(enc.encode(frame)).size == 8
    else:
        np.testing.assert_array_equal(enc.encode(frame), 0.0)
    _assert_round_trip(enc, frame)


def test_values_outside_the_fitted_range_saturate_and_decode_clipped():
    enc = TabularEncoder.fit(_toy(), categorical=[], numeric=["b", "c"])
    new = pd.DataFrame({"b": [-100, 100], "c": [-1.0, 9.0]})
    np.testing.assert_allclose(enc.encode(new), [[-Z_MAX, -Z_MAX], [Z_MAX, Z_MAX]], rtol=1e-6)
    out = enc.decode(np.array([[-50.0, -50.0], [50.0, 50.0]]))
    assert out["b"].tolist() == [1, 5] and out["c"].tolist() == [0.5, 2.0]


# --- round trips ---------------------------------------------------------------------


@st.composite
def frames(draw, min_rows=1, max_rows=60):
    n = draw(st.integers(min_rows, max_rows))
    floats = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
    tied = st.sampled_from([-3.5, 0.0, 0.1, 1e3])
    return pd.DataFrame(
        {
            "s": draw(st.lists(st.sampled_from(["a", "b", "ccc", "d e"]), min_size=n, max_size=n)),
            "code": draw(hnp.arrays(np.int64, n, elements=st.integers(-2, 40))),
            "i": draw(hnp.arrays(np.int64, n, elements=st.integers(-1000, 1000))),
            "f": draw(st.lists(floats, min_size=n, max_size=n)),
            "t": draw(st.lists(tied, min_size=n, max_size=n)),
        }
    )


@pytest.mark.parametrize("scaling", SCALINGS)
@settings(max_examples=40, deadline=None)
@given(frame=frames())
def test_round_trip_is_identity(scaling, frame):
    enc = TabularEncoder.fit(
        frame, categorical=["s", "code"], numeric=["i", "f", "t"], scaling=scaling
    )
    _assert_round_trip(enc, frame)


@settings(max_examples=15, deadline=None)
@given(frame=frames(min_rows=80, max_rows=200), n_quantiles=st.integers(2, 30))
def test_quantile_round_trip_with_fewer_knots_than_rows(frame, n_quantiles):
    enc = TabularEncoder.fit(
        frame, categorical=["s", "code"], numeric=["i", "f", "t"], n_quantiles=n_quantiles
    )
    assert len(enc.codecs[2].knots) == n_quantiles
    _assert_round_trip(enc, frame)


@pytest.mark.parametrize("scaling", SCALINGS)
@settings(max_examples=25, deadline=None)
@given(frame=frames(), seed=st.integers(0, 2**32 - 1), noise=st.sampled_from([0.1, 1.0, 10.0]))
def test_decode_of_noisy_encoding_is_valid(scaling, frame, seed, noise):
    enc = TabularEncoder.fit(
        frame, categorical=["s", "code"], numeric=["i", "f", "t"], scaling=scaling
    )
    x = enc.encode(frame)
    x = x + noise * np.random.default_rng(seed).normal(size=x.shape)
    out = enc.decode(x)
    assert list(out.dtypes) == list(frame[list(enc.columns)].dtypes)
    for c in enc.codecs:
        if c.kind == "categorical":
            assert set(out[c.name]) <= set(c.categories)
        else:
            assert out[c.name].min() >= frame[c.name].min()
            assert out[c.name].max() <= frame[c.name].max()
    assert out["i"].dtype == np.int64


def test_integer_columns_are_rounded_and_clipped():
    frame = pd.DataFrame({"i": np.array([0, 10, 20], dtype=np.int32)})
    enc = TabularEncoder.fit(frame, categorical=[], numeric=["i"], scaling="minmax")
    out = enc.decode(np.array([[-3.0], [0.04], [0.06], [0.51], [7.0]]))
    assert out["i"].dtype == np.int32
    assert out["i"].tolist() == [0, 10, 11, 15, 20]


def test_decode_accepts_jax_arrays_and_empty_input():
    import jax.numpy as jnp

    enc = TabularEncoder.fit(_toy(), categorical=["a", "d"], numeric=["b", "c"])
    out = enc.decode(jnp.asarray(enc.encode(_toy())))
    pd.testing.assert_frame_equal(out, _toy())
    empty = enc.decode(np.zeros((0, enc.dim)))
    assert len(empty) == 0 and list(empty.dtypes) == list(_toy().dtypes)


@pytest.mark.parametrize("scaling", SCALINGS)
def test_json_round_trip_is_exact(scaling):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "s": rng.choice(["u", "v", "w"], 500),
            "code": rng.integers(0, 5, 500),
            "flag": rng.integers(0, 2, 500).astype(bool),
            "i": rng.integers(-50, 50, 500),
            "f": rng.normal(size=500) * 1e3,
        }
    )
    enc = TabularEncoder.fit(
        frame, categorical=["s", "code", "flag"], numeric=["i", "f"], scaling=scaling
    )
    back = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert back == enc
    np.testing.assert_array_equal(back.encode(frame), enc.encode(frame))
    x = enc.encode(frame) + rng.normal(size=(500, enc.dim))
    pd.testing.assert_frame_equal(back.decode(x), enc.decode(x))


def test_string_object_and_category_dtypes_are_restored():
    frame = pd.DataFrame(
        {
            "new_str": pd.Series(["b", "a", "b"], dtype="str"),
            "obj": pd.Series(["p", "q", "q"], dtype=object),
            "cat": pd.Series(["lo", "hi", "lo"], dtype="category"),
            "f32": np.array([1.5, 2.5, 3.5], dtype=np.float32),
        }
    )
    enc = TabularEncoder.fit(frame, categorical=["new_str", "obj", "cat"], numeric=["f32"])
    assert enc.codecs[0].categories == ("a", "b")
    assert all(type(v) is str for c in enc.codecs[:3] for v in c.categories)
    out = enc.decode(enc.encode(frame))
    pd.testing.assert_frame_equal(out, frame)


def test_integer_category_codes_stay_integers():
    frame = pd.DataFrame({"race": [4, 1, 2, 1, 4]})
    enc = TabularEncoder.fit(frame, categorical=["race"], numeric=[])
    assert enc.codecs[0].categories == (1, 2, 4)
    np.testing.assert_array_equal(enc.encode(frame)[:, 2], [1, 0, 0, 0, 1])
    out = enc.decode(enc.encode(frame))
    assert out["race"].dtype == np.int64 and out["race"].tolist() == [4, 1, 2, 1, 4]


def test_encode_ignores_extra_columns():
    enc = TabularEncoder.fit(_toy(), categorical=["a"], numeric=["c"])
    np.testing.assert_array_equal(enc.encode(_toy()), enc.encode(_toy()[["c", "a"]]))


# --- fit_encoder ---------------------------------------------------------------------


def _dataset():
    frame = pd.DataFrame({"age": [30, 41, 52, 23], "sex": ["F", "M", "F", "M"], "y": [0, 1, 1, 0]})
    schema = Schema(label="y", sensitive=("sex",), categorical=("sex", "y"), numeric=("age",))
    return TabularDataset(frame, schema)


def test_fit_encoder_uses_schema_roles_and_order():
    data = _dataset()
    enc = fit_encoder(data)
    assert enc.columns == ("sex", "y", "age")
    assert [c.kind for c in enc.codecs] == ["categorical", "categorical", "numeric"]
    _assert_round_trip(enc, data.frame)
    sub = fit_encoder(data, data.schema.features, scaling="minmax")
    assert sub.columns == ("age",) and sub.scaling == "minmax"
    assert fit_encoder(data, ["age", "sex"]).columns == ("age", "sex")


def test_fit_encoder_rejects_unknown_columns():
    with pytest.raises(FairjaxError, match=r"\['income'\].*not in the schema"):
        fit_encoder(_dataset(), ["age", "income"])


# --- errors --------------------------------------------------------------------------


def test_fit_errors():
    frame = _toy()
    with pytest.raises(FairjaxError, match=r"\['zz'\] not found"):
        TabularEncoder.fit(frame, categorical=["a", "zz"], numeric=[])
    with pytest.raises(FairjaxError, match=r"\['q'\] not found"):
        TabularEncoder.fit(frame, categorical=[], numeric=["q"])
    with pytest.raises(FairjaxError, match=r"unknown scaling 'robust'.*quantile"):
        TabularEncoder.fit(frame, categorical=["a"], numeric=[], scaling="robust")
    with pytest.raises(FairjaxError, match="empty frame"):
        TabularEncoder.fit(frame.iloc[:0], categorical=["a"], numeric=["b"])
    with pytest.raises(FairjaxError, match=r"\['b'\] are listed both"):
        TabularEncoder.fit(frame, categorical=["b"], numeric=["b"])
    with pytest.raises(FairjaxError, match="got the string 'a'"):
        TabularEncoder.fit(frame, categorical="a", numeric=[])
    with pytest.raises(FairjaxError, match="no columns"):
        TabularEncoder.fit(frame, categorical=[], numeric=[])
    with pytest.raises(FairjaxError, match="'a' has non-numeric dtype"):
        TabularEncoder.fit(frame, categorical=[], numeric=["a"])
    with pytest.raises(FairjaxError, match="n_quantiles"):
        TabularEncoder.fit(frame, categorical=[], numeric=["b"], n_quantiles=1)


def test_fit_rejects_nan_in_numeric_and_categorical():
    frame = _toy().assign(c=[0.5, np.nan, 2.0])
    with pytest.raises(FairjaxError, match=r"numeric column 'c' has 1 NaN.*at fit.*row 1"):
        TabularEncoder.fit(frame, categorical=[], numeric=["c"])
    frame = _toy().assign(a=["x", None, "y"])
    with pytest.raises(FairjaxError, match="categorical column 'a' has 1 missing"):
        TabularEncoder.fit(frame, categorical=["a"], numeric=[])


def test_encode_errors():
    enc = TabularEncoder.fit(_toy(), categorical=["a", "d"], numeric=["b", "c"])
    with pytest.raises(FairjaxError, match=r"\['d'\] not found"):
        enc.encode(_toy().drop(columns="d"))
    with pytest.raises(FairjaxError, match=r"numeric column 'c' has 1 NaN.*at encode.*row 2"):
        enc.encode(_toy().assign(c=[0.5, 1.0, np.nan]))
    with pytest.raises(
        FairjaxError, match=r"column 'a'.*not seen.*\['zzz'\] in 2 row\(s\).*row 1.*\['x', 'y'\]"
    ):
        enc.encode(_toy().assign(a=["x", "zzz", "zzz"]))


def test_unknown_category_message_truncates_known_categories():
    frame = pd.DataFrame({"k": [f"c{i:02d}" for i in range(30)]})
    enc = TabularEncoder.fit(frame, categorical=["k"], numeric=[])
    with pytest.raises(FairjaxError) as info:
        enc.encode(pd.DataFrame({"k": ["c01", "new"]}))
    msg = str(info.value)
    assert "'new'" in msg and "'c09'" in msg and "'c10'" not in msg and "30 in all" in msg


def test_decode_errors():
    enc = TabularEncoder.fit(_toy(), categorical=["a", "d"], numeric=["b", "c"])
    with pytest.raises(FairjaxError, match=r"shape \[n, 6\].*got shape \[3, 5\]"):
        enc.decode(np.zeros((3, 5)))
    with pytest.raises(FairjaxError, match=r"got shape \[6\]"):
        enc.decode(np.zeros(6))
    x = np.zeros((2, 6))
    x[1, 3] = np.nan
    with pytest.raises(FairjaxError, match=r"row 1, position 3 \(column 'c'\)"):
        enc.decode(x)


def test_from_dict_rejects_unknown_version():
    d = TabularEncoder.fit(_toy(), categorical=["a"], numeric=[]).to_dict()
    with pytest.raises(FairjaxError, match="version 99"):
        TabularEncoder.from_dict({**d, "version": 99})


def test_vectorised_normal_transforms_match_the_scalar_reference():
    # The old element-by-element implementation (Wichura AS241 and math.erfc) as reference.
    import math

    from fairjax.data import encoder

    u = np.concatenate(
        [np.geomspace(CDF_CLIP, 0.5, 2000), 1 - np.geomspace(CDF_CLIP, 0.5, 2000)[::-1]]
    )
    ppf_ref = np.array([statistics.NormalDist().inv_cdf(v) for v in u])
    np.testing.assert_allclose(encoder._norm_ppf(u), ppf_ref, rtol=1e-12, atol=1e-12)
    z = np.linspace(-8.0, 8.0, 4001)
    cdf_ref = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in z])
    # rtol: the lower tail (cdf down to 6e-16) keeps relative precision
    np.testing.assert_allclose(encoder._norm_cdf(z), cdf_ref, rtol=1e-12, atol=0)
