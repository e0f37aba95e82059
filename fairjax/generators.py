"""Registry of the generative methods behind `fairjax fit --method NAME`.

Every method module provides the same interface:

    PRESETS: dict[str, Config]            # at least "quick" and "paper"
    fit(key, dataset, *, config, progress=True) -> Model
    load(path) -> Model
    Model.sample(key, n, *, labels=None, label_proportion=None, progress=False,
                 **method_options) -> DataFrame
    Model.save(path, *, overwrite=False, provenance=None)   # a verified folder (persist)

The model side is the `Generator` protocol. `labels` ([n] 0/1) fixes every row's label;
`label_proportion` p asks for a share p of positive rows (exactly round(p n) where rows are
selected, Bernoulli(p) labels for FADM and the intersectional generators, which condition
on the label); with neither the label follows the model (FADM and the intersectional
generators: the training share). The columns
and dtypes are those of the training table (FairCauseSyn: its role columns). Generators
that make the label with the row honour `labels` / `label_proportion` by selection
(`select_labels`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np
import pandas as pd

from fairjax import persist
from fairjax.errors import FairjaxError

METHODS = {
    "fadm": "fairjax.fadm",
    "vae": "fairjax.baselines.vae",
    "gan": "fairjax.baselines.gan",
    "ddpm": "fairjax.baselines.ddpm",
    "fairgan": "fairjax.baselines.fairgan",
    "intersectional": "fairjax.intersectional.pipeline",
    "faircausesyn": "fairjax.faircausesyn.pipeline",
}


@runtime_checkable
class Generator(Protocol):
    """A fitted generator: what `fit(key, dataset, *, config, progress)` and `load(path)`
    of every method in `METHODS` return."""

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        progress: bool = False,
        **method_options: Any,
    ) -> pd.DataFrame:
        """`n` rows with the training table's columns and dtypes; the same key gives the
        same rows."""
        ...

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write a verified model folder (`fairjax.persist`)."""
        ...


def get(method: str) -> ModuleType:
    """The module implementing `method`; FairjaxError listing the methods for an unknown one."""
    if method not in METHODS:
        raise FairjaxError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    return importlib.import_module(METHODS[method])


def load(path: str | Path):
    """Load any saved generator, whatever its method."""
    return get(persist.read_method(path)).load(path)


def select_labels(
    key: jax.Array,
    n: int,
    *,
    draw_fn: Callable[[jax.Array, int], pd.DataFrame],
    label: str,
    label_proportion: float | None,
    labels: Any = None,
    max_oversample: float = 50.0,
) -> pd.DataFrame:
    """`n` rows from `draw_fn(key, m) -> m rows`, with a requested label share or labels.

    For generators that make the label with the row. Rows are generated in rounds until
    there are enough rows of each label; those are kept (first come first kept), so the
    kept rows are exact draws of the model's conditionals p_model(row | y) mixed with the
    requested label share.

    Args:
      key: PRNG key; the same key gives the same rows.
      n: number of rows.
      draw_fn: draws `m` rows of the model (decoded, with the label column).
      label: name of the 0/1 label column.
      label_proportion: None: the rows as generated. A float p in [0, 1]: exactly
        round(p * n) rows with label 1, in random order.
      labels: optional [n] 0/1: row i has label labels[i] (selected the same way);
        exclusive with `label_proportion`.
      max_oversample: at most `max_oversample * n` rows are generated (p or labels given).

    Returns:
      DataFrame [n rows] with `draw_fn`'s columns.

    Raises:
      FairjaxError: bad `n` / `label_proportion`, or a label too rare to select.
    """
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise FairjaxError(f"n must be a positive integer; got {n!r}")
    n = int(n)
    labels = check_labels(labels, n, label_proportion)
    if label_proportion is None and labels is None:
        return draw_fn(key, n).reset_index(drop=True)
    if labels is None:
        p = float(label_proportion)
        if not 0.0 <= p <= 1.0:
            raise FairjaxError(f"label_proportion must be None or lie in [0, 1]; got {p}")
        want = {1: round(p * n), 0: n - round(p * n)}
    else:
        want = {1: int(labels.sum()), 0: n - int(labels.sum())}
        p = want[1] / n
    if not max_oversample >= 1.0:
        raise FairjaxError(f"max_oversample must be >= 1; got {max_oversample}")
    kept: dict[int, list[pd.DataFrame]] = {0: [], 1: []}
    have, seen = {0: 0, 1: 0}, {0: 0, 1: 0}
    budget, drawn, m = math.ceil(max_oversample * n), 0, n
    draw_key, perm_key = jax.random.split(key)
    r = 0
    while any(have[c] < want[c] for c in (0, 1)) and drawn < budget:
        frame = draw_fn(jax.random.fold_in(draw_key, r), m)
        y = frame[label].to_numpy() == 1
        for c, mask in ((1, y), (0, ~y)):
            seen[c] += int(mask.sum())
            if have[c] < want[c]:
                rows = frame[mask].iloc[: want[c] - have[c]]
                kept[c].append(rows)
                have[c] += len(rows)
        drawn, r = drawn + m, r + 1
        # Size the next round from the label rates seen so far, with 20% slack.
        missing = [c for c in (0, 1) if have[c] < want[c]]
        need = max(((want[c] - have[c]) * drawn / max(seen[c], 1) for c in missing), default=0)
        m = int(min(max(1.2 * need, 256), budget - drawn))
    short = [c for c in (0, 1) if have[c] < want[c]]
    if short:
        c = short[0]
        asked = "labels" if labels is not None else f"label_proportion={p}"
        raise FairjaxError(
            f"{asked}: needs {want[c]} rows with label {c}, but the model "
            f"generated label {c} in only {seen[c]} of {drawn} rows "
            f"({seen[c] / max(drawn, 1):.2%}); ask for a proportion closer to the "
            f"generated one, fewer rows, or pass label_proportion=None"
        )
    frame = pd.concat([f for c in (1, 0) for f in kept[c]], ignore_index=True)
    if labels is None:
        order = np.asarray(jax.random.permutation(perm_key, n))
    else:  # the kept ones where labels is 1, the kept zeros where it is 0, in kept order
        order = np.empty(n, np.int64)
        order[labels == 1] = np.arange(want[1])
        order[labels == 0] = want[1] + np.arange(want[0])
    return frame.iloc[order].reset_index(drop=True)


def check_labels(labels: Any, n: int, label_proportion: float | None) -> np.ndarray | None:
    """`labels` as an [n] int64 0/1 array (None stays None); FairjaxError for a wrong
    shape or value, or when `label_proportion` is given too."""
    if labels is None:
        return None
    if label_proportion is not None:
        raise FairjaxError("pass labels or label_proportion, not both")
    arr = np.asarray(labels)
    if arr.shape != (n,) or not np.isin(arr, (0, 1)).all():
        raise FairjaxError(f"labels must be an [n] = [{n}] array of 0/1; got shape {arr.shape}")
    return arr.astype(np.int64)
