"""FairCauseSyn experiment (arXiv 2506.19082): NHEFS and COMPAS, faithful and fair synthesis.

    python -m experiments.faircausesyn --preset quick      # NHEFS, one seed, a few minutes
    python -m experiments.faircausesyn --preset paper      # NHEFS and COMPAS, 3 seeds
    python -m experiments.faircausesyn --preset paper --out results/faircausesyn --report-only

Roles (`fairjax.faircausesyn.ROLES`): NHEFS X = sex (female -> male), Y = death by 1992,
Z = {age, race}, W = education, smoking intensity and years, blood pressure, weight,
diabetes, exercise, activity, alcohol, asthma, bronchitis, high blood pressure, quitting
smoking; COMPAS X = race (Caucasian -> African-American), Z = {age, sex}, W = juvenile
counts, priors, charge degree, Y = two-year recidivism.

For every data set and seed: a 70/30 train/test split stratified by (X, Y); the causal
measures (tv, ctfde, ctfie, ctfse, ett; one-step, 5-fold cross-fitted, logistic nuisances)
of the training rows; one local transformer trained on them, refined twice: toward the
real measures ("faithful") and toward ctfde = ctfie = ctfse = 0 ("fair"), each round
generating `synthetic_factor` times the training rows. Each refined generator then makes a
new table of that size with a fresh key, audited with a fresh key (so the reported
numbers are not the ones the loop selected on). Baseline generators (VAE, DDPM; their
`quick` presets) are fitted on the same rows and audited the same way.

Classifiers on the X, Z and W columns, trained on the real training rows or on the
faithful or fair synthetic table and tested on the real test rows: logistic regression
(L-BFGS to its optimum), an MLP (`fit_fair_predictor` with lam = 0: Adam, early stopping)
and the causally fair predictor (lam > 0 on ctfde, ctfie, ctfse). For each: accuracy
(threshold 0.5) and the causal measures of its predicted probabilities on the test rows;
bias reduction of a measure =
1 - mean |m(trained on synthetic)| / mean |m(trained on real)| for the same classifier,
means over seeds.

The predictor table (`predictors.md`, `predictors.csv`) is the one the paper's claim is
about: {logistic regression, MLP, causally fair predictor} x {trained on real rows, the
faithful table, the fair table}, all tested on the held-out real rows. For each: accuracy
(mean ± std over seeds, and its change in points against logistic regression trained on
real rows), the tv, ctfde, ctfie and ctfse of the predictions as the seed mean with a 95%
interval (mean ± 1.96 sqrt(sum_s sd_s^2) / S from the per-seed standard errors: the
estimator's uncertainty given the fitted predictors), and the reduction of |tv| and |ctfde|
against logistic regression trained on real rows, 1 - mean |m| / mean |m_LR,real|.

Outputs in --out (default runs/faircausesyn/PRESET/; the committed results/faircausesyn/ was
made with `--out results/faircausesyn`): `{dataset}_seed{seed}.json` (every
round of both refinement loops, all measures with standard errors, every classifier),
`measures.csv` and `classifiers.csv` (mean and standard deviation over seeds),
`tables.md` (both tables, as printed) and `predictors.md` / `predictors.csv` (the
predictor table; rebuilt by --report-only from the records alone).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
import pandas as pd

from experiments import common
from experiments.common import log, preset_config, preset_parser
from fairjax import datasets, generators
from fairjax.causal import MEASURES, fit_fair_predictor, predict_fair
from fairjax.causal.inputs import encode_features, fit_feature_encoder, protected_indicator
from fairjax.classifiers import make_logistic_regression
from fairjax.faircausesyn import pipeline, refine
from fairjax.faircausesyn.roles import CausalRoles

GENERATORS = ("real", "faithful", "fair")
CLASSIFIERS = {"lr": "Logistic regression", "mlp": "MLP", "fair": "Causally fair predictor"}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """What one run does.

    Attributes:
      datasets: bundled data sets with declared roles ("nhefs", "compas").
      seeds: one split, generator and set of classifiers per seed.
      generator: FairCauseSyn hyperparameters (mode is set per loop).
      baselines: other generators of fairjax (their `quick` presets), audited alike.
      synthetic_factor: every synthetic table (and each refinement round) has this many
        times the training split's rows.
      test_fraction: held-out real rows for the classifiers.
      fair_lam: penalty weight of the causally fair predictor.
      hidden, lr, batch_size, max_epochs, patience: the MLP classifiers (Adam, early
        stopping on a 20% validation split).
    """

    datasets: tuple[str, ...] = ("nhefs", "compas")
    seeds: tuple[int, ...] = (0, 1, 2)
    generator: pipeline.FairCauseSynConfig = pipeline.PRESETS["paper"]
    baselines: tuple[str, ...] = ("vae", "ddpm")
    synthetic_factor: int = 4
    test_fraction: float = 0.3
    fair_lam: float = 1.0
    hidden: tuple[int, ...] = (32, 32)
    lr: float = 3e-3
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 10


NAME = "faircausesyn"
PRESETS = {
    # NHEFS, one seed, the quick transformer, two rounds, the VAE only: minutes on 2 cores.
    "quick": ExperimentConfig(
        datasets=("nhefs",),
        seeds=(0,),
        generator=dataclasses.replace(pipeline.PRESETS["quick"], rounds=2),
        baselines=("vae",),
        synthetic_factor=2,
        max_epochs=50,
    ),
    "paper": ExperimentConfig(),
}


def split(key: jax.Array, frame: pd.DataFrame, roles: CausalRoles, test_fraction: float):
    """(train, test) frames, stratified by the (X, Y) cell."""
    u = np.asarray(jax.random.uniform(key, (len(frame),)))
    test = np.zeros(len(frame), bool)
    cells = frame[roles.X].astype(str) + "|" + frame[roles.Y].astype(str)
    for cell in cells.unique():
        ids = np.flatnonzero((cells == cell).to_numpy())
        ids = ids[np.argsort(u[ids])]
        test[ids[: round(test_fraction * len(ids))]] = True
    return frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)


def _measures(m: refine.Measures) -> dict:
    return {k: {"value": v, "sd": s} for k, (v, s) in m.items()}


def fit_baseline(key, name: str, train: pd.DataFrame, dataset, roles, n: int) -> pd.DataFrame:
    """Rows of baseline `name` fitted on the training split, restricted to X in {x0, x1}."""
    method = generators.get(name)
    train_set = dataclasses.replace(dataset, frame=train)
    model = method.fit(key, train_set, config=method.PRESETS["quick"], progress=False)
    rows = model.sample(jax.random.fold_in(key, 1), 2 * n)
    rows = rows[rows[roles.X].isin([roles.x0, roles.x1])].reset_index(drop=True)
    return rows.iloc[:n][list(roles.order)]


def _design(encoder, frame: pd.DataFrame, roles: CausalRoles) -> np.ndarray:
    """[n, 1 + d] features: 1(X = x1), then the encoded Z and W columns."""
    t = protected_indicator(frame, roles.X, roles.x0, roles.x1)
    z, w = encode_features(encoder, frame, roles.Z, roles.W)
    return np.concatenate([t[:, None], z, w], axis=1)


def audit(cfg: ExperimentConfig, key, frame: pd.DataFrame, roles: CausalRoles):
    """`refine.audit` with the generator config's nuisance models and folds, so the tables,
    the baselines and the predictions are audited as the refinement loop audits."""
    g = cfg.generator
    return refine.audit(key, frame, roles, model=g.audit_model, n_folds=g.audit_folds)


def classifier_scores(key, cfg, roles, train, test) -> dict:
    """Accuracy and causal measures (on `test`) of the three classifiers fitted on `train`."""
    probabilities = {}
    encoder = fit_feature_encoder(train, [*roles.Z, *roles.W])
    lr = make_logistic_regression()
    params = lr.fit(None, _design(encoder, train, roles), train[roles.Y].to_numpy())
    probabilities["lr"] = np.asarray(lr.predict_proba(params, _design(encoder, test, roles)))
    for i, (name, lam) in enumerate([("mlp", 0.0), ("fair", cfg.fair_lam)]):
        predictor = fit_fair_predictor(
            jax.random.fold_in(key, i),
            train,
            **roles.kwargs(),
            lam=lam,
            hidden=cfg.hidden,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            max_epochs=cfg.max_epochs,
            patience=cfg.patience,
        )
        probabilities[name] = predict_fair(predictor, test)
    out = {}
    y = test[roles.Y].to_numpy() == 1
    for i, (name, p) in enumerate(probabilities.items()):
        scored = test.assign(**{roles.Y: p})
        out[name] = {
            "accuracy": float(np.mean((p >= 0.5) == y)),
            "measures": _measures(audit(cfg, jax.random.fold_in(key, 10 + i), scored, roles)),
        }
    return out


def run_one(name: str, seed: int, cfg: ExperimentConfig) -> dict:
    """Every number of one data set and seed."""
    t0 = time.time()
    dataset = datasets.load(name)
    frame, roles = pipeline.resolve_roles(dataset, cfg.generator)
    key = jax.random.key(seed)
    k_split, k_fit, k_fair, k_sample, k_audit, k_base, k_clf = jax.random.split(key, 7)
    train, test = split(k_split, frame, roles, cfg.test_fraction)
    train_set = dataclasses.replace(dataset, frame=train)
    n_syn = cfg.synthetic_factor * len(train)
    rec = {
        "dataset": name,
        "seed": seed,
        "roles": roles.to_dict(),
        "n_train": len(train),
        "n_test": len(test),
        "generators": {},
        "loops": {},
    }

    tables = {"real": train}
    model = None
    for mode, k in (("faithful", k_fit), ("fair", k_fair)):
        log(f"  {mode} refinement")
        config = dataclasses.replace(cfg.generator, mode=mode, rows_per_round=n_syn)
        model = pipeline.fit(
            k,
            train_set,
            config=config,
            progress=False,
            generator=None if model is None else model.generator,
        )
        tables[mode] = model.sample(jax.random.fold_in(k_sample, len(tables)), n_syn)
        rec["loops"][mode] = {
            "rounds": model.rounds,
            "best": model.best["index"],
            "state": model.state,
            "goal": model.goal.to_dict(),
        }
    for b in cfg.baselines:
        log(f"  baseline {b}")
        tables[b] = fit_baseline(
            jax.random.fold_in(k_base, len(tables)), b, train, dataset, roles, n_syn
        )

    audits = {
        gen: audit(cfg, jax.random.fold_in(k_audit, i), rows, roles)
        for i, (gen, rows) in enumerate(tables.items())
    }
    goal = refine.make_goal(audits["real"], mode="faithful")
    for i, (gen, rows) in enumerate(tables.items()):
        m = audits[gen]
        rec["generators"][gen] = {"measures": _measures(m), "faithful_gap": goal.gap(m)}
        if gen in GENERATORS:
            log(f"  classifiers on {gen}")
            rec["generators"][gen]["classifiers"] = classifier_scores(
                jax.random.fold_in(k_clf, i), cfg, roles, rows, test
            )
    rec["generator_history"] = model.generator.history
    rec["seconds"] = time.time() - t0
    return rec


def summarise(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(measures, classifiers): long tables of mean and std over seeds."""
    rows, clf_rows = [], []
    for rec in records:
        gens = rec["generators"]
        for gen, g in gens.items():
            real = gens["real"]["measures"]
            row = {
                "dataset": rec["dataset"],
                "seed": rec["seed"],
                "generator": gen,
                "faithful_gap": g["faithful_gap"],
                # The same deviations in standard errors of their difference.
                "faithful_z": max(
                    abs(g["measures"][m]["value"] - real[m]["value"])
                    / np.hypot(g["measures"][m]["sd"], real[m]["sd"])
                    for m in MEASURES
                )
                if gen != "real"
                else 0.0,
            }
            row.update({m: g["measures"][m]["value"] for m in MEASURES})
            rows.append(row)
            for clf, c in g.get("classifiers", {}).items():
                base = gens["real"]["classifiers"][clf]
                crow = {
                    "dataset": rec["dataset"],
                    "seed": rec["seed"],
                    "trained_on": gen,
                    "classifier": clf,
                    "accuracy": c["accuracy"],
                }
                for m in ("tv", "ctfde", "ctfie", "ctfse"):
                    crow[m] = c["measures"][m]["value"]
                for m in ("tv", "ctfde"):
                    crow[f"abs_{m}"] = abs(crow[m])
                crow["accuracy_change"] = c["accuracy"] - base["accuracy"]
                clf_rows.append(crow)
    per_seed = pd.DataFrame(rows)
    per_clf = pd.DataFrame(clf_rows)
    agg = lambda df, keys: (
        df.drop(columns="seed").groupby(keys, sort=False).agg(["mean", "std"]).reset_index()
    )
    clf = agg(per_clf, ["dataset", "trained_on", "classifier"])
    # Bias reduction from seed means: 1 - mean |m| / mean |m of the same classifier trained
    # on real rows| (per-seed ratios explode when the real-data value is near zero).
    keys = ["dataset", "classifier"]
    real = clf[clf[("trained_on", "")] == "real"].set_index([(k, "") for k in keys])
    for m in ("tv", "ctfde"):
        ref = real[(f"abs_{m}", "mean")]
        index = pd.MultiIndex.from_frame(clf[[(k, "") for k in keys]])
        clf[(f"reduction_{m}", "mean")] = (
            1 - clf[(f"abs_{m}", "mean")].to_numpy() / ref.reindex(index).to_numpy()
        )
        clf[(f"reduction_{m}", "std")] = np.nan
    return agg(per_seed, ["dataset", "generator"]), clf


PREDICTOR_MEASURES = ("tv", "ctfde", "ctfie", "ctfse")


def summarise_predictors(records: list[dict]) -> pd.DataFrame:
    """The predictor table: one row per (data set, training table, classifier).

    Columns: accuracy mean / std over seeds, accuracy_vs_lr (points against logistic
    regression on real rows, seed mean of the paired differences), for each m of
    `PREDICTOR_MEASURES` its seed mean m, m_low and m_high (95% interval from the per-seed
    standard errors), and reduction_tv / reduction_ctfde against logistic regression on
    real rows (1 - mean |m| / mean |m_LR,real|).
    """
    rows = []
    for rec in records:
        gens = rec["generators"]
        base = gens["real"]["classifiers"]["lr"]
        for gen in GENERATORS:
            for clf, c in gens.get(gen, {}).get("classifiers", {}).items():
                row = {
                    "dataset": rec["dataset"],
                    "seed": rec["seed"],
                    "trained_on": gen,
                    "classifier": clf,
                    "accuracy": c["accuracy"],
                    "accuracy_vs_lr": 100 * (c["accuracy"] - base["accuracy"]),
                }
                for m in PREDICTOR_MEASURES:
                    row[m] = c["measures"][m]["value"]
                    row[f"{m}_var"] = c["measures"][m]["sd"] ** 2
                    row[f"abs_{m}"] = abs(row[m])
                    row[f"lr_abs_{m}"] = abs(base["measures"][m]["value"])
                rows.append(row)
    per_seed = pd.DataFrame(rows)
    out = []
    for (dataset, gen, clf), g in per_seed.groupby(
        ["dataset", "trained_on", "classifier"], sort=False
    ):
        k = len(g)
        row = {
            "dataset": dataset,
            "trained_on": gen,
            "classifier": clf,
            "seeds": k,
            "accuracy": g["accuracy"].mean(),
            "accuracy_std": g["accuracy"].std(ddof=1) if k > 1 else np.nan,
            "accuracy_vs_lr": g["accuracy_vs_lr"].mean(),
        }
        for m in PREDICTOR_MEASURES:
            mean, half = g[m].mean(), 1.96 * np.sqrt(g[f"{m}_var"].sum()) / k
            row.update({m: mean, f"{m}_low": mean - half, f"{m}_high": mean + half})
        for m in ("tv", "ctfde"):
            row[f"reduction_{m}"] = 1 - g[f"abs_{m}"].mean() / g[f"lr_abs_{m}"].mean()
        out.append(row)
    return pd.DataFrame(out)


def markdown_predictors(table: pd.DataFrame) -> str:
    """`summarise_predictors` as a markdown table."""
    head = ["accuracy", "Δacc vs LR (pts)", *PREDICTOR_MEASURES, "reduction \\|tv\\|"]
    head.append("reduction \\|ctfde\\|")  # a bare | would split the cell
    lines = [
        "| data | trained on | classifier | " + " | ".join(head) + " |",
        "|---|---|---|" + "---:|" * len(head),
    ]
    for r in table.itertuples(index=False):
        d = r._asdict()
        cells = [_cell(d["accuracy"], d["accuracy_std"]), f"{d['accuracy_vs_lr']:+.1f}"]
        for m in PREDICTOR_MEASURES:
            cells.append(f"{d[m]:+.3f} [{d[f'{m}_low']:+.3f}, {d[f'{m}_high']:+.3f}]")
        cells += [f"{d['reduction_tv']:.0%}", f"{d['reduction_ctfde']:.0%}"]
        lines.append(
            f"| {d['dataset']} | {d['trained_on']} | {CLASSIFIERS[d['classifier']]} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def predictors_markdown(records: list[dict]) -> str:
    """The text of predictors.md."""
    seeds = sorted({r["seed"] for r in records})
    return (
        "# Predictors tested on held-out real rows\n\n"
        f"Seeds {', '.join(map(str, seeds))}. Accuracy: mean ± std over seeds; Δacc: "
        "points against logistic regression trained on real rows. tv, ctfde, ctfie, ctfse "
        "of the predicted probabilities: seed mean [95% interval from the per-seed standard "
        "errors]. reduction |m| = 1 - mean |m| / mean |m of logistic regression trained on "
        "real rows|.\n\n" + markdown_predictors(summarise_predictors(records)) + "\n"
    )


def _cell(mean: float, std: float, digits: int = 3) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f}" + ("" if not np.isfinite(std) else f" ± {std:.{digits}f}")


def markdown_measures(agg: pd.DataFrame) -> str:
    cols = [*MEASURES, "faithful_gap", "faithful_z"]
    lines = ["| data | generator | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for _, r in agg.iterrows():
        cells = [_cell(r[(c, "mean")], r[(c, "std")]) for c in cols]
        lines.append(
            f"| {r[('dataset', '')]} | {r[('generator', '')]} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def markdown_classifiers(agg: pd.DataFrame) -> str:
    cols = [
        "accuracy",
        "accuracy_change",
        "tv",
        "ctfde",
        "ctfie",
        "ctfse",
        "reduction_tv",
        "reduction_ctfde",
    ]
    lines = [
        "| data | trained on | classifier | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for _, r in agg.iterrows():
        cells = [_cell(r[(c, "mean")], r[(c, "std")]) for c in cols]
        lines.append(
            f"| {r[('dataset', '')]} | {r[('trained_on', '')]} | "
            f"{CLASSIFIERS[r[('classifier', '')]]} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run a preset; write the JSON records and the tables to --out (default
    runs/faircausesyn/PRESET)."""
    parser = preset_parser("experiments.faircausesyn", __doc__, PRESETS, NAME)
    args = parser.parse_args(argv)
    cfg = preset_config(parser, args, PRESETS, pipeline.ROLES)
    out = common.out_folder(args, NAME)
    t0 = time.time()
    tables = ["measures.csv", "classifiers.csv", "tables.md", "predictors.csv", "predictors.md"]
    records, replace = common.run_records(args, cfg, out, NAME, tables, run_one)
    measures, classifiers = summarise(records)
    for table, file in ((measures, "measures.csv"), (classifiers, "classifiers.csv")):
        with common.table_file(out / file, overwrite=replace) as tmp:
            table.to_csv(tmp, index=False)
    wall = sum(r["seconds"] for r in records)
    header = (
        f"# FairCauseSyn (arXiv 2506.19082), preset `{args.preset}`\n\n"
        f"Data sets {', '.join(cfg.datasets)}; seeds {', '.join(map(str, cfg.seeds))}; "
        f"mean ± std over seeds; compute {wall / 60:.1f} min.\n"
    )
    text = (
        header
        + "\n## Causal measures of each table\n\n"
        + "faithful_gap = max over measures |m - m_real| / |tv_real| (goal: <= 0.1); "
        + "faithful_z = max over measures |m - m_real| / sqrt(sd^2 + sd_real^2), the same "
        + "deviations in standard errors.\n\n"
        + markdown_measures(measures)
        + "\n\n## Classifiers tested on held-out real rows\n\n"
        + "Measures are those of the predicted probabilities; reduction_m = 1 - mean |m| / "
        + "mean |m of the same classifier trained on real rows| (means over seeds).\n\n"
        + markdown_classifiers(classifiers)
        + "\n"
    )
    common.write_table(out / "tables.md", text, overwrite=replace)
    predictors = summarise_predictors(records)
    with common.table_file(out / "predictors.csv", overwrite=replace) as tmp:
        predictors.to_csv(tmp, index=False)
    common.write_table(out / "predictors.md", predictors_markdown(records), overwrite=replace)
    print(text)
    print(predictors_markdown(records))
    log(f"wall time {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    common.entry_point(main)
