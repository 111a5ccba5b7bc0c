"""The package predicts its own gradient explosion: the moment Lyapunov exponent L(2) against the
measured growth rate of the gradient variance.

Two systems, each with a knob. (1) A Sinai billiard (a ball bouncing between walls and a round
obstacle; contact only) at several contact softness values. (2) The passive acrobot (double
pendulum released near the top, feedback gains at zero) at several joint-damping levels (the
knob: damping removes the chaos). For each, two independent computations:

* the prediction, from tangent propagation only (no gradient): over an ensemble of initial
  conditions, the largest Lyapunov exponent lambda and the moment Lyapunov exponent
  L(2) = lim (1/T) log E[||J_T v||^2] (``diagnostics.moment_lyapunov``). A variance is a second
  moment, so it grows like exp(L(2) t); L(2) >= 2 lambda (Jensen), with equality only when the
  finite-time exponents do not fluctuate. The predicted rate is the slope of
  log E[||J_t v||^2] against t at the fit horizons;
  The gradient w.r.t. a parameter sums such products over every start time, so where they decay
  (L(2) < 0) its variance settles to a constant: the predicted rate is max(slope, 0);
* the measurement: the growth rate of log(variance of the backprop gradient w.r.t. the feedback
  gains) over random initial conditions, fitted at the same horizons.

Both fits start at 1 s (100 steps of 10 ms, in both systems): over the first second the gradient w.r.t. a force
parameter builds up from zero (polynomially, as a force integrates into a position), a growth
that no Jacobian product describes. In the billiard the gradient is w.r.t. the bias and gains of
a linear force feedback on the ball (zero: a free ball), over random initial directions.

Writes ``lyapunov.png`` and ``lyapunov.csv`` (columns ``system,knob,value,lyapunov_exponent,
two_lambda,moment_exponent_2,predicted_rate,predicted_low,predicted_high,variance_growth_rate,
measured_low,measured_high,relative_error``: rates in 1/s, ``_low``/``_high`` the 95% bootstrap
intervals over the worlds, ``relative_error`` = predicted / measured - 1).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from tqdm.auto import tqdm

import simulator as sim
from simulator import diagnostics
from simulator.demos import acrobot_task
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes import make

COLUMNS = ["system", "knob", "value", "lyapunov_exponent", "two_lambda", "moment_exponent_2", "predicted_rate", "predicted_low",
           "predicted_high", "variance_growth_rate", "measured_low", "measured_high", "relative_error"]
FIT_FROM = 1.0  # [s]: both rates are fitted at horizons from here on (see the module docstring)


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


def measure(make_objective, horizons, *, worlds: int, samples: int) -> dict:
    """The prediction (tangent propagation over ``worlds`` initial conditions) and the measured
    growth rate of the gradient variance (``samples`` per horizon) at parameters zero (the zero
    policy of ``acrobot_task``; the billiard's feedback is zero too), both per second, with
    95% bootstrap intervals over the worlds."""
    zero = acrobot_task.policy
    longest = make_objective(horizons[-1])
    fit = [h for h in horizons if h * longest.dt >= FIT_FROM - 1e-9]
    moments = diagnostics.moment_lyapunov(longest, zero(longest), q=(1, 2), num_worlds=worlds)
    measured = diagnostics.variance_growth(make_objective, zero, fit, samples=samples)
    # a sum of Jacobian products over start times: its variance settles where they decay (rate 0)
    predicted = max(moments.rate(2, fit), 0.0)
    low, high = (max(bound, 0.0) for bound in moments.rate_interval(2, fit))
    return {"lyapunov_exponent": moments.lyapunov, "two_lambda": 2.0 * moments.lyapunov, "moment_exponent_2": moments.exponent(2),
            "predicted_rate": predicted, "predicted_low": low, "predicted_high": high,
            "variance_growth_rate": measured.rate, "measured_low": measured.interval[0], "measured_high": measured.interval[1],
            "relative_error": predicted / measured.rate - 1.0}


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    worlds, samples = (1024, 64) if quick else (4096, 256)
    softnesses = [0.0, 0.03] if quick else [0.0, 0.01, 0.03, 0.05]
    billiard_horizons = [100, 200, 300, 400] if quick else [100, 200, 300, 400, 500, 600]
    dampings = [0.0, 0.5, 2.0] if quick else [0.0, 0.2, 0.5, 1.0, 2.0]
    acrobot_horizons = [100, 150, 200, 250, 300] if quick else [100, 150, 200, 250, 300, 350, 400]
    cases = [("sinai billiard", "softness [m]", softness, partial(billiard_objective, softness=softness, device=device), billiard_horizons)
             for softness in softnesses]
    cases += [("acrobot", "damping [N m s]", damping, partial(acrobot_task.objective, damping=damping, device=device), acrobot_horizons)
              for damping in dampings]
    rows = []
    for system, knob, value, make_objective, horizons in tqdm(cases, desc="lyapunov"):
        rows.append({"system": system, "knob": knob, "value": value,
                     **measure(make_objective, horizons, worlds=worlds, samples=samples)})
    csv_path = write_csv(out / "lyapunov.csv", COLUMNS, rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = np.arange(len(rows))
    ax.bar(x - 0.27, [r["two_lambda"] for r in rows], width=0.27, label="2 x Lyapunov exponent (tangent propagation)")
    for shift, key, low, high, label in ((0.0, "predicted_rate", "predicted_low", "predicted_high",
                                          "predicted: moment exponent L(2) (tangent propagation)"),
                                         (0.27, "variance_growth_rate", "measured_low", "measured_high",
                                          "measured: growth rate of log gradient variance")):
        values = np.array([r[key] for r in rows])
        errors = np.array([[v - r[low], r[high] - v] for v, r in zip(values, rows)]).T
        ax.bar(x + shift, values, width=0.27, yerr=np.maximum(errors, 0.0), capsize=2, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{r['system']}\n{r['knob'].split()[0]} {r['value']:g}" for r in rows], fontsize=7)
    ax.set(title="Predicted (L(2), and the bound 2 lambda) vs measured growth of the gradient variance", ylabel="rate [1/s]")
    ax.legend(fontsize=8)
    png_path = save_figure(fig, out, "lyapunov")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
