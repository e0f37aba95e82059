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
        direct = state["guidance"]["direct"] if "guidance" in state else state["direct"]
        return pd.DataFrame({"w": [direct]}), {"rows": 1}

    def audit_fn(key, frame):
        return response(generate_fn.last)

    def generate(key, state):
        generate_fn.last = state
        return generate_fn(key, state)

    return generate, audit_fn


def _effects(de, ie, se):
    """The audit's {effect: (estimate, 0 standard error)} of direct, indirect and spurious
    effects de, ie, se (TV = DE - IE - SE, ETT = DE - IE)."""
    return {
        "tv": (de - ie - se, 0.0),
        "ctfde": (de, 0.0),
        "ctfie": (ie, 0.0),
        "ctfse": (se, 0.0),
        "ett": (de - ie, 0.0),
    }


def _linear(weights):
    """Each effect shrinks linearly with its path weight from the real value."""
    de = REAL["ctfde"][0] * (1 - weights["direct"])
    ie = REAL["ctfie"][0] * (1 - weights["indirect"])
    se = REAL["ctfse"][0] * (1 - weights["spurious"])
    return _effects(de, ie, se)


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


NO_GUIDANCE = {"guidance": {"spurious": 0.0, "indirect": 0.0, "direct": 0.0}}


def _guided(scale):
    """Each effect is scale * real value at gamma = 0 and grows as (1 + gamma)."""

    def response(state):
        g = state["guidance"]
        de = scale * REAL["ctfde"][0] * (1 + g["direct"])
        ie = scale * REAL["ctfie"][0] * (1 + g["indirect"])
        se = scale * REAL["ctfse"][0] * (1 + g["spurious"])
        return _effects(de, ie, se)

    return response


def test_guidance_raises_effects_the_generator_under_reproduces():
    # The generator makes every effect at half its real size; removal weights could never
    # reach the faithful goal (test_unreachable_goal_returns_the_best_round), gamma = 1 can.
    gen, aud = _known_generator(_guided(0.5))
    goal = refine.make_goal(REAL, mode="faithful")
    result = refine.refine(
        jax.random.key(0), gen, aud, refine.path_guidance_adjuster, goal, NO_GUIDANCE, max_rounds=3
    )
    assert result.met and result.best == 1 and result.rounds[0].gap == pytest.approx(0.5)
    assert result.state["guidance"] == pytest.approx(
        {"spurious": 1.0, "indirect": 1.0, "direct": 1.0}
    )


def test_guidance_lowers_overshooting_effects_and_removes_them_in_fair_mode():
    gen, aud = _known_generator(_guided(1.5))
    faithful = refine.refine(
        jax.random.key(0),
        gen,
        aud,
        refine.path_guidance_adjuster,
        refine.make_goal(REAL, mode="faithful"),
        NO_GUIDANCE,
        max_rounds=3,
    )
    assert faithful.met
    assert faithful.state["guidance"]["direct"] == pytest.approx(1 / 1.5 - 1)
    fair = refine.refine(
        jax.random.key(0),
        gen,
        aud,
        refine.path_guidance_adjuster,
        refine.make_goal(REAL, mode="fair", business_necessity=("ctfie",)),
        NO_GUIDANCE,
        max_rounds=3,
    )
    assert fair.met
    g = fair.state["guidance"]
    assert g["direct"] == pytest.approx(-1.0) and g["spurious"] == pytest.approx(-1.0)
    assert g["indirect"] == pytest.approx(1 / 1.5 - 1)  # business necessity: the real value


def test_guidance_is_clipped_to_the_steering_range():
    gen, aud = _known_generator(_guided(0.1))  # would need gamma = 9
    goal = refine.make_goal(REAL, mode="faithful")
    result = refine.refine(
        jax.random.key(0), gen, aud, refine.path_guidance_adjuster, goal, NO_GUIDANCE, max_rounds=2
    )
    assert not result.met
    assert result.rounds[1].state["guidance"]["direct"] == refine.GAMMA_STEER_RANGE[1]


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
