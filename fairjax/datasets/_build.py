"""Build the gzipped copies in `fairjax/datasets/files/` from the raw data folder.

Usage::

    python -m fairjax.datasets._build RAW_DIR [--out OUT_DIR]

RAW_DIR holds `adult/`, `compas/`, `german/` and `nhefs/` as described in
`files/SOURCES.md`. The build only selects columns and compresses: Adult and German are
copied byte for byte, COMPAS and NHEFS keep the raw text of the columns the loaders use
(COMPAS loses names, ids and dates of birth). All cleaning happens in the loaders, so it
is covered by tests. The gzip streams carry mtime 0 and no file name, so rebuilding from
the same raw files gives identical bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

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
    # used only by the ProPublica row filter in the loader
    "days_b_screening_arrest",
    "is_recid",
    "score_text",
)

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


class Output(NamedTuple):
    """One packaged file: where its raw text comes from and which columns it keeps.

    Attributes:
      raw: path relative to RAW_DIR.
      columns: header names of the raw CSV to keep, or None to copy the file unchanged.
    """

    raw: str
    columns: tuple[str, ...] | None


OUTPUTS: dict[str, Output] = {
    "adult_train.csv.gz": Output("adult/adult.data", None),
    "adult_test.csv.gz": Output("adult/adult.test", None),
    "compas.csv.gz": Output("compas/compas-scores-two-years.csv", COMPAS_COLUMNS),
    "german.csv.gz": Output("german/german.data", None),
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
        data = path.read_bytes() if columns is None else select_columns(path, columns)
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
