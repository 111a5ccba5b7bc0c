"""Joint and actuator parameters (damping, armature, stiffness, gear, kp, kd, limits) are per-world
model arrays: the tape gradient of a float64 rollout with respect to each matches central
differences, and world ranges of a graph replay see their own worlds' values."""


import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import scenes
from simulator.model import JOINT_PARAMETERS

WORLDS = 2


def hinge_and_sliders(device, precision="float64", requires_grad=True, num_worlds=WORLDS):
    """Three joints to the world: a pendulum hinge (dof 0) with damping, armature and a spring,
    driven by a motor (actuator 0) and a PD position actuator (actuator 1); a slider moving into
    its upper limit (dof 1) and one moving into its lower limit (dof 2)."""
    b = sim.SceneBuilder()
    bob = b.add_body(position=(0.0, 0.0, 0.0), mass=1.0, inertia=[0.01, 0.01, 0.01])
    hinge = b.add_revolute_joint(-1, bob, axis=(0, 1, 0), position=(0.0, 0.0, 0.8), q=0.4, qd=0.5, damping=0.3, armature=0.05,
                                 stiffness=2.0, spring_ref=0.2)
    b.add_actuator(hinge, gear=1.5)
    b.add_actuator(hinge, kind="position", kp=4.0, kd=0.5)
    up = b.add_body(position=(2.0, 0.0, 0.0), mass=0.7, inertia=[0.01, 0.01, 0.01])
    b.add_prismatic_joint(-1, up, axis=(1, 0, 0), qd=0.93, limit=(-0.1, 0.1), limit_stiffness=300.0, limit_damping=5.0)
    down = b.add_body(position=(4.0, 0.0, 0.0), mass=0.5, inertia=[0.01, 0.01, 0.01])
    b.add_prismatic_joint(-1, down, axis=(1, 0, 0), qd=-0.8, limit=(-0.05, 0.2), limit_stiffness=200.0, limit_damping=2.0,
                          limit_softness=0.01)
    model = b.finalize(num_worlds=num_worlds, precision=precision, device=device, requires_grad=requires_grad)
    # make the worlds differ, so that a parameter read from the wrong world shows
    for name in JOINT_PARAMETERS:
        values = getattr(model, name).numpy()
        values[1:] *= 1.1
        getattr(model, name).assign(values)
    return model


def _controls(model, steps, seed):
    controls = model.control_sequence(steps)
    u = np.random.default_rng(seed).uniform(-0.5, 0.5, size=controls.joint_act.shape)
    controls.joint_act.assign(u.astype(model.precision.numpy))
    return controls


def _run(model, steps, dt, controls):
    return lambda: sim.rollout(model, model.state(), controls, num_steps=steps, dt=dt).final


# (parameter, its index, output field, output index): outputs of world 1 w.r.t. parameters of world 1
HINGE_CASES = [
    ("joint_armature", (1, 0), "joint_q", (1, 0)),
    ("joint_damping", (1, 0), "joint_qd", (1, 0)),
    ("joint_stiffness", (1, 0), "joint_q", (1, 0)),
    ("actuator_gear", (1, 0), "joint_q", (1, 0)),
    ("actuator_kp", (1, 1), "joint_q", (1, 0)),
    ("actuator_kd", (1, 1), "joint_qd", (1, 0)),
    ("joint_limit_upper", (1, 1), "joint_q", (1, 1)),
    ("joint_limit_lower", (1, 2), "joint_qd", (1, 2)),
]


@pytest.mark.parametrize("parameter, index, field, out_index", HINGE_CASES)
def test_joint_parameter_gradient(rollout_gradcheck, parameter, index, field, out_index, device):
    model = hinge_and_sliders(device)
    steps, dt = 30, 0.01
    controls = _controls(model, steps, seed=0)
    _, numeric = rollout_gradcheck(_run(model, steps, dt, controls), lambda s: (getattr(s, field), out_index), getattr(model, parameter),
                                   index, eps=1e-6, rtol=1e-5)
    assert abs(numeric) > 1e-4  # the parameter matters (a limit only acts once the slider reaches it)


@pytest.mark.parametrize("parameter, index", [("joint_damping", (1, 0)), ("joint_armature", (1, 1)), ("actuator_gear", (1, 0))])
def test_cartpole_parameter_gradient(rollout_gradcheck, parameter, index, device):
    """Coupled dynamics: the pole's final angle w.r.t. the cart's (or the pole's) parameters."""
    model = scenes.make("cartpole", num_worlds=WORLDS, device=device, precision="float64", requires_grad=True).model
    values = getattr(model, parameter).numpy()
    values[:] += 0.2  # damping and armature are zero in the scene
    getattr(model, parameter).assign(values)
    steps, dt = 25, 0.01
    controls = _controls(model, steps, seed=1)
    _, numeric = rollout_gradcheck(_run(model, steps, dt, controls), lambda s: (s.joint_q, (1, 1)), getattr(model, parameter), index,
                                   eps=1e-6, rtol=1e-5)
    assert abs(numeric) > 1e-5


def test_parameters_listed_with_gradient_buffers(device):
    model = hinge_and_sliders(device)
    params = model.parameters()
    art = model.articulation
    for name in JOINT_PARAMETERS:
        width = art.num_dofs if name.startswith("joint_") else art.num_actuators
        assert params[name] is getattr(model, name)
        assert params[name].shape == (WORLDS, width) and params[name].grad is not None
    assert model.joint_limit_upper.numpy()[0].tolist()[1:] == [0.1, 0.2]
    assert model.joint_limit_upper.numpy()[0, 0] > 1e30  # no limit on the hinge
    rigid_only = sim.SceneBuilder()
    rigid_only.add_body(mass=1.0, inertia=[0.1] * 3)
    assert not set(JOINT_PARAMETERS) & set(rigid_only.finalize(device=device).parameters())


def test_gradients_reach_every_world_separately(device):
    """Per-world gradients: world 0's output does not depend on world 1's damping, and the
    adjoint fills world 0's entry only."""
    model = hinge_and_sliders(device)
    steps = 10
    controls = _controls(model, steps, seed=2)
    tape = wp.Tape()
    with tape:
        final = _run(model, steps, 0.01, controls)()
    seed = np.zeros((WORLDS, model.articulation.num_coords))
    seed[0, 0] = 1.0
    tape.backward(grads={final.joint_q: wp.array(seed, dtype=final.joint_q.dtype, device=final.joint_q.device)})
    grad = model.joint_damping.grad.numpy()
    assert grad[0, 0] != 0.0 and np.all(grad[1] == 0.0)


@pytest.mark.parametrize("threads", [1, 2])
def test_graph_replay_uses_each_worlds_parameters(threads, device):
    """record=False replays world ranges on threads: bitwise the recorded rollout, and the worlds
    differ (their parameters do)."""
    model = hinge_and_sliders(device, precision="float32", requires_grad=False, num_worlds=4)
    steps = 12
    controls = _controls(model, steps, seed=3)
    fast = sim.rollout(model, model.state(), controls, num_steps=steps, dt=0.01, substeps=2, record=False, threads=threads)
    slow = sim.rollout(model, model.state(), controls, num_steps=steps, dt=0.01, substeps=2)
    for name in ("joint_q", "joint_qd", "body_q"):
        np.testing.assert_array_equal(getattr(fast.final, name).numpy(), getattr(slow.final, name).numpy(), err_msg=name)
    q = fast.final.joint_q.numpy()
    assert not np.allclose(q[0], q[1])


def test_spring_needs_a_revolute_or_prismatic_joint(device):
    b = sim.SceneBuilder()
    a = b.add_body(mass=1.0, inertia=[0.1] * 3)
    with pytest.raises(ValueError, match=r"stiffness=2.0, spring_ref=0.0 of joint0: only revolute and prismatic joints take a spring"):
        b.add_ball_joint(-1, a, stiffness=2.0)
    with pytest.raises(ValueError, match=r"stiffness of joint0 must be >= 0, got -1.0"):
        b.add_revolute_joint(-1, a, axis=(0, 0, 1), stiffness=-1.0)
    with pytest.raises(ValueError, match=r"spring_ref of joint0 must be finite, got nan"):
        b.add_revolute_joint(-1, a, axis=(0, 0, 1), spring_ref=float("nan"))


def test_spring_first_step_follows_the_implicit_law(device):
    """A hinge through the centre of mass of a body (no gravity torque about z): the first step
    from rest gives qd_1 = dt * k (q_ref - q_0) / (I + armature + dt*c + dt^2 k), the spring
    integrated implicitly; then with damping the joint settles at the spring's rest angle."""
    izz, armature, k, c, ref, q0, dt = 0.02, 0.01, 2.0, 0.5, 0.3, -0.4, 0.01
    b = sim.SceneBuilder()
    body = b.add_body(mass=1.0, inertia=[0.05, 0.05, izz])
    b.add_revolute_joint(-1, body, axis=(0, 0, 1), q=q0, stiffness=k, spring_ref=ref, damping=c, armature=armature)
    model = b.finalize(precision="float64", device=device)
    first = sim.rollout(model, model.state(), num_steps=1, dt=dt).final
    expected = dt * k * (ref - q0) / (izz + armature + dt * c + dt * dt * k)
    assert first.joint_qd.numpy()[0, 0] == pytest.approx(expected, rel=1e-12)
    settled = sim.rollout(model, model.state(), num_steps=1500, dt=dt, record=False).final
    assert settled.joint_q.numpy()[0, 0] == pytest.approx(ref, abs=1e-6)


def test_mjcf_joint_spring(tmp_path, device):
    """<joint stiffness springref> of hinges (springref in degrees here) and slides become the joint
    spring; on a ball joint they are ignored with a warning."""
    text = (
        "<mujoco><compiler angle='degree'/><worldbody><body><geom size='0.1'/>"
        "<joint name='h' type='hinge' axis='0 1 0' stiffness='3' springref='90'/>"
        "<body pos='1 0 0'><geom size='0.1'/><joint name='s' type='slide' stiffness='5' springref='0.25'/>"
        "<body pos='1 0 0'><geom size='0.1'/><joint name='b' type='ball' stiffness='7'/></body></body></body></worldbody></mujoco>"
    )
    path = tmp_path / "spring.xml"
    path.write_text(text)
    with pytest.warns(UserWarning, match="stiffness"):
        builder = sim.load_mjcf(str(path))
    model = builder.finalize(device=device, precision="float64")
    assert model.joint_stiffness.numpy()[0, :2].tolist() == [3.0, 5.0]
    assert np.all(model.joint_stiffness.numpy()[0, 2:] == 0.0)
    assert model.articulation.dof_spring_ref.numpy()[:2] == pytest.approx([np.pi / 2, 0.25])
