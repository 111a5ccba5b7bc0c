"""warp.autograd.gradcheck on every rigid-body kernel (float64), and batched-world semantics."""

import numpy as np
import pytest
import warp as wp
from warp.autograd import gradcheck

import simulator as sim
from simulator.kernels.rigid import CONTACT_SOFT, CONTACT_SURROGATE, rigid_kernels
from simulator.scenes import make


K = rigid_kernels(wp.float64)


def _perturbed_state(model, rng):
    """The model's initial state with small random velocities and spins (touching contacts)."""
    state = model.state()
    state.body_v.assign(state.body_v.numpy() + 0.3 * rng.standard_normal(state.body_v.shape + (3,)))
    state.body_w.assign(state.body_w.numpy() + 0.5 * rng.standard_normal(state.body_w.shape + (3,)))
    return state


def _pile(*, device):
    """Every candidate kind in contact at once: sphere, box, capsule and a mesh on the ground,
    a box-box pair, a sphere-capsule and a capsule-capsule pair."""
    import trimesh

    b = sim.SceneBuilder(stiffness=1.0e3, damping=5.0, friction=0.6)
    box = b.add_body(position=(0.0, 0.0, 0.095))
    b.add_box(box, half_extents=(0.1, 0.1, 0.1))
    top = b.add_body(position=(0.02, 0.01, 0.29), rotation=(0.0, 0.0, 0.1, 1.0))
    b.add_box(top, half_extents=(0.1, 0.08, 0.1))
    ball = b.add_body(position=(0.3, 0.0, 0.098))
    b.add_sphere(ball, radius=0.1)
    cap = b.add_body(position=(0.3, 0.0, 0.29), rotation=(0.7071, 0.0, 0.0, 0.7071))
    b.add_capsule(cap, radius=0.1, half_height=0.15)
    cap2 = b.add_body(position=(0.3, 0.05, 0.48), rotation=(0.0, 0.7071, 0.0, 0.7071))
    b.add_capsule(cap2, radius=0.1, half_height=0.1)
    mesh = b.add_body(position=(-0.4, 0.0, 0.099))
    b.add_mesh(mesh, mesh=trimesh.creation.icosphere(subdivisions=1, radius=0.1))
    b.add_ground_plane()
    return b.finalize(device=device, precision="float64", requires_grad=True, contact=sim.ContactSettings(softness=5e-3))


@pytest.mark.parametrize("per_thread", ["one", "all"])
@pytest.mark.parametrize("mode", [CONTACT_SOFT, CONTACT_SURROGATE])
def test_contact_forces_kernel_gradcheck(mode, per_thread, device):
    """Both thread layouts: a thread per candidate (GPU) and a world's candidates on one thread (CPU)."""
    model = _pile(device=device)
    state = _perturbed_state(model, np.random.default_rng(0))
    force = wp.zeros_like(state.body_contact_force)
    torque = wp.zeros_like(state.body_contact_torque)
    chunk = 1 if per_thread == "one" else model.candidate_count
    dim = (1, model.candidate_count // chunk)
    inputs = [
        model.shape_body, model.shape_type, model.shape_transform, model.shape_size,
        model.shape_stiffness, model.shape_damping, model.shape_friction, model.contact_softness,
        mode, wp.float64(model.friction_smoothing),
        model.candidate_source, model.candidate_target, model.candidate_kind,
        model.candidate_point, model.candidate_point2, model.candidate_radius, chunk,
        state.body_q, state.body_v, state.body_w,
    ]
    wp.launch(K.contact_forces, dim=dim, inputs=inputs, outputs=[force, torque], device=device)
    assert np.count_nonzero(np.linalg.norm(force.numpy()[0], axis=1)) == model.body_count  # every body touches
    if mode == CONTACT_SOFT:
        assert gradcheck(K.contact_forces, dim=dim, inputs=inputs, outputs=[force, torque],
                         eps=1e-7, atol=1e-5, rtol=1e-5, device=device, show_summary=False)
    else:
        # surrogate: the adjoint is the softened law's, so it differs from finite differences of the
        # hard forward pass; it must equal the soft kernel's adjoint at the same state.
        soft_inputs = list(inputs)
        soft_inputs[8] = CONTACT_SOFT
        grads = []
        for args in (inputs, soft_inputs):
            f, t = wp.zeros_like(force), wp.zeros_like(torque)
            tape = wp.Tape()
            with tape:
                wp.launch(K.contact_forces, dim=dim, inputs=args, outputs=[f, t], device=device)
            tape.backward(grads={f: wp.ones_like(f), t: wp.ones_like(t)})
            grads.append(state.body_q.grad.numpy().copy())
            tape.zero()
        assert np.allclose(grads[0], grads[1], rtol=1e-12, atol=0)


def test_integrate_bodies_kernel_gradcheck(device):
    model = _pile(device=device)
    rng = np.random.default_rng(1)
    state = _perturbed_state(model, rng)
    shape = (1, model.body_count)
    contact_force = wp.array(rng.standard_normal(shape + (3,)), dtype=wp.vec3d, requires_grad=True, device=device)
    contact_torque = wp.array(rng.standard_normal(shape + (3,)), dtype=wp.vec3d, requires_grad=True, device=device)
    control = model.control(requires_grad=True)
    control.body_force.assign(rng.standard_normal(shape + (3,)))
    out = model.state()
    every_body = wp.array(np.arange(model.body_count), dtype=wp.int32, device=device)
    inputs = [every_body, model.body_mass, model.body_inertia, wp.vec3d(0.0, 0.0, -9.81), wp.float64(1e-2),
              state.body_q, state.body_v, state.body_w, contact_force, contact_torque,
              control.body_force, control.body_torque]
    outputs = [out.body_q, out.body_v, out.body_w]
    wp.launch(K.integrate_bodies, dim=shape, inputs=inputs, outputs=outputs, device=device)
    assert gradcheck(K.integrate_bodies, dim=shape, inputs=inputs, outputs=outputs,
                     eps=1e-7, atol=1e-6, rtol=1e-5, device=device, show_summary=False)


def test_batched_worlds_match_independent_runs(device):
    """W worlds with different parameters, states and controls in one launch give exactly the
    results of W separate single-world rollouts."""
    frictions, speeds = [0.2, 0.5, 0.9], [0.5, 1.0, 2.0]
    batched = make("bouncing_ball", num_worlds=3, device=device, precision="float64", height=0.2)
    model = batched.model
    model.shape_friction.assign(np.array([[f, f] for f in frictions]))
    state = model.state()
    velocities = np.zeros((3, 1, 3))
    velocities[:, 0, 0] = speeds
    state.body_v.assign(velocities)
    controls = model.control()
    controls.body_force.assign(np.array([[[0.0, float(w), 0.0]] for w in range(3)]))
    final = sim.rollout(model, state, controls, num_steps=400, dt=batched.dt).final.body_q.numpy()
    for w in range(3):
        single = make("bouncing_ball", device=device, precision="float64", height=0.2, friction=frictions[w],
                      velocity=(speeds[w], 0.0, 0.0))
        c = single.model.control()
        c.body_force.assign(np.array([[[0.0, float(w), 0.0]]]))
        expected = sim.rollout(single.model, single.model.state(), c, num_steps=400, dt=single.dt).final.body_q.numpy()
        assert np.array_equal(final[w], expected[0])
    assert len({tuple(final[w, 0, :3]) for w in range(3)}) == 3
