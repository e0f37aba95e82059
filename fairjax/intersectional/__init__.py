"""Synthetic data for intersectional fairness from the hierarchy of groups (arXiv 2405.14521).

k binary sensitive axes define 2^k intersectional groups; the generator of a group mixes
examples of its k parents (each parent marginalises one axis) and is trained with an MMD
loss; the synthetic rows augment the training set of a classifier trained with equal
sampling.

- `groups`: the hierarchy (parents, deeper ancestors, the bit-flipped control) and rows
  stored by (group, label) cell, with a jit-safe sampler;
- `generators`: the "simple", "per-feature" and "linear" parameterisations and their MMD
  training, vmapped over all cells;
- `distinguish`: per-group real-vs-generated classifier two-sample tests, vmapped;
- `augment`: augmentation counts, equal-sampling batches, the early-stopped classifier,
  the model selection rule;
- `settings`: binary axes from columns, the bundled Adult and COMPAS settings, splits;
- `pipeline`: `fit` / `IntersectionalModel.sample` / `save` / `load`, the interface of
  `fairjax.generators` (method "intersectional").

Maheshwari, Bellet, Denis, Keller. Synthetic Data Generation for Intersectional Fairness
by Leveraging Hierarchical Group Structure. arXiv 2405.14521.
"""

from fairjax.intersectional import augment, distinguish, generators, groups, pipeline, settings
from fairjax.intersectional.pipeline import (
    PRESETS,
    IntersectionalConfig,
    IntersectionalModel,
    fit,
    load,
)
from fairjax.intersectional.settings import SETTINGS, load_setting

__all__ = [
    "PRESETS",
    "SETTINGS",
    "IntersectionalConfig",
    "IntersectionalModel",
    "augment",
    "distinguish",
    "fit",
    "generators",
    "groups",
    "load",
    "load_setting",
    "pipeline",
    "settings",
]
