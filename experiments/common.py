"""Helpers shared by the experiment scripts: the command line, and their outputs.

Outputs: an experiment writes to `runs/<name>/<preset>/` unless `--out` says otherwise
(`runs/` is git-ignored, so the committed `results/` change only when `--out` names them).
Every record carries a "run" stamp (experiment, preset, seed, configuration); a record is
reused only when its stamp equals this run's (`same_stamp`), and one that differs is refused
unless `--overwrite` (then it is recomputed). Tables and plots are rebuilt from the records and
written atomically; an existing one that would change needs `--overwrite` (one that comes
out byte-identical is left alone, so `--report-only --out results/X` rebuilds committed
tables without touching them).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fairjax import outputs
from fairjax.errors import FairjaxError


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


def preset_parser(prog: str, doc: str, presets: dict, name: str) -> argparse.ArgumentParser:
    """Command line of an experiment over data sets x seeds: --preset, --datasets, --seeds,
    --out (default runs/`name`/PRESET), --overwrite and --report-only (rebuild the tables
    from the JSON records in --out)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(presets), default="quick")
    parser.add_argument("--datasets", help="comma-separated subset of the preset's data sets")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    add_output_options(parser, name)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the tables (and plot) from the JSON records in --out",
    )
    return parser


def add_output_options(parser: argparse.ArgumentParser, name: str) -> None:
    """--out (default runs/`name`/PRESET) and --overwrite."""
    parser.add_argument(
        "--out", help=f"output folder (default runs/{name}/PRESET; records are cached there)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute records made by another preset/configuration and replace tables "
        "that would change",
    )


def out_folder(args, name: str) -> Path:
    """The output folder (--out or runs/`name`/PRESET), checked to be a writable folder."""
    out = Path(args.out or f"runs/{name}/{args.preset}")
    if out.exists():
        if not out.is_dir():
            raise FairjaxError(f"--out {out} is a file, not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise FairjaxError(f"--out {out}: cannot write there (permission denied)")
    else:
        outputs.check_target(out, kind="folder")
    return out


def run_stamp(experiment: str, preset: str, seed: int, config: Any, drop=("datasets", "seeds")):
    """What a record depends on: the experiment, preset, seed and the configuration (the
    config dataclass without the fields that only choose which records to make)."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in drop}
    stamp = {"experiment": experiment, "preset": preset, "seed": seed, "config": values}
    return json.loads(json.dumps(jsonable(stamp)))


# Fields that the generator configs gained after records were made, each with the test on
# today's config under which a config recorded without them trained exactly as today's:
# - the early-stopping fields (ba80afa): holdout = 0 keeps every row, draws no key and never
#   evaluates, whatever eval_every and patience say;
# - FADM's label_guidance: "classifier" is the label guidance FADM had before it.
_ADDED_FIELDS = (
    (("holdout", "eval_every", "patience"), lambda config: config.get("holdout") == 0),
    (("label_guidance",), lambda config: config.get("label_guidance") == "classifier"),
)


def same_stamp(recorded: Any, stamp: Any) -> bool:
    """Whether a record's "run" stamp `recorded` names the run `stamp`: they are equal, up to
    configs (dicts, at any depth) recorded without a group of `_ADDED_FIELDS` where `stamp`'s
    passes that group's test. Other missing or extra fields never match."""
    if isinstance(recorded, dict) and isinstance(stamp, dict):
        for fields, trains_as_before in _ADDED_FIELDS:
            if trains_as_before(stamp) and not any(k in recorded for k in fields):
                recorded = {**recorded, **{k: stamp[k] for k in fields if k in stamp}}
        return recorded.keys() == stamp.keys() and all(
            same_stamp(recorded[k], stamp[k]) for k in stamp
        )
    if isinstance(recorded, list) and isinstance(stamp, list):
        return len(recorded) == len(stamp) and all(map(same_stamp, recorded, stamp))
    return recorded == stamp


def cached_record(path: Path, stamp: dict, *, overwrite: bool) -> dict | None:
    """The record at `path` if its "run" stamp matches `stamp` (`same_stamp`); None if there
    is none (or, with `overwrite`, if it differs: it will be recomputed); else FairjaxError."""
    if not path.exists():
        return None
    record = read_record(path)
    if same_stamp(record.get("run"), stamp):
        return record
    if overwrite:
        return None
    made = record.get("run")
    what = (
        f"preset {made.get('preset')!r}, seed {made.get('seed')}, another configuration"
        if isinstance(made, dict)
        else "an unrecorded preset and configuration"
    )
    raise FairjaxError(
        f"{path} was made by {what}, not by preset {stamp['preset']!r}, seed {stamp['seed']} "
        "with this configuration; pass --overwrite to recompute it, or another --out"
    )


def read_record(path: Path) -> dict:
    """A JSON record (FairjaxError if it is missing or not JSON)."""
    if not path.is_file():
        raise FairjaxError(f"no record {path}; run the experiment without --report-only first")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FairjaxError(f"{path} is not a JSON record ({e})") from None


def report_record(path: Path, preset: str) -> dict:
    """A record for --report-only: any record, but not one stamped with another preset
    (the tables would carry this preset's name)."""
    record = read_record(path)
    made = record.get("run")
    if isinstance(made, dict) and made.get("preset") != preset:
        raise FairjaxError(
            f"{path} was made by preset {made.get('preset')!r}; pass --preset "
            f"{made.get('preset')} to tabulate it"
        )
    return record


def write_record(path: Path, record: dict, stamp: dict, *, clean: bool = True) -> dict:
    """Write `record` with its "run" stamp to `path` atomically; returns the stamped record.

    `clean`: pass the record through `jsonable` (non-finite floats become null); False
    writes NaN as JSON's NaN extension, which reads back as NaN.
    """
    record = {**record, "run": stamp}
    text = json.dumps(jsonable(record) if clean else record, indent=1)
    outputs.write_text(path, text, overwrite=True)
    return record


def check_tables(out: Path, names, *, overwrite: bool, owned: bool, will_compute: bool) -> bool:
    """Before any work: may tables `names` in `out` be replaced? Yes with `overwrite` or
    when `owned` (some of this run's records are already there with this run's stamp, so
    the tables are this run's own). Otherwise existing tables are refused at once if new
    records would change them, and at the end kept only if they come out identical.

    Returns:
      the `overwrite` to pass to `table_file` / `write_table`.
    """
    if overwrite or owned:
        return True
    existing = [n for n in names if (out / n).exists()]
    if existing and will_compute:
        raise FairjaxError(
            f"--out {out} already holds {existing} from another run, which new records would "
            "change; pass --overwrite to replace them, or another --out"
        )
    return False


@contextlib.contextmanager
def table_file(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """A temporary path to write a table or plot to; it replaces `path` atomically, is
    dropped if identical to `path`, and needs `overwrite` to change an existing `path`."""
    with outputs.atomic_file(path, overwrite=overwrite, keep_if_unchanged=True) as tmp:
        yield tmp


def write_table(path: Path, text: str, *, overwrite: bool) -> None:
    """`table_file` for text."""
    with table_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def run_records(args, cfg: Any, out: Path, name: str, tables, run_one: Callable) -> tuple:
    """The records of an experiment over `cfg.datasets` x `cfg.seeds`, one JSON file each
    (`{dataset}_seed{seed}.json` in `out`), and whether its `tables` may be replaced.

    With `args.report_only` every record must exist (`report_record`); otherwise a record
    whose stamp matches is reused and the others are computed by `run_one(dataset, seed,
    cfg) -> record` and written with their stamp. Existing tables are checked before any
    work (`check_tables`).

    Returns:
      (records in dataset-then-seed order, the `overwrite` for the table writers).
    """
    jobs = [
        (data, seed, out / f"{data}_seed{seed}.json") for data in cfg.datasets for seed in cfg.seeds
    ]
    stamps = {path: run_stamp(name, args.preset, seed, cfg) for _, seed, path in jobs}
    if args.report_only:
        paths = [path for *_, path in jobs]
        records = [report_record(p, args.preset) for p in paths]
        owned = all(
            same_stamp(r.get("run"), stamps[p]) for p, r in zip(paths, records, strict=True)
        )
        replace = check_tables(
            out, tables, overwrite=args.overwrite, owned=owned, will_compute=False
        )
        return records, replace
    cached = {p: cached_record(p, stamps[p], overwrite=args.overwrite) for *_, p in jobs}
    replace = check_tables(
        out,
        tables,
        overwrite=args.overwrite,
        owned=any(r is not None for r in cached.values()),
        will_compute=any(r is None for r in cached.values()),
    )
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for data, seed, path in jobs:
        if cached[path] is not None:
            records.append(cached[path])
            continue
        log(f"[{args.preset}] {data} seed {seed}")
        records.append(write_record(path, run_one(data, seed, cfg), stamps[path]))
    return records, replace


def entry_point(main: Callable[[list[str] | None], Any]) -> None:
    """Run `main` as a script: a FairjaxError is one line on stderr and exit code 2."""
    try:
        main(None)
    except FairjaxError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0)


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
