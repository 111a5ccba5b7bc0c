"""Robot scenes: registry, a short rollout of each, and the forward-progress loss's adjoint."""

import numpy as np
import pytest

from simulator import scenes


ROBOTS = ["pendulum", "cartpole", "acrobot", "hopper", "ant"]


def test_registry_lists_robots():
    assert set(ROBOTS) <= set(scenes.list_scenes())
    with pytest.raises(ValueError, match="unknown scene 'walker'"):
        scenes.make("walker")


@pytest.mark.parametrize("name", ROBOTS)
def test_scene_runs_and_has_a_loss(name, device):
    scene = scenes.make(name, num_worlds=2, device=device)
    assert scene.model.num_worlds == 2 and scene.dt > 0 and scene.horizon > 0
    assert scene.model.articulation.num_actuators >= 1
    controls = scene.control_sequence(5)
    traj = scene.rollout(controls, num_steps=5)
    loss = scene.loss(traj, controls).numpy()
    assert loss.shape == (2,) and np.all(np.isfinite(loss))
    assert np.all(np.isfinite(traj.final.body_q.numpy()))


def test_hopper_forward_progress_gradient(central_difference, task_loss, device):
    """d loss / d u for the hopper's forward-velocity loss (ForwardProgress term) over 10 steps."""
    scene = scenes.make("hopper", device=device, precision="float64", requires_grad=True)
    steps = 10
    u0 = np.random.default_rng(5).uniform(-0.5, 0.5, size=(steps, 1, 3))

    loss = task_loss(scene, steps)

    adjoint = loss(u0, grad=True)
    sample = [(0, 0, 0), (4, 0, 1), (9, 0, 2)]
    for index in sample:
        def f(x, index=index):
            u = u0.copy()
            u[index] = x[0]
            return loss(u)

        assert adjoint[index] == pytest.approx(central_difference(f, np.array([u0[index]]), 1e-6)[0], rel=1e-4, abs=1e-9)
