"""Rows of a table as token sequences: one token per column, in a given (causal) order.

    tok = fit_tokenizer(frame, roles.order, n_bins=16)
    tokens = tok.encode(frame)                     # int32 [n, n_cols], global token ids
    back = tok.decode(jax.random.key(0), tokens)   # DataFrame with the training dtypes

Each column owns a contiguous segment `[offsets[j], offsets[j] + sizes[j])` of one global
vocabulary; token 0 is the BOS (begin-of-row) token. A column is categorical (one token per
observed value) when it is non-numeric, boolean, listed in `categorical`, or has at most
`n_bins` distinct values; otherwise it is numeric and discretised into up to `n_bins`
quantile bins (duplicate edges merged). Decoding a numeric bin draws one of the training
values that fell in that bin, with its training frequency (the empirical within-bin
distribution), so decoded values are always observed values: integer columns stay integer
and nothing leaves the training range.

References:
  Nagesh, Wang & Rahmani (2025), FairCauseSyn, arXiv 2506.19082 (rows generated token by
  token in causal order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from fairjax.errors import FairjaxError
from fairjax.persist import plain

BOS = 0


@dataclasses.dataclass(frozen=True)
class RowTokenizer:
    """Column <-> token maps fitted on a training frame (see the module docstring).

    Attributes:
      columns: column names, in token order.
      dtypes: training dtype of each column (as `str(dtype)`), restored by `decode`.
      categories: per column, the sorted observed values (categorical) or None (numeric).
      edges: per column, the bin edges [n_bins_j + 1] (numeric) or None (categorical).
      support: per column, the sorted distinct training values (numeric) or None.
      counts: per column, how often each `support` value occurs in training (numeric) or None.
    """

    columns: tuple[str, ...]
    dtypes: tuple[str, ...]
    categories: tuple[tuple[Any, ...] | None, ...]
    edges: tuple[tuple[float, ...] | None, ...]
    support: tuple[tuple[Any, ...] | None, ...]
    counts: tuple[tuple[int, ...] | None, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of tokens of each column."""
        return tuple(
            len(c) if c is not None else len(e) - 1
            for c, e in zip(self.categories, self.edges, strict=True)
        )

    @property
    def offsets(self) -> tuple[int, ...]:
        """First global token id of each column (token 0 is BOS)."""
        return _offsets(self.sizes)

    @property
    def vocab_size(self) -> int:
        """Size of the global vocabulary, BOS included."""
        return 1 + sum(self.sizes)

    @property
    def valid_mask(self) -> np.ndarray:
        """[n_cols, vocab_size] bool: which tokens column position j may take."""
        return segment_mask(self.sizes)

    def token_of(self, column: str, value: Any) -> int:
        """Global token id of the categorical `value` of `column`."""
        j = self._index(column)
        if self.categories[j] is None:
            raise FairjaxError(f"column {column!r} is numeric (binned); token_of needs a category.")
        return int(self.offsets[j] + _lookup(column, self.categories[j], pd.Series([value]))[0])

    def encode(self, frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> np.ndarray:
        """Token ids of the rows of `frame`.

        Args:
          frame: rows holding (at least) the tokenized columns.
          columns: encode only these tokenized columns, in this order (default: all).

        Returns:
          int32 [n, len(columns)] global token ids. Numeric values outside the training
          range go to the first / last bin.

        Raises:
          FairjaxError: a column is missing or unknown, has missing values, a categorical
            value never seen in training, or a non-numeric value in a numeric column.
        """
        if not isinstance(frame, pd.DataFrame):
            raise FairjaxError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
        columns = self.columns if columns is None else tuple(columns)
        out = np.zeros((len(frame), len(columns)), np.int32)
        for i, column in enumerate(columns):
            j = self._index(column)
            if column not in frame.columns:
                raise FairjaxError(
                    f"column {column!r} is missing from the frame; it has {list(frame.columns)}."
                )
            s = frame[column]
            _check_no_missing(column, s)
            if self.categories[j] is not None:
                local = _lookup(column, self.categories[j], s)
            else:
                if not _is_numeric(s):
                    raise FairjaxError(
                        f"column {column!r} was numeric in training; got dtype {s.dtype} "
                        f"with values like {s.iloc[:3].tolist()}."
                    )
                local = _bin_of(np.asarray(self.edges[j], np.float64), s.to_numpy(np.float64))
            out[:, i] = self.offsets[j] + local
        return out

    def decode(self, key: jax.Array, tokens: Any) -> pd.DataFrame:
        """Rows of the tokens (inverse of `encode` up to the within-bin draw).

        Categorical tokens decode to their value exactly. A numeric bin decodes to a draw
        from the training values that fell in it, with their training frequencies (the
        empirical within-bin distribution): values are always observed values, so integer
        columns stay integer and nothing leaves the training range.

        Args:
          key: PRNG key for the within-bin draws (the same key gives the same rows).
          tokens: int [n, n_cols] global token ids, columns in `columns` order.

        Returns:
          DataFrame [n rows] with `columns` and the training dtypes.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != len(self.columns):
            raise FairjaxError(
                f"tokens must have shape [n, {len(self.columns)}]; got {tokens.shape}."
            )
        data = {}
        for j, column in enumerate(self.columns):
            local = tokens[:, j].astype(np.int64) - self.offsets[j]
            bad = (local < 0) | (local >= self.sizes[j])
            if bad.any():
                raise FairjaxError(
                    f"token {int(tokens[bad, j][0])} is not a token of column {column!r} "
                    f"(valid: {self.offsets[j]}..{self.offsets[j] + self.sizes[j] - 1})."
                )
            if self.categories[j] is not None:
                values = np.asarray(self.categories[j], dtype=object)[local]
            else:
                u = np.asarray(jax.random.uniform(jax.random.fold_in(key, j), (len(local),)))
                values = self._draw_in_bin(j, local, u.astype(np.float64))
            data[column] = _restore(values, self.dtypes[j], self.categories[j])
        return pd.DataFrame(data)

    def to_dict(self) -> dict:
        """JSON-friendly form (inverse: `RowTokenizer.from_dict`)."""

        def lists(vs):
            return [None if v is None else [plain(x) for x in v] for v in vs]

        return {
            "columns": list(self.columns),
            "dtypes": list(self.dtypes),
            **{k: lists(getattr(self, k)) for k in ("categories", "edges", "support", "counts")},
        }

    @classmethod
    def from_dict(cls, d: dict) -> RowTokenizer:
        def tuples(vs):
            return tuple(None if v is None else tuple(v) for v in vs)

        return cls(
            columns=tuple(d["columns"]),
            dtypes=tuple(d["dtypes"]),
            categories=tuples(d["categories"]),
            edges=tuples(d["edges"]),
            support=tuples(d["support"]),
            counts=tuples(d["counts"]),
        )

    def _index(self, column: str) -> int:
        if column not in self.columns:
            raise FairjaxError(
                f"column {column!r} is not tokenized; the tokenizer has {list(self.columns)}."
            )
        return self.columns.index(column)

    def _draw_in_bin(self, j: int, local: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Training values of column j drawn within bins `local` [n] with uniforms `u` [n]."""
        edges = np.asarray(self.edges[j], np.float64)
        support = np.asarray(self.support[j])
        cum = np.cumsum(self.counts[j])
        # Bin b holds the support values in [edges[b], edges[b + 1]); the last bin is closed.
        bounds = np.searchsorted(support.astype(np.float64), edges, side="left")
        bounds[-1] = len(support)
        cum0 = np.concatenate([[0], cum])
        base, total = cum0[bounds[local]], cum0[bounds[local + 1]] - cum0[bounds[local]]
        target = base + np.minimum(np.floor(u * total), total - 1)
        return support[np.searchsorted(cum, target, side="right")]


def fit_tokenizer(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    n_bins: int = 16,
    categorical: Sequence[str] = (),
) -> RowTokenizer:
    """Fit a `RowTokenizer` on `columns` of `frame` (token order = the given order).

    Args:
      frame: training rows, no missing values in `columns`.
      columns: the columns to tokenize, in generation (causal) order.
      n_bins: most quantile bins per numeric column, >= 2; numeric columns with at most
        `n_bins` distinct values are categorical.
      categorical: columns to treat as categorical whatever their dtype.

    Returns:
      The fitted `RowTokenizer`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise FairjaxError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise FairjaxError(f"n_bins must be an integer >= 2; got {n_bins!r}.")
    if isinstance(columns, str) or isinstance(categorical, str):
        raise FairjaxError("columns and categorical must be lists of column names, not strings.")
    columns, categorical = tuple(columns), tuple(categorical)
    if not columns:
        raise FairjaxError("columns is empty: tokenize at least one column.")
    if len(set(columns)) != len(columns):
        raise FairjaxError(f"columns lists a column more than once: {list(columns)}.")
    if len(frame) == 0:
        raise FairjaxError("frame has no rows.")
    for column in (*columns, *categorical):
        if column not in frame.columns:
            raise FairjaxError(
                f"column {column!r} is missing from the frame; it has {list(frame.columns)}."
            )
    fields: dict[str, list] = {k: [] for k in ("categories", "edges", "support", "counts")}
    for column in columns:
        s = frame[column]
        _check_no_missing(column, s)
        values = pd.unique(s)
        if column in categorical or not _is_numeric(s) or len(values) <= n_bins:
            fields["categories"].append(tuple(_sorted([plain(v) for v in values])))
            fields["edges"].append(None)
            fields["support"].append(None)
            fields["counts"].append(None)
        else:
            x = s.to_numpy()
            # inverted_cdf edges are training values, so no bin is empty.
            qs = np.linspace(0, 1, n_bins + 1)
            qs = np.quantile(x.astype(np.float64), qs, method="inverted_cdf")
            support, counts = np.unique(x, return_counts=True)
            fields["categories"].append(None)
            fields["edges"].append(tuple(float(e) for e in np.unique(qs)))
            fields["support"].append(tuple(plain(v) for v in support))
            fields["counts"].append(tuple(int(c) for c in counts))
    dtypes = tuple(str(frame[c].dtype) for c in columns)
    return RowTokenizer(columns, dtypes, **{k: tuple(v) for k, v in fields.items()})


def segment_mask(sizes: Sequence[int]) -> np.ndarray:
    """[n_cols, 1 + sum(sizes)] bool: column j's tokens are its segment of the vocabulary
    (BOS = 0, then the columns' segments of `sizes` tokens one after the other)."""
    mask = np.zeros((len(sizes), 1 + sum(sizes)), bool)
    for j, (start, size) in enumerate(zip(_offsets(sizes), sizes, strict=True)):
        mask[j, start : start + size] = True
    return mask


def _offsets(sizes: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]]))


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _check_no_missing(column: str, s: pd.Series) -> None:
    missing = s.isna().to_numpy()
    if missing.any():
        raise FairjaxError(
            f"column {column!r} has {int(missing.sum())} missing value(s) (NaN/None), e.g. "
            f"at row {s.index[np.flatnonzero(missing)[0]]!r}; drop or impute them first."
        )


def _lookup(column: str, categories: tuple, s: pd.Series) -> np.ndarray:
    """Local ids [n] of the values of `s` among `categories`; FairjaxError for unknown ones."""
    index = {v: i for i, v in enumerate(categories)}
    ids = np.empty(len(s), np.int32)
    for i, v in enumerate(s.tolist()):
        found = index.get(plain(v))
        if found is None:
            raise FairjaxError(
                f"column {column!r} has the value {v!r}, never seen in training; "
                f"known values are {list(categories)[:20]}."
            )
        ids[i] = found
    return ids


def _bin_of(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin ids [n] of `x` for bins [edges[b], edges[b + 1]); outside values go to the edges."""
    return np.searchsorted(edges[1:-1], x, side="right").astype(np.int32)


def _restore(values: np.ndarray, dtype: str, categories: tuple | None) -> pd.Series:
    if dtype == "category":
        return pd.Series(pd.Categorical(list(values), categories=list(categories or ())))
    return pd.Series(values).astype(dtype)


def _sorted(values: list) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))
