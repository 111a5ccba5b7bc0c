"""Diagnostics: when do gradients stop being trustworthy, and why?

* :func:`lyapunov_exponent` -- the largest Lyapunov exponent of a rollout, from tangent
  propagation (a finite-difference Jacobian-vector product in float64) with periodic
  renormalisation (Benettin et al. 1980). Backpropagated gradient variance grows about
  ``exp(2*lambda*t)``: a positive exponent predicts the explosion.
* :func:`moment_lyapunov` -- the moment (generalised) Lyapunov exponents
  ``L(q) = lim (1/T) log E[||J_T v||^q]`` over an ensemble of initial conditions, the
  finite-time exponent distribution, and bootstrap confidence intervals. ``L(2)`` is the growth
  rate of a second moment, so it predicts the growth of the backpropagated gradient's variance;
  ``L(2) >= 2*lambda`` (Jensen), with equality only when the finite-time exponents do not fluctuate.
* :func:`jacobian_spectrum` -- for small systems, the singular values of the T-step Jacobian
  product at every horizon (accumulated by QR, so they never overflow).
* :func:`gradient_norm_trace` -- the state adjoint's norm at every step of the backward pass,
  and the step where it first became non-finite.
* :func:`variance_vs_horizon` -- gradient variance of each estimator against the horizon.
* :func:`variance_growth` -- the measured growth rate of the backprop gradient's variance, with
  a bootstrap interval: what ``moment_lyapunov(...).rate(2, horizons)`` predicts.
* :func:`loss_slice` -- the loss along one parameter direction at several horizons.

Every function works on a :class:`simulator.RolloutObjective`; the tangent-space functions use
the objective's ``dynamic_arrays(state)`` (the independent coordinates) and ``refresh(state)``
(recompute derived arrays, e.g. forward kinematics) when it has them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import warp as wp

from .gradients import GradientNotFiniteError, grad, reverse_sweep
from .engine import advance_objective
from .engine import clone_state as _clone_state
from .errors import ParameterError, SimulationDivergedError, check_finite
from .gradients.objective import RolloutObjective, check_theta, evaluate


def _dynamic(objective, state) -> dict[str, wp.array]:
    chooser = getattr(objective, "dynamic_arrays", None)
    return chooser(state) if chooser else objective.state_arrays(state)


def _refresh(objective, state) -> None:
    refresh = getattr(objective, "refresh", None)
    if refresh:
        refresh(state)


def _flat(arrays: dict[str, wp.array], worlds: int) -> np.ndarray:
    return np.concatenate([a.numpy().astype(np.float64).reshape(worlds, -1) for a in arrays.values()], axis=1)


def _assign_flat(arrays: dict[str, wp.array], values: np.ndarray, worlds: int) -> None:
    offset = 0
    for array in arrays.values():
        host = array.numpy()
        size = host.reshape(worlds, -1).shape[1]
        array.assign(values[:, offset : offset + size].reshape(host.shape).astype(host.dtype))
        offset += size


def _step_length(objective) -> float:
    dt = getattr(objective, "dt", None)
    if dt is None:
        raise ParameterError(f"objective must have a dt attribute (the exponent needs the step length [s]), "
                             f"got a {type(objective).__name__} without one")
    return float(dt)


@dataclass
class LyapunovResult:
    """``exponent``: mean over worlds [1/s]; ``per_world``: ``(W,)``; ``log_growth``: ``(T, W)``
    cumulative log stretch of the tangent vector after each step."""

    exponent: float
    per_world: np.ndarray
    log_growth: np.ndarray


def lyapunov_exponent(objective: RolloutObjective, theta, *, num_worlds: int = 4, seed: int = 0,
                      perturbation: float = 1e-8, renormalize_every: int = 1, transient: int = 0) -> LyapunovResult:
    """Largest Lyapunov exponent [1/s] of the rollout driven by ``theta``.

    A reference and a perturbed trajectory are advanced together; every ``renormalize_every``
    steps the separation is measured in the objective's dynamic coordinates, its log-stretch
    accumulated, and the perturbed state pulled back to distance ``perturbation``. Worlds start
    from the objective's initial states for ``seed`` with independent random tangent directions.
    ``transient`` steps at the start are run but not counted. Use a float64 model.
    """
    theta = check_theta(objective, theta)
    if not (perturbation > 0 and math.isfinite(perturbation)):
        raise ParameterError(f"perturbation must be a finite number > 0, got {perturbation!r}")
    rows = objective.parameter_array(np.tile(theta, (num_worlds, 1)), requires_grad=False)
    reference = objective.initial_state(num_worlds, seed)
    perturbed = _clone_state(reference, requires_grad=False)
    rng = np.random.default_rng(seed)
    base = _flat(_dynamic(objective, reference), num_worlds)
    direction = rng.standard_normal(base.shape)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    _assign_flat(_dynamic(objective, perturbed), base + perturbation * direction, num_worlds)
    _refresh(objective, perturbed)

    T = objective.num_steps
    log_growth = np.zeros((T, num_worlds))
    total = np.zeros(num_worlds)
    counted_steps = 0
    for start in range(0, T, renormalize_every):
        steps = min(renormalize_every, T - start)
        reference = advance_objective(objective, reference, rows, start, steps)
        perturbed = advance_objective(objective, perturbed, rows, start, steps)
        t = start + steps - 1  # renormalise after the segment's last step
        log_growth[start:t] = total
        x = _flat(_dynamic(objective, reference), num_worlds)
        y = _flat(_dynamic(objective, perturbed), num_worlds)
        separation = np.linalg.norm(y - x, axis=1)
        diverged = np.flatnonzero(~np.isfinite(separation))
        if diverged.size:
            world = int(diverged[0])
            raise SimulationDivergedError(f"tangent propagation failed: the separation is not finite at step {t} in world {world} "
                                          f"(separation {separation}): the reference or the perturbed rollout diverged",
                                          step=t, world=world)
        if np.any(separation == 0.0):
            raise ParameterError(f"perturbation={perturbation!r} collapsed: the separation is 0 at step {t} in world "
                                 f"{int(np.flatnonzero(separation == 0.0)[0])}; use float64 or a larger perturbation")
        if t >= transient:
            total += np.log(separation / perturbation)
            counted_steps = t + 1 - transient
        _assign_flat(_dynamic(objective, perturbed), x + (y - x) * (perturbation / separation)[:, None], num_worlds)
        _refresh(objective, perturbed)
        log_growth[t] = total
    per_world = total / (max(counted_steps, 1) * _step_length(objective))
    return LyapunovResult(exponent=float(per_world.mean()), per_world=per_world, log_growth=log_growth)


def _log_mean_exp(values: np.ndarray, axis: int) -> np.ndarray:
    """``log(mean(exp(values)))`` along ``axis`` without overflow (logsumexp)."""
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.log(np.mean(np.exp(values - top), axis=axis, keepdims=True)) + top
    return np.squeeze(total, axis=axis)


@dataclass
class MomentLyapunovResult:
    """Moment Lyapunov exponents of a rollout over an ensemble of worlds (see :func:`moment_lyapunov`).

    Attributes:
        q: ``(Q,)`` the moments.
        exponents: ``(Q,)`` ``L(q) = (1/T) log mean_w ||J_T v_w||^q`` [1/s], T the counted time [s].
        confidence: ``(Q, 2)`` bootstrap percentile interval of each ``L(q)`` at ``level`` [1/s].
        standard_error: ``(Q,)`` bootstrap standard deviation of each ``L(q)`` [1/s].
        level: the confidence level of ``confidence``.
        effective_worlds: ``(Q,)`` how many worlds carry ``mean_w ||J_T v_w||^q``: ``(sum u)^2 / sum u^2``
            with ``u_w = ||J_T v_w||^q``. Near 1, a single world dominates and ``L(q)`` is a
            lower estimate (the ensemble has not sampled the rare, most expanding trajectories).
        lyapunov: the largest Lyapunov exponent, the mean finite-time exponent [1/s].
        lyapunov_standard_error: its standard error over worlds [1/s].
        finite_time: ``(W,)`` finite-time exponents ``log||J_T v_w|| / T`` [1/s]: their spread is
            what makes ``L(2)`` exceed ``2*lambda``.
        log_growth: ``(T, W)`` ``log||J_t v_w||`` after each step (0 before ``transient``).
        log_moments: ``(T, Q)`` ``log mean_w ||J_t v_w||^q`` after each step.
        dt: the step length [s]; ``transient``: the steps run but not counted.
    """

    q: np.ndarray
    exponents: np.ndarray
    confidence: np.ndarray
    standard_error: np.ndarray
    level: float
    effective_worlds: np.ndarray
    lyapunov: float
    lyapunov_standard_error: float
    finite_time: np.ndarray
    log_growth: np.ndarray
    log_moments: np.ndarray
    dt: float
    transient: int

    def exponent(self, q: float) -> float:
        """``L(q)`` [1/s] for one of the computed moments."""
        return float(self.exponents[self._index(q)])

    def rate(self, q: float, horizons: Sequence[int]) -> float:
        """Least-squares slope [1/s] of ``log E[||J_t v||^q]`` against time at the given horizons
        (numbers of steps, each > ``transient``): the fit :func:`growth_rate` makes of a
        gradient variance measured at the same horizons, so the two compare directly (the slope
        drops the offset that the tangent vector's initial alignment adds to ``L(q)``). With
        ``renormalize_every > 1`` use horizons that are multiples of it: between renormalisations
        ``log_growth`` holds the value of the last one."""
        horizons = np.asarray(horizons, dtype=int)
        T = self.log_growth.shape[0]
        if horizons.size < 2 or np.any(horizons <= self.transient) or np.any(horizons > T):
            raise ParameterError(f"horizons must be at least two step counts in ({self.transient}, {T}], got {horizons.tolist()}")
        values = self.log_moments[horizons - 1, self._index(q)]
        return float(np.polyfit(horizons * self.dt, values, 1)[0])

    def rate_interval(self, q: float, horizons: Sequence[int], *, bootstrap: int = 1000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
        """Bootstrap percentile interval [1/s] of :meth:`rate` (the worlds resampled jointly at
        every horizon)."""
        self.rate(q, horizons)  # checks the horizons
        horizons = np.asarray(horizons, dtype=int)
        growth = self.q[self._index(q)] * self.log_growth[horizons - 1]  # (H, W)
        picks = np.random.default_rng([seed, 0x2F]).integers(0, growth.shape[1], size=(bootstrap, growth.shape[1]))
        curves = np.stack([_log_mean_exp(growth[:, pick], axis=1) for pick in picks], axis=1)  # (H, B)
        slopes = np.polyfit(horizons * self.dt, curves, 1)[0]
        tail = 0.5 * (1.0 - level)
        low, high = np.quantile(slopes, [tail, 1.0 - tail])
        return float(low), float(high)

    def _index(self, q: float) -> int:
        match = np.flatnonzero(np.isclose(self.q, q))
        if not match.size:
            raise ParameterError(f"q={q!r} was not computed; the moments are {self.q.tolist()}")
        return int(match[0])


def moment_lyapunov(objective: RolloutObjective, theta, *, q: Sequence[float] = (1.0, 2.0), num_worlds: int = 64, seed: int = 0,
                    perturbation: float = 1e-8, renormalize_every: int = 1, transient: int = 0,
                    bootstrap: int = 1000, level: float = 0.95) -> MomentLyapunovResult:
    """Moment (generalised) Lyapunov exponents ``L(q) = lim (1/T) log E[||J_T v||^q]`` [1/s].

    ``J_T`` is the Jacobian of the rollout's T-step map in the objective's dynamic coordinates
    and the expectation runs over the objective's initial-state distribution (world ``w`` starts
    from ``initial_state(num_worlds, seed)`` with its own random unit tangent ``v_w``). The
    tangents are propagated by :func:`lyapunov_exponent` (no second loop): the sum of the log
    stretches between its renormalisations is the unrenormalised ``log||J_T v_w||``, and
    ``L(q) = (1/T) log mean_w exp(q log||J_T v_w||)``, computed with logsumexp so that nothing
    overflows. ``L(1) >= lambda`` and ``L(2) >= 2 L(1) >= 2*lambda`` (Jensen), with equality only
    when the finite-time exponents do not fluctuate. ``L(2)`` predicts the growth rate of the
    variance of a backpropagated gradient, whose square is a product of the same Jacobians.

    Confidence intervals come from ``bootstrap`` resamples of the worlds (percentile interval at
    ``level``). They measure the ensemble's sampling error only: for large ``q`` or long
    horizons the mean is carried by rare trajectories that a finite ensemble misses, so the
    estimate falls low; ``effective_worlds`` says when that happens (a handful of worlds).
    Use a float64 model; the other options are those of :func:`lyapunov_exponent`.
    """
    moments = check_finite("q", q).reshape(-1)
    if moments.size == 0:
        raise ParameterError("q must name at least one moment, got an empty sequence")
    if not isinstance(num_worlds, (int, np.integer)) or num_worlds < 2:
        raise ParameterError(f"num_worlds must be an integer >= 2 (an ensemble), got {num_worlds!r}")
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 2:
        raise ParameterError(f"bootstrap must be an integer >= 2 (resamples of the worlds), got {bootstrap!r}")
    if not 0.0 < level < 1.0:
        raise ParameterError(f"level must be in (0, 1), got {level!r}")
    T = objective.num_steps
    if not 0 <= transient < T:
        raise ParameterError(f"transient must be in [0, {T}) steps, got {transient!r}")
    tangent = lyapunov_exponent(objective, theta, num_worlds=num_worlds, seed=seed, perturbation=perturbation,
                                renormalize_every=renormalize_every, transient=transient)
    dt = _step_length(objective)
    seconds = (T - transient) * dt
    log_norm = tangent.log_growth[-1]  # log||J_T v_w|| over the counted steps, (W,)
    weighted = moments[:, None] * log_norm[None, :]  # (Q, W)
    exponents = _log_mean_exp(weighted, axis=1) / seconds
    log_moments = np.stack([_log_mean_exp(m * tangent.log_growth, axis=1) for m in moments], axis=1)  # (T, Q)

    rng = np.random.default_rng([seed, 0x1F])  # apart from the tangent directions' stream
    picks = rng.integers(0, num_worlds, size=(bootstrap, num_worlds))
    replicates = np.stack([_log_mean_exp(m * log_norm[picks], axis=1) for m in moments], axis=0) / seconds  # (Q, B)
    tail = 0.5 * (1.0 - level)
    confidence = np.quantile(replicates, [tail, 1.0 - tail], axis=1).T
    shifted = np.exp(weighted - weighted.max(axis=1, keepdims=True))
    effective = shifted.sum(axis=1) ** 2 / np.sum(shifted * shifted, axis=1)
    finite_time = log_norm / seconds
    return MomentLyapunovResult(q=moments, exponents=exponents, confidence=confidence, standard_error=replicates.std(axis=1, ddof=1),
                                level=float(level), effective_worlds=effective, lyapunov=float(finite_time.mean()),
                                lyapunov_standard_error=float(finite_time.std(ddof=1) / math.sqrt(num_worlds)),
                                finite_time=finite_time, log_growth=tangent.log_growth, log_moments=log_moments, dt=dt,
                                transient=int(transient))


def jacobian_spectrum(objective: RolloutObjective, theta, *, seed: int = 0, eps: float = 1e-7) -> np.ndarray:
    """Log singular values of the T-step Jacobian product, ``(T, n)`` for n dynamic coordinates.

    Row t holds ``log(sigma_i)`` of ``J_t ... J_1 J_0`` (one world, central differences of each
    step map in float64), accumulated as ``Q R`` products so that nothing overflows; the largest
    entry grows like ``lambda * t * dt``. Meant for small systems (n up to a few dozen).
    """
    theta = check_theta(objective, theta)
    rows = objective.parameter_array(theta[None, :], requires_grad=False)
    state = objective.initial_state(1, seed)
    n = _flat(_dynamic(objective, state), 1).shape[1]
    q = np.eye(n)
    log_r = np.zeros(n)
    spectrum = np.zeros((objective.num_steps, n))
    for t in range(objective.num_steps):
        x = _flat(_dynamic(objective, state), 1)[0]
        jac = np.zeros((n, n))
        for i in range(n):
            outputs = []
            for sign in (1.0, -1.0):
                probe = _clone_state(state, requires_grad=False)
                shifted = x.copy()
                shifted[i] += sign * eps
                _assign_flat(_dynamic(objective, probe), shifted[None, :], 1)
                _refresh(objective, probe)
                outputs.append(_flat(_dynamic(objective, objective.advance(t, probe, rows)), 1)[0])
            jac[:, i] = (outputs[0] - outputs[1]) / (2.0 * eps)
        q, r = np.linalg.qr(jac @ q)
        log_r += np.log(np.abs(np.diag(r)) + 1e-300)
        spectrum[t] = np.sort(log_r)[::-1]
        state = objective.advance(t, state, rows)
    return spectrum


def gradient_norm_trace(objective: RolloutObjective, theta, *, seed: int = 0) -> dict:
    """Norm of the state adjoint entering every step of the backward pass (``(T,)``), and the
    step where it first became non-finite (None if it stayed finite)."""
    theta = check_theta(objective, theta)
    try:
        result = reverse_sweep(objective, theta[None, :], seed=seed, trace=True)
    except GradientNotFiniteError as error:
        return {"adjoint_norms": None, "first_nonfinite_step": error.step}
    return {"adjoint_norms": result.adjoint_norms[:, 0], "first_nonfinite_step": None}


def variance_vs_horizon(make_objective: Callable[[int], RolloutObjective], theta_for: Callable[[RolloutObjective], np.ndarray],
                        horizons: Sequence[int], estimators: dict[str, dict], *, seed: int = 0, progress=None) -> list[dict]:
    """Gradient mean norm and variance of each estimator at each horizon.

    Args:
        make_objective: ``horizon -> objective``.
        theta_for: ``objective -> theta`` (parameters sized for that horizon).
        estimators: ``{label: {"estimator": name, **options}}``; options must give the estimator
            a variance (``samples >= 2`` for analytic and truncated).
    Returns rows ``{horizon, estimator, grad_mean_norm, grad_variance, seconds}``;
    ``grad_variance`` is the summed per-coordinate variance of one estimate, ``inf`` where the
    backward pass was not finite.
    """
    rows = []
    for horizon in horizons:
        objective = make_objective(int(horizon))
        theta = theta_for(objective)
        for label, options in estimators.items():
            options = dict(options)
            name = options.pop("estimator")
            start = time.perf_counter()
            try:
                result = grad(objective, theta, estimator=name, seed=seed, **options)
                mean_norm = float(np.linalg.norm(result.gradient))
                variance = float(np.sum(result.variance)) if result.variance is not None else math.nan
            except GradientNotFiniteError:
                mean_norm, variance = math.inf, math.inf
            rows.append({"horizon": int(horizon), "estimator": label, "grad_mean_norm": mean_norm,
                         "grad_variance": variance, "seconds": time.perf_counter() - start})
            if progress:
                progress(rows[-1])
    return rows


@dataclass
class VarianceGrowth:
    """``rate``: least-squares slope of log(gradient variance) against time [1/s];
    ``interval``: its bootstrap percentile interval [1/s]; ``horizons``: steps;
    ``log_variance``: ``(H,)`` log of the summed per-coordinate variance over the samples;
    ``gradients``: per horizon, the ``(samples, P)`` per-world gradients."""

    rate: float
    interval: tuple[float, float]
    horizons: np.ndarray
    log_variance: np.ndarray
    gradients: list[np.ndarray]


def variance_growth(make_objective: Callable[[int], RolloutObjective], theta_for: Callable[[RolloutObjective], np.ndarray],
                    horizons: Sequence[int], *, samples: int = 64, seed: int = 0, bootstrap: int = 1000,
                    level: float = 0.95) -> VarianceGrowth:
    """Measured growth rate of the backpropagated gradient's variance over initial conditions.

    At every horizon, ``samples`` worlds from ``initial_state(samples, seed)`` (the same initial
    conditions at every horizon) give per-world gradients at ``theta_for(objective)``; the summed
    per-coordinate variance of those gradients is fitted against time (:func:`growth_rate`).
    The interval resamples the worlds jointly at every horizon (``bootstrap`` times). It is what
    :meth:`MomentLyapunovResult.rate` predicts at the same horizons (``q = 2``) where the
    Jacobian products grow.

    Raises:
        GradientNotFiniteError: a backward pass became non-finite.
    """
    if not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ParameterError(f"samples must be an integer >= 2 (a variance), got {samples!r}")
    horizons = np.asarray(horizons, dtype=int)
    if horizons.size < 2:
        raise ParameterError(f"horizons must hold at least two step counts, got {horizons.tolist()}")
    gradients, dt = [], None
    for horizon in horizons:
        objective = make_objective(int(horizon))
        dt = _step_length(objective)
        theta = check_theta(objective, theta_for(objective))
        gradients.append(reverse_sweep(objective, np.tile(theta, (samples, 1)), seed=seed).gradients.astype(np.float64))
    stack = np.stack(gradients)  # (H, samples, P)
    times = horizons * dt

    def slope(picked):
        return np.polyfit(times, np.log(picked.var(axis=1, ddof=1).sum(axis=-1)), 1)[0]

    log_variance = np.log(stack.var(axis=1, ddof=1).sum(axis=-1))
    picks = np.random.default_rng([seed, 0x3F]).integers(0, samples, size=(bootstrap, samples))
    with np.errstate(divide="ignore"):
        slopes = np.array([slope(stack[:, pick]) for pick in picks])
    slopes = slopes[np.isfinite(slopes)]
    tail = 0.5 * (1.0 - level)
    low, high = np.quantile(slopes, [tail, 1.0 - tail])
    return VarianceGrowth(rate=float(np.polyfit(times, log_variance, 1)[0]), interval=(float(low), float(high)),
                          horizons=horizons, log_variance=log_variance, gradients=gradients)


def loss_slice(make_objective: Callable[[int], RolloutObjective], theta_for: Callable[[RolloutObjective], np.ndarray],
               direction_for: Callable[[RolloutObjective], np.ndarray], offsets, horizons: Sequence[int], *, seed: int = 0) -> np.ndarray:
    """Loss at ``theta + offset * direction`` for every offset (batched as worlds, one rollout per
    horizon) and horizon: ``(len(horizons), len(offsets))``. All randomness is fixed by ``seed``."""
    offsets = np.asarray(offsets, dtype=np.float64)
    table = np.zeros((len(horizons), offsets.size))
    for i, horizon in enumerate(horizons):
        objective = make_objective(int(horizon))
        theta, direction = theta_for(objective), direction_for(objective)
        table[i] = evaluate(objective, theta[None, :] + offsets[:, None] * direction[None, :], seed=seed)
    return table


def roughness(values: np.ndarray) -> float:
    """Mean absolute second difference of a sampled curve relative to its range: ~0 for a smooth
    curve, O(1) for a rugged one."""
    values = np.asarray(values, dtype=np.float64)
    span = np.ptp(values)
    return float(np.mean(np.abs(np.diff(values, 2))) / span) if span > 0 else 0.0


def growth_rate(horizons_seconds, variances) -> float:
    """Least-squares slope of log(variance) against time [1/s] (finite points only)."""
    x = np.asarray(horizons_seconds, dtype=np.float64)
    y = np.log(np.asarray(variances, dtype=np.float64))
    keep = np.isfinite(y)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(x[keep], y[keep], 1)[0])
