"""States and controls moved between this simulator and MuJoCo, for models read by ``load_mjcf``.

The two describe a model's configuration differently:

=========  ==================================================  ==================================
joint      here (``State.joint_q`` / ``joint_qd``)              MuJoCo (``qpos`` / ``qvel``)
=========  ==================================================  ==================================
free       centre of mass [m], quaternion (x, y, z, w);         body origin [m], quaternion
           COM velocity [m/s] and angular velocity [rad/s],     (w, x, y, z); origin velocity
           both in world axes                                   [m/s] in world axes, angular
                                                                velocity [rad/s] in body axes
ball       quaternion (x, y, z, w); angular velocity in the     quaternion (w, x, y, z); angular
           parent's joint frame                                 velocity in the child's frame
hinge,     angle [rad] or displacement [m] and its rate; the    the same numbers
slide      body has its MJCF pose at q = ref in both
=========  ==================================================  ==================================

and orders them differently: ``joint_q`` by body depth (every body of depth 1, then depth 2, ...),
``qpos`` depth first in file order. Body ``b`` here is MuJoCo's body ``b + 1`` (MuJoCo's body 0
is the world); the joints are matched through :class:`MuJoCoIndex`, which ``load_mjcf`` leaves on
the builder (``builder.mujoco_index``) and ``finalize`` on the model (``model.mujoco_index``).

Actuators: column ``k`` of ``Control.joint_act`` is MuJoCo's ``ctrl[actuator_order(model)[k]]``.
The columns follow the file's order, but an actuator the loader drops (a tendon, site or
unsupported actuator, with a warning) has a ``ctrl`` index and no column, so every later column is
shifted against ``ctrl``: :func:`ctrl_to_joint_act` and :func:`joint_act_to_ctrl` do the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, describe

# coordinates and dofs of MuJoCo's joint kinds (as named by model.articulation.joint_kinds)
_MUJOCO_SIZES = {"free": (7, 6), "ball": (4, 3), "revolute": (1, 1), "prismatic": (1, 1)}


@dataclass(frozen=True)
class MuJoCoIndex:
    """Where MuJoCo keeps the joints and actuators that ``load_mjcf`` read (J MuJoCo joints).

    Attributes:
        joints: (J,) the joint index here (``model.articulation.joint_names``) of each MuJoCo
            joint, in MuJoCo's joint order (MuJoCo's joint ``i`` is ``joints[i]`` here).
        bodies: (J,) the body each joint moves (MuJoCo's body ``bodies[i] + 1``).
        qpos_adr, dof_adr: (J,) MuJoCo's ``jnt_qposadr`` and ``jnt_dofadr``.
        nq, nv: sizes of MuJoCo's ``qpos`` and ``qvel``.
        actuator_ctrl: (A,) MuJoCo's ``ctrl`` index of each column of ``joint_act``.
        nu: size of MuJoCo's ``ctrl`` (actuators dropped here included).
    """

    joints: tuple[int, ...]
    bodies: tuple[int, ...]
    qpos_adr: tuple[int, ...]
    dof_adr: tuple[int, ...]
    nq: int
    nv: int
    actuator_ctrl: tuple[int, ...]
    nu: int

    @classmethod
    def from_joints(cls, joints, kinds, bodies, actuator_ctrl, nu) -> MuJoCoIndex:
        """The index of MuJoCo joints given in MuJoCo's order, with their kinds (``"free"``,
        ``"ball"``, ``"revolute"``, ``"prismatic"``) and bodies."""
        sizes = np.array([_MUJOCO_SIZES[k] for k in kinds], dtype=np.int64).reshape(-1, 2)
        starts = np.concatenate([np.zeros((1, 2), np.int64), np.cumsum(sizes, axis=0)])
        return cls(
            joints=tuple(int(j) for j in joints),
            bodies=tuple(int(b) for b in bodies),
            qpos_adr=tuple(int(a) for a in starts[:-1, 0]),
            dof_adr=tuple(int(a) for a in starts[:-1, 1]),
            nq=int(starts[-1, 0]),
            nv=int(starts[-1, 1]),
            actuator_ctrl=tuple(int(c) for c in actuator_ctrl),
            nu=int(nu),
        )


# ---------------------------------------------------------------------------- helpers
def _index(model) -> MuJoCoIndex:
    index = getattr(model, "mujoco_index", None)
    if index is None:
        raise ParameterError(
            "model must come from load_mjcf(...).finalize() to be converted to or from MuJoCo, got one without a mujoco_index "
            "(built by hand, or from a file with a free joint below another body, which MuJoCo rejects)"
        )
    art = model.articulation
    if art is None or any(j >= len(art.joint_kinds) for j in index.joints):
        raise ParameterError("model's joints do not match its mujoco_index (was the builder changed after load_mjcf?)")
    for j, body in zip(index.joints, index.bodies):
        if art.joint_kinds[j] not in _MUJOCO_SIZES:
            raise ParameterError(f"joint {art.joint_names[j]!r} is {art.joint_kinds[j]!r} here, which MuJoCo has no joint for")
    return index


def _worlds(model, world) -> list[int] | int:
    if world is None:
        return list(range(model.num_worlds))
    if not isinstance(world, (int, np.integer)) or not 0 <= world < model.num_worlds:
        raise ParameterError(f"world must be an index in [0, {model.num_worlds}) or None, got {world!r}")
    return int(world)


def _rotations(q) -> np.ndarray:
    """(..., 3, 3) rotation matrices of (..., 4) unit quaternions (x, y, z, w)."""
    x, y, z, w = np.moveaxis(np.asarray(q, float), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _unit(name, q) -> np.ndarray:
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise ParameterError(f"{name} must be a non-zero quaternion, got {np.asarray(q).tolist()!r}")
    return q / norm


def _mv(r, v):
    return np.einsum("...ij,...j->...i", r, v)


def _mtv(r, v):
    return np.einsum("...ji,...j->...i", r, v)


def _checked(name, values, size, worlds) -> np.ndarray:
    """``values`` as a float64 (W', size) array: one row (size,) for every world in ``worlds``,
    or one row per world of the model (W, size) when ``worlds`` is all of them."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be an array of numbers, got {describe(values)}") from None
    rows = len(worlds) if isinstance(worlds, list) else 1
    if array.shape == (size,):
        array = np.broadcast_to(array, (rows, size))
    elif not (isinstance(worlds, list) and array.shape == (rows, size)):
        shapes = f"({size},)" + (f" or ({rows}, {size})" if isinstance(worlds, list) else "")
        raise ParameterError(f"{name} must have shape {shapes} for this model, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{name} must be finite, got {array.tolist()!r}")
    return array


# ---------------------------------------------------------------------------- states
def _cross(xp, a, b):
    """Row-wise cross products of (W, 3) arrays or tensors."""
    return xp.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2], a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], 1)


def _rotate(xp, quat, v, *, inverse=False):
    """``R v`` (or ``R^T v``) for (W, 4) unit quaternions (x, y, z, w) and (W, 3) vectors:
    ``v + 2 w (u x v) + 2 u x (u x v)`` with ``u`` the vector part (negated for the inverse)."""
    u, w = (-quat[:, :3] if inverse else quat[:, :3]), quat[:, 3:4]
    t = 2.0 * _cross(xp, u, v)
    return v + w * t + _cross(xp, u, t)


def mujoco_coordinates(model, joint_q, joint_qd):
    """MuJoCo's ``(qpos, qvel)`` ``(W, nq)``, ``(W, nv)`` of joint coordinates ``(W, Q)``,
    ``(W, D)`` given as numpy arrays or torch tensors (then differentiable), without checks: the
    conversion :func:`to_mujoco_state` runs on a state's arrays (quaternions normalised)."""
    from .rl.arrays import namespace

    xp = namespace(joint_q)
    index = _index(model)
    art = model.articulation
    qpos, qvel = [], []
    for j, body in zip(index.joints, index.bodies):
        kind, qs, ds = art.joint_kinds[j], int(art.joint_q_start[j]), int(art.joint_qd_start[j])
        if kind in ("revolute", "prismatic"):
            qpos.append(joint_q[:, qs : qs + 1])
            qvel.append(joint_qd[:, ds : ds + 1])
            continue
        offset = 3 if kind == "free" else 0
        quat = joint_q[:, qs + offset : qs + offset + 4]
        quat = quat / xp.sum(quat**2, 1)[:, None] ** 0.5
        omega = joint_qd[:, ds + offset : ds + offset + 3]
        if kind == "free":
            com = _rotate(xp, quat, xp.constant(np.broadcast_to(model.body_com[body], (quat.shape[0], 3)).copy(), quat))  # origin -> COM
            qpos.append(joint_q[:, qs : qs + 3] - com)
            qvel.append(joint_qd[:, ds : ds + 3] - _cross(xp, omega, com))
        qpos.append(xp.concatenate([quat[:, 3:4], quat[:, :3]], 1))
        qvel.append(_rotate(xp, quat, omega, inverse=True))  # parent (world) axes -> child axes
    return xp.concatenate(qpos, 1), xp.concatenate(qvel, 1)


def to_mujoco_state(model, state, world: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """MuJoCo's ``(qpos, qvel)`` of one world of ``state`` (float64; (nq,) and (nv,)), or of every
    world with ``world=None`` ((W, nq) and (W, nv)).

    ``model`` must come from ``load_mjcf(path).finalize(...)``: then ``data.qpos[:] = qpos``,
    ``data.qvel[:] = qvel`` in ``mujoco.MjData(mujoco.MjModel.from_xml_path(path))`` is the same
    configuration and motion (see the module docstring for the conventions)."""
    index = _index(model)
    worlds = _worlds(model, world)
    art = model.articulation
    rows = worlds if isinstance(worlds, list) else [worlds]
    joint_q = np.asarray(state.joint_q.numpy(), np.float64)[rows]
    joint_qd = np.asarray(state.joint_qd.numpy(), np.float64)[rows]
    for j in index.joints:
        if art.joint_kinds[j] in ("free", "ball"):
            start = int(art.joint_q_start[j]) + (3 if art.joint_kinds[j] == "free" else 0)
            _unit(f"the quaternion of joint {art.joint_names[j]!r}", joint_q[:, start : start + 4])
    qpos, qvel = mujoco_coordinates(model, joint_q, joint_qd)
    return (qpos, qvel) if isinstance(worlds, list) else (qpos[0], qvel[0])


def from_mujoco_state(model, qpos, qvel, state=None, *, world: int | None = None):
    """Set MuJoCo's ``qpos`` (nq,) and ``qvel`` (nv,) into ``state`` (a new ``model.state()``
    when None) for one world, or for every world with ``world=None`` (the default; then (W, nq)
    and (W, nv) give each world its own), run forward kinematics (``body_q``, ``body_v``,
    ``body_w``) and return the state.

    Quaternions are normalised (MuJoCo normalises them too); joints that MuJoCo does not have
    keep their coordinates. Raises ParameterError for a model not read by ``load_mjcf``, wrong
    shapes, non-finite values or a zero quaternion."""
    from .articulation import eval_fk

    index = _index(model)
    worlds = _worlds(model, world)
    qpos = _checked("qpos", qpos, index.nq, worlds)
    qvel = _checked("qvel", qvel, index.nv, worlds)
    art = model.articulation
    if state is None:
        state = model.state()
    elif getattr(state, "joint_q", None) is None or state.joint_q.shape != (model.num_worlds, art.num_coords):
        shape = (model.num_worlds, art.num_coords)
        raise ParameterError(f"state must be a State of this model (joint_q of shape {shape}), got {describe(state)}")
    joint_q = np.asarray(state.joint_q.numpy(), np.float64)
    joint_qd = np.asarray(state.joint_qd.numpy(), np.float64)
    rows = worlds if isinstance(worlds, list) else [worlds]
    q, qd = joint_q[rows], joint_qd[rows]
    for j, body, qa, da in zip(index.joints, index.bodies, index.qpos_adr, index.dof_adr):
        kind, qs, ds = art.joint_kinds[j], int(art.joint_q_start[j]), int(art.joint_qd_start[j])
        if kind in ("revolute", "prismatic"):
            q[:, qs] = qpos[:, qa]
            qd[:, ds] = qvel[:, da]
            continue
        offset = 3 if kind == "free" else 0
        wxyz = _unit(f"qpos[{qa + offset}:{qa + offset + 4}] (joint {art.joint_names[j]!r})", qpos[:, qa + offset : qa + offset + 4])
        quat = np.concatenate([wxyz[:, 1:], wxyz[:, :1]], axis=1)
        rot = _rotations(quat)
        q[:, qs + offset : qs + offset + 4] = quat
        omega = _mv(rot, qvel[:, da + offset : da + offset + 3])  # child axes -> parent (world) axes
        qd[:, ds + offset : ds + offset + 3] = omega
        if kind == "free":
            com = _mv(rot, model.body_com[body])
            q[:, qs : qs + 3] = qpos[:, qa : qa + 3] + com
            qd[:, ds : ds + 3] = qvel[:, da : da + 3] + np.cross(omega, com)
    joint_q[rows], joint_qd[rows] = q, qd
    state.joint_q.assign(joint_q.astype(model.precision.numpy))
    state.joint_qd.assign(joint_qd.astype(model.precision.numpy))
    eval_fk(model, state)
    return state


# ---------------------------------------------------------------------------- actuators
def actuator_order(model) -> np.ndarray:
    """(A,) int: MuJoCo's ``ctrl`` index of each column of ``Control.joint_act``."""
    return np.array(_index(model).actuator_ctrl, dtype=np.int64)


def ctrl_to_joint_act(model, ctrl) -> np.ndarray:
    """MuJoCo controls (..., nu) as ``joint_act`` columns (..., A) (float64); the controls of
    actuators dropped by the loader are left out."""
    index = _index(model)
    ctrl = np.asarray(ctrl, dtype=np.float64)
    if ctrl.ndim < 1 or ctrl.shape[-1] != index.nu:
        raise ParameterError(f"ctrl must have MuJoCo's {index.nu} actuators in its last axis, got shape {ctrl.shape}")
    return ctrl[..., list(index.actuator_ctrl)]


def joint_act_to_ctrl(model, joint_act) -> np.ndarray:
    """``joint_act`` columns (..., A) as MuJoCo controls (..., nu) (float64); the actuators the
    loader dropped get 0."""
    index = _index(model)
    joint_act = np.asarray(joint_act, dtype=np.float64)
    count = len(index.actuator_ctrl)
    if joint_act.ndim < 1 or joint_act.shape[-1] != count:
        raise ParameterError(f"joint_act must have the model's {count} actuators in its last axis, got shape {joint_act.shape}")
    ctrl = np.zeros(joint_act.shape[:-1] + (index.nu,))
    ctrl[..., list(index.actuator_ctrl)] = joint_act
    return ctrl
