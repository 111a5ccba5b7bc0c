"""Launch wrappers of the articulation kernels: forward kinematics and the step.

The model inputs of each kernel are listed by name: fields of ``model`` (the per-world parameters)
and of ``model.articulation`` (the shared tables); the kernel parameter that receives each has the
same name (``tests/robots/test_articulation_package.py`` checks this).
"""

from __future__ import annotations

import warp as wp

from ..errors import ParameterError
from ..kernels.articulation import articulation_kernels
from ..model import JOINT_PARAMETERS
from ..runtime import active_tape

# shared tables read by forward_kinematics, in the kernel's order
FK_TABLES = (
    "link_body",
    "link_parent",
    "link_type",
    "link_axis",
    "link_parent_xform",
    "link_child_xform",
    "link_q_start",
    "link_qd_start",
)

# model inputs of each stage kernel of a step, in the kernel's order: the per-world fields of the
# Model, then the shared tables of model.articulation (the kernel parameters have the same names)
BIAS_PER_WORLD = ("body_mass", "body_inertia")
BIAS_TABLES = (
    "link_body",
    "link_parent",
    "link_type",
    "link_axis",
    "link_parent_xform",
    "link_child_xform",
    "link_qd_start",
    "link_dof_count",
)
JOINT_FORCES_PER_WORLD = JOINT_PARAMETERS
JOINT_FORCES_TABLES = (
    "dof_link",
    "dof_coord",
    "dof_spring_ref",
    "dof_limit_stiffness",
    "dof_limit_damping",
    "dof_limit_inertial",
    "dof_limit_softness",
    "dof_pair_start",
    "pair_col",
    "dof_act_start",
    "dof_act",
    "act_kind",
    "act_lower",
    "act_upper",
)
SOLVE_TABLES = ("dof_pair_start", "pair_col", "dof_desc_start", "dof_desc")
INTEGRATE_TABLES = ("link_type", "link_q_start", "link_qd_start")


def eval_fk(model, state) -> None:
    """Recompute ``state``'s body poses and velocities (and link frames) from ``joint_q`` and
    ``joint_qd``. Call it after editing joint coordinates by hand; it is recorded on an active
    ``wp.Tape``, so gradients reach ``joint_q`` / ``joint_qd`` of an initial state."""
    if model.articulation is None:
        raise ParameterError("model must have joints for eval_fk, got one with none")
    kernels = articulation_kernels(model.precision.scalar)
    wp.launch(
        kernels.forward_kinematics,
        dim=model.num_worlds,
        inputs=[getattr(model.articulation, name) for name in FK_TABLES] + [state.joint_q, state.joint_qd],
        outputs=[state.link_q, state.link_v, state.body_q, state.body_v, state.body_w],
        device=model.device,
    )


def step_articulations(model, state_in, state_out, control, dt: float) -> None:
    """Advance the articulations by ``dt`` [s]; contact forces must already be in ``state_out``.

    Five launches, one per stage (bias forces and composite inertias, generalised forces and the
    mass matrix, the sparse Cholesky solve, integration, forward kinematics), with the
    intermediates in ``state_out.joint_work``."""
    kernels = articulation_kernels(model.precision.scalar)
    art, work = model.articulation, state_out.joint_work
    scalar = model.precision.scalar
    W, n = model.num_worlds, int(art.num_dofs)

    def tables(names):
        return [getattr(art, name) for name in names]

    wp.launch(
        kernels.articulation_bias,
        dim=W,
        inputs=[getattr(model, name) for name in BIAS_PER_WORLD]
        + tables(BIAS_TABLES)
        + [
            model.precision.vec3(*model.gravity),
            state_in.joint_qd,
            state_in.link_q,
            state_in.link_v,
            state_out.body_contact_force,
            state_out.body_contact_torque,
            control.body_force,
            control.body_torque,
        ],
        outputs=[work.s, work.acc, work.force, work.mass, work.first_moment, work.rot_inertia],
        device=model.device,
    )
    if n > 0:
        wp.launch(
            kernels.articulation_joint_forces,
            dim=W,
            inputs=[getattr(model, name) for name in JOINT_FORCES_PER_WORLD]
            + tables(JOINT_FORCES_TABLES)
            + [n, scalar(dt), state_in.joint_q, state_in.joint_qd, control.joint_act,
               work.s, work.force, work.mass, work.first_moment, work.rot_inertia],
            outputs=[work.h, work.rhs, work.diag],
            device=model.device,
        )
        solve_inputs = tables(SOLVE_TABLES) + [n, work.h, work.rhs, work.diag]
        wp.launch(kernels.articulation_solve, dim=W, inputs=solve_inputs, outputs=[work.l, work.y, work.qdd], device=model.device,
                  record_tape=False)
        tape = active_tape()
        if tape is not None and work.qdd.grad is not None:
            _record_solve_adjoint(tape, model, kernels.articulation_solve_adjoint, tables(SOLVE_TABLES) + [n], work)
    wp.launch(
        kernels.articulation_integrate,
        dim=W,
        inputs=tables(INTEGRATE_TABLES) + [n, scalar(dt), state_in.joint_q, state_in.joint_qd, work.qdd],
        outputs=[state_out.joint_q, state_out.joint_qd],
        device=model.device,
    )
    eval_fk(model, state_out)


def _record_solve_adjoint(tape, model, adjoint_kernel, solve_inputs, work) -> None:
    """Record the solve's hand-written adjoint on ``tape`` (``articulation_solve_adjoint``): from
    the gradient of ``qdd`` into those of ``h``, ``rhs`` and ``diag`` (``y``'s gradient holds the
    adjoint of ``y`` afterwards; ``L`` and ``y`` are read by nothing outside the solve, and ``L``
    has no gradient array)."""

    def backward():
        wp.launch(
            adjoint_kernel,
            dim=model.num_worlds,
            inputs=solve_inputs + [work.l, work.qdd, work.qdd.grad],
            outputs=[work.y.grad, work.h.grad, work.rhs.grad, work.diag.grad],
            device=model.device,
        )

    tape.record_func(backward, [work.h, work.rhs, work.diag, work.y, work.qdd])
