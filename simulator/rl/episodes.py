"""Episodes of a task on W batched worlds, with automatic reset of the worlds whose episode ended.

:class:`BatchedEpisodes` is the environment core the gymnasium interfaces
(:mod:`simulator.rl.gym`) and the package's trainers drive: ``reset() -> observations`` and
``step(actions) -> (observations, rewards, terminated, truncated, info)`` on numpy arrays (one row
per world). The physics of a step runs in the rollout engine (one step of the task's ``dt`` in
``substeps``, its captured graph replayed, the two states used in turn); observation, reward and
termination are the task's (:class:`simulator.rl.tasks.EpisodeTask`).

Automatic reset ("same step", gymnasium's ``AutoresetMode.SAME_STEP``): a world whose episode
ended in a step is reset at once, so the observation returned for it is the first of its next
episode; the last observation of the ended episode is in ``info["final_obs"]`` (rows where
``info["_final_obs"]`` is True), with ``info["episode_return"]`` and
``info["episode_length"]`` of the ended episodes.

Random numbers: world ``w``'s reset noise comes from its own generator, seeded from
``(seed, w)`` at :meth:`reset` (``numpy.random.SeedSequence``), so a world's episodes do not
depend on how many worlds run beside it.
"""

from __future__ import annotations

import numpy as np

from ..engine import Engine
from ..errors import ParameterError, check_integer, describe
from ..solver import RigidSolver
from .tasks import EpisodeTask, make_task


class BatchedEpisodes:
    """W worlds of one task (see the module docstring).

    Args:
        task: a task name (:func:`simulator.rl.tasks.episode_tasks`) or an :class:`EpisodeTask`.
        num_worlds: W.
        device, precision: of the model (``precision`` ``"float32"`` or ``"float64"``).
        seed: seed of the first :meth:`reset` (a later ``reset(seed=...)`` reseeds).
        max_episode_steps: episode length (default: the task's).

    Attributes:
        observation_size, action_size: O and A.
        action_low, action_high: ``(A,)`` bounds of the actions (the actuators' control ranges;
            actions outside are clipped by the actuators).
        model, engine, state: the physics (``state`` is the current one).
        stepped_coordinates: ``(qpos, qvel)`` reached by the last step, before ended worlds were reset.
        action_columns: ``joint_act`` column ``j`` takes action ``action_columns[j]`` (None: the
            actions are the columns themselves).
    """

    def __init__(self, task: str | EpisodeTask, num_worlds: int = 1, *, device=None, precision: str = "float32", seed: int | None = None,
                 max_episode_steps: int | None = None):
        self.task = make_task(task)
        self.num_worlds = check_integer("num_worlds", num_worlds, minimum=1)
        self.max_episode_steps = self.task.max_episode_steps if max_episode_steps is None else check_integer(
            "max_episode_steps", max_episode_steps, minimum=1)
        self.model = self.task.build(self.num_worlds, device=device, precision=precision)
        self.substeps = self.task.substeps(self.model)
        self.engine = Engine(RigidSolver(self.model), threads=1)  # one step per call: a thread hand-off would cost more than it splits
        self.engine.solver.check_dt(self.task.dt, self.substeps)
        self._states = [self.model.state(requires_grad=False), self.model.state(requires_grad=False)]
        self._current = 0
        self.control = self.model.control(requires_grad=False)
        if self.control.joint_act is None:
            raise ParameterError(f"task must drive a model with actuators, got {self.task.name!r} whose model has none")
        self.action_columns = self.task.action_order(self.model)
        art = self.model.articulation
        low, high = art.act_lower.numpy().astype(np.float64), art.act_upper.numpy().astype(np.float64)
        if self.action_columns is not None:  # joint_act column j is ctrl[order[j]]
            low, high = low[np.argsort(self.action_columns)], high[np.argsort(self.action_columns)]
        self.action_low, self.action_high = low, high
        self.action_size = low.shape[0]
        self._qpos0, self._qvel0 = (a[0] for a in self.task.coordinates(self.model, self.state))
        self.observation_size = self.task.observe(self._qpos0[None], self._qvel0[None]).shape[1]
        self._seed = seed
        self._rngs: list[np.random.Generator] = []
        self._coordinates = None
        self.episode_return = np.zeros(self.num_worlds)
        self.episode_length = np.zeros(self.num_worlds, dtype=np.int64)
        self.simulated_steps = 0  # world-steps of dt since construction

    @property
    def state(self):
        return self._states[self._current]

    @property
    def dt(self) -> float:
        return self.task.dt

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode in every world; returns the observations ``(W, O)``. With a
        ``seed`` (or, at the first reset, the constructor's) every world's generator is reseeded;
        without one the worlds continue their own random streams."""
        if seed is None and not self._rngs:
            seed = self._seed
        if seed is not None or not self._rngs:
            children = np.random.SeedSequence(seed).spawn(self.num_worlds)
            self._rngs = [np.random.default_rng(child) for child in children]
        self._reset_worlds(np.arange(self.num_worlds))
        return self.task.observe(*self._coordinates)

    def _reset_worlds(self, worlds: np.ndarray) -> None:
        rows = [self.task.reset_noise(self._qpos0, self._qvel0, self._rngs[w], 1) for w in worlds]
        qpos = np.concatenate([r[0] for r in rows]) if rows else np.zeros((0, self._qpos0.shape[0]))
        qvel = np.concatenate([r[1] for r in rows]) if rows else np.zeros((0, self._qvel0.shape[0]))
        self.task.set_coordinates(self.model, self.state, qpos, qvel, worlds)
        self._coordinates = self.task.coordinates(self.model, self.state)
        self.episode_return[worlds] = 0.0
        self.episode_length[worlds] = 0

    def _check_actions(self, actions) -> np.ndarray:
        try:
            values = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"actions must be numbers of shape ({self.num_worlds}, {self.action_size}), got {describe(actions)}") from exc
        if values.shape != (self.num_worlds, self.action_size):
            raise ParameterError(f"actions must have shape ({self.num_worlds}, {self.action_size}), got {values.shape}")
        if not np.all(np.isfinite(values)):
            world = int(np.argwhere(~np.isfinite(values))[0, 0])
            raise ParameterError(f"actions must be finite, got a non-finite action in world {world}: {values[world]!r}")
        return values

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every world one control step with ``actions`` ``(W, A)`` (MuJoCo's ``ctrl``
        order for MJCF tasks); returns observations ``(W, O)``, rewards ``(W,)``, terminated and
        truncated ``(W,)`` bool, and ``info`` (the reward terms per world, and for worlds whose
        episode ended: ``final_obs``, ``episode_return``, ``episode_length``)."""
        if self._coordinates is None:
            raise ParameterError("reset() must be called before step(), got a step on environments that were never reset")
        actions = self._check_actions(actions)
        clipped = np.clip(actions, self.action_low, self.action_high)
        columns = clipped if self.action_columns is None else clipped[:, self.action_columns]
        self.control.joint_act.assign(columns.astype(self.model.precision.numpy))
        before = self._coordinates
        out = self._states[1 - self._current]
        self.engine.rollout(self.state, self.control, num_steps=1, dt=self.task.dt, substeps=self.substeps, record=False, out=out,
                            execution="graph")
        self._current = 1 - self._current
        self.simulated_steps += self.num_worlds
        after = self._coordinates = self.stepped_coordinates = self.task.coordinates(self.model, self.state)
        reward, terms = self.task.reward(before, after, clipped)
        healthy = self.task.healthy(*after)
        terminated = ~healthy if self.task.terminate_when_unhealthy else np.zeros(self.num_worlds, dtype=bool)
        self.episode_return += reward
        self.episode_length += 1
        truncated = (self.episode_length >= self.max_episode_steps) & ~terminated
        observation = self.task.observe(*after)
        info = dict(terms)
        done = terminated | truncated
        info["_final_obs"] = done
        if np.any(done):
            worlds = np.flatnonzero(done)
            info["final_obs"] = observation.copy()
            info["episode_return"] = self.episode_return.copy()
            info["episode_length"] = self.episode_length.copy()
            self._reset_worlds(worlds)
            observation[worlds] = self.task.observe(self._coordinates[0][worlds], self._coordinates[1][worlds])
        return observation, reward, terminated, truncated, info
