"""FairCauseSyn end to end: roles, fit (local and LLM backends), refinement, save/load, CLI."""

import dataclasses
import io
import json

import jax
import numpy as np
import pandas as pd
import pytest
from llm_stub import ok

from fairjax import datasets, faircausesyn, generators
from fairjax.cli import main as cli_main
from fairjax.data import Schema, TabularDataset
from fairjax.errors import FairjaxError
from fairjax.faircausesyn import pipeline

TINY = dataclasses.replace(
    pipeline.PRESETS["quick"], steps=400, rounds=3, rows_per_round=4000, audit_folds=3
)
# The causal roles of `scm_frame`'s table.
SCM_ROLES = dict(X="x", Z="z", W="w", Y="y", x0="a", x1="b")


def scm_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """X -> W -> Y, X -> Y, Z -> X, Z -> Y with strong effects: E[y | x] = 0.22 (a), 0.78
    (b), so tv = 0.56 (P(z = 1 | x) = 0.3, 0.7; E[y | x, z] = 0.1 + 0.3 x + 0.3 P(w | x) +
    0.2 z)."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    x = rng.random(n) < 0.3 + 0.4 * z
    w = rng.random(n) < 0.2 + 0.6 * x
    y = rng.random(n) < 0.1 + 0.3 * x + 0.3 * w + 0.2 * z
    return pd.DataFrame(
        {"x": np.where(x, "b", "a"), "z": z, "w": w.astype(int), "y": y.astype(int)}
    )


@pytest.fixture(scope="module")
def scm():
    frame = scm_frame(4000)
    schema = Schema(label="y", sensitive=("x",), categorical=("x", "z", "w", "y"), numeric=())
    return TabularDataset(frame, schema, name="scm")


@pytest.fixture(scope="module")
def fitted(scm):
    config = dataclasses.replace(TINY, **SCM_ROLES)
    return faircausesyn.fit(jax.random.key(0), scm, config=config, progress=False)


def test_roles_default_to_the_declared_ones_for_bundled_data():
    frame, roles = pipeline.resolve_roles(datasets.load("compas"), TINY)
    assert roles.X == "race" and (roles.x0, roles.x1) == ("Caucasian", "African-American")
    assert set(frame.race) == {"Caucasian", "African-American"}
    assert roles.order[-1] == "two_year_recid" and "ht" not in pipeline.ROLES["nhefs"]["W"]


def test_roles_from_the_config_and_their_errors(scm):
    _, roles = pipeline.resolve_roles(scm, dataclasses.replace(TINY, X="x", Z="z", W="w"))
    assert roles.order == ("x", "z", "w", "y") and (roles.x0, roles.x1) == ("a", "b")
    with pytest.raises(FairjaxError, match="x0='c' is not a value of X"):
        pipeline.resolve_roles(scm, dataclasses.replace(TINY, X="x", x0="c", x1="a"))
    with pytest.raises(FairjaxError, match="two roles"):
        pipeline.resolve_roles(scm, dataclasses.replace(TINY, X="x", Z="z,w", W="w"))
    with pytest.raises(FairjaxError, match="X='q' not found"):
        pipeline.resolve_roles(scm, dataclasses.replace(TINY, X="q"))


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("mode", "exact", "mode must be one of"),
        ("backend", "gpt", "backend must be one of"),
        ("backend", "llm", "needs llm_url and llm_model"),
        ("effects", "ctfde,direct", r"unknown effect\(s\) \['direct'\]"),
        ("rounds", 0, "rounds must be >= 1"),
        ("audit_model", "probit", "audit_model must be one of"),
        ("steps", 0, "steps must be a positive integer"),
    ],
)
def test_config_errors(field, value, match):
    with pytest.raises(FairjaxError, match=match):
        dataclasses.replace(TINY, **{field: value})


def test_faithful_fit_logs_rounds_and_keeps_the_best(fitted):
    rounds = fitted.rounds
    assert 1 <= len(rounds) <= TINY.rounds
    assert [r["index"] for r in rounds] == list(range(len(rounds)))
    assert fitted.best["gap"] == min(r["gap"] for r in rounds)
    assert fitted.state == fitted.best["state"]
    real = fitted.goal.real
    assert real["tv"][0] == pytest.approx(0.56, abs=0.03)
    # The first round uses no intervention: the transformer alone reproduces every measure
    # to within a few of the estimator's standard errors.
    first = rounds[0]
    assert first["state"] == {"guidance": {"spurious": 0.0, "indirect": 0.0, "direct": 0.0}}
    for m, (value, sd) in first["measures"].items():
        assert abs(value - real[m][0]) < 4 * np.hypot(sd, real[m][1]) + 0.01, m


def test_fair_refinement_removes_the_effects(fitted, scm):
    config = dataclasses.replace(fitted.config, mode="fair")
    fair = faircausesyn.fit(
        jax.random.key(1), scm, config=config, progress=False, generator=fitted.generator
    )
    assert fair.rounds[0]["gap"] > 0.4  # ctfde = 0.3 against tv = 0.56
    assert fair.best["met"] and fair.best["gap"] <= 0.1
    assert max(fair.state["guidance"].values()) < -0.8  # near the intervention gamma = -1
    rows = faircausesyn.sample(fair, jax.random.key(2), 4000)
    gap = rows.groupby("x")["y"].mean()
    assert abs(gap["b"] - gap["a"]) < 0.05  # real data: 0.56
    assert set(rows.columns) == {"x", "z", "w", "y"}


def test_save_load_samples_identically(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    back = generators.load(tmp_path / "m")
    assert back.roles == fitted.roles and back.state == fitted.state
    assert back.goal == fitted.goal and back.rounds == json.loads(json.dumps(fitted.rounds))
    key = jax.random.key(3)
    pd.testing.assert_frame_equal(back.sample(key, 500), fitted.sample(key, 500))


def llm_reply(body):
    """Copies of the prompt's example rows: a 'model' that reproduces its examples."""
    user = body["messages"][1]["content"]
    block = user.split("balanced over x x y:\n", 1)[1].split("\n\n", 1)[0]
    rows = pd.read_csv(io.StringIO(block))
    return ok(rows.to_csv(index=False))


def test_llm_backend_refines_with_feedback(scm, server, tmp_path):
    server.respond = lambda body, i: llm_reply(body)
    config = dataclasses.replace(
        TINY,
        **SCM_ROLES,
        backend="llm",
        llm_url=server.url,
        llm_model="stub",
        rows_per_round=400,
        rounds=2,
        tolerance=1e-6,
    )
    model = faircausesyn.fit(jax.random.key(0), scm, config=config, progress=False)
    assert len(model.rounds) == 2 and model.rounds[0]["info"]["kept"] >= 400
    users = [body["messages"][1]["content"] for _, body in server.requests]
    with_feedback = ["Feedback on your previous rows" in u for u in users]
    first = with_feedback.index(True)  # the stub returns 20 rows (its examples) per request
    assert first == 400 // 20 and all(with_feedback[first:])
    assert all("measured" in u and "target" in u and "ctfde" in u for u in users[first:])
    assert model.state == model.best["state"]
    model.save(tmp_path / "m")
    back = faircausesyn.load(tmp_path / "m")
    rows = back.sample(jax.random.key(1), 50)
    assert len(rows) == 50 and list(rows.columns) == ["x", "z", "w", "y"]


def _fit_args(path):
    """`fairjax fit` of FairCauseSyn on the SCM table at `path` (label y, sensitive x)."""
    return [
        "fit",
        "--method",
        "faircausesyn",
        "--data",
        str(path),
        "--label",
        "y",
        "--sensitive",
        "x",
    ]


def test_cli_fit_and_sample(tmp_path, capsys):
    path = tmp_path / "scm.csv"
    scm_frame(1500).to_csv(path, index=False)
    out = tmp_path / "model"
    code = cli_main(
        [
            *_fit_args(path),
            "--preset",
            "quick",
            "--set",
            "X=x",
            "--set",
            "Z=z",
            "--set",
            "W=w",
            "--set",
            "steps=100",
            "--set",
            "rounds=1",
            "--set",
            "mode=fair",
            "--set",
            "audit_model=logistic",  # the default (auto) is covered by `fitted`
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    code = cli_main(
        ["sample", "--model", str(out), "-n", "300", "--out", str(tmp_path / "s.csv"), "--quiet"]
    )
    assert code == 0
    rows = pd.read_csv(tmp_path / "s.csv")
    assert len(rows) == 300 and list(rows.columns) == ["x", "z", "w", "y"]
    code = cli_main(
        [
            *_fit_args(path),
            "--set",
            "mode=exact",
            "--out",
            str(out),
        ]
    )
    assert code == 2 and "mode must be one of" in capsys.readouterr().err


def test_path_options_of_old_and_new_states():
    from fairjax.faircausesyn.local import PathGuidance, PathWeights
    from fairjax.faircausesyn.pipeline import path_options

    new = {"guidance": {"spurious": -1.0, "indirect": 0.5, "direct": 0.0}}
    assert path_options(new) == {"guidance": PathGuidance(-1.0, 0.5, 0.0)}
    # a model refined before guidance existed keeps its path-removal weights
    old = {"spurious": 1.0, "indirect": 0.0, "direct": 0.25}
    assert path_options(old) == {"weights": PathWeights(1.0, 0.0, 0.25)}
