"""Molecular-dynamics kernels: pair forces, integrators (velocity Verlet, Langevin BAOAB, FIRE)
and observables. Differentiable unless marked ``enable_backward=False``.

Conventions (shared with ``simulator.md``):

* Positions, velocities and forces are ``vec3`` arrays of shape ``(N,)``; a 2D system keeps
  ``z = 0`` (its forces and noise have no z component) and its box has an unused z side.
* ``box`` is a ``(1,)`` array holding the sides of the orthorhombic box; ``periodic`` is 0 or 1.
* Pairs come from a half neighbor list (each pair once: ``neighbor_index[i, k] = j`` for ``k <
  neighbor_count[i]``) or, with ``all_pairs = 1``, from every ``j > i``.
* Pair parameters are ``(T, T)`` matrices of which only the upper triangle ``[min(a, b),
  max(a, b)]`` is read, so a gradient lands on exactly one entry per type pair.
* Accumulated outputs (forces, per-particle energy and virial) must be zero before a launch.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .md_neighbors import neighbor_kernels
from .md_potentials import potential_functions

NO_DIVERGENCE = wp.constant(2147483647)


@functools.cache
def md_kernels(scalar):
    """Build the molecular-dynamics kernels for one scalar type (``wp.float32`` or ``wp.float64``)."""
    vec3 = wp.types.vector(3, scalar)
    pot = potential_functions(scalar)
    min_image = neighbor_kernels(scalar).min_image
    inverse = neighbor_kernels(scalar).inverse

    @wp.func
    def wrap(x: vec3, box: vec3, periodic: int):
        """Fold a position into [0, box) on every axis of a periodic box."""
        if periodic == 0:
            return x
        return x - wp.cw_mul(box, vec3(wp.floor(x[0] / box[0]), wp.floor(x[1] / box[1]), wp.floor(x[2] / box[2])))

    def make_pair_forces(energy_force, differentiable):
        """The pair-force kernel of one potential (``energy_force`` from ``potential_functions``),
        specialised at build time (a branch on the kind inside the pair loop cost ~2x).
        ``differentiable=False`` gives a forward-only kernel that sums particle i's force in a
        register (Warp cannot differentiate a value mutated in a dynamic loop); it is for outputs
        without gradients."""

        @wp.kernel(enable_backward=differentiable)
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
            # State out (accumulated):
            forces: wp.array(dtype=vec3),
            energy: wp.array(dtype=scalar),
            virial: wp.array(dtype=scalar),
        ):
            """Forces [energy/length]; with ``compute_energy``, per-particle energy (each pair
            counted once, on the particle that lists it) and virial ``r_ij . f_ij`` [energy]."""
            i = wp.tid()
            n_particles = positions.shape[0]
            xi = positions[i]
            ti = particle_type[i]
            di = particle_diameter[i]
            b = box[0]
            inv_b = inverse(b)
            rc2 = cutoff * cutoff
            count = n_particles - 1 - i
            if all_pairs == 0:
                count = wp.min(neighbor_count[i], neighbor_index.shape[1])  # an overflowed list is redone on the host
            force_i = vec3()
            for k in range(count):
                j = i + 1 + k
                if all_pairs == 0:
                    j = neighbor_index[i, k]
                d = min_image(xi - positions[j], b, inv_b, periodic)
                r2 = wp.dot(d, d)
                # branch-free: listed pairs beyond the cutoff get a zero weight (no mispredictions)
                inside = r2 < rc2
                tj = particle_type[j]
                ta = wp.min(ti, tj)
                tb = wp.max(ti, tj)
                sig = pair_sigma[ta, tb]
                if sigma_from_diameter != 0:
                    sig = scalar(0.5) * (di + particle_diameter[j])
                u, f_over_r = energy_force(wp.min(r2, rc2), pair_epsilon[ta, tb], sig, pair_alpha[ta, tb], cutoff)
                f_over_r = wp.where(inside, f_over_r, scalar(0.0))
                f = f_over_r * d
                if wp.static(differentiable):
                    wp.atomic_add(forces, i, f)
                else:
                    force_i += f
                wp.atomic_sub(forces, j, f)
                if compute_energy != 0:
                    wp.atomic_add(energy, i, wp.where(inside, u, scalar(0.0)))
                    wp.atomic_add(virial, i, f_over_r * r2)
            if wp.static(not differentiable):
                wp.atomic_add(forces, i, force_i)

        return pair_forces

    pair_forces = {kind: make_pair_forces(fn, True) for kind, fn in pot.energy_force.items()}
    pair_forces_no_grad = {kind: make_pair_forces(fn, False) for kind, fn in pot.energy_force_no_grad.items()}

    @wp.kernel
    def verlet_drift(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        box: wp.array(dtype=vec3),
        periodic: int,
        dt: scalar,
        # State in:
        positions_in: wp.array(dtype=vec3),
        velocities_in: wp.array(dtype=vec3),
        forces_in: wp.array(dtype=vec3),
        # State out:
        half_velocities_out: wp.array(dtype=vec3),
        positions_out: wp.array(dtype=vec3),
    ):
        """Half kick then drift: v' = v + F dt / 2m, x' = x + v' dt (wrapped into the box)."""
        i = wp.tid()
        v = velocities_in[i] + forces_in[i] * (scalar(0.5) * dt / particle_mass[i])
        half_velocities_out[i] = v
        positions_out[i] = wrap(positions_in[i] + v * dt, box[0], periodic)

    @wp.kernel
    def verlet_kick(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        dt: scalar,
        # State in:
        half_velocities: wp.array(dtype=vec3),
        forces: wp.array(dtype=vec3),
        # State out:
        velocities_out: wp.array(dtype=vec3),
    ):
        """Second half kick: v = v' + F(x') dt / 2m."""
        i = wp.tid()
        velocities_out[i] = half_velocities[i] + forces[i] * (scalar(0.5) * dt / particle_mass[i])

    @wp.kernel
    def baoab_drift(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        box: wp.array(dtype=vec3),
        periodic: int,
        dim: int,
        dt: scalar,
        friction_decay: scalar,
        kT: scalar,
        seed: int,
        # State in:
        positions_in: wp.array(dtype=vec3),
        velocities_in: wp.array(dtype=vec3),
        forces_in: wp.array(dtype=vec3),
        # State out:
        half_velocities_out: wp.array(dtype=vec3),
        positions_out: wp.array(dtype=vec3),
    ):
        """B A O A of BAOAB: half kick, half drift, Ornstein-Uhlenbeck with ``c1 = exp(-gamma dt)``,
        half drift. The noise depends only on (seed, particle), so a replay draws the same numbers."""
        i = wp.tid()
        m = particle_mass[i]
        v = velocities_in[i] + forces_in[i] * (scalar(0.5) * dt / m)
        x = positions_in[i] + v * (scalar(0.5) * dt)
        rng = wp.rand_init(seed, i)
        gx = scalar(wp.randn(rng))
        gy = scalar(wp.randn(rng))
        gz = scalar(wp.randn(rng))
        if dim < 3:
            gz = scalar(0.0)
        c2 = wp.sqrt(wp.max(scalar(1.0) - friction_decay * friction_decay, scalar(0.0)))
        v = friction_decay * v + (c2 * wp.sqrt(kT / m)) * vec3(gx, gy, gz)
        x = x + v * (scalar(0.5) * dt)
        half_velocities_out[i] = v
        positions_out[i] = wrap(x, box[0], periodic)

    @wp.kernel
    def fire_drift(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        box: wp.array(dtype=vec3),
        periodic: int,
        # State in:
        fire_dt: wp.array(dtype=scalar),
        positions_in: wp.array(dtype=vec3),
        velocities_in: wp.array(dtype=vec3),
        forces_in: wp.array(dtype=vec3),
        # State out:
        half_velocities_out: wp.array(dtype=vec3),
        positions_out: wp.array(dtype=vec3),
    ):
        """Velocity-Verlet half kick and drift with the adaptive FIRE time step ``fire_dt[0]``."""
        i = wp.tid()
        dt = fire_dt[0]
        v = velocities_in[i] + forces_in[i] * (scalar(0.5) * dt / particle_mass[i])
        half_velocities_out[i] = v
        positions_out[i] = wrap(positions_in[i] + v * dt, box[0], periodic)

    @wp.kernel
    def fire_kick(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        # State in:
        fire_dt: wp.array(dtype=scalar),
        half_velocities: wp.array(dtype=vec3),
        forces: wp.array(dtype=vec3),
        # State out:
        md_velocities_out: wp.array(dtype=vec3),
        sums_out: wp.array(dtype=scalar),
    ):
        """Second half kick; accumulates ``sums = (F.v, |F|^2, |v|^2)`` over all particles."""
        i = wp.tid()
        f = forces[i]
        v = half_velocities[i] + f * (scalar(0.5) * fire_dt[0] / particle_mass[i])
        md_velocities_out[i] = v
        wp.atomic_add(sums_out, 0, wp.dot(f, v))
        wp.atomic_add(sums_out, 1, wp.dot(f, f))
        wp.atomic_add(sums_out, 2, wp.dot(v, v))

    @wp.kernel
    def fire_mix(
        # FIRE parameters:
        dt_max: scalar,
        n_min: int,
        f_inc: scalar,
        f_dec: scalar,
        alpha_start: scalar,
        f_alpha: scalar,
        force_norm_eps: scalar,
        # State in:
        sums: wp.array(dtype=scalar),
        fire_dt_in: wp.array(dtype=scalar),
        fire_alpha_in: wp.array(dtype=scalar),
        fire_count_in: wp.array(dtype=int),
        md_velocities: wp.array(dtype=vec3),
        forces: wp.array(dtype=vec3),
        # State out:
        velocities_out: wp.array(dtype=vec3),
        fire_dt_out: wp.array(dtype=scalar),
        fire_alpha_out: wp.array(dtype=scalar),
        fire_count_out: wp.array(dtype=int),
    ):
        """FIRE (Bitzek et al. 2006): v <- (1 - a) v + a |v| F / |F|; while F.v > 0 for more than
        ``n_min`` steps, dt <- min(dt f_inc, dt_max) and a <- a f_alpha; when F.v < 0, v <- 0,
        dt <- dt f_dec, a <- alpha_start."""
        i = wp.tid()
        power = sums[0]
        f_norm = wp.sqrt(sums[1] + force_norm_eps)
        v_norm = wp.sqrt(sums[2] + scalar(1.0e-30))
        alpha = fire_alpha_in[0]
        v = md_velocities[i]
        v = v + alpha * (forces[i] * (v_norm / f_norm) - v)
        if power < scalar(0.0):
            v = vec3(scalar(0.0), scalar(0.0), scalar(0.0))
        velocities_out[i] = v
        if i == 0:
            dt = fire_dt_in[0]
            count = fire_count_in[0]
            if power >= scalar(0.0):
                count = count + 1
            else:
                count = 0
            if power > scalar(0.0):
                if count > n_min:
                    dt = wp.min(dt * f_inc, dt_max)
                    alpha = alpha * f_alpha
            if power < scalar(0.0):
                dt = dt * f_dec
                alpha = alpha_start
            fire_dt_out[0] = dt
            fire_alpha_out[0] = alpha
            fire_count_out[0] = count

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
        step: int,
        first_bad_step: wp.array(dtype=int),
    ):
        i = wp.tid()
        if not (wp.isfinite(positions[i]) and wp.isfinite(velocities[i])):
            wp.atomic_min(first_bad_step, 0, step)

    return SimpleNamespace(
        pair_forces=pair_forces,  # by potential kind
        pair_forces_no_grad=pair_forces_no_grad,
        verlet_drift=verlet_drift,
        verlet_kick=verlet_kick,
        baoab_drift=baoab_drift,
        fire_drift=fire_drift,
        fire_kick=fire_kick,
        fire_mix=fire_mix,
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
        md_kernels(scalar)


build_all()
