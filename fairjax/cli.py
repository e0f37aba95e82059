"""The `fairjax` command line.

Every sub-command validates its input and reports problems in one line on stderr with exit
code 2 (no traceback unless `--debug`). `--json` switches printed tables to JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from fairjax import __version__
from fairjax.errors import FairjaxError
from fairjax.generators import METHODS


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def load_data(spec: str, *, label=None, sensitive=None, domain=None, categorical=None):
    """A bundled data set by name, or a CSV file (then `label` and `sensitive` are required).

    For a bundled set, `label` / `sensitive` / `domain`, when given, override its schema.
    """
    from fairjax import datasets

    names = [info.name for info in datasets.available()]
    if spec.lower() in names:
        ds = datasets.load(spec)
        schema = dataclasses.replace(
            ds.schema,
            label=label or ds.schema.label,
            sensitive=tuple(_split(sensitive)) or ds.schema.sensitive,
            domain=domain or ds.schema.domain,
        )
        return dataclasses.replace(ds, schema=schema)
    if not Path(spec).exists():
        raise FairjaxError(
            f"--data/--real {spec!r} is neither a bundled data set {names} nor a file"
        )
    if not label or not sensitive:
        raise FairjaxError(f"a CSV file ({spec}) needs --label and --sensitive")
    return datasets.load_csv(
        spec, label=label, sensitive=_split(sensitive), domain=domain, categorical=categorical
    )


def cmd_datasets(args) -> None:
    from fairjax import datasets

    infos = datasets.available()
    if args.json:
        print(json.dumps([info._asdict() for info in infos], indent=2))
        return
    header = ("name", "rows", "columns", "label", "sensitive", "domain", "licence")
    rows = [
        (i.name, i.rows, i.columns, i.label, ",".join(i.sensitive), i.domain or "-", i.licence)
        for i in infos
    ]
    _print_table(header, rows)


def cmd_evaluate(args) -> None:
    import jax
    import pandas as pd

    from fairjax.evaluation import evaluate_synthetic, format_report

    real = _with_setting(
        load_data(args.real, label=args.label, sensitive=args.sensitive, domain=args.domain),
        args.setting,
    )
    synthetic = _read_csv(args.synthetic, "--synthetic")
    if args.setting:
        from fairjax.intersectional import settings

        synthetic = settings.binarise_frame(synthetic, settings.resolve_axes(real))
    # Match the real table's dtypes (a CSV round trip may turn int categories into str).
    for col in real.frame.columns.intersection(synthetic.columns):
        if pd.api.types.is_integer_dtype(real.frame[col]) and synthetic[col].dtype.kind == "f":
            synthetic[col] = synthetic[col].round()
    report = evaluate_synthetic(
        jax.random.key(args.seed),
        real,
        synthetic,
        classifier=args.classifier,
        with_quality=not args.no_quality,
    )
    print(json.dumps(_jsonable(report), indent=2) if args.json else format_report(report))


# --- fairjax report (self-contained block) ------------------------------------------------


def cmd_report(args) -> None:
    import jax

    from fairjax import report

    report.check_out(args.out, overwrite=args.overwrite)  # before the work, not after
    real = load_data(
        args.real,
        label=args.label,
        sensitive=args.sensitive,
        domain=args.domain,
        categorical=_split(args.categorical),
    )
    synthetic = _read_csv(args.synthetic, "--synthetic")
    holdout = _read_csv(args.holdout, "--holdout") if args.holdout else None
    options = {"hgb": {"n_threads": args.threads}} if args.threads else None
    result = report.build(
        jax.random.key(args.seed),
        real,
        synthetic,
        holdout=holdout,
        classifier_names=_split(args.classifiers),
        classifier_options=options,
        n_bootstrap=args.bootstrap,
    )
    out = report.write(result, args.out, overwrite=args.overwrite)
    for note in result["warnings"]:
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote {out}/report.md, report.html, report.json")


def _add_report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="one report of a synthetic table: utility, fairness, leakage, fidelity, privacy",
    )
    p.add_argument("--real", required=True, help="bundled data set name or CSV file")
    p.add_argument("--synthetic", required=True, help="CSV file of synthetic rows (any order)")
    p.add_argument(
        "--holdout", help="CSV of real rows the generator never saw (default: split REAL)"
    )
    p.add_argument("--label", help="label column (required for a CSV --real)")
    p.add_argument("--sensitive", help="sensitive column(s), comma separated")
    p.add_argument("--domain", help="domain column (excluded from the classifiers' inputs)")
    p.add_argument("--categorical", default="", help="integer columns to treat as categorical")
    p.add_argument("--classifiers", default="logistic,mlp,hgb", help="comma separated")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (0: none)")
    p.add_argument("--threads", type=_positive_int, help="OpenMP threads for hgb")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder for report.md / .html / .json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(run=cmd_report)


# --- end of fairjax report block -----------------------------------------------------------


def cmd_fit(args) -> None:
    import jax

    from fairjax import generators

    method = generators.get(args.method)
    if args.preset not in method.PRESETS:
        raise FairjaxError(f"--preset {args.preset!r}: {args.method} has {list(method.PRESETS)}")
    data = _with_setting(
        load_data(args.data, label=args.label, sensitive=args.sensitive, domain=args.domain),
        args.setting,
    )
    config = _override(method.PRESETS[args.preset], _split_assignments(args.set))
    model = method.fit(jax.random.key(args.seed), data, config=config, progress=not args.quiet)
    model.save(args.out)
    print(
        f"fitted {args.method} ({args.preset}) on {data.name} ({len(data)} rows); "
        f"saved to {args.out}"
    )


def cmd_sample(args) -> None:
    import jax

    from fairjax import generators

    model = generators.load(args.model)
    options = {
        k: v
        for k, v in (
            ("label_proportion", args.label_proportion),
            ("lambda_y", args.lambda_y),
            ("lambda_z", args.lambda_z),
            ("guide", args.guide),
            ("guide_t_max", args.guide_t_max),
            ("sampler", args.sampler),
            ("steps", args.steps),
        )
        if v is not None
    }
    accepted = inspect.signature(model.sample).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise FairjaxError(f"{flags} do(es) not apply to a {type(model).__name__}")
    frame = model.sample(
        jax.random.key(args.seed),
        args.n,
        progress=not args.quiet,
        **options,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame)} rows to {args.out}")


def cmd_audit(args) -> None:
    import jax

    from fairjax import causal

    frame = _audit_frame(args.data)
    for arg, col in (("--X", args.X), ("--Y", args.Y)):
        if col not in frame.columns:
            raise FairjaxError(f"{arg} {col!r} not found; columns are {list(frame.columns)}")
    x0, x1 = _protected_levels(frame[args.X], args.x0, args.x1)
    frame = frame[frame[args.X].isin([x0, x1])].reset_index(drop=True)
    table = causal.decompose(
        frame,
        X=args.X,
        Z=_split(args.Z),
        W=_split(args.W),
        Y=args.Y,
        x0=x0,
        x1=x1,
        key=jax.random.key(args.seed),
        n_folds=args.folds,
        model=args.model,
        categorical=_split(args.categorical),
    )
    if args.json:
        print(json.dumps(_jsonable(causal.decomposition_to_dict(table)), indent=2, default=str))
    else:
        print(causal.format_decomposition(table))


def _audit_frame(spec: str):
    from fairjax import datasets

    names = [info.name for info in datasets.available()]
    if spec.lower() in names:
        return datasets.load(spec).frame
    return _read_csv(spec, "--data")


def _protected_levels(column, x0: str | None, x1: str | None):
    """The two levels of X: given on the command line (matched as text) or, when X has
    exactly two values, those values in sorted order."""
    values = sorted(column.unique().tolist(), key=str)
    by_text = {str(v): v for v in values}
    if x0 is None and x1 is None:
        if len(values) != 2:
            raise FairjaxError(
                f"--X {column.name!r} has {len(values)} values {values[:10]}; "
                "choose two with --x0 and --x1"
            )
        return values[0], values[1]
    if x0 is None or x1 is None:
        raise FairjaxError("give both --x0 and --x1, or neither")
    for arg, text in (("--x0", x0), ("--x1", x1)):
        if text not in by_text:
            raise FairjaxError(f"{arg} {text!r} is not a value of {column.name!r}: {values[:10]}")
    return by_text[x0], by_text[x1]


EXPERIMENTS = {
    "fadm-adult": "experiments.fadm_adult",
    "intersectional": "experiments.intersectional",
    "faircausesyn": "experiments.faircausesyn",
}


def cmd_experiment(args) -> None:
    import importlib

    importlib.import_module(EXPERIMENTS[args.name]).main(args.options)


def _split_assignments(items: Sequence[str] | None) -> dict:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FairjaxError(f"--set expects NAME=VALUE; got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _override(config, overrides: dict):
    """`config` with fields replaced from strings, each parsed as the field's type."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    values = {}
    for name, text in overrides.items():
        if name not in fields:
            raise FairjaxError(
                f"--set {name}: unknown option of {type(config).__name__}; "
                f"options are {sorted(fields)}"
            )
        current = getattr(config, name)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                values[name] = text.lower() in ("true", "1")
            else:
                values[name] = type(current)(text)
        except ValueError:
            raise FairjaxError(
                f"--set {name}={text}: expected a {type(current).__name__}"
            ) from None
    return dataclasses.replace(config, **values)


def _with_setting(data, setting: str | None):
    """`data` with an intersectional setting applied (binarised sensitive axes), if asked."""
    if not setting:
        return data
    from fairjax.intersectional import settings

    return settings.apply_setting(data, setting)


def _read_csv(path: str, arg: str):
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise FairjaxError(f"{arg}: file {path!r} not found")
    if p.stat().st_size == 0:
        raise FairjaxError(f"{arg}: file {path!r} is empty")
    frame = pd.read_csv(p, skipinitialspace=True)
    if len(frame) == 0:
        raise FairjaxError(f"{arg}: file {path!r} has a header but no rows")
    return frame


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _print_table(header: Sequence[str], rows: Sequence[Sequence]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairjax", description="Fair synthetic tabular data in JAX, and its evaluation."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"fairjax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the bundled data sets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_datasets)

    p = sub.add_parser(
        "evaluate",
        help="train a classifier on synthetic rows, test on real rows; print utility, "
        "fairness and quality",
    )
    p.add_argument("--real", required=True, help="bundled data set name or CSV file")
    p.add_argument("--synthetic", required=True, help="CSV file of synthetic rows")
    p.add_argument("--label", help="label column (required for a CSV --real)")
    p.add_argument("--sensitive", help="sensitive column(s), comma separated")
    p.add_argument("--domain", help="domain column (excluded from the classifier's inputs)")
    p.add_argument(
        "--setting",
        choices=["adult", "compas"],
        help="intersectional setting: binarise sex x race x age into 8 groups (arXiv 2405.14521)",
    )
    p.add_argument(
        "--classifier",
        choices=["mlp", "logistic", "hgb"],  # hgb: scikit-learn HistGradientBoostingClassifier
        default="mlp",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-quality", action="store_true", help="skip MMD / C2ST / DCR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)
    p = sub.add_parser(
        "audit", help="causal fairness decomposition tv = ctfde - ctfie - ctfse of a table"
    )
    p.add_argument("--data", required=True, help="bundled data set name or CSV file")
    p.add_argument("--X", required=True, help="protected attribute column")
    p.add_argument("--Z", default="", help="confounder columns, comma separated")
    p.add_argument("--W", default="", help="mediator columns, comma separated")
    p.add_argument("--Y", required=True, help="outcome column")
    p.add_argument("--x0", help="baseline level of X (default: first of its two values)")
    p.add_argument("--x1", help="comparison level of X; rows with other levels are dropped")
    p.add_argument("--categorical", default="", help="integer Z/W columns to one-hot")
    p.add_argument("--model", choices=["logistic", "mlp"], default="logistic")
    p.add_argument("--folds", type=_positive_int, default=5, help="cross-fitting folds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_audit)

    p = sub.add_parser(
        "experiment",
        help="run a reproducible experiment (options after the name go to it; try -h)",
    )
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("options", nargs=argparse.REMAINDER)
    p.set_defaults(run=cmd_experiment)

    _add_report_parser(sub)

    p = sub.add_parser("fit", help="fit a generator and save it to a folder")
    p.add_argument("--method", default="fadm", help="generator: " + ", ".join(METHODS))
    p.add_argument("--data", required=True, help="bundled data set name or CSV file")
    p.add_argument("--label", help="label column (required for a CSV)")
    p.add_argument("--sensitive", help="sensitive column(s), comma separated")
    p.add_argument("--domain", help="domain column (meta-learning across its values)")
    p.add_argument(
        "--setting",
        choices=["adult", "compas"],
        help="intersectional setting: binarise sex x race x age into 8 groups (arXiv 2405.14521)",
    )
    p.add_argument("--preset", choices=["quick", "paper"], default="quick")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a config field, e.g. --set score_steps=500 --set meta=off",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="folder to save the model to")
    p.set_defaults(run=cmd_fit)

    p = sub.add_parser("sample", help="generate rows from a saved model")
    p.add_argument("--model", required=True, help="folder written by 'fairjax fit'")
    p.add_argument("-n", type=_positive_int, required=True, help="number of rows")
    p.add_argument(
        "--label-proportion",
        type=float,
        help="share of label 1 (default: FADM the training share; joint baselines: as generated)",
    )
    p.add_argument("--lambda-y", type=float, help="label guidance scale")
    p.add_argument("--lambda-z", type=float, help="sensitive guidance scale")
    p.add_argument(
        "--guide",
        choices=["entropy", "uniform"],
        help="FADM sensitive guide: entropy (the paper's) or uniform (grad mean_c log p(c|x))",
    )
    p.add_argument(
        "--guide-t-max", type=float, help="FADM: the sensitive guide acts at t <= this only"
    )
    p.add_argument("--sampler", choices=["em", "pc", "ode"])
    p.add_argument("--steps", type=_positive_int, help="solver steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.set_defaults(run=cmd_sample)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fairjax` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except FairjaxError as err:
        if args.debug:
            raise
        print(f"fairjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
