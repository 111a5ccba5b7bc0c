"""Articulated bodies: joints, actuators and their reduced-coordinate dynamics.

Choice: reduced (generalised) coordinates, Featherstone-style
-----------------------------------------------------------
A robot's state is its joint coordinates ``joint_q`` (W, Q) and velocities ``joint_qd``
(W, D); body poses are derived from them by forward kinematics. We chose this over maximal
coordinates with constraint forces because

* joint constraints hold exactly by construction (no drift, no constraint stiffness that would
  force tiny time steps or add a stiff, chaotic direction to the gradients);
* the state has the minimal dimension (the ant has 15 coordinates instead of 13 x 13), so
  Jacobians are smaller and better conditioned;
* joint-space quantities (limits, damping, armature, PD gains) act on a single coordinate and
  can be integrated implicitly on the diagonal of the mass matrix;
* the contact kernel and every objective keep working: forward kinematics fills the usual
  ``body_q``, ``body_v``, ``body_w``, and contact wrenches are mapped back by ``J^T``.

Each step (``simulator.rigid.step`` calls :func:`step_articulations`) computes, in five kernels
of one thread per world: bias forces by recursive Newton-Euler with gravity as a base
acceleration, the mass matrix by the composite-rigid-body algorithm, a Cholesky solve of

    (H + diag(armature + dt*(damping + kd) + dt^2*k)) qdd = tau - C(q, qd) + J^T f_contact - dt*k*qd,

where ``k``/``kd`` are the stiffness/damping of joint springs, PD actuators and active joint
limits (implicit Euler on those terms, so stiff gains and limits stay stable at any dt), then semi-implicit Euler
``qd += dt*qdd``, ``q += dt*qd`` (quaternions of free and ball joints renormalised) and forward
kinematics. Bodies without a joint keep the maximal-coordinate integrator.

Joints (``SceneBuilder.add_joint`` and shorthands)
-------------------------------------------------
=========  ====  =====  ===========================================================================
kind       q     qd     coordinates
=========  ====  =====  ===========================================================================
free       7     6      position [m] and quaternion (x, y, z, w) of the child COM in the parent
                        frame; linear [m/s] then angular [rad/s] velocity, parent axes
ball       4     3      quaternion; angular velocity [rad/s] in the parent joint frame
revolute   1     1      angle [rad] about ``axis`` (right-handed); alias ``hinge``
prismatic  1     1      displacement [m] along ``axis``; alias ``slide``
fixed      0     0      welds the child to the parent
=========  ====  =====  ===========================================================================

A joint's anchor ``position`` and ``axis`` are given in the child body's frame (as in MJCF); the
configuration given to ``add_body`` is ``q = ref`` (``ref`` defaults to 0; MJCF's joint ``ref``)
and the free joint's ``q`` is the body pose. A body may carry several joints (applied in order,
as in MJCF), which are chained through massless internal links. Joint limits are one-sided
spring-dampers defined at the acceleration level, as MuJoCo's ``solreflimit``: on the violation
``d`` [rad or m] (> 0 past the limit) the limit applies ``tau = m * relu(k*d + b*dd)`` towards the
range, with ``k = 1/(timeconst*dampratio)^2``, ``b = 2/timeconst`` (default (0.02, 1): k = 2500
1/s^2, b = 100 1/s) and ``m`` the dof's effective inertia, taken each step from the mass-matrix
diagonal at the current configuration plus the armature (``H[d, d] + armature``: the inertia the
dof sees with every other dof locked; MuJoCo uses ``1/(M^-1)[d, d]``, every other dof free, which
is the same for a single dof and smaller in a chain). So the penetration and rebound of an impact
do not depend on the inertia (3 m/s: 2.2 cm, rebound 0.41 m/s, as MuJoCo). The relu keeps the
damping from pulling (the joint leaves the limit once the law would pull). Not modelled: MuJoCo's
impedance ramp over ``solimp``'s width and its ``(1 - imp)`` share of the unconstrained
acceleration (a limit held by a steady load sinks ``load/(m*k)`` here, about 20 times MuJoCo's).
``limit_softness`` ``s`` smooths the law for gradients: the gate ``d > 0`` becomes
``sigmoid_s(d)`` and the relu a softplus of width ``k*s``; ``s = 0`` (default) is the hard law,
piecewise smooth. A force-level law (``limit_stiffness`` ke, ``limit_damping`` kd: ``m = 1``)
remains for Python-built scenes that give one.

Actuators (``SceneBuilder.add_actuator``): ``"motor"`` applies ``gear * clip(u, ctrl_range)``
[N m or N]; ``"position"`` applies ``kp*(clip(u, ctrl_range) - q) - kd*qd`` (PD to a target).
Controls ``u`` are per world and per step: ``Control.joint_act`` (W, A) and
``ControlSequence.joint_act`` (T, W, A), differentiable.

Parameters for system identification: joint armature, damping, stiffness and limits, and actuator
gear, kp and kd are per-world model arrays (``Model.joint_armature`` ... ``Model.actuator_kd``,
(W, D) or (W, A), listed by ``Model.parameters()``), initialised from the builder's values; with
``requires_grad=True`` a recorded rollout's ``tape.backward`` fills their ``.grad``. The
topology and the limit-law constants (k, b, s), spring references and control ranges are
shared by the worlds (``model.articulation``).

Modules: ``joints`` (joint and actuator kinds and their counts), ``builder`` (the
``SceneBuilder`` methods), ``layout`` (topological order, dofs, mass-matrix pattern), ``model``
(``ArticulationModel``: the device tables; the per-world parameters), ``state`` (joint state and
work arrays), ``launch`` (forward kinematics and the step).
"""

from .builder import ArticulationBuilderMixin
from .joints import (
    ACTUATOR_KINDS,
    COORD_COUNT,
    DEFAULT_LIMIT_DAMPING,
    DEFAULT_LIMIT_SOLREF,
    DEFAULT_LIMIT_STIFFNESS,
    DOF_COUNT,
    JOINT_KINDS,
    JOINT_NAMES,
    limit_law_from_solref,
)
from .launch import eval_fk, step_articulations
from .layout import Layout, build_layout
from .model import ArticulationModel, joint_parameters
from .state import ArticulationWork, allocate_joint_state

__all__ = [
    "ACTUATOR_KINDS",
    "COORD_COUNT",
    "DEFAULT_LIMIT_DAMPING",
    "DEFAULT_LIMIT_SOLREF",
    "DEFAULT_LIMIT_STIFFNESS",
    "DOF_COUNT",
    "JOINT_KINDS",
    "JOINT_NAMES",
    "ArticulationBuilderMixin",
    "ArticulationModel",
    "ArticulationWork",
    "Layout",
    "allocate_joint_state",
    "build_layout",
    "eval_fk",
    "joint_parameters",
    "limit_law_from_solref",
    "step_articulations",
]
