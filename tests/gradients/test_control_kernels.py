"""warp.autograd.gradcheck on every controller kernel (float64; the loss kernels are checked in
tests/test_task_losses.py), and the MLP policy trained with each estimator."""

import numpy as np
import pytest
import warp as wp
from warp.autograd import gradcheck

import simulator as sim
from simulator.kernels.control import control_kernels

K = control_kernels(wp.float64)
RNG = np.random.default_rng(0)


@pytest.fixture
def arr(device):
    """``arr(shape, dtype=wp.float64, *, grad=True)``: a random array on the test device."""

    def make(shape, dtype=wp.float64, *, grad=True):
        values = RNG.standard_normal(shape + {wp.float64: (), wp.vec3d: (3,), wp.transformd: (7,)}[dtype])
        if dtype == wp.transformd:
            values[..., 3:] /= np.linalg.norm(values[..., 3:], axis=-1, keepdims=True)
        return wp.array(values, dtype=dtype, device=device, requires_grad=grad)

    return make


@pytest.fixture
def check(device):
    """``check(kernel, dim, inputs, outputs)``: warp.autograd.gradcheck on the test device."""

    def run(kernel, dim, inputs, outputs):
        assert gradcheck(kernel, dim=dim, inputs=inputs, outputs=outputs, eps=1e-7, atol=1e-6, rtol=1e-5,
                         device=device, show_summary=False)

    return run


def test_controller_kernels_gradcheck(device, arr, check):
    W, B = 2, 3
    bodies = wp.array([0, 2], dtype=wp.int32, device=device)
    check(K.open_loop_body_force, (W, 2), [arr((W, 4 * 2 * 3)), 1, bodies], [wp.zeros((W, B), dtype=wp.vec3d, device=device, requires_grad=True)])
    check(K.open_loop_rows, (W, 3), [arr((W, 12)), 2], [wp.zeros((W, 3), dtype=wp.float64, device=device, requires_grad=True)])
    reference = arr((2,), wp.vec3d, grad=False)
    check(K.linear_feedback_body_force, (W, 2), [arr((W, 42)), bodies, reference, arr((W, B), wp.transformd), arr((W, B), wp.vec3d)],
          [wp.zeros((W, B), dtype=wp.vec3d, device=device, requires_grad=True)])
    check(K.linear_joint_feedback, (W, 2), [arr((W, 2 * 7)), arr((W, 3)), arr((W, 3))], [wp.zeros((W, 2), dtype=wp.float64, device=device, requires_grad=True)])
    check(K.joint_observation, (W, 6), [arr((W, 3)), arr((W, 3))], [wp.zeros((W, 6), dtype=wp.float64, device=device, requires_grad=True)])
    for squash in (0, 1):
        check(K.dense_layer, (W, 4), [arr((W, 40)), 3, squash, arr((W, 5))], [wp.zeros((W, 4), dtype=wp.float64, device=device, requires_grad=True)])


@pytest.mark.parametrize("estimator,options", [("analytic", {}), ("es", {"sigma": 0.05, "population": 16})])
def test_mlp_policy_trains_on_the_pendulum_with_any_estimator(estimator, options, device):
    objective = sim.SceneTaskObjective("pendulum", device=device, precision="float64", num_steps=50,
                                       controller=sim.MLPJointPolicy(1, 1, 1, hidden=(16,)))
    theta0 = objective.controller.initial_parameters(seed=1)
    if estimator == "analytic":  # the MLP's kernels are on the tape: tape gradient vs central differences
        g = sim.grad(objective, theta0).gradient
        i = int(np.argmax(np.abs(g)))
        step = np.zeros_like(theta0)
        step[i] = 1e-6
        fd = (sim.gradients.evaluate(objective, (theta0 + step)[None])[0] - sim.gradients.evaluate(objective, (theta0 - step)[None])[0]) / 2e-6
        assert g[i] == pytest.approx(fd, rel=1e-5)
    result = sim.optimize(objective, theta0, estimator=estimator, iterations=30, learning_rate=0.03, progress=False, **options)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.85 * losses[0]
