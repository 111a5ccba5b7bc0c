"""Layout of the articulations: links in topological order, their dofs and coordinates, the
mass-matrix sparsity (ancestor pairs) and the actuators of each dof, computed once on the host."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..spatial import quat_from_axis_angle, quat_multiply, quat_to_matrix
from .joints import COORD_COUNT, DOF_COUNT, JOINT_BALL, JOINT_FIXED, JOINT_FREE, JOINT_PRISMATIC, JOINT_REVOLUTE, _Actuator, _Joint


def _pose(position, rotation):
    return np.concatenate([np.asarray(position, float), np.asarray(rotation, float)])


def _tf_mul(a, b):
    ra = quat_to_matrix(a[3:])
    return np.concatenate([a[:3] + ra @ b[:3], quat_multiply(a[3:], b[3:])])


def _tf_inv(a):
    conj = np.array([-a[3], -a[4], -a[5], a[6]])
    return np.concatenate([-(quat_to_matrix(conj) @ a[:3]), conj])



def grouped(keys, n: int):
    """Group items by their key in [0, n): the start of each key's items (``n + 1`` offsets) and
    the item indices sorted by key, in item order within a key."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n))]), np.argsort(keys, kind="stable")



@dataclass
class Layout:
    """The articulations of a builder, ordered for the kernels (L links, D dofs, Q coordinates).

    Attributes:
        links: L dicts in topological order (a parent before its children): ``body`` (model body,
            -1 for a massless internal link), ``parent`` (link, -1 = world), ``joint`` (the
            builder's joint index), ``kind``, ``axis``, ``parent_xform`` / ``child_xform`` (joint
            frame in the parent's COM frame / in the child's, as 7-vectors), ``q0`` (initial q).
        q_start, qd_start: per link, its first coordinate and first dof.
        dof_link, dof_coord, dof_joint: per dof, its link, its coordinate (-1 unless revolute or
            prismatic) and its builder joint.
        num_coords, num_dofs: Q and D.
        pairs: (i, j) dof pairs of the mass-matrix pattern: each dof i, then the dofs above it.
        joint_link: builder joint index -> link.
        articulated_bodies: the bodies that have a joint.
        joints, actuators: the builder's records.
    """

    links: list[dict]
    q_start: list[int]
    qd_start: list[int]
    dof_link: list[int]
    dof_coord: list[int]
    dof_joint: list[int]
    num_coords: int
    num_dofs: int
    pairs: list[tuple[int, int]]
    joint_link: dict[int, int]
    articulated_bodies: set[int]
    joints: list[_Joint]
    actuators: list[_Actuator]


def build_layout(builder, coms) -> Layout:
    """Topologically ordered links, dofs, coordinates, mass-matrix pairs and actuators (numpy)."""
    joints = builder.joints
    bodies = builder.bodies
    by_child: dict[int, list[int]] = {}
    for j, joint in enumerate(joints):
        by_child.setdefault(joint.child, []).append(j)
    for j, joint in enumerate(joints):
        if joint.parent >= 0 and joint.parent not in by_child:
            raise ParameterError(
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
                default_q = {JOINT_BALL: np.array([0.0, 0.0, 0.0, 1.0]), JOINT_FIXED: np.zeros(0)}.get(joint.kind, np.array([joint.ref]))
                q0 = joint.q if joint.q is not None else default_q
            # the child has its add_body pose at q = ref: the joint moves it by q - ref, so the
            # parent side of the joint frame is turned (shifted) back by ref about (along) the axis
            parent_xform = _tf_mul(_tf_inv(parent_frame), frame_world)
            if joint.kind == JOINT_REVOLUTE and joint.ref != 0.0:
                parent_xform = _tf_mul(parent_xform, _pose(np.zeros(3), quat_from_axis_angle(joint.axis, -joint.ref)))
            elif joint.kind == JOINT_PRISMATIC and joint.ref != 0.0:
                parent_xform = _tf_mul(parent_xform, _pose(-joint.ref * joint.axis, [0, 0, 0, 1]))
            links.append(
                dict(
                    body=b if last else -1,
                    parent=parent_link,
                    joint=j,
                    kind=joint.kind,
                    axis=joint.axis,
                    parent_xform=parent_xform,
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
    return Layout(
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

