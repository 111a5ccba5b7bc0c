"""A backward pass through a recorded or checkpointed rollout that becomes non-finite raises
GradientNotFiniteError naming the step (recorded) or the window (checkpointed) where it did,
instead of leaving NaN gradients behind (issue 15)."""

import numpy as np
import pytest
import warp as wp

import simulator as sim


def bouncing_sphere(device):
    """A float32 sphere dropped onto the ground: it lands around step 16 of 40. The adjoint
    grows in contact, so a seed near float32's largest value overflows there and only there."""
    b = sim.SceneBuilder()
    b.add_ground_plane()
    body = b.add_body(mass=1.0, inertia=(0.01, 0.01, 0.01), position=(0.0, 0.0, 0.2))
    b.add_sphere(body, radius=0.1)
    return b.finalize(num_worlds=2, device=device, precision="float32", requires_grad=True)


def backward(device, seed_z, checkpoint_every=None):
    model = bouncing_sphere(device)
    state = model.state(requires_grad=True)
    tape = wp.Tape()
    with tape:
        traj = sim.rollout(model, state, num_steps=40, dt=0.01, substeps=4, checkpoint_every=checkpoint_every)
    final = traj.final.body_q
    seed = np.zeros(final.numpy().shape, dtype=np.float32)
    seed[..., 2] = seed_z
    tape.backward(grads={final: wp.array(seed, dtype=final.dtype, device=device)})
    return state.body_q.grad.numpy()


@pytest.mark.parametrize("checkpoint_every", [None, 4])
def test_a_large_but_finite_adjoint_passes_unchanged(checkpoint_every, device):
    gradient = backward(device, 1e20, checkpoint_every)
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 1e20  # it grew in contact, and stayed finite


def test_an_overflowing_recorded_adjoint_names_its_step(device):
    with pytest.raises(sim.GradientNotFiniteError, match=r"non-finite in the backward pass at step (\d+) \(body_q, world 0\)") as info:
        backward(device, 2e38)
    assert 0 < info.value.step < 40  # inside the rollout, where the contact amplified the adjoint
    assert f"at step {info.value.step} " in str(info.value)


def test_an_overflowing_checkpointed_adjoint_names_its_window(device):
    with pytest.raises(sim.GradientNotFiniteError, match=r"checkpointed rollout in the window of steps (\d+) to (\d+) "
                                                         r"\(checkpoint_every=4;") as info:
        backward(device, 2e38, checkpoint_every=4)
    step = info.value.step
    assert step % 4 == 0 and 0 < step < 40 and f"window of steps {step} to {step + 4} " in str(info.value)


@pytest.mark.parametrize("checkpoint_every", [None, 4])
def test_a_non_finite_loss_gradient_is_named_as_such(checkpoint_every, device):
    with pytest.raises(sim.GradientNotFiniteError, match=r"step 40.*the loss's gradient is not finite") as info:
        backward(device, np.inf, checkpoint_every)
    assert info.value.step == 40
