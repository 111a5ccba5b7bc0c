"""Soft-sphere packing: backprop's gradient of the final energy explodes with the number of FIRE
steps, the ES (Gaussian-smoothed) gradient of the mean final energy does not (paper Fig. 4).

128 disks in 2D (64 of diameter 1, 64 of diameter D), soft-sphere potential (eps 1, alpha 2,
sigma_ij = (d_i + d_j)/2), packing fraction 0.98 in a periodic square of side
L(D) = sqrt(64*pi*(D^2 + 1)/4/0.98), uniform random initial (fractional) positions, minimised
with FIRE (jax-md's parameters): :class:`simulator.PackingObjective`. For each D, number of FIRE
steps and seed we record

* ``analytic``: the final energy of one random packing and dE/dD by backprop through the whole
  minimisation (the box term dE/dL dL/dD included);
* ``es``: the antithetic ES estimate of d/dD of the mean final energy (the population's members
  start from independent random packings; sigma = min(0.05, D/5) in D, so that no member's D
  is negative), and the population's mean energy.

Averaged over seeds the energy is a smooth function of D; the variance over seeds of the
backpropagated gradient grows enormously with the number of steps, that of the ES gradient
stays bounded.

Writes ``packing.png`` and ``packing.csv`` (columns ``estimator,diameter,steps,seed,energy,dE_dD``).
"""

from __future__ import annotations

import numpy as np

import simulator as sim
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv

COLUMNS = ["estimator", "diameter", "steps", "seed", "energy", "dE_dD"]
ES_SIGMA = 0.05  # smoothing of D [length], at most D/5


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    diameters = [0.35, 0.6, 0.85] if quick else [0.1, 0.35, 0.6, 0.85]
    step_counts = [4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    seeds = range(4 if quick else 16)
    # ES (population rollouts per estimate) on the smallest diameter in the quick run, on all in the full one
    es_diameters = diameters[:1] if quick else diameters
    population = 16 if quick else 32
    rows = []
    for steps in step_counts:
        objective = sim.PackingObjective(128, num_steps=steps, device=device)  # one model, reused for every D and seed
        for diameter in diameters:
            for seed in seeds:
                analytic = sim.grad(objective, [diameter], estimator="analytic", seed=seed)
                rows.append({"estimator": "analytic", "diameter": diameter, "steps": steps, "seed": seed, "energy": analytic.value,
                             "dE_dD": float(analytic.gradient[0])})
                if diameter in es_diameters:
                    es = sim.grad(objective, [diameter], estimator="es", sigma=min(ES_SIGMA, diameter / 5), population=population,
                                  seed=seed)
                    rows.append({"estimator": "es", "diameter": diameter, "steps": steps, "seed": seed, "energy": es.value,
                                 "dE_dD": float(es.gradient[0])})
    csv_path = write_csv(out / "packing.csv", COLUMNS, rows)

    def select(estimator, diameter, steps):
        return [r for r in rows if r["estimator"] == estimator and r["diameter"] == diameter and r["steps"] == steps]

    plt = pyplot()
    fig, (ax_e, ax_v) = plt.subplots(1, 2, figsize=(11, 4.2))
    for steps in step_counts:
        means = [np.mean([r["energy"] for r in select("analytic", d, steps)]) for d in diameters]
        ax_e.plot(diameters, means, marker="o", label=f"{steps} FIRE steps")
    for estimator, style in (("analytic", "-"), ("es", "--")):
        for diameter in es_diameters if estimator == "es" else diameters:
            variances = [np.var([r["dE_dD"] for r in select(estimator, diameter, s)], ddof=1) for s in step_counts]
            ax_v.semilogy(step_counts, variances, style, marker="o", label=f"{estimator}, D = {diameter:g}")
    ax_e.set(title="Mean final energy over seeds", xlabel="small diameter D", ylabel="energy")
    ax_v.set(title="Variance of dE/dD over seeds (backprop vs ES)", xlabel="FIRE steps", ylabel="var(dE/dD)", xscale="log")
    ax_e.legend(fontsize=8)
    ax_v.legend(fontsize=7)
    png_path = save_figure(fig, out, "packing")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
