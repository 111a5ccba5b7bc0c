"""Device and floating-point precision: decided once, in ``SceneBuilder.finalize``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import warp as wp

from .errors import ParameterError

PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class Precision:
    """The Warp types that every array of a model uses.

    Attributes:
        name: ``"float32"`` or ``"float64"``.
        scalar: Warp scalar type.
        vec3: 3-vector of ``scalar``.
        quat: quaternion of ``scalar`` (x, y, z, w).
        mat33: 3x3 matrix of ``scalar``.
        transform: rigid transform of ``scalar`` (position, quaternion).
        numpy: matching numpy dtype.
    """

    name: str
    scalar: type
    vec3: type
    quat: type
    mat33: type
    transform: type
    numpy: type


_PRECISION_TABLE = {
    "float32": Precision("float32", wp.float32, wp.vec3f, wp.quatf, wp.mat33f, wp.transformf, np.float32),
    "float64": Precision("float64", wp.float64, wp.vec3d, wp.quatd, wp.mat33d, wp.transformd, np.float64),
}


def get_precision(precision: str | Precision) -> Precision:
    """Look up a :class:`Precision` by name (``"float32"`` or ``"float64"``)."""
    if isinstance(precision, Precision):
        return precision
    if precision not in _PRECISION_TABLE:
        raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return _PRECISION_TABLE[precision]


def resolve_device(device: str | wp.context.Device | None) -> wp.context.Device:
    """Return a Warp device; ``None`` means Warp's preferred device (a GPU when there is one)."""
    wp.init()
    if device is None:
        return wp.get_preferred_device()
    try:
        return wp.get_device(device)
    except Exception as exc:  # Warp raises several types for unknown devices
        available = [str(d) for d in wp.get_devices()]
        raise ParameterError(f"device {device!r} is not available; Warp sees {available}") from exc
