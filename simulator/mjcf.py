"""MJCF import: ``load_mjcf(path) -> SceneBuilder`` for the common subset of MuJoCo's format.

Supported: ``<include file>`` (its ``<mujoco>`` children take its place; a relative path is looked
up in the main file's directory, then in the including file's, as MuJoCo does), ``<compiler angle
coordinate="local" eulerseq assetdir meshdir inertiafromgeom settotalmass autolimits>``, ``<option gravity
timestep>`` and its ``<flag gravity>``, nested ``<default>`` classes (``class`` / ``childclass``),
the ``<worldbody>`` tree of ``<body pos>`` and ``<frame pos>`` (each oriented by ``quat``,
``axisangle``, ``euler``, ``xyaxes`` or ``zaxis``; a frame moves what it holds and takes a
``childclass``) with ``<geom>`` (sphere, capsule, box, plane, mesh, and cylinder and ellipsoid with
MuJoCo's exact mass properties that collide as meshes: against planes and primitives, not each
other; ``fromto`` on capsules, cylinders, boxes and ellipsoids; ``margin``; ``density`` or
``mass``; ``friction``; ``contype``/``conaffinity``; ``condim`` 1 where every geom it can touch is
condim 1 too, else a warning), ``<inertial mass pos diaginertia|fullinertia>``
with its orientation, ``<joint>`` (hinge, slide, ball, free; ``range``/``limited`` with
``solreflimit`` and the dmax of ``solimplimit`` (MuJoCo's limit law, see
:mod:`simulator.articulation`), ``damping``, ``armature``; and ``stiffness``, ``springref``,
``ref`` for hinge and slide) and ``<freejoint>``,
and ``<actuator>`` ``<motor>`` (gear, ctrlrange, forcerange) and ``<position>`` (kp, kv, ctrlrange),
whose ``<default>`` entries are shared by every actuator kind as in MuJoCo. A body without a joint
is welded to its parent (a fixed joint). Joint coordinates are MuJoCo's ``qpos`` for hinge and
slide joints: the body has its MJCF pose at ``q = ref``. Contacts use the penalty law with each
geom's stiffness and damping derived from its ``solref`` (and ``solimp``'s dmax) and the masses
of its kinematic tree (:func:`load_mjcf`), unless ``load_mjcf(stiffness=, damping=)`` sets them all;
a pair's contacts act from the sum of its geoms' ``margin`` apart, as in MuJoCo.

Moving states and policies to and from MuJoCo: :func:`to_mujoco_state` and
:func:`from_mujoco_state` convert ``joint_q``/``joint_qd`` to MuJoCo's ``qpos``/``qvel`` and back,
:func:`actuator_order`, :func:`ctrl_to_joint_act` and :func:`joint_act_to_ctrl` map the columns of
``joint_act`` to MuJoCo's ``ctrl`` (conventions in :mod:`simulator.mjcf_state`).

Everything else gives one warning per element or attribute kind, naming it: it is ignored, or
approximated as the warning says. Malformed files and invalid values raise
:class:`simulator.errors.ParameterError` (a ``ValueError``) with the file, line, attribute and
value. The XML is parsed with the standard library; the ``mujoco`` package is not needed.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from .builder import SceneBuilder
from .contact import ContactSettings
from .errors import ParameterError
from .articulation.joints import limit_law_from_solref
from .mjcf_state import MuJoCoIndex, actuator_order, ctrl_to_joint_act, from_mujoco_state, joint_act_to_ctrl, to_mujoco_state
from .mjcf_xml import IDENTITY_POSE, ORIENTATION_ATTRS, error, expand_includes, number, numbers, orientation, parse, pose, pose_mul, z_to
from .spatial import quat_to_matrix

_VISUAL_TAGS = {"light", "camera", "site", "texture", "material", "custom", "visual", "statistic", "size", "numeric", "text", "tuple", "key", "keyframe"}
_VISUAL_ATTRS = {"name", "rgba", "material", "class", "group", "conaffinity", "contype", "user", "texture", "childclass", "mode", "target"}


# MuJoCo's <option><flag> values that default to "disable" (every other flag is enabled by default):
# "gravity" is read, a change to any other flag warns
_FLAGS_OFF_BY_DEFAULT = frozenset({"override", "energy", "fwdinv", "invdiscrete", "multiccd", "island", "sleep"})


__all__ = [
    "MJCFWarning",
    "MuJoCoIndex",
    "actuator_order",
    "ctrl_to_joint_act",
    "from_mujoco_state",
    "joint_act_to_ctrl",
    "load_mjcf",
    "to_mujoco_state",
]


# MuJoCo's actuator elements: their <default> entries all set the one default actuator of a class
_ACTUATOR_TAGS = frozenset({"general", "motor", "position", "velocity", "intvelocity", "damper", "cylinder", "muscle", "adhesion", "dcmotor", "plugin"})


def _default_key(tag: str) -> str:
    """Where a ``<default>`` child's attributes are kept: its tag, or ``"actuator"`` for every actuator kind."""
    return "actuator" if tag in _ACTUATOR_TAGS else tag


class MJCFWarning(UserWarning):
    """An MJCF element or attribute that is ignored or approximated."""


class _Loader:
    def __init__(self, path, builder_options, penalty_given=False):
        self.path = str(path)
        self.penalty_given = penalty_given  # True: builder_options' stiffness and damping for every geom
        self.root = parse(self.path)
        main_dir = os.path.dirname(os.path.abspath(self.path))
        expand_includes(self.root, main_dir, {os.path.realpath(self.path)})
        self.warned: set[str] = set()
        self.angle_scale = math.pi / 180.0
        self.eulerseq = "xyz"
        self.meshdir, self.meshdir_given = main_dir, False
        self.inertiafromgeom = "auto"
        self.settotalmass = -1.0
        self.autolimits = True
        self.gravity_enabled = True
        self.defaults: dict[str, dict[str, dict[str, str]]] = {}
        self.builder_options = builder_options
        self.joint_ids: dict[str, int] = {}
        self.mujoco_joints: list[tuple[int, str, int]] = []  # (joint here, kind, body) in MuJoCo's joint order
        self.actuator_ctrl: list[int] = []  # MuJoCo's ctrl index of each actuator here
        self.ctrl_count = 0  # MuJoCo's actuators so far (each child of <actuator>, dropped ones too)
        self.nested_free = False  # a free joint below another body (MuJoCo rejects the file)
        self.geom_flags: list[tuple] = []  # (body, contype, conaffinity, condim, shape, element) of each geom
        self.meshes: dict[str, tuple[str, float]] = {}
        self.geom_law: list[tuple[int, int, float, float]] = []  # (shape, body, k [1/s^2], b [1/s]) from solref/solimp
        self.body_parent: dict[int, int] = {}  # parent body of each body (-1: the world)
        self.moving_bodies: set[int] = set()  # bodies with a joint that is not fixed
        self.lifting: dict[int, bool] = {}  # bodies with a free joint or a slide along z (their tree rests on its contacts)
        self.solid_parts: dict[int, list] = {}  # body -> exact (mass, centre, inertia) of its cylinders and ellipsoids

    # ---------------------------------------------------------------- helpers
    def where(self, elem):
        """``line N`` (``file line N`` for an element read from an included file)."""
        if getattr(elem, "file", self.path) == self.path:
            return f"line {elem.line}"
        return f"{os.path.basename(elem.file)} line {elem.line}"

    def warn(self, key, message):
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(f"{os.path.basename(self.path)}: {message}", MJCFWarning, stacklevel=4)

    def attrs(self, elem, cls):
        """The element's attributes over its default class chain."""
        key = _default_key(elem.tag)
        merged = dict(self.defaults.get(cls, {}).get(key, {}))
        if "class" in elem.attrib:
            if elem.attrib["class"] not in self.defaults:
                error(elem, f"unknown default class {elem.attrib['class']!r}")
            merged = dict(self.defaults[elem.attrib["class"]].get(key, {}))
        merged.update(elem.attrib)
        return merged

    def check_attrs(self, elem, attrs, known):
        for name in attrs:
            if name not in known and name not in _VISUAL_ATTRS:
                self.warn(f"{elem.tag}@{name}", f"<{elem.tag} {name}=...> ({self.where(elem)}) is not supported and is ignored")

    def local_pose(self, elem, attrs):
        """The element's ``pos`` and orientation as a pose (7,) in its parent's frame."""
        return pose(numbers(elem, attrs, "pos", 3, np.zeros(3)), orientation(elem, attrs, self.angle_scale, self.eulerseq))

    # ---------------------------------------------------------------- sections
    def read_defaults(self, elem, parent_cls=None):
        cls = elem.attrib.get("class", "main")
        inherited = {tag: dict(a) for tag, a in self.defaults.get(parent_cls, {}).items()} if parent_cls else {}
        for child in elem:
            if child.tag == "default":
                continue
            inherited.setdefault(_default_key(child.tag), {}).update(child.attrib)
        self.defaults[cls] = inherited
        for child in elem:
            if child.tag == "default":
                self.read_defaults(child, cls)

    def read_compiler(self, elem):
        """One ``<compiler>`` element (a later one overrides only the attributes it sets)."""
        a = elem.attrib
        self.check_attrs(elem, a, {"angle", "eulerseq", "coordinate", "assetdir", "meshdir", "texturedir", "inertiafromgeom", "settotalmass", "autolimits"})
        if "angle" in a:
            if a["angle"] not in ("degree", "radian"):
                error(elem, f"<compiler angle={a['angle']!r}> must be 'degree' or 'radian'")
            self.angle_scale = 1.0 if a["angle"] == "radian" else math.pi / 180.0
        if "eulerseq" in a:
            seq = a["eulerseq"]
            if len(seq) != 3 or any(c not in "xyzXYZ" for c in seq):
                error(elem, f"<compiler eulerseq={seq!r}> must be three of the letters x, y, z, X, Y, Z")
            self.eulerseq = seq
        if a.get("coordinate", "local") != "local":
            error(elem, "compiler coordinate='global' is not supported (MuJoCo removed it too); use local coordinates")
        main_dir = os.path.dirname(os.path.abspath(self.path))  # both relative to the main file
        if "meshdir" in a:
            self.meshdir, self.meshdir_given = os.path.join(main_dir, a["meshdir"]), True
        elif "assetdir" in a and not self.meshdir_given:  # assetdir is meshdir's default
            self.meshdir = os.path.join(main_dir, a["assetdir"])
        for name, allowed in (("inertiafromgeom", ("auto", "true", "false")), ("autolimits", ("true", "false"))):
            if name in a and a[name] not in allowed:
                error(elem, f"<compiler {name}={a[name]!r}> must be one of {', '.join(map(repr, allowed))}")
        self.inertiafromgeom = a.get("inertiafromgeom", self.inertiafromgeom)
        self.autolimits = a.get("autolimits", "true" if self.autolimits else "false") == "true"
        self.settotalmass = number(elem, a, "settotalmass", self.settotalmass)

    def read_option(self, elem, gravity):
        """One ``<option>`` element: gravity, timestep, and its ``<flag gravity>``."""
        a = elem.attrib
        if "gravity" in a:
            gravity = tuple(numbers(elem, a, "gravity", 3))
        self.timestep = number(elem, a, "timestep", getattr(self, "timestep", 0.002))
        self.check_attrs(elem, a, {"gravity", "timestep", "integrator"})
        if a.get("integrator", "Euler") != "Euler":
            self.warn("option@integrator", f"integrator={a['integrator']!r} ignored: this simulator uses semi-implicit Euler")
        for child in elem:
            if child.tag != "flag":
                self.warn(f"option/{child.tag}", f"<option><{child.tag}> ({self.where(child)}) is not supported and is ignored")
                continue
            for name, value in child.attrib.items():
                if value not in ("enable", "disable"):
                    error(child, f"<flag {name}={value!r}> must be 'enable' or 'disable'")
                if name == "gravity":
                    self.gravity_enabled = value == "enable"
                elif value != ("disable" if name in _FLAGS_OFF_BY_DEFAULT else "enable"):
                    self.warn(f"flag@{name}", f"<flag {name}={value!r}> ({self.where(child)}) is not supported and is ignored")
        return gravity

    def load(self) -> SceneBuilder:
        root = self.root
        gravity = (0.0, 0.0, -9.81)
        for child in root:
            if child.tag == "compiler":
                self.read_compiler(child)
        for child in root:
            if child.tag == "option":
                gravity = self.read_option(child, gravity)
            elif child.tag == "default":
                self.read_defaults(child)
        if not self.gravity_enabled:
            gravity = (0.0, 0.0, 0.0)
        builder = SceneBuilder(gravity=gravity, **self.builder_options)
        builder.mjcf_timestep = getattr(self, "timestep", 0.002)
        for child in root:
            if child.tag == "asset":
                for item in child:
                    if item.tag == "mesh":
                        file = item.attrib.get("file")
                        if file is None:
                            error(item, "<mesh> needs a file attribute")
                        name = item.attrib.get("name", os.path.splitext(os.path.basename(file))[0])
                        scale = numbers(item, item.attrib, "scale", 3, np.ones(3))
                        if not np.allclose(scale, scale[0]):
                            self.warn("mesh@scale", f"non-uniform mesh scale ({self.where(item)}) approximated by its first entry")
                        self.meshes[name] = (os.path.join(self.meshdir, file), float(scale[0]))
                    elif item.tag not in _VISUAL_TAGS:
                        self.warn(f"asset/{item.tag}", f"<{item.tag}> assets ({self.where(item)}) are not supported and are ignored")
        for child in root:
            if child.tag == "worldbody":
                self.read_body(builder, child, -1, -1, IDENTITY_POSE, "main")
        for child in root:
            if child.tag == "actuator":
                self.read_actuators(builder, child)
            elif child.tag not in ("compiler", "option", "default", "asset", "worldbody", "actuator") and child.tag not in _VISUAL_TAGS:
                self.warn(child.tag, f"<{child.tag}> ({self.where(child)}) is not supported and is ignored")
            elif child.tag in _VISUAL_TAGS:
                self.warn(child.tag, f"<{child.tag}> ({self.where(child)}) has no effect on the dynamics and is ignored")
        for body, parts in self.solid_parts.items():
            self.add_solid_parts(builder, body, parts)
        if self.settotalmass > 0.0:
            self.scale_total_mass(builder, self.settotalmass)
        self.apply_collision_filter(builder)
        self.apply_condim(builder)
        if not self.penalty_given:
            self.apply_contact_law(builder)
        joints, kinds, bodies = zip(*self.mujoco_joints) if self.mujoco_joints else ((), (), ())
        if not self.nested_free:  # MuJoCo rejects a free joint below another body: no MuJoCo state then
            builder.mujoco_index = MuJoCoIndex.from_joints(joints, kinds, bodies, self.actuator_ctrl, self.ctrl_count)
        return builder

    def contents(self, elem, frame, cls):
        """The children of ``elem`` as (child, frame, default class), looking through ``<frame>``
        elements: ``frame`` is the pose (7,) of the child's coordinate frame in ``elem``'s (nested
        frames compose; a frame's ``childclass`` applies to what it holds)."""
        for child in elem:
            if child.tag != "frame":
                yield child, frame, cls
                continue
            self.check_attrs(child, child.attrib, {"pos", *ORIENTATION_ATTRS})
            if "class" in child.attrib:
                self.warn("frame@class", f"<frame class=...> ({self.where(child)}): a frame takes no defaults (its childclass applies to its children)")
            yield from self.contents(child, pose_mul(frame, self.local_pose(child, child.attrib)), self.child_class(child, cls))

    def read_body(self, builder, elem, body, parent, body_pose, cls):
        """Add what ``elem`` (``<worldbody>``, body -1, or a ``<body>``, whose index is ``body``
        and whose parent body is ``parent``) holds: its geoms, its joints, then its child bodies.
        ``body_pose``: world pose (7,) of the body's origin in the model's initial configuration."""
        items = list(self.contents(elem, IDENTITY_POSE, cls))
        for child, frame, child_cls in items:
            if child.tag == "geom":
                self.read_geom(builder, child, body, child_cls, frame)
        if body >= 0:
            joints = [(j, frame, k) for j, frame, k in items if j.tag in ("joint", "freejoint")]
            if not joints:
                builder.add_fixed_joint(parent, body, **({"name": f"{builder.bodies[body].name}_weld"} if parent >= 0 else {}))
            for j, frame, k in joints:
                self.read_joint(builder, j, parent, body, k, frame)
        for child, frame, child_cls in items:
            tag = child.tag
            if tag == "body":
                a = self.attrs(child, child_cls)
                self.check_attrs(child, a, {"pos", *ORIENTATION_ATTRS})
                world = pose_mul(pose_mul(body_pose, frame), self.local_pose(child, a))
                mass_properties = self.read_inertial(child)
                index = builder.add_body(position=world[:3], rotation=world[3:], name=a.get("name"), **mass_properties)
                self.body_parent[index] = body
                self.read_body(builder, child, index, body, world, self.child_class(child, child_cls))
            elif tag in ("geom", "joint", "freejoint", "inertial"):
                continue  # read with their body
            elif tag in _VISUAL_TAGS:
                self.warn(tag, f"<{tag}> ({self.where(child)}) has no effect on the dynamics and is ignored")
            else:
                self.warn(tag, f"<{tag}> ({self.where(child)}) is not supported and is ignored")

    def read_inertial(self, body):
        """``add_body``'s mass properties from the body's ``<inertial>`` (MuJoCo's rules: with
        ``<compiler inertiafromgeom="auto">``, the default, it replaces the geoms' mass, centre of
        mass and inertia; with "true" it is ignored; with "false" it is required)."""
        inertial = body.find("inertial")
        if self.inertiafromgeom == "true" or (inertial is None and self.inertiafromgeom == "auto"):
            return {}
        if inertial is None:
            error(body, f"<body name={body.attrib.get('name', '')!r}> has no <inertial> and <compiler inertiafromgeom='false'> "
                  "takes no mass from geoms: MuJoCo gives it zero mass, which this simulator does not support")
        a = inertial.attrib
        self.check_attrs(inertial, a, {"mass", "pos", "diaginertia", "fullinertia", *ORIENTATION_ATTRS})
        for required in ("mass", "pos"):
            if required not in a:
                error(inertial, f"<inertial> needs the {required} attribute")
        mass = number(inertial, a, "mass")
        if mass <= 0.0:
            error(inertial, f"<inertial mass={a['mass']!r}> must be > 0")
        if ("diaginertia" in a) == ("fullinertia" in a):
            error(inertial, "<inertial> needs exactly one of diaginertia and fullinertia")
        if "fullinertia" in a:
            if any(name in a for name in ORIENTATION_ATTRS):
                error(inertial, "<inertial fullinertia=...> is already in the body frame: it takes no orientation")
            xx, yy, zz, xy, xz, yz = numbers(inertial, a, "fullinertia", 6)
            inertia, label = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]), "fullinertia"
        else:
            rot = quat_to_matrix(orientation(inertial, a, self.angle_scale, self.eulerseq))
            inertia, label = rot @ np.diag(numbers(inertial, a, "diaginertia", 3)) @ rot.T, "diaginertia"
        moments = np.sort(np.linalg.eigvalsh(inertia))
        if moments[0] <= 0.0 or moments[0] + moments[1] < moments[2] * (1.0 - 1e-10):
            error(inertial, f"<inertial {label}={a[label]!r}>: the principal moments must be > 0 with A + B >= C (as MuJoCo requires)")
        return {"mass": mass, "com": numbers(inertial, a, "pos", 3), "inertia": inertia}

    def scale_total_mass(self, builder, total):
        """``<compiler settotalmass>``: scale every body's mass and inertia by one factor so the
        masses sum to ``total`` [kg] (as MuJoCo does, after the mass properties are computed)."""
        properties = [builder.body_mass_properties(b) for b in range(len(builder.bodies))]
        scale = total / sum(mass for mass, _, _ in properties)
        for b, (mass, com, inertia) in enumerate(properties):
            builder.set_mass_properties(b, mass=mass * scale, com=com, inertia=inertia * scale)

    def read_geom(self, builder, elem, body, cls, frame):
        """One ``<geom>`` of ``body`` (-1: static); ``frame``: the pose (7,) its ``pos`` and
        orientation are given in, relative to the body's origin (the world for -1)."""
        a = self.attrs(elem, cls)
        known = {"type", "size", "pos", *ORIENTATION_ATTRS, "fromto", "density", "mass", "friction", "mesh", "margin", "solref", "solimp", "condim"}
        self.check_attrs(elem, a, known)
        margin = number(elem, a, "margin", 0.0)
        if margin < 0.0:
            error(elem, f"<geom margin={a['margin']!r}> must be >= 0")
        if self.penalty_given and any(name in a for name in ("solref", "solimp")):
            self.warn("geom@solref", f"<geom solref/solimp> ({self.where(elem)}): ignored, "
                      "load_mjcf(stiffness=, damping=) sets every contact")
        law = self.solref_law(elem, a)
        kind = a.get("type", "sphere")
        size = numbers(elem, a, "size", default=np.zeros(0))
        local = self.local_pose(elem, a)
        friction = numbers(elem, a, "friction", default=np.array([1.0]))
        options = {"friction": float(friction[0])}
        if kind in ("capsule", "cylinder", "box", "ellipsoid") and "fromto" in a:
            # MuJoCo: the segment sets the pose and the half length along z; size[0] is the radius
            # (capsule, cylinder) or both the x and y half sizes (box, ellipsoid)
            ft = numbers(elem, a, "fromto", 6)
            start, end = ft[:3], ft[3:]
            length = np.linalg.norm(end - start)
            if length < 1e-12:
                error(elem, f"<geom fromto={a['fromto']!r}> has zero length")
            if size.size < 1:
                error(elem, f"a {kind} with fromto needs size='radius' (its first number), got size={a.get('size')!r}")
            local = pose(0.5 * (start + end), z_to(end - start))
            size = np.array([size[0], 0.5 * length] if kind in ("capsule", "cylinder") else [size[0], size[0], 0.5 * length])
        placed = pose_mul(frame, local)
        pos, rot = placed[:3], placed[3:]
        if kind == "plane":
            if body != -1:
                error(elem, "a plane geom must belong to the worldbody")
            normal = quat_to_matrix(rot) @ np.array([0.0, 0.0, 1.0])
            shape = builder.add_ground_plane(normal=normal, offset=float(normal @ pos), **options)
            self.geom_flags.append((-1, *self.collision_bits(elem, a), self.condim(elem, a), shape, elem))
            self.geom_law.append((shape, -1, *law))
            builder.shapes[shape].margin = margin
            return shape
        if body >= 0:
            options["density"] = 1.0 if "mass" in a else number(elem, a, "density", 1000.0)  # mass: density set below
        if kind in ("cylinder", "ellipsoid"):
            shape = self.read_solid(builder, elem, a, body, kind, size, pos, rot, options)
            return self.flag_geom(builder, elem, a, body, shape, law, margin)
        if kind not in ("sphere", "capsule", "box", "mesh"):
            self.warn(f"geom/{kind}", f"{kind} geoms ({self.where(elem)}) are not supported and are skipped (their mass is missing)")
            return None
        needed = {"sphere": (1, "size='radius'"), "capsule": (2, "size='radius half_length' or fromto"), "box": (3, "size with 3 half sizes")}
        if kind in needed and size.size < needed[kind][0]:
            error(elem, f"a {kind} geom needs {needed[kind][1]}, got size={a.get('size')!r}")
        if kind == "mesh" and a.get("mesh") not in self.meshes:
            error(elem, f"unknown mesh {a.get('mesh')!r}")
        try:
            if kind == "sphere":
                shape = builder.add_sphere(body, radius=float(size[0]), position=pos, rotation=rot, **options)
            elif kind == "capsule":
                shape = builder.add_capsule(body, radius=float(size[0]), half_height=float(size[1]), position=pos, rotation=rot, **options)
            elif kind == "box":
                shape = builder.add_box(body, half_extents=size[:3], position=pos, rotation=rot, **options)
            else:
                file, scale = self.meshes[a["mesh"]]
                shape = builder.add_mesh(body, mesh=file, scale=scale, position=pos, rotation=rot, **options)
        except ValueError as exc:
            error(elem, str(exc))
        if body >= 0 and "mass" in a:
            from .shapes import mesh_mass_properties, shape_mass_properties

            mass = number(elem, a, "mass")
            if mass < 0.0:
                error(elem, f"<geom mass={a['mass']!r}> must be >= 0")
            s = builder.shapes[shape]
            unit = 1.0 if mass == 0.0 else mesh_mass_properties(s.mesh, 1.0)[0] if s.mesh is not None else shape_mass_properties(s)[0]
            s.density = mass / unit
        return self.flag_geom(builder, elem, a, body, shape, law, margin)

    def flag_geom(self, builder, elem, a, body, shape, law, margin):
        """Record a geom's collision bits, condim and contact law (applied at the end), set its margin."""
        self.geom_flags.append((body, *self.collision_bits(elem, a), self.condim(elem, a), shape, elem))
        self.geom_law.append((shape, body, *law))
        builder.shapes[shape].margin = margin
        return shape

    def read_solid(self, builder, elem, a, body, kind, size, pos, rot, options):
        """A cylinder (size: radius, half length) or ellipsoid (size: three semi-axes) geom: its
        exact mass properties (MuJoCo's formulas; ``mass`` or ``density``) go to
        ``self.solid_parts`` and are added to its body's at the end of loading; it collides as a
        massless mesh (a 16-sided prism, or an icosphere of 42 vertices, scaled), whose vertices
        touch planes and primitives (see ``SceneBuilder.add_mesh``)."""
        import trimesh

        needed = {"cylinder": (2, "size='radius half_length' or fromto"), "ellipsoid": (3, "size with 3 semi-axes")}[kind]
        if size.size < needed[0] or np.any(size[: needed[0]] <= 0.0):
            error(elem, f"a {kind} geom needs {needed[1]} (> 0), got size={a.get('size')!r}")
        if kind == "cylinder":
            radius, half = float(size[0]), float(size[1])
            volume = math.pi * radius * radius * 2.0 * half
            mesh = trimesh.creation.cylinder(radius=radius, height=2.0 * half, sections=16)
            side = (3.0 * radius * radius + 4.0 * half * half) / 12.0
            moments = np.array([side, side, 0.5 * radius * radius])
        else:
            axes = np.asarray(size[:3], dtype=float)
            volume = 4.0 / 3.0 * math.pi * float(np.prod(axes))
            mesh = trimesh.creation.icosphere(subdivisions=1)
            mesh.apply_scale(axes)
            squares = axes * axes
            moments = np.array([squares[1] + squares[2], squares[0] + squares[2], squares[0] + squares[1]]) / 5.0
        try:
            shape = builder.add_mesh(body, mesh=mesh, position=pos, rotation=rot, **dict(options, density=0.0))
        except ValueError as exc:
            error(elem, str(exc))
        if body >= 0:
            mass = number(elem, a, "mass") if "mass" in a else number(elem, a, "density", 1000.0) * volume
            if mass < 0.0:
                error(elem, f"<geom mass={a.get('mass')!r}> must be >= 0")
            r = quat_to_matrix(rot)
            self.solid_parts.setdefault(body, []).append((mass, np.asarray(pos, float), r @ np.diag(mass * moments) @ r.T))
        return shape

    def add_solid_parts(self, builder, body, parts):
        """Add the exact cylinder and ellipsoid ``parts`` (mass [kg], centre [m] and inertia about it
        [kg m^2], body frame) to the mass properties of ``body``'s other geoms."""
        if builder.bodies[body].com is not None:
            return  # an <inertial> (or settotalmass) already set the body's mass properties
        try:
            parts = [builder.body_mass_properties(body), *parts]
        except ParameterError:
            pass  # no other geom with mass
        total = sum(m for m, _, _ in parts)
        if total <= 0.0:
            return
        com = sum(m * c for m, c, _ in parts) / total
        inertia = sum(i + m * (np.dot(c - com, c - com) * np.eye(3) - np.outer(c - com, c - com)) for m, c, i in parts)
        builder.set_mass_properties(body, mass=total, com=com, inertia=inertia)

    def solref_law(self, elem, a):
        """A geom's contact law (k [1/s^2], b [1/s]) at the acceleration level, from its ``solref``
        (default 0.02, 1) and the dmax of its ``solimp`` (default 0.95; used by a negative solref)."""
        solref = numbers(elem, a, "solref", 2, np.array([0.02, 1.0]))
        solimp = numbers(elem, a, "solimp", default=np.array([0.9, 0.95, 0.001, 0.5, 2.0]))
        if solimp.size not in (3, 5) or not 0.0 < solimp[1] < 1.0:
            error(elem, f"<geom solimp={a.get('solimp')!r}> needs 3 or 5 numbers with dmax (the second) in (0, 1)")
        try:
            return limit_law_from_solref(solref, float(solimp[1]))
        except ParameterError as exc:
            error(elem, f"<geom solref={a.get('solref')!r}>: {exc}")

    def apply_contact_law(self, builder):
        """Contact stiffness ke [N/m] and damping kd [N s/m] of every geom from its solref, as
        MuJoCo's soft contact at the acceleration level (``k`` [1/s^2], ``b`` [1/s], see
        :func:`~simulator.articulation.joints.limit_law_from_solref`) times a mass. MuJoCo scales
        its law by ``1/A``, the contact's effective mass, and supports steady loads through its
        impedance; a spring has to choose:

        * a tree that rests on its contacts (its root has a free joint, or a slide within 60
          degrees of z) gets ``ke = M*k`` against static geoms (the floor), ``M`` [kg] the tree's
          mass (every body below the body attached to the world): the load its feet carry. A robot
          resting on its geoms sinks by about ``g/(n*k)`` (4 mm / n at the default solref, n the
          contacts carrying it); MuJoCo's own contacts rest stiffer still (its ``(1 - imp)``
          share of the unconstrained acceleration), which a spring cannot copy. The damping is
          ``kd = m*b``, ``m`` the tree's mean body mass, critical for a limb. Between its own
          geoms (self-contacts, or against another tree) it gets the law of its lightest point
          mass ``mp`` (:meth:`point_mass`, an estimate of MuJoCo's ``1/A`` for a limb),
          ``ke = mp*k``, ``kd = mp*b``, which keeps limb contacts off the explicit-step bound;
        * a tree held by its joints (an arm on a hinge, a puck on horizontal slides) gets each
          geom's own point-mass law against everything.

        A pair takes the mean of its two shapes' values, so the static geoms carry what the
        resting trees need beyond their geoms' share: one value for the whole model, set by the
        tree that needs the most (a lighter resting tree then gets a stiffer floor than its own law).

        Friction: MuJoCo's friction is a soft constraint too, relaxing the slip at the rate ``b``,
        so a resting contact (normal force ``m*g``) saturates at the slip speed ``mu*g/b``. The
        builder's ``default_contact`` (what ``finalize`` uses when given no ``contact``) sets the
        regularised friction's ``friction_smoothing`` to the largest ``mu*g/b`` of the geoms
        (``mu*g*timeconst/2``: 4 cm/s for mu = 0.4 at the default solref); its explicit-step bound
        ``2*v_smooth/(mu*g)`` is then the time constant itself."""
        masses = [builder.body_mass_properties(b)[0] for b in range(len(builder.bodies))]
        root = {}
        for b in range(len(builder.bodies)):
            r = b
            while self.body_parent.get(r, -1) >= 0:
                r = self.body_parent[r]
            root[b] = r
        tree_mass, tree_bodies, tree_moves = {}, {}, {}
        for b, r in root.items():
            tree_mass[r] = tree_mass.get(r, 0.0) + masses[b]
            tree_bodies[r] = tree_bodies.get(r, 0) + 1
            tree_moves[r] = tree_moves.get(r, False) or b in self.moving_bodies
        geoms = [(shape, body, k, b) for shape, body, k, b in self.geom_law if shape is not None]
        moving = [(shape, root[body], k, b) for shape, body, k, b in geoms if body >= 0 and tree_moves[root[body]]]
        point = {shape: self.point_mass(builder, shape) for shape, _, _, _ in moving}
        lightest = {}
        for shape, tree, _, _ in moving:
            lightest[tree] = min(lightest.get(tree, math.inf), point[shape])
        # a tree resting on its contacts (its root moves along z) needs (M*k, m*b) against the floor; it
        # carries its lightest point mass's law on its geoms, the static geoms the rest
        resting = {tree for _, tree, _, _ in moving if self.lifting.get(tree, False)}
        need = {shape: (tree_mass[tree] * k, tree_mass[tree] / tree_bodies[tree] * b) for shape, tree, k, b in moving if tree in resting}
        share = [(2.0 * need[shape][0] - lightest[tree] * k, 2.0 * need[shape][1] - lightest[tree] * b)
                 for shape, tree, k, b in moving if tree in resting]
        static_ke, static_kd = (max(max(values), 0.0) for values in zip(*share)) if share else (0.0, 0.0)
        law = {}
        for shape, tree, k, b in moving:
            if shape in need:
                law[shape] = (max(2.0 * need[shape][0] - static_ke, 0.0), max(2.0 * need[shape][1] - static_kd, 0.0))
            else:  # held by its joints (an arm on a hinge, a puck on horizontal slides): its own point mass's law
                law[shape] = (point[shape] * k, point[shape] * b)
        gravity, slip = float(np.linalg.norm(builder.gravity)), 0.0
        for shape, body, k, b in geoms:
            ke, kd = law.get(shape, (static_ke, static_kd))
            builder.shapes[shape].stiffness, builder.shapes[shape].damping = ke, kd
            if b > 0.0:
                slip = max(slip, builder.shapes[shape].friction * gravity / b)
        if slip > 0.0:
            builder.default_contact = ContactSettings(friction_smoothing=slip)

    @staticmethod
    def point_mass(builder, index):
        """The effective mass [kg] of a geom's body at the geom's farthest contact point, in the
        worst direction, as a free body: ``1/(1/m + r^2/I_min)`` (``r`` [m] from the body's centre
        of mass, ``I_min`` its smallest principal moment): an estimate of MuJoCo's ``1/A`` for a
        limb (its joints only add to it)."""
        from .contact import _points  # the geom's contact spheres in its frame

        shape = builder.shapes[index]
        mass, com, inertia = builder.body_mass_properties(shape.body)
        points, radius = _points(shape)
        if len(points) == 0:
            return mass
        placed = shape.position + points @ quat_to_matrix(shape.rotation).T - com
        lever = float(np.max(np.linalg.norm(placed, axis=1))) + radius
        return 1.0 / (1.0 / mass + lever * lever / max(float(np.min(np.linalg.eigvalsh(inertia))), 1e-12))

    def condim(self, elem, a):
        """A geom's ``condim`` (1: frictionless, 3: sliding friction, 4 and 6: with torsional and
        rolling friction, approximated here by 3)."""
        text = a.get("condim", "3")
        if text not in ("1", "3", "4", "6"):
            error(elem, f"<geom condim={text!r}> must be 1, 3, 4 or 6")
        if text in ("4", "6"):
            self.warn("geom@condim", f"<geom condim={text!r}> ({self.where(elem)}): torsional and rolling friction are not supported; "
                      "approximated by sliding friction (condim 3)")
        return int(text)

    def apply_condim(self, builder):
        """MuJoCo's contact between two geoms takes the larger of their ``condim``s, so only contacts
        between two condim-1 geoms are frictionless. Friction is per shape here (a pair takes the
        mean of its two shapes'), so a condim-1 geom gets friction 0 where every geom it can touch,
        and every geom those can touch, and so on, is condim 1 as well: then each of those pairs is
        frictionless as in MuJoCo. A condim-1 geom connected to a geom of higher condim keeps its
        friction for every contact, with a warning."""
        geoms = [g for g in self.geom_flags if g[4] is not None]
        component = list(range(len(geoms)))

        def root(i):
            while component[i] != i:
                component[i] = component[component[i]]
                i = component[i]
            return i

        for i, (body_a, type_a, affinity_a, *_) in enumerate(geoms):
            for k in range(i + 1, len(geoms)):
                body_b, type_b, affinity_b = geoms[k][:3]
                pair = (min(body_a, body_b), max(body_a, body_b))
                if body_a != body_b and ((type_a & affinity_b) or (type_b & affinity_a)) and pair not in builder.filtered_pairs:
                    component[root(i)] = root(k)
        touching = {root(i) for i in range(len(geoms)) if geoms[i][3] > 1}
        for i, (_, _, _, condim, shape, elem) in enumerate(geoms):
            if condim != 1:
                continue
            if root(i) not in touching:
                builder.shapes[shape].friction = 0.0
            else:
                self.warn("geom@condim=1", f"<geom condim='1'> ({self.where(elem)}) can touch geoms of higher condim, whose contacts MuJoCo "
                          "gives friction: friction is per shape here, so this geom keeps its friction for every contact")

    @staticmethod
    def collision_bits(elem, a):
        """A geom's (contype, conaffinity) bit masks."""
        bits = []
        for name in ("contype", "conaffinity"):
            text = a.get(name, "1")
            try:
                bits.append(int(text))
            except ValueError:
                error(elem, f"<geom {name}={text!r}> must be an integer bit mask")
        return bits

    def child_class(self, elem, cls):
        """The default class ``elem``'s children take: its ``childclass``, else ``cls``."""
        child_cls = elem.attrib.get("childclass", cls)
        if child_cls not in self.defaults and child_cls != "main":
            error(elem, f"unknown default class {child_cls!r}")
        return child_cls

    def read_joint(self, builder, elem, parent, body, cls, frame):
        """One ``<joint>`` or ``<freejoint>`` of ``body``; ``frame``: the pose (7,) of the
        ``<frame>`` holding it in the body (identity when none)."""
        a = {"type": "free"} if elem.tag == "freejoint" else self.attrs(elem, cls)
        a.update(elem.attrib if elem.tag == "freejoint" else {})
        known = {"type", "axis", "pos", "range", "limited", "damping", "armature", "stiffness", "frictionloss", "ref", "margin"}
        self.check_attrs(elem, a, known | {"springref", "solreflimit", "solimplimit"})
        kind = a.get("type", "hinge")
        kinds = {"hinge": "revolute", "slide": "prismatic", "ball": "ball", "free": "free"}
        if kind not in kinds:
            error(elem, f"unknown joint type {kind!r}; expected one of {sorted(kinds)}")
        unsupported = ("frictionloss",) if kind in ("hinge", "slide") else ("stiffness", "frictionloss", "ref", "springref")
        for name in unsupported:
            if number(elem, a, name, 0.0) != 0.0:
                self.warn(f"joint@{name}", f"<joint {name}> ({self.where(elem)}) is not supported and is ignored")
        rot = quat_to_matrix(frame[3:])
        options = {"position": frame[:3] + rot @ numbers(elem, a, "pos", 3, np.zeros(3)), "name": a.get("name")}
        if kind != "free":
            options["armature"] = number(elem, a, "armature", 0.0)
            options["damping"] = number(elem, a, "damping", 0.0)
        if kind in ("hinge", "slide"):
            axis = numbers(elem, a, "axis", 3, np.array([0.0, 0.0, 1.0]))
            if np.linalg.norm(axis) < 1e-12:
                error(elem, f"joint {a.get('name', '')!r} has a zero axis {a.get('axis')!r}")
            options["axis"] = rot @ axis
            scale = self.angle_scale if kind == "hinge" else 1.0  # MuJoCo reads hinge angles in <compiler angle> units
            options["stiffness"] = number(elem, a, "stiffness", 0.0)
            options["spring_ref"] = number(elem, a, "springref", 0.0) * scale
            options["ref"] = number(elem, a, "ref", 0.0) * scale
            limited = a.get("limited", "auto")
            if limited not in ("true", "false", "auto"):
                error(elem, f"<joint limited={limited!r}> must be 'true', 'false' or 'auto'")
            if limited == "true" and "range" not in a:
                error(elem, f"joint {a.get('name', '')!r} has limited='true' but no range")
            if "range" in a and (limited == "true" or (limited == "auto" and self.autolimits)):
                lo, hi = numbers(elem, a, "range", 2)
                if not lo < hi:
                    error(elem, f"joint {a.get('name', '')!r} range={a['range']!r} must have lower < upper")
                options["limit"] = (lo * scale, hi * scale)
                options["limit_solref"] = numbers(elem, a, "solreflimit", 2, np.array([0.02, 1.0]))
                solimp = numbers(elem, a, "solimplimit", default=np.array([0.9, 0.95, 0.001]))
                if solimp.size < 2 or not 0.0 < solimp[1] < 1.0:
                    error(elem, f"<joint solimplimit={a.get('solimplimit')!r}> needs dmax (its second value) in (0, 1)")
                options["limit_impedance"] = float(solimp[1])
        elif kind == "ball" and "range" in a and a.get("limited", "auto") != "false":
            self.warn("joint/ball@range", f"ball joint limits ({self.where(elem)}) are not supported and are ignored")
        if kind == "free" and parent >= 0:
            self.nested_free = True
            self.warn("joint/free-nested", f"a free joint below another body ({self.where(elem)}) moves relative to that body")
        try:
            joint = builder.add_joint(kinds[kind], parent, body, **options)
        except ValueError as exc:
            error(elem, str(exc))
        self.moving_bodies.add(body)
        if kind == "free" or kind == "slide":  # can the body move along the (initial) gravity?
            axis = quat_to_matrix(builder.bodies[body].rotation) @ options.get("axis", np.zeros(3))
            self.lifting[body] = self.lifting.get(body, False) or kind == "free" or abs(float(axis[2])) > 0.5
        if a.get("name"):
            self.joint_ids[a["name"]] = joint
        self.mujoco_joints.append((joint, kinds[kind], body))

    def limited(self, elem, a, name):
        """The ``(low, high)`` of ``<elem {name}range>`` when ``{name}limited`` makes it active
        ("true", or "auto" with ``<compiler autolimits="true">``), else None."""
        flag = a.get(f"{name}limited", "auto")
        if flag not in ("true", "false", "auto"):
            error(elem, f"<{elem.tag} {name}limited={flag!r}> must be 'true', 'false' or 'auto'")
        if f"{name}range" not in a or flag == "false":
            return None
        if flag == "auto" and not self.autolimits:  # as MuJoCo's compiler
            error(elem, f"<{elem.tag}> has {name}range but not {name}limited, with <compiler autolimits='false'>: "
                  f"set {name}limited='true' or 'false'")
        low, high = numbers(elem, a, f"{name}range", 2)
        if not low <= high:
            error(elem, f"<{elem.tag} {name}range={a[name + 'range']!r}> must have low <= high")
        return float(low), float(high)

    def read_actuators(self, builder, elem):
        """``<motor>`` and ``<position>`` on joints; every other actuator warns and is dropped (it
        keeps its MuJoCo ``ctrl`` index, see :func:`actuator_order`). Defaults of every actuator
        kind are shared, as in MuJoCo (a ``<default><motor gear>`` also sets a position's gear)."""
        for child in elem:
            ctrl = self.ctrl_count  # every child of <actuator> is one of MuJoCo's actuators
            self.ctrl_count += 1
            a = self.attrs(child, "main")
            name = a.get("joint")
            if child.tag not in ("motor", "position"):
                self.warn(f"actuator/{child.tag}", f"<{child.tag}> actuators ({self.where(child)}) are not supported and are ignored")
                continue
            known = {"joint", "gear", "ctrlrange", "ctrllimited", "forcerange", "forcelimited", "kp", "kv"}
            if child.tag == "motor":  # a position's kp, kv from a shared default do not apply to a motor
                known -= {k for k in ("kp", "kv") if k in child.attrib}
            self.check_attrs(child, a, known)
            if name is None:
                self.warn("actuator@transmission", f"<{child.tag}> without a joint transmission ({self.where(child)}) is ignored")
                continue
            if name not in self.joint_ids:
                error(child, f"<{child.tag}> refers to unknown joint {name!r}")
            ctrl_range = self.limited(child, a, "ctrl")
            force_range = self.limited(child, a, "force")
            gear = float(numbers(child, a, "gear", default=np.array([1.0]))[0])
            if child.tag == "motor":
                # MuJoCo clamps the force (= the clipped control) to forcerange before the gear:
                # the control is clipped to both ranges
                if force_range is not None:
                    low, high = ctrl_range or (-np.inf, np.inf)
                    low, high = max(low, force_range[0]), min(high, force_range[1])
                    if low < high:
                        ctrl_range = (low, high)
                    else:
                        self.warn("motor@forcerange", f"<motor forcerange> ({self.where(child)}) that does not overlap ctrlrange is not supported and is ignored")
                builder.add_actuator(self.joint_ids[name], kind="motor", gear=gear, ctrl_range=ctrl_range, name=a.get("name"))
            else:
                if force_range is not None:
                    self.warn("position@forcerange", f"<position forcerange> ({self.where(child)}) is not supported: the PD force is not clamped")
                if gear != 1.0:
                    self.warn("position@gear", f"<position gear={gear!r}> ({self.where(child)}) is not supported and is ignored (gear 1 is used)")
                kp, kv = number(child, a, "kp", 1.0), number(child, a, "kv", 0.0)
                for label, value in (("kp", kp), ("kv", kv)):
                    if value < 0.0:
                        error(child, f"<position {label}={a[label]!r}> must be >= 0")
                builder.add_actuator(self.joint_ids[name], kind="position", kp=kp, kd=kv, ctrl_range=ctrl_range, name=a.get("name"))
            self.actuator_ctrl.append(ctrl)

    def apply_collision_filter(self, builder):
        """MuJoCo collides geoms a, b iff (contype_a & conaffinity_b) or (contype_b & conaffinity_a);
        here filtering is per body pair, so a pair is filtered when none of its geoms may collide."""
        flags: dict[int, list[tuple[int, int]]] = {}
        for body, contype, conaffinity, *_ in self.geom_flags:
            flags.setdefault(body, []).append((contype, conaffinity))
        bodies = sorted(flags)
        for i, a in enumerate(bodies):
            for b in bodies[i + 1 :]:
                if not any((ca & fb) or (cb & fa) for ca, fa in flags[a] for cb, fb in flags[b]):
                    builder.filter_collision(a, b)


def load_mjcf(path, *, stiffness: float | None = None, damping: float | None = None, friction: float = 1.0) -> SceneBuilder:
    """Read an MJCF file into a :class:`SceneBuilder` (call ``finalize`` on it).

    Args:
        path: the ``.xml`` file.
        stiffness, damping: None (default): each geom's contact stiffness and damping come from
            its ``solref`` (MuJoCo's time constant and damping ratio, default 0.02, 1) and the
            masses: against the floor ``ke = M/(timeconst*dampratio)^2``, ``kd = 2*m/timeconst``
            (``M`` the mass of its kinematic tree, ``m`` that tree's mean body mass), between
            moving geoms the same law with the tree's lightest point mass (see
            ``_Loader.apply_contact_law``),
            and the friction smoothing of ``finalize`` is ``mu*g*timeconst/2``. Numbers: the
            penalty contact of every geom [N/m], [N s/m] (solref and solimp are then ignored,
            with a warning where given; the friction smoothing keeps its default).
        friction: default friction coefficient (a geom's own ``friction`` wins).

    The MJCF ``<option timestep>`` is kept as ``builder.mjcf_timestep`` [s].

    Raises:
        ParameterError: malformed XML or an invalid model, with ``file:line``.
    """
    if not os.path.isfile(path):
        raise ParameterError(f"path {str(path)!r} is not an MJCF file that exists")
    if (stiffness is None) != (damping is None):
        raise ParameterError(f"give both stiffness and damping, or neither (the geoms' solref), got {stiffness=!r}, {damping=!r}")
    given = stiffness is not None
    options = dict(stiffness=stiffness, damping=damping) if given else {}
    return _Loader(path, dict(options, friction=friction), penalty_given=given).load()
