"""MJCF files loaded here and in MuJoCo (the reference) side by side: mass properties, body poses
and joint trajectories.

Two comparisons serve every test: ``assert_bodies_match`` (per body: mass, world centre of mass,
world orientation and world inertia tensor after MuJoCo's ``mj_forward``) and
``assert_trajectories_match`` (every ``qpos`` entry, through ``simulator.mjcf.to_mujoco_state``,
stepped side by side at MuJoCo's time step, optionally from a random MuJoCo state). The files
live in ``tests/robots/mjcf/``; gymnasium's assets come from the installed package.

The rigid step here integrates joint damping, joint springs and position-actuator gains
implicitly, ``(H + dt*D + dt^2*K) qdd = f``: with no spring this is MuJoCo's Euler integrator
(implicit damping), with springs it is MuJoCo's ``discrete`` integrator (metric M + hD + h^2 K).
"""

import os
import warnings

import numpy as np
import pytest

import simulator as sim
from simulator import mjcf
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


def load(path, **options):
    """(builder, MuJoCo model, the MJCFWarning messages) of one file (``options``: load_mjcf's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sim.MJCFWarning)
        builder = sim.load_mjcf(path, **options)
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


def assert_trajectories_match(builder, reference, device, *, integrator=EULER, dt=1e-3, seconds=1.0, ctrl=None, start=None, tol=1e-6):
    """Step here (float64) and in MuJoCo (``integrator``, time step ``dt``) side by side for
    ``seconds`` with the constant MuJoCo control ``ctrl`` (mapped to ``joint_act`` by
    ``ctrl_to_joint_act``), from MuJoCo's ``qpos0`` or from ``start = (qpos, qvel)``, and compare
    every entry of ``qpos`` (through ``to_mujoco_state``) at every step. With a ``start``, contacts
    are off in MuJoCo and asserted absent here, and no MuJoCo constraint (a limit) may become
    active. Returns the largest difference of each ``qpos`` entry (nq,) [rad, m or quaternion
    units]; asserts their maximum is below ``tol``."""
    model = builder.finalize(device=device, precision="float64")
    reference.opt.timestep = dt
    reference.opt.integrator = integrator
    data = mujoco.MjData(reference)
    if start is None:
        a = model.state()
    else:
        reference.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
        data.qpos[:], data.qvel[:] = start
        a = mjcf.from_mujoco_state(model, *start)
    b = model.output_state()
    control = None
    if ctrl is not None:
        data.ctrl[:] = ctrl
        control = model.control()
        control.joint_act.assign(mjcf.ctrl_to_joint_act(model, ctrl)[None, :])
    worst = np.abs(mjcf.to_mujoco_state(model, a)[0] - data.qpos)
    for _ in range(round(seconds / dt)):
        sim.step(model, a, b, control, dt)
        a, b = b, a
        mujoco.mj_step(reference, data)
        worst = np.maximum(worst, np.abs(mjcf.to_mujoco_state(model, a)[0] - data.qpos))
        if start is not None:
            assert not a.body_contact_force.numpy().any() and data.nefc == 0  # no contact, no limit reached
    assert worst.max() < tol, worst
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
    assert 1.7 < gaps[0].max() / gaps[1].max() < 2.3  # first order in dt: the two integrators agree as dt -> 0


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
    write(tmp_path, "<mujoco>\n<worldbody>\n<include file='robot/missing_arm.xml'/>\n</worldbody>\n</mujoco>", "robot.xml")
    with pytest.raises(ParameterError, match=r"robot\.xml:3: <include file='robot/missing_arm\.xml'>: no such file"):  # issue 15
        sim.load_mjcf(write(tmp_path, "<mujoco><include file='robot.xml'/></mujoco>"))
    write(tmp_path, f"<mujoco>{body}</mujoco>", "part.xml")
    with pytest.raises(ParameterError, match=r"model\.xml:3: <include file='part.xml'>: that file is already included"):
        sim.load_mjcf(write(tmp_path, "<mujoco>\n<include file='part.xml'/>\n<include file='part.xml'/>\n</mujoco>"))
    write(tmp_path, "<mujoco>\n<worldbody>\n<body><joint type='screw'/></body></worldbody></mujoco>", "broken.xml")
    with pytest.raises(ParameterError, match=r"broken\.xml:3: unknown joint type 'screw'"):
        sim.load_mjcf(write(tmp_path, "<mujoco><include file='broken.xml'/></mujoco>"))
    with pytest.raises(ParameterError, match="has no <inertial> and <compiler inertiafromgeom='false'>"):
        sim.load_mjcf(write(tmp_path, f"<mujoco><compiler inertiafromgeom='false'/>{body}</mujoco>"))


def test_unsupported_inside_frames_and_bodies_still_warns(tmp_path):
    text = ("<mujoco><worldbody><frame><camera/><body gravcomp='1'><geom type='hfield' size='0.1 0.1 0.2'/><geom size='0.1'/>"
            "<joint frictionloss='0.1'/><frame><replicate count='2'/></frame></body></frame></worldbody></mujoco>")
    with pytest.warns(sim.MJCFWarning) as caught:
        sim.load_mjcf(write(tmp_path, text))
    messages = " | ".join(str(w.message) for w in caught)
    for word in ("<camera>", "<body gravcomp", "hfield", "<joint frictionloss>", "<replicate>"):
        assert word in messages, (word, messages)


# ---------------------------------------------------------------------------- states to and from MuJoCo
STATE_MODELS = ["ant.xml", "hopper.xml", "humanoid.xml", "half_cheetah.xml", "ball_joints.xml"]


def model_path(name):
    return asset(name) if os.path.exists(asset(name)) else gymnasium_asset(name)


def random_mujoco_state(reference, rng, *, speed=1.0, lift=0.0, inside_limits=False):
    """A random MuJoCo (qpos, qvel): unit quaternions, free bodies moved and lifted by ``lift``
    [m] (a slide along z too), hinge and slide coordinates anywhere (or in the middle half of
    their range), velocities of scale ``speed``."""
    free, ball, slide = (int(k) for k in (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_BALL, mujoco.mjtJoint.mjJNT_SLIDE))
    qpos = reference.qpos0.copy()
    for j in range(reference.njnt):
        a, kind = reference.jnt_qposadr[j], int(reference.jnt_type[j])
        if kind in (free, ball):
            o = a + 3 if kind == free else a
            quaternion = rng.normal(size=4)
            qpos[o : o + 4] = quaternion / np.linalg.norm(quaternion)
            if kind == free:
                qpos[a : a + 3] += rng.normal(size=3) * 0.2 + [0.0, 0.0, lift]
        elif inside_limits and reference.jnt_limited[j]:
            lo, hi = reference.jnt_range[j]
            qpos[a] = 0.5 * (lo + hi) + 0.25 * (hi - lo) * rng.uniform(-1.0, 1.0)
        else:
            qpos[a] += rng.normal() * 0.5
        if kind == slide and abs(reference.jnt_axis[j][2]) > 0.99 and reference.jnt_bodyid[j] == 1:
            qpos[a] += lift
    return qpos, rng.normal(size=reference.nv) * speed


@pytest.mark.parametrize("name", STATE_MODELS)
def test_mujoco_index_matches_mujoco(name):
    """model.mujoco_index gives MuJoCo's qpos and qvel addresses, joint names and bodies, and the
    ctrl index of every joint_act column."""
    builder, reference, _ = load(model_path(name))
    model = builder.finalize(device="cpu", precision="float64")
    index = model.mujoco_index
    assert (index.nq, index.nv, index.nu) == (reference.nq, reference.nv, reference.nu)
    assert list(index.qpos_adr) == list(reference.jnt_qposadr) and list(index.dof_adr) == list(reference.jnt_dofadr)
    assert [b + 1 for b in index.bodies] == list(reference.jnt_bodyid)
    for i, j in enumerate(index.joints):
        mj_name = mujoco.mj_id2name(reference, mujoco.mjtObj.mjOBJ_JOINT, i)
        assert mj_name is None or model.articulation.joint_names[j] == mj_name
    for column, ctrl in enumerate(mjcf.actuator_order(model)):
        mj_name = mujoco.mj_id2name(reference, mujoco.mjtObj.mjOBJ_ACTUATOR, ctrl)
        assert model.articulation.actuator_names[column] in (f"actuator{column}", mj_name)


@pytest.mark.parametrize("name", STATE_MODELS)
def test_mujoco_state_round_trip_and_kinematics(name):
    """A random MuJoCo state (two worlds, each its own) goes through from_mujoco_state and back
    exactly; the bodies' world poses (COM, origin, orientation) and velocities (COM velocity and
    angular velocity in world axes; origin velocity and angular velocity in body axes) equal
    MuJoCo's after mj_forward."""
    builder, reference, _ = load(model_path(name))
    model = builder.finalize(num_worlds=2, device="cpu", precision="float64")
    rng = np.random.default_rng(12)
    states = [random_mujoco_state(reference, rng) for _ in range(2)]
    state = mjcf.from_mujoco_state(model, np.stack([q for q, _ in states]), np.stack([v for _, v in states]))
    qpos, qvel = mjcf.to_mujoco_state(model, state, world=None)
    assert qpos.shape == (2, reference.nq) and qvel.shape == (2, reference.nv)
    for w, (q, v) in enumerate(states):
        assert np.abs(qpos[w] - q).max() < 1e-12 and np.abs(qvel[w] - v).max() < 1e-12
    one = mjcf.from_mujoco_state(model, *states[1], model.state(), world=1)
    np.testing.assert_array_equal(mjcf.to_mujoco_state(model, one, world=1)[0], qpos[1])
    np.testing.assert_allclose(mjcf.to_mujoco_state(model, one, world=0)[0], reference.qpos0, rtol=0, atol=1e-12)  # untouched: qpos0

    worst = dict.fromkeys(("com", "origin", "rotation", "velocity", "angular", "local velocity", "local angular"), 0.0)
    body_q, body_v, body_w = (state.body_q.numpy(), state.body_v.numpy(), state.body_w.numpy())
    for w, (q, v) in enumerate(states):
        data = mujoco.MjData(reference)
        data.qpos[:], data.qvel[:] = q, v
        mujoco.mj_forward(reference, data)
        for b in range(model.body_count):
            rot = quat_to_matrix(body_q[w, b, 3:])
            offset = rot @ model.body_com[b]
            com_velocity, origin_velocity = np.zeros(6), np.zeros(6)
            mujoco.mj_objectVelocity(reference, data, mujoco.mjtObj.mjOBJ_BODY, b + 1, com_velocity, 0)
            mujoco.mj_objectVelocity(reference, data, mujoco.mjtObj.mjOBJ_XBODY, b + 1, origin_velocity, 1)
            for key, ours, theirs in [
                ("com", body_q[w, b, :3], data.xipos[b + 1]),
                ("origin", body_q[w, b, :3] - offset, data.xpos[b + 1]),
                ("rotation", rot, data.xmat[b + 1].reshape(3, 3)),
                ("velocity", body_v[w, b], com_velocity[3:]),
                ("angular", body_w[w, b], com_velocity[:3]),
                ("local velocity", rot.T @ (body_v[w, b] - np.cross(body_w[w, b], offset)), origin_velocity[3:]),
                ("local angular", rot.T @ body_w[w, b], origin_velocity[:3]),
            ]:
                worst[key] = max(worst[key], np.abs(ours - theirs).max())
    assert max(worst.values()) < 1e-10, worst


def test_trajectory_from_random_state_hinges_and_slides(device):
    """The hopper (slides and hinges), lifted clear of the floor, from a random MuJoCo state:
    every qpos entry equals MuJoCo's Euler integrator's over 0.5 s."""
    # contact-free: a soft penalty contact keeps the contact bound above the 1 ms step
    builder, reference, _ = load(gymnasium_asset("hopper.xml"), stiffness=2.0e3, damping=20.0)
    start = random_mujoco_state(reference, np.random.default_rng(3), speed=0.5, lift=3.0, inside_limits=True)
    assert_trajectories_match(builder, reference, device, start=start, seconds=0.5, tol=1e-12)


def test_trajectory_from_random_state_free_base(device):
    """The ant (a free torso whose centre of mass is its origin, and hinges), lifted, from a random
    MuJoCo state with motor controls mapped by ctrl_to_joint_act: MuJoCo's Euler within 1e-8
    over 0.5 s; the gap is the quaternion integration (second order in dt)."""
    builder, reference, _ = load(gymnasium_asset("ant.xml"))
    start = random_mujoco_state(reference, np.random.default_rng(4), speed=0.2, lift=3.0, inside_limits=True)
    ctrl = np.linspace(-0.002, 0.002, reference.nu)
    gaps = [assert_trajectories_match(builder, reference, device, start=start, ctrl=ctrl, dt=dt, seconds=0.5, tol=1e-8).max()
            for dt in (1e-3, 5e-4)]
    assert 3.0 < gaps[0] / gaps[1] < 5.0, gaps


def test_trajectory_from_random_state_ball_joints(device):
    """Ball joints on a free base and on a welded chain, from a random MuJoCo state, with a control
    on the motors around a dropped <general> actuator: the joint coordinates stay within 1e-5 of
    MuJoCo's Euler integrator over 1 s and converge at second order in dt. The free base's
    position converges at first order: its COM is off its origin, and the semi-implicit step moves
    the COM here, the origin in MuJoCo (the same motion as dt -> 0)."""
    builder, reference, _ = load(asset("ball_joints.xml"))
    start = random_mujoco_state(reference, np.random.default_rng(5))
    ctrl = [0.3, 0.0, -0.5]  # the <general> actuator (ctrl 1) has no column here
    gaps = [assert_trajectories_match(builder, reference, device, start=start, ctrl=ctrl, dt=dt, tol=1e-3) for dt in (1e-3, 5e-4)]
    position, rest = slice(0, 3), slice(3, None)
    assert gaps[0][rest].max() < 1e-5 and 3.0 < gaps[0][rest].max() / gaps[1][rest].max() < 5.0, gaps
    assert 1.7 < gaps[0][position].max() / gaps[1][position].max() < 2.3, gaps


def test_actuator_order_skips_dropped_actuators(tmp_path):
    """Column k of joint_act is ctrl[actuator_order[k]]: the dropped <general> actuator (ctrl 1)
    has no column, so the slide motor is column 1 and ctrl 2."""
    builder, reference, messages = load(asset("ball_joints.xml"))
    assert any("<general> actuators" in m for m in messages), messages
    model = builder.finalize(device="cpu", precision="float64")
    np.testing.assert_array_equal(mjcf.actuator_order(model), [0, 2])
    assert model.articulation.actuator_names == ["elbow_motor", "slide_motor"]
    np.testing.assert_array_equal(mjcf.ctrl_to_joint_act(model, [[1.0, 2.0, 3.0]]), [[1.0, 3.0]])
    np.testing.assert_array_equal(mjcf.joint_act_to_ctrl(model, [1.0, 3.0]), [1.0, 0.0, 3.0])


def test_mujoco_state_bad_input(tmp_path):
    builder, reference, _ = load(asset("ball_joints.xml"))
    model = builder.finalize(device="cpu", precision="float64")
    qpos, qvel = reference.qpos0.copy(), np.zeros(reference.nv)
    with pytest.raises(ParameterError, match=r"qpos must have shape \(21,\).*got shape \(20,\)"):
        mjcf.from_mujoco_state(model, qpos[:-1], qvel)
    with pytest.raises(ParameterError, match="qvel must be finite"):
        mjcf.from_mujoco_state(model, qpos, np.full(reference.nv, np.nan))
    qpos[7:11] = 0.0
    with pytest.raises(ParameterError, match=r"qpos\[7:11\] \(joint 'shoulder'\) must be a non-zero quaternion"):
        mjcf.from_mujoco_state(model, qpos, qvel)
    with pytest.raises(ParameterError, match=r"world must be an index in \[0, 1\) or None, got 1"):
        mjcf.to_mujoco_state(model, model.state(), world=1)
    with pytest.raises(ParameterError, match="ctrl must have MuJoCo's 3 actuators"):
        mjcf.ctrl_to_joint_act(model, [1.0, 2.0])
    hand_made = sim.SceneBuilder()
    hand_made.add_free_joint(hand_made.add_body(mass=1.0, inertia=np.eye(3)))
    plain = hand_made.finalize(device="cpu")
    with pytest.raises(ParameterError, match="must come from load_mjcf"):
        mjcf.to_mujoco_state(plain, plain.state())
    nested = write(tmp_path, "<mujoco><worldbody><body><joint/><geom size='0.1'/><body pos='1 0 0'><freejoint/><geom size='0.1'/>"
                             "</body></body></worldbody></mujoco>")
    with pytest.warns(sim.MJCFWarning, match="free joint below another body"):
        model = sim.load_mjcf(nested).finalize(device="cpu")
    with pytest.raises(ParameterError, match="a free joint below another body, which MuJoCo rejects"):
        mjcf.from_mujoco_state(model, np.zeros(8), np.zeros(7))


# ---------------------------------------------------------------------------- actuators
def test_actuator_defaults_forcerange_and_kv(device):
    """A <general> default gives both motors gear 5 and ctrlrange, as in MuJoCo (defaults are
    shared by every actuator kind); the first motor's forcerange clamps its force before the gear
    (ctrl 0.8 -> 0.3 -> 1.5 N m); the position actuator's kv is its velocity gain (implicit, so
    MuJoCo's discrete integrator's trajectory)."""
    builder, reference, messages = load(asset("actuators.xml"))
    assert not messages, messages
    model = builder.finalize(device=device, precision="float64")
    np.testing.assert_array_equal(model.actuator_gear.numpy()[0], reference.actuator_gear[:, 0])
    np.testing.assert_array_equal(model.actuator_kp.numpy()[0, 2], reference.actuator_gainprm[2, 0])
    np.testing.assert_array_equal(model.actuator_kd.numpy()[0, 2], -reference.actuator_biasprm[2, 2])
    assert reference.actuator_forcelimited[0] and not reference.actuator_forcelimited[1:].any()
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, ctrl=[0.8, 0.5, 0.7], tol=1e-12)
    assert_trajectories_match(builder, reference, device, integrator=DISCRETE, ctrl=[-0.2, -1.5, -0.4], tol=1e-12)


def test_unsupported_actuator_attributes_warn(tmp_path):
    text = ("<mujoco><worldbody><body><joint name='j'/><geom size='0.1'/></body></worldbody><actuator>\n"
            "<position joint='j' forcerange='-1 1'/>\n<position joint='j' gear='2'/>\n<motor joint='j' lengthrange='0 1'/>\n"
            "</actuator></mujoco>")
    messages = " | ".join(load(write(tmp_path, text))[2])
    for expected in ("<position forcerange> (line 2) is not supported", "<position gear=2.0> (line 3) is not supported",
                     "<motor lengthrange=...> (line 4) is not supported"):
        assert expected in messages, (expected, messages)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sim.MJCFWarning)
        with pytest.raises(ParameterError, match=r"model\.xml:2: <position kv='-1'> must be >= 0"):
            sim.load_mjcf(write(tmp_path, text.replace("forcerange='-1 1'", "kv='-1'")))
        with pytest.raises(ParameterError, match=r"model\.xml:4: <motor forcelimited='yes'> must be"):
            sim.load_mjcf(write(tmp_path, text.replace("lengthrange='0 1'", "forcelimited='yes' forcerange='0 1'")))
        with pytest.raises(ParameterError, match=r"model\.xml:2: <position> has forcerange but not forcelimited, with <compiler autol"):
            sim.load_mjcf(write(tmp_path, text.replace("<worldbody>", "<compiler autolimits='false'/><worldbody>")))


# ---------------------------------------------------------------------------- condim
SLIDING_BOX = """<mujoco>{default}<worldbody><geom type="plane" size="5 5 0.1"/>
<body pos="0 0 0.1"><freejoint/><geom type="box" size="0.1 0.1 0.1" mass="1"/></body></worldbody></mujoco>"""


def test_condim_1_is_frictionless_as_in_mujoco(tmp_path, device):
    """A box sliding at 1 m/s on a plane, both condim 1: no friction, so after 1 s it is 1 m on, as
    in MuJoCo (to 1e-9); with the default condim 3 friction stops it within 6 cm in both."""
    for default, check in [("<default><geom condim='1'/></default>", lambda ours, theirs: abs(ours - theirs) < 1e-9 and abs(ours - 1.0) < 1e-9),
                           ("", lambda ours, theirs: 0.03 < ours < 0.06 and 0.03 < theirs < 0.06)]:
        builder, reference, messages = load(write(tmp_path, SLIDING_BOX.format(default=default)))
        assert not messages, messages
        model = builder.finalize(device=device, precision="float64")
        reference.opt.timestep = 1e-3
        data = mujoco.MjData(reference)
        data.qvel[0] = 1.0
        a, b = mjcf.from_mujoco_state(model, data.qpos, data.qvel), model.output_state()
        for _ in range(1000):
            for _ in range(2):  # the contact bound of the default (solref) contact asks 2 substeps of 1 ms
                sim.step(model, a, b, None, 5e-4)
                a, b = b, a
            mujoco.mj_step(reference, data)
        ours = mjcf.to_mujoco_state(model, a)[0][0]
        assert check(ours, data.qpos[0]), (default, ours, data.qpos[0])


def test_condim_mixed_and_torsional_warn(tmp_path):
    """condim 1 on a geom that can touch a condim-3 geom (gymnasium's humanoid: its body geoms on the
    floor) warns: MuJoCo gives those contacts friction, per-pair condim is not supported here."""
    builder, _, messages = load(gymnasium_asset("humanoid.xml"))
    assert any("<geom condim='1'> (line 30) can touch geoms of higher condim" in m for m in messages), messages
    assert all(shape.friction > 0.0 for shape in builder.shapes)
    _, _, messages = load(write(tmp_path, SLIDING_BOX.format(default="<default><geom condim='4'/></default>")))
    assert any("<geom condim='4'> (line 1): torsional and rolling friction are not supported" in m for m in messages), messages
    with pytest.raises(ParameterError, match=r"model\.xml:1: <geom condim='2'> must be 1, 3, 4 or 6"):
        sim.load_mjcf(write(tmp_path, SLIDING_BOX.format(default="<default><geom condim='2'/></default>")))
