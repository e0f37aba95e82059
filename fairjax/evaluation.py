"""Train on synthetic, test on real: the utility, fairness and quality report of a synthetic table.

`evaluate_synthetic` is what `fairjax evaluate` and the experiments call. It encodes both
tables with one encoder fitted on the real data, trains a downstream classifier on the
synthetic rows, tests it on the real rows, and adds distribution-level quality measures
between the two tables, the sensitive-attribute leakage of the synthetic rows
(`fairjax.metrics.sensitive_leakage`), and a real-data reference: the same classifier
trained on real rows, scored out of fold (2-fold cross-fitting on the real table), so the
synthetic rows' numbers have something to be read against.
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
    with_reference: bool = True,
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
      with_reference: also score the classifier trained on real rows (out of fold).

    Returns:
      dict with "n_real", "n_synthetic", "classifier", "utility" (accuracy, balanced
      accuracy, AUC), "fairness" (see `group_fairness`), "leakage" ({binary sensitive
      column: `sensitive_leakage` readings}) and, if asked, "reference" ({"utility",
      "fairness"} of the real-data classifier) and "quality" (see `quality`).
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

    fit_key, quality_key, leak_key, ref_key = jax.random.split(key, 4)
    clf = classifiers.make_classifier(classifier)
    params = clf.fit(fit_key, x_syn, y_syn)
    proba = np.asarray(clf.predict_proba(params, x_real), np.float64)
    sensitive = real.frame[list(schema.sensitive)]
    report = {
        "n_real": len(real),
        "n_synthetic": len(synthetic),
        "classifier": classifier,
        **_scores(real.y, proba, sensitive),
        "leakage": {
            col: metrics.sensitive_leakage(leak_key, x_real, sensitive[col].to_numpy(), x_syn)
            for col in sensitive.columns
            if sensitive[col].nunique() == 2
        },
    }
    if with_reference:
        report["reference"] = _scores(
            real.y, _out_of_fold_proba(ref_key, clf, x_real, real.y), sensitive
        )
    if with_quality:
        with_label = np.concatenate([x_real, real.y[:, None]], axis=1)
        syn_with_label = np.concatenate([x_syn, y_syn[:, None]], axis=1).astype(np.float32)
        report["quality"] = quality(quality_key, with_label, syn_with_label)
    return report


def _scores(y_true: np.ndarray, proba: np.ndarray, sensitive: pd.DataFrame) -> dict:
    """{"utility", "fairness"} of probabilities `proba` [n] thresholded at 0.5."""
    y_pred = (proba >= 0.5).astype(np.int64)
    return {
        "utility": {
            "accuracy": metrics.accuracy(y_true, y_pred),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred),
            "auc": metrics.roc_auc(y_true, proba),
        },
        "fairness": group_fairness(y_true, y_pred, sensitive),
    }


def _out_of_fold_proba(key, clf: classifiers.Classifier, x: np.ndarray, y: np.ndarray):
    """P(y = 1 | x) [n] of every row from `clf` fitted on the other half (stratified)."""
    split_key, fit_key = jax.random.split(key)
    a, b = classifiers.stratified_split(split_key, y, 0.5)
    proba = np.empty(len(y), np.float64)
    for i, (train, test) in enumerate(((a, b), (b, a))):
        params = clf.fit(jax.random.fold_in(fit_key, i), x[train], y[train])
        proba[test] = np.asarray(clf.predict_proba(params, x[test]), np.float64)
    return proba


def format_report(report: dict) -> str:
    """The report of `evaluate_synthetic` as an aligned two-column text table."""
    rows = [
        ("rows (real / synthetic)", f"{report['n_real']} / {report['n_synthetic']}"),
        ("classifier", report["classifier"]),
    ]
    sections = [("", report)]
    if "reference" in report:
        rows.append(("reference", "the classifier trained on real rows (2-fold, out of fold)"))
        sections.append(("reference.", report["reference"]))
    for prefix, part in sections:
        rows += [(f"{prefix}utility.{k}", _fmt(v)) for k, v in part["utility"].items()]
        for col, values in part["fairness"].items():
            rows += [(f"{prefix}fairness[{col}].{k}", _fmt(v)) for k, v in values.items()]
    for col, values in report.get("leakage", {}).items():
        keep = ("probe_auc", "real_confidence", "synthetic_confidence", "synthetic_confident_share")
        rows += [(f"leakage[{col}].{k}", _fmt(values[k])) for k in keep]
    rows += [(f"quality.{k}", _fmt(v)) for k, v in report.get("quality", {}).items()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)
