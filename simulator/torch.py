"""PyTorch bridge (needs the ``torch`` extra): simulator gradients inside ordinary torch training.

* :func:`objective_loss` -- the loss of a rollout objective as a differentiable function of a
  torch parameter tensor; its backward uses the estimator you name (``"analytic"``, ``"es"``,
  ``"hybrid"``, ...), so a training loop switches estimator with one argument.
* :func:`step` -- one rigid-body step as a differentiable torch op (zero-copy with
  ``wp.from_torch``/``wp.to_torch``, Warp's adjoint in the backward), so a closed-loop
  ``torch.nn.Module`` policy can act inside a rollout and be trained by ``loss.backward()``.

Both are reentrant: each call owns its tape and buffers, several rollouts can share one graph,
and ``backward(retain_graph=True)`` twice gives the same gradient twice (never doubled).
"""

from __future__ import annotations

import numpy as np
import torch
import warp as wp

from . import rigid
from .gradients import grad as estimate_gradient
from .model import Control, Model, State

# -------------------------------------------------------------------------------- objective loss


class _ObjectiveLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, objective, estimator, seed, options):
        result = estimate_gradient(objective, theta.detach().cpu().numpy().astype(np.float64),
                                   estimator=estimator, seed=seed, **options)
        ctx.save_for_backward(torch.as_tensor(result.gradient, dtype=theta.dtype, device=theta.device))
        ctx.diagnostics = result.diagnostics
        return torch.as_tensor(result.value, dtype=theta.dtype, device=theta.device)

    @staticmethod
    def backward(ctx, grad_output):
        (gradient,) = ctx.saved_tensors
        return grad_output * gradient, None, None, None, None


def objective_loss(objective, theta: torch.Tensor, *, estimator: str = "analytic", seed: int = 0, **options) -> torch.Tensor:
    """Loss of ``objective`` at ``theta`` (a ``(P,)`` tensor) whose gradient comes from ``estimator``.

    The forward pass runs the estimator (which evaluates the loss and its gradient together); the
    backward pass scales that gradient by the incoming gradient. ``options`` go to the estimator
    (``sigma``, ``population``, ``window``, ``checkpoint_every``, ...).
    """
    if not isinstance(theta, torch.Tensor) or theta.dim() != 1:
        raise ValueError(f"theta must be a 1-D torch tensor, got {type(theta).__name__} with shape {getattr(theta, 'shape', None)}")
    return _ObjectiveLoss.apply(theta, objective, estimator, int(seed), options)


# -------------------------------------------------------------------------------- per-step op

_STATE_FIELDS = ("body_q", "body_v", "body_w")
_CONTROL_FIELDS = ("body_force", "body_torque")


def _torch_dtype(model: Model):
    return torch.float64 if model.precision.name == "float64" else torch.float32


def _as_warp(tensor: torch.Tensor, dtype, *, requires_grad: bool) -> wp.array:
    return wp.from_torch(tensor.contiguous(), dtype=dtype, requires_grad=requires_grad)


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, model, dt, body_q, body_v, body_w, body_force, body_torque):
        p = model.precision
        types = {"body_q": p.transform, "body_v": p.vec3, "body_w": p.vec3, "body_force": p.vec3, "body_torque": p.vec3}
        tensors = dict(zip(_STATE_FIELDS + _CONTROL_FIELDS, (body_q, body_v, body_w, body_force, body_torque)))
        arrays = {name: _as_warp(t.detach(), types[name], requires_grad=True) for name, t in tensors.items()}
        state_in = State(body_contact_force=None, body_contact_torque=None, **{n: arrays[n] for n in _STATE_FIELDS})
        control = Control(**{n: arrays[n] for n in _CONTROL_FIELDS})
        state_out = model.state(requires_grad=True)
        tape = wp.Tape()
        with tape:
            rigid.step(model, state_in, state_out, control, dt)
        ctx.tape, ctx.arrays, ctx.state_out = tape, arrays, state_out
        # zero-copy: the outputs share memory with Warp arrays that only this op's tape references
        return tuple(wp.to_torch(getattr(state_out, n)) for n in _STATE_FIELDS)

    @staticmethod
    def backward(ctx, grad_q, grad_v, grad_w):
        tape, arrays, state_out = ctx.tape, ctx.arrays, ctx.state_out
        tape.zero()  # a second backward (retain_graph=True) must not accumulate onto the first
        seeds = {}
        for name, g in zip(_STATE_FIELDS, (grad_q, grad_v, grad_w)):
            out = getattr(state_out, name)
            seed = torch.zeros_like(wp.to_torch(out)) if g is None else g
            seeds[out] = _as_warp(seed.detach(), out.dtype, requires_grad=False)
        tape.backward(grads=seeds)
        grads = tuple(wp.to_torch(arrays[n].grad).clone() for n in _STATE_FIELDS + _CONTROL_FIELDS)
        return (None, None) + grads


def step(model: Model, state: dict[str, torch.Tensor], control: dict[str, torch.Tensor] | None = None, *, dt: float) -> dict[str, torch.Tensor]:
    """One rigid-body step as a differentiable torch op.

    Args:
        model: a finalized model (its device and precision decide the tensors').
        state: ``{"body_q": (W, B, 7), "body_v": (W, B, 3), "body_w": (W, B, 3)}`` tensors
            (see :class:`simulator.State` for units).
        control: optional ``{"body_force": (W, B, 3), "body_torque": (W, B, 3)}`` [N], [N m].
        dt: step length [s].

    Returns:
        The next state as a dict of new tensors. Gradients flow to the state and control tensors.
    """
    rigid.check_stable_timestep(model, dt)
    dtype = _torch_dtype(model)
    device = wp.device_to_torch(model.device)
    shape = (model.num_worlds, model.body_count)
    expected = {"body_q": shape + (7,), "body_v": shape + (3,), "body_w": shape + (3,), "body_force": shape + (3,), "body_torque": shape + (3,)}
    control = dict(control or {})
    inputs = []
    for name in _STATE_FIELDS + _CONTROL_FIELDS:
        tensor = state.get(name) if name in _STATE_FIELDS else control.get(name)
        if tensor is None:
            if name in _STATE_FIELDS:
                raise ValueError(f"state is missing {name!r}")
            tensor = torch.zeros(expected[name], dtype=dtype, device=device)
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {expected[name]}, got {tuple(tensor.shape)}")
        if tensor.dtype != dtype:
            raise ValueError(f"{name} must be {dtype} to match the model's precision, got {tensor.dtype}")
        inputs.append(tensor.to(device))
    q, v, w = _Step.apply(model, float(dt), *inputs)
    return {"body_q": q, "body_v": v, "body_w": w}


def state_tensors(state: State) -> dict[str, torch.Tensor]:
    """Torch copies of a State's pose and velocity arrays, as :func:`step` takes them."""
    return {name: wp.to_torch(getattr(state, name)).clone() for name in _STATE_FIELDS}
