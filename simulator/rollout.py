"""Rollouts: many steps of a solver, recorded so that a ``wp.Tape`` can differentiate them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from . import rigid
from .errors import SimulationDivergedError
from .kernels.rigid import NO_DIVERGENCE
from .model import Control, ControlSequence, Model, State

StepFunction = Callable[[Model, State, State, "Control | None", float], None]


@dataclass
class Trajectory:
    """The result of :func:`rollout`.

    Attributes:
        states: with ``record=True``, the state at every step boundary (``num_steps + 1``
            entries, ``states[0]`` is the initial state); with ``record=False``, the initial and
            the final state.
        dt: step length [s]; each step was split into ``substeps`` substeps.
    """

    states: list[State]
    dt: float
    substeps: int
    substates: list[State] = field(default_factory=list, repr=False)  # keeps recorded substeps alive

    @property
    def final(self) -> State:
        return self.states[-1]

    def body_q(self) -> np.ndarray:
        """Poses at the recorded states, ``(len(states), W, B, 7)`` (position, quaternion)."""
        return np.stack([s.body_q.numpy() for s in self.states])

    def body_v(self) -> np.ndarray:
        """Centre-of-mass velocities [m/s] at the recorded states, ``(len(states), W, B, 3)``."""
        return np.stack([s.body_v.numpy() for s in self.states])


def _control_at(controls, step_index: int, num_steps: int):
    if controls is None or isinstance(controls, Control):
        return controls
    if isinstance(controls, ControlSequence):
        if controls.num_steps < num_steps:
            raise ValueError(f"controls has {controls.num_steps} steps but the rollout needs num_steps={num_steps}")
        return controls.at(step_index)
    raise TypeError(f"controls must be None, a Control or a ControlSequence, got {type(controls).__name__}")


def rollout(
    model: Model,
    initial_state: State,
    controls: Control | ControlSequence | None = None,
    *,
    num_steps: int,
    dt: float,
    substeps: int = 1,
    record: bool = True,
    check_divergence: bool = True,
    step_fn: StepFunction = rigid.step,
) -> Trajectory:
    """Simulate ``num_steps`` steps of ``dt`` seconds, each split into ``substeps`` substeps.

    Args:
        model: the scene.
        initial_state: state at t = 0 (not modified).
        controls: None, one :class:`Control` held for every step, or a :class:`ControlSequence`
            with at least ``num_steps`` steps (held over the substeps of each step).
        record: step into a fresh State every substep so that a surrounding ``wp.Tape`` can
            differentiate the rollout (memory grows with the number of substeps); with False,
            two buffers are reused and only the final state is returned (no gradients; on the
            CPU the default step runs as a replayed Warp graph, which a tape does not record).
        check_divergence: raise :class:`SimulationDivergedError` naming the first non-finite
            step and world instead of returning NaN.
        step_fn: the solver's step function (the rigid-body step by default).

    Raises:
        ValueError: bad ``num_steps``, ``dt`` or ``substeps``, or a substep too long for the
            contact stiffness.
        SimulationDivergedError: a state became non-finite.
    """
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative integer, got {num_steps!r}")
    h = rigid.check_stable_timestep(model, dt, substeps)
    if isinstance(controls, ControlSequence) and controls.num_steps < num_steps:
        raise ValueError(f"controls has {controls.num_steps} steps but the rollout needs num_steps={num_steps}")
    first_bad = None
    if check_divergence:
        first_bad = wp.full(model.num_worlds, NO_DIVERGENCE, dtype=wp.int32, device=model.device)

    if not record and num_steps >= 2 and _can_replay_graph(model, controls, step_fn):
        final = _replay_graph(model, initial_state, controls, num_steps, substeps, h, first_bad)
        states, substates = [initial_state, final], []
    else:
        states, substates = _step_in_python(model, initial_state, controls, num_steps, substeps, h, record, first_bad, step_fn)

    if first_bad is not None:
        _raise_if_diverged(model, first_bad.numpy(), dt, substeps)
    return Trajectory(states=states, dt=float(dt), substeps=int(substeps), substates=substates)


def _step_in_python(model, initial_state, controls, num_steps, substeps, h, record, first_bad, step_fn):
    """One ``step_fn`` call per substep from Python (recorded on an active tape when ``record``)."""
    # the rigid step writes every array of its output, so recorded outputs need no initial values
    fresh = model.output_state if step_fn is rigid.step else model.state
    states, substates = [initial_state], []
    current = initial_state
    spare = None if record else model.state(requires_grad=False)
    for t in range(num_steps):
        control = _control_at(controls, t, num_steps)
        for k in range(substeps):
            if record:
                nxt = fresh()
                substates.append(nxt)
            else:
                nxt = spare
            step_fn(model, current, nxt, control, h)
            if first_bad is not None:
                rigid.record_divergence(model, nxt, t * substeps + k, first_bad)
            if not record:
                spare = current if current is not initial_state else model.state(requires_grad=False)
            current = nxt
        if record:
            states.append(current)
    if not record and num_steps > 0:
        states.append(current)
    return states, substates


def _can_replay_graph(model, controls, step_fn) -> bool:
    """Graph replay needs the built-in rigid step (no Python work per step), a CPU device (CUDA
    graphs are untested here), no capture already running and contiguous control arrays."""
    device = model.device
    if isinstance(controls, ControlSequence):
        arrays = (controls.body_force, controls.body_torque, controls.joint_act)
        if not all(a is None or a.is_contiguous for a in arrays):
            return False
    return step_fn is rigid.step and device.is_cpu and not device.is_capturing


def _replay_graph(model, initial_state, controls, num_steps, substeps, h, first_bad) -> State:
    """``rollout(record=False)`` without Python work per substep: the ``substeps`` substeps of one
    control step (and their divergence checks) are captured once as a Warp graph, ping-ponging
    between two buffers, and replayed ``num_steps`` times. With an odd ``substeps`` a second
    graph starts from the other buffer. A ControlSequence is copied into one staging Control
    before each replay. Returns the final state (one of the two buffers)."""
    buffers = (model.state(requires_grad=False), model.state(requires_grad=False))
    if isinstance(controls, ControlSequence):
        control = model.control(requires_grad=False)
    else:
        control = controls if controls is not None else rigid._zero_control(model)
    step_base = wp.zeros(1, dtype=wp.int32, device=model.device)
    graphs = []
    for start in range(1 + substeps % 2):
        wp.capture_begin(device=model.device)
        try:
            for k in range(substeps):
                nxt = buffers[(start + k + 1) % 2]
                rigid.step(model, buffers[(start + k) % 2], nxt, control, h)
                if first_bad is not None:
                    rigid.record_divergence(model, nxt, k, first_bad, step_base=step_base)
            if first_bad is not None:
                rigid.advance_step_counter(model, step_base, substeps)
        finally:
            graphs.append(wp.capture_end(device=model.device))
    # (re)initialise after capturing, whether or not capturing also executed the launches
    buffers[0].assign(initial_state)
    step_base.zero_()
    if first_bad is not None:
        first_bad.fill_(NO_DIVERGENCE)
    for t in range(num_steps):
        if isinstance(controls, ControlSequence):
            _copy_step(control, controls, t)
        wp.capture_launch(graphs[(t * substeps) % len(graphs)])
    return buffers[(num_steps * substeps) % 2]


def _copy_step(control: Control, controls: ControlSequence, t: int) -> None:
    """``control <- controls.at(t)`` without creating views (contiguous (T, W, ...) arrays)."""
    for name in ("body_force", "body_torque", "joint_act"):
        dst = getattr(control, name)
        if dst is not None:
            wp.copy(dst, getattr(controls, name), src_offset=t * dst.size, count=dst.size)


def _raise_if_diverged(model: Model, first_bad: np.ndarray, dt: float, substeps: int) -> None:
    bad_worlds = np.flatnonzero(first_bad != NO_DIVERGENCE)
    if bad_worlds.size == 0:
        return
    substep = int(first_bad[bad_worlds].min())
    world = int(bad_worlds[np.argmin(first_bad[bad_worlds])])
    limits = rigid.contact_time_scales(model)
    limit = min(limits.values())
    advice = f"; the contact needs substeps shorter than {limit:.3g} s (dt < 2*sqrt(m/k))" if np.isfinite(limit) else ""
    raise SimulationDivergedError(
        f"the simulation became non-finite at step {substep // substeps} (substep {substep}) in world {world} "
        f"({bad_worlds.size} of {model.num_worlds} worlds diverged); dt={dt} with substeps={substeps}{advice}",
        step=substep // substeps,
        world=world,
    )
