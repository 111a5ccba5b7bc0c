"""Training curves of a robot controller with four gradient estimators at equal simulation budget.

Pendulum swing-up (150 steps of 20 ms; 75 with --quick; loss 10*(2 sin((q - pi)/2))^2 + 0.1 qd^2 at the end plus
effort): an open-loop torque sequence trained with Adam from zero, with analytic, truncated
(windows of 25 steps), ES (antithetic, 16 worlds) and hybrid gradients. Every estimator gets the
same number of simulated world-steps; the x axis counts them.

Writes ``control.png`` and ``control.csv`` (columns ``estimator,iteration,sim_steps,loss``).
"""

from __future__ import annotations

import numpy as np

import simulator as sim
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv

COLUMNS = ["estimator", "iteration", "sim_steps", "loss"]
ESTIMATORS = {
    "analytic": {},
    "truncated": {"window": 25},
    "es": {"sigma": 0.1, "population": 16},
    "hybrid": {"samples": 2, "sigma": 0.1, "population": 16},
}


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    objective = sim.SceneTaskObjective("pendulum", device=device, precision="float64", num_steps=75 if quick else 150)
    budget = (3 if quick else 20) * 16 * objective.num_steps  # world-steps per estimator
    rows = []
    for name, options in ESTIMATORS.items():
        theta = np.zeros(objective.num_parameters)
        adam = sim.Adam(theta.size, learning_rate=0.05)
        used, iteration = 0, 0
        while used < budget:
            estimate = sim.grad(objective, theta, estimator=name, seed=iteration, **options)
            used += estimate.diagnostics["sim_steps"]
            theta = adam.update(theta, estimate.gradient)
            rows.append({"estimator": name, "iteration": iteration, "sim_steps": used, "loss": estimate.value})
            iteration += 1
    csv_path = write_csv(out / "control.csv", COLUMNS, rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name in ESTIMATORS:
        points = [(r["sim_steps"], r["loss"]) for r in rows if r["estimator"] == name]
        ax.semilogy(*zip(*points), label=name)
    ax.set(title="Pendulum swing-up: loss against simulation budget", xlabel="simulated world-steps",
           ylabel="task loss")
    ax.legend()
    png_path = save_figure(fig, out, "control")
    final = {name: min(r["loss"] for r in rows if r["estimator"] == name) for name in ESTIMATORS}
    return {"png": str(png_path), "csv": str(csv_path), "best_loss": final}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
