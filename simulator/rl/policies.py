"""Policies on observations, evaluated for every world at once (numpy arrays, or torch tensors for
backpropagation), with their own parameter row per world (an ES population is one batched call).

A policy has ``num_parameters``, ``initial_parameters(seed)``, ``act(theta_rows, observations)``
(``(W, P)`` and ``(W, O)`` -> actions ``(W, A)`` inside the action bounds) and ``config()`` (a
JSON-able dict that :func:`make_policy` rebuilds it from, kept in saved policies).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError, check_integer
from .arrays import namespace


def _scale(low: np.ndarray, high: np.ndarray):
    """Centre and half-width of the action box (bounds beyond 1e6 count as +-1: an unbounded actuator)."""
    low = np.where(np.abs(low) > 1e6, -1.0, low)
    high = np.where(np.abs(high) > 1e6, 1.0, high)
    return 0.5 * (high + low), 0.5 * (high - low)


class LinearPolicy:
    """``a = clip(M x, low, high)``, M ``(A, O)`` (row-major in theta; ``P = A * O``), as in ARS
    (Mania et al. 2018): no bias, zero initial weights, on normalised observations."""

    kind = "linear"

    def __init__(self, observation_size: int, action_size: int, action_low, action_high):
        self.observation_size = check_integer("observation_size", observation_size, minimum=1)
        self.action_size = check_integer("action_size", action_size, minimum=1)
        self.low, self.high = np.asarray(action_low, np.float64), np.asarray(action_high, np.float64)
        self.num_parameters = self.action_size * self.observation_size

    def initial_parameters(self, seed: int = 0) -> np.ndarray:
        return np.zeros(self.num_parameters)

    def act(self, theta_rows: np.ndarray, observations: np.ndarray) -> np.ndarray:
        xp = namespace(theta_rows)
        weights = theta_rows.reshape(-1, self.action_size, self.observation_size)
        return xp.clip(xp.einsum("wao,wo->wa", weights, observations), self.low, self.high)

    def config(self) -> dict:
        return {"kind": self.kind}


class MLPPolicy:
    """A tanh MLP: ``hidden`` tanh layers, a tanh output mapped onto the action box
    (``a = centre + half_width * tanh(.)``). Parameters: per layer ``W (n_out, n_in)`` then
    ``b (n_out,)``; Glorot-scaled initial weights, zero biases, the last layer scaled by 0.1 (small
    initial actions)."""

    kind = "mlp"

    def __init__(self, observation_size: int, action_size: int, action_low, action_high, hidden=(64, 64)):
        sizes = [check_integer("observation_size", observation_size, minimum=1), *[check_integer("hidden", h, minimum=1) for h in hidden],
                 check_integer("action_size", action_size, minimum=1)]
        self.sizes, self.hidden = sizes, tuple(int(h) for h in hidden)
        self.observation_size, self.action_size = sizes[0], sizes[-1]
        self.centre, self.half_width = _scale(np.asarray(action_low, np.float64), np.asarray(action_high, np.float64))
        self.offsets = np.cumsum([0] + [n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:])])
        self.num_parameters = int(self.offsets[-1])

    def initial_parameters(self, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        theta = np.zeros(self.num_parameters)
        layers = list(zip(self.sizes[:-1], self.sizes[1:]))
        for k, ((n_in, n_out), start) in enumerate(zip(layers, self.offsets[:-1])):
            scale = np.sqrt(2.0 / (n_in + n_out)) * (0.1 if k == len(layers) - 1 else 1.0)
            theta[start : start + n_out * n_in] = (rng.standard_normal((n_out, n_in)) * scale).reshape(-1)
        return theta

    def act(self, theta_rows: np.ndarray, observations: np.ndarray) -> np.ndarray:
        xp = namespace(theta_rows)
        x = observations
        for (n_in, n_out), start in zip(zip(self.sizes[:-1], self.sizes[1:]), self.offsets[:-1]):
            weights = theta_rows[:, start : start + n_out * n_in].reshape(-1, n_out, n_in)
            bias = theta_rows[:, start + n_out * n_in : start + n_out * (n_in + 1)]
            x = xp.tanh(xp.einsum("woi,wi->wo", weights, x) + bias)
        return x * xp.constant(self.half_width, x) + xp.constant(self.centre, x)

    def config(self) -> dict:
        return {"kind": self.kind, "hidden": list(self.hidden)}


POLICIES = ("linear", "mlp")


def make_policy(config: str | dict, observation_size: int, action_size: int, action_low, action_high):
    """A policy from its kind (``"linear"``, ``"mlp"``) or its :meth:`config` dict."""
    if isinstance(config, str):
        config = {"kind": config}
    kind = config.get("kind")
    if kind == "linear":
        return LinearPolicy(observation_size, action_size, action_low, action_high)
    if kind == "mlp":
        return MLPPolicy(observation_size, action_size, action_low, action_high, hidden=config.get("hidden", (64, 64)))
    raise ParameterError(f"policy must be one of {POLICIES} (or a policy object), got {kind!r}")
