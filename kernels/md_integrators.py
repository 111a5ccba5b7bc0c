"""Molecular-dynamics integrator kernels: velocity Verlet, Langevin BAOAB and FIRE (conventions:
``kernels.md``). Differentiable by Warp's generated adjoints; FIRE's hand-written adjoints are in
``kernels.md_adjoints``.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .md_neighbors import neighbor_kernels


@functools.cache
def md_integrator_kernels(scalar):
    """Build the integrator kernels for one scalar type."""
    vec3 = wp.types.vector(3, scalar)
    wrap = neighbor_kernels(scalar).wrap

    @wp.func
    def half_kick(v: vec3, f: vec3, m: scalar, dt: scalar):
        """Half a velocity-Verlet kick: v + F dt / 2m [length/time]."""
        return v + f * (scalar(0.5) * dt / m)

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

    return SimpleNamespace(
        verlet_drift=verlet_drift,
        verlet_kick=verlet_kick,
        baoab_drift=baoab_drift,
        fire_drift=fire_drift,
        fire_kick=fire_kick,
        fire_mix=fire_mix,
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        md_integrator_kernels(scalar)


build_all()
