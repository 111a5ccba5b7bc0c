"""PyTorch bridge (needs the ``torch`` extra): simulator gradients inside ordinary torch training.

* :func:`objective_loss` -- the loss of a rollout objective as a differentiable function of a
  torch parameter tensor; its backward uses the estimator you name (``"analytic"``, ``"es"``,
  ``"hybrid"``, ...), so a training loop switches estimator with one argument.
* :func:`step` (free rigid bodies) and :func:`joint_step` (robots) -- one step as a
  differentiable torch op (zero-copy with ``wp.from_torch``/``wp.to_torch``, Warp's adjoint in
  the backward), so a closed-loop ``torch.nn.Module`` policy can act inside a rollout and be
  trained by ``loss.backward()``.
* :func:`joint_rollout` -- a whole batched robot rollout from torch tensors (initial joint
  state, per-step actions) to torch tensors, with ``estimator="analytic"`` or ``"es"`` for
  its backward.
* :class:`TorchPolicy` -- the same policy as a controller of a rollout objective, each world
  with its own parameters, for ES: ``objective_loss(..., estimator="es")``.
* :func:`terms_loss` -- a task's loss terms (:mod:`simulator.losses`) of a state given as torch
  tensors, so a rollout written in torch scores itself with the very terms the objectives use.

Both are reentrant: each call owns its tape and buffers, several rollouts can share one graph,
and ``backward(retain_graph=True)`` twice gives the same gradient twice (never doubled).
"""

from __future__ import annotations

import numpy as np
import torch
import warp as wp

from . import rigid
from .engine import Engine
from .errors import ParameterError
from .articulation import eval_fk
from .gradients import grad as estimate_gradient
from .losses import LossContext, add_terms
from .model import Control, Model, State
from .solver import RigidSolver

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
        raise ParameterError(f"theta must be a 1-D torch tensor, got {type(theta).__name__} with shape {getattr(theta, 'shape', None)}")
    check_tensor("theta", theta)  # floating point: the loss and gradient come back in theta's dtype
    return _ObjectiveLoss.apply(theta, objective, estimator, int(seed), options)


# -------------------------------------------------------------------------------- per-step op

_STATE_FIELDS = ("body_q", "body_v", "body_w")
_CONTROL_FIELDS = ("body_force", "body_torque")


def _torch_dtype(model: Model):
    return torch.float64 if model.precision.name == "float64" else torch.float32


def check_tensor(name: str, tensor, *, shape: tuple | None = None, dtype=None, finite: bool = False) -> torch.Tensor:
    """The one check of every tensor that crosses into Warp: a ``torch.Tensor`` of ``shape`` and
    ``dtype`` (the model's precision; any floating type when None), finite with ``finite``.
    Raises ``ParameterError`` naming the argument, instead of a Warp-level error downstream."""
    if not isinstance(tensor, torch.Tensor):
        raise ParameterError(f"{name} must be a torch tensor, got {type(tensor).__name__}")
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise ParameterError(f"{name} must have shape {tuple(shape)}, got {tuple(tensor.shape)}")
    if dtype is None and not tensor.dtype.is_floating_point:
        raise ParameterError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if dtype is not None and tensor.dtype != dtype:
        raise ParameterError(f"{name} must be {dtype} to match the model's precision, got {tensor.dtype}")
    if finite and not bool(torch.isfinite(tensor.detach()).all()):
        index = [int(i) for i in torch.nonzero(~torch.isfinite(tensor.detach()))[0]]
        raise ParameterError(f"{name} must be finite, got {tensor.detach()[tuple(index)].item()!r} at index {index}")
    return tensor


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
                raise ParameterError(f"state must have a {name!r} entry, got entries {sorted(state)}")
            tensor = torch.zeros(expected[name], dtype=dtype, device=device)
        inputs.append(check_tensor(name, tensor, shape=expected[name], dtype=dtype, finite=True).to(device))
    q, v, w = _Step.apply(model, float(dt), *inputs)
    return {"body_q": q, "body_v": v, "body_w": w}


class _JointStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, model, dt, substeps, joint_q, joint_qd, joint_act):
        scalar = model.precision.scalar
        inputs = {name: _as_warp(t.detach(), scalar, requires_grad=True)
                  for name, t in (("joint_q", joint_q), ("joint_qd", joint_qd), ("joint_act", joint_act))}
        state = model.state(requires_grad=True)
        control = model.control(requires_grad=True)
        tape = wp.Tape()
        with tape:
            wp.copy(state.joint_q, inputs["joint_q"])
            wp.copy(state.joint_qd, inputs["joint_qd"])
            wp.copy(control.joint_act, inputs["joint_act"])
            eval_fk(model, state)  # poses and link frames from the joint coordinates
            state = Engine(RigidSolver(model)).rollout(state, control, num_steps=1, dt=dt, substeps=substeps, requires_grad=True).final
        ctx.tape, ctx.inputs, ctx.state_out = tape, inputs, state
        return tuple(wp.to_torch(getattr(state, n)) for n in _JOINT_OUTPUTS)

    @staticmethod
    def backward(ctx, *grads):
        tape, state_out = ctx.tape, ctx.state_out
        tape.zero()  # a second backward (retain_graph=True) must not accumulate onto the first
        seeds = {}
        for name, g in zip(_JOINT_OUTPUTS, grads):
            out = getattr(state_out, name)
            seed = torch.zeros_like(wp.to_torch(out)) if g is None else g
            seeds[out] = _as_warp(seed.detach(), out.dtype, requires_grad=False)
        tape.backward(grads=seeds)
        result = tuple(wp.to_torch(ctx.inputs[n].grad).clone() for n in ("joint_q", "joint_qd", "joint_act"))
        return (None, None, None) + result


_JOINT_OUTPUTS = ("joint_q", "joint_qd", "body_q", "body_v", "body_w")


def joint_step(model: Model, joint_q: torch.Tensor, joint_qd: torch.Tensor, joint_act: torch.Tensor | None = None, *,
               dt: float, substeps: int = 1) -> dict[str, torch.Tensor]:
    """One control step of an articulated model (a robot) as a differentiable torch op.

    Args:
        joint_q: ``(W, nq)`` joint coordinates; joint_qd: ``(W, nqd)`` joint velocities.
        joint_act: ``(W, A)`` actuator controls (clipped to each actuator's range), or None.
        dt: control step [s], split into ``substeps`` physics substeps with the action held.

    Returns ``{"joint_q", "joint_qd", "body_q", "body_v", "body_w"}`` tensors after the step.
    Gradients flow to ``joint_q``, ``joint_qd`` and ``joint_act`` through Warp's adjoint, so a
    closed-loop ``torch.nn.Module`` policy can be trained by ``loss.backward()``.
    """
    if model.articulation is None:
        raise ParameterError("model must have joints for joint_step, got one without an articulation; use step() for free rigid bodies")
    rigid.check_stable_timestep(model, dt, substeps)
    dtype, device = _torch_dtype(model), wp.device_to_torch(model.device)
    probe_state, probe_control = model.state(requires_grad=False), model.control(requires_grad=False)
    if joint_act is None:
        joint_act = torch.zeros(tuple(probe_control.joint_act.shape), dtype=dtype, device=device)
    for name, tensor, array in (("joint_q", joint_q, probe_state.joint_q), ("joint_qd", joint_qd, probe_state.joint_qd),
                                ("joint_act", joint_act, probe_control.joint_act)):
        check_tensor(name, tensor, shape=array.shape, dtype=dtype, finite=True)
    outputs = _JointStep.apply(model, float(dt), int(substeps), joint_q.to(device), joint_qd.to(device), joint_act.to(device))
    return dict(zip(_JOINT_OUTPUTS, outputs))


class _JointRollout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, joint_q, joint_qd, actions):
        worlds = joint_q.shape[0]
        ctx.spec, ctx.worlds = spec, worlds
        ctx.inputs_torch = (joint_q.detach(), joint_qd.detach(), actions.detach())
        if spec.estimator == "analytic":
            model = spec.model(worlds)
            scalar = model.precision.scalar
            inputs = {n: _as_warp(t.detach(), scalar, requires_grad=True)
                      for n, t in (("joint_q", joint_q), ("joint_qd", joint_qd), ("actions", actions))}
            tape = wp.Tape()
            with tape:
                final, controls = spec.simulate(model, inputs["joint_q"], inputs["joint_qd"], inputs["actions"], record=True)
            ctx.tape, ctx.inputs, ctx.final, ctx.controls = tape, inputs, final, controls
            return wp.to_torch(final.joint_q), wp.to_torch(final.joint_qd)
        inputs = (_as_warp(t.detach(), spec.scalar, requires_grad=False) for t in (joint_q, joint_qd, actions))
        final, _ = spec.simulate(spec.model(worlds), *inputs, record=False)
        return wp.to_torch(final.joint_q).clone(), wp.to_torch(final.joint_qd).clone()

    @staticmethod
    def backward(ctx, grad_q, grad_qd):
        spec = ctx.spec
        grad_q = torch.zeros_like(ctx.inputs_torch[0]) if grad_q is None else grad_q
        grad_qd = torch.zeros_like(ctx.inputs_torch[1]) if grad_qd is None else grad_qd
        if spec.estimator == "analytic":
            ctx.tape.zero()  # a second backward (retain_graph=True) must not accumulate onto the first
            ctx.tape.backward(grads={ctx.final.joint_q: _as_warp(grad_q.detach(), spec.scalar, requires_grad=False),
                                     ctx.final.joint_qd: _as_warp(grad_qd.detach(), spec.scalar, requires_grad=False)})
            return (None,) + tuple(wp.to_torch(ctx.inputs[n].grad).clone() for n in ("joint_q", "joint_qd", "actions"))
        return (None,) + spec.es_gradient(ctx.inputs_torch, grad_q, grad_qd)


class _RolloutSpec:
    def __init__(self, scene, num_steps, dt, substeps, estimator, sigma, population, seed):
        self.scene, self.num_steps, self.dt, self.substeps = scene, num_steps, dt, substeps
        self.estimator, self.sigma, self.population, self.seed = estimator, sigma, population, seed
        self._models, self._engines = {}, {}
        self.scalar = self.model(1).precision.scalar

    def model(self, worlds: int) -> Model:
        if worlds not in self._models:
            built = self.scene(worlds)
            self._models[worlds] = built if isinstance(built, Model) else built.model
        return self._models[worlds]

    def simulate(self, model, joint_q, joint_qd, actions, *, record: bool):
        """Final state after ``num_steps`` control steps from the given joint state and actions."""
        state = model.state(requires_grad=record)
        wp.copy(state.joint_q, joint_q)
        wp.copy(state.joint_qd, joint_qd)
        eval_fk(model, state)
        controls = model.control_sequence(self.num_steps, requires_grad=record)
        wp.copy(controls.joint_act, actions)
        final = self.engine(model).rollout(state, controls, num_steps=self.num_steps, dt=self.dt, substeps=self.substeps,
                                           record=record, requires_grad=record).final
        return final, controls  # the recorded steps read views of the controls until the backward pass

    def engine(self, model) -> Engine:
        if model.num_worlds not in self._engines:
            self._engines[model.num_worlds] = Engine(RigidSolver(model))
        return self._engines[model.num_worlds]

    def es_gradient(self, inputs, grad_q, grad_qd):
        """Antithetic ES estimate of d<g, output>/d input per world (each world its own problem)."""
        joint_q, joint_qd, actions = inputs
        worlds, pairs = joint_q.shape[0], self.population // 2
        flat = torch.cat([joint_q, joint_qd, actions.permute(1, 0, 2).reshape(worlds, -1)], dim=1)  # (W, D)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        eps = torch.randn((pairs, worlds, flat.shape[1]), generator=generator, dtype=flat.dtype).to(flat.device)
        rows = torch.cat([flat + self.sigma * eps, flat - self.sigma * eps]).reshape(-1, flat.shape[1])  # (2P*W, D)
        nq, nqd = joint_q.shape[1], joint_qd.shape[1]
        q_rows, qd_rows = rows[:, :nq], rows[:, nq : nq + nqd]
        act_rows = rows[:, nq + nqd :].reshape(rows.shape[0], self.num_steps, -1).permute(1, 0, 2).contiguous()
        model = self.model(rows.shape[0])
        inputs = (_as_warp(t.contiguous(), self.scalar, requires_grad=False) for t in (q_rows, qd_rows, act_rows))
        final, _ = self.simulate(model, *inputs, record=False)
        score = ((wp.to_torch(final.joint_q) * grad_q.repeat(2 * pairs, 1)).sum(1)
                 + (wp.to_torch(final.joint_qd) * grad_qd.repeat(2 * pairs, 1)).sum(1)).reshape(2 * pairs, worlds)
        gradient = (eps * ((score[:pairs] - score[pairs:]) / (2.0 * self.sigma))[:, :, None]).mean(dim=0)  # (W, D)
        grad_actions = gradient[:, nq + nqd :].reshape(worlds, self.num_steps, -1).permute(1, 0, 2)
        return gradient[:, :nq], gradient[:, nq : nq + nqd], grad_actions


def joint_rollout(scene, joint_q: torch.Tensor, joint_qd: torch.Tensor, actions: torch.Tensor, *, dt: float,
                  substeps: int = 1, estimator: str = "analytic", sigma: float = 0.05, population: int = 32,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batched robot rollout as one differentiable torch op whose backward uses ``estimator``.

    Args:
        scene: ``scene(num_worlds) -> Model`` (or a scene with ``.model``), finalized with
            ``requires_grad=True``; ES builds a model of ``population * W`` worlds with it.
        joint_q, joint_qd: ``(W, nq)``, ``(W, nqd)`` initial joint state; actions: ``(T, W, A)``.
        dt, substeps: control step [s] and physics substeps per step.
        estimator: ``"analytic"`` (Warp's adjoint through the recorded rollout) or ``"es"``
            (antithetic Gaussian smoothing of every input of each world, ``sigma``, ``population``
            even, seeded by ``seed``; an unbiased estimate of the smoothed rollout's gradient).

    Returns the final ``(joint_q, joint_qd)``.
    """
    if estimator not in ("analytic", "es"):
        raise ParameterError(f"estimator must be 'analytic' or 'es', got {estimator!r}")
    if estimator == "es" and (population < 2 or population % 2):
        raise ParameterError(f"population must be even for antithetic sampling (pairs theta +- sigma*eps), got {population}")
    if not (sigma > 0 and np.isfinite(sigma)):
        raise ParameterError(f"sigma must be a finite number > 0, got {sigma!r}")
    check_tensor("actions", actions)
    if actions.dim() != 3:
        raise ParameterError(f"actions must have shape (T, W, A), got {tuple(actions.shape)}")
    spec = _RolloutSpec(scene, int(actions.shape[0]), float(dt), int(substeps), estimator, float(sigma), int(population), int(seed))
    model = spec.model(check_tensor("joint_q", joint_q).shape[0] if joint_q.dim() == 2 else 1)
    if model.articulation is None:
        raise ParameterError(f"scene must build a model with joints for joint_rollout, got one without an articulation (scene={scene!r})")
    rigid.check_stable_timestep(model, dt, substeps)
    dtype, probe_state = _torch_dtype(model), model.state(requires_grad=False)
    check_tensor("joint_q", joint_q, shape=probe_state.joint_q.shape, dtype=dtype, finite=True)
    check_tensor("joint_qd", joint_qd, shape=probe_state.joint_qd.shape, dtype=dtype, finite=True)
    check_tensor("actions", actions, shape=(actions.shape[0],) + tuple(model.control().joint_act.shape), dtype=dtype, finite=True)
    return _JointRollout.apply(spec, joint_q, joint_qd, actions)


_TERM_INPUTS = ("joint_q", "joint_qd", "body_q", "body_v", "body_w")


class _TermsLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, model, terms, context, names, joint_act, *tensors):
        state = model.state(requires_grad=True)
        control = model.control(requires_grad=True)
        inputs = {name: _as_warp(t.detach(), getattr(state, name).dtype, requires_grad=True) for name, t in zip(names, tensors)}
        if joint_act is not None:
            inputs["joint_act"] = _as_warp(joint_act.detach(), control.joint_act.dtype, requires_grad=True)
        loss = wp.zeros(model.num_worlds, dtype=model.precision.scalar, device=model.device, requires_grad=True)
        tape = wp.Tape()
        with tape:
            for name in names:
                wp.copy(getattr(state, name), inputs[name])
            if "joint_q" in names and "body_q" not in names:
                eval_fk(model, state)  # poses from the joint coordinates, for the terms that read bodies
            if joint_act is not None:
                wp.copy(control.joint_act, inputs["joint_act"])
            add_terms(terms, model, state, control if joint_act is not None else None, loss, context)
        ctx.tape, ctx.inputs, ctx.loss, ctx.names, ctx.has_act = tape, inputs, loss, names, joint_act is not None
        return wp.to_torch(loss).clone()

    @staticmethod
    def backward(ctx, grad_loss):
        ctx.tape.zero()  # a second backward (retain_graph=True) must not accumulate onto the first
        ctx.tape.backward(grads={ctx.loss: _as_warp(grad_loss.detach(), ctx.loss.dtype, requires_grad=False)})
        act = wp.to_torch(ctx.inputs["joint_act"].grad).clone() if ctx.has_act else None
        return (None, None, None, None, act) + tuple(wp.to_torch(ctx.inputs[n].grad).clone() for n in ctx.names)


def terms_loss(model: Model, terms, context: LossContext, state: dict[str, torch.Tensor], joint_act: torch.Tensor | None = None
               ) -> torch.Tensor:
    """The loss terms due after step ``context.step`` (every-step terms, and the others when
    ``context.final``), as a differentiable torch op, per world ``(W,)``.

    Args:
        terms: loss terms, e.g. ``scene.task.losses(num_steps)``.
        context: a :class:`simulator.LossContext` (its ``initial_state`` is a Warp State).
        state: some of ``joint_q`` ``(W, nq)``, ``joint_qd`` ``(W, nqd)``, ``body_q`` ``(W, B, 7)``,
            ``body_v``, ``body_w`` ``(W, B, 3)`` as tensors of the model's precision (e.g. the outputs of
            :func:`joint_step`); without ``body_q``, poses come from ``joint_q`` by forward kinematics.
        joint_act: ``(W, A)`` actuator controls that drove the step (effort terms), or None.

    Gradients flow to every given tensor through the terms' Warp adjoints.
    """
    unknown = sorted(set(state) - set(_TERM_INPUTS))
    if unknown:
        raise ParameterError(f"state has unknown entries {unknown}; expected some of {list(_TERM_INPUTS)}")
    dtype, device = _torch_dtype(model), wp.device_to_torch(model.device)
    names = tuple(n for n in _TERM_INPUTS if n in state)
    tensors = [state[n] for n in names] + ([] if joint_act is None else [joint_act])
    probe = model.state(requires_grad=False)
    expected = {name: tuple(getattr(probe, name).shape) + ((7,) if name == "body_q" else (3,) if name.startswith("body_") else ())
                for name in names}
    if joint_act is not None:
        expected["joint_act"] = tuple(model.control(requires_grad=False).joint_act.shape)
    for name, tensor in zip(names + ("joint_act",), tensors):
        check_tensor(name, tensor, shape=expected[name], dtype=dtype)
    return _TermsLoss.apply(model, list(terms), context, names, None if joint_act is None else joint_act.to(device),
                            *(state[n].to(device) for n in names))


class TorchPolicy:
    """A controller that runs a ``torch.nn.Module`` policy inside a Warp rollout, for black-box
    estimators: theta is the policy's flattened parameters (``torch.nn.utils.parameters_to_vector``
    order), each world acting with its own row (``torch.func.vmap``). Observations are
    ``[joint_q, joint_qd]``; the policy outputs one action per actuator.

    Warp's tape cannot see torch operations, so this controller refuses recorded (analytic)
    sweeps instead of returning a silently zero gradient: use ``estimator="es"`` here, and
    :func:`joint_step` for analytic gradients through a torch policy.
    """

    def __init__(self, policy: torch.nn.Module):
        self.policy = policy
        self.shapes = {name: p.shape for name, p in policy.named_parameters()}
        self.sizes = [p.numel() for p in policy.parameters()]

    def num_parameters(self, num_steps: int) -> int:
        return sum(self.sizes)

    def parameter_blocks(self, num_steps: int) -> list[slice]:
        edges = np.cumsum([0] + self.sizes)
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def _act(self, flat: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for (name, shape), size in zip(self.shapes.items(), self.sizes):
            params[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return torch.func.functional_call(self.policy, params, (observation,))

    capturable = False  # torch runs on the host: the engine steps this controller from Python

    def apply(self, model, step, state, theta, control, workspace=None) -> None:
        if theta.requires_grad:
            raise ParameterError("a torch policy inside a Warp rollout has no Warp adjoint: use estimator='es', "
                                 "or simulator.torch.joint_step for analytic gradients through the policy")
        observation = torch.cat([wp.to_torch(state.joint_q), wp.to_torch(state.joint_qd)], dim=1)
        with torch.no_grad():
            flat = wp.to_torch(theta).to(observation.dtype)
            actions = torch.func.vmap(self._act)(flat, observation)
        wp.copy(control.joint_act, _as_warp(actions.to(wp.to_torch(control.joint_act).dtype), control.joint_act.dtype, requires_grad=False))


def state_tensors(state: State) -> dict[str, torch.Tensor]:
    """Torch copies of a State's pose and velocity arrays, as :func:`step` takes them."""
    return {name: wp.to_torch(getattr(state, name)).clone() for name in _STATE_FIELDS}
