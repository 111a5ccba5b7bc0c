"""MJCF files loaded here and in MuJoCo (the reference) side by side: mass properties, body poses
and joint trajectories.

Two comparisons serve every test: ``assert_bodies_match`` (per body: mass, world centre of mass,
world orientation and world inertia tensor after MuJoCo's ``mj_forward``) and
``assert_trajectories_match`` (hinge and slide coordinates, matched by joint name, stepped side
by side at MuJoCo's time step). The files live in ``tests/robots/mjcf/``; gymnasium's assets come
from the installed package.

The rigid step here integrates joint damping, joint springs and position-actuator gains
implicitly, ``(H + dt*D + dt^2*K) qdd = f``: with no spring this is MuJoCo's Euler integrator
(implicit damping), with springs it is MuJoCo's ``discrete`` integrator (metric M + hD + h^2 K).
"""

import os
import warnings

import numpy as np
import pytest

import simulator as sim
from simulator.errors import ParameterError
from simulator.spatial import quat_to_matrix

mujoco = pytest.importorskip("mujoco")

HERE = os.path.join(os.path.dirname(__file__), "mjcf")
EULER = mujoco.mjtIntegrator.mjINT_EULER
DISCRETE = mujoco.mjtIntegrator.mjINT_DISCRETE


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """MuJoCo writes its warnings (settotalmass is deprecated in MuJoCo 4) to MUJOCO_LOG.TXT in the
    working directory: keep that file out of the checkout."""
    monkeypatch.chdir(tmp_path)


def asset(name):
    return os.path.join(HERE, name)


def gymnasium_asset(name):
    gymnasium = pytest.importorskip("gymnasium")
    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", name)


def write(tmp_path, text, name="model.xml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(path):
    """(builder, MuJoCo model, the MJCFWarning messages) of one file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sim.MJCFWarning)
        builder = sim.load_mjcf(path)
    return builder, mujoco.MjModel.from_xml_path(path), [str(w.message) for w in caught if w.category is sim.MJCFWarning]


def assert_bodies_match(builder, reference, device, tol=1e-10):
    """Body ``i`` here is MuJoCo's body ``i + 1`` (both number bodies depth first, in file order):
    mass, centre of mass, orientation and inertia tensor, all in world axes, agree to ``tol``.
    Returns the largest difference of each."""
    model = builder.finalize(device=device, precision="float64")
    data = mujoco.MjData(reference)
    mujoco.mj_forward(reference, data)
    assert model.body_count == reference.nbody - 1
    for b, name in enumerate(model.body_names):
        mj_name = mujoco.mj_id2name(reference, mujoco.mjtObj.mjOBJ_BODY, b + 1)
        assert mj_name is None or name == mj_name
    body_q = model.state().body_q.numpy()[0]
    inertia = model.body_inertia.numpy()[0]
    worst = {"mass": 0.0, "com": 0.0, "rotation": 0.0, "inertia": 0.0}
    for b in range(model.body_count):
        rot = quat_to_matrix(body_q[b, 3:])
        ximat = data.ximat[b + 1].reshape(3, 3)
        world_inertia = ximat @ np.diag(reference.body_inertia[b + 1]) @ ximat.T
        worst["mass"] = max(worst["mass"], abs(model.body_mass.numpy()[0, b] - reference.body_mass[b + 1]))
        worst["com"] = max(worst["com"], np.abs(body_q[b, :3] - data.xipos[b + 1]).max())
        worst["rotation"] = max(worst["rotation"], np.abs(rot - data.xmat[b + 1].reshape(3, 3)).max())
        worst["inertia"] = max(worst["inertia"], np.abs(rot @ inertia[b] @ rot.T - world_inertia).max())
    assert max(worst.values()) < tol, worst
    return worst


def assert_trajectories_match(builder, reference, device, *, integrator=EULER, dt=1e-3, seconds=1.0, ctrl=None, tol=1e-6):
    """Step here (float64) and in MuJoCo (``integrator``, time step ``dt``) side by side for
    ``seconds`` with the constant control ``ctrl`` and compare every named hinge and slide
    coordinate at every step; returns the largest difference [rad or m]."""
    model = builder.finalize(device=device, precision="float64")
    reference.opt.timestep = dt
    reference.opt.integrator = integrator
    data = mujoco.MjData(reference)
    art = model.articulation
    pairs = []
    for j, (name, kind) in enumerate(zip(art.joint_names, art.joint_kinds)):
        if kind in ("revolute", "prismatic"):
            pairs.append((int(art.joint_q_start[j]), int(reference.jnt_qposadr[mujoco.mj_name2id(reference, mujoco.mjtObj.mjOBJ_JOINT, name)])))
    assert pairs
    ours, theirs = (np.array(index) for index in zip(*pairs))
    control = None
    if ctrl is not None:
        data.ctrl[:] = ctrl
        control = model.control()
        control.joint_act.assign(np.asarray(ctrl, dtype=np.float64)[None, :])
    a, b = model.state(), model.state()
    worst = np.abs(a.joint_q.numpy()[0, ours] - data.qpos[theirs]).max()
    for _ in range(round(seconds / dt)):
        sim.step(model, a, b, control, dt)
        a, b = b, a
        mujoco.mj_step(reference, data)
        worst = max(worst, np.abs(a.joint_q.numpy()[0, ours] - data.qpos[theirs]).max())
    assert worst < tol, worst
    return worst


# ---------------------------------------------------------------------------- <inertial>
def test_inertial_sets_mass_com_and_inertia(device):
    """<inertial pos quat diaginertia> and fullinertia replace the geoms' mass properties."""
    builder, reference, messages = load(asset("inertial_pendulum.xml"))
    assert not messages
    assert_bodies_match(builder, reference, device)


def test_inertial_pendulum_swings_as_in_mujoco(device):
    """The mass 0.5 m down the link swings the pendulum (Euler, dt 1 ms, 1 s)."""
    builder, reference, _ = load(asset("inertial_pendulum.xml"))
    assert_trajectories_match(builder, reference, device)


@pytest.mark.parametrize("mode", ["true", "auto"])
def test_inertiafromgeom(tmp_path, device, mode):
    """inertiafromgeom="true" ignores <inertial>; "auto" uses it where present."""
    with open(asset("inertial_pendulum.xml")) as f:
        text = f.read().replace("<worldbody>", f"<compiler inertiafromgeom='{mode}'/><worldbody>", 1)
    builder, reference, _ = load(write(tmp_path, text))
    assert_bodies_match(builder, reference, device)


# ---------------------------------------------------------------------------- <include>, <frame>
def test_include_and_frames_match_mujoco(device):
    """A scene including its robot (which includes its arm); frames with every orientation kind
    carry bodies, geoms and joints."""
    builder, reference, messages = load(asset("include_scene.xml"))
    assert [b.name for b in builder.bodies] == ["base", "arm"]
    assert any("<site>" in m and "arm.xml line" in m for m in messages), messages
    assert_bodies_match(builder, reference, device)
    assert_trajectories_match(builder, reference, device)


# ---------------------------------------------------------------------------- orientations
ORIENTED = """<mujoco>
  <compiler angle="{angle}" eulerseq="{seq}"/>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <body name="a" pos="0.1 0.2 1" euler="{e1}">
      <joint name="j1" axis="1 0.5 0"/>
      <geom type="box" size="0.1 0.2 0.3" euler="{e2}" pos="0.1 0 0"/>
      <body name="b" pos="0.3 0 0" xyaxes="0 1 0 -1 0.5 0">
        <joint name="j2" type="slide" axis="0 0 1"/>
        <geom type="capsule" size="0.05 0.2" zaxis="1 1 0" pos="0 0.1 0"/>
        <body name="c" pos="0 0 -0.3" zaxis="0 0 -1">
          <joint name="j3" axis="1 0 0"/>
          <geom type="capsule" size="0.05 0.1" axisangle="0 1 1 {a1}"/>
          <body name="d" pos="0.1 0 0" quat="0.5 0.5 -0.5 0.5">
            <joint name="j4" axis="0 1 0"/>
            <inertial pos="0.1 0 0" euler="{e1}" mass="0.3" diaginertia="0.001 0.002 0.0025"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
</mujoco>"""


@pytest.mark.parametrize("angle,seq", [("degree", "xyz"), ("radian", "XYZ"), ("degree", "zyx"), ("degree", "ZXZ"), ("radian", "yXz")])
def test_orientation_specs_match_mujoco(tmp_path, device, angle, seq):
    """quat, axisangle, euler (every eulerseq kind, degrees or radians), xyaxes, zaxis (also
    along -z) on bodies, geoms and inertials: body poses, mass properties, and the motion."""
    scale = 1.0 if angle == "degree" else np.pi / 180.0
    values = {"e1": "10 -20 35", "e2": "-5 40 15", "a1": "25"}
    text = ORIENTED.format(angle=angle, seq=seq, **{k: " ".join(str(float(x) * scale) for x in v.split()) for k, v in values.items()})
    builder, reference, _ = load(write(tmp_path, text))
    assert_bodies_match(builder, reference, device)
    assert_trajectories_match(builder, reference, device, seconds=0.5)


# ---------------------------------------------------------------------------- settotalmass
def test_half_cheetah_total_mass_is_set(device):
    """gymnasium's half_cheetah.xml has <compiler settotalmass="14">: 14 kg, not 21.18 kg."""
    builder, reference, _ = load(gymnasium_asset("half_cheetah.xml"))
    model = builder.finalize(device=device, precision="float64")
    assert model.body_mass.numpy()[0].sum() == pytest.approx(14.0, abs=1e-12)
    assert_bodies_match(builder, reference, device)


def test_settotalmass_scales_inertial_and_geom_bodies(tmp_path, device):
    with open(asset("inertial_pendulum.xml")) as f:
        text = f.read().replace("<worldbody>", "<compiler settotalmass='5.5'/><worldbody>", 1)
    builder, reference, _ = load(write(tmp_path, text))
    assert sum(builder.body_mass_properties(b)[0] for b in range(len(builder.bodies))) == pytest.approx(5.5, abs=1e-12)
    assert_bodies_match(builder, reference, device)
    assert_trajectories_match(builder, reference, device, seconds=0.5)


# ---------------------------------------------------------------------------- springs and ref
def test_joint_springs_and_ref(device):
    """stiffness, springref and ref on a hinge and a slide: joint_q is MuJoCo's qpos (it starts at
    ref) and the springs pull towards springref. Springs are implicit here, so the trajectory is
    MuJoCo's discrete integrator's; MuJoCo's Euler (explicit springs) differs at first order in
    dt."""
    builder, reference, _ = load(asset("springs.xml"))
    model = builder.finalize(device=device, precision="float64")
    np.testing.assert_allclose(model.state().joint_q.numpy()[0], reference.qpos0, atol=1e-15)
    assert_bodies_match(builder, reference, device)
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, tol=1e-12)
    gaps = [assert_trajectories_match(builder, reference, device, dt=dt, tol=np.inf) for dt in (1e-3, 5e-4)]
    assert 1.7 < gaps[0] / gaps[1] < 2.3  # first order in dt: the two integrators agree as dt -> 0


def test_ref_shifts_limits_and_position_targets(device):
    """A finger with ref=90 degrees: its range and the position actuator's target are in qpos
    coordinates, as in MuJoCo (the joint settles at the 1.8 rad target, inside the limits)."""
    builder, reference, _ = load(asset("finger_ref.xml"))
    model = builder.finalize(device=device, precision="float64")
    np.testing.assert_allclose(model.joint_limit_lower.numpy()[0], reference.jnt_range[:, 0], atol=1e-15)
    np.testing.assert_allclose(model.joint_limit_upper.numpy()[0], reference.jnt_range[:, 1], atol=1e-15)
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, ctrl=[1.8], tol=1e-12)


def test_half_cheetah_springs_fall_as_in_mujoco(device):
    """The cheetah (settotalmass, joint springs, armature), falling for 0.1 s, before its feet
    reach the floor (MuJoCo's discrete integrator, 1 ms steps)."""
    builder, reference, _ = load(gymnasium_asset("half_cheetah.xml"))
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, seconds=0.1, tol=1e-10)


def test_massless_geoms_and_inertial(tmp_path, device):
    """density="0" and mass="0" geoms only collide (real robot files give their visual and
    collision geoms no mass and the body an <inertial>)."""
    text = ("<mujoco><worldbody><body name='a' pos='0 0 1'><joint type='hinge' axis='0 1 0'/>"
            "<geom type='box' size='0.1 0.2 0.3' density='0'/><geom size='0.2' pos='0.3 0 0' mass='0'/>"
            "<inertial pos='0.1 0 -0.2' mass='1.5' diaginertia='0.01 0.02 0.02'/>"
            "<body name='b' pos='0.5 0 0'><joint type='hinge' axis='1 0 0'/><geom size='0.1' density='0'/><geom size='0.05' pos='0 0.2 0'/>"
            "</body></body></worldbody></mujoco>")
    builder, reference, _ = load(write(tmp_path, text))
    assert_bodies_match(builder, reference, device)


def test_assetdir_locates_meshes_for_an_included_robot(tmp_path, device):
    """<compiler assetdir> (meshdir's default) is relative to the main file, also for a mesh
    declared in an included file; the mesh body's mass properties are MuJoCo's."""
    trimesh = pytest.importorskip("trimesh")
    (tmp_path / "assets").mkdir()
    trimesh.creation.box(extents=(0.2, 0.1, 0.3)).export(str(tmp_path / "assets" / "brick.stl"))
    (tmp_path / "robot").mkdir()
    write(tmp_path, "<mujoco><asset><mesh name='brick' file='brick.stl'/></asset><worldbody><body name='brick' pos='0 0 1' euler='10 20 30'>"
          "<joint type='hinge' axis='1 0 0'/><geom type='mesh' mesh='brick' pos='0.1 0 0' density='700'/></body></worldbody></mujoco>", "robot/robot.xml")
    builder, reference, _ = load(write(tmp_path, "<mujoco><compiler assetdir='assets'/><include file='robot/robot.xml'/></mujoco>"))
    assert_bodies_match(builder, reference, device)


# ---------------------------------------------------------------------------- <option><flag>
def test_gravity_flag_disables_gravity_and_other_flags_warn(tmp_path, device):
    """<flag gravity="disable"> (as in dm_control's finger): the springs alone move the joints;
    a changed flag that is not supported warns, naming it."""
    with open(asset("springs.xml")) as f:
        text = f.read().replace("<worldbody>", "<option gravity='0 0 -20'><flag gravity='disable' contact='disable' energy='disable'/></option>\n  <worldbody>", 1)
    builder, reference, messages = load(write(tmp_path, text))
    assert tuple(builder.gravity) == (0.0, 0.0, 0.0)
    flags = [m for m in messages if "flag" in m]
    assert len(flags) == 1 and "<flag contact='disable'> (line 5) is not supported" in flags[0], flags
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, tol=1e-12)


# ---------------------------------------------------------------------------- bad input, warnings
BAD = [
    ("<inertial pos='0 0 0' mass='-1' diaginertia='1 1 1'/>", r"mass='-1'.*> 0"),
    ("<inertial mass='1' diaginertia='1 1 1'/>", "needs the pos attribute"),
    ("<inertial pos='0 0 0' mass='1' diaginertia='1 1 3'/>", r"diaginertia='1 1 3'.*A \+ B >= C"),
    ("<inertial pos='0 0 0' mass='1' diaginertia='1 1 1' fullinertia='1 1 1 0 0 0'/>", "exactly one of diaginertia and fullinertia"),
    ("<inertial pos='0 0 0' mass='1' fullinertia='1 1 1 0 0 0' quat='1 0 0 1'/>", "takes no orientation"),
    ("<inertial pos='0 0 0' mass='x' diaginertia='1 1 1'/>", r"mass='x'.* not a list of numbers"),
    ("<geom size='0.1' quat='0 0 0 0'/>", r"quat='0 0 0 0'.*non-zero"),
    ("<geom size='0.1' xyaxes='1 0 0 2 0 0'/>", r"xyaxes='1 0 0 2 0 0'.*not parallel"),
    ("<geom size='0.1' euler='0 0 0' quat='1 0 0 0'/>", "quat and euler: at most one orientation"),
    ("<joint ref='abc'/>", r"ref='abc'"),
    ("<joint stiffness='-2'/>", r"stiffness of .* must be >= 0, got -2"),
    ("<geom size='0.1' contype='all'/>", r"contype='all'.* integer"),
    ("<geom size='0.1' density='-3'/>", r"sphere density must be >= 0, got -3"),
    ("<geom size='0.1' mass='-3'/>", r"mass='-3'.* >= 0"),
    ("<geom type='capsule' size='0.1'/>", r"capsule geom needs size='radius half_length' or fromto, got size='0.1'"),
    ("<frame childclass='nosuch'/>", "unknown default class 'nosuch'"),
    ("<body childclass='nosuch'/>", "unknown default class 'nosuch'"),
]


@pytest.mark.parametrize("inner,match", BAD)
def test_bad_values_raise_parameter_error(tmp_path, inner, match):
    text = f"<mujoco>\n<worldbody>\n<body>\n<geom size='0.1'/>\n{inner}\n</body>\n</worldbody>\n</mujoco>\n"
    with pytest.raises(ParameterError, match=r"model\.xml:5: .*" + match):
        sim.load_mjcf(write(tmp_path, text))


def test_bad_compiler_and_include(tmp_path):
    body = "<worldbody><body><geom size='0.1'/><joint/></body></worldbody>"
    for compiler, match in [("settotalmass='heavy'", "settotalmass='heavy'"), ("inertiafromgeom='maybe'", "inertiafromgeom='maybe'"),
                            ("eulerseq='xyw'", "eulerseq='xyw'")]:
        with pytest.raises(ParameterError, match=match):
            sim.load_mjcf(write(tmp_path, f"<mujoco><compiler {compiler}/>{body}</mujoco>"))
    with pytest.raises(ParameterError, match=r"model\.xml:1: <include file='missing.xml'>: no such file"):
        sim.load_mjcf(write(tmp_path, "<mujoco><include file='missing.xml'/></mujoco>"))
    write(tmp_path, f"<mujoco>{body}</mujoco>", "part.xml")
    with pytest.raises(ParameterError, match=r"model\.xml:3: <include file='part.xml'>: that file is already included"):
        sim.load_mjcf(write(tmp_path, "<mujoco>\n<include file='part.xml'/>\n<include file='part.xml'/>\n</mujoco>"))
    write(tmp_path, "<mujoco>\n<worldbody>\n<body><joint type='screw'/></body></worldbody></mujoco>", "broken.xml")
    with pytest.raises(ParameterError, match=r"broken\.xml:3: unknown joint type 'screw'"):
        sim.load_mjcf(write(tmp_path, "<mujoco><include file='broken.xml'/></mujoco>"))
    with pytest.raises(ParameterError, match="has no <inertial> and <compiler inertiafromgeom='false'>"):
        sim.load_mjcf(write(tmp_path, f"<mujoco><compiler inertiafromgeom='false'/>{body}</mujoco>"))


def test_unsupported_inside_frames_and_bodies_still_warns(tmp_path):
    text = ("<mujoco><worldbody><frame><camera/><body gravcomp='1'><geom type='ellipsoid' size='0.1 0.1 0.2'/><geom size='0.1'/>"
            "<joint frictionloss='0.1'/><frame><replicate count='2'/></frame></body></frame></worldbody></mujoco>")
    with pytest.warns(sim.MJCFWarning) as caught:
        sim.load_mjcf(write(tmp_path, text))
    messages = " | ".join(str(w.message) for w in caught)
    for word in ("<camera>", "<body gravcomp", "ellipsoid", "<joint frictionloss>", "<replicate>"):
        assert word in messages, (word, messages)
