"""The rollout engine: every multi-step simulation of a :class:`~simulator.solver.Solver` runs here.

One :class:`Engine` per solver. It owns its caches (captured graphs, state pools, world-range
views), so repeated calls of the same shape cost only the replay. Two kinds of work:

* :meth:`Engine.rollout`: ``num_steps`` steps of ``dt`` (each split into ``substeps``) driven by
  a fixed control or a :class:`~simulator.model.ControlSequence`; recorded for a surrounding
  ``wp.Tape`` (``record=True``: every substep writes a fresh state), or unrecorded, replaying
  captured graphs of ``solver.replay_segment`` control steps (``execution="graph"``; no Python per
  launch) with the worlds split into contiguous ranges on ``threads`` threads, or checkpointed
  (``checkpoint_every=k``: one backward entry on the tape re-simulates each segment, from Python
  or as a captured window graph). A solver's *bookkeeping* (an MD neighbor list) is switched to
  device-side updates inside captured graphs and checked once per segment; a segment that needed
  the host is restored and redone from Python, so every path gives the same bits.
* :meth:`Engine.evaluate` and :meth:`Engine.gradient`: a *program* (a controller that writes the
  control of each step from the state and parameters ``theta``, and loss terms added after each
  step) over batched worlds, one parameter row per world. The whole rollout, its losses and (for
  the gradient) its recorded tape and reverse pass are captured once as graphs over preallocated
  pools and replayed per call, per world range on its own thread. These are the fast paths of
  the gradient estimators: ES evaluates its population with :meth:`evaluate`, backprop uses
  :meth:`gradient`.

* :func:`evaluate_objective` and :func:`sweep_objective`: a rollout objective that is not a
  program (it has only ``advance``/``add_loss``, see :mod:`simulator.gradients.objective`), and the
  reverse sweeps that need a host between steps (checkpointed segments, truncation windows,
  clipping, adjoint-norm traces), stepped from Python.

A program has ``num_steps``, ``dt``, ``substeps`` and two methods, both of which may only launch
kernels (no host reads, no allocation other than through the workspace), so they can be captured:

* ``apply_control(model, t, state, theta, control, workspace)``: write ``control`` for step ``t``;
* ``step_loss(model, t, state, control, theta, loss, initial_state)``: add the loss of the state
  reached after step ``t`` into ``loss`` (``(W,)``).

``model`` is the solver's model (a world range of it on a thread), ``theta`` ``(W, P)``. A program
whose hooks do host work says ``capturable = False`` and is always stepped from Python.

Worlds are independent and every world range works on views of the same arrays, so results are
bitwise those of one thread and of stepping from Python, whatever the thread count. Graph capture
works on the CPU (Warp CPU graphs) and on CUDA (CUDA graphs) behind the same switch.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from .errors import GradientNotFiniteError, ParameterError, SimulationDivergedError, check_losses, check_num_steps
from .kernels.constants import NO_DIVERGENCE
from .kernels.engine import advance_step_counter
from .model import Control, ControlSequence, State
from .runtime import active_tape, warp_runtime
from .solver import Solver, no_divergence

EXECUTIONS = ("auto", "python", "graph")


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Trajectory:
    """The result of a rollout.

    Attributes:
        states: with ``record=True``, the state at every step boundary (``num_steps + 1``
            entries, ``states[0]`` is the initial state); with ``record=False``, the initial and
            the final state.
        dt: step length [s]; each step was split into ``substeps`` substeps.
        num_steps: the number of steps simulated (the elapsed time is ``num_steps * dt``).
    """

    states: list[State]
    dt: float
    substeps: int
    substates: list[State] = field(default_factory=list, repr=False)  # keeps recorded substeps alive
    num_steps: int | None = None

    def __post_init__(self):
        if self.num_steps is None:
            self.num_steps = len(self.states) - 1

    @property
    def final(self) -> State:
        return self.states[-1]

    @property
    def elapsed(self) -> float:
        """Simulated time from the first to the last state [s]."""
        return self.num_steps * self.dt

    def body_q(self) -> np.ndarray:
        """Poses at the stored states, ``(len(states), W, B, 7)`` (position, quaternion)."""
        return np.stack([s.body_q.numpy() for s in self.states])

    def body_v(self) -> np.ndarray:
        """Centre-of-mass velocities [m/s] at the stored states, ``(len(states), W, B, 3)``."""
        return np.stack([s.body_v.numpy() for s in self.states])


class Workspace:
    """Scratch arrays of a controller or loss, allocated once per key and reused on every replay.

    The engine hands one workspace per step to a recorded program (each step keeps its own
    intermediates for the reverse pass) and one shared workspace to an unrecorded one.
    """

    def __init__(self, device):
        self.device = device
        self._arrays: dict = {}

    def array(self, key, shape, dtype, *, requires_grad: bool = False) -> wp.array:
        """The array for ``key`` (allocated uninitialised on first use)."""
        full_key = (key, tuple(shape), dtype, requires_grad)
        array = self._arrays.get(full_key)
        if array is None:
            array = self._arrays[full_key] = wp.empty(shape, dtype=dtype, device=self.device, requires_grad=requires_grad)
        return array

    def gradients(self) -> list[wp.array]:
        return [a.grad for a in self._arrays.values() if a.grad is not None]


def _check_threads(threads):
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ParameterError(f"threads must be a positive integer or None, got {threads!r}")
    return threads


def _control_at(controls, step_index: int):
    if controls is None or isinstance(controls, Control):
        return controls
    return controls.at(step_index)


_POOL: tuple[ThreadPoolExecutor, int] | None = None  # the threads world ranges replay on, and their number


def _forget_the_pool() -> None:
    """In a forked child the pool's threads do not exist: a new pool is made on first use (else
    the first threaded replay waits forever on workers that were never forked)."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_pool)


def _run_ranges(function, parts) -> None:
    """``function(part)`` for every part, on one thread per part (graph replays release the GIL;
    the threads live in one process-wide pool)."""
    global _POOL
    if len(parts) == 1:
        function(parts[0])
        return
    if _POOL is None or _POOL[1] < len(parts) - 1:
        size = max(len(parts) - 1, default_threads())
        _POOL = (ThreadPoolExecutor(max_workers=size, thread_name_prefix="simulator-engine"), size)
    futures = [_POOL[0].submit(function, part) for part in parts[1:]]
    function(parts[0])  # this thread runs the first range
    for future in futures:
        future.result()


class _Capture:
    """``with _Capture(device) as c:`` records launches into ``c.graph`` instead of running them."""

    def __init__(self, device):
        self.device = device
        self.graph = None

    def __enter__(self):
        runtime = warp_runtime()
        self._outer_tape, runtime.tape = runtime.tape, None  # what a capture records is not the outer tape's
        wp.capture_begin(device=self.device)
        return self

    def __exit__(self, *exc):
        try:
            self.graph = wp.capture_end(device=self.device)
        finally:
            warp_runtime().tape = self._outer_tape
        return False


class Engine:
    """The rollout engine of one solver (see the module docstring).

    Args:
        solver: the physics (e.g. :class:`simulator.RigidSolver`).
        threads: world ranges replayed in parallel (default: the CPUs this process may use; at most
            one per world). Results do not depend on it.
    """

    def __init__(self, solver: Solver, *, threads: int | None = None):
        if not isinstance(solver, Solver):
            raise TypeError(f"solver must be a simulator.Solver, got {type(solver).__name__}")
        self.solver = solver
        self.threads = _check_threads(threads)
        self._programs: dict = {}
        self._replays: dict = {}
        self._uses: dict = {}
        self._windows: dict = {}

    # ------------------------------------------------------------------ plain rollouts
    def rollout(
        self,
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
        requires_grad: bool | None = None,
        out: State | None = None,
        first_step: int = 0,
    ) -> Trajectory:
        """Simulate ``num_steps`` steps of ``dt`` seconds, each split into ``substeps`` substeps.

        See :func:`simulator.rollout` for the arguments. ``checkpoint_every=k``: the forward pass
        keeps one state every ``k`` steps, unrecorded (``states`` holds them), and a surrounding
        tape gets one backward entry that re-simulates each segment on a local tape and
        back-propagates it, newest first: memory ``num_steps / k + k`` states, gradients bitwise
        those of ``record=True``, reaching the initial state, the model's parameters, the controls
        and the *final* state (a loss that reads intermediate states needs ``record=True``).
        ``requires_grad`` (default: the model's) gives recorded states and checkpoints gradient
        buffers; ``out`` is the state the last substep writes into; ``first_step``: the rollout
        continues another at that step (a :class:`ControlSequence` is read from there, divergence
        errors count from there). ``execution``: ``"python"`` steps (and re-simulates) from
        Python, ``"graph"`` replays captured graphs (unrecorded only), ``"auto"`` replays when it
        can (unrecorded or checkpointed, a capturable solver, contiguous controls, at least
        ``max(2, solver.replay_segment)`` steps for a plain replay).
        """
        solver = self.solver
        num_steps, h = self.check_rollout(controls, num_steps=num_steps, dt=dt, substeps=substeps, record=record,
                                          checkpoint_every=checkpoint_every, execution=execution, out=out, first_step=first_step)
        solver.check_state(initial_state, "initial_state")
        if out is not None:
            solver.check_state(out, "out")
        with self._blaming_the_initial_state(initial_state, first_step):
            return self._rollout(initial_state, controls, num_steps, dt, substeps, h, record, checkpoint_every, check_divergence,
                                 execution, threads, requires_grad, out, first_step)

    def _rollout(self, initial_state, controls, num_steps, dt, substeps, h, record, checkpoint_every, check_divergence, execution,
                 threads, requires_grad, out, first_step) -> Trajectory:
        solver = self.solver
        threads = _check_threads(threads) or self.threads
        replayable = self._can_replay(controls)
        first_bad = no_divergence(solver.num_worlds, solver.device) if check_divergence else None
        run = _Run(self, controls, substeps, h, first_bad, threads, execution)
        if checkpoint_every is not None:
            states = self._checkpointed(run, initial_state, num_steps, int(checkpoint_every), requires_grad, first_step)
            substates = []
        elif not record:
            graph = execution == "graph" or (execution == "auto" and replayable and num_steps >= max(2, solver.replay_segment))
            final = run.unrecorded(initial_state, num_steps, first_step, out, graph)
            states, substates = [initial_state] + ([final] if num_steps > 0 else []), []
        else:
            states, substates = run.python(initial_state, num_steps, first_step, record=True, requires_grad=requires_grad, out=out)
        if first_bad is not None:
            _raise_if_diverged(first_bad, self.solver, dt, substeps, per_substep=True)
        return Trajectory(states=states, dt=float(dt), substeps=int(substeps), substates=substates, num_steps=num_steps)

    def check_rollout(self, controls=None, *, num_steps, dt, substeps=1, record=True, checkpoint_every=None, execution="auto",
                      out=None, first_step=0) -> tuple[int, float]:
        """Validate the arguments of :meth:`rollout` (before a caller does work that it would
        waste) and the model's parameters as they are now (:meth:`Solver.check_model`, e.g.
        :meth:`simulator.Model.validate`); returns ``(num_steps, substep length)``."""
        num_steps = check_num_steps(num_steps)
        self.solver.check_model()  # parameters written since the last rollout (finalize checked the first ones)
        h = self.solver.check_dt(dt, substeps)
        if execution not in EXECUTIONS:
            raise ParameterError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        if controls is not None and not isinstance(controls, (Control, ControlSequence)):
            raise TypeError(f"controls must be None, a Control or a ControlSequence, got {type(controls).__name__}")
        if controls is not None:
            step_control = controls if isinstance(controls, Control) else controls.at(min(first_step, controls.num_steps - 1))
            self.solver.check_control(step_control, "controls")
        if isinstance(controls, ControlSequence) and controls.num_steps < first_step + num_steps:
            raise ParameterError(f"controls has {controls.num_steps} steps but the rollout needs {first_step + num_steps} "
                                 f"(num_steps={num_steps} from first_step={first_step})")
        if out is not None and num_steps == 0:
            raise ParameterError("out needs num_steps >= 1 (no step would write it)")
        if checkpoint_every is not None:
            if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
                raise ParameterError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
            if out is not None or execution == "graph":
                raise ParameterError("checkpoint_every cannot be combined with out= or execution='graph'")
        elif not record and active_tape() is not None:
            raise ParameterError("record=False inside an active wp.Tape would give wrong gradients (the tape sees none of the steps); "
                                 "use record=True, or checkpoint_every=k to save memory, or leave the tape")
        if execution == "graph" and (record or not self._can_replay(controls)):
            raise ParameterError("execution='graph' needs record=False, a capturable solver and contiguous control arrays")
        return num_steps, h

    def _can_replay(self, controls) -> bool:
        if isinstance(controls, ControlSequence):
            if not all(a is None or a.is_contiguous for a in (controls.body_force, controls.body_torque, controls.joint_act)):
                return False
        return self.solver.capturable

    def _bounds(self, threads) -> list[tuple[int, int]]:
        worlds = self.solver.num_worlds
        count = max(1, min(threads or self.threads or default_threads(), worlds))
        if not self.solver.device.is_cpu:
            count = 1  # one GPU stream runs every world at once
        edges = np.linspace(0, worlds, count + 1).round().astype(int)
        return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]

    # ------------------------------------------------------------------ checkpointed rollouts
    def _checkpointed(self, run: _Run, initial_state, num_steps, every, requires_grad, first_step) -> list:
        """The forward pass of ``checkpoint_every``: unrecorded segments (replayed when they can
        be), a checkpoint after each, and one backward entry on the active tape."""
        solver = self.solver
        bookkeeping = solver.bookkeeping
        runtime = warp_runtime()
        outer_tape, runtime.tape = runtime.tape, None  # the forward pass is not recorded: the backward re-simulates
        try:
            checkpoints, snapshots = [initial_state], [bookkeeping.snapshot() if bookkeeping is not None else None]
            graph = run.execution == "auto" and self._can_replay(run.controls) and every >= max(2, solver.replay_segment)
            for first in range(0, num_steps, every):
                steps = min(every, num_steps - first)
                checkpoint = solver.output_state(requires_grad=requires_grad)
                run.unrecorded(checkpoints[-1], steps, first_step + first, checkpoint, graph)
                if run.first_bad is not None:  # before a diverged segment is continued
                    _raise_if_diverged(run.first_bad, solver, run.dt, run.substeps, per_substep=True)
                checkpoints.append(checkpoint)
                snapshots.append(bookkeeping.snapshot() if bookkeeping is not None else None)
        finally:
            runtime.tape = outer_tape
        controls = run.controls
        control_arrays = [] if controls is None else [a for a in (controls.body_force, controls.body_torque, controls.joint_act)
                                                      if a is not None]
        # every array whose gradient the backward writes, so that tape.zero() clears it
        written = [*(a for s in checkpoints for a in solver.state_arrays(s).values()), *solver.parameters(), *control_arrays]
        written = [a for a in written if a.requires_grad and a.grad is not None]
        if outer_tape is not None and written and num_steps > 0:
            backward = _CheckpointedBackward(self, run, checkpoints, snapshots, every, num_steps, first_step, control_arrays)
            outer_tape.record_func(backward, written)
        return checkpoints

    def _window(self, steps: int, run: _Run) -> _Window:
        """The captured window of ``steps`` control steps for a checkpointed backward pass (kept
        while nothing it bakes in changed: the solver's key, the bookkeeping layout, the control
        and the gradient arrays it accumulates into)."""
        solver, control = self.solver, run.controls
        key, arrays = solver.capture_key(run.h)
        if solver.bookkeeping is not None:
            list_key, list_arrays = solver.bookkeeping.layout_key()
            key, arrays = (key, list_key), (*arrays, *list_arrays)
        accumulated = [a.grad for a in solver.parameters() if a.grad is not None]
        if control is not None:
            accumulated += [a.grad for a in (control.body_force, control.body_torque, control.joint_act) if a is not None and a.grad is not None]
        key = (key, steps, run.substeps, run.h, id(control), tuple(id(g) for g in accumulated))
        window = self._windows.get((steps, run.substeps))
        if window is None or window.key != key:
            window = self._windows[(steps, run.substeps)] = _Window(solver, control, steps, run.substeps, run.h, key)
            window.keep = (arrays, accumulated, control)  # the keyed arrays stay alive: their ids stay unique
        return window

    # ------------------------------------------------------------------ programs (objectives)
    def evaluate(self, program, theta_rows: np.ndarray, initial_state: State, *, execution: str = "auto",
                 threads: int | None = None) -> np.ndarray:
        """Per-world losses ``(W,)`` of ``program`` driven by the parameter rows ``(W, P)`` from
        ``initial_state``, unrecorded.

        ``execution``: ``"graph"`` replays the captured rollout (captured on first use, world ranges
        on threads), ``"python"`` steps from Python, ``"auto"`` steps from Python for the first
        ``CAPTURE_AFTER`` calls of a shape and then captures (a capture costs about as much as ten
        Python rollouts on the CPU, so one-off calls do not pay it). The results are bitwise the same.

        Raises :class:`SimulationDivergedError` naming the first non-finite step and world."""
        self._check_inputs(initial_state)
        with self._blaming_the_initial_state(initial_state):
            runner = self._runner(program, theta_rows.shape, recorded=False, threads=threads, execution=execution)
            if runner is None:
                return self._evaluate_in_python(program, theta_rows, initial_state)
            runner.load(theta_rows, initial_state)
            _run_ranges(lambda part: part.forward(), runner.parts)
            _raise_if_diverged(runner.first_bad, self.solver, program.dt, program.substeps, per_substep=False)
            return runner.loss.numpy().astype(np.float64)

    def gradient(self, program, theta_rows: np.ndarray, initial_state: State, *, execution: str = "auto",
                 threads: int | None = None):
        """Per-world losses ``(W,)`` and gradients ``(W, P)`` of each world's loss w.r.t. its row, by
        backpropagation through the recorded rollout. With ``execution="graph"`` (or ``"auto"`` after
        ``CAPTURE_AFTER`` calls of a shape) the recorded forward pass and its reverse pass are each
        captured once as a graph over a pool of states and replayed: bitwise the gradient of
        stepping on a ``wp.Tape`` from Python, without Python per launch."""
        self._check_inputs(initial_state)
        with self._blaming_the_initial_state(initial_state):
            runner = self._runner(program, theta_rows.shape, recorded=True, threads=threads, execution=execution)
            if runner is None:
                return self._gradient_in_python(program, theta_rows, initial_state)
            runner.load(theta_rows, initial_state)

            def both(part):
                part.forward()
                part.reverse()

            _run_ranges(both, runner.parts)
            _raise_if_diverged(runner.first_bad, self.solver, program.dt, program.substeps, per_substep=False)
            return runner.loss.numpy().astype(np.float64), runner.theta.grad.numpy().astype(np.float64)

    def replays(self, program, theta_rows: np.ndarray, initial_state: State, *, threads: int | None = None):
        """The captured recorded forward pass and reverse pass of ``program`` as two callables that
        replay them (over every world range), loaded with ``theta_rows`` and ``initial_state``: what
        :meth:`gradient` runs, split for benchmarks and profiles (kernel time without Python)."""
        runner = self._runner(program, theta_rows.shape, recorded=True, threads=threads, execution="graph")
        if runner is None:
            raise ParameterError("the program cannot be captured (its solver or controller is not capturable, or a tape is active)")
        runner.load(theta_rows, initial_state)
        return (lambda: _run_ranges(lambda part: part.forward(), runner.parts),
                lambda: _run_ranges(lambda part: part.reverse(), runner.parts))

    def _check_inputs(self, initial_state) -> None:
        """What every rollout of a program checks first (as :meth:`rollout` does): the model's
        parameters as they are now, and the initial state against the model."""
        self.solver.check_model()
        self.solver.check_state(initial_state, "initial_state")

    @contextlib.contextmanager
    def _blaming_the_initial_state(self, initial_state, first_step: int = 0):
        """A divergence at the first step whose cause is a non-finite initial state becomes a
        ``ParameterError`` naming it (read only then: the finite case pays nothing)."""
        try:
            yield
        except SimulationDivergedError as exc:
            if exc.step == first_step:
                try:
                    self.solver.check_state(initial_state, "initial_state", finite=True)
                except ParameterError as bad:
                    raise bad from exc
            raise

    CAPTURE_AFTER = 2  # with execution="auto", calls of a program shape stepped from Python before it is captured

    def _runner(self, program, theta_shape, *, recorded: bool, threads, execution) -> _ProgramRunner | None:
        if execution not in EXECUTIONS:
            raise ParameterError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        threads = _check_threads(threads) or self.threads
        if len(theta_shape) != 2 or theta_shape[0] != self.solver.num_worlds:
            raise ParameterError(f"theta rows must have shape ({self.solver.num_worlds}, P), got {tuple(theta_shape)}")
        if execution == "python" or not (self.solver.capturable and getattr(program, "capturable", True)) or active_tape() is not None:
            return None
        key = (id(program), tuple(theta_shape), recorded, int(program.num_steps), float(program.dt), int(program.substeps),
               tuple(self._bounds(threads)))
        runner = self._programs.get(key)
        if runner is None or runner.program is not program:
            uses = self._uses[key] = self._uses.get(key, 0) + 1
            if execution == "auto" and uses <= self.CAPTURE_AFTER:
                return None
            runner = self._programs[key] = _ProgramRunner(self, program, theta_shape, recorded, self._bounds(threads))
        return runner

    def advance(self, program, t: int, state: State, theta: wp.array, control, workspace: Workspace | None = None, *,
                h: float | None = None) -> State:
        """One control step ``t`` of ``program`` from ``state``: its control, then its substeps, each
        into a fresh state (so an active tape records them). Returns the last state (the earlier
        substeps stay alive through the tape's records)."""
        if h is None:
            h = self.solver.check_dt(program.dt, program.substeps)
        program.apply_control(self.solver.model, t, state, theta, control, workspace)
        for _ in range(program.substeps):
            nxt = self.solver.output_state()
            self.solver.step(state, nxt, control, h)
            state = nxt
        return state

    def _program_arrays(self, program, theta_rows, recorded):
        precision = self.solver.model.precision
        theta = wp.array(np.ascontiguousarray(theta_rows, dtype=precision.numpy), dtype=precision.scalar, device=self.solver.device,
                         requires_grad=recorded)
        loss = wp.zeros(self.solver.num_worlds, dtype=precision.scalar, device=self.solver.device, requires_grad=recorded)
        return theta, loss, self.solver.check_dt(program.dt, program.substeps)

    def _evaluate_in_python(self, program, theta_rows, initial_state) -> np.ndarray:
        solver, model = self.solver, self.solver.model
        theta, loss, h = self._program_arrays(program, theta_rows, recorded=False)
        first_bad = no_divergence(solver.num_worlds, solver.device)
        control, workspace = solver.control(requires_grad=False), Workspace(solver.device)
        buffers = (solver.output_state(requires_grad=False), solver.output_state(requires_grad=False))
        current = initial_state
        for t in range(program.num_steps):
            program.apply_control(model, t, current, theta, control, workspace)
            for _ in range(program.substeps):
                nxt = buffers[0] if current is not buffers[0] else buffers[1]
                solver.step(current, nxt, control, h)
                current = nxt
            program.step_loss(model, t, current, control, theta, loss, initial_state)
            solver.record_divergence(current, t, first_bad)
        _raise_if_diverged(first_bad, solver, program.dt, program.substeps, per_substep=False)
        return loss.numpy().astype(np.float64)

    def _gradient_in_python(self, program, theta_rows, initial_state):
        solver, model = self.solver, self.solver.model
        theta, loss, h = self._program_arrays(program, theta_rows, recorded=True)
        first_bad = no_divergence(solver.num_worlds, solver.device)
        tape = wp.Tape()
        keep = []  # the recorded states, controls and workspaces stay alive until the reverse pass
        current = initial_state
        for t in range(program.num_steps):
            control, workspace = solver.control(requires_grad=True), Workspace(solver.device)
            keep.append((control, workspace))
            with tape:
                current = self.advance(program, t, current, theta, control, workspace, h=h)
                keep.append(current)
                program.step_loss(model, t, current, control, theta, loss, initial_state)
            solver.record_divergence(current, t, first_bad)
        _raise_if_diverged(first_bad, solver, program.dt, program.substeps, per_substep=False)
        tape.backward(grads={loss: wp.ones_like(loss, requires_grad=False)})
        return loss.numpy().astype(np.float64), theta.grad.numpy().astype(np.float64)


def _raise_if_diverged(first_bad: wp.array, solver, dt: float, substeps: int, *, per_substep: bool) -> None:
    """Raise :class:`SimulationDivergedError` naming the earliest non-finite step and its world
    (``first_bad`` ``(W,)`` holds substep indices when ``per_substep``, step indices otherwise)."""
    first_bad = first_bad.numpy()
    bad_worlds = np.flatnonzero(first_bad != NO_DIVERGENCE)
    if bad_worlds.size == 0:
        return
    index = int(first_bad[bad_worlds].min())
    world = int(bad_worlds[np.argmin(first_bad[bad_worlds])])
    step = index // substeps if per_substep else index
    where = f"step {step} (substep {index})" if per_substep else f"step {step}"
    raise SimulationDivergedError(
        f"the simulation became non-finite at {where} in world {world} ({bad_worlds.size} of {len(first_bad)} worlds "
        f"diverged); dt={dt} with substeps={substeps}{solver.divergence_advice(dt / substeps)}",
        step=step,
        world=world,
    )


_UNSET = object()  # "use the run's own watch"


class _Run:
    """The settings of one rollout call (controls, substeps, substep length ``h``, divergence
    watch, threads, execution) and the three ways to run its steps: from Python (recorded or
    not), replayed as captured graphs, and re-simulated for a checkpointed backward pass."""

    def __init__(self, engine: Engine, controls, substeps, h, first_bad, threads, execution):
        self.engine, self.solver = engine, engine.solver
        self.controls, self.substeps, self.h = controls, int(substeps), h
        self.dt = h * substeps
        self.first_bad, self.threads, self.execution = first_bad, threads, execution

    def python(self, start, num_steps, first_step, *, record, requires_grad=None, out=None, first_bad=_UNSET):
        """One ``solver.step`` per substep from Python (recorded on an active tape when
        ``record``); the last substep writes into ``out`` when given. Returns ``(states at the
        step boundaries, recorded substates)`` (unrecorded: the start and the final state)."""
        solver = self.solver
        first_bad = self.first_bad if first_bad is _UNSET else first_bad
        states, substates = [start], []
        current = start
        spare = None if record else solver.output_state(requires_grad=False)
        tape = active_tape() if record else None
        if tape is not None:  # runs last in the backward pass: the initial state and the parameters
            tape.record_func(_AdjointWatch(solver, start, first_step, full=True, parameters=True), [])
        for t in range(num_steps):
            control = _control_at(self.controls, first_step + t)
            for k in range(self.substeps):
                if out is not None and t == num_steps - 1 and k == self.substeps - 1:
                    nxt = out
                elif record:
                    nxt = solver.output_state(requires_grad=requires_grad)
                else:
                    nxt = spare
                if record:
                    substates.append(nxt)
                solver.step(current, nxt, control, self.h)
                if first_bad is not None:
                    solver.record_divergence(nxt, (first_step + t) * self.substeps + k, first_bad)
                if not record:
                    spare = current if current is not start else solver.output_state(requires_grad=False)
                current = nxt
            if record:
                states.append(current)
            if tape is not None:  # the adjoint of the state after step t, before step t consumes it
                last = t == num_steps - 1
                tape.record_func(_AdjointWatch(solver, current, first_step + t + 1, final=last, full=last), [])
        if not record and num_steps > 0:
            states.append(current)
        return states, substates

    def unrecorded(self, start, num_steps, first_step, out, graph: bool):
        """The final state of ``num_steps`` unrecorded steps (into ``out`` when given), replayed
        when ``graph`` and the solver's bookkeeping allows it, else stepped from Python."""
        final = self._replay(start, num_steps, first_step, out) if graph and num_steps > 0 else None
        if final is None:
            final = self.python(start, num_steps, first_step, record=False, out=out)[0][-1]
        return final

    def _replay(self, start, num_steps, first_step, out):
        """Unrecorded steps replaying captured graphs, world ranges on threads: ``solver.replay_segment``
        control steps per graph (one with a :class:`ControlSequence`, whose step is copied into a
        staging control first), ping-ponging between two buffers, divergence recorded against a
        device step counter. With bookkeeping (a neighbor list) the graph snapshots its start and
        the list, the list is updated on the device, and a segment whose update needed the host
        is restored and redone from Python, so results are bitwise those of stepping from Python.
        The buffers and graphs stay on the engine for the next call of the same shape. Returns
        the final state (``out``, or a new one), or None when the bookkeeping cannot go on the
        device (the caller steps from Python)."""
        engine, solver, controls = self.engine, self.solver, self.controls
        bookkeeping = solver.bookkeeping
        if bookkeeping is not None and not bookkeeping.begin_device_updates():
            return None
        on_device = [bookkeeping is not None]
        sequence = isinstance(controls, ControlSequence)
        kind = "sequence" if sequence else ("zero" if controls is None else "fixed")
        bounds = engine._bounds(self.threads)
        watching = self.first_bad is not None
        key = (kind, self.substeps, self.h, tuple(bounds), watching)
        replay = engine._replays.get(key)
        if replay is None:
            replay = engine._replays[key] = _Replay(solver, bounds, self.substeps, self.h, watching, redo=bookkeeping is not None)
        if kind == "fixed":
            for name in ("body_force", "body_torque", "joint_act"):
                if getattr(replay.control, name) is not None:
                    wp.copy(getattr(replay.control, name), getattr(controls, name))
        segment = 1 if sequence else solver.replay_segment
        substeps = self.substeps

        def graph_key():
            key, arrays = solver.capture_key(self.h)
            if bookkeeping is not None:
                list_key, list_arrays = bookkeeping.device_key()
                key, arrays = (key, list_key), (*arrays, *list_arrays)
            return key, arrays

        def run(part: _ReplayRange) -> None:
            part.start(start, first_step * substeps)
            baked = graph_key()
            t, parity = 0, 0
            while t < num_steps:
                n = 1 if sequence else min(segment, num_steps - t)
                after = (parity + n * substeps) % 2
                if on_device[0] or bookkeeping is None:
                    if sequence:
                        part.copy_controls(controls, first_step + t)
                    wp.capture_launch(part.graph(n, parity, baked))
                    if bookkeeping is None or bookkeeping.device_updates_valid():
                        t, parity = t + n, after
                        continue
                    # the list needed the host (it overflowed, or met a non-finite position or a
                    # new box): restore the segment's start and redo it from Python
                    part.restore(parity, bookkeeping)
                    bookkeeping.end_device_updates()
                    on_device[0] = False
                begin = part.buffers[parity]
                solver.stepped(begin, start, t * substeps)
                self.python(begin, n, first_step + t, record=False, out=part.buffers[after], first_bad=part.first_bad)
                t, parity = t + n, after
                if bookkeeping is not None and not on_device[0]:
                    on_device[0] = bookkeeping.begin_device_updates()
                    baked = graph_key()  # a grown list has new arrays

        # capture every graph the plan needs before the ranges run on threads (one capture at a
        # time per device); a single range may recapture inside run() when a redo changed the key
        baked, t, parity = graph_key(), 0, 0
        while t < num_steps:
            n = 1 if sequence else min(segment, num_steps - t)
            for part in replay.ranges:
                part.graph(n, parity, baked)
            t, parity = t + n, (parity + n * substeps) % 2
            if sequence and t >= 2:
                break  # one step per graph: both start buffers are covered
        try:
            _run_ranges(run, replay.ranges)
        finally:
            if on_device[0]:
                bookkeeping.end_device_updates()
        if watching:
            wp.copy(self.first_bad, replay.watch)
        final = out if out is not None else solver.output_state(requires_grad=False)
        final.assign(replay.buffers[(num_steps * substeps) % 2])
        solver.stepped(final, start, num_steps * substeps)
        return final



class _Replay:
    """What unrecorded replays of one shape keep: two ping-pong states, the staging control, the
    divergence watch and one :class:`_ReplayRange` per world range."""

    def __init__(self, solver, bounds, substeps, h, watching: bool, redo: bool):
        self.buffers = (solver.output_state(requires_grad=False), solver.output_state(requires_grad=False))
        self.control = solver.control(requires_grad=False)  # staging: step t (or the fixed control) is copied in
        self.watch = no_divergence(solver.num_worlds, solver.device) if watching else None
        self.ranges = [_ReplayRange(solver, lo, hi, self, substeps, h, redo) for lo, hi in bounds]


class _ReplayRange:
    """Worlds ``lo:hi`` of an unrecorded replay: views of the solver, buffers and control, and the
    captured graphs by (control steps, start buffer), valid for one capture key."""

    def __init__(self, solver, lo, hi, replay: _Replay, substeps, h, redo: bool):
        self.lo, self.hi = lo, hi
        self.full = solver
        self.solver = solver.world_range(lo, hi) if (lo, hi) != (0, solver.num_worlds) else solver
        self.buffers = tuple(solver.state_view(b, lo, hi) for b in replay.buffers) if self.solver is not solver else replay.buffers
        self.control = replay.control if self.solver is solver or replay.control is None else solver.control_view(replay.control, lo, hi)
        self.first_bad = None if replay.watch is None else replay.watch[lo:hi]
        self.substeps, self.h = substeps, h
        self.step_base = wp.zeros(1, dtype=wp.int32, device=solver.device)
        # a segment's start (state and watch), snapshotted by its graph, for a redo from Python
        self.saved = (self.solver.output_state(requires_grad=False),
                      None if self.first_bad is None else wp.empty_like(self.first_bad)) if redo else None
        self.graphs: dict = {}
        self._key = self._keep = None

    def start(self, initial_state, first_substep: int) -> None:
        """Load worlds lo:hi of ``initial_state``, reset the watch and set the step counter."""
        source = initial_state if self.solver is self.full else self.full.state_view(initial_state, self.lo, self.hi)
        self.buffers[0].assign(source)
        self.step_base.fill_(first_substep)
        if self.first_bad is not None:
            self.first_bad.fill_(NO_DIVERGENCE)

    def graph(self, steps: int, parity: int, baked: tuple):
        """The graph of ``steps`` control steps from buffer ``parity`` (captured on first use;
        all graphs are dropped when the capture key ``baked`` changes)."""
        key, arrays = baked
        if key != self._key:
            self.graphs, self._key, self._keep = {}, key, arrays  # keep the keyed arrays alive: ids stay unique
        graph = self.graphs.get((steps, parity))
        if graph is None:
            graph = self.graphs[(steps, parity)] = self._capture(steps, parity)
        return graph

    def _capture(self, steps, parity):
        solver, buffers, first_bad = self.solver, self.buffers, self.first_bad
        solver.prepare_capture()
        count = steps * self.substeps
        with _Capture(solver.device) as capture:
            if self.saved is not None:
                solver.bookkeeping.save_device_state()
                self.saved[0].assign(buffers[parity])
                if first_bad is not None:
                    wp.copy(self.saved[1], first_bad)
            for j in range(count):
                nxt = buffers[(parity + j + 1) % 2]
                solver.step(buffers[(parity + j) % 2], nxt, self.control, self.h)
                if first_bad is not None:
                    solver.record_divergence(nxt, j, first_bad, step_base=self.step_base)
            wp.launch(advance_step_counter, dim=1, inputs=[count], outputs=[self.step_base], device=solver.device)
        return capture.graph

    def restore(self, parity: int, bookkeeping) -> None:
        """Put back the start of the last segment (state, watch and bookkeeping)."""
        self.buffers[parity].assign(self.saved[0])
        if self.first_bad is not None:
            wp.copy(self.first_bad, self.saved[1])
        bookkeeping.restore_device_state()

    def copy_controls(self, controls: ControlSequence, t: int) -> None:
        """Staging control <- worlds lo:hi of ``controls.at(t)`` (no view objects per step)."""
        for name in ("body_force", "body_torque", "joint_act"):
            dst = getattr(self.control, name)
            if dst is not None:
                src = getattr(controls, name)
                per_world = dst.size // (self.hi - self.lo)
                offset = (t * src.shape[1] + self.lo) * per_world
                wp.copy(dst, src, src_offset=offset, count=dst.size)


def _state_gradients(solver, state) -> dict[str, wp.array]:
    return {name: a.grad for name, a in solver.state_arrays(state).items() if a.grad is not None}


def _zero_gradients(solver, state) -> None:
    for grad in solver.gradient_buffers(state):
        grad.zero_()


def _first_non_finite(arrays: dict[str, wp.array], worlds: int) -> tuple[str, str] | None:
    """``(name, where)`` of the first array in ``arrays`` (name -> gradient) holding a NaN or inf,
    ``where`` naming its world when the array's leading dimension is a multiple of ``worlds``;
    None if every entry is finite."""
    for name, array in arrays.items():
        values = array.numpy()
        if values.dtype.fields is not None or np.all(np.isfinite(values)):  # (struct arrays are not checked)
            continue
        index = int(np.argwhere(~np.isfinite(values))[0][0]) if values.ndim else 0
        if values.ndim and values.shape[0] % worlds == 0:
            return name, f"world {index // (values.shape[0] // worlds)}"
        return name, f"entry {index}"
    return None


def _parameter_gradients(solver) -> dict[str, wp.array]:
    return {name: a.grad for name, a in solver.model.parameters().items() if a.grad is not None}


class _AdjointWatch:
    """A tape entry recorded after the steps that write ``state`` (and before those that read
    it), so that the backward pass runs it when the adjoint of ``state`` is complete and not yet
    consumed (the steps zero what they read): it raises :class:`GradientNotFiniteError` naming
    ``step`` if that adjoint is non-finite. The backward pass runs from the last step to the
    first, so the first watch that raises names where the blow-up entered.

    Between the ends a watch checks only the state's first array with a gradient (the poses or
    positions, into which every other adjoint flows within a step): about 20 us a step on the CPU;
    the watches at the final and the initial state check every array (``full``), the initial one
    the model parameters' gradients as well (``parameters``): about 0.2 ms each for the ant, whose
    40-step backward pass takes about 300 ms (so well under 1% together)."""

    def __init__(self, solver, state, step: int, *, final: bool = False, full: bool = False, parameters: bool = False):
        self.solver, self.state, self.step = solver, state, step
        self.final, self.full, self.parameters = final, full, parameters

    def __call__(self) -> None:
        solver = self.solver
        arrays = _state_gradients(solver, self.state)
        if not self.full:
            arrays = dict(list(arrays.items())[:1])
        bad = _first_non_finite(arrays, solver.num_worlds)
        if bad is None and self.parameters:
            bad = _first_non_finite(_parameter_gradients(solver), solver.num_worlds)
            if bad is not None:
                raise GradientNotFiniteError(f"the gradient of the model parameter {bad[0]} ({bad[1]}) is non-finite after the "
                                             f"backward pass of the rollout from step {self.step} (the state adjoints stayed finite: "
                                             f"the parameter's contributions overflowed); shorten the rollout, use float64 or ES",
                                             step=self.step)
        if bad is None:
            return
        cause = ("the loss's gradient is not finite" if self.final else
                 "the rollout is too long or too chaotic to backpropagate: shorten it, soften contact, use float64, or estimate "
                 "the gradient with ES")
        raise GradientNotFiniteError(f"the adjoint became non-finite in the backward pass at step {self.step} ({bad[0]}, {bad[1]}); "
                                     f"{cause}", step=self.step)


class _CheckpointedBackward:
    """The tape entry of a checkpointed rollout: every segment re-simulated on a local tape from
    its checkpoint (with the bookkeeping snapshot its forward pass used) and back-propagated,
    newest first, so the adjoint of each checkpoint flows into the one before. With
    ``execution="auto"`` and a capturable solver driven by a fixed control, each segment replays
    one captured :class:`_Window` graph instead (bitwise the same); a window whose bookkeeping
    needed the host makes the whole pass redo from Python."""

    def __init__(self, engine, run, checkpoints, snapshots, every, num_steps, first_step, control_arrays):
        self.engine, self.run = engine, run
        self.checkpoints, self.snapshots = checkpoints, snapshots
        self.every, self.first_step = every, first_step
        self.steps = [min(every, num_steps - segment * every) for segment in range(len(checkpoints) - 1)]
        self.control_arrays = control_arrays

    def _check(self, adjoint: dict[str, wp.array], segment: int) -> None:
        """Raise :class:`GradientNotFiniteError` naming the window of ``segment`` if the adjoint
        of its start (``adjoint``) or a parameter gradient became non-finite in it (the adjoint of
        its end was finite: the window after it was checked first)."""
        solver = self.engine.solver
        bad = _first_non_finite(adjoint, solver.num_worlds) or _first_non_finite(_parameter_gradients(solver), solver.num_worlds)
        if bad is None:
            return
        first = self.first_step + segment * self.every
        last = first + self.steps[segment]
        raise GradientNotFiniteError(
            f"the adjoint became non-finite in the backward pass of the checkpointed rollout in the window of steps {first} to "
            f"{last} (checkpoint_every={self.every}; {bad[0]}, {bad[1]}); the rollout is too long or too chaotic to "
            f"backpropagate: shorten it, soften contact, use float64, or estimate the gradient with ES", step=first)

    def __call__(self) -> None:
        engine, solver, checkpoints = self.engine, self.engine.solver, self.checkpoints
        seed = _first_non_finite(_state_gradients(solver, checkpoints[-1]), solver.num_worlds)
        if seed is not None:
            step = self.first_step + sum(self.steps)
            raise GradientNotFiniteError(f"the adjoint of the final state of the checkpointed rollout (step {step}; {seed[0]}, "
                                         f"{seed[1]}) is non-finite before its backward pass: the loss's gradient is not "
                                         f"finite", step=step)
        if self.run.execution == "auto" and self._windows_possible():
            # what a failed window must put back: the parameters', controls' and final state's gradients
            kept = [*solver.parameters(), *self.control_arrays, *solver.state_arrays(checkpoints[-1]).values()]
            saved = [(a.grad, wp.clone(a.grad)) for a in kept if a.grad is not None]
            if self._captured():
                return
            for grad, copy in saved:
                wp.copy(grad, copy)
            for state in checkpoints[1:-1]:
                _zero_gradients(solver, state)
        for segment in range(len(checkpoints) - 2, -1, -1):
            self._in_python(segment)

    def _windows_possible(self) -> bool:
        solver, bookkeeping = self.engine.solver, self.engine.solver.bookkeeping
        controls = self.run.controls
        if not solver.capturable or not (controls is None or isinstance(controls, Control)):
            return False
        return bookkeeping is None or (bookkeeping.device_updates_supported and bookkeeping.layout_matches(self.snapshots))

    def _in_python(self, segment: int) -> None:
        """Re-simulate ``segment`` on a local tape and back-propagate: the adjoint of its end moves
        to its start."""
        solver, checkpoints = self.engine.solver, self.checkpoints
        bookkeeping = solver.bookkeeping
        start, end = checkpoints[segment], checkpoints[segment + 1]
        local = wp.Tape()
        with bookkeeping.restored(self.snapshots[segment]) if bookkeeping is not None else contextlib.nullcontext(), local:
            # the last substep rewrites the same values into ``end``, so its adjoint seeds the segment
            self.run.python(start, self.steps[segment], self.first_step + segment * self.every, record=True, out=end, first_bad=None)
        local.backward()
        self._check(_state_gradients(solver, start), segment)
        if segment + 1 < len(checkpoints) - 1:
            _zero_gradients(solver, end)  # a checkpoint's adjoint is consumed

    def _captured(self) -> bool:
        engine, solver, checkpoints = self.engine, self.engine.solver, self.checkpoints
        runtime = warp_runtime()
        outer, runtime.tape = runtime.tape, None
        try:
            previous, windows = None, {}
            for segment in range(len(checkpoints) - 2, -1, -1):
                steps = self.steps[segment]
                window = windows.get(steps)
                if window is None:  # looked up once per pass: nothing its key reads changes in it
                    window = windows[steps] = engine._window(steps, self.run)
                if window is not previous:  # else the window moved its start's adjoint into its seed itself
                    source = _state_gradients(solver, checkpoints[-1] if previous is None else previous.pool[0])
                    for name, grad in window.seed.items():
                        wp.copy(grad, source[name])
                if not window.run(checkpoints[segment], self.snapshots[segment]):
                    return False
                self._check(window.seed, segment)  # the seed now holds the adjoint of the window's start
                previous = window
            start = _state_gradients(solver, checkpoints[0])
            for name, adjoint in _state_gradients(solver, previous.pool[0]).items():
                if name in start:
                    start[name].assign(start[name].numpy() + adjoint.numpy())  # once per pass: a host sum
        finally:
            runtime.tape = outer
        return True


class _Window:
    """One window of ``steps`` control steps, re-simulated on a tape and back-propagated, captured
    once as a graph over a fixed pool of states and replayed for every window of that length.

    Per window :meth:`run` copies the checkpoint into ``pool[0]`` (and its bookkeeping snapshot
    into the first step buffer); the graph then clears the bookkeeping flags and the gradients of
    the pool, runs the recorded forward (with a bookkeeping buffer per step, so every step's
    adjoint reads what that step used), back-propagates from the adjoint already in the last pool
    state (:attr:`seed`; parameter and control gradients accumulate across windows) and moves
    ``pool[0]``'s adjoint into the seed, ready for the window before.
    """

    def __init__(self, solver, control, steps, substeps, h, key):
        self.key = key
        self.solver = solver
        count = steps * substeps
        self.pool = [solver.state(requires_grad=True), *(solver.output_state(requires_grad=True) for _ in range(count))]
        bookkeeping = solver.bookkeeping
        self.buffers = bookkeeping.step_buffers(count) if bookkeeping is not None else None
        self.seed = _state_gradients(solver, self.pool[-1])
        self.tape = wp.Tape()
        self.graph = self._capture(control, count, h)
        self._starts = [*solver.state_arrays(self.pool[0]).values(),
                        *(bookkeeping.step_buffer_starts(self.buffers) if bookkeeping is not None else ())]

    def _capture(self, control, count, h):
        solver, pool = self.solver, self.pool
        bookkeeping = solver.bookkeeping
        seeds = {id(g) for g in self.seed.values()}
        cleared = [g for s in pool[:-1] for g in solver.gradient_buffers(s)]
        cleared += [g for g in solver.gradient_buffers(pool[-1]) if id(g) not in seeds]
        solver.prepare_capture()
        with bookkeeping.updating_in_place() if bookkeeping is not None else contextlib.nullcontext():
            with _Capture(solver.device) as capture:
                if bookkeeping is not None:
                    bookkeeping.clear_device_flags()
                for grad in cleared:
                    grad.zero_()
                with self.tape:
                    for j in range(count):
                        if bookkeeping is not None:
                            bookkeeping.use_step_buffer(self.buffers, j)
                        solver.step(pool[j], pool[j + 1], control, h)
                self.tape.backward()
                start = _state_gradients(solver, pool[0])
                for name, seed in self.seed.items():
                    wp.copy(seed, start[name])
        return capture.graph

    def run(self, checkpoint, snapshot) -> bool:
        """Re-simulate and back-propagate the window starting at ``checkpoint`` (bookkeeping
        ``snapshot``); False if the bookkeeping needed the host (the gradients are then wrong)."""
        solver = self.solver
        bookkeeping = solver.bookkeeping
        sources = [*solver.state_arrays(checkpoint).values(), *(snapshot if bookkeeping is not None else ())]
        for dst, src in zip(self._starts, sources):
            _copy_contents(dst, src)
        wp.capture_launch(self.graph)
        return bookkeeping is None or bookkeeping.device_updates_valid()


def _copy_contents(dst: wp.array, src: wp.array) -> None:
    """``dst[:] = src`` (same shape): a raw memmove for contiguous CPU arrays (a Python
    ``wp.copy`` costs about ten times more), else ``wp.copy``."""
    if dst.device.is_cpu and src.device.is_cpu and dst.is_contiguous and src.is_contiguous:
        ctypes.memmove(dst.ptr, src.ptr, dst.size * wp.types.type_size_in_bytes(dst.dtype))
    else:
        wp.copy(dst, src)


class _ProgramRunner:
    """Preallocated arrays of one program shape (parameters, loss, initial state, states,
    controls, workspaces) and one :class:`_ProgramRange` per world range."""

    def __init__(self, engine: Engine, program, theta_shape, recorded: bool, bounds):
        solver = engine.solver
        self.program, self.recorded = program, recorded
        self.num_steps, self.substeps = int(program.num_steps), int(program.substeps)
        self.h = solver.check_dt(program.dt, program.substeps)
        worlds, _ = theta_shape
        precision = self.precision = solver.model.precision
        device = solver.device
        self.theta = wp.zeros(theta_shape, dtype=precision.scalar, device=device, requires_grad=recorded)
        self.loss = wp.zeros(worlds, dtype=precision.scalar, device=device, requires_grad=recorded)
        self.first_bad = no_divergence(worlds, device)
        self.start = solver.state(requires_grad=recorded)
        count = self.num_steps * self.substeps if recorded else 2
        self.states = [solver.output_state(requires_grad=recorded) for _ in range(count)]
        self.controls = [solver.control(requires_grad=recorded) for _ in range(self.num_steps if recorded else 1)]
        self.workspaces = [Workspace(device) for _ in range(self.num_steps if recorded else 1)]
        self.parts = [_ProgramRange(self, solver, lo, hi) for lo, hi in bounds]

    def load(self, theta_rows: np.ndarray, initial_state: State) -> None:
        """Copy the parameter rows and the initial state into the runner's arrays."""
        self.theta.assign(np.ascontiguousarray(theta_rows, dtype=self.precision.numpy))
        self.start.assign(initial_state)


class _ProgramRange:
    """Worlds ``lo:hi`` of a program runner: views and the captured forward (and reverse) graph."""

    def __init__(self, runner: _ProgramRunner, solver, lo, hi):
        self.runner = runner
        self.solver = solver.world_range(lo, hi)
        self.theta = runner.theta[lo:hi]
        self.loss = runner.loss[lo:hi]
        self.first_bad = runner.first_bad[lo:hi]
        self.start = solver.state_view(runner.start, lo, hi)
        self.states = [solver.state_view(s, lo, hi) for s in runner.states]
        self.controls = [solver.control_view(c, lo, hi) for c in runner.controls]
        whole = lo == 0 and hi == solver.num_worlds
        self.workspaces = runner.workspaces if whole else [Workspace(solver.device) for _ in runner.workspaces]
        self.tape = wp.Tape() if runner.recorded else None
        self._warm_up()
        self.forward_graph = self._capture_forward()
        self.reverse_graph = self._capture_reverse() if runner.recorded else None

    def _warm_up(self) -> None:
        """Run the program's hooks once outside any capture, so that every lazily built constant
        (index arrays, zero controls) exists before a capture records launches that use it."""
        solver, program = self.solver, self.runner.program
        solver.prepare_capture()
        scratch = wp.zeros_like(self.loss, requires_grad=False)
        program.apply_control(solver.model, 0, self.start, self.theta, self.controls[0], self.workspaces[0])
        program.step_loss(solver.model, self.runner.num_steps - 1, self.start, self.controls[0], self.theta, scratch, self.start)

    def _capture_forward(self):
        runner, solver, program = self.runner, self.solver, self.runner.program
        model, h, substeps = solver.model, runner.h, runner.substeps
        recorded = runner.recorded
        with _Capture(solver.device) as capture:
            self.loss.zero_()
            self.first_bad.fill_(NO_DIVERGENCE)
            current = self.start
            for t in range(runner.num_steps):
                control = self.controls[t if recorded else 0]
                workspace = self.workspaces[t if recorded else 0]
                with self.tape if recorded else contextlib.nullcontext():
                    program.apply_control(model, t, current, self.theta, control, workspace)
                    for k in range(substeps):
                        if recorded:
                            nxt = self.states[t * substeps + k]
                        else:
                            nxt = self.states[0] if current is not self.states[0] else self.states[1]
                        solver.step(current, nxt, control, h)
                        current = nxt
                    program.step_loss(model, t, current, control, self.theta, self.loss, self.start)
                solver.record_divergence(current, t, self.first_bad)
        return capture.graph

    def _capture_reverse(self):
        solver = self.solver
        gradients = [self.theta.grad, self.loss.grad]
        for state in (self.start, *self.states):
            gradients += solver.gradient_buffers(state)
        for control in self.controls:
            arrays = (control.body_force, control.body_torque, control.joint_act)
            gradients += [a.grad for a in arrays if a is not None and a.grad is not None]
        for workspace in self.workspaces:
            gradients += workspace.gradients()
        with _Capture(solver.device) as capture:
            for grad in gradients:
                grad.zero_()
            self.loss.grad.fill_(1.0)
            self.tape.backward()
        return capture.graph

    def forward(self) -> None:
        wp.capture_launch(self.forward_graph)

    def reverse(self) -> None:
        wp.capture_launch(self.reverse_graph)


# ---------------------------------------------------------------------- objectives stepped from Python
# A RolloutObjective that is not a program (it only has ``advance``/``add_loss``) is stepped here:
# its evaluation, and the reverse sweep with checkpoints, truncation windows, clipping and traces.

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


def advance_objective(objective, state, theta: wp.array, first_step: int, num_steps: int):
    """``num_steps`` steps of a rollout objective from its step ``first_step``: the state after them
    (recorded when a tape is active; analyses that work on the host between segments call this)."""
    for t in range(first_step, first_step + num_steps):
        state = objective.advance(t, state, theta)
    return state


def clone_state(state, requires_grad: bool):
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


def evaluate_objective(objective, theta_rows, *, seed: int = 0) -> np.ndarray:
    """Per-world losses ``(W,)`` of a rollout objective, stepping its ``advance`` from Python."""
    theta = objective.parameter_array(theta_rows, requires_grad=False)
    worlds = theta.shape[0]
    loss = objective.loss_array(worlds, requires_grad=False)
    state = objective.initial_state(worlds, seed)
    for t in range(objective.num_steps):
        state = objective.advance(t, state, theta)
        objective.add_loss(t, state, theta, loss)
    return check_losses(loss.numpy().astype(np.float64))


def sweep_objective(objective, theta_rows, *, seed, segment, window, clip, trace) -> SweepResult:
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
            checkpoints[t] = clone_state(state, requires_grad=False)
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
        first = clone_state(checkpoints.pop(start), requires_grad=True)
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
                sweep_objective(objective, theta_rows, seed=seed, segment=1, window=window, clip=None, trace=True)
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

