"""Binary sensitive axes from table columns, and the bundled multi-attribute settings.

An axis turns one column into a bit. Axes are written as a comma-separated spec, one term
per axis, in axis order (axis 0 first):

    "sex==Male,race==White,age>50"

- `col==v`: bit 1 where the column equals v (numbers compare as numbers on numeric
  columns); `col!=v` is its negation;
- `col>t`, `col>=t`, `col<t`, `col<=t`: numeric threshold;
- `col` alone: a column with exactly two values; bit 1 is the larger value in sorted order.

Bundled settings (`SETTINGS`, loaded by `load_setting`), 3 axes = 8 groups each:

- "adult": sex (Male = 1) x race (White = 1 vs non-White) x age (> 50 = 1), income label
  (> 50K = 1). The axis columns sex, race and age are not classifier features.
- "compas": sex (Male = 1) x race (African-American = 1 vs other) x age (< 25 = 1). Why
  "< 25": it is the lower boundary of COMPAS's own age_cat, the age band ProPublica found
  most associated with higher risk scores (defendants under 25 were 2.5 times as likely
  to get a higher score), and it gives larger smallest groups than "> 45" (female, other
  race, under 25: 101 of 6,172 rows, against 64 for female, African-American, over 45).
  The label is flipped to `no_recidivism` = 1 - two_year_recid, so that 1 is the
  favourable outcome and the TPR measures equal opportunity for it. `age_cat` (derived
  from the age axis) and `decile_score` (COMPAS's own output) are dropped; the features
  left are the three juvenile counts, priors_count and c_charge_degree.

References:
    arXiv 2405.14521 (Adult and COMPAS with three binary sensitive attributes);
    Angwin et al., "Machine Bias", ProPublica 2016 (COMPAS, age under 25).
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from fairjax.data import Schema, TabularDataset
from fairjax.errors import FairjaxError
from fairjax.intersectional.groups import group_ids
from fairjax.persist import plain

__all__ = [
    "SETTINGS",
    "Axis",
    "Setting",
    "apply_setting",
    "axis_bits",
    "binarise",
    "binarise_frame",
    "format_axes",
    "group_of_rows",
    "load_setting",
    "parse_axes",
    "resolve_axes",
    "split_cells",
]

_OPS = ("==", "!=", ">=", "<=", ">", "<")
_TERM = re.compile(r"^\s*(?P<col>[^=!<>]+?)\s*(?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>.+?))?\s*$")


class Axis(NamedTuple):
    """One binary sensitive axis.

    Attributes:
        column: source column.
        op: "==", "!=", ">", ">=", "<", "<=".
        value: right-hand side (str, int or float, as in the column).
        labels: (label of bit 0, label of bit 1), used for reports and generated tables.
    """

    column: str
    op: str
    value: object
    labels: tuple[str, str]

    def spec(self) -> str:
        """The axis as a spec term, e.g. "age>50"."""
        return f"{self.column}{self.op}{self.value}"

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "column": self.column,
            "op": self.op,
            "value": plain(self.value),
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Axis:
        """Inverse of `to_dict`."""
        return cls(d["column"], d["op"], d["value"], tuple(d["labels"]))


_NEGATE = {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _axis(frame: pd.DataFrame, column: str, op: str | None, text: str | None) -> Axis:
    if column not in frame.columns:
        raise FairjaxError(f"axis column {column!r} not found; columns are {list(frame.columns)}")
    col = frame[column]
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if op is None:
        values = sorted(pd.unique(col).tolist(), key=str)
        if len(values) != 2:
            raise FairjaxError(
                f"axis {column!r} without a condition needs a column with exactly 2 values; "
                f"it has {len(values)} ({values[:5]}); write e.g. {column}=={values[0]!r} "
                f"or {column}>THRESHOLD"
            )
        return Axis(column, "==", values[1], (str(values[0]), str(values[1])))
    if numeric:
        try:
            value = float(text)
        except ValueError:
            raise FairjaxError(
                f"axis {column}{op}{text}: column {column!r} is numeric, {text!r} is not a number"
            ) from None
        value = int(value) if value.is_integer() else value
    elif op not in ("==", "!=") and set(col.astype(str).unique()) <= {
        f"{_NEGATE[op]}{text.strip()}",
        f"{op}{text.strip()}",
    }:
        value = float(text)  # a binarised column: it holds this axis's labels
        value = int(value) if value.is_integer() else value
    else:
        if op not in ("==", "!="):
            raise FairjaxError(
                f"axis {column}{op}{text}: {op} needs a numeric column; {column!r} holds "
                f"{col.dtype}; use == or !="
            )
        value = text
    if op in ("==", "!="):
        others = sorted({str(v) for v in pd.unique(col)} - {str(value)})
        if str(value) not in {str(v) for v in pd.unique(col)}:
            raise FairjaxError(
                f"axis {column}{op}{text}: value {text!r} does not occur in {column!r}; "
                f"values are {sorted(map(str, pd.unique(col)))[:10]}"
            )
        other = others[0] if len(others) == 1 else f"not {value}"
        labels = (other, str(value)) if op == "==" else (str(value), other)
    else:
        labels = (f"{_NEGATE[op]}{value}", f"{op}{value}")
    return Axis(column, op, value, labels)


def parse_axes(spec: str, frame: pd.DataFrame) -> tuple[Axis, ...]:
    """Axes of a spec such as "sex==Male,race==White,age>50", checked against `frame`.

    Args:
        spec: comma-separated axis terms (module docstring).
        frame: the table the columns and values are checked against.

    Returns:
        One `Axis` per term, in order.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise FairjaxError(f"axes must be a non-empty spec like 'sex==Male,age>50'; got {spec!r}")
    axes = []
    for term in spec.split(","):
        m = _TERM.match(term)
        if m is None or not m.group("col"):
            raise FairjaxError(
                f"cannot read axis term {term!r}; write COLUMN, COLUMN==VALUE or "
                f"COLUMN>THRESHOLD (operators {', '.join(_OPS)})"
            )
        axes.append(_axis(frame, m.group("col").strip(), m.group("op"), m.group("value")))
    columns = [a.column for a in axes]
    if len(set(columns)) != len(columns):
        raise FairjaxError(f"each axis needs its own column; got {columns}")
    return tuple(axes)


def format_axes(axes: tuple[Axis, ...]) -> str:
    """The spec of `axes` (inverse of `parse_axes`)."""
    return ",".join(a.spec() for a in axes)


def axis_bits(frame: pd.DataFrame, axes: tuple[Axis, ...]) -> np.ndarray:
    """[n, k] int bits of every row.

    Works on raw tables and on binarised ones (`binarise`): == and != compare as strings
    unless both column and value are numeric, and a threshold axis on a non-numeric column
    reads the column through the axis's two labels.
    """
    cols = []
    for a in axes:
        if a.column not in frame.columns:
            raise FairjaxError(f"axis column {a.column!r} not found in {list(frame.columns)}")
        col = frame[a.column]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if a.op in ("==", "!="):
            if numeric and not isinstance(a.value, str):
                hit = col.to_numpy() == a.value
            else:
                hit = col.astype(str).to_numpy() == str(a.value)
            cols.append(hit if a.op == "==" else ~hit)
        elif numeric:
            v = col.to_numpy(np.float64)
            ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
            cols.append(ops[a.op](v, a.value))
        else:
            as_str = col.astype(str)
            bad = ~as_str.isin(a.labels)
            if bad.any():
                raise FairjaxError(
                    f"axis {a.spec()}: column {a.column!r} is neither numeric nor binarised "
                    f"(labels {list(a.labels)}); found {as_str[bad].iloc[0]!r}"
                )
            cols.append((as_str == a.labels[1]).to_numpy())
    return np.stack(cols, axis=1).astype(np.int64)


def binarise_frame(frame: pd.DataFrame, axes: tuple[Axis, ...]) -> pd.DataFrame:
    """A copy of `frame` with each axis column replaced by its two labels (str).

    Idempotent, so it can be applied to real tables and to generated ones alike (the
    tables `IntersectionalModel.sample` writes already hold the labels).
    """
    bits = axis_bits(frame, axes)
    frame = frame.copy()
    for j, a in enumerate(axes):
        frame[a.column] = pd.Series(
            np.asarray(a.labels, dtype=object)[bits[:, j]], index=frame.index
        ).astype(str)
    return frame


def binarise(dataset: TabularDataset, axes: tuple[Axis, ...] | str) -> TabularDataset:
    """The data set with each axis column replaced by its two labels (a string column).

    The axis columns become the sensitive columns (in axis order) and categorical; a
    domain column that is an axis is no longer a domain.

    Args:
        dataset: the data set.
        axes: axes or a spec (parsed against `dataset.frame`).

    Returns:
        A new `TabularDataset` (same name); binarising it again changes nothing.
    """
    if isinstance(axes, str):
        axes = parse_axes(axes, dataset.frame)
    frame = binarise_frame(dataset.frame, axes)
    names = [a.column for a in axes]
    schema = dataset.schema
    schema = dataclasses.replace(
        schema,
        sensitive=tuple(names),
        categorical=tuple(c for c in frame.columns if c in set(schema.categorical) | set(names)),
        numeric=tuple(c for c in schema.numeric if c not in names),
        domain=None if schema.domain in names else schema.domain,
    )
    return dataclasses.replace(dataset, frame=frame, schema=schema)


class Setting(NamedTuple):
    """A bundled multi-attribute setting.

    Attributes:
        dataset: bundled data set name.
        axes: axis spec (on the raw columns).
        drop: feature columns removed from the table.
        flip_label: replace the label y by 1 - y (so that 1 is favourable).
        label: name of the (possibly flipped) label column.
        label_names: what 0 and 1 of that label mean.
    """

    dataset: str
    axes: str
    drop: tuple[str, ...] = ()
    flip_label: bool = False
    label: str | None = None
    label_names: tuple[str, str] | None = None


SETTINGS: dict[str, Setting] = {
    "adult": Setting("adult", "sex==Male,race==White,age>50"),
    "compas": Setting(
        "compas",
        "sex==Male,race==African-American,age<25",
        drop=("age_cat", "decile_score"),
        flip_label=True,
        label="no_recidivism",
        label_names=("recidivism", "no recidivism"),
    ),
}


def apply_setting(dataset: TabularDataset, setting: Setting | str) -> TabularDataset:
    """Drop the setting's columns, flip its label if asked, and binarise its axes."""
    if isinstance(setting, str):
        if setting not in SETTINGS:
            raise FairjaxError(f"unknown setting {setting!r}; bundled: {list(SETTINGS)}")
        setting = SETTINGS[setting]
    schema = dataset.schema
    frame = dataset.frame.drop(columns=[c for c in setting.drop if c in dataset.frame.columns])
    label = schema.label
    label_names = schema.label_names
    if setting.flip_label:
        new = setting.label or label
        frame = frame.assign(**{new: 1 - frame[label].to_numpy(np.int64)})
        if new != label:
            frame = frame.drop(columns=[label])
        frame = frame[[c for c in frame.columns if c != new] + [new]]
        label = new
        label_names = setting.label_names or (label_names[1], label_names[0])
    keep = set(frame.columns)
    schema = Schema(
        label=label,
        sensitive=tuple(c for c in schema.sensitive if c in keep),
        categorical=tuple(c for c in frame.columns if c in set(schema.categorical) | {label}),
        numeric=tuple(c for c in schema.numeric if c in keep),
        domain=schema.domain if schema.domain in keep else None,
        label_names=label_names,
    )
    return binarise(dataclasses.replace(dataset, frame=frame, schema=schema), setting.axes)


def load_setting(name: str) -> TabularDataset:
    """A bundled setting ("adult" or "compas") as a binarised `TabularDataset`.

    Returns:
        The data set with 3 two-valued sensitive columns (the axes, in order), the
        setting's columns dropped and its label flipped if the setting says so.
    """
    from fairjax import datasets  # the math of this package never needs the loaders

    if name not in SETTINGS:
        raise FairjaxError(f"unknown setting {name!r}; bundled: {list(SETTINGS)}")
    return apply_setting(datasets.load(SETTINGS[name].dataset), SETTINGS[name])


def resolve_axes(dataset: TabularDataset, spec: str = "auto") -> tuple[Axis, ...]:
    """The axes a pipeline uses for `dataset`.

    "auto": the bundled setting of the data set's name (`SETTINGS`, raw or binarised
    table) when it applies; otherwise the sensitive columns when there are at least two
    and each has exactly two values; otherwise an error.
    Any other string is parsed with `parse_axes`.
    """
    frame = dataset.frame
    if spec != "auto":
        return parse_axes(spec, frame)
    if dataset.name in SETTINGS:
        try:
            return parse_axes(SETTINGS[dataset.name].axes, frame)
        except FairjaxError:
            pass  # e.g. a column of the setting was dropped: fall back to the schema
    sens = dataset.schema.sensitive
    if len(sens) >= 2 and all(frame[c].nunique() == 2 for c in sens):
        return parse_axes(",".join(sens), frame)
    raise FairjaxError(
        f"cannot choose intersectional axes for {dataset.name!r}: its sensitive columns "
        f"{list(sens)} are not >= 2 two-valued columns; pass axes such as "
        "'sex==Male,race==White,age>50'"
    )


def group_of_rows(frame: pd.DataFrame, axes: tuple[Axis, ...]) -> np.ndarray:
    """[n] int group id of every row (`groups.group_ids` of `axis_bits`)."""
    return group_ids(axis_bits(frame, axes))


def split_cells(
    key: jax.Array, cells: np.ndarray, fractions: tuple[float, ...] = (0.6, 0.2, 0.2)
) -> tuple[np.ndarray, ...]:
    """Split row indices into parts with the given fractions, stratified by cell.

    Within every cell (e.g. group x label) rows are shuffled with `key` and cut at the
    cumulative fractions (rounded), so every part keeps the cell proportions.

    Args:
        key: PRNG key.
        cells: [n] int cell of each row.
        fractions: positive fractions summing to 1.

    Returns:
        One sorted int64 index array per fraction.
    """
    fr = np.asarray(fractions, np.float64)
    if fr.ndim != 1 or (fr <= 0).any() or abs(fr.sum() - 1.0) > 1e-9:
        raise FairjaxError(f"fractions must be positive and sum to 1; got {fractions}")
    cells = np.asarray(cells)
    bits = np.asarray(jax.random.bits(key, (len(cells),), np.uint32))
    parts = [[] for _ in fr]
    cuts = np.cumsum(fr)[:-1]
    for c in np.unique(cells):
        ids = np.flatnonzero(cells == c)
        ids = ids[np.argsort(bits[ids], kind="stable")]
        bounds = np.round(cuts * len(ids)).astype(int)
        for j, part in enumerate(np.split(ids, bounds)):
            parts[j].append(part)
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
