"""Contact softening: a ball dropped from 128 heights at once, and the gradient of where it ends up.

A ball falls from height h0 and bounces; we record its height z(T) after T = 0.6 s in 128 batched
worlds (one per h0; 32 with --quick) with one tape, and take dz(T)/dh0 for every world in one backward pass. With
the hard penalty law (softness 0) and with softened contact, the tape gradient is compared with
finite differences of the landscape; the surrogate mode keeps the hard forward pass and uses the
softened law's derivatives.

Writes ``contact_softening.png`` and ``contact_softening.csv`` (columns
``setting,h0,z_final,tape_gradient,finite_difference``).
"""

from __future__ import annotations

import numpy as np
import warp as wp

import simulator as sim
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes import make

SETTINGS = {
    "hard (softness 0)": sim.ContactSettings(softness=0.0),
    "soft (softness 5 mm)": sim.ContactSettings(softness=5.0e-3),
    "surrogate (hard forward, 5 mm backward)": sim.ContactSettings(softness=5.0e-3, mode="surrogate"),
}


def landscape(contact: sim.ContactSettings, heights: np.ndarray, *, seconds: float, device=None):
    """z(T) and the tape's dz(T)/dh0 for every initial height (one batched rollout)."""
    scene = make("bouncing_ball", num_worlds=len(heights), device=device, precision="float64",
                 requires_grad=True, damping=5.0, contact=contact)
    state0 = scene.model.state()
    q = state0.body_q.numpy()
    q[:, 0, 2] = heights
    state0.body_q.assign(q)
    tape = wp.Tape()
    with tape:
        traj = sim.rollout(scene.model, state0, num_steps=int(round(seconds / scene.dt)), dt=scene.dt)
    seed = np.zeros(q.shape)
    seed[:, 0, 2] = 1.0  # d(sum over worlds of z_T): worlds are independent, so this is per world
    tape.backward(grads={traj.final.body_q: wp.array(seed, dtype=traj.final.body_q.dtype, device=scene.model.device)})
    return traj.final.body_q.numpy()[:, 0, 2], state0.body_q.grad.numpy()[:, 0, 2]


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    """Run the demo; return the paths written and a summary."""
    out = output_dir(out_dir)
    heights = np.linspace(0.3, 0.6, 32 if quick else 128)
    rows, curves = [], {}
    for name, contact in SETTINGS.items():
        z, grad = landscape(contact, heights, seconds=0.6, device=device)
        fd = np.gradient(z, heights)
        curves[name] = (z, grad, fd)
        rows += [(name, h, zi, gi, fi) for h, zi, gi, fi in zip(heights, z, grad, fd)]

    columns = ["setting", "h0", "z_final", "tape_gradient", "finite_difference"]
    csv_path = write_csv(out / "contact_softening.csv", columns, [dict(zip(columns, row)) for row in rows])

    plt = pyplot()
    fig, (ax_z, ax_g) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, (z, grad, fd) in curves.items():
        (line,) = ax_z.plot(heights, z, label=name)
        ax_g.plot(heights, grad, color=line.get_color(), label=f"{name}: tape")
        ax_g.plot(heights, fd, color=line.get_color(), linestyle=":", label=f"{name}: finite difference")
    ax_z.set(title=f"Height after 0.6 s: {len(heights)} worlds in one rollout", xlabel="initial height h0 [m]", ylabel="z(T) [m]")
    ax_g.set(title="dz(T)/dh0: tape gradient vs finite differences", xlabel="initial height h0 [m]", ylabel="dz(T)/dh0 [-]")
    ax_z.legend(fontsize=8)
    ax_g.legend(fontsize=7)
    png_path = save_figure(fig, out, "contact_softening")
    return {"png": str(png_path), "csv": str(csv_path), "settings": list(curves)}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
