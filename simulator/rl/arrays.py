"""The few array operations the task definitions use, for numpy arrays and torch tensors alike, so
that observation, reward and termination are written once and serve both the environments (numpy)
and backpropagation through torch (:meth:`simulator.rl.EpisodeObjective.sweep_rows`)."""

from __future__ import annotations

import numpy as np


class _Numpy:
    cos, sin, exp, abs, square, isfinite, tanh = np.cos, np.sin, np.exp, np.abs, np.square, np.isfinite, np.tanh  # ufuncs
    where, einsum = staticmethod(np.where), staticmethod(np.einsum)

    @staticmethod
    def concatenate(arrays, axis):
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def stack(arrays, axis):
        return np.stack(arrays, axis=axis)

    @staticmethod
    def sum(x, axis):
        return np.sum(x, axis=axis)

    @staticmethod
    def mean(x, axis):
        return np.mean(x, axis=axis)

    @staticmethod
    def all(x, axis):
        return np.all(x, axis=axis)

    @staticmethod
    def clip(x, low, high):
        return np.clip(x, low, high)

    @staticmethod
    def constant(value, like):
        return np.asarray(value)


class _Torch:
    def __init__(self):
        import torch

        self.torch = torch
        self.cos, self.sin, self.exp, self.abs, self.square = torch.cos, torch.sin, torch.exp, torch.abs, torch.square
        self.isfinite, self.where, self.tanh, self.einsum = torch.isfinite, torch.where, torch.tanh, torch.einsum

    def concatenate(self, arrays, axis):
        return self.torch.cat(list(arrays), dim=axis)

    def stack(self, arrays, axis):
        return self.torch.stack(list(arrays), dim=axis)

    def sum(self, x, axis):
        return x.sum(dim=axis)

    def mean(self, x, axis):
        return x.mean(dim=axis)

    def all(self, x, axis):
        return x.all(dim=axis)

    def constant(self, value, like):
        return self.torch.as_tensor(value, dtype=like.dtype, device=like.device)

    def clip(self, x, low, high):
        if isinstance(low, np.ndarray):
            low, high = (self.torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (low, high))
        return self.torch.clamp(x, low, high)


NUMPY = _Numpy()
_TORCH: list = []


def namespace(x):
    """The operations for ``x``: numpy's, or torch's for a torch tensor."""
    if type(x).__module__.split(".")[0] == "torch":
        if not _TORCH:
            _TORCH.append(_Torch())
        return _TORCH[0]
    return NUMPY
