"""Gradient variance against horizon: backprop explodes on a chaotic system, ES does not.

The acrobot (double pendulum) released near the top is chaotic. For horizons of 0.25 to 4 s we
estimate the gradient of its swing-up loss w.r.t. the gains of a linear feedback policy (at
zero: the passive pendulum) with three
estimators, over random initial angles: full backprop (8 worlds), truncated backprop (windows of
10 steps, 8 worlds) and antithetic ES (32 worlds, sigma 0.1). The variance of the analytic
gradient grows exponentially with the horizon (about exp(2*lambda*t)); truncation and ES stay
bounded, ES at the price of a larger variance on short horizons.

Writes ``variance.png`` and ``variance.csv`` (columns
``horizon,estimator,grad_mean_norm,grad_variance,seconds``).
"""

from __future__ import annotations


from simulator import diagnostics
from simulator.demos import acrobot_task
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv

COLUMNS = ["horizon", "estimator", "grad_mean_norm", "grad_variance", "seconds"]
ESTIMATORS = {
    "analytic": {"estimator": "analytic", "samples": 8},
    "truncated (10 steps)": {"estimator": "truncated", "window": 10, "samples": 8},
    "es": {"estimator": "es", "population": 32, "sigma": 0.1},
}


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    horizons = [25, 50, 100, 200, 400] if quick else [25, 50, 75, 100, 150, 200, 300, 400]
    rows = diagnostics.variance_vs_horizon(lambda h: acrobot_task.objective(h, device=device), acrobot_task.policy,
                                           horizons, ESTIMATORS)
    csv_path = write_csv(out / "variance.csv", COLUMNS, rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label in ESTIMATORS:
        points = [(r["horizon"] * 0.01, r["grad_variance"]) for r in rows if r["estimator"] == label]
        ax.semilogy(*zip(*points), marker="o", label=label)
    ax.set(title="Acrobot (chaotic): variance of the gradient estimate", xlabel="horizon [s]",
           ylabel="gradient variance (sum over parameters)")
    ax.legend()
    png_path = save_figure(fig, out, "variance")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
