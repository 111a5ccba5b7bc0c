"""Gradient estimators for rollout objectives: one call, chosen by name.

``grad(objective, theta, estimator="analytic" | "truncated" | "es" | "hybrid" | "auto", **options)``
returns a :class:`GradientResult`. See :mod:`simulator.gradients.estimators` for each estimator
and :mod:`simulator.gradients.objective` for the objective interface and the reverse sweep
(checkpointing, truncation, clipping, adjoint-norm traces).
"""

from .estimators import (
    AnalyticEstimator,
    AutoEstimator,
    Estimator,
    ESEstimator,
    GradientResult,
    HybridEstimator,
    TruncatedEstimator,
    estimators,
    grad,
    inverse_variance_combine,
    make_estimator,
    register_estimator,
)
from .objective import GradientNotFiniteError, RolloutObjective, SweepResult, evaluate, reverse_sweep

__all__ = [
    "AnalyticEstimator",
    "AutoEstimator",
    "ESEstimator",
    "Estimator",
    "GradientNotFiniteError",
    "GradientResult",
    "HybridEstimator",
    "RolloutObjective",
    "SweepResult",
    "TruncatedEstimator",
    "estimators",
    "evaluate",
    "grad",
    "inverse_variance_combine",
    "make_estimator",
    "register_estimator",
    "reverse_sweep",
]
