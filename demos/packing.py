"""Soft-sphere packing: the gradient of the final energy w.r.t. the diameter ratio (paper Fig. 4).

128 disks in 2D (64 of diameter 1, 64 of diameter D), soft-sphere potential (eps 1, alpha 2,
sigma_ij = (d_i + d_j)/2), packing fraction 0.98 in a periodic square of side
L(D) = sqrt(64*pi*(D^2 + 1)/4/0.98), uniform random initial (fractional) positions, minimised
with FIRE (jax-md's parameters). For each D and number of FIRE steps we record the final
energy and dE/dD by backprop through the whole minimisation; dE/dD sums the small disks'
diameter gradients and the box term dE/dL * dL/dD. Averaged over seeds the energy is a smooth
function of D; the per-seed gradients' variance grows enormously with the number of steps.

Writes ``packing.png`` and ``packing.csv`` (columns ``diameter,steps,seed,energy,dE_dD``).
"""

from __future__ import annotations


import numpy as np
import warp as wp

from simulator import md
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes.md_systems import bidisperse_packing, packing_box_side_derivative

COLUMNS = ["diameter", "steps", "seed", "energy", "dE_dD"]


def energy_and_gradient(diameter: float, steps: int, seed: int, *, n: int = 128, device=None):
    """Final FIRE energy and its total derivative w.r.t. the small diameter D."""
    model, _ = bidisperse_packing(n, small_diameter=diameter, seed=seed, device=device, requires_grad=True)
    fractional = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 2))
    integrator = md.FIRE(neighbors=md.NeighborList(model))
    state = model.state()
    tape = wp.Tape()
    with tape:
        wp.copy(state.positions, md.positions_from_fractional(model, fractional))
        trajectory = md.rollout(model, state, integrator, num_steps=steps)
        energy = md.potential_energy(model, trajectory.final, integrator.neighbors)
    tape.backward(loss=energy)
    d_diameters = model.particle_diameter.grad.numpy()[n // 2 :].sum()
    d_box = float(np.sum(model.box.grad.numpy()))  # both sides are L
    return float(energy.numpy()[0]), float(d_diameters + d_box * packing_box_side_derivative(n, diameter))


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    diameters = [0.35, 0.6, 0.85] if quick else [0.1, 0.35, 0.6, 0.85]
    step_counts = [4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    seeds = range(4 if quick else 16)
    rows = []
    for diameter in diameters:
        for steps in step_counts:
            for seed in seeds:
                energy, gradient = energy_and_gradient(diameter, steps, seed, device=device)
                rows.append({"diameter": diameter, "steps": steps, "seed": seed, "energy": energy, "dE_dD": gradient})
    csv_path = write_csv(out / "packing.csv", COLUMNS, rows)

    plt = pyplot()
    fig, (ax_e, ax_v) = plt.subplots(1, 2, figsize=(11, 4.2))
    for steps in step_counts:
        means = [np.mean([r["energy"] for r in rows if r["diameter"] == d and r["steps"] == steps]) for d in diameters]
        ax_e.plot(diameters, means, marker="o", label=f"{steps} FIRE steps")
    for diameter in diameters:
        variances = [np.var([r["dE_dD"] for r in rows if r["diameter"] == diameter and r["steps"] == s], ddof=1) for s in step_counts]
        ax_v.semilogy(step_counts, variances, marker="o", label=f"D = {diameter:g}")
    ax_e.set(title="Mean final energy over seeds", xlabel="small diameter D", ylabel="energy")
    ax_v.set(title="Variance of dE/dD over seeds", xlabel="FIRE steps", ylabel="var(dE/dD)", xscale="log")
    ax_e.legend(fontsize=8)
    ax_v.legend(fontsize=8)
    png_path = save_figure(fig, out, "packing")
    return {"png": str(png_path), "csv": str(csv_path), "rows": rows}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
