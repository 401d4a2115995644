"""Inference kernels: covariance matrices and bootstraps on arrays (numbers in, numbers out).

Nothing here knows about estimators, frames of user data or results: an estimator
builds its scores and calls one of these, so each formula is written once.
"""

from evaluator.inference.bootstrap import (
    CellBootstrap,
    WeightKind,
    WildBootstrapTest,
    draw_weights,
    wild_cluster_bootstrap,
    wild_cluster_bootstrap_cells,
    wild_sup_t_critical_value,
)
from evaluator.inference.sandwich import cr1_factor, cr1_vcov, group_sums, hc1_vcov

__all__ = [
    "CellBootstrap",
    "WeightKind",
    "WildBootstrapTest",
    "cr1_factor",
    "cr1_vcov",
    "draw_weights",
    "group_sums",
    "hc1_vcov",
    "wild_cluster_bootstrap",
    "wild_cluster_bootstrap_cells",
    "wild_sup_t_critical_value",
]
