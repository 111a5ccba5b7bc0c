"""The joint part of a State: coordinates, link frames and the per-step work arrays."""

from __future__ import annotations

from dataclasses import dataclass

import warp as wp

from ..kernels.articulation import articulation_kernels
from .launch import eval_fk


@dataclass
class ArticulationWork:
    """Per-step intermediates of the articulation kernel, kept with each State so that a recorded
    rollout can be differentiated (W worlds, L links, D dofs)."""

    s: wp.array  # (W, D) motion subspace columns, world twists
    acc: wp.array  # (W, L) bias accelerations
    force: wp.array  # (W, L) bias forces, then subtree sums
    mass: wp.array  # (W, L) composite mass [kg]
    first_moment: wp.array  # (W, L) composite m*c [kg m]
    rot_inertia: wp.array  # (W, L) composite inertia about the origin [kg m^2]
    h: wp.array  # (W, D*D) mass matrix, lower triangle at the ancestor pairs (other entries unused)
    l: wp.array  # (W, D*D) sparse Cholesky factor L of H + diag = L^T L (same pattern as h; no gradient)
    rhs: wp.array  # (W, D) generalised force
    diag: wp.array  # (W, D) implicit diagonal terms
    y: wp.array  # (W, D) solution of L^T y = rhs
    qdd: wp.array  # (W, D) joint accelerations


def allocate_joint_state(art, model, state, requires_grad: bool, *, initialize: bool = True) -> None:
    """Give ``state`` the joint arrays of the articulations ``art`` (``joint_q`` (W, Q),
    ``joint_qd`` (W, D), ``link_q``, ``link_v`` (W, L), ``joint_work``); with ``initialize``, the
    initial conditions and forward kinematics, else allocated only (a step's output state)."""
    p, dev, W = model.precision, model.device, model.num_worlds
    alloc = wp.zeros if initialize else wp.empty

    def zeros(shape, dtype, grad=requires_grad):
        return alloc(shape, dtype=dtype, device=dev, requires_grad=grad)

    L, D = max(art.num_links, 1), max(art.num_dofs, 1)
    if initialize:
        state.joint_q = wp.array(art.initial_joint_q.astype(p.numpy), dtype=p.scalar, device=dev, requires_grad=requires_grad)
        state.joint_qd = wp.array(art.initial_joint_qd.astype(p.numpy), dtype=p.scalar, device=dev, requires_grad=requires_grad)
    else:
        state.joint_q = zeros(art.initial_joint_q.shape, p.scalar)
        state.joint_qd = zeros(art.initial_joint_qd.shape, p.scalar)
    vec6 = articulation_kernels(p.scalar).vec6
    state.link_q = zeros((W, L), p.transform)
    state.link_v = zeros((W, L), vec6)
    state.joint_work = ArticulationWork(
        s=zeros((W, D), vec6),
        acc=zeros((W, L), vec6),
        force=zeros((W, L), vec6),
        mass=zeros((W, L), p.scalar),
        first_moment=zeros((W, L), p.vec3),
        rot_inertia=zeros((W, L), p.mat33),
        h=zeros((W, D * D), p.scalar),
        l=zeros((W, D * D), p.scalar, grad=False),  # the solve's adjoint needs no gradient of L
        rhs=zeros((W, D), p.scalar),
        diag=zeros((W, D), p.scalar),
        y=zeros((W, D), p.scalar),
        qdd=zeros((W, D), p.scalar),
    )
    if initialize:
        eval_fk(model, state)
