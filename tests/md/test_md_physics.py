"""Physics checks: NVE energy conservation, Langevin thermostat, FIRE convergence, neighbor lists,
observables and bad input."""

import logging
import math

import numpy as np
import pytest

from simulator import md
from simulator.errors import SimulationDivergedError
from simulator.scenes.md_systems import bidisperse_packing, lattice_positions, lj_fluid, packing_box_side, packing_box_side_derivative


def total_energy(model, state, nl):
    return float(md.potential_energy(model, state, nl).numpy()[0] + md.kinetic_energy(model, state).numpy()[0])


@pytest.mark.slow
def test_nve_energy_drift_lj_fluid(device):
    """LJ fluid, N = 500, density 0.8, T = 1.0, dt = 0.005, 10,000 velocity-Verlet steps in float64
    (shifted-force cutoff 2.5, Verlet list with skin 0.3): max |E(t) - E(0)| / |E(0)| < 1e-4."""
    model, state = lj_fluid(500, density=0.8, temperature=1.0, device=device, precision="float64")
    nl = md.NeighborList(model, skin=0.3)
    integrator = md.VelocityVerlet(neighbors=nl)
    current = integrator.prepare(model, state)
    e0 = total_energy(model, current, nl)
    worst = 0.0
    for _ in range(20):
        current = md.rollout(model, current, integrator, num_steps=500, dt=0.005, record=False).final
        worst = max(worst, abs(total_energy(model, current, nl) - e0) / abs(e0))
    assert nl.rebuild_count > 50  # the list was rebuilt along the way
    assert worst < 1e-4


def test_langevin_equilibrates_to_target_temperature(device):
    """BAOAB at kT = 1.5 from a cold LJ lattice (N = 256, density 0.6, gamma = 2): the kinetic
    temperature averaged over the second half of 4,000 steps is within 3% of the target."""
    model, state = lj_fluid(256, density=0.6, temperature=0.1, device=device)
    nl = md.NeighborList(model)
    integrator = md.LangevinBAOAB(temperature=1.5, friction=2.0, seed=7, neighbors=nl)
    current = integrator.prepare(model, state)
    temps = []
    for block in range(40):
        current = md.rollout(model, current, integrator, num_steps=100, dt=0.005, record=False).final
        if block >= 20:
            temps.append(float(md.temperature(model, current).numpy()[0]))
    assert abs(np.mean(temps) - 1.5) < 0.03 * 1.5


def test_langevin_is_reproducible_and_seeded(device):
    model, state = lj_fluid(108, density=0.5, device=device)
    run = lambda seed: md.rollout(  # noqa: E731
        model, state, md.LangevinBAOAB(1.0, seed=seed, neighbors=md.NeighborList(model)), num_steps=50, record=False
    ).final.positions.numpy()
    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_langevin_2d_has_no_z_motion(device):
    model, state = bidisperse_packing(32, packing_fraction=0.5, device=device)
    traj = md.rollout(model, state, md.LangevinBAOAB(1.0, seed=0), num_steps=20, record=False)
    assert np.all(traj.final.positions.numpy()[:, 2] == 0.0)
    assert np.all(traj.final.velocities.numpy()[:, 2] == 0.0)


def test_fire_converges_on_bidisperse_packing(device):
    """FIRE on the paper's packing (N = 128, D = 0.6, phi = 0.98): energy drops by an order of
    magnitude to a jammed minimum (positive energy) where the largest residual force vanishes."""
    model, state = bidisperse_packing(128, small_diameter=0.6, seed=0, device=device)
    nl = md.NeighborList(model)
    traj = md.rollout(model, state, md.FIRE(neighbors=nl), num_steps=1000, record=False)
    e0 = float(md.potential_energy(model, traj.states[0], nl).numpy()[0])
    e1 = float(md.potential_energy(model, traj.final, nl).numpy()[0])
    fmax = np.abs(traj.final.forces.numpy()).max()
    assert 0.0 < e1 < 0.1 * e0
    assert fmax < 1e-8 * np.abs(traj.states[0].forces.numpy()).max()


@pytest.mark.parametrize("case", ["periodic3d", "periodic2d", "free3d", "small_box", "poly2d"])
def test_neighbor_list_energy_equals_all_pairs(case, device):
    """The neighbor-list energy equals the all-pairs sum (same pairs; rounding only), also in a
    box too small for a 3x3x3 cell stencil and after moves that force rebuilds."""
    rng = np.random.default_rng(0)
    if case == "poly2d":
        model, state = bidisperse_packing(200, small_diameter=0.5, packing_fraction=0.9, seed=3, device=device)
    else:
        dim = 2 if case == "periodic2d" else 3
        n = {"small_box": 60, "periodic2d": 300}.get(case, 400)
        density = 0.8
        box = (n / density) ** (1 / dim)
        pos = lattice_positions(n, box, dim) + rng.uniform(-0.1, 0.1, (n, dim))
        builder = md.ParticleBuilder(dim=dim, box=None if case == "free3d" else box)
        builder.add_particles(pos)
        cutoff = 2.0 if case == "small_box" else 2.5
        model = builder.finalize(md.LennardJones(cutoff=cutoff), device=device)
        state = model.state()
    nl = md.NeighborList(model, skin=0.3)
    integrator = md.LangevinBAOAB(2.0, seed=1, neighbors=nl)
    current = integrator.prepare(model, state)
    for _ in range(3):
        e_list = float(md.potential_energy(model, current, nl).numpy()[0])
        e_all = float(md.potential_energy(model, current, None).numpy()[0])
        assert abs(e_all) > 1e-3
        assert e_list == pytest.approx(e_all, rel=1e-12, abs=1e-12)
        current = md.rollout(model, current, integrator, num_steps=40, dt=0.005, record=False).final
    assert nl.rebuild_count >= 2


@pytest.mark.parametrize("sigma_from", ["diameters", "types"])
def test_soft_sphere_list_holds_exactly_the_pairs_within_sigma_plus_skin(sigma_from, device):
    """The soft sphere vanishes beyond sigma_ij, so its list holds the pairs within sigma_ij + skin
    (fewer than within the largest sigma + skin), checked against a brute-force numpy search, and
    its energy still equals the all-pairs sum."""
    rng = np.random.default_rng(5)
    n, side, skin = 160, 9.0, 0.2
    pos = rng.uniform(0.0, side, (n, 2))
    small = np.arange(n) % 2 == 1
    builder = md.ParticleBuilder(dim=2, box=side)
    if sigma_from == "diameters":
        builder.add_particles(pos[~small], diameter=1.2)
        builder.add_particles(pos[small], diameter=0.5)
        potential = md.SoftSphere(sigma_from_diameters=True)
    else:
        builder.add_particles(pos[~small], type=0)
        builder.add_particles(pos[small], type=1)
        potential = md.SoftSphere(sigma=[[1.2, 0.85], [0.85, 0.5]])
    model = builder.finalize(potential, device=device, precision="float64")
    state = model.state()
    nl = md.NeighborList(model, skin=skin)
    e_list = float(md.potential_energy(model, state, nl).numpy()[0])
    e_all = float(md.potential_energy(model, state, None).numpy()[0])
    assert e_all > 0.0 and e_list == pytest.approx(e_all, rel=1e-12)

    x = state.positions.numpy()[:, :2]
    is_small = np.r_[np.zeros(n - small.sum(), bool), np.ones(small.sum(), bool)]
    sigma = np.where(is_small, 0.5, 1.2)
    sigma_ij = 0.5 * (sigma[:, None] + sigma[None, :])  # also the types' cross sigma (0.85)
    d = x[:, None, :] - x[None, :, :]
    d -= side * np.round(d / side)
    r = np.sqrt((d**2).sum(-1))
    expected = {(i, j) for i in range(n) for j in range(i + 1, n) if r[i, j] < sigma_ij[i, j] + skin}
    listed = {tuple(sorted((i, int(j)))) for i, (c, row) in enumerate(zip(nl.neighbor_count.numpy(), nl.neighbor_index.numpy()))
              for j in row[:c]}
    assert listed == expected
    assert len(expected) < np.sum(np.triu(r < 1.2 + skin, 1))  # the largest sigma would list more


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_neighbor_list_finds_pairs_across_the_box_face(precision, device):
    """A wrap in float32 can leave a particle exactly on the upper face (x = L: -1e-8 + L rounds
    to L); the list bins it into the first cell and must still pair it with particles on both
    sides of the face, with the same energy as the all-pairs sum."""
    side = 10.0
    builder = md.ParticleBuilder(dim=3, box=side)
    rng = np.random.default_rng(4)
    pos = lattice_positions(64, side, 3) + rng.uniform(-0.2, 0.2, (64, 3))
    builder.add_particles(pos)
    model = builder.finalize(md.LennardJones(cutoff=2.5), device=device, precision=precision)
    state = model.state()
    x = state.positions.numpy()
    x[0] = (side, 5.0, 5.0)  # on the face itself: after folding, in cell 0
    x[1] = (0.9, 5.0, 5.1)  # across the face (distance ~0.9)
    x[2] = (side - 0.95, 5.1, 5.0)  # on the same side (distance ~0.95)
    state.positions.assign(x)
    assert state.positions.numpy()[0, 0] == side
    nl = md.NeighborList(model, skin=0.3)
    e_list = float(md.potential_energy(model, state, nl).numpy()[0])
    e_all = float(md.potential_energy(model, state, None).numpy()[0])
    listed = {(i, int(j)) for i, (c, row) in enumerate(zip(nl.neighbor_count.numpy(), nl.neighbor_index.numpy())) for j in row[:c]}
    assert {(0, 1), (1, 0)} & listed and {(0, 2), (2, 0)} & listed
    assert e_list == pytest.approx(e_all, rel=1e-6 if precision == "float32" else 1e-12)


def test_neighbor_list_overflow_resizes_and_logs(caplog, device):
    model, state = lj_fluid(256, density=0.8, device=device)
    nl = md.NeighborList(model, capacity=2, cell_capacity=1)
    with caplog.at_level(logging.INFO, logger="simulator.md"):
        e_list = float(md.potential_energy(model, state, nl).numpy()[0])
    assert "growing capacity" in caplog.text and "cell capacity" in caplog.text
    assert nl.capacity > 2
    assert e_list == pytest.approx(float(md.potential_energy(model, state, None).numpy()[0]), rel=1e-12)


def test_temperature_kinetic_energy_and_rdf(device):
    model, state = lj_fluid(256, density=0.8, temperature=1.3, device=device)
    v = state.velocities.numpy()
    assert float(md.kinetic_energy(model, state).numpy()[0]) == pytest.approx(0.5 * np.sum(v * v), rel=1e-12)
    assert float(md.temperature(model, state).numpy()[0]) == pytest.approx(1.3, rel=1e-12)  # lj_fluid rescales to T

    # an ideal gas (uniform random points) has g(r) = 1
    rng = np.random.default_rng(0)
    n, box = 2000, 12.0
    builder = md.ParticleBuilder(dim=3, box=box)
    builder.add_particles(rng.uniform(0, box, (n, 3)))
    gas = builder.finalize(md.SoftSphere(sigma=0.01), device=device)
    r, g = md.radial_distribution(gas, gas.state(), r_max=5.0, bins=10)
    assert r[0] == pytest.approx(0.25) and r.shape == g.shape == (10,)
    np.testing.assert_allclose(g[2:], 1.0, atol=0.06)

    # a liquid has an excluded core and its first peak near r = 1.1 sigma
    nl = md.NeighborList(model)
    liquid = md.rollout(model, state, md.LangevinBAOAB(1.0, seed=0, neighbors=nl), num_steps=300, record=False).final
    r, g = md.radial_distribution(model, liquid, bins=60)
    assert np.all(g[r < 0.8] == 0.0)
    assert 1.0 < r[np.argmax(g)] < 1.25 and g.max() > 2.0


def test_bad_input_raises_named_errors(device):
    # overlapping particles: infinite LJ energy
    builder = md.ParticleBuilder(dim=3, box=6.0)
    builder.add_particles([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0], [1.0, 1.0, 1.0]])
    model = builder.finalize(md.LennardJones(cutoff=2.5), device=device)
    with pytest.raises(ValueError, match="particles 0 and 2 overlap"):
        md.rollout(model, model.state(), md.VelocityVerlet(neighbors=md.NeighborList(model)), num_steps=1)
    # cutoff larger than half the box
    builder = md.ParticleBuilder(dim=3, box=4.0)
    builder.add_particles([[1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="cutoff=2.5 is larger than half the periodic box"):
        builder.finalize(md.LennardJones(cutoff=2.5), device=device)
    # ... also when the box shrinks later
    builder = md.ParticleBuilder(dim=3, box=6.0)
    builder.add_particles([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    model = builder.finalize(md.LennardJones(cutoff=2.5), device=device)
    model.box.assign(np.array([[4.0, 4.0, 4.0]]))
    with pytest.raises(ValueError, match="cutoff=2.5"):
        md.potential_energy(model, model.state(), md.NeighborList(model))
    # non-positive diameters, masses, box
    builder = md.ParticleBuilder(dim=2, box=5.0)
    with pytest.raises(ValueError, match="diameter must be > 0"):
        builder.add_particles([[0.0, 0.0]], diameter=0.0)
    with pytest.raises(ValueError, match="mass must be > 0"):
        builder.add_particles([[0.0, 0.0]], mass=-1.0)
    with pytest.raises(ValueError, match="box must be > 0"):
        md.ParticleBuilder(dim=2, box=[5.0, -1.0])
    # NaN positions: at the builder, in a given state, and in the neighbor list
    with pytest.raises(ValueError, match="positions must be finite"):
        builder.add_particles([[math.nan, 0.0]])
    builder.add_particles([[1.0, 1.0], [2.0, 2.0]])
    model = builder.finalize(md.SoftSphere(), device=device)
    with pytest.raises(ValueError, match="positions must be finite; particle 1"):
        model.state(positions=[[1.0, 1.0], [math.nan, 2.0]])
    state = model.state()
    state.positions.assign(np.array([[1.0, 1.0, 0.0], [np.nan, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="positions must be finite; particle 1"):
        md.potential_energy(model, state, md.NeighborList(model))
    with pytest.raises(ValueError, match="alpha must be > 1"):
        md.SoftSphere(alpha=1.0)
    with pytest.raises(ValueError, match="sigma must be symmetric"):
        md.LennardJones(sigma=[[1.0, 1.2], [1.1, 1.0]]).matrices(2)


def test_each_integrator_owns_its_per_step_arrays(device):
    """Per-integrator state lives in ``ParticleState.integrator``, made by the integrator: a
    Verlet state holds only the half-step velocities, a FIRE state FIRE's time step, mixing factor
    and sums, and a plain model state none; stepping with another integrator's state raises."""
    model, state = lj_fluid(108, density=0.8, device=device)
    verlet, fire = md.VelocityVerlet(), md.FIRE()
    assert state.integrator is None and set(state.arrays()) == {"positions", "velocities", "forces"}
    verlet_state, fire_state = verlet.prepare(model, state), fire.prepare(model, state)
    assert set(verlet_state.arrays()) == {"positions", "velocities", "forces", "half_velocities"}
    assert set(fire_state.arrays()) >= {"fire_dt", "fire_alpha", "fire_count", "fire_sums"} and "fire_dt" not in verlet_state.arrays()
    assert fire_state.integrator.fire_dt.numpy()[0] == pytest.approx(fire.dt_start)
    with pytest.raises(ValueError, match="state_out must come from this integrator's state"):
        fire.step(model, fire_state, verlet.state(model), None, 0.0)
    with pytest.raises(ValueError, match="state_in must come from this integrator's state"):
        verlet.step(model, state, verlet.state(model), None, 0.005)


def test_divergence_is_reported(device):
    model, state = lj_fluid(108, density=0.8, device=device)
    for neighbors in (md.NeighborList(model), None):
        with pytest.raises(SimulationDivergedError, match="non-finite at step"):
            md.rollout(model, state, md.VelocityVerlet(neighbors=neighbors), num_steps=50, dt=0.5, record=False)


def test_divergence_step_is_the_same_on_every_rollout_path(device):
    """Stepped from Python, replayed as graphs, and checkpointed (whose forward replays graphs
    segment by segment) name the same first non-finite step."""
    model, state = lj_fluid(108, density=0.8, device=device)
    for use_list in (True, False):  # with a list, the device list check hands a bad segment to Python
        steps = {}
        for name, options in (("python", {"record": True}), ("replayed", {"record": False}), ("checkpointed", {"checkpoint_every": 32})):
            integrator = md.VelocityVerlet(neighbors=md.NeighborList(model) if use_list else None)
            with pytest.raises(SimulationDivergedError) as info:
                md.rollout(model, state, integrator, num_steps=120, dt=0.045, **options)
            steps[name] = info.value.step
        assert steps["python"] > 32  # diverges after the first segment, so the offsets matter
        assert steps["replayed"] == steps["python"] and steps["checkpointed"] == steps["python"], steps


@pytest.mark.parametrize("diameter", [0.1, 0.6, 0.85])
def test_packing_box_side_derivative_matches_central_difference(diameter):
    """The packing demo's chain rule dE/dD includes dE/dL * dL/dD; dL/dD against central differences."""
    h = 1e-6
    fd = (packing_box_side(128, diameter + h) - packing_box_side(128, diameter - h)) / (2 * h)
    assert packing_box_side_derivative(128, diameter) == pytest.approx(fd, rel=1e-7)
