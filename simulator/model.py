"""The three types every solver works on: Model (static), State (per step), Control (inputs).

Shapes use W = ``num_worlds``, B = bodies per world, S = shapes, C = contact candidates.
Every per-world array has the world index first. Scalars, vectors, quaternions and transforms
use the model's precision (``model.precision``: float32 or float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import warp as wp

from .errors import (
    ParameterError,
    check_array,
    check_array_finite,
    check_parameter_values,
    checked_before,
    describe,
    mark_checked,
)
from .precision import Precision

# The per-world joint and actuator parameters of a Model (fields of the same names), in the order
# the articulation kernel takes them.
JOINT_PARAMETERS = (
    "joint_armature",
    "joint_damping",
    "joint_stiffness",
    "joint_limit_lower",
    "joint_limit_upper",
    "actuator_gear",
    "actuator_kp",
    "actuator_kd",
)


@dataclass
class State:
    """What changes every step. Arrays are ``(W, B)``.

    Attributes:
        body_q: pose of each body's centre-of-mass frame in world coordinates (transform:
            position [m], rotation quaternion x, y, z, w).
        body_v: linear velocity of the centre of mass [m/s], world axes.
        body_w: angular velocity [rad/s], world axes.
        body_contact_force: total contact force [N] that acted on each body during the step
            that produced this state (zero for an initial state).
        body_contact_torque: matching contact torque about the centre of mass [N m].
        step_index: number of (sub)steps taken from a state made by ``model.state()`` to reach
            this one (``simulator.step`` and the engine count it; divergence errors name it).
    """

    body_q: wp.array
    body_v: wp.array
    body_w: wp.array
    body_contact_force: wp.array
    body_contact_torque: wp.array
    # --- articulations (reduced coordinates, see simulator.articulation); None without joints ---
    joint_q: wp.array | None = None  # (W, Q) joint coordinates [m, rad, quaternions]
    joint_qd: wp.array | None = None  # (W, D) joint velocities [m/s, rad/s]
    link_q: wp.array | None = field(default=None, repr=False)  # (W, L) link frames (derived)
    link_v: wp.array | None = field(default=None, repr=False)  # (W, L) link twists (derived)
    joint_work: object = field(default=None, repr=False)  # per-step intermediates
    step_index: int = 0  # (sub)steps taken to reach this state (divergence errors name it)

    def arrays(self) -> dict[str, wp.array]:
        fields = (getattr(self, name) for name in self.__dataclass_fields__)
        return {name: value for name, value in zip(self.__dataclass_fields__, fields) if isinstance(value, wp.array)}

    def assign(self, other: State) -> None:
        """Copy ``other`` into this state (recorded on an active tape, so gradients flow)."""
        for name, array in self.arrays().items():
            wp.copy(array, getattr(other, name))
        self.step_index = other.step_index

    def numpy(self) -> dict[str, np.ndarray]:
        """Host copies of every array (for inspection and tests)."""
        return {name: array.numpy() for name, array in self.arrays().items()}


@dataclass
class Control:
    """What the user drives during one step. Arrays are ``(W, B)``.

    Attributes:
        body_force: external force at each centre of mass [N], world axes.
        body_torque: external torque about each centre of mass [N m], world axes.
    """

    body_force: wp.array
    body_torque: wp.array
    joint_act: wp.array | None = None  # (W, A) actuator controls (see simulator.articulation)


@dataclass
class ControlSequence:
    """Per-step controls for a rollout. Arrays are ``(T, W, B)`` for T steps.

    ``at(t)`` returns step ``t`` as a :class:`Control` whose arrays are views: gradients that
    reach them land in this sequence's ``.grad`` arrays.
    """

    body_force: wp.array
    body_torque: wp.array
    joint_act: wp.array | None = None  # (T, W, A) actuator controls (see simulator.articulation)

    @property
    def num_steps(self) -> int:
        return self.body_force.shape[0]

    def at(self, step: int) -> Control:
        if not 0 <= step < self.num_steps:
            raise IndexError(f"step {step} is outside this control sequence of {self.num_steps} steps")
        joint_act = None if self.joint_act is None else self.joint_act[step]
        return Control(body_force=self.body_force[step], body_torque=self.body_torque[step], joint_act=joint_act)


@dataclass
class Model:
    """Static description of a batch of identical scenes (built by ``SceneBuilder.finalize``).

    Parameters that may differ per world and that gradients can flow into (when the model was
    finalized with ``requires_grad=True``): ``body_mass``, ``body_inertia``, ``shape_stiffness``,
    ``shape_damping``, ``shape_friction``, ``contact_softness`` and, with joints, the joint and
    actuator parameters ``joint_armature`` ... ``actuator_kd`` (:meth:`parameters` lists them).

    Attributes:
        device: Warp device every array lives on.
        precision: floating-point types (see :class:`simulator.precision.Precision`).
        num_worlds: W, number of independent copies of the scene.
        body_count: B, bodies per world.
        shape_count: S, shapes in the scene (shared by every world).
        gravity: gravitational acceleration [m/s^2], world axes (z is up).
        body_mass: (W, B) mass [kg].
        body_inertia: (W, B) 3x3 inertia about the centre of mass, body axes [kg m^2].
        body_names: B names.
        shape_body: (S,) body index of each shape, -1 for static shapes.
        shape_type: (S,) a ``simulator.kernels.constants.ShapeType``.
        shape_transform: (S,) shape frame relative to its body's COM frame (world frame if static).
        shape_size: (S,) sphere (radius, 0, 0); box half extents [m]; capsule (radius,
            half height of the core segment along local z, 0); unused for planes and meshes.
        shape_stiffness: (W, S) contact stiffness ke [N/m] (a pair uses the mean of its two shapes).
        shape_damping: (W, S) contact damping kd [N s/m].
        shape_friction: (W, S) Coulomb friction coefficient mu [-].
        shape_meshes: S entries, the ``trimesh.Trimesh`` of mesh shapes (in the shape frame), else None.
        contact_softness: (W,) softening length [m] of the contact law (0 = hard penalty).
        contact_mode: ``"soft"`` or ``"surrogate"`` (hard forward, softened derivatives backward).
        friction_smoothing: velocity scale [m/s] of the regularised Coulomb friction.
        contact_impact_speed: largest expected normal impact speed [m/s] (``ContactSettings.impact_speed``),
            used only by the stable-step check; 0 if not declared.
        candidate_*: (C,) contact candidates (see ``simulator.kernels.rigid``).
        requires_grad: whether arrays are allocated with gradient buffers.
        articulation: the joints' static topology (``simulator.articulation.ArticulationModel``),
            None without joints.
        body_com: (B, 3) numpy, each body's centre of mass in the frame it was given to
            ``add_body`` (its origin; ``body_q`` is the COM frame) [m], shared by the worlds.
        mujoco_index: where MuJoCo keeps the joints and actuators (``simulator.mjcf.MuJoCoIndex``)
            for a model read by ``load_mjcf``, else None (``simulator.mjcf.to_mujoco_state``).

    Joint and actuator parameters, per world (D dofs, A actuators of ``articulation``; one padding
    column where D or A is 0, also without joints; see ``SceneBuilder.add_joint`` and
    ``add_actuator``):
        joint_armature: (W, D) rotor inertia on each dof's diagonal [kg m^2 or kg].
        joint_damping: (W, D) viscous joint damping [N m s/rad or N s/m].
        joint_stiffness: (W, D) joint spring toward the spring reference [N m/rad or N/m].
        joint_limit_lower, joint_limit_upper: (W, D) joint limits [rad or m] (a huge finite
            value where a dof has no limit; the limit springs are only active with limits).
        actuator_gear: (W, A) motor gain [N m or N per control unit].
        actuator_kp: (W, A) position-actuator gain [N m/rad or N/m].
        actuator_kd: (W, A) position-actuator velocity gain [N m s/rad or N s/m].
    """

    device: wp.context.Device
    precision: Precision
    num_worlds: int
    body_count: int
    shape_count: int
    gravity: tuple[float, float, float]
    body_mass: wp.array
    body_inertia: wp.array
    body_names: list[str]
    shape_body: wp.array
    shape_type: wp.array
    shape_transform: wp.array
    shape_size: wp.array
    shape_stiffness: wp.array
    shape_damping: wp.array
    shape_friction: wp.array
    shape_meshes: list
    contact_softness: wp.array
    contact_mode: str
    friction_smoothing: float
    candidate_source: wp.array
    candidate_target: wp.array
    candidate_kind: wp.array
    candidate_point: wp.array
    candidate_point2: wp.array
    candidate_radius: wp.array
    requires_grad: bool
    initial_body_q: np.ndarray = field(repr=False)
    initial_body_v: np.ndarray = field(repr=False)
    initial_body_w: np.ndarray = field(repr=False)
    articulation: object = field(default=None, repr=False)  # simulator.articulation.ArticulationModel
    body_com: np.ndarray | None = field(default=None, repr=False)  # (B, 3) COM in the body's own frame [m]
    mujoco_index: object = field(default=None, repr=False)  # simulator.mjcf.MuJoCoIndex (load_mjcf models)
    contact_impact_speed: float = 0.0
    # every array with the world index first that a world range of the model is sliced from
    PER_WORLD_ARRAYS: ClassVar[tuple[str, ...]] = (
        "body_mass",
        "body_inertia",
        "shape_stiffness",
        "shape_damping",
        "shape_friction",
        "contact_softness",
    ) + JOINT_PARAMETERS
    joint_armature: wp.array | None = field(default=None, repr=False)
    joint_damping: wp.array | None = field(default=None, repr=False)
    joint_stiffness: wp.array | None = field(default=None, repr=False)
    joint_limit_lower: wp.array | None = field(default=None, repr=False)
    joint_limit_upper: wp.array | None = field(default=None, repr=False)
    actuator_gear: wp.array | None = field(default=None, repr=False)
    actuator_kp: wp.array | None = field(default=None, repr=False)
    actuator_kd: wp.array | None = field(default=None, repr=False)

    # the sign each per-world parameter must have: "positive" (> 0), "nonnegative" (>= 0) or "finite";
    # body_inertia is also checked for symmetry and positive-definiteness, the limits for lower <= upper
    PARAMETER_SIGNS: ClassVar[dict[str, str]] = {
        "body_mass": "positive",
        "body_inertia": "finite",
        "shape_stiffness": "nonnegative",  # 0: a shape that only gives mass (MJCF contype=0)
        "shape_damping": "nonnegative",
        "shape_friction": "nonnegative",
        "contact_softness": "nonnegative",
        "joint_armature": "nonnegative",
        "joint_damping": "nonnegative",
        "joint_stiffness": "nonnegative",
        "joint_limit_lower": "finite",
        "joint_limit_upper": "finite",
        "actuator_gear": "finite",
        "actuator_kp": "nonnegative",
        "actuator_kd": "nonnegative",
    }

    @property
    def candidate_count(self) -> int:
        return self.candidate_source.shape[0]

    def validate(self) -> None:
        """Check every per-world parameter (:attr:`PER_WORLD_ARRAYS`, as :meth:`parameters`
        lists them) as it is now, also after it was written following ``finalize``: finite, of
        the sign in :attr:`PARAMETER_SIGNS`, inertia tensors symmetric and positive-definite,
        joint limits ordered. Raises ``ParameterError`` naming the array, the world and the
        entry. Reads the arrays on the host (views without a copy on the CPU); the engine calls
        it before every rollout when they changed (:meth:`validate_if_changed`; costs in
        ``docs/performance.md``)."""
        values = self._parameter_values()
        for name, array in values.items():
            check_parameter_values(name, array, self.PARAMETER_SIGNS[name])
        inertia = values["body_inertia"]
        (a, b, c), (d, e, f), (g, h, i) = (tuple(inertia[..., r, k].astype(np.float64) for k in range(3)) for r in range(3))
        scale = np.maximum(np.maximum(np.abs(a), np.abs(e)), np.abs(i))
        asymmetric = np.maximum(np.maximum(np.abs(b - d), np.abs(c - g)), np.abs(f - h)) > 1e-5 * scale
        if asymmetric.any():
            world, body = (int(x) for x in np.argwhere(asymmetric)[0])
            raise ParameterError(f"body_inertia must be symmetric, got {describe(inertia[world, body])} for body {body} "
                                 f"({self.body_names[body]!r}) in world {world}")
        # positive-definite (Sylvester's criterion): the leading principal minors are positive
        determinant = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
        indefinite = (a <= 0.0) | (a * e - b * d <= 0.0) | (determinant <= 0.0)
        if indefinite.any():
            world, body = (int(x) for x in np.argwhere(indefinite)[0])
            moments = np.linalg.eigvalsh(inertia[world, body].astype(np.float64))
            raise ParameterError(f"body_inertia must be positive-definite, got principal moments {describe(moments)} "
                                 f"for body {body} ({self.body_names[body]!r}) in world {world}")
        if "joint_limit_lower" in values:
            crossed = values["joint_limit_lower"] > values["joint_limit_upper"]
            if crossed.any():
                world, dof = (int(i) for i in np.argwhere(crossed)[0])
                raise ParameterError(f"joint_limit_lower must be <= joint_limit_upper, got {describe(values['joint_limit_lower'][world, dof])} > "
                                     f"{describe(values['joint_limit_upper'][world, dof])} for dof {dof} in world {world}")

    def parameter_snapshot(self) -> bytes:
        """The bytes of every per-world parameter (:meth:`parameters`) as they are now: equal
        snapshots mean equal parameters (a host read; cheap on the CPU, where the arrays are
        read through kept views)."""
        return b"".join(v.tobytes() for v in self._parameter_values().values())

    def validate_if_changed(self) -> bytes:
        """:meth:`validate` unless the parameters are bytewise those last validated (what the
        engine calls before every rollout); returns the current :meth:`parameter_snapshot`."""
        snapshot = self.parameter_snapshot()
        if snapshot != self.__dict__.get("_validated_snapshot"):
            self.validate()
            self.__dict__["_validated_snapshot"] = snapshot
        return snapshot

    def _parameter_values(self) -> dict[str, np.ndarray]:
        """Host values of :meth:`parameters`: on the CPU, views kept from one call to the next
        (the memory of an array never moves); on a GPU, fresh copies."""
        if not self.device.is_cpu:
            return {name: array.numpy() for name, array in self.parameters().items()}
        views = self.__dict__.setdefault("_parameter_views", {})
        values = {}
        for name, array in self.parameters().items():
            kept = views.get(name)
            if kept is None or kept[0] is not array:
                kept = views[name] = (array, array.numpy())
            values[name] = kept[1]
        return values

    def _template(self, kind: str):
        """A state or control of this model allocated once (its arrays give the expected shapes,
        dtypes and device of the arrays a step reads and writes)."""
        cache = self.__dict__.setdefault("_templates", {})
        if kind not in cache:
            cache[kind] = self.output_state(requires_grad=False) if kind == "state" else self.control(requires_grad=False)
        return cache[kind]

    def check_state(self, state, name: str = "state", *, reads_only: bool = False, finite: bool = False) -> None:
        """Raise ``ParameterError`` unless ``state`` holds every array a step of this model reads
        (``reads_only``: poses, velocities and joint coordinates) or writes, of the model's
        shape, dtype and device (checked once per set of arrays); with ``finite``, also unless
        the arrays a step reads are finite (a host read, every call)."""
        if not isinstance(state, State):
            raise ParameterError(f"{name} must be a simulator.State, got {type(state).__name__}")
        read = ("body_q", "body_v", "body_w") + (("joint_q", "joint_qd", "link_q", "link_v") if self.articulation is not None else ())
        parts, level = (state.joint_work, *state.arrays().values()), 0 if reads_only else 1
        if not checked_before(state, self, parts, level):
            template = self._template("state")
            for field_name, expected in template.arrays().items():
                if reads_only and field_name not in read:
                    continue
                check_array(f"{name}.{field_name}", getattr(state, field_name), shape=expected.shape, dtype=expected.dtype,
                            device=self.device)
            if not reads_only and self.articulation is not None:
                if state.joint_work is None:
                    raise ParameterError(f"{name} must come from this model's state() or output_state(), got one without joint_work")
                for f in template.joint_work.__dataclass_fields__:
                    expected = getattr(template.joint_work, f)
                    check_array(f"{name}.joint_work.{f}", getattr(state.joint_work, f), shape=expected.shape, dtype=expected.dtype,
                                device=self.device)
            mark_checked(state, self, parts, level)
        if finite:
            for field_name in read[:3] + read[3:5]:
                check_array_finite(f"{name}.{field_name}", getattr(state, field_name))

    def check_control(self, control, name: str = "control") -> None:
        """Raise ``ParameterError`` unless ``control`` is None or holds this model's control
        arrays (shape, dtype, device)."""
        if control is None:
            return
        if not isinstance(control, Control):
            raise ParameterError(f"{name} must be a simulator.Control or None, got {type(control).__name__}")
        template = self._template("control")
        for field_name in ("body_force", "body_torque", "joint_act"):
            expected = getattr(template, field_name)
            if expected is not None:
                check_array(f"{name}.{field_name}", getattr(control, field_name), shape=expected.shape, dtype=expected.dtype,
                            device=self.device)

    def parameters(self) -> dict[str, wp.array]:
        """The per-world physical parameters, by name (all differentiable); the joint and actuator
        parameters (``JOINT_PARAMETERS``) only when the model has joints."""
        joints = self.articulation is not None
        return {name: getattr(self, name) for name in self.PER_WORLD_ARRAYS if joints or name not in JOINT_PARAMETERS}

    def _zeros(self, shape, dtype, requires_grad):
        grad = self.requires_grad if requires_grad is None else requires_grad
        return wp.zeros(shape, dtype=dtype, device=self.device, requires_grad=grad)

    def state(self, *, requires_grad: bool | None = None) -> State:
        """A new State holding the initial conditions given to the builder.

        ``requires_grad`` defaults to the model's setting.
        """
        p = self.precision
        grad = self.requires_grad if requires_grad is None else requires_grad
        shape = (self.num_worlds, self.body_count)

        def initial(values, dtype):
            return wp.array(values, dtype=dtype, device=self.device, requires_grad=grad)

        state = State(
            body_q=initial(self.initial_body_q, p.transform),
            body_v=initial(self.initial_body_v, p.vec3),
            body_w=initial(self.initial_body_w, p.vec3),
            body_contact_force=self._zeros(shape, p.vec3, grad),
            body_contact_torque=self._zeros(shape, p.vec3, grad),
        )
        if self.articulation is not None:
            self.articulation.init_state(self, state, grad)
        return state

    def output_state(self, *, requires_grad: bool | None = None) -> State:
        """A new State for a step to write into: arrays allocated but not initialised.

        Cheaper than :meth:`state` (no initial conditions copied, no forward kinematics), for the
        ``state_out`` of :func:`simulator.rigid.step`, which writes every array it holds.
        Read nothing from it before a step has written it.
        """
        grad = self.requires_grad if requires_grad is None else requires_grad
        shape = (self.num_worlds, self.body_count)
        p = self.precision

        def empty(dtype):
            return wp.empty(shape, dtype=dtype, device=self.device, requires_grad=grad)

        state = State(
            body_q=empty(p.transform),
            body_v=empty(p.vec3),
            body_w=empty(p.vec3),
            body_contact_force=empty(p.vec3),
            body_contact_torque=empty(p.vec3),
        )
        if self.articulation is not None:
            self.articulation.init_state(self, state, grad, initialize=False)
        return state

    def control(self, *, requires_grad: bool | None = None) -> Control:
        """A zero Control for one step (arrays ``(W, B)``)."""
        shape = (self.num_worlds, self.body_count)
        control = Control(
            body_force=self._zeros(shape, self.precision.vec3, requires_grad),
            body_torque=self._zeros(shape, self.precision.vec3, requires_grad),
        )
        if self.articulation is not None:
            grad = self.requires_grad if requires_grad is None else requires_grad
            control.joint_act = self.articulation.control_array(self, (self.num_worlds,), grad)
        return control

    def control_sequence(self, num_steps: int, *, requires_grad: bool | None = None) -> ControlSequence:
        """Zero controls for ``num_steps`` steps (arrays ``(T, W, B)``)."""
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ParameterError(f"num_steps must be a positive integer, got {num_steps!r}")
        shape = (int(num_steps), self.num_worlds, self.body_count)
        sequence = ControlSequence(
            body_force=self._zeros(shape, self.precision.vec3, requires_grad),
            body_torque=self._zeros(shape, self.precision.vec3, requires_grad),
        )
        if self.articulation is not None:
            grad = self.requires_grad if requires_grad is None else requires_grad
            sequence.joint_act = self.articulation.control_array(self, (int(num_steps), self.num_worlds), grad)
        return sequence
