"""Gradients through rigid-body rollouts with contact vs central finite differences (float64)."""

import math

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator.scenes import make


G = 9.81
Z = 2  # index of z in a transform (px, py, pz, qx, qy, qz, qw)


def final_position(axis, body=0):
    return lambda traj: (traj.final.body_q, (0, body, axis))


@pytest.mark.parametrize("component", [0, 2])
def test_bounce_height_wrt_initial_velocity(rollout_gradcheck, component, device):
    """Height 0.6 s after dropping a ball that bounces once, w.r.t. its initial velocity, with
    softened contact (softness 1 mm): smooth, so tape and central differences agree to 1e-4."""
    scene = make("bouncing_ball", device=device, precision="float64", requires_grad=True, height=0.5,
                 velocity=(0.3, 0.0, -1.0), damping=10.0, contact=sim.ContactSettings(softness=1.0e-3))
    model = scene.model
    state0 = model.state()

    def run():
        return sim.rollout(model, state0, num_steps=600, dt=scene.dt)

    traj = run()
    heights = traj.body_q()[:, 0, 0, Z]
    assert heights.min() < 0.1 < heights[-1]  # it did bounce, and is airborne at the end
    rollout_gradcheck(run, final_position(Z), state0.body_v, (0, 0, component))


def test_sliding_box_position_wrt_friction(rollout_gradcheck, device):
    """A box sliding at 2 m/s decelerates at mu*g: x(T) = v0*T - mu*g*T^2/2, so
    dx/dmu = -g*T^2/2 (checked to 2%, the box rocks on its corners); tape vs central differences to 1e-4."""
    b = sim.SceneBuilder(stiffness=1.0e5, damping=500.0, friction=0.3)
    box = b.add_body(position=(0.0, 0.0, 0.1 - 8.0 * G / 4.0e5), velocity=(2.0, 0.0, 0.0))
    b.add_box(box, half_extents=(0.1, 0.1, 0.1))
    b.add_ground_plane()
    model = b.finalize(device=device, precision="float64", requires_grad=True)
    state0 = model.state()
    steps, dt = 300, 1.0e-3

    def run():
        return sim.rollout(model, state0, num_steps=steps, dt=dt)

    # friction of the box shape (index 0); the plane (index 1) contributes the other half of the mean
    analytic, _ = rollout_gradcheck(run, final_position(0), model.shape_friction, (0, 0))
    total = analytic + rollout_gradcheck.tape_gradient(run, final_position(0), model.shape_friction, (0, 1))
    T = steps * dt
    assert total == pytest.approx(-0.5 * G * T * T, rel=0.02)


@pytest.mark.parametrize("component", [0, 1])
def test_sphere_collision_wrt_initial_velocity(rollout_gradcheck, component, device):
    """Oblique collision of two spheres with friction: the second sphere's final position
    w.r.t. the first sphere's initial velocity (hard contact, away from onset kinks)."""
    scene = make("two_spheres", device=device, precision="float64", requires_grad=True)
    model = scene.model
    state0 = model.state()

    def run():
        return sim.rollout(model, state0, num_steps=800, dt=scene.dt)

    rollout_gradcheck(run, final_position(component, body=1), state0.body_v, (0, 0, component), eps=1e-7)


PARAMETERS = [
    (name, index, axis)
    for name, index in [("body_mass", (0, 0)), ("shape_stiffness", (0, 0)), ("shape_damping", (0, 1)), ("contact_softness", (0,))]
    for axis in (0, Z)
] + [("shape_friction", (0, 0), 0)]  # friction is tangential: it cannot move a sphere's height


@pytest.mark.parametrize("name,index,axis", PARAMETERS)
def test_gradient_wrt_model_parameters(rollout_gradcheck, name, index, axis, device):
    """Final position of a ball thrown onto the ground (it bounces and slides) w.r.t. each
    differentiable model parameter; each one must matter (non-zero gradient)."""
    scene = make("bouncing_ball", device=device, precision="float64", requires_grad=True, height=0.3,
                 velocity=(1.0, 0.0, 0.0), damping=20.0, friction=0.4, contact=sim.ContactSettings(softness=2.0e-3))
    model = scene.model
    state0 = model.state()

    def run():
        return sim.rollout(model, state0, num_steps=350, dt=scene.dt)

    analytic, _ = rollout_gradcheck(run, final_position(axis), getattr(model, name), index, eps=1e-6 * (10 if name == "shape_stiffness" else 1))
    assert analytic != 0.0


def test_gradient_wrt_inertia_and_control(rollout_gradcheck, device):
    """A tumbling box: final x w.r.t. an inertia entry and w.r.t. a per-step control torque."""
    scene = make("tumbling_box", device=device, precision="float64", requires_grad=True,
                 contact=sim.ContactSettings(softness=2.0e-3))
    model = scene.model
    state0 = model.state()
    controls = model.control_sequence(200)
    torques = np.zeros((200, 1, model.body_count, 3))
    torques[:, 0, 0, 1] = 0.5
    controls.body_torque.assign(torques)

    def run():
        return sim.rollout(model, state0, controls, num_steps=200, dt=scene.dt)

    rollout_gradcheck(run, final_position(0), model.body_inertia, (0, 0, 1, 1), eps=1e-7)
    rollout_gradcheck(run, final_position(0), controls.body_torque, (50, 0, 0, 1), eps=1e-5)


def test_surrogate_mode_forward_is_hard_backward_is_soft(device):
    """Surrogate gradients: one step from the same state gives the hard-contact result forward
    and exactly the softened contact's derivative backward."""
    results = {}
    for mode, softness in [("soft", 0.0), ("soft", 5.0e-3), ("surrogate", 5.0e-3)]:
        scene = make("bouncing_ball", device=device, precision="float64", requires_grad=True, height=0.101,
                     velocity=(0.5, 0.0, -0.3), contact=sim.ContactSettings(softness=softness, mode=mode))
        model = scene.model
        state0 = model.state()
        tape = wp.Tape()
        with tape:
            traj = sim.rollout(model, state0, num_steps=1, dt=scene.dt)
        seed = np.zeros((1, 1, 3))
        seed[0, 0, 2] = 1.0
        tape.backward(grads={traj.final.body_v: wp.array(seed, dtype=wp.vec3d, device=device)})
        results[(mode, softness)] = (traj.final.body_v.numpy()[0, 0].copy(), state0.body_q.grad.numpy()[0, 0, Z])
    hard, soft, surrogate = results[("soft", 0.0)], results[("soft", 5.0e-3)], results[("surrogate", 5.0e-3)]
    assert np.array_equal(surrogate[0], hard[0])
    assert not np.allclose(soft[0], hard[0])
    assert surrogate[1] == pytest.approx(soft[1], rel=1e-12)
    assert hard[1] == 0.0  # the hard law gives no gradient before contact: the reason for the surrogate


def test_softened_force_is_smooth_at_onset_and_recovers_hard_penalty(device):
    """softplus_s(d) -> max(d, 0) as s -> 0: the contact impulse of one step converges to the
    hard penalty's; and with s > 0 the force is continuous in d with a continuous derivative."""
    def impulse(height, softness):
        scene = make("bouncing_ball", device=device, precision="float64", height=height,
                     damping=0.0, contact=sim.ContactSettings(softness=softness))
        traj = sim.rollout(scene.model, scene.model.state(), num_steps=1, dt=scene.dt)
        return traj.final.body_contact_force.numpy()[0, 0, Z]

    k, depth = 1.0e4, 2.0e-3
    errors = [abs(impulse(0.1 - depth, s) - k * depth) for s in (1e-3, 1e-4, 1e-5)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-6 * k * depth
    s, h = 1.0e-3, 1.0e-6
    f = [impulse(0.1 + d, s) for d in (-h, 0.0, h)]
    slope_left, slope_right = (f[1] - f[0]) / h, (f[2] - f[1]) / h
    assert f[1] == pytest.approx(k * s * math.log(2.0), rel=1e-6)
    assert slope_left == pytest.approx(slope_right, rel=1e-3)
    assert slope_left == pytest.approx(-0.5 * k, rel=1e-3)
