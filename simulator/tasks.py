"""Control tasks on rigid scenes: controllers (parameters -> controls) and the
:class:`ControlObjective` that turns them and loss terms (:mod:`simulator.losses`, re-exported
here) into a rollout objective for any gradient estimator.

Parameters theta are a flat vector (``(P,)``); in batched evaluation each world gets its own row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import warp as wp

from . import rigid
from .articulation import eval_fk
from .errors import ParameterError, check_finite
from .engine import EXECUTIONS, Engine
from .gradients.objective import RolloutObjective, SweepResult
from .kernels.control import control_kernels
from .losses import EffortLoss, LossContext, PositionLoss, VelocityLoss, add_terms  # noqa: F401  (the loss terms live in .losses)
from .model import Control, Model, State
from .solver import RigidSolver


def _model_array(model: Model, key: tuple, build) -> wp.array:
    """A controller's constant device array, built by ``build()`` once per model and ``key``."""
    cache = model.__dict__.setdefault("_controller_arrays", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _body_indices(model: Model, bodies: Sequence[int]) -> wp.array:
    """The body indices as a device array, validated and built once per model."""
    indices = [int(b) for b in bodies]

    def build():
        if not indices or any(not 0 <= b < model.body_count for b in indices):
            raise ParameterError(f"bodies must be indices in [0, {model.body_count}), got {indices!r}")
        return wp.array(indices, dtype=wp.int32, device=model.device)

    return _model_array(model, ("bodies", tuple(indices)), build)


class OpenLoopForces:
    """An open-loop sequence of forces [N] on some bodies: theta holds one 3-vector per body per
    step, step-major (``P = num_steps * len(bodies) * 3``)."""

    def __init__(self, bodies: Sequence[int]):
        self.bodies = list(bodies)

    def num_parameters(self, num_steps: int) -> int:
        return num_steps * len(self.bodies) * 3

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        per_step = len(self.bodies) * 3
        return [slice(t * per_step, (t + 1) * per_step) for t in range(num_steps)]

    def apply(self, model: Model, step: int, state: State, theta: wp.array, control: Control, workspace=None) -> None:
        kernels = control_kernels(model.precision.scalar)
        bodies = _body_indices(model, self.bodies)
        wp.launch(kernels.open_loop_body_force, dim=(theta.shape[0], len(self.bodies)),
                  inputs=[theta, step, bodies], outputs=[control.body_force], device=model.device)


class OpenLoopActions:
    """An open-loop sequence of actuator controls (robots): theta holds ``num_actuators`` values
    per step, step-major (``P = num_steps * num_actuators``); actuators clip them to their
    control range."""

    def __init__(self, num_actuators: int):
        if not isinstance(num_actuators, (int, np.integer)) or num_actuators < 1:
            raise ParameterError(f"num_actuators must be a positive integer, got {num_actuators!r}")
        self.num_actuators = int(num_actuators)

    def num_parameters(self, num_steps: int) -> int:
        return num_steps * self.num_actuators

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        return [slice(t * self.num_actuators, (t + 1) * self.num_actuators) for t in range(num_steps)]

    def apply(self, model, step, state, theta, control, workspace=None) -> None:
        if control.joint_act is None or control.joint_act.shape[1] != self.num_actuators:
            have = 0 if control.joint_act is None else control.joint_act.shape[1]
            raise ParameterError(f"model must have the controller's {self.num_actuators} actuators, got {have}")
        wp.launch(control_kernels(model.precision.scalar).open_loop_rows, dim=(theta.shape[0], self.num_actuators),
                  inputs=[theta, step], outputs=[control.joint_act], device=model.device)


class LinearJointFeedback:
    """Linear feedback on joint coordinates (robots): ``u_a = K_a . [q, qd] + b_a`` for each of
    ``num_actuators`` actuators; ``P = num_actuators * (nq + nqd + 1)``, independent of the horizon
    (so gradient statistics at different horizons compare like with like)."""

    def __init__(self, num_actuators: int, num_coords: int, num_dofs: int):
        self.num_actuators, self.num_coords, self.num_dofs = int(num_actuators), int(num_coords), int(num_dofs)

    @classmethod
    def for_model(cls, model: Model) -> LinearJointFeedback:
        state, control = model.state(requires_grad=False), model.control(requires_grad=False)
        if control.joint_act is None:
            raise ParameterError(f"model must have actuators for {cls.__name__}.for_model, got one with none")
        return cls(control.joint_act.shape[1], state.joint_q.shape[1], state.joint_qd.shape[1])

    def num_parameters(self, num_steps: int) -> int:
        return self.num_actuators * (self.num_coords + self.num_dofs + 1)

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        row = self.num_coords + self.num_dofs + 1
        return [slice(a * row, (a + 1) * row) for a in range(self.num_actuators)]

    def apply(self, model, step, state, theta, control, workspace=None) -> None:
        wp.launch(control_kernels(model.precision.scalar).linear_joint_feedback, dim=(theta.shape[0], self.num_actuators),
                  inputs=[theta, state.joint_q, state.joint_qd], outputs=[control.joint_act], device=model.device)


class MLPJointPolicy:
    """A small MLP policy on joint coordinates (robots), evaluated in Warp kernels so that every
    estimator works with it (``analytic`` included): observation ``[q, qd]``, ``hidden`` tanh
    layers, and a tanh output per actuator (actions in [-1, 1], the actuators' control range).
    Each world reads its own parameter row; ``P = sum over layers of n_out * (n_in + 1)``."""

    def __init__(self, num_actuators: int, num_coords: int, num_dofs: int, hidden=(32, 32)):
        sizes = [int(num_coords) + int(num_dofs), *[int(h) for h in hidden], int(num_actuators)]
        if any(n < 1 for n in sizes):
            raise ParameterError(f"layer sizes must be positive, got {sizes}")
        self.sizes = sizes
        self.offsets = np.cumsum([0] + [n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:])])

    @classmethod
    def for_model(cls, model: Model, hidden=(32, 32)) -> MLPJointPolicy:
        state, control = model.state(requires_grad=False), model.control(requires_grad=False)
        if control.joint_act is None:
            raise ParameterError(f"model must have actuators for {cls.__name__}.for_model, got one with none")
        return cls(control.joint_act.shape[1], state.joint_q.shape[1], state.joint_qd.shape[1], hidden)

    def num_parameters(self, num_steps: int) -> int:
        return int(self.offsets[-1])

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def initial_parameters(self, seed: int = 0) -> np.ndarray:
        """Glorot-scaled random weights and zero biases."""
        rng = np.random.default_rng(seed)
        theta = np.zeros(self.num_parameters(0))
        for (n_in, n_out), start in zip(zip(self.sizes[:-1], self.sizes[1:]), self.offsets[:-1]):
            block = rng.standard_normal((n_out, n_in + 1)) * np.sqrt(2.0 / (n_in + n_out))
            block[:, -1] = 0.0
            theta[start : start + block.size] = block.reshape(-1)
        return theta

    def apply(self, model, step, state, theta, control, workspace=None) -> None:
        kernels = control_kernels(model.precision.scalar)
        worlds, grad = theta.shape[0], theta.requires_grad

        def scratch(layer, width):
            shape, dtype = (worlds, width), model.precision.scalar
            if workspace is None:
                return wp.empty(shape, dtype=dtype, device=model.device, requires_grad=grad)
            return workspace.array(("mlp", layer), shape, dtype, requires_grad=grad)

        x = scratch(0, self.sizes[0])
        wp.launch(kernels.joint_observation, dim=x.shape, inputs=[state.joint_q, state.joint_qd], outputs=[x], device=model.device)
        for layer, n_out in enumerate(self.sizes[1:]):
            last = layer == len(self.sizes) - 2
            y = control.joint_act if last else scratch(layer + 1, n_out)
            wp.launch(kernels.dense_layer, dim=(worlds, n_out), inputs=[theta, int(self.offsets[layer]), 1, x], outputs=[y],
                      device=model.device)
            x = y


class LinearFeedback:
    """Linear state feedback on some bodies: ``f = G @ [p - p_ref, v] + b`` with a 3x6 gain G and
    a bias b per body (``P = len(bodies) * 21``). ``reference`` is one target position per body."""

    def __init__(self, bodies: Sequence[int], reference):
        self.bodies = list(bodies)
        self.reference = check_finite("reference", reference).reshape(len(self.bodies), 3)

    def num_parameters(self, num_steps: int) -> int:
        return len(self.bodies) * 21

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        return [slice(k * 21, (k + 1) * 21) for k in range(len(self.bodies))]

    def apply(self, model, step, state, theta, control, workspace=None) -> None:
        kernels = control_kernels(model.precision.scalar)
        reference = _model_array(model, ("reference", self.reference.tobytes()),
                                 lambda: wp.array(self.reference, dtype=model.precision.vec3, device=model.device))
        wp.launch(kernels.linear_feedback_body_force, dim=(theta.shape[0], len(self.bodies)),
                  inputs=[theta, _body_indices(model, self.bodies), reference, state.body_q, state.body_v],
                  outputs=[control.body_force], device=model.device)


class ControlObjective(RolloutObjective):
    """A controller driving a rigid scene for ``num_steps`` steps, scored by a sum of losses.

    Args:
        scene: ``scene(num_worlds) -> Scene`` (anything with ``.model``, ``.dt`` and optionally
            ``.substeps``) or ``-> Model``; it must be finalized with ``requires_grad=True``.
        controller: e.g. :class:`OpenLoopForces` or :class:`LinearFeedback`.
        losses: loss terms (:mod:`simulator.losses`: :class:`PositionLoss`, :class:`VelocityLoss`,
            :class:`EffortLoss`, ...; anything with ``every_step`` and ``add(model, state, control,
            loss, context)``), added after each step with a :class:`LossContext`.
        num_steps: rollout length in steps.
        dt, substeps: step length [s] and substeps; default to the scene's.
        initial_state: optional ``initial_state(model, seed) -> State`` for random initial
            conditions (default: the builder's initial state for every world).
        execution: how the rollout engine (:meth:`engine`) runs evaluations and full backprop:
            ``"auto"`` (captured graphs once a shape has been used a few times), ``"graph"``
            (captured at once) or ``"python"`` (stepped from Python); bitwise the same results.
    """

    def __init__(self, scene: Callable, controller, losses: Sequence, *, num_steps: int, dt: float | None = None,
                 substeps: int | None = None, initial_state: Callable | None = None, execution: str = "auto"):
        if execution not in EXECUTIONS:
            raise ParameterError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        self.execution = execution
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ParameterError(f"num_steps must be a positive integer, got {num_steps!r}")
        self.scene = scene
        self.controller = controller
        self.losses = list(losses)
        self.num_steps = int(num_steps)
        self._models: dict[int, tuple[Model, float, int]] = {}
        self._engines: dict[int, Engine] = {}
        self._default_starts: dict = {}
        model, self.dt, self.substeps = self._model(1)
        if dt is not None:
            self.dt = float(dt)
        if substeps is not None:
            self.substeps = int(substeps)
        rigid.check_stable_timestep(model, self.dt, self.substeps)
        self.device, self.precision = model.device, model.precision
        self.num_parameters = controller.num_parameters(self.num_steps)
        self.parameter_blocks = controller.parameter_blocks(self.num_steps)
        self._initial_state = initial_state

    def _model(self, num_worlds: int):
        if num_worlds not in self._models:
            built = self.scene(num_worlds)
            model = built if isinstance(built, Model) else built.model
            if not model.requires_grad:
                raise ParameterError(f"scene({num_worlds}) must return a model finalized with requires_grad=True, got requires_grad=False")
            if model.num_worlds != num_worlds:
                raise ParameterError(f"scene({num_worlds}) must return a model with {num_worlds} worlds, got {model.num_worlds}")
            dt = getattr(built, "dt", None)
            substeps = getattr(built, "substeps", 1)
            self._models[num_worlds] = (model, dt, substeps)
        return self._models[num_worlds]

    def model(self, num_worlds: int) -> Model:
        return self._model(num_worlds)[0]

    def initial_state(self, num_worlds, seed):
        model = self.model(num_worlds)
        if self._initial_state is None:
            return model.state()
        return self._initial_state(model, seed)

    def advance(self, t, state, theta):
        worlds = theta.shape[0]
        control = self.model(worlds).control(requires_grad=True)
        start = self._start(state)
        state = self.engine(worlds).advance(self, t, state, theta, control, h=self.dt / self.substeps)  # dt checked in __init__
        state.control = control  # the control that produced this state (its loss terms read it)
        state.start = start
        return state

    def add_loss(self, t, state, theta, loss):
        self.step_loss(self.model(theta.shape[0]), t, state, getattr(state, "control", None), theta, loss, self._start(state))

    def _start(self, state):
        return getattr(state, "start", state)

    # ------------------------------------------------------------------ the engine's program hooks
    def apply_control(self, model, t, state, theta, control, workspace=None) -> None:
        """Write the control of step ``t`` (the controller's, from ``state`` and ``theta``)."""
        self.controller.apply(model, t, state, theta, control, workspace)

    def step_loss(self, model, t, state, control, theta, loss, initial_state) -> None:
        """Add the loss terms due after step ``t`` (see :func:`simulator.losses.add_terms`), with the
        control that drove the step and the rollout's initial state in their :class:`LossContext`."""
        context = LossContext(initial_state=initial_state, step=int(t), elapsed=(int(t) + 1) * self.dt, final=t == self.num_steps - 1)
        add_terms(self.losses, model, state, control, loss, context)

    @property
    def capturable(self) -> bool:
        """Whether the engine may capture the program: the loss terms only launch kernels, and so
        does every controller except those that say otherwise (``capturable = False``)."""
        return getattr(self.controller, "capturable", True)

    def engine(self, num_worlds: int) -> Engine:
        """The rollout engine of the ``num_worlds``-world model (built once, with its caches)."""
        if num_worlds not in self._engines:
            self._engines[num_worlds] = Engine(RigidSolver(self.model(num_worlds)))
        return self._engines[num_worlds]

    def _engine_start(self, num_worlds: int, seed: int):
        """The initial state the engine copies from: the builder's (kept, read only) unless the
        objective draws its own from the seed."""
        if self._initial_state is not None:
            return self.initial_state(num_worlds, seed)
        if num_worlds not in self._default_starts:
            self._default_starts[num_worlds] = self.model(num_worlds).state(requires_grad=False)
        return self._default_starts[num_worlds]

    def evaluate_rows(self, theta_rows: np.ndarray, *, seed: int = 0):
        """Per-world losses through the rollout engine."""
        worlds = theta_rows.shape[0]
        return self.engine(worlds).evaluate(self, theta_rows, self._engine_start(worlds, seed), execution=self.execution)

    def sweep_rows(self, theta_rows: np.ndarray, *, seed: int = 0, checkpoint_every=None, window=None, clip=None, trace=False):
        """Losses and gradients by full backprop through the rollout engine (None where the options
        need the generic reverse sweep: checkpoints, windows, clipping, traces)."""
        worlds = theta_rows.shape[0]
        if checkpoint_every is not None or window is not None or clip is not None or trace:
            return None
        losses, gradients = self.engine(worlds).gradient(self, theta_rows, self._engine_start(worlds, seed), execution=self.execution)
        return SweepResult(losses=losses, gradients=gradients, peak_states=self.num_steps * self.substeps + 1)

    def state_arrays(self, state):
        return state.arrays()

    def dynamic_arrays(self, state):
        """The independent coordinates of a state (used by the tangent-space diagnostics): joint
        coordinates for a fully articulated model, body poses and velocities otherwise."""
        model = self.model(state.body_q.shape[0])
        if model.articulation is not None and model.articulation.free_bodies.shape[0] == 0:
            return {"joint_q": state.joint_q, "joint_qd": state.joint_qd}
        arrays = {"body_q": state.body_q, "body_v": state.body_v, "body_w": state.body_w}
        if model.articulation is not None:
            arrays.update(joint_q=state.joint_q, joint_qd=state.joint_qd)
        return arrays

    def refresh(self, state) -> None:
        """Recompute derived arrays (forward kinematics) after the dynamic ones were edited."""
        model = self.model(state.body_q.shape[0])
        if model.articulation is not None:
            eval_fk(model, state)


class SceneTaskObjective(ControlObjective):
    """A robot scene's task (``scenes.make(name).task``) as a rollout objective: its loss terms
    (:meth:`simulator.losses.Task.losses` for ``num_steps``), added exactly as the scene's
    ``loss(trajectory, controls)`` adds them, so both give the same loss for the same rollout.

    Args:
        name: registered scene name (``pendulum``, ``cartpole``, ``acrobot``, ``hopper``, ``ant``).
        controller: defaults to the task's controller (:class:`OpenLoopActions` over the actuators).
        num_steps: defaults to the scene's task horizon.
        initial_state: optional ``initial_state(model, seed) -> State``.
        execution: as for :class:`ControlObjective`.
        **scene_options: passed to ``scenes.make`` (``precision``, ``device``, ``contact``...);
            ``requires_grad`` is always True.
    """

    def __init__(self, name: str, *, controller=None, num_steps: int | None = None, initial_state=None, execution: str = "auto",
                 **scene_options):
        from .scenes import make

        self._scenes = {}

        def scene(num_worlds):
            if num_worlds not in self._scenes:
                self._scenes[num_worlds] = make(name, num_worlds=num_worlds, requires_grad=True, **scene_options)
            return self._scenes[num_worlds]

        probe = scene(1)
        self.task = probe.task
        if controller is None:
            controller = self.task.make_controller(probe.model)
        num_steps = self.task.horizon if num_steps is None else num_steps
        super().__init__(scene, controller, self.task.losses(num_steps), num_steps=num_steps, initial_state=initial_state,
                         execution=execution)
