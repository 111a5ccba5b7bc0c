"""Articulated bodies: joints, actuators and their reduced-coordinate dynamics.

Choice: reduced (generalised) coordinates, Featherstone-style
-----------------------------------------------------------
A robot's state is its joint coordinates ``joint_q`` (W, Q) and velocities ``joint_qd``
(W, D); body poses are derived from them by forward kinematics. We chose this over maximal
coordinates with constraint forces because

* joint constraints hold exactly by construction (no drift, no constraint stiffness that would
  force tiny time steps or add a stiff, chaotic direction to the gradients);
* the state has the minimal dimension (the ant has 15 coordinates instead of 13 x 13), so
  Jacobians are smaller and better conditioned;
* joint-space quantities (limits, damping, armature, PD gains) act on a single coordinate and
  can be integrated implicitly on the diagonal of the mass matrix;
* the contact kernel and every objective keep working: forward kinematics fills the usual
  ``body_q``, ``body_v``, ``body_w``, and contact wrenches are mapped back by ``J^T``.

Each step (``simulator.rigid.step`` calls :func:`step_articulations`) computes, per world in one
thread: bias forces by recursive Newton-Euler with gravity as a base acceleration, the mass
matrix by the composite-rigid-body algorithm, a Cholesky solve of

    (H + diag(armature + dt*(damping + kd) + dt^2*k)) qdd = tau - C(q, qd) + J^T f_contact - dt*k*qd,

where ``k``/``kd`` are the stiffness/damping of joint springs, PD actuators and active joint
limits (implicit Euler on those terms, so stiff gains and limits stay stable at any dt), then semi-implicit Euler
``qd += dt*qdd``, ``q += dt*qd`` (quaternions of free and ball joints renormalised) and forward
kinematics. Bodies without a joint keep the maximal-coordinate integrator.

Joints (``SceneBuilder.add_joint`` and shorthands)
-------------------------------------------------
=========  ====  =====  ===========================================================================
kind       q     qd     coordinates
=========  ====  =====  ===========================================================================
free       7     6      position [m] and quaternion (x, y, z, w) of the child COM in the parent
                        frame; linear [m/s] then angular [rad/s] velocity, parent axes
ball       4     3      quaternion; angular velocity [rad/s] in the parent joint frame
revolute   1     1      angle [rad] about ``axis`` (right-handed); alias ``hinge``
prismatic  1     1      displacement [m] along ``axis``; alias ``slide``
fixed      0     0      welds the child to the parent
=========  ====  =====  ===========================================================================

A joint's anchor ``position`` and ``axis`` are given in the child body's frame (as in MJCF); the
configuration given to ``add_body`` is ``q = 0`` (the free joint's ``q`` is the body pose). A body
may carry several joints (applied in order, as in MJCF), which are chained through massless
internal links. Soft limits use the contact law on the violation ``d`` [rad or m]:
``tau = ke*softplus_s(d) - kd*qd*sigmoid_s(d)`` with softening length ``s`` (0 = hard penalty).

Actuators (``SceneBuilder.add_actuator``): ``"motor"`` applies ``gear * clip(u, ctrl_range)``
[N m or N]; ``"position"`` applies ``kp*(clip(u, ctrl_range) - q) - kd*qd`` (PD to a target).
Controls ``u`` are per world and per step: ``Control.joint_act`` (W, A) and
``ControlSequence.joint_act`` (T, W, A), differentiable.

Parameters for system identification: joint armature, damping, stiffness and limits, and actuator
gear, kp and kd are per-world model arrays (``Model.joint_armature`` ... ``Model.actuator_kd``,
(W, D) or (W, A), listed by ``Model.parameters()``), initialised from the builder's values; with
``requires_grad=True`` a recorded rollout's ``tape.backward`` fills their ``.grad``. The
topology and the limit-law constants (ke, kd, s), spring references and control ranges are
shared by the worlds (``model.articulation``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

from .errors import check_finite, check_nonnegative, check_positive, check_vector
from .kernels.articulation import (
    ACTUATOR_MOTOR,
    ACTUATOR_POSITION,
    JOINT_BALL,
    JOINT_FIXED,
    JOINT_FREE,
    JOINT_PRISMATIC,
    JOINT_REVOLUTE,
    articulation_kernels,
)
from .model import JOINT_PARAMETERS
from .spatial import normalize_quaternion, quat_multiply, quat_to_matrix

JOINT_KINDS = {
    "free": int(JOINT_FREE),
    "fixed": int(JOINT_FIXED),
    "revolute": int(JOINT_REVOLUTE),
    "hinge": int(JOINT_REVOLUTE),
    "prismatic": int(JOINT_PRISMATIC),
    "slide": int(JOINT_PRISMATIC),
    "ball": int(JOINT_BALL),
}
JOINT_NAMES = {int(JOINT_FREE): "free", int(JOINT_FIXED): "fixed", int(JOINT_REVOLUTE): "revolute", int(JOINT_PRISMATIC): "prismatic",
               int(JOINT_BALL): "ball"}
COORD_COUNT = {int(JOINT_FREE): 7, int(JOINT_FIXED): 0, int(JOINT_REVOLUTE): 1, int(JOINT_PRISMATIC): 1, int(JOINT_BALL): 4}
DOF_COUNT = {int(JOINT_FREE): 6, int(JOINT_FIXED): 0, int(JOINT_REVOLUTE): 1, int(JOINT_PRISMATIC): 1, int(JOINT_BALL): 3}
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


# ---------------------------------------------------------------------------------------------
# builder side
# ---------------------------------------------------------------------------------------------
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
        limit=None,
        limit_stiffness: float = DEFAULT_LIMIT_STIFFNESS,
        limit_damping: float = DEFAULT_LIMIT_DAMPING,
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
                given to ``add_body`` (q = 0, identity quaternion, or the body pose for free).
            qd: initial velocities [rad/s or m/s]; default zero.
            armature: rotor inertia added to each dof's diagonal [kg m^2 or kg].
            damping: joint viscous damping [N m s/rad or N s/m].
            stiffness: joint spring ``tau = stiffness * (spring_ref - q)`` [N m/rad or N/m]
                (revolute and prismatic joints; integrated implicitly like the damping).
            spring_ref: the spring's rest coordinate [rad or m].
            limit: (lower, upper) [rad or m] for revolute and prismatic joints, or None.
            limit_stiffness, limit_damping, limit_softness: the soft-limit law (ke [N m/rad],
                kd [N m s/rad], s [rad]; see the module docstring).
            name: label used by MJCF import, errors and ``model.articulation.joint_names``.
        """
        label = name or f"joint{len(self.joints)}"
        if kind not in JOINT_KINDS:
            raise ValueError(f"kind of {label} must be one of {sorted(JOINT_KINDS)}, got {kind!r}")
        code = JOINT_KINDS[kind]
        nbodies = len(self.bodies)
        if not isinstance(child, (int, np.integer)) or not 0 <= child < nbodies:
            raise ValueError(f"child of {label} must be a body index in [0, {nbodies}), got {child!r}")
        if not isinstance(parent, (int, np.integer)) or not -1 <= parent < nbodies:
            raise ValueError(f"parent of {label} must be -1 (world) or a body index in [0, {nbodies}), got {parent!r}")
        parent, child = int(parent), int(child)
        if parent == child:
            raise ValueError(f"{label} connects body {child} to itself (parent == child == {child})")
        existing = [j for j in self.joints if j.child == child]
        if existing and existing[0].parent != parent:
            raise ValueError(
                f"kinematic loop: body {child} ({self.bodies[child].name}) already has parent {existing[0].parent} "
                f"through {existing[0].name}; {label} would give it a second parent {parent}. Closed chains are not "
                "supported in reduced coordinates"
            )
        if existing and (code == JOINT_FREE or existing[0].kind == JOINT_FREE):
            raise ValueError(f"a free joint must be the only joint of its body; body {child} already has {existing[0].name}")
        ancestor = parent
        while ancestor >= 0:
            if ancestor == child:
                raise ValueError(f"kinematic loop: {label} makes body {child} an ancestor of itself (parent={parent})")
            up = [j.parent for j in self.joints if j.child == ancestor]
            ancestor = up[0] if up else -1
        position = check_vector(f"position of {label}", position)
        unit_axis = np.array([0.0, 0.0, 1.0])
        if code in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            if axis is None:
                raise ValueError(f"axis of {label} is required for a {kind} joint")
            axis = check_vector(f"axis of {label}", axis)
            length = np.linalg.norm(axis)
            if length < 1e-9:
                raise ValueError(f"axis of {label} must be non-zero, got {axis.tolist()!r}")
            unit_axis = axis / length
        q = self._check_joint_q(label, code, q)
        dofs = DOF_COUNT[code]
        qd = np.zeros(dofs) if qd is None else check_finite(f"qd of {label}", np.atleast_1d(qd)).astype(float)
        if qd.shape != (dofs,):
            raise ValueError(f"qd of {label} must have {dofs} entries for a {kind} joint, got {qd!r}")
        if limit is not None:
            if code not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
                raise ValueError(f"limit of {label}: only revolute and prismatic joints take limits, got kind {kind!r}")
            lower, upper = (float(x) for x in check_finite(f"limit of {label}", limit).reshape(2))
            if not lower < upper:
                raise ValueError(f"limit of {label} must have lower < upper, got {limit!r}")
            limit = (lower, upper)
        stiffness = float(check_nonnegative(f"stiffness of {label}", stiffness))
        spring_ref = float(check_finite(f"spring_ref of {label}", spring_ref))
        if (stiffness != 0.0 or spring_ref != 0.0) and code not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            raise ValueError(
                f"stiffness={stiffness!r}, spring_ref={spring_ref!r} of {label}: only revolute and prismatic joints take a spring, "
                f"got kind {kind!r}"
            )
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
            limit=limit,
            limit_stiffness=float(check_nonnegative(f"limit_stiffness of {label}", limit_stiffness)),
            limit_damping=float(check_nonnegative(f"limit_damping of {label}", limit_damping)),
            limit_softness=float(check_nonnegative(f"limit_softness of {label}", limit_softness)),
            name=label,
        )
        self.joints.append(joint)
        if parent >= 0:
            self.filter_collision(parent, child)
        return len(self.joints) - 1

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
                raise ValueError(f"q of {label} must be (x, y, z, qx, qy, qz, qw) for a free joint, got {q!r}")
            return np.concatenate([q[:3], normalize_quaternion(f"q of {label} (rotation)", q[3:])])
        raise ValueError(f"q of {label}: a fixed joint has no coordinates")

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
            raise ValueError(f"joint of {label} must be a joint index in [0, {len(self.joints)}), got {joint!r}")
        if kind not in ACTUATOR_KINDS:
            raise ValueError(f"kind of {label} must be one of {sorted(ACTUATOR_KINDS)}, got {kind!r}")
        target = self.joints[joint]
        dofs = DOF_COUNT[target.kind]
        if not isinstance(dof, (int, np.integer)) or not 0 <= dof < dofs:
            raise ValueError(f"dof of {label} must be in [0, {dofs}) for joint {target.name}, got {dof!r}")
        if kind == "position" and target.kind not in (JOINT_REVOLUTE, JOINT_PRISMATIC):
            raise ValueError(f"{label}: position actuators need a revolute or prismatic joint, {target.name} is {JOINT_NAMES[target.kind]}")
        gear = float(check_finite(f"gear of {label}", gear))
        if ctrl_range is None:
            ctrl_range = (-np.inf, np.inf)
        else:
            low, high = (float(x) for x in np.asarray(ctrl_range, dtype=float).reshape(2))
            if np.isnan(low) or np.isnan(high) or not low < high:
                raise ValueError(f"ctrl_range of {label} must be (low, high) with low < high, got {ctrl_range!r}")
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
            raise ValueError("actuators need joints")
        layout = _build_layout(self, coms) if self.joints else None
        for name, array in joint_parameters(model, layout, requires_grad).items():
            setattr(model, name, array)
        return None if layout is None else ArticulationModel.create(layout, model, requires_grad)


def _pose(position, rotation):
    return np.concatenate([np.asarray(position, float), np.asarray(rotation, float)])


def _tf_mul(a, b):
    ra = quat_to_matrix(a[3:])
    return np.concatenate([a[:3] + ra @ b[:3], quat_multiply(a[3:], b[3:])])


def _tf_inv(a):
    conj = np.array([-a[3], -a[4], -a[5], a[6]])
    return np.concatenate([-(quat_to_matrix(conj) @ a[:3]), conj])


def _big(prec) -> float:
    """Finite stand-in for an infinite joint limit or control bound (its arithmetic stays finite)."""
    return float(np.finfo(prec.numpy).max / 16)


def joint_parameters(model, layout: dict | None, requires_grad: bool) -> dict[str, wp.array]:
    """The model's per-world joint and actuator parameters (``Model.joint_*``, ``Model.actuator_*``),
    by field name: (W, D) per dof, (W, A) per actuator, one padding column where D or A is 0
    (also for a model without joints), so that every field can be sliced by world."""
    prec, W = model.precision, model.num_worlds
    dof_joint = [] if layout is None else [layout["joints"][j] for j in layout["dof_joint"]]
    actuators = [] if layout is None else layout["actuators"]
    big = _big(prec)
    values = dict(
        joint_armature=[j.armature for j in dof_joint],
        joint_damping=[j.damping for j in dof_joint],
        joint_stiffness=[j.stiffness for j in dof_joint],
        joint_limit_lower=np.clip([j.limit[0] if j.limit else -np.inf for j in dof_joint], -big, big).tolist(),
        joint_limit_upper=np.clip([j.limit[1] if j.limit else np.inf for j in dof_joint], -big, big).tolist(),
        actuator_gear=[a.gear for a in actuators],
        actuator_kp=[a.kp for a in actuators],
        actuator_kd=[a.kd for a in actuators],
    )

    def per_world(row):
        row = np.asarray(row if row else [0.0], dtype=prec.numpy)
        return wp.array(np.broadcast_to(row, (W, row.size)).copy(), dtype=prec.scalar, device=model.device, requires_grad=requires_grad)

    return {name: per_world(row) for name, row in values.items()}


def _grouped(keys, n: int):
    """Group items by their key in [0, n): the start of each key's items (``n + 1`` offsets) and
    the item indices sorted by key, in item order within a key."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n))]), np.argsort(keys, kind="stable")


def _build_layout(builder, coms) -> dict:
    """Topologically ordered links, dofs, coordinates, mass-matrix pairs and actuators (numpy)."""
    joints = builder.joints
    bodies = builder.bodies
    by_child: dict[int, list[int]] = {}
    for j, joint in enumerate(joints):
        by_child.setdefault(joint.child, []).append(j)
    for j, joint in enumerate(joints):
        if joint.parent >= 0 and joint.parent not in by_child:
            raise ValueError(
                f"body {joint.parent} ({bodies[joint.parent].name}) is the parent of {joint.name} but has no joint itself; "
                "give it add_free_joint (a floating base) or add_fixed_joint(-1, body) (welded to the world)"
            )
    depth: dict[int, int] = {}

    def body_depth(b):
        if b < 0:
            return -1
        if b not in depth:
            depth[b] = body_depth(joints[by_child[b][0]].parent) + 1
        return depth[b]

    order = sorted(by_child, key=lambda b: (body_depth(b), b))
    com_pose = {b: _pose(bodies[b].position + quat_to_matrix(bodies[b].rotation) @ coms[b], bodies[b].rotation) for b in order}

    links, body_link = [], {}
    for b in order:
        chain = by_child[b]
        origin = _pose(bodies[b].position, bodies[b].rotation)
        parent_body = joints[chain[0]].parent
        parent_link = body_link[parent_body] if parent_body >= 0 else -1
        parent_frame = com_pose[parent_body] if parent_body >= 0 else _pose(np.zeros(3), [0, 0, 0, 1])
        for pos_in_chain, j in enumerate(chain):
            joint = joints[j]
            last = pos_in_chain == len(chain) - 1
            if joint.kind == JOINT_FREE:
                frame_world = parent_frame.copy()  # free: joint frame = parent frame, child side = COM
                child_xform = _pose(np.zeros(3), [0, 0, 0, 1])
                q0 = joint.q if joint.q is not None else _tf_mul(_tf_inv(parent_frame), com_pose[b])
            else:
                frame_world = _tf_mul(origin, _pose(joint.position, [0, 0, 0, 1]))
                child_xform = _pose(joint.position - coms[b], [0, 0, 0, 1]) if last else _pose(np.zeros(3), [0, 0, 0, 1])
                default_q = {JOINT_BALL: np.array([0.0, 0.0, 0.0, 1.0]), JOINT_FIXED: np.zeros(0)}.get(joint.kind, np.zeros(1))
                q0 = joint.q if joint.q is not None else default_q
            links.append(
                dict(
                    body=b if last else -1,
                    parent=parent_link,
                    joint=j,
                    kind=joint.kind,
                    axis=joint.axis,
                    parent_xform=_tf_mul(_tf_inv(parent_frame), frame_world),
                    child_xform=child_xform,
                    q0=np.asarray(q0, float),
                )
            )
            parent_link = len(links) - 1
            parent_frame = frame_world
        body_link[b] = len(links) - 1

    q_start, qd_start, dof_link, dof_coord, dof_joint = [], [], [], [], []
    nq = nd = 0
    for k, link in enumerate(links):
        q_start.append(nq)
        qd_start.append(nd)
        for i in range(DOF_COUNT[link["kind"]]):
            dof_link.append(k)
            dof_coord.append(nq if link["kind"] in (JOINT_REVOLUTE, JOINT_PRISMATIC) else -1)
            dof_joint.append(link["joint"])
        nq += COORD_COUNT[link["kind"]]
        nd += DOF_COUNT[link["kind"]]
    # the dof tree: a dof's parent is the previous dof of its joint, else the last dof of the
    # nearest ancestor link with dofs; pairs (i, j) list dof i itself and then the dofs above it
    pairs = []
    for i in range(nd):
        k = dof_link[i]
        pairs.append((i, i))
        a = k
        while a >= 0:
            for j in range(qd_start[a], qd_start[a] + DOF_COUNT[links[a]["kind"]]):
                if j < i:
                    pairs.append((i, j))
            a = links[a]["parent"]
    joint_link = {link["joint"]: k for k, link in enumerate(links)}
    return dict(
        links=links,
        q_start=q_start,
        qd_start=qd_start,
        dof_link=dof_link,
        dof_coord=dof_coord,
        dof_joint=dof_joint,
        num_coords=nq,
        num_dofs=nd,
        pairs=pairs,
        joint_link=joint_link,
        articulated_bodies=set(order),
        joints=joints,
        actuators=builder.actuators,
    )


# ---------------------------------------------------------------------------------------------
# model side
# ---------------------------------------------------------------------------------------------
@dataclass
class ArticulationModel:
    """The articulations of a :class:`simulator.Model` (``model.articulation``).

    Shapes: L links (one per joint; a body with several joints gets massless internal links),
    D dofs, Q coordinates, A actuators, W worlds. Everything here is shared by all worlds; the
    per-world joint and actuator parameters are fields of the Model (``Model.joint_damping`` ...).

    Attributes:
        num_links, num_dofs, num_coords, num_actuators: L, D, Q, A.
        joint_names: names of the joints, in creation order (the joint index).
        actuator_names: names of the actuators (the column of ``joint_act``).
        joint_q_start, joint_qd_start: per joint index, first coordinate / dof (numpy ints).
        initial_joint_q, initial_joint_qd: (W, Q) and (W, D) numpy initial conditions.
        free_bodies: (F,) indices of the bodies without a joint (maximal coordinates).
        arrays: the kernel's static arrays, by name.
    """

    num_links: int
    num_dofs: int
    num_coords: int
    num_actuators: int
    joint_names: list[str]
    actuator_names: list[str]
    joint_kinds: list[str]
    joint_q_start: np.ndarray
    joint_qd_start: np.ndarray
    initial_joint_q: np.ndarray = field(repr=False)
    initial_joint_qd: np.ndarray = field(repr=False)
    free_bodies: wp.array = field(repr=False)
    arrays: dict = field(repr=False)

    @classmethod
    def create(cls, layout: dict, model, requires_grad: bool) -> ArticulationModel:
        prec, dev, W = model.precision, model.device, model.num_worlds
        links, joints, actuators = layout["links"], layout["joints"], layout["actuators"]
        nd, nq = layout["num_dofs"], layout["num_coords"]

        def farr(values, dtype=None, shape=None):
            values = np.asarray(values, dtype=prec.numpy)
            if shape is not None:
                values = values.reshape(shape)
            return wp.array(values, dtype=dtype or prec.scalar, device=dev)

        def iarr(values):
            values = np.asarray(values, dtype=np.int32).reshape(-1)
            return wp.array(values if values.size else np.zeros(0, np.int32), dtype=wp.int32, device=dev)

        dof_joint = [joints[j] for j in layout["dof_joint"]]
        big = _big(prec)
        pairs = np.asarray(layout["pairs"], dtype=np.int32).reshape(-1, 2)
        below = pairs[pairs[:, 0] != pairs[:, 1]]
        pair_start, _ = _grouped(pairs[:, 0], nd)  # pairs come sorted by row
        desc_start, desc_order = _grouped(below[:, 1], nd)
        act_dof = [layout["qd_start"][layout["joint_link"][a.joint]] + a.dof for a in actuators]
        act_start, act_order = _grouped(act_dof, nd)
        arrays = dict(
            link_body=iarr([lk["body"] for lk in links]),
            link_parent=iarr([lk["parent"] for lk in links]),
            joint_type=iarr([lk["kind"] for lk in links]),
            joint_axis=farr([lk["axis"] for lk in links], prec.vec3, (-1, 3)),
            joint_parent_xform=farr([lk["parent_xform"] for lk in links], prec.transform, (-1, 7)),
            joint_child_xform=farr([lk["child_xform"] for lk in links], prec.transform, (-1, 7)),
            joint_q_start=iarr(layout["q_start"]),
            joint_qd_start=iarr(layout["qd_start"]),
            joint_dof_count=iarr([DOF_COUNT[lk["kind"]] for lk in links]),
            dof_link=iarr(layout["dof_link"]),
            dof_coord=iarr(layout["dof_coord"]),
            dof_spring_ref=farr([j.spring_ref for j in dof_joint]),
            dof_limit_ke=farr([j.limit_stiffness if j.limit else 0.0 for j in dof_joint]),
            dof_limit_kd=farr([j.limit_damping if j.limit else 0.0 for j in dof_joint]),
            dof_limit_softness=farr([j.limit_softness for j in dof_joint]),
            dof_pair_start=iarr(pair_start),
            pair_col=iarr(pairs[:, 1]),
            # the dofs below each dof (rows of the pairs whose column it is), ascending
            dof_desc_start=iarr(desc_start),
            dof_desc=iarr(below[desc_order, 0]),
            # the actuators of each dof, in actuator order
            dof_act_start=iarr(act_start),
            dof_act=iarr(act_order),
            act_kind=iarr([a.kind for a in actuators]),
            act_lower=farr(np.clip([a.ctrl_range[0] for a in actuators], -big, big)),
            act_upper=farr(np.clip([a.ctrl_range[1] for a in actuators], -big, big)),
        )
        q0 = np.concatenate([lk["q0"] for lk in links]) if nq else np.zeros(0)
        qd0 = np.concatenate([joints[lk["joint"]].qd for lk in links]) if nd else np.zeros(0)
        free = [b for b in range(model.body_count) if b not in layout["articulated_bodies"]]
        joint_q_start = np.array([layout["q_start"][layout["joint_link"][j]] for j in range(len(joints))])
        joint_qd_start = np.array([layout["qd_start"][layout["joint_link"][j]] for j in range(len(joints))])
        return cls(
            num_links=len(links),
            num_dofs=nd,
            num_coords=nq,
            num_actuators=len(actuators),
            joint_names=[j.name for j in joints],
            actuator_names=[a.name for a in actuators],
            joint_kinds=[JOINT_NAMES[j.kind] for j in joints],
            joint_q_start=joint_q_start,
            joint_qd_start=joint_qd_start,
            initial_joint_q=np.broadcast_to(q0, (W, nq)).copy(),
            initial_joint_qd=np.broadcast_to(qd0, (W, nd)).copy(),
            free_bodies=iarr(free),
            arrays=arrays,
        )

    def joint_index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"no joint named {name!r}; joints: {', '.join(self.joint_names)}") from None

    def q_slice(self, joint: int | str) -> slice:
        """Columns of ``joint_q`` that belong to ``joint`` (index or name)."""
        j = self.joint_index(joint) if isinstance(joint, str) else int(joint)
        kind = JOINT_KINDS[self.joint_kinds[j]]
        return slice(int(self.joint_q_start[j]), int(self.joint_q_start[j]) + COORD_COUNT[kind])

    def qd_slice(self, joint: int | str) -> slice:
        """Columns of ``joint_qd`` that belong to ``joint`` (index or name)."""
        j = self.joint_index(joint) if isinstance(joint, str) else int(joint)
        kind = JOINT_KINDS[self.joint_kinds[j]]
        return slice(int(self.joint_qd_start[j]), int(self.joint_qd_start[j]) + DOF_COUNT[kind])

    # -------------------------------------------------------------- state and control
    def init_state(self, model, state, requires_grad: bool, *, initialize: bool = True) -> None:
        """Give ``state`` its joint coordinates and work arrays, then run forward kinematics.

        With ``initialize=False`` the arrays are only allocated (for a step's output state):
        no initial conditions, no forward kinematics (the step writes every entry it reads).
        """
        p, dev, W = model.precision, model.device, model.num_worlds
        alloc = wp.zeros if initialize else wp.empty

        def zeros(shape, dtype):
            return alloc(shape, dtype=dtype, device=dev, requires_grad=requires_grad)

        L, D = max(self.num_links, 1), max(self.num_dofs, 1)
        if initialize:
            state.joint_q = wp.array(self.initial_joint_q.astype(p.numpy), dtype=p.scalar, device=dev, requires_grad=requires_grad)
            state.joint_qd = wp.array(self.initial_joint_qd.astype(p.numpy), dtype=p.scalar, device=dev, requires_grad=requires_grad)
        else:
            state.joint_q = zeros(self.initial_joint_q.shape, p.scalar)
            state.joint_qd = zeros(self.initial_joint_qd.shape, p.scalar)
        vec6 = articulation_kernels(p.scalar).vec6
        state.link_q = zeros((W, L), p.transform)
        state.link_v = zeros((W, L), vec6)
        state.joint_work = ArticulationWork(
            s=zeros((W, D), vec6),
            acc=zeros((W, L), vec6),
            force=zeros((W, L), vec6),
            mass=zeros((W, L), p.scalar),
            first_moment=zeros((W, L), p.vec3),
            rot_inertia=zeros((W, L), p.mat33),
            h=zeros((W, D * D), p.scalar),
            l=zeros((W, D * D), p.scalar),
            rhs=zeros((W, D), p.scalar),
            diag=zeros((W, D), p.scalar),
            y=zeros((W, D), p.scalar),
            qdd=zeros((W, D), p.scalar),
        )
        if initialize:
            eval_fk(model, state)

    def control_array(self, model, leading: tuple, requires_grad: bool) -> wp.array:
        shape = leading + (max(self.num_actuators, 1),)
        return wp.zeros(shape, dtype=model.precision.scalar, device=model.device, requires_grad=requires_grad)


@dataclass
class ArticulationWork:
    """Per-step intermediates of the articulation kernel, kept with each State so that a recorded
    rollout can be differentiated (W worlds, L links, D dofs)."""

    s: wp.array  # (W, D) motion subspace columns, world twists
    acc: wp.array  # (W, L) bias accelerations
    force: wp.array  # (W, L) bias forces, then subtree sums
    mass: wp.array  # (W, L) composite mass [kg]
    first_moment: wp.array  # (W, L) composite m*c [kg m]
    rot_inertia: wp.array  # (W, L) composite inertia about the origin [kg m^2]
    h: wp.array  # (W, D*D) mass matrix, lower triangle at the ancestor pairs (other entries unused)
    l: wp.array  # (W, D*D) sparse Cholesky factor L of H + diag = L^T L (same pattern as h)
    rhs: wp.array  # (W, D) generalised force
    diag: wp.array  # (W, D) implicit diagonal terms
    y: wp.array  # (W, D) solution of L^T y = rhs
    qdd: wp.array  # (W, D) joint accelerations


def _static(model, *names):
    a = model.articulation.arrays
    return [a[n] for n in names]


_LINK_ARRAYS = ("link_body", "link_parent", "joint_type", "joint_axis", "joint_parent_xform", "joint_child_xform", "joint_q_start",
                "joint_qd_start")


def eval_fk(model, state) -> None:
    """Recompute ``state``'s body poses and velocities (and link frames) from ``joint_q`` and
    ``joint_qd``. Call it after editing joint coordinates by hand; it is recorded on an active
    ``wp.Tape``, so gradients reach ``joint_q`` / ``joint_qd`` of an initial state."""
    art = model.articulation
    if art is None:
        raise ValueError("eval_fk: the model has no joints")
    kernels = articulation_kernels(model.precision.scalar)
    wp.launch(
        kernels.forward_kinematics,
        dim=model.num_worlds,
        inputs=_static(model, *_LINK_ARRAYS) + [state.joint_q, state.joint_qd],
        outputs=[state.link_q, state.link_v, state.body_q, state.body_v, state.body_w],
        device=model.device,
    )


def step_articulations(model, state_in, state_out, control, dt: float) -> None:
    """Advance the articulations by ``dt`` [s]; contact forces must already be in ``state_out``."""
    art = model.articulation
    kernels = articulation_kernels(model.precision.scalar)
    work = state_out.joint_work
    scalar = model.precision.scalar
    wp.launch(
        kernels.articulation_step,
        dim=model.num_worlds,
        inputs=[model.body_mass, model.body_inertia]
        + [getattr(model, name) for name in JOINT_PARAMETERS]
        + _static(
            model,
            *_LINK_ARRAYS,
            "joint_dof_count",
            "dof_link",
            "dof_coord",
            "dof_spring_ref",
            "dof_limit_ke",
            "dof_limit_kd",
            "dof_limit_softness",
            "dof_pair_start",
            "pair_col",
            "dof_desc_start",
            "dof_desc",
            "dof_act_start",
            "dof_act",
            "act_kind",
            "act_lower",
            "act_upper",
        )
        + [
            int(art.num_dofs),
            model.precision.vec3(*model.gravity),
            scalar(dt),
            state_in.joint_q,
            state_in.joint_qd,
            state_in.link_q,
            state_in.link_v,
            state_out.body_contact_force,
            state_out.body_contact_torque,
            control.body_force,
            control.body_torque,
            control.joint_act,
            work.s,
            work.acc,
            work.force,
            work.mass,
            work.first_moment,
            work.rot_inertia,
            work.h,
            work.l,
            work.rhs,
            work.diag,
            work.y,
            work.qdd,
        ],
        outputs=[
            state_out.joint_q,
            state_out.joint_qd,
            state_out.link_q,
            state_out.link_v,
            state_out.body_q,
            state_out.body_v,
            state_out.body_w,
        ],
        device=model.device,
    )
