"""Cylinder and ellipsoid geoms with MuJoCo's exact mass properties, box ``fromto``, against MuJoCo's
compiler on the same file (``tests/robots/mjcf/solids.xml``) in the same test; they collide as
meshes (a cylinder rests on the floor at its half height)."""

import os
import warnings

import numpy as np
import pytest

import simulator as sim
from simulator.spatial import quat_to_matrix

mujoco = pytest.importorskip("mujoco")

SOLIDS = os.path.join(os.path.dirname(__file__), "mjcf", "solids.xml")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.filterwarnings("ignore:no contact between a mesh and a mesh")
def test_mass_properties_match_mujoco(device):
    """Per body: mass, world centre of mass and world inertia within 1e-10 of MuJoCo's."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", sim.MJCFWarning)  # nothing approximated
        builder = sim.load_mjcf(SOLIDS)
    model = builder.finalize(device=device, precision="float64")
    reference = mujoco.MjModel.from_xml_path(SOLIDS)
    data = mujoco.MjData(reference)
    mujoco.mj_forward(reference, data)
    body_q, inertia, mass = model.state().body_q.numpy()[0], model.body_inertia.numpy()[0], model.body_mass.numpy()[0]
    for b in range(model.body_count):
        rot = quat_to_matrix(body_q[b, 3:])
        ximat = data.ximat[b + 1].reshape(3, 3)
        assert mass[b] == pytest.approx(reference.body_mass[b + 1], rel=1e-10), model.body_names[b]
        np.testing.assert_allclose(body_q[b, :3], data.xipos[b + 1], atol=1e-10, err_msg=model.body_names[b])
        np.testing.assert_allclose(rot @ inertia[b] @ rot.T, ximat @ np.diag(reference.body_inertia[b + 1]) @ ximat.T, atol=1e-10,
                                   err_msg=model.body_names[b])


@pytest.mark.filterwarnings("ignore:no contact between a mesh and a mesh")  # the solids collide as meshes
def test_cylinder_and_ellipsoid_rest_on_the_floor(device):
    """The puck (upright cylinder) rests at its half height, as in MuJoCo (within the contact's
    static sink of a few mm); the egg lands and stays above the floor by about its smallest
    semi-axis or more."""
    builder = sim.load_mjcf(SOLIDS)
    model = builder.finalize(device=device)
    from simulator import rigid

    limit = min(rigid.contact_time_scales(model).values())
    substeps = max(1, int(np.ceil(0.002 / limit)) + 1)
    a, b = model.state(requires_grad=False), model.output_state()
    for _ in range(250 * substeps):
        sim.step(model, a, b, None, 0.002 / substeps)
        a, b = b, a
    reference = mujoco.MjModel.from_xml_path(SOLIDS)
    data = mujoco.MjData(reference)
    for _ in range(250):
        mujoco.mj_step(reference, data)
    z = a.body_q.numpy()[0, :, 2]
    assert data.xipos[1][2] == pytest.approx(0.02, abs=1e-3)
    assert z[0] == pytest.approx(data.xipos[1][2], abs=5e-3), (z[0], data.xipos[1][2])
    assert 0.055 < z[1] < 0.11 and np.isfinite(z).all()
