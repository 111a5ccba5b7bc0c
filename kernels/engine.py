"""Kernels the rollout engine launches itself (not physics): the step counter of a replayed graph."""

import warp as wp


@wp.kernel
def advance_step_counter(count: int, step_base: wp.array(dtype=int)):
    """``step_base[0] += count`` (one thread): the step counter a captured graph advances, so each
    replay reports divergence at its own step index (see ``Solver.record_divergence``)."""
    step_base[0] = step_base[0] + count
