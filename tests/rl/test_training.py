"""Training policies on episodic tasks with the package's estimators: the episode objective,
optimize's objective state, best-so-far and clipping, policy files, and the CLI commands."""

import numpy as np
import pytest

import simulator as sim
from simulator.cli import main
from simulator.errors import ParameterError
from simulator.rl import BatchedEpisodes
from simulator.rl.objective import EpisodeObjective
from simulator.rl.policies import LinearPolicy, MLPPolicy
from simulator.rl.training import evaluate_policy, load_policy, record_episode, save_policy, train

pytest.importorskip("gymnasium")


def test_loss_is_minus_the_return_until_termination():
    """InvertedPendulum-v5 pays 1 per step while upright: minus the loss of each world equals the
    number of steps before the pole fell, counted by stepping the same episodes by hand."""
    objective = EpisodeObjective("inverted_pendulum", "linear", horizon=300)
    rng = np.random.default_rng(0)
    rows = rng.normal(scale=0.5, size=(6, objective.num_parameters))
    run = objective.run(rows, seed=7, update_statistics=False)
    episodes = BatchedEpisodes("inverted_pendulum", 6, max_episode_steps=10**9)
    observations = episodes.reset(seed=7)
    alive, steps = np.ones(6, bool), np.zeros(6)
    for _ in range(300):
        observations, reward, terminated, _, _ = episodes.step(objective.policy.act(rows, objective.observe(observations)))
        steps += alive * reward
        alive &= ~terminated
    np.testing.assert_array_equal(run["return"], steps)
    np.testing.assert_array_equal(objective.evaluate_rows(rows, seed=7), -steps)
    assert np.all(run["length"] >= run["return"]) and np.all(run["length"] <= 300)
    shifted = EpisodeObjective("inverted_pendulum", "linear", horizon=300, survival_shift=1.0)
    np.testing.assert_array_equal(shifted.evaluate_rows(rows, seed=7), -(steps - run["length"]))  # ARS's shift: 1 per step alive


@pytest.mark.parametrize("task, policy, h", [("pendulum_swingup", "mlp", 1e-5), ("hopper", "linear", 1e-5), ("ant", "linear", 1e-7)])
def test_backprop_through_episodes_matches_central_differences(task, policy, h):
    """float64: the analytic gradient of minus the return (physics through Warp's adjoints; the
    task's reward and the policy in torch; the hopper's feet touching the floor) against central
    differences of the forward episodes along a random direction (the ant: its free joint converted
    to MuJoCo's coordinates in torch; its return has a kink, a contact or limit onset, within
    1e-5 of this theta along the direction, so its differences use h = 1e-7, where they have converged)."""
    pytest.importorskip("torch")
    config = {"kind": "mlp", "hidden": [8]} if policy == "mlp" else policy
    objective = EpisodeObjective(task, config, horizon=25, normalize=False, precision="float64")
    rng = np.random.default_rng(0)
    theta = rng.normal(scale=0.1, size=objective.num_parameters)
    result = sim.grad(objective, theta, estimator="analytic", seed=3)
    assert result.value == pytest.approx(sim.evaluate(objective, theta, seed=3), rel=1e-12)
    direction = rng.normal(size=theta.size)
    direction /= np.linalg.norm(direction)
    central = (sim.evaluate(objective, theta + h * direction, seed=3) - sim.evaluate(objective, theta - h * direction, seed=3)) / (2 * h)
    assert result.gradient @ direction == pytest.approx(central, rel=1e-5, abs=1e-7)
    truncated = sim.grad(objective, theta, estimator="truncated", window=5, seed=3)
    whole = sim.grad(objective, theta, estimator="truncated", window=25, seed=3)
    np.testing.assert_allclose(whole.gradient, result.gradient, rtol=1e-12)
    assert not np.allclose(truncated.gradient, result.gradient)  # the cut between windows is real


def test_survival_only_reward_has_zero_gradient():
    """InvertedPendulum-v5's reward is 1 while upright: piecewise constant, so backprop gives 0
    (the paper's point: ES sees what the analytic gradient cannot)."""
    pytest.importorskip("torch")
    objective = EpisodeObjective("inverted_pendulum", "linear", horizon=20)
    assert np.all(sim.grad(objective, np.ones(objective.num_parameters), estimator="analytic").gradient == 0)
    with pytest.raises(ParameterError, match="checkpoint_every"):
        sim.grad(objective, np.ones(objective.num_parameters), estimator="analytic", checkpoint_every=5)


def test_policies_give_the_same_actions_on_numpy_and_torch():
    torch = pytest.importorskip("torch")
    low, high = np.array([-3.0, 0.0]), np.array([3.0, 1.0])
    obs = np.random.default_rng(2).normal(size=(4, 5))
    for policy in (LinearPolicy(5, 2, low, high), MLPPolicy(5, 2, low, high, hidden=(8,))):
        rows = np.random.default_rng(1).normal(size=(4, policy.num_parameters))
        np.testing.assert_allclose(policy.act(torch.tensor(rows), torch.tensor(obs)).numpy(), policy.act(rows, obs), rtol=1e-12)


def test_policies_act_inside_the_action_box():
    low, high = np.array([-3.0, 0.0]), np.array([3.0, 1.0])
    rows = np.random.default_rng(1).normal(scale=5.0, size=(4, 2 * 5))
    obs = np.random.default_rng(2).normal(size=(4, 5))
    actions = LinearPolicy(5, 2, low, high).act(rows, obs)
    assert np.all(actions >= low) and np.all(actions <= high)
    mlp = MLPPolicy(5, 2, low, high, hidden=(8,))
    actions = mlp.act(np.tile(mlp.initial_parameters(0), (4, 1)) * 50, obs)
    assert np.all(actions >= low) and np.all(actions <= high)
    assert mlp.num_parameters == 8 * 6 + 2 * 9


def test_es_training_improves_and_resumes_bitwise(tmp_path):
    """ES (rank-shaped, observation-normalised) on the inverted pendulum: the mean return rises; a
    run stopped after 4 iterations and resumed equals an uninterrupted one bitwise (the running
    observation statistics travel in the checkpoint); best.npz and the policy files are written."""
    options = dict(policy="linear", iterations=10, horizon=200, learning_rate=0.05, sigma=0.05, population=32, progress=False)
    objective, result = train("inverted_pendulum", out_dir=tmp_path / "full", **options)
    losses = [float(row["loss"]) for row in result.history]
    assert np.mean(losses[-3:]) < 2 * np.mean(losses[:2]), losses  # at least twice the return
    train("inverted_pendulum", out_dir=tmp_path / "split", **{**options, "iterations": 4})
    resumed_objective, resumed = train("inverted_pendulum", out_dir=tmp_path / "split", **options)
    assert resumed.resumed_from == 4
    np.testing.assert_array_equal(resumed.theta, result.theta)
    np.testing.assert_array_equal(resumed_objective.normalizer.mean, objective.normalizer.mean)
    for name in ("best.npz", "policy.npz", "best_policy.npz", "log.csv", "checkpoint.npz"):
        assert (tmp_path / "full" / name).exists(), name
    with np.load(tmp_path / "full" / "best.npz") as best:
        assert float(best["loss"]) == min(losses)
    loaded, theta = load_policy(tmp_path / "full")
    (tmp_path / "split" / "policy.npz").unlink()  # as after a kill: the checkpoint and policy.json still load
    from_checkpoint, checkpoint_theta = load_policy(tmp_path / "split")
    np.testing.assert_array_equal(checkpoint_theta, result.theta)
    assert from_checkpoint.task.name == "inverted_pendulum"
    np.testing.assert_array_equal(theta, result.theta)
    assert evaluate_policy(loaded, theta, episodes=3) == evaluate_policy(objective, result.theta, episodes=3)


def test_clip_norm_bounds_every_step():
    objective = EpisodeObjective("pendulum_swingup", "linear", horizon=20)
    theta0 = np.zeros(objective.num_parameters)
    clipped = sim.optimize(objective, theta0, estimator="es", iterations=1, learning_rate=0.1, clip_norm=1e-3, sigma=0.1,
                           population=8, progress=False)
    assert clipped.history[0]["gradient_norm"] > 1e-3  # the estimate is reported unclipped
    with pytest.raises(ParameterError, match="clip_norm"):
        sim.optimize(objective, theta0, estimator="es", iterations=1, clip_norm=-1.0, progress=False)


def test_policy_file_roundtrip_and_bad_paths(tmp_path):
    objective = EpisodeObjective("cartpole_swingup", {"kind": "mlp", "hidden": [8]}, horizon=30)
    theta = objective.policy.initial_parameters(3)
    objective.run(np.tile(theta, (2, 1)), seed=0)  # some observation statistics
    path = save_policy(tmp_path / "p.npz", objective, theta)
    loaded, loaded_theta = load_policy(path)
    assert loaded.policy.config() == {"kind": "mlp", "hidden": [8]} and loaded.num_steps == 30
    np.testing.assert_array_equal(loaded.normalizer.mean, objective.normalizer.mean)
    assert evaluate_policy(loaded, loaded_theta, episodes=2) == evaluate_policy(objective, theta, episodes=2)
    with pytest.raises(ParameterError, match="saved policy"):
        load_policy(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ParameterError, match="not a saved policy"):
        load_policy(tmp_path / "bad.npz")
    model, trajectory = record_episode(loaded, loaded_theta, horizon=10)
    assert trajectory.num_steps == 10 and model.num_worlds == 1


def test_cli_train_evaluate_render(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "inverted_pendulum", "--iterations", "2", "--population", "4", "--horizon", "50", "--out", str(out),
                 "--eval-episodes", "2"]) == 0
    assert "return" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--episodes", "2", "--horizon", "100"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("task")]
    assert len(lines) == 2 and "horizon 100" in lines[1]
    assert main(["render", str(out), "--out", str(tmp_path / "ip.gif"), "--horizon", "10"]) == 0
    assert (tmp_path / "ip.gif").stat().st_size > 0
    assert main(["train", "humanoid_dance", "--out", str(out)]) == 2
    assert "task must be one of" in capsys.readouterr().err


def test_bench_rl_splits_an_iteration():
    """``bench rl``: the parts of an ES iteration add up to its time, and every environment row has
    gymnasium's rate beside it (a small iteration here)."""
    pytest.importorskip("mujoco")
    from simulator.bench import rl as bench

    split = bench.iteration_split("hopper", population=4, steps=5, repeats=1, device="cpu")
    parts = [split[k] for k in ("physics", "task_host", "policy", "estimator")]
    assert min(parts[:3]) > 0 and sum(parts) == pytest.approx(split["total"])
    row = bench.env_steps("hopper", 2, 5, 1, "cpu")
    assert row["world_steps_per_s"] > 0 and bench.gymnasium_steps("hopper", 5, 1) > 0


def test_a_policy_trained_here_balances_in_mujoco():
    """The real thing: 15 ES iterations here (linear policy, about 7 s) give a policy that keeps
    gymnasium's InvertedPendulum-v5, stepped by MuJoCo, upright for the full 1000 steps, as it does
    here (the same observation definition and normalisation carry over unchanged)."""
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    objective, result = train("inverted_pendulum", policy="linear", iterations=15, horizon=1000, population=32, sigma=0.05,
                              learning_rate=0.05, progress=False)
    assert evaluate_policy(objective, result.theta, episodes=8)["return"] == 1000
    env = gymnasium.make("InvertedPendulum-v5")
    returns = []
    for episode in range(8):
        obs, _ = env.reset(seed=episode)
        total = 0.0
        for _ in range(1000):
            obs, reward, terminated, truncated, _ = env.step(objective.policy.act(result.theta[None], objective.observe(obs[None]))[0])
            total += reward
            if terminated or truncated:
                break
        returns.append(total)
    assert np.mean(returns) >= 900, returns


def test_optimize_callback_sees_every_iteration_and_can_stop():
    objective = EpisodeObjective("pendulum_swingup", "linear", horizon=10)
    seen = []

    def callback(iteration, theta, estimate):
        seen.append((iteration, theta.copy(), estimate.value))
        return iteration == 2

    result = sim.optimize(objective, np.zeros(objective.num_parameters), estimator="es", iterations=10, population=4, progress=False,
                          callback=callback)
    assert [s[0] for s in seen] == [0, 1, 2] and len(result.history) == 3
    np.testing.assert_array_equal(seen[-1][1], result.theta)
