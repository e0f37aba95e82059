"""Registry of the generative methods behind `fairjax fit --method NAME`.

Every method module provides the same interface:

    PRESETS: dict[str, Config]            # at least "quick" and "paper"
    fit(key, dataset, *, config, progress=True) -> Model
    load(path) -> Model
    Model.sample(key, n, *, label_proportion=0.5, progress=False, **method_options) -> DataFrame
    Model.save(path, *, overwrite=False, provenance=None)   # a verified folder (persist)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from fairjax import persist
from fairjax.errors import FairjaxError

METHODS = {
    "fadm": "fairjax.fadm",
    "vae": "fairjax.baselines.vae",
    "gan": "fairjax.baselines.gan",
    "ddpm": "fairjax.baselines.ddpm",
    "fairgan": "fairjax.baselines.fairgan",
    "intersectional": "fairjax.intersectional.pipeline",
    "faircausesyn": "fairjax.faircausesyn.pipeline",
}


def get(method: str) -> ModuleType:
    """The module implementing `method`; FairjaxError listing the methods for an unknown one."""
    if method not in METHODS:
        raise FairjaxError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    return importlib.import_module(METHODS[method])


def load(path: str | Path):
    """Load any saved generator, whatever its method."""
    return get(persist.read_method(path)).load(path)
