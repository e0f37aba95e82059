"""Train on synthetic, test on real: the utility, fairness and quality report of a synthetic table.

`evaluate_synthetic` is what `fairjax evaluate` and the experiments call. It encodes both
tables with one encoder fitted on the real data, trains a downstream classifier on the
synthetic rows, tests it on the real rows, and adds distribution-level quality measures
between the two tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from fairjax import classifiers, metrics, mmd
from fairjax.data import TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

QUALITY_MAX_ROWS = 5000  # rows per table used by the quality measures (random subsample)


def check_synthetic_frame(synthetic: pd.DataFrame, real: TabularDataset, columns: Sequence[str]):
    """Raise `FairjaxError` unless `synthetic` has `columns` and a 0/1 label like `real`."""
    if len(synthetic) == 0:
        raise FairjaxError("the synthetic table has no rows")
    label = real.schema.label
    missing = [c for c in [*columns, label] if c not in synthetic.columns]
    if missing:
        raise FairjaxError(
            f"the synthetic table lacks column(s) {missing} of the real data; "
            f"it has {list(synthetic.columns)}"
        )
    values = set(pd.unique(synthetic[label]).tolist())
    if not values <= {0, 1}:
        raise FairjaxError(
            f"label column {label!r} of the synthetic table must hold 0/1; "
            f"found {sorted(map(str, values))[:10]}"
        )
    if len(values) < 2:
        raise FairjaxError(
            f"label column {label!r} of the synthetic table holds only {values.pop()}: "
            "a classifier cannot be trained on one class"
        )


def group_fairness(y_true, y_pred, sensitive: pd.DataFrame) -> dict:
    """Fairness of predictions for each sensitive column, and across their intersection.

    For a column with two values: R_DP, R_EOp (FADM's ratios), the DP/EOp differences and
    the equalized-odds difference. With several sensitive columns, or one with more than two
    values: differential fairness of the TPR (smoothed, 200 bootstrap resamples), IF_0.5 of
    the TPR and the worst/best group TPR over the intersectional groups.

    Args:
      y_true: [n] 0/1 labels; y_pred: [n] 0/1 predictions.
      sensitive: [n, k] frame of the sensitive columns.

    Returns:
      {column name or "intersectional": {metric name: value}}.
    """
    out = {}
    for col in sensitive.columns:
        s = sensitive[col].to_numpy()
        if pd.Series(s).nunique() == 2:
            out[col] = {
                "dp_ratio": metrics.demographic_parity_ratio(y_true, y_pred, sensitive=s),
                "eop_ratio": metrics.equal_opportunity_ratio(y_true, y_pred, sensitive=s),
                "dp_difference": metrics.demographic_parity_difference(y_true, y_pred, sensitive=s),
                "eop_difference": metrics.equal_opportunity_difference(y_true, y_pred, sensitive=s),
                "eodds_difference": metrics.equalized_odds_difference(y_true, y_pred, sensitive=s),
            }
    if sensitive.shape[1] > 1 or sensitive.iloc[:, 0].nunique() > 2:
        groups = sensitive.astype(str).to_numpy()
        df = metrics.differential_fairness(y_true, y_pred, groups, rate="tpr", n_bootstrap=200)
        worst = metrics.worst_group_rate(y_true, y_pred, groups, rate="tpr")
        best = metrics.best_group_rate(y_true, y_pred, groups, rate="tpr")
        out["intersectional"] = {
            "df_tpr": df.epsilon,
            "df_tpr_ci": [df.ci_low, df.ci_high],
            "if_tpr_0.5": metrics.intersectional_fairness(y_true, y_pred, groups, rate="tpr"),
            "worst_group_tpr": worst.rate,
            "worst_group": _plain(worst.group),
            "best_group_tpr": best.rate,
            "best_group": _plain(best.group),
        }
    return out


def _plain(group):
    return [str(g) for g in group] if isinstance(group, tuple) else str(group)


def quality(key: jax.Array, real: np.ndarray, synthetic: np.ndarray) -> dict:
    """Distribution-level similarity of two encoded tables (rows subsampled to 5,000).

    Args:
      key: PRNG key.
      real: [n, d] encoded real rows; synthetic: [m, d] same encoding.

    Returns:
      dict: `mmd2` (biased, mixture of RBF kernels at 0.25-4x the median distance),
      `c2st_auc` and `c2st_balanced_accuracy` (0.5 = indistinguishable) and
      `median_dcr` (median distance of a synthetic row to its closest real row).
    """
    sub_r, sub_s, median_key, c2st_key = jax.random.split(key, 4)
    r = _subsample(sub_r, real, QUALITY_MAX_ROWS)
    s = _subsample(sub_s, synthetic, QUALITY_MAX_ROWS)
    bandwidths = mmd.median_bandwidths(jnp.asarray(r), jnp.asarray(s), key=median_key)
    mmd2 = jax.jit(mmd.mmd2_chunked, static_argnames=("chunk_size", "unbiased"))(
        jnp.asarray(r), jnp.asarray(s), bandwidths=bandwidths, chunk_size=512
    )
    c2st = metrics.classifier_two_sample_test(c2st_key, r, s)
    return {
        "mmd2": float(mmd2),
        "c2st_auc": c2st["auc"],
        "c2st_balanced_accuracy": c2st["balanced_accuracy"],
        "median_dcr": float(np.median(metrics.distance_to_closest_record(s, r))),
    }


def _subsample(key: jax.Array, x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.asarray(jax.random.choice(key, len(x), (n,), replace=False)))]


def evaluate_synthetic(
    key: jax.Array,
    real: TabularDataset,
    synthetic: pd.DataFrame,
    *,
    classifier: str = "mlp",
    features: Sequence[str] | None = None,
    with_quality: bool = True,
) -> dict:
    """Train a classifier on `synthetic`, test it on `real`; report utility, fairness, quality.

    Args:
      key: PRNG key (classifier training, quality subsampling).
      real: the real test data; its schema gives label, sensitive columns and features.
      synthetic: synthetic rows with (at least) the feature columns and the 0/1 label.
      classifier: "mlp", "logistic" or "hgb" (`fairjax.classifiers.make_classifier`).
      features: classifier inputs; default `real.schema.features` (no label, no
        sensitive or domain column).
      with_quality: also compute MMD, the classifier two-sample test and DCR.

    Returns:
      dict with "n_real", "n_synthetic", "classifier", "utility" (accuracy, balanced
      accuracy, AUC), "fairness" (see `group_fairness`) and, if asked, "quality" (see
      `quality`).
    """
    schema = real.schema
    features = list(schema.features if features is None else features)
    check_synthetic_frame(synthetic, real, features)
    # Categories may legitimately differ between the tables (a rare category absent from a
    # small test domain), so the encoder sees both; numeric scaling is fitted on both too.
    both = pd.concat([real.frame[features], synthetic[features]], ignore_index=True)
    encoder = TabularEncoder.fit(
        both,
        categorical=[c for c in features if c in schema.categorical],
        numeric=[c for c in features if c in schema.numeric],
        scaling="quantile",
    )
    x_real = encoder.encode(real.frame)
    x_syn = encoder.encode(synthetic)
    y_syn = synthetic[schema.label].to_numpy(np.int64)

    fit_key, quality_key = jax.random.split(key)
    clf = classifiers.make_classifier(classifier)
    params = clf.fit(fit_key, x_syn, y_syn)
    proba = np.asarray(clf.predict_proba(params, x_real), np.float64)
    y_pred = (proba >= 0.5).astype(np.int64)
    y_true = real.y
    report = {
        "n_real": len(real),
        "n_synthetic": len(synthetic),
        "classifier": classifier,
        "utility": {
            "accuracy": metrics.accuracy(y_true, y_pred),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred),
            "auc": metrics.roc_auc(y_true, proba),
        },
        "fairness": group_fairness(y_true, y_pred, real.frame[list(schema.sensitive)]),
    }
    if with_quality:
        with_label = np.concatenate([x_real, real.y[:, None]], axis=1)
        syn_with_label = np.concatenate([x_syn, y_syn[:, None]], axis=1).astype(np.float32)
        report["quality"] = quality(quality_key, with_label, syn_with_label)
    return report


def format_report(report: dict) -> str:
    """The report of `evaluate_synthetic` as an aligned two-column text table."""
    rows = [
        ("rows (real / synthetic)", f"{report['n_real']} / {report['n_synthetic']}"),
        ("classifier", report["classifier"]),
    ]
    rows += [(f"utility.{k}", _fmt(v)) for k, v in report["utility"].items()]
    for col, values in report["fairness"].items():
        rows += [(f"fairness[{col}].{k}", _fmt(v)) for k, v in values.items()]
    rows += [(f"quality.{k}", _fmt(v)) for k, v in report.get("quality", {}).items()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)
