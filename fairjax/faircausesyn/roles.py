"""Causal roles of a table's columns in the standard fairness model, and balanced examples.

    roles = make_roles(frame, X="sex", Z=["age", "race"], W=["education"], Y="death",
                       x0="female", x1="male")
    roles.order            # ("sex", "age", "race", "education", "death"): X, Z, W, Y
    examples = balanced_rows(jax.random.key(0), frame, roles, per_cell=5)

References:
  Plečko & Bareinboim (2022), Causal Fairness Analysis, arXiv 2207.11385 (X, Z, W, Y);
  Nagesh, Wang & Rahmani (2025), FairCauseSyn, arXiv 2506.19082 (examples balanced by
  sensitive attribute x outcome).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from fairjax.causal.inputs import check_roles, protected_indicator
from fairjax.errors import FairjaxError
from fairjax.persist import plain


class CausalRoles(NamedTuple):
    """Which column plays which role; `order` is the causal (generation) order X, Z, W, Y.

    Attributes:
      X: protected attribute, taking exactly the values x0 (baseline) and x1.
      Z: confounders (may be empty).
      W: mediators (may be empty).
      Y: outcome, 0/1.
      x0, x1: baseline and comparison values of X; x0 is also the reference value that
        path-specific generation sets X to.
    """

    X: str
    Z: tuple[str, ...]
    W: tuple[str, ...]
    Y: str
    x0: Any
    x1: Any

    @property
    def order(self) -> tuple[str, ...]:
        """All role columns in causal order (X, *Z, *W, Y)."""
        return (self.X, *self.Z, *self.W, self.Y)

    def kwargs(self) -> dict:
        """The roles as keyword arguments of `fairjax.causal.decompose` and
        `fit_fair_predictor`: X, Z, W, Y, x0, x1."""
        return {
            "X": self.X,
            "Z": list(self.Z),
            "W": list(self.W),
            "Y": self.Y,
            "x0": self.x0,
            "x1": self.x1,
        }

    def to_dict(self) -> dict:
        """JSON-friendly form (inverse: `CausalRoles.from_dict`)."""
        return {**self.kwargs(), "x0": plain(self.x0), "x1": plain(self.x1)}

    @classmethod
    def from_dict(cls, d: dict) -> CausalRoles:
        return cls(d["X"], tuple(d["Z"]), tuple(d["W"]), d["Y"], d["x0"], d["x1"])


def make_roles(
    frame: pd.DataFrame,
    *,
    X: str,
    Z: Sequence[str],
    W: Sequence[str],
    Y: str,
    x0: Any,
    x1: Any,
) -> CausalRoles:
    """Validated `CausalRoles` for `frame`.

    Raises FairjaxError when a column is missing, has two roles or NaNs, when X takes values
    other than x0 and x1 (or one of them never), or when Y is not 0/1.
    """
    Z, W = check_roles(frame, X=X, Z=Z, W=W, Y=Y)
    protected_indicator(frame, X, x0, x1)
    y = frame[Y]
    if not (pd.api.types.is_bool_dtype(y) or set(pd.unique(y)) <= {0, 1}):
        raise FairjaxError(
            f"Y={Y!r} must be a 0/1 outcome; it has values like {pd.unique(y)[:5].tolist()}."
        )
    return CausalRoles(X, Z, W, Y, plain(x0), plain(x1))


def balanced_rows(
    key: jax.Array, frame: pd.DataFrame, roles: CausalRoles, *, per_cell: int
) -> pd.DataFrame:
    """`per_cell` real rows from each of the four (X, Y) cells, drawn without replacement
    (with replacement where a cell is smaller), in a random order.

    Args:
      key: PRNG key.
      frame: real rows.
      roles: causal roles (X and Y define the cells).
      per_cell: rows per cell, >= 1.

    Returns:
      DataFrame [4 * per_cell rows] with `frame`'s columns and a fresh index.
    """
    if isinstance(per_cell, bool) or not isinstance(per_cell, (int, np.integer)) or per_cell < 1:
        raise FairjaxError(f"per_cell must be an integer >= 1, got {per_cell!r}.")
    picks = []
    for i, (x, y) in enumerate([(x, y) for x in (roles.x0, roles.x1) for y in (0, 1)]):
        ids = np.flatnonzero(((frame[roles.X] == x) & (frame[roles.Y] == y)).to_numpy())
        if len(ids) == 0:
            raise FairjaxError(f"no real row has {roles.X}={x!r} and {roles.Y}={y}.")
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (max(len(ids), per_cell),)))
        order = np.argsort(u)
        picks.append(ids[order[:per_cell] % len(ids)])
    ids = np.concatenate(picks)
    shuffle = np.argsort(np.asarray(jax.random.uniform(jax.random.fold_in(key, 4), (len(ids),))))
    return frame.iloc[ids[shuffle]].reset_index(drop=True)
