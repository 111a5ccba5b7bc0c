"""One base for every exception of the package: ``simulator.errors.SimulatorError``."""

import importlib
import inspect
import pkgutil

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
