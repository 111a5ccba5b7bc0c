"""Joint limits as MuJoCo's soft constraints (``solreflimit``): impacts on a slide and a hinge limit
against MuJoCo running the same MJCF (``tests/robots/mjcf/limit_impact.xml``, Euler, same dt) in
the same test, and the limit's gradient against central differences (float64)."""

import os

import numpy as np
import pytest

import simulator as sim
from simulator import mjcf
from simulator.articulation import limit_law_from_solref
from simulator.errors import ParameterError

mujoco = pytest.importorskip("mujoco")

TEMPLATE = os.path.join(os.path.dirname(__file__), "mjcf", "limit_impact.xml")
DT = 1e-3
SPEED = 3.0  # the cart's impact speed [m/s]; the wheel hits at SPEED rad/s


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo's log file stays out of the checkout


def write_model(tmp_path, mass, solref=None):
    with open(TEMPLATE) as f:
        text = f.read().replace("MASS", repr(mass)).replace("SOLREF", "" if solref is None else f'solreflimit="{solref}"')
    path = tmp_path / "limit_impact.xml"
    path.write_text(text)
    return str(path)


def impact(qpos_series, qvel_series, dof):
    """(largest penetration past the upper limit 0 [m or rad], rebound speed [m/s or rad/s])."""
    return float(np.max(qpos_series[:, dof])), float(-qvel_series[-1, dof])


def run_both(path, device, seconds=0.25):
    """qpos and qvel series (steps, 2) here and in MuJoCo from 1 cm (0.01 rad) inside the upper
    limits, moving towards them at SPEED."""
    qpos0, qvel0 = np.array([-0.01, -0.01]), np.array([SPEED, SPEED])
    reference = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(reference)
    data.qpos[:], data.qvel[:] = qpos0, qvel0
    model = sim.load_mjcf(path).finalize(device=device, precision="float64")
    a, b = mjcf.from_mujoco_state(model, qpos0, qvel0), model.output_state()
    ours, theirs = [], []
    for _ in range(round(seconds / DT)):
        sim.step(model, a, b, None, DT)
        a, b = b, a
        mujoco.mj_step(reference, data)
        ours.append(np.concatenate(mjcf.to_mujoco_state(model, a)))
        theirs.append(np.concatenate([data.qpos, data.qvel]))
    ours, theirs = np.array(ours), np.array(theirs)
    return (ours[:, :2], ours[:, 2:]), (theirs[:, :2], theirs[:, 2:])


@pytest.mark.parametrize("mass", [0.1, 10.0, 100.0])
def test_impact_matches_mujoco_for_every_mass(tmp_path, device, mass):
    """A 3 m/s (3 rad/s) impact at the default solreflimit (0.02, 1): penetration and rebound within
    20% of MuJoCo's (about 2.2 cm and 0.40 m/s for the slide, whatever the mass)."""
    ours, theirs = run_both(write_model(tmp_path, mass), device)
    for dof in (0, 1):
        (pen, rebound), (pen_mj, rebound_mj) = impact(*ours, dof), impact(*theirs, dof)
        assert abs(pen / pen_mj - 1.0) < 0.2, (dof, pen, pen_mj)
        assert abs(rebound / rebound_mj - 1.0) < 0.2, (dof, rebound, rebound_mj)
    pen_mj, rebound_mj = impact(*theirs, 0)
    assert pen_mj == pytest.approx(0.022, rel=0.05) and rebound_mj == pytest.approx(0.40, rel=0.05)


@pytest.mark.parametrize("solref", ["0.05 0.3", "-4000 -20"])
def test_solreflimit_matches_mujoco(tmp_path, device, solref):
    """An underdamped time constant and MuJoCo's direct (-stiffness, -damping) form."""
    ours, theirs = run_both(write_model(tmp_path, 2.0, solref), device, seconds=0.5)
    for dof in (0, 1):
        (pen, rebound), (pen_mj, rebound_mj) = impact(*ours, dof), impact(*theirs, dof)
        assert abs(pen / pen_mj - 1.0) < 0.2, (dof, pen, pen_mj)
        assert abs(rebound / rebound_mj - 1.0) < 0.2, (dof, rebound, rebound_mj)


def test_limit_law_from_solref():
    k, b = limit_law_from_solref((0.02, 1.0))
    assert (k, b) == pytest.approx((2500.0, 100.0))
    k, b = limit_law_from_solref((-4000.0, -20.0), 0.9)
    assert (k, b) == pytest.approx((0.81 * 4000.0, 0.9 * 20.0))
    with pytest.raises(ParameterError, match="solref"):
        limit_law_from_solref((0.02, -1.0))


def test_builder_limit_arguments(device):
    b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
    body = b.add_body(mass=1.0, inertia=[0.01] * 3)
    with pytest.raises(ParameterError, match="not both"):
        b.add_prismatic_joint(-1, body, axis=(1, 0, 0), limit=(-1, 1), limit_solref=(0.02, 1), limit_stiffness=10.0)
    with pytest.raises(ParameterError, match="limit_solref"):
        b.add_prismatic_joint(-1, body, axis=(1, 0, 0), limit=(-1, 1), limit_solref=(0.02, 1, 3))
    with pytest.raises(ParameterError, match="limit_impedance"):
        b.add_prismatic_joint(-1, body, axis=(1, 0, 0), limit=(-1, 1), limit_impedance=1.0)
    b.add_prismatic_joint(-1, body, axis=(1, 0, 0), limit=(-1, 1))
    art = b.finalize(device=device).articulation
    assert art.dof_limit_stiffness.numpy().tolist() == [2500.0] and art.dof_limit_damping.numpy().tolist() == [100.0]
    assert art.dof_limit_inertial.numpy().tolist() == [1.0]


def limit_scene(device, softness):
    """A slider (2.5 kg, armature 0.2 kg) moving at 1.5 m/s into its upper limit, and a hinge wheel
    (1.2 kg, 0.3 m off its axis) at -2 rad/s into its lower limit, both at the default solref and
    with joint damping (a force, so the mass matters: the limit alone gives the same motion for
    every inertia)."""
    b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
    cart = b.add_body(mass=2.5, inertia=[0.01] * 3)
    b.add_prismatic_joint(-1, cart, axis=(1, 0, 0), qd=1.5, armature=0.2, damping=3.0, limit=(-0.5, 0.02), limit_softness=0.005)
    wheel = b.add_body(position=(0.0, 2.0, 0.0), mass=1.2, inertia=[0.02, 0.02, 0.05])
    b.add_revolute_joint(-1, wheel, axis=(0, 0, 1), position=(-0.3, 0.0, 0.0), qd=-2.0, damping=0.5, limit=(-0.03, 1.0),
                         limit_softness=softness)
    return b.finalize(num_worlds=2, precision="float64", device=device, requires_grad=True)


CASES = [
    ("joint_limit_upper", (1, 0), "joint_q", (1, 0)),
    ("joint_limit_lower", (1, 1), "joint_qd", (1, 1)),
    ("body_mass", (1, 0), "joint_q", (1, 0)),  # the limit's inertia: the mass matrix diagonal
    ("joint_armature", (1, 0), "joint_qd", (1, 0)),  # ... plus the armature
    ("body_inertia", (1, 1), "joint_q", (1, 1)),
]


@pytest.mark.parametrize("parameter, index, field, out_index", CASES)
def test_limit_gradient_matches_central_differences(rollout_gradcheck, device, parameter, index, field, out_index):
    """Through an impact on the smoothed limit law (softness 5 mm, 5 mrad): the tape gradient of
    the state after 40 steps of 1 ms (mid-impact) w.r.t. the limits, the mass, the armature and
    the inertia (which scale the law)."""
    model = limit_scene(device, softness=0.005)
    steps, dt = 40, 1e-3

    def run():
        return sim.rollout(model, model.state(), None, num_steps=steps, dt=dt).final

    if parameter == "body_inertia":
        index = (1, 1, 2, 2)
    _, numeric = rollout_gradcheck(run, lambda s: (getattr(s, field), out_index), getattr(model, parameter), index, eps=1e-6, rtol=1e-5)
    assert abs(numeric) > 1e-5  # the parameter matters
