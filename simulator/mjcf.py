"""MJCF import: ``load_mjcf(path) -> SceneBuilder`` for the common subset of MuJoCo's format.

Supported: ``<compiler angle coordinate="local" eulerseq meshdir>``, ``<option gravity
timestep>``, nested ``<default>`` classes (``class`` / ``childclass``), the ``<worldbody>`` tree
of ``<body pos quat euler axisangle zaxis>`` with ``<geom>`` (sphere, capsule, box, plane, mesh;
``fromto``; ``density`` or ``mass``; ``friction``; ``contype``/``conaffinity``), ``<inertial>``,
``<joint>`` (hinge, slide, ball, free; ``range``/``limited``, ``damping``, ``armature``; and
``stiffness``, ``springref`` for hinge and slide) and
``<freejoint>``, and ``<actuator>`` ``<motor>`` (gear, ctrlrange) and ``<position>`` (kp).
A body without a joint is welded to its parent (a fixed joint). MuJoCo's soft-constraint
contact (solref, solimp, margin) has no equivalent here: contacts use the penalty law with the
``stiffness``/``damping`` given to :func:`load_mjcf`.

Everything else gives one warning per element or attribute kind, naming it: it is ignored, or
approximated as the warning says. Malformed files raise ``ValueError`` with the file and line.
The XML is parsed with the standard library; the ``mujoco`` package is not needed.
"""

from __future__ import annotations

import math
import os
import warnings
import xml.etree.ElementTree as ET
from xml.parsers import expat

import numpy as np

from .builder import SceneBuilder
from .spatial import quat_between, quat_from_axis_angle, quat_multiply, quat_to_matrix

_VISUAL_TAGS = {"light", "camera", "site", "texture", "material", "custom", "visual", "statistic", "size", "numeric", "text", "tuple", "key", "keyframe"}
_VISUAL_ATTRS = {"name", "rgba", "material", "class", "group", "conaffinity", "contype", "condim", "user", "texture", "childclass", "mode", "target"}


class MJCFWarning(UserWarning):
    """An MJCF element or attribute that is ignored or approximated."""


class _Element(ET.Element):
    """An XML element that remembers its source line (``line``)."""


def _parse(path: str) -> ET.Element:
    """Parse XML with the standard library, recording each element's line as ``elem.line``."""
    stack: list[ET.Element] = []
    root: list[ET.Element] = []
    parser = expat.ParserCreate()

    def start(tag, attrs):
        elem = _Element(tag, attrs)
        elem.line = parser.CurrentLineNumber
        if stack:
            stack[-1].append(elem)
        else:
            root.append(elem)
        stack.append(elem)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: stack.pop()
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as exc:
        raise ValueError(f"{path}:{exc.lineno}: malformed MJCF (XML error: {expat.ErrorString(exc.code)})") from None
    if not root or root[0].tag != "mujoco":
        raise ValueError(f"{path}:1: not an MJCF file: the root element must be <mujoco>, got <{root[0].tag if root else ''}>")
    return root[0]


class _Loader:
    def __init__(self, path, builder_options):
        self.path = str(path)
        self.root = _parse(self.path)
        self.warned: set[str] = set()
        self.angle_scale = math.pi / 180.0
        self.eulerseq = "xyz"
        self.meshdir = os.path.dirname(os.path.abspath(self.path))
        self.defaults: dict[str, dict[str, dict[str, str]]] = {}
        self.builder_options = builder_options
        self.joint_ids: dict[str, int] = {}
        self.geom_flags: list[tuple[int, int, int]] = []  # (body, contype, conaffinity)
        self.meshes: dict[str, tuple[str, float]] = {}

    # ---------------------------------------------------------------- helpers
    def error(self, elem, message):
        raise ValueError(f"{self.path}:{getattr(elem, 'line', '?')}: {message}")

    def warn(self, key, message):
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(f"{os.path.basename(self.path)}: {message}", MJCFWarning, stacklevel=4)

    def floats(self, elem, attrs, name, count=None, default=None):
        text = attrs.get(name)
        if text is None:
            return default
        try:
            values = np.array([float(x) for x in text.split()], dtype=float)
        except ValueError:
            self.error(elem, f"<{elem.tag}> attribute {name}={text!r} is not a list of numbers")
        if count is not None and values.size != count:
            self.error(elem, f"<{elem.tag}> attribute {name}={text!r} must have {count} numbers")
        if not np.all(np.isfinite(values)):
            self.error(elem, f"<{elem.tag}> attribute {name}={text!r} must be finite")
        return values

    def attrs(self, elem, cls):
        """The element's attributes over its default class chain."""
        merged = dict(self.defaults.get(cls, {}).get(elem.tag, {}))
        if "class" in elem.attrib:
            if elem.attrib["class"] not in self.defaults:
                self.error(elem, f"unknown default class {elem.attrib['class']!r}")
            merged = dict(self.defaults[elem.attrib["class"]].get(elem.tag, {}))
        merged.update(elem.attrib)
        return merged

    def check_attrs(self, elem, attrs, known):
        for name in attrs:
            if name not in known and name not in _VISUAL_ATTRS:
                self.warn(f"{elem.tag}@{name}", f"<{elem.tag} {name}=...> (line {elem.line}) is not supported and is ignored")

    def orientation(self, elem, attrs):
        """Quaternion (x, y, z, w) from quat / euler / axisangle / zaxis."""
        if "quat" in attrs:
            w, x, y, z = self.floats(elem, attrs, "quat", 4)
            q = np.array([x, y, z, w])
            if np.linalg.norm(q) < 1e-12:
                self.error(elem, f"<{elem.tag}> quat must be non-zero")
            return q / np.linalg.norm(q)
        if "axisangle" in attrs:
            v = self.floats(elem, attrs, "axisangle", 4)
            if np.linalg.norm(v[:3]) < 1e-12:
                self.error(elem, f"<{elem.tag}> axisangle axis must be non-zero")
            return quat_from_axis_angle(v[:3], v[3] * self.angle_scale)
        if "euler" in attrs:
            angles = self.floats(elem, attrs, "euler", 3) * self.angle_scale
            q = np.array([0.0, 0.0, 0.0, 1.0])
            for axis_name, angle in zip(self.eulerseq, angles):
                axis = np.eye(3)["xyz".index(axis_name.lower())]
                r = quat_from_axis_angle(axis, angle)
                q = quat_multiply(q, r) if axis_name.islower() else quat_multiply(r, q)
            return q
        if "zaxis" in attrs:
            return quat_between([0, 0, 1], self.floats(elem, attrs, "zaxis", 3))
        if "xyaxes" in attrs:
            self.warn(f"{elem.tag}@xyaxes", f"<{elem.tag} xyaxes> (line {elem.line}) is not supported; identity orientation used")
        return np.array([0.0, 0.0, 0.0, 1.0])

    # ---------------------------------------------------------------- sections
    def read_defaults(self, elem, parent_cls=None):
        cls = elem.attrib.get("class", "main")
        inherited = {tag: dict(a) for tag, a in self.defaults.get(parent_cls, {}).items()} if parent_cls else {}
        for child in elem:
            if child.tag == "default":
                continue
            inherited.setdefault(child.tag, {}).update(child.attrib)
        self.defaults[cls] = inherited
        for child in elem:
            if child.tag == "default":
                self.read_defaults(child, cls)

    def load(self) -> SceneBuilder:
        root = self.root
        gravity = (0.0, 0.0, -9.81)
        for child in root:
            if child.tag == "compiler":
                a = child.attrib
                self.angle_scale = 1.0 if a.get("angle", "degree") == "radian" else math.pi / 180.0
                self.eulerseq = a.get("eulerseq", "xyz")
                if a.get("coordinate", "local") != "local":
                    self.error(child, "compiler coordinate='global' is not supported (MuJoCo removed it too); use local coordinates")
                if "meshdir" in a:
                    self.meshdir = os.path.join(os.path.dirname(os.path.abspath(self.path)), a["meshdir"])
                self.check_attrs(child, a, {"angle", "eulerseq", "coordinate", "meshdir", "inertiafromgeom"})
            elif child.tag == "option":
                if "gravity" in child.attrib:
                    gravity = tuple(self.floats(child, child.attrib, "gravity", 3))
                self.timestep = float(child.attrib.get("timestep", 0.002))
                self.check_attrs(child, child.attrib, {"gravity", "timestep", "integrator"})
                if child.attrib.get("integrator", "Euler") != "Euler":
                    self.warn("option@integrator", f"integrator={child.attrib['integrator']!r} ignored: this simulator uses semi-implicit Euler")
            elif child.tag == "default":
                self.read_defaults(child)
        builder = SceneBuilder(gravity=gravity, **self.builder_options)
        builder.mjcf_timestep = getattr(self, "timestep", 0.002)
        for child in root:
            if child.tag == "asset":
                for item in child:
                    if item.tag == "mesh":
                        file = item.attrib.get("file")
                        if file is None:
                            self.error(item, "<mesh> needs a file attribute")
                        name = item.attrib.get("name", os.path.splitext(os.path.basename(file))[0])
                        scale = self.floats(item, item.attrib, "scale", default=np.ones(3))
                        if not np.allclose(scale, scale[0]):
                            self.warn("mesh@scale", f"non-uniform mesh scale (line {item.line}) approximated by its first entry")
                        self.meshes[name] = (os.path.join(self.meshdir, file), float(scale[0]))
                    elif item.tag not in _VISUAL_TAGS:
                        self.warn(f"asset/{item.tag}", f"<{item.tag}> assets (line {item.line}) are not supported and are ignored")
        for child in root:
            if child.tag == "worldbody":
                self.read_body(builder, child, -1, np.array([0, 0, 0, 0, 0, 0, 1.0]), "main")
        for child in root:
            if child.tag == "actuator":
                self.read_actuators(builder, child)
            elif child.tag not in ("compiler", "option", "default", "asset", "worldbody", "actuator") and child.tag not in _VISUAL_TAGS:
                self.warn(child.tag, f"<{child.tag}> (line {child.line}) is not supported and is ignored")
            elif child.tag in _VISUAL_TAGS:
                self.warn(child.tag, f"<{child.tag}> (line {child.line}) has no effect on the dynamics and is ignored")
        self.apply_collision_filter(builder)
        return builder

    def read_body(self, builder, elem, parent_body, parent_pose, cls):
        """Add the bodies below ``elem`` (parent_pose: world pose (pos, quat xyzw) of ``elem``'s frame)."""
        for child in elem:
            tag = child.tag
            if tag == "body":
                a = self.attrs(child, cls)
                pos = self.floats(child, a, "pos", 3, np.zeros(3))
                rot = self.orientation(child, a)
                world_pos = parent_pose[:3] + quat_to_matrix(parent_pose[3:]) @ pos
                world_rot = quat_multiply(parent_pose[3:], rot)
                child_cls = child.attrib.get("childclass", cls)
                inertial = child.find("inertial")
                mass, inertia = None, None
                if inertial is not None:
                    ia = inertial.attrib
                    mass = float(self.floats(inertial, ia, "mass", 1))
                    if "diaginertia" in ia:
                        inertia = self.floats(inertial, ia, "diaginertia", 3)
                    elif "fullinertia" in ia:
                        xx, yy, zz, xy, xz, yz = self.floats(inertial, ia, "fullinertia", 6)
                        inertia = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
                    if np.linalg.norm(self.floats(inertial, ia, "pos", 3, np.zeros(3))) > 0 or "quat" in ia:
                        self.warn("inertial@pos", f"<inertial pos/quat> (line {inertial.line}): the centre of mass comes from the geoms here; offset ignored")
                body = builder.add_body(position=world_pos, rotation=world_rot, mass=mass, inertia=inertia, name=a.get("name"))
                self.read_geoms(builder, child, body, child_cls)
                joints = [j for j in child if j.tag in ("joint", "freejoint")]
                if not joints:
                    builder.add_fixed_joint(parent_body, body, name=f"{a.get('name', body)}_weld") if parent_body >= 0 else builder.add_fixed_joint(-1, body)
                for j in joints:
                    self.read_joint(builder, j, parent_body, body, child_cls)
                self.read_body(builder, child, body, np.concatenate([world_pos, world_rot]), child_cls)
            elif tag == "geom" and parent_body == -1:
                self.read_geom(builder, child, -1, cls, parent_pose)
            elif tag in ("geom", "joint", "freejoint", "inertial"):
                continue  # handled with their body
            elif tag in _VISUAL_TAGS:
                self.warn(tag, f"<{tag}> (line {child.line}) has no effect on the dynamics and is ignored")
            else:
                self.warn(tag, f"<{tag}> (line {child.line}) is not supported and is ignored")

    def read_geoms(self, builder, elem, body, cls):
        for child in elem:
            if child.tag == "geom":
                self.read_geom(builder, child, body, cls, None)

    def read_geom(self, builder, elem, body, cls, static_pose):
        a = self.attrs(elem, cls)
        self.check_attrs(elem, a, {"type", "size", "pos", "quat", "euler", "axisangle", "zaxis", "xyaxes", "fromto", "density", "mass", "friction", "mesh", "margin", "solref", "solimp"})
        for unsupported in ("margin", "solref", "solimp"):
            if unsupported in a:
                self.warn(f"geom@{unsupported}", f"<geom {unsupported}> (line {elem.line}): MuJoCo's soft-constraint parameters have no equivalent here; the penalty contact of load_mjcf(stiffness=, damping=) is used")
        kind = a.get("type", "sphere")
        size = self.floats(elem, a, "size", default=np.zeros(0))
        pos = self.floats(elem, a, "pos", 3, np.zeros(3))
        rot = self.orientation(elem, a)
        friction = self.floats(elem, a, "friction", default=np.array([1.0]))
        options = {"friction": float(friction[0])}
        if kind == "plane":
            if body != -1:
                self.error(elem, "a plane geom must belong to the worldbody")
            pose_rot = quat_multiply(static_pose[3:], rot)
            normal = quat_to_matrix(pose_rot) @ np.array([0.0, 0.0, 1.0])
            world_pos = static_pose[:3] + quat_to_matrix(static_pose[3:]) @ pos
            shape = builder.add_ground_plane(normal=normal, offset=float(normal @ world_pos), **options)
            self.geom_flags.append((-1, int(a.get("contype", 1)), int(a.get("conaffinity", 1))))
            return shape
        if body == -1:
            pos = static_pose[:3] + quat_to_matrix(static_pose[3:]) @ pos
            rot = quat_multiply(static_pose[3:], rot)
        if kind == "cylinder":
            self.warn("geom/cylinder", f"cylinder geoms (line {elem.line}) are approximated by capsules of the same radius and length")
            kind = "capsule"
        if kind in ("capsule",) and "fromto" in a:
            ft = self.floats(elem, a, "fromto", 6)
            start, end = ft[:3], ft[3:]
            length = np.linalg.norm(end - start)
            if length < 1e-12:
                self.error(elem, f"capsule fromto={a['fromto']!r} has zero length")
            pos = 0.5 * (start + end)
            rot = quat_between([0, 0, 1], end - start)
            size = np.array([size[0], 0.5 * length])
        if body >= 0:
            density = float(a.get("density", 1000.0))
            if "mass" in a:
                density = None  # set below from the volume
            options["density"] = density if density is not None else 1.0
        if kind == "sphere":
            shape = builder.add_sphere(body, radius=float(size[0]), position=pos, rotation=rot, **options)
        elif kind == "capsule":
            if size.size < 2:
                self.error(elem, "capsule needs size='radius half_length' or fromto")
            shape = builder.add_capsule(body, radius=float(size[0]), half_height=float(size[1]), position=pos, rotation=rot, **options)
        elif kind == "box":
            if size.size != 3:
                self.error(elem, f"box needs 3 half sizes, got size={a.get('size')!r}")
            shape = builder.add_box(body, half_extents=size, position=pos, rotation=rot, **options)
        elif kind == "mesh":
            name = a.get("mesh")
            if name not in self.meshes:
                self.error(elem, f"unknown mesh {name!r}")
            file, scale = self.meshes[name]
            shape = builder.add_mesh(body, mesh=file, scale=scale, position=pos, rotation=rot, **options)
        else:
            self.warn(f"geom/{kind}", f"{kind} geoms (line {elem.line}) are not supported and are skipped (their mass is missing)")
            return None
        if body >= 0 and "mass" in a:
            from .shapes import mesh_mass_properties, shape_mass_properties

            s = builder.shapes[shape]
            unit = mesh_mass_properties(s.mesh, 1.0)[0] if s.mesh is not None else shape_mass_properties(s)[0]
            s.density = float(a["mass"]) / unit
        self.geom_flags.append((body, int(a.get("contype", 1)), int(a.get("conaffinity", 1))))
        return shape

    def read_joint(self, builder, elem, parent, body, cls):
        a = {"type": "free"} if elem.tag == "freejoint" else self.attrs(elem, cls)
        a.update(elem.attrib if elem.tag == "freejoint" else {})
        self.check_attrs(elem, a, {"type", "axis", "pos", "range", "limited", "damping", "armature", "stiffness", "frictionloss", "ref", "margin", "springref"})
        kind = a.get("type", "hinge")
        unsupported = ("frictionloss", "ref") if kind in ("hinge", "slide") else ("stiffness", "frictionloss", "ref", "springref")
        for name in unsupported:
            if float(a.get(name, 0.0)) != 0.0:
                self.warn(f"joint@{name}", f"<joint {name}> (line {elem.line}) is not supported and is ignored")
        kinds = {"hinge": "revolute", "slide": "prismatic", "ball": "ball", "free": "free"}
        if kind not in kinds:
            self.error(elem, f"unknown joint type {kind!r}; expected one of {sorted(kinds)}")
        options = dict(position=self.floats(elem, a, "pos", 3, np.zeros(3)), name=a.get("name"))
        if kind != "free":
            options["armature"] = float(a.get("armature", 0.0))
            options["damping"] = float(a.get("damping", 0.0))
        if kind in ("hinge", "slide"):
            axis = self.floats(elem, a, "axis", 3, np.array([0.0, 0.0, 1.0]))
            if np.linalg.norm(axis) < 1e-12:
                self.error(elem, f"joint {a.get('name', '')!r} has a zero axis {a.get('axis')!r}")
            options["axis"] = axis
            options["stiffness"] = float(a.get("stiffness", 0.0))
            options["spring_ref"] = float(a.get("springref", 0.0)) * (self.angle_scale if kind == "hinge" else 1.0)
            limited = a.get("limited", "auto")
            if "range" in a and limited in ("true", "auto"):
                lo, hi = self.floats(elem, a, "range", 2)
                scale = self.angle_scale if kind == "hinge" else 1.0
                if not lo < hi:
                    self.error(elem, f"joint {a.get('name', '')!r} range={a['range']!r} must have lower < upper")
                options["limit"] = (lo * scale, hi * scale)
        elif kind == "ball" and "range" in a and a.get("limited", "auto") != "false":
            self.warn("joint/ball@range", f"ball joint limits (line {elem.line}) are not supported and are ignored")
        if kind == "free" and parent >= 0:
            self.warn("joint/free-nested", f"a free joint below another body (line {elem.line}) moves relative to that body")
        try:
            joint = builder.add_joint(kinds[kind], parent, body, **options)
        except ValueError as exc:
            self.error(elem, str(exc))
        if a.get("name"):
            self.joint_ids[a["name"]] = joint

    def read_actuators(self, builder, elem):
        for child in elem:
            a = self.attrs(child, "main")
            name = a.get("joint")
            if child.tag not in ("motor", "position"):
                self.warn(f"actuator/{child.tag}", f"<{child.tag}> actuators (line {child.line}) are not supported and are ignored")
                continue
            if name is None:
                self.warn("actuator@transmission", f"<{child.tag}> without a joint transmission (line {child.line}) is ignored")
                continue
            if name not in self.joint_ids:
                self.error(child, f"<{child.tag}> refers to unknown joint {name!r}")
            ctrl = None
            if "ctrlrange" in a and a.get("ctrllimited", "auto") in ("true", "auto"):
                ctrl = tuple(self.floats(child, a, "ctrlrange", 2))
            gear = self.floats(child, a, "gear", default=np.array([1.0]))[0]
            if child.tag == "motor":
                builder.add_actuator(self.joint_ids[name], kind="motor", gear=float(gear), ctrl_range=ctrl, name=a.get("name"))
            else:
                builder.add_actuator(self.joint_ids[name], kind="position", kp=float(a.get("kp", 1.0)), ctrl_range=ctrl, name=a.get("name"))

    def apply_collision_filter(self, builder):
        """MuJoCo collides geoms a, b iff (contype_a & conaffinity_b) or (contype_b & conaffinity_a);
        here filtering is per body pair, so a pair is filtered when none of its geoms may collide."""
        flags: dict[int, list[tuple[int, int]]] = {}
        for body, contype, conaffinity in self.geom_flags:
            flags.setdefault(body, []).append((contype, conaffinity))
        bodies = sorted(flags)
        for i, a in enumerate(bodies):
            for b in bodies[i + 1 :]:
                if not any((ca & fb) or (cb & fa) for ca, fa in flags[a] for cb, fb in flags[b]):
                    builder.filter_collision(a, b)


def load_mjcf(path, *, stiffness: float = 2.0e3, damping: float = 20.0, friction: float = 1.0) -> SceneBuilder:
    """Read an MJCF file into a :class:`SceneBuilder` (call ``finalize`` on it).

    Args:
        path: the ``.xml`` file.
        stiffness, damping: penalty contact parameters of every shape [N/m], [N s/m] (MJCF's
            solref/solimp are not translated).
        friction: default friction coefficient (a geom's own ``friction`` wins).

    The MJCF ``<option timestep>`` is kept as ``builder.mjcf_timestep`` [s].

    Raises:
        ValueError: malformed XML or an invalid model, with ``file:line``.
    """
    if not os.path.isfile(path):
        raise ValueError(f"path {str(path)!r} is not an MJCF file that exists")
    return _Loader(path, dict(stiffness=stiffness, damping=damping, friction=friction)).load()
