"""Shapes: mass properties against trimesh (the reference), several shapes per body, and each
contact pair type coming to rest where geometry says it should."""

import math

import numpy as np
import pytest
import trimesh

import simulator as sim
from simulator import rigid, shapes


G = 9.81


def test_primitive_mass_properties_match_trimesh():
    """Uniform-density mass and inertia (textbook formulas) vs trimesh on fine meshes."""
    density = 700.0
    m, _, inertia = shapes.box_mass_properties((0.1, 0.2, 0.3), density)
    ref = trimesh.creation.box(extents=(0.2, 0.4, 0.6))
    ref.density = density
    assert m == pytest.approx(ref.mass, rel=1e-12)
    assert np.allclose(inertia, ref.moment_inertia, rtol=1e-10, atol=1e-14)

    m, _, inertia = shapes.sphere_mass_properties(0.2, density)
    ref = trimesh.creation.icosphere(subdivisions=5, radius=0.2)
    ref.density = density
    assert m == pytest.approx(ref.mass, rel=2e-3)
    assert np.allclose(inertia, ref.moment_inertia, rtol=4e-3)

    m, _, inertia = shapes.capsule_mass_properties(0.1, 0.25, density)
    ref = trimesh.creation.capsule(height=0.5, radius=0.1, count=[128, 128])
    ref.density = density
    assert m == pytest.approx(ref.mass, rel=2e-3)
    assert np.allclose(inertia, ref.moment_inertia, rtol=4e-3)


def test_composite_body_mass_properties_match_trimesh(device):
    """Several shapes with local offsets and rotations: parallel-axis sum vs trimesh on the union."""
    rotation = np.array([0.0, 0.0, np.sin(0.3), np.cos(0.3)])
    b = sim.SceneBuilder()
    body = b.add_body()
    b.add_box(body, half_extents=(0.2, 0.1, 0.05), position=(0.3, 0.0, 0.0), rotation=rotation, density=500.0)
    b.add_box(body, half_extents=(0.05, 0.05, 0.3), position=(-0.2, 0.1, 0.2), density=500.0)
    model = b.finalize(device=device, precision="float64")

    first = trimesh.creation.box(extents=(0.4, 0.2, 0.1))
    first.apply_transform(trimesh.transformations.rotation_matrix(0.6, [0, 0, 1]))
    first.apply_translation((0.3, 0.0, 0.0))
    second = trimesh.creation.box(extents=(0.1, 0.1, 0.6))
    second.apply_translation((-0.2, 0.1, 0.2))
    union = trimesh.util.concatenate([first, second])
    union.density = 500.0
    assert model.body_mass.numpy()[0, 0] == pytest.approx(union.mass, rel=1e-10)
    assert np.allclose(model.state().body_q.numpy()[0, 0, :3], union.center_mass, atol=1e-12)
    assert np.allclose(model.body_inertia.numpy()[0, 0], union.moment_inertia, rtol=1e-9, atol=1e-12)


def test_mesh_shape_uses_trimesh_mass_and_scale(device):
    mesh = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    b = sim.SceneBuilder()
    body = b.add_body()
    b.add_mesh(body, mesh=mesh, scale=0.2, density=1000.0)
    model = b.finalize(device=device, precision="float64")
    assert model.body_mass.numpy()[0, 0] == pytest.approx(8.0, rel=1e-10)
    assert np.allclose(np.diag(model.body_inertia.numpy()[0, 0]), 8.0 / 12.0 * 0.08, rtol=1e-10)


def _settle(builder, seconds=1.5, dt=5e-4, worlds=1, *, device):
    """Settle for ``seconds`` in steps of ``dt``, split into the substeps the contact bound asks."""
    model = builder.finalize(num_worlds=worlds, device=device, precision="float64")
    substeps = max(1, math.ceil(dt / min(rigid.contact_time_scales(model).values())))
    final = sim.rollout(model, model.state(), num_steps=int(seconds / dt), dt=dt, substeps=substeps, record=False).final
    return model, final


def _rest_height(mass, contacts, k):
    return mass * G / (contacts * k)


@pytest.mark.parametrize("kind", ["box", "mesh_box", "capsule", "sphere"])
def test_shapes_rest_on_the_ground_at_their_geometric_height(kind, device):
    """Each shape type against the plane settles at its supporting height minus m*g/(n*k)."""
    k = 1.0e5
    b = sim.SceneBuilder(stiffness=k, damping=300.0)
    body = b.add_body(position=(0.0, 0.0, 0.2))
    if kind == "box":
        b.add_box(body, half_extents=(0.1, 0.1, 0.1))
        height, contacts = 0.1, 4
    elif kind == "mesh_box":
        b.add_mesh(body, mesh=trimesh.creation.box(extents=(0.2, 0.2, 0.2)))
        height, contacts = 0.1, 4
    elif kind == "capsule":
        b.add_capsule(body, radius=0.05, half_height=0.2, rotation=(0.7071068, 0.0, 0.0, 0.7071068))
        height, contacts = 0.05, 2
    else:
        b.add_sphere(body, radius=0.1)
        height, contacts = 0.1, 1
    b.add_ground_plane()
    model, final = _settle(b, device=device)
    z = final.body_q.numpy()[0, 0, 2]
    sink = _rest_height(model.body_mass.numpy()[0, 0], contacts, k)
    assert z == pytest.approx(height - sink, abs=0.05 * sink + 1e-6)


def test_body_body_contacts_stack_and_support(device):
    """A box stacked on a box, a sphere on a static table, a capsule on a box, a capsule across
    a capsule: each comes to rest on the shape below (heights from geometry, within 1 mm; the
    stiffness 1e6 N/m keeps every penetration m*g/(n*k) below 0.3 mm)."""
    b = sim.SceneBuilder(stiffness=1.0e6, damping=1000.0, friction=0.8)
    b.add_ground_plane()
    lower = b.add_body(position=(0.0, 0.0, 0.1))
    b.add_box(lower, half_extents=(0.1, 0.1, 0.1))
    upper = b.add_body(position=(0.0, 0.0, 0.3))
    b.add_box(upper, half_extents=(0.08, 0.08, 0.1))
    b.add_box(-1, half_extents=(0.2, 0.2, 0.25), position=(1.0, 0.0, 0.25))  # static table
    ball = b.add_body(position=(1.0, 0.0, 0.6))
    b.add_sphere(ball, radius=0.1)
    base = b.add_body(position=(-1.0, 0.0, 0.1))
    b.add_box(base, half_extents=(0.3, 0.3, 0.1))
    lying = (0.7071068, 0.0, 0.0, 0.7071068)  # capsule axis along y
    rod = b.add_body(position=(-1.0, 0.0, 0.26), rotation=lying)
    b.add_capsule(rod, radius=0.05, half_height=0.2)
    crossing = b.add_body(position=(-1.0, 0.0, 0.37), rotation=(0.0, 0.7071068, 0.0, 0.7071068))  # along x
    b.add_capsule(crossing, radius=0.05, half_height=0.2)
    model, final = _settle(b, seconds=1.5, device=device)
    z = final.body_q.numpy()[0, :, 2]
    expected = {upper: 0.3, ball: 0.6, rod: 0.25, crossing: 0.35}
    for body, height in expected.items():
        assert z[body] == pytest.approx(height, abs=1e-3), model.body_names[body]
    assert np.all(np.abs(final.body_v.numpy()[0]) < 1e-2)
