"""The joint and actuator methods of ``SceneBuilder`` (see :mod:`simulator.articulation`)."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError, check_finite, check_nonnegative, check_positive, check_vector, describe
from ..spatial import normalize_quaternion
from .joints import (
    ACTUATOR_KINDS,
    DEFAULT_LIMIT_DAMPING,
    DEFAULT_LIMIT_IMPEDANCE,
    DEFAULT_LIMIT_SOLREF,
    DEFAULT_LIMIT_STIFFNESS,
    DOF_COUNT,
    JOINT_BALL,
    JOINT_FREE,
    JOINT_KINDS,
    JOINT_NAMES,
    JOINT_PRISMATIC,
    JOINT_REVOLUTE,
    _Actuator,
    _Joint,
    limit_law_from_solref,
)
from .layout import build_layout
from .model import ArticulationModel, joint_parameters


class ArticulationBuilderMixin:
    """Joint and actuator methods of :class:`simulator.SceneBuilder` (see the module docstring)."""

    @property
    def joints(self) -> list[_Joint]:
        return self.__dict__.setdefault("_joints", [])

    @property
    def actuators(self) -> list[_Actuator]:
        return self.__dict__.setdefault("_actuators", [])

    def add_joint(
        self,
        kind: str,
        parent: int,
        child: int,
        *,
        position=(0.0, 0.0, 0.0),
        axis=None,
        q=None,
        qd=None,
        armature: float = 0.0,
        damping: float = 0.0,
        stiffness: float = 0.0,
        spring_ref: float = 0.0,
        ref: float = 0.0,
        limit=None,
        limit_solref=None,
        limit_impedance: float = DEFAULT_LIMIT_IMPEDANCE,
        limit_stiffness: float | None = None,
        limit_damping: float | None = None,
        limit_softness: float = 0.0,
        name: str | None = None,
    ) -> int:
        """Connect ``child`` to ``parent`` (-1 = the world) and return the joint index.

        Args:
            kind: ``"free"``, ``"fixed"``, ``"revolute"``/``"hinge"``, ``"prismatic"``/``"slide"``
                or ``"ball"``.
            position: joint anchor in the child body's frame [m] (ignored for free joints).
            axis: joint axis in the child body's frame (revolute and prismatic; need not be unit).
            q: initial coordinates (see the table in the module docstring); default: the pose
                given to ``add_body`` (q = ``ref``, identity quaternion, or the body pose for free).
            qd: initial velocities [rad/s or m/s]; default zero.
            armature: rotor inertia added to each dof's diagonal [kg m^2 or kg].
            damping: joint viscous damping [N m s/rad or N s/m].
            stiffness: joint spring ``tau = stiffness * (spring_ref - q)`` [N m/rad or N/m]
                (revolute and prismatic joints; integrated implicitly like the damping).
            spring_ref: the spring's rest coordinate [rad or m].
            ref: the coordinate [rad or m] at which the child has the pose given to ``add_body``
                (revolute and prismatic joints; MJCF's joint ``ref``). ``q``, ``spring_ref``,
                ``limit`` and position targets are all measured on the same axis, so the child is
                turned by ``q - ref`` from that pose.
            limit: (lower, upper) [rad or m] for revolute and prismatic joints, or None.
            limit_solref: MuJoCo's ``solreflimit`` (time constant [s], damping ratio), or
                (-stiffness [1/s^2], -damping [1/s]); default (0.02, 1). The limit then acts as
                ``inertia * relu(k*d + b*dd)`` on the violation ``d`` (see
                :func:`~simulator.articulation.joints.limit_law_from_solref` and the module
                docstring), the same penetration and rebound for every inertia.
            limit_impedance: MuJoCo's ``solimplimit`` dmax (0.95), used by a negative solref only.
            limit_stiffness, limit_damping: instead of a solref, a force-level law: ke [N m/rad or
                N/m] and kd [N m s/rad or N s/m] in ``relu(ke*d + kd*dd)`` (the same clamped
                spring-damper, not scaled by the inertia); one given alone takes the other's
                default (1e4, 1e2).
            limit_softness: softening length s [rad or m] of the limit's gate and clamp (0: hard).
            name: label used by MJCF import, errors and ``model.articulation.joint_names``.
        """
        label = name or f"joint{len(self.joints)}"
        if kind not in JOINT_KINDS:
            raise ParameterError(f"kind of {label} must be one of {sorted(JOINT_KINDS)}, got {kind!r}")
        code = JOINT_KINDS[kind]
        nbodies = len(self.bodies)
        if not isinstance(child, (int, np.integer)) or not 0 <= child < nbodies:
            raise ParameterError(f"child of {label} must be a body index in [0, {nbodies}), got {child!r}")
        if not isinstance(parent, (int, np.integer)) or not -1 <= parent < nbodies:
            raise ParameterError(f"parent of {label} must be -1 (world) or a body index in [0, {nbodies}), got {parent!r}")
        parent, child = int(parent), int(child)
        if parent == child:
            raise ParameterError(f"parent and child of {label} must be different bodies, got parent == child == {child}")
        existing = [j for j in self.joints if j.child == child]
        if existing and existing[0].parent != parent:
            raise ParameterError(
                f"kinematic loop: body {child} ({self.bodies[child].name}) already has parent {existing[0].parent} "
                f"through {existing[0].name}; {label} would give it a second parent {parent}. Closed chains are not "
                "supported in reduced coordinates"
            )
        if existing and (code == JOINT_FREE or existing[0].kind == JOINT_FREE):
            raise ParameterError(f"a free joint must be the only joint of its body; body {child} already has {existing[0].name}")
        ancestor = parent
        while ancestor >= 0:
            if ancestor == child:
                raise ParameterError(f"kinematic loop: {label} makes body {child} an ancestor of itself (parent={parent})")
            up = [j.parent for j in self.joints if j.child == ancestor]
            ancestor = up[0] if up else -1
        position = check_vector(f"position of {label}", position)
        unit_axis = np.array([0.0, 0.0, 1.0])
        if code in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            if axis is None:
                raise ParameterError(f"axis of {label} is required for a {kind} joint, got None")
            axis = check_vector(f"axis of {label}", axis)
            length = np.linalg.norm(axis)
            if length < 1e-9:
                raise ParameterError(f"axis of {label} must be non-zero, got {axis.tolist()!r}")
            unit_axis = axis / length
        q = self._check_joint_q(label, code, q)
        dofs = DOF_COUNT[code]
        qd = np.zeros(dofs) if qd is None else check_finite(f"qd of {label}", np.atleast_1d(qd)).astype(float)
        if qd.shape != (dofs,):
            raise ParameterError(f"qd of {label} must have {dofs} entries for a {kind} joint, got {describe(qd)}")
        if limit is not None:
            if code not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
                raise ParameterError(f"limit of {label}: only revolute and prismatic joints take limits, got kind {kind!r}")
            lower, upper = (float(x) for x in check_finite(f"limit of {label}", limit).reshape(2))
            if not lower < upper:
                raise ParameterError(f"limit of {label} must have lower < upper, got {limit!r}")
            limit = (lower, upper)
        stiffness = float(check_nonnegative(f"stiffness of {label}", stiffness))
        spring_ref = float(check_finite(f"spring_ref of {label}", spring_ref))
        ref = float(check_finite(f"ref of {label}", ref))
        if ref != 0.0 and code not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            raise ParameterError(f"ref={ref!r} of {label}: only revolute and prismatic joints take a reference coordinate, got kind {kind!r}")
        if (stiffness != 0.0 or spring_ref != 0.0) and code not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            raise ParameterError(
                f"stiffness={stiffness!r}, spring_ref={spring_ref!r} of {label}: only revolute and prismatic joints take a spring, "
                f"got kind {kind!r}"
            )
        limit_k, limit_b, inertial = self._limit_law(label, limit_solref, limit_impedance, limit_stiffness, limit_damping)
        joint = _Joint(
            kind=code,
            parent=parent,
            child=child,
            position=position,
            axis=unit_axis,
            q=q,
            qd=qd,
            armature=float(check_nonnegative(f"armature of {label}", armature)),
            damping=float(check_nonnegative(f"damping of {label}", damping)),
            stiffness=stiffness,
            spring_ref=spring_ref,
            ref=ref,
            limit=limit,
            limit_stiffness=limit_k,
            limit_damping=limit_b,
            limit_inertial=inertial,
            limit_softness=float(check_nonnegative(f"limit_softness of {label}", limit_softness)),
            name=label,
        )
        self.joints.append(joint)
        if parent >= 0:
            self.filter_collision(parent, child)
        return len(self.joints) - 1

    @staticmethod
    def _limit_law(label, solref, impedance, stiffness, damping):
        """(k, b, inertial) of a joint limit: from ``solref`` (inertial), or the force-level ke, kd."""
        if stiffness is None and damping is None:
            solref = DEFAULT_LIMIT_SOLREF if solref is None else check_finite(f"limit_solref of {label}", solref).reshape(-1)
            if len(solref) != 2:
                raise ParameterError(f"limit_solref of {label} must have 2 entries, got {describe(np.asarray(solref))}")
            impedance = float(check_finite(f"limit_impedance of {label}", impedance))
            if not 0.0 < impedance < 1.0:
                raise ParameterError(f"limit_impedance of {label} must be in (0, 1), got {impedance!r}")
            try:
                k, b = limit_law_from_solref(solref, impedance)
            except ParameterError as exc:
                raise ParameterError(f"limit_solref of {label}: {exc}") from None
            return k, b, True
        if solref is not None:
            raise ParameterError(f"{label}: give limit_solref or limit_stiffness/limit_damping, not both")
        k = DEFAULT_LIMIT_STIFFNESS if stiffness is None else float(check_nonnegative(f"limit_stiffness of {label}", stiffness))
        b = DEFAULT_LIMIT_DAMPING if damping is None else float(check_nonnegative(f"limit_damping of {label}", damping))
        return k, b, False

    @staticmethod
    def _check_joint_q(label, code, q):
        if q is None:
            return None
        if code in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            return check_finite(f"q of {label}", np.atleast_1d(q)).reshape(1).astype(float)
        if code == JOINT_BALL:
            return normalize_quaternion(f"q of {label}", q)
        if code == JOINT_FREE:
            q = check_finite(f"q of {label}", q)
            if q.shape != (7,):
                raise ParameterError(f"q of {label} must be (x, y, z, qx, qy, qz, qw) for a free joint, got {describe(q)}")
            return np.concatenate([q[:3], normalize_quaternion(f"q of {label} (rotation)", q[3:])])
        raise ParameterError(f"q of {label} must be None: a fixed joint has no coordinates, got {describe(q)}")

    def add_free_joint(self, child: int, *, parent: int = -1, **options) -> int:
        """A 6-dof floating base. Options: see :meth:`add_joint`."""
        return self.add_joint("free", parent, child, **options)

    def add_fixed_joint(self, parent: int, child: int, **options) -> int:
        """Weld ``child`` to ``parent``. Options: see :meth:`add_joint`."""
        return self.add_joint("fixed", parent, child, **options)

    def add_revolute_joint(self, parent: int, child: int, *, axis, **options) -> int:
        """A hinge about ``axis`` (child frame) through ``position``. Options: see :meth:`add_joint`."""
        return self.add_joint("revolute", parent, child, axis=axis, **options)

    def add_prismatic_joint(self, parent: int, child: int, *, axis, **options) -> int:
        """A slider along ``axis`` (child frame). Options: see :meth:`add_joint`."""
        return self.add_joint("prismatic", parent, child, axis=axis, **options)

    def add_ball_joint(self, parent: int, child: int, **options) -> int:
        """A spherical joint at ``position`` (child frame). Options: see :meth:`add_joint`."""
        return self.add_joint("ball", parent, child, **options)

    def add_actuator(
        self,
        joint: int,
        *,
        kind: str = "motor",
        gear: float = 1.0,
        ctrl_range=None,
        kp: float = 0.0,
        kd: float = 0.0,
        dof: int = 0,
        name: str | None = None,
    ) -> int:
        """Drive one dof of ``joint`` and return the actuator index (its column in ``joint_act``).

        Args:
            kind: ``"motor"`` (torque ``gear * u`` [N m or N]) or ``"position"`` (PD target
                ``u`` [rad or m]: ``kp*(u - q) - kd*qd``; revolute and prismatic joints only).
            gear: motor gain [N m per control unit].
            ctrl_range: (low, high) the control is clipped to, or None (no clipping).
            kp: position gain [N m/rad]; kd: velocity gain [N m s/rad].
            dof: which dof of a multi-dof joint (0 for revolute and prismatic).
        """
        label = name or f"actuator{len(self.actuators)}"
        if not isinstance(joint, (int, np.integer)) or not 0 <= joint < len(self.joints):
            raise ParameterError(f"joint of {label} must be a joint index in [0, {len(self.joints)}), got {joint!r}")
        if kind not in ACTUATOR_KINDS:
            raise ParameterError(f"kind of {label} must be one of {sorted(ACTUATOR_KINDS)}, got {kind!r}")
        target = self.joints[joint]
        dofs = DOF_COUNT[target.kind]
        if not isinstance(dof, (int, np.integer)) or not 0 <= dof < dofs:
            raise ParameterError(f"dof of {label} must be in [0, {dofs}) for joint {target.name}, got {dof!r}")
        if kind == "position" and target.kind not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            raise ParameterError(f"joint of {label} must be revolute or prismatic for a position actuator, got {target.name} "
                                 f"({JOINT_NAMES[target.kind]})")
        gear = float(check_finite(f"gear of {label}", gear))
        if ctrl_range is None:
            ctrl_range = (-np.inf, np.inf)
        else:
            low, high = (float(x) for x in np.asarray(ctrl_range, dtype=float).reshape(2))
            if np.isnan(low) or np.isnan(high) or not low < high:
                raise ParameterError(f"ctrl_range of {label} must be (low, high) with low < high, got {ctrl_range!r}")
            ctrl_range = (low, high)
        kp = float(check_nonnegative(f"kp of {label}", kp))
        kd = float(check_nonnegative(f"kd of {label}", kd))
        if kind == "position":
            check_positive(f"kp of {label}", kp)
        self.actuators.append(_Actuator(int(joint), int(dof), ACTUATOR_KINDS[kind], gear, ctrl_range, kp, kd, label))
        return len(self.actuators) - 1

    # ------------------------------------------------------------------ finalize
    def _finalize_articulation(self, model, coms, requires_grad: bool):
        """Build ``model.articulation`` and the model's per-world joint and actuator parameters
        (called by ``SceneBuilder.finalize``)."""
        if self.actuators and not self.joints:
            raise ParameterError(f"actuators need joints: the scene has {len(self.actuators)} actuators and no joint")
        layout = build_layout(self, coms) if self.joints else None
        for name, array in joint_parameters(model, layout, requires_grad).items():
            setattr(model, name, array)
        return None if layout is None else ArticulationModel.create(layout, model)

