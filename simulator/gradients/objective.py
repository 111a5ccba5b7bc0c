"""Rollout objectives: a scalar loss of a simulated rollout as a function of parameters theta.

Estimators see only this interface, never the physics, so one implementation serves rigid bodies,
robots and molecular dynamics. An objective is evaluated in batched worlds: row ``w`` of a
``(W, P)`` parameter array drives world ``w``, and the loss comes back per world, ``(W,)``. An ES
population or a batch of random initial states is therefore one set of kernel launches.

Subclasses implement four small methods (see :class:`RolloutObjective`); this module provides
the forward evaluation and the reverse sweep that every gradient estimator is built on: full
backprop, checkpointed backprop (memory ~ sqrt(T)), truncated backprop with a real cut between
windows, per-step clipping of the state adjoint, and a per-step trace of its norm.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from ..errors import GradientNotFiniteError, ParameterError, check_finite, check_losses

_check_losses = check_losses  # the older private name (GradientNotFiniteError is imported from here too)


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
            raise ValueError(f"theta rows must have shape (worlds, {self.num_parameters}), got {rows.shape}")
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
            return _check_losses(np.asarray(losses, dtype=np.float64))
    theta = objective.parameter_array(theta_rows, requires_grad=False)
    worlds = theta.shape[0]
    loss = objective.loss_array(worlds, requires_grad=False)
    state = objective.initial_state(worlds, seed)
    for t in range(objective.num_steps):
        state = objective.advance(t, state, theta)
        objective.add_loss(t, state, theta, loss)
    return check_losses(loss.numpy().astype(np.float64))


@dataclass
class SweepResult:
    """What a reverse sweep returns.

    Attributes:
        losses: per-world losses ``(W,)``.
        gradients: per-world gradients ``(W, P)`` of each world's loss w.r.t. its theta row.
        adjoint_norms: ``(T, W)`` norm of the adjoint of the state *entering* step t (t = 0 is
            the initial state) when ``trace=True``, else None. Growth of this norm from the last
            step back to the first is the gradient explosion the paper describes.
        peak_states: the most states alive at once (the memory figure of the sweep).
    """

    losses: np.ndarray
    gradients: np.ndarray
    adjoint_norms: np.ndarray | None = None
    peak_states: int = 0
    extra: dict = field(default_factory=dict)


def _clone_state(state, requires_grad: bool):
    """A copy of ``state`` in fresh arrays, made outside any tape (so gradients stop there)."""
    clone = type(state).__new__(type(state))
    for name, value in vars(state).items():
        if isinstance(value, wp.array):
            fresh = wp.empty_like(value, requires_grad=requires_grad)
            wp.copy(fresh, value)
            setattr(clone, name, fresh)
        else:
            setattr(clone, name, value)
    return clone


def _adjoint_norms(adjoint: dict[str, wp.array] | None, worlds: int) -> np.ndarray:
    if adjoint is None:
        return np.zeros(worlds)
    total = np.zeros(worlds)
    for array in adjoint.values():
        values = array.numpy().astype(np.float64).reshape(worlds, -1)
        total += np.sum(values * values, axis=1)
    return np.sqrt(total)


def _clip_adjoint(adjoint: dict[str, wp.array], max_norm: float, worlds: int) -> None:
    norms = _adjoint_norms(adjoint, worlds)
    scale = np.where(norms > max_norm, max_norm / np.maximum(norms, 1e-300), 1.0)
    if np.all(scale == 1.0):
        return
    for array in adjoint.values():
        values = array.numpy()
        values *= scale.reshape((worlds,) + (1,) * (values.ndim - 1)).astype(values.dtype)
        array.assign(values)


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
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a finite norm > 0, got {clip!r}")
    segment = T if checkpoint_every is None else int(checkpoint_every)
    if window is not None:
        segment = math.gcd(segment, int(window)) if segment != T else min(segment, int(window))
    if clip is not None or trace:
        segment = 1  # clipping and tracing act at every step boundary
    segment = max(1, min(segment, max(T, 1)))

    # an objective's own path (the rollout engine's programs; MD objectives, which run whole
    # rollouts and raise ValueError naming an option they cannot honour); None: step it from Python
    fast = getattr(objective, "sweep_rows", None)
    if fast is not None:
        result = fast(np.asarray(theta_rows), seed=seed, checkpoint_every=checkpoint_every, window=window, clip=clip, trace=trace)
        if result is not None:
            _check_losses(result.losses)
            bad = np.flatnonzero(~np.all(np.isfinite(result.gradients), axis=1))
            if bad.size:
                try:  # locate the step with the per-step sweep of the generic path (it raises)
                    _python_sweep(objective, theta_rows, seed=seed, segment=1, window=window, clip=clip, trace=True)
                except NotImplementedError:  # an objective that cannot be stepped from Python
                    pass
                raise GradientNotFiniteError(f"the parameter gradient is non-finite in world {int(bad[0])}", step=0)
            return result
    return _python_sweep(objective, theta_rows, seed=seed, segment=segment, window=window, clip=clip, trace=trace)


def _python_sweep(objective, theta_rows, *, seed, segment, window, clip, trace) -> SweepResult:
    """The reverse sweep stepping the objective from Python, ``segment`` steps per local tape."""
    T = objective.num_steps
    theta = objective.parameter_array(theta_rows, requires_grad=True)
    worlds = theta.shape[0]

    # forward: keep the state at the start of every segment (detached copies), and the losses
    starts = list(range(0, T, segment))
    start_set = set(starts)
    checkpoints = {}
    loss_total = objective.loss_array(worlds, requires_grad=False)
    state = objective.initial_state(worlds, seed)
    for t in range(T):
        if t in start_set:
            checkpoints[t] = _clone_state(state, requires_grad=False)
        state = objective.advance(t, state, theta)
        objective.add_loss(t, state, theta, loss_total)
    losses = check_losses(loss_total.numpy().astype(np.float64))
    del state

    # backward: segments from last to first, passing the adjoint of each segment's start state
    norms = np.zeros((T, worlds)) if trace else None
    adjoint: dict[str, wp.array] | None = None
    peak = len(checkpoints)
    for start in reversed(starts):
        stop = min(start + segment, T)
        first = _clone_state(checkpoints.pop(start), requires_grad=True)
        tape = wp.Tape()
        loss = objective.loss_array(worlds, requires_grad=True)
        with tape:
            current = first
            for t in range(start, stop):
                current = objective.advance(t, current, theta)
                objective.add_loss(t, current, theta, loss)
        peak = max(peak, len(checkpoints) + stop - start + 1)
        grads = {loss: wp.ones_like(loss, requires_grad=False)}
        if adjoint is not None:
            for name, array in objective.state_arrays(current).items():
                grads[array] = adjoint[name]
        tape.backward(grads=grads)
        adjoint = {name: wp.clone(array.grad) for name, array in objective.state_arrays(first).items() if array.grad is not None}
        norm = _adjoint_norms(adjoint, worlds)
        if not np.all(np.isfinite(norm)):
            if segment > 1:  # locate the exact step with a per-step sweep (it raises)
                _python_sweep(objective, theta_rows, seed=seed, segment=1, window=window, clip=None, trace=True)
            raise GradientNotFiniteError(
                f"the state adjoint became non-finite in the backward pass at step {start} "
                f"(world {int(np.flatnonzero(~np.isfinite(norm))[0])}); the rollout is too long or too "
                "chaotic to backpropagate: truncate it (window=...), clip it, soften contact, or use ES",
                step=start,
            )
        if trace:
            norms[start] = norm
        if window is not None and start % int(window) == 0:
            adjoint = None  # truncation: no gradient flows into the previous window
        elif clip is not None:
            _clip_adjoint(adjoint, clip, worlds)
        del tape, first, current  # frees the segment (tape.reset() would also zero theta.grad)

    gradients = theta.grad.numpy().astype(np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(gradients), axis=1))
    if bad.size:
        raise GradientNotFiniteError(f"the parameter gradient is non-finite in world {int(bad[0])}", step=0)
    return SweepResult(losses=losses, gradients=gradients, adjoint_norms=norms, peak_states=peak)

