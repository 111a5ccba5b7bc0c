"""Running observation normalisation: a reusable piece for every trainer and environment."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError, check_integer


class RunningNormalizer:
    """Running mean and variance of vectors (Chan et al.'s parallel update of Welford's
    algorithm), and ``normalize(x) = clip((x - mean) / sqrt(var + epsilon), -clip, clip)``.

    Args:
        size: the vector length.
        clip: the bound of a normalised value (None: no clipping).
        epsilon: added to the variance [units^2] (keeps constant entries finite).

    ``update(batch)`` takes ``(N, size)`` or ``(size,)`` numpy arrays or torch tensors;
    ``normalize`` returns the type it was given (a torch tensor stays on its device).
    ``state_dict()`` / ``load_state_dict()`` save and restore it (plain numpy arrays, so
    ``torch.save`` and ``numpy.savez`` both take them).
    """

    def __init__(self, size: int, *, clip: float | None = 10.0, epsilon: float = 1e-8):
        self.size = check_integer("size", size, minimum=1)
        if clip is not None and not clip > 0:
            raise ParameterError(f"clip must be > 0 or None, got {clip!r}")
        self.clip, self.epsilon = clip, float(epsilon)
        self.mean = np.zeros(self.size)
        self.var = np.ones(self.size)
        self.count = 0.0

    def _rows(self, batch) -> np.ndarray:
        values = batch.detach().cpu().numpy() if hasattr(batch, "detach") else np.asarray(batch)
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.size) if values.size % self.size == 0 else None
        if values is None:
            raise ParameterError(f"batch must have {self.size} values per row, got shape {np.shape(batch)}")
        return values

    def update(self, batch) -> None:
        """Add the rows of ``batch`` to the statistics (non-finite rows are refused)."""
        rows = self._rows(batch)
        if not np.all(np.isfinite(rows)):
            raise ParameterError("batch must be finite, got a non-finite observation")
        n = rows.shape[0]
        if n == 0:
            return
        mean, var = rows.mean(axis=0), rows.var(axis=0)
        total = self.count + n
        delta = mean - self.mean
        m2 = self.var * self.count + var * n + np.square(delta) * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x):
        """``x`` normalised with the current statistics (same type and shape as ``x``)."""
        if hasattr(x, "detach"):
            import torch

            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
            std = torch.as_tensor(np.sqrt(self.var + self.epsilon), dtype=x.dtype, device=x.device)
            y = (x - mean) / std
            return y if self.clip is None else torch.clamp(y, -self.clip, self.clip)
        x = np.asarray(x)
        y = (x - self.mean) / np.sqrt(self.var + self.epsilon)
        y = y if self.clip is None else np.clip(y, -self.clip, self.clip)
        return y.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else y

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array(self.count)}

    def load_state_dict(self, state: dict) -> None:
        mean, var = np.asarray(state["mean"], np.float64), np.asarray(state["var"], np.float64)
        if mean.shape != (self.size,) or var.shape != (self.size,):
            raise ParameterError(f"state must hold mean and var of shape ({self.size},), got {mean.shape} and {var.shape}")
        self.mean, self.var, self.count = mean.copy(), var.copy(), float(state["count"])
