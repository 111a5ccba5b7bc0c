"""Rollouts of the rigid-body solver: :func:`rollout`, a thin caller of :class:`simulator.engine.Engine`."""

from __future__ import annotations

from .engine import Engine, Trajectory
from .model import Control, ControlSequence, Model, State
from .solver import RigidSolver, Solver

__all__ = ["Trajectory", "rollout"]


def rollout(
    model: Model | Solver,
    initial_state: State,
    controls: Control | ControlSequence | None = None,
    *,
    num_steps: int,
    dt: float,
    substeps: int = 1,
    record: bool = True,
    checkpoint_every: int | None = None,
    check_divergence: bool = True,
    execution: str = "auto",
    threads: int | None = None,
) -> Trajectory:
    """Simulate ``num_steps`` steps of ``dt`` seconds, each split into ``substeps`` substeps.

    Args:
        model: the scene (a :class:`Model`, stepped by a :class:`RigidSolver`), or any solver.
        initial_state: state at t = 0 (not modified).
        controls: None, one :class:`Control` held for every step, or a :class:`ControlSequence`
            with at least ``num_steps`` steps (held over the substeps of each step).
        record: step into a fresh State every substep so that a surrounding ``wp.Tape`` can
            differentiate the rollout (memory grows with the number of substeps); with False,
            two buffers are reused and only the final state is returned (no gradients: inside an
            active tape this raises instead of returning a rollout the tape cannot see).
        checkpoint_every: keep one state every ``checkpoint_every`` steps instead of every
            substep; in the backward pass of a surrounding tape each segment is re-simulated and
            back-propagated (bitwise the gradients of ``record=True``; memory ``num_steps / k + k``
            states). Gradients reach the initial state, the model's parameters, the controls and
            the final state (``states`` holds the checkpoints; a loss that reads intermediate
            states needs ``record=True``).
        check_divergence: raise :class:`SimulationDivergedError` naming the first non-finite
            step and world instead of returning NaN.
        execution: ``"auto"`` (unrecorded rollouts replay a captured graph of each control step
            when the solver can be captured), ``"python"`` (step from Python) or ``"graph"``.
        threads: for unrecorded graph replays on the CPU, the worlds are split over this many
            threads (default: the CPUs this process may use; at most one per world). Results do
            not depend on it.

    Raises:
        ParameterError: (a ``ValueError``) bad ``num_steps``, ``dt`` or ``substeps``, a substep too
            long for the contact stiffness, or ``record=False`` inside an active tape.
        SimulationDivergedError: a state became non-finite.
    """
    solver = model if isinstance(model, Solver) else RigidSolver(model)
    return Engine(solver).rollout(initial_state, controls, num_steps=num_steps, dt=dt, substeps=substeps, record=record,
                                  checkpoint_every=checkpoint_every, check_divergence=check_divergence, execution=execution,
                                  threads=threads)
