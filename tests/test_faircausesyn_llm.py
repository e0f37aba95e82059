"""fairjax.faircausesyn.llm against a scripted OpenAI-compatible server running in a thread.

Each test sets `server.respond(body, i) -> (status, payload)` for the i-th request and reads
back what the server received (`server.requests`: headers and JSON body). Counts of kept and
dropped rows are exact: every reply is built line by line with a known fate per line.
"""

from __future__ import annotations

import io
import re
import socket
import traceback

import jax
import numpy as np
import pandas as pd
import pytest
from llm_stub import ok

from fairjax import datasets
from fairjax.errors import FairjaxError
from fairjax.faircausesyn.llm import (
    LLMBackend,
    ParseReport,
    build_messages,
    chat,
    column_specs,
    feedback_text,
    generate_llm,
    parse_rows,
)
from fairjax.faircausesyn.roles import balanced_rows, make_roles

SECRET = "sk-test-7f3a9c1e5b"


@pytest.fixture(scope="module")
def frame():
    return datasets.load("nhefs").frame


@pytest.fixture(scope="module")
def roles(frame):
    return make_roles(
        frame,
        X="sex",
        Z=["age", "race"],
        W=["education", "sbp"],
        Y="death",
        x0="female",
        x1="male",
    )


def backend(url, **kw):
    return LLMBackend(url=url, model="stub-model", **kw)


def prompt_examples(body: dict) -> pd.DataFrame:
    """The example rows shown in the user message of a request body."""
    user = body["messages"][1]["content"]
    block = user.split("balanced over sex x death:\n", 1)[1].split("\n\n", 1)[0]
    return pd.read_csv(io.StringIO(block))


def csv_lines(rows: pd.DataFrame) -> list[str]:
    return rows.to_csv(index=False, header=False, lineterminator="\n").splitlines()


# --- column specs and prompt ----------------------------------------------------------------


def test_column_specs_rules(frame, roles):
    specs = column_specs(frame, roles.order)
    assert list(specs) == list(roles.order)
    assert specs["sex"].kind == "categorical" and specs["sex"].values == ("female", "male")
    age = specs["age"]
    assert (age.kind, age.values, age.low, age.high, age.integer) == (
        "numeric",
        None,
        25,
        74,
        True,
    )
    # <= 10 distinct integer values: restricted to the observed codes
    assert specs["education"].values == (1, 2, 3, 4, 5)
    assert specs["death"].values == (0, 1)
    # a float column whose values are all whole is integer-valued, with its float dtype
    assert specs["sbp"].integer and specs["sbp"].dtype == np.float64

    small = pd.DataFrame(
        {
            "w": [0.5, 1.25, 2.0],
            "c": pd.Categorical([3, 1, 3]),
            "b": [True, False, True],
            "k": list(range(0, 33, 11)),
        }
    )
    s = column_specs(small, ["w", "c", "b", "k"])
    assert (s["w"].kind, s["w"].integer, s["w"].low, s["w"].high) == ("numeric", False, 0.5, 2.0)
    assert s["w"].values is None
    assert s["c"].kind == "categorical" and s["c"].values == (1, 3)
    assert s["b"].kind == "categorical" and s["b"].values == (False, True)
    assert s["k"].values == (0, 11, 22) and s["k"].integer
    with pytest.raises(FairjaxError, match="'nope' not found"):
        column_specs(small, ["nope"])
    with pytest.raises(FairjaxError, match="'w' has 1 missing"):
        column_specs(small.assign(w=[1.0, np.nan, 2.0]), ["w"])


def test_build_messages_key_parts(frame, roles):
    specs = column_specs(frame, roles.order)
    examples = balanced_rows(jax.random.key(0), frame, roles, per_cell=2)
    msgs = build_messages(roles, specs, examples, 17)
    assert msgs == build_messages(roles, specs, examples, 17)  # deterministic
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "CSV only" in msgs[0]["content"]
    user = msgs[1]["content"]
    for part in [
        "- Protected attribute X: sex, with the two values x0 = female and x1 = male.",
        "- Confounders Z: age, race. They are common causes of X and of the outcome",
        "- Mediators W: education, sbp. They are caused by X",
        "- Outcome Y: death.",
        "- sex: categorical, one of: female, male",
        "- age: integer from 25 to 74",
        "- education: integer, one of: 1, 2, 3, 4, 5",
        "- death: integer, one of: 0, 1",
        "Generate exactly 17 new rows",
        "starting with the header line:\nsex,age,race,education,sbp,death",
    ]:
        assert part in user, part
    shown = prompt_examples({"messages": msgs})
    pd.testing.assert_frame_equal(shown, examples[list(roles.order)], check_dtype=False)
    assert "Feedback" not in user
    fed = build_messages(roles, specs, examples, 17, feedback="LOWER THE DIRECT EFFECT")
    assert fed[1]["content"].endswith("Feedback on your previous rows:\nLOWER THE DIRECT EFFECT")
    with pytest.raises(FairjaxError, match="n_rows"):
        build_messages(roles, specs, examples, 0)


def test_feedback_text_modes():
    syn = {"ctfde": 0.12, "tv": 0.1}
    target = {"tv": 0.0, "ctfde": 0.0}
    fair = feedback_text(syn, target, mode="fair")
    lines = fair.splitlines()
    assert lines[1].startswith("- tv (total variation") and "measured +0.100" in lines[1]
    assert "target +0.000; lower it by 0.100." in lines[1]
    assert lines[2].startswith("- ctfde (direct effect") and "lower it by 0.120." in lines[2]
    assert "make the outcome not depend on X directly" in fair
    assert "mediators' distribution" not in fair  # only the listed measures get a sentence
    full = {m: -0.05 for m in ("tv", "ctfde", "ctfie", "ctfse", "ett")}
    fair_all = feedback_text(full, dict.fromkeys(full, 0.0), mode="fair")
    assert "make the mediators' distribution the same for both values of X" in fair_all
    assert "make the confounders independent of X" in fair_all
    assert fair_all.count("raise it by 0.050.") == 5
    faithful = feedback_text(syn, {"tv": 0.2, "ctfde": 0.12}, mode="faithful")
    assert "raise it by 0.100." in faithful and "keep it." in faithful
    assert "effects measured on the real data" in faithful and "fairer" not in faithful
    with pytest.raises(FairjaxError, match="mode"):
        feedback_text(syn, target, mode="unfair")
    with pytest.raises(FairjaxError, match="unknown measure"):
        feedback_text({"nde": 0.1}, {"nde": 0.0}, mode="fair")
    with pytest.raises(FairjaxError, match="same measures"):
        feedback_text(syn, {"tv": 0.0}, mode="fair")
    with pytest.raises(FairjaxError, match="finite"):
        feedback_text({"tv": float("nan")}, {"tv": 0.0}, mode="fair")


# --- parser ---------------------------------------------------------------------------------


def test_parse_rows_header_order_and_dtypes(frame, roles):
    specs = column_specs(frame, roles.order)
    text = "death,sbp,education,race,age,sex\n1,120,2,white,40,male\n0, 99.0 ,5,other,74,female\n"
    rows, report = parse_rows(text, specs, roles.order)
    assert report == ParseReport(2, 0, {})
    assert list(rows.columns) == list(roles.order)
    assert rows.to_dict("records") == [
        {"sex": "male", "age": 40, "race": "white", "education": 2, "sbp": 120.0, "death": 1},
        {"sex": "female", "age": 74, "race": "other", "education": 5, "sbp": 99.0, "death": 0},
    ]
    assert rows.dtypes.to_dict() == frame[list(roles.order)].dtypes.to_dict()
    assert type(rows["age"].iloc[0]) is np.int64
    empty, report = parse_rows("I cannot help with that.", specs, roles.order)
    assert len(empty) == 0 and report == ParseReport(0, 1, {"prose": 1})
    assert empty.dtypes.to_dict() == frame[list(roles.order)].dtypes.to_dict()


def test_chat_reply_parsed_with_exact_drop_counts(server, frame, roles):
    """(a) Valid rows echoed from the prompt's examples plus one junk line per reason."""

    def respond(body, i):
        ex = prompt_examples(body)
        ex["age"] = np.clip(ex["age"] + 1, 25, 74)  # perturbed, still valid
        good = csv_lines(ex)
        junk = [
            "male,40,white,2,120",  # wrong_column_count
            "male,40,white,2,120,0,7",  # wrong_column_count
            "nonbinary,40,white,2,120,0",  # unknown_category
            "male,40,White,2,120,0",  # unknown_category (case matters)
            "male,200,white,2,120,0",  # out_of_range
            "male,40,white,2,1e9,0",  # out_of_range
            "male,forty,white,2,120,0",  # not_a_number
            "male,40,white,2,,0",  # not_a_number (empty)
            "male,40,white,2,inf,0",  # non_finite
            "male,40,white,2,nan,0",  # non_finite
            "male,40.5,white,2,120,0",  # not_integer
            "male,40,white,6,120,0",  # unseen_value (education codes 1-5)
            "male,40,white,2,120,2",  # unseen_value (death is 0/1)
        ]
        content = "\n".join(
            [
                "Sure! Here are the rows you asked for, in CSV:",  # prose
                "",
                "```csv",
                ",".join(roles.order),
                *good[:4],
                *junk,
                "",
                *good[4:],
                "```",
                "I hope this helps. Let me know if you need more.",  # prose
            ]
        )
        return ok(content)

    server.respond = respond
    specs = column_specs(frame, roles.order)
    examples = balanced_rows(jax.random.key(1), frame, roles, per_cell=3)
    text = chat(backend(server.url), build_messages(roles, specs, examples, 12))
    rows, report = parse_rows(text, specs, roles.order)
    assert report.reasons == {
        "prose": 2,
        "wrong_column_count": 2,
        "unknown_category": 2,
        "out_of_range": 2,
        "not_a_number": 2,
        "non_finite": 2,
        "not_integer": 1,
        "unseen_value": 2,
    }
    assert (report.kept, report.dropped) == (12, 15)
    expected = examples[list(roles.order)].assign(age=np.clip(examples["age"] + 1, 25, 74))
    pd.testing.assert_frame_equal(rows, expected.reset_index(drop=True))


# --- HTTP behaviour -------------------------------------------------------------------------


def test_retries_5xx_with_exponential_backoff(server):
    """(b) 500, 503, then OK: three requests, sleeps of backoff_s * 2^k."""
    statuses = [500, 503]
    server.respond = lambda body, i: (
        (statuses[i], {"error": {"message": "overloaded"}}) if i < 2 else ok("a,b\n1,2")
    )
    slept = []
    reply = chat(
        backend(server.url, backoff_s=0.25, max_retries=3),
        [{"role": "user", "content": "hi"}],
        sleep=slept.append,
    )
    assert reply == "a,b\n1,2"
    assert slept == [0.25, 0.5]
    assert len(server.requests) == 3


def test_retries_exhausted_on_429(server):
    server.respond = lambda body, i: (429, {"error": {"message": "rate limited"}})
    slept = []
    with pytest.raises(FairjaxError, match=r"after 3 attempt\(s\).*HTTP 429: rate limited"):
        chat(
            backend(server.url, max_retries=2),
            [{"role": "user", "content": "x"}],
            sleep=slept.append,
        )
    assert slept == [1.0, 2.0] and len(server.requests) == 3


def test_401_fails_at_once_without_leaking_key(server, monkeypatch):
    """(c) No retry on 401; the key (echoed by the server) appears nowhere."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.respond = lambda body, i: (
        401,
        {"error": {"message": f"Incorrect API key provided: {SECRET}."}},
    )
    slept = []
    b = backend(server.url)
    with pytest.raises(FairjaxError) as info:
        chat(b, [{"role": "user", "content": "x"}], sleep=slept.append)
    message = str(info.value)
    assert "HTTP 401" in message and "Incorrect API key provided: <redacted>" in message
    assert "$OPENAI_API_KEY" in message
    assert SECRET not in message
    assert SECRET not in "".join(traceback.format_exception(info.value))
    assert SECRET not in repr(b) and SECRET not in str(b)
    assert slept == [] and len(server.requests) == 1


def test_unreachable_server_after_retries():
    """(d) A closed port: every attempt fails to connect."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    slept = []
    with pytest.raises(FairjaxError) as info:
        chat(
            backend(url, max_retries=2, timeout_s=2.0),
            [{"role": "user", "content": "x"}],
            sleep=slept.append,
        )
    message = str(info.value)
    assert f"{url}/chat/completions" in message
    assert "after 3 attempt(s)" in message and "unreachable" in message
    assert slept == [1.0, 2.0]


@pytest.mark.parametrize(
    "payload",
    [b"<html>Bad Gateway</html>", {"choices": []}, {"choices": [{"message": {"content": None}}]}],
)
def test_malformed_reply(server, payload):
    """(e) A 200 whose body is not a chat completion: error at once, no retry."""
    server.respond = lambda body, i: (200, payload)
    with pytest.raises(FairjaxError, match="malformed reply"):
        chat(backend(server.url), [{"role": "user", "content": "x"}], sleep=pytest.fail)
    assert len(server.requests) == 1


def test_request_body_and_authorization(server, monkeypatch, frame, roles):
    """(f) What the server receives, with and without an API key."""
    server.respond = lambda body, i: ok("")
    specs = column_specs(frame, roles.order)
    examples = balanced_rows(jax.random.key(2), frame, roles, per_cell=1)
    messages = build_messages(roles, specs, examples, 5)
    b = backend(server.url + "/", temperature=0.3, max_tokens=123, api_key_env="FJ_TEST_KEY")
    monkeypatch.setenv("FJ_TEST_KEY", SECRET)
    chat(b, messages)
    monkeypatch.delenv("FJ_TEST_KEY")
    chat(b, messages)
    (headers, body), (headers_no_key, _) = server.requests
    assert body == {
        "model": "stub-model",
        "messages": messages,
        "temperature": 0.3,
        "max_tokens": 123,
    }
    user = body["messages"][1]["content"]
    assert "Protected attribute X: sex" in user and "Mediators W: education, sbp" in user
    assert (
        "sex,age,race,education,sbp,death\n" + "\n".join(csv_lines(examples[list(roles.order)]))
        in user
    )
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert "Authorization" not in headers_no_key
    assert headers["Content-Type"] == "application/json"


def test_backend_validation():
    for kw, match in [
        ({"url": "localhost:8000"}, "url must start with http"),
        ({"model": ""}, "model must be a non-empty"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"rows_per_request": 0}, "rows_per_request must be an integer >= 1"),
        ({"timeout_s": 0.0}, "timeout_s must be a finite number > 0"),
        ({"backoff_s": float("inf")}, "backoff_s must be a finite number >= 0"),
        ({"temperature": -0.1}, "temperature"),
    ]:
        with pytest.raises(FairjaxError, match=match):
            LLMBackend(**{"url": "http://x/v1", "model": "m", **kw})


# --- generation -----------------------------------------------------------------------------


def test_generate_llm_collects_n_rows(server, frame, roles):
    """(g) Each reply echoes 5 of the examples and one junk row: 20 rows need 4 requests."""
    wanted = []

    def respond(body, i):
        wanted.append(int(re.search(r"Generate exactly (\d+)", body["messages"][1]["content"])[1]))
        ex = prompt_examples(body).iloc[:5]
        return ok("\n".join([",".join(roles.order), *csv_lines(ex), "male,1,white,2,120,0"]))

    server.respond = respond
    key = jax.random.key(3)
    rows, report = generate_llm(
        key, backend(server.url, rows_per_request=7), frame, roles, 18, examples_per_cell=2
    )
    assert wanted == [7, 7, 7, 3]
    assert report == ParseReport(20, 4, {"out_of_range": 4})
    assert list(rows.columns) == list(roles.order) and len(rows) == 18
    assert rows.dtypes.to_dict() == frame[list(roles.order)].dtypes.to_dict()
    assert rows.index.tolist() == list(range(18))
    # request i used balanced_rows(fold_in(key, i)); the rows are their first five, in order
    expected = pd.concat(
        [
            balanced_rows(jax.random.fold_in(key, i), frame, roles, per_cell=2).iloc[:5]
            for i in range(4)
        ],
        ignore_index=True,
    )[list(roles.order)].iloc[:18]
    pd.testing.assert_frame_equal(rows, expected)


def test_generate_llm_too_few_rows(server, frame, roles):
    server.respond = lambda body, i: ok("Sorry, I can't.\nfemale,30,white,1,100,0\nmale,1,x,1,1,1")
    with pytest.raises(FairjaxError, match=r"gave 2 valid rows of the 10 wanted in 2 requests"):
        generate_llm(jax.random.key(0), backend(server.url), frame, roles, 10, max_requests=2)
    assert len(server.requests) == 2
    with pytest.raises(FairjaxError, match="n must be"):
        generate_llm(jax.random.key(0), backend(server.url), frame, roles, 0)
