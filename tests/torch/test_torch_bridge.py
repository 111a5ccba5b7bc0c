"""The PyTorch bridge: gradcheck in float64, reentrancy, retain_graph, no doubled or zero gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simulator as sim  # noqa: E402
import warp as wp  # noqa: E402
import simulator.torch as simtorch  # noqa: E402
from simulator.scenes import make  # noqa: E402


@pytest.fixture(scope="module")
def ball(device):
    """A ball pressed into the ground (softened contact, friction): every input matters."""
    scene = make("bouncing_ball", device=device, precision="float64", height=0.098, velocity=(0.4, 0.1, -0.2),
                 friction=0.6, contact=sim.ContactSettings(softness=2e-3))
    return scene.model


def initial(model):
    tensors = simtorch.state_tensors(model.state())
    tensors["body_w"] = tensors["body_w"] + torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    return tensors


def rollout(model, state, forces, steps):
    for t in range(steps):
        state = simtorch.step(model, state, {"body_force": forces[t]}, dt=1e-3)
    return state


def test_step_passes_torch_gradcheck_in_float64(ball):
    state = initial(ball)
    inputs = [state["body_q"].requires_grad_(), state["body_v"].requires_grad_(), state["body_w"].requires_grad_(),
              torch.tensor([[[1.0, -2.0, 3.0]]], dtype=torch.float64, requires_grad=True),
              torch.tensor([[[0.1, 0.2, -0.1]]], dtype=torch.float64, requires_grad=True)]

    def two_steps(q, v, w, f, tau):
        s = {"body_q": q, "body_v": v, "body_w": w}
        for _ in range(2):
            s = simtorch.step(ball, s, {"body_force": f, "body_torque": tau}, dt=1e-3)
        return s["body_q"], s["body_v"], s["body_w"]

    assert torch.autograd.gradcheck(two_steps, inputs, eps=1e-7, atol=1e-6, rtol=1e-5)


def test_step_matches_the_simulator_and_is_not_silently_zero(ball):
    state = initial(ball)
    forces = torch.zeros((20, 1, 1, 3), dtype=torch.float64)
    out = rollout(ball, state, forces, 20)
    reference_state = ball.state()
    reference_state.body_w.assign(state["body_w"].numpy())
    reference = sim.rollout(ball, reference_state, num_steps=20, dt=1e-3).final
    assert np.array_equal(out["body_q"].numpy(), reference.body_q.numpy())
    assert np.linalg.norm(out["body_v"].numpy()) > 0.1


def test_two_rollouts_in_one_graph_and_retain_graph(ball):
    """Reentrant: two rollouts sharing a force tensor give the sum of their separate gradients;
    two backward passes with retain_graph accumulate exactly twice that, never more."""
    forces = torch.full((10, 1, 1, 3), 0.5, dtype=torch.float64, requires_grad=True)

    def loss_of(scale):
        return rollout(ball, initial(ball), forces * scale, 10)["body_q"][0, 0, :3].sum()

    separate = []
    for scale in (1.0, 2.0):
        forces.grad = None
        loss_of(scale).backward()
        separate.append(forces.grad.clone())
    forces.grad = None
    total = loss_of(1.0) + loss_of(2.0)
    total.backward(retain_graph=True)
    once = forces.grad.clone()
    assert torch.allclose(once, separate[0] + separate[1], rtol=1e-12, atol=0)
    assert torch.count_nonzero(once) > 0
    total.backward()
    assert torch.allclose(forces.grad, 2 * once, rtol=1e-12, atol=0)


def quadratic_objective(*, device):
    def free_sphere(num_worlds):
        b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
        body = b.add_body(mass=1.0, inertia=(0.01, 0.01, 0.01))
        b.add_sphere(body, radius=0.1)
        return b.finalize(num_worlds=num_worlds, device=device, precision="float64", requires_grad=True)

    return sim.ControlObjective(free_sphere, sim.OpenLoopForces([0]), [sim.PositionLoss(0, (0.3, -0.2, 0.1))], num_steps=4, dt=0.05)


def test_objective_loss_analytic_passes_gradcheck(device):
    objective = quadratic_objective(device=device)
    theta = torch.linspace(-0.3, 0.3, objective.num_parameters, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: simtorch.objective_loss(objective, t), (theta,), eps=1e-6, atol=1e-7)


def test_objective_loss_switches_estimator_with_one_flag(device):
    objective = quadratic_objective(device=device)
    theta = torch.zeros(objective.num_parameters, dtype=torch.float64, requires_grad=True)
    for estimator, options in (("analytic", {}), ("es", {"sigma": 0.1, "population": 32})):
        theta.grad = None
        loss = simtorch.objective_loss(objective, theta, estimator=estimator, seed=3, **options)
        (2.0 * loss).backward()
        expected = sim.grad(objective, theta.detach().numpy(), estimator=estimator, seed=3, **options)
        assert loss.item() == pytest.approx(expected.value, rel=1e-12)
        assert np.allclose(theta.grad.numpy(), 2.0 * expected.gradient, rtol=1e-12, atol=0)


def test_bad_torch_input(ball, device):
    state = initial(ball)
    with pytest.raises(ValueError, match=r"body_v must have shape \(1, 1, 3\), got \(1, 3\)"):
        simtorch.step(ball, {**state, "body_v": torch.zeros((1, 3), dtype=torch.float64)}, dt=1e-3)
    with pytest.raises(ValueError, match=r"body_q must be torch.float64"):
        simtorch.step(ball, {**state, "body_q": state["body_q"].float()}, dt=1e-3)
    with pytest.raises(ValueError, match=r"theta must be a 1-D torch tensor"):
        simtorch.objective_loss(quadratic_objective(device=device), torch.zeros((2, 2)))


def test_torch_boundary_names_the_argument_instead_of_a_warp_error(ball, pendulum, device):
    """Every tensor crossing into Warp is checked at the boundary (issue 15): a ParameterError
    naming the argument, not a Warp-level error, a silently wrong result or an integer loss."""
    state = initial(ball)
    nan_q = state["body_q"].clone()
    nan_q[0, 0, 2] = float("nan")
    with pytest.raises(sim.ParameterError, match=r"body_q must be finite, got nan at index \[0, 0, 2\]"):
        simtorch.step(ball, {**state, "body_q": nan_q}, dt=1e-3)
    with pytest.raises(sim.ParameterError, match=r"body_force must be a torch tensor, got list"):
        simtorch.step(ball, state, {"body_force": [[[0.0, 0.0, 0.0]]]}, dt=1e-3)
    with pytest.raises(sim.ParameterError, match=r"theta must be a floating-point tensor, got torch\.int64"):
        simtorch.objective_loss(quadratic_objective(device=device), torch.zeros(2, dtype=torch.int64))
    q, qd = wp.to_torch(pendulum.state().joint_q).clone(), wp.to_torch(pendulum.state().joint_qd).clone()
    with pytest.raises(sim.ParameterError, match=r"joint_q must be finite, got nan"):
        simtorch.joint_step(pendulum, q * float("nan"), qd, dt=0.01)
    scene = lambda worlds: make("pendulum", num_worlds=worlds, device=device, precision="float64", requires_grad=True)  # noqa: E731
    actions = torch.zeros((3, 1, 1), dtype=torch.float64)
    with pytest.raises(sim.ParameterError, match=r"joint_q must be torch\.float64 to match the model's precision, got torch\.float32"):
        simtorch.joint_rollout(scene, q.float(), qd, actions, dt=0.01)
    with pytest.raises(sim.ParameterError, match=r"joint_q must have shape \(1, 1\), got \(1, 0\)"):
        simtorch.joint_rollout(scene, q[:, :0], qd, actions, dt=0.01)
    with pytest.raises(sim.ParameterError, match=r"actions must be a floating-point tensor, got torch\.int64"):
        simtorch.joint_rollout(scene, q, qd, actions.long(), dt=0.01)
    context = sim.LossContext(step=0, final=True, initial_state=pendulum.state(), elapsed=0.1)
    with pytest.raises(sim.ParameterError, match=r"joint_q must have shape \(1, 1\), got \(1, 0\)"):
        simtorch.terms_loss(pendulum, make("pendulum", device=device).task.losses(5), context, {"joint_q": q[:, :0]})


@pytest.fixture(scope="module")
def pendulum(device):
    return make("pendulum", device=device, precision="float64", requires_grad=True, damping=0.1).model


def test_joint_step_passes_torch_gradcheck_in_float64(pendulum):
    q = torch.tensor([[0.7]], dtype=torch.float64, requires_grad=True)
    qd = torch.tensor([[-0.4]], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)

    def two_steps(q, qd, u):
        for _ in range(2):
            out = simtorch.joint_step(pendulum, q, qd, u, dt=0.02, substeps=2)
            q, qd = out["joint_q"], out["joint_qd"]
        return q, qd

    assert torch.autograd.gradcheck(two_steps, (q, qd, u), eps=1e-7, atol=1e-7, rtol=1e-6)


def test_torch_policy_trains_by_backward_through_joint_steps(pendulum):
    """A closed-loop nn.Module acting inside the rollout gets a gradient from loss.backward()
    that matches central differences of the same loss w.r.t. one of its weights."""
    torch.manual_seed(0)
    policy = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()

    def loss_fn():
        q, qd = torch.tensor([[0.3]], dtype=torch.float64), torch.zeros((1, 1), dtype=torch.float64)
        for _ in range(10):
            out = simtorch.joint_step(pendulum, q, qd, policy(torch.cat([q, qd], dim=1)), dt=0.02, substeps=2)
            q, qd = out["joint_q"], out["joint_qd"]
        return (q**2).sum() + 0.1 * (qd**2).sum()

    policy.zero_grad()
    loss_fn().backward()
    weight = policy[2].weight
    analytic = weight.grad[0, 3].item()
    with torch.no_grad():
        weight[0, 3] += 1e-6
        plus = loss_fn().item()
        weight[0, 3] -= 2e-6
        minus = loss_fn().item()
        weight[0, 3] += 1e-6
    assert analytic == pytest.approx((plus - minus) / 2e-6, rel=1e-5)
    assert analytic != 0.0


def test_torch_policy_objective_is_es_only(device):
    torch.manual_seed(0)
    policy = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    objective = sim.SceneTaskObjective("pendulum", device=device, precision="float64", num_steps=10,
                                       controller=simtorch.TorchPolicy(policy))
    theta = torch.nn.utils.parameters_to_vector(policy.parameters())
    assert objective.num_parameters == theta.numel()
    with pytest.raises(ValueError, match="has no Warp adjoint: use estimator='es'"):
        simtorch.objective_loss(objective, theta, estimator="analytic")
    loss = simtorch.objective_loss(objective, theta, estimator="es", sigma=0.1, population=8)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in policy.parameters())
    assert sum(p.grad.abs().sum().item() for p in policy.parameters()) > 0


def test_joint_rollout_analytic_and_es_backward(device):
    """The same batched rollout op with either backward: analytic passes gradcheck; ES, averaged
    over seeds, agrees with analytic on a short smooth rollout (within 4 standard errors)."""
    def scene(num_worlds):
        return make("pendulum", num_worlds=num_worlds, device=device, precision="float64", requires_grad=True, damping=0.1).model

    q0 = torch.tensor([[0.3], [-0.5]], dtype=torch.float64, requires_grad=True)
    qd0 = torch.tensor([[0.0], [0.2]], dtype=torch.float64, requires_grad=True)
    actions = torch.full((5, 2, 1), 0.2, dtype=torch.float64, requires_grad=True)

    def final_q(q, qd, u, **options):
        return simtorch.joint_rollout(scene, q, qd, u, dt=0.02, substeps=2, **options)[0]

    assert torch.autograd.gradcheck(final_q, (q0, qd0, actions), eps=1e-7, atol=1e-7, rtol=1e-6)

    weights = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    (final_q(q0, qd0, actions) * weights).sum().backward()
    exact = actions.grad.clone()
    samples = []
    for seed in range(30):
        actions.grad = None
        (final_q(q0, qd0, actions, estimator="es", sigma=0.01, population=16, seed=seed) * weights).sum().backward()
        samples.append(actions.grad.clone())
    samples = torch.stack(samples)
    error = (samples.mean(0) - exact).abs()
    assert torch.all(error <= 4 * samples.std(0) / np.sqrt(len(samples)) + 1e-9)
    with pytest.raises(ValueError, match="population must be even"):
        simtorch.joint_rollout(scene, q0, qd0, actions, dt=0.02, estimator="es", population=7)
