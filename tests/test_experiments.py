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
