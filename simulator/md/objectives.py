"""Molecular-dynamics rollout objectives: a loss of the final state of an MD rollout as a function
of model parameters theta, for every gradient estimator of :func:`simulator.grad`.

An MD model holds one system (no batched worlds), so an objective evaluates its ``(W, P)``
parameter rows one rollout each: row ``w`` writes its parameters into a cached model (a new
model is built only when a row changes what the model bakes in, such as the soft-sphere cutoff),
draws its initial state, and runs :func:`simulator.md.rollout`:

* unrecorded (``evaluate``, used by ``es``): ``record=False``, the fast path that replays
  captured graphs on the CPU;
* analytic (``reverse_sweep``, used by ``analytic``, ``hybrid``, ``auto``): recorded on a tape (or
  checkpointed with ``checkpoint_every``) and back-propagated; the model parameters' gradients
  are mapped back to theta by the :class:`ParameterMap`'s chain rule.

Truncated backprop (``window``) differentiates the last window only (the loss reads the final
state), for velocity Verlet and BAOAB; FIRE cannot continue a rollout from a window's start and
raises ``ParameterError`` (a ``ValueError``) naming the option, as do adjoint clipping and adjoint
traces, which need the state adjoint at every step boundary (an MD rollout does not expose it).

Concrete objectives: :class:`PackingObjective` (final energy of a FIRE-minimised soft-sphere
packing w.r.t. the small diameter, or every diameter, with the box at a fixed packing fraction)
and :class:`LJFluidObjective` (final potential energy of a Lennard-Jones fluid w.r.t. epsilon and
sigma). Units are reduced Lennard-Jones units (see :mod:`simulator.md`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import warp as wp

from ..errors import ParameterError, check_finite
from ..gradients.objective import GradientNotFiniteError, RolloutObjective, SweepResult
from .integrators import FIRE, LangevinBAOAB, VelocityVerlet
from .neighbors import NeighborList
from .observables import potential_energy
from .particles import ParticleModel, ParticleState
from .rollout import rollout

SEED_MODES = ("per_row", "shared")
MODEL_CACHE_SIZE = 4  # models (with their integrators and captured graphs) kept per objective


class ParameterMap:
    """How a theta row ``(P,)`` sets a :class:`ParticleModel`'s differentiable parameters, and the
    chain rule back from their gradients. Subclasses set ``names`` and implement :meth:`initial`,
    :meth:`apply` and :meth:`chain`; :meth:`check`, :meth:`structure` and :meth:`loss_scale` have
    defaults."""

    names: tuple[str, ...] = ()

    @property
    def num_parameters(self) -> int:
        return len(self.names)

    def initial(self) -> np.ndarray:
        """A valid reference row ``(P,)`` (the objective's first model is built for it)."""
        raise NotImplementedError

    def check(self, row: np.ndarray) -> None:
        """Raise ``ParameterError`` naming the parameter and value if ``row`` is not allowed."""

    def structure(self, row: np.ndarray) -> Hashable:
        """What the model built for ``row`` bakes in beyond its arrays (rows with equal values share
        a model); None when every row can share one."""
        return None

    def apply(self, model: ParticleModel, row: np.ndarray) -> None:
        """Write ``row`` into the model's parameter arrays (outside any tape)."""
        raise NotImplementedError

    def chain(self, model: ParticleModel, row: np.ndarray) -> np.ndarray:
        """``(P,)`` dL/dtheta from the gradients the backward pass left in the model's parameters."""
        raise NotImplementedError

    def loss_scale(self, row: np.ndarray) -> tuple[float, np.ndarray]:
        """``(c, dc/dtheta)``: the objective's loss is ``c`` times the model's (for a map that runs the
        model in rescaled units); ``(1, 0)`` by default."""
        return 1.0, np.zeros(self.num_parameters)


def _gradient(array: wp.array) -> np.ndarray:
    if array.grad is None:
        raise ParameterError("the model's parameter arrays must have gradient buffers, got one with array.grad None: "
                             "finalize the model with requires_grad=True")
    return array.grad.numpy().astype(np.float64)


class PairParameters(ParameterMap):
    """theta = one value per named pair parameter (``"epsilon"``, ``"sigma"``, ``"alpha"``), the
    same for every type pair; its gradient sums the ``(T, T)`` matrix's (only the upper triangle
    is read by the kernels, so the lower one holds zeros).

    Args:
        names: the pair parameters theta holds, in order.
        initial: their reference values, ``(P,)`` (> 0).
    """

    FIELDS = {"epsilon": "pair_epsilon", "sigma": "pair_sigma", "alpha": "pair_alpha"}

    def __init__(self, names=("epsilon", "sigma"), initial=(1.0, 1.0)):
        self.names = tuple(names)
        unknown = [n for n in self.names if n not in self.FIELDS]
        if unknown or not self.names:
            raise ParameterError(f"names must be some of {sorted(self.FIELDS)}, got {names!r}")
        self._initial = check_finite("initial", initial).reshape(-1)
        if self._initial.shape != (len(self.names),):
            raise ParameterError(f"initial must have {len(self.names)} entries, got {self._initial.shape[0]}")
        self.check(self._initial)

    def initial(self) -> np.ndarray:
        return self._initial.copy()

    def check(self, row):
        for name, value in zip(self.names, row):
            if not value > 0:
                raise ParameterError(f"{name} must be > 0, got {float(value)!r}")

    def apply(self, model, row):
        for name, value in zip(self.names, row):
            array = getattr(model, self.FIELDS[name])
            array.fill_(model.precision.scalar(value))

    def chain(self, model, row):
        return np.array([_gradient(getattr(model, self.FIELDS[name])).sum() for name in self.names])


class PackingDiameters(ParameterMap):
    """Disk diameters ``d`` of a 2D soft-sphere packing (unit masses, epsilon = 1) in a periodic
    square of side ``L(d) = sqrt(sum_i pi d_i^2 / 4 / phi)`` at a fixed packing fraction phi.

    theta is the small diameter D of a bidisperse packing (n/2 disks of 1, n/2 of D;
    ``per_particle=False``) or all ``n`` diameters.

    The model runs in units in which the box keeps its reference side ``L0`` (that of the
    reference diameters): with ``s = L0 / L(d)``, lengths (diameters, positions) are scaled by
    ``s``, energies (epsilon) by ``s`` and masses by ``1/s``. Forces are then unchanged and
    velocities scale by ``s``, so every step of FIRE (or velocity Verlet) maps exactly onto the
    unscaled one (up to rounding), and the energy in physical units is the model's divided by
    ``s`` (:meth:`loss_scale`). Because the box, and with it the neighbor grid, never changes,
    every row reuses one model and its captured graphs (a box that changed per row would force a
    new graph capture per rollout). The chain rule runs through the scaled diameters, masses and
    epsilon; it equals the direct ``dE/dd + (dE/dL) dL/dd`` of a box of side ``L(d)``.

    Args:
        n: number of disks (even).
        small_diameter: reference D [length] (and every small disk's reference with ``per_particle``).
        per_particle: theta holds every diameter.
        packing_fraction: phi in (0, 1].
    """

    def __init__(self, n: int, *, small_diameter: float = 0.6, per_particle: bool = False, packing_fraction: float = 0.98):
        from ..scenes.md_systems import bidisperse_diameters, packing_box_side_for_diameters

        if not (0.0 < packing_fraction <= 1.0):
            raise ParameterError(f"packing_fraction must be in (0, 1], got {packing_fraction!r}")
        self.packing_fraction = float(packing_fraction)
        self.per_particle = bool(per_particle)
        self.n = int(n)
        self.reference = bidisperse_diameters(self.n, small_diameter)
        self.names = tuple(f"diameter_{i}" for i in range(self.n)) if self.per_particle else ("small_diameter",)
        self.check(self.initial())
        self.reference_side = packing_box_side_for_diameters(self.reference, self.packing_fraction)

    def initial(self) -> np.ndarray:
        return self.reference.copy() if self.per_particle else self.reference[-1:].copy()

    def diameters(self, row: np.ndarray) -> np.ndarray:
        """``(n,)`` physical diameters [length] for ``row``."""
        if self.per_particle:
            return np.asarray(row, dtype=np.float64)
        out = self.reference.copy()
        out[self.n // 2 :] = row[0]
        return out

    def _reduce(self, per_particle: np.ndarray) -> np.ndarray:
        """``A^T v``: a per-particle derivative mapped onto theta."""
        return per_particle if self.per_particle else np.array([per_particle[self.n // 2 :].sum()])

    def scaled(self, row: np.ndarray):
        """``(d, s, dL/dtheta)``: the physical diameters, the length scale ``s = L0 / L(d)`` and ``(P,)`` dL/dtheta."""
        from ..scenes.md_systems import packing_box_side_for_diameters, packing_box_side_gradient

        d = self.diameters(row)
        side = packing_box_side_for_diameters(d, self.packing_fraction)
        return d, self.reference_side / side, self._reduce(packing_box_side_gradient(d, self.packing_fraction))

    def check(self, row):
        bad = np.flatnonzero(~(np.asarray(row) > 0))
        if bad.size:
            raise ParameterError(f"{self.names[bad[0]]} must be > 0, got {float(row[bad[0]])!r}")

    def structure(self, row):
        """The model's cutoff [model length]: the largest scaled diameter, rounded up to a multiple of 1/4
        (at least 1), so rows share a model unless a disk outgrows it. A larger cutoff than needed only
        widens the neighbor search (the soft sphere vanishes beyond sigma_ij, its list holds pairs within
        sigma_ij + skin)."""
        d, s, _ = self.scaled(row)
        return max(1.0, float(np.ceil(4.0 * s * np.max(d))) / 4.0)

    def apply(self, model, row):
        d, s, _ = self.scaled(row)
        dtype = model.precision.numpy
        model.particle_diameter.assign((s * d).astype(dtype))
        model.particle_mass.fill_(model.precision.scalar(1.0 / s))
        model.pair_epsilon.fill_(model.precision.scalar(s))

    def chain(self, model, row):
        d, s, d_side = self.scaled(row)
        ds = -s * d_side / (self.reference_side / s)  # s = L0 / L: ds/dtheta = -s (dL/dtheta) / L
        g_d = _gradient(model.particle_diameter)
        return (ds * float(g_d @ d) + s * self._reduce(g_d)  # d' = s d
                - ds * float(_gradient(model.particle_mass).sum()) / s**2  # m' = 1 / s
                + ds * float(_gradient(model.pair_epsilon).sum()))  # epsilon' = s

    def loss_scale(self, row):
        """Energies in physical units are the model's divided by ``s``: ``(L / L0, dL/dtheta / L0)``."""
        _, s, d_side = self.scaled(row)
        return 1.0 / s, d_side / self.reference_side


class MDObjective(RolloutObjective):
    """A loss of the final state of a molecular-dynamics rollout, as a :class:`RolloutObjective`.

    Args:
        model_factory: ``model_factory(row) -> ParticleModel`` finalized with ``requires_grad=True``;
            called once per distinct ``parameters.structure(row)`` (models are cached and reused,
            the row's values written into their arrays).
        integrator_factory: ``integrator_factory(model)`` -> a :class:`VelocityVerlet`,
            :class:`LangevinBAOAB` or :class:`FIRE` (usually with a :class:`NeighborList` of that
            model); called once per model.
        parameters: a :class:`ParameterMap` (theta row -> model parameters, and the chain rule back).
        loss: ``loss(model, final_state, neighbors) -> wp.array`` of shape ``(1,)`` computed by
            recorded Warp launches (e.g. :func:`simulator.md.potential_energy`); ``neighbors`` is
            the integrator's list (or None).
        initial_state: ``initial_state(model, rng) -> ParticleState``, drawing any randomness from
            the ``numpy.random.Generator`` ``rng``; its launches are recorded in the analytic pass,
            so gradients through it (e.g. positions scaled by the box) reach theta.
        num_steps: rollout length in steps (>= 1).
        dt: step length [time] (ignored by FIRE, whose step is adaptive).
        seeds: ``"per_row"``: the rows of one call draw their initial states in turn from
            ``default_rng(seed)`` (row 0 of every call with the same seed starts alike; a
            population samples independent initial states, so the loss is the mean over them);
            ``"shared"``: every row starts from the state of ``default_rng(seed)``.
    """

    def __init__(self, model_factory: Callable, integrator_factory: Callable, parameters: ParameterMap, loss: Callable, *,
                 initial_state: Callable, num_steps: int, dt: float = 0.005, seeds: str = "per_row"):
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ParameterError(f"num_steps must be a positive integer, got {num_steps!r}")
        if not (isinstance(dt, (int, float, np.floating)) and np.isfinite(dt) and dt > 0):
            raise ParameterError(f"dt must be a finite time step > 0, got {dt!r}")
        if seeds not in SEED_MODES:
            raise ParameterError(f"seeds must be one of {SEED_MODES}, got {seeds!r}")
        if not isinstance(parameters, ParameterMap):
            raise TypeError(f"parameters must be a ParameterMap (e.g. PairParameters, PackingDiameters), got {parameters!r}")
        self.model_factory, self.integrator_factory = model_factory, integrator_factory
        self.parameters, self.loss, self._initial_state = parameters, loss, initial_state
        self.num_steps, self.dt, self.seeds = int(num_steps), float(dt), seeds
        self.num_parameters = parameters.num_parameters
        self._systems: OrderedDict = OrderedDict()
        model, _ = self.system(parameters.initial())
        self.device, self.precision = model.device, model.precision

    def initial_parameters(self) -> np.ndarray:
        """The parameter map's reference theta, ``(P,)``."""
        return self.parameters.initial()

    def system(self, row: np.ndarray) -> tuple[ParticleModel, object]:
        """The cached ``(model, integrator)`` for ``row`` (built on first use), with ``row`` written into the model."""
        key = self.parameters.structure(row)
        if key in self._systems:
            self._systems.move_to_end(key)
        else:
            model = self.model_factory(row)
            if not isinstance(model, ParticleModel) or not model.requires_grad:
                raise ParameterError(f"model_factory must return a ParticleModel finalized with requires_grad=True, got {model!r}")
            self._systems[key] = (model, self.integrator_factory(model))
            if len(self._systems) > MODEL_CACHE_SIZE:
                self._systems.popitem(last=False)
        model, integrator = self._systems[key]
        self.parameters.apply(model, row)
        return model, integrator

    def _rows(self, theta_rows) -> np.ndarray:
        rows = check_finite("theta rows", theta_rows)
        if rows.ndim != 2 or rows.shape[1] != self.num_parameters or rows.shape[0] < 1:
            raise ParameterError(f"theta rows must have shape (worlds, {self.num_parameters}), got {rows.shape}")
        for row in rows:
            self.parameters.check(row)
        return rows

    def _generators(self, seed: int, count: int):
        if not isinstance(seed, (int, np.integer)):
            raise ParameterError(f"seed must be an integer, got {seed!r}")
        shared = np.random.default_rng(int(seed))
        for _ in range(count):
            yield shared if self.seeds == "per_row" else np.random.default_rng(int(seed))

    def _initial(self, model, rng) -> ParticleState:
        state = self._initial_state(model, rng)
        if not isinstance(state, ParticleState):
            raise ParameterError(f"initial_state must return a ParticleState, got {state!r}")
        return state

    def _rollout_loss(self, model, integrator, state, num_steps: int, *, record: bool, checkpoint_every=None) -> wp.array:
        trajectory = rollout(model, state, integrator, num_steps=num_steps, dt=self.dt, record=record, checkpoint_every=checkpoint_every)
        loss = self.loss(model, trajectory.final, integrator.neighbors)
        if not isinstance(loss, wp.array) or loss.shape != (1,):
            raise ParameterError(f"loss must return a (1,) wp.array, got {loss!r}")
        return loss

    def evaluate_rows(self, theta_rows: np.ndarray, seed: int) -> np.ndarray:
        """Losses ``(W,)``: one unrecorded rollout per row (see :func:`simulator.gradients.evaluate`)."""
        rows = self._rows(theta_rows)
        losses = np.empty(rows.shape[0])
        for w, (row, rng) in enumerate(zip(rows, self._generators(seed, rows.shape[0]))):
            model, integrator = self.system(row)
            loss = self._rollout_loss(model, integrator, self._initial(model, rng), self.num_steps, record=False)
            losses[w] = self.parameters.loss_scale(row)[0] * float(loss.numpy()[0])
        return losses

    def sweep_rows(self, theta_rows: np.ndarray, *, seed: int, checkpoint_every: int | None = None, window: int | None = None,
                   clip: float | None = None, trace: bool = False) -> SweepResult:
        """Losses and gradients ``(W, P)`` by backprop through one rollout per row (recorded, or
        checkpointed every ``checkpoint_every`` steps); see :func:`simulator.gradients.reverse_sweep`.

        ``window``: truncated backprop with windows of ``window`` steps from step 0. The loss reads
        the final state only, so just the last window ``[cut, num_steps)`` is differentiated: the
        first ``cut`` steps run unrecorded and the rest continues from their final state on the
        tape (velocity Verlet and BAOAB; FIRE cannot continue a rollout, as its ``prepare``
        restarts the adaptive step, and raises).
        """
        T = self.num_steps
        cut = 0 if window is None or window >= T else (T - 1) // int(window) * int(window)
        if clip is not None:
            raise ParameterError(f"clip={clip!r}: an MD objective cannot clip the state adjoint between steps; use the es estimator")
        if trace:
            raise ParameterError("trace=True: an MD objective cannot trace the state adjoint between steps")
        rows = self._rows(theta_rows)
        losses, gradients = np.empty(rows.shape[0]), np.empty(rows.shape)
        for w, (row, rng) in enumerate(zip(rows, self._generators(seed, rows.shape[0]))):
            model, integrator = self.system(row)
            if cut and isinstance(integrator, FIRE):
                raise ParameterError(f"window={window!r}: a FIRE rollout cannot be truncated (FIRE's prepare restarts its adaptive step, "
                                     f"so the rollout cannot continue from a window's start); use window >= num_steps ({T}) or es")
            for array in model.parameters().values():
                if array.grad is not None:
                    array.grad.zero_()
            start = rollout(model, self._initial(model, rng), integrator, num_steps=cut, dt=self.dt, record=False).final if cut else None
            tape = wp.Tape()
            with tape:
                state = self._initial(model, rng) if start is None else start
                loss = self._rollout_loss(model, integrator, state, T - cut, record=True, checkpoint_every=checkpoint_every)
            tape.backward(loss=loss)
            raw = float(loss.numpy()[0])
            scale, d_scale = self.parameters.loss_scale(row)
            losses[w] = scale * raw
            gradients[w] = scale * self.parameters.chain(model, row) + raw * d_scale
            del tape
            if not np.all(np.isfinite(gradients[w])):
                raise GradientNotFiniteError(f"the parameter gradient is non-finite in world {w} (row {row.tolist()}); the "
                                             "rollout is too long or too chaotic to backpropagate: use the es estimator", step=cut)
        steps = T - cut
        peak = steps + 1 if checkpoint_every is None else -(-steps // int(checkpoint_every)) + int(checkpoint_every) + 1
        return SweepResult(losses=losses, gradients=gradients, peak_states=peak)

    # the per-step interface of RolloutObjective: an MD objective runs whole rollouts instead
    def initial_state(self, num_worlds, seed):
        raise NotImplementedError("an MDObjective runs whole rollouts: use evaluate_rows / sweep_rows")

    def advance(self, t, state, theta):
        raise NotImplementedError("an MDObjective runs whole rollouts: use evaluate_rows / sweep_rows")

    def add_loss(self, t, state, theta, loss):
        raise NotImplementedError("an MDObjective runs whole rollouts: use evaluate_rows / sweep_rows")

    def state_arrays(self, state):
        raise NotImplementedError("an MDObjective runs whole rollouts: use evaluate_rows / sweep_rows")


def final_potential_energy(model: ParticleModel, state: ParticleState, neighbors) -> wp.array:
    """The loss of :class:`PackingObjective` and :class:`LJFluidObjective`: the total pair
    potential energy [energy] of the final state, ``(1,)``."""
    return potential_energy(model, state, neighbors)


class PackingObjective(MDObjective):
    """Final energy of a 2D soft-sphere packing after ``num_steps`` FIRE steps from uniform random
    positions (paper Fig. 4; the system of :func:`simulator.scenes.md_systems.bidisperse_packing`),
    as a function of the small diameter D (``per_particle=False``) or of every diameter, with the
    box side at the fixed packing fraction (run in the rescaled units of :class:`PackingDiameters`).
    Each row's initial positions are uniform fractional coordinates drawn from its generator
    (``seeds``) times the box side.

    Args:
        n: number of disks (even). num_steps: FIRE steps.
        small_diameter: reference D [length]. per_particle: theta = all ``n`` diameters.
        packing_fraction: phi. skin: neighbor-list skin [model length].
        seeds: see :class:`MDObjective`. device, precision: of the model.
    """

    def __init__(self, n: int = 128, *, num_steps: int = 100, small_diameter: float = 0.6, per_particle: bool = False,
                 packing_fraction: float = 0.98, skin: float = 0.3, seeds: str = "per_row", device=None, precision: str = "float64"):
        from ..scenes.md_systems import soft_sphere_packing

        parameters = PackingDiameters(n, small_diameter=small_diameter, per_particle=per_particle, packing_fraction=packing_fraction)

        def build(row):  # the reference system (box L0); the row's scaled diameters are written by parameters.apply
            model, _ = soft_sphere_packing(parameters.reference, packing_fraction=packing_fraction, device=device, precision=precision,
                                           requires_grad=True)
            model.cutoff = parameters.structure(row)
            model.check_box()
            return model

        super().__init__(build, lambda model: FIRE(neighbors=NeighborList(model, skin=skin)), parameters, final_potential_energy,
                         initial_state=self._random_positions, num_steps=num_steps, seeds=seeds)

    @staticmethod
    def _random_positions(model: ParticleModel, rng: np.random.Generator) -> ParticleState:
        # the model's box is fixed (rescaled units), so no gradient flows through the initial positions
        fractional = rng.uniform(0.0, 1.0, size=(model.particle_count, model.dim))
        return model.state(requires_grad=False, positions=fractional * model.box_sides())


class LJFluidObjective(MDObjective):
    """Final potential energy of a Lennard-Jones fluid (the system of
    :func:`simulator.scenes.md_systems.lj_fluid`: ``n`` particles on a lattice at ``density``)
    after ``num_steps`` steps of velocity Verlet (``thermostat=None``) or Langevin BAOAB at
    ``temperature`` with ``thermostat`` as its friction [1/time], as a function of theta =
    (epsilon, sigma). Each row's velocities are Maxwell-Boltzmann at ``temperature``, drawn from
    its generator (``seeds``).

    Args:
        n, density [1/sigma^dim], temperature [energy], cutoff [length], dim: the fluid.
        epsilon, sigma: reference theta. num_steps, dt [time]: the rollout. skin: neighbor-list skin.
        seeds: see :class:`MDObjective`. device, precision: of the model.
    """

    def __init__(self, n: int = 108, *, density: float = 0.8, temperature: float = 1.0, cutoff: float = 2.5, dim: int = 3,
                 epsilon: float = 1.0, sigma: float = 1.0, num_steps: int = 50, dt: float = 0.005, thermostat: float | None = None,
                 skin: float = 0.3, seeds: str = "per_row", device=None, precision: str = "float64"):
        from ..scenes.md_systems import lj_fluid, maxwell_boltzmann_velocities

        self.temperature = float(temperature)

        def build(row):
            model, _ = lj_fluid(n, density=density, temperature=temperature, cutoff=cutoff, dim=dim, device=device, precision=precision,
                                requires_grad=True)
            return model

        def integrator(model):
            neighbors = NeighborList(model, skin=skin)
            if thermostat is None:
                return VelocityVerlet(neighbors=neighbors)
            return LangevinBAOAB(temperature, thermostat, neighbors=neighbors)

        def initial_state(model, rng):
            velocities = maxwell_boltzmann_velocities(model.particle_count, model.dim, self.temperature, rng)
            return model.state(positions=model.initial_positions[:, : model.dim], velocities=velocities)

        super().__init__(build, integrator, PairParameters(("epsilon", "sigma"), (epsilon, sigma)), final_potential_energy,
                         initial_state=initial_state, num_steps=num_steps, dt=dt, seeds=seeds)
