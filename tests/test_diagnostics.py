"""Diagnostics against known answers: the damped pendulum's exponent, and gradient traces."""

import math

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import diagnostics


DAMPING = 0.5  # [N m s/rad]


def pendulum_objective(num_steps, *, device):
    def start(model, seed):  # small oscillations: the linearised equation holds
        state = model.state()
        state.joint_q.fill_(0.05)
        sim.eval_fk(model, state)
        return state

    return sim.SceneTaskObjective("pendulum", device=device, precision="float64", num_steps=num_steps,
                                  damping=DAMPING, initial_state=start)


def decay_rate():
    """Linearised damped pendulum I qdd + c qd + m g L q = 0: both Lyapunov exponents equal the
    real part of the characteristic roots, -c/(2 I) (underdamped), I = m L^2 + (2/5) m r^2."""
    inertia = 1.0 * 1.0**2 + 0.4 * 1.0 * 0.05**2
    return -DAMPING / (2.0 * inertia)


def test_lyapunov_exponent_of_a_damped_pendulum(device):
    objective = pendulum_objective(500, device=device)  # 10 s: many periods, so the oscillation averages out
    result = diagnostics.lyapunov_exponent(objective, np.zeros(objective.num_parameters), num_worlds=2)
    assert result.exponent == pytest.approx(decay_rate(), rel=0.05)
    assert result.log_growth.shape == (500, 2)


def test_jacobian_spectrum_of_a_damped_pendulum(device):
    """Singular values of the T-step Jacobian product: log(sigma_i)/t -> -c/(2I) for both, and
    their sum is the log-determinant, exactly -c/I * t for the linear flow (Liouville)."""
    objective = pendulum_objective(300, device=device)
    spectrum = diagnostics.jacobian_spectrum(objective, np.zeros(objective.num_parameters))
    t = 300 * objective.dt
    assert spectrum.shape == (300, 2)
    assert spectrum[-1].sum() / t == pytest.approx(2.0 * decay_rate(), rel=0.02)
    assert spectrum[-1, 0] / t == pytest.approx(decay_rate(), rel=0.15)


def test_gradient_norm_trace_and_first_nonfinite_step(device):
    objective = pendulum_objective(50, device=device)
    theta = np.zeros(objective.num_parameters)
    trace = diagnostics.gradient_norm_trace(objective, theta)
    assert trace["first_nonfinite_step"] is None
    assert trace["adjoint_norms"].shape == (50,) and np.all(np.isfinite(trace["adjoint_norms"]))
    assert np.all(trace["adjoint_norms"] > 0)


def test_loss_slice_and_roughness(device):
    objective = pendulum_objective(20, device=device)
    direction = np.zeros(objective.num_parameters)
    direction[0] = 1.0
    offsets = np.linspace(-0.5, 0.5, 11)
    table = diagnostics.loss_slice(lambda h: pendulum_objective(h, device=device), lambda o: np.zeros(o.num_parameters),
                                   lambda o: np.eye(o.num_parameters)[0], offsets, [5, 20])
    assert table.shape == (2, 11) and np.all(np.isfinite(table))
    direct = sim.gradients.evaluate(objective, np.zeros((1, objective.num_parameters)) + 0.5 * direction)[0]
    assert table[1, -1] == pytest.approx(direct, rel=1e-12)
    assert diagnostics.roughness(np.linspace(0, 1, 50) ** 2) < 1e-3
    assert diagnostics.roughness(np.random.default_rng(0).standard_normal(50)) > 0.1
    assert diagnostics.growth_rate([1.0, 2.0, 3.0], np.exp([2.0, 4.0, 6.0])) == pytest.approx(2.0)
    assert math.isnan(diagnostics.growth_rate([1.0, 2.0], [math.inf, math.inf]))


class RandomLinearMap(sim.RolloutObjective):
    """x_{t+1} = a_{w,t} x_t + theta with i.i.d. lognormal a (log a ~ N(mu, s^2)) drawn per world and
    step from the seed, loss = x_T. The tangent stretches by |a| each step, so log||J_T v|| is
    N(mu T, s^2 T) and the moment Lyapunov exponents are known exactly:
    L(q) = (q mu + q^2 s^2 / 2) / dt, lambda = mu / dt, L(2) - 2 L(1) = s^2 / dt."""

    def __init__(self, device, num_steps, mu, s, dt=0.01):
        self.num_parameters, self.num_steps, self.device = 1, num_steps, device
        self.mu, self.s, self.dt = mu, s, dt
        self.precision = sim.get_precision("float64")

        @wp.kernel
        def map_step(x: wp.array(dtype=wp.float64), a: wp.array2d(dtype=wp.float64), t: int, theta: wp.array2d(dtype=wp.float64),
                     y: wp.array(dtype=wp.float64)):
            w = wp.tid()
            y[w] = a[w, t] * x[w] + theta[w, 0]

        @wp.kernel
        def final_loss(x: wp.array(dtype=wp.float64), loss: wp.array(dtype=wp.float64)):
            w = wp.tid()
            wp.atomic_add(loss, w, x[w])

        self.step_kernel, self.loss_kernel = map_step, final_loss

    def closed_form(self, q):
        return (q * self.mu + 0.5 * q * q * self.s**2) / self.dt

    def initial_state(self, num_worlds, seed):
        rng = np.random.default_rng(seed)
        a = np.exp(self.mu + self.s * rng.standard_normal((num_worlds, self.num_steps)))
        state = MapState()
        state.x = wp.array(np.ones(num_worlds), dtype=wp.float64, device=self.device, requires_grad=True)
        state.a = wp.array(a, dtype=wp.float64, device=self.device)
        return state

    def advance(self, t, state, theta):
        out = MapState()
        out.a = state.a
        out.x = wp.empty_like(state.x, requires_grad=True)
        wp.launch(self.step_kernel, dim=state.x.shape[0], inputs=[state.x, state.a, int(t), theta], outputs=[out.x], device=self.device)
        return out

    def add_loss(self, t, state, theta, loss):
        if t == self.num_steps - 1:
            wp.launch(self.loss_kernel, dim=loss.shape[0], inputs=[state.x], outputs=[loss], device=self.device)

    def state_arrays(self, state):
        return {"x": state.x}


class MapState:
    x: wp.array
    a: wp.array


def delta_method_error(result, q):
    """Standard error [1/s] of L(q) = (1/T) log mean_w u_w, u_w = ||J_T v_w||^q, from the ensemble:
    sd(u) / (sqrt(W) mean(u)) / T (first-order delta method)."""
    weighted = q * result.finite_time
    u = np.exp((weighted - weighted.max()) * (result.log_growth.shape[0] * result.dt))
    return u.std(ddof=1) / (math.sqrt(u.size) * u.mean()) / (result.log_growth.shape[0] * result.dt)


def test_moment_lyapunov_exponents_of_a_random_linear_map(device):
    """Against the closed form, within 4 standard errors of the ensemble (delta method; its
    Jensen bias, -SE^2/2 in the log, is far smaller), and inside the 99.9% bootstrap interval.
    The spread of log||J_T v|| is kept moderate (sd 0.7): for much wider spreads ||J_T v||^2 is so
    heavy-tailed that a sample's standard error understates its error (seeds 0-39 checked: at most
    2.2 standard errors off, bootstrap and delta-method errors within 4% of each other)."""
    objective = RandomLinearMap(device, num_steps=50, mu=0.02, s=0.1)  # log||J_T v|| ~ N(1, 0.5), T = 0.5 s
    result = diagnostics.moment_lyapunov(objective, np.zeros(1), q=(1, 2), num_worlds=2048, seed=3, level=0.999)
    for q in (1, 2):
        exact, error = objective.closed_form(q), delta_method_error(result, q)
        assert result.exponent(q) == pytest.approx(exact, abs=4.0 * error)
        low, high = result.confidence[list(result.q).index(q)]
        assert low < exact < high
        assert result.standard_error[list(result.q).index(q)] == pytest.approx(error, rel=0.15)  # bootstrap ~ delta method
    # the finite-time exponents: N(mu/dt, s^2/(T dt^2)); their mean is lambda, and their spread is seen
    T = objective.num_steps
    assert result.lyapunov == pytest.approx(objective.mu / objective.dt, abs=4.0 * result.lyapunov_standard_error)
    spread = objective.s / (math.sqrt(T) * objective.dt)
    assert result.finite_time.std(ddof=1) == pytest.approx(spread, abs=4.0 * spread / math.sqrt(2 * result.finite_time.size))
    # Jensen: L(2) >= 2 L(1) >= 2 lambda; here strictly, by s^2/dt and s^2/(2 dt) (many standard errors)
    L1, L2 = result.exponent(1), result.exponent(2)
    assert L2 >= 2.0 * L1 >= 2.0 * result.lyapunov
    assert L2 - 2.0 * result.lyapunov > 5.0 * delta_method_error(result, 2)
    # the same tangent propagation as lyapunov_exponent (not a second loop)
    plain = diagnostics.lyapunov_exponent(objective, np.zeros(1), num_worlds=2048, seed=3)
    assert result.lyapunov == pytest.approx(plain.exponent, rel=1e-12)
    assert np.array_equal(result.log_growth, plain.log_growth)


def test_moment_lyapunov_without_fluctuations_is_q_times_lambda(device):
    """Constant coefficients: every finite-time exponent equals lambda, so Jensen's inequality
    is an equality, L(q) = q lambda, the interval collapses and every world counts."""
    objective = RandomLinearMap(device, num_steps=50, mu=0.03, s=0.0)
    result = diagnostics.moment_lyapunov(objective, np.zeros(1), q=(0.5, 1, 2, 3), num_worlds=8)
    exact = 0.03 / objective.dt
    assert result.exponents == pytest.approx(result.q * exact, rel=1e-6)
    assert np.all(result.confidence[:, 1] - result.confidence[:, 0] < 1e-6 * result.exponents)  # rounding of the tangent only
    assert result.effective_worlds == pytest.approx(8.0)
    assert result.rate(2, [10, 20, 30, 40, 50]) == pytest.approx(2.0 * exact, rel=1e-6)
    assert result.log_moments.shape == (50, 4)


def test_moment_lyapunov_checks_its_arguments(device):
    objective = RandomLinearMap(device, num_steps=10, mu=0.0, s=0.1)
    with pytest.raises(sim.ParameterError, match="num_worlds"):
        diagnostics.moment_lyapunov(objective, np.zeros(1), num_worlds=1)
    with pytest.raises(sim.ParameterError, match="q must"):
        diagnostics.moment_lyapunov(objective, np.zeros(1), q=[])
    with pytest.raises(sim.ParameterError, match="level"):
        diagnostics.moment_lyapunov(objective, np.zeros(1), num_worlds=4, level=1.5)
    result = diagnostics.moment_lyapunov(objective, np.zeros(1), num_worlds=4)
    with pytest.raises(sim.ParameterError, match="q=3"):
        result.exponent(3)
    with pytest.raises(sim.ParameterError, match="horizons"):
        result.rate(2, [5, 11])


def exact_log_variance(objective, horizons):
    """log Var(dL/dtheta) of the random linear map: g_{t+1} = a_t g_t + 1 in distribution, so its
    first two moments follow m1' = E[a] m1 + 1, m2' = E[a^2] m2 + 2 E[a] m1 + 1."""
    ea, ea2 = math.exp(objective.mu + 0.5 * objective.s**2), math.exp(2 * objective.mu + 2 * objective.s**2)
    m1 = m2 = 0.0
    values = {}
    for t in range(1, max(horizons) + 1):
        m1, m2 = ea * m1 + 1.0, ea2 * m2 + 2.0 * ea * m1 + 1.0
        values[t] = m2 - m1 * m1
    return np.log([values[h] for h in horizons])


def test_variance_growth_of_the_random_linear_map(device):
    """The measured growth rate of the gradient variance against the exact moments (inside the
    99.9% bootstrap interval over the samples). At these short horizons the variance of the sum
    over start times still builds up, so its slope exceeds the asymptotic L(2) (6/s here), which
    it approaches from above as the horizon grows."""
    horizons = [25, 50, 75, 100]
    make = lambda h: RandomLinearMap(device, num_steps=h, mu=0.02, s=0.1)  # noqa: E731
    measured = diagnostics.variance_growth(make, lambda o: np.zeros(1), horizons, samples=4096, level=0.999)
    objective = make(100)
    exact = np.polyfit(np.array(horizons) * objective.dt, exact_log_variance(objective, horizons), 1)[0]
    assert measured.interval[0] < exact < measured.interval[1]
    assert measured.rate == pytest.approx(exact, abs=measured.interval[1] - measured.interval[0])
    assert exact > objective.closed_form(2)
    assert [g.shape for g in measured.gradients] == [(4096, 1)] * 4
