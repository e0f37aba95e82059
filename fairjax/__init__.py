"""fairjax: fair synthetic tabular data in JAX, and the metrics to judge it."""

from fairjax import data
from fairjax.errors import FairjaxError

__version__ = "0.1.0"
__all__ = ["FairjaxError", "__version__", "data"]
