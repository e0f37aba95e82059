"""Bundled fairness benchmark data sets and a loader for the user's own CSV files.

    from fairjax.datasets import load, load_csv
    adult = load("adult")                       # TabularDataset, 45,222 rows
    mine = load_csv("loans.csv", label="repaid", sensitive="gender", positive="yes")

The bundled files live in `fairjax/datasets/files/` with their provenance and licences in
`files/SOURCES.md`; nothing is downloaded.
"""

from fairjax.datasets.bundled import (
    DatasetInfo,
    available,
    load,
    load_adult,
    load_compas,
    load_german,
    load_nhefs,
)
from fairjax.datasets.user_csv import load_csv, read_table

__all__ = [
    "DatasetInfo",
    "available",
    "load",
    "load_adult",
    "load_compas",
    "load_csv",
    "load_german",
    "load_nhefs",
    "read_table",
]
