"""An episodic task and a policy as a rollout objective: the gradient estimators' view of RL.

``EpisodeObjective(task, policy)`` is a :class:`simulator.RolloutObjective` whose loss per world is
minus the episode return of the policy with that world's parameter row, over ``horizon`` steps or
until the episode terminates (rewards after termination do not count), from the task's random
starts drawn from the evaluation seed. With ``normalize=True`` the policy sees observations
normalised by running statistics of every observation the objective has simulated (updated after
each evaluation, ARS-style: Mania et al. 2018, "Simple random search provides a competitive
approach to reinforcement learning"), which are part of the objective's state
(:meth:`state_dict`, saved by :func:`simulator.optimize` in its checkpoints).

The episodes run through :class:`simulator.rl.BatchedEpisodes` (the physics in the rollout
engine, observation, reward and termination on the host) for the black-box estimator (``es``);
backpropagation (``analytic``, ``truncated``, and so ``hybrid`` and ``auto``) runs the same
episodes through :meth:`EpisodeObjective.sweep_rows`: the physics step by step through Warp's
adjoints (:func:`simulator.torch.joint_step`), and the task's observation, reward and termination
(written once for numpy and torch) and the policy in torch.
"""

from __future__ import annotations

import numpy as np

from ..errors import GradientNotFiniteError, ParameterError, check_finite, check_integer
from ..gradients.objective import RolloutObjective, SweepResult
from ..precision import get_precision
from .episodes import BatchedEpisodes
from .arrays import namespace
from .normalize import RunningNormalizer
from .policies import make_policy
from .tasks import EpisodeTask, make_task


class _Returns:
    """The bookkeeping both episode loops share (numpy arrays, or torch tensors for backprop):
    per-world return and length, counted while the world is alive; a world that terminates stops
    counting (its reward of the terminating step included, as gymnasium pays it)."""

    def __init__(self, reward, alive):
        self.total, self.length, self.alive = reward * 0.0, reward * 0.0, alive

    def add(self, reward, terminated) -> None:
        xp = namespace(reward)
        self.total = self.total + xp.where(self.alive, reward, xp.constant(0.0, reward))  # a dead world's reward never leaks in
        self.length = self.length + 1.0 * self.alive
        self.alive = self.alive & ~terminated

    def loss(self, survival_shift: float):
        """Minus the return, less ``survival_shift`` per step alive."""
        return -(self.total - survival_shift * self.length)


class EpisodeObjective(RolloutObjective):
    """Minus the return of ``policy`` on ``task`` per world (see the module docstring).

    Args:
        task: a task name or :class:`simulator.rl.EpisodeTask`.
        policy: ``"linear"``, ``"mlp"``, a policy config dict or a policy object
            (:mod:`simulator.rl.policies`).
        horizon: steps per episode at most (default: the task's ``max_episode_steps``).
        normalize: normalise observations with running statistics.
        survival_shift: subtracted from every step's reward in the loss (not in the reported
            return): ARS's "shift" (Mania et al. 2018, sec. 4), 1 for the tasks with a survival
            bonus of 1, so that standing still is no longer a local optimum worth a full return.
        device, precision: of the physics.
    """

    def __init__(self, task: str | EpisodeTask, policy="linear", *, horizon: int | None = None, normalize: bool = True,
                 survival_shift: float = 0.0, device=None, precision: str = "float32"):
        self.task = make_task(task)
        self.device, self.precision = device, get_precision(precision)
        self._episodes: dict[int, BatchedEpisodes] = {}
        self._models: dict = {}  # worlds -> the task's model with gradients (backpropagation)
        probe = self.episodes(1)
        self.num_steps = self.task.max_episode_steps if horizon is None else check_integer("horizon", horizon, minimum=1)
        if isinstance(policy, (str, dict)):
            policy = make_policy(policy, probe.observation_size, probe.action_size, probe.action_low, probe.action_high)
        if policy.observation_size != probe.observation_size or policy.action_size != probe.action_size:
            raise ParameterError(f"policy must map {probe.observation_size} observations to {probe.action_size} actions for task "
                                 f"{self.task.name!r}, got {policy.observation_size} -> {policy.action_size}")
        self.policy = policy
        self.num_parameters = policy.num_parameters
        self.normalizer = RunningNormalizer(probe.observation_size) if normalize else None
        self.survival_shift = float(check_finite("survival_shift", survival_shift))

    def episodes(self, num_worlds: int) -> BatchedEpisodes:
        """The ``num_worlds``-world episodes (built once per world count)."""
        if num_worlds not in self._episodes:
            self._episodes[num_worlds] = BatchedEpisodes(self.task, num_worlds, device=self.device, precision=self.precision.name,
                                                         max_episode_steps=10**9)
        return self._episodes[num_worlds]

    def observe(self, observations: np.ndarray) -> np.ndarray:
        """What the policy sees: normalised observations (or the raw ones)."""
        return observations if self.normalizer is None else self.normalizer.normalize(observations)

    def run(self, theta_rows: np.ndarray, *, seed: int = 0, horizon: int | None = None, update_statistics: bool = True) -> dict:
        """Run one episode per world with that world's parameter row; returns per-world
        ``return``, ``length`` (steps until termination or the horizon), ``height`` [m],
        ``upright`` and ``x_velocity`` [m/s] (means over the steps alive, where the task defines
        them; 0 elsewhere), ``world_steps`` (steps counted in all) and ``loss`` (the estimators')."""
        theta_rows = np.asarray(theta_rows, dtype=np.float64)
        if theta_rows.ndim != 2 or theta_rows.shape[1] != self.num_parameters:
            raise ParameterError(f"theta rows must have shape (worlds, {self.num_parameters}), got {theta_rows.shape}")
        horizon = self.num_steps if horizon is None else check_integer("horizon", horizon, minimum=1)
        worlds = theta_rows.shape[0]
        episodes = self.episodes(worlds)
        observations = episodes.reset(seed=seed)
        returns = _Returns(np.zeros(worlds), np.ones(worlds, dtype=bool))
        height, upright, speed = np.zeros(worlds), np.zeros(worlds), np.zeros(worlds)
        seen = [observations]
        for _ in range(horizon):
            actions = self.policy.act(theta_rows, self.observe(observations))
            observations, reward, terminated, _, info = episodes.step(actions)
            alive = returns.alive
            speed += alive * info.get("x_velocity", 0.0)
            posture = self.task.posture(*episodes.stepped_coordinates)
            if posture is not None:
                height += alive * posture[0]
                upright += alive * posture[1]
            returns.add(reward, terminated)
            if not returns.alive.any():
                break
            seen.append(observations[returns.alive])
        if update_statistics and self.normalizer is not None:
            self.normalizer.update(np.concatenate(seen))
        counted = np.maximum(returns.length, 1)
        return {"return": returns.total, "length": returns.length.astype(np.int64), "height": height / counted,
                "upright": upright / counted, "x_velocity": speed / counted, "world_steps": int(returns.length.sum()),
                "loss": returns.loss(self.survival_shift)}

    def evaluate_rows(self, theta_rows: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Minus the episode return per world, less ``survival_shift`` per step alive (the estimators' loss)."""
        return self.run(theta_rows, seed=seed)["loss"]

    # ------------------------------------------------------------------ the objective's state
    def state_dict(self) -> dict:
        """The running observation statistics (empty without normalisation)."""
        return {} if self.normalizer is None else self.normalizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.normalizer is not None and state:
            self.normalizer.load_state_dict(state)

    # ------------------------------------------------------------------ backpropagation
    def _differentiable_model(self, num_worlds: int):
        if num_worlds not in self._models:
            self._models[num_worlds] = self.task.build(num_worlds, device=self.device, precision=self.precision.name, requires_grad=True)
        return self._models[num_worlds]

    def sweep_rows(self, theta_rows: np.ndarray, *, seed: int = 0, checkpoint_every=None, window=None, clip=None, trace=False):
        """Losses and gradients per world by backpropagation through the episodes: the physics
        step by step through :func:`simulator.torch.joint_step` (Warp's adjoints), observation,
        reward and termination through the task's own functions on torch tensors, the policy in
        torch. ``window``: the state's gradient is cut every ``window`` steps (truncated
        backpropagation). The episodes start where :meth:`evaluate_rows` starts them for the same
        seed; the observation statistics are updated as there. Needs torch."""
        if checkpoint_every is not None or clip is not None or trace:
            raise ParameterError("an EpisodeObjective's backpropagation has no checkpoint_every, clip or trace option: leave them at None")
        import torch

        from ..torch import joint_step

        theta_rows = np.asarray(theta_rows, dtype=np.float64)
        worlds = theta_rows.shape[0]
        model = self._differentiable_model(worlds)
        episodes = self.episodes(worlds)
        episodes.reset(seed=seed)
        dtype = torch.float64 if self.precision.name == "float64" else torch.float32
        q = torch.as_tensor(episodes.state.joint_q.numpy(), dtype=dtype)
        qd = torch.as_tensor(episodes.state.joint_qd.numpy(), dtype=dtype)
        order = None if episodes.action_columns is None else torch.as_tensor(episodes.action_columns)
        theta = torch.tensor(theta_rows, requires_grad=True)
        returns = _Returns(torch.zeros(worlds, dtype=torch.float64), torch.ones(worlds, dtype=torch.bool))
        before = self.task.joint_coordinates(model, q.double(), qd.double())
        seen, kept = [before], []
        for t in range(self.num_steps):
            actions = self.policy.act(theta, self.observe(self.task.observe(*before)))
            columns = actions if order is None else actions[:, order]
            out = joint_step(model, q, qd, columns.to(dtype), dt=self.task.dt, substeps=episodes.substeps)
            q, qd = out["joint_q"], out["joint_qd"]
            q.retain_grad()
            kept.append(q)
            after = self.task.joint_coordinates(model, q.double(), qd.double())
            reward, _ = self.task.reward(before, after, actions)
            unhealthy = ~self.task.healthy(*(c.detach() for c in after))
            returns.add(reward, unhealthy & self.task.terminate_when_unhealthy)
            if not bool(returns.alive.any()):
                break
            if window is not None and (t + 1) % int(window) == 0:
                q, qd = q.detach(), qd.detach()
                after = self.task.joint_coordinates(model, q.double(), qd.double())
            before = after
            seen.append(tuple(c.detach()[returns.alive] for c in after))
        loss = returns.loss(self.survival_shift)
        if loss.requires_grad:
            loss.sum().backward()
        # a reward that is piecewise constant in the state (a survival bonus alone) has gradient 0
        gradients = theta.grad.numpy().copy() if theta.grad is not None else np.zeros_like(theta_rows)
        if not np.all(np.isfinite(gradients)):
            step = max((t for t, x in enumerate(kept) if x.grad is not None and not bool(torch.isfinite(x.grad).all())), default=0)
            world = int(np.flatnonzero(~np.all(np.isfinite(gradients), axis=1))[0])
            raise GradientNotFiniteError(f"the gradient through task {self.task.name!r} is non-finite in world {world}; the state's "
                                         f"adjoint was last non-finite after step {step}", step=step)
        if self.normalizer is not None:
            self.normalizer.update(np.concatenate([self.task.observe(c[0].numpy(), c[1].numpy()) for c in seen]))
        return SweepResult(losses=loss.detach().numpy(), gradients=gradients, peak_states=len(kept) * episodes.substeps + 1)

    def _stepped_from_python(self, *args, **kwargs):
        raise ParameterError("an EpisodeObjective is stepped by its own paths (evaluate_rows, sweep_rows), not one step at a time")

    initial_state = advance = add_loss = state_arrays = _stepped_from_python
