"""The four data sets that ship with fairjax: Adult, COMPAS, German credit and NHEFS.

Each loader reads the gzipped copy in `fairjax/datasets/files/` (made by `_build.py`,
provenance in `files/SOURCES.md`), cleans it and returns a validated `TabularDataset`.
Parsing and cleaning run once per process (`functools.lru_cache`); every call returns a
fresh copy of the frame, so callers may modify it without affecting later loads.

In every data set the label is int64 0/1 and `Schema.label_names` says what 0 and 1 mean.
For Adult and German 1 is the favourable outcome; for COMPAS and NHEFS the label is the
recorded event (recidivism, death), so 1 is the *un*favourable outcome.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd

from fairjax.data import Schema, TabularDataset
from fairjax.datasets._frames import strip_strings
from fairjax.errors import FairjaxError

ADULT_SOURCE = (
    "Becker, B. & Kohavi, R. (1996). Adult [Census Income]. UCI Machine Learning Repository. "
    "doi:10.24432/C5XW20"
)
COMPAS_SOURCE = (
    'ProPublica "compas-analysis" (compas-scores-two-years.csv), Broward County, FL; '
    'Angwin, Larson, Mattu & Kirchner (2016), "Machine Bias", ProPublica. '
    "https://github.com/propublica/compas-analysis"
)
GERMAN_SOURCE = (
    "Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository. "
    "doi:10.24432/C5NC77"
)
NHEFS_SOURCE = (
    "NHANES I Epidemiologic Follow-up Study (NCHS), complete-case file of Hernán, M. A. & "
    "Robins, J. M., Causal Inference: What If (Chapman & Hall/CRC, 2020)"
)
CC_BY_4 = "CC BY 4.0"


def _read(filename: str, **read_csv_kwargs) -> pd.DataFrame:
    """`pd.read_csv` of a gzipped file in the package's `files/` folder."""
    with resources.as_file(resources.files(__package__) / "files" / filename) as path:
        return pd.read_csv(path, compression="gzip", **read_csv_kwargs)


def _dataset(
    frame: pd.DataFrame,
    *,
    name: str,
    label: str,
    label_names: tuple[str, str],
    sensitive: tuple[str, ...],
    numeric: Sequence[str],
    source: str,
    licence: str,
    domain: str | None = None,
) -> TabularDataset:
    """Validated data set over a fresh copy of `frame`; columns not in `numeric` are
    categorical, both listed in frame order."""
    schema = Schema(
        label=label,
        sensitive=sensitive,
        categorical=tuple(c for c in frame.columns if c not in numeric),
        numeric=tuple(c for c in frame.columns if c in numeric),
        domain=domain,
        label_names=label_names,
    )
    return TabularDataset(
        frame=frame.copy(), schema=schema, name=name, source=source, licence=licence
    )


# --- Adult ------------------------------------------------------------------------------

ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
ADULT_NUMERIC = (
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
)


@functools.lru_cache(maxsize=1)
def _adult_frame() -> pd.DataFrame:
    kw = dict(
        header=None,
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        keep_default_na=False,
        dtype={c: np.int64 for c in ADULT_NUMERIC},
    )
    # the test file opens with the comment line "|1x3 Cross validator"
    parts = [_read("adult_train.csv.gz", **kw), _read("adult_test.csv.gz", skiprows=1, **kw)]
    frame = strip_strings(pd.concat(parts, ignore_index=True))
    frame = frame[~(frame == "?").any(axis=1)].reset_index(drop=True)
    # test-file labels read ">50K." and "<=50K."
    frame["income"] = (frame["income"].str.rstrip(".") == ">50K").astype(np.int64)
    return frame


def load_adult() -> TabularDataset:
    """UCI Adult (1994 US census extract): income above $50K a year.

    Train (32,561 rows) and test (16,281 rows) files merged, values stripped, rows with a
    "?" in any column dropped: 45,222 rows, 11,208 of them with income > $50K.

    Columns (15): age [years], workclass, fnlwgt [census sampling weight], education,
    education_num [years, ordinal code 1..16], marital_status, occupation, relationship,
    race, sex, capital_gain [US$], capital_loss [US$], hours_per_week [hours],
    native_country, income. The six bracketed ones are int64 numeric, the rest strings.

    Roles: label `income` (1 = ">50K", the favourable outcome; 0 = "<=50K"), sensitive
    ("sex",) with "Male"/"Female", domain `race` with all five values kept (White,
    Black, Asian-Pac-Islander, Amer-Indian-Eskimo, Other), as in FADM's
    leave-one-domain-out benchmark.

    Returns:
      TabularDataset named "adult" with source and licence (CC BY 4.0) filled.
    """
    return _dataset(
        _adult_frame(),
        name="adult",
        label="income",
        label_names=("<=50K", ">50K"),
        sensitive=("sex",),
        domain="race",
        numeric=ADULT_NUMERIC,
        source=ADULT_SOURCE,
        licence=CC_BY_4,
    )


# --- COMPAS -----------------------------------------------------------------------------

COMPAS_COLUMNS = (
    "sex",
    "age",
    "age_cat",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
    "decile_score",
    "two_year_recid",
)
COMPAS_NUMERIC = (
    "age",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "decile_score",
)


@functools.lru_cache(maxsize=1)
def _compas_frame() -> pd.DataFrame:
    # "N/A" is a real score_text value to filter on, so pandas must not turn it into NaN
    raw = strip_strings(_read("compas.csv.gz", keep_default_na=False, na_values=[""]))
    days = raw["days_b_screening_arrest"]
    keep = (
        days.between(-30, 30)  # NaN days fail this, as in ProPublica's R filter
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
    )
    return raw.loc[keep, list(COMPAS_COLUMNS)].reset_index(drop=True)


def load_compas() -> TabularDataset:
    """ProPublica COMPAS two-year recidivism (Broward County, FL, 2013-2014).

    ProPublica's filter is applied: days_b_screening_arrest in [-30, 30],
    is_recid != -1, c_charge_degree != "O", score_text != "N/A"; 6,172 of 7,214 rows
    remain, 2,809 of them with two_year_recid = 1.

    Columns (11): sex, age [years], age_cat, race, juv_fel_count, juv_misd_count,
    juv_other_count, priors_count [counts of prior charges], c_charge_degree ("F" felony,
    "M" misdemeanour), decile_score [COMPAS risk decile 1..10; the tool's own output, so
    leave it out of a predictor meant to replace COMPAS], two_year_recid. age, the four
    counts and decile_score are int64 numeric, the rest strings.

    Roles: label `two_year_recid` with 1 = recidivated within two years, which is the
    UNFAVOURABLE outcome (label_names = ("no recidivism", "recidivism")); flip it
    (1 - y) where a method expects 1 to be favourable. Sensitive ("race",) with all six
    values kept (African-American, Caucasian, Hispanic, Other, Asian, Native American).
    No domain.

    Returns:
      TabularDataset named "compas"; people's names, ids and dates of birth are not in
      the packaged file.
    """
    return _dataset(
        _compas_frame(),
        name="compas",
        label="two_year_recid",
        label_names=("no recidivism", "recidivism"),
        sensitive=("race",),
        numeric=COMPAS_NUMERIC,
        source=COMPAS_SOURCE,
        licence="public ProPublica data; cite Angwin et al. (2016)",
    )


# --- German credit ----------------------------------------------------------------------

# Attribute order and A-codes as in the UCI documentation (german.doc), except attribute 9
# (personal_status), which the build replaced by marital_status and sex (see `_build`).
GERMAN_COLUMNS = (
    "checking_account_status",
    "duration_months",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings_account",
    "employment_since",
    "installment_rate",
    "marital_status",
    "sex",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
    "credit",
)
GERMAN_NUMERIC = (
    "duration_months",
    "credit_amount",
    "installment_rate",
    "residence_since",
    "age",
    "existing_credits",
    "people_liable",
)
GERMAN_CODES = {
    "checking_account_status": {
        "A11": "< 0 DM",
        "A12": "0 to < 200 DM",
        "A13": ">= 200 DM or salary assigned",
        "A14": "no checking account",
    },
    "credit_history": {
        "A30": "no credits taken or all paid back duly",
        "A31": "all credits at this bank paid back duly",
        "A32": "existing credits paid back duly till now",
        "A33": "delay in paying off in the past",
        "A34": "critical account or credits at other banks",
    },
    "purpose": {
        "A40": "car (new)",
        "A41": "car (used)",
        "A42": "furniture/equipment",
        "A43": "radio/television",
        "A44": "domestic appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "savings_account": {
        "A61": "< 100 DM",
        "A62": "100 to < 500 DM",
        "A63": "500 to < 1000 DM",
        "A64": ">= 1000 DM",
        "A65": "unknown or none",
    },
    "employment_since": {
        "A71": "unemployed",
        "A72": "< 1 year",
        "A73": "1 to < 4 years",
        "A74": "4 to < 7 years",
        "A75": ">= 7 years",
    },
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "building society savings or life insurance",
        "A123": "car or other",
        "A124": "unknown or none",
    },
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {
        "A171": "unemployed or unskilled non-resident",
        "A172": "unskilled resident",
        "A173": "skilled employee or official",
        "A174": "management, self-employed or highly qualified",
    },
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
}


@functools.lru_cache(maxsize=1)
def _german_frame() -> pd.DataFrame:
    raw = _read("german.csv.gz", dtype={c: str for c in GERMAN_CODES})
    if tuple(raw.columns) != GERMAN_COLUMNS:
        raise FairjaxError(f"german.csv.gz has columns {list(raw.columns)}; rebuild it")
    frame = raw.copy()
    for column, codes in GERMAN_CODES.items():
        frame[column] = raw[column].map(codes)
    frame["credit"] = (raw["credit"] == 1).astype(np.int64)
    return frame


def load_german() -> TabularDataset:
    """Statlog German credit (Hofmann 1994): is an applicant a good credit risk?

    1,000 rows, no missing values; 700 good and 300 bad risks.

    Columns (22): the UCI attributes in UCI order with snake_case names,
    checking_account_status, duration_months [months], credit_history, purpose,
    credit_amount [DM], savings_account, employment_since, installment_rate [% of
    disposable income, 1..4], marital_status, sex, other_debtors, residence_since [years,
    1..4], property, age [years], other_installment_plans, housing, existing_credits
    [credits at this bank], job, people_liable [people the applicant provides
    maintenance for], telephone, foreign_worker, and the label `credit` last. The A-codes
    of the 12 categorical attributes are decoded to the UCI descriptions; the seven UCI
    numerical attributes (bracketed) are int64 numeric.

    UCI attribute 9, personal_status, is not shipped: its five codes each fix the sex
    (A91, A93, A94 male; A92, A95 female), so a "sex-blind" model given it sees sex. The
    build split it into `sex` and `marital_status` = "single" (A93, A95) or "ever
    married" (married, widowed, divorced or separated: A91, A92, A94), the finest marital
    split the codes define alike for both sexes. It is still a proxy here: the data hold no single
    women (no A95), so "single" implies male (single-feature AUC for sex 0.90).

    Roles: label `credit`, 1 = good (raw 1, the favourable outcome), 0 = bad (raw 2);
    sensitive ("sex",); no domain.

    Returns:
      TabularDataset named "german" with source and licence (CC BY 4.0) filled.
    """
    return _dataset(
        _german_frame(),
        name="german",
        label="credit",
        label_names=("bad", "good"),
        sensitive=("sex",),
        numeric=GERMAN_NUMERIC,
        source=GERMAN_SOURCE,
        licence=CC_BY_4,
    )


# --- NHEFS ------------------------------------------------------------------------------

NHEFS_NUMERIC = ("age", "smokeintensity", "smokeyrs", "sbp", "dbp", "wt71", "ht")


@functools.lru_cache(maxsize=1)
def _nhefs_frame() -> pd.DataFrame:
    frame = _read("nhefs.csv.gz").dropna().reset_index(drop=True)
    codes = [c for c in frame.columns if c not in NHEFS_NUMERIC]
    # dropna leaves float columns where the raw file had gaps; codes are whole numbers
    frame[codes] = frame[codes].astype(np.int64)
    frame["sex"] = frame["sex"].map({0: "male", 1: "female"})
    frame["race"] = frame["race"].map({0: "white", 1: "other"})
    return frame


def load_nhefs() -> TabularDataset:
    """NHEFS (NHANES I Epidemiologic Follow-up Study): death by 1992 after a 1971 baseline.

    The complete-case file of Hernán & Robins (1,566 people with baseline and 1982
    weights) restricted to 19 columns, then rows with a missing value in them dropped
    (33 lack dbp, 29 of these also sbp): 1,533 rows, 279 deaths.

    Columns, baseline 1971 unless noted:
      sex: "male"/"female" (raw 0/1); race: "white"/"other" (raw 0 white, 1 black or
      other); age [years]; education: 1 8th grade or less, 2 high-school dropout, 3 high
      school, 4 college dropout, 5 college or more; smokeintensity [cigarettes per day];
      smokeyrs [years of smoking]; sbp, dbp [systolic/diastolic blood pressure, mmHg,
      measured in 1982]; wt71 [weight, kg]; ht [height, cm]; diabetes, hbp (high blood
      pressure): 0 never, 1 ever, 2 not recorded (769 rows each; kept as a category
      because dropping them would halve the data); exercise: 0 much, 1 moderate,
      2 little or none; active: 0 very, 1 moderately, 2 inactive; alcoholfreq: 0 almost
      every day, 1 2-3 times/week, 2 1-4 times/month, 3 < 12 times/year, 4 none last
      year, 5 unknown; asthma, bronch (chronic bronchitis/emphysema): 0 never, 1 ever;
      qsmk: quit smoking between 1971 and 1982 (1 yes), the usual treatment of the
      causal examples; death: died by 1992.
    The seven bracketed columns are numeric (ints except sbp, dbp, wt71, ht: float64);
    the coded ones are int64 categorical with the codes above. Outcome-related
    follow-up columns (yrdth, modth, dadth, wt82, wt82_71, ...) are never kept.

    Roles: label `death`, 1 = died by 1992, which is the UNFAVOURABLE outcome
    (label_names = ("alive in 1992", "died by 1992")); sensitive ("sex",); no domain.

    Returns:
      TabularDataset named "nhefs" with source and licence filled.
    """
    return _dataset(
        _nhefs_frame(),
        name="nhefs",
        label="death",
        label_names=("alive in 1992", "died by 1992"),
        sensitive=("sex",),
        numeric=NHEFS_NUMERIC,
        source=NHEFS_SOURCE,
        licence="US government public-use data",
    )


# --- registry ---------------------------------------------------------------------------

LOADERS: dict[str, Callable[[], TabularDataset]] = {
    "adult": load_adult,
    "compas": load_compas,
    "german": load_german,
    "nhefs": load_nhefs,
}


def load(name: str) -> TabularDataset:
    """Load a bundled data set by name: "adult", "compas", "german" or "nhefs".

    Args:
      name: data set name, case-insensitive.

    Returns:
      The loader's `TabularDataset`.

    Raises:
      FairjaxError: for an unknown name; the message lists the known ones.
    """
    key = str(name).strip().lower()
    if key not in LOADERS:
        raise FairjaxError(f"unknown data set {name!r}; available: {', '.join(LOADERS)}")
    return LOADERS[key]()


class DatasetInfo(NamedTuple):
    """Summary of one bundled data set, one row of `fairjax datasets`.

    Attributes:
      name: the name `load` accepts.
      rows: number of rows after cleaning.
      columns: number of columns, label included.
      label: label column name.
      sensitive: sensitive column names.
      domain: domain column name, or None.
      source: citation / URL.
      licence: licence of the data.
    """

    name: str
    rows: int
    columns: int
    label: str
    sensitive: tuple[str, ...]
    domain: str | None
    source: str
    licence: str


def available() -> list[DatasetInfo]:
    """One `DatasetInfo` per bundled data set, in the order of `LOADERS`.

    Loads each set (cached after the first call, under a second for all four).
    """
    infos = []
    for name, loader in LOADERS.items():
        ds = loader()
        s = ds.schema
        infos.append(
            DatasetInfo(
                name=name,
                rows=len(ds),
                columns=len(s.columns),
                label=s.label,
                sensitive=s.sensitive,
                domain=s.domain,
                source=ds.source,
                licence=ds.licence,
            )
        )
    return infos
