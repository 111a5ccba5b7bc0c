"""The XML side of MJCF import: parsing with source positions, ``<include>`` expansion, and the
orientation and pose arithmetic of MJCF's frames (numpy, float64; quaternions (x, y, z, w))."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

import numpy as np

from .errors import ParameterError
from .spatial import quat_from_axis_angle, quat_from_matrix, quat_multiply, quat_to_matrix

IDENTITY_POSE = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
ORIENTATION_ATTRS = ("quat", "axisangle", "euler", "xyaxes", "zaxis")


class Element(ET.Element):
    """An XML element that remembers its source: ``file`` (path) and ``line``."""


def where(elem) -> str:
    """``file:line`` of an element, for messages."""
    return f"{getattr(elem, 'file', '?')}:{getattr(elem, 'line', '?')}"


def error(elem, message: str):
    """Raise :class:`ParameterError` for an invalid model, with the element's ``file:line``."""
    raise ParameterError(f"{where(elem)}: {message}")


def parse(path: str) -> Element:
    """Parse an MJCF file (standard library expat); every element records ``file`` and ``line``."""
    stack: list[Element] = []
    root: list[Element] = []
    parser = expat.ParserCreate()

    def start(tag, attrs):
        elem = Element(tag, attrs)
        elem.file, elem.line = path, parser.CurrentLineNumber
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
        raise ParameterError(f"{path}:{exc.lineno}: malformed MJCF (XML error: {expat.ErrorString(exc.code)})") from None
    if not root or root[0].tag != "mujoco":
        raise ParameterError(f"{path}:1: not an MJCF file: the root element must be <mujoco>, got <{root[0].tag if root else ''}>")
    return root[0]


def expand_includes(elem: Element, main_dir: str, seen: set[str]) -> None:
    """Replace every ``<include file=...>`` below ``elem`` by the children of the included file's
    ``<mujoco>`` root, recursively. As MuJoCo does, a relative ``file`` is looked up in the main
    model's directory first, then in the including file's directory, and a file may be included
    only once (which also rules out cycles). ``seen`` holds the real paths read so far."""
    children = []
    for child in list(elem):
        if child.tag != "include":
            expand_includes(child, main_dir, seen)
            children.append(child)
            continue
        name = child.attrib.get("file")
        if not name:
            error(child, "<include> needs a file attribute")
        candidates = [os.path.join(main_dir, name), os.path.join(os.path.dirname(os.path.abspath(child.file)), name)]
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is None:
            error(child, f"<include file={name!r}>: no such file (looked in {', '.join(sorted(set(map(os.path.dirname, candidates))))})")
        real = os.path.realpath(found)
        if real in seen:
            error(child, f"<include file={name!r}>: that file is already included (MuJoCo includes a file only once)")
        seen.add(real)
        included = parse(found)
        expand_includes(included, main_dir, seen)
        children.extend(included)
    elem[:] = children


# ------------------------------------------------------------------ poses
def pose(position, rotation) -> np.ndarray:
    return np.concatenate([np.asarray(position, float), np.asarray(rotation, float)])


def pose_mul(a, b) -> np.ndarray:
    """Compose two poses (7-vectors position, quaternion): ``a * b``."""
    return np.concatenate([a[:3] + quat_to_matrix(a[3:]) @ b[:3], quat_multiply(a[3:], b[3:])])


def z_to(vector) -> np.ndarray:
    """MuJoCo's rotation taking +z to ``vector`` (minimal; about x when ``vector`` is along -z)."""
    v = np.asarray(vector, float) / np.linalg.norm(vector)
    axis = np.cross([0.0, 0.0, 1.0], v)
    s = np.linalg.norm(axis)
    axis = np.array([1.0, 0.0, 0.0]) if s < 1e-10 else axis / s
    return quat_from_axis_angle(axis, math.atan2(s, v[2]))


def orientation(elem, attrs, angle_scale: float, eulerseq: str) -> np.ndarray:
    """The quaternion (x, y, z, w) of an element's ``quat`` / ``axisangle`` / ``euler`` /
    ``xyaxes`` / ``zaxis`` (identity if none), as MuJoCo's compiler reads them."""
    given = [name for name in ORIENTATION_ATTRS if name in elem.attrib]
    if len(given) > 1:
        error(elem, f"<{elem.tag}> has {' and '.join(given)}: at most one orientation may be given")
    name = given[0] if given else next((n for n in ORIENTATION_ATTRS if n in attrs), None)
    if name is None:
        return np.array([0.0, 0.0, 0.0, 1.0])
    counts = {"quat": 4, "axisangle": 4, "euler": 3, "xyaxes": 6, "zaxis": 3}
    values = numbers(elem, attrs, name, counts[name])
    if name == "quat":
        if np.linalg.norm(values) < 1e-12:
            error(elem, f"<{elem.tag} quat={attrs['quat']!r}> must be non-zero")
        w, x, y, z = values / np.linalg.norm(values)
        return np.array([x, y, z, w])
    if name == "axisangle":
        if np.linalg.norm(values[:3]) < 1e-12:
            error(elem, f"<{elem.tag} axisangle={attrs['axisangle']!r}> needs a non-zero axis")
        return quat_from_axis_angle(values[:3], values[3] * angle_scale)
    if name == "euler":
        q = np.array([0.0, 0.0, 0.0, 1.0])
        for axis_name, angle in zip(eulerseq, values * angle_scale):
            r = quat_from_axis_angle(np.eye(3)["xyz".index(axis_name.lower())], angle)
            q = quat_multiply(q, r) if axis_name.islower() else quat_multiply(r, q)  # intrinsic / extrinsic
        return q
    if name == "zaxis":
        if np.linalg.norm(values) < 1e-12:
            error(elem, f"<{elem.tag} zaxis={attrs['zaxis']!r}> must be non-zero")
        return z_to(values)
    x, y = values[:3], values[3:]
    if np.linalg.norm(x) < 1e-12:
        error(elem, f"<{elem.tag} xyaxes={attrs['xyaxes']!r}> needs a non-zero x axis")
    x = x / np.linalg.norm(x)
    y = y - np.dot(x, y) * x
    if np.linalg.norm(y) < 1e-12:
        error(elem, f"<{elem.tag} xyaxes={attrs['xyaxes']!r}> needs a y axis that is not parallel to x")
    y = y / np.linalg.norm(y)
    return quat_from_matrix(np.column_stack([x, y, np.cross(x, y)]))


def numbers(elem, attrs, name, count=None, default=None):
    """The attribute ``name`` as a float64 array (``default`` if absent), checked to be finite and,
    with ``count``, of that length; ``ParameterError`` naming the attribute and value otherwise."""
    text = attrs.get(name)
    if text is None:
        return default
    try:
        values = np.array([float(x) for x in text.split()], dtype=float)
    except ValueError:
        error(elem, f"<{elem.tag} {name}={text!r}> is not a list of numbers")
    if count is not None and values.size != count:
        error(elem, f"<{elem.tag} {name}={text!r}> must have {count} numbers")
    if not np.all(np.isfinite(values)):
        error(elem, f"<{elem.tag} {name}={text!r}> must be finite")
    return values


def number(elem, attrs, name, default=None):
    """A single number attribute (``default`` if absent)."""
    values = numbers(elem, attrs, name, 1)
    return default if values is None else float(values[0])
