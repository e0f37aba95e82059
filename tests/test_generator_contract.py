"""One contract for every registered generator (`fairjax.generators.Generator`).

Each method is fitted once with a tiny configuration on a small table of the kind it
needs (the joint baselines: the fits `test_baselines` makes anyway), then checked for:
the protocol and the `sample` signature, the training table's columns and dtypes,
determinism for a fixed key, `labels` and `label_proportion`, and save -> load -> the
same rows.
"""

from __future__ import annotations

import dataclasses
import inspect

import jax
import numpy as np
import pandas as pd
import pytest
import test_baselines
from test_fadm import TINY as FADM_TINY
from test_fadm import toy_dataset
from test_faircausesyn import SCM_ROLES, scm_frame
from test_faircausesyn import TINY as CAUSAL_TINY
from test_intersectional import TINY as INTERSECTIONAL_TINY
from test_intersectional import _toy_dataset

from fairjax import generators
from fairjax.data import Schema, TabularDataset


def _causal_data():
    schema = Schema(label="y", sensitive=("x",), categorical=("x", "z", "w", "y"), numeric=())
    return TabularDataset(scm_frame(3000), schema, name="scm")


def _steps(config, **fields):
    return dataclasses.replace(config, **fields)


SETUPS = {
    "fadm": (
        toy_dataset,
        _steps(FADM_TINY, score_steps=100, classifier_steps=100, sample_steps=20),
    ),
    # the joint baselines: the models test_baselines fits anyway (shared, not refitted)
    **{m: (lambda: test_baselines.TOY, None) for m in test_baselines.MODULES},
    "intersectional": (_toy_dataset, INTERSECTIONAL_TINY),
    "faircausesyn": (
        _causal_data,
        _steps(
            CAUSAL_TINY,
            **SCM_ROLES,
            steps=100,
            rounds=1,
            rows_per_round=500,
            audit_folds=2,
        ),
    ),
}
_FITTED: dict = {}


def fitted(method):
    """(model, training data) of `method`, fitted once per session."""
    if method in test_baselines.MODULES:
        return test_baselines.fitted(method), test_baselines.TOY
    if method not in _FITTED:
        make_data, config = SETUPS[method]
        data = make_data()
        module = generators.get(method)
        _FITTED[method] = (module.fit(jax.random.key(0), data, config=config, progress=False), data)
    return _FITTED[method]


def test_every_registered_method_has_a_setup():
    assert set(SETUPS) == set(generators.METHODS)


@pytest.mark.parametrize("method", sorted(generators.METHODS))
def test_generator_contract(method, tmp_path):
    model, data = fitted(method)
    assert isinstance(model, generators.Generator)
    params = inspect.signature(model.sample).parameters
    assert list(params)[:2] == ["key", "n"]
    for name, default in (("labels", None), ("label_proportion", None), ("progress", False)):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default is default, name

    key = jax.random.key(7)
    frame = model.sample(key, 64)
    assert len(frame) == 64
    columns = [c for c in data.schema.columns if c in frame.columns]  # the schema's order
    assert list(frame.columns) == columns and data.schema.label in columns
    for c in columns:  # numbers stay numbers, integers integers, text text
        real, gen = data.frame[c].dtype, frame[c].dtype
        assert pd.api.types.is_numeric_dtype(real) == pd.api.types.is_numeric_dtype(gen), c
        if pd.api.types.is_integer_dtype(real):
            assert pd.api.types.is_integer_dtype(gen), c
    pd.testing.assert_frame_equal(model.sample(key, 64), frame)
    assert not model.sample(jax.random.key(8), 64).equals(frame)

    labels = np.tile([1, 0, 0, 1], 16)
    given = model.sample(key, 64, labels=labels)
    np.testing.assert_array_equal(given[data.schema.label].to_numpy(), labels)
    share = model.sample(key, 400, label_proportion=0.25)[data.schema.label].mean()
    assert share == pytest.approx(0.25, abs=0.07)

    model.save(tmp_path / "model")
    loaded = generators.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.sample(key, 64), frame)
