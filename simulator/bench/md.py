"""Molecular-dynamics benchmark against jax-md (``python -m simulator bench md [--json] [--quick]``).

Cases (float32, reduced LJ units):

* ``lj``: Lennard-Jones fluid, 3D periodic, density 0.8, cutoff 2.5, dt 0.005, N = 4096 and
  32768; velocity Verlet with a Verlet list (skin 0.3). Forward particle-steps per second; the
  gradient of the final potential energy w.r.t. the initial positions through 100 steps.
* ``fire``: 2D bidisperse soft-sphere packing, N = 512, 1000 FIRE steps; gradient of the final
  energy w.r.t. the initial positions.
* ``packing_es``: the packing problem as an objective (:class:`simulator.PackingObjective`, N = 128,
  1000 FIRE steps, float32): one antithetic ES gradient of the mean final energy w.r.t. the small
  diameter D (population 32, sigma 0.05; each member from its own random packing). Columns:
  ``es_gradient_seconds``, ``world_steps_per_s`` (population x steps / that time),
  ``forward_seconds_unrecorded`` (32 plain ``md.rollout(record=False)`` calls from random packings
  at the same D, the fast path a user would write) and ``es_over_unrecorded_forward``. No peer.

Columns: ``particle_steps_per_s`` (forward); ``reverse_over_forward`` = time of the backward pass
alone (after a recorded forward) / time of a plain forward over the same steps;
``gradient_over_forward`` = (recorded forward + backward) / plain forward; ``gradient_seconds``
= recorded forward + backward; ``peak_memory_mb`` = peak resident memory during the gradient
(sampled every 2 ms) minus the resident memory before it (CPU; on CUDA the Warp memory-pool
high-water mark). Only the initial positions carry gradients (the model's parameters do not),
as in the peer's ``jax.grad``. Every measurement runs in its own subprocess so that peaks are
not shared.

The peer is jax-md on the CPU with its own neighbor list (``dr_threshold`` 0.3), its LJ with
jax-md's default smooth cutoff (r_onset 2.0, r_cutoff 2.5); it is skipped when jax-md is not
importable, and its gradient at N = 32768 is skipped (it would need ~40 GB). Its gradient is
compiled before its memory is sampled. For LJ it is ``jax.grad`` through the loop ("plain",
the configuration the memory target names). For FIRE it is measured plain and "checkpointed"
(the loop in 32-step segments under ``jax.checkpoint``), each in its own subprocess, and the
faster counts (``peer_gradient_config``; both are in ``peer_gradient_configs``): here mostly the
plain one (0.22-0.31 s, 211 MB; checkpointed 0.24-0.30 s, 10 MB). ``gradient_ratio_vs_peer`` =
the peer's gradient seconds / ours.

The plain forward (``record=False``) of FIRE and velocity Verlet replays captured Warp CPU graphs
of 32 steps with the neighbor list checked and rebuilt on the device (see
``simulator.md.rollout``); the warm-up captures the graph, as jax-md's warm-up compiles.

Forward timings are medians of 3 runs, ours and jax-md's alike. Measured figures and where the time
goes: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json as _json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from .timing import median_seconds, seconds

LJ_STEPS_GRAD = 100
CHECKPOINT_EVERY = 32  # window of the replayed checkpointed gradient (FIRE)
REPEATS = 3  # forward timings are medians of this many runs (ours and the peer's)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRSS:
    """Samples the resident memory every 2 ms in a thread; ``peak_mb`` is the growth over the start."""

    def __enter__(self):
        self.base = _rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())
        self.peak_mb = self.peak - self.base


# ---------------------------------------------------------------------------------------------
# workers (each runs in a fresh subprocess and prints one JSON line)


def _ours(case: str, n: int, steps: int, device: str | None) -> dict:
    import warp as wp

    wp.config.quiet = True
    from simulator import md
    from simulator.scenes.md_systems import bidisperse_packing, lj_fluid

    if case == "lj":
        model, state = lj_fluid(n, density=0.8, temperature=1.0, device=device, precision="float32", requires_grad=True)
        nl = md.NeighborList(model, skin=0.3)
        integrator = md.VelocityVerlet(neighbors=nl)
        # warm up (compile, first list) and melt the lattice a little
        state = md.rollout(model, state, integrator, num_steps=50, dt=0.005, record=False).final
        state = model.state(positions=state.positions.numpy()[:, :3], velocities=state.velocities.numpy()[:, :3])
        grad_array = state.positions
    else:
        model, state = bidisperse_packing(n, small_diameter=0.6, seed=0, device=device, precision="float32", requires_grad=True)
        nl = md.NeighborList(model, skin=0.3)
        integrator = md.FIRE(neighbors=nl)
        # warm up: compile, and capture the replayed graph (kept on the integrator, as jax-md's jit)
        md.rollout(model, state, integrator, num_steps=64, record=False, check_divergence=False)
        grad_array = state.positions

    # the gradient asked for is w.r.t. the initial positions (as the peer's): the model's parameters
    # carry no gradient buffers, so the backward pass does not also accumulate their gradients
    for parameter in (model.particle_mass, model.particle_diameter, model.pair_epsilon, model.pair_sigma, model.pair_alpha, model.box):
        parameter.requires_grad = False

    def forward(num):
        traj = md.rollout(model, state, integrator, num_steps=num, dt=0.005, record=False, check_divergence=False)
        wp.synchronize_device(model.device)
        return traj

    fwd = median_seconds(lambda: forward(steps), REPEATS)
    grad_steps = LJ_STEPS_GRAD if case == "lj" else steps
    fwd_grad = median_seconds(lambda: forward(grad_steps), REPEATS) if grad_steps != steps else fwd

    # The gradient's path. FIRE: checkpoints every CHECKPOINT_EVERY steps, and the backward replays
    # one captured Warp CPU graph per window (re-simulation and adjoint; see
    # simulator.engine._Window; 1000 = 31 x 32 + 8: a second graph for the last 8
    # steps): bitwise the fully recorded gradient, without Python per launch. LJ: the fully
    # recorded rollout (record=True), kernel-bound already (the checkpointed path's re-simulation
    # would add a forward pass: rev/fwd ~2.7 instead of ~1.7 at N = 4096).
    every = CHECKPOINT_EVERY if case == "fire" else None
    # warm up the backward pass (Warp builds small helper kernels on the first one; the
    # checkpointed path captures its window graphs, one per window length, kept on the integrator
    # as jax-md's jit keeps its compiled function)
    warm = wp.Tape()
    with warm:
        warm_steps = every + grad_steps % every if every else 2
        warm_traj = md.rollout(model, state, integrator, num_steps=warm_steps, dt=0.005, checkpoint_every=every)
        e = md.potential_energy(model, warm_traj.final, nl)
    warm.backward(loss=e)
    warm.zero()
    del warm, warm_traj, e

    cuda = model.device.is_cuda
    base_pool = wp.get_mempool_used_mem_current(model.device) if cuda else 0
    tape = wp.Tape()
    with _PeakRSS() as rss:
        t0 = time.perf_counter()
        with tape:
            traj = md.rollout(model, state, integrator, num_steps=grad_steps, dt=0.005, check_divergence=False,
                              checkpoint_every=every)
            energy = md.potential_energy(model, traj.final, nl)
        wp.synchronize_device(model.device)
        t1 = time.perf_counter()
        tape.backward(loss=energy)
        grad = grad_array.grad.numpy()
        t2 = time.perf_counter()
    if cuda:
        peak = (wp.get_mempool_used_mem_high(model.device) - base_pool) / 2**20
    else:
        peak = rss.peak_mb
    return {
        "particle_steps_per_s": n * steps / fwd,
        "reverse_over_forward": (t2 - t1) / fwd_grad,
        "gradient_over_forward": (t2 - t0) / fwd_grad,
        "gradient_seconds": t2 - t0,
        "peak_memory_mb": peak,
        "grad_finite": bool(np.all(np.isfinite(grad))),
        "device": str(model.device),
        "rebuilds": nl.rebuild_count,
    }


ES_POPULATION = 32
ES_SIGMA = 0.05
ES_REPEATS = 5


def _ours_es(n: int, steps: int, population: int, device: str | None) -> dict:
    """One ES gradient of :class:`simulator.PackingObjective` against ``population`` plain unrecorded rollouts."""
    import warp as wp

    wp.config.quiet = True
    import simulator as sim
    from simulator import md

    objective = sim.PackingObjective(n, num_steps=steps, device=device, precision="float32")
    theta = np.array([0.6])
    model, integrator = objective.system(theta)

    def es():
        result = sim.grad(objective, theta, estimator="es", sigma=ES_SIGMA, population=population, seed=0)
        wp.synchronize_device(model.device)
        return result

    def forward():
        objective.system(theta)  # the model at theta (the ES call left the last member's parameters in it)
        rng = np.random.default_rng(0)
        for _ in range(population):
            state = model.state(requires_grad=False, positions=rng.uniform(0.0, 1.0, size=(n, 2)) * model.box_sides())
            md.rollout(model, state, integrator, num_steps=steps, record=False)  # with the divergence check, as the objective
        wp.synchronize_device(model.device)

    result = es()  # warm up: compile, capture the replayed graphs (kept on the integrator)
    forward()
    # interleaved, so that a load change on shared cores hits both alike; medians of ES_REPEATS each
    times = np.array([(seconds(es), seconds(forward)) for _ in range(ES_REPEATS)])
    es_seconds, forward_seconds = (float(x) for x in np.median(times, axis=0))
    return {
        "es_gradient_seconds": es_seconds,
        "world_steps_per_s": population * steps / es_seconds,
        "forward_seconds_unrecorded": forward_seconds,
        "es_over_unrecorded_forward": es_seconds / forward_seconds,
        "gradient_finite": bool(np.all(np.isfinite(result.gradient))),
        "device": str(model.device),
    }


def _peer(case: str, n: int, steps: int, with_grad: bool, gradient_config: str = "plain") -> dict:
    """jax-md's forward throughput and, ``with_grad``, its gradient w.r.t. the initial positions,
    ``gradient_config`` "plain" (``jax.grad`` through the loop) or "checkpointed" (the loop in
    segments of ``CHECKPOINT_EVERY`` steps under ``jax.checkpoint``, re-simulated in the backward)."""
    import jax

    jax.config.update("jax_enable_x64", False)
    import jax.numpy as jnp
    from jax_md import energy, minimize, simulate, space

    from simulator.scenes.md_systems import lattice_positions, packing_box_side

    if case == "lj":
        box = (n / 0.8) ** (1 / 3)
        disp, shift = space.periodic(box)
        neighbor_fn, energy_fn = energy.lennard_jones_neighbor_list(disp, box, r_onset=2.0, r_cutoff=2.5, dr_threshold=0.3)
        pos0 = jnp.asarray(lattice_positions(n, box, 3), dtype=jnp.float32)
        init, apply = simulate.nve(energy_fn, shift, 0.005)
        nbrs = neighbor_fn.allocate(pos0)
        state0 = init(jax.random.PRNGKey(0), pos0, kT=1.0, neighbor=nbrs)
        grad_steps = LJ_STEPS_GRAD
    else:
        box = packing_box_side(n, 0.6)
        disp, shift = space.periodic(box)
        diam = jnp.asarray(np.r_[np.ones(n // 2), np.full(n // 2, 0.6)], dtype=jnp.float32)
        rng = np.random.default_rng(0)
        pos0 = jnp.asarray(rng.uniform(0.0, box, (n, 2)), dtype=jnp.float32)
        neighbor_fn, energy_fn = energy.soft_sphere_neighbor_list(disp, box, sigma=diam, dr_threshold=0.3)
        init, apply = minimize.fire_descent(energy_fn, shift)
        nbrs = neighbor_fn.allocate(pos0)
        state0 = init(pos0, neighbor=nbrs)
        grad_steps = steps

    def body(_, carry):
        s, nb = carry
        s = apply(s, neighbor=nb)
        return s, nb.update(s.position)

    def run(state, nbrs, num):
        return jax.lax.fori_loop(0, num, body, (state, nbrs))

    def run_checkpointed(state, nbrs, num):
        segment = jax.checkpoint(lambda carry: jax.lax.fori_loop(0, CHECKPOINT_EVERY, body, carry))
        carry = jax.lax.fori_loop(0, num // CHECKPOINT_EVERY, lambda _, carry: segment(carry), (state, nbrs))
        return jax.lax.fori_loop(0, num % CHECKPOINT_EVERY, body, carry)

    run_jit = jax.jit(run, static_argnums=2)
    out = jax.block_until_ready(run_jit(state0, nbrs, steps))  # compile
    fwd = median_seconds(lambda: jax.block_until_ready(run_jit(state0, nbrs, steps)), REPEATS)
    result = {"peer_particle_steps_per_s": n * steps / fwd, "peer_overflow": bool(out[1].did_buffer_overflow)}
    if not with_grad:
        return result

    rollout = run_checkpointed if gradient_config == "checkpointed" else run

    def loss(x):
        s = state0.set(position=x) if case == "lj" else init(x, neighbor=nbrs)
        s, nb = rollout(s, nbrs, grad_steps)
        return energy_fn(s.position, neighbor=nb)

    x0 = pos0
    if case == "lj":
        fwd_grad_fn = jax.jit(lambda x: run(state0.set(position=x), nbrs, grad_steps)[0].position)
        jax.block_until_ready(fwd_grad_fn(x0))
        fwd_grad = median_seconds(lambda: jax.block_until_ready(fwd_grad_fn(x0)), REPEATS)
    else:
        fwd_grad = fwd
    grad_fn = jax.jit(jax.grad(loss)).lower(x0).compile()  # compiled outside the memory sampling
    with _PeakRSS() as rss:
        jax.block_until_ready(grad_fn(x0))  # its first run sets the peak
    peak = rss.peak_mb
    t0 = time.perf_counter()
    jax.block_until_ready(grad_fn(x0))
    grad_time = time.perf_counter() - t0
    result.update({"peer_gradient_over_forward": grad_time / fwd_grad, "peer_gradient_seconds": grad_time, "peer_peak_memory_mb": peak,
                   "peer_gradient_config": gradient_config})
    return result


# ---------------------------------------------------------------------------------------------
# driver


def _spawn(args: list[str], timeout: float = 1800) -> dict:
    cmd = [sys.executable, "-m", "simulator.bench.md", "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return _json.loads(lines[-1])


def _peer_available() -> bool:
    try:
        import jax_md  # noqa: F401

        return True
    except Exception:
        return False


def run(json: bool = False, quick: bool = False, device: str | None = None) -> dict:
    """Run the benchmark; print a table (or one JSON object with ``json=True``) and return it.

    ``quick`` runs N = 4096 LJ and shorter FIRE and packing-ES cases only (a few minutes on 2 CPU cores)."""
    cases = [("lj", 4096, 200), ("fire", 512, 200 if quick else 1000)]
    if not quick:
        cases.insert(1, ("lj", 32768, 50))
    peer_ok = _peer_available()
    rows = []
    dev = None
    for case, n, steps in cases:
        ours = _spawn([case, str(n), str(steps), device or ""])
        dev = dev or ours.get("device")
        row = {"case": "lj_fluid_3d" if case == "lj" else "soft_sphere_fire_2d", "n": n, "steps": steps}
        row.update({k: ours.get(k) for k in ("particle_steps_per_s", "reverse_over_forward", "gradient_over_forward", "gradient_seconds",
                                             "peak_memory_mb")})
        if "error" in ours:
            row["error"] = ours["error"]
        if peer_ok:
            with_grad = not (case == "lj" and n > 4096)
            peer = _spawn(["peer", case, str(n), str(steps), str(int(with_grad)), "plain"])
            row["peer"] = "jax-md"
            row["peer_particle_steps_per_s"] = peer.get("peer_particle_steps_per_s")
            if "error" in peer:
                row["peer_error"] = peer["error"]
            # the peer's gradient: plain for LJ (the memory target is against it); for FIRE also
            # checkpointed, and the faster of the two counts (the other is kept in the row)
            gradients = {"plain": peer}
            if with_grad and case == "fire":
                gradients["checkpointed"] = _spawn(["peer", case, str(n), str(steps), "1", "checkpointed"])
            measured = {k: g for k, g in gradients.items() if g.get("peer_gradient_seconds")}
            best = min(measured.values(), key=lambda g: g["peer_gradient_seconds"]) if measured else {}
            for key in ("peer_gradient_config", "peer_gradient_over_forward", "peer_gradient_seconds", "peer_peak_memory_mb"):
                row[key] = best.get(key)
            if len(measured) > 1:
                row["peer_gradient_configs"] = {k: {f: g.get(f) for f in ("peer_gradient_seconds", "peer_gradient_over_forward",
                                                                         "peer_peak_memory_mb")} for k, g in measured.items()}
            if row["peer_particle_steps_per_s"] and row["particle_steps_per_s"]:
                row["ratio_vs_peer"] = row["particle_steps_per_s"] / row["peer_particle_steps_per_s"]
            else:
                row["ratio_vs_peer"] = None
            if row.get("peer_gradient_seconds") and row.get("gradient_seconds"):
                row["gradient_ratio_vs_peer"] = row["peer_gradient_seconds"] / row["gradient_seconds"]
        else:
            row.update({"peer": None, "peer_particle_steps_per_s": None, "peer_peak_memory_mb": None, "ratio_vs_peer": None})
        rows.append(row)
    es_steps = 200 if quick else 1000
    ours = _spawn(["es", "128", str(es_steps), str(ES_POPULATION), device or ""])
    dev = dev or ours.get("device")
    row = {"case": "packing_es_2d", "n": 128, "steps": es_steps, "population": ES_POPULATION, "peer": None}
    row.update({k: ours.get(k) for k in ("es_gradient_seconds", "world_steps_per_s", "forward_seconds_unrecorded",
                                         "es_over_unrecorded_forward")})
    if "error" in ours:
        row["error"] = ours["error"]
    rows.append(row)
    result = {"benchmark": "md", "device": dev, "quick": quick, "rows": rows}
    if json:
        print(_json.dumps(result))
    else:
        _print_table(result, peer_ok)
    return result


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _print_table(result: dict, peer_ok: bool) -> None:
    print(f"MD benchmark on {result['device']} (float32){' [quick]' if result['quick'] else ''}")
    if not peer_ok:
        print("peer missing: jax-md is not importable (pip install jax-md) - no peer columns")
    header = f"{'case':<22}{'N':>7}{'p-steps/s':>13}{'rev/fwd':>9}{'grad/fwd':>9}{'peak MB':>9}"
    if peer_ok:
        header += f"{'jax-md p-s/s':>14}{'x peer':>8}{'jax grad/fwd':>13}{'jax MB':>9}"
    print(header)
    for r in result["rows"]:
        if "es_gradient_seconds" in r:
            print(f"{r['case']:<22}{r['n']:>7}  ES gradient (population {r['population']}, {r['steps']} FIRE steps): "
                  f"{_fmt(r['es_gradient_seconds'], '.3f')} s, {_fmt(r['world_steps_per_s'], ',.0f')} world-steps/s, "
                  f"{_fmt(r['es_over_unrecorded_forward'], '.2f')}x {r['population']} unrecorded rollouts "
                  f"({_fmt(r['forward_seconds_unrecorded'], '.3f')} s)")
            if r.get("error"):
                print(f"  error: {r['error']}")
            continue
        line = (f"{r['case']:<22}{r['n']:>7}{_fmt(r['particle_steps_per_s'], ',.0f'):>13}"
                f"{_fmt(r['reverse_over_forward'], '.2f'):>9}{_fmt(r['gradient_over_forward'], '.2f'):>9}"
                f"{_fmt(r['peak_memory_mb'], '.0f'):>9}")
        if peer_ok:
            line += (f"{_fmt(r['peer_particle_steps_per_s'], ',.0f'):>14}{_fmt(r['ratio_vs_peer'], '.2f'):>8}"
                     f"{_fmt(r.get('peer_gradient_over_forward'), '.2f'):>13}{_fmt(r['peer_peak_memory_mb'], '.0f'):>9}")
        print(line)
        if r.get("gradient_ratio_vs_peer"):
            configs = r.get("peer_gradient_configs") or {r["peer_gradient_config"]: r}
            alternatives = ", ".join(f"{k} {c['peer_gradient_seconds']:.3f} s / {c['peer_peak_memory_mb']:.0f} MB"
                                     for k, c in configs.items())
            print(f"  gradient: ours {r['gradient_seconds']:.3f} s; jax-md {alternatives}; ours is "
                  f"{r['gradient_ratio_vs_peer']:.2f}x as fast as jax-md's {r['peer_gradient_config']}")
        for key in ("error", "peer_error"):
            if r.get(key):
                print(f"  {key}: {r[key]}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--worker":
        rest = argv[1:]
        if rest[0] == "peer":
            out = _peer(rest[1], int(rest[2]), int(rest[3]), bool(int(rest[4])), *rest[5:6])
        elif rest[0] == "es":
            out = _ours_es(int(rest[1]), int(rest[2]), int(rest[3]), rest[4] if len(rest) > 4 and rest[4] else None)
        else:
            out = _ours(rest[0], int(rest[1]), int(rest[2]), rest[3] if len(rest) > 3 and rest[3] else None)
        print(_json.dumps(out))
        return 0
    parser = argparse.ArgumentParser(prog="python -m simulator bench md", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--quick", action="store_true", help="N = 4096 LJ and a short FIRE run only")
    parser.add_argument("--device", default=None, help="Warp device (default: Warp's preferred device)")
    args = parser.parse_args(argv)
    run(json=args.json, quick=args.quick, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
