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

# model inputs of articulation_step, in the kernel's order (then num_dofs, gravity, dt): the
# per-world fields of the Model, then the shared tables of model.articulation
STEP_PER_WORLD = ("body_mass", "body_inertia") + JOINT_PARAMETERS
STEP_TABLES = FK_TABLES + (
    "link_dof_count",
    "dof_link",
    "dof_coord",
    "dof_spring_ref",
    "dof_limit_ke",
    "dof_limit_kd",
    "dof_limit_softness",
    "dof_pair_start",
    "pair_col",
    "dof_desc_start",
    "dof_desc",
    "dof_act_start",
    "dof_act",
    "act_kind",
    "act_lower",
    "act_upper",
)


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
    """Advance the articulations by ``dt`` [s]; contact forces must already be in ``state_out``."""
    kernels = articulation_kernels(model.precision.scalar)
    work = state_out.joint_work
    scalar = model.precision.scalar
    wp.launch(
        kernels.articulation_step,
        dim=model.num_worlds,
        inputs=[getattr(model, name) for name in STEP_PER_WORLD]
        + [getattr(model.articulation, name) for name in STEP_TABLES]
        + [
            int(model.articulation.num_dofs),
            model.precision.vec3(*model.gravity),
            scalar(dt),
            state_in.joint_q,
            state_in.joint_qd,
            state_in.link_q,
            state_in.link_v,
            state_out.body_contact_force,
            state_out.body_contact_torque,
            control.body_force,
            control.body_torque,
            control.joint_act,
            work.s,
            work.acc,
            work.force,
            work.mass,
            work.first_moment,
            work.rot_inertia,
            work.h,
            work.l,
            work.rhs,
            work.diag,
            work.y,
            work.qdd,
        ],
        outputs=[
            state_out.joint_q,
            state_out.joint_qd,
            state_out.link_q,
            state_out.link_v,
            state_out.body_q,
            state_out.body_v,
            state_out.body_w,
        ],
        device=model.device,
    )
