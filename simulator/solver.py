"""The solver protocol: one object per physics, one step signature, used by the rollout engine.

A :class:`Solver` is bound to a model (the static description of a batch of worlds). It makes
the states and controls the physics works on, advances one step from ``state_in`` into
``state_out`` (never in place, so a recorded rollout can be differentiated), validates the step
length, tells whether its steps can be captured as a Warp graph, and watches for divergence.
The rollout engine (:mod:`simulator.engine`) sees only this protocol.

:class:`RigidSolver` is the rigid-body and articulated step (contact forces, then semi-implicit
Euler; :mod:`simulator.rigid`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Protocol

import numpy as np
import warp as wp

from . import rigid
from .kernels.constants import NO_DIVERGENCE
from .model import Control, Model, State


def world_slice(array: wp.array | None, lo: int, hi: int) -> wp.array | None:
    """``array[lo:hi]`` along the world dimension; an array with no entries (a model without
    joint dofs has ``(W, 0)`` joint arrays, which Warp cannot slice) becomes a new empty array of
    ``hi - lo`` worlds (there is nothing in it to share)."""
    if array is None:
        return None
    if array.size == 0:
        return wp.empty((hi - lo, *array.shape[1:]), dtype=array.dtype, device=array.device, requires_grad=array.requires_grad)
    return array[lo:hi]


class Solver(ABC):
    """What every physics implements (the model is fixed at construction).

    Attributes:
        model: the static description the solver steps (with ``device``, ``precision`` and
            ``num_worlds``).
    """

    model: object

    @property
    def device(self):
        return self.model.device

    @property
    def num_worlds(self) -> int:
        return self.model.num_worlds

    @abstractmethod
    def state(self, *, requires_grad: bool | None = None):
        """A new state holding the model's initial conditions."""

    def output_state(self, *, requires_grad: bool | None = None):
        """A new state for a step to write into (may be uninitialised: ``step`` writes it all)."""
        return self.state(requires_grad=requires_grad)

    @abstractmethod
    def control(self, *, requires_grad: bool | None = None):
        """A new zero control for one step (or None for physics without controls)."""

    @abstractmethod
    def step(self, state_in, state_out, control, dt: float) -> None:
        """Advance every world by ``dt`` from ``state_in`` into ``state_out`` (distinct objects)."""

    @abstractmethod
    def check_dt(self, dt: float, substeps: int = 1) -> float:
        """Validate a step length [s] split into ``substeps``; return the substep length.

        Raises ``ValueError`` naming ``dt`` when a substep is too long for the physics to stay
        stable (stiff contact, stiff springs...)."""

    def check_model(self) -> None:
        """Raise ``ParameterError`` if a parameter of the model is invalid now (also one written
        after the model was made); the engine calls it before every rollout, so keep it cheap."""

    def check_state(self, state, name: str = "state", *, finite: bool = False) -> None:
        """Raise ``ParameterError`` unless ``state`` fits this solver's model (shape, dtype and
        device of its arrays; with ``finite``, finite values: a host read)."""

    def check_control(self, control, name: str = "control") -> None:
        """Raise ``ParameterError`` unless ``control`` fits this solver's model (or is None)."""

    @property
    def capturable(self) -> bool:
        """Whether ``step`` does no host work, so that steps can be captured as a Warp graph
        (a CPU graph, or a CUDA graph on a GPU) and replayed."""
        return False

    @abstractmethod
    def record_divergence(self, state, step_index: int, first_bad: wp.array, step_base: wp.array | None = None) -> None:
        """Lower ``first_bad[w]`` (``(W,)`` int32) to ``step_index`` (+ ``step_base[0]``) in every
        world ``w`` whose ``state`` is non-finite; launches only, so it can be captured."""

    def prepare_capture(self) -> None:
        """Build any lazily created constants before a capture records launches that use them."""

    @property
    def bookkeeping(self) -> StepBookkeeping | None:
        """Host-side bookkeeping that ``step`` keeps besides the state (an MD neighbor list), or
        None. The engine switches it to device-side updates around captured work and redoes a
        replayed segment from Python when it reports that it needed the host."""
        return None

    @property
    def replay_segment(self) -> int:
        """Steps per captured graph when an unrecorded rollout is replayed (a host check of the
        bookkeeping runs once per segment)."""
        return 1

    def capture_key(self, dt: float) -> tuple:
        """``(key, arrays)``: what a captured step bakes in beyond the engine's own key (the
        solver's parameters and the ids of the arrays it reads; keep ``arrays`` alive with the
        key so the ids stay unique). A captured graph is replayed only while the key is equal."""
        return (), ()

    def parameters(self) -> list[wp.array]:
        """The model's differentiable arrays (a checkpointed backward writes their gradients)."""
        return list(self.model.parameters().values())

    def stepped(self, state, start, count: int) -> None:
        """Note on ``state`` that it is ``count`` substeps after ``start`` (for states that count
        their steps); the engine calls it where a replay ran the steps without Python."""

    def divergence_advice(self, substep: float) -> str:
        """A hint appended to a divergence error of a rollout whose substeps were ``substep`` [s]
        long (what usually fixes it)."""
        return ""

    def state_arrays(self, state) -> dict[str, wp.array]:
        """The arrays of a state by name."""
        return state.arrays()

    def gradient_buffers(self, state) -> list[wp.array]:
        """Every gradient array a recorded step into ``state`` accumulates into (zeroed between
        reverse passes that reuse the state)."""
        return [a.grad for a in self.state_arrays(state).values() if a.grad is not None]

    def world_range(self, lo: int, hi: int) -> Solver:
        """The same solver over worlds ``lo:hi`` (views: results land in the full arrays)."""
        raise NotImplementedError(f"{type(self).__name__} cannot split its worlds")

    def state_view(self, state, lo: int, hi: int):
        raise NotImplementedError(f"{type(self).__name__} cannot split its worlds")

    def control_view(self, control, lo: int, hi: int):
        raise NotImplementedError(f"{type(self).__name__} cannot split its worlds")


class RigidSolver(Solver):
    """Rigid bodies and articulations (:func:`simulator.rigid.step`) as a :class:`Solver`.

    Args:
        model: a :class:`simulator.Model` from ``SceneBuilder.finalize``.
    """

    def __init__(self, model: Model):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a simulator.Model, got {type(model).__name__}")
        self.model = model

    def state(self, *, requires_grad: bool | None = None) -> State:
        return self.model.state(requires_grad=requires_grad)

    def output_state(self, *, requires_grad: bool | None = None) -> State:
        return self.model.output_state(requires_grad=requires_grad)

    def control(self, *, requires_grad: bool | None = None) -> Control:
        return self.model.control(requires_grad=requires_grad)

    def step(self, state_in: State, state_out: State, control: Control | None, dt: float) -> None:
        """The unchecked launches (the engine has checked the rollout's arguments once);
        :func:`simulator.step` is the checked entry point."""
        rigid.launch_step(self.model, state_in, state_out, control, dt)
        state_out.step_index = state_in.step_index + 1

    def stepped(self, state: State, start: State, count: int) -> None:
        state.step_index = start.step_index + count

    def check_model(self) -> None:
        self.model.validate_if_changed()

    def check_state(self, state, name: str = "state", *, finite: bool = False) -> None:
        self.model.check_state(state, name, finite=finite)

    def check_control(self, control, name: str = "control") -> None:
        self.model.check_control(control, name)

    def check_dt(self, dt: float, substeps: int = 1) -> float:
        return rigid.check_stable_timestep(self.model, dt, substeps)

    @property
    def capturable(self) -> bool:
        return not self.device.is_capturing

    def prepare_capture(self) -> None:
        """Build the lazily created constants outside a capture (a capture records, not runs)."""
        rigid._free_bodies(self.model)
        rigid._zero_control(self.model)
        rigid._zero_counter(self.model)

    def record_divergence(self, state, step_index, first_bad, step_base=None) -> None:
        rigid.record_divergence(self.model, state, step_index, first_bad, step_base=step_base)

    def gradient_buffers(self, state: State) -> list[wp.array]:
        buffers = super().gradient_buffers(state)
        if state.joint_work is not None:  # the articulation step's per-step intermediates
            work = state.joint_work
            buffers += [getattr(work, f.name).grad for f in dataclasses.fields(work) if getattr(work, f.name).grad is not None]
        return buffers

    def divergence_advice(self, substep: float) -> str:
        limit = min(rigid.contact_time_scales(self.model).values())
        if np.isfinite(limit) and substep >= limit:
            return f"; the contact needs substeps shorter than {limit:.3g} s (dt < 2*sqrt(m/k))"
        return (f"; the substep {substep:.3g} s is within the contact's stable limit, so look elsewhere: a very small "
                f"inertia or mass, a stiff joint spring or limit, large actuator gains, or a parameter written after finalize")

    def world_range(self, lo: int, hi: int) -> RigidSolver:
        model = self.model
        if lo == 0 and hi == model.num_worlds:
            return self
        views = {name: world_slice(getattr(model, name), lo, hi) for name in model.PER_WORLD_ARRAYS}
        return RigidSolver(dataclasses.replace(model, num_worlds=hi - lo, **views))

    def state_view(self, state: State, lo: int, hi: int) -> State:
        view = dataclasses.replace(state, **{name: world_slice(a, lo, hi) for name, a in state.arrays().items()})
        if state.joint_work is not None:
            work = state.joint_work
            view.joint_work = dataclasses.replace(work, **{f.name: world_slice(getattr(work, f.name), lo, hi)
                                                           for f in dataclasses.fields(work)})
        return view

    def control_view(self, control: Control, lo: int, hi: int) -> Control:
        return Control(
            body_force=world_slice(control.body_force, lo, hi),
            body_torque=world_slice(control.body_torque, lo, hi),
            joint_act=None if control.joint_act is None else world_slice(control.joint_act, lo, hi),
        )


class StepBookkeeping(Protocol):
    """What the engine asks of a solver's :attr:`Solver.bookkeeping` (see
    :class:`simulator.md.NeighborList`, the one implementation).

    Replayed unrecorded segments: ``begin_device_updates()`` (False: step from Python instead),
    then per captured segment ``save_device_state()`` (captured at its start), and after each
    replay ``device_updates_valid()`` (one host read); when it is False the engine calls
    ``restore_device_state()``, ``end_device_updates()`` and redoes the segment from Python.
    ``device_key()`` is what such a graph bakes in.

    Checkpointed backward passes: ``snapshot()`` at every checkpoint and ``restored(snapshot)``
    around its re-simulation; the captured variant runs the window ``updating_in_place()`` over
    ``step_buffers(n)`` (``use_step_buffer(buffers, j)`` before recorded step ``j``, a window
    starting from a snapshot copied into ``step_buffer_starts(buffers)``), after
    ``clear_device_flags()``, needs ``device_updates_supported`` and ``layout_matches(snapshots)``,
    and bakes in ``layout_key()``.
    """

    device_updates_supported: bool

    def begin_device_updates(self) -> bool: ...
    def end_device_updates(self) -> None: ...
    def device_key(self) -> tuple: ...
    def layout_key(self) -> tuple: ...
    def save_device_state(self) -> None: ...
    def restore_device_state(self) -> None: ...
    def device_updates_valid(self) -> bool: ...
    def clear_device_flags(self) -> None: ...
    def snapshot(self) -> tuple: ...
    def restored(self, snapshot: tuple): ...
    def updating_in_place(self): ...
    def step_buffers(self, count: int) -> tuple: ...
    def use_step_buffer(self, buffers: tuple, step: int) -> None: ...
    def step_buffer_starts(self, buffers: tuple) -> list: ...
    def layout_matches(self, snapshots) -> bool: ...


def no_divergence(num_worlds: int, device) -> wp.array:
    """A fresh ``(W,)`` int32 first-bad-step array (``NO_DIVERGENCE`` everywhere)."""
    return wp.full(num_worlds, NO_DIVERGENCE, dtype=wp.int32, device=device)
