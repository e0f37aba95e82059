"""Column roles of a tabular data set and the validated container that holds one.

A `Schema` says which column is the binary label, which are sensitive, which (optional)
column names the domain, and which columns are categorical or numeric. A `TabularDataset`
is a pandas DataFrame together with its schema; building one validates the frame, so code
downstream may assume a clean table.

Conventions every loader follows:
- the label column holds the integers 0 and 1 (dtype int64); the original label text is
  kept in `Schema.label_names` (index 0 -> name of 0, index 1 -> name of 1);
- categorical columns hold strings (pandas "object"/"string" dtype) or integers;
- numeric columns hold finite floats or integers, never NaN;
- every column of the frame has exactly one role: categorical or numeric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairjax.errors import FairjaxError


@dataclasses.dataclass(frozen=True)
class Schema:
    """Roles of the columns of a tabular data set.

    Attributes:
      label: name of the binary outcome column (values 0/1 in the frame).
      sensitive: names of the sensitive (protected) columns, at least one.
      categorical: names of all categorical columns, in frame order. The label, the
        sensitive columns and the domain column are listed here when they are categorical.
      numeric: names of all numeric columns, in frame order.
      domain: name of the column whose values define domains (e.g. race for FADM's
        leave-one-domain-out benchmark), or None.
      label_names: what 0 and 1 of the label mean, e.g. ("<=50K", ">50K").
    """

    label: str
    sensitive: tuple[str, ...]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    domain: str | None = None
    label_names: tuple[str, str] = ("0", "1")

    @property
    def columns(self) -> tuple[str, ...]:
        """All columns with a role: categorical then numeric."""
        return self.categorical + self.numeric

    @property
    def features(self) -> tuple[str, ...]:
        """Columns that are neither the label, a sensitive column nor the domain."""
        special = {self.label, *self.sensitive, self.domain}
        return tuple(c for c in self.columns if c not in special)

    def to_dict(self) -> dict:
        """JSON-ready form (lists instead of tuples)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        """Inverse of `to_dict`."""
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class TabularDataset:
    """A validated DataFrame with its schema and provenance.

    Attributes:
      frame: the rows; it has every column of `schema.columns`.
      schema: the column roles.
      name: short identifier, e.g. "adult".
      source: where the data come from (citation / DOI), or "" for user files.
      licence: licence of the data, or "" when unknown.
    """

    frame: pd.DataFrame
    schema: Schema
    name: str = "data"
    source: str = ""
    licence: str = ""

    def __post_init__(self):
        validate_frame(self.frame, self.schema)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def y(self) -> np.ndarray:
        """Label as int64 array [n] of 0/1."""
        return self.frame[self.schema.label].to_numpy(np.int64)

    def select(self, rows) -> TabularDataset:
        """Sub-dataset of the given rows (boolean mask or integer positions), index reset."""
        frame = self.frame.iloc[rows] if not _is_mask(rows) else self.frame[np.asarray(rows)]
        return dataclasses.replace(self, frame=frame.reset_index(drop=True))

    def domains(self) -> list:
        """Sorted distinct values of the domain column. Raises if the schema has none."""
        if self.schema.domain is None:
            raise FairjaxError(f"data set {self.name!r} has no domain column")
        return sorted(self.frame[self.schema.domain].unique().tolist())


def _is_mask(rows) -> bool:
    return np.asarray(rows).dtype == bool


def validate_frame(frame: pd.DataFrame, schema: Schema) -> None:
    """Check that `frame` fits `schema`; raise `FairjaxError` naming the first problem.

    Checks: the frame has rows; every schema column exists; no column has two roles;
    the label holds only 0 and 1 and both occur; every sensitive column has >= 2 values;
    numeric columns are numeric and finite; categorical columns have no missing values.
    """
    if len(frame) == 0:
        raise FairjaxError("the data set has no rows")
    for role, cols in (("categorical", schema.categorical), ("numeric", schema.numeric)):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise FairjaxError(
                f"{role} column(s) {missing} not found; columns are {list(frame.columns)}"
            )
    both = set(schema.categorical) & set(schema.numeric)
    if both:
        raise FairjaxError(f"column(s) {sorted(both)} are declared both categorical and numeric")
    for name, what in [(schema.label, "label"), *((s, "sensitive") for s in schema.sensitive)] + (
        [(schema.domain, "domain")] if schema.domain is not None else []
    ):
        if name not in schema.columns:
            raise FairjaxError(
                f"{what} column {name!r} not found; columns are {list(frame.columns)}"
            )
    if not schema.sensitive:
        raise FairjaxError("at least one sensitive column is required")
    label = frame[schema.label]
    values = set(pd.unique(label).tolist())
    if not values <= {0, 1} or len(values) != 2:
        raise FairjaxError(
            f"label column {schema.label!r} must hold 0 and 1 (both present); "
            f"found values {sorted(map(str, values))[:10]}"
        )
    for s in schema.sensitive:
        n = frame[s].nunique(dropna=False)
        if n < 2:
            raise FairjaxError(
                f"sensitive column {s!r} has a single value {frame[s].iloc[0]!r}; "
                "it needs at least two groups"
            )
    for c in schema.numeric:
        col = frame[c]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise FairjaxError(f"numeric column {c!r} has non-numeric dtype {col.dtype}")
        bad = ~np.isfinite(col.to_numpy(np.float64))
        if bad.any():
            raise FairjaxError(
                f"numeric column {c!r} has {int(bad.sum())} NaN/infinite value(s), "
                f"first at row {int(np.argmax(bad))}; drop or impute them first"
            )
    for c in schema.categorical:
        n_missing = int(frame[c].isna().sum())
        if n_missing:
            raise FairjaxError(f"categorical column {c!r} has {n_missing} missing value(s)")


def infer_schema(
    frame: pd.DataFrame,
    *,
    label: str,
    sensitive: Sequence[str],
    domain: str | None = None,
    categorical: Sequence[str] | None = None,
    max_int_categories: int = 10,
) -> Schema:
    """Schema for a user's frame: explicit roles plus inferred categorical/numeric split.

    Columns listed in `categorical` are categorical; the label, the sensitive columns and
    the domain are always categorical; other columns are categorical when they are not
    numeric (strings, booleans) or are integers with at most `max_int_categories` values,
    and numeric otherwise.
    """
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    if isinstance(categorical, str):
        categorical = [categorical]
    forced = set(categorical or ()) | {label, *sensitive} | ({domain} if domain else set())
    unknown = sorted(c for c in forced if c not in frame.columns)
    if unknown:
        raise FairjaxError(f"column(s) {unknown} not found; columns are {list(frame.columns)}")
    cat, num = [], []
    for c in frame.columns:
        col = frame[c]
        is_num = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        small_int = pd.api.types.is_integer_dtype(col) and col.nunique() <= max_int_categories
        (cat if c in forced or not is_num or small_int else num).append(c)
    return Schema(
        label=label,
        sensitive=tuple(sensitive),
        categorical=tuple(cat),
        numeric=tuple(num),
        domain=domain,
    )
