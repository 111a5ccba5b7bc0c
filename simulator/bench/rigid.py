"""Rigid-body benchmark: the ant quadruped, forward and reverse, against MuJoCo as the peer.

Rows (1 and 64 worlds), medians of several repeats: forward substeps per second of an
unrecorded rollout (dt 0.01 s, 10 substeps of 1 ms), simulated seconds per wall second per
world, the reverse pass of a recorded rollout as a multiple of the recorded forward pass
(``reverse_over_forward``), of the unrecorded forward pass over the same horizon
(``reverse_over_unrecorded_forward``) and, both captured as graphs by the rollout engine, of each other
(``captured_reverse_over_forward``), and peak host memory (process max RSS [MB]). ``checks``: what
the input checks of ``simulator.step`` and the engine cost, relative to a step and a rollout.

The peer is MuJoCo on the gymnasium ant at its own timestep (0.01 s, zero control), measured
in the same run at the same number of worlds on the same number of threads:
``mj_step`` in a loop for one world, and MuJoCo's own batched, multithreaded C++ rollout
(``mujoco.rollout``, GIL released, one ``MjData`` per thread) for 64 worlds. ``ratio_vs_peer``
compares the two engines on the same workload. ``ratio_vs_peer_single_world`` compares each row
with MuJoCo's one-world rate instead (at 64 worlds that asks 64 worlds to advance as fast as
one MuJoCo world does, i.e. 64x MuJoCo's throughput on the same two cores).
``python -m simulator bench rigid [--json] [--quick]``.

Measured figures and where the time goes: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json as json_module
import os
import resource
import sys

import numpy as np
import warp as wp

from .timing import median_seconds, seconds

SUBSTEP = 0.001  # [s] our ant substep (dt 0.01 s with 10 substeps: the contact bound, simulator.rigid.contact_time_scales)
DT, SUBSTEPS = 0.01, 10


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _ours(worlds: int, steps: int, reverse_steps: int, repeats: int, device) -> dict:
    """Medians over ``repeats`` runs: ``steps`` substeps of the unrecorded forward pass, and a
    rollout of ``reverse_steps`` substeps timed unrecorded, recorded on a tape, and in reverse."""
    from simulator import Engine, RigidSolver, rollout, scenes
    from simulator.engine import default_threads

    scene = scenes.make("ant", num_worlds=worlds, device=device, precision="float32", requires_grad=True)
    model = scene.model
    state = model.state(requires_grad=False)
    engine = Engine(RigidSolver(model))  # keeps its captured graphs between calls
    engine.rollout(state, None, num_steps=10, dt=DT, substeps=SUBSTEPS, record=False)  # warm-up (compile, caches)

    def forward():
        engine.rollout(state, None, num_steps=steps // SUBSTEPS, dt=DT, substeps=SUBSTEPS, record=False, check_divergence=False)

    forward_s = median_seconds(forward, repeats, wp.synchronize)
    steps_per_s = SUBSTEPS * (steps // SUBSTEPS) / forward_s

    horizon = reverse_steps // SUBSTEPS
    controls = model.control_sequence(horizon)
    controls.joint_act.fill_(0.1)
    unrecorded, recorded, reverse = [], [], []
    for _ in range(repeats + 1):  # the first round warms up the adjoint kernels
        unrecorded.append(seconds(lambda: engine.rollout(model.state(), controls, num_steps=horizon, dt=DT, substeps=SUBSTEPS, record=False,
                                                  check_divergence=False), wp.synchronize))
        tape = wp.Tape()

        def record(tape=tape):
            with tape:
                traj = rollout(model, model.state(), controls, num_steps=horizon, dt=DT, substeps=SUBSTEPS, check_divergence=False)
                tape.loss = scene.loss(traj, controls)

        recorded.append(seconds(record, wp.synchronize))
        reverse.append(seconds(lambda tape=tape: tape.backward(grads={tape.loss: wp.ones_like(tape.loss)}), wp.synchronize))
        tape.reset()
        controls.joint_act.grad.zero_()
    reverse_s, recorded_s, unrecorded_s = (float(np.median(x[1:])) for x in (reverse, recorded, unrecorded))
    captured_forward_s, captured_reverse_s = _captured(worlds, horizon, repeats, device)
    return {
        "case": "ant",
        "worlds": worlds,
        "steps_per_s": steps_per_s,
        "sim_seconds_per_s_per_world": steps_per_s * SUBSTEP,
        "reverse_over_forward": reverse_s / recorded_s,
        "reverse_over_unrecorded_forward": reverse_s / unrecorded_s,
        "recorded_steps_per_s": SUBSTEPS * horizon / recorded_s,
        "reverse_steps_per_s": SUBSTEPS * horizon / reverse_s,
        "captured_forward_steps_per_s": SUBSTEPS * horizon / captured_forward_s,
        "captured_reverse_over_forward": captured_reverse_s / captured_forward_s,
        "peak_memory_mb": _peak_mb(),
        "threads": min(default_threads(), worlds),
    }


def _captured(worlds: int, horizon: int, repeats: int, device) -> tuple[float, float]:
    """Median wall seconds of the recorded forward pass and of the reverse pass of the ant task
    (actions 0.1) as the rollout engine captures and replays them (``Engine.replays``): kernel time
    without Python."""
    objective = _ant_objective(horizon, device)
    theta = np.full((worlds, objective.num_parameters), 0.1)
    forward, reverse = objective.engine(worlds).replays(objective, theta, objective.initial_state(worlds, 0))
    forward()
    reverse()
    return median_seconds(forward, repeats, wp.synchronize), median_seconds(reverse, repeats, wp.synchronize)


ES_WORLDS, ES_STEPS = 64, 25  # the ES row: a 64-member antithetic population, 25 control steps
ANALYTIC_WORLDS, ANALYTIC_STEPS = 64, 100  # the analytic-gradient ratio: 64 worlds, 100 control steps


def _ant_objective(num_steps: int, device):
    """The ant's own task (forward progress over the elapsed time and control effort), driven by
    open-loop actuator controls."""
    from simulator import SceneTaskObjective

    return SceneTaskObjective("ant", num_steps=num_steps, device=device, precision="float32")


def _estimator_rows(repeats: int, device, quick: bool = False) -> dict:
    """The gradient estimators' cost against an unrecorded rollout of the same worlds and steps,
    through the rollout engine (warmed up first, so its graphs are captured): one ES gradient
    (``es_gradient_seconds / forward_seconds_unrecorded``) and one analytic gradient (recorded
    forward and reverse pass, ``analytic_gradient_over_unrecorded_forward``)."""
    from simulator import Engine, RigidSolver, grad

    result = {}
    shapes = ((8, 10), (8, 10)) if quick else ((ES_WORLDS, ES_STEPS), (ANALYTIC_WORLDS, ANALYTIC_STEPS))  # quick: a smoke check
    for name, (worlds, steps) in zip(("es", "analytic"), shapes):
        options = {"population": worlds, "sigma": 0.1} if name == "es" else {"samples": worlds}
        objective = _ant_objective(steps, device)
        engine = Engine(RigidSolver(objective.model(worlds)))
        state = engine.solver.state(requires_grad=False)
        theta = np.full(objective.num_parameters, 0.1)

        def forward():
            engine.rollout(state, None, num_steps=steps, dt=objective.dt, substeps=objective.substeps, record=False, check_divergence=False)

        def gradient():
            grad(objective, theta, estimator=name, **options)

        for _ in range(4):  # warm-up: compile, then the engine captures the shape (after CAPTURE_AFTER calls)
            gradient()
        forward()
        result[f"{name}_worlds"], result[f"{name}_steps"] = worlds, steps
        result[f"{name}_gradient_seconds"] = median_seconds(gradient, repeats, wp.synchronize)
        result[f"{name}_forward_seconds_unrecorded"] = median_seconds(forward, repeats, wp.synchronize)
    result["es_gradient_over_unrecorded_forward"] = result["es_gradient_seconds"] / result["es_forward_seconds_unrecorded"]
    result["analytic_gradient_over_unrecorded_forward"] = (result["analytic_gradient_seconds"]
                                                           / result["analytic_forward_seconds_unrecorded"])
    return result


def _mujoco(worlds: int, steps: int, repeats: int, threads: int) -> dict | None:
    """MuJoCo on the gymnasium ant: median wall time of ``steps`` steps of every one of ``worlds``
    worlds (``mj_step`` for one world; ``mujoco.rollout`` over ``threads`` threads otherwise)."""
    try:
        import gymnasium
        import mujoco
        import mujoco.rollout
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "ant.xml")
    model = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(model)
    for _ in range(100):  # settle onto the ground, as our rollouts start from a resting pose
        mujoco.mj_step(model, data)
    if worlds == 1:
        def run():
            for _ in range(steps):
                mujoco.mj_step(model, data)

        name = "mujoco (mj_step)"
    else:
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        initial = np.zeros(mujoco.mj_stateSize(model, spec))
        mujoco.mj_getState(model, data, initial, spec)
        initial = np.tile(initial, (worlds, 1))
        control = np.zeros((worlds, steps, model.nu))
        datas = [mujoco.MjData(model) for _ in range(threads)]
        state = np.empty((worlds, steps, initial.shape[1]))
        sensordata = np.empty((worlds, steps, model.nsensordata))

        def run():
            mujoco.rollout.rollout(model, datas, initial, control, state=state, sensordata=sensordata)

        run()  # warm-up (thread pool)
        name = f"mujoco.rollout ({threads} threads)"
    elapsed = median_seconds(run, repeats)  # MuJoCo's calls return when done: nothing to synchronize
    return {"peer": name, "steps_per_s": worlds * steps / elapsed, "sim_seconds_per_s_per_world": steps / elapsed * model.opt.timestep,
            "timestep": model.opt.timestep}


def _check_rows(repeats: int, device, quick: bool) -> list[dict]:
    """What the input checks cost on the ant (1 and 64 worlds): per call of ``simulator.step``,
    its argument checks and its divergence watch as fractions of the unchecked launches of one
    step (``rigid.launch_step``, what the engine runs); per rollout, the engine's parameter check
    (``Model.validate_if_changed``) as a fraction of a 10-step unrecorded rollout."""
    from simulator import rigid, rollout, scenes

    calls = 50 if quick else 500
    rows = []
    for worlds in (1, 64):
        model = scenes.make("ant", num_worlds=worlds, device=device, precision="float32").model
        a, b = model.state(), model.output_state()
        a.step_index = 1  # a state inside a loop (a fresh one is also read for finiteness, once)
        h = DT / SUBSTEPS

        def loop(fn, count=calls):
            def run():
                for _ in range(count):
                    fn()
            return median_seconds(run, repeats, wp.synchronize) / count

        loop(lambda: rigid.step(model, a, b, None, h), 5)  # warm-up: compile, caches, kept views
        launches = loop(lambda: rigid.launch_step(model, a, b, None, h))
        checks = loop(lambda: rigid.check_step(model, a, b, None, h))
        watch = loop(lambda: rigid._watch_divergence(model, a, b, h))
        short = loop(lambda: rollout(model, a, num_steps=10, dt=DT, substeps=SUBSTEPS, record=False), max(2, calls // 50))
        validate = loop(model.validate_if_changed)
        rows.append({"worlds": worlds, "launch_step_seconds": launches, "step_checks_over_step": checks / launches,
                     "divergence_watch_over_step": watch / launches, "full_validate_seconds": loop(model.validate, calls // 5),
                     "validate_if_changed_over_10_step_rollout": validate / short})
    return rows


def run(json: bool = False, quick: bool = False, device=None) -> dict:
    """Run the benchmark; print a table (or one JSON object) and return the result dict."""
    wp.config.quiet = True
    wp.init()
    dev = str(wp.get_device(device)) if device is not None else str(wp.get_preferred_device())
    steps = 400 if quick else 4000
    reverse_steps = 100 if quick else 400
    repeats = 3 if quick else 5
    single = _mujoco(1, 2000 if quick else 20000, repeats, 1)
    rows = []
    for worlds in (1, 64):
        row = _ours(worlds, steps, reverse_steps, repeats, dev)
        peer = single if worlds == 1 else _mujoco(worlds, 200 if quick else 2000, repeats, row["threads"])
        row["peer"] = peer["peer"] if peer else None
        row["peer_sim_seconds_per_s_per_world"] = peer["sim_seconds_per_s_per_world"] if peer else None
        row["ratio_vs_peer"] = row["sim_seconds_per_s_per_world"] / peer["sim_seconds_per_s_per_world"] if peer else None
        row["peer_single_world_sim_seconds_per_s"] = single["sim_seconds_per_s_per_world"] if single else None
        row["ratio_vs_peer_single_world"] = row["sim_seconds_per_s_per_world"] / single["sim_seconds_per_s_per_world"] if single else None
        rows.append(row)
    result = {"benchmark": "rigid", "device": dev, "quick": quick, "repeats": repeats, "substep_s": SUBSTEP, "rows": rows,
              "estimators": _estimator_rows(repeats, dev, quick), "checks": _check_rows(repeats, dev, quick)}
    if single:
        result["peer_steps_per_s"] = single["steps_per_s"]
        result["peer_timestep_s"] = single["timestep"]
    if json:
        print(json_module.dumps(result))
    else:
        print(f"rigid benchmark on {dev} ({'quick' if quick else 'full'}, medians of {repeats}); ant substep {SUBSTEP} s")
        if single:
            print(f"mujoco, one world: {single['steps_per_s']:.0f} steps/s at dt {single['timestep']} s = "
                  f"{single['sim_seconds_per_s_per_world']:.1f} sim s per s")
        for r in rows:
            peer = "n/a" if r["peer"] is None else (
                f"{r['peer']}: {r['peer_sim_seconds_per_s_per_world']:.2f} sim s/s/world, ratio {r['ratio_vs_peer']:.2f} "
                f"(vs one mujoco world {r['ratio_vs_peer_single_world']:.3f})")
            print(
                f"  {r['worlds']:>3} worlds: {r['steps_per_s']:9.0f} steps/s, {r['sim_seconds_per_s_per_world']:8.2f} sim s/s/world, "
                f"reverse/forward {r['reverse_over_forward']:.2f} (recorded), {r['reverse_over_unrecorded_forward']:.1f} (unrecorded), "
                f"{r['captured_reverse_over_forward']:.1f} (both captured), "
                f"peak {r['peak_memory_mb']:.0f} MB, {r['threads']} thread(s); {peer}"
            )
        e = result["estimators"]
        print(f"  ES gradient, {e['es_worlds']} worlds x {e['es_steps']} steps: {e['es_gradient_seconds'] * 1e3:.1f} ms = "
              f"{e['es_gradient_over_unrecorded_forward']:.2f}x the unrecorded rollout of the same worlds")
        print(f"  analytic gradient, {e['analytic_worlds']} worlds x {e['analytic_steps']} steps: "
              f"{e['analytic_gradient_seconds'] * 1e3:.1f} ms = "
              f"{e['analytic_gradient_over_unrecorded_forward']:.2f}x the unrecorded rollout of the same worlds")
        for c in result["checks"]:
            print(f"  input checks, {c['worlds']} world(s): sim.step argument checks {100 * c['step_checks_over_step']:.1f}% and "
                  f"divergence watch {100 * c['divergence_watch_over_step']:.1f}% of a step; the engine's parameter check "
                  f"{100 * c['validate_if_changed_over_10_step_rollout']:.2f}% of a 10-step rollout")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="simulator bench rigid", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="short runs (seconds) for a smoke check")
    parser.add_argument("--device", default=None, help="Warp device, e.g. cpu or cuda:0")
    args = parser.parse_args(argv)
    run(json=args.json, quick=args.quick, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
