"""SceneBuilder: collect bodies and shapes in Python, then ``finalize`` into a :class:`Model`.

Units are SI throughout (m, kg, s, N); z is up and gravity defaults to (0, 0, -9.81) m/s^2.
Quaternions are (x, y, z, w).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import warp as wp

from . import shapes as shp
from .articulation import ArticulationBuilderMixin
from .contact import ContactSettings, build_candidates
from .errors import ParameterError, check_finite, check_nonnegative, check_positive, check_vector, describe
from .model import Model
from .precision import get_precision, resolve_device
from .spatial import normalize_quaternion, quat_between, quat_to_matrix

IDENTITY_ROTATION = (0.0, 0.0, 0.0, 1.0)


@dataclass
class _Body:
    name: str
    position: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray
    angular_velocity: np.ndarray
    mass: float | None
    inertia: np.ndarray | None
    com: np.ndarray | None = None


class SceneBuilder(ArticulationBuilderMixin):
    """Build a scene of rigid bodies, collision shapes and a ground.

    Args:
        gravity: gravitational acceleration [m/s^2].
        stiffness: default contact stiffness ke [N/m] of new shapes.
        damping: default contact damping kd [N s/m] of new shapes.
        friction: default Coulomb friction coefficient of new shapes.

    See ``simulator.contact`` for how to choose stiffness, damping and the time step.
    """

    def __init__(self, *, gravity=(0.0, 0.0, -9.81), stiffness: float = 1.0e4, damping: float = 10.0, friction: float = 0.5):
        self.gravity = check_vector("gravity", gravity)
        self.default_stiffness = float(check_positive("stiffness", stiffness))
        self.default_damping = float(check_nonnegative("damping", damping))
        self.default_friction = float(check_nonnegative("friction", friction))
        self.bodies: list[_Body] = []
        self.shapes: list[shp.Shape] = []
        self.filtered_pairs: set[tuple[int, int]] = set()
        self.mujoco_index = None  # set by load_mjcf: where MuJoCo keeps the joints (simulator.mjcf.MuJoCoIndex)
        self.default_contact: ContactSettings | None = None  # finalize's contact settings when it is given none (load_mjcf sets it)

    # ------------------------------------------------------------------ bodies
    def add_body(
        self,
        *,
        position=(0.0, 0.0, 0.0),
        rotation=IDENTITY_ROTATION,
        velocity=(0.0, 0.0, 0.0),
        angular_velocity=(0.0, 0.0, 0.0),
        mass: float | None = None,
        inertia=None,
        com=None,
        name: str | None = None,
    ) -> int:
        """Add a rigid body and return its index.

        Args:
            position: initial position of the body origin [m]. Shapes are placed relative to it.
            rotation: initial orientation quaternion (x, y, z, w).
            velocity: initial velocity of the centre of mass [m/s].
            angular_velocity: initial angular velocity [rad/s], world axes.
            mass: body mass [kg]. If None, the sum of the shapes' masses from their densities.
                If given, the shapes' geometry still sets the centre of mass, and the inertia is
                scaled to this mass unless ``inertia`` is given.
            inertia: 3x3 inertia about the centre of mass in body axes [kg m^2] (or 3 principal
                moments). Required when the body has no shape with mass.
            com: centre of mass in the body origin frame [m]. With it, ``mass`` and ``inertia``
                (both required) are the body's mass properties and its shapes only collide
                (MJCF's ``<inertial>``); without it the shapes' geometry sets the centre of mass.
            name: label for error messages and output.
        """
        index = len(self.bodies)
        label = name or f"body{index}"
        mass, inertia, com = self._check_mass_properties(label, mass, inertia, com)
        self.bodies.append(
            _Body(
                name=label,
                position=check_vector(f"position of {label}", position),
                rotation=normalize_quaternion(f"rotation of {label}", rotation),
                velocity=check_vector(f"velocity of {label}", velocity),
                angular_velocity=check_vector(f"angular_velocity of {label}", angular_velocity),
                mass=mass,
                inertia=inertia,
                com=com,
            )
        )
        return index

    @staticmethod
    def _check_mass_properties(label, mass, inertia, com):
        if mass is not None:
            mass = float(check_positive(f"mass of {label}", mass))
        if inertia is not None:
            inertia = check_finite(f"inertia of {label}", inertia)
            if inertia.shape == (3,):
                inertia = np.diag(inertia)
            if inertia.shape != (3, 3):
                raise ParameterError(f"inertia of {label} must be 3 moments or a 3x3 matrix, got {describe(inertia)}")
            check_positive(f"inertia of {label} (principal moments)", np.linalg.eigvalsh(0.5 * (inertia + inertia.T)))
        if com is not None:
            com = check_vector(f"com of {label}", com)
            if mass is None or inertia is None:
                raise ParameterError(f"com of {label} needs mass= and inertia= as well, got mass={mass!r}, inertia={describe(inertia)}")
        return mass, inertia, com

    def set_mass_properties(self, body: int, *, mass: float, com, inertia) -> None:
        """Replace the mass properties of ``body`` (see ``add_body``'s ``mass``, ``com`` and
        ``inertia``); its shapes then only collide."""
        self._check_body(body, allow_static=False)
        record = self.bodies[body]
        record.mass, record.inertia, record.com = self._check_mass_properties(record.name, mass, inertia, com)

    def filter_collision(self, body_a: int, body_b: int) -> None:
        """Never generate contacts between the shapes of two bodies (-1 is the static world)."""
        self._check_body(body_a, allow_static=True)
        self._check_body(body_b, allow_static=True)
        self.filtered_pairs.add((min(body_a, body_b), max(body_a, body_b)))

    # ------------------------------------------------------------------ shapes
    def add_sphere(self, body: int, *, radius: float, **options) -> int:
        """Add a sphere of ``radius`` [m]. Options: see :meth:`add_shape`."""
        return self.add_shape(body, shp.SPHERE, size=(radius, 0.0, 0.0), **options)

    def add_box(self, body: int, *, half_extents, **options) -> int:
        """Add a box with ``half_extents`` (hx, hy, hz) [m]. Options: see :meth:`add_shape`."""
        half_extents = np.asarray(half_extents, dtype=float)
        if half_extents.shape != (3,):
            raise ParameterError(f"half_extents must have 3 entries, got {describe(half_extents)}")
        return self.add_shape(body, shp.BOX, size=half_extents, **options)

    def add_capsule(self, body: int, *, radius: float, half_height: float, **options) -> int:
        """Add a capsule along its local z axis: a segment of length ``2*half_height`` [m] swept by
        a sphere of ``radius`` [m]. Options: see :meth:`add_shape`."""
        return self.add_shape(body, shp.CAPSULE, size=(radius, half_height, 0.0), **options)

    def add_mesh(self, body: int, *, mesh, scale: float = 1.0, **options) -> int:
        """Add a triangle mesh (a ``trimesh.Trimesh`` or a file trimesh can load).

        Its vertices touch the ground and primitives (meshes are never contact targets). Mass
        properties come from trimesh, so a mesh that carries mass must be watertight.
        Options: see :meth:`add_shape`.
        """
        import trimesh

        if isinstance(mesh, (str, os.PathLike)):
            mesh = trimesh.load(mesh, force="mesh")
        if not isinstance(mesh, trimesh.Trimesh):
            raise ParameterError(f"mesh must be a trimesh.Trimesh or a path to a mesh file, got {type(mesh).__name__}")
        if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
            raise ParameterError(f"mesh must have vertices and faces, got {len(mesh.vertices)} vertices and {len(mesh.faces)} faces")
        scale = float(check_positive("mesh scale", scale))
        mesh = mesh.copy()
        mesh.apply_scale(scale)
        return self.add_shape(body, shp.MESH, size=(0.0, 0.0, 0.0), mesh=mesh, **options)

    def add_ground_plane(self, *, normal=(0.0, 0.0, 1.0), offset: float = 0.0, **material) -> int:
        """Add a static infinite plane ``dot(normal, x) = offset``; bodies stay on the side the
        normal points to. Material options: ``stiffness``, ``damping``, ``friction``."""
        normal = check_vector("normal", normal)
        length = np.linalg.norm(normal)
        if length < 1e-12:
            raise ParameterError(f"normal must be non-zero, got {describe(normal)}")
        normal = normal / length
        offset = float(check_vector("offset", [offset], 1)[0])
        rotation = quat_between([0.0, 0.0, 1.0], normal)
        return self.add_shape(-1, shp.PLANE, size=(0.0, 0.0, 0.0), position=normal * offset, rotation=rotation, **material)

    def add_shape(
        self,
        body: int,
        kind: int,
        *,
        size,
        position=(0.0, 0.0, 0.0),
        rotation=IDENTITY_ROTATION,
        density: float = 1000.0,
        stiffness: float | None = None,
        damping: float | None = None,
        friction: float | None = None,
        mesh=None,
    ) -> int:
        """Attach a shape to ``body`` (-1 for static geometry) and return its index.

        Args:
            position: shape origin relative to the body origin, body axes [m] (world if static).
            rotation: shape orientation relative to the body (x, y, z, w).
            density: [kg/m^3], used when the body's mass comes from its shapes; 0: the shape only
                collides (no mass, like MJCF's ``density="0"``).
            stiffness, damping, friction: contact material; builder defaults when None.
        """
        self._check_body(body, allow_static=True)
        kind_name = shp.SHAPE_NAMES[kind]
        if kind == shp.PLANE and body != -1:
            raise ParameterError(f"planes are static: body must be -1, got {body}")
        size = shp.check_size(kind, np.asarray(size, dtype=float))
        material = {
            "stiffness": self.default_stiffness if stiffness is None else float(check_positive(f"{kind_name} stiffness", stiffness)),
            "damping": self.default_damping if damping is None else float(check_nonnegative(f"{kind_name} damping", damping)),
            "friction": self.default_friction if friction is None else float(check_nonnegative(f"{kind_name} friction", friction)),
        }
        shape = shp.Shape(
            body=body,
            kind=kind,
            position=check_vector(f"{kind_name} position", position),
            rotation=normalize_quaternion(f"{kind_name} rotation", rotation),
            size=size,
            density=None if body < 0 else float(check_nonnegative(f"{kind_name} density", density)),
            mesh=mesh,
            **material,
        )
        if kind == shp.MESH:
            shape.contact_points = np.asarray(mesh.vertices, dtype=float)
        self.shapes.append(shape)
        return len(self.shapes) - 1

    def _check_body(self, body: int, *, allow_static: bool):
        low = -1 if allow_static else 0
        if not isinstance(body, (int, np.integer)) or not low <= body < len(self.bodies):
            raise ParameterError(f"body must be an index in [{low}, {len(self.bodies)}), got {body!r}")

    # ------------------------------------------------------------------ finalize
    def body_mass_properties(self, index: int):
        """The mass properties ``finalize`` gives body ``index``: (mass [kg], centre of mass in the
        body origin frame [m], 3x3 inertia about it in body axes [kg m^2])."""
        body = self.bodies[index]
        if body.com is not None:
            return body.mass, body.com, body.inertia
        total_mass, first_moment, parts = 0.0, np.zeros(3), []
        for shape in self.shapes:
            if shape.body != index or shape.density == 0.0:
                continue
            if shape.kind == shp.MESH:
                mass, com, inertia = shp.mesh_mass_properties(shape.mesh, shape.density, f"mesh of {body.name}")
            else:
                mass, com, inertia = shp.shape_mass_properties(shape)
            rot = quat_to_matrix(shape.rotation)
            com_body = shape.position + rot @ com
            parts.append((mass, com_body, rot @ inertia @ rot.T))
            total_mass += mass
            first_moment += mass * com_body
        if total_mass == 0.0:
            if body.mass is None or body.inertia is None:
                raise ParameterError(f"{body.name} has no shape with mass: give it mass= and inertia= (got mass={describe(body.mass)}, "
                                     f"inertia={describe(body.inertia)})")
            return body.mass, np.zeros(3), body.inertia
        com = first_moment / total_mass
        inertia = np.zeros((3, 3))
        for mass, com_part, inertia_part in parts:
            d = com_part - com
            inertia += inertia_part + mass * (np.dot(d, d) * np.eye(3) - np.outer(d, d))
        if body.mass is None:
            return total_mass, com, inertia
        if body.inertia is not None:
            return body.mass, com, body.inertia
        return body.mass, com, inertia * (body.mass / total_mass)

    def finalize(
        self,
        *,
        num_worlds: int = 1,
        device=None,
        precision: str = "float32",
        requires_grad: bool = False,
        contact: ContactSettings | None = None,
    ) -> Model:
        """Turn the scene into a :class:`Model` of ``num_worlds`` identical worlds.

        Args:
            num_worlds: number of independent copies (their parameters and states may then be
                changed per world).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:0"``...; None picks Warp's preferred device.
            precision: ``"float32"`` (default) or ``"float64"`` (gradient checks).
            requires_grad: allocate gradient buffers for states, controls and parameters.
            contact: softening, surrogate mode and friction smoothing (see ``ContactSettings``);
                None: ``self.default_contact`` (set by ``load_mjcf``), else the defaults.
        """
        if not isinstance(num_worlds, (int, np.integer)) or num_worlds < 1:
            raise ParameterError(f"num_worlds must be a positive integer, got {num_worlds!r}")
        if not self.bodies:
            raise ParameterError("the scene has no bodies; add one with add_body()")
        contact = contact or self.default_contact or ContactSettings()
        prec = get_precision(precision)
        dev = resolve_device(device)
        W, B, S = int(num_worlds), len(self.bodies), len(self.shapes)

        masses, inertias, coms = [], [], []
        for b in range(B):
            mass, com, inertia = self.body_mass_properties(b)
            masses.append(mass)
            inertias.append(inertia)
            coms.append(com)

        # every body frame is moved to its centre of mass: shapes are re-expressed relative to it
        shape_transform = np.zeros((max(S, 1), 7))
        shape_transform[:, 6] = 1.0
        for s, shape in enumerate(self.shapes):
            offset = shape.position - (coms[shape.body] if shape.body >= 0 else 0.0)
            shape_transform[s, :3] = offset
            shape_transform[s, 3:] = shape.rotation

        body_q = np.zeros((B, 7))
        for b, body in enumerate(self.bodies):
            body_q[b, :3] = body.position + quat_to_matrix(body.rotation) @ coms[b]
            body_q[b, 3:] = body.rotation

        candidates = build_candidates(self.shapes, self.filtered_pairs)

        def source_point(c, point):
            """A candidate point from its source shape's frame to its body's COM frame."""
            t = shape_transform[c.source]
            return t[:3] + quat_to_matrix(t[3:]) @ point

        C = len(candidates)

        def per_world(values):
            values = np.asarray(values, dtype=np.float64)
            return np.broadcast_to(values, (W,) + values.shape).copy()

        def array(values, dtype, grad=False):
            return wp.array(np.asarray(values, dtype=prec.numpy), dtype=dtype, device=dev, requires_grad=grad)

        def int_array(values):
            return wp.array(np.asarray(values, dtype=np.int32).reshape(-1), dtype=wp.int32, device=dev)

        material = {key: [getattr(s, key) for s in self.shapes] or [0.0] for key in ("stiffness", "damping", "friction")}
        model = Model(
            device=dev,
            precision=prec,
            num_worlds=W,
            body_count=B,
            shape_count=S,
            gravity=tuple(float(g) for g in self.gravity),
            body_mass=array(per_world(masses), prec.scalar, requires_grad),
            body_inertia=array(per_world(inertias), prec.mat33, requires_grad),
            body_names=[b.name for b in self.bodies],
            shape_body=int_array([s.body for s in self.shapes] or [-1]),
            shape_type=int_array([s.kind for s in self.shapes] or [shp.PLANE]),
            shape_transform=array(shape_transform, prec.transform),
            shape_size=array(np.array([s.size for s in self.shapes] or [np.zeros(3)]), prec.vec3),
            shape_stiffness=array(per_world(material["stiffness"]), prec.scalar, requires_grad),
            shape_damping=array(per_world(material["damping"]), prec.scalar, requires_grad),
            shape_friction=array(per_world(material["friction"]), prec.scalar, requires_grad),
            shape_meshes=[s.mesh for s in self.shapes],
            contact_softness=array(np.full(W, contact.softness), prec.scalar, requires_grad),
            contact_mode=contact.mode,
            friction_smoothing=float(contact.friction_smoothing),
            contact_impact_speed=float(contact.impact_speed),
            candidate_source=int_array([c.source for c in candidates]),
            candidate_target=int_array([c.target for c in candidates]),
            candidate_kind=int_array([c.kind for c in candidates]),
            candidate_point=array(np.array([source_point(c, c.point) for c in candidates]).reshape(C, 3), prec.vec3),
            candidate_point2=array(np.array([source_point(c, c.point2) for c in candidates]).reshape(C, 3), prec.vec3),
            candidate_radius=array([c.radius for c in candidates], prec.scalar),
            requires_grad=requires_grad,
            initial_body_q=per_world(body_q),
            initial_body_v=per_world([b.velocity for b in self.bodies]),
            initial_body_w=per_world([b.angular_velocity for b in self.bodies]),
            body_com=np.array(coms, dtype=np.float64).reshape(B, 3),
            mujoco_index=self.mujoco_index,
        )
        # joints and actuators (simulator.articulation): reduced coordinates
        model.articulation = self._finalize_articulation(model, coms, requires_grad)
        model.validate()  # e.g. a mesh with a NaN vertex gives a NaN mass
        return model
