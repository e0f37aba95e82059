"""The sensitive-leakage probe against scikit-learn and on tables of known leakage."""

import jax
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fairjax.classifiers import stratified_split
from fairjax.errors import FairjaxError
from fairjax.metrics import sensitive_leakage


def _table(rng, n, strength):
    s = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3))
    x[:, 0] += strength * (2 * s - 1)
    return x, s


def test_readings_equal_sklearn_probe():
    rng = np.random.default_rng(0)
    x, s = _table(rng, 2000, 1.0)
    syn = rng.normal(size=(500, 3)) * 0.5
    key = jax.random.key(3)
    out = sensitive_leakage(key, x, s, syn, l2=1e-3)
    train, held = stratified_split(key, s, 0.3)
    ref = LogisticRegression(C=1 / (1e-3 * len(train)), tol=1e-10, max_iter=10_000)
    ref.fit(x[train], s[train])
    p_held, p_syn = ref.predict_proba(x[held])[:, 1], ref.predict_proba(syn)[:, 1]
    assert out["real_confidence"] == pytest.approx(np.mean(np.abs(2 * p_held - 1)), abs=2e-4)
    assert out["synthetic_confidence"] == pytest.approx(np.mean(np.abs(2 * p_syn - 1)), abs=2e-4)
    share = np.mean(np.maximum(p_syn, 1 - p_syn) > 0.9)
    assert out["synthetic_confident_share"] == pytest.approx(share, abs=2 / len(syn))
    assert out["n_holdout"] == len(held) and out["n_synthetic"] == 500


def test_leaky_versus_clean_tables():
    rng = np.random.default_rng(1)
    x, s = _table(rng, 3000, 2.0)  # s mostly determined by x[:, 0]
    leaky = x[:1000]  # real rows: as leaky as the data
    clean = x[1000:2000].copy()
    clean[:, 0] = 0.0  # the proxy removed: every row on the boundary
    key = jax.random.key(0)
    a = sensitive_leakage(key, x, s, leaky)
    b = sensitive_leakage(key, x, s, clean)
    assert a["probe_auc"] > 0.97
    assert a["synthetic_confidence"] > 0.8 and a["synthetic_confident_share"] > 0.6
    assert b["synthetic_confidence"] < 0.15 and b["synthetic_confident_share"] < 0.05
    # With no information in x the probe is at chance on real rows too.
    x0, s0 = _table(rng, 3000, 0.0)
    c = sensitive_leakage(key, x0, s0, x0[:100])
    assert abs(c["probe_auc"] - 0.5) < 0.05 and c["real_confidence"] < 0.1


def test_bad_inputs_name_the_problem():
    rng = np.random.default_rng(2)
    x, s = _table(rng, 100, 1.0)
    with pytest.raises(FairjaxError, match="binary sensitive"):
        sensitive_leakage(jax.random.key(0), x, s % 1 + rng.integers(0, 3, 100), x)
    with pytest.raises(FairjaxError, match="columns"):
        sensitive_leakage(jax.random.key(0), x, s, x[:, :2])
    with pytest.raises(FairjaxError, match="real_s"):
        sensitive_leakage(jax.random.key(0), x, s[:50], x)
