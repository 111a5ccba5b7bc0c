"""Episodic tasks: what a world observes, how a step is rewarded and when an episode ends.

An :class:`EpisodeTask` adds to a robot's physics (a model factory, a control step ``dt`` [s]
split into ``substeps``) the three functions reinforcement learning needs, written on MuJoCo's
generalised coordinates of every world (``qpos`` ``(W, nq)``, ``qvel`` ``(W, nv)``, the
convention of :func:`simulator.mjcf.to_mujoco_state`), in float64 numpy:

* ``observe(qpos, qvel) -> (W, O)``;
* ``reward(before, after, action) -> (reward (W,), terms)``: ``before``/``after`` are the
  ``(qpos, qvel)`` around the step, ``action`` ``(W, A)`` the actuator controls in MuJoCo's
  ``ctrl`` order; ``terms`` names every part of the reward (``reward_forward``, ``reward_ctrl``...);
* ``healthy(qpos, qvel) -> (W,) bool``: an unhealthy world ends its episode (``terminated``) when
  ``terminate_when_unhealthy``; every episode is cut (``truncated``) at ``max_episode_steps``.

The locomotion tasks (:data:`LOCOMOTION`: ``hopper``, ``walker2d``, ``half_cheetah``, ``ant``) and
``inverted_pendulum`` load gymnasium's own MJCF files and follow gymnasium's v5 definitions term by
term (the ``gymnasium.envs.mujoco`` ``*_v5.py`` sources and their documentation pages are the
reference; the ant's two differences are stated on :class:`Locomotion`). The swing-up tasks (``pendulum_swingup``,
``cartpole_swingup``, ``acrobot_swingup``) are the small cases, on the package's own scenes,
with dense rewards written here. :func:`make_task` builds a task by name; :class:`BatchedEpisodes`
(:mod:`simulator.rl.episodes`) runs one on W worlds.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from ..model import Model
from .arrays import namespace

Coordinates = tuple[np.ndarray, np.ndarray]  # (qpos (W, nq), qvel (W, nv)), float64


def gymnasium_asset(file_name: str) -> str:
    """The path of one of gymnasium's MuJoCo model files (``gymnasium/envs/mujoco/assets``)."""
    try:
        import gymnasium
    except ImportError as exc:
        raise ModuleNotFoundError("the locomotion tasks load gymnasium's model files: pip install 'gradsim[rl]'") from exc
    path = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", file_name)
    if not os.path.exists(path):
        raise ParameterError(f"file_name must name a gymnasium MuJoCo asset, got {file_name!r} (not in {os.path.dirname(path)})")
    return path


def _asset_timestep(asset: str) -> float:
    """The ``<option timestep>`` [s] of a gymnasium asset (MuJoCo's default 0.002 s if unset)."""
    import xml.etree.ElementTree as ElementTree

    option = ElementTree.parse(gymnasium_asset(asset)).getroot().find("option")
    return float(option.get("timestep", 0.002)) if option is not None else 0.002


def _asset_model(asset: str, num_worlds, device, precision, requires_grad) -> Model:
    """A gymnasium asset loaded by :func:`simulator.mjcf.load_mjcf` and finalized."""
    import warnings

    from ..mjcf import MJCFWarning, load_mjcf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MJCFWarning)  # the loader's notes on approximated elements (see load_mjcf)
        builder = load_mjcf(gymnasium_asset(asset))
    return builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad)


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles [rad] wrapped into [-pi, pi)."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


class EpisodeTask(ABC):
    """An episodic task (see the module docstring). Subclasses set the attributes and implement
    :meth:`build`, :meth:`observe`, :meth:`reward` and, where episodes can fail, :meth:`healthy`.

    Attributes:
        name: the registry name.
        dt: control step [s] (one call of ``step``).
        max_episode_steps: the episode length at which an episode is truncated.
        terminate_when_unhealthy: whether an unhealthy world ends its episode.
        description: one line on the goal.
        reference: where the definition comes from.
    """

    name: str
    dt: float
    max_episode_steps: int
    terminate_when_unhealthy: bool = False
    description: str = ""
    reference: str = ""

    @abstractmethod
    def build(self, num_worlds: int, *, device=None, precision: str = "float32", requires_grad: bool = False) -> Model:
        """The task's model with ``num_worlds`` worlds."""

    def substeps(self, model: Model) -> int:
        """Physics substeps per control step (default: the fewest the contact bound allows)."""
        from ..rigid import stable_substeps

        return stable_substeps(model, self.dt)

    @abstractmethod
    def observe(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def reward(self, before: Coordinates, after: Coordinates, action: np.ndarray) -> tuple[np.ndarray, dict]: ...

    def healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """(W,) bool: the worlds whose state is acceptable (default: all finite)."""
        xp = namespace(qpos)
        return xp.all(xp.isfinite(qpos), 1) & xp.all(xp.isfinite(qvel), 1)

    def posture(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(height [m], upright)`` of the main body per world (``upright`` = the z component of
        its up axis, 1 upright, -1 upside down), or None where the task has no body to stand up."""
        return None

    def reset_noise(self, qpos0: np.ndarray, qvel0: np.ndarray, rng: np.random.Generator, count: int) -> Coordinates:
        """``count`` initial ``(qpos, qvel)`` rows around the model's initial ones."""
        return np.repeat(qpos0[None], count, 0), np.repeat(qvel0[None], count, 0)

    # ------------------------------------------------------------------ coordinates of a model
    def coordinates(self, model: Model, state) -> Coordinates:
        """Every world's MuJoCo ``(qpos, qvel)`` (a model loaded from MJCF) or joint coordinates."""
        if getattr(model, "mujoco_index", None) is not None:
            from ..mjcf_state import to_mujoco_state

            return to_mujoco_state(model, state, world=None)
        return np.asarray(state.joint_q.numpy(), np.float64), np.asarray(state.joint_qd.numpy(), np.float64)

    def set_coordinates(self, model: Model, state, qpos: np.ndarray, qvel: np.ndarray, worlds: np.ndarray) -> None:
        """Write ``(qpos, qvel)`` rows into the ``worlds`` of ``state`` and run forward kinematics."""
        from ..articulation import eval_fk

        if getattr(model, "mujoco_index", None) is not None:
            from ..mjcf_state import to_mujoco_state, from_mujoco_state

            all_qpos, all_qvel = to_mujoco_state(model, state, world=None)
            all_qpos[worlds], all_qvel[worlds] = qpos, qvel
            from_mujoco_state(model, all_qpos, all_qvel, state, world=None)
            return
        joint_q, joint_qd = state.joint_q.numpy(), state.joint_qd.numpy()
        joint_q[worlds], joint_qd[worlds] = qpos, qvel
        state.joint_q.assign(joint_q)
        state.joint_qd.assign(joint_qd)
        eval_fk(model, state)

    def joint_coordinates(self, model: Model, joint_q, joint_qd) -> Coordinates:
        """The task's ``(qpos, qvel)`` of joint coordinates ``(W, Q)``, ``(W, D)`` (numpy arrays or
        torch tensors, differentiable): MuJoCo's for a model loaded from MJCF
        (:func:`simulator.mjcf_state.mujoco_coordinates`), the joint coordinates themselves otherwise."""
        if getattr(model, "mujoco_index", None) is not None:
            from ..mjcf_state import mujoco_coordinates

            return mujoco_coordinates(model, joint_q, joint_qd)
        return joint_q, joint_qd

    def action_order(self, model: Model) -> np.ndarray | None:
        """Column ``j`` of ``joint_act`` takes action ``order[j]`` (MuJoCo's ``ctrl`` order), or
        None when the actions are the ``joint_act`` columns themselves."""
        if getattr(model, "mujoco_index", None) is not None:
            from ..mjcf_state import actuator_order

            return actuator_order(model)
        return None


# ------------------------------------------------------------------------------ locomotion
@dataclass
class Locomotion(EpisodeTask):
    """A gymnasium v5 MuJoCo locomotion task on gymnasium's own MJCF file.

    Per step of ``dt = frame_skip * timestep``:

    * ``reward_forward = forward_reward_weight * x_velocity``, ``x_velocity`` = the change of the
      root's x position (``qpos[0]``, the main body's origin) over the step / dt [m/s];
    * ``reward_survive = healthy_reward`` while healthy (tasks with a healthy reward);
    * ``reward_ctrl = -ctrl_cost_weight * sum(action^2)``;
    * ``reward = reward_forward + reward_survive + reward_ctrl``.

    Healthy: every entry of ``concat(qpos, qvel)[2:]`` inside ``healthy_state_range`` (where set),
    the root height ``qpos[height_index]`` inside ``healthy_z_range``, the root pitch ``qpos[2]``
    inside ``healthy_angle_range`` (where set), the whole state finite. Observation:
    ``qpos[excluded:]`` (the global x, and y for the ant, left out) then ``qvel``, clipped to
    ``+-velocity_clip`` where set. Reset: ``qpos0 + U(-s, s)``, ``qvel0 + U(-s, s)`` (or
    ``qvel0 + s N(0, 1)`` with ``normal_velocity_noise``), ``s = reset_noise_scale``.

    Two differences from gymnasium. The ant's ``x_velocity`` is measured on ``qpos`` (as
    Hopper-v5 does); Ant-v5 reads MuJoCo's ``xpos``, which ``mj_step`` computes before its last
    integration, one physics substep behind (0.1% of the velocity in the test). And the ant's contact cost (``contact_cost_weight * sum of
    clipped external contact wrenches^2``) and its contact-force observation are left out (as
    gymnasium's ``Ant-v5(include_cfrc_ext_in_observation=False)`` for the observation; the cost,
    5e-4 times forces clipped to 1, is at most 0.04 per step): the package does not yet report
    MuJoCo's per-body external wrench ``cfrc_ext``.
    """

    name: str
    asset: str
    frame_skip: int
    ctrl_cost_weight: float
    forward_reward_weight: float = 1.0
    healthy_reward: float = 0.0
    healthy_z_range: tuple[float, float] | None = None
    healthy_angle_range: tuple[float, float] | None = None
    healthy_state_range: tuple[float, float] | None = None
    height_index: int = 1
    inclusive_z: bool = False
    terminate_when_unhealthy: bool = False
    reset_noise_scale: float = 5e-3
    normal_velocity_noise: bool = False
    excluded: int = 1
    velocity_clip: float | None = None
    max_episode_steps: int = 1000
    description: str = "run forward (+x)"
    reference: str = ""
    timestep: float = field(default=0.0, init=False)

    def __post_init__(self):
        self.timestep = _asset_timestep(self.asset)
        self.dt = self.frame_skip * self.timestep

    def build(self, num_worlds, *, device=None, precision="float32", requires_grad=False) -> Model:
        return _asset_model(self.asset, num_worlds, device, precision, requires_grad)

    def observe(self, qpos, qvel):
        xp = namespace(qpos)
        velocity = qvel if self.velocity_clip is None else xp.clip(qvel, -self.velocity_clip, self.velocity_clip)
        return xp.concatenate([qpos[:, self.excluded :], velocity], 1)

    def healthy(self, qpos, qvel):
        ok = super().healthy(qpos, qvel)
        with np.errstate(invalid="ignore"):
            if self.healthy_state_range is not None:
                low, high = self.healthy_state_range
                xp = namespace(qpos)
                state = xp.concatenate([qpos, qvel], 1)[:, 2:]
                ok &= xp.all((low < state) & (state < high), 1)
            if self.healthy_z_range is not None:
                low, high = self.healthy_z_range
                z = qpos[:, self.height_index]
                ok &= ((low <= z) & (z <= high)) if self.inclusive_z else ((low < z) & (z < high))
            if self.healthy_angle_range is not None:
                low, high = self.healthy_angle_range
                ok &= (low < qpos[:, 2]) & (qpos[:, 2] < high)
        return ok

    def posture(self, qpos, qvel):
        height = qpos[:, self.height_index]
        if self.excluded == 2:  # a free root: qpos[3:7] is its quaternion (w, x, y, z)
            upright = 1.0 - 2.0 * (qpos[:, 4] ** 2 + qpos[:, 5] ** 2)
        else:  # a planar root: qpos[2] is its pitch
            upright = namespace(qpos).cos(qpos[:, 2])
        return height, upright

    def reward(self, before, after, action):
        x_velocity = (after[0][:, 0] - before[0][:, 0]) / self.dt
        forward = self.forward_reward_weight * x_velocity
        control = -self.ctrl_cost_weight * namespace(action).sum(action**2, 1)
        terms = {"reward_forward": forward, "reward_ctrl": control, "x_velocity": x_velocity}
        total = forward + control
        if self.healthy_reward:
            survive = self.healthy_reward * self.healthy(*after)
            terms["reward_survive"] = survive
            total = total + survive
        return total, terms

    def reset_noise(self, qpos0, qvel0, rng, count):
        s = self.reset_noise_scale
        qpos = qpos0[None] + rng.uniform(-s, s, size=(count, qpos0.shape[0]))
        if self.normal_velocity_noise:
            qvel = qvel0[None] + s * rng.standard_normal((count, qvel0.shape[0]))
        else:
            qvel = qvel0[None] + rng.uniform(-s, s, size=(count, qvel0.shape[0]))
        return qpos, qvel


_V5 = "gymnasium {}-v5 (gymnasium/envs/mujoco/{}_v5.py, https://gymnasium.farama.org/environments/mujoco/{}/)"


def hopper_task() -> Locomotion:
    return Locomotion(name="hopper", asset="hopper.xml", frame_skip=4, ctrl_cost_weight=1e-3, healthy_reward=1.0,
                      healthy_z_range=(0.7, math.inf), healthy_angle_range=(-0.2, 0.2), healthy_state_range=(-100.0, 100.0),
                      terminate_when_unhealthy=True, reset_noise_scale=5e-3, excluded=1, velocity_clip=10.0,
                      reference=_V5.format("Hopper", "hopper", "hopper"))


def walker2d_task() -> Locomotion:
    return Locomotion(name="walker2d", asset="walker2d_v5.xml", frame_skip=4, ctrl_cost_weight=1e-3, healthy_reward=1.0,
                      healthy_z_range=(0.8, 2.0), healthy_angle_range=(-1.0, 1.0), terminate_when_unhealthy=True,
                      reset_noise_scale=5e-3, excluded=1, velocity_clip=10.0, reference=_V5.format("Walker2d", "walker2d", "walker2d"))


def half_cheetah_task() -> Locomotion:
    return Locomotion(name="half_cheetah", asset="half_cheetah.xml", frame_skip=5, ctrl_cost_weight=0.1, reset_noise_scale=0.1,
                      normal_velocity_noise=True, excluded=1, reference=_V5.format("HalfCheetah", "half_cheetah", "half_cheetah"))


def ant_task() -> Locomotion:
    return Locomotion(name="ant", asset="ant.xml", frame_skip=5, ctrl_cost_weight=0.5, healthy_reward=1.0, healthy_z_range=(0.2, 1.0),
                      height_index=2, inclusive_z=True, terminate_when_unhealthy=True, reset_noise_scale=0.1, normal_velocity_noise=True,
                      excluded=2, reference=_V5.format("Ant", "ant", "ant"))


LOCOMOTION = ("hopper", "walker2d", "half_cheetah", "ant")


@dataclass
class InvertedPendulum(EpisodeTask):
    """gymnasium's ``InvertedPendulum-v5`` on its own ``inverted_pendulum.xml``: a cart on a rail
    balancing a pole. Per step of ``dt = 2 * 0.02`` s: reward 1 while the pole stays within
    ``+-0.2`` rad of upright (``|qpos[1]| <= 0.2``, the state finite), and the episode ends
    (terminated) when it leaves; observation ``[qpos, qvel]``; reset ``qpos0 + U(-0.01, 0.01)``,
    ``qvel0 + U(-0.01, 0.01)``; 1000 steps at most."""

    name: str = "inverted_pendulum"
    asset: str = "inverted_pendulum.xml"
    frame_skip: int = 2
    max_episode_steps: int = 1000
    terminate_when_unhealthy: bool = True
    reset_noise_scale: float = 0.01
    description: str = "keep the pole upright"
    reference: str = _V5.format("InvertedPendulum", "inverted_pendulum", "inverted_pendulum")

    def __post_init__(self):
        self.dt = self.frame_skip * _asset_timestep(self.asset)

    def build(self, num_worlds, *, device=None, precision="float32", requires_grad=False) -> Model:
        return _asset_model(self.asset, num_worlds, device, precision, requires_grad)

    def observe(self, qpos, qvel):
        return namespace(qpos).concatenate([qpos, qvel], 1)

    def healthy(self, qpos, qvel):
        with np.errstate(invalid="ignore"):
            return super().healthy(qpos, qvel) & (namespace(qpos).abs(qpos[:, 1]) <= 0.2)

    def reward(self, before, after, action):
        alive = 1.0 * self.healthy(*after)
        return alive, {"reward_survive": alive}

    def reset_noise(self, qpos0, qvel0, rng, count):
        s = self.reset_noise_scale
        return (qpos0[None] + rng.uniform(-s, s, size=(count, qpos0.shape[0])),
                qvel0[None] + rng.uniform(-s, s, size=(count, qvel0.shape[0])))


# ------------------------------------------------------------------------------ swing-up
@dataclass
class SwingUp(EpisodeTask):
    """A swing-up task on one of the package's robot scenes (``simulator.scenes``), from random
    starts near the bottom; the reward is dense (every step), the episode never fails except where
    ``rail`` bounds the cart.

    ``pendulum_swingup``: ``phi = q - pi`` (0 upright); observation ``[cos phi, sin phi, qd]``;
    reward ``-(wrap(phi)^2 + 0.1 qd^2 + 0.001 u^2)`` (gymnasium's ``Pendulum-v1`` reward, with u
    the control in [-1, 1]); start ``q, qd ~ U(-0.3, 0.3)``.

    ``cartpole_swingup``: ``q = (x, phi)``, ``phi`` = 0 upright; observation
    ``[x, cos phi, sin phi, xd, phid]``; reward in [0, 1], a product of factors as in the DeepMind
    control suite's cartpole: ``(1 + cos phi)/2 * (1 + exp(-x^2))/2 * (1 + exp(-0.1 phid^2))/2 *
    (1 - 0.1 u^2)``; start ``phi = pi + U(-0.2, 0.2)``, ``x, xd, phid ~ U(-0.1, 0.1)``; the episode
    ends (terminated) when ``|x| > rail`` (3 m). The reward is never negative, so ending an
    episode early never pays.

    ``acrobot_swingup``: ``q = (q1, q2)`` (0 hanging); tip height
    ``h = -cos q1 - cos(q1 + q2)`` [m] in [-2, 2]; observation
    ``[cos q1, sin q1, cos q2, sin q2, qd1, qd2]``; reward ``h - 0.01 |qd|^2 - 0.001 u^2``; start
    ``q, qd ~ U(-0.1, 0.1)``.
    """

    name: str
    scene: str
    dt: float
    scene_substeps: int
    max_episode_steps: int
    observe_fn: Callable = field(repr=False)
    reward_fn: Callable = field(repr=False)
    start_center: tuple = ()
    start_spread: tuple = ()
    rail: float | None = None
    description: str = "swing up and hold"
    reference: str = "this module (SwingUp)"
    scene_options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.terminate_when_unhealthy = self.rail is not None

    def build(self, num_worlds, *, device=None, precision="float32", requires_grad=False) -> Model:
        from ..scenes import make

        return make(self.scene, num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad,
                    **self.scene_options).model

    def substeps(self, model):
        return self.scene_substeps

    def observe(self, qpos, qvel):
        return self.observe_fn(qpos, qvel)

    def reward(self, before, after, action):
        reward, terms = self.reward_fn(after[0], after[1], action)
        return reward, terms

    def healthy(self, qpos, qvel):
        ok = super().healthy(qpos, qvel)
        if self.rail is not None:
            with np.errstate(invalid="ignore"):
                ok &= namespace(qpos).abs(qpos[:, 0]) <= self.rail
        return ok

    def reset_noise(self, qpos0, qvel0, rng, count):
        center = np.asarray(self.start_center, np.float64)
        spread = np.asarray(self.start_spread, np.float64)
        start = center[None] + rng.uniform(-1.0, 1.0, size=(count, center.shape[0])) * spread[None]
        nq = qpos0.shape[0]
        return start[:, :nq], start[:, nq:]


def _pendulum_observation(q, qd):
    xp = namespace(q)
    return xp.stack([-xp.cos(q[:, 0]), -xp.sin(q[:, 0]), qd[:, 0]], 1)  # cos, sin of phi = q - pi


def _cartpole_observation(q, qd):
    xp = namespace(q)
    return xp.stack([q[:, 0], xp.cos(q[:, 1]), xp.sin(q[:, 1]), qd[:, 0], qd[:, 1]], 1)


def _acrobot_observation(q, qd):
    xp = namespace(q)
    return xp.stack([xp.cos(q[:, 0]), xp.sin(q[:, 0]), xp.cos(q[:, 1]), xp.sin(q[:, 1]), qd[:, 0], qd[:, 1]], 1)


def _pendulum_reward(qpos, qvel, u):
    xp = namespace(qpos)
    phi, qd = _wrap(qpos[:, 0] - np.pi), qvel[:, 0]
    angle, velocity, control = -(phi**2), -0.1 * qd**2, -1e-3 * xp.sum(u**2, 1)
    return angle + velocity + control, {"reward_angle": angle, "reward_velocity": velocity, "reward_ctrl": control,
                                        "upright": xp.cos(phi)}


def _cartpole_reward(qpos, qvel, u):
    xp = namespace(qpos)
    upright = 0.5 * (1.0 + xp.cos(qpos[:, 1]))
    centred = 0.5 + 0.5 * xp.exp(-qpos[:, 0] ** 2)
    calm = 0.5 + 0.5 * xp.exp(-0.1 * qvel[:, 1] ** 2)
    gentle = 1.0 - 0.1 * xp.mean(u**2, 1)
    return upright * centred * calm * gentle, {"upright": xp.cos(qpos[:, 1]), "centred": centred, "calm": calm, "gentle": gentle}


def _acrobot_reward(qpos, qvel, u):
    xp = namespace(qpos)
    height = -xp.cos(qpos[:, 0]) - xp.cos(qpos[:, 0] + qpos[:, 1])
    spin, control = -0.01 * xp.sum(qvel**2, 1), -1e-3 * xp.sum(u**2, 1)
    return height + spin + control, {"reward_height": height, "reward_spin": spin, "reward_ctrl": control, "tip_height": height}


def pendulum_swingup_task() -> SwingUp:
    return SwingUp(name="pendulum_swingup", scene="pendulum", dt=0.02, scene_substeps=2, max_episode_steps=250,
                   observe_fn=_pendulum_observation,
                   reward_fn=_pendulum_reward, start_center=(0.0, 0.0), start_spread=(0.3, 0.3))


def cartpole_swingup_task() -> SwingUp:
    return SwingUp(name="cartpole_swingup", scene="cartpole", dt=0.02, scene_substeps=2, max_episode_steps=250,
                   observe_fn=_cartpole_observation,
                   reward_fn=_cartpole_reward, start_center=(0.0, np.pi, 0.0, 0.0), start_spread=(0.1, 0.2, 0.1, 0.1), rail=3.0,
                   scene_options={"swing_up": True})


def acrobot_swingup_task() -> SwingUp:
    return SwingUp(name="acrobot_swingup", scene="acrobot", dt=0.01, scene_substeps=4, max_episode_steps=500,
                   observe_fn=_acrobot_observation,
                   reward_fn=_acrobot_reward, start_center=(0.0, 0.0, 0.0, 0.0), start_spread=(0.1, 0.1, 0.1, 0.1))


_TASKS: dict[str, Callable[[], EpisodeTask]] = {
    "hopper": hopper_task,
    "walker2d": walker2d_task,
    "half_cheetah": half_cheetah_task,
    "ant": ant_task,
    "inverted_pendulum": InvertedPendulum,
    "pendulum_swingup": pendulum_swingup_task,
    "cartpole_swingup": cartpole_swingup_task,
    "acrobot_swingup": acrobot_swingup_task,
}


def episode_tasks() -> list[str]:
    """Names of the registered episodic tasks."""
    return sorted(_TASKS)


def make_task(name: str) -> EpisodeTask:
    """The episodic task registered as ``name`` (see :func:`episode_tasks`)."""
    if isinstance(name, EpisodeTask):
        return name
    if name not in _TASKS:
        raise ParameterError(f"task must be one of {episode_tasks()}, got {name!r}")
    return _TASKS[name]()
