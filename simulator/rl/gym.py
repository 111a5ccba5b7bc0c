"""gymnasium interfaces of the episodic tasks: a :class:`VectorEnv` over the batched worlds and a
single-world :class:`Env` (needs the ``rl`` extra: ``pip install "gradsim[rl]"``).

Both wrap :class:`simulator.rl.episodes.BatchedEpisodes`. The vector environment resets ended
worlds in the same step (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``: the
observation of an ended world is the first of its next episode; ``info["final_obs"]`` holds the
last one in the rows where ``info["_final_obs"]`` is True). ``array_backend="torch"`` takes and
returns torch tensors (on ``torch_device``) instead of numpy arrays, for RL code written in torch.
Observations are float32; actions are boxes of the actuators' control ranges (MuJoCo's ``ctrl``
order for the locomotion tasks, as in gymnasium).

    from simulator.rl import VectorEnv
    envs = VectorEnv("hopper", num_envs=64, seed=0)
    obs, info = envs.reset()
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ..errors import ParameterError
from .episodes import BatchedEpisodes
from .tasks import EpisodeTask

ARRAY_BACKENDS = ("numpy", "torch")


def _spaces(episodes: BatchedEpisodes):
    observation = spaces.Box(-np.inf, np.inf, shape=(episodes.observation_size,), dtype=np.float32)
    action = spaces.Box(episodes.action_low.astype(np.float32), episodes.action_high.astype(np.float32), dtype=np.float32)
    return observation, action


class VectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` worlds of ``task`` as a gymnasium vector environment (see the module docstring).

    Args:
        task: a task name (``simulator.rl.episode_tasks()``) or an :class:`EpisodeTask`.
        num_envs: the number of worlds (simulated in the same kernel launches).
        seed: seed of the first reset (``reset(seed=...)`` reseeds).
        device, precision, max_episode_steps: as for :class:`BatchedEpisodes`.
        array_backend: ``"numpy"`` or ``"torch"``.
        torch_device: the device of the returned tensors (torch backend).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task: str | EpisodeTask, num_envs: int = 1, *, seed: int | None = None, device=None, precision: str = "float32",
                 max_episode_steps: int | None = None, array_backend: str = "numpy", torch_device=None):
        if array_backend not in ARRAY_BACKENDS:
            raise ParameterError(f"array_backend must be one of {ARRAY_BACKENDS}, got {array_backend!r}")
        self.episodes = BatchedEpisodes(task, num_envs, device=device, precision=precision, seed=seed, max_episode_steps=max_episode_steps)
        self.num_envs = num_envs
        self.array_backend, self.torch_device = array_backend, torch_device
        self.single_observation_space, self.single_action_space = _spaces(self.episodes)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.spec = None

    def _out(self, array: np.ndarray, dtype=np.float32):
        array = np.asarray(array, dtype=dtype)
        if self.array_backend == "torch":
            import torch

            return torch.as_tensor(array, device=self.torch_device)
        return array

    def _info(self, info: dict) -> dict:
        """The info arrays in the backend's type (the final observations float32, as observations)."""
        return {k: self._out(v, np.float32 if k == "final_obs" else v.dtype) for k, v in info.items()}

    def reset(self, *, seed: int | list | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        if seed is not None:
            self._np_random, _ = gymnasium.utils.seeding.np_random(seed)
        observation = self.episodes.reset(seed=seed)
        return self._out(observation), {}

    def step(self, actions):
        if hasattr(actions, "detach"):
            actions = actions.detach().cpu().numpy()
        observation, reward, terminated, truncated, info = self.episodes.step(actions)
        return (self._out(observation), self._out(reward, np.float64), self._out(terminated, bool), self._out(truncated, bool),
                self._info(info))

    def close_extras(self, **kwargs):
        self.episodes = None


class Env(gymnasium.Env):
    """One world of ``task`` as a gymnasium environment (no automatic reset: call ``reset`` after
    ``terminated`` or ``truncated``, as gymnasium expects). Arguments as for :class:`VectorEnv`."""

    metadata = {"render_modes": []}

    def __init__(self, task: str | EpisodeTask, *, seed: int | None = None, device=None, precision: str = "float32",
                 max_episode_steps: int | None = None):
        self.episodes = BatchedEpisodes(task, 1, device=device, precision=precision, seed=seed, max_episode_steps=max_episode_steps)
        self.observation_space, self.action_space = _spaces(self.episodes)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        observation = self.episodes.reset(seed=seed)
        return observation[0].astype(np.float32), {}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(1, -1)
        observation, reward, terminated, truncated, info = self.episodes.step(action)
        if info["_final_obs"][0]:
            observation = info["final_obs"]
        scalars = {k: (v[0].item() if isinstance(v, np.ndarray) and v.shape[:1] == (1,) else v) for k, v in info.items()}
        return observation[0].astype(np.float32), float(reward[0]), bool(terminated[0]), bool(truncated[0]), scalars
