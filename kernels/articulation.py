"""Articulation kernels: reduced-coordinate (Featherstone-style) dynamics, one thread per world.

Conventions (see ``simulator.articulation`` for the user-facing description):

* Links are numbered in topological order (a parent before its children). A link is either a
  model body (``link_body >= 0``) or a massless *virtual* link that chains several joints of
  one body (``link_body = -1``).
* Spatial vectors are 6-vectors ``(angular, linear)`` in world axes, referred to the world
  origin: a twist is ``(w, v_O)`` with ``v_O = v_com + c x w``; a wrench is ``(n_O, f)``.
* A link's spatial inertia about the world origin is stored as ``(m, h = m c, J_O)`` with
  ``J_O = I_c + m (|c|^2 1 - c c^T)``, so that ``I (w, v) = (J_O w + h x v, m v - h x w)``
  and composite inertias are plain sums.
* Generalised coordinates ``joint_q`` (W, Q) and velocities ``joint_qd`` (W, D): revolute and
  prismatic 1/1, ball 4/3 (quaternion x, y, z, w / angular velocity in the parent joint frame),
  free 7/6 (position, quaternion / linear then angular velocity, both in the parent joint
  frame), fixed 0/0.

Differentiability: Warp replays dynamic loops backwards without restoring loop-carried local
variables, so the kernels below never mutate a local variable inside a loop. Every intermediate
is written once to a per-step work array (allocated with each State), sums over a range live in
``wp.func`` helpers (whose adjoints replay correctly), and only the composite-inertia pass
accumulates with ``atomic_add`` into entries that are read after all additions.

A step is five kernels (bias forces, generalised forces and mass matrix, solve, integration,
forward kinematics), so that each generated adjoint replays one stage only. The solve has a
hand-written adjoint (``articulation_solve_adjoint``: two triangular solves with the stored factor
and an outer product), about a fifth of the cost of differentiating the factorisation. Hot loop
bodies call helpers one level deep at most: a generated adjoint replays a helper's forward pass
again inside the helper's adjoint, once per nesting level.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .constants import ActuatorType, JointType
from .math import math_functions

# plain ints derived from ``constants`` (a bare name bound to an enum member is not folded in a kernel)
JOINT_FREE = int(JointType.FREE)
JOINT_FIXED = int(JointType.FIXED)
JOINT_REVOLUTE = int(JointType.REVOLUTE)
JOINT_PRISMATIC = int(JointType.PRISMATIC)
JOINT_BALL = int(JointType.BALL)

ACTUATOR_MOTOR = int(ActuatorType.MOTOR)
ACTUATOR_POSITION = int(ActuatorType.POSITION)


@functools.cache
def articulation_kernels(scalar):
    """Build the articulation kernels for one scalar type (``wp.float32`` or ``wp.float64``)."""
    vec3 = wp.types.vector(3, scalar)
    vec6 = wp.types.vector(6, scalar)
    mat33 = wp.types.matrix((3, 3), scalar)
    quat = wp.types.quaternion(scalar)
    transform = wp.types.transformation(scalar)
    fn = math_functions(scalar)

    @wp.func
    def twist(w: vec3, v: vec3):
        return vec6(w[0], w[1], w[2], v[0], v[1], v[2])

    @wp.func
    def top(s: vec6):
        return vec3(s[0], s[1], s[2])

    @wp.func
    def bottom(s: vec6):
        return vec3(s[3], s[4], s[5])

    @wp.func
    def cross_motion(a: vec6, b: vec6):
        """Spatial motion cross product a x b."""
        return twist(wp.cross(top(a), top(b)), wp.cross(top(a), bottom(b)) + wp.cross(bottom(a), top(b)))

    @wp.func
    def cross_force(a: vec6, f: vec6):
        """Spatial force cross product a x* f."""
        return twist(wp.cross(top(a), top(f)) + wp.cross(bottom(a), bottom(f)), wp.cross(top(a), bottom(f)))

    @wp.func
    def inertia_times(m: scalar, h: vec3, J: mat33, s: vec6):
        return twist(J * top(s) + wp.cross(h, bottom(s)), m * bottom(s) - wp.cross(h, top(s)))

    @wp.func
    def unit(i: int):
        one = scalar(1.0)
        zero = scalar(0.0)
        if i == 0:
            return vec3(one, zero, zero)
        if i == 1:
            return vec3(zero, one, zero)
        return vec3(zero, zero, one)

    @wp.func
    def parent_pose(link_q: wp.array2d(dtype=transform), world: int, parent: int):
        if parent < 0:
            return wp.transform_identity(dtype=scalar)
        return link_q[world, parent]

    @wp.func
    def parent_twist(link_v: wp.array2d(dtype=vec6), world: int, parent: int):
        if parent < 0:
            return vec6()
        return link_v[world, parent]

    @wp.func
    def parent_acceleration(work_acc: wp.array2d(dtype=vec6), world: int, parent: int, base: vec6):
        if parent < 0:
            return base
        return work_acc[world, parent]

    @wp.func
    def external_wrench(
        body_contact_force: wp.array2d(dtype=vec3),
        body_contact_torque: wp.array2d(dtype=vec3),
        control_force: wp.array2d(dtype=vec3),
        control_torque: wp.array2d(dtype=vec3),
        world: int,
        body: int,
        pose: transform,
    ):
        """Contact plus control wrench on a body, about the world origin (zero for virtual links)."""
        if body < 0:
            return vec6()
        force = body_contact_force[world, body] + control_force[world, body]
        torque = body_contact_torque[world, body] + control_torque[world, body]
        return twist(torque + wp.cross(wp.transform_get_translation(pose), force), force)

    @wp.func
    def coordinate(joint_q: wp.array2d(dtype=scalar), world: int, coord: int):
        if coord < 0:
            return scalar(0.0)
        return joint_q[world, coord]

    @wp.func
    def integrate_rotation(joint_q: wp.array2d(dtype=scalar), joint_qd: wp.array2d(dtype=scalar), world: int, qr: int, dr: int, dt: scalar):
        rot = quat(joint_q[world, qr], joint_q[world, qr + 1], joint_q[world, qr + 2], joint_q[world, qr + 3])
        w = vec3(joint_qd[world, dr], joint_qd[world, dr + 1], joint_qd[world, dr + 2])
        return quat_integrate(rot, w, dt)

    @wp.func
    def link_inertia(
        body_mass: wp.array2d(dtype=scalar),
        body_inertia: wp.array2d(dtype=mat33),
        world: int,
        body: int,
        pose: transform,
    ):
        """(m, h, J_O) of a link at ``pose`` (zero for virtual links)."""
        if body < 0:
            return scalar(0.0), vec3(), mat33()
        m = body_mass[world, body]
        c = wp.transform_get_translation(pose)
        r = wp.quat_to_matrix(wp.transform_get_rotation(pose))
        inertia_c = r * body_inertia[world, body] * wp.transpose(r)
        eye = wp.identity(n=3, dtype=scalar)
        return m, m * c, inertia_c + m * (wp.dot(c, c) * eye - wp.outer(c, c))

    @wp.func
    def dof_motion(jtype: int, axis: vec3, frame_parent: transform, frame_child: transform, i: int):
        """Motion subspace column ``i`` of a joint (world twist per unit joint velocity)."""
        r = wp.transform_get_rotation(frame_parent)
        if jtype == JOINT_REVOLUTE:
            a = wp.quat_rotate(r, axis)
            return twist(a, wp.cross(wp.transform_get_translation(frame_child), a))
        if jtype == JOINT_PRISMATIC:
            return twist(vec3(), wp.quat_rotate(r, axis))
        if jtype == JOINT_BALL:
            a = wp.quat_rotate(r, unit(i))
            return twist(a, wp.cross(wp.transform_get_translation(frame_parent), a))
        # free: linear dofs 0-2, angular dofs 3-5 about the child joint origin
        if i < 3:
            return twist(vec3(), wp.quat_rotate(r, unit(i)))
        a = wp.quat_rotate(r, unit(i - 3))
        return twist(a, wp.cross(wp.transform_get_translation(frame_child), a))

    @wp.func
    def joint_local_transform(jtype: int, axis: vec3, joint_q: wp.array2d(dtype=scalar), world: int, qs: int):
        """Transform of the child joint frame relative to the parent joint frame."""
        zero = scalar(0.0)
        if jtype == JOINT_REVOLUTE:
            return wp.transformation(vec3(), wp.quat_from_axis_angle(axis, joint_q[world, qs]), dtype=scalar)
        if jtype == JOINT_PRISMATIC:
            return wp.transformation(axis * joint_q[world, qs], wp.quat_identity(dtype=scalar), dtype=scalar)
        if jtype == JOINT_BALL:
            rot = quat(joint_q[world, qs], joint_q[world, qs + 1], joint_q[world, qs + 2], joint_q[world, qs + 3])
            return wp.transformation(vec3(zero, zero, zero), rot, dtype=scalar)
        if jtype == JOINT_FREE:
            pos = vec3(joint_q[world, qs], joint_q[world, qs + 1], joint_q[world, qs + 2])
            rot = quat(joint_q[world, qs + 3], joint_q[world, qs + 4], joint_q[world, qs + 5], joint_q[world, qs + 6])
            return wp.transformation(pos, rot, dtype=scalar)
        return wp.transform_identity(dtype=scalar)

    @wp.func
    def joint_twist(
        jtype: int, axis: vec3, frame_parent: transform, frame_child: transform, joint_qd: wp.array2d(dtype=scalar), world: int, ds: int
    ):
        """World twist of the child relative to the parent, ``S qd``."""
        r = wp.transform_get_rotation(frame_parent)
        p = wp.transform_get_translation(frame_child)
        if jtype == JOINT_REVOLUTE:
            a = wp.quat_rotate(r, axis) * joint_qd[world, ds]
            return twist(a, wp.cross(p, a))
        if jtype == JOINT_PRISMATIC:
            return twist(vec3(), wp.quat_rotate(r, axis) * joint_qd[world, ds])
        if jtype == JOINT_BALL:
            w = wp.quat_rotate(r, vec3(joint_qd[world, ds], joint_qd[world, ds + 1], joint_qd[world, ds + 2]))
            return twist(w, wp.cross(p, w))
        if jtype == JOINT_FREE:
            v = wp.quat_rotate(r, vec3(joint_qd[world, ds], joint_qd[world, ds + 1], joint_qd[world, ds + 2]))
            w = wp.quat_rotate(r, vec3(joint_qd[world, ds + 3], joint_qd[world, ds + 4], joint_qd[world, ds + 5]))
            return twist(w, v + wp.cross(p, w))
        return vec6()

    @wp.func
    def joint_bias(
        jtype: int, frame_parent: transform, v_parent: vec6, v_joint: vec6, joint_qd: wp.array2d(dtype=scalar), world: int, ds: int
    ):
        """Velocity-product acceleration ``dS/dt qd`` of a joint (world, about the origin)."""
        bias = cross_motion(v_parent, v_joint)
        if jtype == JOINT_FREE:
            r = wp.transform_get_rotation(frame_parent)
            v = wp.quat_rotate(r, vec3(joint_qd[world, ds], joint_qd[world, ds + 1], joint_qd[world, ds + 2]))
            w = wp.quat_rotate(r, vec3(joint_qd[world, ds + 3], joint_qd[world, ds + 4], joint_qd[world, ds + 5]))
            bias = bias + twist(vec3(), wp.cross(v, w))
        return bias

    @wp.func
    def body_velocity(pose: transform, v: vec6):
        """(COM velocity [m/s], angular velocity [rad/s]) of a link twist."""
        c = wp.transform_get_translation(pose)
        return bottom(v) + wp.cross(top(v), c), top(v)

    @wp.func
    def quat_integrate(rot: quat, w: vec3, dt: scalar):
        spin = wp.quaternion(w[0], w[1], w[2], scalar(0.0))
        return wp.normalize(rot + spin * rot * (scalar(0.5) * dt))

    @wp.func
    def actuator_terms(
        dof_act_start: wp.array(dtype=int),
        dof_act: wp.array(dtype=int),
        act_kind: wp.array(dtype=int),
        act_lower: wp.array(dtype=scalar),
        act_upper: wp.array(dtype=scalar),
        actuator_gear: wp.array2d(dtype=scalar),
        actuator_kp: wp.array2d(dtype=scalar),
        actuator_kd: wp.array2d(dtype=scalar),
        control: wp.array2d(dtype=scalar),
        world: int,
        dof: int,
        q: scalar,
        qd: scalar,
    ):
        """(torque, stiffness, damping) of every actuator on ``dof`` (``dof_act[dof_act_start[dof]:dof_act_start[dof + 1]]``)."""
        tau = scalar(0.0)
        stiff = scalar(0.0)
        damp = scalar(0.0)
        for p in range(dof_act_start[dof], dof_act_start[dof + 1]):
            a = dof_act[p]
            u = wp.clamp(control[world, a], act_lower[a], act_upper[a])
            if act_kind[a] == ACTUATOR_MOTOR:
                tau = tau + actuator_gear[world, a] * u
            else:
                kp = actuator_kp[world, a]
                kd = actuator_kd[world, a]
                tau = tau + kp * (u - q) - kd * qd
                stiff = stiff + kp
                damp = damp + kd
        return tau, stiff, damp

    @wp.func
    def limit_terms(lower: scalar, upper: scalar, k: scalar, b: scalar, inertia: scalar, softness: scalar, q: scalar, qd: scalar):
        """(torque, stiffness, damping) of a joint limit: a one-sided spring-damper on the violation.

        With the violation ``d`` (``lower - q`` or ``q - upper``, > 0 past the limit) and its rate
        ``dd``, the limit pushes back with ``inertia * relu(k*d + b*dd)``, gated by ``d > 0``: an
        acceleration-level law (MuJoCo's reference acceleration) scaled by the dof's effective
        inertia, that only pushes (the damping never pulls the joint into the limit). ``softness``
        ``s`` [rad or m] smooths both kinks: the gate is ``sigmoid_s(d)`` and the relu is a softplus
        of width ``k*s`` (acceleration units); ``s = 0`` is the hard law. The stiffness and
        damping returned (for the implicit diagonal) are the law's slopes with the gates frozen."""
        below = lower - q
        above = q - upper
        a_below = k * below - b * qd
        a_above = k * above + b * qd
        width = k * softness
        g_below = fn.sigmoid(below, softness)
        g_above = fn.sigmoid(above, softness)
        tau = inertia * (g_below * fn.softplus(a_below, width) - g_above * fn.softplus(a_above, width))
        active = g_below * fn.sigmoid(a_below, width) + g_above * fn.sigmoid(a_above, width)
        return tau, inertia * k * active, inertia * b * active

    @wp.func
    def subtree_dot(
        l: wp.array2d(dtype=scalar), dof_desc_start: wp.array(dtype=int), dof_desc: wp.array(dtype=int), world: int, n: int, k: int, i: int
    ):
        """sum of L[m, k] L[m, i] over the dofs m below dof k in the dof tree (row-major n x n L)."""
        s = scalar(0.0)
        for p in range(dof_desc_start[k], dof_desc_start[k + 1]):
            m = dof_desc[p]
            s = s + l[world, m * n + k] * l[world, m * n + i]
        return s

    @wp.func
    def subtree_dot_vec(
        l: wp.array2d(dtype=scalar),
        z: wp.array2d(dtype=scalar),
        dof_desc_start: wp.array(dtype=int),
        dof_desc: wp.array(dtype=int),
        world: int,
        n: int,
        k: int,
    ):
        """sum of L[m, k] z[m] over the dofs m below dof k."""
        s = scalar(0.0)
        for p in range(dof_desc_start[k], dof_desc_start[k + 1]):
            m = dof_desc[p]
            s = s + l[world, m * n + k] * z[world, m]
        return s

    @wp.func
    def ancestor_dot(
        l: wp.array2d(dtype=scalar),
        x: wp.array2d(dtype=scalar),
        dof_pair_start: wp.array(dtype=int),
        pair_col: wp.array(dtype=int),
        world: int,
        n: int,
        k: int,
    ):
        """sum of L[k, i] x[i] over the dofs i above dof k (the pairs of row k after the diagonal)."""
        s = scalar(0.0)
        for p in range(dof_pair_start[k] + 1, dof_pair_start[k + 1]):
            i = pair_col[p]
            s = s + l[world, k * n + i] * x[world, i]
        return s

    @wp.kernel
    def forward_kinematics(
        # Model:
        link_body: wp.array(dtype=int),
        link_parent: wp.array(dtype=int),
        link_type: wp.array(dtype=int),
        link_axis: wp.array(dtype=vec3),
        link_parent_xform: wp.array(dtype=transform),
        link_child_xform: wp.array(dtype=transform),
        link_q_start: wp.array(dtype=int),
        link_qd_start: wp.array(dtype=int),
        # State in:
        joint_q: wp.array2d(dtype=scalar),
        joint_qd: wp.array2d(dtype=scalar),
        # State out:
        link_q: wp.array2d(dtype=transform),
        link_v: wp.array2d(dtype=vec6),
        body_q: wp.array2d(dtype=transform),
        body_v: wp.array2d(dtype=vec3),
        body_w: wp.array2d(dtype=vec3),
    ):
        """Fill link and body poses and velocities from joint coordinates (one thread per world;
        links from the root outwards, parents first). The last stage of a step, and
        :func:`simulator.articulation.eval_fk`.

        The loop body is written out here rather than in a helper function: a generated adjoint
        replays a helper's forward pass once more inside the helper's adjoint, per nesting level."""
        world = wp.tid()
        for k in range(link_body.shape[0]):
            parent = link_parent[k]
            jtype = link_type[k]
            axis = link_axis[k]
            frame_parent = parent_pose(link_q, world, parent) * link_parent_xform[k]
            frame_child = frame_parent * joint_local_transform(jtype, axis, joint_q, world, link_q_start[k])
            pose = frame_child * wp.transform_inverse(link_child_xform[k])
            v = parent_twist(link_v, world, parent) + joint_twist(jtype, axis, frame_parent, frame_child, joint_qd, world, link_qd_start[k])
            link_q[world, k] = pose
            link_v[world, k] = v
            body = link_body[k]
            if body >= 0:
                body_q[world, body] = pose
                body_v[world, body] = bottom(v) + wp.cross(top(v), wp.transform_get_translation(pose))
                body_w[world, body] = top(v)

    # One step is five kernels, each a stage whose results go to the step's work arrays
    # (State.joint_work): a kernel's generated adjoint replays the forward pass of that kernel only,
    # so a stage's adjoint never recomputes the stages before it.

    @wp.kernel
    def articulation_bias(
        # Model, per world (differentiable):
        body_mass: wp.array2d(dtype=scalar),
        body_inertia: wp.array2d(dtype=mat33),
        # Model, shared by the worlds:
        link_body: wp.array(dtype=int),
        link_parent: wp.array(dtype=int),
        link_type: wp.array(dtype=int),
        link_axis: wp.array(dtype=vec3),
        link_parent_xform: wp.array(dtype=transform),
        link_child_xform: wp.array(dtype=transform),
        link_qd_start: wp.array(dtype=int),
        link_dof_count: wp.array(dtype=int),
        gravity: vec3,
        # State in:
        joint_qd_in: wp.array2d(dtype=scalar),
        link_q_in: wp.array2d(dtype=transform),
        link_v_in: wp.array2d(dtype=vec6),
        body_contact_force: wp.array2d(dtype=vec3),
        body_contact_torque: wp.array2d(dtype=vec3),
        # Control:
        control_force: wp.array2d(dtype=vec3),
        control_torque: wp.array2d(dtype=vec3),
        # Work out:
        work_s: wp.array2d(dtype=vec6),
        work_acc: wp.array2d(dtype=vec6),
        work_force: wp.array2d(dtype=vec6),
        work_mass: wp.array2d(dtype=scalar),
        work_first_moment: wp.array2d(dtype=vec3),
        work_rot_inertia: wp.array2d(dtype=mat33),
    ):
        """Stage 1 of a step (one thread per world): motion subspaces, bias forces by recursive
        Newton-Euler with zero joint acceleration (gravity as a base acceleration) minus contact
        and control wrenches, then composite inertias and forces summed over each subtree."""
        world = wp.tid()
        num_links = link_body.shape[0]
        base_acc = twist(vec3(), -gravity)

        # outward pass at the start-of-step configuration
        for k in range(num_links):
            parent = link_parent[k]
            body = link_body[k]
            pose = link_q_in[world, k]
            v = link_v_in[world, k]
            v_parent = parent_twist(link_v_in, world, parent)
            frame_parent = parent_pose(link_q_in, world, parent) * link_parent_xform[k]
            frame_child = pose * link_child_xform[k]
            ds = link_qd_start[k]
            for i in range(link_dof_count[k]):
                work_s[world, ds + i] = dof_motion(link_type[k], link_axis[k], frame_parent, frame_child, i)
            acc = parent_acceleration(work_acc, world, parent, base_acc) + joint_bias(
                link_type[k], frame_parent, v_parent, v - v_parent, joint_qd_in, world, ds
            )
            work_acc[world, k] = acc
            m, h, J = link_inertia(body_mass, body_inertia, world, body, pose)
            work_mass[world, k] = m
            work_first_moment[world, k] = h
            work_rot_inertia[world, k] = J
            ext = external_wrench(body_contact_force, body_contact_torque, control_force, control_torque, world, body, pose)
            work_force[world, k] = inertia_times(m, h, J, acc) + cross_force(v, inertia_times(m, h, J, v)) - ext

        # inward pass: composite inertias and forces
        for kk in range(num_links):
            k = num_links - 1 - kk
            parent = link_parent[k]
            if parent >= 0:
                wp.atomic_add(work_force, world, parent, work_force[world, k])
                wp.atomic_add(work_mass, world, parent, work_mass[world, k])
                wp.atomic_add(work_first_moment, world, parent, work_first_moment[world, k])
                wp.atomic_add(work_rot_inertia, world, parent, work_rot_inertia[world, k])

    @wp.kernel
    def articulation_joint_forces(
        # Model, per world (differentiable):
        joint_armature: wp.array2d(dtype=scalar),
        joint_damping: wp.array2d(dtype=scalar),
        joint_stiffness: wp.array2d(dtype=scalar),
        joint_limit_lower: wp.array2d(dtype=scalar),
        joint_limit_upper: wp.array2d(dtype=scalar),
        actuator_gear: wp.array2d(dtype=scalar),
        actuator_kp: wp.array2d(dtype=scalar),
        actuator_kd: wp.array2d(dtype=scalar),
        # Model, shared by the worlds:
        dof_link: wp.array(dtype=int),
        dof_coord: wp.array(dtype=int),
        dof_spring_ref: wp.array(dtype=scalar),
        dof_limit_stiffness: wp.array(dtype=scalar),
        dof_limit_damping: wp.array(dtype=scalar),
        dof_limit_inertial: wp.array(dtype=scalar),
        dof_limit_softness: wp.array(dtype=scalar),
        dof_pair_start: wp.array(dtype=int),
        pair_col: wp.array(dtype=int),
        dof_act_start: wp.array(dtype=int),
        dof_act: wp.array(dtype=int),
        act_kind: wp.array(dtype=int),
        act_lower: wp.array(dtype=scalar),
        act_upper: wp.array(dtype=scalar),
        num_dofs: int,
        dt: scalar,
        # State in:
        joint_q_in: wp.array2d(dtype=scalar),
        joint_qd_in: wp.array2d(dtype=scalar),
        # Control:
        control_act: wp.array2d(dtype=scalar),
        # Work in:
        work_s: wp.array2d(dtype=vec6),
        work_force: wp.array2d(dtype=vec6),
        work_mass: wp.array2d(dtype=scalar),
        work_first_moment: wp.array2d(dtype=vec3),
        work_rot_inertia: wp.array2d(dtype=mat33),
        # Work out:
        work_h: wp.array2d(dtype=scalar),
        work_rhs: wp.array2d(dtype=scalar),
        work_diag: wp.array2d(dtype=scalar),
    ):
        """Stage 2 of a step (one thread per world), for every dof ``d``: the generalised force and
        the implicit diagonal of ``d``, and row ``d`` of the mass matrix's lower triangle by the
        composite-rigid-body algorithm: ``H[d, j] = S_j . (Ic_k S_d)``, ``k`` the link of ``d``,
        for ``d`` itself and the dofs above it in the dof tree, i.e. the dofs ``j < d`` of ``k``
        and those of its ancestors (``pair_col[dof_pair_start[d]:dof_pair_start[d + 1]]``, the
        diagonal first)."""
        world = wp.tid()
        n = num_dofs
        for d in range(n):
            k = dof_link[d]
            qd = joint_qd_in[world, d]
            q = coordinate(joint_q_in, world, dof_coord[d])
            tau_a, stiff_a, damp_a = actuator_terms(
                dof_act_start, dof_act, act_kind, act_lower, act_upper, actuator_gear, actuator_kp, actuator_kd, control_act, world, d,
                q, qd
            )
            s_d = work_s[world, d]
            ic_s = inertia_times(work_mass[world, k], work_first_moment[world, k], work_rot_inertia[world, k], s_d)
            # the limit's inertia: H[d, d] + armature (every other dof locked) where the law is inertial, else 1
            inertia = dof_limit_inertial[d] * (wp.dot(s_d, ic_s) + joint_armature[world, d]) + (scalar(1.0) - dof_limit_inertial[d])
            tau_l, stiff_l, damp_l = limit_terms(
                joint_limit_lower[world, d], joint_limit_upper[world, d], dof_limit_stiffness[d], dof_limit_damping[d], inertia,
                dof_limit_softness[d], q, qd
            )
            bias = wp.dot(s_d, work_force[world, k])
            spring = joint_stiffness[world, d]
            damping = joint_damping[world, d]
            stiff = stiff_a + stiff_l + spring
            tau_s = spring * (dof_spring_ref[d] - q)
            work_rhs[world, d] = tau_a + tau_l + tau_s - damping * qd - bias - dt * stiff * qd
            work_diag[world, d] = joint_armature[world, d] + dt * (damping + damp_a + damp_l) + dt * dt * stiff

            for p in range(dof_pair_start[d], dof_pair_start[d + 1]):
                j = pair_col[p]
                work_h[world, d * n + j] = wp.dot(work_s[world, j], ic_s)

    @wp.kernel(enable_backward=False)
    def articulation_solve(
        # Model, shared by the worlds:
        dof_pair_start: wp.array(dtype=int),
        pair_col: wp.array(dtype=int),
        dof_desc_start: wp.array(dtype=int),
        dof_desc: wp.array(dtype=int),
        num_dofs: int,
        # Work in:
        work_h: wp.array2d(dtype=scalar),
        work_rhs: wp.array2d(dtype=scalar),
        work_diag: wp.array2d(dtype=scalar),
        # Work out:
        work_l: wp.array2d(dtype=scalar),
        work_y: wp.array2d(dtype=scalar),
        work_qdd: wp.array2d(dtype=scalar),
    ):
        """Stage 3 of a step (one thread per world): ``(H + diag) qdd = rhs``. ``H + diag = L^T L``
        with L lower triangular and nonzero only at the ancestor pairs (parents come first, so
        eliminating from the last dof up creates no fill-in; Featherstone's LTL), computed
        column-free from the dofs below (dof_desc) and written once per entry; then ``L^T y = rhs``
        from the last dof up and ``L qdd = y`` from the root down. Its adjoint is
        :func:`articulation_solve_adjoint` (the generated one would differentiate the
        factorisation step by step)."""
        world = wp.tid()
        n = num_dofs
        for kk in range(n):
            k = n - 1 - kk
            lkk = wp.sqrt(work_h[world, k * n + k] + work_diag[world, k] - subtree_dot(work_l, dof_desc_start, dof_desc, world, n, k, k))
            work_l[world, k * n + k] = lkk
            for pa in range(dof_pair_start[k] + 1, dof_pair_start[k + 1]):
                a = pair_col[pa]
                work_l[world, k * n + a] = (work_h[world, k * n + a] - subtree_dot(work_l, dof_desc_start, dof_desc, world, n, k, a)) / lkk
        for kk in range(n):
            k = n - 1 - kk
            below = subtree_dot_vec(work_l, work_y, dof_desc_start, dof_desc, world, n, k)
            work_y[world, k] = (work_rhs[world, k] - below) / work_l[world, k * n + k]
        for k in range(n):
            above = ancestor_dot(work_l, work_qdd, dof_pair_start, pair_col, world, n, k)
            work_qdd[world, k] = (work_y[world, k] - above) / work_l[world, k * n + k]

    @wp.kernel(enable_backward=False)
    def articulation_solve_adjoint(
        # Model, shared by the worlds:
        dof_pair_start: wp.array(dtype=int),
        pair_col: wp.array(dtype=int),
        dof_desc_start: wp.array(dtype=int),
        dof_desc: wp.array(dtype=int),
        num_dofs: int,
        # Work in (the forward results):
        work_l: wp.array2d(dtype=scalar),
        work_qdd: wp.array2d(dtype=scalar),
        # Adjoints in and out:
        adj_work_qdd: wp.array2d(dtype=scalar),
        adj_work_y: wp.array2d(dtype=scalar),
        adj_work_h: wp.array2d(dtype=scalar),
        adj_work_rhs: wp.array2d(dtype=scalar),
        adj_work_diag: wp.array2d(dtype=scalar),
    ):
        """Hand-written adjoint of :func:`articulation_solve` (one thread per world). With
        ``A = H + diag`` (symmetric; ``h`` holds its lower triangle at the ancestor pairs) and
        ``A qdd = rhs``: ``z = A^-1 adj_qdd`` by the two triangular solves with the stored factor
        in reverse (``adj_y = L^-T adj_qdd`` into ``adj_work_y``, then ``z = L^-1 adj_y``), then
        ``adj_rhs += z`` and ``adj_A = -z qdd^T`` on the stored pattern: ``adj_diag[k]`` and
        ``adj_h[k, k]`` gain ``-z_k qdd_k``, ``adj_h[k, a]`` (``a`` above ``k``) gains
        ``-(z_k qdd_a + z_a qdd_k)`` (the entry stands for ``A[k, a]`` and ``A[a, k]``).

        Like the generated adjoint, it leaves the adjoint of each intermediate in its gradient
        array: ``adj_work_qdd`` (W, D) ends as the total adjoint of ``qdd`` within the solve and
        ``adj_work_y`` (zero on entry: nothing outside the solve reads ``y`` or ``L``) as that of
        ``y``. The factor ``L`` gets no adjoint (it is an intermediate of this kernel only)."""
        world = wp.tid()
        n = num_dofs
        # reverse of L qdd = y (rows in order from the root): row k, last first, passes its
        # adjoint to y_k and to the qdd of the dofs above it
        for kk in range(n):
            k = n - 1 - kk
            g = adj_work_qdd[world, k] / work_l[world, k * n + k]
            adj_work_y[world, k] = adj_work_y[world, k] + g
            for pa in range(dof_pair_start[k] + 1, dof_pair_start[k + 1]):
                a = pair_col[pa]
                adj_work_qdd[world, a] = adj_work_qdd[world, a] - work_l[world, k * n + a] * g
        # reverse of L^T y = rhs (rows from the last dof up): row k, root first, passes its
        # adjoint z_k to rhs_k and to the y of the dofs below it
        for k in range(n):
            z = adj_work_y[world, k] / work_l[world, k * n + k]
            adj_work_rhs[world, k] = adj_work_rhs[world, k] + z
            for p in range(dof_desc_start[k], dof_desc_start[k + 1]):
                m = dof_desc[p]
                adj_work_y[world, m] = adj_work_y[world, m] - work_l[world, m * n + k] * z
        # adj_A = -z qdd^T on the stored pattern (z_k = adj_y_k / L_kk: adj_y_k was final once row k was done)
        for k in range(n):
            z_k = adj_work_y[world, k] / work_l[world, k * n + k]
            x_k = work_qdd[world, k]
            adj_work_diag[world, k] = adj_work_diag[world, k] - z_k * x_k
            adj_work_h[world, k * n + k] = adj_work_h[world, k * n + k] - z_k * x_k
            for pa in range(dof_pair_start[k] + 1, dof_pair_start[k + 1]):
                a = pair_col[pa]
                z_a = adj_work_y[world, a] / work_l[world, a * n + a]
                adj_work_h[world, k * n + a] = adj_work_h[world, k * n + a] - (z_k * work_qdd[world, a] + z_a * x_k)

    @wp.kernel
    def articulation_integrate(
        # Model, shared by the worlds:
        link_type: wp.array(dtype=int),
        link_q_start: wp.array(dtype=int),
        link_qd_start: wp.array(dtype=int),
        num_dofs: int,
        dt: scalar,
        # State in:
        joint_q_in: wp.array2d(dtype=scalar),
        joint_qd_in: wp.array2d(dtype=scalar),
        # Work in:
        work_qdd: wp.array2d(dtype=scalar),
        # State out:
        joint_q_out: wp.array2d(dtype=scalar),
        joint_qd_out: wp.array2d(dtype=scalar),
    ):
        """Stage 4 of a step (one thread per world): semi-implicit Euler, ``qd += dt*qdd`` then
        ``q += dt*qd`` with the new velocities (quaternions renormalised). Stage 5 is
        :func:`forward_kinematics` at the new configuration."""
        world = wp.tid()
        for d in range(num_dofs):
            joint_qd_out[world, d] = joint_qd_in[world, d] + dt * work_qdd[world, d]
        for k in range(link_type.shape[0]):
            jtype = link_type[k]
            qs = link_q_start[k]
            ds = link_qd_start[k]
            if jtype == JOINT_REVOLUTE or jtype == JOINT_PRISMATIC:
                joint_q_out[world, qs] = joint_q_in[world, qs] + dt * joint_qd_out[world, ds]
            if jtype == JOINT_FREE:
                for i in range(3):
                    joint_q_out[world, qs + i] = joint_q_in[world, qs + i] + dt * joint_qd_out[world, ds + i]
            if jtype == JOINT_BALL:
                rot_ball = integrate_rotation(joint_q_in, joint_qd_out, world, qs, ds, dt)
                for i in range(4):
                    joint_q_out[world, qs + i] = rot_ball[i]
            if jtype == JOINT_FREE:
                rot_free = integrate_rotation(joint_q_in, joint_qd_out, world, qs + 3, ds + 3, dt)
                for i in range(4):
                    joint_q_out[world, qs + 3 + i] = rot_free[i]

    return SimpleNamespace(
        forward_kinematics=forward_kinematics,
        articulation_bias=articulation_bias,
        articulation_joint_forces=articulation_joint_forces,
        articulation_solve=articulation_solve,
        articulation_solve_adjoint=articulation_solve_adjoint,
        articulation_integrate=articulation_integrate,
        vec6=vec6,
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        articulation_kernels(scalar)


build_all()
