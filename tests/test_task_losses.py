"""One task model: the loss terms of simulator.losses, their kernels' adjoints, and the equality of
every robot scene's documented loss with its SceneTaskObjective (recorded and unrecorded rollouts)."""

import math

import numpy as np
import pytest
import warp as wp
from warp.autograd import gradcheck

import simulator as sim
from simulator.kernels.losses import loss_kernels
from simulator.losses import LossContext, add_terms
from simulator.scenes import make

K = loss_kernels(wp.float64)
RNG = np.random.default_rng(0)
ROBOTS = ("pendulum", "cartpole", "acrobot", "hopper", "ant")
WORLDS = 2


# ---------------------------------------------------------------------------- kernel adjoints
def arr(device, shape, dtype=wp.float64, *, grad=True):
    values = RNG.standard_normal(shape + {wp.float64: (), wp.vec3d: (3,), wp.transformd: (7,)}[dtype])
    if dtype == wp.transformd:
        values[..., 3:] /= np.linalg.norm(values[..., 3:], axis=-1, keepdims=True)
    return wp.array(values, dtype=dtype, device=device, requires_grad=grad)


def check(device, kernel, dim, inputs):
    loss = wp.zeros(WORLDS, dtype=wp.float64, device=device, requires_grad=True)
    assert gradcheck(kernel, dim=dim, inputs=inputs, outputs=[loss], eps=1e-7, atol=1e-6, rtol=1e-5, device=device,
                     show_summary=False)


@pytest.mark.parametrize("is_velocity,is_angle", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_joint_error_kernel_gradcheck(is_velocity, is_angle, device):
    check(device, K.joint_error, WORLDS, [2, is_velocity, is_angle, wp.float64(0.7), wp.float64(3.0), arr(device, (WORLDS, 4)), arr(device, (WORLDS, 3))])


def test_body_and_control_loss_kernels_gradcheck(device):
    W, B = WORLDS, 3
    check(device, K.body_progress, W, [1, wp.vec3d(0.6, 0.8, 0.0), wp.float64(-2.5), arr(device, (W, B), wp.transformd), arr(device, (W, B), wp.transformd)])
    check(device, K.body_position, W, [1, wp.vec3d(0.1, 0.2, 0.3), wp.float64(2.0), arr(device, (W, B), wp.transformd)])
    check(device, K.body_velocity, W, [2, wp.vec3d(0.1, 0.2, 0.3), wp.float64(2.0), arr(device, (W, B), wp.vec3d)])
    check(device, K.force_effort, (W, B), [wp.float64(0.5), arr(device, (W, B), wp.vec3d)])
    check(device, K.actuator_effort, (W, 4), [wp.float64(0.5), arr(device, (W, 4))])


# ------------------------------------------------------------------------------- the terms
def _pendulum_state(q, qd, device):
    scene = make("pendulum", num_worlds=len(q), device=device, precision="float64")
    state = scene.state()
    state.joint_q.assign(np.asarray(q, np.float64)[:, None])
    state.joint_qd.assign(np.asarray(qd, np.float64)[:, None])
    return scene, state


def test_terms_compute_their_documented_formulas(device):
    q, qd, u = np.array([0.3, 2.0 * math.pi + 3.0]), np.array([-1.5, 0.25]), np.array([[0.4], [-2.0]])
    scene, state = _pendulum_state(q, qd, device)
    control = scene.model.control()
    control.joint_act.assign(u)
    start = scene.model.state()
    state.body_q.assign(start.body_q.numpy() + np.array([0.5, -0.2, 0.1, 0, 0, 0, 0]))
    terms = [sim.JointError(0, target=math.pi, weight=10.0, angle=True), sim.JointError(0, weight=0.1, velocity=True),
             sim.ActuatorEffort(weight=0.01), sim.ForwardProgress(0, axis=(1.0, 0.0, 0.0), weight=2.0)]
    loss = wp.zeros(2, dtype=wp.float64, device=device)
    add_terms(terms, scene.model, state, control, loss, LossContext(initial_state=start, step=3, elapsed=0.08, final=True))
    expected = 10.0 * (2.0 * np.sin((q - math.pi) / 2.0)) ** 2 + 0.1 * qd**2 + 0.01 * u[:, 0] ** 2 - 2.0 * 0.5 / 0.08
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-13)
    # not final: only the every-step effort term is added
    loss.zero_()
    add_terms(terms, scene.model, state, control, loss, LossContext(initial_state=start, step=0, elapsed=0.02, final=False))
    np.testing.assert_allclose(loss.numpy(), 0.01 * u[:, 0] ** 2, rtol=1e-13)


def test_terms_add_only_kernel_launches_that_a_graph_can_capture(device):
    """Every term's ``add`` captured once in a Warp graph and replayed gives the eager loss (no host
    reads or allocation inside add: a capture would fail or replay stale values)."""
    if not wp.get_device(device).is_cpu and not wp.get_device(device).is_mempool_enabled:
        pytest.fail("graph capture on this CUDA device needs the mempool")
    scene, state = _pendulum_state([0.3, 1.0], [0.5, -0.25], device)
    control = scene.model.control()
    control.joint_act.assign(np.array([[0.5], [-0.3]]))
    control.body_force.assign(RNG.standard_normal((2, 1, 3)))
    start = scene.model.state()
    terms = [sim.JointError(0, target=1.0, angle=True), sim.ForwardProgress(0), sim.PositionLoss(0, (0.1, 0.0, -1.0)),
             sim.VelocityLoss(0, weight=0.5), sim.EffortLoss(0.1), sim.ActuatorEffort(0.2)]
    context = LossContext(initial_state=start, step=4, elapsed=0.1, final=True)
    eager = wp.zeros(2, dtype=wp.float64, device=device)
    add_terms(terms, scene.model, state, control, eager, context)
    captured = wp.zeros(2, dtype=wp.float64, device=device)
    wp.capture_begin(device=device)
    try:
        add_terms(terms, scene.model, state, control, captured, context)
    finally:
        graph = wp.capture_end(device=device)
    captured.zero_()
    wp.capture_launch(graph)
    np.testing.assert_array_equal(captured.numpy(), eager.numpy())
    assert np.all(eager.numpy() != 0.0)


def test_bad_term_parameters_raise_naming_them(device):
    with pytest.raises(ValueError, match="weight"):
        sim.JointError(0, weight=float("nan"))
    with pytest.raises(ValueError, match="joint"):
        sim.JointError(-1)
    with pytest.raises(ValueError, match="axis"):
        sim.ForwardProgress(0, axis=(1.0, 0.0))
    with pytest.raises(ValueError, match="body"):
        sim.PositionLoss(1.5, (0.0, 0.0, 0.0))
    scene, state = _pendulum_state([0.0], [0.0], device)
    loss = wp.zeros(1, dtype=wp.float64, device=device)
    context = LossContext(initial_state=scene.state(), step=0, elapsed=0.02, final=True)
    with pytest.raises(ValueError, match="body must be an index in \\[0, 1\\), got 3"):
        sim.PositionLoss(3, (0.0, 0.0, 0.0)).add(scene.model, state, None, loss, context)
    with pytest.raises(ValueError, match="joint must be an index"):
        sim.JointError(5).add(scene.model, state, None, loss, context)
    with pytest.raises(ValueError, match="initial state"):
        sim.ForwardProgress(0).add(scene.model, state, None, loss, LossContext(None, 0, 0.02, True))


def test_every_step_state_terms_need_a_recorded_trajectory(device):
    scene = make("pendulum", device=device, precision="float64")
    traj = scene.rollout(num_steps=3, record=False)
    terms = [sim.PositionLoss(0, (0.0, 0.0, 0.0), every_step=True)]
    with pytest.raises(ValueError, match="record=True"):
        sim.trajectory_loss(scene.model, terms, traj, num_steps=3)
    # an unrecorded trajectory knows its number of steps (Trajectory.num_steps): its final-state loss
    # is the recorded rollout's
    assert scene.loss(traj).numpy()[0] == scene.loss(scene.rollout(num_steps=3)).numpy()[0]
    with pytest.raises(ValueError, match="num_steps=4 does not match"):
        scene.loss(scene.rollout(num_steps=3), num_steps=4)
    # the every-step term is fine on the recorded rollout of the same steps
    recorded = scene.rollout(num_steps=3)
    expected = sum(float(np.sum(s.body_q.numpy()[0, 0, :3] ** 2)) for s in recorded.states[1:])
    assert sim.trajectory_loss(scene.model, terms, recorded).numpy()[0] == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------- the scenes' documented loss == the objective's
def _actions(name, num_steps, worlds, device):
    probe = make(name, device=device, precision="float64")
    actuators = probe.model.control().joint_act.shape[1]
    return np.random.default_rng(num_steps).uniform(-0.8, 0.8, (num_steps, worlds, actuators))


def _scene_loss(name, actions, *, record, device):
    """``scene.loss`` of a ``simulator.rollout`` driven by ``actions`` (T, W, A)."""
    scene = make(name, num_worlds=actions.shape[1], device=device, precision="float64")
    controls = scene.control_sequence(actions.shape[0])
    controls.joint_act.assign(actions)
    traj = sim.rollout(scene.model, scene.state(), controls, num_steps=actions.shape[0], dt=scene.dt, substeps=scene.substeps,
                       record=record)
    return scene, traj, scene.loss(traj, controls).numpy()


@pytest.mark.parametrize("name", ROBOTS)
def test_scene_loss_equals_objective_loss(name, device):
    """For every robot, at two horizons (neither the scene's default), recorded and unrecorded:
    ``evaluate`` and the analytic estimator's value equal ``scene.loss`` of the same rollout."""
    for num_steps in (3, 11):
        actions = _actions(name, num_steps, WORLDS, device)
        theta_rows = actions.transpose(1, 0, 2).reshape(WORLDS, -1)  # OpenLoopActions: step-major rows
        objective = sim.SceneTaskObjective(name, device=device, precision="float64", num_steps=num_steps)
        evaluated = sim.gradients.evaluate(objective, theta_rows)
        analytic = sim.grad(objective, theta_rows[0], estimator="analytic").value
        for record in (True, False):
            _, _, documented = _scene_loss(name, actions, record=record, device=device)
            np.testing.assert_allclose(evaluated, documented, rtol=1e-12, atol=1e-14, err_msg=f"{name} T={num_steps} record={record}")
            assert analytic == pytest.approx(documented[0], rel=1e-12, abs=1e-14)


def test_documented_losses_by_hand(device):
    """The docstrings' formulas, evaluated in numpy from the rollouts' states and actions."""
    num_steps = 7
    actions = _actions("pendulum", num_steps, WORLDS, device)
    effort = 1e-3 * np.mean(np.sum(actions**2, axis=2), axis=0)
    for record in (True, False):
        _, traj, loss = _scene_loss("pendulum", actions, record=record, device=device)
        q, qd = traj.final.joint_q.numpy()[:, 0], traj.final.joint_qd.numpy()[:, 0]
        np.testing.assert_allclose(loss, 10.0 * (2.0 * np.sin((q - math.pi) / 2.0)) ** 2 + 0.1 * qd**2 + effort, rtol=1e-12)
    for name in ("hopper", "ant"):  # minus the torso's mean forward velocity over the elapsed time
        actions = _actions(name, num_steps, WORLDS, device)
        effort = 1e-3 * np.mean(np.sum(actions**2, axis=2), axis=0)
        for record in (True, False):
            scene, traj, loss = _scene_loss(name, actions, record=record, device=device)
            dx = traj.final.body_q.numpy()[:, 0, 0] - traj.states[0].body_q.numpy()[:, 0, 0]
            np.testing.assert_allclose(loss, -dx / (num_steps * scene.dt) + effort, rtol=1e-12)


def test_scene_task_uses_its_factory_options(device):
    scene = make("pendulum", device=device, precision="float64", length=0.5, mass=2.0)
    model = scene.task.make_model(num_worlds=3)  # the scene's device, precision and options
    assert model.num_worlds == 3 and model.precision.name == "float64" and not model.requires_grad
    assert scene.task.make_model(precision="float32", requires_grad=True).precision.name == "float32"
    np.testing.assert_allclose(model.body_mass.numpy()[0], 2.0)
    np.testing.assert_allclose(model.state().body_q.numpy()[0, 0, 2], -0.5)
    assert isinstance(scene.task.make_controller(model), sim.OpenLoopActions)
    assert [type(t).__name__ for t in scene.task.losses(10)] == ["JointError", "JointError", "ActuatorEffort"]
    assert scene.task.losses(10)[-1].weight == pytest.approx(1e-4)


def test_a_body_index_beyond_the_model_is_refused(device):
    """Issue 15: a PositionLoss on body 99 of a one-body model returned loss 1.0 and gradient 0."""
    objective = sim.SceneTaskObjective("pendulum", num_steps=5, device=device)
    terms = [sim.PositionLoss(body=99, target=(0.0, 0.0, 1.0)), sim.VelocityLoss(body=99)]
    for term in terms:
        bad = sim.ControlObjective(objective.scene, objective.controller, [term], num_steps=5)
        with pytest.raises(sim.ParameterError, match=r"body must be an index in \[0, 1\), got 99"):
            sim.grad(bad, np.zeros(bad.num_parameters))
