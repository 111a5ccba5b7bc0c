"""Integrators: velocity Verlet (NVE), Langevin BAOAB (NVT) and FIRE energy minimization.

All share the solver signature ``step(model, state_in, state_out, control, dt)``: it reads
``state_in`` (whose ``forces`` must be the forces at its positions) and writes every array it
uses in ``state_out``, so rollouts into fresh states can be recorded on a ``wp.Tape``.
``prepare(model, state)`` returns a new state with those forces (a recorded copy, so gradients
reach the given state). ``control`` is accepted for the common signature and must be None.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import warp as wp

from ..errors import (
    ParameterError,
    SimulationDivergedError,
    all_finite,
    check_array,
    check_integer,
    check_nonnegative,
    check_positive,
    check_range,
    check_timestep,
    checked_before,
    host_values,
    mark_checked,
)
from ..kernels.constants import NO_DIVERGENCE
from ..kernels.md import md_kernels
from .particles import ParticleModel, ParticleState
from .potentials import active_tape, compute_forces

DIVERGENCE_READ_EVERY = 16  # on a GPU, steps between two host reads of the divergence flag of a hand-written step loop


def _seed(seed: int, step_index: int) -> int:
    """A well-mixed int32 seed for one step of one noise stream."""
    return int(np.random.SeedSequence([int(seed), int(step_index)]).generate_state(1, dtype=np.uint32)[0] >> 1)


@dataclass
class VerletArrays:
    """Velocity Verlet's and BAOAB's own per-step array (in :attr:`ParticleState.integrator`).

    Attributes:
        half_velocities: ``(N,)`` velocities after the first half kick [length/time].
    """

    half_velocities: wp.array


@dataclass
class FIREArrays:
    """FIRE's own per-step arrays (in :attr:`ParticleState.integrator`).

    Attributes:
        half_velocities: ``(N,)`` velocities after the first half kick [length/time].
        fire_velocities: ``(N,)`` velocities before the FIRE mixing [length/time].
        fire_dt: ``(1,)`` current time step [time].
        fire_alpha: ``(1,)`` current mixing factor [-].
        fire_count: ``(1,)`` int32, steps since the power F.v was last negative.
        fire_sums: ``(3,)`` scratch sums (F.v, |F|^2, |v|^2).
    """

    half_velocities: wp.array
    fire_velocities: wp.array
    fire_dt: wp.array
    fire_alpha: wp.array
    fire_count: wp.array
    fire_sums: wp.array


class _Integrator:
    """Common part: a neighbor list (None = all pairs), states with the integrator's arrays,
    preparation and force evaluation."""

    ARRAYS = VerletArrays  # the type of this integrator's arrays in ParticleState.integrator

    def __init__(self, neighbors=None):
        self.neighbors = neighbors

    def state(self, model: ParticleModel, *, requires_grad: bool | None = None) -> ParticleState:
        """A new state of ``model`` (its initial conditions) holding this integrator's arrays."""
        state = model.state(requires_grad=requires_grad)
        grad = model.requires_grad if requires_grad is None else requires_grad
        state.integrator = self._arrays(model, grad)
        return state

    def _arrays(self, model: ParticleModel, grad: bool):
        return VerletArrays(half_velocities=wp.zeros(model.particle_count, dtype=model.precision.vec3, device=model.device,
                                                     requires_grad=grad))

    def _forces(self, model: ParticleModel, state: ParticleState) -> None:
        state.forces.zero_()
        compute_forces(model, state.positions, state.forces, self.neighbors)

    def _forces_and_kick(self, model: ParticleModel, state_out: ParticleState, dt) -> None:
        """Forces at ``state_out``'s new positions, then the second half kick
        ``v = v' + F dt / 2m`` (velocity Verlet and BAOAB end alike)."""
        self._forces(model, state_out)
        wp.launch(
            md_kernels(model.precision.scalar).verlet_kick,
            dim=model.particle_count,
            inputs=[model.particle_mass, dt, state_out.integrator.half_velocities, state_out.forces],
            outputs=[state_out.velocities],
            device=model.device,
        )

    def prepare(self, model: ParticleModel, state: ParticleState) -> ParticleState:
        """A new state with ``state``'s positions and velocities and the forces at those positions.

        Raises ``ValueError`` for non-finite positions or when overlapping particles give
        non-finite forces (naming the closest pair)."""
        out = self.state(model)
        wp.copy(out.positions, state.positions)
        wp.copy(out.velocities, state.velocities)
        out.step_index = state.step_index
        self._forces(model, out)
        check_forces(model, out, self.neighbors)
        return out

    USES_DT = True  # whether step reads its dt argument (FIRE's is adaptive)

    def step(self, model: ParticleModel, state_in: ParticleState, state_out: ParticleState, control, dt: float) -> None:
        """Advance by ``dt`` [time] from ``state_in`` into ``state_out`` (``state_out.step_index``
        becomes ``state_in.step_index + 1``).

        The public, checked step (the rollout engine runs :meth:`advance`, the unchecked
        launches, after checking a rollout's arguments once): distinct states of ``model``
        holding this integrator's arrays, no control, a finite ``dt`` > 0, a finite ``state_in``
        when it starts a loop (``step_index == 0``); a non-finite ``state_out`` raises :class:`~simulator.SimulationDivergedError` naming the step (on the
        CPU through a host view of the output every step, about a microsecond; on a GPU through a
        device flag read every ``DIVERGENCE_READ_EVERY`` steps)."""
        self._check(model, state_in, state_out, control, dt if self.USES_DT else None)
        capturing = model.device.is_capturing
        if state_in.step_index == 0 and not capturing:  # a fresh state (from prepare, or one you filled): finite?
            model.check_state(state_in, "state_in", finite=True)
        self.advance(model, state_in, state_out, dt)
        if not capturing:
            self._watch_divergence(model, state_in, state_out, dt)

    def _watch_divergence(self, model, state_in, state_out, dt, *, device_flag: bool | None = None) -> None:
        """Raise :class:`SimulationDivergedError` if ``state_out`` is non-finite (``device_flag``:
        through the flag read every ``DIVERGENCE_READ_EVERY`` steps; default on a GPU)."""
        step_index = state_in.step_index
        if not (model.device.is_cuda if device_flag is None else device_flag):
            views = (host_values(state_out.positions), host_values(state_out.velocities))
            if all_finite(views[0]) and all_finite(views[1]):
                return
            particle = min(int(np.argwhere(~np.isfinite(v))[0][0]) for v in views if not np.isfinite(v).all())
        else:
            watch = self.__dict__.get("_step_watch")
            if watch is None or watch[2] is not model:
                watch = self._step_watch = [wp.full(1, NO_DIVERGENCE, dtype=wp.int32, device=model.device), 0, model,
                                            wp.zeros(1, dtype=wp.int32, device=model.device)]
            wp.launch(md_kernels(model.precision.scalar).record_first_nonfinite, dim=model.particle_count,
                      inputs=[state_out.positions, state_out.velocities, watch[3], int(step_index)], outputs=[watch[0]],
                      device=model.device, record_tape=False)
            watch[1] += 1
            if watch[1] % DIVERGENCE_READ_EVERY:
                return
            first_bad = int(watch[0].numpy()[0])
            if first_bad == NO_DIVERGENCE:
                return
            watch[0].fill_(NO_DIVERGENCE)
            step_index, particle = first_bad, None
        where = "" if particle is None else f", particle {particle}"
        raise SimulationDivergedError(
            f"{type(self).__name__}.step: the particle state became non-finite at step {step_index} (dt={dt}{where}); "
            f"reduce dt or check for overlapping particles", step=step_index, world=0)

    def _check(self, model, state_in, state_out, control, dt=None):
        """The checks of every ``step``: distinct states of ``model`` holding this integrator's
        arrays (checked once per set of arrays), no control, and ``dt`` when the step uses it."""
        if state_in is state_out:
            raise ParameterError("state_in and state_out must be different states (in-place steps corrupt gradients)")
        if control is not None:
            raise ParameterError("molecular-dynamics integrators take no control; pass control=None")
        needed = self.ARRAYS
        template = self.__dict__.get("_template")
        if template is None or template[0] is not model:
            template = self._template = (model, self._arrays(model, False))
        for name, state in (("state_in", state_in), ("state_out", state_out)):
            parts = (getattr(state, "positions", None), getattr(state, "velocities", None), getattr(state, "integrator", None))
            if checked_before(state, self, parts, mark="_step_mark") and state._step_model is model:
                continue
            if not isinstance(getattr(state, "integrator", None), needed):
                raise ParameterError(f"{name} must come from this integrator's state() or prepare() (it holds "
                                     f"{type(getattr(state, 'integrator', None)).__name__}, {type(self).__name__} needs {needed.__name__})")
            model.check_state(state, name)
            for f in dataclasses.fields(template[1]):
                expected = getattr(template[1], f.name)
                check_array(f"{name}.integrator.{f.name}", getattr(state.integrator, f.name), shape=expected.shape,
                            dtype=expected.dtype, device=model.device)
            mark_checked(state, self, parts, mark="_step_mark")
            state._step_model = model
        if dt is not None:
            check_timestep(dt)


class VelocityVerlet(_Integrator):
    """Velocity Verlet (NVE): ``v += F dt/2m; x += v dt; F = F(x); v += F dt/2m``.

    Args:
        neighbors: a :class:`simulator.md.NeighborList`, or None for the all-pairs sum.
    """

    def advance(self, model: ParticleModel, state_in: ParticleState, state_out: ParticleState, dt: float) -> None:
        """The launches of one step of ``dt`` [time], unchecked (see :meth:`step`)."""
        k = md_kernels(model.precision.scalar)
        h = model.precision.scalar(dt)
        n = model.particle_count
        wp.launch(
            k.verlet_drift,
            dim=n,
            inputs=[model.particle_mass, model.box, int(model.periodic), h, state_in.positions, state_in.velocities, state_in.forces],
            outputs=[state_out.integrator.half_velocities, state_out.positions],
            device=model.device,
        )
        self._forces_and_kick(model, state_out, h)
        state_out.step_index = state_in.step_index + 1


class LangevinBAOAB(_Integrator):
    """Langevin dynamics (NVT) with the BAOAB splitting (Leimkuhler and Matthews 2013).

    Args:
        temperature: target temperature kT [energy] (k_B = 1).
        friction: collision rate gamma [1/time]; the O step multiplies velocities by exp(-gamma dt).
        seed: noise seed; the noise of step t depends only on (seed, t, particle), so a rollout
            is reproducible and its replay on a tape sees the same numbers.
        neighbors: a :class:`simulator.md.NeighborList`, or None for the all-pairs sum.
    """

    def __init__(self, temperature: float, friction: float = 1.0, *, seed: int = 0, neighbors=None):
        super().__init__(neighbors)
        self.temperature = float(check_nonnegative("temperature", temperature))
        self.friction = float(check_nonnegative("friction", friction))
        self.seed = int(seed)

    def advance(self, model: ParticleModel, state_in: ParticleState, state_out: ParticleState, dt: float) -> None:
        """The launches of one step of ``dt`` [time], unchecked (see :meth:`step`)."""
        k = md_kernels(model.precision.scalar)
        s = model.precision.scalar
        n = model.particle_count
        wp.launch(
            k.baoab_drift,
            dim=n,
            inputs=[
                model.particle_mass,
                model.box,
                int(model.periodic),
                model.dim,
                s(dt),
                s(math.exp(-self.friction * dt)),
                s(self.temperature),
                _seed(self.seed, state_in.step_index),
                state_in.positions,
                state_in.velocities,
                state_in.forces,
            ],
            outputs=[state_out.integrator.half_velocities, state_out.positions],
            device=model.device,
        )
        self._forces_and_kick(model, state_out, s(dt))
        state_out.step_index = state_in.step_index + 1


class FIRE(_Integrator):
    """FIRE energy minimization (Bitzek et al., PRL 97, 170201, 2006) on velocity-Verlet steps.

    Each step: a velocity-Verlet step of the adaptive length ``fire_dt``, then with the power
    ``P = F.v`` (sums over all particles): ``v <- (1 - a) v + a |v| F / sqrt(|F|^2 + eps)``;
    after more than ``n_min`` steps with ``P > 0``: ``dt <- min(f_inc dt, dt_max)``,
    ``a <- f_alpha a``; if ``P < 0``: ``v <- 0``, ``dt <- f_dec dt``, ``a <- alpha_start``.
    Defaults are those of Bitzek et al. as used by jax-md. The ``dt`` argument of ``step`` is
    ignored: the time step is adaptive, starting at ``dt_start`` [time].
    """

    def __init__(
        self,
        *,
        dt_start: float = 0.1,
        dt_max: float = 0.4,
        n_min: int = 5,
        f_inc: float = 1.1,
        f_dec: float = 0.5,
        alpha_start: float = 0.1,
        f_alpha: float = 0.99,
        force_norm_eps: float = 1e-6,
        neighbors=None,
    ):
        super().__init__(neighbors)
        # the ranges the method needs (Bitzek et al. 2006): the step grows by f_inc > 1 and shrinks
        # by 0 < f_dec < 1, the mixing factor starts in (0, 1) and decays by 0 < f_alpha < 1
        self.dt_start = check_range("dt_start", dt_start, low=0.0)
        self.dt_max = check_range("dt_max", dt_max, low=self.dt_start, low_open=False)
        self.n_min = check_integer("n_min", n_min, minimum=0)
        self.f_inc = check_range("f_inc", f_inc, low=1.0)
        self.f_dec = check_range("f_dec", f_dec, low=0.0, high=1.0)
        self.alpha_start = check_range("alpha_start", alpha_start, low=0.0, high=1.0)
        self.f_alpha = check_range("f_alpha", f_alpha, low=0.0, high=1.0)
        self.force_norm_eps = float(check_nonnegative("force_norm_eps", force_norm_eps))

    def prepare(self, model: ParticleModel, state: ParticleState) -> ParticleState:
        """A new state at ``state``'s positions with zero velocities, forces, and the FIRE
        time step and mixing factor at their start values."""
        out = self.state(model)
        wp.copy(out.positions, state.positions)
        out.step_index = state.step_index
        out.integrator.fire_dt.fill_(self.dt_start)
        out.integrator.fire_alpha.fill_(self.alpha_start)
        self._forces(model, out)
        check_forces(model, out, self.neighbors)
        return out

    ARRAYS = FIREArrays

    def _arrays(self, model: ParticleModel, grad: bool) -> FIREArrays:
        p, n, device = model.precision, model.particle_count, model.device
        return FIREArrays(
            half_velocities=wp.zeros(n, dtype=p.vec3, device=device, requires_grad=grad),
            fire_velocities=wp.zeros(n, dtype=p.vec3, device=device, requires_grad=grad),
            fire_dt=wp.zeros(1, dtype=p.scalar, device=device, requires_grad=grad),
            fire_alpha=wp.zeros(1, dtype=p.scalar, device=device, requires_grad=grad),
            fire_count=wp.zeros(1, dtype=wp.int32, device=device),
            fire_sums=wp.zeros(3, dtype=p.scalar, device=device, requires_grad=grad),
        )

    USES_DT = False  # the step length is adaptive (fire_dt)

    def step(self, model: ParticleModel, state_in: ParticleState, state_out: ParticleState, control, dt: float = 0.0) -> None:
        """One FIRE step from ``state_in`` into ``state_out`` (``dt`` is ignored); checked as
        :meth:`_Integrator.step` says."""
        super().step(model, state_in, state_out, control, dt)

    def advance(self, model: ParticleModel, state_in: ParticleState, state_out: ParticleState, dt: float = 0.0) -> None:
        """The launches of one FIRE step, unchecked (``dt`` is ignored)."""
        fin, fout = state_in.integrator, state_out.integrator
        k = md_kernels(model.precision.scalar)
        s = model.precision.scalar
        threads, chunk = model.thread_layout()
        # hand-written adjoints (same bits as Warp's generated ones, ~2x faster on the CPU)
        _launch_with_adjoint(
            k.fire_drift,
            k.fire_drift_adjoint,
            threads,
            [model.particle_mass, model.box, int(model.periodic), fin.fire_dt, state_in.positions, state_in.velocities,
             state_in.forces, chunk],
            [fout.half_velocities, state_out.positions],
            model.device,
        )
        self._forces(model, state_out)
        md_velocities = fout.fire_velocities
        fout.fire_sums.zero_()
        _launch_with_adjoint(
            k.fire_kick,
            k.fire_kick_adjoint,
            threads,
            [model.particle_mass, fin.fire_dt, fout.half_velocities, state_out.forces, chunk],
            [md_velocities, fout.fire_sums],
            model.device,
        )
        _launch_with_adjoint(
            k.fire_mix,
            k.fire_mix_adjoint,
            threads,
            [
                s(self.dt_max), self.n_min, s(self.f_inc), s(self.f_dec), s(self.alpha_start), s(self.f_alpha),
                s(self.force_norm_eps), fout.fire_sums, fin.fire_dt, fin.fire_alpha, fin.fire_count,
                md_velocities, state_out.forces, chunk,
            ],
            [state_out.velocities, fout.fire_dt, fout.fire_alpha, fout.fire_count],
            model.device,
        )
        state_out.step_index = state_in.step_index + 1


def _differentiable(a) -> bool:
    return isinstance(a, wp.array) and getattr(a.dtype, "_wp_scalar_type_", a.dtype) in (wp.float32, wp.float64)


def _launch_with_adjoint(kernel, adjoint, dim, inputs, outputs, device) -> None:
    """Launch ``kernel``; on an active tape record its hand-written ``adjoint`` (which takes the
    inputs, the adjoints of the floating-point outputs, then accumulates into the adjoints of the
    floating-point array inputs) in place of Warp's generated one. An array without a gradient
    gets a zero placeholder."""
    wp.launch(kernel, dim=dim, inputs=inputs, outputs=outputs, device=device, record_tape=False)
    tape = active_tape()
    if tape is None:
        return
    seeds = [a for a in outputs if _differentiable(a)]
    targets = [a for a in inputs if _differentiable(a)]
    if not any(a.grad is not None for a in targets) or not any(a.grad is not None for a in seeds):
        return
    grads = [a.grad if a.grad is not None else wp.zeros_like(a, requires_grad=False) for a in (*seeds, *targets)]

    def backward():
        wp.launch(adjoint, dim=dim, inputs=[*inputs, *grads[: len(seeds)]], outputs=grads[len(seeds) :], device=device)

    tape.record_func(backward, [a for a in (*inputs, *outputs) if isinstance(a, wp.array) and a.grad is not None])


def check_forces(model: ParticleModel, state: ParticleState, neighbors=None) -> None:
    """Raise ``ValueError`` naming the closest pair if the forces of ``state`` are not finite."""
    forces = state.forces.numpy()
    if np.all(np.isfinite(forces)):
        return
    pos = state.positions.numpy()[:, : model.dim].astype(np.float64)
    sides = model.box_sides()
    best = (math.inf, -1, -1)
    for i in range(model.particle_count - 1):
        d = pos[i] - pos[i + 1 :]
        if model.periodic:
            d -= sides * np.round(d / sides)
        r = np.sqrt(np.sum(d * d, axis=1))
        j = int(np.argmin(r))
        if r[j] < best[0]:
            best = (float(r[j]), i, i + 1 + j)
    r, i, j = best
    raise ParameterError(
        f"positions: particles {i} and {j} overlap (distance {r:.3g}), giving a non-finite {model.potential.name} "
        f"energy/force; move them apart (for a random start, minimize with a soft potential first)"
    )
