"""Molecular-dynamics rollouts, recorded for ``wp.Tape`` in full or with checkpoints.

* ``record=True``: every step writes a fresh :class:`ParticleState`; a surrounding tape holds
  them all (memory grows with the number of steps).
* ``checkpoint_every=k``: the forward pass keeps one state every ``k`` steps (not recorded); the
  tape gets one custom backward entry that re-simulates each segment on a local tape and
  back-propagates through it, newest segment first. Memory: ``num_steps / k + k`` states.
  Gradients reach the initial state, the model's parameters and the *final* state (a loss that
  reads intermediate states needs ``record=True``). Each segment is re-simulated with the
  neighbor list its forward pass used, so the gradients are bitwise those of ``record=True``.
  On the CPU, for FIRE and velocity Verlet (no list or a periodic one), the forward pass runs
  each segment as replayed graphs (as ``record=False`` does), and every segment is re-simulated
  and back-propagated by replaying one captured Warp graph (:class:`_WindowGraph`): no Python
  per launch, so the gradient of a small system is bound by its kernels.
"""

from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from ..engine import Engine
from ..errors import SimulationDivergedError, check_num_steps, check_timestep
from ..kernels.constants import NEIGHBOR_STATUS_SIZE, NeighborStatus
from ..kernels.md import NO_DIVERGENCE, md_kernels
from .particles import ParticleModel, ParticleState
from .potentials import active_tape, warp_runtime
from .solver import MDSolver


@dataclass
class MDTrajectory:
    """The result of :func:`rollout`.

    Attributes:
        states: the prepared initial state (forces computed) and then, with ``record=True``,
            every step's state (``num_steps + 1`` entries); otherwise the checkpoints (or the
            initial and final state without checkpoints).
        dt: step length [time].
    """

    states: list[ParticleState]
    dt: float
    _keep: list = field(default_factory=list, repr=False)

    @property
    def final(self) -> ParticleState:
        return self.states[-1]

    def positions(self) -> np.ndarray:
        """Positions at the stored states, ``(len(states), N, 3)`` [length]."""
        return np.stack([s.positions.numpy() for s in self.states])


class _DivergenceWatch:
    def __init__(self, model: ParticleModel, enabled: bool):
        self.model = model
        self.first_bad = wp.full(1, NO_DIVERGENCE, dtype=wp.int32, device=model.device) if enabled else None

    def record(self, state: ParticleState, step: int) -> None:
        if self.first_bad is None:
            return
        wp.launch(md_kernels(self.model.precision.scalar).record_first_nonfinite, dim=self.model.particle_count,
                  inputs=[state.positions, state.velocities, int(step)], outputs=[self.first_bad],
                  device=self.model.device, record_tape=False)

    def record_step(self, step: int) -> None:
        """Record that ``step`` became non-finite (keeping the earliest)."""
        if int(self.first_bad.numpy()[0]) > step:
            self.first_bad.fill_(step)

    def raise_if_diverged(self, dt: float) -> None:
        if self.first_bad is None:
            return
        bad = int(self.first_bad.numpy()[0])
        if bad != NO_DIVERGENCE:
            raise SimulationDivergedError(
                f"the particle simulation became non-finite at step {bad} (dt={dt}); reduce dt or check for "
                f"overlapping particles", step=bad, world=0)


def rollout(
    model: ParticleModel,
    initial_state: ParticleState,
    integrator,
    *,
    num_steps: int,
    dt: float = 0.005,
    record: bool = True,
    checkpoint_every: int | None = None,
    check_divergence: bool = True,
) -> MDTrajectory:
    """Run ``num_steps`` steps of ``integrator`` (e.g. :class:`VelocityVerlet`) of ``dt`` [time].

    ``initial_state`` is not modified: ``integrator.prepare`` copies it (recorded, so gradients
    reach it) and computes its forces. See the module docstring for ``record`` and
    ``checkpoint_every``. Raises :class:`SimulationDivergedError` if a state becomes non-finite,
    and ``ValueError`` for ``record=False`` without ``checkpoint_every`` inside an active
    ``wp.Tape`` (the steps would be missing from the tape and its gradients silently wrong).
    """
    num_steps = check_num_steps(num_steps)
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if not record and checkpoint_every is None and active_tape() is not None:
        raise ValueError(
            "record=False inside an active wp.Tape would leave the steps off the tape (wrong gradients); use record=True, "
            "or checkpoint_every=k to save memory, or run the rollout outside the tape")
    check_timestep(dt)
    watch = _DivergenceWatch(model, check_divergence)
    start = integrator.prepare(model, initial_state)
    if checkpoint_every is not None:
        traj = _checkpointed(model, start, integrator, int(num_steps), float(dt), int(checkpoint_every), watch)
    elif not record and _can_replay(model, integrator, num_steps):
        traj = MDTrajectory(states=[start, _replayed(model, start, integrator, int(num_steps), float(dt), watch)], dt=float(dt))
    else:  # stepped from Python by the rollout engine (recorded for a surrounding tape when record)
        steps = _engine(model, integrator).rollout(start, None, num_steps=int(num_steps), dt=float(dt), record=record,
                                                            check_divergence=check_divergence, execution="python")
        traj = MDTrajectory(states=steps.states, dt=float(dt), _keep=steps.substates)
    watch.raise_if_diverged(dt)
    return traj


def _engine(model, integrator) -> Engine:
    """The rollout engine that steps ``integrator`` from Python (a light object: MD steps are not
    captured by it; the replays below keep their own graphs)."""
    return Engine(MDSolver(model, integrator))


REPLAY_SEGMENT = 32  # steps per captured graph (one host read per segment)


def _graphable(model, integrator) -> bool:
    """Whether steps can be captured as a Warp CPU graph: a CPU device not capturing already, an
    integrator whose launches do not depend on the step index (FIRE, velocity Verlet) and no
    neighbor list or a periodic one (updated on the device)."""
    from .integrators import FIRE, VelocityVerlet

    nl = integrator.neighbors
    return (
        type(integrator) in (FIRE, VelocityVerlet)
        and model.device.is_cpu
        and not model.device.is_capturing
        and (nl is None or model.periodic)
    )


def _baked_in(model, integrator, dt, *extra_arrays) -> tuple:
    """What a captured graph of ``integrator`` steps bakes in: the model's arrays (and ``extra_arrays``
    by identity; returned too, so the caller keeps them alive and the ids stay unique), the
    integrator's parameters, ``dt`` and the model's potential, box kind and cutoff."""
    arrays = (*(getattr(model, f) for f in model.__dataclass_fields__ if isinstance(getattr(model, f), wp.array)), *extra_arrays)
    params = tuple((name, v) for name, v in vars(integrator).items() if isinstance(v, (int, float)))
    return (type(integrator), params, float(dt), model.periodic, model.potential, model.cutoff, tuple(id(a) for a in arrays)), arrays


def _can_replay(model, integrator, num_steps) -> bool:
    """Graph replay of an unrecorded rollout: :func:`_graphable`, at least one segment and no
    active tape."""
    return num_steps >= REPLAY_SEGMENT and _graphable(model, integrator) and active_tape() is None


def _replayed(model, start, integrator, num_steps, dt, watch, first_step=0, out=None) -> ParticleState:
    """An unrecorded rollout that replays captured graphs of ``REPLAY_SEGMENT`` steps.

    Per step, Python launches cost far more than the kernels of a small system, and the host
    check of the neighbor list syncs every step. Here the list is checked and rebuilt on the
    device (:meth:`NeighborList.begin_device_updates`) and ``REPLAY_SEGMENT`` steps run as one
    Warp CPU graph ping-ponging between two states, with one host read of the status flags per
    segment. A segment that met a list overflow, a non-finite position or a box change is
    restored and redone by stepping from Python (which grows the list, or raises as usual), so the
    results are bitwise those of stepping from Python. A shorter tail runs as its own graph of an
    even number of steps (an odd last step is stepped from Python). The graphs and their buffers
    are kept on the integrator and reused while nothing they baked in (arrays, sizes, parameters,
    ``dt``) changed. The result is written into ``out`` (a new state by default).
    """
    nl = integrator.neighbors
    replay = getattr(integrator, "_replay", None)
    if replay is None or replay.model is not model or (replay.first_bad is not None) != (watch.first_bad is not None):
        replay = integrator._replay = _Replay(model, watch.first_bad is not None)
    bufs = replay.buffers
    bufs[0].assign(start)
    try:
        _replay_steps(model, start, integrator, replay, num_steps, dt, watch, first_step)
    finally:
        if nl is not None and nl.on_device:
            nl.end_device_updates()
    final = out if out is not None else model.state(requires_grad=False)
    final.assign(bufs[0])
    final.step_index = start.step_index + num_steps
    return final


def _replay_steps(model, start, integrator, replay, num_steps, dt, watch, first_step) -> None:
    """``first_step``: the rollout step of ``start`` (for divergence reports)."""
    nl = integrator.neighbors
    k = REPLAY_SEGMENT
    bufs = replay.buffers
    t = 0
    on_device = False
    while t < num_steps:
        remaining = num_steps - t
        segment = k if remaining >= k else remaining - remaining % 2  # a tail gets its own (even) graph
        if segment >= 2 and not on_device:
            on_device = nl is None or nl.begin_device_updates()
        if on_device and segment >= 2:
            wp.capture_launch(replay.graph(integrator, dt, segment))  # snapshots the segment's start first
            status = nl.status.numpy() if nl is not None else np.zeros(NEIGHBOR_STATUS_SIZE, dtype=np.int32)
            if status[NeighborStatus.OVERFLOW] == 0 and status[NeighborStatus.NEEDS_HOST] == 0:
                if nl is not None:
                    nl.rebuild_count += int(status[NeighborStatus.REBUILDS])
                if replay.first_bad is not None:
                    bad = int(replay.first_bad.numpy()[0])
                    if bad != NO_DIVERGENCE:
                        watch.record_step(first_step + bad + t)
                t += segment
                continue
            # the list needs the host: restore the segment's start and step it from Python
            replay.restore(nl)
            steps = segment
        else:
            steps = remaining
        if on_device and nl is not None:
            nl.end_device_updates()
        on_device = False
        bufs[0].step_index = start.step_index + t
        _engine(model, integrator).rollout(bufs[0], None, num_steps=steps, dt=dt, record=False, execution="python",
                                           check_divergence=watch.first_bad is not None, out=bufs[1], first_step=first_step + t)
        bufs[0].assign(bufs[1])
        t += steps


class _Replay:
    """Two ping-pong states, the snapshot for a redo, and the captured graphs (by segment length)
    with the key they are valid for."""

    def __init__(self, model, watching: bool):
        self.model = model
        self.buffers = (model.state(requires_grad=False), model.state(requires_grad=False))
        self.saved = model.state(requires_grad=False)
        self.first_bad = wp.full(1, NO_DIVERGENCE, dtype=wp.int32, device=model.device) if watching else None
        self._key = None
        self._keep = None
        self._graphs = {}
        self._nl_saved = None

    def graph(self, integrator, dt, k):
        m, nl = self.model, integrator.neighbors
        nl_key, nl_arrays = nl.device_key() if nl is not None else (None, ())
        baked, arrays = _baked_in(m, integrator, dt)
        key = (baked, nl_key)
        if key != self._key:
            self._nl_saved = [wp.empty_like(x) for x in nl.device_arrays()] if nl is not None else []
            self._graphs = {}
            self._key, self._keep = key, (arrays, nl_arrays)  # keep the keyed arrays alive: ids stay unique
        if k not in self._graphs:
            self._graphs[k] = _capture(m, integrator, *self.buffers, k, dt, self)
        return self._graphs[k]

    def record(self, state, j):
        if self.first_bad is not None:
            wp.launch(md_kernels(self.model.precision.scalar).record_first_nonfinite, dim=self.model.particle_count,
                      inputs=[state.positions, state.velocities, int(j)], outputs=[self.first_bad],
                      device=self.model.device, record_tape=False)

    def save(self, nl):
        """Snapshot the segment's start (state and list) and reset the flags the graph sets
        (captured at the start of the graph: no host work per segment)."""
        self.saved.assign(self.buffers[0])
        if nl is not None:
            for src, dst in zip(nl.device_arrays(), self._nl_saved):
                wp.copy(dst, src)
            nl.status.zero_()
        if self.first_bad is not None:
            self.first_bad.fill_(NO_DIVERGENCE)

    def restore(self, nl):
        self.buffers[0].assign(self.saved)
        if nl is not None:
            for src, dst in zip(self._nl_saved, nl.device_arrays()):
                wp.copy(dst, src)


def _capture(model, integrator, a, b, k, dt, watch):
    """Capture a snapshot of the start (``watch.save``) and ``k`` (even) steps a -> b -> a ... -> a,
    recording divergence at local step indices."""
    wp.capture_begin(device=model.device)
    try:
        watch.save(integrator.neighbors)
        for j in range(k):
            src, dst = (a, b) if j % 2 == 0 else (b, a)
            integrator.step(model, src, dst, None, dt)
            watch.record(dst, j)
    finally:
        graph = wp.capture_end(device=model.device)
    return graph


def _checkpointed(model, start, integrator, num_steps, dt, every, watch) -> MDTrajectory:
    nl = integrator.neighbors
    runtime = warp_runtime()
    outer_tape = runtime.tape
    runtime.tape = None  # the forward pass is not recorded: the backward re-simulates
    try:
        checkpoints = [start]
        lists = [_list_snapshot(nl)]  # the list each checkpoint's forces were computed with
        current = start
        replay = _can_replay(model, integrator, every)  # segments as replayed graphs (bitwise the same)
        for first in range(0, num_steps, every):
            steps = min(every, num_steps - first)
            if replay:
                nxt = _replayed(model, current, integrator, steps, dt, watch, first_step=first, out=model.state())
            else:
                nxt = _engine(model, integrator).rollout(current, None, num_steps=steps, dt=dt, record=False, execution="python",
                                                         check_divergence=watch.first_bad is not None, out=model.state(),
                                                         first_step=first).final
            checkpoints.append(nxt)
            lists.append(_list_snapshot(nl))
            current = nxt
    finally:
        runtime.tape = outer_tape

    def backward():
        segments = list(range(len(checkpoints) - 2, -1, -1))
        if _can_replay_gradient(model, integrator, checkpoints, lists):
            # the parameters' gradients and the final state's (a backward may consume its seed)
            saved = [(a.grad, wp.clone(a.grad)) for a in (*model.parameters().values(), *checkpoints[-1].arrays().values())
                     if a.grad is not None]
            if _replayed_backward(model, integrator, checkpoints, lists, dt):
                return
            # the device list overflowed or met a non-finite position: redo it all from Python
            for grad, copy in saved:
                wp.copy(grad, copy)
            for state in checkpoints[1:-1]:
                _zero_gradients(state)
        for seg in segments:
            _segment_backward(model, integrator, checkpoints, lists, dt, seg)

    if outer_tape is not None and model.requires_grad and len(checkpoints) > 1:
        # every array whose gradient the backward writes, so that tape.zero() clears it: the
        # checkpoints' (the initial state's included) and the model parameters'
        written = [*(x for s in checkpoints for x in s.arrays().values()), *model.parameters().values()]
        outer_tape.record_func(backward, [x for x in written if x.requires_grad and x.grad is not None])
    return MDTrajectory(states=checkpoints, dt=dt)


def _segment_backward(model, integrator, checkpoints, lists, dt, seg) -> None:
    """Re-simulate segment ``seg`` on a local tape (from Python, with the neighbor list it started
    with) and back-propagate: the adjoint of its end moves to its start."""
    seg_start, seg_end = checkpoints[seg], checkpoints[seg + 1]
    steps = seg_end.step_index - seg_start.step_index
    local = wp.Tape()
    nl = integrator.neighbors
    with nl.restored(lists[seg]) if nl is not None else contextlib.nullcontext(), local:
        # the last step rewrites the same values into seg_end, so its adjoint seeds the segment
        _engine(model, integrator).rollout(seg_start, None, num_steps=steps, dt=dt, check_divergence=False, execution="python",
                                           out=seg_end)
    local.backward()
    # the adjoint now sits in seg_start's gradients; clear seg_end's (checkpoints only)
    if seg + 1 < len(checkpoints) - 1:
        _zero_gradients(seg_end)


def _zero_gradients(state) -> None:
    for array in state.arrays().values():
        if array.grad is not None:
            array.grad.zero_()


def _list_snapshot(nl):
    return None if nl is None else nl.snapshot()


def _can_replay_gradient(model, integrator, checkpoints, lists) -> bool:
    """The replayed backward needs :func:`_graphable`, a built list and one list capacity for
    every checkpoint (a capacity grown during the forward pass changes the shape of the list
    arrays)."""
    nl = integrator.neighbors
    if not (_graphable(model, integrator) and (nl is None or nl.built) and len(checkpoints) > 1):
        return False
    if nl is not None:
        shapes = [a.shape for a in _list_snapshot(nl)]
        if any([a.shape for a in snap] != shapes for snap in lists):
            return False
    return True


def _replayed_backward(model, integrator, checkpoints, lists, dt) -> bool:
    """The checkpointed backward with every window re-simulated and back-propagated by a captured
    graph (see :class:`_WindowGraph`; one per window length, kept on the integrator, so a last
    shorter window has its own). Returns False (the caller redoes it all from Python) if the
    device-side list update needed the host."""
    graphs = getattr(integrator, "_grad_replay", None)
    if graphs is None:
        graphs = integrator._grad_replay = {}
    runtime = warp_runtime()
    outer = runtime.tape
    runtime.tape = None
    try:
        seed = checkpoints[-1]  # the window before holds its adjoint in pool[0]
        previous = None
        checked = set()
        for seg in range(len(checkpoints) - 2, -1, -1):
            steps = checkpoints[seg + 1].step_index - checkpoints[seg].step_index
            graph = graphs.get(steps)
            if steps not in checked:  # once per backward: nothing the key reads changes in it
                key = _WindowGraph.key(model, integrator, steps, dt)
                if graph is None or graph.key_value != key:
                    graph = graphs[steps] = _WindowGraph(model, integrator, steps, dt, key)
                checked.add(steps)
            if graph is not previous:  # the same graph moved it there itself
                source = seed if previous is None else previous.pool[0]
                for grad, src in zip(graph.gradients(graph.pool[steps]), graph.gradients(source)):
                    wp.copy(grad, src)
            if not graph.window(checkpoints[seg], lists[seg]):
                return False
            previous = graph
        start = checkpoints[0]
        for grad, adjoint in zip(previous.gradients(start), previous.gradients(previous.pool[0])):
            grad.assign(grad.numpy() + adjoint.numpy())  # CPU only: the same sums as a kernel
    finally:
        runtime.tape = outer
    return True


class _WindowGraph:
    """One window of ``k`` steps, re-simulated on a tape and back-propagated, captured once as a
    Warp CPU graph over a fixed pool of ``k + 1`` states and replayed for every window of ``k``
    steps.

    Per window the caller copies the checkpoint into ``pool[0]`` and its neighbor list into list
    buffer 0 and the reference positions and box; the graph then zeroes the flags and the
    gradients of ``pool[0:k]``, runs the recorded forward (step ``j`` copies list buffer ``j``
    into buffer ``j + 1`` and updates it on the device, in place, so every step's adjoint reads
    the list that step used), back-propagates
    from the adjoint already in ``pool[k]`` (parameter gradients accumulate across windows) and
    moves ``pool[0]``'s adjoint into ``pool[k]``, the seed of the window before (the caller copies
    the seed of the first window it replays).
    """

    def __init__(self, model, integrator, k, dt, key):
        self.key_value = key
        self.model, self.integrator = model, integrator
        self.pool = [model.state() for _ in range(k + 1)]
        nl = integrator.neighbors
        if nl is not None:
            count, index, positions_ref, box_ref = _list_snapshot(nl)
            # per step: the list its adjoint reads; shared: the reference positions and box, which
            # only the (sequential) rebuild decisions of the forward read
            self.lists = [(wp.empty_like(count), wp.empty_like(index)) for _ in range(k + 1)]
            self.refs = (wp.empty_like(positions_ref), wp.empty_like(box_ref))
        self.tape = wp.Tape()
        self.graph = self._capture(k, dt)
        # where each window's start goes (contiguous CPU arrays): pool[0], list buffer 0, references
        starts = [*self.pool[0].arrays().values(), *((*self.lists[0], *self.refs) if nl is not None else ())]
        assert all(a.is_contiguous and a.device.is_cpu for a in starts)
        self._starts = [(a.ptr, a.size * wp.types.type_size_in_bytes(a.dtype)) for a in starts]

    @staticmethod
    def key(model, integrator, k, dt):
        nl = integrator.neighbors
        nl_key, nl_arrays = nl.layout_key() if nl is not None else (None, ())
        gradients = [a.grad for a in model.parameters().values() if a.grad is not None]
        baked, arrays = _baked_in(model, integrator, dt, *gradients, *nl_arrays)
        return (baked, k, nl_key, arrays)  # the arrays themselves keep their ids unique

    @staticmethod
    def gradients(state) -> list:
        return [a.grad for a in state.arrays().values() if a.grad is not None]

    def _capture(self, k, dt):
        model, integrator, pool = self.model, self.integrator, self.pool
        nl = integrator.neighbors
        with nl.updating_in_place() if nl is not None else contextlib.nullcontext():
            wp.capture_begin(device=model.device)
            try:
                if nl is not None:
                    nl.status.zero_()
                for state in pool[:k]:
                    for grad in self.gradients(state):
                        grad.zero_()
                with self.tape:
                    for j in range(k):
                        if nl is not None:
                            src, dst = self.lists[j], self.lists[j + 1]
                            for s, d in zip(src, dst):
                                wp.copy(d, s)
                            nl.restore((*dst, *self.refs))
                        integrator.step(model, pool[j], pool[j + 1], None, dt)
                self.tape.backward()
                for dst, src in zip(self.gradients(pool[k]), self.gradients(pool[0])):
                    wp.copy(dst, src)
            finally:
                graph = wp.capture_end(device=model.device)
        return graph

    def window(self, checkpoint, snapshot) -> bool:
        """Re-simulate and back-propagate the window that starts at ``checkpoint`` (whose list
        is ``snapshot``); False if the list update needed the host (the gradients are then wrong)."""
        nl = self.integrator.neighbors
        sources = [*checkpoint.arrays().values(), *(snapshot if nl is not None else ())]
        for (dst, nbytes), src in zip(self._starts, sources):
            ctypes.memmove(dst, src.ptr, nbytes)  # a Python wp.copy costs ~10x more
        wp.capture_launch(self.graph)
        if nl is not None:
            status = nl.status.numpy()
            if status[NeighborStatus.OVERFLOW] != 0 or status[NeighborStatus.NEEDS_HOST] != 0:
                return False
            nl.rebuild_count += int(status[NeighborStatus.REBUILDS])
        return True
