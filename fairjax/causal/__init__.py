"""Causal fairness analysis in the standard fairness model (Plečko & Bareinboim, 2022).

- `decompose`: one-step, cross-fitted estimates (with standard errors) of the x-specific
  measures tv, ctfde, ctfie, ctfse and ett of a data set; `format_decomposition` and
  `decomposition_to_dict` render its table for the command line and for JSON.
- `fit_fair_predictor` / `predict_fair`: an MLP trained with penalties on its own
  ctfde / ctfie / ctfse (zero, or the real outcome's value for business-necessity effects).
- `estimators`: the influence functions and pseudo-outcomes, as pure JAX functions.
- `nuisance`: the cross-fitted regressions (logistic or MLP) behind the estimators.

References:
  Plečko & Bareinboim (2022), Causal Fairness Analysis, arXiv 2207.11385.
"""

from fairjax.causal.decompose import decompose, decomposition_to_dict, format_decomposition
from fairjax.causal.estimators import MEASURES, OneStepEstimate, ctf_functionals, ctf_measures
from fairjax.causal.fair_predictor import (
    FairPenalty,
    FairPredictor,
    fair_loss,
    fit_fair_predictor,
    make_penalty,
    plugin_effects,
    predict_fair,
)

__all__ = [
    "MEASURES",
    "FairPenalty",
    "FairPredictor",
    "OneStepEstimate",
    "ctf_functionals",
    "ctf_measures",
    "decompose",
    "decomposition_to_dict",
    "fair_loss",
    "fit_fair_predictor",
    "format_decomposition",
    "make_penalty",
    "plugin_effects",
    "predict_fair",
]
