"""Scene builders, importable as ``simulator.scenes``: ``make(name, num_worlds=..., device=..., **options)``."""

from . import contact_scenes, robots  # noqa: F401  (the built-in scenes register themselves; the registry imports none of them)
from .registry import list_scenes, make, register

__all__ = ["list_scenes", "make", "register"]
