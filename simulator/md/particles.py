"""Particle systems: a builder, the static :class:`ParticleModel` and the per-step :class:`ParticleState`.

Shapes use N = number of particles and T = number of particle types. Positions and velocities
are ``vec3`` in both 2D and 3D (a 2D system keeps z = 0). Units are reduced Lennard-Jones units
(see :mod:`simulator.md.potentials`). One system per model (no batched worlds).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from ..errors import ParameterError, check_array, check_array_finite, check_finite, check_parameter_values, check_positive, describe
from ..precision import Precision, get_precision, resolve_device
from .potentials import PairPotential, PotentialKind

logger = logging.getLogger("simulator.md")


@dataclass
class ParticleState:
    """What changes every step. Every array is ``(N,)`` unless noted.

    Attributes:
        positions: positions [length] (``vec3``; z = 0 in 2D), wrapped into the box if periodic.
        velocities: velocities [length/time].
        forces: pair forces at ``positions`` [energy/length]; an integrator's ``step`` needs them
            valid in its input state (``integrator.prepare`` computes them).
        integrator: the integrator's own per-step arrays (a dataclass of arrays, e.g.
            :class:`simulator.md.integrators.FIREArrays`), made by ``integrator.state(model)``;
            None in a state from :meth:`ParticleModel.state`, which ``prepare`` completes.
        step_index: number of steps taken to reach this state (seeds the Langevin noise).
    """

    positions: wp.array
    velocities: wp.array
    forces: wp.array
    integrator: object = None
    step_index: int = 0

    def arrays(self) -> dict[str, wp.array]:
        """Every array by name, the integrator's included."""
        arrays = {"positions": self.positions, "velocities": self.velocities, "forces": self.forces}
        if self.integrator is not None:
            arrays.update({f.name: getattr(self.integrator, f.name) for f in dataclasses.fields(self.integrator)})
        return arrays

    def assign(self, other: ParticleState) -> None:
        """Copy ``other`` into this state (recorded on an active tape, so gradients flow)."""
        theirs = other.arrays()
        for name, array in self.arrays().items():
            if name not in theirs:
                raise ParameterError(f"other must hold the arrays of this state's integrator, got a state without {name!r}")
            wp.copy(array, theirs[name])
        self.step_index = other.step_index

    def numpy(self) -> dict[str, np.ndarray]:
        """Host copies of every array (for inspection and tests)."""
        return {name: array.numpy() for name, array in self.arrays().items()}


@dataclass
class ParticleModel:
    """Static description of a particle system (built by :meth:`ParticleBuilder.finalize`).

    Differentiable parameters (with ``requires_grad=True``): ``particle_mass``,
    ``particle_diameter``, ``pair_epsilon``, ``pair_sigma``, ``pair_alpha`` and ``box``.

    Attributes:
        device, precision: where and in which floating-point type every array lives.
        dim: 2 or 3.
        periodic: whether the box is periodic (minimum image, positions wrapped).
        particle_count: N. type_count: T.
        particle_type: (N,) int32 type index.
        particle_mass: (N,) mass [mass].
        particle_diameter: (N,) diameter [length].
        box: (1,) ``vec3`` box sides [length] (z unused in 2D); in free space it only sets the
            scale of the initial neighbor grid.
        potential: the :class:`PairPotential` (functional form and its parameters).
        pair_epsilon, pair_sigma, pair_alpha: (T, T) pair parameters (upper triangle read).
        cutoff: largest interaction distance [length] (the soft sphere: the largest sigma_ij).
        requires_grad: whether arrays carry gradient buffers.
    """

    device: wp.context.Device
    precision: Precision
    dim: int
    periodic: bool
    particle_count: int
    type_count: int
    particle_type: wp.array
    particle_mass: wp.array
    particle_diameter: wp.array
    box: wp.array
    potential: PairPotential
    pair_epsilon: wp.array
    pair_sigma: wp.array
    pair_alpha: wp.array
    cutoff: float
    requires_grad: bool
    initial_positions: np.ndarray = field(repr=False)
    initial_velocities: np.ndarray = field(repr=False)
    _scratch_arrays: dict = field(default_factory=dict, repr=False)

    def parameters(self) -> dict[str, wp.array]:
        """The differentiable parameters, by name."""
        return {
            "particle_mass": self.particle_mass,
            "particle_diameter": self.particle_diameter,
            "pair_epsilon": self.pair_epsilon,
            "pair_sigma": self.pair_sigma,
            "pair_alpha": self.pair_alpha,
            "box": self.box,
        }

    def thread_layout(self) -> tuple[int, int]:
        """``(threads, particles per thread)`` for the per-particle kernels that loop over a chunk:
        the whole system on one thread on the CPU (Warp runs a CPU kernel on one thread anyway,
        so the per-thread setup then runs once, not once per particle), one particle per thread
        on a GPU."""
        n = self.particle_count
        if self.device.is_cpu:
            return min(n, 1), max(n, 1)
        return n, 1

    # the sign each parameter array must have (see simulator.errors.check_parameter_values)
    PARAMETER_SIGNS = {"particle_mass": "positive", "particle_diameter": "positive", "pair_epsilon": "positive",
                       "pair_sigma": "positive", "pair_alpha": "positive", "box": "positive"}

    def validate(self) -> None:
        """Check every parameter (:meth:`parameters`) as it is now, also after it was written
        following ``finalize``: finite and positive, the soft-sphere exponent > 1, the pair
        matrices symmetric, and the cutoff within half a periodic box. Raises ``ParameterError``
        naming the array and entry (a host read of a few small arrays; the engine calls it before
        every MD rollout)."""
        values = {name: array.numpy() for name, array in self.parameters().items()}
        values["box"] = values["box"][:, : self.dim]
        for name, array in values.items():
            check_parameter_values(name, array, self.PARAMETER_SIGNS[name])
        for name in ("pair_epsilon", "pair_sigma", "pair_alpha"):
            if not np.allclose(values[name], values[name].T):
                raise ParameterError(f"{name} must be symmetric (one value per unordered type pair), got {describe(values[name])}")
        if self.potential.kind == PotentialKind.SOFT_SPHERE and np.any(values["pair_alpha"] <= 1.0):
            raise ParameterError(f"pair_alpha must be > 1 for the soft sphere (its force vanishes at contact), got {describe(values['pair_alpha'])}")
        self.check_box()

    def check_state(self, state, name: str = "state", *, finite: bool = False) -> None:
        """Raise ``ParameterError`` unless ``state`` is a :class:`ParticleState` whose positions,
        velocities and forces are ``(N,)`` arrays of this model's vec3 type on its device; with
        ``finite``, also unless its positions and velocities are finite (a host read)."""
        if not isinstance(state, ParticleState):
            raise ParameterError(f"{name} must be a simulator.md.ParticleState, got {type(state).__name__}")
        for field_name in ("positions", "velocities", "forces"):
            check_array(f"{name}.{field_name}", getattr(state, field_name), shape=(self.particle_count,), dtype=self.precision.vec3,
                        device=self.device)
        if finite:
            for field_name in ("positions", "velocities"):
                check_array_finite(f"{name}.{field_name}", getattr(state, field_name))

    def box_sides(self) -> np.ndarray:
        """Current box sides [length], ``(dim,)``."""
        return self.box.numpy()[0][: self.dim].astype(np.float64)

    def volume(self) -> float:
        """Box area (2D) or volume (3D) [length^dim]."""
        return float(np.prod(self.box_sides()))

    def check_box(self) -> None:
        """Raise ``ValueError`` unless the cutoff fits in half the (periodic) box."""
        if not self.periodic:
            return
        sides = self.box_sides()
        if not np.all(np.isfinite(sides)) or np.any(sides <= 0):
            raise ParameterError(f"box must have finite sides > 0, got {sides.tolist()}")
        if self.cutoff > 0.5 * float(np.min(sides)):
            raise ParameterError(
                f"cutoff={self.cutoff:g} is larger than half the periodic box (box={sides.tolist()}); the minimum-image "
                f"convention needs cutoff <= {0.5 * float(np.min(sides)):g}: enlarge the box or shorten the cutoff"
            )

    def _array(self, values, dtype, requires_grad):
        grad = self.requires_grad if requires_grad is None else requires_grad
        return wp.array(values, dtype=dtype, device=self.device, requires_grad=grad)

    def state(self, *, requires_grad: bool | None = None, positions=None, velocities=None) -> ParticleState:
        """A new state with the builder's initial conditions (or the given ``(N, dim)`` arrays).

        Forces are zero: call the integrator's ``prepare`` (or :func:`simulator.md.rollout`,
        which does) before stepping.
        """
        p = self.precision
        grad = self.requires_grad if requires_grad is None else requires_grad
        pos = self.initial_positions if positions is None else _pad3("positions", positions, self.particle_count, self.dim)
        vel = self.initial_velocities if velocities is None else _pad3("velocities", velocities, self.particle_count, self.dim)
        n = self.particle_count
        return ParticleState(
            positions=self._array(pos.astype(p.numpy), p.vec3, grad),
            velocities=self._array(vel.astype(p.numpy), p.vec3, grad),
            forces=wp.zeros(n, dtype=p.vec3, device=self.device, requires_grad=grad),
        )

    def _scratch(self, name: str) -> wp.array:
        """Arrays without gradients that kernels need as placeholders (never read back)."""
        if name not in self._scratch_arrays:
            p, n = self.precision, self.particle_count
            make = {
                "energy": lambda: wp.zeros(n, dtype=p.scalar, device=self.device),
                "virial": lambda: wp.zeros(n, dtype=p.scalar, device=self.device),
                "empty": lambda: wp.zeros(0, dtype=p.scalar, device=self.device),
                "count": lambda: wp.zeros(0, dtype=wp.int32, device=self.device),
                "index": lambda: wp.zeros((0, 0), dtype=wp.int32, device=self.device),
            }
            self._scratch_arrays[name] = make[name]()
        array = self._scratch_arrays[name]
        if name in ("energy", "virial"):
            array.zero_()
        return array


def _pad3(name: str, values, n: int, dim: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n, dim):
        raise ParameterError(f"{name} must have shape ({n}, {dim}), got {arr.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
    if bad.size:
        raise ParameterError(f"{name} must be finite; particle {int(bad[0])} has {arr[bad[0]].tolist()}")
    out = np.zeros((n, 3))
    out[:, :dim] = arr
    return out


class ParticleBuilder:
    """Collects particles, then :meth:`finalize` makes a :class:`ParticleModel`.

    Args:
        dim: 2 or 3.
        box: box sides [length] (``dim`` entries or one number for a cube/square); required
            when ``periodic``.
        periodic: periodic orthorhombic box (default True when a box is given).
    """

    def __init__(self, *, dim: int = 3, box=None, periodic: bool | None = None):
        if dim not in (2, 3):
            raise ParameterError(f"dim must be 2 or 3, got {dim!r}")
        self.dim = dim
        self.periodic = (box is not None) if periodic is None else bool(periodic)
        if self.periodic and box is None:
            raise ParameterError("box must be given for a periodic system")
        if box is not None:
            sides = check_positive("box", box)
            sides = np.full(dim, float(sides)) if sides.ndim == 0 else sides
            if sides.shape != (dim,):
                raise ParameterError(f"box must have {dim} sides, got {box!r}")
            self.box = sides
        else:
            self.box = None
        self._positions, self._velocities, self._types, self._masses, self._diameters = [], [], [], [], []

    @property
    def particle_count(self) -> int:
        return sum(len(p) for p in self._positions)

    def add_particles(self, positions, *, velocities=None, type: int = 0, mass=1.0, diameter=1.0) -> range:
        """Add particles at ``positions`` ``(n, dim)`` [length]; ``velocities`` ``(n, dim)``
        [length/time] default to zero; ``type`` (int >= 0), ``mass`` [mass] and ``diameter``
        [length] are scalars or ``(n,)``. Returns the new particles' indices."""
        pos = check_finite("positions", positions)
        if pos.ndim != 2 or pos.shape[1] != self.dim:
            raise ParameterError(f"positions must have shape (n, {self.dim}), got {pos.shape}")
        n = pos.shape[0]
        vel = np.zeros_like(pos) if velocities is None else check_finite("velocities", velocities)
        if vel.shape != pos.shape:
            raise ParameterError(f"velocities must have shape {pos.shape}, got {vel.shape}")
        given = np.asarray(type)
        if given.dtype == bool or not np.issubdtype(given.dtype, np.integer) or np.any(given < 0):
            raise ParameterError(f"type must be an integer >= 0 (or one per particle), got {describe(type)}")
        types = np.broadcast_to(given, (n,)).astype(np.int64)
        masses = np.broadcast_to(check_positive("mass", mass), (n,)).astype(np.float64)
        diameters = np.broadcast_to(check_positive("diameter", diameter), (n,)).astype(np.float64)
        start = self.particle_count
        self._positions.append(pos)
        self._velocities.append(vel)
        self._types.append(types)
        self._masses.append(masses)
        self._diameters.append(diameters)
        return range(start, start + n)

    def finalize(
        self,
        potential: PairPotential,
        *,
        device=None,
        precision: str | Precision = "float64",
        requires_grad: bool = False,
    ) -> ParticleModel:
        """Make the model: arrays on ``device`` in ``precision``, with gradient buffers if asked."""
        if not isinstance(potential, PairPotential):
            raise TypeError(f"potential must be a PairPotential (LennardJones, SoftSphere, Morse), got {potential!r}")
        device = resolve_device(device)
        p = get_precision(precision)
        n = self.particle_count
        if n == 0:
            raise ParameterError("the builder must hold at least one particle before finalize(), got none")
        dim = self.dim
        pos = np.zeros((n, 3))
        vel = np.zeros((n, 3))
        pos[:, :dim] = np.concatenate(self._positions)
        vel[:, :dim] = np.concatenate(self._velocities)
        types = np.concatenate(self._types)
        masses = np.concatenate(self._masses)
        diameters = np.concatenate(self._diameters)
        type_count = max(int(types.max()) + 1, potential.type_count())
        mats = potential.matrices(type_count)
        cutoff = potential.interaction_range(type_count, diameters)
        if self.box is not None:
            box = np.ones(3)
            box[:dim] = self.box
        else:  # free space: the box only seeds the neighbor grid
            box = np.ones(3)
            box[:dim] = np.maximum(pos[:, :dim].max(axis=0) - pos[:, :dim].min(axis=0), 1.0)

        def arr(values, dtype, grad=requires_grad):
            return wp.array(values, dtype=dtype, device=device, requires_grad=grad)

        model = ParticleModel(
            device=device,
            precision=p,
            dim=dim,
            periodic=self.periodic,
            particle_count=n,
            type_count=type_count,
            particle_type=arr(types.astype(np.int32), wp.int32, False),
            particle_mass=arr(masses.astype(p.numpy), p.scalar),
            particle_diameter=arr(diameters.astype(p.numpy), p.scalar),
            box=arr(box[None, :].astype(p.numpy), p.vec3),
            potential=potential,
            pair_epsilon=arr(mats["epsilon"].astype(p.numpy), p.scalar),
            pair_sigma=arr(mats["sigma"].astype(p.numpy), p.scalar),
            pair_alpha=arr(mats["alpha"].astype(p.numpy), p.scalar),
            cutoff=cutoff,
            requires_grad=requires_grad,
            initial_positions=pos,
            initial_velocities=vel,
        )
        model.validate()
        return model
