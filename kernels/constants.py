"""Enum-like constants shared by the kernels and the host code: the one place each is defined.

Kernels use the members by attribute (``ShapeType.BOX``): Warp 1.19 folds an ``IntEnum`` or
``IntFlag`` member reached through its class into an integer literal at code generation, and the
module hash changes with its value. (A bare name bound to a member, ``BOX = ShapeType.BOX``, is
not folded inside a kernel; the older module-level names are therefore plain ``int``s derived
from these classes.) Host code compares, indexes and passes the members as ``int``s.

Every integer here is an ``int32`` in the kernels.
"""

import enum


class ShapeType(enum.IntEnum):
    """Collision shape kind (``Model.shape_type``)."""

    SPHERE = 0
    BOX = 1
    CAPSULE = 2
    PLANE = 3
    MESH = 4


class CandidateKind(enum.IntEnum):
    """Contact candidate kind (``Model.candidate_kind``): a sphere (a point with a radius) or a
    segment with a radius (capsule against capsule)."""

    POINT = 0
    SEGMENT = 1


class ContactMode(enum.IntEnum):
    """Contact law (``ContactSettings.mode`` by lower-case name): softened forward and backward,
    or hard forward with softened derivatives backward."""

    SOFT = 0
    SURROGATE = 1


class JointType(enum.IntEnum):
    """Joint kind (``joint_type``), with its generalised coordinate and velocity counts.

    ``coord_count`` / ``dof_count``: revolute and prismatic 1 / 1, ball 4 / 3 (quaternion /
    angular velocity), free 7 / 6 (position and quaternion / linear and angular velocity),
    fixed 0 / 0.
    """

    FREE = 0
    FIXED = 1
    REVOLUTE = 2
    PRISMATIC = 3
    BALL = 4

    @property
    def coord_count(self) -> int:
        """Number of entries of ``joint_q`` the joint owns."""
        return JOINT_COORD_COUNT[self]

    @property
    def dof_count(self) -> int:
        """Number of entries of ``joint_qd`` (degrees of freedom) the joint owns."""
        return JOINT_DOF_COUNT[self]


JOINT_COORD_COUNT = {JointType.FREE: 7, JointType.FIXED: 0, JointType.REVOLUTE: 1, JointType.PRISMATIC: 1, JointType.BALL: 4}
JOINT_DOF_COUNT = {JointType.FREE: 6, JointType.FIXED: 0, JointType.REVOLUTE: 1, JointType.PRISMATIC: 1, JointType.BALL: 3}


class ActuatorType(enum.IntEnum):
    """Actuator kind: a motor (torque/force = gear * control) or a PD position servo."""

    MOTOR = 0
    POSITION = 1


class PotentialKind(enum.IntEnum):
    """Pair potential of a particle model; ``kind.name.lower()`` is its public name."""

    LENNARD_JONES = 0
    SOFT_SPHERE = 1
    MORSE = 2


class PairRange(enum.IntEnum):
    """How far apart a pair may be listed by the neighbor search: the search radius (cutoff +
    skin) for every pair, or sigma_ij + skin with sigma_ij = (d_i + d_j) / 2 or the type pair's
    sigma (for a potential that vanishes beyond sigma_ij, the soft sphere)."""

    CUTOFF = 0
    DIAMETERS = 1
    TYPE_SIGMA = 2


class PairAdjoint(enum.IntFlag):
    """Bits of the pair-force adjoint kernel's ``wanted``: which output adjoints exist (``ADJ_*``)
    and which input adjoints to accumulate (``GRAD_*``)."""

    ADJ_FORCES = 1
    ADJ_ENERGY = 2
    ADJ_VIRIAL = 4
    GRAD_POSITIONS = 8
    GRAD_DIAMETER = 16
    GRAD_EPSILON = 32
    GRAD_SIGMA = 64
    GRAD_ALPHA = 128
    GRAD_BOX = 256


class NeighborStatus(enum.IntEnum):
    """Index of each entry of a neighbor list's ``status`` array (int32, ``NEIGHBOR_STATUS_SIZE``).

    ``OVERFLOW`` and ``NEEDS_HOST`` hold a :class:`StatusFlag`; ``REBUILDS`` counts the rebuilds
    done on the device. After either flag is raised the list is not valid.
    """

    OVERFLOW = 0  # a capacity (neighbors per particle or particles per cell) overflowed
    NEEDS_HOST = 1  # a position is not finite or the box changed: the host must redo the step
    REBUILDS = 2  # number of device-side rebuilds


NEIGHBOR_STATUS_SIZE = len(NeighborStatus)


class StatusFlag(enum.IntEnum):
    """Value of a status flag (``NeighborStatus.OVERFLOW``, ``NEEDS_HOST``, a rebuild flag)."""

    CLEAR = 0
    RAISED = 1


# ``first_bad_step`` of a world that never diverged (int32 max, the identity of atomic_min)
NO_DIVERGENCE = 2147483647
