"""Host-side (numpy, float64) quaternion helpers. Quaternions are (x, y, z, w), as in Warp."""

from __future__ import annotations

import numpy as np

from .errors import ParameterError, check_finite, describe


def normalize_quaternion(name: str, q) -> np.ndarray:
    """Return ``q`` normalised; ``ParameterError`` if it has the wrong size, NaN, or zero length."""
    q = check_finite(name, q)
    if q.shape != (4,):
        raise ParameterError(f"{name} must be a quaternion (x, y, z, w), got {describe(q)}")
    norm = np.linalg.norm(q)
    if norm < 1e-12:
        raise ParameterError(f"{name} must be a non-zero quaternion, got {describe(q)}")
    return q / norm


def quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_multiply(a, b) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_from_axis_angle(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([axis * np.sin(0.5 * angle), [np.cos(0.5 * angle)]])


def quat_between(a, b) -> np.ndarray:
    """The shortest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = np.asarray(a, dtype=float) / np.linalg.norm(a)
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    cross = np.cross(a, b)
    dot = float(np.dot(a, b))
    if dot < -1.0 + 1e-12:  # opposite: rotate by pi about any axis orthogonal to a
        ortho = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(ortho) < 1e-6:
            ortho = np.cross(a, [0.0, 1.0, 0.0])
        return quat_from_axis_angle(ortho, np.pi)
    q = np.concatenate([cross, [1.0 + dot]])
    return q / np.linalg.norm(q)


def quat_from_matrix(r) -> np.ndarray:
    """The unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    r = np.asarray(r, dtype=float)
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    q = np.array(q)
    return q / np.linalg.norm(q)
