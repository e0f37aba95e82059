"""Tests of fairjax.datasets: the bundled loaders, `load`/`available`, `load_csv`, the build."""

import gzip
import re
import time
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from fairjax.data import validate_frame
from fairjax.datasets import (
    DatasetInfo,
    _build,
    available,
    load,
    load_adult,
    load_compas,
    load_csv,
    load_german,
    load_nhefs,
)
from fairjax.errors import FairjaxError

LOADERS = {"adult": load_adult, "compas": load_compas, "german": load_german, "nhefs": load_nhefs}

# name -> (rows, rows with label 1), known counts of the cleaned data sets
COUNTS = {
    "adult": (45_222, 11_208),
    "compas": (6_172, 2_809),
    "german": (1_000, 700),
    "nhefs": (1_533, 279),
}

FILES = resources.files("fairjax.datasets") / "files"


def _string_columns(frame):
    return [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]


# --- every bundled data set ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOADERS))
def test_rows_and_label_counts(name):
    ds = LOADERS[name]()
    rows, positives = COUNTS[name]
    assert len(ds) == rows
    assert ds.frame[ds.schema.label].dtype == np.int64
    assert set(ds.y.tolist()) == {0, 1}
    assert int(ds.y.sum()) == positives


@pytest.mark.parametrize("name", list(LOADERS))
def test_frame_fits_schema(name):
    ds = LOADERS[name]()
    frame, schema = ds.frame, ds.schema
    validate_frame(frame, schema)
    assert set(frame.columns) == set(schema.columns)
    assert list(schema.categorical) == [c for c in frame.columns if c in schema.categorical]
    assert list(schema.numeric) == [c for c in frame.columns if c in schema.numeric]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in frame.columns)
    assert not frame.isna().any().any()
    for c in schema.numeric:
        assert pd.api.types.is_numeric_dtype(frame[c])
    for c in _string_columns(frame):
        assert (frame[c] == frame[c].str.strip()).all(), c
    assert ds.name == name and ds.source and ds.licence
    assert len(schema.label_names) == 2


# --- Adult --------------------------------------------------------------------------------


def test_adult_columns_and_roles():
    ds = load_adult()
    numeric = ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")
    assert list(ds.frame.columns) == [
        "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
        "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
        "hours_per_week", "native_country", "income",
    ]  # fmt: skip
    assert ds.schema.numeric == numeric
    assert all(ds.frame[c].dtype == np.int64 for c in numeric)
    assert ds.schema.label == "income" and ds.schema.label_names == ("<=50K", ">50K")
    assert ds.schema.sensitive == ("sex",) and ds.schema.domain == "race"
    assert set(ds.frame["sex"]) == {"Male", "Female"}


def test_adult_race_keeps_five_values_and_no_raw_artefacts():
    frame = load_adult().frame
    counts = frame["race"].value_counts()
    assert set(counts.index) == {
        "White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other",
    }  # fmt: skip
    assert counts.idxmax() == "White"
    for c in _string_columns(frame):
        assert not (frame[c] == "?").any(), c
        assert not frame[c].str.endswith(".").any(), c
    assert load_adult().domains() == sorted(counts.index)


def test_adult_cache_returns_fresh_copies_quickly():
    first = load_adult()
    first.frame.loc[0, "race"] = "corrupted"
    del first.frame["age"]
    start = time.perf_counter()
    second = load_adult()
    assert time.perf_counter() - start < 2.0
    assert second.frame.loc[0, "race"] == "White" and "age" in second.frame.columns
    assert second.frame is not load_adult().frame


# --- COMPAS -------------------------------------------------------------------------------


def test_compas_columns_roles_and_values():
    ds = load_compas()
    assert list(ds.frame.columns) == [
        "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count",
        "juv_other_count", "priors_count", "c_charge_degree", "decile_score",
        "two_year_recid",
    ]  # fmt: skip
    assert ds.schema.sensitive == ("race",) and ds.schema.domain is None
    assert ds.schema.label_names == ("no recidivism", "recidivism")
    assert ds.frame["race"].value_counts().to_dict() == {
        "African-American": 3175, "Caucasian": 2103, "Hispanic": 509,
        "Other": 343, "Asian": 31, "Native American": 11,
    }  # fmt: skip
    assert set(ds.frame["c_charge_degree"]) == {"F", "M"}
    assert ds.frame["decile_score"].between(1, 10).all()


def test_compas_package_file_has_no_identities():
    header = pd.read_csv(FILES / "compas.csv.gz", nrows=0).columns
    assert not {"id", "name", "first", "last", "dob"} & set(header)


# --- German -------------------------------------------------------------------------------


def test_german_decoding_and_personal_status_split():
    ds = load_german()
    frame = ds.frame
    assert frame.shape == (1000, 22)
    assert ds.schema.sensitive == ("sex",) and ds.schema.label_names == ("bad", "good")
    assert list(frame.columns[8:10]) == ["marital_status", "sex"]
    assert "personal_status" not in frame.columns
    for c in _string_columns(frame):
        assert not frame[c].str.fullmatch(r"A\d+").any(), c
    assert frame["sex"].value_counts().to_dict() == {"male": 690, "female": 310}
    # raw counts: A91 50, A92 310, A93 548, A94 92 (no A95); A93 is the only "single" code
    ever = "ever married"
    counts = frame.groupby(["marital_status", "sex"]).size().to_dict()
    assert counts == {(ever, "female"): 310, (ever, "male"): 142, ("single", "male"): 548}
    assert len(ds.schema.numeric) == 7 and frame["credit_amount"].sum() == 3_271_258


def test_german_package_file_has_no_personal_status():
    header = pd.read_csv(FILES / "german.csv.gz", nrows=0).columns
    assert "personal_status" not in header and {"marital_status", "sex"} <= set(header)


# --- NHEFS --------------------------------------------------------------------------------


def test_nhefs_columns_codes_and_no_post_outcome_columns():
    ds = load_nhefs()
    frame = ds.frame
    assert list(frame.columns) == [
        "sex", "race", "age", "education", "smokeintensity", "smokeyrs", "sbp", "dbp",
        "wt71", "ht", "diabetes", "exercise", "active", "alcoholfreq", "asthma", "bronch",
        "hbp", "qsmk", "death",
    ]  # fmt: skip
    assert not {"yrdth", "modth", "dadth", "wt82", "wt82_71"} & set(frame.columns)
    assert ds.schema.numeric == ("age", "smokeintensity", "smokeyrs", "sbp", "dbp", "wt71", "ht")
    assert ds.schema.label_names == ("alive in 1992", "died by 1992")
    assert frame["sex"].value_counts().to_dict() == {"female": 786, "male": 747}
    assert frame["race"].value_counts().to_dict() == {"white": 1332, "other": 201}
    ranges = {"education": (1, 5), "diabetes": (0, 2), "hbp": (0, 2), "exercise": (0, 2),
              "active": (0, 2), "alcoholfreq": (0, 5), "asthma": (0, 1), "bronch": (0, 1),
              "qsmk": (0, 1)}  # fmt: skip
    for c, (lo, hi) in ranges.items():
        assert frame[c].dtype == np.int64 and frame[c].between(lo, hi).all(), c
        assert c in ds.schema.categorical


# --- load / available ---------------------------------------------------------------------


def test_load_dispatches_by_name():
    for name, loader in LOADERS.items():
        assert load(name).frame.equals(loader().frame)
    assert len(load(" Adult ")) == 45_222


def test_load_unknown_name_lists_the_known_ones():
    with pytest.raises(FairjaxError, match=r"'credit'.*adult, compas, german, nhefs"):
        load("credit")


def test_available_summarises_every_set():
    infos = available()
    assert [i.name for i in infos] == list(LOADERS)
    assert all(isinstance(i, DatasetInfo) for i in infos)
    by_name = {i.name: i for i in infos}
    assert {n: i.rows for n, i in by_name.items()} == {n: c[0] for n, c in COUNTS.items()}
    assert by_name["adult"] == DatasetInfo(
        "adult", 45_222, 15, "income", ("sex",), "race",
        load_adult().source, "CC BY 4.0",
    )  # fmt: skip
    assert by_name["german"].columns == 22 and by_name["nhefs"].columns == 19


# --- packaged files and the build ---------------------------------------------------------


def test_package_files_are_small_and_deterministic_gzip():
    paths = sorted(p for p in FILES.iterdir() if p.name.endswith(".csv.gz"))
    assert [p.name for p in paths] == sorted(_build.OUTPUTS)
    assert sum(len(p.read_bytes()) for p in paths) < 3_000_000
    for p in paths:
        head = p.read_bytes()[:10]
        assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0", p.name  # mtime 0
        assert head[3] & 0x08 == 0, p.name  # no file name stored
    assert (FILES / "SOURCES.md").is_file()


def _fake_raw(root):
    """A tiny raw folder with the layout `_build` expects."""
    for folder in ("adult", "compas", "german", "nhefs"):
        (root / folder).mkdir(parents=True)
    (root / "adult" / "adult.data").write_text("39, State-gov, 77516, <=50K\n")
    (root / "adult" / "adult.test").write_text("|1x3 Cross validator\n25, ?, 1, >50K.\n")
    (root / "german" / "german.data").write_text(
        "A11 6 A34 A43 1169 A65 A75 4 A92 A101 4 A121 67 A143 A152 2 A173 1 A192 A201 1\n"
    )
    compas = ["id", "name", "first", "last", "dob", *_build.COMPAS_COLUMNS]
    row = ["1", "Jane Doe", "Jane", "Doe", "1980-01-01"] + ["N/A"] * len(_build.COMPAS_COLUMNS)
    (root / "compas" / "compas-scores-two-years.csv").write_text(
        ",".join(compas) + "\n" + ",".join(row) + "\n"
    )
    nhefs = ["seqn", *_build.NHEFS_COLUMNS, "yrdth"]
    (root / "nhefs" / "nhefs_complete.csv").write_text(
        ",".join(nhefs) + "\n" + ",".join(["7"] + [""] * len(_build.NHEFS_COLUMNS) + ["88"])
    )


def test_build_is_deterministic_and_drops_identities(tmp_path):
    _fake_raw(tmp_path / "raw")
    sizes = _build.build(tmp_path / "raw", tmp_path / "a")
    _build.build(tmp_path / "raw", tmp_path / "b")
    assert set(sizes) == set(_build.OUTPUTS)
    for name in sizes:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    read = lambda name: gzip.decompress((tmp_path / "a" / name).read_bytes()).decode()
    assert read("adult_test.csv.gz") == "|1x3 Cross validator\n25, ?, 1, >50K.\n"
    compas = read("compas.csv.gz").splitlines()
    assert compas[0].split(",") == list(_build.COMPAS_COLUMNS)
    assert "Jane" not in read("compas.csv.gz") and compas[1].startswith("N/A,")
    german = read("german.csv.gz").splitlines()
    assert german[0].split(",")[8:10] == ["marital_status", "sex"] and "A92" not in german[1]
    assert german[1].split(",")[8:10] == [_build.GERMAN_EVER_MARRIED, "female"]
    nhefs = read("nhefs.csv.gz").splitlines()
    assert nhefs[0].split(",") == list(_build.NHEFS_COLUMNS) and "88" not in nhefs[1]


def test_build_names_missing_raw_files(tmp_path):
    with pytest.raises(SystemExit, match=r"adult/adult\.data"):
        _build.build(tmp_path, tmp_path / "out")


# --- load_csv -----------------------------------------------------------------------------


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_two_valued_label_with_positive(tmp_path):
    path = _write(
        tmp_path,
        "age, gender ,group,score,outcome\n"
        "30, f ,a,0.5,yes\n41,m,b,1.5,no\n25,f,c,2.0, yes\n52,m,a,-1.0,no\n",
    )
    ds = load_csv(path, label="outcome", sensitive="gender", domain="group", positive="yes")
    assert ds.name == "data" and ds.source == "" and len(ds) == 4
    assert ds.y.tolist() == [1, 0, 1, 0] and ds.frame["outcome"].dtype == np.int64
    assert ds.schema.label_names == ("no", "yes")
    assert ds.schema.sensitive == ("gender",) and ds.schema.domain == "group"
    assert ds.schema.categorical == ("age", "gender", "group", "outcome")  # <= 10 int values
    assert ds.schema.numeric == ("score",)
    assert ds.frame["gender"].tolist() == ["f", "m", "f", "m"]


def test_load_csv_keeps_01_and_boolean_labels(tmp_path):
    ds = load_csv(_write(tmp_path, "g,y,x\na,1,3\nb,0,4\n"), label="y", sensitive=["g"])
    assert ds.y.tolist() == [1, 0] and ds.schema.label_names == ("0", "1")
    ds = load_csv(_write(tmp_path, "g,y,b\na,True,False\nb,False,True\n"), label="y", sensitive="g")
    assert ds.y.tolist() == [1, 0] and ds.schema.label_names == ("False", "True")
    assert ds.frame["b"].tolist() == [0, 1] and ds.frame["b"].dtype == np.int64
    # positive flips a 0/1 label and may be given as text
    ds = load_csv(_write(tmp_path, "g,y\na,1\nb,2\n"), label="y", sensitive="g", positive="2")
    assert ds.y.tolist() == [0, 1] and ds.schema.label_names == ("1", "2")


def test_load_csv_round_trips_a_bundled_set(tmp_path):
    german = load_german()
    path = tmp_path / "german.csv"
    german.frame.to_csv(path, index=False)
    ds = load_csv(path, label="credit", sensitive="sex", categorical="duration_months")
    pd.testing.assert_frame_equal(ds.frame, german.frame, check_dtype=False)
    assert ds.frame["credit"].dtype == np.int64
    assert set(ds.schema.columns) == set(german.schema.columns)
    assert set(german.schema.categorical) <= set(ds.schema.categorical)
    assert set(ds.schema.numeric) == {"credit_amount", "age"}


GOOD = "g,y,x,c\na,1,0.5,u\nb,0,1.5,v\n"
BAD_INPUTS = [
    # (file text or None for no file, keyword arguments, expected message)
    (None, {}, r"data file '.*missing\.csv' not found"),
    ("", {}, r"is empty; expected a header row"),
    ("g,y,x\n", {}, r"has a header but no data rows"),
    (GOOD, {"label": "z"}, r"label='z' is not a column of the file; columns are \['g', 'y'"),
    (GOOD, {"sensitive": ["g", "h"]}, r"sensitive='h' is not a column"),
    (GOOD, {"domain": "d"}, r"domain='d' is not a column"),
    (GOOD, {"categorical": ["q"]}, r"categorical='q' is not a column"),
    (GOOD, {"sensitive": []}, r"sensitive=\(\) names no column"),
    (GOOD, {"sensitive": "y"}, r"label='y' cannot also be a sensitive"),
    ("g,y\na,0\nb,1\nc,2\n", {}, r"label column 'y' must be binary; found 3 values: 0, 1, 2"),
    ("g,y\na,1\nb,1\n", {}, r"label column 'y' must be binary; found the single value 1"),
    ("g,y\na,yes\nb,no\n", {}, r"'y' has the two values 'no', 'yes'; pass positive="),
    ("g,y\na,yes\nb,no\n", {"positive": "ok"}, r"positive='ok' is not a value of label .*'y'"),
    ("g,y\na,1\na,0\n", {}, r"sensitive column 'g' has a single value 'a'"),
    ("g,y,x\na,1,0.5\nb,0,\n", {}, r"column 'x' has 1 missing value.*first in data row 2"),
    ("g,y,x\na,1,0.5\n,0,1.0\n", {}, r"column 'g' has 1 missing value"),
    ("g,y,x\na,1,0.5\nb,0,inf\n", {}, r"numeric column 'x' has 1 NaN/infinite"),
]


@pytest.mark.parametrize(("text", "kwargs", "message"), BAD_INPUTS)
def test_load_csv_bad_input_raises_a_clear_error(tmp_path, text, kwargs, message):
    path = tmp_path / "missing.csv" if text is None else _write(tmp_path, text)
    kwargs = {"label": "y", "sensitive": "g", **kwargs}
    with pytest.raises(FairjaxError, match=message) as info:
        load_csv(path, **kwargs)
    assert str(path) in str(info.value)


def test_load_csv_rejects_a_directory(tmp_path):
    with pytest.raises(FairjaxError, match="is a directory"):
        load_csv(tmp_path, label="y", sensitive="g")
