"""Learning to hop: the hopper (gymnasium's Hopper-v5, on gymnasium's own MJCF) trained with each
gradient estimator, return against simulated steps and against wall time.

A linear policy on normalised observations (ARS-style) from zero, Adam, the survival bonus shifted
out of the training loss (:class:`simulator.rl.EpisodeObjective`), trained by

* ``es``: antithetic ES, 32 worlds, sigma 0.03, centred ranks (the black-box estimator);
* ``analytic``: backpropagation through the whole episode (4 worlds, the gradient clipped to norm
  100), the physics through Warp's adjoints;
* ``truncated``: backpropagation cut every 20 steps (4 worlds, clipped the same way).

Every ``eval_every`` iterations the policy is evaluated on 4 fresh starts at the training horizon
(``return``: gymnasium's reward, the survival bonus included). Each estimator gets the same wall
time (``seconds``); the simulated world-steps each used are on the other axis. Episodes of 200
steps (1.6 s) and 12 s per estimator with ``quick``; 1000 steps (gymnasium's episode) and 240 s
otherwise.

Writes ``locomotion.png`` and ``locomotion.csv`` (``estimator,iteration,sim_steps,seconds,return,
length,upright``). The gait itself: ``python -m simulator train hopper ...`` then ``render``
(README, "Reinforcement learning").
"""

from __future__ import annotations

import time

import numpy as np

from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv

COLUMNS = ["estimator", "iteration", "sim_steps", "seconds", "return", "length", "upright"]
ESTIMATORS = {
    "es": {"sigma": 0.03, "population": 32, "shaping": "centered_rank", "learning_rate": 0.02},
    "analytic": {"samples": 4, "clip_norm": 100.0, "learning_rate": 0.02},
    "truncated": {"window": 20, "samples": 4, "clip_norm": 100.0, "learning_rate": 0.02},
}


def train_curve(name: str, options: dict, *, horizon: int, seconds: float, eval_every: int, device=None) -> list[dict]:
    """Train with one estimator for ``seconds`` of wall time; the evaluation rows."""
    from simulator.optimize import optimize
    from simulator.rl.objective import EpisodeObjective
    from simulator.rl.training import evaluate_policy

    options = dict(options)
    learning_rate = options.pop("learning_rate")
    clip_norm = options.pop("clip_norm", None)
    objective = EpisodeObjective("hopper", "linear", horizon=horizon, survival_shift=1.0, device=device)
    rows, used = [], [0, 0.0]  # world-steps and training seconds so far
    start = time.perf_counter()

    def record(iteration, theta):
        summary = evaluate_policy(objective, theta, episodes=4)
        rows.append({"estimator": name, "iteration": iteration, "sim_steps": used[0], "seconds": used[1],
                     "return": summary["return"], "length": summary["length"], "upright": summary["upright"]})

    def callback(iteration, theta, estimate):
        used[0] += int(estimate.diagnostics["sim_steps"])
        used[1] = time.perf_counter() - start - sum(r.get("_eval", 0.0) for r in rows)
        if (iteration + 1) % eval_every == 0:
            tic = time.perf_counter()
            record(iteration + 1, theta)
            rows[-1]["_eval"] = time.perf_counter() - tic  # evaluation time is not training time
        return used[1] >= seconds

    record(0, objective.policy.initial_parameters())
    rows[-1]["_eval"] = time.perf_counter() - start
    optimize(objective, objective.policy.initial_parameters(), estimator=name, iterations=10**6, learning_rate=learning_rate,
             clip_norm=clip_norm, progress=False, callback=callback, **options)
    for row in rows:
        row.pop("_eval", None)
    return rows


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    horizon, seconds, eval_every = (200, 12.0, 5) if quick else (1000, 240.0, 10)
    rows = []
    for name, options in ESTIMATORS.items():
        rows += train_curve(name, options, horizon=horizon, seconds=seconds, eval_every=eval_every, device=device)
    csv_path = write_csv(out / "locomotion.csv", COLUMNS, rows)

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name in ESTIMATORS:
        mine = [r for r in rows if r["estimator"] == name]
        axes[0].plot([r["sim_steps"] for r in mine], [r["return"] for r in mine], marker=".", label=name)
        axes[1].plot([r["seconds"] for r in mine], [r["return"] for r in mine], marker=".", label=name)
    axes[0].set(xscale="symlog", xlabel="simulated world-steps", ylabel=f"return over {horizon} steps (4 fresh starts)",
                title="Hopper-v5: return against simulation")
    axes[1].set(xlabel="training wall time [s]", title="... and against wall time")
    axes[0].legend()
    png_path = save_figure(fig, out, "locomotion")
    best = {name: max(r["return"] for r in rows if r["estimator"] == name) for name in ESTIMATORS}
    return {"png": str(png_path), "csv": str(csv_path), "best_return": best, "horizon": horizon}


def main(argv=None):
    main_for(run, __doc__, argv)
