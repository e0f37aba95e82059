"""Each experiment script runs end to end on its quick preset and writes its outputs."""

import json

import numpy as np
import pandas as pd
import pytest

from fairjax.cli import main


def test_fadm_adult_quick_writes_tables_cells_and_plot(tmp_path, capsys):
    out = tmp_path / "fadm_adult"
    argv = ["experiment", "fadm-adult", "--preset", "quick", "--methods", "real,FADM"]
    assert main([*argv, "--out", str(out)]) == 0
    table = pd.read_csv(out / "table1.csv")
    assert set(table["method"]) == {"real", "FADM"} and set(table["target"]) == {"Other"}
    real = table[table["method"] == "real"].iloc[0]
    assert 80 < real["acc_mean"] < 100  # a classifier trained on real source rows
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 2
    cell = json.loads(cells[0].read_text())
    assert cell["target"] == "Other" and "validation_acc" in cell["selected"]
    assert (out / "rdp_vs_acc.png").stat().st_size > 1000
    md = (out / "table1.md").read_text()
    assert "| real |" in md and "The paper's Table 1" in md

    # A second run reuses every cached cell and fit.
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 0
    assert "(0s)" in capsys.readouterr().out


def test_faircausesyn_quick_preset_writes_consistent_tables(tmp_path):
    from experiments import faircausesyn as exp

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
