"""Evaluation metrics: utility, binary-group and intersectional fairness, synthetic-data quality.

Pure functions on arrays (numpy, JAX arrays or lists in; Python floats / numpy arrays out,
float64). See each module's docstring for conventions on undefined rates (nan + warning).
"""

from fairjax.metrics.group import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    selection_rates,
)
from fairjax.metrics.intersectional import (
    DifferentialFairness,
    GroupRate,
    GroupRates,
    best_group_rate,
    differential_fairness,
    group_rates,
    intersectional_fairness,
    worst_best_ratio,
    worst_group_rate,
)
from fairjax.metrics.leakage import SensitiveProbe, fit_sensitive_probe, sensitive_leakage
from fairjax.metrics.quality import (
    classifier_two_sample_test,
    dcr_summary,
    distance_to_closest_record,
)
from fairjax.metrics.utility import (
    accuracy,
    balanced_accuracy,
    roc_auc,
    weighted_balanced_accuracy,
)

__all__ = [
    "DifferentialFairness",
    "GroupRate",
    "GroupRates",
    "SensitiveProbe",
    "accuracy",
    "balanced_accuracy",
    "best_group_rate",
    "classifier_two_sample_test",
    "dcr_summary",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "differential_fairness",
    "distance_to_closest_record",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "fit_sensitive_probe",
    "group_rates",
    "intersectional_fairness",
    "roc_auc",
    "selection_rates",
    "sensitive_leakage",
    "weighted_balanced_accuracy",
    "worst_best_ratio",
    "worst_group_rate",
]
