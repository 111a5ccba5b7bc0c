"""Adjoints of the articulation kernels (step, forward kinematics, task losses) against central
finite differences in float64."""

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import scenes
from simulator.articulation import eval_fk


def test_pendulum_final_angle_wrt_torques(central_difference, device):
    """d q_T / d u_t for every step t of a 30-step pendulum rollout (motor actuator)."""
    scene = scenes.make("pendulum", device=device, precision="float64", requires_grad=True, theta0=0.4)
    steps = 30
    rng = np.random.default_rng(0)
    u0 = rng.uniform(-0.5, 0.5, size=(steps, 1, 1))

    def final_angle(u, grad=False):
        controls = scene.control_sequence(steps)
        controls.joint_act.assign(u)
        tape = wp.Tape()
        with tape:
            traj = scene.rollout(controls, num_steps=steps)
        value = float(traj.final.joint_q.numpy()[0, 0])
        if grad:
            tape.backward(grads={traj.final.joint_q: wp.ones_like(traj.final.joint_q)})
            return controls.joint_act.grad.numpy()
        return value

    adjoint = final_angle(u0, grad=True)
    fd = central_difference(final_angle, u0, 1e-6)
    assert np.max(np.abs(fd)) > 1e-4  # torques matter
    np.testing.assert_allclose(adjoint, fd, rtol=1e-5, atol=1e-9)


def test_pendulum_task_loss_wrt_torques(central_difference, task_loss, device):
    """The swing-up loss (JointError and ActuatorEffort terms) through 20 steps."""
    scene = scenes.make("pendulum", device=device, precision="float64", requires_grad=True, theta0=2.5)
    steps = 20
    u0 = np.random.default_rng(1).uniform(-0.6, 0.6, size=(steps, 1, 1))

    loss = task_loss(scene, steps)

    np.testing.assert_allclose(loss(u0, grad=True), central_difference(loss, u0, 1e-6), rtol=1e-5, atol=1e-9)


def test_cartpole_final_state_wrt_initial_state(central_difference, device):
    """d (w . [q_T, qd_T]) / d [q_0, qd_0] for the cartpole over 50 steps (through eval_fk)."""
    scene = scenes.make("cartpole", device=device, precision="float64", requires_grad=True)
    steps = 50
    rng = np.random.default_rng(2)
    weights = rng.normal(size=4)
    x0 = np.array([0.1, 0.2, -0.3, 0.5])  # x, angle, xd, angle rate

    def final(x, grad=False):
        state = scene.state()
        state.joint_q.assign(x[None, :2])
        state.joint_qd.assign(x[None, 2:])
        tape = wp.Tape()
        with tape:
            eval_fk(scene.model, state)
            traj = scene.rollout(None, num_steps=steps, state=state)
        f = traj.final
        value = float(weights[:2] @ f.joint_q.numpy()[0] + weights[2:] @ f.joint_qd.numpy()[0])
        if grad:
            dtype = f.joint_q.dtype
            tape.backward(grads={f.joint_q: wp.array(weights[None, :2], dtype=dtype), f.joint_qd: wp.array(weights[None, 2:], dtype=dtype)})
            return np.concatenate([state.joint_q.grad.numpy()[0], state.joint_qd.grad.numpy()[0]])
        return value

    np.testing.assert_allclose(final(x0, grad=True), central_difference(final, x0, 1e-6), rtol=1e-5, atol=1e-9)


def test_body_pose_wrt_initial_velocities_all_joint_types(central_difference, device):
    """Free, ball, revolute (soft limit) and prismatic (PD) joints with motors: d (w . x_T) / d qd_0."""
    b = sim.SceneBuilder()
    root = b.add_body(position=(0, 0, 1.0), mass=2.0, inertia=[0.1, 0.2, 0.3])
    b.add_free_joint(root)
    c1 = b.add_body(position=(0.3, 0, 1.0), mass=1.0, inertia=[0.01, 0.02, 0.03])
    b.add_ball_joint(root, c1, position=(-0.15, 0, 0), damping=0.1)
    c2 = b.add_body(position=(0.6, 0, 1.0), mass=0.5, inertia=[0.01, 0.01, 0.02])
    hinge = b.add_revolute_joint(c1, c2, axis=(0, 1, 1), position=(-0.15, 0, 0), limit=(-0.1, 0.1), limit_softness=0.05, armature=0.01)
    c3 = b.add_body(position=(0.9, 0, 1.0), mass=0.5, inertia=[0.01, 0.01, 0.02])
    slide = b.add_prismatic_joint(c2, c3, axis=(1, 0, 0), damping=0.5)
    b.add_actuator(hinge, gear=2.0)
    b.add_actuator(slide, kind="position", kp=20.0, kd=1.0)
    model = b.finalize(precision="float64", device=device, requires_grad=True)
    steps = 40
    rng = np.random.default_rng(3)
    qd0 = rng.normal(size=model.articulation.num_dofs)
    weights = rng.normal(size=(4, 3))
    controls_np = rng.normal(size=(steps, 1, 2))

    def objective(qd, grad=False):
        state = model.state()
        state.joint_qd.assign(qd[None])
        controls = model.control_sequence(steps)
        controls.joint_act.assign(controls_np)
        tape = wp.Tape()
        with tape:
            eval_fk(model, state)
            traj = sim.rollout(model, state, controls, num_steps=steps, dt=0.005)
        pose = traj.final.body_q
        if grad:
            seed = np.zeros((1, 4, 7))
            seed[0, :, :3] = weights
            tape.backward(grads={pose: wp.array(seed, dtype=pose.dtype)})
            return state.joint_qd.grad.numpy()[0]
        return float(np.sum(pose.numpy()[0, :, :3] * weights))

    np.testing.assert_allclose(objective(qd0, grad=True), central_difference(objective, qd0, 1e-6), rtol=1e-5, atol=1e-8)


def test_ant_com_wrt_controls_with_soft_contact(central_difference, device):
    """Ant on the ground, 250 steps of 1 ms (within the contact bound) with softened contact and
    limits: d (COM_T . w) / d u for a sample of control entries."""
    contact = sim.ContactSettings(softness=0.01, friction_smoothing=0.05)
    scene = scenes.make("ant", device=device, precision="float64", requires_grad=True, contact=contact, height=0.58, limit_softness=0.05)
    model = scene.model
    steps, dt = 250, 0.001
    rng = np.random.default_rng(4)
    u0 = rng.uniform(-0.3, 0.3, size=(steps, 1, 8))
    mass = model.body_mass.numpy()[0]
    direction = np.array([1.0, 0.5, 0.2])
    sample = [(0, 0, 0), (25, 0, 3), (125, 0, 5), (249, 0, 7)]

    def com(u, grad=False):
        controls = model.control_sequence(steps)
        controls.joint_act.assign(u)
        tape = wp.Tape()
        with tape:
            traj = sim.rollout(model, scene.state(), controls, num_steps=steps, dt=dt)
        pose = traj.final.body_q
        com_final = mass @ pose.numpy()[0, :, :3] / mass.sum()
        value = float(com_final @ direction)
        if grad:
            seed = np.zeros((1, model.body_count, 7))
            seed[0, :, :3] = np.outer(mass / mass.sum(), direction)
            tape.backward(grads={pose: wp.array(seed, dtype=pose.dtype)})
            return com_final, controls.joint_act.grad.numpy()
        return value

    com_final, adjoint = com(u0, grad=True)
    assert com_final[2] > 0.3  # still standing on its legs
    for index in sample:

        def f(x, index=index):
            u = u0.copy()
            u[index] = x[0]
            return com(u)

        fd = central_difference(f, np.array([u0[index]]), 1e-5)[0]
        assert adjoint[index] == pytest.approx(fd, rel=1e-3, abs=1e-7)
