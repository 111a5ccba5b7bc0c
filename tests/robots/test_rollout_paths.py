"""rollout(record=False) replays a captured Warp graph on the CPU, world ranges on threads; it
must give exactly what the Python step loop gives (recorded rollout, output states allocated
without initial values), whatever the thread count, and report the same first non-finite substep."""

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import scenes

DEVICE = "cpu"


@pytest.mark.parametrize("substeps, threads", [(3, 1), (4, 1), (3, 2), (4, 3)])
def test_graph_replay_matches_recorded_rollout(substeps, threads):
    worlds = 5
    scene = scenes.make("ant", num_worlds=worlds, device=DEVICE, requires_grad=True)
    model, steps = scene.model, 6
    controls = model.control_sequence(steps, requires_grad=False)
    rng = np.random.default_rng(1)
    controls.joint_act.assign(rng.uniform(-1.0, 1.0, size=controls.joint_act.shape).astype(np.float32))
    controls.body_force.assign(rng.normal(0.0, 0.1, size=(steps, worlds, model.body_count, 3)).astype(np.float32))
    initial = model.state()
    dt = 0.003  # substeps of 1 ms and 0.75 ms, within the ant's contact bound (1.09 ms)
    fast = sim.rollout(model, initial, controls, num_steps=steps, dt=dt, substeps=substeps, record=False, threads=threads)
    tape = wp.Tape()
    with tape:
        recorded = sim.rollout(model, initial, controls, num_steps=steps, dt=dt, substeps=substeps)
    assert fast.states[0] is initial and len(fast.states) == 2
    for name in ("body_q", "body_v", "body_w", "joint_q", "joint_qd", "body_contact_force"):
        np.testing.assert_array_equal(getattr(fast.final, name).numpy(), getattr(recorded.final, name).numpy(), err_msg=name)
    np.testing.assert_array_equal(initial.joint_q.numpy(), model.state().joint_q.numpy())  # initial state untouched


@pytest.mark.parametrize("record, threads", [(False, 1), (False, 2), (True, None)])
def test_graph_replay_names_first_nonfinite_substep(record, threads):
    scene = scenes.make("ant", num_worlds=3, device=DEVICE)
    model = scene.model
    controls = model.control_sequence(9)
    forces = np.zeros((9, 3, model.body_count, 3), dtype=np.float32)
    forces[5, 2, 0, 0] = np.nan  # in the second world range when threads=2
    forces[7, 0, 0, 2] = np.inf
    controls.body_force.assign(forces)
    with pytest.raises(sim.SimulationDivergedError, match=r"non-finite at step 5 \(substep 15\) in world 2 \(2 of 3") as info:
        sim.rollout(model, model.state(), controls, num_steps=9, dt=0.003, substeps=3, record=record, threads=threads)
    assert (info.value.step, info.value.world) == (5, 2)


def test_threads_must_be_positive():
    model = scenes.make("pendulum", device=DEVICE).model
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        sim.rollout(model, model.state(), num_steps=2, dt=0.01, record=False, threads=0)


def test_captured_tape_replays_give_the_plain_gradient():
    """The Warp pattern the engine's captured gradient is built on (tests/test_engine.py checks the
    engine itself): a recorded rollout and its backward pass captured once as CPU graphs and
    replayed give exactly the plain tape's result."""
    scene = scenes.make("ant", num_worlds=2, device=DEVICE, requires_grad=True)
    model, steps = scene.model, 3
    controls = model.control_sequence(steps)
    controls.joint_act.assign(np.random.default_rng(2).uniform(-1.0, 1.0, size=controls.joint_act.shape).astype(np.float32))

    def record(tape, state):
        with tape:  # check_divergence reads back to the host, which a capture cannot do
            traj = sim.rollout(model, state, controls, num_steps=steps, dt=scene.dt, substeps=scene.substeps, check_divergence=False)
            return scene.loss(traj, controls)

    tape = wp.Tape()
    loss = record(tape, model.state())
    tape.backward(grads={loss: wp.ones_like(loss)})
    expected_loss, expected_grad = loss.numpy(), controls.joint_act.grad.numpy().copy()
    tape.zero()

    tape = wp.Tape()
    wp.capture_begin(device=DEVICE)
    try:
        loss = record(tape, model.state())
    finally:
        forward = wp.capture_end(device=DEVICE)
    seed = wp.ones_like(loss)
    wp.capture_launch(forward)
    tape.backward(grads={loss: seed})
    wp.capture_begin(device=DEVICE)
    try:
        tape.zero()
        tape.backward(grads={loss: seed})
    finally:
        reverse = wp.capture_end(device=DEVICE)
    for _ in range(2):
        wp.capture_launch(forward)
        wp.capture_launch(reverse)
        np.testing.assert_array_equal(loss.numpy(), expected_loss)
        np.testing.assert_array_equal(controls.joint_act.grad.numpy(), expected_grad)


@pytest.mark.parametrize("controls", ["none", "fixed", "sequence"])
def test_checkpointed_rollout_gives_the_recorded_gradient_bits(controls):
    """``checkpoint_every`` on a robot: the backward pass re-simulates each segment, from Python
    or (a fixed control) as one captured window graph, and every gradient (initial state, model
    parameters, controls) is bitwise that of the fully recorded rollout."""
    def gradients(checkpoint_every, execution):
        scene = sim.scenes.make("ant", num_worlds=2, device="cpu", precision="float64", requires_grad=True)
        model, task = scene.model, scene.task
        state = model.state(requires_grad=True)
        if controls == "fixed":
            control = model.control(requires_grad=True)
            control.joint_act.assign(np.full(control.joint_act.shape, 0.3))
        elif controls == "sequence":
            rng = np.random.default_rng(0)
            control = model.control_sequence(11, requires_grad=True)
            control.joint_act.assign(rng.uniform(-0.5, 0.5, control.joint_act.shape))
        else:
            control = None
        tape = wp.Tape()
        with tape:
            traj = sim.rollout(model, state, control, num_steps=11, dt=task.dt, substeps=task.substeps,
                               checkpoint_every=checkpoint_every, execution=execution)
            loss = sim.scalar_loss(traj.final.body_q, weights=np.ones(traj.final.body_q.shape + (7,)))
        tape.backward(loss=loss)
        found = {"body_q": state.body_q.grad.numpy(), "joint_q": state.joint_q.grad.numpy(), "joint_qd": state.joint_qd.grad.numpy()}
        found.update({name: a.grad.numpy() for name, a in model.parameters().items() if a.grad is not None})
        if control is not None:
            found["joint_act"] = control.joint_act.grad.numpy()
        return float(loss.numpy()[0]), found

    loss, expected = gradients(None, "auto")
    assert np.abs(expected["joint_q"]).max() > 0
    for execution in ("python", "auto"):
        got_loss, got = gradients(4, execution)
        assert got_loss == loss
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{execution}: {name}")
