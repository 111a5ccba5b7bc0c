"""The low-level ``simulator.step`` and the engine check what they are given (issue 15): the time
step, the states and controls against the model, per-world parameters written after
``finalize`` (``Model.validate``), and divergence of a hand-written step loop."""

import numpy as np
import pytest
import trimesh

import simulator as sim
from simulator.errors import ParameterError
from simulator.scenes import make


def ball(device, **settings):
    return make("bouncing_ball", device=device, **settings)


@pytest.mark.parametrize("dt,match", [
    (0.3, r"dt=0\.3 with substeps=1 gives a substep of 0\.3 s, too large for the contact stiffness"),
    (-0.01, r"dt must be > 0 seconds, got -0\.01"),
    (0.0, r"dt must be > 0 seconds, got 0\.0"),
    (float("nan"), r"dt must be finite, got nan"),
])
def test_step_checks_the_time_step_like_rollout(dt, match, device):
    model = ball(device).model
    with pytest.raises(ParameterError, match=match):
        sim.step(model, model.state(), model.state(), None, dt)


def test_step_refuses_states_and_controls_of_another_model(device):
    model = ball(device).model
    two = make("bouncing_ball", num_worlds=2, device=device).model
    double = make("bouncing_ball", device=device, precision="float64").model
    with pytest.raises(ParameterError, match=r"state_in\.body_q must have shape \(1, 1\) \(the model's\), got \(2, 1\)"):
        sim.step(model, two.state(), model.state(), None, 1e-3)
    with pytest.raises(ParameterError, match=r"state_out\.body_q must have dtype transformf \(the model's precision\), got transformd"):
        sim.step(model, model.state(), double.state(), None, 1e-3)
    with pytest.raises(ParameterError, match=r"control\.body_force must have shape \(1, 1\)"):
        sim.step(model, model.state(), model.state(), two.control(), 1e-3)
    with pytest.raises(ParameterError, match=r"state_in must be a simulator\.State, got dict"):
        sim.step(model, {}, model.state(), None, 1e-3)


def test_step_refuses_a_non_finite_input_state(device):
    model = ball(device).model
    state = model.state()
    velocities = state.body_v.numpy()
    velocities[0, 0, 2] = np.nan
    state.body_v.assign(velocities)
    with pytest.raises(ParameterError, match=r"state_in\.body_v must be finite, got nan at index \[0, 0, 2\]"):
        sim.step(model, state, model.state(), None, 1e-3)


def test_step_loop_divergence_names_the_step_and_world(device):
    """A NaN control force in world 2 at the fifth step of a hand-written loop raises there."""
    model = make("bouncing_ball", num_worlds=4, device=device).model
    states = [model.state() for _ in range(2)]
    control = model.control()
    forces = np.zeros((4, 1, 3), dtype=np.float32)
    with pytest.raises(sim.SimulationDivergedError, match=r"non-finite at step 4 in world 2") as info:
        for i in range(40):
            if i == 4:
                forces[2, 0, 0] = np.nan
                control.body_force.assign(forces)
            sim.step(model, states[i % 2], states[(i + 1) % 2], control, 1e-3)
    assert (info.value.step, info.value.world) == (4, 2)


def test_step_counts_steps_on_the_state(device):
    model = ball(device).model
    a, b = model.state(), model.output_state()
    sim.step(model, a, b, None, 1e-3)
    sim.step(model, b, a, None, 1e-3)
    assert (b.step_index, a.step_index) == (1, 2)
    final = sim.rollout(model, model.state(), num_steps=3, dt=1e-3, substeps=2, record=False).final
    assert final.step_index == 6


def test_rollout_refuses_a_state_of_another_model_and_a_non_finite_one(device):
    model = ball(device).model
    with pytest.raises(ParameterError, match=r"initial_state\.body_q must have shape \(1, 1\)"):
        sim.rollout(model, make("bouncing_ball", num_worlds=3, device=device).model.state(), num_steps=2, dt=1e-3)
    state = model.state()
    poses = state.body_q.numpy()
    poses[0, 0, 0] = np.inf
    state.body_q.assign(poses)
    with pytest.raises(ParameterError, match=r"initial_state\.body_q must be finite, got inf at index \[0, 0, 0\]"):
        sim.rollout(model, state, num_steps=2, dt=1e-3)


def _set(array, index, value):
    values = array.numpy()
    values[index] = value
    array.assign(values)


@pytest.mark.parametrize("name,index,value,match", [
    ("shape_friction", (0, 0), -1.0, r"shape_friction must be >= 0, got -1\.0 at index \[0, 0\]"),
    ("shape_stiffness", (0, 1), -1e4, r"shape_stiffness must be >= 0, got -10000\.0 at index \[0, 1\]"),
    ("shape_damping", (1, 0), -5.0, r"shape_damping must be >= 0, got -5\.0 at index \[1, 0\]"),
    ("contact_softness", (1,), np.nan, r"contact_softness must be finite, got nan at index \[1\]"),
    ("body_mass", (1, 0), 0.0, r"body_mass must be > 0, got 0\.0 at index \[1, 0\]"),
    ("body_inertia", (0, 0, 0, 1), 1e-3, r"body_inertia must be symmetric, got .* for body 0 \('ball'\) in world 0"),
    ("body_inertia", (1, 0, 2, 2), -1.0, r"body_inertia must be positive-definite, got principal moments .* in world 1"),
])
def test_parameters_written_after_finalize_are_checked_before_each_rollout(name, index, value, match, device):
    model = make("bouncing_ball", num_worlds=2, device=device).model
    sim.rollout(model, model.state(), num_steps=2, dt=1e-3)
    _set(getattr(model, name), index, value)
    with pytest.raises(ParameterError, match=match):
        model.validate()
    with pytest.raises(ParameterError, match=match):
        sim.rollout(model, model.state(), num_steps=2, dt=1e-3, record=False)


def test_joint_parameters_written_after_finalize_are_checked(device):
    model = make("pendulum", device=device).model
    _set(model.joint_damping, (0, 0), -0.1)
    with pytest.raises(ParameterError, match=r"joint_damping must be >= 0, got -0\.1"):
        sim.rollout(model, model.state(), num_steps=2, dt=1e-3)
    _set(model.joint_damping, (0, 0), 0.0)
    _set(model.joint_limit_lower, (0, 0), 10.0)
    _set(model.joint_limit_upper, (0, 0), -10.0)
    with pytest.raises(ParameterError, match=r"joint_limit_lower must be <= joint_limit_upper, got 10\.0 > -10\.0"):
        model.validate()


def test_a_nan_mesh_vertex_is_refused_at_finalize(device):
    box = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    vertices = box.vertices.copy()
    vertices[0, 0] = np.nan
    builder = sim.SceneBuilder()
    body = builder.add_body(position=(0.0, 0.0, 1.0))
    builder.add_mesh(body, mesh=trimesh.Trimesh(vertices=vertices, faces=box.faces, process=False))
    with pytest.raises(ParameterError, match=r"body_mass must be finite, got nan"):
        builder.finalize(device=device)


def test_estimators_check_parameters_written_after_finalize(device):
    """The estimators' fast path (Engine.evaluate / Engine.gradient) checks the model like a rollout."""
    objective = sim.SceneTaskObjective("pendulum", num_steps=5, device=device)
    theta = np.zeros(objective.num_parameters)
    options = {"analytic": {}, "es": {"population": 4}}
    for estimator in options:
        sim.grad(objective, theta, estimator=estimator, **options[estimator])
    worlds = [w for w in (1, 2, 4, 8) if w in objective._models]  # the models the two estimators built
    assert worlds
    for w in worlds:
        _set(objective.model(w).joint_damping, (0, 0), -1.0)
    for estimator in options:
        with pytest.raises(ParameterError, match=r"joint_damping must be >= 0, got -1\.0"):
            sim.grad(objective, theta, estimator=estimator, **options[estimator])


def test_a_stiff_contact_step_loop_is_refused_before_it_gains_energy(device):
    """Issue 15: a hand-written loop with stiffness 1e7 at dt = 5 ms climbed to 5.1 m (energy
    bound 0.4 m) without an error; the step now refuses the dt as rollout does."""
    model = ball(device, stiffness=1e7, height=0.4).model
    with pytest.raises(ParameterError, match=r"dt=0\.005 with substeps=1 .* too large for the contact stiffness"):
        sim.step(model, model.state(), model.output_state(), None, 5e-3)



def test_step_divergence_through_the_device_flag_names_the_first_bad_step(device):
    """The GPU watch of simulator.step (a device flag written every step, read every
    DIVERGENCE_READ_EVERY steps) raises at the next read, naming the first non-finite step and
    world; run here on the suite's device through the same code path."""
    from simulator import rigid

    model = make("bouncing_ball", num_worlds=3, device=device).model
    states = [model.state(), model.output_state()]
    control = model.control()
    forces = np.zeros((3, 1, 3), dtype=np.float32)
    with pytest.raises(sim.SimulationDivergedError, match=r"non-finite at step 5 in world 1") as info:
        for i in range(3 * rigid.DIVERGENCE_READ_EVERY):
            if i == 5:
                forces[1, 0, 2] = np.inf
                control.body_force.assign(forces)
            rigid.launch_step(model, states[i % 2], states[(i + 1) % 2], control, 1e-3)
            rigid._watch_divergence(model, states[i % 2], states[(i + 1) % 2], 1e-3, device_flag=True)
    assert (info.value.step, info.value.world) == (5, 1)
    assert i == rigid.DIVERGENCE_READ_EVERY - 1  # raised at the first read of the flag
