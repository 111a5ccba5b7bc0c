"""gradsim: differentiable rigid-body and molecular-dynamics simulation on NVIDIA Warp.

Public API (every name is listed here once)::

    SceneBuilder        build bodies, shapes and a ground; finalize() -> Model
    Model, State, Control, ControlSequence
    ContactSettings     contact softening, surrogate gradients, friction smoothing
    step                one rigid-body step (the solver signature)
    rollout, Trajectory many steps, recorded for wp.Tape
    SimulationDivergedError
    grad, GradientResult, RolloutObjective, register_estimator, GradientNotFiniteError
                        gradient estimators (analytic, truncated, es, hybrid, auto)
    ControlObjective, OpenLoopForces, LinearFeedback, PositionLoss, VelocityLoss, EffortLoss
                        control tasks on rigid scenes
    optimize, OptimizationResult
                        Adam with any estimator, progress bar, CSV log, checkpoint/resume
"""

from .builder import SceneBuilder
from .contact import ContactSettings
from .errors import SimulationDivergedError
from .model import Control, ControlSequence, Model, State
from .precision import Precision, get_precision
from .rigid import check_stable_timestep, step
from .rollout import Trajectory, rollout
from .gradients import GradientNotFiniteError, GradientResult, RolloutObjective, grad, register_estimator
from .optimize import OptimizationResult, optimize
from .tasks import ControlObjective, EffortLoss, LinearFeedback, OpenLoopForces, PositionLoss, VelocityLoss

__version__ = "0.1.0"

__all__ = [
    "ContactSettings",
    "ControlObjective",
    "EffortLoss",
    "GradientNotFiniteError",
    "GradientResult",
    "LinearFeedback",
    "OpenLoopForces",
    "PositionLoss",
    "RolloutObjective",
    "OptimizationResult",
    "VelocityLoss",
    "optimize",
    "grad",
    "register_estimator",
    "Control",
    "ControlSequence",
    "Model",
    "Precision",
    "SceneBuilder",
    "SimulationDivergedError",
    "State",
    "Trajectory",
    "__version__",
    "check_stable_timestep",
    "get_precision",
    "rollout",
    "step",
]
