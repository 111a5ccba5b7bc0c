"""Exceptions and input checks shared by the package."""

from __future__ import annotations

import math
import numpy as np


class SimulationDivergedError(FloatingPointError):
    """A rollout produced a non-finite state.

    Attributes:
        step: index of the first (sub)step whose output was non-finite.
        world: index of the first world that diverged at that step.
    """

    def __init__(self, message: str, *, step: int, world: int):
        super().__init__(message)
        self.step = step
        self.world = world


def describe(value) -> str:
    """A short, plain rendering of a value for error messages (numpy types shown as Python ones)."""
    try:
        return repr(np.asarray(value).tolist())
    except Exception:
        return repr(value)


def _as_float_array(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {describe(value)}") from exc


def check_finite(name: str, value) -> np.ndarray:
    """Raise ``ValueError`` if ``value`` has a NaN or inf; return it as a float64 array."""
    arr = _as_float_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {describe(value)}")
    return arr


def check_positive(name: str, value) -> np.ndarray:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and > 0."""
    arr = check_finite(name, value)
    if np.any(arr <= 0.0):
        raise ValueError(f"{name} must be > 0, got {describe(value)}")
    return arr


def check_nonnegative(name: str, value) -> np.ndarray:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and >= 0."""
    arr = check_finite(name, value)
    if np.any(arr < 0.0):
        raise ValueError(f"{name} must be >= 0, got {describe(value)}")
    return arr


def check_vector(name: str, value, length: int = 3) -> np.ndarray:
    """Raise ``ValueError`` unless ``value`` is a finite vector of ``length`` entries."""
    arr = check_finite(name, value)
    if arr.shape != (length,):
        raise ValueError(f"{name} must have {length} entries, got {describe(value)}")
    return arr


def check_timestep(dt, substeps: int = 1) -> float:
    """Validate a time step [s] and a substep count; return dt as a float."""
    if not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be a positive integer, got {describe(substeps)}")
    dt_value = float(check_finite("dt", dt))
    if dt_value <= 0.0:
        raise ValueError(f"dt must be > 0 seconds, got {describe(dt)}")
    return dt_value


def stable_timestep(mass: float, stiffness: float) -> float:
    """Largest stable explicit step [s] for a mass [kg] on a spring [N/m]: 2*sqrt(m/k)."""
    return 2.0 * math.sqrt(mass / stiffness)

