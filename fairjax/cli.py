"""The `fairjax` command line.

Every sub-command validates its input and reports problems in one line on stderr with exit
code 2 (no traceback unless `--debug`, which may stand anywhere on the line); warnings are
one line each too. `--json` switches printed tables to JSON. Nothing is overwritten without
`--overwrite`, and every output is written to a temporary name and renamed into place
(`fairjax.outputs`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from fairjax import __version__
from fairjax.errors import FairjaxError, FairjaxWarning
from fairjax.generators import METHODS

MAX_SEED = 2**32 - 1
SAMPLE_CHUNK = 4096  # rows generated and written per step of `fairjax sample`


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def load_data(
    spec: str, *, label=None, sensitive=None, domain=None, categorical=None, positive=None
):
    """A bundled data set by name, or a CSV file (then `label` and `sensitive` are required).

    For a bundled set, `label` / `sensitive` / `domain`, when given, override its schema;
    `categorical` and `positive` apply to a CSV file only.
    """
    from fairjax import datasets

    names = [info.name for info in datasets.available()]
    if spec.lower() in names:
        if categorical or positive is not None:
            raise FairjaxError(
                f"--categorical and --positive apply to a CSV file, not the bundled set {spec!r}"
            )
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
        spec,
        label=label,
        sensitive=_split(sensitive),
        domain=domain,
        categorical=_split(categorical) or None,
        positive=positive,
    )


def _load_args(args):
    """`load_data` with the data options shared by fit and evaluate."""
    return _with_setting(
        load_data(
            args.data if hasattr(args, "data") else args.real,
            label=args.label,
            sensitive=args.sensitive,
            domain=args.domain,
            categorical=args.categorical,
            positive=args.positive,
        ),
        args.setting,
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

    real = _load_args(args)
    synthetic = _read_csv(args.synthetic, "--synthetic", categorical=real.schema.categorical)
    if args.setting:
        from fairjax.intersectional import settings

        synthetic = settings.binarise_frame(synthetic, settings.resolve_axes(real))
    # Match the real table's dtypes (a CSV round trip may turn int categories into str).
    for col in real.frame.columns.intersection(synthetic.columns):
        if pd.api.types.is_integer_dtype(real.frame[col]) and synthetic[col].dtype.kind == "f":
            synthetic[col] = synthetic[col].round()
    synthetic = _match_real(synthetic, real)
    report = evaluate_synthetic(
        jax.random.key(args.seed),
        real,
        synthetic,
        classifier=args.classifier,
        with_quality=not args.no_quality,
    )
    print(json.dumps(_jsonable(report), indent=2) if args.json else format_report(report))


def _match_real(synthetic, real):
    """`synthetic` with a label written as the real label's names mapped to 0/1; an error
    listing the values of a categorical column that the real data never has (e.g. "Male"
    where the real data say "male")."""
    label = real.schema.label
    names = [str(v) for v in real.schema.label_names]
    if label in synthetic.columns:
        text = synthetic[label].astype(str)
        if set(text) <= set(names) and not set(text) <= {"0", "1"}:
            synthetic = synthetic.assign(**{label: (text == names[1]).astype("int64")})
    for col in real.schema.categorical:
        if col == label or col not in synthetic.columns:
            continue
        known = {_category_key(v) for v in real.frame[col].unique()}
        unknown = sorted({str(v) for v in synthetic[col].unique() if _category_key(v) not in known})
        if unknown:
            real_values = sorted(str(v) for v in real.frame[col].unique())
            raise FairjaxError(
                f"--synthetic column {col!r} has value(s) the real data never have: "
                f"{unknown[:10]}; the real values are {real_values[:20]}"
            )
    return synthetic


def _category_key(value):
    """Numbers (and number-like text) compare as numbers (1 == 1.0 == "1"), the rest as text."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


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
        categorical=args.categorical,
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

    from fairjax import generators, outputs, persist

    method = generators.get(args.method)
    if args.preset not in method.PRESETS:
        raise FairjaxError(f"--preset {args.preset!r}: {args.method} has {list(method.PRESETS)}")
    config = _override(method.PRESETS[args.preset], _split_assignments(args.set))
    outputs.check_target(
        args.out, overwrite=args.overwrite, kind="folder", replaceable=persist.replaceable
    )
    files = _train_files(args, method)
    data = _load_args(args)
    model = method.fit(
        jax.random.key(args.seed), data, config=config, progress=not args.quiet, **files
    )
    model.save(
        args.out,
        overwrite=args.overwrite,
        provenance=persist.provenance(seed=args.seed, data=data),
    )
    print(
        f"fitted {args.method} ({args.preset}) on {data.name} ({len(data)} rows); "
        f"saved to {args.out}"
    )


def _train_files(args, method) -> dict:
    """`fit`'s train_files keyword from --checkpoint-dir/--checkpoint-every/--resume/--log-dir
    ({} without them); FairjaxError for a method whose fit cannot take them."""
    import inspect

    from fairjax import training

    given = [f"--{n.replace('_', '-')}" for n in TRAIN_FILE_ARGS if getattr(args, n)]
    if not given:
        return {}
    if "train_files" not in inspect.signature(method.fit).parameters:
        raise FairjaxError(
            f"--method {args.method} cannot checkpoint, resume or log its training "
            f"({', '.join(given)}); these work for methods trained by fairjax.training.run: "
            "fadm, vae, gan, ddpm, fairgan"
        )
    if (args.resume or args.checkpoint_every) and not args.checkpoint_dir:
        raise FairjaxError("--resume and --checkpoint-every need --checkpoint-dir DIR")
    values = {n: getattr(args, n) for n in TRAIN_FILE_ARGS}
    return {"train_files": training.TrainFiles(**values, overwrite=args.overwrite)}


TRAIN_FILE_ARGS = ("checkpoint_dir", "checkpoint_every", "resume", "log_dir")


def cmd_sample(args) -> None:
    from fairjax import generators, outputs

    outputs.check_target(args.out, overwrite=args.overwrite)
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
    rows = write_samples(
        model, args.seed, args.n, args.out, overwrite=args.overwrite, progress=not args.quiet,
        **options,
    )  # fmt: skip
    print(f"wrote {rows} rows to {args.out}")


def write_samples(model, seed: int, n: int, path, *, overwrite=False, progress=True, **options):
    """Stream `n` rows of `model` to CSV file `path` in chunks of `SAMPLE_CHUNK` rows.

    Chunk i is drawn with key `fold_in(key(seed), i)` (its labels too), written and
    dropped, so memory does not grow with `n`; the file is written under a temporary
    name and renamed when complete (`fairjax.outputs.atomic_file`). Returns the rows written.
    """
    import jax
    from tqdm.auto import tqdm

    from fairjax import outputs

    key = jax.random.key(seed)
    written = 0
    with outputs.atomic_file(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        with tqdm(total=n, desc="sampling", unit="rows", disable=not progress) as bar:
            for i, start in enumerate(range(0, n, SAMPLE_CHUNK)):
                size = min(SAMPLE_CHUNK, n - start)
                frame = model.sample(jax.random.fold_in(key, i), size, **options)
                frame.to_csv(f, index=False, header=i == 0)
                written += len(frame)
                bar.update(len(frame))
    return written


def cmd_audit(args) -> None:
    import jax

    from fairjax import causal

    frame = _audit_frame(args.data, args.categorical)
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


def _audit_frame(spec: str, categorical: str = ""):
    from fairjax import datasets

    names = [info.name for info in datasets.available()]
    if spec.lower() in names:
        return datasets.load(spec).frame
    return _read_csv(spec, "--data", categorical=_split(categorical))


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
    try:
        config = dataclasses.replace(config, **values)
    except FairjaxError as e:
        raise FairjaxError(f"--set: {e}") from None
    from fairjax import persist

    persist.check_config_values(config, where="--set")
    return config


def _config_help(method: str) -> str | None:
    """Every `--set` field of `method` with its quick and paper defaults (None for an
    unknown method: the command then reports it)."""
    from fairjax import generators

    try:
        module = generators.get(method)
    except FairjaxError:
        return None
    quick, paper = module.PRESETS["quick"], module.PRESETS["paper"]
    lines = [f"--set fields of {method} (default with --preset quick; paper's if different):"]
    for f in dataclasses.fields(quick):
        a, b = getattr(quick, f.name), getattr(paper, f.name)
        lines.append(f"  {f.name} = {a!r}" + (f"  (paper: {b!r})" if a != b else ""))
    return "\n".join(lines)


def _with_setting(data, setting: str | None):
    """`data` with an intersectional setting applied (binarised sensitive axes), if asked."""
    if not setting:
        return data
    from fairjax.intersectional import settings

    return settings.apply_setting(data, setting)


def _read_csv(path: str, arg: str, *, categorical: Sequence[str] = ()):
    """A CSV file named by option `arg`, with the checks of `fit --data`'s files."""
    from fairjax import datasets

    try:
        return datasets.read_table(path, categorical=categorical)
    except FairjaxError as e:
        raise FairjaxError(f"{arg}: {e}") from None


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


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line (exit 2), like fairjax's own errors."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(fit_method: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `fit_method`, `fit --help` lists that method's `--set` fields."""
    parser = _Parser(
        prog="fairjax", description="Fair synthetic tabular data in JAX, and its evaluation."
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors (anywhere on the line)"
    )
    parser.add_argument("--version", action="version", version=f"fairjax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    _add_table_options(
        p,
        label_help="label column (required for a CSV --real)",
        domain_help="domain column (excluded from the classifier's inputs)",
    )
    p.add_argument("--classifier", choices=["mlp", "logistic", "hgb"], default="mlp")
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
    p.add_argument("--model", choices=["auto", "logistic", "mlp", "hgb"], default="auto")
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

    p = sub.add_parser(
        "fit",
        help="fit a generator and save it to a folder",
        epilog=_config_help(fit_method)
        if fit_method
        else "fairjax fit --method M --help lists M's --set fields and their defaults",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--method", default="fadm", help="generator: " + ", ".join(METHODS))
    p.add_argument("--data", required=True, help="bundled data set name or CSV file")
    _add_table_options(
        p,
        label_help="label column (required for a CSV)",
        domain_help="domain column (meta-learning across its values)",
    )
    p.add_argument("--preset", choices=["quick", "paper"], default="quick")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a config field, e.g. --set score_steps=500 --set meta=off "
        "(fields: see the end of this help)",
    )
    p.add_argument("--seed", type=int, default=0, help=f"0 .. {MAX_SEED}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="folder to save the model to (must not exist)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model folder (without --resume: checkpoints, logs too)",
    )
    p.add_argument("--checkpoint-dir", help="save training checkpoints here (per network)")
    p.add_argument(
        "--checkpoint-every", type=_positive_int, help="steps between checkpoints (default 1000)"
    )
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    p.add_argument("--log-dir", help="write each network's training record as DIR/NAME.csv")
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
    p.add_argument("--out", required=True, help="CSV file to write (must not exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(run=cmd_sample)
    return parser


def _add_table_options(p: argparse.ArgumentParser, *, label_help: str, domain_help: str) -> None:
    """The column roles (--label, --sensitive, --domain, --setting) and CSV options of a
    command that reads a table."""
    p.add_argument("--label", help=label_help)
    p.add_argument("--sensitive", help="sensitive column(s), comma separated")
    p.add_argument("--domain", help=domain_help)
    p.add_argument(
        "--setting",
        choices=["adult", "compas"],
        help="intersectional setting: binarise sex x race x age into 8 groups (arXiv 2405.14521)",
    )
    p.add_argument(
        "--positive", help="label value that means the favourable outcome (a CSV whose label "
        "is not 0/1)",
    )  # fmt: skip
    p.add_argument("--categorical", help="extra categorical columns of a CSV, comma separated")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fairjax` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser(_help_method(argv)).parse_args(argv)
    with warnings.catch_warnings():
        show = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, FairjaxWarning):
                print(f"fairjax {args.command}: warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        try:
            _check_seed(getattr(args, "seed", None))
            args.run(args)
        except FairjaxError as err:
            if debug:
                raise
            print(f"fairjax {args.command}: error: {err}", file=sys.stderr)
            return 2
    return 0


def _help_method(argv: list[str]) -> str | None:
    """The method of a `fit ... --help` line (fadm by default), else None."""
    if "fit" not in argv or not {"-h", "--help"} & set(argv):
        return None
    for i, a in enumerate(argv):
        if a == "--method" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--method="):
            return a.partition("=")[2]
    return "fadm"


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise FairjaxError(f"--seed {seed} is out of range; use an integer in [0, {MAX_SEED}]")


if __name__ == "__main__":
    sys.exit(main())
