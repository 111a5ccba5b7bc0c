"""Energies, forces, box derivatives, NVE trajectories and FIRE minima checked against jax-md.

Reference formulas (jax-md's ``energy`` module, float64):
  Lennard-Jones  U = 4 eps ((s/r)^12 - (s/r)^6)
  soft sphere    U = eps/alpha (1 - r/s)^alpha for r < s    (O'Hern et al., PRE 68, 011306, 2003)
  Morse          U = eps ((1 - exp(-alpha (r - s)))^2 - 1)
LJ and Morse are cut with a shifted force, U(r) - U(rc) - (r - rc) U'(rc) for r < rc, built here
around jax-md's own pair functions; distances use jax-md's ``space.periodic`` / ``space.free``.
"""

import numpy as np
import pytest
import warp as wp

from simulator import md
from simulator.scenes.md_systems import bidisperse_packing, lattice_positions

jax_md = pytest.importorskip("jax_md")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax_md import energy, minimize, simulate, space  # noqa: E402


RTOL = 1e-9


def jittered_lattice(n, box, dim, seed, jitter=0.12):
    rng = np.random.default_rng(seed)
    return lattice_positions(n, box, dim) + rng.uniform(-jitter, jitter, size=(n, dim))


def make_system(potential, *, n, dim, density, periodic, seed, types=1, diameters=None, device):
    box = (n / density) ** (1.0 / dim)
    pos = jittered_lattice(n, box, dim, seed)
    rng = np.random.default_rng(seed + 1)
    type_of = rng.integers(0, types, size=n)
    builder = md.ParticleBuilder(dim=dim, box=box if periodic else None, periodic=periodic)
    for i in range(n):
        d = 1.0 if diameters is None else diameters[i]
        builder.add_particles(pos[i : i + 1], type=int(type_of[i]), diameter=d)
    model = builder.finalize(potential, device=device, precision="float64", requires_grad=True)
    return model, pos, type_of, box


def jax_pair_energy(fn, params, pos, types, box, periodic, cutoff=None, diameters=None):
    """Energy of all pairs i < j: jax-md's pair function with per-type-pair parameter matrices."""
    disp, _ = space.periodic(box) if periodic else space.free()
    n = pos.shape[0]
    types = jnp.asarray(types)
    iu, ju = np.triu_indices(n, 1)

    def total(r_all, **over):
        p = {k: jnp.asarray(v)[types[iu], types[ju]] for k, v in params.items()}
        if diameters is not None:
            p["sigma"] = 0.5 * (jnp.asarray(diameters)[iu] + jnp.asarray(diameters)[ju])
        p.update(over)
        dr = jax.vmap(disp)(r_all[iu], r_all[ju])
        r = jnp.sqrt(jnp.sum(dr * dr, axis=-1))
        u = fn(r, **p)
        if cutoff is not None:
            rc = jnp.full_like(r, cutoff)
            uc, duc = jax.jvp(lambda x: fn(x, **p), (rc,), (jnp.ones_like(r),))
            u = jnp.where(r < cutoff, u - uc - (r - cutoff) * duc, 0.0)
        return jnp.sum(u)

    return total


def ours(model, neighbors=None):
    state = model.state()
    forces = wp.zeros(model.particle_count, dtype=wp.vec3d)
    energy_pp = wp.zeros(model.particle_count, dtype=wp.float64)
    md.compute_forces(model, state.positions, forces, neighbors, energy_out=energy_pp)
    return float(energy_pp.numpy().sum()), forces.numpy()[:, : model.dim]


CASES = [
    ("lj", lambda T: md.LennardJones(epsilon=np.array([[1.0, 0.7], [0.7, 1.3]])[:T, :T],
                                     sigma=np.array([[1.0, 0.9], [0.9, 1.1]])[:T, :T], cutoff=2.5),
     energy.lennard_jones, 2.5),
    ("soft_sphere", lambda T: md.SoftSphere(epsilon=np.array([[1.0, 2.0], [2.0, 0.5]])[:T, :T],
                                            sigma=np.array([[1.2, 1.1], [1.1, 1.0]])[:T, :T], alpha=2.0),
     energy.soft_sphere, None),
    ("morse", lambda T: md.Morse(epsilon=np.array([[5.0, 4.0], [4.0, 3.0]])[:T, :T],
                                 sigma=np.array([[1.0, 1.1], [1.1, 1.2]])[:T, :T], alpha=np.array([[5.0, 4.0], [4.0, 6.0]])[:T, :T],
                                 cutoff=2.0),
     energy.morse, 2.0),
]


@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "free"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name,make_potential,jax_fn,cutoff", CASES, ids=[c[0] for c in CASES])
def test_energy_and_forces_match_jax_md(name, make_potential, jax_fn, cutoff, dim, periodic, device):
    """E and F = -dE/dx of two-type systems agree with jax-md to 1e-9 relative (float64),
    with the all-pairs sum and with the neighbor list."""
    potential = make_potential(2)
    n = 150 if dim == 3 else 48
    model, pos, types, box = make_system(potential, n=n, dim=dim, density=0.9, periodic=periodic, seed=dim, types=2, device=device)
    params = {k: v for k, v in potential.matrices(2).items() if k != "alpha" or name != "lj"}
    total = jax_pair_energy(jax_fn, params, pos, types, box, periodic, cutoff)
    e_ref = float(total(jnp.asarray(pos)))
    f_ref = -np.asarray(jax.grad(total)(jnp.asarray(pos)))
    assert abs(e_ref) > 1e-3 and np.abs(f_ref).max() > 1e-3  # the configuration interacts

    for neighbors in (None, md.NeighborList(model, skin=0.2)):
        e, f = ours(model, neighbors)
        assert e == pytest.approx(e_ref, rel=RTOL)
        np.testing.assert_allclose(f, f_ref, rtol=0, atol=RTOL * np.abs(f_ref).max())


def test_polydisperse_soft_sphere_matches_jax_md_pair(device):
    """sigma_ij = (d_i + d_j)/2: jax-md's complete ``soft_sphere_pair`` (per-particle sigma is
    averaged over the pair) against our neighbor-list energy and forces."""
    n, dim = 40, 2
    rng = np.random.default_rng(3)
    diameters = rng.uniform(0.8, 1.4, n)
    model, pos, _, box = make_system(md.SoftSphere(sigma_from_diameters=True), n=n, dim=dim, density=0.9,
                                     periodic=True, seed=5, diameters=diameters, device=device)
    disp, _ = space.periodic(box)
    efn = energy.soft_sphere_pair(disp, sigma=jnp.asarray(diameters))
    e_ref = float(efn(jnp.asarray(pos)))
    f_ref = -np.asarray(jax.grad(efn)(jnp.asarray(pos)))
    e, f = ours(model, md.NeighborList(model, skin=0.3))
    assert e_ref > 1e-3
    assert e == pytest.approx(e_ref, rel=RTOL)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=RTOL * np.abs(f_ref).max())


def test_box_derivative_matches_jax_md(device):
    """dE/dL at fixed positions in a periodic cube: jax-md differentiates ``space.periodic(L)``;
    ours is the sum over the three box sides of ``model.box.grad``."""
    n, dim = 60, 3
    model, pos, types, box = make_system(md.LennardJones(cutoff=2.0), n=n, dim=dim, density=0.9, periodic=True, seed=7, device=device)
    params = {"epsilon": np.ones((1, 1)), "sigma": np.ones((1, 1))}

    def e_of_box(L):
        return jax_pair_energy(energy.lennard_jones, params, pos, np.zeros(n, int), L, True, 2.0)(jnp.asarray(pos))

    ref = float(jax.grad(e_of_box)(box))
    state = model.state()
    tape = wp.Tape()
    with tape:
        e = md.potential_energy(model, state, md.NeighborList(model))
    tape.backward(loss=e)
    assert abs(ref) > 1e-3
    assert float(model.box.grad.numpy()[0].sum()) == pytest.approx(ref, rel=1e-8)


def test_nve_trajectory_matches_jax_md(device):
    """256 velocity-Verlet steps of a Lennard-Jones liquid (jax-md ``simulate.nve``, soft-sphere-free
    shifted-force LJ): positions agree to 1e-7 after folding into the box."""
    n, dim, dt, steps = 128, 3, 1.0 / 256, 256  # jax-md casts dt to float32: use an exact one
    model, pos, types, box = make_system(md.LennardJones(cutoff=2.5), n=n, dim=dim, density=0.8, periodic=True, seed=11, device=device)
    rng = np.random.default_rng(2)
    vel = rng.normal(size=(n, dim))
    disp, shift = space.periodic(box)
    params = {"epsilon": np.ones((1, 1)), "sigma": np.ones((1, 1))}
    efn = jax_pair_energy(energy.lennard_jones, params, pos, np.zeros(n, int), box, True, 2.5)
    init, apply = simulate.nve(efn, shift, dt)
    st = init(jax.random.PRNGKey(0), jnp.asarray(pos), kT=1.0)
    st = st.set(momentum=jnp.asarray(vel))
    apply = jax.jit(apply)
    for _ in range(steps):
        st = apply(st)
    ref = np.asarray(st.position)

    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model, skin=0.3))
    traj = md.rollout(model, model.state(velocities=vel), integrator, num_steps=steps, dt=dt, record=False)
    got = traj.final.positions.numpy()[:, :dim]
    d = got - ref
    d -= box * np.round(d / box)
    assert np.abs(got - traj.states[0].positions.numpy()[:, :dim]).max() > 0.05  # particles moved
    assert np.abs(d).max() < 1e-7


def test_fire_reaches_jax_md_minimum(device):
    """FIRE (Bitzek et al. 2006, jax-md defaults) on a 2D bidisperse soft-sphere packing (N = 32,
    D = 0.7, phi = 0.95) from the same random start: the same final energy within 1e-6 relative."""
    model, state = bidisperse_packing(32, small_diameter=0.7, packing_fraction=0.95, seed=4, device=device)
    diameters = model.particle_diameter.numpy()
    box = model.box_sides()[0]
    pos = state.positions.numpy()[:, :2].astype(np.float64)
    disp, shift = space.periodic(box)
    efn = energy.soft_sphere_pair(disp, sigma=jnp.asarray(diameters))
    init, apply = minimize.fire_descent(efn, shift)
    apply = jax.jit(apply)
    st = init(jnp.asarray(pos))
    steps = 3000
    for _ in range(steps):
        st = apply(st)
    e_ref = float(efn(st.position))

    nl = md.NeighborList(model, skin=0.3)
    traj = md.rollout(model, state, md.FIRE(neighbors=nl), num_steps=steps, record=False)
    e = float(md.potential_energy(model, traj.final, nl).numpy()[0])
    e0 = float(md.potential_energy(model, traj.states[0], nl).numpy()[0])
    assert e_ref < 0.1 * e0
    assert e_ref > 1e-8  # a jammed packing: the minimum energy is positive
    assert e == pytest.approx(e_ref, rel=1e-6)
