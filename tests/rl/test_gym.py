"""The gymnasium interfaces: gymnasium's environment checker, the vector API (spaces, seeding,
same-step autoreset, torch mode) and a short PPO written here in torch that must improve its
return on the vector environment."""

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
torch = pytest.importorskip("torch")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402

from simulator.errors import ParameterError  # noqa: E402
from simulator.rl import Env, RunningNormalizer, VectorEnv  # noqa: E402


@pytest.mark.parametrize("task", ["inverted_pendulum", "hopper", "cartpole_swingup"])
def test_single_env_passes_gymnasium_env_checker(task):
    check_env(Env(task, seed=0), skip_render_check=True)


def test_vector_env_api():
    envs = VectorEnv("hopper", num_envs=3, seed=0)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.observation_space.shape == (3, 11) and envs.action_space.shape == (3, 3)
    obs, info = envs.reset(seed=4)
    assert envs.observation_space.contains(obs)
    again, _ = envs.reset(seed=4)
    np.testing.assert_array_equal(obs, again)
    envs.action_space.seed(0)
    for _ in range(5):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert obs.dtype == np.float32 and reward.shape == (3,) and terminated.dtype == bool
    assert envs.observation_space.contains(obs)
    with pytest.raises(ParameterError, match="array_backend"):
        VectorEnv("hopper", num_envs=1, array_backend="jax")


def test_vector_env_torch_backend():
    envs = VectorEnv("pendulum_swingup", num_envs=4, seed=0, array_backend="torch")
    obs, _ = envs.reset()
    assert isinstance(obs, torch.Tensor) and obs.shape == (4, 3) and obs.dtype == torch.float32
    obs, reward, terminated, truncated, info = envs.step(torch.zeros(4, 1))
    assert isinstance(reward, torch.Tensor) and isinstance(terminated, torch.Tensor) and terminated.dtype == torch.bool
    numpy_envs = VectorEnv("pendulum_swingup", num_envs=4, seed=0)
    numpy_envs.reset()
    np_obs, np_reward, *_ = numpy_envs.step(np.zeros((4, 1)))
    np.testing.assert_array_equal(obs.numpy(), np_obs)
    np.testing.assert_array_equal(reward.numpy(), np_reward)


class _ActorCritic(torch.nn.Module):
    def __init__(self, obs_size, act_size):
        super().__init__()
        self.actor = torch.nn.Sequential(torch.nn.Linear(obs_size, 32), torch.nn.Tanh(), torch.nn.Linear(32, act_size))
        self.critic = torch.nn.Sequential(torch.nn.Linear(obs_size, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        self.log_std = torch.nn.Parameter(torch.zeros(act_size))

    def distribution(self, obs):
        return torch.distributions.Normal(self.actor(obs), self.log_std.exp())


def _ppo(envs, iterations, horizon=64, epochs=4, minibatches=4, gamma=0.99, lam=0.95, clip=0.2, seed=0):
    """Plain PPO (Schulman et al. 2017, clipped surrogate, GAE), written here: the point is that a
    user's own torch RL code drives the vector environment unchanged. Returns the mean return of
    the episodes that ended in each iteration."""
    torch.manual_seed(seed)
    n, obs_size, act_size = envs.num_envs, envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    net = _ActorCritic(obs_size, act_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    norm = RunningNormalizer(obs_size)
    obs, _ = envs.reset(seed=seed)
    returns = []
    for _ in range(iterations):
        buf = {k: [] for k in ("obs", "act", "logp", "rew", "done", "val", "next_val")}
        ended = []
        for _ in range(horizon):
            norm.update(obs)
            x = norm.normalize(obs)
            with torch.no_grad():
                dist = net.distribution(x)
                action = dist.sample()
                value = net.critic(x).squeeze(-1)
            next_obs, reward, terminated, truncated, info = envs.step(action)
            final = next_obs.clone()
            if info["_final_obs"].any():
                mask = info["_final_obs"]
                final[mask] = torch.as_tensor(info["final_obs"])[mask]
                ended += list(info["episode_return"][mask].numpy())
            with torch.no_grad():
                next_value = net.critic(norm.normalize(final)).squeeze(-1) * (~terminated)
            for k, v in zip(buf, (x, action, dist.log_prob(action).sum(-1), reward.float(), terminated | truncated, value, next_value)):
                buf[k].append(v)
            obs = next_obs
        b = {k: torch.stack(v) for k, v in buf.items()}
        advantages = torch.zeros_like(b["rew"])
        running = torch.zeros(n)
        for t in reversed(range(horizon)):
            delta = b["rew"][t] + gamma * b["next_val"][t] - b["val"][t]
            running = delta + gamma * lam * (~b["done"][t]) * running
            advantages[t] = running
        targets = advantages + b["val"]
        flat = {k: v.reshape(horizon * n, *v.shape[2:]) for k, v in b.items()}
        adv, tgt = advantages.reshape(-1), targets.reshape(-1)
        for _ in range(epochs):
            for idx in torch.randperm(horizon * n).chunk(minibatches):
                dist = net.distribution(flat["obs"][idx])
                ratio = (dist.log_prob(flat["act"][idx]).sum(-1) - flat["logp"][idx]).exp()
                a = (adv[idx] - adv[idx].mean()) / (adv[idx].std() + 1e-8)
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()
                value_loss = (net.critic(flat["obs"][idx]).squeeze(-1) - tgt[idx]).pow(2).mean()
                optimizer.zero_grad()
                (policy_loss + 0.5 * value_loss).backward()
                optimizer.step()
        returns.append(float(np.mean(ended)) if ended else float("nan"))
    return returns


def test_ppo_in_torch_improves_on_the_vector_env():
    """InvertedPendulum-v5 as defined by gymnasium (reward 1 per step upright): a random policy
    keeps the pole up for a few steps; PPO on 16 worlds (about 16k steps) must at least triple the
    mean episode return of its first iteration."""
    envs = VectorEnv("inverted_pendulum", num_envs=16, seed=0, array_backend="torch")
    returns = _ppo(envs, iterations=16)
    first = np.nanmean(returns[:2])
    last = np.nanmean(returns[-3:])
    assert np.isfinite(first) and last >= 3 * first, returns
