"""Diagnostics against known answers: the damped pendulum's exponent, and gradient traces."""

import math

import numpy as np
import pytest

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
