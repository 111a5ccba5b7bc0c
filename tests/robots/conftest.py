"""Shared helpers for the articulated-robot tests (fixtures, since tests import in importlib mode)."""

import numpy as np
import pytest
import warp as wp

import simulator as sim

wp.config.quiet = True


def _step_series(model, state, steps, dt, *, every=1, control=None):
    """Step ``model`` ``steps`` times (two alternating states, no tape) and return the host copies
    of (joint_q, body_q, body_v, body_w) every ``every`` steps, starting with the initial state."""
    a, b = state, model.state(requires_grad=False)
    out = {"joint_q": [], "body_q": [], "body_v": [], "body_w": []}

    def record(s):
        for key in out:
            out[key].append(getattr(s, key).numpy().copy())

    record(a)
    for n in range(1, steps + 1):
        sim.step(model, a, b, control, dt)
        a, b = b, a
        if n % every == 0:
            record(a)
    return {key: np.stack(value) for key, value in out.items()}


@pytest.fixture
def step_series():
    return _step_series


def _central_difference(f, x, eps):
    """Central finite differences of a scalar function f at x (any shape)."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[index] = eps
        grad[index] = (f(x + e) - f(x - e)) / (2.0 * eps)
    return grad


@pytest.fixture
def central_difference():
    return _central_difference


def _task_loss(scene, steps):
    """``loss(u, grad=False)``: the scene's task loss after ``steps`` steps driven by the actions
    ``u`` (T, W, A); with ``grad=True`` its tape gradient w.r.t. ``u`` instead."""

    def loss(u, grad=False):
        controls = scene.control_sequence(steps)
        controls.joint_act.assign(u)
        tape = wp.Tape()
        with tape:
            out = scene.loss(scene.rollout(controls, num_steps=steps), controls)
        if grad:
            tape.backward(grads={out: wp.ones_like(out)})
            return controls.joint_act.grad.numpy()
        return float(out.numpy()[0])

    return loss


@pytest.fixture
def task_loss():
    return _task_loss
