"""Kernels of the task loss terms (per precision): each adds one term into a per-world loss.

Every kernel accumulates atomically into ``loss`` (shape ``(W,)``), so terms and steps add up in
one array that a ``wp.Tape`` differentiates. Weights and scales are plain scalars: the host folds
constants (a weight over the elapsed time, a mean over steps) into them, so no kernel reads a
host value at run time and every launch can be captured in a graph.
"""

import functools
from types import SimpleNamespace

import warp as wp


@functools.cache
def loss_kernels(scalar):
    """Build the loss-term kernels for one scalar type (``wp.float32`` or ``wp.float64``)."""
    vec3 = wp.types.vector(3, scalar)
    transform = wp.types.transformation(scalar)

    @wp.kernel
    def joint_error(
        # Term:
        coord: int,
        is_velocity: int,
        is_angle: int,
        target: scalar,
        weight: scalar,
        # State in: (W, nq), (W, nqd)
        joint_q: wp.array2d(dtype=scalar),
        joint_qd: wp.array2d(dtype=scalar),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += weight * e^2 with e = x - target, or e = 2 sin((x - target)/2) for an angle
        (smooth and 2 pi-periodic); x is ``joint_qd[w, coord]`` if ``is_velocity`` else ``joint_q[w, coord]``."""
        world = wp.tid()
        x = joint_q[world, coord]
        if is_velocity != 0:
            x = joint_qd[world, coord]
        e = x - target
        if is_angle != 0:
            e = scalar(2.0) * wp.sin(scalar(0.5) * e)
        wp.atomic_add(loss, world, weight * e * e)

    @wp.kernel
    def body_progress(
        # Term:
        body: int,
        axis: vec3,
        scale: scalar,
        # State in: (W, B) poses at t = 0 and now
        body_q_start: wp.array2d(dtype=transform),
        body_q: wp.array2d(dtype=transform),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += scale * dot(axis, x - x_start) of one body's centre of mass [m * scale]."""
        world = wp.tid()
        dx = wp.transform_get_translation(body_q[world, body]) - wp.transform_get_translation(body_q_start[world, body])
        wp.atomic_add(loss, world, scale * wp.dot(axis, dx))

    @wp.kernel
    def body_position(
        # Term:
        body: int,
        target: vec3,
        weight: scalar,
        # State in: (W, B)
        body_q: wp.array2d(dtype=transform),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += weight * |p[w, body] - target|^2 [m^2 * weight]."""
        world = wp.tid()
        d = wp.transform_get_translation(body_q[world, body]) - target
        wp.atomic_add(loss, world, weight * wp.dot(d, d))

    @wp.kernel
    def body_velocity(
        # Term:
        body: int,
        target: vec3,
        weight: scalar,
        # State in: (W, B)
        body_v: wp.array2d(dtype=vec3),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += weight * |v[w, body] - target|^2 [(m/s)^2 * weight]."""
        world = wp.tid()
        d = body_v[world, body] - target
        wp.atomic_add(loss, world, weight * wp.dot(d, d))

    @wp.kernel
    def force_effort(
        # Term:
        weight: scalar,
        # Control in: (W, B)
        body_force: wp.array2d(dtype=vec3),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += weight * sum_b |f[w, b]|^2 [N^2 * weight]; launched over (W, B)."""
        world, b = wp.tid()
        f = body_force[world, b]
        wp.atomic_add(loss, world, weight * wp.dot(f, f))

    @wp.kernel
    def actuator_effort(
        # Term:
        weight: scalar,
        # Control in: (W, A)
        joint_act: wp.array2d(dtype=scalar),
        # Out (accumulated): (W,)
        loss: wp.array(dtype=scalar),
    ):
        """loss[w] += weight * sum_a u[w, a]^2; launched over (W, A)."""
        world, a = wp.tid()
        u = joint_act[world, a]
        wp.atomic_add(loss, world, weight * u * u)

    @wp.kernel
    def weighted_sum(
        # In: (N,) any array's scalars, and their weights
        values: wp.array(dtype=scalar),
        weights: wp.array(dtype=scalar),
        # Out (accumulated): (1,)
        total: wp.array(dtype=scalar),
    ):
        """total[0] += sum_i weights[i] * values[i]; launched over (N,)."""
        i = wp.tid()
        wp.atomic_add(total, 0, weights[i] * values[i])

    return SimpleNamespace(
        weighted_sum=weighted_sum,
        joint_error=joint_error,
        body_progress=body_progress,
        body_position=body_position,
        body_velocity=body_velocity,
        force_effort=force_effort,
        actuator_effort=actuator_effort,
    )


for _scalar in (wp.float32, wp.float64):  # fixed module contents: both precisions up front
    loss_kernels(_scalar)
