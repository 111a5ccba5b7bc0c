"""Warp's runtime state that the package reads: the active tape (one accessor for every caller)."""

from __future__ import annotations

import warp as wp


def warp_runtime():
    """Warp's runtime object, which holds the active tape (Warp exposes no public way to read or
    pause it)."""
    src = getattr(wp, "_src", None)
    return src.context.runtime if src is not None else wp.context.runtime


def active_tape():
    """The ``wp.Tape`` recording now, or None."""
    return warp_runtime().tape
