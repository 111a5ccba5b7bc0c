"""Robot scenes built in Python: pendulum, cartpole, acrobot, hopper and ant.

Each factory returns a :class:`RobotScene`: the finalized model and its :class:`simulator.losses.Task`
(default time step ``dt`` [s] split into ``substeps``, default horizon, loss terms, default
controller); ``scene.loss(trajectory, controls)`` evaluates the task's loss terms over a rollout
(lower is better; ``reward = -loss``), the same terms :class:`simulator.SceneTaskObjective`
adds inside its rollouts. All are registered by name:
``simulator.scenes.make("ant", num_worlds=64, device="cpu", precision="float32")``.
Common options: ``precision``, ``requires_grad``, ``contact`` (a ``ContactSettings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import warp as wp

from simulator.articulation import eval_fk
from simulator.builder import SceneBuilder
from simulator.contact import ContactSettings
from simulator.errors import ParameterError
from simulator.losses import ActuatorEffort, ForwardProgress, JointError, Task, trajectory_loss, trajectory_steps
from simulator.model import ControlSequence, Model, State
from simulator.rollout import Trajectory, rollout

from .registry import register


@dataclass
class RobotScene:
    """A robot and its task.

    Attributes:
        name: registry name.
        model: the finalized model (W worlds).
        task: the :class:`simulator.losses.Task`: model factory, ``dt`` [s], ``substeps``, default
            ``horizon`` (control steps), loss terms and default controller; :meth:`loss` evaluates
            its loss terms.
    """

    name: str
    model: Model
    task: Task = field(repr=False)

    @property
    def dt(self) -> float:
        """Control step [s]; each step is split into ``substeps`` physics substeps."""
        return self.task.dt

    @property
    def substeps(self) -> int:
        return self.task.substeps

    @property
    def horizon(self) -> int:
        """Default number of control steps of the task."""
        return self.task.horizon

    def state(self) -> State:
        return self.model.state()

    def control_sequence(self, num_steps: int | None = None) -> ControlSequence:
        return self.model.control_sequence(num_steps or self.horizon)

    def rollout(self, controls=None, *, num_steps: int | None = None, state: State | None = None, record: bool = True) -> Trajectory:
        """Simulate the task horizon (or ``num_steps`` steps) from ``state`` (default: initial)."""
        return rollout(
            self.model,
            state or self.state(),
            controls,
            num_steps=num_steps or self.horizon,
            dt=self.dt,
            substeps=self.substeps,
            record=record,
        )

    def loss(self, trajectory: Trajectory, controls: ControlSequence | None = None, *, num_steps: int | None = None) -> wp.array:
        """Task loss per world, shape (W,), from the task's loss terms (recorded on an active tape).

        ``controls`` are the controls that drove the rollout (the effort term adds nothing without
        them). The number of steps (which sets the elapsed time of the forward-progress loss and the
        mean of the effort) is ``num_steps``, or that of a recorded trajectory, or the length of
        ``controls``; a ``record=False`` trajectory driven by no control sequence needs ``num_steps``.
        """
        steps = trajectory_steps(trajectory, controls, num_steps)
        if steps == 0:
            raise ParameterError(f"trajectory must have at least one step for the task loss, got {steps} steps")
        return trajectory_loss(self.model, self.task.losses(steps), trajectory, controls, num_steps=steps)

    def reward(self, trajectory: Trajectory, controls: ControlSequence | None = None, *, num_steps: int | None = None) -> np.ndarray:
        return -self.loss(trajectory, controls, num_steps=num_steps).numpy()


def _finalize(builder, num_worlds, device, precision, requires_grad, contact):
    return builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact)


EFFORT_WEIGHT = 1.0e-3  # the robot tasks' effort penalty: EFFORT_WEIGHT * mean over steps of sum_a u_a^2


def _open_loop_actions(model: Model):
    """The robot tasks' default controller: open-loop actuator controls, one row per step."""
    from simulator.tasks import OpenLoopActions

    return OpenLoopActions(model.control(requires_grad=False).joint_act.shape[1])


def _robot_scene(factory, options: dict, model: Model, contact, *, name, dt, substeps, horizon, description, terms) -> RobotScene:
    """A :class:`RobotScene` whose task rebuilds the model with ``factory(**options)`` (by default on
    the scene's device, precision, ``requires_grad`` and ``contact``) and whose loss is ``terms``
    (final state) plus the effort penalty averaged over the steps."""

    def make_model(num_worlds=1, device=model.device, precision=model.precision, requires_grad=model.requires_grad, contact=contact):
        return factory(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact,
                       **options).model

    def loss_terms(num_steps):
        return [*terms, ActuatorEffort(weight=EFFORT_WEIGHT / num_steps)]

    task = Task(name=name, make_model=make_model, dt=dt, substeps=substeps, horizon=horizon, loss_terms=loss_terms,
                make_controller=_open_loop_actions, description=description)
    return RobotScene(name, model, task)


def _joint_terms(terms):
    """Final-state joint errors from (joint, is_velocity, is_angle, target, weight) rows."""
    return [JointError(j, target=target, weight=weight, velocity=bool(vel), angle=bool(angle)) for j, vel, angle, target, weight in terms]


@register("pendulum")
def pendulum(*, num_worlds=1, device=None, precision="float32", requires_grad=False, contact=None, length=1.0, mass=1.0, theta0=0.0, damping=0.0, max_torque=5.0):
    """A rigid pendulum: a sphere of ``mass`` [kg] on a massless rod of ``length`` [m], hinged
    about the world y axis at the origin, hanging down at q = 0; gravity 9.81 m/s^2.
    Equation: I_p qdd = -m g L sin q - c qd + u, I_p = m L^2 + I_sphere. Motor: torque = u
    clipped to +-max_torque [N m]. dt 0.02 s (2 substeps); small-angle period 2 pi sqrt(L/g).
    Task (swing-up, 150 steps = 3 s): loss = 10 (2 sin((q - pi)/2))^2 + 0.1 qd^2 at the end, plus
    1e-3 mean over steps of u^2."""
    b = SceneBuilder()
    bob = b.add_body(position=(0.0, 0.0, -length), mass=mass, name="bob")
    b.add_sphere(bob, radius=0.05)
    j = b.add_revolute_joint(-1, bob, axis=(0, 1, 0), position=(0.0, 0.0, length), q=theta0, damping=damping, name="hinge")
    b.add_actuator(j, gear=max_torque, ctrl_range=(-1.0, 1.0), name="torque")
    model = _finalize(b, num_worlds, device, precision, requires_grad, contact)
    options = dict(length=length, mass=mass, theta0=theta0, damping=damping, max_torque=max_torque)
    return _robot_scene(pendulum, options, model, contact, name="pendulum", dt=0.02, substeps=2, horizon=150,
                        description="swing up to q = pi", terms=_joint_terms([(j, 0, 1, math.pi, 10.0), (j, 1, 0, 0.0, 0.1)]))


@register("cartpole")
def cartpole(*, num_worlds=1, device=None, precision="float32", requires_grad=False, contact=None, pole_length=1.0, swing_up=False, force=20.0):
    """A cart (1 kg box on a frictionless rail along x) carrying a pole (capsule, 0.1 kg, length
    ``pole_length`` [m]) hinged about y; q = (x [m], angle [rad], 0 = upright). Motor on the cart:
    force = ``force`` * u [N], u in [-1, 1]. dt 0.02 s (2 substeps). Task (balance, 100 steps):
    loss = 10 angle_err^2 + x^2 + 0.1 (xd^2 + qd^2) at the end, angle_err = 2 sin((q - 0)/2), plus
    1e-3 mean over steps of u^2; with ``swing_up`` the pole starts hanging (q = pi)."""
    b = SceneBuilder()
    cart = b.add_body(position=(0.0, 0.0, 0.0), mass=1.0, name="cart")
    b.add_box(cart, half_extents=(0.2, 0.1, 0.05))
    pole = b.add_body(position=(0.0, 0.0, 0.5 * pole_length), mass=0.1, name="pole")
    b.add_capsule(pole, radius=0.02, half_height=0.5 * pole_length)
    slider = b.add_prismatic_joint(-1, cart, axis=(1, 0, 0), name="slider")
    hinge = b.add_revolute_joint(cart, pole, axis=(0, 1, 0), position=(0.0, 0.0, -0.5 * pole_length), q=math.pi if swing_up else 0.05, name="hinge")
    b.add_actuator(slider, gear=force, ctrl_range=(-1.0, 1.0), name="push")
    model = _finalize(b, num_worlds, device, precision, requires_grad, contact)
    terms = [(hinge, 0, 1, 0.0, 10.0), (slider, 0, 0, 0.0, 1.0), (slider, 1, 0, 0.0, 0.1), (hinge, 1, 0, 0.0, 0.1)]
    options = dict(pole_length=pole_length, swing_up=swing_up, force=force)
    return _robot_scene(cartpole, options, model, contact, name="cartpole", dt=0.02, substeps=2, horizon=100,
                        description="balance the pole upright", terms=_joint_terms(terms))


@register("acrobot")
def acrobot(*, num_worlds=1, device=None, precision="float32", requires_grad=False, contact=None, damping=0.0, max_torque=10.0):
    """Double pendulum (acrobot): two 1 m links of 1 kg (thin capsules), hinged about y at the
    origin and at the elbow, hanging at q = 0; only the elbow is actuated (torque = max_torque*u
    [N m]). Chaotic when undamped. dt 0.01 s (4 substeps). Task (swing-up, 300 steps):
    loss = 10 [(2 sin((q1 - pi)/2))^2 + (2 sin(q2/2))^2] + 0.1 |qd|^2 at the end, plus 1e-3 mean over
    steps of u^2."""
    b = SceneBuilder()
    upper = b.add_body(position=(0.0, 0.0, -0.5), mass=1.0, name="upper")
    b.add_capsule(upper, radius=0.03, half_height=0.5)
    lower = b.add_body(position=(0.0, 0.0, -1.5), mass=1.0, name="lower")
    b.add_capsule(lower, radius=0.03, half_height=0.5)
    shoulder = b.add_revolute_joint(-1, upper, axis=(0, 1, 0), position=(0.0, 0.0, 0.5), damping=damping, name="shoulder")
    elbow = b.add_revolute_joint(upper, lower, axis=(0, 1, 0), position=(0.0, 0.0, 0.5), damping=damping, name="elbow")
    b.add_actuator(elbow, gear=max_torque, ctrl_range=(-1.0, 1.0), name="elbow")
    model = _finalize(b, num_worlds, device, precision, requires_grad, contact)
    terms = [(shoulder, 0, 1, math.pi, 10.0), (elbow, 0, 1, 0.0, 10.0), (shoulder, 1, 0, 0.0, 0.1), (elbow, 1, 0, 0.0, 0.1)]
    options = dict(damping=damping, max_torque=max_torque)
    return _robot_scene(acrobot, options, model, contact, name="acrobot", dt=0.01, substeps=4, horizon=300,
                        description="swing both links upright", terms=_joint_terms(terms))


@register("hopper")
def hopper(*, num_worlds=1, device=None, precision="float32", requires_grad=False, contact=None, stiffness=2.0e4, damping=2.0e2, friction=0.9):
    """Planar one-legged hopper (the proportions of the classic MuJoCo hopper; capsules of density
    1000 kg/m^3): torso (0.4 m), thigh (0.45 m), leg (0.5 m), foot (0.39 m). The torso moves in
    the x-z plane through slide x, slide z and hinge y joints; thigh, leg and foot hinges carry
    motors of gear 200 N m (u in [-1, 1]). Joints: armature 1 kg m^2, damping 1 N m s/rad,
    limits thigh/leg [-150, 0] deg, foot [-45, 45] deg. Ground: penalty contact ke ``stiffness``
    [N/m], kd ``damping`` [N s/m], mu ``friction``. dt 0.008 s (5 substeps of 1.6 ms: the contact
    bound of :func:`simulator.rigid.contact_time_scales` is 1.77 ms for the defaults).
    Task (forward velocity, 125 steps = 1 s): loss = -(x_T - x_0)/T of the torso + 1e-3 mean over steps
    of sum u^2, T = the elapsed time (steps * dt)."""
    b = SceneBuilder(stiffness=stiffness, damping=damping, friction=friction)
    b.add_ground_plane()
    deg = math.pi / 180.0

    def segment(z_top, z_bottom, radius, name):
        body = b.add_body(position=(0.0, 0.0, 0.5 * (z_top + z_bottom)), name=name)
        b.add_capsule(body, radius=radius, half_height=0.5 * (z_top - z_bottom))
        return body

    torso = segment(1.45, 1.05, 0.05, "torso")
    thigh = segment(1.05, 0.6, 0.05, "thigh")
    leg = segment(0.6, 0.1, 0.04, "leg")
    foot = b.add_body(position=(0.065, 0.0, 0.1), name="foot")
    b.add_capsule(foot, radius=0.06, half_height=0.195, rotation=(0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)))
    common = dict(armature=1.0, damping=1.0)
    b.add_prismatic_joint(-1, torso, axis=(1, 0, 0), position=(0, 0, 0), name="rootx")
    b.add_prismatic_joint(-1, torso, axis=(0, 0, 1), position=(0, 0, 0), name="rootz")
    b.add_revolute_joint(-1, torso, axis=(0, 1, 0), position=(0, 0, 0), name="rooty")
    motors = [
        b.add_revolute_joint(torso, thigh, axis=(0, -1, 0), position=(0, 0, 0.225), limit=(-150 * deg, 0.0), name="thigh", **common),
        b.add_revolute_joint(thigh, leg, axis=(0, -1, 0), position=(0, 0, 0.25), limit=(-150 * deg, 0.0), name="leg", **common),
        b.add_revolute_joint(leg, foot, axis=(0, -1, 0), position=(-0.065, 0, 0), limit=(-45 * deg, 45 * deg), name="foot", **common),
    ]
    for j in motors:
        b.add_actuator(j, gear=200.0, ctrl_range=(-1.0, 1.0))
    model = _finalize(b, num_worlds, device, precision, requires_grad, contact)
    options = dict(stiffness=stiffness, damping=damping, friction=friction)
    return _robot_scene(hopper, options, model, contact, name="hopper", dt=0.008, substeps=5, horizon=125, description="run forward (+x)",
                        terms=[ForwardProgress(torso)])


ANT_HIP_RANGE = (-30.0, 30.0)
ANT_LEGS = (  # (direction in the x-y plane, ankle axis, ankle range [deg]) as in the gymnasium ant
    ((1.0, 1.0), (-1.0, 1.0, 0.0), (30.0, 70.0)),
    ((-1.0, 1.0), (1.0, 1.0, 0.0), (-70.0, -30.0)),
    ((-1.0, -1.0), (-1.0, 1.0, 0.0), (-70.0, -30.0)),
    ((1.0, -1.0), (1.0, 1.0, 0.0), (30.0, 70.0)),
)


def build_ant(*, height=0.6, stiffness=2.0e3, damping=20.0, friction=1.0, limit_softness=0.0, gear=150.0):
    """The ant quadruped as a :class:`SceneBuilder` (geometry of the gymnasium ant, in Python).

    Torso: sphere r 0.25 m on a free joint; four legs, each a fixed hip segment (capsule
    0.2*sqrt(2) m), a thigh on a hip hinge about z (+-30 deg) and a shin (0.4*sqrt(2) m) on an
    ankle hinge about the horizontal axis across the leg (ranges of 40 deg). Capsules r 0.08 m,
    density 5 kg/m^3 (total about 0.91 kg). Joints: armature 1 kg m^2, damping 1 N m s/rad.
    Motors: gear ``gear`` [N m], u in [-1, 1]. Ankles start at +-1 rad (legs down).
    """
    deg = math.pi / 180.0
    b = SceneBuilder(stiffness=stiffness, damping=damping, friction=friction)
    b.add_ground_plane()
    torso = b.add_body(position=(0.0, 0.0, height), name="torso")
    b.add_sphere(torso, radius=0.25, density=5.0)
    b.add_free_joint(torso, name="root")
    bodies = [torso]
    actuated = []
    for leg, ((sx, sy), ankle_axis, ankle_range) in enumerate(ANT_LEGS, start=1):
        d = np.array([sx, sy, 0.0])
        hip = b.add_body(position=(0.0, 0.0, height), name=f"leg{leg}")
        _capsule_fromto(b, hip, np.zeros(3), 0.2 * d)
        b.add_fixed_joint(torso, hip, name=f"weld_{leg}")
        thigh = b.add_body(position=(0.2 * sx, 0.2 * sy, height), name=f"aux_{leg}")
        _capsule_fromto(b, thigh, np.zeros(3), 0.2 * d)
        hip_joint = b.add_revolute_joint(hip, thigh, axis=(0, 0, 1), limit=tuple(x * deg for x in ANT_HIP_RANGE), armature=1.0, damping=1.0, limit_softness=limit_softness, name=f"hip_{leg}")
        shin = b.add_body(position=(0.4 * sx, 0.4 * sy, height), name=f"shin_{leg}")
        _capsule_fromto(b, shin, np.zeros(3), 0.4 * d)
        q0 = 1.0 if ankle_range[0] > 0 else -1.0
        ankle = b.add_revolute_joint(thigh, shin, axis=ankle_axis, limit=tuple(x * deg for x in ankle_range), armature=1.0, damping=1.0, q=q0, limit_softness=limit_softness, name=f"ankle_{leg}")
        actuated += [hip_joint, ankle]
        bodies += [hip, thigh, shin]
    for j in actuated:
        b.add_actuator(j, gear=gear, ctrl_range=(-1.0, 1.0))
    for i, a in enumerate(bodies):  # only the ground touches the ant (as in the MJCF: conaffinity 0)
        for c in bodies[i + 1 :]:
            b.filter_collision(a, c)
    return b, torso


def _capsule_fromto(builder, body, start, end, radius=0.08, density=5.0):
    """A capsule between two points of the body frame (MJCF ``fromto``)."""
    from simulator.spatial import quat_between

    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    half = 0.5 * np.linalg.norm(axis)
    return builder.add_capsule(body, radius=radius, half_height=half, position=0.5 * (start + end), rotation=quat_between([0, 0, 1], axis), density=density)


@register("ant")
def ant(*, num_worlds=1, device=None, precision="float32", requires_grad=False, contact=None, **options):
    """Ant quadruped on a ground plane (see :func:`build_ant`; options go there): 15 coordinates
    (free root 7 + 8 hinges), 14 dofs, 8 motors; penalty contact ke 2e3 N/m, kd 20 N s/m, mu 1,
    friction smoothing 0.05 m/s (the explicit friction's stability limit is 2*v_smooth/(mu*g)).
    dt 0.01 s (10 substeps of 1 ms: the contact bound of :func:`simulator.rigid.contact_time_scales`,
    1.09 ms, counts both caps of a 39 g shin on the ground at its worst-direction effective mass). Task (forward velocity, 100 steps = 1 s):
    loss = -(x_T - x_0)/T of the torso + 1e-3 mean over steps of sum u^2, T = the elapsed time (steps * dt)."""
    builder, torso = build_ant(**options)
    # the explicit regularised friction needs dt_sub < 2*v_smooth/(mu*g): 5 cm/s allows 10 ms
    contact = contact or ContactSettings(friction_smoothing=0.05)
    model = _finalize(builder, num_worlds, device, precision, requires_grad, contact)
    return _robot_scene(ant, options, model, contact, name="ant", dt=0.01, substeps=10, horizon=100, description="walk forward (+x)",
                        terms=[ForwardProgress(torso)])


__all__ = ["RobotScene", "acrobot", "ant", "build_ant", "cartpole", "eval_fk", "hopper", "pendulum"]
