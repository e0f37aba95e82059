"""The FairCauseSyn refinement loop: generate -> audit -> adjust -> repeat.

    goal = make_goal(real_measures, mode="fair")
    result = refine(key, generate_fn, audit_fn, adjust_fn, goal, state0, max_rounds=5)
    result.frame, result.rounds[result.best]

The loop is generic over the generator: `generate_fn(key, state)` makes a synthetic table
from a generation state (path weights for the local model, prompt feedback for an LLM),
`audit_fn(key, frame)` measures its causal effects, and `adjust_fn(state, rounds, goal)`
proposes the next state from every round so far. Each round is logged; the round closest to
the goal is returned (the first that meets it ends the loop).

Goals. Both modes compare measures m (tv, ctfde, ctfie, ctfse, ett) of the synthetic data
with target values g on the scale of the real data's total variation:

    gap = max_m |m_syn - g_m| / |tv_real|,      the goal is met when gap <= tolerance (0.1).

- "faithful": g = the real data's value of every measure. FairCauseSyn (arXiv 2506.19082)
  claims synthetic data within 10% of the real data on causal fairness metrics without
  defining the 10%; relative errors of effects near zero are unstable, so we measure every
  deviation against |tv_real|, the disparity being decomposed.
- "fair": g = 0 for the chosen effects (default ctfde, ctfie, ctfse), or the real value for
  effects declared business necessity; other measures are free.

`path_guidance_adjuster` is the local model's `adjust_fn`: each effect is steered by the
guidance weight gamma of its own path (ctfde <- direct, ctfie <- indirect, ctfse <-
spurious; `local.PathGuidance`), in both directions: gamma = -1 removes the path, 0 is the
trained model, gamma > 0 strengthens it, so faithful mode can raise an effect the generator
under-reproduces and fair mode can drive it to 0 or hold a business-necessity value. To
first order the effect is linear in gamma, m(gamma) ~ (1 + gamma) m(0): a line through the
rounds measured so far (through (-1, 0) while only one gamma is known) is solved for the
target and clipped to `GAMMA_STEER_RANGE`. The state is {"guidance": {"spurious",
"indirect", "direct"}}.

`path_weight_adjuster` steers the older removal probabilities (`local.PathWeights`, state
{"spurious", "indirect", "direct"} in [0, 1]); it can only shrink effects (m(w) ~ (1 - w)
m(0)) and is kept for models refined before guidance existed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from fairjax.causal import MEASURES, decompose
from fairjax.errors import FairjaxError
from fairjax.faircausesyn.roles import CausalRoles

MODES = ("faithful", "fair")
EFFECTS = ("ctfde", "ctfie", "ctfse")
PATH_OF = {"ctfde": "direct", "ctfie": "indirect", "ctfse": "spurious"}
# Guidance weights the loop may choose: beyond ~3 the extrapolated conditionals leave the
# support the model was trained on; below -1.5 an effect is reversed, not removed.
GAMMA_STEER_RANGE = (-1.5, 3.0)

Measures = dict[str, tuple[float, float]]  # measure -> (value, standard error)


class Goal(NamedTuple):
    """What the loop aims for.

    Attributes:
      mode: "faithful" or "fair".
      targets: measure -> target value, for the measures that count.
      scale: |tv| of the real data, the unit of the gap.
      tolerance: the goal is met when gap <= tolerance.
      real: the real data's measures (value, sd), for the record.
    """

    mode: str
    targets: dict[str, float]
    scale: float
    tolerance: float
    real: Measures

    def gap(self, measures: Mapping[str, tuple[float, float]]) -> float:
        """max over targets of |m - target| / scale."""
        return max(abs(measures[m][0] - g) for m, g in self.targets.items()) / self.scale

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "targets": self.targets,
            "scale": self.scale,
            "tolerance": self.tolerance,
            "real": {k: list(v) for k, v in self.real.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Goal:
        real = {k: (float(v[0]), float(v[1])) for k, v in d["real"].items()}
        return cls(d["mode"], dict(d["targets"]), d["scale"], d["tolerance"], real)


def check_goal_options(
    mode: str, effects: Sequence[str], business_necessity: Sequence[str], tolerance: float
) -> None:
    """FairjaxError naming the first bad option of `make_goal`."""
    if mode not in MODES:
        raise FairjaxError(f"mode must be one of {MODES}, got {mode!r}.")
    for name, given in (("effects", effects), ("business_necessity", business_necessity)):
        bad = [given] if isinstance(given, str) else [e for e in given if e not in EFFECTS]
        if bad:
            raise FairjaxError(
                f"{name} must be a list drawn from {EFFECTS}; got {given!r} "
                f"(unknown effect(s) {bad})."
            )
    if not tolerance > 0:
        raise FairjaxError(f"tolerance must be > 0, got {tolerance!r}.")


def make_goal(
    real: Measures,
    *,
    mode: str,
    effects: Sequence[str] = EFFECTS,
    business_necessity: Sequence[str] = (),
    tolerance: float = 0.1,
) -> Goal:
    """The goal of a refinement run from the real data's measures.

    Args:
      real: the real data's measures, measure -> (value, sd) (see `audit`).
      mode: "faithful" (every measure as in the real data) or "fair" (the chosen effects at
        0, business-necessity effects at their real value).
      effects: effects driven in fair mode, a subset of ("ctfde", "ctfie", "ctfse").
      business_necessity: effects kept at their real value in fair mode.
      tolerance: allowed gap, in units of |tv_real|.
    """
    check_goal_options(mode, effects, business_necessity, tolerance)
    scale = abs(real["tv"][0])
    if not scale > 1e-6:
        raise FairjaxError(
            f"the real data's tv is {real['tv'][0]:.2g}: there is no disparity to decompose "
            "or to measure deviations against."
        )
    if mode == "faithful":
        targets = {m: float(real[m][0]) for m in MEASURES}
    else:
        chosen = [*dict.fromkeys([*effects, *business_necessity])]
        if not chosen:
            raise FairjaxError("fair mode needs at least one effect.")
        bn = set(business_necessity)
        targets = {e: float(real[e][0]) if e in bn else 0.0 for e in chosen}
    return Goal(mode, targets, float(scale), float(tolerance), dict(real))


def audit(
    key: jax.Array,
    frame: pd.DataFrame,
    roles: CausalRoles,
    *,
    model: str = "auto",
    n_folds: int = 5,
) -> Measures:
    """The causal measures of `frame` (`fairjax.causal.decompose`): measure -> (value, sd)."""
    table = decompose(frame, **roles.kwargs(), key=key, model=model, n_folds=n_folds)
    return {
        m: (float(v), float(s))
        for m, v, s in zip(table.measure, table.value, table.sd, strict=True)
    }


class Round(NamedTuple):
    """One round of the loop, as logged.

    Attributes:
      index: 0, 1, ...
      state: the generation state used (JSON-friendly).
      measures: the synthetic data's measures, measure -> (value, sd).
      gap: distance to the goal (`Goal.gap`).
      met: gap <= tolerance.
      info: what the generator reported (e.g. rows kept / dropped).
      seconds: wall time of the round.
    """

    index: int
    state: Any
    measures: Measures
    gap: float
    met: bool
    info: dict
    seconds: float

    def to_dict(self) -> dict:
        d = self._asdict()
        d["measures"] = {k: list(v) for k, v in self.measures.items()}
        return d


class RefineResult(NamedTuple):
    """The loop's outcome: the best round's data and every round's log."""

    frame: pd.DataFrame
    best: int
    rounds: list[Round]
    goal: Goal

    @property
    def met(self) -> bool:
        return self.rounds[self.best].met

    @property
    def state(self) -> Any:
        return self.rounds[self.best].state


def refine(
    key: jax.Array,
    generate_fn: Callable[[jax.Array, Any], tuple[pd.DataFrame, dict]],
    audit_fn: Callable[[jax.Array, pd.DataFrame], Measures],
    adjust_fn: Callable[[Any, list[Round], Goal], Any],
    goal: Goal,
    state: Any,
    *,
    max_rounds: int = 5,
    log_fn: Callable[[Round], None] | None = None,
) -> RefineResult:
    """Run generate -> audit -> adjust until the goal is met or `max_rounds` rounds ran.

    Args:
      key: PRNG key; round r uses `fold_in(key, r)` for generation and auditing.
      generate_fn: `(key, state) -> (frame, info)`.
      audit_fn: `(key, frame) -> measures`.
      adjust_fn: `(state, rounds so far, goal) -> next state`.
      goal: see `make_goal`.
      state: the first round's generation state.
      max_rounds: >= 1.
      log_fn: called with each finished round (e.g. to print it).

    Returns:
      `RefineResult` with the data of the round of smallest gap (the first that meets the
      goal, since the loop stops there).
    """
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise FairjaxError(f"max_rounds must be an integer >= 1, got {max_rounds!r}.")
    rounds: list[Round] = []
    frames: list[pd.DataFrame] = []
    for r in range(max_rounds):
        start = time.perf_counter()
        gen_key, audit_key = jax.random.split(jax.random.fold_in(key, r))
        frame, info = generate_fn(gen_key, state)
        measures = audit_fn(audit_key, frame)
        gap = goal.gap(measures)
        done = Round(
            r, state, measures, gap, gap <= goal.tolerance, dict(info), time.perf_counter() - start
        )
        rounds.append(done)
        frames.append(frame)
        if log_fn is not None:
            log_fn(done)
        if done.met:
            break
        state = adjust_fn(state, rounds, goal)
    best = int(np.argmin([r.gap for r in rounds]))
    return RefineResult(frames[best], best, rounds, goal)


def _secant(xs: np.ndarray, ms: np.ndarray, anchor: float, target: float) -> float | None:
    """The x where a least-squares line through (xs, ms) (with the point (anchor, 0) added
    while every x is the same) reaches `target`; None when the slope is unknown or ~0."""
    if np.ptp(xs) < 1e-6:
        if abs(xs[0] - anchor) < 1e-6:  # only the anchor seen: nothing to learn the slope from
            return None
        xs, ms = np.append(xs, anchor), np.append(ms, 0.0)
    slope, intercept = np.polyfit(xs, ms, 1)
    if abs(slope) < 1e-9:
        return None
    return (target - intercept) / slope


def path_guidance_adjuster(
    state: Mapping[str, Mapping[str, float]], rounds: list[Round], goal: Goal
) -> dict[str, dict[str, float]]:
    """Next guidance {"guidance": {"spurious", "indirect", "direct"}} for the local generator.

    For each targeted effect e with path p: fit m_e = a + b gamma_p to the rounds so far by
    least squares (through (-1, 0) as a second point while every round used the same
    gamma), solve for the target, clip to `GAMMA_STEER_RANGE`. Untargeted paths keep their
    gamma.
    """
    new = dict(state["guidance"])
    for effect, target in goal.targets.items():
        if effect not in PATH_OF:
            continue
        path = PATH_OF[effect]
        g = np.array([r.state["guidance"][path] for r in rounds], float)
        m = np.array([r.measures[effect][0] for r in rounds], float)
        step = _secant(g, m, -1.0, target)
        if step is not None:
            new[path] = float(np.clip(step, *GAMMA_STEER_RANGE))
    return {"guidance": new}


def path_weight_adjuster(
    state: Mapping[str, float], rounds: list[Round], goal: Goal
) -> dict[str, float]:
    """Next path weights {"spurious", "indirect", "direct"} for the local generator.

    For each targeted effect e with path p: fit m_e = a + b w_p to the rounds so far by
    least squares (through (1, 0) as a second point while every round used the same
    weight), solve for the target, clip to [0, 1]. Untargeted paths keep their weight.
    """
    new = dict(state)
    for effect, target in goal.targets.items():
        if effect not in PATH_OF:
            continue
        path = PATH_OF[effect]
        w = np.array([r.state[path] for r in rounds], float)
        m = np.array([r.measures[effect][0] for r in rounds], float)
        step = _secant(w, m, 1.0, target)
        if step is not None:
            new[path] = float(np.clip(step, 0.0, 1.0))
    return new
