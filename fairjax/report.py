"""One report of what a synthetic table does: utility, fairness, leakage, fidelity, privacy.

`build(key, real, synthetic, ...)` judges any generator's rows (fairjax's, CTGAN's, an
LLM's) against the real data they imitate, and `write(report, out)` renders it as
`report.md`, a self-contained `report.html` (plots embedded as base64 PNG, viewable
offline) and `report.json`. `fairjax report` is the command line for both.

Design: every number comes from `fairjax.metrics`, `fairjax.classifiers` and
`fairjax.evaluation.quality`; this module only arranges the experiment (which rows train,
which rows test, the paired bootstrap) and renders it.

- Rows. REAL is what the generator was trained on; HOLDOUT are real rows it never saw.
  Without a holdout, a stratified (by label) share of REAL is held out, and REAL is what
  remains; the report then warns that the generator may have seen the holdout rows.
- Utility: each classifier is trained on the synthetic rows (TSTR) and on the real rows
  (TRTR) and tested on the holdout.
- Fairness: for every sensitive column and their intersection, the holdout predictions'
  group rates, demographic parity / equal opportunity / equalized odds ratios and
  differences, differential fairness and IF_0.5 of the TPR, and the worst group. The
  intervals are percentile intervals of a paired bootstrap over holdout rows (the same
  resample for TSTR, TRTR and their difference).
- Leakage and proxies: `fairjax.metrics.sensitive_leakage` (a probe trained on real rows,
  reading synthetic rows), and a scan of every real feature for how well it alone
  predicts each sensitive attribute (cross-fitted AUC); AUC >= 0.9 is flagged as a proxy.
- Fidelity: per-column marginals (plots), Cramér's V of every column pair in both tables
  and their difference (heatmap), the classifier two-sample test and MMD.
- Privacy: DCR share closer to the training rows than to the holdout
  (`fairjax.metrics.dcr_summary`) and a distance-based membership-inference attack.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from fairjax import classifiers, metrics
from fairjax.data import TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError
from fairjax.evaluation import QUALITY_MAX_ROWS, quality

CLASSIFIERS = ("logistic", "mlp", "hgb")
PROXY_AUC = 0.9  # a feature predicting a sensitive attribute this well on its own is a proxy
PROXY_BINS = 10  # quantile bins of a numeric feature in the proxy scan and Cramér's V
MAX_BARS = 12  # categories shown per bar chart (the rest are summed as "other")
# name -> (higher is fairer?) for the fairness measures; used for the sign of "improvement"
FAIRNESS_MEASURES = {
    "dp_ratio": True,
    "dp_difference": False,
    "eop_ratio": True,
    "eop_difference": False,
    "eodds_ratio": True,
    "eodds_difference": False,
    "df_tpr": False,
    "if_tpr_0.5": False,
    "worst_group_tpr": True,
    "worst_group_selection": True,
}
FILES = ("report.md", "report.html", "report.json")


# --------------------------------------------------------------------------- inputs


def conform(frame: pd.DataFrame, real: TabularDataset, what: str) -> pd.DataFrame:
    """`frame` with `real`'s columns in `real`'s dtypes, or a FairjaxError naming the problem.

    Column order does not matter; extra columns are dropped. The label may be 0/1 or the
    real schema's `label_names`; float values in an integer column (a generator's output)
    are rounded. Sensitive columns may be missing from a synthetic table (`what` =
    "synthetic"): several generators, FADM's among them, do not generate them.
    """
    schema = real.schema
    optional = set(schema.sensitive) | {schema.domain} if what == "synthetic" else set()
    missing = [c for c in schema.columns if c not in frame.columns and c not in optional]
    if missing:
        raise FairjaxError(
            f"the {what} table lacks column(s) {missing} of the real data; "
            f"it has {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise FairjaxError(f"the {what} table has no rows")
    out = frame[[c for c in schema.columns if c in frame.columns]].copy()
    label = out[schema.label]
    names = {str(n): i for i, n in enumerate(schema.label_names)}
    text = label.astype(str).str.strip()
    if not pd.api.types.is_numeric_dtype(label) and set(text) <= set(names):
        out[schema.label] = text.map(names)
    values = set(pd.unique(out[schema.label]).tolist())
    if not values <= {0, 1}:
        raise FairjaxError(
            f"label column {schema.label!r} of the {what} table must hold 0/1 or "
            f"{list(schema.label_names)}; found {sorted(map(str, values))[:10]}"
        )
    if len(values) < 2:
        raise FairjaxError(
            f"label column {schema.label!r} of the {what} table holds only {values.pop()}: "
            "a classifier cannot be trained or tested on one class"
        )
    for col in out.columns:
        want = real.frame[col]
        if pd.api.types.is_integer_dtype(want) and out[col].dtype.kind == "f":
            out[col] = out[col].round()
        if col in schema.numeric:
            if not pd.api.types.is_numeric_dtype(out[col]):
                raise FairjaxError(
                    f"numeric column {col!r} of the {what} table holds non-numbers, e.g. "
                    f"{out[col].iloc[0]!r}"
                )
        elif pd.api.types.is_integer_dtype(want) or pd.api.types.is_float_dtype(want):
            out[col] = pd.to_numeric(out[col], errors="coerce")
        else:
            out[col] = out[col].astype(str).str.strip()
        if out[col].isna().any():
            raise FairjaxError(
                f"column {col!r} of the {what} table has {int(out[col].isna().sum())} "
                "missing or unparsable value(s)"
            )
        if pd.api.types.is_integer_dtype(want):
            out[col] = out[col].astype(want.dtype)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------- the report


def prepare(
    key: jax.Array,
    real: TabularDataset,
    synthetic: pd.DataFrame,
    *,
    holdout: pd.DataFrame | None = None,
    holdout_fraction: float = 0.3,
) -> tuple[TabularDataset, TabularDataset, pd.DataFrame, list[str]]:
    """The rows of a report: (train, holdout, synthetic conformed to `real`, notes).

    Without `holdout`, a stratified (by label) `holdout_fraction` of `real` is held out with
    `key`, and a note says so.
    """
    schema = real.schema
    notes = []
    syn = conform(synthetic, real, "synthetic")
    if holdout is None:
        if not 0.0 < holdout_fraction < 1.0:
            raise FairjaxError(f"holdout_fraction must lie in (0, 1); got {holdout_fraction!r}")
        rest, held = classifiers.stratified_split(key, real.y, holdout_fraction)
        train, test = real.select(rest), real.select(held)
        notes.append(
            f"No holdout was given: {len(held)} rows ({holdout_fraction:.0%} per label value) "
            "of the real table were held out at random. If the generator was trained on all "
            "of the real table, it has seen these rows: utility is then optimistic and the "
            "privacy section compares members with members (pass --holdout to avoid this)."
        )
    else:
        train = real
        test = dataclasses.replace(real, frame=conform(holdout, real, "holdout"))
    features = list(schema.features)
    if not features:
        raise FairjaxError("the real data have no feature columns besides label/sensitive")

    return train, test, syn, notes


def build(
    key: jax.Array,
    real: TabularDataset,
    synthetic: pd.DataFrame,
    *,
    holdout: pd.DataFrame | None = None,
    holdout_fraction: float = 0.3,
    classifier_names: Sequence[str] = CLASSIFIERS,
    classifier_options: Mapping[str, Mapping[str, Any]] | None = None,
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """The report of `synthetic` against `real`, as a JSON-ready dict.

    Args:
      key: PRNG key (holdout split, classifier training, bootstrap, subsampling).
      real: the real rows the generator was trained on, with their schema (label,
        sensitive columns, categorical / numeric); `schema.features` are the classifiers'
        inputs.
      synthetic: the generated rows; any column order, label 0/1 (or the label's names).
      holdout: real rows the generator never saw, same columns; default: a stratified
        `holdout_fraction` of `real` (then the report says so).
      holdout_fraction: share of `real` (per label value) held out when `holdout` is None.
      classifier_names: downstream classifiers (`fairjax.classifiers.CLASSIFIERS`).
      classifier_options: {name: keyword arguments of `make_classifier(name, ...)`}, e.g.
        `{"hgb": {"n_threads": 1}}`.
      n_bootstrap: paired bootstrap resamples of the holdout for the intervals (0: none).

    Returns:
      dict with "data", "utility", "fairness", "leakage", "fidelity", "privacy" and
      "warnings"; the plots are under "_figures" (PNG bytes, not JSON) for `write`.
    """
    schema = real.schema
    classifier_names = list(classifier_names)
    unknown = [c for c in classifier_names if c not in classifiers.CLASSIFIERS]
    if not classifier_names or unknown:
        raise FairjaxError(
            f"classifiers {classifier_names}: unknown {unknown}; choose one or more of "
            f"{sorted(classifiers.CLASSIFIERS)}"
        )
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise FairjaxError(f"n_bootstrap must be a non-negative integer; got {n_bootstrap!r}")
    split_key, clf_key, boot_key, leak_key, fid_key, priv_key = jax.random.split(key, 6)
    train, test, syn, notes = prepare(
        split_key, real, synthetic, holdout=holdout, holdout_fraction=holdout_fraction
    )
    features = list(schema.features)

    # One encoder for every table: categories may differ between them (a rare category).
    both = pd.concat([train.frame[features], test.frame[features], syn[features]])
    encoder = TabularEncoder.fit(
        both,
        categorical=[c for c in features if c in schema.categorical],
        numeric=[c for c in features if c in schema.numeric],
        scaling="quantile",
    )
    x_train, x_test, x_syn = (encoder.encode(t) for t in (train.frame, test.frame, syn))
    y_train, y_test = train.y, test.y
    y_syn = syn[schema.label].to_numpy(np.int64)

    utility, predictions = {}, {}
    for i, name in enumerate(classifier_names):
        clf = classifiers.make_classifier(name, **(classifier_options or {}).get(name, {}))
        k_syn, k_real = jax.random.split(jax.random.fold_in(clf_key, i))
        entry = {}
        for source, k, x, y in (("tstr", k_syn, x_syn, y_syn), ("trtr", k_real, x_train, y_train)):
            params = clf.fit(k, x, y)
            proba = np.asarray(clf.predict_proba(params, x_test), np.float64)
            predictions[name, source] = (proba >= 0.5).astype(np.int64)
            entry[source] = {
                "accuracy": metrics.accuracy(y_test, predictions[name, source]),
                "balanced_accuracy": metrics.balanced_accuracy(y_test, predictions[name, source]),
                "auc": metrics.roc_auc(y_test, proba),
            }
        utility[name] = entry

    groupings = _groupings(test.frame, schema.sensitive)
    fairness = {
        name: _fairness(
            jax.random.fold_in(boot_key, i),
            y_test,
            predictions[name, "tstr"],
            predictions[name, "trtr"],
            groupings,
            n_bootstrap,
        )
        for i, name in enumerate(classifier_names)
    }

    leakage = _leakage(leak_key, train, x_train, x_syn)
    for proxy in leakage["proxies"]:
        if proxy["auc"] >= PROXY_AUC:
            notes.append(
                f"Proxy: feature {proxy['feature']!r} alone predicts sensitive attribute "
                f"{proxy['sensitive']!r}{_target_text(proxy)} with AUC {proxy['auc']:.3f} "
                f"(>= {PROXY_AUC}); a classifier without {proxy['sensitive']!r} still sees it."
            )

    fid_cols = [c for c in schema.columns if c in syn.columns and c != schema.domain]
    figures = {
        "marginals": _marginals_png(train.frame, syn, fid_cols, schema),
    }
    association = _association(train.frame, syn, fid_cols, schema)
    figures["association"] = _heatmap_png(association["columns"], association["difference"])
    q_real = _with_label(x_train, y_train)
    q_syn = _with_label(x_syn, y_syn)
    fidelity = {
        **quality(fid_key, q_real, q_syn),
        "max_rows_per_table": QUALITY_MAX_ROWS,
        "marginals": _marginal_distances(train.frame, syn, fid_cols, schema),
        "association": association,
    }
    privacy = _privacy(priv_key, q_real, _with_label(x_test, y_test), q_syn)

    return {
        "data": {
            "name": real.name,
            "label": schema.label,
            "sensitive": list(schema.sensitive),
            "features": features,
            "n_real_train": len(train),
            "n_holdout": len(test),
            "n_synthetic": len(syn),
            "holdout": "given" if holdout is not None else f"split {holdout_fraction}",
            "synthetic_lacks": [c for c in schema.columns if c not in syn.columns],
            "classifiers": list(classifier_names),
            "n_bootstrap": n_bootstrap,
        },
        "utility": utility,
        "fairness": fairness,
        "leakage": leakage,
        "fidelity": fidelity,
        "privacy": privacy,
        "warnings": notes,
        "_figures": figures,
    }


def _with_label(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([x, y[:, None].astype(np.float32)], axis=1)


def _target_text(proxy: dict) -> str:
    return "" if proxy.get("value") is None else f" (= {proxy['value']!r} vs rest)"


# ------------------------------------------------------------------------- fairness


def _groupings(frame: pd.DataFrame, sensitive: Sequence[str]) -> dict[str, np.ndarray]:
    """{name: [n] group labels}: each sensitive column, and their intersection if > 1."""
    out = {c: frame[c].astype(str).to_numpy() for c in sensitive}
    if len(sensitive) > 1:
        joined = frame[list(sensitive)].astype(str).agg(" | ".join, axis=1)
        out[" x ".join(sensitive)] = joined.to_numpy()
    return out


def _has_rows(y_true: np.ndarray, groups: np.ndarray, label: int | None) -> np.ndarray:
    """[n] mask of rows whose group has a row with y_true == label (both labels if None)."""
    if label is None:
        return _has_rows(y_true, groups, 0) & _has_rows(y_true, groups, 1)
    return np.isin(groups, np.unique(groups[y_true == label]))


def _gap(y_true, y_pred, groups, rate: str) -> tuple[float, float]:
    """(worst / best ratio, max - min) of a rate over the groups present; nan if < 2 groups.

    rate "selection", "tpr" or "odds" (equalized odds: the worse of TPR and FPR). Two
    groups: `fairjax.metrics`' binary functions (fairlearn's definitions); more: the same
    quantities over all groups from `metrics.group_rates` / `metrics.worst_best_ratio`.
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return math.nan, math.nan
    if n_groups == 2:
        ratio, diff = {
            "selection": (metrics.demographic_parity_ratio, metrics.demographic_parity_difference),
            "tpr": (metrics.equal_opportunity_ratio, metrics.equal_opportunity_difference),
            "odds": (metrics.equalized_odds_ratio, metrics.equalized_odds_difference),
        }[rate]
        return ratio(y_true, y_pred, sensitive=groups), diff(y_true, y_pred, sensitive=groups)
    rates = metrics.group_rates(y_true, y_pred, groups)
    spread = lambda r: float(np.max(r) - np.min(r))
    ratio = lambda r: metrics.worst_best_ratio(y_true, y_pred, groups, rate=r)
    if rate == "odds":
        return min(ratio("tpr"), ratio("fpr")), max(spread(rates.tpr), spread(rates.fpr))
    return ratio(rate), spread(rates.selection_rate if rate == "selection" else rates.tpr)


def fairness_measures(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict:
    """The scalar fairness measures of predictions over one grouping (see FAIRNESS_MEASURES).

    A group without positive rows has no TPR (and one without negatives no FPR); such
    groups are left out of the measures that need that rate rather than making them
    undefined (`tpr_undefined_groups` in the report names them). DF uses the (count + 2) /
    (total + 4) smoothing of arXiv 2405.14521; every other rate is empirical.
    """
    pos = _has_rows(y_true, groups, 1)
    both = _has_rows(y_true, groups, None)
    t, p, g = y_true[pos], y_pred[pos], groups[pos]
    out = {}
    out["dp_ratio"], out["dp_difference"] = _gap(y_true, y_pred, groups, "selection")
    out["eop_ratio"], out["eop_difference"] = _gap(t, p, g, "tpr")
    out["eodds_ratio"], out["eodds_difference"] = _gap(
        y_true[both], y_pred[both], groups[both], "odds"
    )
    if len(np.unique(g)) >= 2:
        out["df_tpr"] = metrics.differential_fairness(t, p, g, rate="tpr", n_bootstrap=0).epsilon
        out["if_tpr_0.5"] = metrics.intersectional_fairness(t, p, g, rate="tpr")
    else:
        out["df_tpr"] = out["if_tpr_0.5"] = math.nan
    out["worst_group_tpr"] = (
        metrics.worst_group_rate(t, p, g, rate="tpr").rate if len(g) else math.nan
    )
    out["worst_group_selection"] = metrics.worst_group_rate(
        y_true, y_pred, groups, rate="selection"
    ).rate
    return {k: float(v) for k, v in out.items()}


def _improvement(tstr: float, trtr: float, higher_is_fairer: bool) -> float:
    """Positive = the classifier trained on synthetic rows is fairer than the real-data one."""
    return tstr - trtr if higher_is_fairer else trtr - tstr


def _fairness(key, y_true, pred_syn, pred_real, groupings, n_bootstrap) -> dict:
    """Per grouping: group rates and measures for TSTR, TRTR and their improvement."""
    out = {}
    n = len(y_true)
    resamples = np.asarray(jax.random.randint(key, (n_bootstrap, n), 0, n)) if n_bootstrap else []
    for gname, groups in groupings.items():
        point = {
            "tstr": fairness_measures(y_true, pred_syn, groups),
            "trtr": fairness_measures(y_true, pred_real, groups),
        }
        point["improvement"] = {
            m: _improvement(point["tstr"][m], point["trtr"][m], hi)
            for m, hi in FAIRNESS_MEASURES.items()
        }
        boot = {s: {m: [] for m in FAIRNESS_MEASURES} for s in ("tstr", "trtr", "improvement")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined rates in a resample are nan
            for idx in resamples:
                if len(np.unique(groups[idx])) < 2:
                    continue
                a = _safe_measures(y_true[idx], pred_syn[idx], groups[idx])
                b = _safe_measures(y_true[idx], pred_real[idx], groups[idx])
                for m, hi in FAIRNESS_MEASURES.items():
                    boot["tstr"][m].append(a[m])
                    boot["trtr"][m].append(b[m])
                    boot["improvement"][m].append(_improvement(a[m], b[m], hi))
        out[gname] = {
            s: {m: {"value": point[s][m], "ci": _interval(boot[s][m])} for m in FAIRNESS_MEASURES}
            for s in ("tstr", "trtr", "improvement")
        }
        out[gname]["groups"] = {
            "tstr": _group_table(y_true, pred_syn, groups),
            "trtr": _group_table(y_true, pred_real, groups),
        }
        pos = _has_rows(y_true, groups, 1)
        out[gname]["worst_group"] = {
            s: _plain(metrics.worst_group_rate(y_true[pos], p[pos], groups[pos], rate="tpr").group)
            for s, p in (("tstr", pred_syn), ("trtr", pred_real))
        }
        out[gname]["tpr_undefined_groups"] = sorted(set(groups[~pos].tolist()))
    return out


def _safe_measures(y_true, y_pred, groups) -> dict:
    """`fairness_measures`, with nan for every measure a degenerate resample cannot define."""
    try:
        return fairness_measures(y_true, y_pred, groups)
    except FairjaxError:
        return dict.fromkeys(FAIRNESS_MEASURES, math.nan)


def _interval(values: list[float], level: float = 0.95) -> list[float] | None:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return None
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]


def _group_table(y_true, y_pred, groups) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty TPR / FPR is nan (shown as "–")
        r = metrics.group_rates(y_true, y_pred, groups)
    return [
        {
            "group": _plain(r.groups[i]),
            "n": int(r.count[i]),
            "positives": int(r.positives[i]),
            "selection_rate": float(r.selection_rate[i]),
            "tpr": float(r.tpr[i]),
            "fpr": float(r.fpr[i]),
        }
        for i in range(len(r.count))
    ]


def _plain(value):
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------- leakage and proxies


def _binary_targets(s: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """[(value or None, [n] 0/1)]: the column itself if binary, else each value vs the rest."""
    values = np.unique(s)
    if len(values) == 2:
        return [(None, (s == values[1]).astype(np.int64))]
    return [(_plain(v), (s == v).astype(np.int64)) for v in values]


def proxy_scan(key: jax.Array, frame: pd.DataFrame, features, sensitive, numeric) -> list[dict]:
    """How well each feature alone predicts each sensitive attribute: cross-fitted AUC.

    A feature's score for a row is the share of rows with the attribute among the rows
    with the same value (numeric features: the same of `PROXY_BINS` quantile bins),
    computed on the other half of the rows (two folds, stratified by the attribute), so a
    column that merely identifies rows scores 0.5, not 1. A binary attribute is one
    target; a multi-valued one gives one target per value (that value vs the rest).

    Returns:
      [{"feature", "sensitive", "value" (None for a binary attribute), "auc"}], highest
      AUC first.
    """
    out = []
    for j, s_name in enumerate(sensitive):
        s = frame[s_name].astype(str).to_numpy()
        for value, target in _binary_targets(s):
            fold_a, fold_b = classifiers.stratified_split(jax.random.fold_in(key, j), target, 0.5)
            for f in features:
                codes = _codes(frame[f], numeric=f in numeric)
                score = np.empty(len(target))
                for fit_idx, apply_idx in ((fold_a, fold_b), (fold_b, fold_a)):
                    rates = pd.Series(target[fit_idx]).groupby(codes[fit_idx]).mean()
                    prior = float(target[fit_idx].mean())
                    score[apply_idx] = pd.Series(codes[apply_idx]).map(rates).fillna(prior)
                auc = metrics.roc_auc(target, score)
                out.append({"feature": f, "sensitive": s_name, "value": value, "auc": auc})
    return sorted(out, key=lambda r: -r["auc"])


def _codes(col: pd.Series, *, numeric: bool, edges: np.ndarray | None = None) -> np.ndarray:
    """Integer codes of a column: categories, or quantile bins of a numeric column."""
    if numeric:
        x = col.to_numpy(np.float64)
        if edges is None:
            edges = _bin_edges(x)
        # side="left": a value equal to an edge joins the bin below, so a tied mass (the
        # zeros of a capital-gain column) is split from the values above it
        return np.searchsorted(edges, x, side="left")
    return pd.factorize(col.astype(str), sort=True)[0]


def _bin_edges(x: np.ndarray) -> np.ndarray:
    return np.unique(np.quantile(x, np.linspace(0, 1, PROXY_BINS + 1)[1:-1]))


def _leakage(key, train: TabularDataset, x_train, x_syn) -> dict:
    schema = train.schema
    probe_key, scan_key = jax.random.split(key)
    probes = {}
    for j, s_name in enumerate(schema.sensitive):
        s = train.frame[s_name].astype(str).to_numpy()
        for value, target in _binary_targets(s):
            name = s_name if value is None else f"{s_name} = {value}"
            probes[name] = _sensitive_probe(
                jax.random.fold_in(probe_key, len(probes) + 100 * j),
                x_train,
                s if value is None else target,  # binary: keep the values' names
                x_syn,
            )
    return {
        "probe": probes,
        "proxies": proxy_scan(
            scan_key, train.frame, schema.features, schema.sensitive, schema.numeric
        ),
        "proxy_auc_threshold": PROXY_AUC,
    }


def _sensitive_probe(key, x_real, s_real, x_syn) -> dict:
    """`fairjax.metrics.sensitive_leakage` for one binary target (both values present)."""
    if len(np.unique(s_real)) < 2:
        return {"available": False}
    return {"available": True, **metrics.sensitive_leakage(key, x_real, s_real, x_syn)}


# ------------------------------------------------------------------------- fidelity


def _association(real: pd.DataFrame, syn: pd.DataFrame, columns, schema) -> dict:
    """Cramér's V of every column pair in both tables (numeric columns in quantile bins of
    the real values), and the difference synthetic - real."""
    from scipy.stats.contingency import association

    codes = {}
    for c in columns:
        if c in schema.numeric:
            edges = _bin_edges(real[c].to_numpy(np.float64))
            codes[c] = tuple(_codes(t[c], numeric=True, edges=edges) for t in (real, syn))
        else:
            cats = pd.Index(sorted(set(real[c].astype(str)) | set(syn[c].astype(str))))
            codes[c] = tuple(cats.get_indexer(t[c].astype(str)) for t in (real, syn))
    k = len(columns)
    mats = {"real": np.eye(k), "synthetic": np.eye(k)}
    for which, t in (("real", 0), ("synthetic", 1)):
        for i in range(k):
            for j in range(i + 1, k):
                table = _contingency(codes[columns[i]][t], codes[columns[j]][t])
                if min(table.shape) < 2:
                    v = math.nan  # a constant column: no association defined
                else:
                    v = float(association(table, method="cramer"))
                mats[which][i, j] = mats[which][j, i] = v
    diff = mats["synthetic"] - mats["real"]
    off = ~np.eye(k, dtype=bool)
    return {
        "measure": "Cramér's V (numeric columns in quantile bins of the real values)",
        "columns": list(columns),
        "real": mats["real"].tolist(),
        "synthetic": mats["synthetic"].tolist(),
        "difference": diff.tolist(),
        "mean_abs_difference": float(np.nanmean(np.abs(diff[off]))) if k > 1 else 0.0,
    }


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Counts of each (a, b) pair of non-negative codes, empty rows and columns dropped."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb)
    return table[table.sum(1) > 0][:, table.sum(0) > 0]


def _marginal_distances(real: pd.DataFrame, syn: pd.DataFrame, columns, schema) -> dict:
    """Total variation distance of each column's marginal (numeric: over quantile bins)."""
    out = {}
    for c in columns:
        if c in schema.numeric:
            edges = _bin_edges(real[c].to_numpy(np.float64))
            a = pd.Series(_codes(real[c], numeric=True, edges=edges))
            b = pd.Series(_codes(syn[c], numeric=True, edges=edges))
        else:
            a, b = real[c].astype(str), syn[c].astype(str)
        p = a.value_counts(normalize=True)
        q = b.value_counts(normalize=True)
        out[c] = float(0.5 * p.sub(q, fill_value=0.0).abs().sum())
    return {"total_variation": out}


# -------------------------------------------------------------------------- privacy


def _privacy(key, x_train, x_holdout, x_syn) -> dict:
    """DCR share closer to training rows, and a distance-based membership-inference AUC.

    The attack scores a real row by minus its distance to the closest synthetic row
    (members should be closer) and is scored on equally many training rows (members) and
    holdout rows (non-members): AUC 0.5 = the synthetic rows tell nothing about membership.
    """
    sub_key, dcr_key, mia_key = jax.random.split(key, 3)
    syn = _subsample(sub_key, x_syn, QUALITY_MAX_ROWS)
    n = min(len(x_train), len(x_holdout), QUALITY_MAX_ROWS)
    k_tr, k_ho = jax.random.split(mia_key)
    members = _subsample(k_tr, x_train, n)
    others = _subsample(k_ho, x_holdout, n)
    dcr = metrics.dcr_summary(syn, members, others, key=dcr_key)
    d_members = metrics.distance_to_closest_record(members, syn)
    d_others = metrics.distance_to_closest_record(others, syn)
    is_member = np.concatenate([np.ones(n, np.int64), np.zeros(n, np.int64)])
    mia = metrics.roc_auc(is_member, -np.concatenate([d_members, d_others]))
    return {
        **{k: _plain(v) for k, v in dcr.items()},
        "membership_inference_auc": mia,
        "membership_inference_rows_per_side": n,
    }


def _subsample(key, x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.sort(np.asarray(jax.random.choice(key, len(x), (n,), replace=False)))]


# -------------------------------------------------------------------------- figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _marginals_png(real: pd.DataFrame, syn: pd.DataFrame, columns, schema) -> bytes:
    plt = _pyplot()
    ncols = min(4, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows), squeeze=False)
    for ax, c in zip(axes.flat, columns, strict=False):
        if c in schema.numeric:
            a, b = real[c].to_numpy(np.float64), syn[c].to_numpy(np.float64)
            bins = np.histogram_bin_edges(np.concatenate([a, b]), bins=30)
            ax.hist(a, bins=bins, density=True, alpha=0.55, label="real", color="#1f77b4")
            ax.hist(b, bins=bins, density=True, alpha=0.55, label="synthetic", color="#ff7f0e")
        else:
            p = real[c].astype(str).value_counts(normalize=True)
            q = syn[c].astype(str).value_counts(normalize=True)
            cats = list(p.index[:MAX_BARS])
            rest_p, rest_q = 1 - p[cats].sum(), 1 - q.reindex(cats).fillna(0).sum()
            shown_p = [*p.reindex(cats).fillna(0)] + ([rest_p] if len(p) > MAX_BARS else [])
            shown_q = [*q.reindex(cats).fillna(0)] + ([rest_q] if len(p) > MAX_BARS else [])
            names = [_short(str(x)) for x in cats] + (["other"] if len(p) > MAX_BARS else [])
            pos = np.arange(len(names))
            ax.bar(pos - 0.2, shown_p, width=0.4, label="real", color="#1f77b4")
            ax.bar(pos + 0.2, shown_q, width=0.4, label="synthetic", color="#ff7f0e")
            ax.set_xticks(pos, names, rotation=60, ha="right", fontsize=7)
        ax.set_title(c, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.subplots_adjust(hspace=0.9, wspace=0.3)  # room for rotated category names
    return _png(fig)


def _short(text: str, width: int = 16) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _heatmap_png(columns, difference) -> bytes:
    plt = _pyplot()
    d = np.asarray(difference, np.float64)
    k = len(columns)
    size = max(4.0, 0.42 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    lim = max(0.1, float(np.nanmax(np.abs(d)))) if k > 1 else 0.1
    im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
    names = [_short(c, 18) for c in columns]
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_title("Cramér's V: synthetic − real", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------------ rendering


def to_json(report: dict) -> str:
    """The report's numbers as JSON (no figures; nan and inf become null)."""
    return json.dumps(_jsonable({k: v for k, v in report.items() if k != "_figures"}), indent=2)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _f(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ci(entry: dict) -> str:
    ci = entry.get("ci")
    value = _f(entry["value"])
    return value if not ci else f"{value} [{_f(ci[0])}, {_f(ci[1])}]"


MEASURE_NAMES = {
    "dp_ratio": "demographic parity ratio ↑",
    "dp_difference": "demographic parity difference ↓",
    "eop_ratio": "equal opportunity ratio ↑",
    "eop_difference": "equal opportunity difference ↓",
    "eodds_ratio": "equalized odds ratio ↑",
    "eodds_difference": "equalized odds difference ↓",
    "df_tpr": "differential fairness ε (TPR) ↓",
    "if_tpr_0.5": "IF_0.5 (TPR) ↓",
    "worst_group_tpr": "worst-group TPR ↑",
    "worst_group_selection": "worst-group selection rate ↑",
}


def _sections(report: dict) -> list[tuple[str, list]]:
    """The report as (title, [block]) sections; a block is a str paragraph, a table
    ("table", header, rows) or a figure ("figure", name, caption)."""
    d = report["data"]
    origin = "given" if d["holdout"] == "given" else "split from the real table"
    intro = [
        f"Real data **{d['name']}**: {d['n_real_train']:,} rows the generator was trained on, "
        f"{d['n_holdout']:,} holdout rows ({origin}); "
        f"{d['n_synthetic']:,} synthetic rows. Label `{d['label']}`, sensitive "
        + ", ".join(f"`{s}`" for s in d["sensitive"])
        + f"; {len(d['features'])} features (the sensitive columns are not classifier inputs).",
    ]
    if d["synthetic_lacks"]:
        intro.append(
            "The synthetic table has no column(s) "
            + ", ".join(f"`{c}`" for c in d["synthetic_lacks"])
            + "; fidelity covers the others."
        )
    sections = [("Data", intro), ("Summary", _summary(report))]
    if report["warnings"]:
        sections.append(("Warnings", ["- " + w for w in report["warnings"]]))

    rows = []
    for name, entry in report["utility"].items():
        for m in ("accuracy", "balanced_accuracy", "auc"):
            t, r = entry["tstr"][m], entry["trtr"][m]
            rows.append([name, m.replace("_", " "), _f(t), _f(r), _f(t - r)])
    sections.append(
        (
            "Utility",
            [
                "Each classifier is trained on the synthetic rows (TSTR) or on the real rows "
                "(TRTR) and tested on the holdout.",
                ("table", ["classifier", "metric", "TSTR", "TRTR", "TSTR − TRTR"], rows),
            ],
        )
    )

    blocks = [
        "Predictions on the holdout, grouped by each sensitive column"
        + (" and their intersection" if len(d["sensitive"]) > 1 else "")
        + ". ↑ higher is fairer, ↓ lower is fairer; improvement > 0 means the classifier "
        f"trained on synthetic rows is fairer than the one trained on real rows. Brackets: "
        f"95% paired bootstrap intervals over holdout rows ({d['n_bootstrap']} resamples)."
    ]
    for name, per_group in report["fairness"].items():
        for gname, g in per_group.items():
            rows = [
                [MEASURE_NAMES[m], _ci(g["tstr"][m]), _ci(g["trtr"][m]), _ci(g["improvement"][m])]
                for m in FAIRNESS_MEASURES
            ]
            blocks.append(f"**{name}**, grouped by `{gname}`:")
            blocks.append(("table", ["measure", "TSTR", "TRTR", "improvement"], rows))
            groups = g["groups"]
            grows = [
                [
                    _group_name(a["group"]),
                    str(a["n"]),
                    str(a["positives"]),
                    f"{_f(a['selection_rate'])} / {_f(b['selection_rate'])}",
                    f"{_f(a['tpr'])} / {_f(b['tpr'])}",
                    f"{_f(a['fpr'])} / {_f(b['fpr'])}",
                ]
                for a, b in zip(groups["tstr"], groups["trtr"], strict=True)
            ]
            blocks.append(
                (
                    "table",
                    ["group", "n", "positives", "selection TSTR / TRTR", "TPR", "FPR"],
                    grows,
                )
            )
            worst = g["worst_group"]
            text = (
                f"Worst group by TPR: {_group_name(worst['tstr'])} (TSTR), "
                f"{_group_name(worst['trtr'])} (TRTR)."
            )
            if g["tpr_undefined_groups"]:
                text += (
                    " Left out of the TPR-based measures (no positive holdout rows): "
                    + ", ".join(map(str, g["tpr_undefined_groups"]))
                    + "."
                )
            blocks.append(text)
    sections.append(("Fairness", blocks))

    leak = report["leakage"]
    blocks = []
    prows = []
    for name, p in leak["probe"].items():
        if not p.get("available"):
            continue
        prows.append(
            [
                name,
                _f(p["probe_auc"]),
                _f(p["real_confidence"]),
                _f(p["synthetic_confidence"]),
                _f(p["real_confident_share"]),
                _f(p["synthetic_confident_share"]),
            ]
        )
    if prows:
        blocks.append(
            "A logistic probe trained on real rows to predict the sensitive attribute from the "
            "features, read on held-out real rows and on the synthetic rows (confidence = mean "
            "|2p − 1|; confident = p > 0.9 or < 0.1). Lower synthetic values: the real "
            "data's proxies point at the attribute less in the synthetic rows."
        )
        blocks.append(
            (
                "table",
                [
                    "attribute",
                    "probe AUC (real)",
                    "confidence real",
                    "confidence synthetic",
                    "confident share real",
                    "confident share synthetic",
                ],
                prows,
            )
        )
    else:
        blocks.append("No sensitive attribute has two values among the training rows to probe.")
    top = [p for p in leak["proxies"] if p["auc"] >= 0.7][:15]
    blocks.append(
        f"Single-feature proxy scan (cross-fitted AUC of one feature predicting a sensitive "
        f"attribute; ≥ {leak['proxy_auc_threshold']} is flagged as a proxy). Features with "
        f"AUC ≥ 0.7:"
        if top
        else "Single-feature proxy scan: no feature reaches AUC 0.7."
    )
    if top:
        blocks.append(
            (
                "table",
                ["feature", "sensitive", "AUC", "proxy"],
                [
                    [
                        p["feature"],
                        p["sensitive"] + _target_text(p),
                        _f(p["auc"]),
                        "**yes**" if p["auc"] >= leak["proxy_auc_threshold"] else "",
                    ]
                    for p in top
                ],
            )
        )
    sections.append(("Leakage and proxies", blocks))

    fid = report["fidelity"]
    tv = fid["marginals"]["total_variation"]
    sections.append(
        (
            "Fidelity",
            [
                (
                    "table",
                    ["measure", "value", "reading"],
                    [
                        ["C2ST AUC", _f(fid["c2st_auc"]), "0.5 = indistinguishable"],
                        [
                            "C2ST balanced accuracy",
                            _f(fid["c2st_balanced_accuracy"]),
                            "0.5 = indistinguishable",
                        ],
                        ["MMD²", _f(fid["mmd2"], 5), "0 = same distribution"],
                        [
                            "mean |Δ Cramér's V|",
                            _f(fid["association"]["mean_abs_difference"]),
                            "0 = same pairwise associations",
                        ],
                    ],
                ),
                "Marginals, real (training rows) vs synthetic; total variation distance per "
                "column: " + ", ".join(f"`{c}` {_f(v)}" for c, v in tv.items()) + ".",
                ("figure", "marginals", "Per-column marginals: real vs synthetic"),
                ("figure", "association", "Pairwise association difference"),
            ],
        )
    )

    pr = report["privacy"]
    sections.append(
        (
            "Privacy",
            [
                (
                    "table",
                    ["measure", "value", "reading"],
                    [
                        [
                            "DCR: share of synthetic rows closer to training than holdout",
                            _f(pr["closer_to_train_fraction"]),
                            "≈ 0.5 no memorisation; → 1 copies",
                        ],
                        ["exact copies of training rows", _f(pr["exact_copy_fraction"]), ""],
                        [
                            "median DCR to training / holdout",
                            f"{_f(pr['median_dcr_train'])} / {_f(pr['median_dcr_holdout'])}",
                            "",
                        ],
                        [
                            "membership-inference AUC (distance attack)",
                            _f(pr["membership_inference_auc"]),
                            "0.5 = no membership signal",
                        ],
                    ],
                )
            ],
        )
    )
    return sections


def _summary(report: dict) -> list:
    """A few headline numbers, each pointing at its section."""
    u = report["utility"]
    rows = []
    for name, entry in u.items():
        row = [name, f"{_f(entry['tstr']['auc'])} / {_f(entry['trtr']['auc'])}"]
        for g in report["fairness"][name].values():
            row.append(
                f"{_f(g['tstr']['dp_ratio']['value'])} / {_f(g['trtr']['dp_ratio']['value'])}"
            )
        rows.append(row)
    first = next(iter(report["fairness"].values()))
    header = ["classifier", "AUC TSTR / TRTR"] + [f"DP ratio by `{g}`" for g in first]
    fid, pr = report["fidelity"], report["privacy"]
    return [
        ("table", header, rows),
        f"Fidelity: C2ST AUC {_f(fid['c2st_auc'])} (0.5 = indistinguishable). Privacy: "
        f"{_f(pr['closer_to_train_fraction'])} of synthetic rows are closer to a training row "
        f"than to a holdout row (0.5 expected), membership-inference AUC "
        f"{_f(pr['membership_inference_auc'])}. Proxy warnings: "
        f"{sum(w.startswith('Proxy') for w in report['warnings'])}.",
    ]


def _group_name(g) -> str:
    return " | ".join(map(str, g)) if isinstance(g, list) else str(g)


def to_markdown(report: dict, figure_files: dict[str, str] | None = None) -> str:
    """The report as Markdown; figures link to `figure_files` or are left out."""
    lines = ["# Synthetic data report", ""]
    for title, blocks in _sections(report):
        lines += [f"## {title}", ""]
        for b in blocks:
            if isinstance(b, str):
                lines += [b, ""] if not b.startswith("- ") else [b]
            elif b[0] == "table":
                _, header, rows = b
                lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(r) + " |" for r in rows]
                lines.append("")
            elif figure_files and b[1] in figure_files:
                lines += [f"![{b[2]}]({figure_files[b[1]]})", ""]
        if lines[-1] != "":
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: .5em 1em; margin: .4em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def to_html(report: dict) -> str:
    """The report as one self-contained HTML page (figures inline as base64 PNG)."""
    figures = report.get("_figures", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Synthetic data report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Synthetic data report</h1>",
    ]
    for title, blocks in _sections(report):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for b in blocks:
            if isinstance(b, str):
                if b.startswith("- "):
                    parts.append(f'<div class="warning">{_inline(b[2:])}</div>')
                else:
                    parts.append(f"<p>{_inline(b)}</p>")
            elif b[0] == "table":
                _, header, rows = b
                parts.append("<table><thead><tr>")
                parts += [f"<th>{_inline(h)}</th>" for h in header]
                parts.append("</tr></thead><tbody>")
                for r in rows:
                    parts.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
                parts.append("</tbody></table>")
            elif b[1] in figures:
                data = base64.b64encode(figures[b[1]]).decode("ascii")
                parts.append(
                    f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Escape, then render Markdown's **bold** and `code` spans."""
    import re

    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


# --------------------------------------------------------------------------- output


def check_out(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """`out` as a Path, or a FairjaxError if it exists (and may not be replaced)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FairjaxError(f"--out {str(out)!r} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise FairjaxError(f"--out {str(out)!r} exists and is not a folder")
    return out


def write(report: dict, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write report.md, report.html and report.json into the folder `out`, atomically.

    The files are written into a temporary folder next to `out` and renamed into place, so
    `out` is either absent, the old report, or the complete new one. An existing `out` is
    refused unless `overwrite`.

    Returns:
      The folder written.
    """
    # Minimal and self-contained on purpose: a shared atomic-write helper is being built
    # (branch safe-outputs); this one function is all there is to swap for it.
    out = check_out(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        figures = report.get("_figures", {})
        names = {name: f"{name}.png" for name in figures}
        for name, data in figures.items():
            (tmp / names[name]).write_bytes(data)
        (tmp / "report.md").write_text(to_markdown(report, names), encoding="utf-8")
        (tmp / "report.html").write_text(to_html(report), encoding="utf-8")
        (tmp / "report.json").write_text(to_json(report) + "\n", encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
