"""Kernels that map controller parameters to controls (per precision); the loss terms are in ``losses``."""

import functools
from types import SimpleNamespace

import warp as wp


@functools.cache
def control_kernels(scalar):
    """Build the controller kernels for one scalar type."""
    vec3 = wp.types.vector(3, scalar)
    transform = wp.types.transformation(scalar)

    @wp.kernel
    def open_loop_body_force(
        # Parameters: (W, P) with P = steps * len(bodies) * 3, step-major
        theta: wp.array2d(dtype=scalar),
        step: int,
        bodies: wp.array(dtype=int),
        # Control out:
        body_force: wp.array2d(dtype=vec3),
    ):
        world, k = wp.tid()
        base = (step * bodies.shape[0] + k) * 3
        body_force[world, bodies[k]] = vec3(theta[world, base], theta[world, base + 1], theta[world, base + 2])

    @wp.kernel
    def open_loop_rows(
        # Parameters: (W, P) with P = steps * width, step-major
        theta: wp.array2d(dtype=scalar),
        step: int,
        # Control out: (W, width)
        action: wp.array2d(dtype=scalar),
    ):
        world, k = wp.tid()
        action[world, k] = theta[world, step * action.shape[1] + k]

    @wp.func
    def joint_feedback_row(
        theta: wp.array2d(dtype=scalar),
        world: int,
        offset: int,
        joint_q: wp.array2d(dtype=scalar),
        joint_qd: wp.array2d(dtype=scalar),
    ):
        """sum_j K[j] q[j] + sum_j K'[j] qd[j] + b for one actuator (row starting at ``offset``)."""
        nq = joint_q.shape[1]
        nqd = joint_qd.shape[1]
        acc = theta[world, offset + nq + nqd]
        for j in range(nq):
            acc += theta[world, offset + j] * joint_q[world, j]
        for j in range(nqd):
            acc += theta[world, offset + nq + j] * joint_qd[world, j]
        return acc

    @wp.kernel
    def linear_joint_feedback(
        # Parameters: (W, P), P = A * (nq + nqd + 1): a gain row and a bias per actuator
        theta: wp.array2d(dtype=scalar),
        # State in:
        joint_q: wp.array2d(dtype=scalar),
        joint_qd: wp.array2d(dtype=scalar),
        # Control out: (W, A)
        action: wp.array2d(dtype=scalar),
    ):
        world, a = wp.tid()
        row = joint_q.shape[1] + joint_qd.shape[1] + 1
        action[world, a] = joint_feedback_row(theta, world, a * row, joint_q, joint_qd)

    @wp.func
    def dense_row(theta: wp.array2d(dtype=scalar), world: int, offset: int, x: wp.array2d(dtype=scalar)):
        """b + sum_i w_i x[world, i] for one output unit; weights then bias start at ``offset``."""
        n = x.shape[1]
        acc = theta[world, offset + n]
        for i in range(n):
            acc += theta[world, offset + i] * x[world, i]
        return acc

    @wp.kernel
    def dense_layer(
        # Parameters: (W, P); this layer's rows (n_in weights + 1 bias per unit) start at ``offset``
        theta: wp.array2d(dtype=scalar),
        offset: int,
        squash: int,
        # Input: (W, n_in)
        x: wp.array2d(dtype=scalar),
        # Output: (W, n_out)
        y: wp.array2d(dtype=scalar),
    ):
        """One fully connected layer per world, ``y = tanh(W x + b)`` (or linear when squash is 0)."""
        world, j = wp.tid()
        value = dense_row(theta, world, offset + j * (x.shape[1] + 1), x)
        if squash != 0:
            value = wp.tanh(value)
        y[world, j] = value

    @wp.kernel
    def joint_observation(
        joint_q: wp.array2d(dtype=scalar),
        joint_qd: wp.array2d(dtype=scalar),
        observation: wp.array2d(dtype=scalar),
    ):
        """observation = [joint_q, joint_qd] per world."""
        world, k = wp.tid()
        nq = joint_q.shape[1]
        if k < nq:
            observation[world, k] = joint_q[world, k]
        else:
            observation[world, k] = joint_qd[world, k - nq]

    @wp.func
    def feedback_row(theta: wp.array2d(dtype=scalar), world: int, offset: int, error: vec3, velocity: vec3):
        """One row of the 3x6 gain times the feature vector [error, velocity]."""
        acc = scalar(0.0)
        for j in range(3):
            acc += theta[world, offset + j] * error[j] + theta[world, offset + 3 + j] * velocity[j]
        return acc

    @wp.kernel
    def linear_feedback_body_force(
        # Parameters: (W, P), P = len(bodies) * (18 + 3): a 3x6 gain and a 3-vector bias per body
        theta: wp.array2d(dtype=scalar),
        bodies: wp.array(dtype=int),
        reference: wp.array(dtype=vec3),
        # State in:
        body_q: wp.array2d(dtype=transform),
        body_v: wp.array2d(dtype=vec3),
        # Control out:
        body_force: wp.array2d(dtype=vec3),
    ):
        """force = G @ [p - p_ref, v] + b for each controlled body (world axes)."""
        world, k = wp.tid()
        body = bodies[k]
        error = wp.transform_get_translation(body_q[world, body]) - reference[k]
        velocity = body_v[world, body]
        base = k * 21
        force = vec3(
            theta[world, base + 18] + feedback_row(theta, world, base, error, velocity),
            theta[world, base + 19] + feedback_row(theta, world, base + 6, error, velocity),
            theta[world, base + 20] + feedback_row(theta, world, base + 12, error, velocity),
        )
        body_force[world, body] = force

    return SimpleNamespace(
        open_loop_body_force=open_loop_body_force,
        open_loop_rows=open_loop_rows,
        linear_joint_feedback=linear_joint_feedback,
        dense_layer=dense_layer,
        joint_observation=joint_observation,
        linear_feedback_body_force=linear_feedback_body_force,
    )


for _scalar in (wp.float32, wp.float64):  # fixed module contents: both precisions up front
    control_kernels(_scalar)
