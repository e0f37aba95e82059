"""Sensitive-attribute leakage of a table: how much a probe trained on real rows still reads.

A generator that removes sensitive information should produce rows from which the
sensitive attribute cannot be predicted, while real rows usually carry it through proxies
(relationship, occupation, hours for sex on Adult). `sensitive_leakage` trains a probe
(L2 logistic regression, `fairjax.classifiers`) on real rows to predict the binary
sensitive attribute from the features, checks it on held-out real rows (its AUC there says
how much the real data carry), and reads the generated rows with it:

- confidence = mean |2 p(s = 1 | x) - 1| over rows: 0 when the probe cannot tell the
  attribute apart on any row, 1 when it is certain on every row;
- confident share = share of rows with p > 0.9 or p < 0.1.

Both are reported for the held-out real rows too, the reference a generated table is
compared with. The probe is a fixed reading instrument: it does not adapt to the
synthetic rows, so a low value means "the real data's proxies no longer point at s", not
that no classifier could recover it (for that, train a probe on the synthetic rows).

Evaluation code (numpy in, Python floats out); rows must be encoded by one encoder.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from numpy.typing import ArrayLike

from fairjax.classifiers import make_logistic_regression, stratified_split
from fairjax.errors import FairjaxError
from fairjax.metrics.quality import _rows
from fairjax.metrics.utility import roc_auc

__all__ = ["sensitive_leakage"]

CONFIDENT = 0.9  # p above this (or below 1 - this) counts as a confident call


def _reading(p: np.ndarray) -> tuple[float, float]:
    """(mean |2p - 1|, share with max(p, 1 - p) > CONFIDENT) of probabilities p [n]."""
    return float(np.mean(np.abs(2.0 * p - 1.0))), float(np.mean(np.maximum(p, 1 - p) > CONFIDENT))


def sensitive_leakage(
    key: jax.Array,
    real_x: ArrayLike,
    real_s: ArrayLike,
    synthetic_x: ArrayLike,
    *,
    holdout_fraction: float = 0.3,
    l2: float = 1e-4,
) -> dict[str, Any]:
    """Sensitive information in `synthetic_x`, read by a probe trained on real rows.

    Args:
      key: PRNG key (the stratified real train / hold-out split).
      real_x: [n, d] encoded real feature rows (the sensitive column itself excluded).
      real_s: [n] the real rows' sensitive attribute, exactly two distinct values.
      synthetic_x: [m, d] encoded generated rows, same encoder as `real_x`.
      holdout_fraction: share of real rows (per value of s) held out to score the probe.
      l2: L2 strength of the logistic probe (`make_logistic_regression`).

    Returns:
      dict: `probe_auc` (hold-out AUC on real rows; 0.5 = the features carry nothing),
      `real_confidence` / `real_confident_share` (held-out real rows),
      `synthetic_confidence` / `synthetic_confident_share` (generated rows), `positive`
      (the value of s the probe's p refers to), `n_train`, `n_holdout`, `n_synthetic`.

    Raises:
      FairjaxError: shapes disagree, rows are not finite, or s does not have two values.
    """
    x = _rows("real_x", real_x, min_rows=4)
    syn = _rows("synthetic_x", synthetic_x, d=x.shape[1])
    s = np.asarray(real_s)
    if s.shape != (len(x),):
        raise FairjaxError(f"real_s must have shape ({len(x)},) to match real_x; got {s.shape}")
    values, s_idx = np.unique(s, return_inverse=True)
    if len(values) != 2:
        raise FairjaxError(
            f"sensitive_leakage needs a binary sensitive attribute; real_s has {len(values)} "
            f"value(s) {values[:10].tolist()} (binarise it, e.g. one value against the rest)"
        )
    if not 0.0 < holdout_fraction < 1.0:
        raise FairjaxError(f"holdout_fraction must lie in (0, 1); got {holdout_fraction!r}")
    train, held = stratified_split(key, s_idx, holdout_fraction)
    if len(held) == 0 or len(np.unique(s_idx[held])) < 2:
        raise FairjaxError("too few real rows to hold out both values of the sensitive attribute")
    probe = make_logistic_regression(l2=l2)
    params = probe.fit(key, x[train].astype(np.float32), s_idx[train])
    p_real = np.asarray(probe.predict_proba(params, x[held].astype(np.float32)), np.float64)
    p_syn = np.asarray(probe.predict_proba(params, syn.astype(np.float32)), np.float64)
    real_conf, real_share = _reading(p_real)
    syn_conf, syn_share = _reading(p_syn)
    return {
        "probe_auc": roc_auc(s_idx[held], p_real),
        "real_confidence": real_conf,
        "real_confident_share": real_share,
        "synthetic_confidence": syn_conf,
        "synthetic_confident_share": syn_share,
        "positive": values[1].item() if hasattr(values[1], "item") else values[1],
        "n_train": len(train),
        "n_holdout": len(held),
        "n_synthetic": len(syn),
    }
