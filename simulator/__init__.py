"""gradsim: differentiable rigid-body and molecular-dynamics simulation on NVIDIA Warp.

Public API (every name is listed here once)::

    SceneBuilder            bodies, shapes, joints, actuators and a ground; finalize() -> Model
    load_mjcf, MJCFWarning  MuJoCo MJCF (common subset) -> SceneBuilder
    Model, State, Control, ControlSequence, ArticulationModel, eval_fk
    ContactSettings         contact softening, surrogate gradients, friction smoothing
    step                    one rigid-body step (the solver signature)
    rollout, Trajectory     many steps, recorded for wp.Tape
    SimulationDivergedError
    grad, GradientResult, RolloutObjective, register_estimator, GradientNotFiniteError
                            gradient estimators: analytic, truncated, es, hybrid, auto
    ControlObjective, SceneTaskObjective, OpenLoopForces, OpenLoopActions, LinearFeedback,
    LinearJointFeedback, MLPJointPolicy, PositionLoss, VelocityLoss, EffortLoss
                            control tasks (controllers, losses) as rollout objectives
    MDObjective, PackingObjective, LJFluidObjective
                            molecular-dynamics rollout objectives (from simulator.md)
    optimize, OptimizationResult, Adam
                            Adam with any estimator, progress bar, CSV log, checkpoint/resume

Subpackages: ``simulator.scenes`` (``make(name, ...)``), ``simulator.gradients``,
``simulator.diagnostics``, ``simulator.md`` (molecular dynamics),
``simulator.torch`` (needs the ``torch`` extra), ``simulator.demos``, ``simulator.bench``.
"""

from .articulation import ArticulationModel, eval_fk
from .builder import SceneBuilder
from .contact import ContactSettings
from .errors import SimulationDivergedError
from .gradients import GradientNotFiniteError, GradientResult, RolloutObjective, grad, register_estimator
from .mjcf import MJCFWarning, load_mjcf
from .model import Control, ControlSequence, Model, State
from .optimize import Adam, OptimizationResult, optimize
from .precision import Precision, get_precision
from .rigid import check_stable_timestep, step
from .rollout import Trajectory, rollout
from .tasks import (
    ControlObjective,
    EffortLoss,
    LinearFeedback,
    LinearJointFeedback,
    MLPJointPolicy,
    OpenLoopActions,
    OpenLoopForces,
    PositionLoss,
    SceneTaskObjective,
    VelocityLoss,
)

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "ArticulationModel",
    "ContactSettings",
    "Control",
    "ControlObjective",
    "ControlSequence",
    "EffortLoss",
    "GradientNotFiniteError",
    "GradientResult",
    "LJFluidObjective",
    "LinearFeedback",
    "LinearJointFeedback",
    "MDObjective",
    "MJCFWarning",
    "MLPJointPolicy",
    "Model",
    "OpenLoopActions",
    "OpenLoopForces",
    "OptimizationResult",
    "PackingObjective",
    "PositionLoss",
    "Precision",
    "RolloutObjective",
    "SceneBuilder",
    "SceneTaskObjective",
    "SimulationDivergedError",
    "State",
    "Trajectory",
    "VelocityLoss",
    "__version__",
    "check_stable_timestep",
    "eval_fk",
    "get_precision",
    "grad",
    "load_mjcf",
    "optimize",
    "register_estimator",
    "rollout",
    "step",
]

# the molecular-dynamics objectives live in simulator.md; imported on first use, so that `import simulator`
# does not pay for the MD kernels (~0.4 s)
_MD_OBJECTIVES = ("LJFluidObjective", "MDObjective", "PackingObjective")


def __getattr__(name):
    if name in _MD_OBJECTIVES:
        from .md import objectives

        return getattr(objectives, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_MD_OBJECTIVES])
