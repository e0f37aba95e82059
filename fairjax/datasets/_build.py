"""Build the gzipped copies in `fairjax/datasets/files/` from the raw data folder.

Usage::

    python -m fairjax.datasets._build RAW_DIR [--out OUT_DIR]

RAW_DIR holds `adult/`, `compas/`, `german/` and `nhefs/` as described in
`files/SOURCES.md`. The build selects columns and compresses: Adult is copied byte for
byte, COMPAS and NHEFS keep the raw text of the columns the loaders use (COMPAS loses
names, ids and dates of birth). German is the one exception that changes values: its
personal_status attribute (UCI attribute 9) encodes sex and marital status in one code,
so the build replaces it by `marital_status` (single / ever married, the only split
defined the same way for both sexes) and `sex`, and the raw code does not ship. All other
cleaning happens in the loaders, so it is covered by tests. The gzip streams carry mtime 0
and no file name, so rebuilding from the same raw files gives identical bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from fairjax.datasets import bundled

# The loader's columns, and the ones it uses only for ProPublica's row filter.
COMPAS_COLUMNS = (*bundled.COMPAS_COLUMNS, "days_b_screening_arrest", "is_recid", "score_text")

NHEFS_COLUMNS = (
    "sex",
    "race",
    "age",
    "education",
    "smokeintensity",
    "smokeyrs",
    "sbp",
    "dbp",
    "wt71",
    "ht",
    "diabetes",
    "exercise",
    "active",
    "alcoholfreq",
    "asthma",
    "bronch",
    "hbp",
    "qsmk",
    "death",
)


# German attribute names (UCI german.doc order), as in the raw, headerless `german.data`:
# the shipped columns with UCI attribute 9, personal_status, in place of the marital_status
# and sex that the build makes from it.
_AT = bundled.GERMAN_COLUMNS.index("marital_status")
GERMAN_RAW_COLUMNS = (
    *bundled.GERMAN_COLUMNS[:_AT],
    "personal_status",
    *bundled.GERMAN_COLUMNS[_AT + 2 :],
)
GERMAN_SEX = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}
GERMAN_EVER_MARRIED = "ever married"  # married, widowed, divorced or separated
GERMAN_MARITAL = {
    "A91": GERMAN_EVER_MARRIED,
    "A92": GERMAN_EVER_MARRIED,
    "A93": "single",
    "A94": GERMAN_EVER_MARRIED,
    "A95": "single",
}


class Output(NamedTuple):
    """One packaged file: where its raw text comes from and which columns it keeps.

    Attributes:
      raw: path relative to RAW_DIR.
      columns: header names of the raw CSV to keep, None to copy the file unchanged, or
        "german" for `german_without_personal_status`.
    """

    raw: str
    columns: tuple[str, ...] | str | None


OUTPUTS: dict[str, Output] = {
    "adult_train.csv.gz": Output("adult/adult.data", None),
    "adult_test.csv.gz": Output("adult/adult.test", None),
    "compas.csv.gz": Output("compas/compas-scores-two-years.csv", COMPAS_COLUMNS),
    "german.csv.gz": Output("german/german.data", "german"),
    "nhefs.csv.gz": Output("nhefs/nhefs_complete.csv", NHEFS_COLUMNS),
}

DEFAULT_OUT = Path(__file__).resolve().parent / "files"


def deterministic_gzip(data: bytes) -> bytes:
    """gzip `data` at level 9 with mtime 0 and no file name in the header."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def select_columns(raw_csv: Path, columns: Sequence[str]) -> bytes:
    """The raw text of `columns` of a headed CSV, in that order, as UTF-8 CSV bytes.

    Values are read as strings with no NA parsing, so every kept cell is written back
    exactly as it was (the loaders parse and clean them). When a header name repeats, as
    `decile_score` does in the COMPAS file, the first occurrence is kept.
    """
    frame = pd.read_csv(raw_csv, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SystemExit(f"{raw_csv}: column(s) {missing} not found")
    buf = io.StringIO()
    frame[list(columns)].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def german_without_personal_status(raw_data: Path) -> bytes:
    """`german.data` as a headed CSV with personal_status replaced by marital_status and sex.

    The other 20 attributes keep their raw text (A-codes; the loader decodes them), in UCI
    order; `marital_status` and `sex` take the place of attribute 9, as words.
    """
    frame = pd.read_csv(
        raw_data, sep=" ", header=None, names=GERMAN_RAW_COLUMNS, dtype=str, keep_default_na=False
    )
    codes = frame["personal_status"]
    unknown = sorted(set(codes) - set(GERMAN_SEX))
    if unknown:
        raise SystemExit(f"{raw_data}: unknown personal_status code(s) {unknown}")
    at = GERMAN_RAW_COLUMNS.index("personal_status")
    frame.insert(at, "marital_status", codes.map(GERMAN_MARITAL))
    frame.insert(at + 1, "sex", codes.map(GERMAN_SEX))
    buf = io.StringIO()
    frame.drop(columns="personal_status").to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def build(raw_dir: Path, out_dir: Path = DEFAULT_OUT) -> dict[str, int]:
    """Write every file of `OUTPUTS` into `out_dir`; return their sizes in bytes."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    absent = [o.raw for o in OUTPUTS.values() if not (raw_dir / o.raw).is_file()]
    if absent:
        raise SystemExit(f"raw file(s) {absent} not found under {raw_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, (raw, columns) in OUTPUTS.items():
        path = raw_dir / raw
        if columns is None:
            data = path.read_bytes()
        elif columns == "german":
            data = german_without_personal_status(path)
        else:
            data = select_columns(path, columns)
        target = out_dir / name
        target.write_bytes(deterministic_gzip(data))
        sizes[name] = target.stat().st_size
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: build and print the size of each file."""
    parser = argparse.ArgumentParser(prog="python -m fairjax.datasets._build")
    parser.add_argument("raw_dir", type=Path, help="folder with adult/, compas/, german/, nhefs/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    for name, size in build(args.raw_dir, args.out).items():
        print(f"{name:20s} {size:>9,d} bytes")


if __name__ == "__main__":
    main()
