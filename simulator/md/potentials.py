"""Pair potentials (Lennard-Jones, soft sphere, Morse) and the force/energy evaluation.

Units are reduced (Lennard-Jones) units: lengths in sigma, energies in epsilon, masses in the
particle mass, Boltzmann's constant k_B = 1. Parameters are per type pair: a scalar applies to
every pair, a ``(T, T)`` matrix gives each pair its own value (it must be symmetric; only the
upper triangle is read by the kernels, so gradients land there).

With ``sigma_from_diameters=True`` the pair length scale is ``sigma_ij = (d_i + d_j) / 2`` from
the per-particle diameters (polydisperse packings), and ``sigma`` is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import warp as wp

from ..runtime import active_tape, warp_runtime  # noqa: F401 (re-exported for the MD modules)
from ..errors import ParameterError, check_positive, describe
from ..kernels.constants import PairAdjoint, PotentialKind
from ..kernels.md import md_kernels


def _pair_matrix(name: str, value, type_count: int, *, positive: bool = True) -> np.ndarray:
    arr = check_positive(name, value) if positive else np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full((type_count, type_count), float(arr))
    if arr.shape != (type_count, type_count):
        raise ParameterError(f"{name} must be a scalar or a ({type_count}, {type_count}) matrix, got shape {arr.shape}")
    if not np.allclose(arr, arr.T):
        raise ParameterError(f"{name} must be symmetric (a parameter per unordered type pair), got {describe(value)}")
    return arr.copy()


@dataclass(frozen=True)
class PairPotential:
    """A pair potential with per-type-pair parameters (see the module docstring for units).

    Attributes:
        kind: the functional form, a ``PotentialKind``.
        epsilon: energy scale, scalar or ``(T, T)``.
        sigma: length scale, scalar or ``(T, T)`` (unused with ``sigma_from_diameters``).
        alpha: third parameter: soft-sphere exponent, Morse range [1/length]; unused for LJ.
        cutoff: interaction cutoff [length] with a shifted force (LJ, Morse); for the soft sphere
            the cutoff is sigma_ij itself and this field is ignored.
        sigma_from_diameters: take ``sigma_ij = (d_i + d_j)/2`` from the particle diameters.
    """

    kind: PotentialKind
    epsilon: object = 1.0
    sigma: object = 1.0
    alpha: object = 1.0
    cutoff: float | None = None
    sigma_from_diameters: bool = False

    @property
    def name(self) -> str:
        return PotentialKind(self.kind).name.lower()

    def type_count(self) -> int:
        """Number of types the parameter matrices describe (1 if every parameter is a scalar)."""
        sizes = [np.asarray(v).shape[0] for v in (self.epsilon, self.sigma, self.alpha) if np.ndim(v) == 2]
        return max(sizes, default=1)

    def matrices(self, type_count: int) -> dict[str, np.ndarray]:
        """Per-type-pair ``(T, T)`` matrices of epsilon, sigma and alpha."""
        return {
            "epsilon": _pair_matrix("epsilon", self.epsilon, type_count),
            "sigma": _pair_matrix("sigma", self.sigma, type_count),
            "alpha": _pair_matrix("alpha", self.alpha, type_count),
        }

    def interaction_range(self, type_count: int, diameters: np.ndarray) -> float:
        """Largest distance [length] at which two particles interact."""
        if self.kind == PotentialKind.SOFT_SPHERE:
            if self.sigma_from_diameters:
                return float(np.max(diameters)) if diameters.size else 0.0
            return float(np.max(self.matrices(type_count)["sigma"]))
        if self.cutoff is None:
            raise ParameterError(f"cutoff of the {self.name} potential must be given, got None")
        return float(check_positive("cutoff", self.cutoff))


def LennardJones(*, epsilon=1.0, sigma=1.0, cutoff: float = 2.5, sigma_from_diameters: bool = False) -> PairPotential:
    """Lennard-Jones ``4 eps ((s/r)^12 - (s/r)^6)``, shifted-force cut at ``cutoff`` [length]."""
    return PairPotential(PotentialKind.LENNARD_JONES, epsilon, sigma, 1.0, float(cutoff), sigma_from_diameters)


def SoftSphere(*, epsilon=1.0, sigma=1.0, alpha=2.0, sigma_from_diameters: bool = False) -> PairPotential:
    """Soft sphere ``eps/alpha (1 - r/s)^alpha`` for ``r < s`` (O'Hern et al. 2003; alpha > 1)."""
    a = check_positive("alpha", alpha)
    if np.any(a <= 1.0):
        raise ParameterError(f"alpha must be > 1 so the soft-sphere force vanishes at contact, got {alpha!r}")
    return PairPotential(PotentialKind.SOFT_SPHERE, epsilon, sigma, alpha, None, sigma_from_diameters)


def Morse(*, epsilon=5.0, sigma=1.0, alpha=5.0, cutoff: float = 2.5, sigma_from_diameters: bool = False) -> PairPotential:
    """Morse ``eps ((1 - exp(-alpha (r - s)))^2 - 1)``, minimum ``-eps`` at ``r = s``, shifted-force
    cut at ``cutoff`` [length]."""
    return PairPotential(PotentialKind.MORSE, epsilon, sigma, alpha, float(cutoff), sigma_from_diameters)


def compute_forces(model, positions: wp.array, forces_out: wp.array, neighbors=None, *, energy_out=None, virial_out=None):
    """Accumulate pair forces at ``positions`` into the zeroed ``forces_out`` ``(N,)`` [energy/length].

    Args:
        model: a :class:`simulator.md.ParticleModel`.
        neighbors: a :class:`simulator.md.NeighborList` (updated and rebuilt here if needed),
            or None for the exact all-pairs sum (O(N^2)).
        energy_out, virial_out: optional zeroed ``(N,)`` arrays that receive each particle's share
            of the potential energy [energy] and of the virial ``sum r_ij . f_ij`` [energy].
    """
    kernels = md_kernels(model.precision.scalar)
    compute_energy = energy_out is not None or virial_out is not None
    if compute_energy:
        energy_out = energy_out if energy_out is not None else model._scratch("energy")
        virial_out = virial_out if virial_out is not None else model._scratch("virial")
    else:
        energy_out = virial_out = model._scratch("empty")
    if neighbors is None:
        all_pairs, count, index = 1, model._scratch("count"), model._scratch("index")
    else:
        all_pairs = 0
        count, index = neighbors.update(positions)
    if model.particle_count == 0:
        return
    threads, chunk = model.thread_layout()
    inputs = [
        model.particle_type,
        model.particle_diameter,
        model.pair_epsilon,
        model.pair_sigma,
        model.pair_alpha,
        int(model.potential.sigma_from_diameters),
        model.precision.scalar(model.cutoff),
        model.box,
        int(model.periodic),
        all_pairs,
        count,
        index,
        positions,
        int(compute_energy),
        chunk,
    ]
    outputs = [forces_out, energy_out, virial_out]
    # kernels specialised per potential, for one type, and for one type with a fixed sigma
    single_type = model.pair_epsilon.shape[0] == 1
    key = (model.potential.kind, single_type, single_type and not model.potential.sigma_from_diameters)
    wp.launch(kernels.pair_forces[key], dim=threads, inputs=inputs, outputs=outputs, device=model.device, record_tape=False)
    tape = active_tape()
    if tape is not None:
        _record_adjoint(tape, model, kernels.pair_forces_adjoint[key], threads, positions, inputs, outputs)


def _record_adjoint(tape, model, adjoint_kernel, threads, positions, inputs, outputs) -> None:
    """Record the pair kernel's hand-written adjoint (launched on ``threads`` as the forward) on
    ``tape``: it accumulates into the gradients of the inputs that have one (``positions`` among
    them), from the gradients of the outputs that have one."""
    m = model
    from_diameters = m.potential.sigma_from_diameters
    grads = {  # in the order of the adjoint kernel's outputs; None: not differentiated here
        PairAdjoint.GRAD_POSITIONS: positions,
        PairAdjoint.GRAD_DIAMETER: m.particle_diameter if from_diameters else None,
        PairAdjoint.GRAD_EPSILON: m.pair_epsilon,
        PairAdjoint.GRAD_SIGMA: None if from_diameters else m.pair_sigma,
        PairAdjoint.GRAD_ALPHA: None if m.potential.kind == PotentialKind.LENNARD_JONES else m.pair_alpha,
        PairAdjoint.GRAD_BOX: m.box if m.periodic else None,
    }
    seeds = {PairAdjoint.ADJ_FORCES: outputs[0], PairAdjoint.ADJ_ENERGY: outputs[1], PairAdjoint.ADJ_VIRIAL: outputs[2]}
    wanted = sum(bit for bit, a in {**grads, **seeds}.items() if a is not None and a.grad is not None)
    if not any(wanted & bit for bit in seeds) or not any(wanted & bit for bit in grads):
        return
    # an array without a gradient (or not differentiated) is passed as a placeholder the kernel never touches
    seed_arrays = [a.grad if wanted & bit else a for bit, a in seeds.items()]
    placeholders = [positions, m.particle_diameter, m.pair_epsilon, m.pair_sigma, m.pair_alpha, m.box]
    grad_arrays = [grads[bit].grad if wanted & bit else placeholder for bit, placeholder in zip(grads, placeholders)]

    def backward():
        wp.launch(adjoint_kernel, dim=threads, inputs=[*inputs, *seed_arrays, wanted], outputs=grad_arrays, device=m.device)

    tape.record_func(backward, [a for a in (*inputs, *outputs) if isinstance(a, wp.array) and a.grad is not None])
