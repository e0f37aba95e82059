"""Each experiment script runs end to end on its quick preset and writes its outputs."""

import json

import pandas as pd

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
    # A second run reuses the cached record.
    assert exp.main(["--preset", "quick", "--out", str(tmp_path)]) == 0
