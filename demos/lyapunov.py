"""The package predicts its own gradient explosion: variance growth rate vs 2x the Lyapunov exponent.

For the passive acrobot (double pendulum released near the top, feedback gains at zero) at
several joint-damping levels (the knob: damping removes the chaos), we measure (a) the largest
Lyapunov exponent lambda by tangent propagation with renormalisation and (b) the growth rate of
log(variance of the backprop gradient w.r.t. the feedback gains) against horizon, over random
initial angles. Theory: variance ~ exp(2*lambda*t) for typical trajectories; the variance, a
second moment, is dominated by the most expanding ones, so its rate (a generalised Lyapunov
exponent) is at least 2*lambda. Sign and ordering are what predict trouble: positive lambda,
exploding gradients; negative lambda, bounded ones.

Writes ``lyapunov.png`` and ``lyapunov.csv`` (columns
``system,damping,lyapunov_exponent,two_lambda,variance_growth_rate``).
"""

from __future__ import annotations

import numpy as np

from simulator import diagnostics
from simulator.demos import acrobot_task
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv

COLUMNS = ["system", "damping", "lyapunov_exponent", "two_lambda", "variance_growth_rate"]


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    dampings = [0.0, 0.5, 2.0] if quick else [0.0, 0.2, 0.5, 1.0, 2.0]
    horizons = [50, 100, 150, 200, 250, 300] if quick else [50, 100, 150, 200, 250, 300, 350, 400]
    rows = []
    for damping in dampings:
        passive = acrobot_task.policy(acrobot_task.objective(1, damping=damping, device=device))
        lyap = diagnostics.lyapunov_exponent(acrobot_task.objective(horizons[-1], damping=damping, device=device), passive,
                                             num_worlds=8)
        variance = diagnostics.variance_vs_horizon(lambda h: acrobot_task.objective(h, damping=damping, device=device),
                                                   lambda o: passive, horizons,
                                                   {"analytic": {"estimator": "analytic", "samples": 8}})
        rate = diagnostics.growth_rate([r["horizon"] * 0.01 for r in variance], [r["grad_variance"] for r in variance])
        rows.append({"system": "acrobot", "damping": damping, "lyapunov_exponent": lyap.exponent,
                     "two_lambda": 2.0 * lyap.exponent, "variance_growth_rate": rate})
    csv_path = write_csv(out / "lyapunov.csv", COLUMNS, rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(rows))
    ax.bar(x - 0.18, [r["two_lambda"] for r in rows], width=0.36, label="2 x Lyapunov exponent (tangent propagation)")
    ax.bar(x + 0.18, [r["variance_growth_rate"] for r in rows], width=0.36, label="growth rate of log gradient variance")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"damping {r['damping']:g}" for r in rows])
    ax.set(title="Acrobot: predicted vs measured gradient explosion", ylabel="rate [1/s]")
    ax.legend(fontsize=8)
    png_path = save_figure(fig, out, "lyapunov")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
