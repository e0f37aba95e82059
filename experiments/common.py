"""Helpers shared by the experiment scripts."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

import numpy as np


def jsonable(x):
    """`x` with numpy scalars as Python numbers, non-finite floats as None, keys as str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def preset_parser(prog: str, doc: str, presets: dict, out: str) -> argparse.ArgumentParser:
    """Command line of an experiment over data sets x seeds: --preset, --datasets, --seeds,
    --out and --report-only (rebuild the tables from the JSON records in --out)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(presets), default="quick")
    parser.add_argument("--datasets", help="comma-separated subset of the preset's data sets")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--out", default=out)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the tables (and plot) from the JSON records in --out",
    )
    return parser


def preset_config(parser: argparse.ArgumentParser, args, presets: dict, known) -> Any:
    """The preset's config with --datasets / --seeds applied; a usage error for data sets
    not in `known`."""
    cfg = presets[args.preset]
    if args.datasets:
        cfg = dataclasses.replace(cfg, datasets=tuple(args.datasets.split(",")))
    if args.seeds:
        cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in args.seeds.split(",")))
    unknown = [d for d in cfg.datasets if d not in known]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; choose from {list(known)}")
    return cfg


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)
