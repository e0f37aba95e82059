"""Tests for fairjax.metrics.quality: C2ST on known distributions, DCR against brute force."""

import jax
import numpy as np
import pytest

from fairjax.classifiers import make_logistic_regression
from fairjax.errors import FairjaxError
from fairjax.metrics.quality import (
    classifier_two_sample_test,
    dcr_summary,
    distance_to_closest_record,
)


def _brute_force_dcr(synthetic, real):
    diff = synthetic[:, None, :].astype(np.float64) - real[None, :, :].astype(np.float64)
    return np.sqrt((diff**2).sum(-1)).min(axis=1)


# ------------------------------------------------------------------------------ C2ST


def test_c2st_same_distribution_is_chance():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    real = rng.multivariate_normal(np.zeros(3), cov, size=1500)
    synthetic = rng.multivariate_normal(np.zeros(3), cov, size=1500)
    res = classifier_two_sample_test(jax.random.key(0), real, synthetic)
    assert abs(res["auc"] - 0.5) < 0.07
    assert abs(res["balanced_accuracy"] - 0.5) < 0.07
    assert res["n_test"] == 900 and res["n_train"] == 2100


def test_c2st_different_distributions_are_separable():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(1500, 3))
    # same means and variances per column, only the dependence differs: x2 = +-|x1|-like
    synthetic = rng.normal(size=(1500, 3))
    synthetic[:, 1] = np.sign(synthetic[:, 0]) * np.abs(synthetic[:, 1])
    res = classifier_two_sample_test(jax.random.key(0), real, synthetic)
    assert res["auc"] > 0.7  # a nonlinear (quadrant) difference: the MLP finds it
    shifted = real + np.array([5.0, 0.0, 0.0])  # Bayes AUC Phi(5 / sqrt 2) > 0.999
    res = classifier_two_sample_test(jax.random.key(0), real, shifted)
    assert res["auc"] > 0.99 and res["balanced_accuracy"] > 0.95


def test_c2st_balances_classes_deterministic_and_custom_classifier():
    rng = np.random.default_rng(2)
    real, synthetic = rng.normal(size=(1000, 4)), rng.normal(size=(300, 4)) + 0.5
    lr = make_logistic_regression(l2=1e-3)
    res = classifier_two_sample_test(jax.random.key(1), real, synthetic, classifier=lr)
    assert res["n_train"] + res["n_test"] == 600  # 300 + 300: the larger set was subsampled
    assert res["n_test"] == 180
    again = classifier_two_sample_test(jax.random.key(1), real, synthetic, classifier=lr)
    assert res == again
    # mean shift 0.5 in 4 dims: Bayes AUC = Phi(|delta| / sqrt(2)) = Phi(0.707) ~ 0.76
    assert 0.65 < res["auc"] < 0.87


def test_c2st_rejects_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(FairjaxError, match="columns"):
        classifier_two_sample_test(jax.random.key(0), x, np.zeros((10, 2)))
    with pytest.raises(FairjaxError, match="test_fraction"):
        classifier_two_sample_test(jax.random.key(0), x, x, test_fraction=1.0)
    with pytest.raises(FairjaxError, match="finite"):
        classifier_two_sample_test(jax.random.key(0), x, np.full((10, 3), np.nan))
    with pytest.raises(FairjaxError, match="too few rows"):
        classifier_two_sample_test(jax.random.key(0), x[:2], x[:2], test_fraction=0.1)


# ------------------------------------------------------------------------------- DCR


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
def test_dcr_equals_brute_force(chunk_size):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 5))
    real[10] = real[3]  # duplicate real rows are fine
    synthetic = rng.normal(size=(53, 5))
    got = distance_to_closest_record(synthetic, real, chunk_size=chunk_size)
    assert got.shape == (53,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _brute_force_dcr(synthetic, real), rtol=1e-12)


def test_dcr_of_a_copy_is_exactly_zero_even_far_from_origin():
    rng = np.random.default_rng(1)
    # large offsets make |a|^2 + |b|^2 - 2ab lose ~8 digits; the exact refinement must not
    real = 1e4 + rng.normal(size=(200, 6))
    copy = real[rng.permutation(200)]
    np.testing.assert_array_equal(distance_to_closest_record(copy, real), 0.0)
    near = copy + 1e-3
    np.testing.assert_allclose(distance_to_closest_record(near, real), np.sqrt(6) * 1e-3, rtol=1e-6)


def test_dcr_fewer_real_rows_than_refinement_candidates():
    rng = np.random.default_rng(2)
    real, synthetic = rng.normal(size=(3, 2)), rng.normal(size=(10, 2))
    np.testing.assert_allclose(
        distance_to_closest_record(synthetic, real), _brute_force_dcr(synthetic, real)
    )


def test_dcr_rejects_bad_input():
    with pytest.raises(FairjaxError, match="columns"):
        distance_to_closest_record(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(FairjaxError, match="chunk_size"):
        distance_to_closest_record(np.zeros((4, 2)), np.zeros((4, 2)), chunk_size=0)
    with pytest.raises(FairjaxError, match=r"shape \[n, d\]"):
        distance_to_closest_record(np.zeros(4), np.zeros((4, 1)))


def test_dcr_summary_copies_versus_fresh_samples():
    rng = np.random.default_rng(3)
    train, holdout = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4))
    copied = dcr_summary(train[::-1], train, holdout)
    assert copied["closer_to_train_fraction"] == 1.0
    assert copied["exact_copy_fraction"] == 1.0
    assert copied["median_dcr_train"] == 0.0 and copied["median_dcr_holdout"] > 0.1
    fresh = dcr_summary(rng.normal(size=(2000, 4)), train, holdout)
    assert abs(fresh["closer_to_train_fraction"] - 0.5) < 0.05
    assert fresh["exact_copy_fraction"] == 0.0
    np.testing.assert_allclose(fresh["median_dcr_train"], fresh["median_dcr_holdout"], rtol=0.1)


def test_dcr_summary_needs_equal_sizes_or_a_key():
    rng = np.random.default_rng(4)
    train, holdout, syn = (rng.normal(size=(n, 2)) for n in (300, 100, 50))
    with pytest.raises(FairjaxError, match="key="):
        dcr_summary(syn, train, holdout)
    res = dcr_summary(syn, train, holdout, key=jax.random.key(0))
    assert res["n_train"] == res["n_holdout"] == 100 and res["n_synthetic"] == 50
