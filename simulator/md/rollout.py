"""Molecular-dynamics rollouts: a thin caller of the rollout engine (:class:`simulator.engine.Engine`
over an :class:`~simulator.md.solver.MDSolver`).

* ``record=True``: every step writes a fresh :class:`ParticleState`; a surrounding tape holds
  them all (memory grows with the number of steps).
* ``checkpoint_every=k``: the engine's checkpointed rollout: one state kept every ``k`` steps,
  each segment re-simulated (with the neighbor list its forward pass used) and back-propagated in
  the backward pass, bitwise the gradients of ``record=True``. Memory: ``num_steps / k + k`` states.
* ``record=False``: unrecorded; for FIRE and velocity Verlet (no list or a periodic one) the
  engine replays captured graphs of ``REPLAY_SEGMENT`` steps with the list updated on the device.

The engine of a (model, integrator) pair is kept on the integrator (:func:`engine`), so its
captured graphs are replayed by the next rollout of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import Engine
from .particles import ParticleModel, ParticleState
from .solver import REPLAY_SEGMENT, MDSolver

__all__ = ["MDTrajectory", "REPLAY_SEGMENT", "engine", "rollout"]


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


def engine(model: ParticleModel, integrator) -> Engine:
    """The rollout engine that steps ``integrator`` on ``model`` (kept on the integrator for its
    latest model, so repeated rollouts replay the graphs it captured)."""
    cached = getattr(integrator, "_engine", None)
    if cached is None or cached.solver.model is not model:
        cached = integrator._engine = Engine(MDSolver(model, integrator))
    return cached


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
    execution: str = "auto",
) -> MDTrajectory:
    """Run ``num_steps`` steps of ``integrator`` (e.g. :class:`VelocityVerlet`) of ``dt`` [time].

    ``initial_state`` is not modified: ``integrator.prepare`` copies it (recorded, so gradients
    reach it) and computes its forces. See the module docstring for ``record`` and
    ``checkpoint_every``; ``execution`` (``"auto"``, ``"python"`` or ``"graph"``) chooses between
    stepping from Python and replaying captured graphs, forward and in the checkpointed backward
    pass (the results are bitwise the same). Raises :class:`SimulationDivergedError` if a state
    becomes non-finite, and ``ValueError`` for ``record=False`` without ``checkpoint_every``
    inside an active ``wp.Tape`` (the steps would be missing from the tape and its gradients
    silently wrong).
    """
    md_engine = engine(model, integrator)
    md_engine.check_rollout(num_steps=num_steps, dt=dt, record=record, checkpoint_every=checkpoint_every, execution=execution)
    model.check_state(initial_state, "initial_state", finite=True)
    start = integrator.prepare(model, initial_state)
    traj = md_engine.rollout(start, None, num_steps=num_steps, dt=dt, record=record, checkpoint_every=checkpoint_every,
                             check_divergence=check_divergence, execution=execution)
    return MDTrajectory(states=traj.states, dt=float(dt), _keep=traj.substates)
