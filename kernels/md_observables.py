"""Molecular-dynamics observables and helpers (conventions: ``kernels.md``): kinetic energy,
sums, pressure, positions from fractional coordinates, the pair-distance histogram, and the
divergence watch's first non-finite step.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .md_neighbors import neighbor_kernels


@functools.cache
def md_observable_kernels(scalar):
    """Build the observable kernels for one scalar type."""
    vec3 = wp.types.vector(3, scalar)
    min_image = neighbor_kernels(scalar).min_image
    inverse = neighbor_kernels(scalar).inverse

    @wp.kernel
    def kinetic_energy(
        particle_mass: wp.array(dtype=scalar),
        velocities: wp.array(dtype=vec3),
        scale: scalar,
        out: wp.array(dtype=scalar),
    ):
        """out[0] += scale * sum_i m_i |v_i|^2 / 2 (scale 1: the kinetic energy [energy])."""
        i = wp.tid()
        v = velocities[i]
        wp.atomic_add(out, 0, scale * scalar(0.5) * particle_mass[i] * wp.dot(v, v))

    @wp.kernel
    def sum_values(values: wp.array(dtype=scalar), out: wp.array(dtype=scalar)):
        i = wp.tid()
        wp.atomic_add(out, 0, values[i])

    @wp.kernel
    def pressure_from_sums(
        dim: int,
        box: wp.array(dtype=vec3),
        kinetic: wp.array(dtype=scalar),
        virial: wp.array(dtype=scalar),
        out: wp.array(dtype=scalar),
    ):
        """P = (2 K + sum_pairs r_ij . f_ij) / (dim V), V the box area (2D) or volume (3D)."""
        b = box[0]
        volume = b[0] * b[1]
        if dim == 3:
            volume = volume * b[2]
        out[0] = (scalar(2.0) * kinetic[0] + virial[0]) / (scalar(dim) * volume)

    @wp.kernel
    def scale_positions(box: wp.array(dtype=vec3), fractional: wp.array(dtype=vec3), positions_out: wp.array(dtype=vec3)):
        """positions = fractional * box (per axis): ties positions to a differentiable box."""
        i = wp.tid()
        positions_out[i] = wp.cw_mul(fractional[i], box[0])

    @wp.kernel(enable_backward=False)
    def pair_histogram(
        box: wp.array(dtype=vec3),
        periodic: int,
        r_max: scalar,
        bin_width: scalar,
        positions: wp.array(dtype=vec3),
        counts: wp.array(dtype=int),
    ):
        """Count every pair j > i with distance below ``r_max`` into bins of ``bin_width``."""
        i = wp.tid()
        n = positions.shape[0]
        xi = positions[i]
        b = box[0]
        inv_b = inverse(b)
        nbins = counts.shape[0]
        for j in range(i + 1, n):
            d = min_image(xi - positions[j], b, inv_b, periodic)
            r = wp.sqrt(wp.dot(d, d))
            if r < r_max:
                k = wp.min(int(r / bin_width), nbins - 1)
                wp.atomic_add(counts, k, 1)

    @wp.kernel(enable_backward=False)
    def record_first_nonfinite(
        positions: wp.array(dtype=vec3),
        velocities: wp.array(dtype=vec3),
        # Step index: step_base[0] + step (a device counter lets a captured graph be replayed)
        step_base: wp.array(dtype=int),
        step: int,
        first_bad_step: wp.array(dtype=int),
    ):
        i = wp.tid()
        if not (wp.isfinite(positions[i]) and wp.isfinite(velocities[i])):
            wp.atomic_min(first_bad_step, 0, step_base[0] + step)

    return SimpleNamespace(
        kinetic_energy=kinetic_energy,
        sum_values=sum_values,
        pressure_from_sums=pressure_from_sums,
        scale_positions=scale_positions,
        pair_histogram=pair_histogram,
        record_first_nonfinite=record_first_nonfinite,
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        md_observable_kernels(scalar)


build_all()
