"""Tests for fairjax.classifiers: numbers against scikit-learn, known toy problems, keys."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fairjax.classifiers import (
    Classifier,
    make_classifier,
    make_hist_gradient_boosting,
    make_logistic_regression,
    make_mlp_classifier,
    make_mlp_trainer,
    predict,
    predict_proba,
)
from fairjax.errors import FairjaxError


def _linear_problem(n=1000, d=6, seed=0):
    """Overlapping (separable-ish) classes with unequal feature scales."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
    beta = rng.normal(size=d)
    y = (x @ beta + 0.5 + 0.5 * rng.logistic(size=n) > 0).astype(np.int64)
    return x.astype(np.float32), y


def _xor_problem(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    return x, y


# --------------------------------------------------------------- logistic regression
# Factories are shared between tests (and problems share shapes) so that each jitted solver
# compiles once per test session.


@functools.cache
def _lr(l2, fit_intercept=True):
    return make_logistic_regression(l2=l2, fit_intercept=fit_intercept)


@pytest.mark.parametrize("l2", [1e-3, 1e-4])
def test_logistic_matches_sklearn(l2):
    x, y = _linear_problem()
    n = len(y)
    clf = _lr(l2)
    params = clf.fit(jax.random.key(0), x, y)
    # mean loss + l2/2 ||w||^2  <=>  sklearn's 1/2 ||w||^2 + C * sum loss with C = 1/(n l2)
    sk = LogisticRegression(C=1.0 / (n * l2), tol=1e-12, max_iter=100_000).fit(
        x.astype(np.float64), y
    )
    ((w, b),) = params
    assert w.shape == (x.shape[1], 1) and b.shape == (1,)
    np.testing.assert_allclose(np.asarray(w[:, 0]), sk.coef_[0], atol=2e-4, rtol=1e-3)
    np.testing.assert_allclose(float(b[0]), sk.intercept_[0], atol=2e-4)
    proba = np.asarray(clf.predict_proba(params, x))
    np.testing.assert_allclose(proba, sk.predict_proba(x)[:, 1], atol=1e-3)


def test_logistic_sample_weight_two_equals_duplicated_rows():
    x, y = _linear_problem(n=800, seed=1)
    # rows 0..199 appended a second time: weights (2 on the originals, 0 on the copies)
    # versus weight 1 everywhere, i.e. literally duplicated rows. Same shapes: one compile.
    x_aug, y_aug = np.concatenate([x, x[:200]]), np.concatenate([y, y[:200]])
    w = np.r_[np.full(200, 2.0), np.ones(600), np.zeros(200)]
    clf = _lr(1e-3)
    weighted = clf.fit(jax.random.key(0), x_aug, y_aug, sample_weight=w)
    duplicated = clf.fit(jax.random.key(0), x_aug, y_aug)
    for a, b in zip(jax.tree.leaves(weighted), jax.tree.leaves(duplicated), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    # and weighted sklearn on the 800 original rows with C = 1 / (l2 * sum(w))
    sk = LogisticRegression(C=1.0 / (1e-3 * w.sum()), tol=1e-12, max_iter=100_000)
    sk.fit(x.astype(np.float64), y, sample_weight=w[:800])
    np.testing.assert_allclose(
        np.asarray(clf.predict_proba(weighted, x)), sk.predict_proba(x)[:, 1], atol=1e-3
    )


def test_logistic_without_intercept_keeps_it_zero():
    x, y = _linear_problem(seed=3)
    params = _lr(1e-3, fit_intercept=False).fit(None, x, y)
    sk = LogisticRegression(
        C=1.0 / (len(y) * 1e-3), fit_intercept=False, tol=1e-12, max_iter=100_000
    ).fit(x.astype(np.float64), y)
    assert float(params[0][1][0]) == 0.0
    np.testing.assert_allclose(np.asarray(params[0][0][:, 0]), sk.coef_[0], atol=2e-4)


# ------------------------------------------------------------------------------- MLP

_XOR_TRAIN = make_mlp_trainer(hidden=(32, 32), lr=1e-2, batch_size=128, max_epochs=40)


def test_mlp_learns_xor():
    x, y = _xor_problem()
    x_test, y_test = _xor_problem(n=1000, seed=1)
    res = _XOR_TRAIN(jax.random.key(0), x, y)
    assert [w.shape for w, _ in res.params] == [(2, 32), (32, 32), (32, 1)]
    acc = np.mean((np.asarray(predict_proba(res.params, x_test)) >= 0.5) == y_test)
    assert acc > 0.95  # a linear model cannot beat ~0.5 here
    assert res.train_loss[-1] < 0.5 * res.train_loss[0]


def test_mlp_same_key_same_params_other_key_other_params():
    x, y = _xor_problem()
    p1 = _XOR_TRAIN(jax.random.key(3), x, y).params
    p2 = _XOR_TRAIN(jax.random.key(3), x, y).params
    p3 = _XOR_TRAIN(jax.random.key(4), x, y).params
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(p1[0][0]), np.asarray(p3[0][0]))


def test_mlp_early_stopping_keeps_best_validation_params():
    # small, noisy data and a large net with a large step size: validation loss turns up
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10)).astype(np.float32)
    y = (x[:, 0] + 1.5 * rng.normal(size=300) > 0).astype(np.int64)
    patience, max_epochs = 3, 200
    train = make_mlp_trainer(
        hidden=(128, 128),
        lr=1e-2,
        batch_size=32,
        max_epochs=max_epochs,
        patience=patience,
        val_fraction=0.3,
    )
    res = train(jax.random.key(0), x, y)
    epochs_run = len(res.val_loss)
    assert epochs_run < max_epochs  # it stopped early
    assert epochs_run == res.best_epoch + patience + 1
    assert res.best_epoch == int(np.argmin(res.val_loss))
    # the returned params are the best epoch's: recompute their validation loss
    xv, yv = x[res.val_index], y[res.val_index].astype(np.float32)

    def val_loss(params):
        logits = np.asarray(jnp.log(predict_proba(params, xv)))
        log1m = np.asarray(jnp.log1p(-predict_proba(params, xv)))
        return -np.mean(yv * logits + (1 - yv) * log1m)

    np.testing.assert_allclose(val_loss(res.params), res.val_loss.min(), rtol=1e-4)
    assert val_loss(res.last_params) > val_loss(res.params)
    # the split is stratified and disjoint
    assert np.intersect1d(res.train_index, res.val_index).size == 0
    assert len(res.train_index) + len(res.val_index) == len(y)
    assert abs(y[res.val_index].mean() - y.mean()) < 0.03


def test_second_fit_with_same_shapes_does_not_recompile(caplog):
    x, y = _xor_problem()
    x2, y2 = _xor_problem(seed=5)
    lr = _lr(1e-3)
    _XOR_TRAIN(jax.random.key(0), x, y)
    lr.fit(None, x, y)
    with jax.log_compiles(True), caplog.at_level("WARNING"):
        _XOR_TRAIN(jax.random.key(1), x2, y2)
        lr.fit(None, x2, y2)
    compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert compiled == []


def test_mlp_without_validation_big_batch_weight_decay_and_weights():
    x, y = _xor_problem(n=100)
    train = make_mlp_trainer(
        hidden=(8,), batch_size=1024, max_epochs=7, val_fraction=0.0, weight_decay=1e-2
    )
    res = train(jax.random.key(0), x, y, sample_weight=np.full(100, 0.5))
    assert len(res.train_loss) == 7 and len(res.val_loss) == 0 and len(res.val_index) == 0
    assert res.best_epoch == 6
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(res.last_params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(res.params))


# --------------------------------------------------------------- shared API behaviour


def test_predict_proba_is_pure_jittable_and_vmappable():
    x, y = _xor_problem()
    params = _XOR_TRAIN(jax.random.key(0), x, y).params
    batched = predict_proba(params, x)
    assert batched.shape == (len(y),)
    np.testing.assert_allclose(jax.jit(predict_proba)(params, x), batched, rtol=1e-5)
    np.testing.assert_allclose(
        jax.vmap(predict_proba, in_axes=(None, 0))(params, x), batched, rtol=1e-5
    )
    clf = make_mlp_classifier()
    assert clf.predict_proba is predict_proba


def test_predict_thresholds():
    x, y = _linear_problem()
    clf = _lr(1e-3)
    params = clf.fit(None, x, y)
    hard = predict(clf, params, x)
    assert hard.dtype == np.int64 and set(np.unique(hard)) <= {0, 1}
    np.testing.assert_array_equal(hard, np.asarray(clf.predict_proba(params, x)) >= 0.5)
    assert predict(clf, params, x, threshold=0.0).all()
    with pytest.raises(FairjaxError, match="threshold"):
        predict(clf, params, x, threshold=1.5)


def test_make_classifier_by_name():
    assert isinstance(make_classifier("logistic", l2=1e-3), Classifier)
    assert isinstance(make_classifier("mlp", hidden=(4,)), Classifier)
    assert isinstance(make_classifier("hgb", max_iter=5), Classifier)
    with pytest.raises(FairjaxError, match=r"'forest'.*\['hgb', 'logistic', 'mlp'\]"):
        make_classifier("forest")
    with pytest.raises(FairjaxError, match="hiden"):
        make_classifier("mlp", hiden=(4,))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(l2=-1.0), "l2"),
        (dict(max_steps=0), "max_steps"),
    ],
)
def test_logistic_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(FairjaxError, match=match):
        make_logistic_regression(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden=(0,)), "hidden"),
        (dict(lr=0.0), "lr"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(val_fraction=1.0), "val_fraction"),
        (dict(patience=0), "patience"),
    ],
)
def test_mlp_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(FairjaxError, match=match):
        make_mlp_classifier(**kwargs)


@pytest.mark.parametrize("name", ["logistic", "mlp", "hgb"])
@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x, y, w: (x[:, 0], y, w), r"shape \[n, d\]"),
        (
            lambda x, y, w: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y, w),
            "finite",
        ),
        (lambda x, y, w: (x, y[:-1], w), "y must have shape"),
        (lambda x, y, w: (x, np.where(y == 1, 2, 0), w), "only 0 and 1"),
        (lambda x, y, w: (x, np.zeros_like(y), w), "both classes"),
        (lambda x, y, w: (x, y, -w), "sample_weight"),
        (lambda x, y, w: (x, y, w[:-1]), "sample_weight"),
    ],
)
def test_fit_rejects_bad_inputs(name, mutate, match):
    x, y = _linear_problem(n=50)
    clf = make_classifier(name)
    x, y, w = mutate(x, y, np.ones(len(y)))
    with pytest.raises(FairjaxError, match=match):
        clf.fit(jax.random.key(0), x, y, sample_weight=w)


def test_hgb_is_sklearns_model_behind_the_classifier_interface():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _linear_problem(n=300)
    w = np.linspace(0.5, 1.5, len(y), dtype=np.float32)
    clf = make_hist_gradient_boosting(max_iter=20, early_stopping=True, n_threads=1)
    model = clf.fit(jax.random.key(3), x, y, sample_weight=w)
    proba = clf.predict_proba(model, jnp.asarray(x))  # jax input is accepted
    assert proba.shape == (len(y),) and proba.dtype == np.float64
    # same data, same random_state -> the same trees as scikit-learn's own fit
    theirs = HistGradientBoostingClassifier(
        max_iter=20, early_stopping=True, random_state=model.random_state
    ).fit(x, y, sample_weight=w)
    np.testing.assert_array_equal(proba, theirs.predict_proba(x)[:, 1])
    again = clf.fit(jax.random.key(3), x, y, sample_weight=w)
    np.testing.assert_array_equal(clf.predict_proba(again, x), proba)
    np.testing.assert_array_equal(predict(clf, model, x), proba >= 0.5)
    assert np.mean(predict(clf, model, x) == y) > 0.9
    with pytest.raises(FairjaxError, match="max_iter"):
        make_hist_gradient_boosting(max_iter=0)
    with pytest.raises(FairjaxError, match="n_threads"):
        make_hist_gradient_boosting(n_threads=0)


# -------------------------------------------------------------- acceptance: Adult


def test_adult_logistic_regression_matches_sklearn_accuracy():
    """Train on 4 race domains of Adult, test on the held-out "Black" domain: our LR is
    within 1 accuracy point of scikit-learn's on the same encoding."""
    from fairjax import data, datasets

    ds = datasets.load_adult()
    schema = ds.schema
    is_test = (ds.frame[schema.domain] == "Black").to_numpy()
    assert 0 < is_test.sum() < len(is_test)
    train, test = ds.select(~is_test), ds.select(is_test)
    enc = data.fit_encoder(train, columns=schema.features, scaling="standard")
    x_train, x_test = enc.encode(train.frame), enc.encode(test.frame)
    y_train, y_test = train.y, test.y

    l2 = 1e-4
    clf = make_logistic_regression(l2=l2)
    ours = np.mean(predict(clf, clf.fit(jax.random.key(0), x_train, y_train), x_test) == y_test)
    sk = LogisticRegression(C=1.0 / (len(y_train) * l2), max_iter=5000)
    theirs = np.mean(sk.fit(x_train, y_train).predict(x_test) == y_test)
    print(f"Adult (test = Black): fairjax LR accuracy {ours:.4f}, sklearn {theirs:.4f}")
    assert abs(ours - theirs) <= 0.01
