"""Scene builders, importable as ``simulator.scenes``: ``make(name, num_worlds=..., device=..., **options)``."""

from .registry import list_scenes, make, register

__all__ = ["list_scenes", "make", "register"]
