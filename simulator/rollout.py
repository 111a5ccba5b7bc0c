"""Rollouts: many steps of a solver, recorded so that a ``wp.Tape`` can differentiate them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from . import replay, rigid
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
    threads: int | None = None,
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
            CPU the default step runs as a replayed Warp graph, which a tape does not record;
            see :mod:`simulator.replay`).
        check_divergence: raise :class:`SimulationDivergedError` naming the first non-finite
            step and world instead of returning NaN.
        step_fn: the solver's step function (the rigid-body step by default).
        threads: for ``record=False`` on the CPU, the worlds are split over this many threads
            (default: the CPUs this process may use; at most one per world). Results do not
            depend on it.

    Raises:
        ValueError: bad ``num_steps``, ``dt`` or ``substeps``, or a substep too long for the
            contact stiffness.
        SimulationDivergedError: a state became non-finite.
    """
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative integer, got {num_steps!r}")
    h = rigid.check_stable_timestep(model, dt, substeps)
    if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if isinstance(controls, ControlSequence) and controls.num_steps < num_steps:
        raise ValueError(f"controls has {controls.num_steps} steps but the rollout needs num_steps={num_steps}")
    first_bad = None
    if check_divergence:
        first_bad = wp.full(model.num_worlds, NO_DIVERGENCE, dtype=wp.int32, device=model.device)

    if not record and num_steps >= 2 and replay.can_replay(model, controls, step_fn):
        final = replay.replay_rollout(model, initial_state, controls, num_steps, substeps, h, first_bad, threads)
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
