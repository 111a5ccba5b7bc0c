"""The chaotic system shared by the ``variance`` and ``lyapunov`` demos: an acrobot (double
pendulum) released near the top, where it is chaotic, with a linear feedback policy whose
parameter count does not depend on the horizon. Random initial angles come from the seed."""

from __future__ import annotations

import numpy as np

import simulator as sim


def initial_state(spread: float = 0.1, start: float = 2.0):
    def make(model, seed):
        state = model.state()
        rng = np.random.default_rng(seed)
        q = state.joint_q.numpy()
        q[:, 0] += start + spread * rng.standard_normal(q.shape[0])
        q[:, 1] += spread * rng.standard_normal(q.shape[0])
        state.joint_q.assign(q)
        sim.eval_fk(model, state)
        return state

    return make


def objective(horizon: int, *, damping: float = 0.0, device=None) -> sim.SceneTaskObjective:
    """Acrobot swing-up loss after ``horizon`` control steps of 10 ms (float64)."""
    return sim.SceneTaskObjective("acrobot", device=device, precision="float64", num_steps=horizon, damping=damping,
                                  controller=sim.LinearJointFeedback(1, 2, 2), initial_state=initial_state())


def policy(objective: sim.SceneTaskObjective) -> np.ndarray:
    """Feedback gains and bias at zero: the passive double pendulum, whose chaos the gradients
    w.r.t. the gains must cross (a random policy would act as damping and hide it)."""
    return np.zeros(objective.num_parameters)
