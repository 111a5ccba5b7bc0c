"""Joint and actuator kinds, their coordinate and dof counts, and the builder's records of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

# default soft-limit law: stiff, critically damped for about 1 kg m^2, hard (s = 0)
DEFAULT_LIMIT_STIFFNESS = 1.0e4
DEFAULT_LIMIT_DAMPING = 1.0e2


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
    limit_stiffness: float
    limit_damping: float
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
