"""Safety battery: outputs, model folders, every command's inputs and the options.

Each bad case asserts the exit code, that stderr is one line without a traceback, and that
no file that existed before the command changed (or appeared half-written).
"""

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments import common
from fairjax import cli, outputs, persist, training
from fairjax.cli import main
from fairjax.datasets import load_german, read_table
from fairjax.errors import FairjaxError, FairjaxWarning

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set", "width=8", "--set", "num_blocks=1", "--set", "time_dim=4",
    "--set", "classifier_width=8", "--set", "classifier_blocks=1", "--set", "score_steps=2",
    "--set", "classifier_steps=2", "--set", "batch_size=16", "--set", "sample_steps=2",
]  # fmt: skip


def snapshot(*roots) -> dict:
    """SHA-256 of every file under `roots` (and of the files themselves)."""
    out = {}
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def cli_run(capsys, *argv):
    """(exit code, stdout, stderr) of `fairjax ARGV` in-process (argparse exits too)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, watch, *argv, message: str, code: int = 2) -> str:
    """Run `argv`; assert exit `code`, one stderr line containing `message` and no
    traceback, and that nothing under `watch` changed. Returns stderr."""
    before = snapshot(watch)
    got, _, err = cli_run(capsys, *argv)
    assert got == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert snapshot(watch) == before
    return err


RESULTS_AT_IMPORT = snapshot(ROOT / "results")


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "german.csv"
    load_german().frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny FADM model folder fitted once through the command line."""
    folder = tmp_path_factory.mktemp("fit") / "model"
    assert (
        main(["fit", "--data", "german", "--quiet", *TINY, "--seed", "3", "--out", str(folder)])
        == 0
    )
    return folder


@pytest.fixture
def model(fitted, tmp_path):
    """A fresh copy of the fitted folder for a test to damage."""
    return Path(shutil.copytree(fitted, tmp_path / "model"))


def rehash(folder: Path) -> None:
    """Rewrite the manifest's hashes after an edit (to reach the checks behind them)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_json(path: Path, **changes) -> None:
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


def no_fit(monkeypatch):
    """Make any training fail loudly: the checks under test must come before it."""

    def boom(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr("fairjax.fadm.fit", boom)


# ----------------------------------------------------------------------------- outputs


def test_fit_refuses_an_existing_model_folder_before_training(capsys, model, monkeypatch):
    no_fit(monkeypatch)
    refused(capsys, model, "fit", "--data", "german", "--out", model, message="already exists")


def test_fit_refuses_an_existing_file(capsys, tmp_path, monkeypatch):
    no_fit(monkeypatch)
    target = tmp_path / "m"
    target.write_text("mine")
    refused(capsys, tmp_path, "fit", "--data", "german", "--out", target, message="is a file")


def test_fit_refuses_a_path_below_a_file(capsys, tmp_path, monkeypatch):
    no_fit(monkeypatch)
    (tmp_path / "f").write_text("mine")
    target = tmp_path / "f" / "sub" / "m"
    refused(capsys, tmp_path, "fit", "--data", "german", "--out", target, message="which is a file")


def test_fit_refuses_a_read_only_place(capsys, tmp_path, monkeypatch):
    no_fit(monkeypatch)
    monkeypatch.setattr(outputs.os, "access", lambda *a, **k: False)  # root ignores chmod
    target = tmp_path / "m"
    refused(capsys, tmp_path, "fit", "--data", "german", "--out", target, message="cannot write")
    assert not target.exists()


def test_fit_overwrite_never_deletes_a_folder_that_is_not_a_model(capsys, tmp_path, monkeypatch):
    no_fit(monkeypatch)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("years of work")
    argv = ["fit", "--data", "german", "--overwrite", "--out", tmp_path / "docs"]
    refused(capsys, tmp_path, *argv, message="holds no fairjax model")


def test_fit_overwrite_replaces_a_model_folder_whole(capsys, model):
    (model / "stale.txt").write_text("from an older fit")
    code, _, err = cli_run(
        capsys, "fit", "--data", "german", "--quiet", *TINY, "--overwrite", "--out", model
    )
    assert code == 0, err
    assert not (model / "stale.txt").exists()
    assert set(json.loads((model / "manifest.json").read_text())["files"]) == set(persist.FILES)
    assert not list(model.parent.glob(".model.*"))  # no temporary or old folders left


def test_sample_refuses_an_existing_csv(capsys, fitted, tmp_path):
    out = tmp_path / "s.csv"
    out.write_text("a,b\n1,2\n")
    argv = ["sample", "--model", fitted, "-n", "5", "--out", out]
    refused(capsys, tmp_path, *argv, message="already exists")


def test_sample_refuses_a_folder_and_a_path_below_a_file(capsys, fitted, tmp_path):
    (tmp_path / "dir").mkdir()
    refused(
        capsys, tmp_path, "sample", "--model", fitted, "-n", "5", "--out", tmp_path / "dir",
        message="is a folder",
    )  # fmt: skip
    (tmp_path / "f").write_text("x")
    refused(
        capsys, tmp_path, "sample", "--model", fitted, "-n", "5", "--out", tmp_path / "f" / "s.csv",
        message="which is a file",
    )  # fmt: skip


def test_sample_streams_chunks_with_their_own_keys(capsys, fitted, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "SAMPLE_CHUNK", 7)
    out = tmp_path / "s.csv"
    out.write_text("old\n")
    argv = ["sample", "--model", fitted, "-n", 17, "--steps", 2, "--seed", 4, "--quiet"]
    code, stdout, err = cli_run(capsys, *argv, "--overwrite", "--out", out)
    assert code == 0 and "wrote 17 rows" in stdout, err
    from fairjax import fadm

    m, key = fadm.load(fitted), jax.random.key(4)
    chunks = [m.sample(jax.random.fold_in(key, i), k, steps=2) for i, k in enumerate((7, 7, 3))]
    expected = pd.read_csv(pd.io.common.StringIO(pd.concat(chunks).to_csv(index=False)))
    pd.testing.assert_frame_equal(pd.read_csv(out), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_failed_sample_leaves_the_old_file_and_no_partial_one(fitted, tmp_path, monkeypatch):
    from fairjax import fadm

    m = fadm.load(fitted)
    calls = []

    def failing(key, n, **kw):  # a full disk or a crash after the first chunk
        calls.append(n)
        if len(calls) == 2:
            raise OSError("No space left on device")
        return m.sample(key, n, steps=2)

    monkeypatch.setattr(cli, "SAMPLE_CHUNK", 5)
    out = tmp_path / "s.csv"
    out.write_text("precious\n")
    fake = type("M", (), {"sample": staticmethod(failing)})()
    with pytest.raises(OSError):
        cli.write_samples(fake, 0, 12, out, overwrite=True, progress=False)
    assert out.read_text() == "precious\n" and [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_failed_folder_write_keeps_the_old_folder(tmp_path):
    old = tmp_path / "m"
    old.mkdir()
    (old / "model.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with outputs.atomic_folder(old, overwrite=True) as tmp:
            (tmp / "model.json").write_text("half")
            raise RuntimeError("killed")
    assert (old / "model.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_other_processes_write_nowhere_even_once_process_0_has_written(tmp_path, monkeypatch):
    """In a multi-process run process 0 may write the target before another process reaches
    its save; that process must not then find the target taken (a CI failure once)."""
    from fairjax import parallel

    done = tmp_path / "model"
    done.mkdir()
    (done / "model.json").write_text("{}")
    monkeypatch.setattr(parallel, "is_main_process", lambda: False)
    with outputs.atomic_folder(done) as folder:
        (folder / "model.json").write_text("other")
    outputs.write_text(tmp_path / "model" / "model.json", "other")
    assert (done / "model.json").read_text() == "{}"
    assert [p.name for p in tmp_path.rglob("*")] == ["model", "model.json"]


def test_atomic_file_keeps_an_identical_file_and_refuses_a_changed_one(tmp_path):
    path = tmp_path / "t.md"
    path.write_text("same")
    stamp = path.stat().st_mtime_ns
    outputs.write_text(path, "same", keep_if_unchanged=True)
    assert path.stat().st_mtime_ns == stamp
    with pytest.raises(FairjaxError, match="other contents"):
        outputs.write_text(path, "changed", keep_if_unchanged=True)
    assert path.read_text() == "same" and len(list(tmp_path.iterdir())) == 1


def test_experiments_default_to_runs_not_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(out=None, preset="quick")
    assert common.out_folder(args, "intersectional") == Path("runs/intersectional/quick")
    assert "/runs/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize(
    ("module", "folder", "preset"),
    [("intersectional", "intersectional", "paper"), ("faircausesyn", "faircausesyn", "paper")],
)
def test_report_only_rebuilds_committed_tables_byte_identical(tmp_path, module, folder, preset):
    import importlib

    copy = Path(shutil.copytree(ROOT / "results" / folder, tmp_path / folder))
    before = snapshot(copy)
    exp = importlib.import_module(f"experiments.{module}")
    argv = ["--preset", preset, "--report-only", "--out", str(copy)]
    assert exp.main(argv + (["--no-plot"] if module == "intersectional" else [])) == 0
    assert snapshot(copy) == before


def test_report_only_under_another_preset_does_not_relabel_tables(capsys, tmp_path):
    copy = Path(shutil.copytree(ROOT / "results" / "intersectional", tmp_path / "r"))
    argv = ["experiment", "intersectional", "--preset", "quick", "--report-only", "--out", copy]
    refused(capsys, copy, *argv, message="other contents")


def test_a_run_never_reuses_records_it_did_not_make(capsys, tmp_path):
    copy = Path(shutil.copytree(ROOT / "results" / "faircausesyn", tmp_path / "r"))
    argv = ["experiment", "faircausesyn", "--preset", "quick", "--datasets", "nhefs", "--out", copy]
    refused(capsys, copy, *argv, message="pass --overwrite to recompute")


def test_experiment_scripts_end_in_one_line_too(tmp_path):
    """`python -m experiments.X` (a real process: the script's own entry point)."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "experiments.faircausesyn", "--report-only", "--out", "empty"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: no record {Path('empty') / 'nhefs_seed0.json'}; run the experiment without "
        "--report-only first"
    ]
    assert list(tmp_path.iterdir()) == []


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def test_cached_record_requires_the_same_stamp(tmp_path):
    from experiments.intersectional import PRESETS

    stamp = common.run_stamp("intersectional", "quick", 0, PRESETS["quick"])
    path = tmp_path / "r.json"
    common.write_record(path, {"x": 1}, stamp)
    assert common.cached_record(path, stamp, overwrite=False)["x"] == 1
    other = common.run_stamp("intersectional", "paper", 0, PRESETS["paper"])
    with pytest.raises(FairjaxError, match="preset 'quick'"):
        common.cached_record(path, other, overwrite=False)
    assert common.cached_record(path, other, overwrite=True) is None


def test_tables_of_another_run_are_refused_before_any_work(tmp_path):
    (tmp_path / "table.md").write_text("someone else's")
    with pytest.raises(FairjaxError, match="another run"):
        common.check_tables(tmp_path, ["table.md"], overwrite=False, owned=False, will_compute=True)
    assert common.check_tables(
        tmp_path, ["table.md"], overwrite=False, owned=True, will_compute=True
    )


# ------------------------------------------------------------------------ model folders


def test_manifest_records_versions_seed_data_and_hashes(fitted):
    manifest = json.loads((fitted / "manifest.json").read_text())
    assert manifest["method"] == "fadm" and manifest["seed"] == 3
    assert set(manifest["versions"]) == {"fairjax", "jax", "flax"}
    german = load_german().frame
    assert manifest["data"]["rows"] == len(german)
    assert manifest["data"]["columns"] == list(german.columns)
    assert manifest["data"] == persist.fingerprint(german)
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((fitted / name).read_bytes()).hexdigest() == digest


def _sample(model, tmp_path):
    return ["sample", "--model", model, "-n", "3", "--steps", "2", "--out", tmp_path / "s.csv"]


def test_truncated_params_are_refused(capsys, model, tmp_path):
    data = (model / "params.msgpack").read_bytes()
    (model / "params.msgpack").write_bytes(data[: len(data) // 2])
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="params.msgpack does not match")


def test_a_flipped_byte_is_refused(capsys, model, tmp_path):
    data = bytearray((model / "params.msgpack").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model / "params.msgpack").write_bytes(bytes(data))
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="does not match its SHA-256")


def test_swapped_files_are_refused(capsys, model, tmp_path):
    a, b = (model / "config.json").read_bytes(), (model / "encoder.json").read_bytes()
    (model / "config.json").write_bytes(b)
    (model / "encoder.json").write_bytes(a)
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="does not match")


def test_an_edited_config_is_refused(capsys, model, tmp_path):
    edit_json(model / "config.json", lambda_y=3.0)
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="config.json does not match")


def test_a_missing_file_is_refused(capsys, model, tmp_path):
    (model / "encoder.json").unlink()
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="encoder.json is missing")


def test_a_config_with_an_unknown_key_is_refused(capsys, model, tmp_path):
    edit_json(model / "config.json", wdith=8)
    rehash(model)
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="unknown option(s) ['wdith']")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"width": -3}, "width must be a positive integer"), ({"width": "wide"}, "not a int"),
     ({"lr": None}, "lr"), ({"sde": "ve"}, "sde must be one of")],
)  # fmt: skip
def test_a_config_with_a_bad_value_is_refused(capsys, model, tmp_path, change, message):
    edit_json(model / "config.json", **change)
    rehash(model)
    err = refused(capsys, tmp_path, *_sample(model, tmp_path), message=message)
    assert str(model) in err


def test_params_of_the_wrong_shape_are_refused(capsys, model, tmp_path):
    edit_json(model / "config.json", width=16)  # the params were trained with width 8
    rehash(model)
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="has shape")


def test_a_manifest_that_is_not_json_is_refused(capsys, model, tmp_path):
    (model / "manifest.json").write_text("{not json")
    refused(capsys, tmp_path, *_sample(model, tmp_path), message="manifest.json is not valid JSON")


def test_a_file_is_not_a_model_folder(capsys, tmp_path):
    (tmp_path / "m").write_text("x")
    refused(capsys, tmp_path, *_sample(tmp_path / "m", tmp_path), message="is not a saved")


def test_an_old_folder_without_manifest_loads_with_a_one_line_warning(capsys, model, tmp_path):
    (model / "manifest.json").unlink()
    code, out, err = cli_run(capsys, *_sample(model, tmp_path), "--quiet")
    assert code == 0 and "wrote 3 rows" in out
    assert (
        err.strip().splitlines()
        == [
            line for line in err.strip().splitlines() if "warning" in line and "no manifest" in line
        ]
        and len(err.strip().splitlines()) == 1
    )


def test_an_old_folder_with_garbage_params_is_refused(capsys, model, tmp_path):
    (model / "manifest.json").unlink()
    (model / "params.msgpack").write_bytes(b"\xc1garbage")
    before = snapshot(tmp_path)
    code, _, err = cli_run(capsys, *_sample(model, tmp_path))
    warning, error = err.strip().splitlines()  # the unverified-folder note, then the error
    assert code == 2 and "no manifest.json" in warning and "Traceback" not in err
    assert "params.msgpack is not a readable parameter file" in error
    assert snapshot(tmp_path) == before


def test_saving_nan_parameters_is_refused(tmp_path):
    from fairjax import fadm

    model = fadm.FADMModel(
        config=fadm.FADMConfig(), encoder=None, schema=load_german().schema,
        params={"w": np.array([np.nan])}, sensitive_values=(), sensitive_probs=(), history={},
    )  # fmt: skip
    with pytest.raises(FairjaxError, match="not finite"):
        persist.save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_diverged_training_names_the_network_and_step():
    def step_fn(state, batch, key):
        loss = jnp.where(state.step >= 4, jnp.nan, 1.0)
        return state._replace(step=state.step + 1), {"loss": loss}

    state = training.TrainState(jnp.zeros((), jnp.int32), {}, ())
    with pytest.raises(FairjaxError, match=r"'fadm score' diverged: loss is nan at step 5 of 9"):
        training.run(
            jax.random.key(0), state, step_fn, lambda d, k: 0, num_steps=9, chunk_size=3,
            progress=False, desc="fadm score",
        )  # fmt: skip


# ------------------------------------------------------------------------------- inputs


def _bad_csv(tmp_path, kind: str, german: Path) -> Path:
    text = german.read_text()
    path = tmp_path / f"{kind}.csv"
    lines = text.splitlines()
    if kind == "latin1":
        path.write_bytes(text.replace("male", "mâle", 1).encode("latin-1"))
    elif kind == "ragged":
        path.write_text("\n".join([*lines[:5], lines[5] + ",extra", *lines[6:]]) + "\n")
    elif kind == "empty":
        path.write_text("")
    elif kind == "dir":
        path.mkdir()
    elif kind == "stray":
        frame = pd.read_csv(german)
        frame["age"] = frame["age"].astype(object)
        frame.loc[41, "age"] = "forty"
        frame.to_csv(path, index=False)
    elif kind == "dupes":
        path.write_text(lines[0] + ",age\n" + "\n".join(line + ",1" for line in lines[1:]) + "\n")
    return path


BAD_FILES = [
    ("latin1", "not UTF-8"),
    ("ragged", "ragged: data row 5 has"),
    ("empty", "is empty"),
    ("dir", "is a directory"),
    ("stray", "column 'age' is numeric but data row 42 holds 'forty'"),
    ("dupes", "duplicate column names ['age']"),
]


@pytest.mark.parametrize(("kind", "message"), BAD_FILES)
def test_evaluate_synthetic_checks_its_file(capsys, tmp_path, german_csv, kind, message):
    bad = _bad_csv(tmp_path, kind, german_csv)
    argv = ["evaluate", "--real", "german", "--synthetic", bad, "--no-quality"]
    refused(capsys, tmp_path, *argv, message=message)


@pytest.mark.parametrize(("kind", "message"), BAD_FILES[:4])
def test_audit_data_checks_its_file(capsys, tmp_path, german_csv, kind, message):
    bad = _bad_csv(tmp_path, kind, german_csv)
    argv = ["audit", "--data", bad, "--X", "sex", "--Y", "credit"]
    refused(capsys, tmp_path, *argv, message=message)


@pytest.mark.parametrize(("kind", "message"), [BAD_FILES[0], BAD_FILES[4]])
def test_fit_faircausesyn_checks_its_file(capsys, tmp_path, german_csv, kind, message):
    bad = _bad_csv(tmp_path, kind, german_csv)
    argv = ["fit", "--method", "faircausesyn", "--data", bad, "--label", "credit"]
    refused(capsys, tmp_path, *argv, "--sensitive", "sex", "--out", tmp_path / "m", message=message)


def test_misspelled_synthetic_categories_are_listed(capsys, tmp_path, german_csv):
    frame = pd.read_csv(german_csv)
    frame["sex"] = frame["sex"].str.capitalize()
    frame.to_csv(tmp_path / "syn.csv", index=False)
    argv = ["evaluate", "--real", "german", "--synthetic", tmp_path / "syn.csv"]
    refused(capsys, tmp_path, *argv, message="column 'sex' has value(s) the real data never have")


def test_identifier_like_column_gets_a_warning_naming_it(german_csv, tmp_path):
    frame = pd.read_csv(german_csv)
    frame.insert(0, "customer", [f"c{i:05d}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.warns(FairjaxWarning, match="column 'customer' looks like an identifier"):
        read_table(tmp_path / "ids.csv")


def test_categorical_lets_a_mixed_column_through(tmp_path, german_csv):
    bad = _bad_csv(tmp_path, "stray", german_csv)
    with pytest.raises(FairjaxError, match="data row 42"):
        read_table(bad)
    assert read_table(bad, categorical=["age"])["age"].iloc[41] == "forty"


def test_positive_names_the_favourable_label_of_a_text_label(capsys, tmp_path, german_csv):
    frame = pd.read_csv(german_csv)
    frame["credit"] = np.where(frame["credit"] == 1, "good", "bad")
    frame.to_csv(tmp_path / "real.csv", index=False)
    argv = ["evaluate", "--real", tmp_path / "real.csv", "--synthetic", tmp_path / "real.csv"]
    argv += ["--label", "credit", "--sensitive", "sex", "--no-quality", "--classifier", "logistic"]
    refused(capsys, tmp_path, *argv, message="positive")
    code, out, err = cli_run(capsys, *argv, "--positive", "good", "--json")
    assert code == 0, err
    assert json.loads(out)["n_real"] == len(frame)


def test_categorical_applies_to_csv_files_only(capsys, tmp_path, monkeypatch):
    no_fit(monkeypatch)
    argv = ["fit", "--data", "german", "--categorical", "age", "--out", tmp_path / "m"]
    refused(capsys, tmp_path, *argv, message="apply to a CSV file")


# ------------------------------------------------------------------------------ options


def test_debug_is_accepted_anywhere(capsys, tmp_path):
    with pytest.raises(FairjaxError, match="neither a bundled"):
        main(["evaluate", "--real", "nope", "--synthetic", "x.csv", "--debug"])


def test_version(capsys):
    code, out, _ = cli_run(capsys, "--version")
    assert code == 0 and out.strip().startswith("fairjax ")


@pytest.mark.parametrize("method", ["fadm", "vae", "faircausesyn"])
def test_fit_help_lists_every_set_field_with_its_default(capsys, method):
    import dataclasses

    from fairjax import generators

    code, out, _ = cli_run(capsys, "fit", "--method", method, "--help")
    assert code == 0
    for f in dataclasses.fields(generators.get(method).PRESETS["quick"]):
        value = getattr(generators.get(method).PRESETS["quick"], f.name)
        assert f"  {f.name} = {value!r}" in out, f.name


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("score_steps=0", "score_steps must be a positive integer"),
     ("lr=nan", "lr must be a finite number"),
     ("beta_max=inf", "beta_max must be a finite number"), ("width=-1", "width must be"),
     ("time_dim=0", "time_dim must be a positive integer"), ("lr=-0.1", "lr must be positive"),
     ("batch_size=0", "batch_size")],
)  # fmt: skip
def test_set_values_are_checked_before_training(capsys, tmp_path, monkeypatch, assignment, message):
    no_fit(monkeypatch)
    argv = ["fit", "--data", "german", "--set", assignment, "--out", tmp_path / "m"]
    refused(capsys, tmp_path, *argv, message=message)


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seeds_outside_32_bits_are_refused(capsys, tmp_path, monkeypatch, seed):
    no_fit(monkeypatch)
    argv = ["fit", "--data", "german", "--seed", seed, "--out", tmp_path / "m"]
    refused(capsys, tmp_path, *argv, message="out of range")


def test_llm_timeout_is_a_config_option(capsys, tmp_path):
    import dataclasses

    from fairjax.faircausesyn import pipeline

    config = dataclasses.replace(
        pipeline.PRESETS["quick"], backend="llm", llm_url="http://x/v1", llm_model="m",
        llm_timeout_s=7.5,
    )  # fmt: skip
    assert config.backend_config().timeout_s == 7.5
    argv = ["fit", "--method", "faircausesyn", "--data", "nhefs", "--set", "llm_timeout_s=0"]
    refused(capsys, tmp_path, *argv, "--out", tmp_path / "m", message="llm_timeout_s")


def test_usage_errors_are_one_line(capsys, tmp_path):
    refused(capsys, tmp_path, "fit", "--data", "german", "--bogus", message="error:")


def test_check_param_shapes_names_the_leaf():
    expected = {"score": {"w": jax.ShapeDtypeStruct((3, 4), jnp.float32)}}
    persist.check_param_shapes("m", {"score": {"w": np.zeros((3, 4))}}, expected)
    with pytest.raises(FairjaxError, match=r"\['score'\]\['w'\] has shape \(4, 3\)"):
        persist.check_param_shapes("m", {"score": {"w": np.zeros((4, 3))}}, expected)
    with pytest.raises(FairjaxError, match=r"missing from params\.msgpack"):
        persist.check_param_shapes("m", {"score": {}}, expected)


def test_committed_results_are_untouched_by_this_file():
    """Runs last (file order): nothing above wrote into the repository's results/."""
    assert snapshot(ROOT / "results") == RESULTS_AT_IMPORT


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    """Temporary files are private (0600); the renamed output must not stay so."""
    import os

    from fairjax import outputs

    umask = os.umask(0o022)
    try:
        path = outputs.write_text(tmp_path / "a.txt", "x")
        with outputs.atomic_folder(tmp_path / "model") as folder:
            (folder / "f").write_text("y")
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "model").stat().st_mode & 0o777) == 0o755


def test_same_stamp_admits_records_from_before_the_stopping_fields_only_at_holdout_zero():
    new = {"width": 8, "holdout": 0.0, "eval_every": 250, "patience": 6}
    stamp = {"preset": "cpu", "fit": {"config": new, "points": [{"lz": 1}]}}
    before = {"preset": "cpu", "fit": {"config": {"width": 8}, "points": [{"lz": 1}]}}
    assert common.same_stamp(stamp, stamp)
    assert common.same_stamp(before, stamp)
    held_out = {"preset": "cpu", "fit": {"config": {**new, "holdout": 0.1}, "points": [{"lz": 1}]}}
    assert not common.same_stamp(before, held_out)  # early stopping trains differently
    wider = {"preset": "cpu", "fit": {"config": {"width": 16}, "points": [{"lz": 1}]}}
    assert not common.same_stamp(wider, stamp)
    partial = {
        "preset": "cpu",
        "fit": {"config": {"width": 8, "holdout": 0.0}, "points": [{"lz": 1}]},
    }
    assert not common.same_stamp(partial, stamp)
    other_points = {"preset": "cpu", "fit": {"config": {"width": 8}, "points": [{"lz": 2}]}}
    assert not common.same_stamp(other_points, stamp)
    assert not common.same_stamp({**before, "seed": 1}, stamp)


def test_same_stamp_admits_records_from_before_label_guidance_only_for_the_classifier_guide():
    stamp = {"fit": {"config": {"width": 8, "holdout": 0.0, "label_guidance": "classifier"}}}
    before = {"fit": {"config": {"width": 8, "holdout": 0.0}}}
    assert common.same_stamp(before, stamp)
    free = {"fit": {"config": {"width": 8, "holdout": 0.0, "label_guidance": "free"}}}
    assert not common.same_stamp(before, free)  # a label-conditioned score net is another fit
    assert not common.same_stamp(free, stamp)


def test_committed_fadm_adult_cpu_records_are_reused_by_todays_code():
    """Every committed cpu fit record matches the stamp today's code gives it, so the README's
    command reuses them instead of refusing them (or recomputing them with --overwrite)."""
    from experiments import fadm_adult

    results = ROOT / "results" / "fadm_adult" / "cpu"
    runner = fadm_adult.Runner(results, "cpu", progress=False)
    checked = 0
    for method in fadm_adult.methods(runner.preset):
        for target in runner.preset.domains:
            for seed in runner.preset.seeds:
                path, stamp = runner.fit_stamp(method, (target,), seed)
                if method.fit_as:
                    continue  # the owner's record
                assert common.same_stamp(common.read_record(path)["run"], stamp), path
                checked += 1
    assert checked == 105
