"""Tabular encoder: a DataFrame to a float32 matrix for generative models, and back.

Each column owns a contiguous slice of the encoded vector:
- categorical columns are one-hot blocks (float 0/1, one column per category seen at fit);
- numeric columns are one scalar, scaled by one of
  - "quantile" (default): the empirical CDF followed by the standard normal quantile
    function, like scikit-learn's `QuantileTransformer(output_distribution="normal")`;
  - "quantile_spread": the same, except that the rows of a repeated value (an atom, such as
    the 92% zeros of Adult's capital gain) are spread uniformly at random over the CDF
    interval the atom occupies, instead of all sitting at its middle (a randomised
    probability integral transform). The encoded column is then close to a standard
    normal, with no point mass and no gap, which is easier for a score model to fit;
    every encoded value inside the interval decodes back to the atom;
  - "minmax": the observed [min, max] mapped affinely onto [-1, 1];
  - "standard": z-scores, (x - mean) / std.

Decoding takes the argmax of each one-hot block and inverts the numeric scaling, then clips
to the observed [min, max] and rounds integer columns, so any real-valued array (e.g. a
generative model's noisy output) decodes to a valid table. The encoder is plain
numpy/pandas: it runs once at the edges of a pipeline, not inside jitted code.

Precision: `decode(encode(frame))` returns categoricals and integer columns exactly and
floats up to the float32 resolution of the encoding. For minmax/standard that is ~1e-7 of
the column's range. For quantile scaling the inverse CDF stretches that resolution by the
knot spacing: the error is at most ~1e-8 * (K - 1) * (widest gap between adjacent knots),
~1e-7 relative on ordinary data, up to ~1e-5 of the range when K ~ 1000 and one gap
spans most of the range (a few far outliers). The same bound holds for a spread atom of a
float column: a row drawn at the very edge of the atom's interval can land, after float32
rounding, just inside the neighbouring gap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from fairjax.data.schema import TabularDataset
from fairjax.errors import FairjaxError

SCALINGS = ("quantile", "quantile_spread", "minmax", "standard")
# The scalings that go through the empirical CDF and its knots.
_QUANTILE_SCALINGS = ("quantile", "quantile_spread")
# The CDF is kept inside [CDF_CLIP, 1 - CDF_CLIP] so that the normal quantile stays finite:
# the encoded values of the extreme knots are -/+5.1993 (as in scikit-learn).
CDF_CLIP = 1e-7
# On decode, a CDF value inside the clipped tails (with this much slack for float32
# rounding of the encoded value) is the end knot itself.
_CDF_SNAP = 2 * CDF_CLIP
_FORMAT_VERSION = 1


def _norm_ppf(u: np.ndarray) -> np.ndarray:
    """Standard normal quantile function, vectorised; u in (0, 1), float64 [n].

    scipy's `ndtri` (Cephes) agrees with `statistics.NormalDist().inv_cdf` (Wichura's
    AS241) to ~1e-15 relative on [CDF_CLIP, 1 - CDF_CLIP] (tested).
    """
    return special.ndtri(np.asarray(u, np.float64))


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised; float64 [n].

    `ndtr` goes through erfc for z < 0, so the lower tail keeps full relative precision
    (the upper tail, 1 - tiny, is limited by float64 like any CDF).
    """
    return special.ndtr(np.asarray(z, np.float64))


@dataclasses.dataclass(frozen=True)
class ColumnCodec:
    """How one column is encoded.

    Attributes:
      name: column name.
      kind: "categorical" or "numeric".
      start, stop: the slice `[start, stop)` of the encoded vector this column owns
        (`stop - start` is the number of categories, or 1 for a numeric column).
      categories: categorical: the category values in one-hot order, with their original
        Python types (str, int, float or bool); numeric: ().
      dtype: the column's pandas dtype as a string ("int64", "str", "category", ...),
        restored on decode.
      scaling: numeric: one of `SCALINGS`; categorical: "".
      knots: quantile scalings: the column's values at CDF levels
        `linspace(0, 1, len(knots))` (non-decreasing; repeated values are ties).
      loc, scale: minmax/standard scaling: encoded = (x - loc) / scale.
      min_value, max_value: numeric: observed range (ints for integer columns); decoded
        values are clipped to it.
      is_integer: numeric: the column has an integer dtype; decoded values are rounded.
    """

    name: str
    kind: str
    start: int
    stop: int
    categories: tuple
    dtype: str
    scaling: str = ""
    knots: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    loc: float = 0.0
    scale: float = 1.0
    min_value: float = 0.0
    max_value: float = 0.0
    is_integer: bool = False

    @property
    def width(self) -> int:
        return self.stop - self.start


@dataclasses.dataclass(frozen=True)
class TabularEncoder:
    """Encodes a DataFrame as a float32 array [n, dim] and decodes such arrays back.

    Build one with `TabularEncoder.fit` or `fit_encoder`; it is immutable and
    JSON-serialisable through `to_dict` / `from_dict`.

    Attributes:
      codecs: one `ColumnCodec` per column, in encoded order.
      scaling: the numeric scaling used at fit, one of `SCALINGS`.
    """

    codecs: tuple[ColumnCodec, ...]
    scaling: str

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        categorical: Sequence[str],
        numeric: Sequence[str],
        scaling: str = "quantile",
        n_quantiles: int = 1000,
    ) -> TabularEncoder:
        """Fit an encoder to the listed columns of `frame`.

        Args:
          frame: training rows [n rows]; columns not listed are ignored.
          categorical: columns to one-hot encode (strings or integers, no missing values).
          numeric: columns to scale (numeric dtype, finite values).
          scaling: one of `SCALINGS` (see the module docstring).
          n_quantiles: quantile scalings: number of knots of the empirical CDF,
            `min(n_quantiles, n)` (at least 2).

        Returns:
          The encoder; its columns follow the order of `frame`'s columns.
        """
        if scaling not in SCALINGS:
            raise FairjaxError(f"unknown scaling {scaling!r}; expected one of {list(SCALINGS)}")
        if isinstance(n_quantiles, bool) or not isinstance(n_quantiles, int) or n_quantiles < 2:
            raise FairjaxError(f"n_quantiles must be an integer >= 2; got {n_quantiles!r}")
        categorical = _names("categorical", categorical)
        numeric = _names("numeric", numeric)
        both = sorted(set(categorical) & set(numeric))
        if both:
            raise FairjaxError(f"column(s) {both} are listed both as categorical and numeric")
        _check_present(frame, categorical + numeric)
        if not categorical and not numeric:
            raise FairjaxError("no columns to encode: categorical and numeric are both empty")
        if len(frame) == 0:
            raise FairjaxError("cannot fit the encoder on an empty frame (0 rows)")

        roles = dict.fromkeys(categorical, "categorical") | dict.fromkeys(numeric, "numeric")
        codecs, start = [], 0
        for name in (c for c in frame.columns if c in roles):
            col = frame[name]
            if roles[name] == "categorical":
                codec = _fit_categorical(name, col, start)
            else:
                codec = _fit_numeric(name, col, start, scaling, n_quantiles)
            codecs.append(codec)
            start = codec.stop
        return cls(codecs=tuple(codecs), scaling=scaling)

    @property
    def dim(self) -> int:
        """Width of the encoded vector."""
        return self.codecs[-1].stop if self.codecs else 0

    @property
    def columns(self) -> tuple[str, ...]:
        """Encoded column names, in order."""
        return tuple(c.name for c in self.codecs)

    def slices(self) -> dict[str, slice]:
        """Column name -> the slice of the encoded vector it owns."""
        return {c.name: slice(c.start, c.stop) for c in self.codecs}

    def categorical_blocks(self) -> list[tuple[int, int]]:
        """(start, stop) of each one-hot block, in order (for softmax heads and argmax)."""
        return [(c.start, c.stop) for c in self.codecs if c.kind == "categorical"]

    def encode(self, frame: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
        """Encode the rows of `frame`.

        Args:
          frame: [n rows] with (at least) the encoder's columns; other columns are ignored.
          seed: "quantile_spread" scaling: seed of the uniform draws that place each atom's
            rows inside its CDF interval, so that a frame always encodes the same way for a
            given seed. Ignored by the other scalings, whose encoding is deterministic.

        Returns:
          float32 array [n, dim], finite. Each one-hot block holds a single 1 per row;
          numeric values outside the fitted range map to the ends of the scaling
          (quantile: +-5.2) or beyond them (minmax, standard: linear).

        Raises:
          FairjaxError: a column is missing, a numeric value is NaN/infinite, or a
            categorical value was not seen at fit.
        """
        _check_present(frame, list(self.columns))
        out = np.zeros((len(frame), self.dim), np.float32)
        rows = np.arange(len(frame))
        rng = np.random.default_rng(seed)
        for codec in self.codecs:
            if codec.kind == "categorical":
                # Set the ones in place: no [n, width] temporary per block.
                out[rows, codec.start + _category_codes(codec, frame[codec.name])] = 1.0
            else:
                out[:, codec.start] = _encode_numeric(codec, frame[codec.name], rng)
        return out

    def decode(self, x) -> pd.DataFrame:
        """Decode an encoded array (or a model's output in the same layout) to a frame.

        Args:
          x: array [n, dim] (numpy or jax), any real values.

        Returns:
          DataFrame [n rows] with the encoder's columns, in order, with their original
          dtypes: categories by argmax of each block; numerics inverted, clipped to the
          observed [min, max], and rounded for integer columns.
        """
        # Keep a float array's own dtype (no float64 copy of the whole matrix); numeric
        # columns are widened to float64 one at a time in `_decode_column`.
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise FairjaxError(
                f"decode expects an array of shape [n, {self.dim}] (dim of this encoder); "
                f"got shape {list(x.shape)}"
            )
        bad = ~np.isfinite(x)
        if bad.any():
            row, j = map(int, np.argwhere(bad)[0])
            name = next(c.name for c in self.codecs if c.start <= j < c.stop)
            raise FairjaxError(
                f"decode input has {int(bad.sum())} NaN/infinite value(s), first at row {row}, "
                f"position {j} (column {name!r}): {x[row, j]}"
            )
        return pd.DataFrame(
            {c.name: _decode_column(c, x[:, c.start : c.stop]) for c in self.codecs},
            index=pd.RangeIndex(len(x)),
        )

    def to_dict(self) -> dict:
        """JSON-ready form (lists, Python scalars); `from_dict` inverts it exactly."""
        codecs = []
        for c in self.codecs:
            d = dataclasses.asdict(c)
            d["categories"] = list(c.categories)
            d["knots"] = list(c.knots)
            codecs.append(d)
        return {"version": _FORMAT_VERSION, "scaling": self.scaling, "codecs": codecs}

    @classmethod
    def from_dict(cls, d: dict) -> TabularEncoder:
        """Inverse of `to_dict`."""
        if d.get("version") != _FORMAT_VERSION:
            raise FairjaxError(
                f"unsupported encoder format version {d.get('version')!r}; "
                f"expected {_FORMAT_VERSION}"
            )
        codecs = tuple(
            ColumnCodec(**{**c, "categories": tuple(c["categories"]), "knots": tuple(c["knots"])})
            for c in d["codecs"]
        )
        return cls(codecs=codecs, scaling=d["scaling"])


def fit_encoder(
    dataset: TabularDataset,
    columns: Sequence[str] | None = None,
    *,
    scaling: str = "quantile",
    n_quantiles: int = 1000,
) -> TabularEncoder:
    """Fit a `TabularEncoder` to a data set, with column roles from its schema.

    Args:
      dataset: the training data.
      columns: columns to encode, in this order; default `dataset.schema.columns`.
        May be a subset, e.g. `dataset.schema.features`.
      scaling, n_quantiles: as in `TabularEncoder.fit`.
    """
    schema = dataset.schema
    columns = schema.columns if columns is None else _names("columns", columns)
    unknown = [c for c in columns if c not in schema.columns]
    if unknown:
        raise FairjaxError(
            f"column(s) {unknown} are not in the schema of {dataset.name!r}; "
            f"columns are {list(schema.columns)}"
        )
    return TabularEncoder.fit(
        dataset.frame[list(columns)],
        categorical=[c for c in columns if c in schema.categorical],
        numeric=[c for c in columns if c in schema.numeric],
        scaling=scaling,
        n_quantiles=n_quantiles,
    )


# --- validation --------------------------------------------------------------------------


def _names(arg: str, names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        raise FairjaxError(f"{arg} must be a list of column names; got the string {names!r}")
    names = list(names)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise FairjaxError(f"{arg} lists column(s) {dup} more than once")
    return names


def _check_present(frame: pd.DataFrame, names: list[str]) -> None:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise FairjaxError(f"column(s) {missing} not found; columns are {list(frame.columns)}")


def _numeric_values(name: str, col: pd.Series, when: str) -> np.ndarray:
    """The column as finite float64 [n], or a FairjaxError naming the problem."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise FairjaxError(
            f"numeric column {name!r} has non-numeric dtype {col.dtype} {when}; "
            "declare it categorical or convert it to numbers"
        )
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise FairjaxError(
            f"numeric column {name!r} has {int(bad.sum())} NaN/infinite value(s) {when}, "
            f"first at row {first} ({col.iloc[first]!r}); drop or impute them first"
        )
    return values


# --- fit ---------------------------------------------------------------------------------


def _fit_categorical(name: str, col: pd.Series, start: int) -> ColumnCodec:
    n_missing = int(col.isna().sum())
    if n_missing:
        raise FairjaxError(f"categorical column {name!r} has {n_missing} missing value(s)")
    values = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(col.to_numpy(object))]
    for v in values:
        if not isinstance(v, (str, int, float, bool)):
            raise FairjaxError(
                f"categorical column {name!r} holds {v!r} of type {type(v).__name__}; "
                "categories must be str, int, float or bool"
            )
    # Sorting by type name first keeps a mixed str/int column sortable.
    categories = tuple(sorted(values, key=lambda v: (type(v).__name__, v)))
    return ColumnCodec(
        name=name,
        kind="categorical",
        start=start,
        stop=start + len(categories),
        categories=categories,
        dtype=str(col.dtype),
    )


def _fit_numeric(
    name: str, col: pd.Series, start: int, scaling: str, n_quantiles: int
) -> ColumnCodec:
    values = _numeric_values(name, col, "at fit")
    is_integer = pd.api.types.is_integer_dtype(col)
    lo, hi = (int(col.min()), int(col.max())) if is_integer else (values.min(), values.max())
    knots, loc, scale = (), 0.0, 1.0
    if scaling in _QUANTILE_SCALINGS:
        levels = np.linspace(0.0, 1.0, max(2, min(n_quantiles, len(values))))
        # Interpolated quantiles can break monotonicity by an ulp; the CDF needs it.
        knots = tuple(np.maximum.accumulate(np.quantile(values, levels)).tolist())
    elif scaling == "minmax":
        loc, scale = (float(lo) + float(hi)) / 2, (float(hi) - float(lo)) / 2
    else:
        loc, scale = float(values.mean()), float(values.std())
    return ColumnCodec(
        name=name,
        kind="numeric",
        start=start,
        stop=start + 1,
        categories=(),
        dtype=str(col.dtype),
        scaling=scaling,
        knots=knots,
        loc=loc,
        scale=scale if scale > 0 else 1.0,  # a constant column encodes as 0
        min_value=lo if is_integer else float(lo),
        max_value=hi if is_integer else float(hi),
        is_integer=is_integer,
    )


# --- encode / decode ---------------------------------------------------------------------


def _category_codes(codec: ColumnCodec, col: pd.Series) -> np.ndarray:
    """A categorical column [n rows] -> the index of each value's category, int [n]."""
    cats = pd.Index(list(codec.categories), dtype=object)
    codes = cats.get_indexer(col.to_numpy(object))
    if (codes < 0).any():
        raise FairjaxError(_unknown_category_message(codec, col, codes < 0))
    return codes


def _encode_numeric(codec: ColumnCodec, col: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """A numeric column [n rows] -> its encoded value, float64 [n]; `rng` spreads the atoms
    of "quantile_spread" scaling."""
    x = _numeric_values(codec.name, col, "at encode")
    if codec.scaling in _QUANTILE_SCALINGS:
        spread = rng if codec.scaling == "quantile_spread" else None
        u = np.clip(_empirical_cdf(x, np.asarray(codec.knots), spread), CDF_CLIP, 1 - CDF_CLIP)
        return _norm_ppf(u)
    return (x - codec.loc) / codec.scale


def _decode_column(codec: ColumnCodec, block: np.ndarray) -> pd.Series:
    """Block float [n, width] -> the column [n rows] with its original dtype."""
    if codec.kind == "categorical":
        # argmax over a contiguous copy: the strided column slice is several times slower.
        codes = np.argmax(np.ascontiguousarray(block), axis=1)
        values = np.array(codec.categories, dtype=object)[codes]
        if codec.dtype == "category":
            return pd.Series(pd.Categorical(values, categories=list(codec.categories)))
        return pd.Series(values, dtype=object).astype(codec.dtype)
    z = block[:, 0].astype(np.float64)
    if codec.scaling in _QUANTILE_SCALINGS:
        u = _norm_cdf(z)
        u = np.where(u <= _CDF_SNAP, 0.0, np.where(u >= 1 - _CDF_SNAP, 1.0, u))
        knots = np.asarray(codec.knots)
        x = np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots)
    else:
        x = z * codec.scale + codec.loc
    if codec.is_integer:
        x = np.round(x)
    x = np.clip(x, codec.min_value, codec.max_value)
    return pd.Series(x).astype(codec.dtype)


def _empirical_cdf(
    x: np.ndarray, knots: np.ndarray, spread: np.random.Generator | None = None
) -> np.ndarray:
    """Piecewise-linear CDF through (knots[k], k / (K - 1)); float64 [n] -> [n] in [0, 1].

    A value equal to a run of tied knots k = lo..hi-1 gets the middle of their levels,
    (lo + hi - 1) / 2 / (K - 1), so the map is a function and its inverse (interpolating
    the levels back to knots) returns that value exactly. This is the average of the
    left- and right-continuous interpolations, as in scikit-learn's QuantileTransformer.
    With a generator `spread`, such a value gets instead a uniform draw from the whole
    interval [lo, hi - 1] / (K - 1), every point of which interpolates back to it.
    """
    n_knots = len(knots)
    lo = np.searchsorted(knots, x, side="left")
    hi = np.searchsorted(knots, x, side="right")
    j = np.clip(lo - 1, 0, n_knots - 2)
    gap = knots[j + 1] - knots[j]
    w = np.clip((x - knots[j]) / np.where(gap > 0, gap, 1.0), 0.0, 1.0)
    between = (j + w) / (n_knots - 1)
    if spread is None:
        on_knot = (lo + hi - 1) / 2 / (n_knots - 1)
    else:
        on_knot = (lo + spread.uniform(size=len(x)) * (hi - 1 - lo)) / (n_knots - 1)
    return np.where(hi > lo, on_knot, between)


def _unknown_category_message(codec: ColumnCodec, col: pd.Series, bad: np.ndarray) -> str:
    first = int(np.argmax(bad))
    unseen = pd.unique(col.to_numpy(object)[bad]).tolist()
    known = list(codec.categories)
    more = f" ... ({len(known)} in all)" if len(known) > 10 else ""
    return (
        f"categorical column {codec.name!r} has value(s) not seen when the encoder was fit: "
        f"{unseen[:5]!r}{' ...' if len(unseen) > 5 else ''} in {int(bad.sum())} row(s), "
        f"first at row {first} ({col.iloc[first]!r}); known categories: {known[:10]!r}{more}"
    )
