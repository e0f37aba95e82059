"""Each experiment script runs end to end on its quick preset and writes its outputs."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from fairjax.cli import main


def test_fadm_adult_quick_writes_tables_cells_and_plot(tmp_path, capsys):
    from experiments import fadm_adult

    out = tmp_path / "fadm_adult"
    argv = ["experiment", "fadm-adult", "--preset", "quick", "--methods", "real,FADM"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(summary.columns) == [
        "method", "guide", "selection", "classifier", "acc", "acc_ci", "r_dp", "r_dp_ci",
        "r_eop", "r_eop_ci", "leakage",
    ]  # fmt: skip
    rows = {(r.method, r.guide, r.selection) for r in summary.itertuples()}
    fadm_rows = {("FADM", g, r) for g in ("entropy", "uniform") for r in ("accuracy", "fair")}
    assert fadm_rows <= rows and ("real", "", "") in rows
    assert {name for name, _, _ in fadm_adult.ANCHORS} <= {r[0] for r in rows}
    assert set(summary["classifier"]) == {"mlp", "logistic"}
    real = summary[(summary["method"] == "real") & (summary["classifier"] == "mlp")].iloc[0]
    assert 80 < float(real["acc"]) < 100  # a classifier trained on real source rows
    fadm = summary[summary["method"] == "FADM"]
    assert ((fadm["leakage"].astype(float) >= 0) & (fadm["leakage"].astype(float) <= 1)).all()
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 2
    cell = json.loads(next(c for c in cells if "FADM" in c.name).read_text())
    assert cell["target"] == "Other" and set(cell["selected"]) == {
        f"{g}|{r}" for g in ("entropy", "uniform") for r in ("accuracy", "fair")
    }
    # Every grid point is scored on validation and test; the curve lists them all.
    assert (
        set(cell["val"])
        == set(cell["test"])
        == {fadm_adult.point_tag(p) for p in fadm_adult.fadm_points(fadm_adult.PRESETS["quick"])}
    )
    curve = pd.read_csv(out / "curve.csv")
    assert len(curve[(curve["method"] == "FADM") & (curve["classifier"] == "mlp")]) == 3
    assert (out / "pareto_avg.png").stat().st_size > 1000
    md = (out / "table1.md").read_text()
    assert "| real |" in md and "The paper's Table 1" in md and "FADM (uniform, fair rule)" in md

    # A second run reuses every cached fit; a changed configuration is refused, not mixed.
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 0
    assert "(0s)" in capsys.readouterr().out
    # The lambda_z = 0 ablation shares FADM's fit and reports only its own points.
    assert main([*argv[:-1], "real,FADM,FADM λz=0", "--out", str(out)]) == 0
    ablation = json.loads(next((out / "cells").glob("*z=0*.json")).read_text())
    own = {fadm_adult.point_tag(p) for p in fadm_adult.fadm_points(
        fadm_adult.PRESETS["quick"], lambda_z=(0.0,))}  # fmt: skip
    assert set(ablation["test"]) == set(ablation["leakage"]) == own
    curve = pd.read_csv(out / "curve.csv")
    assert len(curve[(curve["method"] == "FADM λz=0") & (curve["classifier"] == "mlp")]) == len(own)
    record = next((out / "fits").glob("FADM*.json"))
    data = json.loads(record.read_text())
    data["run"]["config"]["n_synthetic"] = 1
    record.write_text(json.dumps(data))
    assert main([*argv, "--out", str(out)]) == 2
    assert "another configuration" in capsys.readouterr().err


def test_fadm_selection_rules():
    from experiments.fadm_adult import Method, select

    points = tuple(
        {"guide": g, "lambda_z": lz}
        for g, lz in (("uniform", 0.0), ("uniform", 4.0), ("uniform", 64.0), ("entropy", 4.0))
    )
    method = Method("FADM", "fadm", points=points)
    scores = {  # tag -> validation sets -> classifier -> metrics
        "guide=uniform,lambda_z=0.0": [{"mlp": {"acc": 85.0, "r_dp": 0.3, "r_eop": 0.7}}],
        "guide=uniform,lambda_z=4.0": [{"mlp": {"acc": 84.0, "r_dp": 0.85, "r_eop": 0.7}}],
        "guide=uniform,lambda_z=64.0": [{"mlp": {"acc": 80.0, "r_dp": 0.95, "r_eop": 0.7}}],
        "guide=entropy,lambda_z=4.0": [{"mlp": {"acc": 86.0, "r_dp": 0.5, "r_eop": 0.7}}],
    }
    assert select(method, scores, "uniform", "accuracy") == "guide=uniform,lambda_z=0.0"
    assert select(method, scores, "uniform", "fair") == "guide=uniform,lambda_z=4.0"
    assert select(method, scores, "entropy", "accuracy") == "guide=entropy,lambda_z=4.0"
    # No point reaches the four-fifths rule: the fairest one.
    assert select(method, scores, "entropy", "fair") == "guide=entropy,lambda_z=4.0"


def test_faircausesyn_quick_preset_writes_consistent_tables(tmp_path, monkeypatch):
    from experiments import faircausesyn as exp

    # Logistic audits keep this wiring check to half its time; the auto default is covered
    # by tests/test_faircausesyn.py and tests/test_causal.py.
    quick = exp.PRESETS["quick"]
    generator = dataclasses.replace(quick.generator, audit_model="logistic")
    monkeypatch.setitem(exp.PRESETS, "quick", dataclasses.replace(quick, generator=generator))
    assert exp.main(["--preset", "quick", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "nhefs_seed0.json").read_text())
    assert set(rec["generators"]) == {"real", "faithful", "fair", "vae"}
    assert rec["generators"]["real"]["faithful_gap"] == 0.0
    for gen in ("real", "faithful", "fair"):
        clfs = rec["generators"][gen]["classifiers"]
        assert set(clfs) == {"lr", "mlp", "fair"}
        assert all(0.5 < c["accuracy"] <= 1.0 for c in clfs.values())
    fair = rec["loops"]["fair"]
    assert fair["rounds"][fair["best"]]["state"] == fair["state"]
    # The fair loop's chosen rows are close to no disparity; the real rows are not.
    real_tv = rec["generators"]["real"]["measures"]["tv"]["value"]
    assert abs(rec["generators"]["fair"]["measures"]["tv"]["value"]) < 0.5 * abs(real_tv)
    table = (tmp_path / "tables.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| nhefs | fair |"))
    assert f"{rec['generators']['fair']['measures']['tv']['value']:.3f}" in row
    assert "Causally fair predictor" in (tmp_path / "predictors.md").read_text()
    # A second run reuses the cached record.
    assert exp.main(["--preset", "quick", "--out", str(tmp_path)]) == 0


def test_faircausesyn_predictor_table_by_hand():
    from experiments import faircausesyn as exp

    def clf(acc, tv, tv_sd, de):
        m = {"tv": (tv, tv_sd), "ctfde": (de, 0.01), "ctfie": (0.0, 0.0), "ctfse": (0.0, 0.0)}
        return {"accuracy": acc, "measures": {k: {"value": v, "sd": s} for k, (v, s) in m.items()}}

    def record(seed, lr_tv, fair_tv):
        gens = {
            gen: {
                "classifiers": {
                    "lr": clf(0.80, lr_tv, 0.02, 0.1),
                    "fair": clf(0.78, fair_tv, 0.01, 0.0),
                }
            }
            for gen in exp.GENERATORS
        }
        return {"dataset": "d", "seed": seed, "generators": gens}

    table = exp.summarise_predictors([record(0, 0.2, 0.04), record(1, 0.4, -0.08)])
    row = table[(table.trained_on == "fair") & (table.classifier == "fair")].iloc[0]
    assert row["tv"] == pytest.approx(-0.02)
    assert row["tv_high"] - row["tv"] == pytest.approx(1.96 * np.sqrt(2 * 0.01**2) / 2)
    assert row["reduction_tv"] == pytest.approx(1 - 0.06 / 0.3)  # against LR on real rows
    assert row["reduction_ctfde"] == pytest.approx(1.0)
    assert row["accuracy_vs_lr"] == pytest.approx(-2.0)
    lr_real = table[(table.trained_on == "real") & (table.classifier == "lr")].iloc[0]
    assert lr_real["reduction_tv"] == 0.0 and lr_real["accuracy_std"] == 0.0
    text = exp.predictors_markdown([record(0, 0.2, 0.04), record(1, 0.4, -0.08)])
    line = next(x for x in text.splitlines() if x.startswith("| d | fair | Causally fair"))
    assert "-0.020 [" in line and "| 80% | 100% |" in line
    assert all(x.count("|") - x.count("\\|") == 12 for x in text.splitlines() if x.startswith("|"))
