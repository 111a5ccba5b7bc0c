"""Accuracy of the reduced-coordinate articulation solver against closed-form physics."""

import math

import numpy as np
import pytest

import simulator as sim
from simulator.spatial import quat_multiply, quat_to_matrix


G = 9.81


def compound_pendulum(theta0, *, length=1.0, inertia=1.0e-3, mass=1.0, axis=(0.0, 1.0, 0.0), gravity=G, precision="float64", **joint):
    """A body of ``mass`` and central ``inertia`` hanging ``length`` below a hinge at the origin."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, -gravity))
    body = b.add_body(position=(0.0, 0.0, -length), mass=mass, inertia=[inertia] * 3)
    joint_index = b.add_revolute_joint(-1, body, axis=axis, position=(0.0, 0.0, length), q=theta0, **joint)
    return b, joint_index


def equivalent_length(length, inertia, mass=1.0):
    """Compound pendulum: T = 2 pi sqrt(L_eq / g) with L_eq = (I_c + m L^2) / (m L)."""
    return (inertia + mass * length**2) / (mass * length)


def measured_period(t, theta):
    """Mean time between successive downward zero crossings (linear interpolation)."""
    idx = np.flatnonzero((theta[:-1] > 0.0) & (theta[1:] <= 0.0))
    crossings = t[idx] + (t[idx + 1] - t[idx]) * theta[idx] / (theta[idx] - theta[idx + 1])
    assert len(crossings) >= 2, "simulate longer: fewer than two crossings"
    return float(np.mean(np.diff(crossings)))


def elliptic_k(k):
    """Complete elliptic integral of the first kind K(k) = pi / (2 AGM(1, sqrt(1 - k^2)))."""
    a, b = 1.0, math.sqrt(1.0 - k * k)
    for _ in range(40):
        a, b = 0.5 * (a + b), math.sqrt(a * b)
    return math.pi / (2.0 * a)


@pytest.mark.parametrize("theta0", [0.01, 2.0])
def test_pendulum_period(theta0, step_series, device):
    """Small angle: T = 2 pi sqrt(L/g). Large angle: T = 4 sqrt(L/g) K(sin(theta0/2)).
    L is the compound pendulum's equivalent length."""
    length, inertia, dt = 1.0, 1.0e-3, 2.0e-3
    builder, _ = compound_pendulum(theta0, length=length, inertia=inertia)
    model = builder.finalize(precision="float64", device=device)
    l_eq = equivalent_length(length, inertia)
    expected = 4.0 * math.sqrt(l_eq / G) * elliptic_k(math.sin(0.5 * theta0))
    if theta0 < 0.1:
        expected_small = 2.0 * math.pi * math.sqrt(l_eq / G)
        assert expected == pytest.approx(expected_small, rel=1e-4)  # the two formulas agree here
    steps = int(2.3 * expected / dt)
    series = step_series(model, model.state(), steps, dt)
    theta = series["joint_q"][:, 0, 0]
    period = measured_period(np.arange(len(theta)) * dt, theta)
    assert abs(period / expected - 1.0) < 5e-3


def pendulum_energy(model, series):
    """Total energy [J] from the body states: sum 0.5 m v^2 + 0.5 w.(R I R^T) w - m g.x."""
    mass = model.body_mass.numpy()[0]
    inertia = model.body_inertia.numpy()[0]
    gravity = np.array(model.gravity)
    energies = []
    for q, v, w in zip(series["body_q"][:, 0], series["body_v"][:, 0], series["body_w"][:, 0]):
        e = 0.0
        for b in range(model.body_count):
            r = quat_to_matrix(q[b, 3:])
            e += 0.5 * mass[b] * v[b] @ v[b] + 0.5 * w[b] @ (r @ inertia[b] @ r.T) @ w[b] - mass[b] * gravity @ q[b, :3]
        energies.append(e)
    return np.array(energies)


def test_double_pendulum_conserves_energy(step_series, device):
    """Undamped double pendulum (chaotic at this energy): |E(t) - E(0)| below 1% of the energy
    above the resting configuration, over 10 s."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, -G))
    upper = b.add_body(position=(0.0, 0.0, -1.0), mass=1.0, inertia=[1e-3] * 3)
    lower = b.add_body(position=(0.0, 0.0, -2.0), mass=1.0, inertia=[1e-3] * 3)
    b.add_revolute_joint(-1, upper, axis=(0, 1, 0), position=(0, 0, 1.0), q=1.2)
    b.add_revolute_joint(upper, lower, axis=(0, 1, 0), position=(0, 0, 1.0), q=-0.5)
    model = b.finalize(precision="float64", device=device)
    dt = 5.0e-4  # semi-implicit Euler in joint space drifts by O(dt): ~1% per 10 s at dt = 1 ms
    series = step_series(model, model.state(), int(10.0 / dt), dt, every=40)
    energy = pendulum_energy(model, series)
    resting = 1.0 * G * -1.0 + 1.0 * G * -2.0  # sum m g z with both bobs hanging straight down
    scale = energy[0] - resting
    assert scale > 10.0
    assert np.max(np.abs(energy - energy[0])) < 0.01 * scale


def test_pd_reaches_target_without_load(step_series, device):
    """A PD position actuator on a hinge with a vertical axis (no gravity torque) settles at its
    target: the only equilibrium of kp (u - q) - kd qd = I qdd is q = u."""
    b = sim.SceneBuilder()
    arm = b.add_body(position=(0.5, 0.0, 0.0), mass=1.0, inertia=[1e-2] * 3)
    joint = b.add_revolute_joint(-1, arm, axis=(0, 0, 1), position=(-0.5, 0.0, 0.0))
    b.add_actuator(joint, kind="position", kp=20.0, kd=4.0)
    model = b.finalize(precision="float32", device=device)
    control = model.control()
    target = 0.5
    control.joint_act.fill_(target)
    series = step_series(model, model.state(), 1500, 2e-3, every=100, control=control)
    assert abs(series["joint_q"][-1, 0, 0] - target) < 0.01 * target
    assert abs(series["joint_q"][0, 0, 0]) < 1e-6  # it started away from the target


def test_pd_holds_against_gravity(step_series, device):
    """Under gravity the PD equilibrium solves kp (u - q) = m g L_c sin(q) (L_c: hinge to COM)."""
    kp, target, length = 200.0, 0.6, 1.0
    builder, joint = compound_pendulum(0.0, length=length, inertia=1e-2)
    builder.add_actuator(joint, kind="position", kp=kp, kd=20.0)
    model = builder.finalize(precision="float64", device=device)
    control = model.control()
    control.joint_act.fill_(target)
    lo, hi = 0.0, target  # bisection on f(q) = kp (u - q) - m g L sin q, decreasing in q
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kp * (target - mid) - G * length * math.sin(mid) > 0 else (lo, mid)
    expected = 0.5 * (lo + hi)
    series = step_series(model, model.state(), 2500, 2e-3, every=500, control=control)
    assert abs(series["joint_q"][-1, 0, 0] - expected) < 0.01 * expected
    assert expected < 0.97 * target  # gravity visibly pulls it off the target


def test_joint_limit_bounds_overshoot(step_series, device):
    """A hinge thrown at a limit with speed w: the limit spring stores at most the kinetic energy,
    so the overshoot d obeys 0.5 ke d^2 <= 0.5 I w^2, i.e. d <= w sqrt(I/ke)."""
    speed, ke, upper = 4.0, 1.0e4, 0.5
    b = sim.SceneBuilder()
    arm = b.add_body(position=(1.0, 0.0, 0.0), mass=1.0, inertia=[1e-2] * 3)
    b.add_revolute_joint(-1, arm, axis=(0, 0, 1), position=(-1.0, 0.0, 0.0), qd=speed, limit=(-upper, upper), limit_stiffness=ke,
                         limit_damping=0.0)
    model = b.finalize(precision="float64", device=device)
    series = step_series(model, model.state(), 300, 1e-3)
    q = series["joint_q"][:, 0, 0]
    inertia = 1e-2 + 1.0 * 1.0**2
    assert q.max() > upper  # it reached the limit
    assert q.max() - upper <= speed * math.sqrt(inertia / ke) * 1.01
    assert q[-1] < upper  # and was pushed back


def test_free_body_falls_and_spins(device):
    """Free joint: semi-implicit Euler gives z_n = z_0 - g dt^2 n (n + 1) / 2 exactly, and a
    torque-free body conserves its world angular momentum R I R^T w."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, -G))
    inertia = np.array([0.1, 0.2, 0.3])
    body = b.add_body(position=(0.0, 0.0, 5.0), mass=2.0, inertia=inertia)
    b.add_free_joint(body, qd=(0.0, 0.0, 0.0, 3.0, 0.1, 0.2))
    model = b.finalize(precision="float64", device=device)
    dt, steps = 1e-3, 1000
    traj = sim.rollout(model, model.state(), None, num_steps=steps, dt=dt, record=False)
    q = traj.final.body_q.numpy()[0, 0]
    assert q[2] == pytest.approx(5.0 - G * dt * dt * steps * (steps + 1) / 2, abs=1e-9)
    w0 = np.array([3.0, 0.1, 0.2])
    w1 = traj.final.body_w.numpy()[0, 0]
    r = quat_to_matrix(q[3:])
    momentum = r @ np.diag(inertia) @ r.T @ w1
    assert np.linalg.norm(momentum - np.diag(inertia) @ w0) < 0.01 * np.linalg.norm(np.diag(inertia) @ w0)
    assert not np.allclose(w1, w0, atol=1e-2)  # the body tumbles (intermediate axis)


def test_floating_chain_conserves_momentum(step_series, device):
    """No gravity, no contact: a free base with a hinged and a ball-jointed limb conserves total
    linear momentum sum m v and angular momentum about the origin sum (c x m v + R I R^T w)."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
    base = b.add_body(position=(0.0, 0.0, 0.0), mass=3.0, inertia=[0.2, 0.3, 0.4])
    b.add_free_joint(base, qd=(0.1, -0.2, 0.3, 0.5, -0.4, 0.2))
    arm = b.add_body(position=(0.5, 0.0, 0.0), mass=1.0, inertia=[0.01, 0.05, 0.05])
    b.add_revolute_joint(base, arm, axis=(0, 1, 1), position=(-0.25, 0.0, 0.0), qd=4.0)
    leg = b.add_body(position=(0.0, 0.0, -0.5), mass=0.7, inertia=[0.03, 0.03, 0.01])
    b.add_ball_joint(base, leg, position=(0.0, 0.0, 0.25), qd=(2.0, -1.0, 3.0))
    model = b.finalize(precision="float64", device=device)
    series = step_series(model, model.state(), 2000, 1e-3, every=100)
    mass = model.body_mass.numpy()[0]
    inertia = model.body_inertia.numpy()[0]

    def momenta(q, v, w):
        p = sum(mass[i] * v[i] for i in range(3))
        h = sum(np.cross(q[i, :3], mass[i] * v[i]) + quat_to_matrix(q[i, 3:]) @ inertia[i] @ quat_to_matrix(q[i, 3:]).T @ w[i]
                for i in range(3))
        return p, h

    p0, h0 = momenta(series["body_q"][0, 0], series["body_v"][0, 0], series["body_w"][0, 0])
    for q, v, w in zip(series["body_q"][:, 0], series["body_v"][:, 0], series["body_w"][:, 0]):
        p, h = momenta(q, v, w)
        assert np.linalg.norm(p - p0) < 0.01 * np.linalg.norm(p0)  # O(dt) drift of the explicit step
        assert np.linalg.norm(h - h0) < 0.01 * np.linalg.norm(h0)


def _transform(t, x):
    return t[:3] + quat_to_matrix(t[3:]) @ x


def _compose(a, b):
    return np.concatenate([_transform(a, b[:3]), quat_multiply(a[3:], b[3:])])


def test_joint_constraint_error_in_chain(step_series, device):
    """Reduced coordinates keep every joint exactly: measured from the body poses, anchors of
    revolute and ball joints coincide and hinge axes agree to < 1e-3 (m, rad) along a whipping
    chain under gravity (float32)."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, -G))
    links = []
    parent = -1
    for i in range(5):
        body = b.add_body(position=(0.3 * (i + 1), 0.0, 2.0), mass=1.0, inertia=[0.01, 0.02, 0.02])
        if i % 2 == 0:
            b.add_revolute_joint(parent, body, axis=(0, 1, 0.3), position=(-0.15, 0.0, 0.0), qd=3.0)
        else:
            b.add_ball_joint(parent, body, position=(-0.15, 0.0, 0.0), qd=(1.0, 2.0, -1.0))
        links.append(body)
        parent = body
    model = b.finalize(precision="float32", device=device)
    art = model.articulation
    parent_xform = art.link_parent_xform.numpy()
    child_xform = art.link_child_xform.numpy()
    axes = art.link_axis.numpy()
    series = step_series(model, model.state(), 1500, 1e-3, every=50)
    worst = 0.0
    for q in series["body_q"][:, 0]:
        assert np.all(np.isfinite(q))
        for k in range(5):
            pose_parent = q[k - 1] if k > 0 else np.array([0, 0, 0, 0, 0, 0, 1.0])
            frame_parent = _compose(pose_parent, parent_xform[k])
            frame_child = _compose(q[k], child_xform[k])
            worst = max(worst, np.linalg.norm(frame_parent[:3] - frame_child[:3]))
            if k % 2 == 0:
                a_parent = quat_to_matrix(frame_parent[3:]) @ axes[k]
                a_child = quat_to_matrix(frame_child[3:]) @ axes[k]
                worst = max(worst, np.linalg.norm(a_parent - a_child))
    assert worst < 1e-3
    moved = np.linalg.norm(series["body_q"][-1, 0, :, :3] - series["body_q"][0, 0, :, :3])
    assert moved > 0.5  # the chain really moved


@pytest.mark.parametrize("kind", ["revolute", "prismatic"])
def test_ref_is_the_coordinate_of_the_add_body_pose(device, kind):
    """A joint with ``ref`` starts at q = ref in the pose given to add_body and moves the child by
    q - ref: its poses equal those of the same joint without ref at q - ref."""
    from simulator.articulation import eval_fk

    def body_pose(ref, q):
        b = sim.SceneBuilder()
        link = b.add_body(position=(0.3, 0.0, 1.0), rotation=(0.0, 0.2, 0.0, 1.0), mass=1.0, inertia=[0.01, 0.02, 0.03])
        b.add_joint(kind, -1, link, axis=(1.0, 1.0, 0.0), position=(-0.2, 0.1, 0.0), ref=ref)
        model = b.finalize(device=device, precision="float64")
        state = model.state()
        start = state.body_q.numpy()[0, 0].copy()
        assert state.joint_q.numpy()[0, 0] == ref
        state.joint_q.assign([[q]])
        eval_fk(model, state)
        return start, state.body_q.numpy()[0, 0]

    start_ref, moved_ref = body_pose(0.7, 0.7 + 0.4)
    start, moved = body_pose(0.0, 0.4)
    np.testing.assert_allclose(start_ref, start, atol=1e-14)
    np.testing.assert_allclose(moved_ref, moved, atol=1e-14)
    assert np.abs(moved - start).max() > 0.1
    b = sim.SceneBuilder()
    ball = b.add_body(mass=1.0, inertia=[0.1] * 3)
    with pytest.raises(sim.ParameterError, match="ref=0.5 of joint0: only revolute and prismatic"):
        b.add_joint("ball", -1, ball, ref=0.5)
