"""The one persistence path (`fairjax.persist`): every method's folder, old and new.

The format-1 folders in tests/data/persist_v1 were written by fairjax at commit e05b6b9
(`make.py` there). Today's `load` must read them exactly. For the methods whose layout did
not change (FADM and the joint baselines), saving the loaded model again gives the same
bytes in every file but the version in model.json, so every field loaded as it was saved.
The methods whose layout changed (intersectional, FairCauseSyn and its local model) must
give the 16 rows they sampled then (compiling a sampler costs seconds on 2 CPU cores, hence
rows only where the read path rearranges the files). A later change that alters their
sampling on purpose must rewrite those CSVs (sample the format-1 folders with the new code).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import chex
import flax.serialization
import jax
import numpy as np
import pandas as pd
import pytest
from test_safety import rehash

from fairjax import generators, persist
from fairjax.errors import FairjaxError
from fairjax.faircausesyn import local

V1 = Path(__file__).parent / "data" / "persist_v1"
METHODS = ["fadm", "vae", "gan", "ddpm", "fairgan", "intersectional", "faircausesyn"]
# Format 2 is format 1 but the version for these; the others' rows are compared.
UNCHANGED = ["fadm", "vae", "gan", "ddpm", "fairgan"]
SAMPLED = ["intersectional", "faircausesyn", "faircausesyn-local"]
KEY = jax.random.key(7)
_LOADED: dict = {}


def load(name: str, folder: Path | None = None):
    folder = folder or V1 / name
    return local.load_local(folder) if name == "faircausesyn-local" else generators.load(folder)


def old(name: str):
    """The model of format-1 folder `name`, loaded once per session."""
    if name not in _LOADED:
        _LOADED[name] = load(name)
    return _LOADED[name]


def test_every_method_has_a_format_1_folder():
    assert set(METHODS) <= set(generators.METHODS)  # every method that wrote format 1
    for name in [*METHODS, "faircausesyn-local", "faircausesyn-llm"]:
        assert json.loads((V1 / name / "model.json").read_text())["format_version"] == 1


@pytest.mark.parametrize("name", UNCHANGED)
def test_format_1_folder_resaves_to_the_same_files_but_the_version(name, tmp_path):
    old(name).save(tmp_path / "m")
    new = persist.read_folder(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (V1 / name).iterdir()}
    assert sorted(new) == sorted(set(before) - {"manifest.json"})
    for file in sorted(new):
        if file == "model.json":
            meta = json.loads(new[file])
            assert meta.pop("format_version") == 2
            assert json.loads(before[file]) == {**meta, "format_version": 1}
        elif file == "config.json":  # options added since format 1 come back at their defaults
            saved, then = json.loads(new[file]), json.loads(before[file])
            defaults = dataclasses.asdict(type(old(name).config)())
            assert saved == {**{k: defaults[k] for k in saved.keys() - then.keys()}, **then}
        else:
            assert new[file] == before[file], file
    back = load(name, tmp_path / "m")  # and format 2 loads back to the same fields
    assert back.config == old(name).config and back.history == old(name).history
    chex.assert_trees_all_equal(back.params, old(name).params)


@pytest.mark.parametrize("name", SAMPLED)
def test_format_1_folder_loads_to_the_same_rows_and_saves_as_format_2(name, tmp_path):
    model = old(name)
    want = pd.read_csv(V1 / f"{name}.csv")
    rows = model.sample(KEY, len(want))
    pd.testing.assert_frame_equal(rows, want, check_dtype=False)
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["format_version"] == 2
    pd.testing.assert_frame_equal(load(name, tmp_path / "m").sample(KEY, len(want)), rows)


def test_format_1_llm_folder_keeps_its_prompt_examples(tmp_path):
    model = old("faircausesyn-llm")
    assert model.generator is None and model.config.backend == "llm"
    want = pd.read_csv(V1 / "faircausesyn-llm.csv")
    pd.testing.assert_frame_equal(model.examples, want)
    model.save(tmp_path / "m")
    back = generators.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.examples, want)
    assert back.rounds == model.rounds and back.roles == model.roles


@pytest.mark.parametrize("name", [*METHODS, "faircausesyn-local", "faircausesyn-llm"])
def test_saving_the_same_model_twice_gives_the_same_bytes(name, tmp_path):
    model = old(name)
    model.save(tmp_path / "a")
    model.save(tmp_path / "b")
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert a == b
    for rel in a:
        if (tmp_path / "a" / rel).is_file():
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_intersectional_rows_are_extra_arrays_not_parameters(tmp_path):
    model = old("intersectional")
    model.save(tmp_path / "m")
    files = persist.read_folder(tmp_path / "m")
    assert sorted(files) == sorted([*persist.FILES, persist.ARRAYS])
    arrays = flax.serialization.msgpack_restore(files[persist.ARRAYS])
    np.testing.assert_array_equal(arrays["rows"]["x"], np.asarray(model.rows.x))
    assert arrays["bandwidths"].dtype == np.float32
    params = flax.serialization.msgpack_restore(files["params.msgpack"])
    assert jax.tree.structure(params) == jax.tree.structure(jax.device_get(model.params))
    assert "bandwidths" not in json.loads(files["model.json"])["info"]


def test_faircausesyn_nests_its_local_model_under_one_manifest(tmp_path):
    old("faircausesyn").save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert {"local/model.json", "local/params.msgpack", "local/config.json"} <= set(
        manifest["files"]
    )
    assert not (tmp_path / "m" / "local" / "manifest.json").exists()
    meta = json.loads((tmp_path / "m" / "local" / "model.json").read_text())
    assert meta["method"] == "faircausesyn-local" and meta["format_version"] == 2
    assert json.loads((tmp_path / "m" / "model.json").read_text())["nested"] == {
        "local": "faircausesyn-local"
    }


def _saved(name: str, tmp_path: Path) -> Path:
    old(name).save(tmp_path / "m")
    return tmp_path / "m"


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("intersectional", "arrays.msgpack"),
        ("faircausesyn", "local/params.msgpack"),
        ("faircausesyn-local", "params.msgpack"),
    ],
)
def test_a_missing_or_unreadable_file_is_named(name, file, tmp_path):
    folder = _saved(name, tmp_path)
    (folder / file).unlink()
    with pytest.raises(FairjaxError, match=f"{file} is missing"):
        load(name, folder)
    (folder / file).write_bytes(b"\xc1garbage")
    rehash(folder)
    with pytest.raises(FairjaxError, match=f"{file.split('/')[-1]} is not a readable"):
        load(name, folder)


@pytest.mark.parametrize(
    ("name", "config", "change"),
    [
        ("intersectional", "config.json", {"parameterisation": "linear"}),
        ("faircausesyn", "local/config.json", {"d_model": 12, "n_heads": 2}),
        ("faircausesyn-local", "config.json", {"n_layers": 2}),
        ("fadm", "config.json", {"width": 24}),
    ],
)
def test_parameters_that_do_not_fit_the_config_are_refused(name, config, change, tmp_path):
    folder = _saved(name, tmp_path)
    values = json.loads((folder / config).read_text())
    (folder / config).write_text(json.dumps({**values, **change}))
    rehash(folder)
    with pytest.raises(FairjaxError, match=r"parameter .* (has shape|is (missing|unexpected))"):
        load(name, folder)


def test_unknown_format_versions_and_nested_models_are_refused(tmp_path):
    folder = _saved("faircausesyn", tmp_path)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "nested": {"remote": "x"}}))
    rehash(folder)
    with pytest.raises(FairjaxError, match="unknown nested model 'remote'"):
        load("faircausesyn", folder)
    (folder / "model.json").write_text(json.dumps({**meta, "format_version": 3}))
    rehash(folder)
    with pytest.raises(FairjaxError, match="format version 3; this fairjax reads versions 1, 2"):
        load("faircausesyn", folder)


def test_a_format_1_folder_with_a_malformed_model_json_is_named(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(V1 / "intersectional", folder)
    meta = json.loads((folder / "model.json").read_text())
    del meta["info"]["bandwidths"]
    (folder / "model.json").write_text(json.dumps(meta))
    rehash(folder)
    with pytest.raises(FairjaxError, match="format-1 intersectional folder, malformed"):
        load("intersectional", folder)


def test_plain_makes_numpy_and_jax_values_json():
    value = {"a": np.arange(3), "b": jax.numpy.ones(2), "c": np.float32(1.5), "d": (np.int64(2),)}
    assert persist.plain(value) == {"a": [0, 1, 2], "b": [1.0, 1.0], "c": 1.5, "d": [2]}
    assert type(persist.plain(value)["d"][0]) is int


def test_a_faircausesyn_folder_without_its_local_model_is_refused(tmp_path):
    folder = _saved("faircausesyn", tmp_path)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "nested": {"local": None}}))
    rehash(folder)
    with pytest.raises(FairjaxError, match="local backend needs its transformer"):
        load("faircausesyn", folder)
