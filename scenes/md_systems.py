"""Ready-made particle systems: a Lennard-Jones fluid and the bidisperse soft-sphere packing.

Each function returns ``(model, state)``; nothing here steps a simulation.
"""

from __future__ import annotations

import math

import numpy as np

from simulator import md
from simulator.errors import ParameterError


def lattice_positions(n: int, box: float, dim: int = 3) -> np.ndarray:
    """``n`` positions on a face-centred cubic (3D) or square (2D) lattice filling a cube/square
    of side ``box`` [length], ``(n, dim)``; the smallest lattice holding ``n`` sites is used."""
    if dim == 3:
        cells = math.ceil((n / 4) ** (1 / 3))
        basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    else:
        cells = math.ceil(n ** 0.5)
        basis = np.zeros((1, 2))
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * dim, indexing="ij"), axis=-1).reshape(-1, dim)
    sites = (grid[:, None, :] + basis[None]).reshape(-1, dim) + 0.25
    return sites[:n] * (box / cells)


def maxwell_boltzmann_velocities(n: int, dim: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, dim)`` velocities [length/time] of unit-mass particles drawn from ``rng`` at ``temperature``
    [energy] (k_B = 1), with zero total momentum and rescaled to exactly that kinetic temperature."""
    velocities = rng.normal(scale=math.sqrt(temperature), size=(n, dim))
    velocities -= velocities.mean(axis=0)
    velocities *= math.sqrt(temperature * dim * n / np.sum(velocities**2))
    return velocities


def lj_fluid(
    n: int = 500,
    *,
    density: float = 0.8,
    temperature: float = 1.0,
    cutoff: float = 2.5,
    dim: int = 3,
    seed: int = 0,
    device=None,
    precision: str = "float64",
    requires_grad: bool = False,
):
    """A Lennard-Jones fluid of ``n`` unit particles at number ``density`` [1/sigma^dim] in a periodic
    box, on a lattice, with Maxwell-Boltzmann velocities at ``temperature`` (zero total momentum)."""
    box = (n / density) ** (1.0 / dim)
    velocities = maxwell_boltzmann_velocities(n, dim, temperature, np.random.default_rng(seed))
    builder = md.ParticleBuilder(dim=dim, box=box)
    builder.add_particles(lattice_positions(n, box, dim), velocities=velocities)
    model = builder.finalize(md.LennardJones(cutoff=cutoff), device=device, precision=precision, requires_grad=requires_grad)
    return model, model.state()


def packing_box_side_for_diameters(diameters, packing_fraction: float = 0.98) -> float:
    """Side [length] of the square holding disks of the given ``(N,)`` diameters at ``packing_fraction``:
    ``L = sqrt(sum_i pi d_i^2 / 4 / phi)``."""
    d = np.asarray(diameters, dtype=np.float64)
    return math.sqrt(float(np.sum(np.pi * d * d / 4.0)) / packing_fraction)


def packing_box_side_gradient(diameters, packing_fraction: float = 0.98) -> np.ndarray:
    """``(N,)`` derivatives dL/dd_i [-] of :func:`packing_box_side_for_diameters`: ``pi d_i / (4 phi L)``."""
    d = np.asarray(diameters, dtype=np.float64)
    return np.pi * d / (4.0 * packing_fraction * packing_box_side_for_diameters(d, packing_fraction))


def bidisperse_diameters(n: int, small_diameter: float) -> np.ndarray:
    """``(n,)`` diameters: n/2 of 1 (the first half), then n/2 of ``small_diameter``."""
    if n < 2 or n % 2:
        raise ParameterError(f"n must be an even number >= 2, got {n!r}")
    return np.concatenate([np.ones(n // 2), np.full(n // 2, float(small_diameter))])


def packing_box_side(n: int, small_diameter: float, packing_fraction: float = 0.98) -> float:
    """Side [length] of the square holding n/2 disks of diameter 1 and n/2 of ``small_diameter``
    at ``packing_fraction``: ``sqrt((n/2) pi (D^2 + 1) / 4 / phi)``."""
    return packing_box_side_for_diameters(bidisperse_diameters(n, small_diameter), packing_fraction)


def packing_box_side_derivative(n: int, small_diameter: float, packing_fraction: float = 0.98) -> float:
    """d(side)/d(small_diameter) of :func:`packing_box_side`: ``L D / (D^2 + 1)``."""
    return float(np.sum(packing_box_side_gradient(bidisperse_diameters(n, small_diameter), packing_fraction)[n // 2 :]))


def soft_sphere_packing(
    diameters,
    *,
    packing_fraction: float = 0.98,
    seed: int = 0,
    device=None,
    precision: str = "float64",
    requires_grad: bool = False,
):
    """2D soft-sphere packing of disks with the given ``(N,)`` diameters [length] (soft sphere eps = 1,
    alpha = 2, sigma_ij = (d_i + d_j)/2), uniform random positions in a periodic square of side
    :func:`packing_box_side_for_diameters`. One particle type: the diameters alone set the pair lengths."""
    diameters = np.asarray(diameters, dtype=np.float64)
    box = packing_box_side_for_diameters(diameters, packing_fraction)
    positions = np.random.default_rng(seed).uniform(0.0, box, size=(diameters.shape[0], 2))
    builder = md.ParticleBuilder(dim=2, box=box)
    builder.add_particles(positions, diameter=diameters)
    potential = md.SoftSphere(epsilon=1.0, alpha=2.0, sigma_from_diameters=True)
    model = builder.finalize(potential, device=device, precision=precision, requires_grad=requires_grad)
    return model, model.state()


def bidisperse_packing(
    n: int = 128,
    *,
    small_diameter: float = 0.6,
    packing_fraction: float = 0.98,
    seed: int = 0,
    device=None,
    precision: str = "float64",
    requires_grad: bool = False,
):
    """2D bidisperse soft-sphere packing (the MD experiment of Metz et al. 2021, after jax-md):
    n/2 disks of diameter 1 (the first half) and n/2 of ``small_diameter`` (see
    :func:`soft_sphere_packing`)."""
    return soft_sphere_packing(bidisperse_diameters(n, small_diameter), packing_fraction=packing_fraction, seed=seed, device=device,
                               precision=precision, requires_grad=requires_grad)
