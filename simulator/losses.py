"""Task loss terms, written once, and the :class:`Task` that bundles a scene with its loss.

A loss term is any object with

* ``every_step: bool``: added after every step, or only after the last one;
* ``add(model, state, control, loss, context) -> None``: add the term of the state reached after
  step ``context.step`` into ``loss`` (``(W,)``, atomically), given the :class:`Control` that
  drove that step (None if none) and a :class:`LossContext`.

``add`` only launches kernels (no host reads of device data, no allocation), so a rollout engine
can call it inside a captured Warp graph, and a ``wp.Tape`` records it. The same terms serve
:class:`simulator.ControlObjective`, the robot scenes' ``loss(trajectory, controls)``
(:func:`trajectory_loss`) and ``simulator.torch.terms_loss``. The kernels are in
``simulator.kernels.losses``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import warp as wp

from .errors import ParameterError, check_num_steps, describe
from .kernels.losses import loss_kernels
from .model import Control, ControlSequence, Model, State


@dataclass(frozen=True)
class LossContext:
    """Where in a rollout a loss term is evaluated.

    Attributes:
        initial_state: the rollout's state at t = 0 (its arrays stay valid for the whole rollout).
        step: index of the step just taken (0-based); the state handed to ``add`` is the state after it.
        elapsed: simulated time since the initial state [s], ``(step + 1) * dt``.
        final: True for the last step of the rollout (``step == num_steps - 1``).
    """

    initial_state: State | None
    step: int
    elapsed: float
    final: bool


class LossTerm(Protocol):
    """The interface every loss term implements (see the module docstring)."""

    every_step: bool

    def add(self, model: Model, state: State, control: Control | None, loss: wp.array, context: LossContext) -> None: ...


def _finite(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return value


def _vector(name: str, value) -> tuple[float, float, float]:
    values = np.asarray(value, dtype=np.float64).reshape(-1)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise ParameterError(f"{name} must be 3 finite numbers, got {value!r}")
    return tuple(float(x) for x in values)


def _index(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_body(model: Model, body: int) -> None:
    if body >= model.body_count:
        raise ParameterError(f"body must be an index in [0, {model.body_count}), got {body}")


# ------------------------------------------------------------------------------- state terms
@dataclass
class JointError:
    """``weight * e^2`` of one joint coordinate (or velocity) against ``target``.

    ``e = x - target`` [m or rad (per s)], or ``e = 2 sin((x - target)/2)`` with ``angle=True``
    (smooth and 2 pi-periodic, ~ x - target near the target). ``x`` is the joint's first
    coordinate ``joint_q`` (``velocity=False``) or its first velocity ``joint_qd`` (``velocity=True``).
    """

    joint: int
    target: float = 0.0
    weight: float = 1.0
    velocity: bool = False
    angle: bool = False
    every_step: bool = False

    def __post_init__(self):
        self.joint = _index("joint", self.joint)
        self.target, self.weight = _finite("target", self.target), _finite("weight", self.weight)

    def add(self, model, state, control, loss, context) -> None:
        art = model.articulation
        if art is None:
            raise ParameterError("model must have joints for JointError, got one without an articulation (model.articulation is None)")
        if self.joint >= len(art.joint_kinds):
            raise ParameterError(f"joint must be an index in [0, {len(art.joint_kinds)}), got {self.joint}")
        coord = (art.qd_slice(self.joint) if self.velocity else art.q_slice(self.joint)).start
        s = model.precision.scalar
        wp.launch(loss_kernels(s).joint_error, dim=loss.shape[0],
                  inputs=[coord, int(self.velocity), int(self.angle), s(self.target), s(self.weight), state.joint_q, state.joint_qd],
                  outputs=[loss], device=model.device)


@dataclass
class ForwardProgress:
    """``-weight * dot(axis, x - x_0) / elapsed``: minus the mean velocity [m/s] of one body's
    centre of mass along ``axis`` since the initial state (lower is faster forward).

    The elapsed time is ``context.elapsed`` (the number of steps taken times dt), whatever the
    rollout kept in memory."""

    body: int
    axis: tuple = (1.0, 0.0, 0.0)
    weight: float = 1.0
    every_step: bool = False

    def __post_init__(self):
        self.body = _index("body", self.body)
        self.axis, self.weight = _vector("axis", self.axis), _finite("weight", self.weight)

    def add(self, model, state, control, loss, context) -> None:
        _check_body(model, self.body)
        if context.initial_state is None:
            raise ParameterError("context.initial_state must be the rollout's initial state for ForwardProgress, got None")
        if not context.elapsed > 0.0:
            raise ParameterError(f"context.elapsed must be > 0 s, got {context.elapsed!r}")
        p = model.precision
        wp.launch(loss_kernels(p.scalar).body_progress, dim=loss.shape[0],
                  inputs=[self.body, p.vec3(*self.axis), p.scalar(-self.weight / context.elapsed), context.initial_state.body_q,
                          state.body_q],
                  outputs=[loss], device=model.device)


@dataclass
class _BodyTargetLoss:
    """``weight * |x_body - target|^2`` of one body's ``STATE_FIELD`` (a vec3 part of the state)."""

    body: int
    target: tuple = (0.0, 0.0, 0.0)
    weight: float = 1.0
    every_step: bool = False
    KERNEL = ""  # the kernel of simulator.kernels.losses that adds the term
    STATE_FIELD = ""  # the state array it reads

    def __post_init__(self):
        self.body = _index("body", self.body)
        self.target, self.weight = _vector("target", self.target), _finite("weight", self.weight)

    def add(self, model, state, control, loss, context) -> None:
        _check_body(model, self.body)
        p = model.precision
        wp.launch(getattr(loss_kernels(p.scalar), self.KERNEL), dim=loss.shape[0],
                  inputs=[self.body, p.vec3(*self.target), p.scalar(self.weight), getattr(state, self.STATE_FIELD)],
                  outputs=[loss], device=model.device)


@dataclass
class PositionLoss(_BodyTargetLoss):
    """``weight * |p_body - target|^2`` [m^2 * weight] at the final step (or summed over every step)."""

    KERNEL, STATE_FIELD = "body_position", "body_q"


@dataclass
class VelocityLoss(_BodyTargetLoss):
    """``weight * |v_body - target|^2`` [(m/s)^2 * weight] at the final step (or summed over every step)."""

    KERNEL, STATE_FIELD = "body_velocity", "body_v"


# ----------------------------------------------------------------------------- control terms
@dataclass
class EffortLoss:
    """``weight * sum_b |f_b|^2`` [N^2 * weight] of the control's body forces, summed over every
    step. Reads only the control (nothing when a step had no control)."""

    weight: float = 1.0e-3
    every_step: bool = True
    reads_state = False  # can be evaluated on a trajectory that kept only its first and last state

    def __post_init__(self):
        self.weight = _finite("weight", self.weight)

    def add(self, model, state, control, loss, context) -> None:
        if control is None:
            return
        wp.launch(loss_kernels(model.precision.scalar).force_effort, dim=(loss.shape[0], control.body_force.shape[1]),
                  inputs=[model.precision.scalar(self.weight), control.body_force], outputs=[loss], device=model.device)


@dataclass
class ActuatorEffort:
    """``weight * sum_a u_a^2`` of the actuator controls (``joint_act``, before clipping), summed
    over every step; ``weight = w / num_steps`` makes it ``w`` times the mean over steps. Reads
    only the control (nothing when a step had no actuator controls)."""

    weight: float = 1.0e-3
    every_step: bool = True
    reads_state = False  # can be evaluated on a trajectory that kept only its first and last state

    def __post_init__(self):
        self.weight = _finite("weight", self.weight)

    def add(self, model, state, control, loss, context) -> None:
        if control is None or control.joint_act is None:
            return
        wp.launch(loss_kernels(model.precision.scalar).actuator_effort, dim=(loss.shape[0], control.joint_act.shape[1]),
                  inputs=[model.precision.scalar(self.weight), control.joint_act], outputs=[loss], device=model.device)


# ------------------------------------------------------------------------------ evaluation
def add_terms(terms: Sequence[LossTerm], model: Model, state: State | None, control: Control | None, loss: wp.array,
              context: LossContext) -> None:
    """Add every term due after ``context.step`` (every-step terms always, the others when
    ``context.final``) in order. ``state`` may be None only if no due term reads it."""
    for term in terms:
        if term.every_step or context.final:
            if state is None and getattr(term, "reads_state", True):
                raise ParameterError(f"state must not be None: {type(term).__name__} is added after every step and reads the state, "
                                     f"but the state after step {context.step} was not kept: roll out with record=True")
            term.add(model, state, control, loss, context)


def _control_at(controls, step: int):
    if controls is None or isinstance(controls, Control):
        return controls
    if isinstance(controls, ControlSequence):
        return controls.at(step)
    raise TypeError(f"controls must be None, a Control or a ControlSequence, got {type(controls).__name__}")


def trajectory_steps(trajectory, controls=None, num_steps: int | None = None) -> int:
    """The number of steps a trajectory covers: ``num_steps`` if given, else the trajectory's own
    (:attr:`simulator.Trajectory.num_steps`, kept by recorded and unrecorded rollouts alike)."""
    recorded = bool(trajectory.substates)
    kept = len(trajectory.states) - 1
    if num_steps is None:
        num_steps = trajectory.num_steps
    num_steps = check_num_steps(num_steps)
    if (recorded and num_steps != kept) or (kept == 0 and num_steps != 0) or (num_steps == 0 and kept != 0):
        raise ParameterError(f"num_steps={num_steps} does not match the trajectory ({kept} steps kept, recorded={recorded})")
    if isinstance(controls, ControlSequence) and controls.num_steps < num_steps:
        raise ParameterError(f"controls must cover the trajectory's num_steps={num_steps} steps, got {controls.num_steps} steps")
    return int(num_steps)


def trajectory_loss(model: Model, terms: Sequence[LossTerm], trajectory, controls: Control | ControlSequence | None = None, *,
                    num_steps: int | None = None, out: wp.array | None = None) -> wp.array:
    """The loss terms evaluated over a rollout, per world ``(W,)``, in the order a rollout engine adds
    them (step by step, the final-only terms after the last step), recorded on an active tape.

    Args:
        trajectory: a :class:`simulator.Trajectory` (``dt`` is taken from it).
        controls: what drove the rollout (step ``t`` used ``controls.at(t)``); control terms add
            nothing where it is None.
        num_steps: the rollout's number of steps (see :func:`trajectory_steps`; needed for a
            ``record=False`` trajectory unless ``controls`` is a sequence of exactly that length).
        out: accumulate into this ``(W,)`` array instead of a fresh zero one.

    Every-step terms that read the state (``reads_state``, default True) raise ``ParameterError`` on a
    ``record=False`` trajectory, whose intermediate states are gone; control-only terms (effort)
    and final-only terms are evaluated. Elapsed time is ``(step + 1) * dt`` from the step count.
    """
    steps = trajectory_steps(trajectory, controls, num_steps)
    if out is None:
        out = wp.zeros(model.num_worlds, dtype=model.precision.scalar, device=model.device, requires_grad=model.requires_grad)
    recorded = len(trajectory.states) == steps + 1
    initial = trajectory.states[0]
    for t in range(steps):
        final = t == steps - 1
        state = trajectory.states[t + 1] if recorded else (trajectory.final if final else None)
        context = LossContext(initial_state=initial, step=t, elapsed=(t + 1) * float(trajectory.dt), final=final)
        add_terms(terms, model, state, _control_at(controls, t), out, context)
    return out


def scalar_loss(array: wp.array, weights=None, *, index=None) -> wp.array:
    """A ``(1,)`` scalar of any contiguous float array, recorded on an active ``wp.Tape``:
    ``sum(weights * array)`` over its scalars, or the one scalar at ``index`` (into the array's
    host shape, e.g. ``(world, body, 2)`` for a height in ``body_q``). ``tape.backward(loss=...)``
    then needs no hand-built seed arrays.

    Args:
        array: e.g. ``trajectory.final.body_q``; vector, transform and matrix arrays count their
            components (the shape of ``array.numpy()``).
        weights: numpy-like of the shape of ``array.numpy()``; exclusive with ``index``.
        index: the position of one scalar in ``array.numpy()``.
    """
    if not isinstance(array, wp.array) or not array.is_contiguous:
        raise ParameterError(f"array must be a contiguous wp.array, got {type(array).__name__}")
    scalar = getattr(array.dtype, "_wp_scalar_type_", array.dtype)
    if scalar not in (wp.float32, wp.float64):
        raise ParameterError(f"array must hold float32 or float64 values, got {array.dtype}")
    host_shape = array.numpy().shape
    if (weights is None) == (index is None):
        raise ParameterError(f"scalar_loss needs exactly one of weights and index, got {'neither' if weights is None else 'both'}")
    if index is not None:
        weights = np.zeros(host_shape)
        try:
            weights[tuple(np.atleast_1d(index))] = 1.0
        except (IndexError, TypeError) as exc:
            raise ParameterError(f"index {index!r} is not a position in an array of shape {host_shape}") from exc
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != host_shape or not np.all(np.isfinite(weights)):
        got = f"shape {weights.shape}" if weights.shape != host_shape else describe(weights)
        raise ParameterError(f"weights must be finite with shape {host_shape}, got {got}")
    count = int(np.prod(host_shape))
    grad = None
    if array.grad is not None:
        grad = wp.array(ptr=array.grad.ptr, shape=(count,), dtype=scalar, device=array.device)
    flat = wp.array(ptr=array.ptr, shape=(count,), dtype=scalar, device=array.device, grad=grad)
    flat._keep = array  # the view must not outlive the array it aliases
    numpy_type = np.float64 if scalar == wp.float64 else np.float32
    w = wp.array(weights.reshape(-1).astype(numpy_type), dtype=scalar, device=array.device)
    total = wp.zeros(1, dtype=scalar, device=array.device, requires_grad=array.requires_grad)
    wp.launch(loss_kernels(scalar).weighted_sum, dim=count, inputs=[flat, w], outputs=[total], device=array.device)
    return total


# ------------------------------------------------------------------------------------ task
@dataclass(frozen=True)
class Task:
    """A control task: a model factory, its time stepping, horizon, loss terms and default controller.

    Attributes:
        name: the task's (scene's) name.
        make_model: ``make_model(num_worlds=1, device=None, precision="float32", requires_grad=False,
            contact=None) -> Model``, the scene with its options fixed.
        dt: control step [s]; each step is split into ``substeps`` physics substeps.
        horizon: default number of control steps.
        loss_terms: ``loss_terms(num_steps) -> list`` of loss terms for a rollout of that many steps
            (a mean over steps needs the count).
        make_controller: ``make_controller(model)``: the default controller (e.g. open-loop actions).
        description: one line describing the loss.
    """

    name: str
    make_model: Callable[..., Model]
    dt: float
    substeps: int
    horizon: int
    loss_terms: Callable[[int], list]
    make_controller: Callable[[Model], object]
    description: str = ""

    def __post_init__(self):
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ParameterError(f"dt must be a finite step > 0 s, got {self.dt!r}")
        for name in ("substeps", "horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")

    def losses(self, num_steps: int | None = None) -> list:
        """The loss terms for ``num_steps`` steps (default: the horizon)."""
        num_steps = self.horizon if num_steps is None else num_steps
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ParameterError(f"num_steps must be a positive integer, got {num_steps!r}")
        return list(self.loss_terms(int(num_steps)))


__all__ = [
    "ActuatorEffort",
    "EffortLoss",
    "ForwardProgress",
    "JointError",
    "LossContext",
    "LossTerm",
    "PositionLoss",
    "Task",
    "VelocityLoss",
    "add_terms",
    "scalar_loss",
    "trajectory_loss",
    "trajectory_steps",
]
