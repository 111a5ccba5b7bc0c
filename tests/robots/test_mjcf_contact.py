"""MJCF contact defaults from the model (geom ``solref``, ``margin``, the masses): gymnasium's
robots settle where MuJoCo's do, run side by side with MuJoCo on the same file in the same test,
and do not gain energy at rest."""

import math
import os
import warnings

import numpy as np
import pytest

import simulator as sim
from simulator import rigid
from simulator.observables import mechanical_energy

mujoco = pytest.importorskip("mujoco")
gymnasium = pytest.importorskip("gymnasium")

ASSETS = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo's log file (settotalmass is deprecated) stays out of the checkout


def load(name, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sim.MJCFWarning)
        return sim.load_mjcf(os.path.join(ASSETS, name), **options)


def substeps_for(model, dt):
    """The substeps of ``dt`` the contact bound asks for (as ``bench mjcf``)."""
    limit = min(rigid.contact_time_scales(model).values())
    substeps = max(1, math.ceil(dt / limit)) if math.isfinite(limit) else 1
    return substeps + 1 if dt / substeps >= limit else substeps


def energy(model, state):
    """Kinetic, gravitational and joint-spring energy [J] of world 0 (the contact springs excluded)."""
    art = model.articulation
    coord, ref = art.dof_coord.numpy(), art.dof_spring_ref.numpy().astype(np.float64)
    q = state.joint_q.numpy()[0].astype(np.float64)
    k = model.joint_stiffness.numpy()[0].astype(np.float64)
    used = coord >= 0
    return float(mechanical_energy(model, state)[0] + 0.5 * np.sum(k[used] * (q[coord[used]] - ref[used]) ** 2))


def mujoco_settle(name, seconds, cone=None):
    """MuJoCo's torso (body 1) centre-of-mass height [m] after ``seconds`` from ``qpos0``."""
    model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, name))
    if cone is not None:
        model.opt.cone = cone
    data = mujoco.MjData(model)
    for _ in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
    return float(data.xipos[1][2])


def settle(name, seconds, rest):
    """Our torso height [m] after ``seconds`` (float32, the bound's substeps of the model's dt),
    then the largest energy gain [J] over the following ``rest`` seconds (``max_t E(t) - min_{s<=t}
    E(s)``, sampled every step), and the substeps."""
    builder = load(name)
    model = builder.finalize(device="cpu")
    dt = builder.mjcf_timestep
    substeps = substeps_for(model, dt)
    a, b = model.state(requires_grad=False), model.output_state()

    def advance(steps, record=False):
        nonlocal a, b
        values = []
        for _ in range(steps):
            for _ in range(substeps):
                sim.step(model, a, b, None, dt / substeps)
                a, b = b, a
            if record:
                values.append(energy(model, a))
        return np.array(values)

    advance(round(seconds / dt))
    height = float(a.body_q.numpy()[0, 0, 2])
    energies = advance(round(rest / dt), record=True)
    return height, float(np.max(energies - np.minimum.accumulate(energies))), substeps


# (model, seconds to settle, MuJoCo's cone): the hopper and the walker topple and lie on the floor
# by 3 s; the ant and the half-cheetah stand (both still creep slowly in MuJoCo).
SETTLES = [
    ("hopper.xml", 3.0, None),
    ("walker2d.xml", 3.0, None),
    ("ant.xml", 1.5, None),
    # friction here is an isotropic (elliptic) cone: MuJoCo's default pyramidal cone lets the
    # half-cheetah's feet slide 4 cm further at landing and settle 1.3 cm lower than its elliptic
    # cone does (0.5876 m against 0.6005 m); we rest 1.6 cm above the pyramidal result
    ("half_cheetah.xml", 1.5, mujoco.mjtCone.mjCONE_ELLIPTIC),
]


@pytest.mark.parametrize("name, seconds, cone", SETTLES)
def test_gymnasium_robots_settle_as_in_mujoco(name, seconds, cone):
    """Default contact (no stiffness given): the torso rests within 1 cm of MuJoCo's height, and
    the energy does not grow at rest (less than 0.05 J over the next 0.5 s)."""
    reference = mujoco_settle(name, seconds, cone)
    height, gain, substeps = settle(name, seconds, rest=0.5)
    assert abs(height - reference) < 0.01, (height, reference, substeps)
    assert gain < 0.05, (gain, substeps)


CONTACT_LAW = os.path.join(os.path.dirname(__file__), "mjcf", "contact_law.xml")


def test_contact_law_from_solref_and_masses(device):
    """A tree resting on its contacts (the free 2 kg ball) gets ke = M*k (M its tree's mass) and
    kd = m*b (m its tree's mean body mass) against the floor from its solref, and its point mass
    times (k, b) against moving geoms; the arm, held by its hinge, carries each geom's own
    point-mass law; the friction smoothing is the largest mu*g/b."""
    from simulator.mjcf import _Loader

    builder = sim.load_mjcf(CONTACT_LAW)
    ke = [s.stiffness for s in builder.shapes]
    kd = [s.damping for s in builder.shapes]
    floor, ball, upper, lower = range(4)

    def pair(values, a, b):
        return 0.5 * (values[a] + values[b])

    assert pair(ke, floor, ball) == pytest.approx(2.0 * 2500.0) and pair(kd, floor, ball) == pytest.approx(2.0 * 100.0)
    point_mass = _Loader.point_mass(builder, ball)
    assert 0.5 < point_mass < 0.6  # 1/(1/2 + 0.1^2/0.008) for the 2 kg, 0.1 m ball
    assert (ke[ball], kd[ball]) == pytest.approx((point_mass * 2500.0, point_mass * 100.0))
    upper_mass, lower_mass = _Loader.point_mass(builder, upper), _Loader.point_mass(builder, lower)
    assert (ke[upper], kd[upper]) == pytest.approx((upper_mass * 2500.0, upper_mass * 100.0))
    assert (ke[lower], kd[lower]) == pytest.approx((lower_mass / (0.04 * 0.5) ** 2, lower_mass * 2.0 / 0.04))  # its solref (0.04, 0.5)
    model = builder.finalize(device=device)
    assert model.friction_smoothing == pytest.approx(1.0 * 9.81 / 50.0)  # mu 1 (the default) on the slow tip, b = 50 1/s
    with pytest.warns(sim.MJCFWarning, match="solref"):  # the tip's solref is then ignored
        explicit = sim.load_mjcf(CONTACT_LAW, stiffness=1.0e4, damping=50.0)
    assert {s.stiffness for s in explicit.shapes} == {1.0e4} and explicit.default_contact is None


def test_margin_rests_the_ball_where_mujoco_does(device):
    """The pair's margins add (0.01 + 0.005 m): the contact acts from that far apart, as in MuJoCo
    (same file, same test); the ball, on one contact, sinks g/k = 3.9 mm below that where MuJoCo
    sinks 0.4 mm (a spring cannot copy MuJoCo's impedance), so it rests 3.5 mm below MuJoCo's."""
    reference = mujoco.MjModel.from_xml_path(CONTACT_LAW)
    data = mujoco.MjData(reference)
    for _ in range(1000):
        mujoco.mj_step(reference, data)
    builder = sim.load_mjcf(CONTACT_LAW)
    model = builder.finalize(device=device, precision="float64")
    substeps = substeps_for(model, 0.002)
    a, b = model.state(requires_grad=False), model.output_state()
    for _ in range(1000 * substeps):
        sim.step(model, a, b, None, 0.002 / substeps)
        a, b = b, a
    height, theirs = a.body_q.numpy()[0, 0, 2], data.xipos[1][2]
    assert theirs == pytest.approx(0.1 + 0.015, abs=1e-3)
    assert height == pytest.approx(0.1 + 0.015 - 9.81 / 2500.0, abs=2e-4)
    assert height == pytest.approx(theirs, abs=4e-3), (height, theirs)


def test_bad_contact_options(tmp_path):
    with pytest.raises(sim.ParameterError, match="both stiffness and damping"):
        sim.load_mjcf(CONTACT_LAW, stiffness=1.0e4)
    for attribute, match in (('solref="0.02 -1"', "solref"), ('solimp="0.9 1.2 0.001"', "solimp"), ('margin="-0.1"', "margin")):
        path = tmp_path / "bad.xml"
        path.write_text(f'<mujoco><worldbody><body><freejoint/><geom size="0.1" {attribute}/></body></worldbody></mujoco>')
        with pytest.raises(sim.ParameterError, match=match):
            sim.load_mjcf(str(path))
