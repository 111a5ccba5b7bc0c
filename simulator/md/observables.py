"""Observables: potential and kinetic energy, temperature, pressure, radial distribution function.

Scalar observables return a ``(1,)`` ``wp.array`` in the model's precision, computed by
recorded kernels, so a surrounding ``wp.Tape`` can differentiate them (``tape.backward(loss=e)``).
Read the value with ``float(e.numpy()[0])``. Units are reduced LJ units with k_B = 1.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from ..errors import ParameterError
from ..kernels.md import md_kernels
from .potentials import compute_forces


def _scalar(model, requires_grad=None):
    grad = model.requires_grad if requires_grad is None else requires_grad
    return wp.zeros(1, dtype=model.precision.scalar, device=model.device, requires_grad=grad)


def _per_particle(model):
    return wp.zeros(model.particle_count, dtype=model.precision.scalar, device=model.device, requires_grad=model.requires_grad)


def _pair_sums(model, state, neighbors):
    energy, virial = _per_particle(model), _per_particle(model)
    forces = wp.zeros(model.particle_count, dtype=model.precision.vec3, device=model.device, requires_grad=model.requires_grad)
    compute_forces(model, state.positions, forces, neighbors, energy_out=energy, virial_out=virial)
    return energy, virial


def _total(model, values):
    out = _scalar(model)
    wp.launch(md_kernels(model.precision.scalar).sum_values, dim=values.shape[0], inputs=[values], outputs=[out], device=model.device)
    return out


def potential_energy(model, state, neighbors=None) -> wp.array:
    """Total pair potential energy [energy], ``(1,)``. ``neighbors`` as in :func:`compute_forces`."""
    energy, _ = _pair_sums(model, state, neighbors)
    return _total(model, energy)


def kinetic_energy(model, state) -> wp.array:
    """Total kinetic energy ``sum m |v|^2 / 2`` [energy], ``(1,)``."""
    out = _scalar(model)
    k = md_kernels(model.precision.scalar)
    s = model.precision.scalar
    wp.launch(k.kinetic_energy, dim=model.particle_count, inputs=[model.particle_mass, state.velocities, s(1.0)],
              outputs=[out], device=model.device)
    return out


def temperature(model, state) -> wp.array:
    """Kinetic temperature ``2 K / (dim N)`` [energy] (k_B = 1; no degrees of freedom removed), ``(1,)``."""
    out = _scalar(model)
    k = md_kernels(model.precision.scalar)
    scale = model.precision.scalar(2.0 / (model.dim * model.particle_count))
    wp.launch(k.kinetic_energy, dim=model.particle_count, inputs=[model.particle_mass, state.velocities, scale],
              outputs=[out], device=model.device)
    return out


def pressure(model, state, neighbors=None) -> wp.array:
    """Virial pressure ``(2 K + sum_pairs r_ij . f_ij) / (dim V)`` [energy/length^dim], ``(1,)``.

    Meaningful in a periodic box (V is the box area in 2D, volume in 3D)."""
    _, virial = _pair_sums(model, state, neighbors)
    w = _total(model, virial)
    kin = kinetic_energy(model, state)
    out = _scalar(model)
    wp.launch(md_kernels(model.precision.scalar).pressure_from_sums, dim=1, inputs=[model.dim, model.box, kin, w],
              outputs=[out], device=model.device)
    return out


def radial_distribution(model, state, *, r_max: float | None = None, bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r) of all pairs, normalised by the ideal-gas pair count.

    Returns ``(r, g)``: bin centres [length] and g [-], both ``(bins,)``. ``r_max`` defaults to
    half the smallest box side, its largest value in a periodic box. Not differentiable (a histogram). O(N^2).
    """
    if r_max is None:
        r_max = 0.5 * float(np.min(model.box_sides()))
    if not (r_max > 0 and np.isfinite(r_max)):
        raise ParameterError(f"r_max must be > 0, got {r_max!r}")
    half_box = 0.5 * float(np.min(model.box_sides()))
    if model.periodic and r_max > half_box * (1.0 + 1e-12):
        raise ParameterError(f"r_max must be <= half the smallest periodic box side ({half_box:.6g}; the minimum image "
                             f"counts each pair once only up to there), got {r_max!r}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ParameterError(f"bins must be a positive integer, got {bins!r}")
    counts = wp.zeros(int(bins), dtype=wp.int32, device=model.device)
    s = model.precision.scalar
    width = r_max / bins
    wp.launch(md_kernels(s).pair_histogram, dim=model.particle_count,
              inputs=[model.box, int(model.periodic), s(r_max), s(width), state.positions], outputs=[counts],
              device=model.device, record_tape=False)
    edges = np.linspace(0.0, r_max, bins + 1)
    if model.dim == 3:
        shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    else:
        shell = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    n = model.particle_count
    ideal = 0.5 * n * (n - 1) / model.volume() * shell
    return 0.5 * (edges[1:] + edges[:-1]), counts.numpy().astype(np.float64) / ideal


def positions_from_fractional(model, fractional) -> wp.array:
    """Positions ``fractional * box`` [length], ``(N,)``, recorded so that gradients reach ``model.box``.

    ``fractional`` is an ``(N,)`` ``vec3`` array or an ``(N, dim)`` array of values in [0, 1).
    """
    p = model.precision
    if not isinstance(fractional, wp.array):
        frac = np.zeros((model.particle_count, 3))
        frac[:, : model.dim] = np.asarray(fractional, dtype=np.float64)
        fractional = wp.array(frac.astype(p.numpy), dtype=p.vec3, device=model.device)
    out = wp.zeros(model.particle_count, dtype=p.vec3, device=model.device, requires_grad=model.requires_grad)
    wp.launch(md_kernels(p.scalar).scale_positions, dim=model.particle_count, inputs=[model.box, fractional],
              outputs=[out], device=model.device)
    return out
