"""Fast unrecorded rollouts: the rigid step captured once as a Warp graph and replayed.

``rollout(record=False)`` with the built-in step on the CPU runs here. Per substep, stepping
from Python costs about 150 us of launch overhead (packing some 80 kernel arguments), while the
kernels of one ant world take about 6 us. So the ``substeps`` substeps of one control step (and
their divergence checks) are captured once as a Warp CPU graph that ping-pongs between two
buffers, and the graph is replayed once per control step (a second graph starts from the other
buffer when ``substeps`` is odd). The substep index of the divergence check lives in a device
counter that the graph itself advances.

Warp runs a CPU kernel on one thread, but replaying a graph releases the GIL, and worlds are
independent: the worlds are split into contiguous ranges, one graph per range, replayed on
``threads`` Python threads. Each range works on views of the same two buffers, so the results
are bitwise those of the single-threaded replay and of stepping from Python.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import warp as wp

from . import rigid
from .kernels.rigid import NO_DIVERGENCE
from .model import Control, ControlSequence, Model, State

_PER_WORLD_MODEL_ARRAYS = Model.PER_WORLD_ARRAYS


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_replay(model: Model, controls, step_fn) -> bool:
    """Graph replay needs the built-in rigid step (no Python work per step), a CPU device (CUDA
    graphs are untested here), no capture already running and contiguous control arrays."""
    device = model.device
    if isinstance(controls, ControlSequence):
        if not all(a is None or a.is_contiguous for a in (controls.body_force, controls.body_torque, controls.joint_act)):
            return False
    return step_fn is rigid.step and device.is_cpu and not device.is_capturing


def replay_rollout(
    model: Model,
    initial_state: State,
    controls: Control | ControlSequence | None,
    num_steps: int,
    substeps: int,
    h: float,
    first_bad: wp.array | None,
    threads: int | None = None,
) -> State:
    """Run ``num_steps`` control steps of ``substeps`` substeps of ``h`` seconds; return the final
    state (a new State; ``initial_state`` is not modified). ``first_bad`` as in ``rollout``."""
    # each world range copies initial_state into its part of buffers[0] after capturing; the step
    # writes every array of its output (joint_work too)
    buffers = (model.output_state(requires_grad=False), model.output_state(requires_grad=False))
    if isinstance(controls, ControlSequence):
        control = model.control(requires_grad=False)  # staging: step t is copied in before each replay
    else:
        control = controls if controls is not None else rigid._zero_control(model)
    count = max(1, min(threads or default_threads(), model.num_worlds))
    bounds = np.linspace(0, model.num_worlds, count + 1).round().astype(int)
    ranges = [_WorldRange(model, initial_state, buffers, control, first_bad, int(lo), int(hi), substeps, h) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def run(part: _WorldRange) -> None:
        for t in range(num_steps):
            if isinstance(controls, ControlSequence):
                part.copy_controls(controls, t)
            wp.capture_launch(part.graphs[(t * substeps) % len(part.graphs)])

    if count == 1:
        run(ranges[0])
    else:
        with ThreadPoolExecutor(max_workers=count) as pool:
            for future in [pool.submit(run, part) for part in ranges]:
                future.result()
    return buffers[(num_steps * substeps) % 2]


class _WorldRange:
    """Worlds ``lo:hi``: views of the model, the two buffers and the control, and their graphs."""

    def __init__(self, model, initial_state, buffers, control, first_bad, lo, hi, substeps, h):
        self.lo, self.hi = lo, hi
        self.model = _model_view(model, lo, hi)
        self.buffers = tuple(_state_view(b, lo, hi) for b in buffers)
        self.control = _control_view(control, lo, hi)
        first_bad = None if first_bad is None else first_bad[lo:hi]
        step_base = wp.zeros(1, dtype=wp.int32, device=model.device)
        rigid._free_bodies(self.model)  # build lazily created constants outside the capture
        self.graphs = [self._capture(start, substeps, h, first_bad, step_base) for start in range(1 + substeps % 2)]
        # capturing on the CPU does not execute the launches; reinitialise anyway (buffers[1] is
        # always written before it is read)
        self.buffers[0].assign(_state_view(initial_state, lo, hi))
        step_base.zero_()
        if first_bad is not None:
            first_bad.fill_(NO_DIVERGENCE)

    def _capture(self, start, substeps, h, first_bad, step_base):
        model, buffers = self.model, self.buffers
        wp.capture_begin(device=model.device)
        try:
            for k in range(substeps):
                nxt = buffers[(start + k + 1) % 2]
                rigid.step(model, buffers[(start + k) % 2], nxt, self.control, h)
                if first_bad is not None:
                    rigid.record_divergence(model, nxt, k, first_bad, step_base=step_base)
            if first_bad is not None:
                rigid.advance_step_counter(model, step_base, substeps)
        finally:
            graph = wp.capture_end(device=model.device)
        return graph

    def copy_controls(self, controls: ControlSequence, t: int) -> None:
        """Staging control <- worlds lo:hi of ``controls.at(t)`` (no view objects per step)."""
        for name in ("body_force", "body_torque", "joint_act"):
            dst = getattr(self.control, name)
            if dst is not None:
                src = getattr(controls, name)
                per_world = dst.size // (self.hi - self.lo)
                offset = (t * src.shape[1] + self.lo) * per_world
                wp.copy(dst, src, src_offset=offset, count=dst.size)


def _model_view(model: Model, lo: int, hi: int) -> Model:
    if lo == 0 and hi == model.num_worlds:
        return model
    views = {name: getattr(model, name)[lo:hi] for name in _PER_WORLD_MODEL_ARRAYS}
    return dataclasses.replace(model, num_worlds=hi - lo, **views)


def _state_view(state: State, lo: int, hi: int) -> State:
    view = dataclasses.replace(state, **{name: a[lo:hi] for name, a in state.arrays().items()})
    if state.joint_work is not None:
        work = state.joint_work
        view.joint_work = dataclasses.replace(work, **{f.name: getattr(work, f.name)[lo:hi] for f in dataclasses.fields(work)})
    return view


def _control_view(control: Control, lo: int, hi: int) -> Control:
    return Control(
        body_force=control.body_force[lo:hi],
        body_torque=control.body_torque[lo:hi],
        joint_act=None if control.joint_act is None else control.joint_act[lo:hi],
    )
