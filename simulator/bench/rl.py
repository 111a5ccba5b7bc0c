"""RL benchmark: where a training iteration spends its time, and environment steps against MuJoCo.

Rows:

* ``iteration``: one ES iteration (``simulator.grad(..., estimator="es")``) of a linear policy on
  the ant task (population 64 = 64 worlds, ``steps`` control steps, episodes not ended early: a
  horizon short enough that the random policies stay healthy), split into ``physics`` (the rollout
  engine's steps), ``task_host`` (coordinates, observation, reward, termination and resets on the host),
  ``policy`` (the policy's actions and observation normalisation) and ``estimator`` (the rest:
  noise, ranks, the update of the statistics, Python glue). Medians over ``repeats`` iterations.
* ``env_steps``: world-steps per second of :class:`simulator.rl.BatchedEpisodes` (zero actions)
  for each task at 1 and 64 worlds, and of gymnasium's own v5 environment on MuJoCo (one
  environment, the same task, zero actions: its steps/s is the per-world peer; ``ratio`` = ours /
  gymnasium's).

``python -m simulator bench rl [--json] [--quick]``; needs the ``dev`` extras (gymnasium, mujoco).
"""

from __future__ import annotations

import argparse
import json as json_module
import sys
import time

import numpy as np


class _Stopwatch:
    """Accumulated seconds of wrapped callables, by label."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        return timed


def iteration_split(task: str = "ant", population: int = 64, steps: int = 100, repeats: int = 5, device=None) -> dict:
    from simulator.gradients import grad
    from simulator.rl.objective import EpisodeObjective

    objective = EpisodeObjective(task, "linear", horizon=steps, device=device)
    theta = objective.policy.initial_parameters()
    grad(objective, theta, estimator="es", population=population, sigma=0.02, seed=0)  # warm-up: captures, kernels
    episodes = objective.episodes(population)
    watch = _Stopwatch()
    episodes.engine.rollout = watch.wrap("physics", episodes.engine.rollout)
    task_object = objective.task
    for name in ("coordinates", "set_coordinates", "observe", "reward", "healthy", "posture"):
        setattr(task_object, name, watch.wrap("task_host", getattr(task_object, name)))
    objective.policy.act = watch.wrap("policy", objective.policy.act)
    objective.observe = watch.wrap("policy", objective.observe)
    rows = []
    for r in range(repeats):
        watch.seconds.clear()
        start = time.perf_counter()
        result = grad(objective, theta, estimator="es", population=population, sigma=0.02, seed=1 + r)
        total = time.perf_counter() - start
        split = {k: watch.seconds.get(k, 0.0) for k in ("physics", "task_host", "policy")}
        split["estimator"] = total - sum(split.values())
        rows.append({"total": total, **split, "world_steps": int(result.diagnostics["sim_steps"])})
    parts = ("physics", "task_host", "policy", "estimator")
    median = {k: float(np.median([row[k] for row in rows])) for k in ("total", *parts)}
    median["shares"] = {k: median[k] / median["total"] for k in parts}
    return {"task": task, "population": population, "steps": steps, "substeps": episodes.substeps, "repeats": repeats, **median}


_GYMNASIUM_IDS = {"hopper": "Hopper-v5", "walker2d": "Walker2d-v5", "half_cheetah": "HalfCheetah-v5", "ant": "Ant-v5",
                  "inverted_pendulum": "InvertedPendulum-v5"}


def env_steps(task: str, worlds: int, steps: int, repeats: int, device=None) -> dict:
    from simulator.rl import BatchedEpisodes

    episodes = BatchedEpisodes(task, worlds, seed=0, device=device)
    episodes.reset()
    zeros = np.zeros((worlds, episodes.action_size))
    for _ in range(5):
        episodes.step(zeros)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            episodes.step(zeros)
        times.append(time.perf_counter() - start)
    return {"task": task, "worlds": worlds, "substeps": episodes.substeps, "world_steps_per_s": worlds * steps / float(np.median(times))}


def gymnasium_steps(task: str, steps: int, repeats: int) -> float | None:
    try:
        import gymnasium
    except ImportError:
        return None
    env = gymnasium.make(_GYMNASIUM_IDS[task]).unwrapped
    env.reset(seed=0)
    zeros = np.zeros(env.action_space.shape)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, _, _ = env.step(zeros)
            if terminated:
                env.reset()
        times.append(time.perf_counter() - start)
    env.close()
    return steps / float(np.median(times))


def run(*, quick: bool = False, device=None) -> dict:
    import warp as wp

    repeats = 3 if quick else 5
    steps = 20 if quick else 100
    tasks = ("hopper", "ant") if quick else tuple(_GYMNASIUM_IDS)
    split = iteration_split(steps=steps, population=16 if quick else 64, repeats=repeats, device=device)
    rows = []
    for task in tasks:
        peer = gymnasium_steps(task, steps, repeats)
        for worlds in (1, 64):
            row = env_steps(task, worlds, steps, repeats, device)
            row["gymnasium_steps_per_s"] = peer
            row["ratio"] = None if peer is None else row["world_steps_per_s"] / peer
            rows.append(row)
    return {"device": str(wp.get_device(device)), "steps": steps, "repeats": repeats, "iteration": split, "env_steps": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator bench rl")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    result = run(quick=args.quick, device=args.device)
    if args.json:
        print(json_module.dumps(result))
        return 0
    it = result["iteration"]
    print(f"rl benchmark on {result['device']} (medians of {result['repeats']})")
    print(f"ES iteration, {it['task']}, population {it['population']}, {it['steps']} steps of {it['substeps']} substeps: "
          f"{it['total'] * 1e3:.0f} ms")
    for part in ("physics", "task_host", "policy", "estimator"):
        print(f"  {part:10s} {it[part] * 1e3:8.1f} ms  {100 * it['shares'][part]:5.1f} %")
    print("environment world-steps per second (zero actions):")
    for r in result["env_steps"]:
        peer = "n/a" if r["gymnasium_steps_per_s"] is None else f"gymnasium {r['gymnasium_steps_per_s']:8.0f}/s, ratio {r['ratio']:.2f}"
        print(f"  {r['task']:18s} {r['worlds']:3d} worlds, {r['substeps']:3d} substeps: {r['world_steps_per_s']:9.0f}/s; {peer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
