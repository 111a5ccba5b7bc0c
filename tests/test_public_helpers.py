"""The helpers a user reaches for: ``evaluate`` at a parameter vector, and ``scalar_loss`` so that
``tape.backward`` needs no hand-built seed arrays."""

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator.scenes import make


def test_evaluate_takes_a_parameter_vector(device):
    scene = lambda w: make("two_spheres", num_worlds=w, device=device, precision="float64", requires_grad=True)  # noqa: E731
    objective = sim.ControlObjective(scene, sim.OpenLoopForces([0]), [sim.PositionLoss(1, (0.6, 0.3, 0.0))], num_steps=5, dt=2.5e-3)
    theta = np.linspace(-1.0, 1.0, objective.num_parameters)
    value = sim.evaluate(objective, theta)
    assert isinstance(value, float)
    assert value == sim.evaluate(objective, theta[None, :])[0]
    assert value == sim.grad(objective, theta, estimator="analytic").value
    with pytest.raises(ValueError, match="theta must have"):
        sim.evaluate(objective, theta[:-1])


def _ball(device):
    builder = sim.SceneBuilder(stiffness=1e4, damping=10.0, friction=0.5)
    ball = builder.add_body(position=(0.0, 0.0, 0.5), velocity=(0.3, 0.0, -1.0))
    builder.add_sphere(ball, radius=0.1)
    builder.add_ground_plane()
    return builder.finalize(num_worlds=2, device=device, precision="float64", requires_grad=True,
                            contact=sim.ContactSettings(softness=1e-3))


def test_scalar_loss_gives_the_seeded_backward(device):
    """Against the hand-built seed array of the README: d(final height)/d(initial velocity)."""
    model = _ball(device)

    def gradient(readout):
        state = model.state()
        tape = wp.Tape()
        with tape:
            traj = sim.rollout(model, state, num_steps=200, dt=1e-3)
            readout(tape, traj)
        return state.body_v.grad.numpy().copy()

    def seeded(tape, traj):
        seed = np.zeros((2, 1, 7))
        seed[1, 0, 2] = 1.0
        tape.backward(grads={traj.final.body_q: wp.array(seed, dtype=wp.transformd, device=device)})

    def by_index(tape, traj):
        loss = sim.scalar_loss(traj.final.body_q, index=(1, 0, 2))
        assert loss.numpy()[0] == traj.final.body_q.numpy()[1, 0, 2]
        tape.backward(loss=loss)

    expected = gradient(seeded)
    assert np.any(expected != 0.0)
    np.testing.assert_allclose(gradient(by_index), expected, rtol=1e-12, atol=0)

    weights = np.random.default_rng(0).normal(size=(2, 1, 3))

    def weighted(tape, traj):
        loss = sim.scalar_loss(traj.final.body_v, weights)
        assert loss.numpy()[0] == pytest.approx(float(np.sum(weights * traj.final.body_v.numpy())), rel=1e-12)
        tape.backward(loss=loss)

    def weighted_seed(tape, traj):
        tape.backward(grads={traj.final.body_v: wp.array(weights, dtype=wp.vec3d, device=device)})

    np.testing.assert_allclose(gradient(weighted), gradient(weighted_seed), rtol=1e-12, atol=0)


def test_scalar_loss_bad_input(device):
    model = _ball(device)
    q = model.state().body_q
    with pytest.raises(ValueError, match="exactly one of weights and index"):
        sim.scalar_loss(q)
    with pytest.raises(ValueError, match="not a position"):
        sim.scalar_loss(q, index=(5, 0, 0))
    with pytest.raises(ValueError, match="weights must be finite with shape"):
        sim.scalar_loss(q, np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="float32 or float64"):
        sim.scalar_loss(wp.zeros(3, dtype=wp.int32, device=device), index=0)
