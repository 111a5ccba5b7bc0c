"""Molecular-dynamics kernels: pair forces, integrators (velocity Verlet, Langevin BAOAB, FIRE)
and observables. Differentiable unless marked ``enable_backward=False``; the pair-force kernels
have a hand-written adjoint (``pair_forces_adjoint``) that ``simulator.md.compute_forces`` records
on the tape.

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

from .constants import NO_DIVERGENCE, PairAdjoint, PotentialKind  # noqa: F401 (NO_DIVERGENCE re-exported)
from .md_neighbors import neighbor_kernels
from .md_potentials import potential_functions

# the older names of the pair adjoint's ``wanted`` bits (see ``PairAdjoint``), kept importable
ADJ_FORCES = int(PairAdjoint.ADJ_FORCES)
ADJ_ENERGY = int(PairAdjoint.ADJ_ENERGY)
ADJ_VIRIAL = int(PairAdjoint.ADJ_VIRIAL)
GRAD_POSITIONS = int(PairAdjoint.GRAD_POSITIONS)
GRAD_DIAMETER = int(PairAdjoint.GRAD_DIAMETER)
GRAD_EPSILON = int(PairAdjoint.GRAD_EPSILON)
GRAD_SIGMA = int(PairAdjoint.GRAD_SIGMA)
GRAD_ALPHA = int(PairAdjoint.GRAD_ALPHA)
GRAD_BOX = int(PairAdjoint.GRAD_BOX)


@functools.cache
def md_kernels(scalar):
    """Build the molecular-dynamics kernels for one scalar type (``wp.float32`` or ``wp.float64``)."""
    vec3 = wp.types.vector(3, scalar)
    pot = potential_functions(scalar)
    min_image = neighbor_kernels(scalar).min_image
    inverse = neighbor_kernels(scalar).inverse
    wrap = neighbor_kernels(scalar).wrap
    wrap_shift = neighbor_kernels(scalar).wrap_shift

    @wp.func
    def half_kick(v: vec3, f: vec3, m: scalar, dt: scalar):
        """Half a velocity-Verlet kick: v + F dt / 2m [length/time]."""
        return v + f * (scalar(0.5) * dt / m)

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
        v = half_kick(velocities_in[i], forces_in[i], particle_mass[i], dt)
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
        velocities_out[i] = half_kick(half_velocities[i], forces[i], particle_mass[i], dt)

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
        v = half_kick(velocities_in[i], forces_in[i], m, dt)
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
        chunk: int,
        # State out:
        half_velocities_out: wp.array(dtype=vec3),
        positions_out: wp.array(dtype=vec3),
    ):
        """Velocity-Verlet half kick and drift with the adaptive FIRE time step ``fire_dt[0]``."""
        t = wp.tid()
        dt = fire_dt[0]
        b = box[0]
        # a chunk of particles per thread (ParticleModel.thread_layout): the setup above once per chunk
        for i in range(t * chunk, wp.min(positions_in.shape[0], (t + 1) * chunk)):
            v = half_kick(velocities_in[i], forces_in[i], particle_mass[i], dt)
            half_velocities_out[i] = v
            positions_out[i] = wrap(positions_in[i] + v * dt, b, periodic)

    @wp.kernel
    def fire_kick(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        # State in:
        fire_dt: wp.array(dtype=scalar),
        half_velocities: wp.array(dtype=vec3),
        forces: wp.array(dtype=vec3),
        chunk: int,
        # State out:
        md_velocities_out: wp.array(dtype=vec3),
        sums_out: wp.array(dtype=scalar),
    ):
        """Second half kick; accumulates ``sums = (F.v, |F|^2, |v|^2)`` over all particles."""
        t = wp.tid()
        dt = fire_dt[0]
        # a chunk of particles per thread (ParticleModel.thread_layout): the setup above once per chunk
        for i in range(t * chunk, wp.min(forces.shape[0], (t + 1) * chunk)):
            f = forces[i]
            v = half_kick(half_velocities[i], f, particle_mass[i], dt)
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
        chunk: int,
        # State out:
        velocities_out: wp.array(dtype=vec3),
        fire_dt_out: wp.array(dtype=scalar),
        fire_alpha_out: wp.array(dtype=scalar),
        fire_count_out: wp.array(dtype=int),
    ):
        """FIRE (Bitzek et al. 2006): v <- (1 - a) v + a |v| F / |F|; while F.v > 0 for more than
        ``n_min`` steps, dt <- min(dt f_inc, dt_max) and a <- a f_alpha; when F.v < 0, v <- 0,
        dt <- dt f_dec, a <- alpha_start."""
        t = wp.tid()
        power = sums[0]
        f_norm = wp.sqrt(sums[1] + force_norm_eps)
        v_norm = wp.sqrt(sums[2] + scalar(1.0e-30))
        alpha = fire_alpha_in[0]
        ratio = v_norm / f_norm
        # a chunk of particles per thread (ParticleModel.thread_layout): the setup above once per chunk
        for i in range(t * chunk, wp.min(forces.shape[0], (t + 1) * chunk)):
            v = md_velocities[i]
            v = v + alpha * (forces[i] * ratio - v)
            if power < scalar(0.0):
                v = vec3(scalar(0.0), scalar(0.0), scalar(0.0))
            velocities_out[i] = v
        if t == 0:
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
    def fire_drift_adjoint(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        box: wp.array(dtype=vec3),
        periodic: int,
        # State in:
        fire_dt: wp.array(dtype=scalar),
        positions_in: wp.array(dtype=vec3),
        velocities_in: wp.array(dtype=vec3),
        forces_in: wp.array(dtype=vec3),
        chunk: int,
        # Adjoint in (cleared here):
        adj_half_velocities_out: wp.array(dtype=vec3),
        adj_positions_out: wp.array(dtype=vec3),
        # Adjoint out (accumulated):
        adj_particle_mass: wp.array(dtype=scalar),
        adj_box: wp.array(dtype=vec3),
        adj_fire_dt: wp.array(dtype=scalar),
        adj_positions_in: wp.array(dtype=vec3),
        adj_velocities_in: wp.array(dtype=vec3),
        adj_forces_in: wp.array(dtype=vec3),
    ):
        """Adjoint of ``fire_drift``: it takes ``fire_drift``'s inputs, then the adjoints of its
        outputs (cleared here, as Warp's generated adjoints clear stored outputs), and accumulates
        into the adjoints of its floating-point inputs. Sums in the order of Warp's generated
        adjoint (same bits, ~2x faster on the CPU)."""
        t = wp.tid()
        dt = fire_dt[0]
        b = box[0]
        # a chunk of particles per thread, as the forward kernel
        for i in range(t * chunk, wp.min(positions_in.shape[0], (t + 1) * chunk)):
            m = particle_mass[i]
            f = forces_in[i]
            c = scalar(0.5) * dt / m
            v = velocities_in[i] + f * c
            y = positions_in[i] + v * dt
            ay = adj_positions_out[i]
            adj_positions_out[i] = vec3(scalar(0.0))
            if periodic != 0:
                wp.atomic_sub(adj_box, 0, wp.cw_mul(wrap_shift(y, b, periodic), ay))
            av = adj_half_velocities_out[i] + ay * dt
            adj_half_velocities_out[i] = vec3(scalar(0.0))
            adj_positions_in[i] = adj_positions_in[i] + ay
            adj_velocities_in[i] = adj_velocities_in[i] + av
            adj_forces_in[i] = adj_forces_in[i] + av * c
            fv = wp.dot(av, f)
            wp.atomic_add(adj_fire_dt, 0, wp.dot(ay, v) + fv * scalar(0.5) / m)
            adj_particle_mass[i] = adj_particle_mass[i] - fv * c / m

    @wp.kernel
    def fire_kick_adjoint(
        # Model:
        particle_mass: wp.array(dtype=scalar),
        # State in:
        fire_dt: wp.array(dtype=scalar),
        half_velocities: wp.array(dtype=vec3),
        forces: wp.array(dtype=vec3),
        chunk: int,
        # Adjoint in:
        adj_md_velocities_out: wp.array(dtype=vec3),
        adj_sums_out: wp.array(dtype=scalar),
        # Adjoint out (accumulated):
        adj_particle_mass: wp.array(dtype=scalar),
        adj_fire_dt: wp.array(dtype=scalar),
        adj_half_velocities: wp.array(dtype=vec3),
        adj_forces: wp.array(dtype=vec3),
    ):
        """Adjoint of ``fire_kick`` (arguments as for ``fire_drift_adjoint``; the adjoint of the
        atomically summed ``sums_out`` is not cleared, as in Warp's)."""
        t = wp.tid()
        dt = fire_dt[0]
        s0 = adj_sums_out[0]
        s1 = adj_sums_out[1]
        s2 = adj_sums_out[2]
        # a chunk of particles per thread, as the forward kernel
        for i in range(t * chunk, wp.min(forces.shape[0], (t + 1) * chunk)):
            f = forces[i]
            m = particle_mass[i]
            c = scalar(0.5) * dt / m
            v = half_velocities[i] + f * c
            # summed in the order of Warp's generated adjoint (reverse statement order): same bits
            av = v * s2 + v * s2 + f * s0 + adj_md_velocities_out[i]
            adj_md_velocities_out[i] = vec3(scalar(0.0))
            af = f * s1 + f * s1 + v * s0 + av * c
            adj_half_velocities[i] = adj_half_velocities[i] + av
            adj_forces[i] = adj_forces[i] + af
            fv = wp.dot(av, f)
            wp.atomic_add(adj_fire_dt, 0, fv * scalar(0.5) / m)
            adj_particle_mass[i] = adj_particle_mass[i] - fv * c / m

    @wp.kernel
    def fire_mix_adjoint(
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
        chunk: int,
        # Adjoint in (cleared here):
        adj_velocities_out: wp.array(dtype=vec3),
        adj_fire_dt_out: wp.array(dtype=scalar),
        adj_fire_alpha_out: wp.array(dtype=scalar),
        # Adjoint out (accumulated):
        adj_sums: wp.array(dtype=scalar),
        adj_fire_dt_in: wp.array(dtype=scalar),
        adj_fire_alpha_in: wp.array(dtype=scalar),
        adj_md_velocities: wp.array(dtype=vec3),
        adj_forces: wp.array(dtype=vec3),
    ):
        """Adjoint of ``fire_mix`` (arguments as for ``fire_drift_adjoint``; ``fire_count`` has no
        adjoint). The time step and mixing factor branch on the power and count as the forward."""
        t = wp.tid()
        power = sums[0]
        f_norm = wp.sqrt(sums[1] + force_norm_eps)
        v_norm = wp.sqrt(sums[2] + scalar(1.0e-30))
        alpha = fire_alpha_in[0]
        r = v_norm / f_norm
        # a chunk of particles per thread, as the forward kernel
        for i in range(t * chunk, wp.min(forces.shape[0], (t + 1) * chunk)):
            a = adj_velocities_out[i]
            adj_velocities_out[i] = vec3(scalar(0.0))
            if power >= scalar(0.0):
                v0 = md_velocities[i]
                f = forces[i]
                aw = alpha * a
                adj_md_velocities[i] = adj_md_velocities[i] + (a - aw)
                adj_forces[i] = adj_forces[i] + aw * r
                ar = wp.dot(aw, f)
                wp.atomic_add(adj_fire_alpha_in, 0, wp.dot(a, f * r - v0))
                wp.atomic_add(adj_sums, 1, -(ar * r / f_norm) * (scalar(0.5) / f_norm))
                wp.atomic_add(adj_sums, 2, (ar / f_norm) * (scalar(0.5) / v_norm))
            if i == 0:  # right after particle 0, as with one thread per particle: the same sums
                a_dt = adj_fire_dt_out[0]
                a_alpha = adj_fire_alpha_out[0]
                adj_fire_dt_out[0] = scalar(0.0)
                adj_fire_alpha_out[0] = scalar(0.0)
                dt = fire_dt_in[0]
                count = fire_count_in[0]
                if power >= scalar(0.0):
                    count = count + 1
                if power < scalar(0.0):
                    wp.atomic_add(adj_fire_dt_in, 0, a_dt * f_dec)
                elif power > scalar(0.0) and count > n_min:
                    if dt * f_inc < dt_max:
                        wp.atomic_add(adj_fire_dt_in, 0, a_dt * f_inc)
                    wp.atomic_add(adj_fire_alpha_in, 0, a_alpha * f_alpha)
                else:
                    wp.atomic_add(adj_fire_dt_in, 0, a_dt)
                    wp.atomic_add(adj_fire_alpha_in, 0, a_alpha)

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
        pair_forces=pair_forces,  # by (potential kind, single type)
        pair_forces_adjoint=pair_forces_adjoint,  # by (potential kind, single type)
        verlet_drift=verlet_drift,
        verlet_kick=verlet_kick,
        baoab_drift=baoab_drift,
        fire_drift=fire_drift,
        fire_kick=fire_kick,
        fire_mix=fire_mix,
        fire_drift_adjoint=fire_drift_adjoint,
        fire_kick_adjoint=fire_kick_adjoint,
        fire_mix_adjoint=fire_mix_adjoint,
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
