"""Collision shapes and their mass properties (uniform density).

Each ``*_mass_properties`` function returns ``(mass [kg], centre of mass [m] in the shape frame,
inertia [kg m^2] about that centre in shape axes)``. Capsules are aligned with their local z axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, check_positive
from .kernels.constants import ShapeType

SPHERE, BOX, CAPSULE, PLANE, MESH = ShapeType.SPHERE, ShapeType.BOX, ShapeType.CAPSULE, ShapeType.PLANE, ShapeType.MESH
SHAPE_NAMES = {kind: kind.name.lower() for kind in ShapeType}


@dataclass
class Shape:
    """A shape as the builder records it (host side, float64).

    Attributes:
        body: owning body, -1 for a static shape.
        kind: a ``ShapeType`` (SPHERE, BOX, CAPSULE, PLANE or MESH).
        position: shape origin in the body's origin frame [m] (world frame if static).
        rotation: shape orientation quaternion (x, y, z, w) relative to the body.
        size: see ``Model.shape_size``.
        density: [kg/m^3], None for static shapes.
        stiffness, damping, friction: contact material (see ``simulator.contact``).
        mesh: a ``trimesh.Trimesh`` in the shape frame (MESH only).
        contact_points: (n, 3) surface points [m] in the shape frame used as contact sources.
        contact_radius: radius [m] of those points (sphere and capsule), else 0.
        margin: contact margin [m]: a pair's contacts act from ``margin_a + margin_b`` apart (its
            candidates' radii grow by that sum, as MuJoCo's geom ``margin``); 0 by default.
    """

    body: int
    kind: int
    position: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    density: float | None
    stiffness: float
    damping: float
    friction: float
    mesh: object = None
    contact_points: np.ndarray | None = None
    contact_radius: float = 0.0
    margin: float = 0.0


def sphere_mass_properties(radius: float, density: float):
    mass = density * 4.0 / 3.0 * math.pi * radius**3
    return mass, np.zeros(3), np.eye(3) * (0.4 * mass * radius**2)


def box_mass_properties(half_extents, density: float):
    a, b, c = (float(x) for x in half_extents)
    mass = density * 8.0 * a * b * c
    # I_xx = m/3 (b^2 + c^2) for half extents (a, b, c)
    inertia = np.diag([b * b + c * c, a * a + c * c, a * a + b * b]) * (mass / 3.0)
    return mass, np.zeros(3), inertia


def capsule_mass_properties(radius: float, half_height: float, density: float):
    """A cylinder of length 2h capped by two hemispheres of radius r, axis along z."""
    r, h = float(radius), float(half_height)
    m_cyl = density * math.pi * r * r * 2.0 * h
    m_caps = density * 4.0 / 3.0 * math.pi * r**3  # both hemispheres together
    i_axial = 0.5 * m_cyl * r * r + 0.4 * m_caps * r * r
    # cylinder about its centre, plus the two hemispheres (each offset from the centre by h + 3r/8)
    i_cyl = m_cyl * (3.0 * r * r + 4.0 * h * h) / 12.0
    i_caps = m_caps * (0.4 * r * r + h * h + 0.75 * h * r)
    i_transverse = i_cyl + i_caps
    return m_cyl + m_caps, np.zeros(3), np.diag([i_transverse, i_transverse, i_axial])


def mesh_mass_properties(mesh, density: float, name: str = "mesh"):
    """Mass properties from trimesh; the mesh must be watertight for them to mean anything."""
    if not mesh.is_watertight:
        raise ParameterError(
            f"{name} is not watertight, so its volume and mass are undefined; give the body an "
            "explicit mass and inertia, or repair the mesh (trimesh.repair.fill_holes)"
        )
    if mesh.volume <= 0.0:
        raise ParameterError(f"{name} has non-positive volume {mesh.volume!r}; are its faces inverted?")
    mesh = mesh.copy()
    mesh.density = density
    return float(mesh.mass), np.asarray(mesh.center_mass, dtype=float), np.asarray(mesh.moment_inertia, dtype=float)


def shape_mass_properties(shape: Shape):
    density = float(shape.density)
    if shape.kind == SPHERE:
        return sphere_mass_properties(shape.size[0], density)
    if shape.kind == BOX:
        return box_mass_properties(shape.size, density)
    if shape.kind == CAPSULE:
        return capsule_mass_properties(shape.size[0], shape.size[1], density)
    if shape.kind == MESH:
        return mesh_mass_properties(shape.mesh, density)
    raise ParameterError(f"shape must be a sphere, box, capsule or mesh to have a mass, got a {SHAPE_NAMES[shape.kind]}")


def box_corners(half_extents) -> np.ndarray:
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    return signs * np.asarray(half_extents, dtype=float)


def check_size(kind: int, size) -> np.ndarray:
    name = SHAPE_NAMES[kind]
    if kind == SPHERE:
        return np.array([float(check_positive(f"{name} radius", size[0])), 0.0, 0.0])
    if kind == BOX:
        return check_positive(f"{name} half_extents", size).reshape(3)
    if kind == CAPSULE:
        radius = float(check_positive(f"{name} radius", size[0]))
        half_height = float(check_positive(f"{name} half_height", size[1]))
        return np.array([radius, half_height, 0.0])
    return np.zeros(3)
