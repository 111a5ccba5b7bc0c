"""Bad input gets a ValueError naming the parameter and value; blow-ups name step and world."""

import math

import numpy as np
import pytest
import trimesh

import simulator as sim


def ball_builder(**body):
    b = sim.SceneBuilder()
    index = b.add_body(position=(0.0, 0.0, 1.0), **body)
    return b, index


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda b, i: b.add_sphere(i, radius=-0.1), r"sphere radius must be > 0, got -0\.1"),
        (lambda b, i: b.add_sphere(i, radius=0.0), r"sphere radius must be > 0"),
        (lambda b, i: b.add_box(i, half_extents=(0.1, 0.0, 0.1)), r"box half_extents must be > 0"),
        (lambda b, i: b.add_capsule(i, radius=0.1, half_height=-1.0), r"capsule half_height must be > 0, got -1\.0"),
        (lambda b, i: b.add_sphere(i, radius=0.1, density=-5.0), r"sphere density must be >= 0, got -5\.0"),
        (lambda b, i: b.add_sphere(i, radius=float("nan")), r"sphere radius must be finite, got nan"),
        (lambda b, i: b.add_sphere(i, radius=0.1, stiffness=float("inf")), r"sphere stiffness must be finite"),
        (lambda b, i: b.add_sphere(i, radius=0.1, friction=-0.2), r"sphere friction must be >= 0"),
        (lambda b, i: b.add_sphere(i, radius=0.1, position=(0.0, float("nan"), 0.0)), r"sphere position must be finite"),
        (lambda b, i: b.add_sphere(7, radius=0.1), r"body must be an index in \[-1, 1\), got 7"),
        (lambda b, i: b.add_body(mass=-1.0), r"mass of body1 must be > 0, got -1\.0"),
        (lambda b, i: b.add_body(mass=0.0), r"mass of body1 must be > 0"),
        (lambda b, i: b.add_body(velocity=(0.0, math.inf, 0.0)), r"velocity of body1 must be finite"),
        (lambda b, i: b.add_body(rotation=(0.0, 0.0, 0.0, 0.0)), r"rotation of body1 must be a non-zero quaternion"),
        (lambda b, i: b.add_body(mass=1.0, inertia=(1.0, -1.0, 1.0)), r"inertia of body1 \(principal moments\) must be > 0"),
        (lambda b, i: b.add_ground_plane(normal=(0.0, 0.0, 0.0)), r"normal must be non-zero"),
        (lambda b, i: b.add_box(i, half_extents=(0.1, 0.1)), r"half_extents must have 3 entries"),
    ],
)
def test_builder_rejects_bad_values(call, match):
    b, i = ball_builder()
    with pytest.raises(ValueError, match=match):
        call(b, i)


def test_finalize_rejects_bad_arguments(device):
    b, i = ball_builder()
    b.add_sphere(i, radius=0.1)
    with pytest.raises(ValueError, match=r"num_worlds must be a positive integer, got 0"):
        b.finalize(num_worlds=0, device=device)
    with pytest.raises(ValueError, match=r"precision must be one of .* got 'float16'"):
        b.finalize(device=device, precision="float16")
    with pytest.raises(ValueError, match=r"device 'tpu' is not available"):
        b.finalize(device="tpu")
    with pytest.raises(ValueError, match=r"softness must be >= 0, got -0\.001"):
        sim.ContactSettings(softness=-1e-3)
    with pytest.raises(ValueError, match=r"mode must be one of"):
        sim.ContactSettings(mode="hard")
    empty = sim.SceneBuilder()
    massless = empty.add_body()
    with pytest.raises(ValueError, match=r"body0 has no shape with mass: give it mass= and inertia="):
        empty.finalize(device=device)
    with pytest.raises(ValueError, match="the scene has no bodies"):
        sim.SceneBuilder().finalize(device=device)
    assert massless == 0


def test_non_watertight_mesh_with_mass_is_rejected(device):
    open_box = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    open_box.faces = open_box.faces[:-2]  # remove one face: not watertight any more
    b, i = ball_builder()
    b.add_mesh(i, mesh=open_box)
    with pytest.raises(ValueError, match=r"mesh of body0 is not watertight"):
        b.finalize(device=device)
    # with explicit mass and inertia the mesh is only a collision shape, which is fine
    b2, j = ball_builder(mass=1.0, inertia=(0.01, 0.01, 0.01))
    b2.add_mesh(j, mesh=open_box, density=1.0)
    assert b2.bodies[j].mass == 1.0


@pytest.mark.parametrize("dt,substeps,match", [
    (0.0, 1, r"dt must be > 0 seconds, got 0\.0"),
    (-1e-3, 1, r"dt must be > 0 seconds"),
    (float("nan"), 1, r"dt must be finite"),
    (1e-3, 0, r"substeps must be a positive integer, got 0"),
    (0.5, 1, r"dt=0\.5 with substeps=1 gives a substep of 0\.5 s, too large for the contact stiffness"),
])
def test_rollout_rejects_bad_time_steps(dt, substeps, match, device):
    from simulator.scenes import make

    scene = make("bouncing_ball", device=device)
    with pytest.raises(ValueError, match=match):
        sim.rollout(scene.model, scene.model.state(), num_steps=2, dt=dt, substeps=substeps)


def test_rollout_refuses_substeps_too_long_for_the_regularised_friction(device):
    """Explicit friction -mu*N*v/sqrt(v^2 + v_s^2) damps sliding at rate mu*g/v_s: a substep
    longer than 2*v_s/(mu*g) makes the sliding mode oscillate and grow (and its gradient explode)."""
    from simulator.scenes import make

    scene = make("bouncing_ball", device=device, friction=1.0, contact=sim.ContactSettings(friction_smoothing=1e-3))
    limit = 2 * 1e-3 / 9.81
    with pytest.raises(ValueError, match=r"too large for the contact friction \(explicit limit 0\.000204 s\).*friction_smoothing"):
        sim.rollout(scene.model, scene.model.state(), num_steps=2, dt=1.1 * limit)
    sim.rollout(scene.model, scene.model.state(), num_steps=2, dt=0.9 * limit)


def test_blow_up_names_step_and_world(device):
    """A NaN control force in world 2 at step 7 must raise, naming that step and world."""
    from simulator.scenes import make

    scene = make("bouncing_ball", num_worlds=4, device=device)
    controls = scene.model.control_sequence(20)
    forces = np.zeros((20, 4, 1, 3), dtype=np.float32)
    forces[7, 2, 0, 0] = np.nan
    forces[12, 1, 0, 1] = np.inf
    controls.body_force.assign(forces)
    with pytest.raises(sim.SimulationDivergedError, match=r"non-finite at step 7 .* in world 2 \(2 of 4 worlds") as info:
        sim.rollout(scene.model, scene.model.state(), controls, num_steps=20, dt=scene.dt, substeps=2)
    assert (info.value.step, info.value.world) == (7, 2)
    # the substeps already satisfy the contact limit, so the advice must not ask for shorter ones
    # (it used to: issue 15) but point elsewhere
    assert "dt < 2*sqrt(m/k)" not in str(info.value)
    assert "within the contact's stable limit" in str(info.value)


def test_state_in_must_differ_from_state_out(device):
    from simulator.scenes import make

    scene = make("bouncing_ball", device=device)
    state = scene.model.state()
    with pytest.raises(ValueError, match="must be different States"):
        sim.step(scene.model, state, state, None, 1e-3)


def test_explicit_centre_of_mass_and_set_mass_properties(device):
    """com= (MJCF's <inertial pos>) makes mass, com and inertia the body's, whatever its shapes;
    set_mass_properties replaces them later; both check their input."""
    b = sim.SceneBuilder()
    body = b.add_body(position=(0.0, 0.0, 1.0), mass=2.0, inertia=[0.1, 0.2, 0.3], com=(0.0, 0.5, 0.0))
    b.add_sphere(body, radius=0.1, density=1000.0)
    mass, com, inertia = b.body_mass_properties(body)
    assert mass == 2.0 and np.allclose(com, [0.0, 0.5, 0.0]) and np.allclose(inertia, np.diag([0.1, 0.2, 0.3]))
    b.set_mass_properties(body, mass=3.0, com=(0.1, 0.0, 0.0), inertia=np.diag([0.3, 0.3, 0.3]))
    model = b.finalize(device=device, precision="float64")
    assert model.body_mass.numpy()[0, 0] == 3.0
    np.testing.assert_allclose(model.state().body_q.numpy()[0, 0, :3], [0.1, 0.0, 1.0])
    with pytest.raises(sim.ParameterError, match=r"com of body1 needs mass= and inertia= as well, got mass=2.0, inertia=None"):
        b.add_body(mass=2.0, com=(0.0, 0.0, 0.0))
    with pytest.raises(sim.ParameterError, match=r"com of body0 must be finite, got \[0.0, nan, 0.0\]"):
        b.set_mass_properties(body, mass=1.0, com=(0.0, float("nan"), 0.0), inertia=[1.0, 1.0, 1.0])
    with pytest.raises(sim.ParameterError, match=r"mass of body0 must be > 0, got -1.0"):
        b.set_mass_properties(body, mass=-1.0, com=(0.0, 0.0, 0.0), inertia=[1.0, 1.0, 1.0])


def test_density_zero_shapes_only_collide(device):
    """A shape of density 0 (MJCF's density="0") adds no mass; a body with nothing else has none."""
    b = sim.SceneBuilder()
    body = b.add_body()
    b.add_sphere(body, radius=0.1, density=1000.0)
    b.add_box(body, half_extents=(1.0, 1.0, 1.0), position=(3.0, 0.0, 0.0), density=0.0)
    mass, com, _ = b.body_mass_properties(body)
    assert mass == pytest.approx(1000.0 * 4.0 / 3.0 * math.pi * 0.1**3) and np.allclose(com, 0.0)
    hollow = b.add_body()
    b.add_sphere(hollow, radius=0.1, density=0.0)
    with pytest.raises(ValueError, match="body1 has no shape with mass"):
        b.finalize(device=device)
