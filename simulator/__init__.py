"""gradsim: differentiable rigid-body and molecular-dynamics simulation on NVIDIA Warp.

Public API (every name is listed here once)::

    SceneBuilder        build bodies, shapes and a ground; finalize() -> Model
    Model, State, Control, ControlSequence
    ContactSettings     contact softening, surrogate gradients, friction smoothing
    step                one rigid-body step (the solver signature)
    rollout, Trajectory many steps, recorded for wp.Tape
    SimulationDivergedError
"""

from .builder import SceneBuilder
from .contact import ContactSettings
from .errors import SimulationDivergedError
from .model import Control, ControlSequence, Model, State
from .precision import Precision, get_precision
from .rigid import check_stable_timestep, step
from .rollout import Trajectory, rollout

__version__ = "0.1.0"

__all__ = [
    "ContactSettings",
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

# --- articulated robots (joints, actuators, MJCF import) ---
from .articulation import ArticulationModel, eval_fk  # noqa: E402
from .mjcf import MJCFWarning, load_mjcf  # noqa: E402

__all__ += ["ArticulationModel", "MJCFWarning", "eval_fk", "load_mjcf"]
