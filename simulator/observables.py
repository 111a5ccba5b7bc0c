"""Host-side observables of rigid-body states (numpy, float64; for analysis and tests)."""

from __future__ import annotations

import numpy as np

from .model import Model, State
from .spatial import quat_to_matrix


def momentum(model: Model, state: State) -> np.ndarray:
    """Total linear momentum [kg m/s] of each world, ``(W, 3)``."""
    m = model.body_mass.numpy().astype(np.float64)
    return np.einsum("wb,wbi->wi", m, state.body_v.numpy().astype(np.float64))


def angular_momentum(model: Model, state: State) -> np.ndarray:
    """Total angular momentum [kg m^2/s] about the world origin of each world, ``(W, 3)``."""
    m = model.body_mass.numpy().astype(np.float64)
    q = state.body_q.numpy().astype(np.float64)
    v = state.body_v.numpy().astype(np.float64)
    w = state.body_w.numpy().astype(np.float64)
    inertia = model.body_inertia.numpy().astype(np.float64)
    total = np.zeros((model.num_worlds, 3))
    for i in range(model.num_worlds):
        for b in range(model.body_count):
            r = quat_to_matrix(q[i, b, 3:])
            spin = r @ inertia[i, b] @ r.T @ w[i, b]
            total[i] += np.cross(q[i, b, :3], m[i, b] * v[i, b]) + spin
    return total


def mechanical_energy(model: Model, state: State) -> np.ndarray:
    """Kinetic plus gravitational potential energy [J] of each world, ``(W,)`` (contact springs
    excluded: evaluate it when nothing touches to compare energies across a rollout)."""
    m = model.body_mass.numpy().astype(np.float64)
    q = state.body_q.numpy().astype(np.float64)
    v = state.body_v.numpy().astype(np.float64)
    w = state.body_w.numpy().astype(np.float64)
    inertia = model.body_inertia.numpy().astype(np.float64)
    g = np.asarray(model.gravity, dtype=np.float64)
    energy = 0.5 * np.einsum("wb,wbi,wbi->w", m, v, v) - np.einsum("wb,wbi,i->w", m, q[..., :3], g)
    for i in range(model.num_worlds):
        for b in range(model.body_count):
            r = quat_to_matrix(q[i, b, 3:])
            energy[i] += 0.5 * w[i, b] @ (r @ inertia[i, b] @ r.T) @ w[i, b]
    return energy
