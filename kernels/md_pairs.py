"""Molecular-dynamics pair forces and their hand-written adjoint (conventions: ``kernels.md``).

One pair-force kernel per (potential kind, single type, fixed sigma), each with an adjoint that
``simulator.md.compute_forces`` records on the tape; ``PairAdjoint`` bits say which adjoints the
adjoint kernel reads and accumulates.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .constants import PairAdjoint, PotentialKind
from .md_neighbors import neighbor_kernels
from .md_potentials import potential_functions


@functools.cache
def md_pair_kernels(scalar):
    """Build the pair-force kernels and their adjoints for one scalar type."""
    vec3 = wp.types.vector(3, scalar)
    pot = potential_functions(scalar)
    min_image = neighbor_kernels(scalar).min_image
    inverse = neighbor_kernels(scalar).inverse

    def make_pair_kernels(energy_force, vjp, cut, single_type, fixed_sigma):
        """The pair-force kernel of one potential and its hand-written adjoint, specialised at build
        time (a branch on the kind inside the pair loop cost ~2x). Warp's generated adjoint of the
        pair loop cost 3.5-5x the forward; the VJP functions of ``potential_functions`` give the
        partial derivatives directly. ``cut``: zero the pairs beyond ``cutoff`` (the soft sphere
        vanishes beyond sigma by itself); ``single_type``: one type, so no per-pair type lookup;
        ``fixed_sigma``: one type and sigma not from the diameters, so every pair parameter is
        the same and the compiler hoists the potential's cutoff terms out of the pair loop (a
        runtime branch on ``sigma_from_diameter`` cost 18% of the LJ pair loop)."""

        @wp.func
        def partner_count(i: int, all_pairs: int, n_particles: int, neighbor_count: wp.array(dtype=int),
                          neighbor_index: wp.array2d(dtype=int)):
            """How many partners particle i has: its list entries (an overflowed list is redone on
            the host), or every j > i."""
            if all_pairs == 0:
                return wp.min(neighbor_count[i], neighbor_index.shape[1])
            return n_particles - 1 - i

        @wp.func
        def partner(i: int, k: int, all_pairs: int, neighbor_index: wp.array2d(dtype=int)):
            """Particle i's k-th partner."""
            if all_pairs == 0:
                return neighbor_index[i, k]
            return i + 1 + k

        @wp.func
        def first_type_parameters(pair_epsilon: wp.array2d(dtype=scalar), pair_sigma: wp.array2d(dtype=scalar),
                                  pair_alpha: wp.array2d(dtype=scalar)):
            """(epsilon, sigma, alpha) of the type pair (0, 0): with one type, those of every pair,
            read once per thread instead of once per pair."""
            return vec3(pair_epsilon[0, 0], pair_sigma[0, 0], pair_alpha[0, 0])

        @wp.func
        def pair_parameters(ti: int, di: scalar, j: int, own: vec3, particle_type: wp.array(dtype=int),
                            particle_diameter: wp.array(dtype=scalar), pair_epsilon: wp.array2d(dtype=scalar),
                            pair_sigma: wp.array2d(dtype=scalar), pair_alpha: wp.array2d(dtype=scalar), sigma_from_diameter: int):
            """The type pair (upper triangle) and epsilon, sigma, alpha of particles i and j
            (``own``: :func:`first_type_parameters`, every pair's with one type)."""
            ta = ti
            tb = ti
            eps = own[0]
            sig = own[1]
            alpha = own[2]
            if wp.static(not single_type):
                tj = particle_type[j]
                ta = wp.min(ti, tj)
                tb = wp.max(ti, tj)
                eps = pair_epsilon[ta, tb]
                sig = pair_sigma[ta, tb]
                alpha = pair_alpha[ta, tb]
            if wp.static(not fixed_sigma):
                if sigma_from_diameter != 0:
                    sig = scalar(0.5) * (di + particle_diameter[j])
            return ta, tb, eps, sig, alpha

        @wp.kernel(enable_backward=False)
        def pair_forces(
            # Model:
            particle_type: wp.array(dtype=int),
            particle_diameter: wp.array(dtype=scalar),
            pair_epsilon: wp.array2d(dtype=scalar),
            pair_sigma: wp.array2d(dtype=scalar),
            pair_alpha: wp.array2d(dtype=scalar),
            sigma_from_diameter: int,
            cutoff: scalar,
            box: wp.array(dtype=vec3),
            periodic: int,
            # Neighbors:
            all_pairs: int,
            neighbor_count: wp.array(dtype=int),
            neighbor_index: wp.array2d(dtype=int),
            # State in:
            positions: wp.array(dtype=vec3),
            compute_energy: int,
            chunk: int,
            # State out (accumulated):
            forces: wp.array(dtype=vec3),
            energy: wp.array(dtype=scalar),
            virial: wp.array(dtype=scalar),
        ):
            """Forces [energy/length]; with ``compute_energy``, per-particle energy (each pair
            counted once, on the particle that lists it) and virial ``r_ij . f_ij`` [energy]."""
            t = wp.tid()
            n_particles = positions.shape[0]
            b = box[0]
            inv_b = inverse(b)
            rc2 = cutoff * cutoff
            own = first_type_parameters(pair_epsilon, pair_sigma, pair_alpha)
            # a chunk of particles per thread (the whole system on the CPU): the setup above once per chunk
            for i in range(t * chunk, wp.min(n_particles, (t + 1) * chunk)):
                xi = positions[i]
                ti = particle_type[i]
                di = particle_diameter[i]
                force_i = vec3()
                for k in range(partner_count(i, all_pairs, n_particles, neighbor_count, neighbor_index)):
                    j = partner(i, k, all_pairs, neighbor_index)
                    d = min_image(xi - positions[j], b, inv_b, periodic)
                    r2 = wp.dot(d, d)
                    ta, tb, eps, sig, alpha = pair_parameters(ti, di, j, own, particle_type, particle_diameter, pair_epsilon, pair_sigma,
                                                              pair_alpha, sigma_from_diameter)
                    u = scalar(0.0)
                    f_over_r = scalar(0.0)
                    if wp.static(cut):
                        # branch-free: listed pairs beyond the cutoff get a zero weight (no mispredictions)
                        inside = r2 < rc2
                        u, f_over_r = energy_force(wp.min(r2, rc2), eps, sig, alpha, cutoff)
                        u = wp.where(inside, u, scalar(0.0))
                        f_over_r = wp.where(inside, f_over_r, scalar(0.0))
                    else:
                        u, f_over_r = energy_force(r2, eps, sig, alpha, cutoff)
                    f = f_over_r * d
                    force_i += f
                    wp.atomic_sub(forces, j, f)
                    if compute_energy != 0:
                        wp.atomic_add(energy, i, u)
                        wp.atomic_add(virial, i, f_over_r * r2)
                wp.atomic_add(forces, i, force_i)

        @wp.kernel(enable_backward=False)
        def pair_forces_adjoint(
            # The inputs of pair_forces:
            particle_type: wp.array(dtype=int),
            particle_diameter: wp.array(dtype=scalar),
            pair_epsilon: wp.array2d(dtype=scalar),
            pair_sigma: wp.array2d(dtype=scalar),
            pair_alpha: wp.array2d(dtype=scalar),
            sigma_from_diameter: int,
            cutoff: scalar,
            box: wp.array(dtype=vec3),
            periodic: int,
            all_pairs: int,
            neighbor_count: wp.array(dtype=int),
            neighbor_index: wp.array2d(dtype=int),
            positions: wp.array(dtype=vec3),
            compute_energy: int,
            chunk: int,
            # Adjoints of its outputs (read only where ``wanted`` has ADJ_FORCES / ADJ_ENERGY / ADJ_VIRIAL):
            adj_forces: wp.array(dtype=vec3),
            adj_energy: wp.array(dtype=scalar),
            adj_virial: wp.array(dtype=scalar),
            wanted: int,
            # Adjoints of its inputs (accumulated; written only where ``wanted`` has the GRAD_* bit):
            adj_positions: wp.array(dtype=vec3),
            adj_particle_diameter: wp.array(dtype=scalar),
            adj_pair_epsilon: wp.array2d(dtype=scalar),
            adj_pair_sigma: wp.array2d(dtype=scalar),
            adj_pair_alpha: wp.array2d(dtype=scalar),
            adj_box: wp.array(dtype=vec3),
        ):
            """Reverse of pair_forces. Per listed pair inside the cutoff, with f = g d and
            d = x_i - x_j - box * n (n the integer image shift): adj_g = adj_f . d + adj_virial r^2,
            adj_d = g adj_f + 2 adj_r2 d (adj_r2 from the potential's VJP plus adj_virial g),
            x_i += adj_d, x_j -= adj_d, box -= adj_d * n."""
            t = wp.tid()
            n_particles = positions.shape[0]
            b = box[0]
            inv_b = inverse(b)
            rc2 = cutoff * cutoff
            own = first_type_parameters(pair_epsilon, pair_sigma, pair_alpha)
            # a chunk of particles per thread (the whole system on the CPU): the setup above once per chunk
            for i in range(t * chunk, wp.min(n_particles, (t + 1) * chunk)):
                xi = positions[i]
                ti = particle_type[i]
                di = particle_diameter[i]
                adj_fi = vec3()
                if (wanted & PairAdjoint.ADJ_FORCES) != 0:
                    adj_fi = adj_forces[i]
                adj_u = scalar(0.0)
                adj_w = scalar(0.0)
                if compute_energy != 0:
                    if (wanted & PairAdjoint.ADJ_ENERGY) != 0:
                        adj_u = adj_energy[i]
                    if (wanted & PairAdjoint.ADJ_VIRIAL) != 0:
                        adj_w = adj_virial[i]
                adj_xi = vec3()
                adj_di = scalar(0.0)
                adj_b = vec3()
                adj_type_pair = vec3()  # single type: (epsilon, sigma, alpha) adjoints of entry [0, 0]
                for k in range(partner_count(i, all_pairs, n_particles, neighbor_count, neighbor_index)):
                    j = partner(i, k, all_pairs, neighbor_index)
                    dx = xi - positions[j]
                    shift = vec3()
                    if periodic != 0:
                        shift = vec3(wp.rint(dx[0] * inv_b[0]), wp.rint(dx[1] * inv_b[1]), wp.rint(dx[2] * inv_b[2]))
                    d = dx - wp.cw_mul(b, shift)  # = min_image(dx)
                    r2 = wp.dot(d, d)
                    within = True
                    if wp.static(cut):
                        within = r2 < rc2
                    if within:
                        ta, tb, eps, sig, alpha = pair_parameters(ti, di, j, own, particle_type, particle_diameter, pair_epsilon,
                                                                  pair_sigma, pair_alpha, sigma_from_diameter)
                        adj_f = adj_fi
                        if (wanted & PairAdjoint.ADJ_FORCES) != 0:
                            adj_f = adj_fi - adj_forces[j]
                        adj_g = wp.dot(adj_f, d) + adj_w * r2
                        g, adj_r2, adj_eps, adj_sig, adj_alpha = vjp(r2, eps, sig, alpha, cutoff, adj_u, adj_g,
                                                                     wanted & PairAdjoint.GRAD_ALPHA)
                        adj_r2 = adj_r2 + adj_w * g
                        adj_d = g * adj_f + scalar(2.0) * adj_r2 * d
                        adj_xi += adj_d
                        if (wanted & PairAdjoint.GRAD_POSITIONS) != 0:
                            wp.atomic_sub(adj_positions, j, adj_d)
                        adj_b -= wp.cw_mul(adj_d, shift)
                        if sigma_from_diameter != 0:
                            adj_di += scalar(0.5) * adj_sig
                            if (wanted & PairAdjoint.GRAD_DIAMETER) != 0:
                                wp.atomic_add(adj_particle_diameter, j, scalar(0.5) * adj_sig)
                            adj_sig = scalar(0.0)
                        if wp.static(single_type):
                            # every pair adds to entry [0, 0]: sum in registers, add once per particle
                            adj_type_pair += vec3(adj_eps, adj_sig, adj_alpha)
                        else:
                            if (wanted & PairAdjoint.GRAD_EPSILON) != 0:
                                wp.atomic_add(adj_pair_epsilon, ta, tb, adj_eps)
                            if (wanted & PairAdjoint.GRAD_ALPHA) != 0:
                                wp.atomic_add(adj_pair_alpha, ta, tb, adj_alpha)
                            if (wanted & PairAdjoint.GRAD_SIGMA) != 0 and sigma_from_diameter == 0:
                                wp.atomic_add(adj_pair_sigma, ta, tb, adj_sig)
                if (wanted & PairAdjoint.GRAD_POSITIONS) != 0:
                    wp.atomic_add(adj_positions, i, adj_xi)
                if wp.static(single_type):
                    if (wanted & PairAdjoint.GRAD_EPSILON) != 0:
                        wp.atomic_add(adj_pair_epsilon, 0, 0, adj_type_pair[0])
                    if (wanted & PairAdjoint.GRAD_SIGMA) != 0 and sigma_from_diameter == 0:
                        wp.atomic_add(adj_pair_sigma, 0, 0, adj_type_pair[1])
                    if (wanted & PairAdjoint.GRAD_ALPHA) != 0:
                        wp.atomic_add(adj_pair_alpha, 0, 0, adj_type_pair[2])
                if (wanted & PairAdjoint.GRAD_DIAMETER) != 0:
                    wp.atomic_add(adj_particle_diameter, i, adj_di)
                if (wanted & PairAdjoint.GRAD_BOX) != 0 and periodic != 0:
                    wp.atomic_add(adj_box, 0, adj_b)

        return pair_forces, pair_forces_adjoint

    pair_kernels = {
        (kind, single_type, fixed_sigma): make_pair_kernels(pot.energy_force[kind], pot.vjp[kind], kind != PotentialKind.SOFT_SPHERE,
                                                            single_type, fixed_sigma)
        for kind in pot.energy_force
        for single_type, fixed_sigma in ((False, False), (True, False), (True, True))
    }
    pair_forces = {key: pair[0] for key, pair in pair_kernels.items()}
    pair_forces_adjoint = {key: pair[1] for key, pair in pair_kernels.items()}

    return SimpleNamespace(
        pair_forces=pair_forces,  # by (potential kind, single type, fixed sigma)
        pair_forces_adjoint=pair_forces_adjoint,  # by (potential kind, single type, fixed sigma)
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        md_pair_kernels(scalar)


build_all()
