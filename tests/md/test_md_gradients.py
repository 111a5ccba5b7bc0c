"""Adjoints (wp.Tape) against central finite differences in float64.

Every differentiable MD kernel is covered: the pair force/energy kernel's hand-written adjoint
(w.r.t. positions, epsilon, sigma, alpha, diameters and box, seeded on forces, energy and
virial), the integrator kernels (velocity Verlet, Langevin BAOAB, FIRE) through short rollouts,
and the checkpointed rollout. Central differences:
g_k ~ (L(p + h e_k) - L(p - h e_k)) / 2h with h = 1e-6.
"""

import dataclasses

import numpy as np
import pytest
import warp as wp

from simulator import md
from simulator.errors import GradientNotFiniteError
from simulator.scenes.md_systems import bidisperse_packing, lattice_positions


H = 1e-6


def lj_system(*, n=64, density=0.3, dim=3, seed=0, potential=None, periodic=True, jitter=0.15, types=1, device):
    box = (n / density) ** (1.0 / dim)
    rng = np.random.default_rng(seed)
    pos = lattice_positions(n, box, dim) + rng.uniform(-jitter, jitter, (n, dim))
    vel = rng.normal(size=(n, dim))
    builder = md.ParticleBuilder(dim=dim, box=box if periodic else None, periodic=periodic)
    builder.add_particles(pos, velocities=vel, type=rng.integers(0, types, n), diameter=rng.uniform(0.9, 1.1, n))
    potential = potential or md.LennardJones(cutoff=2.5)
    return builder.finalize(potential, device=device, precision="float64", requires_grad=True)


def check_gradient(loss_fn, array, indices, *, rtol=1e-5, atol_scale=1e-7):
    """Compare the tape gradient of ``loss_fn()`` w.r.t. ``array`` at ``indices`` with central FD."""
    tape = wp.Tape()
    with tape:
        loss = loss_fn()
    tape.backward(loss=loss)
    grad = array.grad.numpy().copy()
    tape.zero()
    assert np.all(np.isfinite(grad))
    values = array.numpy().copy()
    fd = []
    for idx in indices:
        for sign in (1, -1):
            v = values.copy()
            v[idx] += sign * H
            array.assign(v)
            fd.append(float(loss_fn().numpy()[0]))
    array.assign(values)
    fd = (np.array(fd[0::2]) - np.array(fd[1::2])) / (2 * H)
    got = np.array([grad[idx] for idx in indices])
    scale = max(np.abs(fd).max(), 1e-12)
    assert np.abs(fd).max() > 1e-6, "the loss does not depend on these entries: the check would be vacuous"
    np.testing.assert_allclose(got, fd, rtol=rtol, atol=atol_scale * scale + 1e-9)
    return got


@wp.kernel
def _weighted_pair_sums(forces: wp.array(dtype=wp.vec3d), energy: wp.array(dtype=wp.float64), virial: wp.array(dtype=wp.float64),
                        weights: wp.array(dtype=wp.vec3d), out: wp.array(dtype=wp.float64)):
    i = wp.tid()
    wp.atomic_add(out, 0, wp.dot(weights[i], forces[i]) + wp.float64(0.7) * energy[i] - wp.float64(0.3) * virial[i])


@pytest.mark.parametrize("potential", [
    md.LennardJones(epsilon=[[1.0, 0.8], [0.8, 1.2]], sigma=[[1.0, 1.1], [1.1, 0.9]], cutoff=2.5),
    md.Morse(epsilon=[[5.0, 4.0], [4.0, 3.0]], sigma=[[1.0, 1.1], [1.1, 1.2]], alpha=[[4.0, 5.0], [5.0, 3.0]], cutoff=2.5),
    md.SoftSphere(epsilon=[[1.0, 2.0], [2.0, 1.5]], sigma=[[2.0, 2.2], [2.2, 2.1]], alpha=[[2.0, 2.5], [2.5, 3.0]]),
    md.SoftSphere(alpha=2.5, sigma_from_diameters=True),
    md.LennardJones(epsilon=0.9, cutoff=2.5, sigma_from_diameters=True),
], ids=["lj", "morse", "soft_sphere", "soft_sphere_diameters", "lj_diameters"])
@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "free"])
@pytest.mark.parametrize("types", [1, 2], ids=["one_type", "two_types"])
def test_pair_kernel_adjoint_through_forces_energy_and_virial(potential, periodic, types, device):
    """The hand-written pair adjoint, seeded on all three outputs at once
    (L = sum_i w_i . F_i + 0.7 sum E_i - 0.3 sum W_i), w.r.t. every input it differentiates, in
    the kernels for one particle type and for several."""
    from_diameters = potential.sigma_from_diameters
    if types == 1:  # the same functional form with scalar parameters
        scalars = {k: float(np.asarray(getattr(potential, k)).flat[-1]) for k in ("epsilon", "sigma", "alpha")}
        potential = dataclasses.replace(potential, **scalars)
    dense = from_diameters and potential.name == "soft_sphere"  # contacts need a dense packing
    model = lj_system(potential=potential, types=types, density=1.2 if dense else 0.3, periodic=periodic, device=device)
    assert model.pair_epsilon.shape == (types, types)
    state = model.state()
    nl = md.NeighborList(model)
    n = model.particle_count
    weights = wp.array(np.random.default_rng(1).normal(size=(n, 3)), dtype=wp.vec3d, device=device)

    def loss():
        forces = wp.zeros(n, dtype=wp.vec3d, device=device, requires_grad=True)
        energy = wp.zeros(n, dtype=wp.float64, device=device, requires_grad=True)
        virial = wp.zeros(n, dtype=wp.float64, device=device, requires_grad=True)
        md.compute_forces(model, state.positions, forces, nl, energy_out=energy, virial_out=virial)
        out = wp.zeros(1, dtype=wp.float64, device=device, requires_grad=True)
        wp.launch(_weighted_pair_sums, dim=n, inputs=[forces, energy, virial, weights], outputs=[out], device=device)
        return out

    pairs = [(0, 0), (0, 1), (1, 1)] if types == 2 else [(0, 0)]
    check_gradient(loss, state.positions, [(0, 0), (5, 1), (17, 2), (30, 0)])
    check_gradient(loss, model.pair_epsilon, pairs)
    if from_diameters:
        check_gradient(loss, model.particle_diameter, [0, 7, 19, 40])
    else:
        check_gradient(loss, model.pair_sigma, pairs)
    if potential.name != "lennard_jones":
        check_gradient(loss, model.pair_alpha, pairs if not from_diameters else [(0, 0)])
    if periodic:
        check_gradient(loss, model.box, [(0, 0), (0, 1), (0, 2)])


def test_energy_gradient_positions_is_minus_force(device):
    """dE/dx from the adjoint equals -F and central differences (LJ, periodic, neighbor list)."""
    model = lj_system(device=device)
    state = model.state()
    nl = md.NeighborList(model)
    grad = check_gradient(lambda: md.potential_energy(model, state, nl), state.positions, [(0, 0), (3, 1), (17, 2)])
    forces = wp.zeros(model.particle_count, dtype=wp.vec3d)
    md.compute_forces(model, state.positions, forces, nl)
    f = forces.numpy()
    np.testing.assert_allclose(grad, -np.array([f[0, 0], f[3, 1], f[17, 2]]), rtol=1e-8)


@pytest.mark.parametrize("potential", [
    md.LennardJones(epsilon=[[1.0, 0.8], [0.8, 1.2]], sigma=[[1.0, 1.1], [1.1, 0.9]], cutoff=2.5),
    md.Morse(epsilon=[[5.0, 4.0], [4.0, 3.0]], sigma=[[1.0, 1.1], [1.1, 1.2]], alpha=[[4.0, 5.0], [5.0, 3.0]], cutoff=2.5),
    md.SoftSphere(epsilon=[[1.0, 2.0], [2.0, 1.5]], sigma=[[2.0, 2.2], [2.2, 2.1]], alpha=[[2.0, 2.5], [2.5, 3.0]]),
], ids=["lj", "morse", "soft_sphere"])
def test_energy_gradient_pair_parameters(potential, device):
    """dE/d(epsilon, sigma, alpha) per type pair (upper triangle) against central differences."""
    model = lj_system(potential=potential, types=2, density=0.5, device=device)
    state = model.state()
    nl = md.NeighborList(model)
    energy = lambda: md.potential_energy(model, state, nl)  # noqa: E731
    check_gradient(energy, model.pair_epsilon, [(0, 0), (0, 1), (1, 1)])
    check_gradient(energy, model.pair_sigma, [(0, 0), (0, 1), (1, 1)])
    if potential.name != "lennard_jones":
        check_gradient(energy, model.pair_alpha, [(0, 0), (0, 1), (1, 1)])


def test_energy_gradient_diameters_and_box_2d(device):
    """Polydisperse soft spheres (sigma_ij = (d_i + d_j)/2): dE/dd_i and dE/dL (fixed positions)."""
    model, state = bidisperse_packing(32, small_diameter=0.7, packing_fraction=0.9, seed=1, device=device, requires_grad=True)
    nl = md.NeighborList(model)
    energy = lambda: md.potential_energy(model, state, nl)  # noqa: E731
    check_gradient(energy, model.particle_diameter, [0, 5, 20, 31])
    check_gradient(energy, model.box, [(0, 0), (0, 1)])


def test_virial_pressure_is_minus_volume_derivative(device):
    """P = N kT/V - dU/dV at fixed fractional coordinates (a box derivative through
    ``positions_from_fractional``), compared with the virial pressure and with central differences."""
    model = lj_system(n=108, density=0.6, device=device)
    state = model.state()
    box0 = model.box_sides()
    fractional = state.positions.numpy() / model.box.numpy()[0]
    nl = md.NeighborList(model)

    def energy_at(scale):
        model.box.assign(np.array([np.append(box0 * scale, 1.0)[:3]]))
        s = model.state(positions=None)
        wp.copy(s.positions, md.positions_from_fractional(model, fractional[:, :3].astype(np.float64)[:, : model.dim]))
        return float(md.potential_energy(model, s, nl).numpy()[0])

    h = 1e-6
    v0 = float(np.prod(box0))
    du_dv = (energy_at(1 + h) - energy_at(1 - h)) / (v0 * ((1 + h) ** 3 - (1 - h) ** 3))
    model.box.assign(np.array([box0]))
    kin = float(md.kinetic_energy(model, state).numpy()[0])
    p_virial = float(md.pressure(model, state, nl).numpy()[0])
    p_thermo = 2.0 * kin / (3.0 * v0) - du_dv
    assert abs(du_dv) > 1e-3
    assert p_virial == pytest.approx(p_thermo, rel=1e-6)

    # the same derivative from the adjoint: dU/dL_a through positions = fractional * box
    tape = wp.Tape()
    with tape:
        s = model.state()
        wp.copy(s.positions, md.positions_from_fractional(model, fractional[:, : model.dim]))
        e = md.potential_energy(model, s, nl)
    tape.backward(loss=e)
    du_dl = model.box.grad.numpy()[0]
    # dU/dV for an isotropic scaling: sum_a L_a dU/dL_a = dim V dU/dV
    assert float(np.dot(du_dl, box0)) == pytest.approx(3 * v0 * du_dv, rel=1e-6)


def test_nve_rollout_gradients(device):
    """Gradient of the final potential energy after 30 velocity-Verlet steps (a neighbor list
    with a small skin, so it rebuilds during the recorded rollout) w.r.t. initial positions,
    velocities, epsilon, sigma and box."""
    model = lj_system(n=64, density=0.5, device=device)
    state = model.state()
    nl = md.NeighborList(model, skin=0.05)
    integrator = md.VelocityVerlet(neighbors=nl)

    def loss():
        traj = md.rollout(model, state, integrator, num_steps=30, dt=0.005)
        return md.potential_energy(model, traj.final, nl)

    before = nl.rebuild_count
    check_gradient(loss, state.positions, [(0, 0), (7, 2)], rtol=1e-4)
    assert nl.rebuild_count > before + 2
    check_gradient(loss, state.velocities, [(1, 1), (9, 0)], rtol=1e-4)
    check_gradient(loss, model.pair_epsilon, [(0, 0)], rtol=1e-4)
    check_gradient(loss, model.pair_sigma, [(0, 0)], rtol=1e-4)
    check_gradient(loss, model.box, [(0, 0), (0, 2)], rtol=1e-4)


def test_lj_force_gradient_wrt_sigma_is_finite_and_correct(device):
    """The force kernel's adjoint w.r.t. sigma (a second derivative of U) at a dense, strongly
    repulsive configuration: the gradient of the kinetic energy after 10 steps is finite and
    matches central differences (a known NaN elsewhere comes from pow(sigma/r, 6) adjoints)."""
    model = lj_system(n=128, density=0.95, jitter=0.05, device=device)
    state = model.state()
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model))

    def loss():
        traj = md.rollout(model, state, integrator, num_steps=10, dt=0.002)
        return md.kinetic_energy(model, traj.final)

    check_gradient(loss, model.pair_sigma, [(0, 0)], rtol=1e-5)


def test_langevin_rollout_gradient(device):
    """Gradient through 20 BAOAB steps with fixed (seeded) noise w.r.t. positions and epsilon."""
    model = lj_system(n=64, density=0.5, device=device)
    state = model.state()
    integrator = md.LangevinBAOAB(temperature=1.5, friction=2.0, seed=3, neighbors=md.NeighborList(model))

    def loss():
        traj = md.rollout(model, state, integrator, num_steps=20, dt=0.005)
        return md.potential_energy(model, traj.final, integrator.neighbors)

    check_gradient(loss, state.positions, [(2, 0), (11, 1)], rtol=1e-4)
    check_gradient(loss, model.pair_epsilon, [(0, 0)], rtol=1e-4)


def test_fire_rollout_gradient_wrt_diameters(device):
    """dE/dd_i of the energy after 15 FIRE steps of a 2D bidisperse packing (all randomness fixed)."""
    model, state = bidisperse_packing(32, small_diameter=0.7, packing_fraction=0.9, seed=2, device=device, requires_grad=True)
    integrator = md.FIRE(neighbors=md.NeighborList(model))

    def loss():
        traj = md.rollout(model, state, integrator, num_steps=15)
        return md.potential_energy(model, traj.final, integrator.neighbors)

    check_gradient(loss, model.particle_diameter, [0, 17], rtol=1e-4)
    check_gradient(loss, state.positions, [(3, 0), (30, 1)], rtol=1e-4)


@pytest.mark.parametrize("integrator_name", ["nve", "fire"])
def test_checkpointed_rollout_matches_full_record(integrator_name, device):
    """checkpoint_every=k re-simulates segments in the backward pass: the same gradients as a
    fully recorded rollout, for initial positions, velocities and a parameter."""
    model = lj_system(n=64, density=0.5, device=device)
    nl = md.NeighborList(model, skin=0.1)
    integrator = md.VelocityVerlet(neighbors=nl) if integrator_name == "nve" else md.FIRE(neighbors=nl)
    grads = []
    for every in (None, 7):
        state = model.state()
        tape = wp.Tape()
        with tape:
            traj = md.rollout(model, state, integrator, num_steps=23, dt=0.005, checkpoint_every=every)
            e = md.potential_energy(model, traj.final, nl)
        tape.backward(loss=e)
        grads.append((state.positions.grad.numpy().copy(), state.velocities.grad.numpy().copy(),
                       model.pair_sigma.grad.numpy().copy(), float(e.numpy()[0])))
        tape.zero()
    full, ckpt = grads
    assert ckpt[3] == pytest.approx(full[3], rel=1e-12)
    for a, b in zip(full[:3], ckpt[:3]):
        assert np.abs(a).max() > 0 or integrator_name == "fire"
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * max(np.abs(a).max(), 1e-30))


def test_unrecorded_rollout_inside_a_tape_is_refused(device):
    """record=False inside an active tape used to leave the steps off the tape, so dE/d(epsilon)
    came out silently wrong; it now raises, naming ``record`` and the two ways out. Outside a tape
    (and with checkpoint_every inside one) the rollout runs."""
    model = lj_system(n=64, density=0.5, device=device)
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model))
    tape = wp.Tape()
    with tape, pytest.raises(ValueError, match=r"record=False.*record=True.*checkpoint_every"):
        md.rollout(model, model.state(), integrator, num_steps=5, record=False)
    assert not tape.launches  # refused before anything was recorded
    with tape:
        md.rollout(model, model.state(), integrator, num_steps=5, record=False, checkpoint_every=2)
    md.rollout(model, model.state(), integrator, num_steps=5, record=False)


def test_replayed_checkpointed_fire_gradient_matches_finite_differences(device):
    """dE/dd_i and dE/dx after 20 FIRE steps, checkpointed every 6 steps: three windows replayed
    as one captured graph each (with list rebuilds), and a shorter window as its own graph."""
    model, state = bidisperse_packing(32, small_diameter=0.7, packing_fraction=0.9, seed=2, device=device, requires_grad=True)
    nl = md.NeighborList(model, skin=0.05)
    integrator = md.FIRE(neighbors=nl)

    def loss():
        traj = md.rollout(model, state, integrator, num_steps=20, checkpoint_every=6)
        return md.potential_energy(model, traj.final, integrator.neighbors)

    before = nl.rebuild_count
    check_gradient(loss, model.particle_diameter, [0, 17], rtol=1e-4)
    assert nl.rebuild_count > before + 3
    assert md.engine(model, integrator)._windows  # the backward replayed captured windows
    check_gradient(loss, state.positions, [(3, 0), (30, 1)], rtol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("power,count,dt", [(1.0, 10, 0.1), (1.0, 10, 0.39), (1.0, 2, 0.1), (-1.0, 10, 0.1), (0.0, 10, 0.1)],
                         ids=["accelerate", "dt_max", "wait", "stop", "zero_power"])
def test_fire_hand_written_adjoints_are_warps_generated_ones(precision, power, count, dt):
    """The hand-written adjoints of fire_drift, fire_kick and fire_mix (every branch of the time
    step and mixing factor) give bitwise the gradients of Warp's generated adjoints, and clear the
    adjoints of stored outputs as those do; and the kernels launched as one thread over a chunk of
    all particles (as on the CPU) give bitwise the outputs and adjoints of one thread per particle."""
    from simulator.kernels.md import md_kernels

    scalar = wp.float64 if precision == "float64" else wp.float32
    vec3 = wp.types.vector(3, scalar)
    k = md_kernels(scalar)
    n = 64
    rng = np.random.default_rng(0)

    def arr(values, dtype=scalar):
        return wp.array(np.asarray(values, dtype=np.float64), dtype=dtype, device="cpu", requires_grad=True)

    vecs = lambda lo=-1.0, hi=1.0: arr(rng.uniform(lo, hi, (n, 3)), vec3)  # noqa: E731
    mass, box = arr(rng.uniform(0.5, 1.5, n)), arr([[5.0, 5.5, 6.0]], vec3)
    fire_dt, alpha, fire_count = arr([dt]), arr([0.1]), wp.array([count], dtype=int, device="cpu")
    params = [scalar(0.4), 5, scalar(1.1), scalar(0.5), scalar(0.1), scalar(0.99), scalar(1e-6)]
    sums = arr([power, 2.0, 3.0])
    md_v, forces = vecs(), vecs()
    cases = [
        (k.fire_drift, k.fire_drift_adjoint, [mass, box, 1, fire_dt, vecs(-1.0, 7.0), vecs(), forces], [vecs(), vecs()]),
        (k.fire_kick, k.fire_kick_adjoint, [mass, fire_dt, vecs(), forces], [vecs(), arr(np.zeros(3))]),
        (k.fire_mix, k.fire_mix_adjoint, [*params, sums, fire_dt, alpha, fire_count, md_v, forces],
         [vecs(), arr([0.0]), arr([0.0]), wp.zeros(1, dtype=int, device="cpu")]),
    ]
    for kernel, adjoint, inputs, outputs in cases:
        floats = lambda arrays: [a for a in arrays if isinstance(a, wp.array) and a.dtype != wp.int32]  # noqa: E731
        seeds = [rng.normal(size=a.grad.numpy().shape) for a in floats(outputs)]
        results = []
        for mode in ("generated", "hand_written", "one_chunk"):
            threads, chunk = (1, n) if mode == "one_chunk" else (n, 1)
            for a in floats(inputs):
                a.grad.zero_()
            for a in outputs:  # fire_kick accumulates its sums
                a.zero_()
            for a, seed in zip(floats(outputs), seeds):
                a.grad.assign(seed)
            if mode == "generated":
                tape = wp.Tape()
                with tape:
                    wp.launch(kernel, dim=threads, inputs=[*inputs, chunk], outputs=outputs, device="cpu")
                tape.backward()
            else:
                wp.launch(kernel, dim=threads, inputs=[*inputs, chunk], outputs=outputs, device="cpu")
                wp.launch(adjoint, dim=threads, inputs=[*inputs, chunk, *(a.grad for a in floats(outputs))],
                          outputs=[a.grad for a in floats(inputs)], device="cpu")
            results.append([a.numpy().copy() for a in outputs] + [a.grad.numpy().copy() for a in (*floats(inputs), *floats(outputs))])
        assert any(np.abs(g).max() > 0 for g in results[0])
        for m, other in enumerate(results[1:]):
            for q, (a, b) in enumerate(zip(results[0], other)):
                np.testing.assert_array_equal(b, a, err_msg=f"{kernel.key} mode {m + 1} array {q}")


def test_md_integrators_are_solvers_the_engine_steps(device):
    """MDSolver binds an integrator to its model behind the solver protocol; the rollout engine
    steps it exactly as md.rollout does, and the recorded rollout's gradient is the same bits."""
    import simulator as sim

    model = lj_system(n=64, density=0.5, device=device)
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model))
    solver = md.MDSolver(model, integrator)
    assert isinstance(solver, sim.Solver) and solver.control() is None and solver.num_worlds == 1
    with pytest.raises(ValueError, match="dt must be > 0"):
        solver.check_dt(0.0)
    with pytest.raises(ValueError, match="dt must be > 0"):
        md.rollout(model, model.state(), integrator, num_steps=3, dt=-0.005)

    def energy_gradient(run):
        model.pair_epsilon.grad.zero_()
        tape = wp.Tape()
        with tape:
            final = run()
            energy = md.potential_energy(model, final, integrator.neighbors)
        tape.backward(loss=energy)
        return final.positions.numpy(), model.pair_epsilon.grad.numpy().copy()

    engine = sim.Engine(solver)
    via_md = energy_gradient(lambda: md.rollout(model, model.state(), integrator, num_steps=8, dt=0.005).final)
    via_engine = energy_gradient(lambda: engine.rollout(solver.prepare(model.state()), None, num_steps=8, dt=0.005).final)
    for a, b in zip(via_md, via_engine):
        np.testing.assert_array_equal(a, b)
    assert np.all(via_md[1] != 0.0)


def test_checkpointed_md_gradient_that_overflows_names_its_window(device):
    """The issue's case in small: a checkpointed MD gradient whose backward pass overflows (here
    the adjoint seeded near float64's largest value, so that the few percent it grows over the
    rollout overflow the model parameter's gradient) raises GradientNotFiniteError naming the window
    instead of returning inf; a seed a little smaller passes and stays finite."""
    model = lj_system(n=108, density=0.8, device=device)
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model, skin=0.3))

    def backward(seed_value):
        state = model.state()
        tape = wp.Tape()
        with tape:
            final = md.rollout(model, state, integrator, num_steps=120, dt=0.005, checkpoint_every=10).final.positions
        tape.backward(grads={final: wp.array(np.full(final.numpy().shape, seed_value), dtype=final.dtype, device=device)})
        gradient = state.positions.grad.numpy().copy()
        tape.zero()
        return gradient

    assert np.all(np.isfinite(backward(1e300)))
    with pytest.raises(GradientNotFiniteError, match=r"window of steps (\d+) to \d+ \(checkpoint_every=10; particle_mass") as info:
        backward(1.79e308)
    assert info.value.step % 10 == 0 and 0 <= info.value.step < 120
