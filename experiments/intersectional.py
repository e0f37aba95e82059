"""Intersectional augmentation experiment (arXiv 2405.14521): Adult and COMPAS, 8 groups.

    python -m experiments.intersectional --preset quick     # COMPAS, one seed, ~3 min
    python -m experiments.intersectional --preset paper     # both data sets, 5 seeds
    python -m experiments.intersectional --preset paper --out results/intersectional --report-only

For every data set and seed: a 60/20/20 train/validation/test split stratified by
(group, label) cell; four methods, each an MLP classifier on the encoded features (the
sensitive axes are not features) with early stopping on validation balanced accuracy:

- "unconstrained": ERM, batches drawn uniformly from the real training rows;
- "equal sampling": batches of one uniformly drawn group, half positives, half negatives;
- "augmentation + ES": the training rows plus N synthetic rows per (group, label) cell
  from generators that mix the group's parents (`fairjax.intersectional`), equal sampling;
- "wrong parents + ES": the same with bit-flipped groups as sources (the authors' control).

Each method picks its configuration from a small grid (classifier learning rate 1e-3,
3e-3, 1e-2, and for the two augmentation methods also the generator parameterisation
"simple" / "per-feature" / "linear" and N: 500, 2000, 5000 on Adult, 150, 600, 1500 on
COMPAS; preset "paper-small" is the first, smaller grid) by the rule of
`augment.select_model`: validation balanced accuracy within 0.03 of the best, then the
lowest validation DF (TPR, smoothing 2, no bootstrap). The test split is only used to
report the selected configurations: balanced accuracy, DF of the TPR ((count + 2) /
(total + 4) smoothing, 1000 bootstrap resamples), IF_0.5 of the TPR, worst and best group
TPR, per-group TPR, and for the augmentation methods the per-group C2ST balanced accuracy
of the selected generator's rows against real training rows.

Outputs in --out (default runs/intersectional/PRESET/; the committed results/intersectional/
was made with `--out results/intersectional`): `{dataset}_seed{seed}.json` (every
candidate's validation scores, the selections, test metrics), `table.csv`, `table.md`
(mean and standard deviation over seeds) and `intersectional.png` (DF vs balanced
accuracy per method; per-group TPR bars). Everything is seeded: the same preset gives
the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from experiments import common
from experiments.common import log, preset_config, preset_parser
from fairjax import metrics
from fairjax.classifiers import logits_fn
from fairjax.intersectional import augment, groups, pipeline, settings

METHODS = ("unconstrained", "equal_sampling", "augmentation_es", "wrong_parents_es")
METHOD_NAMES = {
    "unconstrained": "Unconstrained MLP",
    "equal_sampling": "Equal sampling",
    "augmentation_es": "Augmentation + ES",
    "wrong_parents_es": "Wrong parents + ES",
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """What one run of the experiment does.

    Attributes:
        datasets: bundled settings to run ("adult", "compas").
        seeds: one split + training run per seed.
        generator: generator hyperparameters (parameterisation and sources are set per
            candidate).
        parameterisations: generator parameterisations in the selection grid.
        n_grid: {data set: synthetic rows per cell N} grid.
        augment_mode: "add" (N per cell) or "top-up" (cells up to N).
        lrs: classifier learning rates in the grid (every method).
        hidden, batch_size, max_epochs, patience: the MLP classifier.
        tolerance: balanced accuracy tolerance of the selection rule.
        n_bootstrap: bootstrap resamples of the test DF.
        c2st_rows: real rows per group in the per-group distinguishability test.
    """

    datasets: tuple[str, ...] = ("adult", "compas")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    generator: pipeline.IntersectionalConfig = pipeline.PRESETS["paper"]
    parameterisations: tuple[str, ...] = ("simple", "per-feature", "linear")
    n_grid: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("adult", (500, 2000, 5000)),
        ("compas", (150, 600, 1500)),
    )
    augment_mode: str = "add"
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    hidden: tuple[int, ...] = (64, 64)
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 5
    tolerance: float = 0.03
    n_bootstrap: int = 1000
    c2st_rows: int = 1000


NAME = "intersectional"
PRESETS = {
    # About 2-3 minutes on 2 CPU cores.
    "quick": ExperimentConfig(
        datasets=("compas",),
        seeds=(0,),
        generator=pipeline.PRESETS["quick"],
        parameterisations=("simple",),
        n_grid=(("compas", (300,)), ("adult", (1000,))),
        lrs=(3e-3,),
        max_epochs=15,
        patience=3,
        n_bootstrap=200,
        c2st_rows=200,
    ),
    # 60/20/20 splits, 5 seeds, both data sets, the full grid: ~30 min on 2 shared cores.
    "paper": ExperimentConfig(),
    # The first paper run: a smaller grid (simple generator only, 2 N, 2 learning rates).
    "paper-small": ExperimentConfig(
        parameterisations=("simple",),
        n_grid=(("adult", (500, 2000)), ("compas", (150, 600))),
        lrs=(1e-3, 3e-3),
    ),
}


def fairness(y, pred, g, num_groups, *, n_bootstrap, seed) -> dict:
    """Test-style fairness metrics of predictions over groups 0..G-1."""
    values = np.arange(num_groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty-group warnings are reported as nan
        df = metrics.differential_fairness(
            y,
            pred,
            g,
            rate="tpr",
            alpha=2.0,
            n_bootstrap=n_bootstrap,
            seed=seed,
            group_values=values,
        )
        rates = metrics.group_rates(y, pred, g, group_values=values)
        out = {
            "balanced_accuracy": metrics.balanced_accuracy(y, pred),
            "accuracy": metrics.accuracy(y, pred),
            "df_tpr": df.epsilon,
            "df_tpr_bootstrap_mean": df.bootstrap_mean,
            "df_tpr_ci": [df.ci_low, df.ci_high],
            "if_tpr_0.5": metrics.intersectional_fairness(
                y, pred, g, rate="tpr", alpha=0.5, group_values=values
            ),
            "worst_group_tpr": float(np.nanmin(rates.tpr)),
            "worst_group": int(np.nanargmin(rates.tpr)),
            "best_group_tpr": float(np.nanmax(rates.tpr)),
            "best_group": int(np.nanargmax(rates.tpr)),
            "group_tpr": rates.tpr.tolist(),
            "group_positives": rates.positives.tolist(),
        }
    return out


def _validation_df(y, pred, g, num_groups) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metrics.differential_fairness(
            y, pred, g, rate="tpr", alpha=2.0, n_bootstrap=0, group_values=np.arange(num_groups)
        ).epsilon


def run_one(name: str, seed: int, cfg: ExperimentConfig) -> dict:
    """Every method on one data set and seed; returns the JSON-ready record."""
    t0 = time.time()
    key = jax.random.key(seed)
    split_key, gen_key, clf_key, c2st_key = jax.random.split(key, 4)
    data = settings.load_setting(name)
    axes = settings.resolve_axes(data)
    num_groups = 2 ** len(axes)
    g_all = settings.group_of_rows(data.frame, axes)
    y_all = data.y
    train, val, test = settings.split_cells(split_key, 2 * g_all + y_all, (0.6, 0.2, 0.2))
    train_ds = data.select(train)

    # generators: one per (sources, parameterisation); all share the train-split encoder
    models = {}
    for sources in ("parents", "flipped"):
        for p in cfg.parameterisations:
            gcfg = dataclasses.replace(cfg.generator, sources=sources, parameterisation=p)
            t = time.time()
            models[sources, p] = pipeline.fit(gen_key, train_ds, config=gcfg, progress=False)
            log(
                f"  [{name} seed {seed}] generator {sources}/{p}: {time.time() - t:.0f}s, "
                f"best step {models[sources, p].history['best_step']}"
            )
    encoder = next(iter(models.values())).encoder
    # the encoder knows the training split's categories only: drop the (very few) held-out
    # rows with a category never seen in training (Adult: 'Holand-Netherlands', 1 row)
    val, test, dropped = seen_rows(encoder, data.frame, train_ds.frame, val, test)
    x_val = encoder.encode(data.frame.iloc[val])
    x_test = encoder.encode(data.frame.iloc[test])
    y_val, y_test = y_all[val], y_all[test]
    g_val, g_test = g_all[val], g_all[test]
    real_rows = groups.group_rows(
        encoder.encode(train_ds.frame), g_all[train], y_all[train], num_groups
    )
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    n_grid = dict(cfg.n_grid)[name]

    # candidate training sets per method
    candidates = {m: [] for m in METHODS}
    for lr in cfg.lrs:
        candidates["unconstrained"].append(({"lr": lr}, "uniform", real_rows))
        candidates["equal_sampling"].append(({"lr": lr}, "equal", real_rows))
    for method, sources in (("augmentation_es", "parents"), ("wrong_parents_es", "flipped")):
        for p in cfg.parameterisations:
            for n in n_grid:
                aug_key = jax.random.fold_in(gen_key, n)
                rows = pipeline.augmented_rows(
                    aug_key, models[sources, p], n, mode=cfg.augment_mode
                )
                for lr in cfg.lrs:
                    spec = {"lr": lr, "parameterisation": p, "n": n}
                    candidates[method].append((spec, "equal", rows))

    record = {
        "dataset": name,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "n_dropped_unseen_category": dropped,
        "groups": [],
        "methods": {},
    }
    ref = models["parents", cfg.parameterisations[0]]
    record["groups"] = [list(ref.group_label(g)) for g in range(num_groups)]
    record["axes"] = settings.format_axes(axes)
    for method in METHODS:
        rows_out, preds = [], []
        for i, (spec, sampling, rows) in enumerate(candidates[method]):
            trainer = augment.make_classifier_trainer(
                sampling=sampling,
                hidden=cfg.hidden,
                lr=spec["lr"],
                batch_size=cfg.batch_size,
                max_epochs=cfg.max_epochs,
                patience=cfg.patience,
                steps_per_epoch=steps_per_epoch,
            )
            fit = trainer(jax.random.fold_in(clf_key, i), rows, x_val, y_val)
            pv = predict(fit.params, x_val)
            val_ba = metrics.balanced_accuracy(y_val, pv)
            val_df = _validation_df(y_val, pv, g_val, num_groups)
            rows_out.append(
                {
                    **spec,
                    "val_balanced_accuracy": val_ba,
                    "val_df_tpr": val_df,
                    "best_epoch": fit.best_epoch,
                }
            )
            preds.append(predict(fit.params, x_test))
        chosen = augment.select_model(
            [r["val_balanced_accuracy"] for r in rows_out],
            [r["val_df_tpr"] for r in rows_out],
            tolerance=cfg.tolerance,
        )
        result = {
            "candidates": rows_out,
            "selected": chosen,
            "test": fairness(
                y_test, preds[chosen], g_test, num_groups, n_bootstrap=cfg.n_bootstrap, seed=seed
            ),
        }
        if method in ("augmentation_es", "wrong_parents_es"):
            sources = "parents" if method == "augmentation_es" else "flipped"
            model = models[sources, rows_out[chosen]["parameterisation"]]
            result["group_c2st_balanced_accuracy"] = pipeline.group_distinguishability(
                c2st_key, model, max_rows=cfg.c2st_rows
            ).tolist()
            result["generator_history"] = model.history
            result["generator_params"] = jax.tree.map(
                lambda a: np.asarray(a).round(4).tolist(), model.params
            )
        record["methods"][method] = result
        t = result["test"]
        log(
            f"  [{name} seed {seed}] {method:17s} BA {t['balanced_accuracy']:.3f} "
            f"DF {t['df_tpr']:.3f} worst TPR {t['worst_group_tpr']:.3f} "
            f"(selected {rows_out[chosen]})"
        )
    record["seconds"] = time.time() - t0
    return record


def seen_rows(encoder, frame, train_frame, *parts):
    """Drop rows of each index array in `parts` with a category absent from training."""
    ok = np.ones(len(frame), bool)
    for codec in encoder.codecs:
        if codec.kind == "categorical":
            ok &= frame[codec.name].isin(set(train_frame[codec.name])).to_numpy()
    kept = [p[ok[p]] for p in parts]
    return (*kept, int(sum(len(p) - len(k) for p, k in zip(parts, kept, strict=True))))


_predict_jit = jax.jit(lambda params, x: logits_fn(params, x) >= 0.0)


def predict(params, x) -> np.ndarray:
    """0/1 predictions of the MLP `params` on encoded rows x [m, d]."""
    return np.asarray(_predict_jit(params, x)).astype(np.int64)


# ------------------------------------------------------------------------------ reporting

COLUMNS = (
    ("balanced_accuracy", "BA"),
    ("df_tpr", "DF (TPR)"),
    ("df_tpr_bootstrap_mean", "DF bootstrap mean"),
    ("if_tpr_0.5", "IF_0.5 (TPR)"),
    ("worst_group_tpr", "worst-group TPR"),
    ("best_group_tpr", "best-group TPR"),
)


def summarise(records: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of the test metrics, per data set and method."""
    rows = []
    for r in records:
        for method, res in r["methods"].items():
            row = {"dataset": r["dataset"], "seed": r["seed"], "method": method}
            row.update({k: res["test"][k] for k, _ in COLUMNS})
            c2st = res.get("group_c2st_balanced_accuracy")
            row["mean_group_c2st_ba"] = float(np.nanmean(c2st)) if c2st else np.nan
            rows.append(row)
    long = pd.DataFrame(rows)
    metrics_cols = [k for k, _ in COLUMNS] + ["mean_group_c2st_ba"]
    agg = long.groupby(["dataset", "method"], sort=False)[metrics_cols].agg(["mean", "std"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    agg = agg.reset_index()
    agg["seeds"] = long.groupby(["dataset", "method"], sort=False).size().to_numpy()
    base = agg[agg.method == "unconstrained"].set_index("dataset")
    recs = agg.to_dict("records")
    agg["df_change_vs_unconstrained_pct"] = [
        100.0 * (r["df_tpr_mean"] / base.loc[r["dataset"], "df_tpr_mean"] - 1.0) for r in recs
    ]
    agg["ba_change_vs_unconstrained_pts"] = [
        100.0 * (r["balanced_accuracy_mean"] - base.loc[r["dataset"], "balanced_accuracy_mean"])
        for r in recs
    ]
    return agg


def markdown(agg: pd.DataFrame, header: str) -> str:
    """The summary as a markdown table (mean ± std over seeds)."""
    lines = [header, ""]
    cols = [*COLUMNS, ("mean_group_c2st_ba", "mean group C2ST BA")]
    head = ["data set", "method", *[c for _, c in cols], "DF vs MLP", "BA vs MLP (pts)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in agg.to_dict("records"):
        cells = [r["dataset"], METHOD_NAMES.get(r["method"], r["method"])]
        for k, _ in cols:
            m, s = r[f"{k}_mean"], r[f"{k}_std"]
            cells.append("-" if np.isnan(m) else f"{m:.3f} ± {0.0 if np.isnan(s) else s:.3f}")
        cells.append(f"{r['df_change_vs_unconstrained_pct']:+.1f}%")
        cells.append(f"{r['ba_change_vs_unconstrained_pts']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _short(label: str) -> str:
    return label.replace("African-American", "AA")


def plot(records: list[dict], agg: pd.DataFrame, path: Path) -> None:
    """DF vs balanced accuracy per method, and per-group TPR bars, one row per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in records))
    fig, axes = plt.subplots(len(names), 2, figsize=(13, 4.2 * len(names)), squeeze=False)
    colors = dict(zip(METHODS, ("tab:gray", "tab:blue", "tab:green", "tab:red"), strict=True))
    for row, name in enumerate(names):
        ax = axes[row, 0]
        for r in agg[agg.dataset == name].to_dict("records"):
            ax.errorbar(
                r["balanced_accuracy_mean"],
                r["df_tpr_mean"],
                xerr=np.nan_to_num(r["balanced_accuracy_std"]),
                yerr=np.nan_to_num(r["df_tpr_std"]),
                fmt="o",
                capsize=3,
                color=colors[r["method"]],
                label=METHOD_NAMES[r["method"]],
            )
        ax.set_xlabel("test balanced accuracy")
        ax.set_ylabel("test DF of the TPR (lower is fairer)")
        ax.set_title(f"{name}: mean ± std over seeds")
        ax.legend(fontsize=8)
        ax = axes[row, 1]
        recs = [r for r in records if r["dataset"] == name]
        labels = ["/".join(_short(v) for v in lbl) for lbl in recs[0]["groups"]]
        width = 0.2
        for j, method in enumerate(METHODS):
            tpr = np.nanmean([r["methods"][method]["test"]["group_tpr"] for r in recs], axis=0)
            ax.bar(
                np.arange(len(labels)) + (j - 1.5) * width,
                tpr,
                width,
                color=colors[method],
                label=METHOD_NAMES[method],
            )
        ax.set_xticks(np.arange(len(labels)), labels, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("test TPR")
        ax.set_ylim(0, 1.18)
        ax.set_title(f"{name}: per-group TPR (mean over seeds)")
        ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    """Run a preset; write JSON records, table.csv, table.md and the plot to --out
    (default runs/intersectional/PRESET)."""
    parser = preset_parser("experiments.intersectional", __doc__, PRESETS, NAME)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    cfg = preset_config(parser, args, PRESETS, settings.SETTINGS)
    out = common.out_folder(args, NAME)
    t0 = time.time()
    tables = ["table.csv", "table.md"] + ([] if args.no_plot else ["intersectional.png"])
    records, replace = common.run_records(args, cfg, out, NAME, tables, run_one)
    agg = summarise(records)
    with common.table_file(out / "table.csv", overwrite=replace) as tmp:
        agg.to_csv(tmp, index=False)
    wall = sum(r["seconds"] for r in records) if args.report_only else time.time() - t0
    header = (
        f"# Intersectional augmentation (arXiv 2405.14521), preset `{args.preset}`\n\n"
        f"Data sets {', '.join(cfg.datasets)}; seeds {', '.join(map(str, cfg.seeds))}; "
        f"test-split metrics of the configuration each method selected on validation; "
        f"wall time {wall / 60:.1f} min.\n"
        "DF: differential fairness of the TPR, smoothing (count+2)/(total+4); "
        "IF_0.5: fairjax's IF_alpha of the TPR; C2ST BA: per-group balanced accuracy of "
        "real-vs-generated classifiers (0.5 = indistinguishable)."
    )
    common.write_table(out / "table.md", markdown(agg, header), overwrite=replace)
    if not args.no_plot:
        with common.table_file(out / "intersectional.png", overwrite=replace) as tmp:
            plot(records, agg, tmp)
    print((out / "table.md").read_text())
    log(f"wall time {wall:.0f}s")
    return 0


if __name__ == "__main__":
    common.entry_point(main)
