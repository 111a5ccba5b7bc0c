"""The rigid-body step: contact forces, then semi-implicit (symplectic) Euler.

``step(model, state_in, state_out, control, dt)`` is the one signature every solver of the
package follows. It reads ``state_in`` and writes every array of ``state_out``, so a rollout that
steps into fresh State objects can be recorded on a ``wp.Tape`` and differentiated.
"""

from __future__ import annotations

import math

import numpy as np
import warp as wp

from .errors import (
    ParameterError,
    SimulationDivergedError,
    all_finite,
    check_timestep,
    checked_before,
    host_values,
    mark_checked,
    stable_timestep,
)
from .kernels.constants import NO_DIVERGENCE, CandidateKind, ContactMode, ShapeType
from .kernels.rigid import rigid_kernels
from .articulation import step_articulations
from .model import Control, Model, State
from .spatial import quat_to_matrix


def step(model: Model, state_in: State, state_out: State, control: Control | None, dt: float) -> None:
    """Advance every world by one step of ``dt`` seconds from ``state_in`` into ``state_out``.

    ``control`` may be None (no external forces). ``state_in`` and ``state_out`` must be
    different objects. ``state_out.step_index`` becomes ``state_in.step_index + 1``.

    The public entry point of the rigid step, with the checks of :func:`simulator.rollout`
    (the rollout engine calls the unchecked launches directly):

    * ``dt`` finite, > 0 and below the contact's stable bound (:func:`check_stable_timestep`,
      cached per model and dt: parameters written in place later are re-checked by the next
      rollout, or by ``model.validate()``);
    * the states and the control hold arrays of the model's shape, dtype and device
      (checked once per set of arrays), and ``state_in`` is finite when it starts a loop
      (``step_index == 0``: a state from ``model.state()`` or one you filled);
    * divergence: a non-finite ``state_out`` raises :class:`SimulationDivergedError` naming the
      step (``state_in.step_index``) and the world. On the CPU the output poses are read on the
      host every step (about 2% of a step); on a GPU a device flag is written every step and
      read every ``DIVERGENCE_READ_EVERY`` steps (the error still names the first bad step).
      Not checked while a graph is being captured.

    Raises:
        ParameterError: (a ``ValueError``) a bad ``dt``, state or control.
        SimulationDivergedError: the step produced a non-finite state.
    """
    capturing = model.device.is_capturing
    check_step(model, state_in, state_out, control, dt, finite=not capturing)
    launch_step(model, state_in, state_out, control, dt)
    if not capturing:
        _watch_divergence(model, state_in, state_out, dt)


DIVERGENCE_READ_EVERY = 16  # on a GPU, steps between two host reads of the divergence flag of simulator.step


def check_step(model: Model, state_in: State, state_out: State, control: Control | None, dt: float, *, finite: bool = True) -> None:
    """The checks of :func:`step` before it launches anything (see there); ``finite``: read a
    fresh input state (``step_index == 0``) on the host to check it is finite."""
    if state_in is state_out:
        raise ParameterError("state_in and state_out must be different States (in-place steps corrupt gradients), got the same State twice")
    checked_dt = model.__dict__.setdefault("_checked_dt", set())
    if dt not in checked_dt:
        check_stable_timestep(model, dt)
        checked_dt.add(dt)
    for name, state, level in (("state_in", state_in, 0), ("state_out", state_out, 1)):
        # the arrays a step touches first (comparing every array each step would cost ~2% more)
        parts = (state.body_q, state.body_v, state.body_w, state.joint_q, state.joint_work) if isinstance(state, State) else ()
        if not checked_before(state, model, parts, level, mark="_step_mark"):
            model.check_state(state, name, reads_only=level == 0)
            mark_checked(state, model, parts, level, mark="_step_mark")
    if control is not None:
        parts = (control.body_force, control.body_torque, control.joint_act) if isinstance(control, Control) else ()
        if not checked_before(control, model, parts, mark="_step_mark"):
            model.check_control(control)
            mark_checked(control, model, parts, mark="_step_mark")
    if finite and state_in.step_index == 0:
        model.check_state(state_in, "state_in", reads_only=True, finite=True)


def _watch_divergence(model: Model, state_in: State, state_out: State, dt: float, *, device_flag: bool | None = None) -> None:
    """Count the step on ``state_out`` and raise :class:`SimulationDivergedError` if it is
    non-finite (see :func:`step`). ``device_flag``: watch through the device flag read every
    ``DIVERGENCE_READ_EVERY`` steps (default: on a GPU) instead of the host view (on the CPU)."""
    step_index = state_in.step_index
    state_out.step_index = step_index + 1
    if not (model.device.is_cuda if device_flag is None else device_flag):
        # a view of the same memory (no copy), kept on the array: the poses follow from the new
        # velocities in the same step, so a non-finite velocity shows in them too
        poses = host_values(state_out.body_q)
        if all_finite(poses):
            return
        world = int(np.argwhere(~np.isfinite(poses))[0][0])
    else:
        watch = model.__dict__.get("_step_watch")
        if watch is None:
            from .solver import no_divergence

            watch = model.__dict__["_step_watch"] = [no_divergence(model.num_worlds, model.device), 0]
        record_divergence(model, state_out, step_index, watch[0], record_tape=False)  # not on the caller's tape
        watch[1] += 1
        if watch[1] % DIVERGENCE_READ_EVERY:
            return
        first_bad = watch[0].numpy().copy()  # (a view on the CPU, refilled below)
        bad = np.flatnonzero(first_bad != NO_DIVERGENCE)
        if bad.size == 0:
            return
        watch[0].fill_(NO_DIVERGENCE)
        world = int(bad[np.argmin(first_bad[bad])])
        step_index = int(first_bad[world])
    raise SimulationDivergedError(
        f"simulator.step: the state became non-finite at step {step_index} in world {world} (dt={dt}, within the contact's "
        f"stable bound); look for a tiny mass or inertia, a huge control force, or a parameter written after finalize "
        f"(model.validate() checks them)",
        step=step_index,
        world=world,
    )


def launch_step(model: Model, state_in: State, state_out: State, control: Control | None, dt: float) -> None:
    """The launches of one step, unchecked (what :class:`simulator.RigidSolver` calls in the
    engine's hot loop and captured graphs; :func:`step` checks its arguments first)."""
    kernels = rigid_kernels(model.precision.scalar)
    scalar, vec3 = model.precision.scalar, model.precision.vec3
    free_bodies = _free_bodies(model)

    state_out.body_contact_force.zero_()
    state_out.body_contact_torque.zero_()
    if model.candidate_count > 0:
        threads, per_thread = contact_thread_layout(model)
        wp.launch(
            kernels.contact_forces,
            dim=(model.num_worlds, threads),
            inputs=[
                model.shape_body,
                model.shape_type,
                model.shape_transform,
                model.shape_size,
                model.shape_stiffness,
                model.shape_damping,
                model.shape_friction,
                model.contact_softness,
                int(ContactMode[model.contact_mode.upper()]),
                scalar(model.friction_smoothing),
                model.candidate_source,
                model.candidate_target,
                model.candidate_kind,
                model.candidate_point,
                model.candidate_point2,
                model.candidate_radius,
                per_thread,
                state_in.body_q,
                state_in.body_v,
                state_in.body_w,
            ],
            outputs=[state_out.body_contact_force, state_out.body_contact_torque],
            device=model.device,
        )
    if control is None:
        control = _zero_control(model)
    if free_bodies.shape[0] > 0:
        wp.launch(
            kernels.integrate_bodies,
            dim=(model.num_worlds, free_bodies.shape[0]),
            inputs=[
                free_bodies,
                model.body_mass,
                model.body_inertia,
                vec3(*model.gravity),
                scalar(dt),
                state_in.body_q,
                state_in.body_v,
                state_in.body_w,
                state_out.body_contact_force,
                state_out.body_contact_torque,
                control.body_force,
                control.body_torque,
            ],
            outputs=[state_out.body_q, state_out.body_v, state_out.body_w],
            device=model.device,
        )
    if model.articulation is not None:  # joints: reduced coordinates (simulator.articulation)
        step_articulations(model, state_in, state_out, control, dt)


def contact_thread_layout(model: Model) -> tuple[int, int]:
    """``(threads per world, candidates per thread)`` of the contact kernel: every candidate of a
    world on one thread on the CPU (Warp runs a CPU kernel on one thread anyway, so the
    per-thread setup then runs once per world, not once per candidate), one candidate per thread
    on a GPU."""
    count = model.candidate_count
    if model.device.is_cpu:
        return min(count, 1), max(count, 1)
    return count, 1


def _free_bodies(model: Model) -> wp.array:
    """Indices of the bodies integrated in maximal coordinates (all bodies without a joint)."""
    if model.articulation is not None:
        return model.articulation.free_bodies
    cached = getattr(model, "_free_bodies_cache", None)
    if cached is None:
        cached = wp.array(np.arange(model.body_count, dtype=np.int32), dtype=wp.int32, device=model.device)
        model._free_bodies_cache = cached
    return cached


def _zero_control(model: Model) -> Control:
    cached = getattr(model, "_zero_control_cache", None)
    if cached is None:
        cached = model.control(requires_grad=False)
        model._zero_control_cache = cached
    return cached


def record_divergence(model: Model, state: State, step_index: int, first_bad_step: wp.array, *, step_base: wp.array | None = None,
                      record_tape: bool = True) -> None:
    """Lower ``first_bad_step[w]`` to the step index for every world ``w`` whose state is non-finite.

    The index is ``step_index``, plus ``step_base[0]`` when a (1,) int32 device counter is given
    (a captured graph replays the same launch with the counter advanced on the device).
    """
    kernels = rigid_kernels(model.precision.scalar)
    if step_base is None:
        step_base = _zero_counter(model)
    wp.launch(
        kernels.record_first_nonfinite,
        dim=(model.num_worlds, model.body_count),
        inputs=[state.body_q, state.body_v, state.body_w, step_base, int(step_index)],
        outputs=[first_bad_step],
        device=model.device,
        record_tape=record_tape,
    )


def _zero_counter(model: Model) -> wp.array:
    cached = getattr(model, "_zero_counter_cache", None)
    if cached is None:
        cached = wp.zeros(1, dtype=wp.int32, device=model.device)
        model._zero_counter_cache = cached
    return cached


def contact_time_scales(model: Model) -> dict[str, float]:
    """Stability limits [s] of the explicit contact law, per contact candidate pair and per body.

    Bodies and shapes without a contact candidate impose no limit at all; a scene without
    candidates gets infinite limits. For each candidate ``c`` between bodies ``a`` and ``b`` (a
    static shape counts as infinitely heavy) the pair's inverse effective mass is
    ``1/m_c = w_a + w_b``, with ``w`` the inverse effective mass of the body's contact point along
    the worst normal direction n (:func:`candidate_inverse_masses`): as a free body,
    ``1/m + max_n (r x n)^T I^-1 (r x n)`` over the points the contact can lie on (the source's
    candidate point or segment ends, the target's centre, segment ends or box corners: ``r x n``
    does not depend on the contact's offset along n, and the form is convex, so corners give the
    worst case); for an articulated link also the bound through its joints' armature
    (:class:`_JointChains`) and, on slide joints only, the exact one with the armature
    (:func:`_sliding_inverse_masses`); the smallest of these. Then per body ``b`` and world, over
    its candidates that can touch at once (per pair of shapes: 1 sphere, 4 corners of a box, every
    candidate of a capsule or mesh):

    * ``S_b = sum_c ke_c / m_c`` and ``D_b = sum_c kd_c / m_c`` (ke, kd, mu: the pair's means);
    * ``stiffness``: ``2 / sqrt(S_b)`` (``2*sqrt(m/ke)`` for one contact);
    * ``damping``: ``2 / D_b`` (``2*m/kd`` for one contact);
    * ``spring-damper``: ``4 / (D_b + sqrt(D_b^2 + 4 S_b))``, the limit of semi-implicit Euler on a
      damped spring (``S h^2 + 2 D h < 4``), shorter than each of the two above;
    * ``friction``: ``2*v_smooth/(mu_c*g)`` for the largest friction of a pair with a normal force
      (the regularised friction under a body's own resting load: its slope ``mu*m*g/v_smooth``
      acts as a damper on the sliding body; the mass cancels);
    * ``impact friction`` (with a declared ``ContactSettings.impact_speed`` v > 0): the smallest over
      the candidates of ``v_smooth * m_eff / (mu_c * F)``, the substep below which one explicit
      friction step cannot reverse the slip of the contact point under the impact load
      ``F = v*(kd + sqrt(ke*m_red)) + m_red*g`` (the pair's spring-damper hit at speed v plus the
      weight; ``m_red`` the reduced mass of the pair's bodies), with
      ``1/m_eff = sum over the pair's bodies of 1/m + r^2/I`` (r the largest distance of the
      candidate from the body's centre of mass, I the mean principal moment: a typical direction
      of push). Longer substeps make the friction chatter.

    Why the per-body sums are safe: the highest contact frequency of the free bodies,
    ``lambda_max(M^-1 K)`` with ``K = sum_c ke_c J_c^T J_c``, is at most
    ``max_b sum_{c at b} ke_c (w_a + w_b)`` (``(x - y)^2 <= (1 + t) x^2 + (1 + 1/t) y^2`` with
    ``t = w_b / w_a`` splits each pair onto its two bodies, then the trace bound per body), and
    likewise for the damping. Articulated links: the joints restrict the motion to a subspace and
    armature and the implicit joint springs, dampers and limits only add inertia, so the
    articulated system's contact frequencies are at most those of its free links (the Rayleigh
    quotient's maximum over a subspace); the joint bounds hold in every configuration. The joints'
    own springs and limits are integrated implicitly (:mod:`simulator.articulation`) and need no
    bound. The bound is conservative: the trace counts every mode of a body at its worst, and the
    link bounds ignore the inertia of the rest of a robot (the ant scene settles without energy
    gain at 3.7 ms, 3.4x its bound of 1.09 ms).

    The limits are the smallest over worlds, bodies and candidates; they are kept per parameter
    values (``model.parameter_snapshot()``), so a parameter written after finalize is seen.
    """
    if model.candidate_count == 0:
        return dict(_NO_CONTACT_LIMITS)
    key = (model.parameter_snapshot(), model.friction_smoothing, model.contact_impact_speed, tuple(model.gravity))
    kept = model.__dict__.get("_time_scales")
    if kept is not None and kept[0] == key:
        return dict(kept[1])
    scales = _contact_time_scales(model)
    model.__dict__["_time_scales"] = (key, scales)
    return dict(scales)


_NO_CONTACT_LIMITS = dict.fromkeys(("stiffness", "damping", "spring-damper", "friction", "impact friction"), math.inf)


def _shape_extent(kind: int, size: np.ndarray) -> float:
    """Largest distance [m] of a shape's surface from its frame origin (0 for planes and meshes,
    which are never the moving target of a candidate)."""
    if kind == ShapeType.SPHERE:
        return float(size[0])
    if kind == ShapeType.BOX:
        return float(np.linalg.norm(size))
    if kind == ShapeType.CAPSULE:
        return float(size[0] + size[1])
    return 0.0


def _point_inverse_masses(points: np.ndarray, inverse_inertia: np.ndarray) -> np.ndarray:
    """``(W, C)``: the worst rotational part ``max_n (p x n)^T I^-1 (p x n)`` [1/kg] over the unit
    directions n, ``|p|^2 lambda_max(P I^-1 P)`` with P the projection off p, for points ``p``
    ``(C, 3)`` in their bodies' COM frames and those bodies' inverse inertias ``(W, C, 3, 3)``."""
    length2 = np.sum(points * points, axis=-1)
    unit = points / np.sqrt(np.maximum(length2, 1e-300))[:, None]
    projection = np.eye(3) - unit[:, :, None] * unit[:, None, :]
    return np.linalg.eigvalsh(projection @ inverse_inertia @ projection)[..., -1] * length2


def _target_core_points(model: Model) -> list[np.ndarray]:
    """Points ``(C, 3)`` in each candidate's target body frame whose convex hull, grown along the
    contact normal, holds the target's contact point: a sphere's centre, a capsule's segment
    ends, a box's corners (the same point repeated where a shape has fewer)."""
    target = model.candidate_target.numpy()
    transforms, sizes = model.shape_transform.numpy().astype(np.float64), model.shape_size.numpy().astype(np.float64)
    kinds = model.shape_type.numpy()
    local = np.zeros((8, len(target), 3))
    for c, t in enumerate(target):
        kind, size = int(kinds[t]), sizes[t]
        if kind == ShapeType.CAPSULE:
            corners = np.array([[0.0, 0.0, -size[1]], [0.0, 0.0, size[1]]])
        elif kind == ShapeType.BOX:
            corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * size
        else:  # a sphere (planes are static; meshes are never targets)
            corners = np.zeros((1, 3))
        rotation = quat_to_matrix(transforms[t, 3:])
        local[:, c] = transforms[t, :3] + corners[np.arange(8) % len(corners)] @ rotation.T
    return list(local)


def candidate_inverse_masses(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """``(w_source, w_target)``, each ``(W, C)``: the inverse effective mass [1/kg] of each
    candidate's contact point on its source and its target body along the worst normal direction
    (0 for a static shape; see :func:`contact_time_scales`)."""
    W = model.num_worlds
    shape_body = model.shape_body.numpy()
    source, target = model.candidate_source.numpy(), model.candidate_target.numpy()
    mass = model.body_mass.numpy().astype(np.float64).reshape(W, -1)
    inverse_inertia = np.linalg.inv(model.body_inertia.numpy().astype(np.float64).reshape(W, -1, 3, 3))
    sliding = _sliding_inverse_masses(model)  # (W, B): the bound of a link on slide joints only, else inf
    kinds = model.candidate_kind.numpy()
    # the contact point's arm is a point of the set up to a multiple of the normal n, so r x n = p x n;
    # the quadratic form is convex in p, so its worst case over a segment or a box is at a corner
    points = model.candidate_point.numpy().astype(np.float64)
    source_points = [points, np.where((kinds == CandidateKind.SEGMENT)[:, None], model.candidate_point2.numpy(), points)]
    joints = _JointChains(model) if model.articulation is not None else None
    result = []
    for bodies, body_points in ((shape_body[source], source_points), (shape_body[target], _target_core_points(model))):
        bound = np.zeros((W, len(bodies)))
        moving = np.flatnonzero(bodies >= 0)  # a static side stays 0
        if moving.size:
            index = bodies[moving]
            sets = [p[moving] for k, p in enumerate(body_points) if k == 0 or not np.array_equal(p[moving], body_points[k - 1][moving])]
            turn = np.max([_point_inverse_masses(p, inverse_inertia[:, index]) for p in sets], axis=0)
            bound[:, moving] = np.minimum(1.0 / mass[:, index] + turn, sliding[:, index])
            if joints is not None:
                for c in moving:
                    bound[:, c] = np.minimum(bound[:, c], joints.inverse_mass(int(bodies[c]), [p[c] for p in body_points]))
        result.append(bound)
    return result[0], result[1]


class _JointChains:
    """A bound on an articulated link's point inverse mass through its joints' armature.

    For a point c of link L on a hinge (axis a through o) or slide with armature A > 0, the
    point's speed along a normal n is a part moved by the joint plus a part moved by the parent
    rigidly; the kinetic energy is at least the armature's ``A qd^2 / 2`` plus the parent side's
    (everything else dropped), so the inverse masses add like compliances in series:
    ``w_L(c) <= |a x (c - o)|^2 / A (1/A on a slide) + w_parent(c)``, 0 for the world, and
    ``w <= 1/m + |c - com|^2 / I_min`` for any link as a free body. Distances from the parent's
    centre of mass and joint follow from the triangle inequality through o, so the bound holds in
    every configuration. Massless internal links (a body with several joints) have no free-body
    term. (A hinge's ``(a x (c - o)) . n`` does not depend on the contact's radius along n.)"""

    def __init__(self, model: Model):
        from .kernels.constants import JointType

        art, W = model.articulation, model.num_worlds
        self.parent, self.kind = art.link_parent.numpy(), art.link_type.numpy()
        self.link_body, self.dof = art.link_body.numpy(), art.link_qd_start.numpy()
        child, parent_xform = art.link_child_xform.numpy().astype(np.float64), art.link_parent_xform.numpy().astype(np.float64)
        self.origin = child[:, :3]  # the joint in the link's COM frame
        self.axis = np.array([quat_to_matrix(child[l, 3:]) @ a for l, a in enumerate(art.link_axis.numpy().astype(np.float64))])
        self.origin_in_parent = parent_xform[:, :3]
        self.armature = model.joint_armature.numpy().astype(np.float64).reshape(W, -1)
        self.mass = model.body_mass.numpy().astype(np.float64).reshape(W, -1)
        self.moment = np.linalg.eigvalsh(model.body_inertia.numpy().astype(np.float64).reshape(W, -1, 3, 3))[..., 0]
        self.link_of = {int(b): l for l, b in enumerate(self.link_body) if b >= 0}
        self.hinge, self.slide, self.fixed = int(JointType.REVOLUTE), int(JointType.PRISMATIC), int(JointType.FIXED)
        self.W = W

    def inverse_mass(self, body: int, points: list[np.ndarray]) -> np.ndarray:
        """``(W,)``: the bound at the worst of ``points`` (in the body's COM frame); inf for a free body."""
        link = self.link_of.get(body)
        if link is None:
            return np.full(self.W, np.inf)
        arms = np.array(points) - self.origin[link]
        to_joint = float(np.max(np.linalg.norm(arms, axis=-1)))
        axis = self.axis[link]
        lever = float(np.sqrt(np.max(np.sum(arms * arms, axis=-1) - (arms @ axis) ** 2)))
        return self._through_joint(link, to_joint, lever)

    def _through_joint(self, link: int, to_joint: float, lever: float) -> np.ndarray:
        """The series bound through ``link``'s own joint for a point at most ``to_joint`` from it
        and ``lever`` from its axis."""
        kind = int(self.kind[link])
        if kind in (self.hinge, self.slide):
            armature = self.armature[:, self.dof[link]]
            own = np.where(armature > 0.0, (lever * lever if kind == self.hinge else 1.0) / np.maximum(armature, 1e-300), np.inf)
        elif kind == self.fixed:
            own = np.zeros(self.W)
        else:
            return np.full(self.W, np.inf)
        parent = int(self.parent[link])
        return own + (np.zeros(self.W) if parent < 0 else self._at(parent, self.origin_in_parent[link], to_joint))

    def _at(self, link: int, joint_point: np.ndarray, reach: float) -> np.ndarray:
        """``(W,)``: the bound for a point of ``link`` within ``reach`` of ``joint_point`` (in the link's frame)."""
        to_joint = float(np.linalg.norm(joint_point - self.origin[link])) + reach
        bound = self._through_joint(link, to_joint, to_joint)
        body = int(self.link_body[link])
        if body >= 0:
            to_com = float(np.linalg.norm(joint_point)) + reach
            bound = np.minimum(bound, 1.0 / self.mass[:, body] + to_com * to_com / self.moment[:, body])
        return bound


def _sliding_inverse_masses(model: Model) -> np.ndarray:
    """``(W, B)``: for a link joined to the world through slide (prismatic) and fixed joints only,
    the largest inverse effective mass [1/kg] of any of its points, ``lambda_max(J (m J^T J + A)^-1 J^T)``
    with ``J`` the (3, k) world axes of the chain's slide dofs (constant: nothing above the link
    rotates), ``m`` the link's mass and ``A`` the dofs' armature (the kinetic energy of the link
    alone plus the armature's, a lower bound of the chain's, so the bound is safe); 0 for a link
    that cannot move, inf for every other body (a free body, or a link below a hinge, ball or
    free joint)."""
    W, B = model.num_worlds, model.body_count
    result = np.full((W, B), np.inf)
    art = model.articulation
    if art is None:
        return result
    from .kernels.constants import JointType

    link_body, parent, kind = art.link_body.numpy(), art.link_parent.numpy(), art.link_type.numpy()
    axis, parent_xform = art.link_axis.numpy().astype(np.float64), art.link_parent_xform.numpy().astype(np.float64)
    child_xform = art.link_child_xform.numpy().astype(np.float64)
    dof_start = art.link_qd_start.numpy()
    armature = model.joint_armature.numpy().astype(np.float64).reshape(W, -1)
    mass = model.body_mass.numpy().astype(np.float64).reshape(W, -1)
    rotation = {}  # link -> its COM frame's (constant) rotation in the world, for links on slides only

    def frame(link):
        """The link's world rotation if the chain above it holds only slide and fixed joints, else None."""
        if link < 0:
            return np.eye(3)
        if link not in rotation:
            above = frame(int(parent[link]))
            ok = above is not None and int(kind[link]) in (JointType.PRISMATIC, JointType.FIXED)
            rotation[link] = (above @ quat_to_matrix(parent_xform[link, 3:]) @ quat_to_matrix(child_xform[link, 3:]).T) if ok else None
        return rotation[link]

    for link in range(art.num_links):
        body = int(link_body[link])
        if body < 0 or frame(link) is None:
            continue
        axes, dofs, chain = [], [], link
        while chain >= 0:
            if int(kind[chain]) == JointType.PRISMATIC:
                above = frame(int(parent[chain]))
                axes.append(above @ quat_to_matrix(parent_xform[chain, 3:]) @ axis[chain])
                dofs.append(int(dof_start[chain]))
            chain = int(parent[chain])
        if not axes:
            result[:, body] = 0.0  # welded to the world
            continue
        J = np.array(axes).T  # (3, k)
        for w in range(W):
            inverse = np.linalg.pinv(mass[w, body] * (J.T @ J) + np.diag(armature[w, dofs]))
            result[w, body] = float(np.linalg.eigvalsh(J @ inverse @ J.T)[-1])
    return result


# at most this many candidates of one (source, target) shape pair touch at once, by source kind (a box
# touches with a face: 4 of its 8 corners); capsules (2-3 candidates) and meshes count all of theirs
_SIMULTANEOUS = {int(ShapeType.SPHERE): 1, int(ShapeType.BOX): 4}


def _simultaneous(model: Model, inverse_pair: np.ndarray) -> np.ndarray:
    """``(W, C)`` bool: the candidates counted as touching at once, per (source, target) shape pair
    the ``_SIMULTANEOUS`` ones of the lightest effective mass (all for capsules and meshes)."""
    counted = np.ones(inverse_pair.shape, dtype=bool)
    source, target = model.candidate_source.numpy(), model.candidate_target.numpy()
    kinds = model.shape_type.numpy()
    groups: dict[tuple[int, int], list[int]] = {}
    for c, pair in enumerate(zip(source.tolist(), target.tolist())):
        groups.setdefault(pair, []).append(c)
    for (s, _), members in groups.items():
        cap = _SIMULTANEOUS.get(int(kinds[s]), len(members))
        if len(members) > cap:
            members = np.array(members)
            order = np.argsort(-inverse_pair[:, members], axis=1)  # (W, n): the lightest effective mass first
            counted[np.arange(inverse_pair.shape[0])[:, None], members[order[:, cap:]]] = False
    return counted


def _contact_time_scales(model: Model) -> dict[str, float]:
    W, B = model.num_worlds, model.body_count
    shape_body = model.shape_body.numpy()
    source, target = model.candidate_source.numpy(), model.candidate_target.numpy()
    body_s, body_t = shape_body[source], shape_body[target]

    def pair_mean(array):  # (W, C): the kernel's mean of the pair's two shapes
        values = array.numpy().astype(np.float64).reshape(W, -1)
        return 0.5 * (values[:, source] + values[:, target])

    ke, kd, mu = pair_mean(model.shape_stiffness), pair_mean(model.shape_damping), pair_mean(model.shape_friction)
    w_source, w_target = candidate_inverse_masses(model)
    inverse_pair = (w_source + w_target) * _simultaneous(model, w_source + w_target)  # 1/m_c, (W, C)
    # per body: the sums over its candidates (a static side adds nothing)
    stiffness, damping = np.zeros((W, B + 1)), np.zeros((W, B + 1))
    for bodies in (body_s, body_t):
        column = np.where(bodies >= 0, bodies, B)  # static shapes land in the dropped column B
        for total, k in ((stiffness, ke), (damping, kd)):
            np.add.at(total, (slice(None), column), k * inverse_pair)
    stiffness, damping = stiffness[:, :B], damping[:, :B]
    with np.errstate(divide="ignore"):
        limits = {
            "stiffness": float(np.min(2.0 / np.sqrt(stiffness))),
            "damping": float(np.min(2.0 / damping)),
            "spring-damper": float(np.min(4.0 / (damping + np.sqrt(damping * damping + 4.0 * stiffness)))),
        }
    gravity = float(np.linalg.norm(model.gravity))
    loaded = (ke > 0.0) | (kd > 0.0)  # a pair with no normal force has no friction either
    friction = float(np.max(np.where(loaded, mu, 0.0)))
    limits["friction"] = 2.0 * model.friction_smoothing / (friction * gravity) if friction * gravity > 0 else math.inf
    limits["impact friction"] = _impact_friction_limit(model, gravity, ke, kd, mu)
    return limits


def _impact_friction_limit(model: Model, gravity: float, ke: np.ndarray, kd: np.ndarray, mu: np.ndarray) -> float:
    """The ``impact friction`` limit of :func:`contact_time_scales` [s] (infinite without an impact
    speed); ``ke``, ``kd``, ``mu``: ``(W, C)`` the pairs' means."""
    speed = float(model.contact_impact_speed)
    if speed <= 0.0:
        return math.inf
    W = model.num_worlds
    shape_body, shape_kind = model.shape_body.numpy(), model.shape_type.numpy()
    transforms, sizes = model.shape_transform.numpy().astype(np.float64), model.shape_size.numpy().astype(np.float64)
    mass = model.body_mass.numpy().astype(np.float64).reshape(W, -1)
    moment = np.trace(model.body_inertia.numpy().astype(np.float64).reshape(W, -1, 3, 3), axis1=-2, axis2=-1) / 3.0
    points, points2 = model.candidate_point.numpy().astype(np.float64), model.candidate_point2.numpy().astype(np.float64)
    radii, kinds = model.candidate_radius.numpy().astype(np.float64), model.candidate_kind.numpy()
    source, target = model.candidate_source.numpy(), model.candidate_target.numpy()
    # distance of the contact from each body's centre of mass (candidate points are in the source
    # body's frame; a target's contact lies within its shape's extent of the shape's origin)
    arm_source = np.linalg.norm(points, axis=-1)
    arm_source = np.where(kinds == CandidateKind.SEGMENT, np.maximum(arm_source, np.linalg.norm(points2, axis=-1)), arm_source) + radii
    arm_target = np.array([np.linalg.norm(transforms[t, :3]) + _shape_extent(int(shape_kind[t]), sizes[t]) for t in target])
    inverse_mass, inverse_effective = np.zeros(ke.shape), np.zeros(ke.shape)
    for bodies, arm in ((shape_body[source], arm_source), (shape_body[target], arm_target)):
        index = np.maximum(bodies, 0)
        moving = bodies >= 0
        inverse_mass += np.where(moving, 1.0 / mass[:, index], 0.0)
        inverse_effective += np.where(moving, 1.0 / mass[:, index] + arm * arm / moment[:, index], 0.0)
    reduced = 1.0 / inverse_mass
    load = speed * (kd + np.sqrt(ke * reduced)) + reduced * gravity
    with np.errstate(divide="ignore"):
        limit = model.friction_smoothing / (inverse_effective * mu * load)
    return float(np.min(limit))


def stable_substeps(model: Model, dt: float) -> int:
    """The fewest substeps that split ``dt`` [s] into substeps below every limit of
    :func:`contact_time_scales` (1 for a model without contact candidates)."""
    dt = check_timestep(dt)
    limit = min(contact_time_scales(model).values(), default=math.inf)
    if not math.isfinite(limit):
        return 1
    substeps = max(1, math.ceil(dt / limit))
    return substeps + 1 if dt / substeps >= limit else substeps


def check_stable_timestep(model: Model, dt: float, substeps: int = 1) -> float:
    """Validate ``dt`` and ``substeps`` and refuse substeps too long for the contact stiffness.

    Returns the substep length [s]. Raises ``ParameterError`` naming dt, the limit and a fix.
    """
    dt = check_timestep(dt, substeps)
    h = dt / substeps
    limits = contact_time_scales(model)
    for name, limit in limits.items():
        if h >= limit:
            raise ParameterError(
                f"dt={dt!r} with substeps={substeps} gives a substep of {h:.3g} s, too large for the contact "
                f"{name} (explicit limit {limit:.3g} s); use substeps >= {math.ceil(1.25 * dt / limit)}, a smaller dt"
                + (", or a larger ContactSettings.friction_smoothing" if "friction" in name else "")
                + " (see simulator.contact for choosing ke, kd, v_smooth and dt)"
            )
    return h
