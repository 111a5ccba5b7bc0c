"""Friction chatter: under an impact load the explicit regularised friction must not flip the
slip direction of the contact points substep after substep (a rough, seed-sensitive loss), and
``check_stable_timestep`` must refuse the substeps for which it would."""


import numpy as np
import pytest

import simulator as sim
from simulator import rigid
from simulator.scenes import make
from simulator.shapes import box_corners
from simulator.spatial import quat_to_matrix

HALF = (0.2, 0.1, 0.05)  # the tumbling box's half extents [m]


def chatter_fraction(scene, seconds, substeps):
    """Step the tumbling box for ``seconds`` with ``substeps`` substeps per ``scene.dt`` (the unchecked
    launches, so no check intervenes) and return (the fraction of box-ground contact substeps on which a
    corner's tangential velocity reverses, i.e. v_t(k) . v_t(k+1) < 0 while the corner is in
    contact at both, the number of such substep pairs)."""
    model = scene.model
    h = scene.dt / substeps
    corners = box_corners(HALF)
    a, b = model.state(), model.state()
    count = int(round(seconds / h))
    depth, slip = np.zeros((count, 8)), np.zeros((count, 8, 2))
    for k in range(count):
        rigid.launch_step(model, a, b, None, h)  # the unchecked launches: simulator.step refuses too long a dt
        q, v, w = b.body_q.numpy()[0, 0], b.body_v.numpy()[0, 0], b.body_w.numpy()[0, 0]
        arm = corners @ quat_to_matrix(q[3:]).T
        depth[k] = -(q[2] + arm[:, 2])  # below the ground plane z = 0
        slip[k] = (v + np.cross(w, arm))[:, :2]
        a, b = b, a
    both = (depth[:-1] > 0.0) & (depth[1:] > 0.0)
    flips = both & (np.sum(slip[:-1] * slip[1:], axis=-1) < 0.0)
    return flips.sum() / max(both.sum(), 1), int(both.sum())


def test_tumbling_box_defaults_do_not_chatter_and_the_check_refuses_what_does(device):
    """At the scene's defaults (impact speed declared, friction_smoothing 0.1 m/s, substeps from
    the check) under 2% of the box's contact substeps flip the slip direction over the first
    landing; the former defaults (one substep of 0.5 ms, friction_smoothing 0.01 m/s) flip on
    most of them (1.6 kN of impact against 78 N of weight), and the check now refuses them."""
    scene = make("tumbling_box", device=device)
    assert scene.model.contact_impact_speed > 0.0
    rigid.check_stable_timestep(scene.model, scene.dt, scene.substeps)
    fraction, pairs = chatter_fraction(scene, 0.5, scene.substeps)
    assert pairs > 500 and fraction < 0.02

    old = make("tumbling_box", device=device, contact=sim.ContactSettings(friction_smoothing=0.01, impact_speed=4.8))
    fraction, pairs = chatter_fraction(old, 0.5, 1)
    assert pairs > 50 and fraction > 0.3
    with pytest.raises(ValueError, match=r"too large for the contact impact friction .*friction_smoothing"):
        rigid.check_stable_timestep(old.model, old.dt, 1)
    # without a declared impact speed only the resting load is bounded, and that passes
    rigid.check_stable_timestep(make("tumbling_box", device=device, contact=sim.ContactSettings()).model, old.dt, 1)


def test_impact_friction_limit_known_answer(device):
    """A sphere (radius r, solid: I = 0.4 m r^2) on the ground, hit at v: the limit is
    v_smooth * m_eff / (mu * (v*(kd + sqrt(ke*m)) + m*g)) with 1/m_eff = 1/m + r^2/I = 3.5/m."""
    contact = sim.ContactSettings(friction_smoothing=0.05, impact_speed=2.0)
    scene = make("bouncing_ball", device=device, precision="float64", stiffness=1.0e4, damping=10.0, friction=0.5, contact=contact)
    m = float(scene.model.body_mass.numpy()[0, 0])
    g = float(np.linalg.norm(scene.model.gravity))
    expected = 0.05 * (m / 3.5) / (0.5 * (2.0 * (10.0 + np.sqrt(1.0e4 * m)) + m * g))
    assert rigid.contact_time_scales(scene.model)["impact friction"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="impact_speed must be >= 0"):
        sim.ContactSettings(impact_speed=-1.0)
