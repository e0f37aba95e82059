"""Fidelity and privacy of synthetic data: classifier two-sample test and distance to
closest record.

Both work on encoded numeric rows ([n, d] floats, e.g. the output of a fitted
`TabularEncoder`: one-hot categoricals and scaled numerics), the space the generator
models. Encode real and synthetic rows with the *same* encoder, fitted on real data.

- `classifier_two_sample_test` (C2ST): how well a classifier tells real rows from
  synthetic ones on held-out rows. AUC 0.5 = indistinguishable, 1.0 = fully separable.
- `distance_to_closest_record` (DCR) and `dcr_summary`: Euclidean distance from each
  synthetic row to its nearest real row; comparing distances to the training rows with
  distances to an equally large holdout from the same population shows memorisation.

Evaluation code, not a jit hot path: numpy in float64 (the classifier itself is JAX),
Python floats out.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from numpy.typing import ArrayLike

from fairjax.classifiers import (
    Classifier,
    make_mlp_classifier,
    predict,
    stratified_split,
)
from fairjax.errors import FairjaxError
from fairjax.metrics.utility import balanced_accuracy, roc_auc

__all__ = ["classifier_two_sample_test", "dcr_summary", "distance_to_closest_record"]

# Entries of the [chunk, n] squared-distance block: 2^22 float64 = 32 MiB.
_DCR_BLOCK_ENTRIES = 2**22
# Candidates per synthetic row whose distances are recomputed exactly (see DCR docstring).
_DCR_REFINE = 8


def _rows(name: str, x: ArrayLike, *, d: int | None = None, min_rows: int = 1) -> np.ndarray:
    """Validate a finite [n, d] float array; returns float64."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise FairjaxError(
            f"{name} must be a numeric array of shape [n, d] (encode the table first): {e}"
        ) from None
    if a.ndim != 2:
        raise FairjaxError(f"{name} must have shape [n, d], got shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] == 0:
        raise FairjaxError(
            f"{name} needs at least {min_rows} row(s) and one column, got shape {a.shape}"
        )
    if d is not None and a.shape[1] != d:
        raise FairjaxError(
            f"{name} has {a.shape[1]} columns but the real data have {d}; encode both with "
            "the same encoder"
        )
    if not np.isfinite(a).all():
        raise FairjaxError(f"{name} must be finite; got {int((~np.isfinite(a)).sum())} nan/inf")
    return a


@functools.cache
def _default_c2st_classifier() -> Classifier:
    # Built once so repeated tests reuse its compiled training step.
    return make_mlp_classifier()


def classifier_two_sample_test(
    key: jax.Array,
    real: ArrayLike,
    synthetic: ArrayLike,
    *,
    classifier: Classifier | None = None,
    test_fraction: float = 0.3,
) -> dict[str, Any]:
    """Classifier two-sample test: can a classifier tell real rows from synthetic ones?

    Labels real rows 1 and synthetic rows 0. The classes are balanced first by drawing,
    without replacement, `min(n, m)` rows from each set (so the larger set is subsampled),
    which makes 0.5 the chance level of both AUC and balanced accuracy. A stratified
    `test_fraction` of the balanced rows is held out; features are standardised with the
    training part's mean and standard deviation; the classifier is fitted on the rest and
    scored on the held-out rows.

    Reading it: AUC near 0.5 means the classifier finds no difference (good fidelity, as
    far as this classifier can see); AUC near 1 means synthetic rows are easy to spot.
    Held-out AUC fluctuates around 0.5 by roughly `sqrt((n_test_pos + n_test_neg + 1) /
    (12 n_test_pos n_test_neg))` (about 0.02 with 1000 held-out rows) even for identical
    distributions, and can fall below 0.5 by chance.

    Args:
      key: PRNG key (subsampling, split and classifier training).
      real: [n, d] encoded real rows.
      synthetic: [m, d] encoded synthetic rows, same encoding.
      classifier: the `Classifier` to use; default `make_mlp_classifier()` (hidden
        (64, 64), Adam, early stopping on 10% of the training part).
      test_fraction: fraction of the balanced rows held out for scoring, in (0, 1).

    Returns:
      dict with `auc` (held-out ROC AUC, real as positive), `balanced_accuracy` (at
      threshold 0.5), `n_test` and `n_train` (balanced rows held out / used to fit).

    References:
      Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", arXiv:1610.06545.
    """
    r = _rows("real", real, min_rows=2)
    s = _rows("synthetic", synthetic, d=r.shape[1], min_rows=2)
    if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
        raise FairjaxError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    clf = _default_c2st_classifier() if classifier is None else classifier

    real_key, syn_key, split_key, fit_key = jax.random.split(key, 4)
    k = min(len(r), len(s))
    r = r[np.sort(np.asarray(jax.random.permutation(real_key, len(r)))[:k])]
    s = s[np.sort(np.asarray(jax.random.permutation(syn_key, len(s)))[:k])]
    x = np.concatenate([r, s])
    y = np.concatenate([np.ones(k, np.int64), np.zeros(k, np.int64)])

    train_idx, test_idx = stratified_split(split_key, y, test_fraction)
    if len(test_idx) == 0 or len(np.unique(y[test_idx])) < 2:
        raise FairjaxError(
            f"too few rows for a two-sample test: {k} per class with test_fraction="
            f"{test_fraction} leaves no held-out row of some class; pass more rows"
        )
    mean = x[train_idx].mean(axis=0)
    std = x[train_idx].std(axis=0)
    # Constant columns stay constant (0) rather than dividing by zero.
    x = ((x - mean) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)

    params = clf.fit(fit_key, x[train_idx], y[train_idx])
    proba = np.asarray(clf.predict_proba(params, x[test_idx]), dtype=np.float64)
    return {
        "auc": roc_auc(y[test_idx], proba),
        "balanced_accuracy": balanced_accuracy(y[test_idx], predict(clf, params, x[test_idx])),
        "n_test": len(test_idx),
        "n_train": len(train_idx),
    }


def distance_to_closest_record(
    synthetic: ArrayLike, real: ArrayLike, *, chunk_size: int | None = None
) -> np.ndarray:
    """Euclidean distance from each synthetic row to its nearest real row (DCR).

    Works through the synthetic rows in chunks: for a chunk of c rows the squared distances
    to all n real rows come from `|a|^2 + |b|^2 - 2 a.b` (one matrix product, memory c * n
    float64), and then, because that expansion loses precision when a and b are close, the
    distances to the `min(8, n)` nearest candidates are recomputed exactly as `|a - b|`.
    So a synthetic row that copies a real row gets exactly 0, and the result equals the
    brute-force minimum unless more than 8 real rows tie with the nearest within rounding.

    Args:
      synthetic: [m, d] encoded synthetic rows.
      real: [n, d] encoded real rows, same encoding.
      chunk_size: synthetic rows per chunk; default keeps each [chunk, n] block near
        2^22 entries (32 MiB).

    Returns:
      [m] float64 numpy array of distances (>= 0).
    """
    r = _rows("real", real)
    s = _rows("synthetic", synthetic, d=r.shape[1])
    n, d = r.shape
    refine = min(_DCR_REFINE, n)
    if chunk_size is None:
        chunk_size = max(1, min(_DCR_BLOCK_ENTRIES // n, _DCR_BLOCK_ENTRIES // (refine * d)))
    elif (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise FairjaxError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    r_sq = np.einsum("nd,nd->n", r, r)
    out = np.empty(len(s))
    for start in range(0, len(s), chunk_size):
        a = s[start : start + chunk_size]
        d2 = np.einsum("cd,cd->c", a, a)[:, None] + r_sq[None, :] - 2.0 * (a @ r.T)
        cand = np.argpartition(d2, refine - 1, axis=1)[:, :refine]  # [c, refine]
        diff = a[:, None, :] - r[cand]  # [c, refine, d]
        out[start : start + len(a)] = np.sqrt(np.einsum("ckd,ckd->ck", diff, diff).min(axis=1))
    return out


def dcr_summary(
    synthetic: ArrayLike,
    real_train: ArrayLike,
    real_holdout: ArrayLike,
    *,
    key: jax.Array | None = None,
    chunk_size: int | None = None,
) -> dict[str, float | int]:
    """Memorisation check: are synthetic rows closer to the training rows than to unseen ones?

    Compares each synthetic row's DCR to the generator's training rows with its DCR to a
    holdout drawn from the same population but never shown to the generator. A generator
    that generalises places synthetic rows no closer to training rows than to holdout rows,
    so `closer_to_train_fraction` is about 0.5; values clearly above 0.5 (up to 1 for
    copies) point to memorised training records. Distances to a larger reference set are
    smaller by construction, so both sets must have the same number of rows: pass equal-size
    sets, or a `key` to subsample the larger one. Ties count one half.

    Args:
      synthetic: [m, d] encoded synthetic rows.
      real_train: [n, d] encoded rows the generator was trained on.
      real_holdout: [h, d] encoded real rows the generator never saw, same encoding.
      key: PRNG key used only when n != h, to subsample the larger set without replacement.
      chunk_size: passed to `distance_to_closest_record`.

    Returns:
      dict with `median_dcr_train`, `median_dcr_holdout`, `closer_to_train_fraction`
      (mean of [dcr_train < dcr_holdout] + 0.5 [dcr_train == dcr_holdout]),
      `exact_copy_fraction` (synthetic rows equal to some training row), and the row counts
      `n_synthetic`, `n_train`, `n_holdout` actually used.

    References:
      Zhao et al., "CTAB-GAN", arXiv:2102.08369 (DCR); Platzer & Reutterer, "Holdout-based
      fidelity and privacy assessment of mixed-type synthetic data", arXiv:2104.00635.
    """
    train = _rows("real_train", real_train)
    holdout = _rows("real_holdout", real_holdout, d=train.shape[1])
    syn = _rows("synthetic", synthetic, d=train.shape[1])
    if len(train) != len(holdout):
        if key is None:
            raise FairjaxError(
                f"real_train has {len(train)} rows but real_holdout has {len(holdout)}; DCR "
                "comparisons need equal sizes: pass equal-size sets or key= to subsample the "
                "larger one"
            )
        k = min(len(train), len(holdout))
        train_key, holdout_key = jax.random.split(key)
        train = train[np.sort(np.asarray(jax.random.permutation(train_key, len(train)))[:k])]
        holdout = holdout[
            np.sort(np.asarray(jax.random.permutation(holdout_key, len(holdout)))[:k])
        ]
    dcr_train = distance_to_closest_record(syn, train, chunk_size=chunk_size)
    dcr_holdout = distance_to_closest_record(syn, holdout, chunk_size=chunk_size)
    closer = np.mean(dcr_train < dcr_holdout) + 0.5 * np.mean(dcr_train == dcr_holdout)
    return {
        "median_dcr_train": float(np.median(dcr_train)),
        "median_dcr_holdout": float(np.median(dcr_holdout)),
        "closer_to_train_fraction": float(closer),
        "exact_copy_fraction": float(np.mean(dcr_train == 0.0)),
        "n_synthetic": len(syn),
        "n_train": len(train),
        "n_holdout": len(holdout),
    }
