"""Rollout objectives: a scalar loss of a simulated rollout as a function of parameters theta.

Estimators see only this interface, never the physics, so one implementation serves rigid bodies,
robots and molecular dynamics. An objective is evaluated in batched worlds: row ``w`` of a
``(W, P)`` parameter array drives world ``w``, and the loss comes back per world, ``(W,)``. An ES
population or a batch of random initial states is therefore one set of kernel launches.

Subclasses implement four small methods (see :class:`RolloutObjective`); this module provides
``evaluate`` and ``reverse_sweep``, which every gradient estimator is built on (full backprop,
checkpointed backprop with memory ~ sqrt(T), truncated backprop with a real cut between windows,
per-step clipping of the state adjoint, and a per-step trace of its norm). Both dispatch to the
objective's own path where it has one (the rollout engine's captured programs, MD objectives)
and otherwise step it from Python in the rollout engine (:mod:`simulator.engine`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import warp as wp

from ..engine import SweepResult, evaluate_objective, sweep_objective  # noqa: F401 (SweepResult re-exported)
from ..errors import GradientNotFiniteError, ParameterError, check_finite, check_losses


class RolloutObjective(ABC):
    """A loss ``L(theta) = sum_t loss_t(state_t, theta)`` of a ``num_steps``-step rollout.

    Subclasses set ``num_parameters``, ``num_steps``, ``device`` and ``precision`` (a
    :class:`simulator.Precision`) and implement:

    * ``initial_state(num_worlds, seed)``: a fresh initial state (it may depend on the seed, e.g.
      random initial conditions; the same seed must give the same state).
    * ``advance(t, state, theta)``: return a *new* state one step after ``state``, driven by
      ``theta`` (a ``(W, P)`` Warp array). Must not write into ``state``.
    * ``add_loss(t, state, theta, loss)``: add the loss of the state reached after step ``t``
      into ``loss`` (``(W,)``, atomically).
    * ``state_arrays(state)``: the state's arrays by name (used to detach, checkpoint and pass
      adjoints between segments of the backward pass).
    """

    num_parameters: int
    num_steps: int
    device: object
    precision: object

    @abstractmethod
    def initial_state(self, num_worlds: int, seed: int): ...

    @abstractmethod
    def advance(self, t: int, state, theta: wp.array): ...

    @abstractmethod
    def add_loss(self, t: int, state, theta: wp.array, loss: wp.array) -> None: ...

    @abstractmethod
    def state_arrays(self, state) -> dict[str, wp.array]: ...

    # ------------------------------------------------------------------ helpers
    def parameter_array(self, rows: np.ndarray, *, requires_grad: bool) -> wp.array:
        rows = np.ascontiguousarray(rows, dtype=self.precision.numpy)
        if rows.ndim != 2 or rows.shape[1] != self.num_parameters:
            raise ParameterError(f"theta rows must have shape (worlds, {self.num_parameters}), got {rows.shape}")
        return wp.array(rows, dtype=self.precision.scalar, device=self.device, requires_grad=requires_grad)

    def loss_array(self, num_worlds: int, *, requires_grad: bool) -> wp.array:
        return wp.zeros(num_worlds, dtype=self.precision.scalar, device=self.device, requires_grad=requires_grad)


def check_theta(objective: RolloutObjective, theta) -> np.ndarray:
    """Validate a parameter vector: finite, shape ``(P,)``."""
    theta = check_finite("theta", theta).reshape(-1)
    if theta.shape != (objective.num_parameters,):
        raise ParameterError(f"theta must have {objective.num_parameters} entries, got {theta.shape[0]}")
    return theta


def evaluate(objective: RolloutObjective, theta, *, seed: int = 0):
    """The loss at ``theta``: a float for a parameter vector ``(P,)``, or the per-world losses
    ``(W,)`` for parameter rows ``(W, P)`` (one world each), without recording a tape.

    An objective with its own path (``evaluate_rows(theta_rows, seed=...)`` returning the losses,
    or None where it cannot: the rollout engine's programs, MD objectives) runs it; otherwise the
    objective is stepped from Python."""
    if np.ndim(theta) == 1:
        return float(_evaluate_rows(objective, check_theta(objective, theta)[None, :], seed)[0])
    return _evaluate_rows(objective, theta, seed)


def _evaluate_rows(objective: RolloutObjective, theta_rows, seed: int) -> np.ndarray:
    fast = getattr(objective, "evaluate_rows", None)
    if fast is not None:
        losses = fast(np.asarray(theta_rows), seed=seed)
        if losses is not None:
            return check_losses(np.asarray(losses, dtype=np.float64))
    return evaluate_objective(objective, theta_rows, seed=seed)


def reverse_sweep(
    objective: RolloutObjective,
    theta_rows: np.ndarray,
    *,
    seed: int = 0,
    checkpoint_every: int | None = None,
    window: int | None = None,
    clip: float | None = None,
    trace: bool = False,
) -> SweepResult:
    """Per-world losses and gradients by backpropagation through the rollout.

    Args:
        theta_rows: ``(W, P)`` parameters, one row per world.
        checkpoint_every: keep only every k-th state in the forward pass and re-simulate each
            segment of k steps in the backward pass (memory ~ T/k + k states; k ~ sqrt(T) gives
            sqrt(T)). The gradient is bitwise identical to the full tape on the CPU.
        window: truncated backprop: the state adjoint is cut (set to zero) at the start of every
            window of this many steps, so each window's losses are differentiated only through
            the steps inside it. ``window >= num_steps`` is full backprop.
        clip: clip the state adjoint of each world to this norm at every step boundary.
        trace: record the state adjoint's norm at every step boundary (``adjoint_norms``).

    Raises:
        GradientNotFiniteError: the backward pass became non-finite (names the step).
    """
    T = objective.num_steps
    if window is not None and (not isinstance(window, (int, np.integer)) or window < 1):
        raise ParameterError(f"window must be a positive integer, got {window!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1):
        raise ParameterError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ParameterError(f"clip must be a finite norm > 0, got {clip!r}")
    segment = T if checkpoint_every is None else int(checkpoint_every)
    if window is not None:
        segment = math.gcd(segment, int(window)) if segment != T else min(segment, int(window))
    if clip is not None or trace:
        segment = 1  # clipping and tracing act at every step boundary
    segment = max(1, min(segment, max(T, 1)))

    # an objective's own path (the rollout engine's programs; MD objectives, which run whole
    # rollouts and raise ParameterError naming an option they cannot honour); None: step it from Python
    fast = getattr(objective, "sweep_rows", None)
    if fast is not None:
        result = fast(np.asarray(theta_rows), seed=seed, checkpoint_every=checkpoint_every, window=window, clip=clip, trace=trace)
        if result is not None:
            check_losses(result.losses)
            bad = np.flatnonzero(~np.all(np.isfinite(result.gradients), axis=1))
            if bad.size:
                try:  # locate the step with the per-step sweep of the generic path (it raises)
                    sweep_objective(objective, theta_rows, seed=seed, segment=1, window=window, clip=clip, trace=True)
                except NotImplementedError:  # an objective that cannot be stepped from Python
                    pass
                raise GradientNotFiniteError(f"the parameter gradient is non-finite in world {int(bad[0])}", step=0)
            return result
    return sweep_objective(objective, theta_rows, seed=seed, segment=segment, window=window, clip=clip, trace=trace)
