"""Exceptions and input checks shared by the package.

Every exception the package raises on purpose derives from :class:`SimulatorError`, so callers
can catch the package's errors in one clause. Each also keeps the built-in base that describes
it (``ValueError`` for bad input, ``FloatingPointError`` for a non-finite result), so code that
catches those keeps working.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path

import numpy as np
import warp as wp
from warp.types import type_repr


class SimulatorError(Exception):
    """Base class of every exception raised by the package."""


class ParameterError(SimulatorError, ValueError):
    """An argument has an invalid value; the message names the parameter and the value."""


class SimulationDivergedError(SimulatorError, FloatingPointError):
    """A rollout produced a non-finite state.

    Attributes:
        step: index of the first (sub)step whose output was non-finite.
        world: index of the first world that diverged at that step.
    """

    def __init__(self, message: str, *, step: int, world: int):
        super().__init__(message)
        self.step = step
        self.world = world


class GradientNotFiniteError(SimulatorError, FloatingPointError):
    """The backward pass produced a non-finite adjoint.

    Attributes:
        step: the latest rollout step whose state adjoint was non-finite (the backward pass runs
            from the last step to the first, so this is where the blow-up first appeared); None
            where no step is known (an estimator's output, an optimiser's update).
    """

    def __init__(self, message: str, *, step: int | None):
        super().__init__(message)
        self.step = step


class LossNotFiniteError(SimulatorError, FloatingPointError, ValueError):
    """An objective returned a NaN or infinite loss (also a ``ValueError``, as it was before).

    Attributes:
        world: index of the first world whose loss was not finite.
    """

    def __init__(self, message: str, *, world: int):
        super().__init__(message)
        self.world = world


class NonFinitePositionsError(SimulatorError, ValueError):
    """A neighbor-list build met NaN or infinite positions (``particle`` is the first such index)."""

    def __init__(self, message: str, *, particle: int):
        super().__init__(message)
        self.particle = particle


def check_losses(losses: np.ndarray) -> np.ndarray:
    """Raise :class:`LossNotFiniteError` naming the first world whose loss ``(W,)`` is not finite;
    return ``losses``."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        world = int(bad[0])
        raise LossNotFiniteError(f"the objective returned a non-finite loss ({float(losses[world])!r}) in world {world}", world=world)
    return losses


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
        raise ParameterError(f"{name} must be numeric, got {describe(value)}") from exc


def check_finite(name: str, value) -> np.ndarray:
    """Raise ``ParameterError`` if ``value`` has a NaN or inf; return it as a float64 array."""
    arr = _as_float_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must be finite, got {describe(value)}")
    return arr


def check_positive(name: str, value) -> np.ndarray:
    """Raise ``ParameterError`` unless every entry of ``value`` is finite and > 0."""
    arr = check_finite(name, value)
    if np.any(arr <= 0.0):
        raise ParameterError(f"{name} must be > 0, got {describe(value)}")
    return arr


def check_nonnegative(name: str, value) -> np.ndarray:
    """Raise ``ParameterError`` unless every entry of ``value`` is finite and >= 0."""
    arr = check_finite(name, value)
    if np.any(arr < 0.0):
        raise ParameterError(f"{name} must be >= 0, got {describe(value)}")
    return arr


def check_vector(name: str, value, length: int = 3) -> np.ndarray:
    """Raise ``ParameterError`` unless ``value`` is a finite vector of ``length`` entries."""
    arr = check_finite(name, value)
    if arr.shape != (length,):
        raise ParameterError(f"{name} must have {length} entries, got {describe(value)}")
    return arr


def check_range(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = True,
                high_open: bool = True) -> float:
    """Raise ``ParameterError`` unless ``value`` is a finite number in the interval from ``low`` to
    ``high`` (each bound open unless ``low_open``/``high_open`` is False; None: unbounded); return
    it as a float."""
    number = check_finite(name, value)
    if number.shape != ():
        raise ParameterError(f"{name} must be a number, got {describe(value)}")
    x = float(number)
    below = low is not None and (x <= low if low_open else x < low)
    above = high is not None and (x >= high if high_open else x > high)
    if below or above:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = ("(" if low is None or low_open else "[") + f"{left}, {right}" + (")" if high is None or high_open else "]")
        raise ParameterError(f"{name} must be in {interval}, got {describe(value)}")
    return x


def check_integer(name: str, value, *, minimum: int | None = None) -> int:
    """Raise ``ParameterError`` unless ``value`` is an integer (not a bool, not a float such as
    1.7 or 2.0) that is at least ``minimum``; return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {describe(value)}")
    return int(value)


def check_array(name: str, array, *, shape: tuple, dtype, device) -> None:
    """Raise ``ParameterError`` unless ``array`` is a ``wp.array`` of ``shape``, ``dtype`` and on
    ``device`` (what a kernel launch would otherwise reject with a Warp-level error, or, for a
    shape, silently read out of range)."""
    if not isinstance(array, wp.array):
        raise ParameterError(f"{name} must be a wp.array, got {type(array).__name__}")
    if tuple(array.shape) != tuple(shape):
        raise ParameterError(f"{name} must have shape {tuple(shape)} (the model's), got {tuple(array.shape)}")
    if array.dtype is not dtype and not wp.types.types_equal(array.dtype, dtype):
        raise ParameterError(f"{name} must have dtype {type_repr(dtype)} (the model's precision), got "
                             f"{type_repr(array.dtype)}")
    if array.device != device:
        raise ParameterError(f"{name} must be on the model's device {device}, got {array.device}")


def host_values(array) -> np.ndarray:
    """The values of a ``wp.array`` on the host: on the CPU a view of its memory, kept on the
    array (no copy, no new view per call: a step loop reads its output through it every step);
    on a GPU a fresh copy."""
    if not array.device.is_cpu:
        return array.numpy()
    view = getattr(array, "_host_view", None)
    if view is None:
        view = array._host_view = array.numpy()
    return view


def all_finite(values: np.ndarray) -> bool:
    """Whether every entry of ``values`` is finite (one reduction in the common case)."""
    return math.isfinite(values.sum(dtype=np.float64)) or bool(np.isfinite(values).all())


def checked_before(obj, owner, parts: tuple, level: int = 0, *, mark: str = "_checked_mark") -> bool:
    """Whether ``obj`` (a state or a control) carries the mark :func:`mark_checked` left when it
    was checked against ``owner`` (a model) at ``level`` or above, holding the same ``parts``
    (its arrays, by identity) as then: a step loop checks its arguments once, then pays a few
    identity comparisons per step. ``mark``: the attribute holding the mark (one per checker)."""
    kept = getattr(obj, mark, None)
    return kept is not None and kept[0]() is owner and kept[1] >= level and kept[2] == parts


def mark_checked(obj, owner, parts: tuple, level: int = 0, *, mark: str = "_checked_mark") -> None:
    """Mark ``obj`` as checked against ``owner`` (held weakly) at ``level`` with ``parts``."""
    setattr(obj, mark, (weakref.ref(owner), level, parts))


def check_array_finite(name: str, array) -> None:
    """Raise ``ParameterError`` naming the first non-finite entry of ``array`` (a ``wp.array``
    or ndarray, leading index the world); reads it on the host."""
    values = array if isinstance(array, np.ndarray) else host_values(array)
    if all_finite(values):
        return
    finite = np.isfinite(values)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ParameterError(f"{name} must be finite, got {describe(values[index])} at index {list(index)}")


def check_parameter_values(name: str, values: np.ndarray, sign: str) -> None:
    """Raise ``ParameterError`` naming the first entry of the host array ``values`` (world or
    particle index first) that is not finite or not of ``sign``: ``"positive"`` (> 0),
    ``"nonnegative"`` (>= 0) or ``"finite"``. The common case (all good) costs two reductions."""
    if values.size == 0:
        return
    lowest = values.min()
    if math.isfinite(values.max()) and math.isfinite(lowest) and (
            sign == "finite" or lowest > 0.0 or (sign == "nonnegative" and lowest == 0.0)):
        return
    check_array_finite(name, values)
    bad = values <= 0.0 if sign == "positive" else values < 0.0 if sign == "nonnegative" else np.zeros(values.shape, bool)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        relation = "> 0" if sign == "positive" else ">= 0"
        raise ParameterError(f"{name} must be {relation}, got {describe(values[index])} at index {list(index)}")


def output_folder(name: str, path) -> Path:
    """Make the folder ``path`` (and its parents) if it does not exist and return it; raise
    ``ParameterError`` naming ``name`` when ``path`` or a parent is an existing file."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ParameterError(f"{name} must name a folder (made if missing), got {str(path)!r}, which is a file "
                             f"or lies under one") from exc
    return folder


def check_num_steps(num_steps) -> int:
    """Validate a number of steps (a non-negative integer); return it as an int."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise ParameterError(f"num_steps must be a non-negative integer, got {describe(num_steps)}")
    return int(num_steps)


def check_timestep(dt, substeps: int = 1) -> float:
    """Validate a time step [s] and a substep count; return dt as a float."""
    if type(dt) is float and 0.0 < dt < math.inf and type(substeps) is int and substeps >= 1:
        return dt  # the common case, without numpy (a step loop calls this every step)
    if not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ParameterError(f"substeps must be a positive integer, got {describe(substeps)}")
    dt_value = float(check_finite("dt", dt))
    if dt_value <= 0.0:
        raise ParameterError(f"dt must be > 0 seconds, got {describe(dt)}")
    return dt_value


def stable_timestep(mass: float, stiffness: float) -> float:
    """Largest stable explicit step [s] for a mass [kg] on a spring [N/m]: 2*sqrt(m/k)."""
    return 2.0 * math.sqrt(mass / stiffness)

