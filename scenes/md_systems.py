"""Ready-made particle systems: a Lennard-Jones fluid and the bidisperse soft-sphere packing.

Each function returns ``(model, state)``; nothing here steps a simulation.
"""

from __future__ import annotations

import math

import numpy as np

from simulator import md


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
    rng = np.random.default_rng(seed)
    velocities = rng.normal(scale=math.sqrt(temperature), size=(n, dim))
    velocities -= velocities.mean(axis=0)
    velocities *= math.sqrt(temperature * dim * n / np.sum(velocities**2))
    builder = md.ParticleBuilder(dim=dim, box=box)
    builder.add_particles(lattice_positions(n, box, dim), velocities=velocities)
    model = builder.finalize(md.LennardJones(cutoff=cutoff), device=device, precision=precision, requires_grad=requires_grad)
    return model, model.state()


def packing_box_side(n: int, small_diameter: float, packing_fraction: float = 0.98) -> float:
    """Side [length] of the square holding n/2 disks of diameter 1 and n/2 of ``small_diameter``
    at ``packing_fraction``: ``sqrt((n/2) pi (D^2 + 1) / 4 / phi)``."""
    return math.sqrt((n / 2) * math.pi * (small_diameter**2 + 1.0) / 4.0 / packing_fraction)


def packing_box_side_derivative(n: int, small_diameter: float, packing_fraction: float = 0.98) -> float:
    """d(side)/d(small_diameter) of :func:`packing_box_side`: ``L D / (D^2 + 1)``."""
    return packing_box_side(n, small_diameter, packing_fraction) * small_diameter / (small_diameter**2 + 1.0)


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
    n/2 disks of diameter 1 (the first half) and n/2 of ``small_diameter``, soft sphere eps = 1,
    alpha = 2, sigma_ij = (d_i + d_j)/2, uniform random positions in a periodic square. One
    particle type: the diameters alone set the pair lengths."""
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2, got {n!r}")
    box = packing_box_side(n, small_diameter, packing_fraction)
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, box, size=(n, 2))
    builder = md.ParticleBuilder(dim=2, box=box)
    builder.add_particles(positions[: n // 2], diameter=1.0)
    builder.add_particles(positions[n // 2 :], diameter=small_diameter)
    potential = md.SoftSphere(epsilon=1.0, alpha=2.0, sigma_from_diameters=True)
    model = builder.finalize(potential, device=device, precision=precision, requires_grad=requires_grad)
    return model, model.state()
