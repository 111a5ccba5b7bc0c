"""Reinforcement learning on the package's worlds: episodic tasks, batched episodes, gymnasium
environments and observation normalisation.

    EpisodeTask, Locomotion, SwingUp     observation, reward and termination of a task
    make_task, episode_tasks             the registered tasks: hopper, walker2d, half_cheetah, ant
                                         (gymnasium v5 definitions on gymnasium's MJCF files),
                                         pendulum_swingup, cartpole_swingup, acrobot_swingup
    BatchedEpisodes                      W worlds of a task, automatic reset, numpy in and out
    VectorEnv, Env                       gymnasium interfaces (the ``rl`` extra: gymnasium)
    RunningNormalizer                    running mean/variance observation normalisation
"""

from .episodes import BatchedEpisodes
from .normalize import RunningNormalizer
from .tasks import EpisodeTask, Locomotion, SwingUp, episode_tasks, make_task

__all__ = ["BatchedEpisodes", "RunningNormalizer", "EpisodeTask", "Locomotion", "SwingUp", "episode_tasks", "make_task", "VectorEnv", "Env"]


def __getattr__(name):
    if name in ("VectorEnv", "Env"):
        from . import gym

        return getattr(gym, name)
    raise AttributeError(f"module 'simulator.rl' has no attribute {name!r}")
