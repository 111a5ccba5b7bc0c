"""One base for every exception of the package: ``simulator.errors.SimulatorError``."""

import ast
import fnmatch
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator import errors


def package_modules() -> list:
    """Every module of the installed package (its mapped subpackages ``kernels``, ``scenes`` and
    ``demos`` included), found by walking it: none is left out by a hand-written list."""
    names = ["simulator"]
    for package in ("simulator", "simulator.kernels", "simulator.scenes", "simulator.demos"):
        module = importlib.import_module(package)
        names += [package] + [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    # ``__main__`` runs the command line when imported
    return [importlib.import_module(name) for name in dict.fromkeys(names) if not name.endswith("__main__")]


def defined_exceptions() -> list:
    found = []
    for module in package_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException) and not issubclass(cls, Warning):
                found.append(cls)
    return found


def test_walk_finds_the_subpackages_and_the_exceptions():
    names = {m.__name__ for m in package_modules()}
    assert {"simulator.errors", "simulator.md.neighbors", "simulator.kernels.rigid", "simulator.scenes.registry"} <= names
    found = set(defined_exceptions())
    assert {errors.SimulatorError, errors.ParameterError, errors.SimulationDivergedError, errors.GradientNotFiniteError,
            errors.LossNotFiniteError, errors.NonFinitePositionsError} <= found


def test_every_exception_derives_from_simulator_error():
    outside = [f"{cls.__module__}.{cls.__qualname__}" for cls in defined_exceptions() if not issubclass(cls, errors.SimulatorError)]
    assert not outside, outside


def test_exceptions_keep_their_builtin_bases_and_public_names():
    assert issubclass(errors.ParameterError, ValueError)
    assert issubclass(errors.LossNotFiniteError, ValueError) and issubclass(errors.LossNotFiniteError, FloatingPointError)
    assert issubclass(errors.SimulationDivergedError, FloatingPointError)
    assert issubclass(errors.GradientNotFiniteError, FloatingPointError)
    assert issubclass(errors.NonFinitePositionsError, ValueError)
    for cls in (errors.SimulatorError, errors.ParameterError, errors.SimulationDivergedError, errors.GradientNotFiniteError,
                errors.LossNotFiniteError, errors.NonFinitePositionsError):
        assert getattr(simulator, cls.__name__) is cls and cls.__name__ in simulator.__all__
    # the older import paths name the same classes
    from simulator.gradients import GradientNotFiniteError
    from simulator.md import NonFinitePositionsError

    assert GradientNotFiniteError is errors.GradientNotFiniteError and NonFinitePositionsError is errors.NonFinitePositionsError


@pytest.mark.parametrize("check, value, match", [
    (lambda v: errors.check_finite("mass", v), [1.0, float("nan")], r"mass must be finite, got \[1.0, nan\]"),
    (lambda v: errors.check_positive("radius", v), -2.0, r"radius must be > 0, got -2.0"),
    (lambda v: errors.check_nonnegative("softness", v), -0.5, r"softness must be >= 0, got -0.5"),
    (lambda v: errors.check_vector("axis", v), [1.0, 2.0], r"axis must have 3 entries, got \[1.0, 2.0\]"),
    (lambda v: errors.check_finite("theta", v), "abc", r"theta must be numeric, got 'abc'"),
    (lambda v: errors.check_timestep(v), 0.0, r"dt must be > 0 seconds, got 0.0"),
    (lambda v: errors.check_timestep(0.01, v), 0, r"substeps must be a positive integer, got 0"),
])
def test_checks_raise_parameter_error_naming_parameter_and_value(check, value, match):
    with pytest.raises(errors.ParameterError, match=match):
        check(value)


def test_check_losses_names_the_first_bad_world():
    losses = np.array([1.0, 2.0, np.inf, np.nan])
    with pytest.raises(errors.LossNotFiniteError, match=r"non-finite loss \(inf\) in world 2") as info:
        errors.check_losses(losses)
    assert info.value.world == 2
    assert errors.check_losses(losses[:2]) is not None



# ------------------------------------------------------------------- no direct ValueError

SOURCE_ROOT = Path(__file__).resolve().parents[1]
# the package's source folders (``kernels``, ``scenes`` and ``demos`` are mapped into ``simulator``)
SOURCE_FOLDERS = ("simulator", "kernels", "scenes", "demos")
# Files allowed to raise ValueError directly (globs relative to the repository root): none; a
# bad argument raises ParameterError (a ValueError too).
DIRECT_VALUE_ERROR_ALLOWED: tuple[str, ...] = ()


def source_files() -> dict:
    """Every ``.py`` file of the source folders, by its path relative to the repository root."""
    return {p.relative_to(SOURCE_ROOT).as_posix(): p for folder in SOURCE_FOLDERS for p in sorted((SOURCE_ROOT / folder).rglob("*.py"))}


def direct_value_errors(source: str, name: str) -> list:
    """``name:line`` of every ``raise ValueError`` and ``raise ValueError(...)`` in ``source``."""
    hits = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "ValueError":
                hits.append(f"{name}:{node.lineno}")
    return hits


def test_value_error_lint_finds_raises_and_its_allow_list_is_current():
    sample = ("def f(x):\n    if x < 0:\n        raise ValueError(f'x must be >= 0, got {x}')\n    if x > 9:\n        raise ValueError\n"
              "    if x == 3:\n        raise ParameterError(f'x must not be 3, got {x}')\n    raise TypeError('x')\n")
    assert direct_value_errors(sample, "sample.py") == ["sample.py:3", "sample.py:5"]
    files = source_files()
    assert {"simulator/errors.py", "simulator/md/objectives.py", "kernels/rigid.py", "scenes/registry.py", "demos/common.py"} <= set(files)
    stale = [pattern for pattern in DIRECT_VALUE_ERROR_ALLOWED if not fnmatch.filter(files, pattern)]
    assert not stale, f"allow-list entries that match no file (drop them): {stale}"


def test_no_direct_value_error():
    """Bad input raises ``ParameterError`` (a ``ValueError`` too), never a bare ``ValueError``, so
    that one ``except SimulatorError`` catches every error the package raises on purpose."""
    allowed = {name for pattern in DIRECT_VALUE_ERROR_ALLOWED for name in fnmatch.filter(source_files(), pattern)}
    direct = [hit for name, path in source_files().items() if name not in allowed for hit in direct_value_errors(path.read_text(), name)]
    assert not direct, f"raise simulator.errors.ParameterError (or another SimulatorError) instead of ValueError at {direct}"
