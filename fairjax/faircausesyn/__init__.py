"""FairCauseSyn (arXiv 2506.19082): causally audited synthetic rows from a language model.

- `roles`: the causal roles X, Z, W, Y of a table (`CausalRoles`) and (X, Y)-balanced
  real examples.
- `tokens`, `local`: the offline generator, a small autoregressive transformer over rows
  tokenised in causal order, with path-specific guidance (`PathGuidance`; `PathWeights`).
- `llm`: the optional backend, any OpenAI-compatible chat-completions server, with the
  FairCauseSyn prompt and a strict reply parser.
- `refine`: the loop generate -> audit (`fairjax.causal.decompose`) -> adjust, toward the
  real data's effects ("faithful") or toward zero effects ("fair").
- `pipeline`: `fit` / `load` and the fitted model's `sample`, as for every fairjax method
  (`fairjax fit --method faircausesyn`).

    model = faircausesyn.fit(jax.random.key(0), datasets.load("nhefs"),
                             config=faircausesyn.PRESETS["quick"])
    frame = faircausesyn.sample(model, jax.random.key(1), 1000)
"""

from __future__ import annotations

import jax
import pandas as pd

from fairjax.faircausesyn.local import LocalConfig, PathGuidance, PathWeights, fit_local
from fairjax.faircausesyn.pipeline import (
    PRESETS,
    ROLES,
    FairCauseSynConfig,
    FairCauseSynModel,
    fit,
    load,
    resolve_roles,
)
from fairjax.faircausesyn.refine import Goal, audit, make_goal
from fairjax.faircausesyn.roles import CausalRoles, balanced_rows, make_roles


def sample(model: FairCauseSynModel, key: jax.Array, n: int, **options) -> pd.DataFrame:
    """`model.sample(key, n, **options)`: n rows of the role columns from a fitted model."""
    return model.sample(key, n, **options)


__all__ = [
    "PRESETS",
    "ROLES",
    "CausalRoles",
    "FairCauseSynConfig",
    "FairCauseSynModel",
    "Goal",
    "LocalConfig",
    "PathGuidance",
    "PathWeights",
    "audit",
    "balanced_rows",
    "fit",
    "fit_local",
    "load",
    "make_goal",
    "make_roles",
    "resolve_roles",
    "sample",
]
