"""Registry of named scenes: each entry builds a :class:`simulator.SceneBuilder` and finalizes it."""

from __future__ import annotations

from collections.abc import Callable

from simulator.errors import ParameterError

_SCENES: dict[str, Callable] = {}


def register(name: str):
    """Decorator: register ``factory(num_worlds=..., device=..., **options) -> Scene`` under ``name``."""

    def decorate(factory):
        if name in _SCENES:
            raise ParameterError(f"name must not be taken, got {name!r}: a scene of that name is already registered")
        _SCENES[name] = factory
        return factory

    return decorate


def list_scenes() -> list[str]:
    return sorted(_SCENES)


def make(name: str, *, num_worlds: int = 1, device=None, **options):
    """Build the scene ``name`` for ``num_worlds`` worlds on ``device``; options go to its factory."""
    if name not in _SCENES:
        raise ParameterError(f"unknown scene {name!r}; available: {', '.join(sorted(_SCENES))}")
    return _SCENES[name](num_worlds=num_worlds, device=device, **options)

