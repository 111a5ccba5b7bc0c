"""Loss landscape: smooth for short rollouts, rugged for long ones (paper Fig. 2a).

The ant quadruped (hard penalty contact with the ground) runs a linear feedback policy with
random gains theta. We evaluate its task loss (minus the mean forward velocity) along one random
direction, theta + s*d for s in [-0.05, 0.05], with all randomness fixed, for horizons of 1 to
128 control steps. Each slice is one batched rollout (one world per offset). Short horizons give
smooth curves; long ones, after many contact events, rugged ones.

Writes ``landscape.png`` and ``landscape.csv`` (columns ``horizon,offset,loss``).
"""

from __future__ import annotations

import numpy as np

import simulator as sim
from simulator import diagnostics

from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes import make as make_scene


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    horizons = [4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128]
    offsets = np.linspace(-0.05, 0.05, 41 if quick else 201)
    rng = np.random.default_rng(0)

    def make(horizon):
        probe = make_scene("ant", device=device, precision="float64")
        controller = sim.LinearJointFeedback.for_model(probe.model)
        return sim.SceneTaskObjective("ant", device=device, precision="float64", num_steps=horizon, controller=controller)

    size = make(1).num_parameters
    theta = 0.1 * rng.standard_normal(size)
    direction = rng.standard_normal(size)
    direction /= np.linalg.norm(direction)
    table = diagnostics.loss_slice(make, lambda o: theta, lambda o: direction, offsets, horizons)

    rows = [{"horizon": h, "offset": float(s), "loss": float(v)} for h, line in zip(horizons, table) for s, v in zip(offsets, line)]
    csv_path = write_csv(out / "landscape.csv", ["horizon", "offset", "loss"], rows)
    roughness = {h: diagnostics.roughness(line) for h, line in zip(horizons, table)}

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for h, line in zip(horizons, table):
        centred = (line - line.mean()) / (np.ptp(line) or 1.0)
        ax.plot(offsets, centred, label=f"{h} steps (roughness {roughness[h]:.2f})")
    ax.set(title="Ant: task loss along a random parameter direction", xlabel="offset s along the direction",
           ylabel="loss, centred and scaled to its range [-]")
    ax.legend(fontsize=8)
    png_path = save_figure(fig, out, "landscape")
    return {"png": str(png_path), "csv": str(csv_path), "roughness": roughness}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
