"""Joint and actuator kinds, their coordinate and dof counts, and the builder's records of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..kernels.constants import JOINT_COORD_COUNT as COORD_COUNT, JOINT_DOF_COUNT as DOF_COUNT, JointType  # noqa: F401 (the joint tables)
from ..kernels.articulation import (
    ACTUATOR_MOTOR,
    ACTUATOR_POSITION,
    JOINT_BALL,
    JOINT_FIXED,
    JOINT_FREE,
    JOINT_PRISMATIC,
    JOINT_REVOLUTE,
)

JOINT_KINDS = {
    "free": int(JOINT_FREE),
    "fixed": int(JOINT_FIXED),
    "revolute": int(JOINT_REVOLUTE),
    "hinge": int(JOINT_REVOLUTE),
    "prismatic": int(JOINT_PRISMATIC),
    "slide": int(JOINT_PRISMATIC),
    "ball": int(JOINT_BALL),
}
JOINT_NAMES = {kind: kind.name.lower() for kind in JointType}
ACTUATOR_KINDS = {"motor": int(ACTUATOR_MOTOR), "position": int(ACTUATOR_POSITION)}

# MuJoCo's default solreflimit (time constant [s], damping ratio) and the dmax of its solimplimit
DEFAULT_LIMIT_SOLREF = (0.02, 1.0)
DEFAULT_LIMIT_IMPEDANCE = 0.95
# the force-level limit law of a joint given limit_stiffness or limit_damping but not both: the
# other takes this default (stiff, critically damped for about 1 kg m^2)
DEFAULT_LIMIT_STIFFNESS = 1.0e4
DEFAULT_LIMIT_DAMPING = 1.0e2


def limit_law_from_solref(solref, impedance: float = DEFAULT_LIMIT_IMPEDANCE) -> tuple[float, float]:
    """Acceleration-level stiffness k [1/s^2] and damping b [1/s] of a limit from MuJoCo's ``solref``
    (``load_mjcf`` uses it for a geom's contact ``solref`` too, with its ``solimp``'s dmax).

    MuJoCo drives a limit violation ``d`` towards ``a_ref = -b_mj*dd - k_mj*imp*d`` and reaches
    ``imp*a_ref`` (the impedance ``imp`` is ``solimp``'s ``dmax`` once ``d`` exceeds its width),
    so the joint's acceleration is ``-(k*d + b*dd)`` with ``k = imp^2*k_mj``, ``b = imp*b_mj``.
    ``solref = (timeconst, dampratio)``, both > 0: ``k_mj = 1/(dmax^2*timeconst^2*dampratio^2)``,
    ``b_mj = 2/(dmax*timeconst)``, hence ``k = 1/(timeconst*dampratio)^2`` and ``b = 2/timeconst``
    (the impedance cancels). ``solref = (-stiffness, -damping)``: ``k_mj``, ``b_mj`` given directly.
    A 3 m/s impact at the default (0.02, 1) penetrates ``3/50/e = 2.2 cm`` and leaves at
    ``3/e^2 = 0.41 m/s`` (the force would pull after ``2*timeconst``), whatever the inertia.
    """
    a, c = (float(x) for x in solref)
    if a > 0.0 and c > 0.0:
        return 1.0 / (a * c) ** 2, 2.0 / a
    if a <= 0.0 and c <= 0.0:
        return impedance * impedance * -a, impedance * -c
    raise ParameterError(f"solref must be (timeconst > 0, dampratio > 0) or (-stiffness <= 0, -damping <= 0), got {tuple(solref)!r}")


@dataclass
class _Joint:
    kind: int
    parent: int
    child: int
    position: np.ndarray  # anchor in the child body's origin frame [m]
    axis: np.ndarray  # unit axis in the child body's frame
    q: np.ndarray | None
    qd: np.ndarray
    armature: float
    damping: float
    stiffness: float
    spring_ref: float
    ref: float  # coordinate at which the child has its add_body pose [rad or m]
    limit: tuple[float, float] | None
    limit_stiffness: float  # k [1/s^2] of the inertial law, or ke [N m/rad or N/m] of the force law
    limit_damping: float  # b [1/s], or kd [N m s/rad or N s/m]
    limit_inertial: bool  # the law is scaled by the dof's effective inertia (from solref)
    limit_softness: float
    name: str


@dataclass
class _Actuator:
    joint: int
    dof: int
    kind: int
    gear: float
    ctrl_range: tuple[float, float]
    kp: float
    kd: float
    name: str
