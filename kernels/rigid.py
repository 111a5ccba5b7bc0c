"""Rigid-body kernels: compliant contact forces and semi-implicit Euler integration.

Conventions (shared with ``simulator.model``):

* Arrays with a world dimension are 2D, ``[world, item]``; the launch grid is ``(num_worlds, count)``.
* A body's frame is its centre of mass; ``body_q`` is that frame in world coordinates,
  ``body_v`` the COM velocity [m/s] and ``body_w`` the angular velocity in world axes [rad/s].
* Shapes attached to body -1 are static; their ``shape_transform`` is a world transform.
* A contact *candidate* is a sphere (a point with a radius, possibly zero) carried by a source
  shape, tested against the signed distance of a target shape; ``CandidateKind.SEGMENT`` candidates carry a
  segment instead (capsule against capsule). Candidates are built once by the model builder.

Contact law (see ``simulator.contact`` for the user-facing documentation): with penetration
``d`` [m], normal speed ``vn`` [m/s] (positive when separating) and softness ``s`` [m],

    fn = ke * softplus_s(d) - kd * vn * sigmoid_s(d)
    ft = -mu * max(fn, 0) * vt / sqrt(|vt|^2 + v_smooth^2)

where ``softplus_s(d) = s*log(1 + exp(d/s))`` tends to ``max(d, 0)`` as ``s -> 0`` and
``sigmoid_s`` is its derivative. In surrogate mode the forward pass uses ``s = 0`` and the
backward pass the derivative of the softened law.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .constants import NO_DIVERGENCE, CandidateKind, ContactMode, ShapeType  # noqa: F401 (NO_DIVERGENCE re-exported)
from .math import math_functions

# the older names, kept importable for host code (kernels below use the enums of ``constants``)
SHAPE_SPHERE, SHAPE_BOX, SHAPE_CAPSULE = int(ShapeType.SPHERE), int(ShapeType.BOX), int(ShapeType.CAPSULE)
SHAPE_PLANE, SHAPE_MESH = int(ShapeType.PLANE), int(ShapeType.MESH)
KIND_POINT, KIND_SEGMENT = int(CandidateKind.POINT), int(CandidateKind.SEGMENT)
CONTACT_SOFT, CONTACT_SURROGATE = int(ContactMode.SOFT), int(ContactMode.SURROGATE)


@functools.cache
def rigid_kernels(scalar):
    """Build the rigid-body kernels for one scalar type (``wp.float32`` or ``wp.float64``)."""
    vec3 = wp.types.vector(3, scalar)
    mat33 = wp.types.matrix((3, 3), scalar)
    transform = wp.types.transformation(scalar)
    fn = math_functions(scalar)

    @wp.func
    def body_pose(body_q: wp.array2d(dtype=transform), world: int, body: int):
        if body < 0:
            return wp.transform_identity(dtype=scalar)
        return body_q[world, body]

    @wp.func
    def point_velocity(
        body_q: wp.array2d(dtype=transform),
        body_v: wp.array2d(dtype=vec3),
        body_w: wp.array2d(dtype=vec3),
        world: int,
        body: int,
        point: vec3,
    ):
        """World velocity [m/s] of a world-space point rigidly attached to ``body``."""
        if body < 0:
            return vec3(scalar(0.0), scalar(0.0), scalar(0.0))
        com = wp.transform_get_translation(body_q[world, body])
        return body_v[world, body] + wp.cross(body_w[world, body], point - com)

    @wp.func
    def closest_on_segment(a: vec3, b: vec3, p: vec3):
        """Closest point to ``p`` on the segment ``a``-``b``."""
        ab = b - a
        t = wp.dot(p - a, ab) / (wp.dot(ab, ab) + scalar(1.0e-30))
        t = wp.clamp(t, scalar(0.0), scalar(1.0))
        return a + t * ab

    @wp.func
    def segment_segment_closest(a0: vec3, a1: vec3, b0: vec3, b1: vec3):
        """Closest point on segment a to segment b (clamped closest-approach parameters)."""
        da = a1 - a0
        db = b1 - b0
        r = a0 - b0
        aa = wp.dot(da, da)
        bb = wp.dot(db, db)
        ab = wp.dot(da, db)
        ar = wp.dot(da, r)
        br = wp.dot(db, r)
        denom = aa * bb - ab * ab
        s = scalar(0.0)
        if denom > scalar(1.0e-12) * aa * bb:
            s = wp.clamp((ab * br - ar * bb) / denom, scalar(0.0), scalar(1.0))
        t = wp.clamp((ab * s + br) / (bb + scalar(1.0e-30)), scalar(0.0), scalar(1.0))
        s = wp.clamp((ab * t - ar) / (aa + scalar(1.0e-30)), scalar(0.0), scalar(1.0))
        return a0 + s * da, b0 + t * db

    @wp.func
    def box_signed_distance(p: vec3, half: vec3):
        """Signed distance [m] from ``p`` to a box of half extents ``half`` and the outward normal."""
        zero = scalar(0.0)
        q = vec3(wp.abs(p[0]) - half[0], wp.abs(p[1]) - half[1], wp.abs(p[2]) - half[2])
        sign = vec3(wp.sign(p[0]), wp.sign(p[1]), wp.sign(p[2]))
        outside = vec3(wp.max(q[0], zero), wp.max(q[1], zero), wp.max(q[2], zero))
        if q[0] > zero or q[1] > zero or q[2] > zero:
            dist = fn.safe_length(outside)
            n = wp.cw_mul(sign, outside) / dist
            return dist, n
        # inside: the nearest face decides the normal
        if q[0] >= q[1] and q[0] >= q[2]:
            return q[0], vec3(sign[0], zero, zero)
        if q[1] >= q[2]:
            return q[1], vec3(zero, sign[1], zero)
        return q[2], vec3(zero, zero, sign[2])

    @wp.func
    def shape_signed_distance(shape_type: int, size: vec3, p: vec3):
        """Signed distance [m] from a point ``p`` in the shape's frame to its surface, and the
        outward unit normal in that frame. ``size`` holds (radius,.,.) for a sphere, the half
        extents of a box, and (radius, half height along z, .) for a capsule."""
        zero = scalar(0.0)
        if shape_type == ShapeType.SPHERE:
            r = fn.safe_length(p)
            return r - size[0], p / r
        if shape_type == ShapeType.BOX:
            return box_signed_distance(p, size)
        if shape_type == ShapeType.CAPSULE:
            c = vec3(zero, zero, wp.clamp(p[2], -size[1], size[1]))
            r = fn.safe_length(p - c)
            return r - size[0], (p - c) / r
        # ShapeType.PLANE: the half-space z <= 0 of the shape frame
        return p[2], vec3(zero, zero, scalar(1.0))

    @wp.func
    def contact_force(
        depth: scalar,
        vn: scalar,
        vt: vec3,
        normal: vec3,
        ke: scalar,
        kd: scalar,
        mu: scalar,
        softness: scalar,
        friction_smoothing: scalar,
    ):
        """Contact force [N] on the source body: the softened normal law plus regularised Coulomb
        friction (module docstring). ``softness = 0`` is the hard penalty."""
        force_n = ke * fn.softplus(depth, softness) - kd * vn * fn.sigmoid(depth, softness)
        load = wp.max(force_n, scalar(0.0))
        slip = wp.sqrt(wp.dot(vt, vt) + friction_smoothing * friction_smoothing)
        return force_n * normal - (mu * load / slip) * vt

    @wp.kernel
    def contact_forces(
        # Model:
        shape_body: wp.array(dtype=int),
        shape_type: wp.array(dtype=int),
        shape_transform: wp.array(dtype=transform),
        shape_size: wp.array(dtype=vec3),
        shape_stiffness: wp.array2d(dtype=scalar),
        shape_damping: wp.array2d(dtype=scalar),
        shape_friction: wp.array2d(dtype=scalar),
        contact_softness: wp.array(dtype=scalar),
        contact_mode: int,
        friction_smoothing: scalar,
        candidate_source: wp.array(dtype=int),
        candidate_target: wp.array(dtype=int),
        candidate_kind: wp.array(dtype=int),
        candidate_point: wp.array(dtype=vec3),
        candidate_point2: wp.array(dtype=vec3),
        candidate_radius: wp.array(dtype=scalar),
        candidates_per_thread: int,
        # State in:
        body_q: wp.array2d(dtype=transform),
        body_v: wp.array2d(dtype=vec3),
        body_w: wp.array2d(dtype=vec3),
        # State out (accumulated):
        body_contact_force: wp.array2d(dtype=vec3),
        body_contact_torque: wp.array2d(dtype=vec3),
    ):
        """Contact wrenches of the candidates, accumulated on their bodies. Thread ``(world,
        chunk)`` handles candidates ``chunk * candidates_per_thread`` onwards (a chunk): on the CPU
        one chunk holds a world's candidates (Warp runs a CPU kernel on one thread, and each
        thread, forward and adjoint, pays a setup: a thread per candidate made the adjoint 2x
        slower), on a GPU one candidate per thread."""
        world, chunk = wp.tid()
        zero = scalar(0.0)
        first = chunk * candidates_per_thread
        for c in range(first, wp.min(first + candidates_per_thread, candidate_source.shape[0])):
            source = candidate_source[c]
            target = candidate_target[c]
            body_a = shape_body[source]
            body_b = shape_body[target]
            pose_a = body_pose(body_q, world, body_a)
            target_pose = body_pose(body_q, world, body_b) * shape_transform[target]
            radius_a = candidate_radius[c]
            point_a = wp.transform_point(pose_a, candidate_point[c])

            if candidate_kind[c] == CandidateKind.SEGMENT:
                # capsule against capsule: closest points of the two core segments
                half_b = vec3(zero, zero, shape_size[target][1])
                b0 = wp.transform_point(target_pose, -half_b)
                b1 = wp.transform_point(target_pose, half_b)
                a1 = wp.transform_point(pose_a, candidate_point2[c])
                pa, pb = segment_segment_closest(point_a, a1, b0, b1)
                point_a = pa
                gap = fn.safe_length(pa - pb)
                phi = gap - shape_size[target][0]
                normal = (pa - pb) / gap
            else:
                local = wp.transform_point(wp.transform_inverse(target_pose), point_a)
                phi, normal_local = shape_signed_distance(shape_type[target], shape_size[target], local)
                normal = wp.transform_vector(target_pose, normal_local)

            depth = radius_a - phi  # penetration [m], > 0 in contact
            softness = contact_softness[world]
            if softness <= zero and depth <= zero:
                # the hard law (both modes when softness is 0) gives a separated candidate exactly zero
                # force and torque, and zero adjoints: the rest would only add zeros
                continue
            contact_point = point_a - normal * (radius_a - scalar(0.5) * depth)

            v_rel = point_velocity(body_q, body_v, body_w, world, body_a, contact_point) - point_velocity(
                body_q, body_v, body_w, world, body_b, contact_point
            )
            vn = wp.dot(v_rel, normal)
            vt = v_rel - vn * normal

            ke = scalar(0.5) * (shape_stiffness[world, source] + shape_stiffness[world, target])
            kd = scalar(0.5) * (shape_damping[world, source] + shape_damping[world, target])
            mu = scalar(0.5) * (shape_friction[world, source] + shape_friction[world, target])
            force = contact_force(depth, vn, vt, normal, ke, kd, mu, softness, friction_smoothing)
            hard_force = force
            if contact_mode == ContactMode.SURROGATE:
                hard_force = contact_force(depth, vn, vt, normal, ke, kd, mu, zero, friction_smoothing)

            # the surrogate is applied to the whole wrench (force and torque), so that its adjoint is
            # exactly the softened law's
            if body_a >= 0:
                arm_a = contact_point - wp.transform_get_translation(pose_a)
                f_a = fn.straight_through(hard_force, force)
                t_a = fn.straight_through(wp.cross(arm_a, hard_force), wp.cross(arm_a, force))
                wp.atomic_add(body_contact_force, world, body_a, f_a)
                wp.atomic_add(body_contact_torque, world, body_a, t_a)
            if body_b >= 0:
                arm_b = contact_point - wp.transform_get_translation(body_q[world, body_b])
                f_b = fn.straight_through(hard_force, force)
                t_b = fn.straight_through(wp.cross(arm_b, hard_force), wp.cross(arm_b, force))
                wp.atomic_sub(body_contact_force, world, body_b, f_b)
                wp.atomic_sub(body_contact_torque, world, body_b, t_b)

    @wp.kernel
    def integrate_bodies(
        # Model:
        body_index: wp.array(dtype=int),  # bodies integrated here (articulated bodies are not)
        body_mass: wp.array2d(dtype=scalar),
        body_inertia: wp.array2d(dtype=mat33),
        gravity: vec3,
        dt: scalar,
        # State in:
        body_q_in: wp.array2d(dtype=transform),
        body_v_in: wp.array2d(dtype=vec3),
        body_w_in: wp.array2d(dtype=vec3),
        body_contact_force: wp.array2d(dtype=vec3),
        body_contact_torque: wp.array2d(dtype=vec3),
        # Control:
        control_force: wp.array2d(dtype=vec3),
        control_torque: wp.array2d(dtype=vec3),
        # State out:
        body_q_out: wp.array2d(dtype=transform),
        body_v_out: wp.array2d(dtype=vec3),
        body_w_out: wp.array2d(dtype=vec3),
    ):
        """Semi-implicit Euler: velocities first from the forces, then poses from the new velocities."""
        world, i = wp.tid()
        body = body_index[i]
        mass = body_mass[world, body]
        pose = body_q_in[world, body]
        position = wp.transform_get_translation(pose)
        rotation = wp.transform_get_rotation(pose)
        v = body_v_in[world, body]
        w = body_w_in[world, body]

        force = body_contact_force[world, body] + control_force[world, body] + mass * gravity
        torque = body_contact_torque[world, body] + control_torque[world, body]

        r = wp.quat_to_matrix(rotation)
        inertia_world = r * body_inertia[world, body] * wp.transpose(r)
        # Euler's equations in world axes, gyroscopic term explicit
        w_dot = wp.inverse(inertia_world) * (torque - wp.cross(w, inertia_world * w))

        v_new = v + force * (dt / mass)
        w_new = w + w_dot * dt
        position_new = position + v_new * dt
        spin = wp.quaternion(w_new[0], w_new[1], w_new[2], scalar(0.0))
        rotation_new = wp.normalize(rotation + spin * rotation * (scalar(0.5) * dt))

        body_q_out[world, body] = wp.transformation(position_new, rotation_new, dtype=scalar)
        body_v_out[world, body] = v_new
        body_w_out[world, body] = w_new

    @wp.kernel
    def record_first_nonfinite(
        # State in:
        body_q: wp.array2d(dtype=transform),
        body_v: wp.array2d(dtype=vec3),
        body_w: wp.array2d(dtype=vec3),
        # Step index: step_base[0] + step (a device counter lets a captured graph be replayed)
        step_base: wp.array(dtype=int),
        step: int,
        # Out (accumulated):
        first_bad_step: wp.array(dtype=int),
    ):
        """Lower ``first_bad_step[world]`` to ``step_base[0] + step`` if any body of the world is non-finite."""
        world, body = wp.tid()
        pose = body_q[world, body]
        finite = (
            wp.isfinite(wp.transform_get_translation(pose))
            and wp.isfinite(wp.transform_get_rotation(pose))
            and wp.isfinite(body_v[world, body])
            and wp.isfinite(body_w[world, body])
        )
        if not finite:
            wp.atomic_min(first_bad_step, world, step_base[0] + step)

    return SimpleNamespace(
        contact_forces=contact_forces,
        integrate_bodies=integrate_bodies,
        record_first_nonfinite=record_first_nonfinite,
        shape_signed_distance=shape_signed_distance,
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        rigid_kernels(scalar)


build_all()
