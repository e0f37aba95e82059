"""Calibration of `fairjax.causal.decompose` on structural causal models with exact effects.

    python -m experiments.causal_calibration                       # full battery -> runs/
    python -m experiments.causal_calibration --reps 4 --n-large 0  # a quick look
    python -m experiments.causal_calibration --report-only --out results/causal_calibration

Every SCM follows the standard fairness model Z -> X -> W -> Y (+ Z -> W, Z -> Y, X -> Y)
with X in {0, 1} (x0 = 0, x1 = 1). Its true x-specific measures come from its potential
outcomes, in float64 numpy and independent of the estimator: draw `TRUTH_N` units (Z, X and
the mediator noise U), compute W_{x0} = f_W(0, Z, U) and W_{x1} = f_W(1, Z, U) with the same
noise, and average the exact outcome means E[Y | x, z, w] (no outcome noise) over the X = 0
or X = 1 units. The Monte-Carlo error of a truth is about 2e-4 (and 0 for the structural
zeros, e.g. ctfde of `no_direct`), small against the standard errors checked here.

For each SCM, `--reps` independent samples of `--n` rows are decomposed with the defaults
(model="auto") and one key per replication; a measure's coverage is the fraction of
replications whose 95% interval holds the truth. `--reps-large` samples of `--n-large` rows
give the mean error and mean absolute error of each measure at a large n.

Outputs in --out (default runs/causal_calibration/): `calibration.json` (every estimate
with its interval, the nuisance chosen for each fit, the truths, timings) and `tables.md`
(the coverage and error tables).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from experiments.common import jsonable, log
from fairjax.causal import MEASURES, decompose

TRUTH_N = 4_000_000
COVERAGE_TARGET = 0.88
ERROR_TARGET = 0.01


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class SCM(NamedTuple):
    """Standard fairness model Z -> X -> W -> Y (+ Z -> W, Z -> Y, X -> Y), X in {0, 1}.

    Attributes:
      confounders: (rng, n) -> {name: [n]}.
      propensity: z -> P(X = 1 | z) [n] (or a scalar).
      mediator_noise: (rng, n) -> U (any pytree of arrays with n rows, or None).
      mediators: (x [n], z, U) -> {name: [n]}, deterministic given U.
      outcome_mean: (x, z, w) -> E[Y | x, z, w] [n].
      noise_sd: 0: Y ~ Bernoulli(mean); > 0: Y = mean + N(0, noise_sd^2).
      Z, W: the confounder and mediator columns as `decompose` gets them.
      categorical: numeric Z / W columns to one-hot.
    """

    confounders: Callable
    propensity: Callable
    mediator_noise: Callable
    mediators: Callable
    outcome_mean: Callable
    noise_sd: float = 0.0
    Z: tuple[str, ...] = ()
    W: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


def sample(scm: SCM, seed: int, n: int) -> pd.DataFrame:
    """n units of `scm`: columns Z, x, W, y and y_mean = E[Y | x, z, w]."""
    rng = np.random.default_rng(seed)
    z = scm.confounders(rng, n)
    x = (rng.random(n) < scm.propensity(z)).astype(np.int64)
    w = scm.mediators(x, z, scm.mediator_noise(rng, n))
    m = scm.outcome_mean(x, z, w)
    if scm.noise_sd > 0:
        y = m + scm.noise_sd * rng.normal(size=n)
    else:
        y = (rng.random(n) < m).astype(np.int64)
    return pd.DataFrame({**z, "x": x, **w, "y": y, "y_mean": m})


def truth(scm: SCM, seed: int = 12345, n: int = TRUTH_N) -> dict[str, float]:
    """Exact (up to Monte-Carlo error) x-specific measures of `scm`, x0 = 0, x1 = 1."""
    rng = np.random.default_rng(seed)
    z = scm.confounders(rng, n)
    x = rng.random(n) < scm.propensity(z)
    u = scm.mediator_noise(rng, n)
    w0, w1 = scm.mediators(np.zeros(n), z, u), scm.mediators(np.ones(n), z, u)
    y0 = scm.outcome_mean(np.zeros(n), z, w0)  # E[Y_{x0} | z, u]
    y1 = scm.outcome_mean(np.ones(n), z, w1)  # E[Y_{x1} | z, u]
    y1w0 = scm.outcome_mean(np.ones(n), z, w0)  # E[Y_{x1, W_x0} | z, u]
    e_y0, e_y1, e_te, e_de = y0[~x].mean(), y1[x].mean(), y1[~x].mean(), y1w0[~x].mean()
    return {
        "tv": e_y1 - e_y0,
        "ctfde": e_de - e_y0,
        "ctfie": e_de - e_te,
        "ctfse": e_te - e_y1,
        "ett": e_te - e_y0,
    }


def _abc(rng, n):
    return np.array(["a", "b", "c"])[(rng.random(n)[:, None] > [0.5, 0.8]).sum(1)]


def _categorical(u: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of a category per row from logits [n, k], with uniforms u [n]."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
    return np.minimum((u[:, None] > cdf).sum(1), logits.shape[1] - 1)


# Logistic-linear throughout; a categorical confounder, one binary and one continuous
# mediator: the logistic nuisances P(x1 | Z) and E[Y | x1, Z, W] are correct.
LINEAR = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n), "z2": _abc(rng, n)},
    propensity=lambda z: sigmoid(
        -0.2 + 0.6 * z["z1"] + 0.5 * (z["z2"] == "b") - 0.4 * (z["z2"] == "c")
    ),
    mediator_noise=lambda rng, n: (rng.random(n), rng.normal(size=n)),
    mediators=lambda x, z, u: {
        "w1": (u[0] < sigmoid(-0.3 + 0.6 * x + 0.4 * z["z1"])).astype(np.int64),
        "w2": 0.4 * x + 0.3 * z["z1"] + u[1],
    },
    outcome_mean=lambda x, z, w: sigmoid(
        -0.4 + 0.6 * x + 0.5 * z["z1"] + 0.4 * (z["z2"] == "b") + 0.7 * w["w1"] + 0.4 * w["w2"]
    ),
    Z=("z1", "z2"),
    W=("w1", "w2"),
)

# A saturating mediator (tanh of a steep index) and an X * W interaction in the outcome;
# the propensity is non-linear in Z. No nuisance is logistic-linear in the encoded columns.
SATURATING = SCM(
    confounders=lambda rng, n: {"z1": rng.uniform(-2, 2, size=n), "z2": rng.normal(size=n)},
    propensity=lambda z: sigmoid(0.8 * np.sin(1.5 * z["z1"]) + 0.4 * z["z2"] ** 2 - 0.4),
    mediator_noise=lambda rng, n: rng.normal(size=(2, n)),
    mediators=lambda x, z, u: {
        "w1": np.tanh(2.0 * (0.8 * x + 0.6 * z["z1"] - 0.4 + 0.5 * u[0])),
        "w2": 0.5 * x + 0.4 * np.abs(z["z2"]) + u[1],
    },
    outcome_mean=lambda x, z, w: sigmoid(
        -0.5
        + 0.4 * x
        + 1.5 * w["w1"]
        + 0.6 * x * w["w1"]
        + 0.5 * np.tanh(w["w2"])
        - 0.6 * z["z2"] ** 2
        + 0.4 * z["z1"]
    ),
    Z=("z1", "z2"),
    W=("w1", "w2"),
)

# X * Z and W * Z interactions in the outcome, an X * Z interaction in the mediator, and a
# propensity with a Z1 * Z2 term.
INTERACTION = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n), "z2": rng.normal(size=n)},
    propensity=lambda z: sigmoid(0.3 + 0.5 * z["z1"] - 0.4 * z["z2"] + 0.6 * z["z1"] * z["z2"]),
    mediator_noise=lambda rng, n: rng.normal(size=n),
    mediators=lambda x, z, u: {"w1": 0.6 * x + 0.3 * z["z1"] - 0.5 * x * z["z2"] + u},
    outcome_mean=lambda x, z, w: sigmoid(
        -0.3 + 0.5 * x + 0.9 * x * z["z1"] + 0.4 * z["z2"] + 0.5 * w["w1"] - 0.6 * w["w1"] * z["z2"]
    ),
    Z=("z1", "z2"),
    W=("w1",),
)

# No direct effect (ctfde = 0 exactly): X acts only through a categorical mediator with four
# levels (multinomial logit in X and Z) and a binary one.
NO_DIRECT = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n), "z2": _abc(rng, n)},
    propensity=lambda z: sigmoid(0.2 - 0.5 * z["z1"] + 0.7 * (z["z2"] == "c")),
    mediator_noise=lambda rng, n: rng.random(size=(2, n)),
    mediators=lambda x, z, u: {
        "job": np.array(["none", "low", "mid", "high"])[
            _categorical(
                u[0],
                np.stack(
                    [
                        np.zeros_like(z["z1"]),
                        0.3 + 0.5 * x + 0.3 * z["z1"],
                        -0.2 + 1.0 * x + 0.5 * z["z1"],
                        -0.8 + 1.5 * x + 0.2 * z["z1"] ** 2,
                    ],
                    axis=1,
                ),
            )
        ],
        "w2": (u[1] < sigmoid(-0.5 + 0.8 * x - 0.4 * z["z1"])).astype(np.int64),
    },
    outcome_mean=lambda x, z, w: sigmoid(
        -0.6
        + 0.5 * (w["job"] == "low")
        + 1.0 * (w["job"] == "mid")
        + 1.4 * (w["job"] == "high")
        + 0.6 * w["w2"]
        + 0.5 * z["z1"]
        - 0.5 * (z["z2"] == "b")
    ),
    Z=("z1", "z2"),
    W=("job", "w2"),
)

# A real-valued outcome with a categorical (integer-coded) mediator and an X * W term.
REAL_CATEGORICAL = SCM(
    confounders=lambda rng, n: {"z1": rng.normal(size=n)},
    propensity=lambda z: sigmoid(0.4 * z["z1"]),
    mediator_noise=lambda rng, n: (rng.random(n), rng.normal(size=n)),
    mediators=lambda x, z, u: {
        "level": _categorical(
            u[0],
            np.stack([np.zeros_like(z["z1"]), 0.8 * x + 0.4 * z["z1"], 1.2 * x - 0.3], axis=1),
        ),
        "w2": 0.5 * x + np.sin(z["z1"]) + u[1],
    },
    outcome_mean=lambda x, z, w: (
        0.3 * x
        + 0.4 * w["level"]
        + 0.3 * x * (w["level"] == 2)
        + 0.25 * w["w2"]
        + 0.2 * z["z1"] ** 2
    ),
    noise_sd=0.5,
    Z=("z1",),
    W=("level", "w2"),
    categorical=("level",),
)

SCMS = {
    "linear": LINEAR,
    "saturating": SATURATING,
    "interaction": INTERACTION,
    "no_direct": NO_DIRECT,
    "real_categorical": REAL_CATEGORICAL,
}


def estimate(scm: SCM, df: pd.DataFrame, key: jax.Array, **kwargs) -> pd.DataFrame:
    """`decompose` of a sample of `scm` (x0 = 0, x1 = 1), indexed by measure."""
    table = decompose(
        df,
        X="x",
        Z=list(scm.Z),
        W=list(scm.W),
        Y="y",
        x0=0,
        x1=1,
        key=key,
        categorical=list(scm.categorical),
        **kwargs,
    )
    return table.set_index("measure")


def run(
    names: list[str],
    n: int,
    reps: int,
    n_large: int,
    reps_large: int,
    model: str,
    save_fn: Callable[[dict], None] = lambda record: None,
    truth_n: int = TRUTH_N,
) -> dict:
    """Every replication of every SCM; the JSON record (`save_fn` gets it after each SCM)."""
    record = {
        "n": n,
        "reps": reps,
        "n_large": n_large,
        "reps_large": reps_large,
        "model": model,
        "truth_n": truth_n,
        "level": 0.95,
        "scms": {},
    }
    for name in names:
        scm = SCMS[name]
        true = truth(scm, n=truth_n)
        rows = []
        for size, count, tag in ((n, reps, "small"), (n_large, reps_large, "large")):
            for rep in range(count if size > 0 else 0):
                start = time.perf_counter()
                seed = (1000 if tag == "small" else 5000) + rep
                table = estimate(scm, sample(scm, seed, size), jax.random.key(seed), model=model)
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "size": tag,
                        "n": size,
                        "seed": seed,
                        "seconds": seconds,
                        "nuisances": {k: v["model"] for k, v in table.attrs["nuisances"].items()},
                        "clipped": table.attrs["clipped"],
                        "estimates": {
                            m: [
                                float(table.loc[m, c]) for c in ("value", "sd", "ci_low", "ci_high")
                            ]
                            for m in MEASURES
                        },
                    }
                )
                err = {m: round(table.loc[m, "value"] - true[m], 4) for m in MEASURES}
                log(f"{name} {tag} rep {rep}: {seconds:.1f}s errors {err}")
        record["scms"][name] = {"truth": true, "runs": rows}
        save_fn(record)
    return record


def summarise(record: dict) -> pd.DataFrame:
    """One row per (SCM, measure): truth, coverage and mean sd at n, errors at n_large."""
    out = []
    for name, entry in record["scms"].items():
        true = entry["truth"]
        small = [r for r in entry["runs"] if r["size"] == "small"]
        large = [r for r in entry["runs"] if r["size"] == "large"]
        for m in MEASURES:
            est = np.array([r["estimates"][m] for r in small]).reshape(-1, 4)
            err_small = est[:, 0] - true[m]
            # A structural zero has sd 0 and an exact estimate: it counts as covered.
            covered = (est[:, 2] - 1e-12 <= true[m]) & (true[m] <= est[:, 3] + 1e-12)
            big = np.array([r["estimates"][m][0] for r in large]) - true[m]
            out.append(
                {
                    "scm": name,
                    "measure": m,
                    "truth": true[m],
                    "coverage": covered.mean() if len(est) else np.nan,
                    "bias_n": err_small.mean() if len(est) else np.nan,
                    "bias_over_se": (
                        err_small.mean() / (err_small.std(ddof=1) / np.sqrt(len(est)))
                        if len(est) > 1 and err_small.std() > 0
                        else np.nan
                    ),
                    "mean_sd_n": est[:, 1].mean() if len(est) else np.nan,
                    "sd_ratio": (
                        est[:, 1].mean() / err_small.std(ddof=1)
                        if len(est) > 1 and err_small.std() > 0
                        else np.nan
                    ),
                    "mean_error_large": big.mean() if len(big) else np.nan,
                    "mean_abs_error_large": np.abs(big).mean() if len(big) else np.nan,
                }
            )
    return pd.DataFrame(out)


def nuisance_counts(record: dict) -> pd.DataFrame:
    """How often each candidate was chosen, per SCM and nuisance (n-sized replications)."""
    rows = []
    for name, entry in record["scms"].items():
        counts: dict[tuple[str, str], int] = {}
        for r in entry["runs"]:
            if r["size"] != "small":
                continue
            for nuisance, chosen in r["nuisances"].items():
                counts[nuisance, chosen] = counts.get((nuisance, chosen), 0) + 1
        for (nuisance, chosen), c in sorted(counts.items()):
            rows.append({"scm": name, "nuisance": nuisance, "model": chosen, "count": c})
    return pd.DataFrame(rows)


def tables_markdown(record: dict) -> str:
    """The coverage / error table and the nuisance choices, as markdown."""
    s = summarise(record)
    lines = [
        f"Calibration of `decompose(model={record['model']!r})`: {record['reps']} "
        f"replications at n = {record['n']:,} (95% interval coverage, target >= "
        f"{COVERAGE_TARGET:.0%}); {record['reps_large']} at n = {record['n_large']:,} "
        f"(mean |error|, target <= {ERROR_TARGET}). Truths: Monte-Carlo of the potential "
        f"outcomes over {record['truth_n']:,} units (float64 numpy).",
        "",
        "| SCM | measure | truth | coverage | bias (n) | bias / se | mean sd | sd / spread "
        "| mean error (large n) | mean abs error (large n) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(v, spec):
        return "–" if v is None or not np.isfinite(v) else format(v, spec)

    for r in s.itertuples(index=False):
        miss_cov = np.isfinite(r.coverage) and r.coverage < COVERAGE_TARGET
        miss_err = np.isfinite(r.mean_abs_error_large) and r.mean_abs_error_large > ERROR_TARGET
        lines.append(
            f"| {r.scm} | {r.measure} | {r.truth:.4f} | "
            f"{f(r.coverage, '.0%')}{' (miss)' if miss_cov else ''} | {f(r.bias_n, '+.4f')} | "
            f"{f(r.bias_over_se, '+.1f')} | {f(r.mean_sd_n, '.4f')} | {f(r.sd_ratio, '.2f')} | "
            f"{f(r.mean_error_large, '+.4f')} | "
            f"{f(r.mean_abs_error_large, '.4f')}{' (miss)' if miss_err else ''} |"
        )
    worst_cov = s["coverage"].min()
    worst_err = s["mean_abs_error_large"].max()
    lines += [
        "",
        f"Lowest coverage {f(worst_cov, '.0%')} (target >= {COVERAGE_TARGET:.0%}); largest mean "
        f"|error| at n = {record['n_large']:,}: {f(worst_err, '.4f')} (target <= {ERROR_TARGET}).",
        "",
        "Nuisance chosen (count over the n-sized replications):",
        "",
        "| SCM | nuisance | model | count |",
        "|---|---|---|---:|",
    ]
    for r in nuisance_counts(record).itertuples(index=False):
        nuisance = r.nuisance.replace("|", "\\|")  # a bare | would split the cell
        lines.append(f"| {r.scm} | {nuisance} | {r.model} | {r.count} |")
    secs = [r["seconds"] for e in record["scms"].values() for r in e["runs"]]
    lines += ["", f"Wall time of all decompositions: {sum(secs) / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file in the same folder, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.causal_calibration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scms", default=",".join(SCMS), help="comma-separated SCM names")
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--n-large", type=int, default=50_000)
    parser.add_argument("--reps-large", type=int, default=4)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--truth-n", type=int, default=TRUTH_N, help="Monte-Carlo units")
    parser.add_argument("--out", default="runs/causal_calibration")
    parser.add_argument("--force", action="store_true", help="overwrite an existing record")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild tables.md from calibration.json"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    record_path = out / "calibration.json"
    if args.report_only:
        if not record_path.exists():
            parser.error(f"{record_path} not found; run without --report-only first")
        record = json.loads(record_path.read_text())
    else:
        names = args.scms.split(",")
        unknown = [s for s in names if s not in SCMS]
        if unknown:
            parser.error(f"unknown SCM(s) {unknown}; choose from {list(SCMS)}")
        if record_path.exists() and not args.force:
            parser.error(f"{record_path} exists; pass --force to overwrite it or choose --out")
        out.mkdir(parents=True, exist_ok=True)
        record = run(
            names,
            args.n,
            args.reps,
            args.n_large,
            args.reps_large,
            args.model,
            save_fn=lambda r: write_atomic(record_path, json.dumps(jsonable(r), indent=1)),
            truth_n=args.truth_n,
        )
    text = tables_markdown(record)
    write_atomic(out / "tables.md", text)
    print(text)


if __name__ == "__main__":
    main()
