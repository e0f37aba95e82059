"""The refinement loop and goals of fairjax.faircausesyn.refine, on generators whose effects
are known functions of the path weights."""

import jax
import numpy as np
import pandas as pd
import pytest

from fairjax.causal import MEASURES
from fairjax.errors import FairjaxError
from fairjax.faircausesyn import refine

REAL = {
    "tv": (0.10, 0.02),
    "ctfde": (0.06, 0.03),
    "ctfie": (-0.03, 0.02),
    "ctfse": (-0.01, 0.01),
    "ett": (0.09, 0.02),
}
NO_WEIGHTS = {"spurious": 0.0, "indirect": 0.0, "direct": 0.0}


def test_faithful_goal_targets_every_measure_on_the_tv_scale():
    goal = refine.make_goal(REAL, mode="faithful")
    assert goal.targets == {m: REAL[m][0] for m in MEASURES}
    assert goal.scale == pytest.approx(0.10)
    shifted = {m: (v + 0.009, s) for m, (v, s) in REAL.items()}
    assert goal.gap(shifted) == pytest.approx(0.09)
    assert goal.gap(shifted) <= goal.tolerance
    shifted["ctfie"] = (REAL["ctfie"][0] - 0.011, 0.0)
    assert goal.gap(shifted) == pytest.approx(0.11)


def test_fair_goal_zero_except_business_necessity():
    goal = refine.make_goal(
        REAL, mode="fair", effects=("ctfde", "ctfse"), business_necessity=("ctfie",)
    )
    assert goal.targets == {"ctfde": 0.0, "ctfse": 0.0, "ctfie": -0.03}
    m = {"ctfde": (0.004, 0.0), "ctfse": (-0.002, 0.0), "ctfie": (-0.035, 0.0)}
    assert goal.gap(m) == pytest.approx(0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "exact"}, "mode must be one of"),
        ({"mode": "fair", "effects": ("tv",)}, "effects must be a list"),
        ({"mode": "fair", "effects": "ctfde"}, "effects must be a list"),
        ({"mode": "fair", "effects": ()}, "at least one effect"),
        ({"mode": "faithful", "tolerance": 0}, "tolerance must be > 0"),
    ],
)
def test_goal_errors(kwargs, match):
    with pytest.raises(FairjaxError, match=match):
        refine.make_goal(REAL, **kwargs)


def test_goal_needs_a_disparity():
    with pytest.raises(FairjaxError, match="no disparity"):
        refine.make_goal({**REAL, "tv": (0.0, 0.01)}, mode="faithful")


def test_goal_round_trips_through_json():
    goal = refine.make_goal(REAL, mode="fair", business_necessity=("ctfie",))
    assert refine.Goal.from_dict(goal.to_dict()) == goal


def _known_generator(response):
    """generate_fn / audit_fn pair whose measures are `response(weights)`, exactly."""

    def generate_fn(key, state):
        return pd.DataFrame({"w": [state["direct"]]}), {"rows": 1}

    def audit_fn(key, frame):
        return response(generate_fn.last)

    def generate(key, state):
        generate_fn.last = state
        return generate_fn(key, state)

    return generate, audit_fn


def _linear(weights):
    """Each effect shrinks linearly with its path weight from the real value."""
    de = REAL["ctfde"][0] * (1 - weights["direct"])
    ie = REAL["ctfie"][0] * (1 - weights["indirect"])
    se = REAL["ctfse"][0] * (1 - weights["spurious"])
    return {
        "tv": (de - ie - se, 0.0),
        "ctfde": (de, 0.0),
        "ctfie": (ie, 0.0),
        "ctfse": (se, 0.0),
        "ett": (de - ie, 0.0),
    }


def test_fair_loop_removes_linear_effects_in_two_rounds():
    gen, aud = _known_generator(_linear)
    goal = refine.make_goal(REAL, mode="fair")
    logged = []
    result = refine.refine(
        jax.random.key(0),
        gen,
        aud,
        refine.path_weight_adjuster,
        goal,
        NO_WEIGHTS,
        max_rounds=5,
        log_fn=logged.append,
    )
    assert [r.index for r in result.rounds] == [0, 1] and len(logged) == 2
    assert result.rounds[0].gap == pytest.approx(0.6) and not result.rounds[0].met
    assert result.met and result.best == 1
    assert result.state == pytest.approx({"spurious": 1.0, "indirect": 1.0, "direct": 1.0})
    assert result.frame["w"].item() == pytest.approx(1.0)


def test_business_necessity_effect_keeps_its_path():
    gen, aud = _known_generator(_linear)
    goal = refine.make_goal(REAL, mode="fair", business_necessity=("ctfie",))
    result = refine.refine(
        jax.random.key(0), gen, aud, refine.path_weight_adjuster, goal, NO_WEIGHTS, max_rounds=3
    )
    assert result.met and result.rounds[0].gap == pytest.approx(0.6)
    assert result.state["indirect"] == 0.0
    assert result.state["direct"] == pytest.approx(1.0)


def test_secant_steps_converge_on_a_nonlinear_response():
    # ctfde = 0.06 (1 - w)^2 + 0.01: the line through (0, m0), (1, 0) overshoots, later
    # rounds fit a line through the measured points; the target 0.03 needs w = 1 - sqrt(1/3).
    def response(weights):
        m = _linear(NO_WEIGHTS)
        m["ctfde"] = (0.06 * (1 - weights["direct"]) ** 2 + 0.01, 0.0)
        return m

    gen, aud = _known_generator(response)
    goal = refine.Goal("fair", {"ctfde": 0.03}, 0.1, 0.02, REAL)
    result = refine.refine(
        jax.random.key(0), gen, aud, refine.path_weight_adjuster, goal, NO_WEIGHTS, max_rounds=8
    )
    assert result.met and len(result.rounds) > 2
    assert result.state["direct"] == pytest.approx(1 - np.sqrt(1 / 3), abs=0.04)
    gaps = [r.gap for r in result.rounds]
    assert result.best == int(np.argmin(gaps)) == len(gaps) - 1


def test_unreachable_goal_returns_the_best_round():
    # The generator under-represents ctfde; weights can only shrink effects: never met.
    def response(weights):
        m = _linear(weights)
        m["ctfde"] = (0.5 * m["ctfde"][0], 0.0)
        return m

    gen, aud = _known_generator(response)
    goal = refine.make_goal(REAL, mode="faithful")
    result = refine.refine(
        jax.random.key(0), gen, aud, refine.path_weight_adjuster, goal, NO_WEIGHTS, max_rounds=3
    )
    assert len(result.rounds) == 3 and not result.met
    assert result.best == 0 and result.state == NO_WEIGHTS
    assert result.rounds[0].gap == pytest.approx(0.3)


def test_round_keys_differ_and_max_rounds_is_checked():
    seen = []

    def gen(key, state):
        seen.append(np.asarray(jax.random.key_data(key)).tolist())
        return pd.DataFrame({"w": [0.0]}), {}

    goal = refine.make_goal(REAL, mode="faithful")
    refine.refine(
        jax.random.key(0),
        gen,
        lambda k, f: {m: (0.0, 0.0) for m in MEASURES},
        lambda s, r, g: s,
        goal,
        NO_WEIGHTS,
        max_rounds=3,
    )
    assert len(seen) == 3 and len({str(s) for s in seen}) == 3
    with pytest.raises(FairjaxError, match="max_rounds"):
        refine.refine(jax.random.key(0), gen, None, None, goal, NO_WEIGHTS, max_rounds=0)
