"""Gradient estimators: exactness of truncation and checkpointing, statistics of ES and hybrid."""

import functools

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator.gradients import GradientNotFiniteError, RolloutObjective, reverse_sweep
from simulator.scenes import make


def free_sphere(num_worlds, *, device):
    """A 1 kg sphere in zero gravity: its final position is linear in the applied forces, so a
    squared-distance loss is exactly quadratic in theta (ES is then exactly unbiased)."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
    body = b.add_body(mass=1.0, inertia=(0.01, 0.01, 0.01))
    b.add_sphere(body, radius=0.1)
    return b.finalize(num_worlds=num_worlds, device=device, precision="float64", requires_grad=True)


def quadratic_objective(num_steps=5, *, device):
    return sim.ControlObjective(functools.partial(free_sphere, device=device), sim.OpenLoopForces([0]),
                                [sim.PositionLoss(0, (0.3, -0.2, 0.1))],
                                num_steps=num_steps, dt=0.05)


def collision_objective(num_steps=120, randomize=False, *, device):
    """Forces on sphere a, which hits sphere b (contact, friction); loss on both final positions."""
    def scene(num_worlds):
        return make("two_spheres", num_worlds=num_worlds, device=device, precision="float64", requires_grad=True,
                    contact=sim.ContactSettings(softness=2e-3))

    def initial_state(model, seed):
        state = model.state()
        if randomize:
            rng = np.random.default_rng(seed)
            v = state.body_v.numpy()
            v[:, 0, :2] += 0.1 * rng.standard_normal((model.num_worlds, 2))
            state.body_v.assign(v)
        return state

    return sim.ControlObjective(scene, sim.OpenLoopForces([0]),
                                [sim.PositionLoss(0, (0.0, 0.2, 0.0)), sim.PositionLoss(1, (0.6, 0.3, 0.0)), sim.EffortLoss(1e-3)],
                                num_steps=num_steps, dt=2.5e-3, initial_state=initial_state)


def test_truncated_with_full_window_equals_analytic(device):
    objective = collision_objective(device=device)
    theta = np.full(objective.num_parameters, 0.2)
    analytic = sim.grad(objective, theta, estimator="analytic")
    truncated = sim.grad(objective, theta, estimator="truncated", window=objective.num_steps)
    assert np.array_equal(analytic.gradient, truncated.gradient)
    assert np.linalg.norm(analytic.gradient) > 0


def test_truncation_really_cuts_the_gradient_between_windows(device):
    """Loss on the final state only: with windows of K steps, forces applied before the last
    window get exactly zero gradient, and those inside it get the full backprop gradient."""
    objective = sim.ControlObjective(lambda w: make("two_spheres", num_worlds=w, device=device, precision="float64",
                                                    requires_grad=True, contact=sim.ContactSettings(softness=2e-3)),
                                     sim.OpenLoopForces([0]), [sim.PositionLoss(1, (0.6, 0.3, 0.0))], num_steps=120, dt=2.5e-3)
    theta = np.full(objective.num_parameters, 0.2)
    full = sim.grad(objective, theta, estimator="analytic").gradient.reshape(120, 3)
    window = 25  # windows start at 0, 25, ..., 100: the last one holds steps 100..119
    cut = sim.grad(objective, theta, estimator="truncated", window=window).gradient.reshape(120, 3)
    assert np.all(cut[:100] == 0.0)
    assert np.any(full[:100] != 0.0)
    assert np.allclose(cut[100:], full[100:], rtol=1e-12, atol=0)


@pytest.mark.parametrize("every", [1, 7, 11, 120])
def test_checkpointed_backprop_is_bitwise_identical_to_the_full_tape(every, device):
    objective = collision_objective(device=device)
    theta = np.full(objective.num_parameters, 0.2)
    rows = theta[None, :]
    full = reverse_sweep(objective, rows)
    checkpointed = reverse_sweep(objective, rows, checkpoint_every=every)
    assert np.array_equal(full.gradients, checkpointed.gradients)
    assert np.array_equal(full.losses, checkpointed.losses)
    if every == 11:  # memory ~ T/k + k states instead of T
        assert checkpointed.peak_states < full.peak_states / 4


def test_es_is_unbiased_against_analytic_within_standard_error(device):
    """Antithetic ES on an exactly quadratic loss: E[g_ES] = grad L. The mean of 200 independent
    estimates must agree with the analytic gradient within 4 standard errors per coordinate."""
    objective = quadratic_objective(device=device)
    theta = np.linspace(-0.5, 0.5, objective.num_parameters)
    exact = sim.grad(objective, theta, estimator="analytic").gradient
    estimates = np.array([sim.grad(objective, theta, estimator="es", sigma=0.2, population=16, seed=s).gradient
                          for s in range(200)])
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - exact) < 4.0 * standard_error)
    assert np.linalg.norm(exact) > 10 * np.linalg.norm(standard_error)  # the test has power


def test_es_variance_scales_like_one_over_population(device):
    objective = quadratic_objective(device=device)
    theta = np.linspace(-0.5, 0.5, objective.num_parameters)
    spread = {}
    for population in (8, 32):
        results = [sim.grad(objective, theta, estimator="es", sigma=0.2, population=population, seed=s) for s in range(200)]
        empirical = np.array([r.gradient for r in results]).var(axis=0, ddof=1).sum()
        reported = np.mean([r.variance.sum() for r in results])
        assert reported == pytest.approx(empirical, rel=0.3)  # the estimator's own variance estimate is honest
        spread[population] = empirical
    assert 3.0 < spread[8] / spread[32] < 5.3  # expected 4


def test_hybrid_variance_is_no_larger_than_either_part(device):
    """Random initial velocities make both estimators noisy; over 40 seeds the hybrid's empirical
    variance is at most the smaller of analytic's and ES's (10% slack for sampling noise)."""
    objective = collision_objective(num_steps=60, randomize=True, device=device)
    theta = np.full(objective.num_parameters, 0.2)
    options = {"samples": 4, "sigma": 0.05, "population": 16}
    runs = {name: [] for name in ("hybrid", "analytic", "es")}
    for seed in range(40):
        result = sim.grad(objective, theta, estimator="hybrid", seed=seed, **options)
        runs["hybrid"].append(result.gradient)
        runs["analytic"].append(sim.grad(objective, theta, estimator="analytic", samples=4, seed=seed).gradient)
        runs["es"].append(sim.grad(objective, theta, estimator="es", sigma=0.05, population=16, seed=seed).gradient)
    variance = {name: np.array(v).var(axis=0, ddof=1).sum() for name, v in runs.items()}
    assert variance["hybrid"] <= 1.1 * min(variance["analytic"], variance["es"])
    assert variance["analytic"] > 0 and variance["es"] > 0


def test_auto_picks_analytic_on_a_smooth_problem_and_logs_it(caplog, device):
    objective = quadratic_objective(num_steps=20, device=device)
    theta = np.zeros(objective.num_parameters)
    with caplog.at_level("INFO", logger="simulator.gradients"):
        result = sim.grad(objective, theta, estimator="auto")
    assert result.diagnostics["choice"] == "analytic"
    assert "auto estimator chose analytic" in caplog.text
    exact = sim.grad(objective, theta, estimator="analytic").gradient
    assert np.array_equal(result.gradient, exact)


class SqrtChain(RolloutObjective):
    """x_{t+1} = x_t - theta, except x_4 = sqrt(x_3). From x_0 = 3 and theta = 1, x_3 = 0: the
    forward pass stays finite (sqrt(0) = 0) but d x_4 / d x_3 is infinite, so the adjoint of the
    state entering step 3 is the first non-finite one in the backward pass."""

    def __init__(self, device, *, absolute=False):
        self.num_parameters, self.num_steps, self.device = 1, 6, device
        self.precision = sim.get_precision("float64")
        self.absolute = int(absolute)  # x_4 = sqrt(|x_3|): the forward stays finite for every theta

        @wp.kernel
        def sqrt_chain_step(x: wp.array(dtype=wp.float64), theta: wp.array2d(dtype=wp.float64), root: int, absolute: int,
                            y: wp.array(dtype=wp.float64)):
            w = wp.tid()
            if root == 1:
                if absolute == 1:
                    y[w] = wp.sqrt(wp.abs(x[w]))
                else:
                    y[w] = wp.sqrt(x[w])
            else:
                y[w] = x[w] - theta[w, 0]

        @wp.kernel
        def loss_kernel(x: wp.array(dtype=wp.float64), loss: wp.array(dtype=wp.float64)):
            w = wp.tid()
            wp.atomic_add(loss, w, x[w])

        self.step_kernel, self.loss_kernel = sqrt_chain_step, loss_kernel

    def _state(self, values):
        return type("ScalarState", (), {"x": values})()

    def initial_state(self, num_worlds, seed):
        return self._state(wp.array(np.full(num_worlds, 3.0), dtype=wp.float64, device=self.device, requires_grad=True))

    def advance(self, t, state, theta):
        y = wp.empty_like(state.x, requires_grad=True)
        wp.launch(self.step_kernel, dim=state.x.shape[0], inputs=[state.x, theta, int(t == 3), self.absolute], outputs=[y],
                  device=self.device)
        return self._state(y)

    def add_loss(self, t, state, theta, loss):
        if t == self.num_steps - 1:
            wp.launch(self.loss_kernel, dim=loss.shape[0], inputs=[state.x], outputs=[loss], device=self.device)

    def state_arrays(self, state):
        return {"x": state.x}


@pytest.mark.parametrize("checkpoint_every", [None, 4])
def test_non_finite_gradient_names_the_step(checkpoint_every, device):
    objective = SqrtChain(device)
    assert sim.gradients.evaluate(objective, np.ones((1, 1)))[0] == -2.0  # forward is finite
    with pytest.raises(GradientNotFiniteError, match="non-finite in the backward pass at step 3") as info:
        sim.grad(objective, np.array([1.0]), estimator="analytic", checkpoint_every=checkpoint_every)
    assert info.value.step == 3


def test_inverse_variance_combine_known_answers():
    """Finite parts are weighted by inverse variance; a non-finite part gets weight 0 and the
    other is returned as it is (not 0 * nan); both variances zero weight equally; two
    non-finite parts are an error."""
    g, v = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])
    nan, inf = np.full(3, np.nan), np.full(3, np.inf)
    blocks = [slice(0, 2), slice(2, 3)]
    gradient, variance, weights = sim.gradients.inverse_variance_combine(nan, inf, g, v, blocks)
    assert np.array_equal(gradient, g) and np.array_equal(variance, v) and weights == [0.0, 0.0]
    gradient, variance, weights = sim.gradients.inverse_variance_combine(g, v, nan, v, blocks)
    assert np.array_equal(gradient, g) and np.array_equal(variance, v) and weights == [1.0, 1.0]
    zero = np.zeros(3)
    gradient, variance, weights = sim.gradients.inverse_variance_combine(g, zero, -3.0 * g, zero, blocks)
    assert np.array_equal(gradient, -g) and np.array_equal(variance, zero) and weights == [0.5, 0.5]
    gradient, _, weights = sim.gradients.inverse_variance_combine(g, 3.0 * v, zero, v, blocks)
    np.testing.assert_allclose(gradient, 0.25 * g, rtol=1e-15)  # w = v_b / (v_a + v_b) = 1/4
    with pytest.raises(ValueError, match=r"g_a and g_b are both non-finite in theta\[0:2\]"):
        sim.gradients.inverse_variance_combine(nan, v, nan, v, blocks)


def test_hybrid_with_a_non_finite_analytic_gradient_is_the_es_gradient(device):
    """sqrt(|x_3|) at x_3 = 0: the analytic gradient is infinite but every perturbed rollout is
    finite, so hybrid (and auto) must return the ES gradient itself, not 0 * nan = nan. Every
    antithetic pair has the same sqrt term, so ES estimates the smoothed gradient -2 exactly
    up to its sampling noise."""
    objective = SqrtChain(device, absolute=True)
    options = {"sigma": 0.1, "population": 64}
    with pytest.raises(GradientNotFiniteError):
        sim.grad(objective, np.array([1.0]), estimator="analytic")
    es = sim.grad(objective, np.array([1.0]), estimator="es", **options)
    hybrid = sim.grad(objective, np.array([1.0]), estimator="hybrid", **options)
    assert np.array_equal(hybrid.gradient, es.gradient) and np.array_equal(hybrid.variance, es.variance)
    assert hybrid.diagnostics["analytic_weight"] == [0.0]
    assert abs(es.gradient[0] + 2.0) < 5.0 * np.sqrt(es.variance[0])
    auto = sim.grad(objective, np.array([1.0]), estimator="auto", **options)
    assert auto.diagnostics["choice"] == "es" and np.array_equal(auto.gradient, es.gradient)


def _estimate(gradient, variance, **diagnostics):
    return sim.gradients.GradientResult(value=0.0, gradient=np.asarray(gradient, dtype=float),
                                        variance=np.asarray(variance, dtype=float), diagnostics=diagnostics)


class _FixedParts(sim.gradients.HybridEstimator):
    """A hybrid estimator whose two parts are given (to test the combination on its own)."""

    def __init__(self, first, zeroth):
        super().__init__()
        self.parts = first, zeroth

    def both(self, objective, theta, seed):
        return self.parts


def test_auto_choice_with_exact_zero_variances_and_non_finite_parts():
    auto = sim.gradients.AutoEstimator()
    eps32 = float(np.finfo(np.float32).eps)
    zero = np.zeros(50)
    # acrobot-like: deterministic analytic gradient at rounding level, ES exactly 0 (symmetric
    # losses), both variances 0: not a disagreement, equal weights
    es = _estimate(zero, zero, resolution=eps32 * 40.0 / 0.2)
    choice, reason = auto.choose(_estimate(np.full(50, 5e-8), zero), es)
    assert choice == "hybrid" and "exactly zero" in reason
    # a kink (|theta| at 0): analytic 1, ES 0, both deterministic: a real disagreement
    choice, reason = auto.choose(_estimate(np.ones(50), zero), es)
    assert choice == "es" and "disagree" in reason
    nan, inf = np.full(50, np.nan), np.full(50, np.inf)
    assert auto.choose(_estimate(nan, inf), es)[0] == "es"
    assert auto.choose(_estimate(zero, zero), _estimate(nan, zero)) == ("analytic", "ES gradient is not finite")
    with pytest.raises(GradientNotFiniteError, match="both the analytic and the ES gradient are non-finite"):
        auto.choose(_estimate(nan, inf), _estimate(nan, zero))
    with pytest.raises(GradientNotFiniteError, match=r"non-finite in theta\[0:50\]"):
        _FixedParts(_estimate(nan, inf), _estimate(zero, nan)).estimate(None, zero)


def test_auto_at_a_symmetric_point_does_not_report_a_disagreement():
    """The acrobot hanging at theta = 0 is mirror-symmetric: the true gradient is 0, every ES
    antithetic pair has equal losses (ES gradient and variance exactly 0) and the analytic
    gradient is deterministic (variance 0) and 0 up to float32 rounding."""
    objective = sim.SceneTaskObjective("acrobot", num_steps=50)
    result = sim.grad(objective, np.zeros(objective.num_parameters), estimator="auto")
    assert result.diagnostics["analytic_variance"] == 0.0 and result.diagnostics["es_variance"] == 0.0
    assert result.diagnostics["choice"] == "hybrid", result.diagnostics["reason"]
    assert np.abs(result.gradient).max() < 1e-6


@pytest.mark.parametrize("call,match", [
    (lambda o, t: sim.grad(o, t * np.nan), r"theta must be finite"),
    (lambda o, t: sim.grad(o, t[:-1]), r"theta must have 15 entries, got 14"),
    (lambda o, t: sim.grad(o, t, estimator="es", sigma=0.0), r"sigma must be a finite number > 0, got 0\.0"),
    (lambda o, t: sim.grad(o, t, estimator="es", sigma=-1.0), r"sigma must be a finite number > 0"),
    (lambda o, t: sim.grad(o, t, estimator="es", population=15), r"population must be even for antithetic sampling"),
    (lambda o, t: sim.grad(o, t, estimator="truncated", window=0), r"window must be a positive integer, got 0"),
    (lambda o, t: sim.grad(o, t, estimator="analytic", checkpoint_every=-2), r"checkpoint_every must be a positive integer"),
    (lambda o, t: sim.grad(o, t, estimator="truncated", clip=-1.0), r"clip must be a finite norm > 0"),
    (lambda o, t: sim.grad(o, t, estimator="magic"), r"unknown estimator 'magic'; available: analytic, auto, es, hybrid, truncated"),
    (lambda o, t: sim.grad(o, t, estimator="hybrid", samples=1), r"samples must be >= 2"),
    (lambda o, t: sim.grad(o, t, estimator="hybrid", population=2), r"population must be >= 4 for hybrid"),  # was a TypeError
    (lambda o, t: sim.grad(o, t, estimator="auto", population=2), r"population must be >= 4 for auto"),
    (lambda o, t: sim.grad(o, t, estimator="auto", z=-1.0), r"z must be > 0, got -1\.0"),
    (lambda o, t: sim.grad(o, t, estimator="auto", z=float("nan")), r"z must be finite, got nan"),
])
def test_bad_estimator_input(call, match, device):
    objective = quadratic_objective(device=device)
    with pytest.raises(ValueError, match=match):
        call(objective, np.zeros(objective.num_parameters))


def test_objective_returning_nan_is_an_error(device):
    objective = quadratic_objective(device=device)
    poisoned = sim.PositionLoss(0, (0.0, 0.0, 0.0))
    poisoned.weight = float("nan")  # after construction, which rejects a non-finite weight
    objective.losses.append(poisoned)
    for estimator in ("analytic", "es"):
        with pytest.raises(sim.LossNotFiniteError, match=r"the objective returned a non-finite loss \(nan\) in world 0") as info:
            sim.grad(objective, np.zeros(objective.num_parameters), estimator=estimator)
        assert info.value.world == 0 and isinstance(info.value, ValueError)  # still a ValueError for older callers


def test_clipping_bounds_the_state_adjoint_and_trace_records_it(device):
    objective = collision_objective(num_steps=60, device=device)
    rows = np.full((1, objective.num_parameters), 0.2)
    traced = reverse_sweep(objective, rows, trace=True)
    assert traced.adjoint_norms.shape == (60, 1) and np.all(traced.adjoint_norms > 0)
    clipped = reverse_sweep(objective, rows, clip=0.5 * traced.adjoint_norms.max(), trace=True)
    assert clipped.adjoint_norms.max() <= traced.adjoint_norms.max()
    assert not np.allclose(clipped.gradients, traced.gradients)
    unclipped = reverse_sweep(objective, rows, clip=10 * traced.adjoint_norms.max())
    assert np.array_equal(unclipped.gradients, traced.gradients)


class LinearChain(RolloutObjective):
    """x_{t+1} = a*x_t + theta per world, loss = x_T: dL/dtheta = (1 - a^T)/(1 - a) exactly."""

    def __init__(self, device, num_steps, a):
        self.num_parameters, self.num_steps, self.device, self.a = 1, num_steps, device, a
        self.precision = sim.get_precision("float64")

        @wp.kernel
        def step_kernel(x: wp.array(dtype=wp.float64), theta: wp.array2d(dtype=wp.float64), a: wp.float64,
                        y: wp.array(dtype=wp.float64)):
            w = wp.tid()
            y[w] = a * x[w] + theta[w, 0]

        @wp.kernel
        def loss_kernel(x: wp.array(dtype=wp.float64), loss: wp.array(dtype=wp.float64)):
            w = wp.tid()
            wp.atomic_add(loss, w, x[w])

        self.step_kernel, self.loss_kernel = step_kernel, loss_kernel

    def initial_state(self, num_worlds, seed):
        return SqrtChain._state(None, wp.zeros(num_worlds, dtype=wp.float64, device=self.device, requires_grad=True))

    def advance(self, t, state, theta):
        y = wp.empty_like(state.x, requires_grad=True)
        wp.launch(self.step_kernel, dim=state.x.shape[0], inputs=[state.x, theta, wp.float64(self.a)], outputs=[y], device=self.device)
        return SqrtChain._state(None, y)

    def add_loss(self, t, state, theta, loss):
        if t == self.num_steps - 1:
            wp.launch(self.loss_kernel, dim=loss.shape[0], inputs=[state.x], outputs=[loss], device=self.device)

    def state_arrays(self, state):
        return {"x": state.x}


@pytest.mark.slow
def test_hundred_thousand_step_gradient_with_sqrt_memory(device):
    """A 100,000-step rollout: checkpointing every 316 steps keeps at most T/k + k + 1 states
    alive (about 2*sqrt(T), against T for the full tape) and gives the exact gradient."""
    T, a = 100_000, 1.0 - 1.0e-5
    objective = LinearChain(device, T, a)
    result = reverse_sweep(objective, np.ones((1, 1)), checkpoint_every=316)
    assert result.peak_states <= T // 316 + 316 + 2 < 3 * int(np.sqrt(T))
    assert result.gradients[0, 0] == pytest.approx((1.0 - a**T) / (1.0 - a), rel=1e-9)


def test_optimize_with_hybrid_at_a_non_finite_analytic_gradient_never_saves_nan(tmp_path, caplog, device):
    """The issue's case: at theta = 1 the analytic gradient of sqrt(|x_3|) is infinite. hybrid
    must fall back to ES with a logged warning, and ``optimize(estimator="hybrid")`` must log and
    checkpoint a finite theta (before, 0 * nan reached theta and every resume failed)."""
    objective = SqrtChain(device, absolute=True)
    with caplog.at_level("WARNING", logger="simulator.gradients"):
        result = sim.optimize(objective, np.array([1.0]), estimator="hybrid", iterations=1, learning_rate=0.1, out_dir=tmp_path,
                              progress=False, sigma=0.1, population=16, samples=2)
    assert "the analytic gradient is non-finite" in caplog.text and "uses the ES gradient" in caplog.text
    assert np.all(np.isfinite(result.theta)) and result.theta[0] != 1.0
    with np.load(tmp_path / "checkpoint.npz") as saved:
        assert np.array_equal(saved["theta"], result.theta) and int(saved["iteration"]) == 1
    assert np.isfinite(float(result.history[0]["gradient_norm"]))


class _NanAfter(sim.gradients.Estimator):
    """ES whose gradient is NaN from seed ``bad_seed`` on (a registered estimator that does not
    check its result)."""

    name = "nan_after"

    def __init__(self, bad_seed):
        self.es, self.bad_seed = sim.gradients.ESEstimator(sigma=0.05, population=4), bad_seed

    def estimate(self, objective, theta, *, seed=0):
        result = self.es.estimate(objective, theta, seed=seed)
        if seed >= self.bad_seed:
            result.gradient = np.full_like(result.gradient, np.nan)
        return result


def test_a_non_finite_estimate_raises_and_optimize_writes_nothing_of_that_iteration(tmp_path, device):
    objective = quadratic_objective(device=device)
    theta = np.zeros(objective.num_parameters)
    with pytest.raises(GradientNotFiniteError, match=r"the nan_after estimator returned a non-finite gradient: theta\[0\] has nan "
                                                     r"\(15 of 15 entries are not finite\)") as info:
        sim.grad(objective, theta, estimator=_NanAfter(0))
    assert info.value.step is None
    with pytest.raises(GradientNotFiniteError, match="non-finite gradient"):
        sim.optimize(objective, theta, estimator=_NanAfter(2), iterations=5, out_dir=tmp_path, progress=False)
    with np.load(tmp_path / "checkpoint.npz") as saved:
        assert int(saved["iteration"]) == 2 and np.all(np.isfinite(saved["theta"]))
    assert (tmp_path / "log.csv").read_text().count("\n") == 3  # the header and iterations 0 and 1
