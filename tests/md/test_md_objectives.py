"""MD rollout objectives: every estimator runs on them; analytic gradients agree with central
differences of the objective (float64), with the direct box formulation of the packing problem,
and with ES on a smooth short case; bad input raises clear errors."""

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import md
from simulator.gradients import evaluate
from simulator.scenes.md_systems import bidisperse_packing, packing_box_side_derivative

DEVICE = "cpu"
ESTIMATORS = {
    "analytic": {},
    "truncated": {"window": 10**6},
    "es": {"sigma": 0.02, "population": 8},
    "hybrid": {"samples": 2, "sigma": 0.02, "population": 8},
    "auto": {"samples": 2, "sigma": 0.02, "population": 8},
}


def packing(n=16, steps=8, **options):
    return sim.PackingObjective(n, num_steps=steps, device=DEVICE, **options)


def lj(steps=10, **options):
    return sim.LJFluidObjective(36, dim=2, num_steps=steps, device=DEVICE, **options)


def central_difference(objective, theta, seed, h=1e-6):
    """Central differences of the objective, one row per call (so every row starts alike)."""
    out = np.empty(theta.shape[0])
    for k in range(theta.shape[0]):
        e = np.zeros_like(theta)
        e[k] = h
        out[k] = (evaluate(objective, [theta + e], seed=seed)[0] - evaluate(objective, [theta - e], seed=seed)[0]) / (2 * h)
    return out


@pytest.mark.parametrize("diameter", [0.6, 1.1])  # 1.1: the "small" disks are the larger ones
def test_packing_gradient_matches_central_differences(diameter):
    objective = packing()
    for seed in (0, 1):
        result = sim.grad(objective, [diameter], seed=seed)
        fd = central_difference(objective, np.array([diameter]), seed)
        assert abs(result.gradient[0]) > 1e-3
        assert result.gradient[0] == pytest.approx(fd[0], rel=1e-6, abs=1e-9)
        assert result.value == pytest.approx(evaluate(objective, [[diameter]], seed=seed)[0], rel=1e-12)


def direct_packing(diameter, steps, seed, n):
    """The packing problem written directly: a box of side L(D), positions = fractional * L recorded on
    the tape, dE/dD = sum of the small disks' diameter gradients + dE/dL dL/dD."""
    model, _ = bidisperse_packing(n, small_diameter=diameter, device=DEVICE, requires_grad=True)
    fractional = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 2))
    integrator = md.FIRE(neighbors=md.NeighborList(model))
    state = model.state()
    tape = wp.Tape()
    with tape:
        wp.copy(state.positions, md.positions_from_fractional(model, fractional))
        final = md.rollout(model, state, integrator, num_steps=steps).final
        energy = md.potential_energy(model, final, integrator.neighbors)
    tape.backward(loss=energy)
    d_box = float(np.sum(model.box.grad.numpy()[0, :2]))
    gradient = model.particle_diameter.grad.numpy()[n // 2 :].sum() + d_box * packing_box_side_derivative(n, diameter)
    return float(energy.numpy()[0]), float(gradient)


@pytest.mark.parametrize("steps", [8, 40])  # 40: the unrecorded evaluation replays captured graphs
def test_packing_rescaled_units_equal_the_direct_box_formulation(steps):
    objective = packing(n=32, steps=steps)
    for diameter, seed in ((0.5, 3), (0.8, 4)):
        energy, gradient = direct_packing(diameter, steps, seed, 32)
        result = sim.grad(objective, [diameter], seed=seed)
        assert result.value == pytest.approx(energy, rel=1e-9)
        assert result.gradient[0] == pytest.approx(gradient, rel=1e-7)
        assert evaluate(objective, [[diameter]], seed=seed)[0] == pytest.approx(energy, rel=1e-9)


def test_per_particle_diameters_match_directional_differences_and_the_small_diameter():
    n = 16
    per_particle = packing(n=n, per_particle=True, small_diameter=0.7)
    theta = per_particle.initial_parameters()
    assert theta.shape == (n,) and per_particle.num_parameters == n
    result = sim.grad(per_particle, theta, seed=2)
    direction = np.random.default_rng(0).standard_normal(n)
    h = 1e-6
    fd = (evaluate(per_particle, [theta + h * direction], seed=2)[0] - evaluate(per_particle, [theta - h * direction], seed=2)[0]) / (2 * h)
    assert result.gradient @ direction == pytest.approx(fd, rel=1e-6)
    # moving every small disk together is moving D
    scalar = sim.grad(packing(n=n, small_diameter=0.7), [0.7], seed=2)
    assert result.gradient[n // 2 :].sum() == pytest.approx(scalar.gradient[0], rel=1e-10)
    assert result.value == pytest.approx(scalar.value, rel=1e-12)


def test_a_disk_that_outgrows_the_cutoff_gets_its_own_model():
    objective = packing(n=32, per_particle=True, small_diameter=0.7)
    theta = objective.initial_parameters()
    big = theta.copy()
    big[0] = 1.5  # scaled by s = L0 / L ~ 0.975: beyond the reference model's cutoff of 1
    assert objective.system(theta)[0].cutoff == 1.0 and objective.system(big)[0].cutoff == 1.5
    result = sim.grad(objective, big, seed=0)
    direction = np.random.default_rng(1).standard_normal(theta.shape[0])
    h = 1e-6
    fd = (evaluate(objective, [big + h * direction], seed=0)[0] - evaluate(objective, [big - h * direction], seed=0)[0]) / (2 * h)
    assert result.gradient @ direction == pytest.approx(fd, rel=1e-6)


def test_checkpointed_gradient_equals_the_full_tape():
    objective = packing(n=32, steps=40)
    full = sim.grad(objective, [0.6], seed=5)
    checkpointed = sim.grad(objective, [0.6], seed=5, checkpoint_every=8)
    assert checkpointed.gradient[0] == pytest.approx(full.gradient[0], rel=1e-12)
    assert checkpointed.diagnostics["peak_states"] < full.diagnostics["peak_states"]
    again = sim.grad(objective, [0.6], seed=5, checkpoint_every=8)  # model gradients do not accumulate across calls
    assert again.gradient[0] == checkpointed.gradient[0]


@pytest.mark.parametrize("thermostat", [None, 1.0])  # velocity Verlet, Langevin BAOAB
def test_lj_gradient_matches_central_differences(thermostat):
    objective = lj(thermostat=thermostat)
    theta = np.array([1.1, 0.95])
    result = sim.grad(objective, theta, seed=3)
    fd = central_difference(objective, theta, 3)
    assert np.all(np.abs(result.gradient) > 1e-2)
    np.testing.assert_allclose(result.gradient, fd, rtol=1e-6)


def test_user_loss_and_models_built_once():
    """A general MDObjective: theta = epsilon, loss = the final kinetic energy (BAOAB); the model and
    integrator are built once and reused by every call."""
    from simulator.scenes.md_systems import lj_fluid

    built = []

    def model_factory(row):
        model, _ = lj_fluid(36, dim=2, device=DEVICE, requires_grad=True)
        built.append(model)
        return model

    def initial_state(model, rng):
        return model.state(velocities=rng.normal(size=(model.particle_count, model.dim)))

    objective = sim.MDObjective(model_factory, lambda m: md.LangevinBAOAB(1.0, 2.0, neighbors=md.NeighborList(m)),
                                md.PairParameters(("epsilon",), (1.0,)), lambda m, s, nl: md.kinetic_energy(m, s),
                                initial_state=initial_state, num_steps=12)
    theta = np.array([1.3])
    result = sim.grad(objective, theta, seed=1)
    np.testing.assert_allclose(result.gradient, central_difference(objective, theta, 1), rtol=1e-6)
    sim.grad(objective, theta, estimator="es", sigma=0.05, population=4)
    assert len(built) == 1


def test_es_agrees_with_analytic_on_a_smooth_short_case():
    objective = lj(steps=10, seeds="shared")
    theta = np.array([1.0, 1.0])
    analytic = sim.grad(objective, theta, seed=0)
    es = sim.grad(objective, theta, estimator="es", sigma=1e-3, population=64, seed=0)
    error = np.abs(es.gradient - analytic.gradient)
    assert np.all(error < 4 * np.sqrt(es.variance)), (es.gradient, analytic.gradient, np.sqrt(es.variance))
    # the test can fail: the negated gradient is rejected
    assert not np.all(np.abs(es.gradient + analytic.gradient) < 4 * np.sqrt(es.variance))


@pytest.mark.parametrize("make", [packing, lj], ids=["packing", "lj"])
def test_every_estimator_runs(make):
    objective = make(steps=40)
    theta = objective.initial_parameters()
    results = {name: sim.grad(objective, theta, estimator=name, seed=1, **options) for name, options in ESTIMATORS.items()}
    for name, result in results.items():
        assert result.gradient.shape == theta.shape and np.all(np.isfinite(result.gradient)), name
        assert result.diagnostics["estimator"] == name
    assert np.array_equal(results["truncated"].gradient, results["analytic"].gradient)


def test_seed_modes():
    per_row, shared = packing(), packing(seeds="shared")
    rows = np.full((3, 1), 0.6)
    a, b = evaluate(per_row, rows, seed=7), evaluate(shared, rows, seed=7)
    assert len(set(a.tolist())) == 3 and len(set(b.tolist())) == 1
    assert a[0] == b[0] == evaluate(per_row, rows[:1], seed=7)[0]
    assert np.array_equal(evaluate(per_row, rows, seed=7), a)  # reusing the cached model changes nothing


def test_bad_input_raises_clear_errors():
    objective = packing()
    with pytest.raises(ValueError, match="clip=1.0"):
        sim.grad(objective, [0.6], estimator="truncated", window=100, clip=1.0)
    with pytest.raises(ValueError, match="small_diameter must be > 0, got -0.1"):
        sim.grad(objective, [-0.1])
    with pytest.raises(ValueError, match="small_diameter must be > 0"):
        sim.grad(objective, [0.05], estimator="es", sigma=1.0, population=8)  # a perturbed row below zero
    with pytest.raises(ValueError, match="theta must have 1 entries"):
        sim.grad(objective, [0.6, 0.7])
    with pytest.raises(ValueError, match="seeds must be one of"):
        packing(seeds="random")
    with pytest.raises(ValueError, match="num_steps must be a positive integer, got 0"):
        packing(steps=0)
    with pytest.raises(ValueError, match="names must be some of"):
        md.PairParameters(("mass",), (1.0,))
    with pytest.raises(ValueError, match="sigma must be > 0, got -1.0"):
        sim.grad(lj(), [1.0, -1.0])

    def without_gradients(row):
        builder = md.ParticleBuilder(dim=2, box=5.0)
        builder.add_particles([[1.0, 1.0], [2.0, 2.0]])
        return builder.finalize(md.SoftSphere(), device=DEVICE)

    with pytest.raises(ValueError, match="requires_grad=True"):
        sim.MDObjective(without_gradients, md.FIRE, md.PairParameters(("epsilon",), (1.0,)), md.potential_energy,
                        initial_state=lambda m, r: m.state(), num_steps=2)


def test_truncated_differentiates_the_last_window_only():
    """Velocity Verlet, 20 steps, windows of 6: the last window is steps 18-20. Its gradient is the
    gradient of a 2-step objective that starts from the state reached after 18 steps at the
    reference theta (frozen), checked here by central differences of that objective."""
    from simulator.scenes.md_systems import lj_fluid, maxwell_boltzmann_velocities

    objective = lj(steps=20, seeds="shared")
    theta = np.array([1.05, 0.97])
    truncated = sim.grad(objective, theta, estimator="truncated", window=6, seed=4)
    analytic = sim.grad(objective, theta, seed=4)
    assert truncated.value == pytest.approx(analytic.value, rel=1e-10)
    assert truncated.diagnostics["peak_states"] == 3
    assert np.linalg.norm(truncated.gradient - analytic.gradient) > 1e-3 * np.linalg.norm(analytic.gradient)

    def model_factory(row):
        return lj_fluid(36, dim=2, device=DEVICE, requires_grad=True)[0]

    parameters = md.PairParameters(("epsilon", "sigma"), theta)

    def frozen_start(model, rng):  # 18 steps at the reference theta, whatever the row
        kept = {name: getattr(model, field).numpy().copy() for name, field in parameters.FIELDS.items()}
        parameters.apply(model, theta)
        velocities = maxwell_boltzmann_velocities(model.particle_count, model.dim, 1.0, rng)
        state = model.state(positions=model.initial_positions[:, :2], velocities=velocities)
        start = md.rollout(model, state, md.VelocityVerlet(neighbors=md.NeighborList(model)), num_steps=18, record=False).final
        for name, field in parameters.FIELDS.items():
            getattr(model, field).assign(kept[name])
        return start

    last_window = sim.MDObjective(model_factory, lambda m: md.VelocityVerlet(neighbors=md.NeighborList(m)), parameters,
                                  lambda m, s, nl: md.potential_energy(m, s, nl), initial_state=frozen_start, num_steps=2)
    np.testing.assert_allclose(truncated.gradient, central_difference(last_window, theta, 4), rtol=1e-6)


def test_truncating_fire_raises():
    with pytest.raises(ValueError, match="window=3: a FIRE rollout cannot be truncated"):
        sim.grad(packing(), [0.6], estimator="truncated", window=3)
