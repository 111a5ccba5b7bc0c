"""Bad input to the MD integrators, builder and observables raises ParameterError naming the
parameter and the value (issue 15): nothing is silently accepted."""

import numpy as np
import warp as wp
import pytest

from simulator import md
from simulator.errors import ParameterError
from simulator.scenes.md_systems import lj_fluid


@pytest.fixture(scope="module")
def fluid(device):
    model, _ = lj_fluid(125, device=device)
    return model


@pytest.mark.parametrize("make", [md.VelocityVerlet, lambda: md.LangevinBAOAB(1.0)], ids=["verlet", "baoab"])
@pytest.mark.parametrize("dt,match", [(0.0, r"dt must be > 0 seconds, got 0\.0"), (-0.01, r"dt must be > 0 seconds, got -0\.01"),
                                      (float("nan"), r"dt must be finite, got nan")])
def test_integrator_step_checks_the_time_step(make, dt, match, fluid):
    integrator = make()
    start = integrator.prepare(fluid, integrator.state(fluid))
    with pytest.raises(ParameterError, match=match):
        integrator.step(fluid, start, integrator.state(fluid), None, dt)


@pytest.mark.parametrize("options,match", [
    ({"f_dec": 1.5}, r"f_dec must be in \(0, 1\), got 1\.5"),
    ({"f_dec": 0.0}, r"f_dec must be in \(0, 1\), got 0\.0"),
    ({"n_min": -3}, r"n_min must be an integer >= 0, got -3"),
    ({"n_min": 2.7}, r"n_min must be an integer, got 2\.7"),
    ({"f_inc": 1.0}, r"f_inc must be in \(1, inf\), got 1\.0"),
    ({"f_alpha": 1.5}, r"f_alpha must be in \(0, 1\), got 1\.5"),
    ({"f_alpha": -0.1}, r"f_alpha must be in \(0, 1\), got -0\.1"),
    ({"alpha_start": 1.2}, r"alpha_start must be in \(0, 1\), got 1\.2"),
    ({"dt_start": 0.5, "dt_max": 0.1}, r"dt_max must be in \[0\.5, inf\), got 0\.1"),
])
def test_fire_refuses_parameters_outside_the_method_range(options, match):
    with pytest.raises(ParameterError, match=match):
        md.FIRE(**options)


def test_particle_type_must_be_an_integer():
    builder = md.ParticleBuilder(box=(5.0, 5.0, 5.0))
    positions = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    with pytest.raises(ParameterError, match=r"type must be an integer >= 0 \(or one per particle\), got 1\.7"):
        builder.add_particles(positions, type=1.7)
    with pytest.raises(ParameterError, match=r"type must be an integer >= 0 .* got \[0\.0, 1\.5\]"):
        builder.add_particles(positions, type=np.array([0.0, 1.5]))
    with pytest.raises(ParameterError, match=r"got -1"):
        builder.add_particles(positions, type=-1)
    builder.add_particles(positions, type=np.array([0, 1]))  # integers are fine


def test_rdf_radius_is_at_most_half_the_periodic_box(fluid):
    half = 0.5 * float(np.min(fluid.box_sides()))
    with pytest.raises(ParameterError, match=r"r_max must be <= half the smallest periodic box side .* got 1000\.0"):
        md.radial_distribution(fluid, fluid.state(), r_max=1e3)
    r, g = md.radial_distribution(fluid, fluid.state(), r_max=half, bins=10)
    assert r.shape == g.shape == (10,)


def test_states_of_another_size_are_refused(fluid, device):
    other, _ = lj_fluid(216, device=device)
    integrator = md.VelocityVerlet()
    start = integrator.prepare(fluid, integrator.state(fluid))
    with pytest.raises(ParameterError, match=r"state_out\.positions must have shape \(125,\) \(the model's\), got \(216,\)"):
        integrator.step(fluid, start, integrator.state(other), None, 1e-3)
    with pytest.raises(ParameterError, match=r"initial_state\.positions must have shape \(125,\) \(the model's\), got \(216,\)"):
        md.rollout(fluid, other.state(), integrator, num_steps=2, dt=1e-3)


def test_a_non_finite_initial_state_is_named(fluid):
    state = fluid.state()
    positions = state.positions.numpy()
    positions[3, 1] = np.nan
    state.positions.assign(positions)
    with pytest.raises(ParameterError, match=r"initial_state\.positions must be finite, got nan at index \[3, 1\]"):
        md.rollout(fluid, state, md.VelocityVerlet(), num_steps=2, dt=1e-3)


@pytest.mark.parametrize("name,index,value,match", [
    ("particle_mass", (4,), -1.0, r"particle_mass must be > 0, got -1\.0 at index \[4\]"),
    ("particle_diameter", (0,), np.nan, r"particle_diameter must be finite, got nan at index \[0\]"),
    ("pair_epsilon", (0, 0), 0.0, r"pair_epsilon must be > 0, got 0\.0 at index \[0, 0\]"),
    ("pair_sigma", (0, 0), np.inf, r"pair_sigma must be finite, got inf at index \[0, 0\]"),
    ("box", (0, 1), -3.0, r"box must be > 0, got -3\.0 at index \[0, 1\]"),
    ("box", (0, 0), 1.0, r"cutoff=2\.5 is larger than half the periodic box"),
])
def test_parameters_written_after_finalize_are_checked_before_each_md_rollout(name, index, value, match, device):
    model, state = lj_fluid(125, device=device)
    array = getattr(model, name)
    values = array.numpy()
    values[index] = value
    array.assign(values)
    with pytest.raises(ParameterError, match=match):
        model.validate()
    with pytest.raises(ParameterError, match=match):
        md.rollout(model, state, md.VelocityVerlet(), num_steps=2, dt=1e-3)


@pytest.mark.parametrize("device_flag", [False, True], ids=["host-view", "device-flag"])
def test_a_hand_written_step_loop_raises_on_divergence(device_flag, fluid):
    """The public integrator step watches its output (issue 15 item 2): a NaN velocity injected at
    step 3 raises SimulationDivergedError naming step 3 (through the device flag: at its next
    read). The engine's path (MDSolver) runs the unchecked ``advance``."""
    from simulator.errors import SimulationDivergedError
    from simulator.md import integrators

    integrator = md.VelocityVerlet()
    states = [integrator.prepare(fluid, integrator.state(fluid)), integrator.state(fluid)]
    with pytest.raises(SimulationDivergedError, match=r"VelocityVerlet\.step: the particle state became non-finite at step 3") as info:
        for i in range(3 * integrators.DIVERGENCE_READ_EVERY):
            if i == 3:
                velocities = states[i % 2].velocities.numpy()
                velocities[7, 0] = np.nan
                states[i % 2].velocities.assign(velocities)
            integrator.advance(fluid, states[i % 2], states[(i + 1) % 2], 1e-3)
            integrator._watch_divergence(fluid, states[i % 2], states[(i + 1) % 2], 1e-3, device_flag=device_flag)
            states[(i + 1) % 2].step_index = states[i % 2].step_index + 1
    assert info.value.step == 3 and info.value.world == 0
    assert i == (integrators.DIVERGENCE_READ_EVERY - 1 if device_flag else 3)


def test_public_step_checks_a_fresh_state_and_raises_on_divergence(fluid):
    from simulator.errors import SimulationDivergedError

    integrator = md.VelocityVerlet()
    start, out = integrator.prepare(fluid, integrator.state(fluid)), integrator.state(fluid)
    velocities = start.velocities.numpy()
    velocities[2, 1] = np.inf
    start.velocities.assign(velocities)
    with pytest.raises(ParameterError, match=r"state_in\.velocities must be finite, got inf at index \[2, 1\]"):
        integrator.step(fluid, start, out, None, 1e-3)
    start = integrator.prepare(fluid, integrator.state(fluid))
    integrator.step(fluid, start, out, None, 1e-3)
    out.velocities.assign(velocities)  # a blow-up inside the loop
    with pytest.raises(SimulationDivergedError, match=r"VelocityVerlet\.step: the particle state became non-finite at step 1 \(dt=0\.001"):
        integrator.step(fluid, out, start, None, 1e-3)


def test_a_huge_cutoff_builds_a_neighbor_list_of_every_pair(device):
    """A cutoff far beyond the system (non-periodic) used to size the list for the particles in a
    sphere of that radius: an (N, 10^60) array and a Warp-level error (found by the fuzz suite).
    The capacity is now capped at N, and the listed forces are the all-pairs ones."""
    rng = np.random.default_rng(3)
    builder = md.ParticleBuilder(dim=3, box=None, periodic=False)
    builder.add_particles(np.arange(8)[:, None] * np.array([1.1, 0.0, 0.0]) + rng.uniform(-0.05, 0.05, (8, 3)))
    model = builder.finalize(md.LennardJones(cutoff=1e30), device=device)
    neighbors = md.NeighborList(model)
    assert neighbors.capacity <= model.particle_count + 8
    state = model.state()
    listed, exact = wp.zeros_like(state.forces), wp.zeros_like(state.forces)
    md.compute_forces(model, state.positions, listed, neighbors)
    md.compute_forces(model, state.positions, exact)
    assert neighbors.pair_count() == 8 * 7 // 2
    np.testing.assert_allclose(listed.numpy(), exact.numpy(), rtol=1e-12, atol=1e-12)
