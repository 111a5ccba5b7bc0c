"""simulator.torch.terms_loss: the task's loss terms as a torch op (gradcheck in float64), and the
torch-policy demo's rollout loss equal to the SceneTaskObjective's loss of the same policy."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import warp as wp  # noqa: E402

import simulator as sim  # noqa: E402
import simulator.torch as simtorch  # noqa: E402
from simulator.demos import torch_policy  # noqa: E402
from simulator.losses import add_terms  # noqa: E402
from simulator.scenes import make  # noqa: E402

DEVICE = os.environ.get("SIMULATOR_TEST_DEVICE", "cpu")  # run the suite on a GPU with =cuda


def test_terms_loss_gradcheck():
    """Joint error, effort and forward progress (poses by forward kinematics of joint_q) against
    central differences, and the value against the terms added directly in Warp."""
    scene = make("pendulum", num_worlds=2, device=DEVICE, precision="float64", requires_grad=True)
    model = scene.model
    terms = [*scene.task.losses(4), sim.ForwardProgress(0, axis=(0.6, 0.0, 0.8), weight=0.5)]
    context = sim.LossContext(initial_state=model.state(), step=3, elapsed=4 * scene.dt, final=True)
    rng = np.random.default_rng(0)
    q, qd, act = (torch.tensor(rng.uniform(-1.0, 1.0, (2, 1)), dtype=torch.float64, device=DEVICE, requires_grad=True) for _ in range(3))

    def loss(q, qd, act):
        return simtorch.terms_loss(model, terms, context, {"joint_q": q, "joint_qd": qd}, joint_act=act)

    assert torch.autograd.gradcheck(loss, (q, qd, act), eps=1e-6, atol=1e-7, rtol=1e-5)
    state, control = model.state(), model.control()
    state.joint_q.assign(q.detach().cpu().numpy())
    state.joint_qd.assign(qd.detach().cpu().numpy())
    sim.eval_fk(model, state)
    control.joint_act.assign(act.detach().cpu().numpy())
    direct = wp.zeros(2, dtype=wp.float64, device=DEVICE)
    add_terms(terms, model, state, control, direct, context)
    np.testing.assert_allclose(loss(q, qd, act).detach().cpu().numpy(), direct.numpy(), rtol=1e-13)
    with pytest.raises(ValueError, match="unknown entries"):
        simtorch.terms_loss(model, terms, context, {"joint_x": q})


def test_demo_torch_rollout_loss_equals_the_objective_loss():
    """The analytic demo path (torch rollout + terms_loss) and the ES path (SceneTaskObjective with
    TorchPolicy) score the same policy with the same loss."""
    horizon = 6
    policy = torch_policy.make_policy(seed=3)
    scene = make("pendulum", device=DEVICE, precision="float64", requires_grad=True)
    objective = sim.SceneTaskObjective("pendulum", device=DEVICE, precision="float64", num_steps=horizon,
                                       controller=simtorch.TorchPolicy(policy))
    theta = torch.nn.utils.parameters_to_vector(policy.parameters()).detach().cpu().numpy()
    expected = sim.gradients.evaluate(objective, theta[None])[0]
    assert torch_policy.analytic_loss(policy, scene, horizon).item() == pytest.approx(expected, rel=1e-10)
