"""The package predicts its own gradient explosion: variance growth rate vs 2x the Lyapunov exponent.

Two systems, each with a knob. (1) A Sinai billiard (a ball bouncing between walls and a round
obstacle; contact only) at several contact softness values. (2) The passive acrobot (double
pendulum released near the top, feedback gains at zero) at several joint-damping levels (the
knob: damping removes the chaos). For each we measure (a) the largest
Lyapunov exponent lambda by tangent propagation with renormalisation and (b) the growth rate of
log(variance of the backprop gradient w.r.t. the feedback gains) against horizon, over random
initial angles. Theory: variance ~ exp(2*lambda*t) for typical trajectories; the variance, a
second moment, is dominated by the most expanding ones, so its rate (a generalised Lyapunov
exponent) is at least 2*lambda. Sign and ordering are what predict trouble: positive lambda,
exploding gradients; negative lambda, bounded ones.

In the billiard the gradient is w.r.t. the bias and gains of a linear force feedback on the ball
(zero: a free ball), over random initial directions.

Writes ``lyapunov.png`` and ``lyapunov.csv`` (columns
``system,knob,value,lyapunov_exponent,two_lambda,variance_growth_rate``).
"""

from __future__ import annotations

import numpy as np

import simulator as sim
from simulator import diagnostics
from simulator.demos import acrobot_task
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes import make

COLUMNS = ["system", "knob", "value", "lyapunov_exponent", "two_lambda", "variance_growth_rate"]


def billiard_objective(horizon: int, softness: float, device=None) -> sim.ControlObjective:
    def start(model, seed):  # the same position, 1 m/s in a random direction per world
        state = model.state()
        angle = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi, model.num_worlds)
        v = state.body_v.numpy()
        v[:, 0, :2] = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        state.body_v.assign(v)
        return state

    def scene(worlds):
        return make("sinai_billiard", num_worlds=worlds, device=device, requires_grad=True, softness=softness)

    return sim.ControlObjective(scene, sim.LinearFeedback([0], [(0.0, 0.0, 0.0)]), [sim.PositionLoss(0, (0.5, 0.5, 0.0))],
                                num_steps=horizon, initial_state=start)


def measure(make_objective, horizons) -> tuple[float, float]:
    """(Lyapunov exponent, growth rate of log gradient variance) at parameters zero (the zero
    policy of ``acrobot_task``: the billiard's feedback is zero too), both per second of the
    objective's step length."""
    zero = acrobot_task.policy
    longest = make_objective(horizons[-1])
    lyap = diagnostics.lyapunov_exponent(longest, zero(longest), num_worlds=8)
    variance = diagnostics.variance_vs_horizon(make_objective, zero, horizons, {"analytic": {"estimator": "analytic", "samples": 8}})
    rate = diagnostics.growth_rate([r["horizon"] * longest.dt for r in variance], [r["grad_variance"] for r in variance])
    return lyap.exponent, rate


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    rows = []
    softnesses = [0.0, 0.03] if quick else [0.0, 0.01, 0.03, 0.05]
    billiard_horizons = [50, 100, 200, 300, 400] if quick else [50, 100, 200, 300, 400, 500, 600]
    for softness in softnesses:
        exponent, rate = measure(lambda h: billiard_objective(h, softness, device), billiard_horizons)
        rows.append({"system": "sinai billiard", "knob": "softness [m]", "value": softness, "lyapunov_exponent": exponent,
                     "two_lambda": 2.0 * exponent, "variance_growth_rate": rate})
    dampings = [0.0, 0.5, 2.0] if quick else [0.0, 0.2, 0.5, 1.0, 2.0]
    horizons = [50, 100, 150, 200, 250, 300] if quick else [50, 100, 150, 200, 250, 300, 350, 400]
    for damping in dampings:
        exponent, rate = measure(lambda h: acrobot_task.objective(h, damping=damping, device=device), horizons)
        rows.append({"system": "acrobot", "knob": "damping [N m s]", "value": damping, "lyapunov_exponent": exponent,
                     "two_lambda": 2.0 * exponent, "variance_growth_rate": rate})
    csv_path = write_csv(out / "lyapunov.csv", COLUMNS, rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = np.arange(len(rows))
    ax.bar(x - 0.18, [r["two_lambda"] for r in rows], width=0.36, label="2 x Lyapunov exponent (tangent propagation)")
    ax.bar(x + 0.18, [r["variance_growth_rate"] for r in rows], width=0.36, label="growth rate of log gradient variance")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{r['system']}\n{r['knob'].split()[0]} {r['value']:g}" for r in rows], fontsize=7)
    ax.set(title="Predicted (2 lambda) vs measured growth of the gradient variance", ylabel="rate [1/s]")
    ax.legend(fontsize=8)
    png_path = save_figure(fig, out, "lyapunov")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
