"""The `fairjax` command line: happy paths end to end, and every bad input as exit 2 + message."""

import json
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from fairjax.cli import main
from fairjax.datasets import load_german

TINY_FADM = [
    "--set", "width=16", "--set", "num_blocks=1", "--set", "classifier_width=16",
    "--set", "score_steps=60", "--set", "classifier_steps=60", "--set", "batch_size=64",
]  # fmt: skip


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "german.csv"
    load_german().frame.to_csv(path, index=False)
    return path


def test_datasets_lists_bundled_sets(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    assert "adult" in out and "45222" in out and "nhefs" in out
    code, out, _ = run(capsys, "datasets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["compas"]["rows"] == 6172 and rows["adult"]["domain"] == "race"


def test_evaluate_real_against_a_subsample_of_itself(capsys, german_csv, tmp_path):
    frame = pd.read_csv(german_csv)
    frame.sample(600, random_state=0).to_csv(tmp_path / "syn.csv", index=False)
    argv = ["evaluate", "--real", str(german_csv), "--synthetic", str(tmp_path / "syn.csv")]
    argv += ["--label", "credit", "--sensitive", "sex", "--classifier", "logistic", "--json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    report = json.loads(out)
    assert report["n_real"] == 1000 and report["n_synthetic"] == 600
    assert 0.65 < report["utility"]["accuracy"] < 0.9
    assert 0.0 < report["fairness"]["sex"]["dp_ratio"] <= 1.0
    # A subsample of the real rows is nearly indistinguishable from them.
    assert report["quality"]["c2st_auc"] < 0.65
    assert report["quality"]["mmd2"] < 0.01
    # The real-data reference is scored out of fold; a subsample reads like the real rows.
    assert abs(report["reference"]["utility"]["accuracy"] - report["utility"]["accuracy"]) < 0.05
    leak = report["leakage"]["sex"]
    assert 0.5 <= leak["probe_auc"] <= 1.0
    assert abs(leak["synthetic_confidence"] - leak["real_confidence"]) < 0.1


def test_evaluate_reports_intersectional_metrics_for_several_sensitive_columns(capsys, tmp_path):
    frame = load_german().frame
    frame["old"] = np.where(frame["age"] > 35, "old", "young")
    frame.to_csv(tmp_path / "real.csv", index=False)
    frame.sample(500, random_state=1).to_csv(tmp_path / "syn.csv", index=False)
    code, out, _ = run(
        capsys, "evaluate", "--real", str(tmp_path / "real.csv"), "--synthetic",
        str(tmp_path / "syn.csv"), "--label", "credit", "--sensitive", "sex,old",
        "--classifier", "logistic", "--no-quality",
    )  # fmt: skip
    assert code == 0
    assert "fairness[intersectional].df_tpr" in out and "worst_group_tpr" in out


def test_fit_sample_evaluate_end_to_end(capsys, tmp_path):
    model = tmp_path / "model"
    code, out, _ = run(
        capsys, "fit", "--method", "fadm", "--data", "german", "--quiet", *TINY_FADM,
        "--out", str(model),
    )  # fmt: skip
    assert code == 0, out
    assert (model / "params.msgpack").exists()
    syn = tmp_path / "s.csv"
    code, out, _ = run(
        capsys, "sample", "--model", str(model), "-n", "300", "--steps", "20",
        "--label-proportion", "0.3", "--quiet", "--out", str(syn),
    )  # fmt: skip
    assert code == 0 and "wrote 300 rows" in out
    frame = pd.read_csv(syn)
    assert len(frame) == 300 and 0.15 < frame["credit"].mean() < 0.45
    assert set(load_german().frame.columns) - set(frame.columns) == set()
    code, out, _ = run(capsys, "evaluate", "--real", "german", "--synthetic", str(syn))
    assert code == 0 and "utility.accuracy" in out


def test_fit_resumed_from_a_checkpoint_equals_an_uninterrupted_fit(
    capsys, tmp_path, stop_after_checkpoints
):
    """An interrupted `fit --checkpoint-dir` (stopped halfway through the score net) continued
    with `--resume` saves the parameters of a fit that was never stopped."""
    from fairjax import fadm

    argv = ["fit", "--data", "german", "--quiet", *TINY_FADM, "--set", "score_steps=200",
            "--set", "classifier_steps=100"]  # fmt: skip
    assert run(capsys, *argv, "--out", str(tmp_path / "whole"))[0] == 0
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-every", "100"]
    logs = ["--log-dir", str(tmp_path / "logs")]
    saved = stop_after_checkpoints(1)  # the score net at step 100 of 200
    with pytest.raises(KeyboardInterrupt):
        main([*argv, *ckpt, *logs, "--out", str(tmp_path / "resumed")])
    assert saved == ["score"] and not (tmp_path / "resumed").exists()
    code, _, err = run(capsys, *argv, *ckpt, *logs, "--out", str(tmp_path / "resumed"))
    assert code == 2 and "holds a checkpoint; pass resume=True (--resume)" in err
    code, out, _ = run(capsys, *argv, *ckpt, *logs, "--resume", "--out", str(tmp_path / "resumed"))
    assert code == 0, out
    whole, resumed = fadm.load(tmp_path / "whole"), fadm.load(tmp_path / "resumed")
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert resumed.history == whole.history
    for name, steps in (("score", 200), ("label", 100), ("sensitive", 100)):
        log = pd.read_csv(tmp_path / "logs" / f"{name}.csv")
        assert list(log.columns) == ["step", "grad_norm", "loss"]
        assert log["step"].tolist() == list(range(100, steps + 1, 100))
        curve = whole.history["record"][name]["metrics"]["loss"]
        np.testing.assert_allclose(log["loss"], curve, rtol=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--real", "nope", "--synthetic", "x.csv"], "neither a bundled"),
        (["evaluate", "--real", "german", "--synthetic", "missing.csv"], "not found"),
        (["fit", "--data", "german", "--method", "magic", "--out", "m"], "unknown method"),
        (["fit", "--data", "german", "--set", "bogus=1", "--out", "m"], "unknown option"),
        (["fit", "--data", "german", "--set", "width=wide", "--out", "m"], "expected a int"),
        (["fit", "--data", "german", "--label", "sex", "--out", "m"], "must hold 0 and 1"),
        (["sample", "--model", "no_such_dir", "-n", "5", "--out", "s.csv"], "not a saved"),
        (
            [
                "fit",
                "--data",
                "german",
                "--method",
                "intersectional",
                "--log-dir",
                "l",
                "--out",
                "m",
            ],
            "--method intersectional cannot checkpoint, resume or log",
        ),
        (["fit", "--data", "german", "--resume", "--out", "m"], "need --checkpoint-dir"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1


def _write(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


def test_bad_files_exit_2_naming_the_problem(capsys, tmp_path, german_csv):
    real = pd.read_csv(german_csv)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(real.columns) + "\n")
    cases = [
        (str(empty), "empty"),
        (str(header_only), "no data rows"),
        (_write(tmp_path / "nolabel.csv", real.drop(columns="credit")), "lacks column"),
        (_write(tmp_path / "threelabel.csv", real.assign(credit=np.arange(1000) % 3)), "0/1"),
        (_write(tmp_path / "onelabel.csv", real.assign(credit=1)), "only 1"),
    ]
    for synthetic, message in cases:
        code, _, err = run(
            capsys, "evaluate", "--real", "german", "--synthetic", synthetic, "--no-quality"
        )
        assert code == 2 and message in err, (synthetic, err)
    real_cases = [
        (_write(tmp_path / "onesex.csv", real.assign(sex="female")), "single value"),
        (_write(tmp_path / "nan.csv", real.assign(age=np.nan)), "age"),
        (_write(tmp_path / "nosens.csv", real.drop(columns="sex")), "sex"),
    ]
    for path, message in real_cases:
        code, _, err = run(
            capsys, "evaluate", "--real", path, "--synthetic", str(german_csv),
            "--label", "credit", "--sensitive", "sex", "--no-quality",
        )  # fmt: skip
        assert code == 2 and message in err, (path, err)


def test_entry_point_and_debug_traceback(tmp_path):
    bad = [sys.executable, "-m", "fairjax.cli", "evaluate", "--real", "nope", "--synthetic", "x"]
    quiet = subprocess.run(bad, capture_output=True, text=True, cwd=tmp_path)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    debug = subprocess.run(
        [*bad[:3], "--debug", *bad[3:]], capture_output=True, text=True, cwd=tmp_path
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_audit_decomposes_and_obeys_the_identity(capsys):
    code, out, _ = run(
        capsys, "audit", "--data", "compas", "--X", "race", "--x0", "Caucasian",
        "--x1", "African-American", "--Z", "age,sex", "--W", "priors_count,c_charge_degree",
        "--Y", "two_year_recid", "--folds", "3", "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    m = {row["measure"]: row["value"] for row in result["measures"]}
    assert result["n"] == 5278  # only the two requested races are kept
    assert abs(m["tv"] - (m["ctfde"] - m["ctfie"] - m["ctfse"])) < 1e-9
    assert 0.10 < m["tv"] < 0.16  # P(recid | African-American) - P(recid | Caucasian)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--X", "race", "--Y", "two_year_recid"], "choose two with --x0 and --x1"),
        (["--X", "race", "--x0", "Martian", "--x1", "Caucasian", "--Y", "two_year_recid"],
         "not a value"),
        (["--X", "nope", "--Y", "two_year_recid"], "not found"),
    ],
)  # fmt: skip
def test_audit_bad_arguments(capsys, extra, message):
    code, _, err = run(capsys, "audit", "--data", "compas", *extra)
    assert code == 2 and message in err


def test_intersectional_setting_fit_sample_evaluate(capsys, tmp_path):
    model, syn = tmp_path / "m", tmp_path / "s.csv"
    argv = ["fit", "--method", "intersectional", "--data", "compas", "--setting", "compas"]
    assert main([*argv, "--quiet", "--set", "steps=100", "--out", str(model)]) == 0
    assert main(["sample", "--model", str(model), "-n", "400", "--quiet", "--out", str(syn)]) == 0
    capsys.readouterr()
    code, out, _ = run(
        capsys, "evaluate", "--real", "compas", "--setting", "compas", "--synthetic", str(syn),
        "--no-quality", "--json",
    )  # fmt: skip
    assert code == 0
    groups = json.loads(out)["fairness"]["intersectional"]
    assert len(groups["worst_group"]) == 3  # sex x race x age
    assert 0.0 <= groups["worst_group_tpr"] <= groups["best_group_tpr"] <= 1.0
