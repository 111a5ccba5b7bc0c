"""A torch MLP policy trained through the simulator with analytic or ES gradients, one flag apart.

The pendulum swing-up task (the scene's loss terms: 10*(2 sin((q - pi)/2))^2 + 0.1*qd^2 after the
horizon, plus 1e-3 times the mean squared torque command) with a closed-loop ``torch.nn.Module``
policy (observation [q, qd], two tanh layers of 32, one torque in [-1, 1]) trained by an ordinary
torch loop (``torch.optim.Adam``, ``loss.backward()``):

* ``analytic``: the rollout is written in torch with :func:`simulator.torch.joint_step` and scored
  by :func:`simulator.torch.terms_loss` with the task's terms; the backward pass runs Warp's
  adjoint step by step through the policy.
* ``es``: :func:`simulator.torch.objective_loss` with ``estimator="es"``; the population runs as
  batched worlds, each with its own copy of the policy's parameters (``simulator.torch.TorchPolicy``).

Writes ``torch_policy.png`` and ``torch_policy.csv`` (columns ``estimator,iteration,loss``).
"""

from __future__ import annotations

import torch
import warp as wp

import simulator as sim
import simulator.torch as simtorch
from simulator.demos.common import main_for, output_dir, pyplot, save_figure, write_csv
from simulator.scenes import make


def make_policy(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 1), torch.nn.Tanh()).double()


def analytic_loss(policy, scene, horizon: int) -> torch.Tensor:
    """The task loss (mean over worlds) of a torch rollout, from the same terms the ES objective adds."""
    terms = scene.task.losses(horizon)
    start = scene.model.state(requires_grad=False)
    joint_q, joint_qd = wp.to_torch(start.joint_q).clone(), wp.to_torch(start.joint_qd).clone()
    loss = torch.zeros(scene.model.num_worlds, dtype=joint_q.dtype, device=joint_q.device)
    for t in range(horizon):
        action = policy(torch.cat([joint_q, joint_qd], dim=1))
        out = simtorch.joint_step(scene.model, joint_q, joint_qd, action, dt=scene.dt, substeps=scene.substeps)
        joint_q, joint_qd = out["joint_q"], out["joint_qd"]
        context = sim.LossContext(initial_state=start, step=t, elapsed=(t + 1) * scene.dt, final=t == horizon - 1)
        loss = loss + simtorch.terms_loss(scene.model, terms, context, {"joint_q": joint_q, "joint_qd": joint_qd}, joint_act=action)
    return loss.mean()


def train(estimator: str, iterations: int, horizon: int, device=None) -> list[float]:
    policy = make_policy()
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.02)
    scene = make("pendulum", device=device, precision="float64", requires_grad=True)
    objective = sim.SceneTaskObjective("pendulum", device=device, precision="float64", num_steps=horizon,
                                       controller=simtorch.TorchPolicy(policy))
    losses = []
    for iteration in range(iterations):
        optimizer.zero_grad()
        if estimator == "analytic":
            loss = analytic_loss(policy, scene, horizon)
        else:  # the one flag: the same torch loop, a black-box gradient
            theta = torch.nn.utils.parameters_to_vector(policy.parameters())
            loss = simtorch.objective_loss(objective, theta, estimator="es", sigma=0.05, population=32, seed=iteration)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def run(out_dir="out", *, quick: bool = False, device=None) -> dict:
    out = output_dir(out_dir)
    iterations, horizon = (8, 40) if quick else (150, 150)
    curves = {name: train(name, iterations, horizon, device) for name in ("analytic", "es")}
    rows = [{"estimator": name, "iteration": i, "loss": loss} for name, losses in curves.items() for i, loss in enumerate(losses)]
    csv_path = write_csv(out / "torch_policy.csv", ["estimator", "iteration", "loss"], rows)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, losses in curves.items():
        ax.plot(losses, label=f"{name} gradient")
    ax.set(title=f"Torch MLP policy, pendulum swing-up ({horizon} steps)", xlabel="Adam iteration", ylabel="task loss")
    ax.legend()
    png_path = save_figure(fig, out, "torch_policy")
    return {"png": str(png_path), "csv": str(csv_path), "curves": curves}


def main(argv=None):
    main_for(run, __doc__, argv)


if __name__ == "__main__":
    main()
