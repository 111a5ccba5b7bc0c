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
    """Stability limits [s] of the explicit contact law, for the lightest body and the stiffest,
    most damped, most frictional shape in any world: ``2*sqrt(m/ke)`` (stiffness), ``2*m/kd``
    (damping) and ``2*v_smooth/(mu*g)`` (regularised friction under a resting load: its slope
    mu*m*g/v_smooth acts as a damper on the sliding mode). Infinite if the scene has no contacts.

    With a declared impact speed (``ContactSettings.impact_speed`` v > 0) also ``impact friction``:
    the smallest over the contact candidates of ``v_smooth * m_eff / (mu * F)``, the substep below
    which one explicit friction step cannot reverse the slip of the contact point under the impact
    load ``F = v*(kd + sqrt(ke*m_red)) + m_red*g`` (the peak force of the contact's spring-damper
    hit at speed v, plus the weight; m_red is the pair's reduced mass). ``m_eff`` is the contact
    point's effective mass, ``1/m_eff = sum over the pair's bodies of 1/m + r^2/I`` with r the
    largest distance of the candidate from the body's centre of mass and I the body's mean
    principal moment of inertia (a typical direction of push). Longer substeps make the friction
    chatter: the tangential velocity flips sign every substep while the contact is loaded.
    """
    if model.candidate_count == 0:
        return {"stiffness": math.inf, "damping": math.inf, "friction": math.inf, "impact friction": math.inf}
    # kept per parameter values (the impact limit loops over the candidates in Python)
    key = (model.parameter_snapshot(), model.friction_smoothing, model.contact_impact_speed, tuple(model.gravity))
    kept = model.__dict__.get("_time_scales")
    if kept is not None and kept[0] == key:
        return dict(kept[1])
    scales = _contact_time_scales(model)
    model.__dict__["_time_scales"] = (key, scales)
    return dict(scales)


def _contact_time_scales(model: Model) -> dict[str, float]:
    mass = float(np.min(model.body_mass.numpy()))
    stiffness = float(np.max(model.shape_stiffness.numpy()))
    damping = float(np.max(model.shape_damping.numpy()))
    friction = float(np.max(model.shape_friction.numpy()))
    gravity = float(np.linalg.norm(model.gravity))
    return {
        "stiffness": stable_timestep(mass, stiffness),
        "damping": 2.0 * mass / damping if damping > 0 else math.inf,
        "friction": 2.0 * model.friction_smoothing / (friction * gravity) if friction * gravity > 0 else math.inf,
        "impact friction": _impact_friction_limit(model, gravity),
    }


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


def _impact_friction_limit(model: Model, gravity: float) -> float:
    """The ``impact friction`` limit of :func:`contact_time_scales` [s] (infinite without an impact speed)."""
    speed = float(model.contact_impact_speed)
    if speed <= 0.0:
        return math.inf
    shape_body = model.shape_body.numpy()
    shape_kind = model.shape_type.numpy()
    transforms = model.shape_transform.numpy().astype(np.float64)
    sizes = model.shape_size.numpy().astype(np.float64)
    mass = np.min(model.body_mass.numpy(), axis=0).astype(np.float64)  # (B,): the lightest over worlds
    moment = np.min(np.trace(model.body_inertia.numpy(), axis1=-2, axis2=-1), axis=0).astype(np.float64) / 3.0
    ke, kd, mu = (np.max(a.numpy(), axis=0).astype(np.float64) for a in (model.shape_stiffness, model.shape_damping, model.shape_friction))
    points, points2 = model.candidate_point.numpy(), model.candidate_point2.numpy()
    radii, kinds = model.candidate_radius.numpy(), model.candidate_kind.numpy()
    limit = math.inf
    for c, (source, target) in enumerate(zip(model.candidate_source.numpy(), model.candidate_target.numpy())):
        pair_mu = 0.5 * (mu[source] + mu[target])
        if pair_mu <= 0.0:
            continue
        # distance of the contact from each body's centre of mass (shape frames are body frames)
        local = [points[c]] + ([points2[c]] if kinds[c] == CandidateKind.SEGMENT else [])
        arm_source = max(np.linalg.norm(transforms[source, :3] + quat_to_matrix(transforms[source, 3:]) @ p) for p in local) + radii[c]
        arm_target = np.linalg.norm(transforms[target, :3]) + _shape_extent(int(shape_kind[target]), sizes[target])
        inverse_mass, inverse_effective = 0.0, 0.0
        for body, arm in ((shape_body[source], arm_source), (shape_body[target], arm_target)):
            if body >= 0:
                inverse_mass += 1.0 / mass[body]
                inverse_effective += 1.0 / mass[body] + arm * arm / moment[body]
        reduced = 1.0 / inverse_mass
        load = speed * (0.5 * (kd[source] + kd[target]) + math.sqrt(0.5 * (ke[source] + ke[target]) * reduced)) + reduced * gravity
        limit = min(limit, model.friction_smoothing / (inverse_effective * pair_mu * load))
    return limit


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
