"""fairjax: fair synthetic tabular data in JAX, and the metrics to judge it.

Light modules load with the package (`data`, `datasets`, `metrics`); the generative
pipelines (`fairjax.fadm`, ...) import JAX/Flax models and are imported explicitly.
"""

from fairjax import data, datasets, metrics
from fairjax.errors import FairjaxError

__version__ = "0.1.0"
__all__ = ["FairjaxError", "__version__", "data", "datasets", "metrics"]
