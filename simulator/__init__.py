"""gradsim: differentiable rigid-body and molecular-dynamics simulation on NVIDIA Warp.

Public API (every name is listed here once)::

    SceneBuilder            bodies, shapes, joints, actuators and a ground; finalize() -> Model
    load_mjcf, MJCFWarning  MuJoCo MJCF (common subset) -> SceneBuilder
                            (simulator.mjcf: to_mujoco_state, from_mujoco_state, actuator_order,
                            ctrl_to_joint_act, joint_act_to_ctrl move states and controls to and from MuJoCo)
    Model, State, Control, ControlSequence, ArticulationModel, eval_fk
    ContactSettings         contact softening, surrogate gradients, friction smoothing
    Solver, RigidSolver     the solver protocol (state, control, step, check_dt, capturable) and the rigid one
    step                    one rigid-body step (what RigidSolver.step calls)
    Engine, Workspace       the rollout engine every multi-step simulation runs in (graphs, caches)
    rollout, Trajectory     many steps, recorded for wp.Tape (a thin caller of Engine.rollout)
    SimulatorError          base of every package exception: ParameterError (a ValueError),
                            SimulationDivergedError, GradientNotFiniteError, LossNotFiniteError,
                            NonFinitePositionsError
    grad, evaluate, GradientResult, RolloutObjective, register_estimator
                            gradient estimators (analytic, truncated, es, hybrid, auto); the loss at theta
    scalar_loss             a (1,) scalar of any array (weights or one index) for tape.backward(loss=...)
    ControlObjective, SceneTaskObjective, OpenLoopForces, OpenLoopActions, LinearFeedback,
    LinearJointFeedback, MLPJointPolicy
                            control tasks (controllers, loss terms) as rollout objectives
    Task, LossContext, JointError, ForwardProgress, PositionLoss, VelocityLoss, EffortLoss,
    ActuatorEffort, trajectory_loss
                            one task model: loss terms (simulator.losses) used by objectives,
                            robot scenes, torch ops and demos
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
from .engine import Engine, Trajectory, Workspace
from .errors import (
    GradientNotFiniteError,
    LossNotFiniteError,
    NonFinitePositionsError,
    ParameterError,
    SimulationDivergedError,
    SimulatorError,
)
from .gradients import GradientResult, RolloutObjective, evaluate, grad, register_estimator
from .losses import ActuatorEffort, ForwardProgress, JointError, LossContext, Task, scalar_loss, trajectory_loss
from .mjcf import MJCFWarning, load_mjcf
from .model import Control, ControlSequence, Model, State
from .optimize import Adam, OptimizationResult, optimize
from .precision import Precision, get_precision
from .rigid import check_stable_timestep, step
from .rollout import rollout
from .solver import RigidSolver, Solver
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
    "ActuatorEffort",
    "Adam",
    "ArticulationModel",
    "ContactSettings",
    "Control",
    "ControlObjective",
    "ControlSequence",
    "Engine",
    "EffortLoss",
    "ForwardProgress",
    "GradientNotFiniteError",
    "GradientResult",
    "JointError",
    "LJFluidObjective",
    "LinearFeedback",
    "LossNotFiniteError",
    "LinearJointFeedback",
    "LossContext",
    "MDObjective",
    "MJCFWarning",
    "MLPJointPolicy",
    "Model",
    "NonFinitePositionsError",
    "OpenLoopActions",
    "OpenLoopForces",
    "OptimizationResult",
    "ParameterError",
    "PackingObjective",
    "PositionLoss",
    "Precision",
    "RigidSolver",
    "RolloutObjective",
    "SceneBuilder",
    "SceneTaskObjective",
    "SimulationDivergedError",
    "SimulatorError",
    "Solver",
    "State",
    "Task",
    "Trajectory",
    "VelocityLoss",
    "Workspace",
    "__version__",
    "check_stable_timestep",
    "eval_fk",
    "get_precision",
    "evaluate",
    "grad",
    "load_mjcf",
    "optimize",
    "register_estimator",
    "rollout",
    "step",
    "scalar_loss",
    "trajectory_loss",
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
