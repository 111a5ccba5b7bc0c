"""MJCF import: the gymnasium ant (installed from PyPI, not copied) and malformed files."""

import os
import warnings

import numpy as np
import pytest

import simulator as sim
from simulator.spatial import quat_to_matrix


gymnasium = pytest.importorskip("gymnasium")


def ant_path():
    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "ant.xml")


def load_ant():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builder = sim.load_mjcf(ant_path())
    return builder, [str(w.message) for w in caught]


def test_ant_loads_with_one_warning_per_unsupported_kind():
    builder, messages = load_ant()
    assert len(builder.bodies) == 13 and len(builder.joints) == 13 and len(builder.actuators) == 8
    assert len(messages) == len(set(messages))
    for word in ("RK4", "light", "camera"):
        assert any(word in m for m in messages), word


def test_ant_total_mass_matches_mujoco(device):
    """Mass from geoms (density 5, capsules = cylinder + two hemispheres) vs mujoco's compiler."""
    mujoco = pytest.importorskip("mujoco")
    reference = mujoco.MjModel.from_xml_path(ant_path())
    model = load_ant()[0].finalize(device=device, precision="float64")
    assert model.body_mass.numpy().sum() == pytest.approx(float(reference.body_mass.sum()), rel=1e-6)


def test_ant_stands_for_five_seconds(device):
    """Zero control for 5 s (dt 0.01 s, 10 substeps: the contact bound): the torso stays up and level, no foot sinks
    through the floor, and every joint holds (hinge anchors of the chain coincide < 1e-3 m)."""
    builder, _ = load_ant()
    # 1 ms substeps (the contact bound of the 39 g shins); v_smooth > mu*g*h/2 keeps the explicit friction stable
    model = builder.finalize(device=device, precision="float32", contact=sim.ContactSettings(friction_smoothing=0.05))
    traj = sim.rollout(model, model.state(), None, num_steps=500, dt=0.01, substeps=10, record=False)
    q = traj.final.body_q.numpy()[0]
    assert np.all(np.isfinite(q))
    torso_up = quat_to_matrix(q[0, 3:]) @ np.array([0.0, 0.0, 1.0])
    assert q[0, 2] > 0.26  # the torso sphere (r = 0.25 m) does not touch the ground
    assert torso_up[2] > 0.95
    assert np.linalg.norm(q[0, :2]) < 0.05  # no drifting
    shapes = [s for s in builder.shapes if s.body >= 0 and s.kind == 2]
    transforms = model.shape_transform.numpy()
    lowest = np.inf
    for index, shape in enumerate(builder.shapes):
        if shape.body < 0 or shape.kind != 2:
            continue
        t = transforms[index]
        pose = q[shape.body]
        for end in (-1.0, 1.0):
            local = t[:3] + quat_to_matrix(t[3:]) @ np.array([0.0, 0.0, end * shape.size[1]])
            lowest = min(lowest, (pose[:3] + quat_to_matrix(pose[3:]) @ local)[2] - shape.size[0])
    assert len(shapes) == 12 and lowest > -0.01
    art = model.articulation
    parent_xform, child_xform = art.link_parent_xform.numpy(), art.link_child_xform.numpy()
    link_body, link_parent = art.link_body.numpy(), art.link_parent.numpy()
    worst = 0.0
    for k in range(model.articulation.num_links):
        if link_parent[k] < 0:
            continue
        parent_pose, child_pose = q[link_body[link_parent[k]]], q[link_body[k]]
        a = parent_pose[:3] + quat_to_matrix(parent_pose[3:]) @ parent_xform[k, :3]
        b = child_pose[:3] + quat_to_matrix(child_pose[3:]) @ child_xform[k, :3]
        worst = max(worst, np.linalg.norm(a - b))
    assert worst < 1e-3


def write(tmp_path, text, name="model.xml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_malformed_xml_names_file_and_line(tmp_path):
    path = write(tmp_path, "<mujoco>\n  <worldbody>\n    <body>\n  </worldbody>\n</mujoco>\n")
    with pytest.raises(ValueError, match=r"model\.xml:4: malformed MJCF"):
        sim.load_mjcf(path)


def test_zero_joint_axis_names_file_and_line(tmp_path):
    text = ("<mujoco>\n<worldbody>\n<body pos='0 0 1'>\n<geom size='0.1'/>\n<joint type='hinge' axis='0 0 0'/>\n</body>\n"
            "</worldbody>\n</mujoco>\n")
    with pytest.raises(ValueError, match=r"model\.xml:5: .*zero axis"):
        sim.load_mjcf(write(tmp_path, text))


def test_unknown_joint_type_and_missing_actuator_joint(tmp_path):
    text = "<mujoco><worldbody><body><geom size='0.1'/><joint type='screw'/></body></worldbody></mujoco>"
    with pytest.raises(ValueError, match="unknown joint type 'screw'"):
        sim.load_mjcf(write(tmp_path, text))
    text = "<mujoco><worldbody><body><geom size='0.1'/><joint name='a'/></body></worldbody><actuator><motor joint='b'/></actuator></mujoco>"
    with pytest.raises(ValueError, match="unknown joint 'b'"):
        sim.load_mjcf(write(tmp_path, text, "b.xml"))
