"""MJCF benchmark: every gymnasium MuJoCo model at one world against MuJoCo's ``mj_step``.

One row per model (``<gymnasium>/envs/mujoco/assets/*.xml``) loaded with
:func:`simulator.mjcf.load_mjcf` (default contact, float32): the model's own timestep dt, the
substeps the contact bound asks for (``ceil(dt / min(contact_time_scales))``, see
:func:`simulator.rigid.contact_time_scales`), our steps of dt per second (an unrecorded
``Engine.rollout`` at zero control, divergence check off, captured graphs replayed after a warm-up),
MuJoCo's ``mj_step`` steps per second at the same dt (zero control, the same number of steps),
and ``ratio`` = ours / MuJoCo's. A model that does not load, or diverges, gets its error instead.
``python -m simulator bench mjcf [--json] [--quick]``; needs the ``dev`` extras (mujoco, gymnasium).
"""

from __future__ import annotations

import argparse
import json as json_module
import os
import sys
import warnings

import warp as wp

from .timing import median_seconds


def _assets() -> list[str]:
    import gymnasium

    root = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")
    return [os.path.join(root, name) for name in sorted(os.listdir(root)) if name.endswith(".xml")]


def _ours(path: str, steps: int, repeats: int, device) -> dict:
    from simulator import Engine, RigidSolver, rigid
    from simulator.mjcf import load_mjcf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader's MJCFWarning for approximated elements
        builder = load_mjcf(path)
        model = builder.finalize(device=device, precision="float32")
    dt = float(builder.mjcf_timestep)
    substeps = rigid.stable_substeps(model, dt)
    engine = Engine(RigidSolver(model))
    state = model.state(requires_grad=False)
    engine.rollout(state, None, num_steps=min(steps, 10), dt=dt, substeps=substeps, record=False)  # warm-up, checks
    run = lambda: engine.rollout(state, None, num_steps=steps, dt=dt, substeps=substeps, record=False, check_divergence=False)  # noqa: E731
    seconds = median_seconds(run, repeats, wp.synchronize)
    final = engine.rollout(state, None, num_steps=steps, dt=dt, substeps=substeps, record=False).final  # finite over the run
    del final
    return {"timestep": dt, "substeps": substeps, "candidates": model.candidate_count, "steps_per_s": steps / seconds}


def _mujoco(path: str, steps: int, repeats: int) -> float | None:
    try:
        import mujoco
    except ImportError:
        return None
    model = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(model)

    def run():
        mujoco.mj_resetData(model, data)
        for _ in range(steps):
            mujoco.mj_step(model, data)

    return steps / median_seconds(run, repeats)


def run(*, quick: bool = False, device=None, models: list[str] | None = None) -> dict:
    """The benchmark's result: ``rows`` (one per model, see the module docstring) and its settings.
    ``models``: asset file names to run (default: every gymnasium asset)."""
    device = wp.get_device(device)
    steps, repeats = (50, 2) if quick else (500, 5)
    rows = []
    for path in _assets():
        if models is not None and os.path.basename(path) not in models:
            continue
        row = {"model": os.path.basename(path)}
        try:
            row.update(_ours(path, steps, repeats, device))
        except Exception as exc:  # a model we cannot load or run: reported, not fatal
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            rows.append(row)
            continue
        peer = _mujoco(path, steps, repeats)
        row["mujoco_steps_per_s"] = peer
        row["ratio"] = row["steps_per_s"] / peer if peer else None
        rows.append(row)
    return {"benchmark": "mjcf", "device": str(device), "quick": quick, "steps": steps, "repeats": repeats, "worlds": 1, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator bench mjcf")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    result = run(quick=args.quick, device=args.device)
    device, steps, repeats, rows = result["device"], result["steps"], result["repeats"], result["rows"]
    if args.json:
        print(json_module.dumps(result))
        return 0
    print(f"mjcf benchmark on {device} (1 world, {steps} steps, medians of {repeats})")
    for r in rows:
        if "error" in r:
            print(f"  {r['model']:30s} error: {r['error']}")
            continue
        peer = "n/a" if r["mujoco_steps_per_s"] is None else f"{r['mujoco_steps_per_s']:9.0f} steps/s, ratio {r['ratio']:.3f}"
        print(f"  {r['model']:30s} dt {r['timestep']:<6g} substeps {r['substeps']:>3}: {r['steps_per_s']:9.0f} steps/s; mujoco {peer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
