"""What limits the downstream accuracy of FADM's rows at lambda_z = 0 (#10 item 3)?

    python benchmarks/bench_fidelity.py [--targets Asian-Pac-Islander,White] [--seeds 0,1]
        [--classifier-keys 3] [--out benchmarks/results/fidelity_cpu.json] [--overwrite]

Protocol (experiments/fadm_adult.py, preset "cpu"): for each seed and left-out target, the
generators are trained on the stratified 80% of the other four domains' rows
(`Runner.split`) and sample `n_synthetic` rows (FADM at lambda_z = 0, lambda_y = 1). Each
table trains the downstream classifiers of `Evaluator` (MLP and logistic regression) with
`--classifier-keys` keys, and their mean accuracy on the target is compared with the same
classifiers trained on the real rows with the same keys (one key's MLP accuracy varies by
up to 2 points, which one-key cells cannot resolve). The variants change one thing at a
time from FADM's quick preset: meta-learning off; larger, longer-trained classifiers (which
guide the labels); paper-size networks trained 4x longer. Two more, chosen with
`--variants` (benchmarks/results/fidelity_cpu_more.json), train the paper-size networks 8x
longer or make them twice as wide; two others (fidelity_cpu_free.json) replace the label
classifier's guidance by a label-conditioned score net (`label_guidance="free"`), and two
more (fidelity_cpu_spread.json) encode the numeric columns with `scaling="quantile_spread"`
(each atom, such as capital gain's zeros, spread over its CDF interval).

Label agreement: the real-row MLP's accuracy on a generated table against the labels the
generator gave its rows, next to the same MLP's accuracy on held-out real rows. Equal
values mean the generated rows carry their labels as consistently as real rows do; a
lower value means noisier labels. Atom share: for each numeric column whose most common
value holds >= ATOM_SHARE of the training rows, the share of a table's rows at that value,
next to the training rows' own share. Every variant after the first is also compared with the
first, paired over the cells (same splits, classifier keys and sampling key). Writes JSON;
refuses to overwrite without --overwrite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from experiments import fadm_adult
from fairjax import fadm, outputs

BIGGER_CLASSIFIERS = {"classifier_width": 128, "classifier_blocks": 2, "classifier_steps": 2400}
# Each variant: (generator, overrides of that generator's quick preset).
VARIANTS = {
    "FADM quick": ("fadm", {}),
    "FADM meta off": ("fadm", {"meta": "off"}),
    "FADM meta off, classifiers 128x2 2400 steps": ("fadm", {"meta": "off", **BIGGER_CLASSIFIERS}),
    "FADM meta off, paper networks 6000 steps": (
        "fadm",
        {
            "meta": "off",
            "width": fadm.PRESETS["paper"].width,
            "num_blocks": fadm.PRESETS["paper"].num_blocks,
            "score_steps": 6000,
            **BIGGER_CLASSIFIERS,
        },
    ),
    "VAE": ("vae", {}),
    "DDPM": ("ddpm", {}),
}
PAPER_NETWORKS = VARIANTS["FADM meta off, paper networks 6000 steps"][1]
# Longer or wider than the paper's networks: run with --variants (not by default).
VARIANTS |= {
    "FADM meta off, paper networks 12000 steps": ("fadm", {**PAPER_NETWORKS, "score_steps": 12000}),
    "FADM meta off, width 512, 6000 steps": ("fadm", {**PAPER_NETWORKS, "width": 512}),
    # A label-conditioned score net with classifier-free label guidance
    # (benchmarks/results/fidelity_cpu_free.json).
    "FADM free labels": ("fadm", {"label_guidance": "free"}),
    "FADM meta off, paper networks 6000 steps, free labels": (
        "fadm",
        {**PAPER_NETWORKS, "label_guidance": "free"},
    ),
    # Atoms (capital gain's zeros) spread over their CDF interval by the encoder
    # (benchmarks/results/fidelity_cpu_spread.json).
    "FADM quantile_spread": ("fadm", {"scaling": "quantile_spread"}),
    "FADM meta off, paper networks 6000 steps, quantile_spread": (
        "fadm",
        {**PAPER_NETWORKS, "scaling": "quantile_spread"},
    ),
}
DEFAULT_VARIANTS = (
    "FADM quick",
    "FADM meta off",
    "FADM meta off, classifiers 128x2 2400 steps",
    "FADM meta off, paper networks 6000 steps",
    "VAE",
    "DDPM",
)


# A numeric column whose most common value holds at least this share of the training rows
# has an atom; the share of each table's rows at that value is reported next to the real.
ATOM_SHARE = 0.3


def atoms(frame, numeric) -> dict:
    """Numeric column -> its most common value, where that value holds >= ATOM_SHARE of rows."""
    modes = {c: frame[c].value_counts(normalize=True) for c in numeric}
    return {c: m.index[0].item() for c, m in modes.items() if m.iloc[0] >= ATOM_SHARE}


def atom_shares(frame, modes) -> dict:
    """Column -> share of `frame`'s rows at that column's atom (a value of `atoms`)."""
    return {c: float((frame[c] == v).mean()) for c, v in modes.items()}


def mean_scores(evaluator, runs, frames) -> dict:
    """{frame name: {classifier: mean accuracy (%) over runs}}; `runs` are `Evaluator.fit`s."""
    return {
        name: {
            clf: float(np.mean([evaluator.score(r, frame)[clf]["acc"] for r in runs]))
            for clf in evaluator.models
        }
        for name, frame in frames.items()
    }


def interval(values) -> dict:
    """Mean and half-width of the 95% t-interval of `values` (nan for one value)."""
    v = np.asarray(values, np.float64)
    n = len(v)
    half = fadm_adult.T_975[n - 1] * v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return {"mean": float(v.mean()), "ci": float(half), "n": len(v)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="Asian-Pac-Islander,White")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--classifier-keys", type=int, default=3)
    parser.add_argument("--variants", default=";".join(DEFAULT_VARIANTS), help="';'-separated")
    parser.add_argument(
        "--out", default=f"benchmarks/results/fidelity_{jax.default_backend()}.json"
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    outputs.check_target(args.out, overwrite=args.overwrite, arg="--out")
    variants = {name: VARIANTS[name] for name in args.variants.split(";")}
    preset = fadm_adult.PRESETS["cpu"]
    runner = fadm_adult.Runner(Path("runs/bench_fidelity"), "cpu", progress=False)
    evaluator = runner.evaluator
    start = time.time()
    cells = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for target in args.targets.split(","):
            sources = [d for d in fadm_adult.DOMAINS if d != target]
            train, val = runner.split(sources, seed)
            key = jax.random.fold_in(jax.random.key(seed), 11)
            fit_key, sample_key, clf_key = jax.random.split(key, 3)
            keys = [jax.random.fold_in(clf_key, i) for i in range(args.classifier_keys)]
            test = runner.rows_of([target])
            real_runs = [evaluator.fit(k, train) for k in keys]
            real = mean_scores(evaluator, real_runs, {"test": test, "val": val})
            modes = atoms(train, runner.adult.schema.numeric)
            real["atom_share"] = atom_shares(train, modes)
            cell = {"seed": seed, "target": target, "real": real, "variants": {}}
            for name, (generator, overrides) in variants.items():
                method = fadm_adult.Method(
                    name, generator, {"generator_preset": "quick", **overrides}
                )
                t0 = time.time()
                model = runner._fit(method, fit_key, train)
                fit_seconds = time.time() - t0
                kwargs = {"lambda_z": 0.0, "lambda_y": 1.0} if generator == "fadm" else {}
                table = model.sample(sample_key, preset.n_synthetic, **kwargs)
                runs = [evaluator.fit(k, table) for k in keys]
                acc = mean_scores(evaluator, runs, {"test": test})["test"]
                agree = np.mean(
                    [evaluator.score({"mlp": r["mlp"]}, table)["mlp"]["acc"] for r in real_runs]
                )
                cell["variants"][name] = {
                    "acc": acc,
                    "gap": {clf: acc[clf] - real["test"][clf] for clf in acc},
                    "label_agreement": float(agree),
                    "atom_share": atom_shares(table, modes),
                    "fit_seconds": fit_seconds,
                }
                shares = " ".join(
                    f"{c} {v:.3f} (real {real['atom_share'][c]:.3f})"
                    for c, v in cell["variants"][name]["atom_share"].items()
                )
                print(
                    f"seed {seed} {target} {name}: MLP {acc['mlp']:.2f} "
                    f"(real {real['test']['mlp']:.2f}), agreement {agree:.2f} "
                    f"(real val {real['val']['mlp']:.2f}), at the atom: {shares}, "
                    f"fit {fit_seconds:.0f} s",
                    flush=True,
                )
            cells.append(cell)
    summary = {
        name: {
            "gap_mlp": interval([c["variants"][name]["gap"]["mlp"] for c in cells]),
            "gap_logistic": interval([c["variants"][name]["gap"]["logistic"] for c in cells]),
            "label_agreement": interval([c["variants"][name]["label_agreement"] for c in cells]),
        }
        for name in variants
    }
    first = next(iter(variants))
    for name in list(variants)[1:]:  # paired: the same splits, keys and sample key
        summary[name][f"mlp_gain_over {first}"] = interval(
            [c["variants"][name]["acc"]["mlp"] - c["variants"][first]["acc"]["mlp"] for c in cells]
        )
    summary["real (held-out source rows)"] = {
        "label_agreement": interval([c["real"]["val"]["mlp"] for c in cells])
    }
    result = {
        "command": "python benchmarks/bench_fidelity.py"
        + "".join(
            f" --{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "overwrite") and v != parser.get_default(k)
        ),
        "args": vars(args),
        "variants": {name: {"generator": g, "overrides": o} for name, (g, o) in variants.items()},
        "cells": cells,
        "summary": summary,
        "wall_seconds": time.time() - start,
        "machine": f"{platform.machine()} {jax.default_backend()} {jax.device_count()} device(s)",
        "load_at_end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    outputs.write_text(Path(args.out), json.dumps(result, indent=2), overwrite=args.overwrite)
    for name, s in summary.items():
        line = " ".join(
            f"{k} {v['mean']:+.2f} ± {v['ci']:.2f}"
            if k.startswith("gap")
            else f"{k} {v['mean']:.2f} ± {v['ci']:.2f}"
            for k, v in s.items()
        )
        print(f"{name}: {line}")
    return result


if __name__ == "__main__":
    main()
