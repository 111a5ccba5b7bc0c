"""Rigid-body physics against known answers. Each test names the formula it checks."""

import math

import numpy as np
import pytest

import simulator as sim
from simulator import observables
from simulator.scenes import make


G = 9.81


def test_free_fall_and_projectile(device):
    """Projectile: x = x0 + vx*t, z = z0 + vz*t - g*t^2/2. Semi-implicit Euler is exact up to its
    known first-order bias: z_n = z0 + vz*t_n - g*dt^2*n*(n+1)/2, i.e. an error of g*dt*t/2."""
    b = sim.SceneBuilder()
    body = b.add_body(position=(0.0, 0.0, 10.0), velocity=(2.0, -1.0, 3.0))
    b.add_sphere(body, radius=0.1)
    model = b.finalize(device=device, precision="float64")
    dt, n = 1.0e-3, 1000
    traj = sim.rollout(model, model.state(), num_steps=n, dt=dt)
    t = dt * n
    p = traj.final.body_q.numpy()[0, 0, :3]
    analytic = np.array([2.0 * t, -1.0 * t, 10.0 + 3.0 * t - 0.5 * G * t * t])
    assert np.allclose(p[:2], analytic[:2], rtol=0, atol=1e-12)
    assert abs(p[2] - analytic[2]) <= 0.5 * G * dt * t * 1.0001
    assert abs(p[2] - (10.0 + 3.0 * t - 0.5 * G * dt * dt * n * (n + 1))) < 1e-9
    assert np.allclose(traj.final.body_v.numpy()[0, 0], [2.0, -1.0, 3.0 - G * t], atol=1e-12)


@pytest.mark.parametrize("softness", [0.0, 1.0e-5])
def test_ball_settles_with_penetration_mg_over_k(softness, device):
    """Static equilibrium on a penalty spring: k*d = m*g, so the penetration is d = m*g/k (5%)."""
    scene = make("bouncing_ball", device=device, precision="float64", height=0.1, stiffness=1.0e4, damping=40.0,
                 contact=sim.ContactSettings(softness=softness))
    model = scene.model
    traj = sim.rollout(model, model.state(), num_steps=3000, dt=scene.dt, record=False)
    depth = 0.1 - traj.final.body_q.numpy()[0, 0, 2]
    expected = model.body_mass.numpy()[0, 0] * G / 1.0e4
    assert depth == pytest.approx(expected, rel=0.05)
    assert abs(traj.final.body_v.numpy()[0, 0, 2]) < 1e-3


def test_box_resting_on_plane_does_not_drift(device):
    """A box resting flat on the ground stays put: horizontal drift < 1 mm over 5 s."""
    b = sim.SceneBuilder(stiffness=1.0e5, damping=300.0, friction=0.8)
    box = b.add_body(position=(0.3, -0.2, 0.1))
    b.add_box(box, half_extents=(0.2, 0.1, 0.1))
    b.add_ground_plane()
    model = b.finalize(device=device, precision="float32")
    start = model.state().body_q.numpy()[0, 0, :2]
    traj = sim.rollout(model, model.state(), num_steps=5000, dt=1.0e-3, record=False)
    drift = np.linalg.norm(traj.final.body_q.numpy()[0, 0, :2] - start)
    assert drift < 1.0e-3


def _incline_run(angle, friction, seconds, *, device):
    scene = make("box_on_incline", device=device, precision="float64", angle=angle, friction=friction)
    steps_per_sample = 500
    samples = int(round(seconds / (scene.dt * steps_per_sample)))
    state = scene.model.state()
    downhill = scene.info["downhill"]
    positions, speeds = [], []
    for _ in range(samples):
        state = sim.rollout(scene.model, state, num_steps=steps_per_sample, dt=scene.dt, record=False).final
        positions.append(state.body_q.numpy()[0, 0, :3] @ downhill)
        speeds.append(state.body_v.numpy()[0, 0] @ downhill)
    return scene.dt * steps_per_sample, np.array(positions), np.array(speeds)


def test_box_on_incline_sticks_below_friction_angle(device):
    """Coulomb: a box at rest on a slope stays at rest when tan(theta) < mu (here 0.36 < 0.5).
    The regularised friction -mu*N*v/sqrt(v^2 + v_s^2) balances m*g*sin(theta) at the creep speed
    v = v_s*r/sqrt(1 - r^2), r = tan(theta)/mu (v_s = 1e-3 m/s): the box creeps ~1 mm/s where an
    unresisted box would be moving at g*sin(theta)*t = 3.4 m/s after 1 s."""
    theta, mu = math.radians(20.0), 0.5
    _, positions, speeds = _incline_run(theta, mu, 1.0, device=device)
    r = math.tan(theta) / mu
    creep = 1.0e-3 * r / math.sqrt(1.0 - r * r)
    assert speeds[-1] == pytest.approx(creep, rel=0.05)
    assert abs(positions[-1] - positions[0]) < 1.5 * creep * 1.0


@pytest.mark.parametrize("angle_deg,friction", [(30.0, 0.3), (40.0, 0.5)])
def test_box_on_incline_slides_with_coulomb_acceleration(angle_deg, friction, device):
    """Coulomb sliding: a = g*(sin(theta) - mu*cos(theta)) when tan(theta) > mu (5%)."""
    theta = math.radians(angle_deg)
    interval, _, speeds = _incline_run(theta, friction, 1.0, device=device)
    measured = (speeds[-1] - speeds[1]) / (interval * (len(speeds) - 2))
    expected = G * (math.sin(theta) - friction * math.cos(theta))
    assert measured == pytest.approx(expected, rel=0.05)


def test_two_spheres_conserve_momentum(device):
    """Newton's third law: the contact forces are equal and opposite, so the total linear and
    angular momentum of two colliding spheres (no gravity) are conserved (1e-6 relative)."""
    scene = make("two_spheres", device=device, precision="float64")
    model = scene.model
    state0 = model.state()
    traj = sim.rollout(model, state0, num_steps=1200, dt=scene.dt, record=False)
    p0, p1 = observables.momentum(model, state0)[0], observables.momentum(model, traj.final)[0]
    l0, l1 = observables.angular_momentum(model, state0)[0], observables.angular_momentum(model, traj.final)[0]
    scale = np.abs(model.body_mass.numpy()[0] * 1.0).sum()  # |m_a v_a| + |m_b v_b| for v = 1 m/s
    assert np.linalg.norm(p1 - p0) <= 1e-6 * scale
    assert np.linalg.norm(l1 - l0) <= 1e-6 * scale * 0.3
    # the collision happened: both spheres bounced back and spin was exchanged through friction
    v = traj.final.body_v.numpy()[0]
    assert v[0, 0] < 0.0 < v[1, 0]
    assert np.linalg.norm(traj.final.body_w.numpy()[0]) > 1e-3


def _flight_energies(damping, softness, *, device):
    """Mechanical energy sampled every 10 ms while the ball is out of contact (spring unloaded)."""
    scene = make("bouncing_ball", device=device, precision="float64", damping=damping,
                 contact=sim.ContactSettings(softness=softness))
    model, state = scene.model, scene.model.state()
    energies = []
    for _ in range(300):
        state = sim.rollout(model, state, num_steps=10, dt=scene.dt, record=False).final
        if state.body_q.numpy()[0, 0, 2] > 0.1 + 20 * max(softness, 1e-4):
            energies.append(observables.mechanical_energy(model, state)[0])
    assert len(energies) > 100
    return np.array(energies)


@pytest.mark.parametrize("damping,softness", [(1.0, 0.0), (10.0, 0.0), (1.0, 2.0e-3), (10.0, 2.0e-3)])
def test_bouncing_ball_energy_never_grows(damping, softness, device):
    """Energy balance: the contact spring is conservative, Kelvin-Voigt damping dissipates, and
    semi-implicit Euler loses g^2*dt^2/2 per step in free flight; so with any damping (here down
    to a damping ratio of 0.002) the energy measured out of contact never increases."""
    energies = _flight_energies(damping, softness, device=device)
    assert np.all(np.diff(energies) <= 1e-12 * energies[0])
    assert energies[-1] < energies[0]


def test_undamped_bounce_energy_error_is_bounded(device):
    """With zero damping the explicit step exchanges O(omega*dt) of energy at each impact
    (omega = sqrt(k/m) = 49 rad/s, dt = 1 ms): under 1% per bounce, and no net gain over 3 s."""
    energies = _flight_energies(0.0, 0.0, device=device)
    assert np.max(np.abs(np.diff(energies))) < 0.01 * energies[0]
    assert energies[-1] <= energies[0]
