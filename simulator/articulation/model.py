"""``ArticulationModel``: the static arrays the articulation kernels read (shared by the worlds),
and the Model's per-world joint and actuator parameters built from the builder's values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

from ..errors import ParameterError
from ..model import JOINT_PARAMETERS
from .joints import COORD_COUNT, DOF_COUNT, JOINT_KINDS, JOINT_NAMES
from .layout import Layout, grouped
from .state import allocate_joint_state


@dataclass
class ArticulationModel:
    """The articulations of a :class:`simulator.Model` (``model.articulation``).

    Shapes: L links (one per joint; a body with several joints gets massless internal links, in
    topological order: a parent before its children), D dofs, Q coordinates, A actuators, P
    mass-matrix pairs, W worlds. Everything here is shared by all worlds; the per-world joint and
    actuator parameters are fields of the Model (``Model.joint_damping`` ...). Device arrays are
    int32 or the model's precision; a size-0 table holds no entries.

    Attributes:
        num_links, num_dofs, num_coords, num_actuators: L, D, Q, A.
        joint_names: names of the joints, in creation order (the joint index).
        actuator_names: names of the actuators (the column of ``joint_act``).
        joint_kinds: kind of each joint (``"revolute"`` ...), in creation order.
        joint_q_start, joint_qd_start: per joint index, first coordinate / dof (numpy ints).
        initial_joint_q, initial_joint_qd: (W, Q) and (W, D) numpy initial conditions.
        free_bodies: (F,) indices of the bodies without a joint (maximal coordinates).
        link_body: (L,) the link's model body, -1 for a massless internal link.
        link_parent: (L,) parent link, -1 = the world.
        link_type: (L,) joint kind code (``simulator.kernels.articulation.JOINT_*``).
        link_axis: (L,) unit joint axis in the joint frame (revolute, prismatic).
        link_parent_xform: (L,) joint frame in the parent link's COM frame (transform).
        link_child_xform: (L,) joint frame in the link's own COM frame (transform).
        link_q_start, link_qd_start, link_dof_count: (L,) first coordinate, first dof, dof count.
        dof_link: (D,) the link of each dof.
        dof_coord: (D,) the coordinate of each revolute/prismatic dof, else -1.
        dof_spring_ref: (D,) rest coordinate of the joint spring [rad or m].
        dof_limit_stiffness, dof_limit_damping, dof_limit_inertial, dof_limit_softness: (D,) limit
            law ``tau = m * relu(k*d + b*dd)`` on the violation ``d``: k, b and m = the dof's
            effective inertia where ``dof_limit_inertial`` is 1 (from a solref: k [1/s^2], b
            [1/s]), or ke [N m/rad or N/m], kd [N m s/rad or N s/m] and m = 1 where it is 0;
            softening length [rad or m]. k = b = 0 without a limit.
        dof_pair_start: (D + 1,) offsets into ``pair_col``: row i of the mass-matrix pattern is
            dof i itself and then the dofs above it in the dof tree.
        pair_col: (P,) the column dof of each pair.
        dof_desc_start, dof_desc: (D + 1,) offsets and the dofs below each dof, ascending.
        dof_act_start, dof_act: (D + 1,) offsets and the actuators of each dof, in actuator order.
        act_kind: (A,) ``ACTUATOR_MOTOR`` or ``ACTUATOR_POSITION``.
        act_lower, act_upper: (A,) control range (a huge finite value where unbounded).
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
    link_body: wp.array = field(repr=False)
    link_parent: wp.array = field(repr=False)
    link_type: wp.array = field(repr=False)
    link_axis: wp.array = field(repr=False)
    link_parent_xform: wp.array = field(repr=False)
    link_child_xform: wp.array = field(repr=False)
    link_q_start: wp.array = field(repr=False)
    link_qd_start: wp.array = field(repr=False)
    link_dof_count: wp.array = field(repr=False)
    dof_link: wp.array = field(repr=False)
    dof_coord: wp.array = field(repr=False)
    dof_spring_ref: wp.array = field(repr=False)
    dof_limit_stiffness: wp.array = field(repr=False)
    dof_limit_damping: wp.array = field(repr=False)
    dof_limit_inertial: wp.array = field(repr=False)
    dof_limit_softness: wp.array = field(repr=False)
    dof_pair_start: wp.array = field(repr=False)
    pair_col: wp.array = field(repr=False)
    dof_desc_start: wp.array = field(repr=False)
    dof_desc: wp.array = field(repr=False)
    dof_act_start: wp.array = field(repr=False)
    dof_act: wp.array = field(repr=False)
    act_kind: wp.array = field(repr=False)
    act_lower: wp.array = field(repr=False)
    act_upper: wp.array = field(repr=False)

    @classmethod
    def create(cls, layout: Layout, model) -> ArticulationModel:
        """The device tables of ``layout`` for ``model`` (its device, precision and worlds)."""
        prec, dev, W = model.precision, model.device, model.num_worlds
        links, joints, actuators = layout.links, layout.joints, layout.actuators
        nd, nq = layout.num_dofs, layout.num_coords

        def farr(values, dtype=None, shape=None):
            values = np.asarray(values, dtype=prec.numpy)
            if shape is not None:
                values = values.reshape(shape)
            return wp.array(values, dtype=dtype or prec.scalar, device=dev)

        def iarr(values):
            values = np.asarray(values, dtype=np.int32).reshape(-1)
            return wp.array(values if values.size else np.zeros(0, np.int32), dtype=wp.int32, device=dev)

        dof_joint = [joints[j] for j in layout.dof_joint]
        big = huge(prec)
        pairs = np.asarray(layout.pairs, dtype=np.int32).reshape(-1, 2)
        below = pairs[pairs[:, 0] != pairs[:, 1]]
        pair_start, _ = grouped(pairs[:, 0], nd)  # pairs come sorted by row
        desc_start, desc_order = grouped(below[:, 1], nd)
        act_dof = [layout.qd_start[layout.joint_link[a.joint]] + a.dof for a in actuators]
        act_start, act_order = grouped(act_dof, nd)
        q0 = np.concatenate([lk["q0"] for lk in links]) if nq else np.zeros(0)
        qd0 = np.concatenate([joints[lk["joint"]].qd for lk in links]) if nd else np.zeros(0)
        free = [b for b in range(model.body_count) if b not in layout.articulated_bodies]
        return cls(
            num_links=len(links),
            num_dofs=nd,
            num_coords=nq,
            num_actuators=len(actuators),
            joint_names=[j.name for j in joints],
            actuator_names=[a.name for a in actuators],
            joint_kinds=[JOINT_NAMES[j.kind] for j in joints],
            joint_q_start=np.array([layout.q_start[layout.joint_link[j]] for j in range(len(joints))]),
            joint_qd_start=np.array([layout.qd_start[layout.joint_link[j]] for j in range(len(joints))]),
            initial_joint_q=np.broadcast_to(q0, (W, nq)).copy(),
            initial_joint_qd=np.broadcast_to(qd0, (W, nd)).copy(),
            free_bodies=iarr(free),
            link_body=iarr([lk["body"] for lk in links]),
            link_parent=iarr([lk["parent"] for lk in links]),
            link_type=iarr([lk["kind"] for lk in links]),
            link_axis=farr([lk["axis"] for lk in links], prec.vec3, (-1, 3)),
            link_parent_xform=farr([lk["parent_xform"] for lk in links], prec.transform, (-1, 7)),
            link_child_xform=farr([lk["child_xform"] for lk in links], prec.transform, (-1, 7)),
            link_q_start=iarr(layout.q_start),
            link_qd_start=iarr(layout.qd_start),
            link_dof_count=iarr([DOF_COUNT[lk["kind"]] for lk in links]),
            dof_link=iarr(layout.dof_link),
            dof_coord=iarr(layout.dof_coord),
            dof_spring_ref=farr([j.spring_ref for j in dof_joint]),
            dof_limit_stiffness=farr([j.limit_stiffness if j.limit else 0.0 for j in dof_joint]),
            dof_limit_damping=farr([j.limit_damping if j.limit else 0.0 for j in dof_joint]),
            dof_limit_inertial=farr([1.0 if j.limit and j.limit_inertial else 0.0 for j in dof_joint]),
            dof_limit_softness=farr([j.limit_softness for j in dof_joint]),
            dof_pair_start=iarr(pair_start),
            pair_col=iarr(pairs[:, 1]),
            dof_desc_start=iarr(desc_start),
            dof_desc=iarr(below[desc_order, 0]),
            dof_act_start=iarr(act_start),
            dof_act=iarr(act_order),
            act_kind=iarr([a.kind for a in actuators]),
            act_lower=farr(np.clip([a.ctrl_range[0] for a in actuators], -big, big)),
            act_upper=farr(np.clip([a.ctrl_range[1] for a in actuators], -big, big)),
        )

    def joint_index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ParameterError(f"name must be one of the joints ({', '.join(self.joint_names)}), got {name!r}") from None

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
        allocate_joint_state(self, model, state, requires_grad, initialize=initialize)

    def control_array(self, model, leading: tuple, requires_grad: bool) -> wp.array:
        """Zero actuator controls of shape ``leading + (A,)`` (one padding column when A = 0)."""
        shape = leading + (max(self.num_actuators, 1),)
        return wp.zeros(shape, dtype=model.precision.scalar, device=model.device, requires_grad=requires_grad)


def huge(prec) -> float:
    """Finite stand-in for an infinite joint limit or control bound (its arithmetic stays finite)."""
    return float(np.finfo(prec.numpy).max / 16)


def joint_parameters(model, layout: Layout | None, requires_grad: bool) -> dict[str, wp.array]:
    """The model's per-world joint and actuator parameters (``Model.joint_*``, ``Model.actuator_*``),
    by field name: (W, D) per dof, (W, A) per actuator, one padding column where D or A is 0
    (also for a model without joints), so that every field can be sliced by world."""
    prec, W = model.precision, model.num_worlds
    dof_joint = [] if layout is None else [layout.joints[j] for j in layout.dof_joint]
    actuators = [] if layout is None else layout.actuators
    big = huge(prec)
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
    assert tuple(values) == JOINT_PARAMETERS

    def per_world(row):
        row = np.asarray(row if row else [0.0], dtype=prec.numpy)
        return wp.array(np.broadcast_to(row, (W, row.size)).copy(), dtype=prec.scalar, device=model.device, requires_grad=requires_grad)

    return {name: per_world(row) for name, row in values.items()}
