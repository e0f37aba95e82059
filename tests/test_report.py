"""fairjax report: rendered for a small table; its JSON numbers equal direct metric calls."""

import dataclasses
import json

import jax
import numpy as np
import pandas as pd
import pytest

from fairjax import classifiers, metrics
from fairjax.cli import main
from fairjax.data import TabularEncoder
from fairjax.datasets import load_csv, load_german
from fairjax.errors import FairjaxError

COLUMNS = [
    "duration_months",
    "credit_amount",
    "age",
    "purpose",
    "housing",
    "sex",
    "foreign_worker",
    "credit",
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Real (200 rows), holdout (200) and synthetic (300, another column order) CSVs.

    The real table gets a planted proxy `title` (Mr/Ms from sex, 5% flipped) and a pure
    noise column. The synthetic rows resample the real rows with jittered numbers and lack
    the sensitive column foreign_worker.
    """
    root = tmp_path_factory.mktemp("report")
    frame = load_german().frame[COLUMNS].sample(400, random_state=0).reset_index(drop=True)
    # 400 rows: the holdout's (female, foreign_worker = no) group has no good credit risks
    rng = np.random.default_rng(0)
    flip = rng.random(len(frame)) < 0.05
    title = np.where((frame["sex"] == "male") ^ flip, "Mr", "Ms")
    frame.insert(0, "title", title)
    frame.insert(1, "noise", rng.normal(size=len(frame)).round(3))
    real, holdout = frame.iloc[:200], frame.iloc[200:]
    syn = real.sample(300, replace=True, random_state=1).reset_index(drop=True)
    syn["age"] = (syn["age"] + rng.integers(-2, 3, len(syn))).clip(19, 75)
    syn["noise"] = rng.normal(size=len(syn)).round(3)
    # any column order, and no foreign_worker (generators may omit sensitive columns)
    syn = syn[list(reversed(syn.columns))].drop(columns=["foreign_worker"])
    paths = {}
    for name, t in (("real", real), ("holdout", holdout), ("synthetic", syn)):
        paths[name] = root / f"{name}.csv"
        t.to_csv(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def rendered(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report"
    argv = [
        "report",
        "--real",
        str(tables["real"]),
        "--synthetic",
        str(tables["synthetic"]),
        "--holdout",
        str(tables["holdout"]),
        "--label",
        "credit",
        "--sensitive",
        "sex,foreign_worker",
        "--bootstrap",
        "20",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return out, json.loads((out / "report.json").read_text()), argv


def test_report_files_are_complete_and_self_contained(rendered):
    out, report, _ = rendered
    assert sorted(p.name for p in out.iterdir()) == [
        "association.png",
        "marginals.png",
        "report.html",
        "report.json",
        "report.md",
    ]
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page and "https://" not in page  # nothing to fetch: offline
    md = (out / "report.md").read_text()
    for section in ("Utility", "Fairness", "Leakage and proxies", "Fidelity", "Privacy"):
        assert f"## {section}" in md and f"<h2>{section}</h2>" in page
    assert set(report["utility"]) == {"logistic", "mlp", "hgb"}
    assert set(report["fairness"]["hgb"]) == {"sex", "foreign_worker", "sex x foreign_worker"}
    assert report["data"]["n_real_train"] == 200 and report["data"]["n_holdout"] == 200
    assert report["data"]["synthetic_lacks"] == ["foreign_worker"]
    assert "foreign_worker" not in report["fidelity"]["association"]["columns"]


def test_report_flags_the_planted_proxy_and_not_the_noise(rendered):
    _, report, _ = rendered
    by = {(p["feature"], p["sensitive"]): p["auc"] for p in report["leakage"]["proxies"]}
    assert by["title", "sex"] > 0.9
    assert abs(by["noise", "sex"] - 0.5) < 0.15
    probe = report["leakage"]["probe"]["sex"]
    assert probe["available"] and probe["probe_auc"] > 0.8  # the probe reads sex from title
    assert probe["positive"] == "male" and probe["n_synthetic"] == 300
    flagged = [w for w in report["warnings"] if w.startswith("Proxy")]
    assert len(flagged) == 1 and "'title'" in flagged[0] and "'sex'" in flagged[0]


def test_report_numbers_equal_direct_metric_calls(rendered, tables):
    _, report, _ = rendered
    real = load_csv(tables["real"], label="credit", sensitive=["sex", "foreign_worker"])
    holdout = pd.read_csv(tables["holdout"])
    syn = pd.read_csv(tables["synthetic"])
    features = list(real.schema.features)
    enc = TabularEncoder.fit(
        pd.concat([real.frame[features], holdout[features], syn[features]]),
        categorical=[c for c in features if c in real.schema.categorical],
        numeric=[c for c in features if c in real.schema.numeric],
    )
    x_real, x_hold, x_syn = (enc.encode(t) for t in (real.frame, holdout, syn))
    y_hold = holdout["credit"].to_numpy()
    clf = classifiers.make_logistic_regression()  # deterministic: the key is unused
    proba = np.asarray(clf.predict_proba(clf.fit(None, x_syn, syn["credit"]), x_hold))
    pred = (proba >= 0.5).astype(np.int64)
    tstr = report["utility"]["logistic"]["tstr"]
    assert tstr["accuracy"] == pytest.approx(metrics.accuracy(y_hold, pred), abs=1e-12)
    assert tstr["auc"] == pytest.approx(metrics.roc_auc(y_hold, proba), abs=1e-6)

    fair = report["fairness"]["logistic"]
    sex = holdout["sex"].to_numpy()
    assert fair["sex"]["tstr"]["dp_ratio"]["value"] == pytest.approx(
        metrics.demographic_parity_ratio(y_hold, pred, sensitive=sex), abs=1e-12
    )
    assert fair["sex"]["tstr"]["eodds_difference"]["value"] == pytest.approx(
        metrics.equalized_odds_difference(y_hold, pred, sensitive=sex), abs=1e-12
    )
    groups = holdout[["sex", "foreign_worker"]].astype(str).agg(" | ".join, axis=1).to_numpy()
    inter = fair["sex x foreign_worker"]["tstr"]
    # (female, no) has no positive holdout rows: it is left out of TPR-based measures
    assert fair["sex x foreign_worker"]["tpr_undefined_groups"] == ["female | no"]
    with pytest.warns(UserWarning, match="no rows with y_true == 1"):
        assert np.isnan(metrics.intersectional_fairness(y_hold, pred, groups, rate="tpr"))
    keep = groups != "female | no"
    df = metrics.differential_fairness(
        y_hold[keep], pred[keep], groups[keep], rate="tpr", n_bootstrap=0
    )
    assert inter["df_tpr"]["value"] == pytest.approx(df.epsilon, abs=1e-12)
    assert inter["if_tpr_0.5"]["value"] == pytest.approx(
        metrics.intersectional_fairness(y_hold[keep], pred[keep], groups[keep], rate="tpr"),
        abs=1e-12,
    )
    assert inter["dp_ratio"]["value"] == pytest.approx(  # selection: every group counts
        metrics.worst_best_ratio(y_hold, pred, groups, rate="selection"), abs=1e-12
    )
    assert fair["sex"]["tstr"]["if_tpr_0.5"]["value"] == pytest.approx(
        metrics.intersectional_fairness(y_hold, pred, sex, rate="tpr"), abs=1e-12
    )
    low, high = inter["df_tpr"]["ci"]
    assert low <= high
    improvement = fair["sex"]["improvement"]["dp_ratio"]["value"]
    assert improvement == pytest.approx(
        fair["sex"]["tstr"]["dp_ratio"]["value"] - fair["sex"]["trtr"]["dp_ratio"]["value"]
    )

    # privacy: equal-size train and holdout, fewer than 5,000 rows: no subsampling
    with_y = lambda x, y: np.concatenate([x, np.asarray(y)[:, None]], 1).astype(np.float32)
    dcr = metrics.dcr_summary(
        with_y(x_syn, syn["credit"]), with_y(x_real, real.y), with_y(x_hold, y_hold)
    )
    assert report["privacy"]["closer_to_train_fraction"] == pytest.approx(
        dcr["closer_to_train_fraction"], abs=1e-12
    )
    assert 0.0 <= report["privacy"]["membership_inference_auc"] <= 1.0


def test_report_refuses_to_overwrite_before_doing_any_work(rendered, capsys):
    out, _, argv = rendered
    before = (out / "report.json").read_bytes()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "report.json").read_bytes() == before


def test_evaluate_offers_the_hgb_classifier():
    from fairjax.cli import build_parser

    args = build_parser().parse_args(
        ["evaluate", "--real", "adult", "--synthetic", "s.csv", "--classifier", "hgb"]
    )
    assert args.classifier == "hgb"  # fit/predict: tests/test_classifiers.py


def test_report_without_holdout_splits_the_real_rows_and_says_so(tables):
    import fairjax.report as report

    real = load_csv(tables["real"], label="credit", sensitive=["sex", "foreign_worker"])
    syn = pd.read_csv(tables["synthetic"]).drop(columns=["sex"])
    train, test, conformed, notes = report.prepare(jax.random.key(0), real, syn)
    assert (len(train), len(test)) == (140, 60)
    assert notes[0].startswith("No holdout was given: 60 rows (30% per label value)")
    assert test.y.mean() == pytest.approx(real.y.mean(), abs=0.01)  # stratified by label
    both = pd.concat([train.frame, test.frame])
    assert len(both.drop_duplicates()) == len(real.frame.drop_duplicates())
    lacking = ("sex", "foreign_worker")
    assert list(conformed.columns) == [c for c in real.schema.columns if c not in lacking]
    # a generator may write the label as its text (CTGAN writes the real data's values)
    named_real = dataclasses.replace(
        real, schema=dataclasses.replace(real.schema, label_names=("bad", "good"))
    )
    named = syn.assign(credit=np.where(syn["credit"] == 1, "good", "bad"))
    _, _, from_names, _ = report.prepare(jax.random.key(0), named_real, named)
    np.testing.assert_array_equal(from_names["credit"], conformed["credit"])
    bad = syn.assign(credit=syn["credit"].replace({1: 2}))
    with pytest.raises(FairjaxError, match=r"label column 'credit' of the synthetic table"):
        report.prepare(jax.random.key(0), real, bad)
