"""Gradient estimators behind one call, chosen by name from a registry.

==============  ===============================================================================
name            what it computes
==============  ===============================================================================
``analytic``    backprop through the whole rollout (optionally checkpointed: memory ~ sqrt(T))
``truncated``   backprop through windows of ``window`` steps, the gradient cut between windows,
                optionally with per-step clipping of the state adjoint (``clip``)
``es``          antithetic Gaussian smoothing (evolution strategies), the population evaluated
                as batched worlds in the same kernel launches; optional centred-rank shaping
``hybrid``      inverse-variance weighting of ``analytic`` and ``es`` per parameter block
``auto``        measures both and picks (or weights) by variance; see :class:`AutoEstimator`
==============  ===============================================================================

Each estimator returns a :class:`GradientResult` with diagnostics. Register your own with
:func:`register_estimator`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError, check_positive
from .objective import GradientNotFiniteError, RolloutObjective, check_theta, evaluate, reverse_sweep

log = logging.getLogger("simulator.gradients")


@dataclass
class GradientResult:
    """A gradient estimate and how it was obtained.

    Attributes:
        value: the loss estimate (mean over the worlds used).
        gradient: ``(P,)`` estimate of dL/dtheta.
        variance: ``(P,)`` estimated variance of ``gradient`` (of the mean, per coordinate), or
            None where the estimator has no estimate (a single deterministic backprop).
        diagnostics: estimator name, gradient norm, wall time [s], simulated steps (world-steps),
            worlds and anything estimator-specific (e.g. the choice ``auto`` made).
    """

    value: float
    gradient: np.ndarray
    variance: np.ndarray | None
    diagnostics: dict = field(default_factory=dict)


class Estimator:
    """Base class: ``estimate(objective, theta, seed) -> GradientResult``."""

    name = "base"

    def estimate(self, objective: RolloutObjective, theta: np.ndarray, *, seed: int = 0) -> GradientResult:
        raise NotImplementedError


_REGISTRY: dict[str, type[Estimator]] = {}


def register_estimator(name: str):
    """Class decorator: make an :class:`Estimator` subclass available as ``grad(..., estimator=name)``."""

    def decorate(cls):
        if name in _REGISTRY:
            raise ParameterError(f"name must not be taken, got {name!r}: an estimator of that name is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def estimators() -> list[str]:
    """Names of the registered estimators."""
    return sorted(_REGISTRY)


def make_estimator(name: str, **options) -> Estimator:
    if name not in _REGISTRY:
        raise ParameterError(f"unknown estimator {name!r}; available: {', '.join(estimators())}")
    return _REGISTRY[name](**options)


def _mean_and_variance(samples: np.ndarray):
    """Mean of per-sample estimates ``(n, P)`` and the variance of that mean (None if n < 2)."""
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    variance = samples.var(axis=0, ddof=1) / n if n > 1 else None
    return mean, variance


def _positive_int(name, value, *, even=False):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    if even and value % 2:
        raise ParameterError(f"{name} must be even for antithetic sampling (pairs theta +- sigma*eps), got {value}")
    return int(value)


@register_estimator("analytic")
class AnalyticEstimator(Estimator):
    """Backprop through the whole rollout.

    Args:
        samples: worlds evaluated at the same theta with initial states from seeds
            ``seed, seed+1, ...`` (when the objective randomises them); their spread gives the
            variance estimate. With 1 sample there is no variance estimate.
        checkpoint_every: re-simulate segments of this many steps in the backward pass instead of
            storing every state (identical gradient, memory ~ T/k + k states).
    """

    def __init__(self, *, samples: int = 1, checkpoint_every: int | None = None):
        self.samples = _positive_int("samples", samples)
        self.checkpoint_every = checkpoint_every

    def sweep_options(self) -> dict:
        return {"checkpoint_every": self.checkpoint_every}

    def estimate(self, objective, theta, *, seed=0):
        rows = np.tile(theta, (self.samples, 1))
        result = reverse_sweep(objective, rows, seed=seed, **self.sweep_options())
        gradient, variance = _mean_and_variance(result.gradients)
        return GradientResult(
            value=float(result.losses.mean()),
            gradient=gradient,
            variance=variance,
            diagnostics={"worlds": self.samples, "sim_steps": self.samples * objective.num_steps, "peak_states": result.peak_states},
        )


@register_estimator("truncated")
class TruncatedEstimator(AnalyticEstimator):
    """Truncated backprop: windows of ``window`` steps, the state adjoint cut between windows.

    Args:
        window: steps per window (``window >= num_steps`` is full backprop).
        clip: optional per-step clip of the state adjoint's norm (per world).
        samples, checkpoint_every: as for ``analytic``.
    """

    def __init__(self, *, window: int = 10, clip: float | None = None, samples: int = 1, checkpoint_every: int | None = None):
        super().__init__(samples=samples, checkpoint_every=checkpoint_every)
        self.window = _positive_int("window", window)
        self.clip = clip

    def sweep_options(self) -> dict:
        return {"checkpoint_every": self.checkpoint_every, "window": self.window, "clip": self.clip}


@register_estimator("es")
class ESEstimator(Estimator):
    """Antithetic evolution strategies: ``g = mean_i eps_i * (L(theta + sigma*eps_i) - L(theta - sigma*eps_i)) / (2*sigma)``.

    This is an unbiased estimate of the gradient of the Gaussian-smoothed loss
    ``E[L(theta + sigma*eps)]``; its variance does not depend on the rollout's Jacobians.

    Args:
        sigma: smoothing standard deviation (in the units of theta), > 0.
        population: number of perturbed rollouts (even: ``population/2`` antithetic pairs), all
            evaluated as batched worlds in one rollout.
        shaping: ``None`` or ``"centered_rank"`` (losses replaced by centred ranks in [-0.5, 0.5];
            robust to outliers but no longer an unbiased estimate of the smoothed gradient's scale).
    """

    def __init__(self, *, sigma: float = 0.1, population: int = 64, shaping: str | None = None):
        if not (isinstance(sigma, (int, float, np.floating)) and math.isfinite(sigma) and sigma > 0):
            raise ParameterError(f"sigma must be a finite number > 0, got {sigma!r}")
        if shaping not in (None, "centered_rank"):
            raise ParameterError(f"shaping must be None or 'centered_rank', got {shaping!r}")
        self.sigma = float(sigma)
        self.population = _positive_int("population", population, even=True)
        self.shaping = shaping

    def estimate(self, objective, theta, *, seed=0):
        pairs = self.population // 2
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((pairs, theta.shape[0]))
        rows = np.concatenate([theta + self.sigma * eps, theta - self.sigma * eps])
        losses = evaluate(objective, rows, seed=seed)
        scores = losses
        if self.shaping == "centered_rank":
            ranks = np.empty(losses.shape[0])
            ranks[np.argsort(losses, kind="stable")] = np.arange(losses.shape[0])
            scores = ranks / (losses.shape[0] - 1) - 0.5
        per_pair = eps * ((scores[:pairs] - scores[pairs:]) / (2.0 * self.sigma))[:, None]
        gradient, variance = _mean_and_variance(per_pair)
        # the smallest gradient coordinate a loss difference can resolve: one rounding unit of the
        # largest score (in the objective's precision) over 2*sigma
        resolution = float(np.finfo(objective.precision.numpy).eps) * float(np.max(np.abs(scores))) / (2.0 * self.sigma)
        return GradientResult(
            value=float(losses.mean()),
            gradient=gradient,
            variance=variance,
            diagnostics={"worlds": self.population, "sim_steps": self.population * objective.num_steps, "resolution": resolution},
        )


def _blocks(objective, size: int) -> list[slice]:
    blocks = getattr(objective, "parameter_blocks", None)
    return list(blocks) if blocks else [slice(0, size)]


def _usable(gradient, variance, block=slice(None)) -> bool:
    """Whether an estimate's gradient and total variance over ``block`` are finite."""
    return bool(np.all(np.isfinite(gradient[block]))) and math.isfinite(float(np.sum(variance[block])))


def inverse_variance_combine(g_a, v_a, g_b, v_b, blocks):
    """Per block: ``(v_b*g_a + v_a*g_b) / (v_a + v_b)`` with v the block's total variance; returns
    the combined gradient, its variance and each block's weight on ``a``.

    A block where one estimate is non-finite (gradient or variance) takes the other one as it is
    (weight 0 or 1, never ``0 * nan``); both variances exactly zero weight the two equally.
    Raises ``ParameterError`` (a ``ValueError``) for a block where both estimates are non-finite.
    """
    gradient, variance, weights = np.empty_like(g_a), np.empty_like(g_a), []
    for block in blocks:
        a_ok, b_ok = _usable(g_a, v_a, block), _usable(g_b, v_b, block)
        if not (a_ok or b_ok):
            raise ParameterError(f"g_a and g_b are both non-finite in theta[{block.start}:{block.stop}]: nothing to combine")
        va, vb = float(np.sum(v_a[block])), float(np.sum(v_b[block]))
        if not a_ok:
            w = 0.0
        elif not b_ok:
            w = 1.0
        elif va + vb == 0.0:
            w = 0.5
        else:
            w = vb / (va + vb)
        if w in (0.0, 1.0):  # one estimate as it is: the other may be non-finite
            gradient[block], variance[block] = (g_a[block], v_a[block]) if w == 1.0 else (g_b[block], v_b[block])
        else:
            gradient[block] = w * g_a[block] + (1.0 - w) * g_b[block]
            variance[block] = w * w * v_a[block] + (1.0 - w) ** 2 * v_b[block]
        weights.append(w)
    return gradient, variance, weights


def _require_a_finite_part(first: GradientResult, zeroth: GradientResult, blocks) -> None:
    """Raise :class:`GradientNotFiniteError` if, in some block, neither the analytic (``first``)
    nor the ES (``zeroth``) estimate is finite (the step is the analytic blow-up's, else 0)."""
    for block in blocks:
        if not (_usable(first.gradient, first.variance, block) or _usable(zeroth.gradient, zeroth.variance, block)):
            cause = first.diagnostics.get("error")
            raise GradientNotFiniteError(
                f"both the analytic and the ES gradient are non-finite in theta[{block.start}:{block.stop}]"
                + (f" (analytic: {cause})" if cause is not None else ""),
                step=cause.step if cause is not None else 0,
            ) from cause


def _warn_about_dropped_parts(first: GradientResult, zeroth: GradientResult, blocks, name: str) -> None:
    """Log a warning for each block whose analytic or ES part was non-finite and left out (a
    backward pass that raised was reported when it was caught)."""
    for block in blocks:
        where = f"theta[{block.start}:{block.stop}]"
        if "error" not in first.diagnostics and not _usable(first.gradient, first.variance, block):
            log.warning("%s: the analytic gradient or its variance is non-finite in %s; that block uses the ES gradient", name, where)
        if not _usable(zeroth.gradient, zeroth.variance, block):
            log.warning("%s: the ES gradient or its variance is non-finite in %s; that block uses the analytic gradient", name, where)


def _require_a_finite_result(name: str, result: GradientResult) -> None:
    """Raise :class:`GradientNotFiniteError` if an estimator returned a non-finite gradient (a
    registered estimator that does not check its own result, or an overflow in a combination)."""
    bad = np.flatnonzero(~np.isfinite(result.gradient))
    if bad.size:
        raise GradientNotFiniteError(f"the {name} estimator returned a non-finite gradient: theta[{int(bad[0])}] has "
                                     f"{float(result.gradient[bad[0]])!r} ({bad.size} of {result.gradient.size} entries are not finite)",
                                     step=None)


@register_estimator("hybrid")
class HybridEstimator(Estimator):
    """Inverse-variance weighting of the analytic and ES estimates, per parameter block (as in
    Parmas et al.'s total propagation and Suh et al.'s interpolated estimator). The weights use
    variances estimated from the samples of this very batch, so the result's variance is no
    larger than the smaller of its two parts (up to the noise of those estimates).

    Args:
        samples: analytic samples (>= 2, for a variance estimate).
        sigma, population, shaping: ES options.
        window, clip, checkpoint_every: analytic options (``window`` makes it truncated).
    """

    def __init__(self, *, samples: int = 8, sigma: float = 0.1, population: int = 64, shaping=None,
                 window: int | None = None, clip: float | None = None, checkpoint_every: int | None = None):
        if _positive_int("samples", samples) < 2:
            raise ParameterError(f"samples must be >= 2 to estimate the analytic variance, got {samples}")
        if window is None and clip is None:
            self.first_order = AnalyticEstimator(samples=samples, checkpoint_every=checkpoint_every)
        else:
            self.first_order = TruncatedEstimator(window=window or 10**9, clip=clip, samples=samples, checkpoint_every=checkpoint_every)
        self.zeroth_order = ESEstimator(sigma=sigma, population=population, shaping=shaping)
        if self.zeroth_order.population < 4:
            raise ParameterError(f"population must be >= 4 for {self.name}: the weights need the ES variance, estimated from at "
                                 f"least 2 antithetic pairs, got {population}")

    def both(self, objective, theta, seed):
        try:
            first = self.first_order.estimate(objective, theta, seed=seed)
        except GradientNotFiniteError as error:
            log.warning("the analytic gradient is non-finite (%s); %s uses the ES gradient for every parameter block", error, self.name)
            nan = np.full(theta.shape, np.nan)
            first = GradientResult(value=math.nan, gradient=nan, variance=np.full(theta.shape, np.inf),
                                   diagnostics={"sim_steps": 0, "error": error})
        zeroth = self.zeroth_order.estimate(objective, theta, seed=seed)
        return first, zeroth

    def estimate(self, objective, theta, *, seed=0):
        first, zeroth = self.both(objective, theta, seed)
        blocks = _blocks(objective, theta.shape[0])
        _require_a_finite_part(first, zeroth, blocks)
        gradient, variance, weights = inverse_variance_combine(first.gradient, first.variance, zeroth.gradient, zeroth.variance, blocks)
        _warn_about_dropped_parts(first, zeroth, blocks, self.name)
        return GradientResult(
            value=zeroth.value,
            gradient=gradient,
            variance=variance,
            diagnostics={
                "analytic_weight": weights,
                "worlds": first.diagnostics.get("worlds", 0) + zeroth.diagnostics["worlds"],
                "sim_steps": first.diagnostics["sim_steps"] + zeroth.diagnostics["sim_steps"],
            },
        )


@register_estimator("auto")
class AutoEstimator(HybridEstimator):
    """Measure both estimators on a few samples, then choose.

    The rule (:meth:`choose`), applied to the whole parameter vector:

    1. the analytic gradient is non-finite  -> ``es`` (the ES gradient is non-finite ->
       ``analytic``; both -> :class:`GradientNotFiniteError`);
    2. the two disagree by more than ``z`` combined standard errors in norm (first-order
       gradients can be biased at stiff contact with deceptively small variance, Suh et al. 2022)
       -> ``es``, the unbiased one. The standard error is never taken below the ES estimate's
       rounding resolution (one rounding unit of the loss over ``2*sigma`` per coordinate): with
       both variances exactly zero, e.g. a deterministic analytic gradient and an ES one whose
       antithetic losses are all equal at a symmetric point, a difference at rounding level is
       not a disagreement;
    3. otherwise the one whose estimate has the smaller total variance, unless neither has more
       than ``4x`` the other's variance, in which case both are weighted (``hybrid``; equal
       weights when both variances are zero).

    The choice is logged (logger ``simulator.gradients``) and returned in ``diagnostics["choice"]``.
    """

    def __init__(self, *, z: float = 4.0, **options):
        options.setdefault("samples", 4)
        options.setdefault("population", 32)
        super().__init__(**options)
        self.z = float(check_positive("z", z))

    def choose(self, first: GradientResult, zeroth: GradientResult) -> tuple[str, str]:
        """``(choice, reason)`` for the analytic estimate ``first`` and the ES estimate ``zeroth``
        (whose ``diagnostics["resolution"]`` is its rounding resolution per coordinate, 0 if
        absent); ``choice`` is ``"analytic"``, ``"es"`` or ``"hybrid"``."""
        _require_a_finite_part(first, zeroth, [slice(0, first.gradient.shape[0])])
        if not _usable(first.gradient, first.variance):
            return "es", "analytic gradient is not finite"
        if not _usable(zeroth.gradient, zeroth.variance):
            return "analytic", "ES gradient is not finite"
        v_first, v_zeroth = float(np.sum(first.variance)), float(np.sum(zeroth.variance))
        rounding = first.gradient.shape[0] * zeroth.diagnostics.get("resolution", 0.0) ** 2
        standard_error = math.sqrt(v_first + v_zeroth + rounding)
        if np.linalg.norm(first.gradient - zeroth.gradient) > self.z * standard_error:
            return "es", f"analytic and ES disagree beyond {self.z:g} standard errors (analytic may be biased)"
        if v_first * 4.0 < v_zeroth:
            return "analytic", f"analytic variance {v_first:.3g} << ES variance {v_zeroth:.3g}"
        if v_zeroth * 4.0 < v_first:
            return "es", f"ES variance {v_zeroth:.3g} << analytic variance {v_first:.3g}"
        if v_first + v_zeroth == 0.0:
            return "hybrid", "both variances are exactly zero and the estimates agree to rounding: equal weights"
        return "hybrid", f"comparable variances (analytic {v_first:.3g}, ES {v_zeroth:.3g})"

    def estimate(self, objective, theta, *, seed=0):
        first, zeroth = self.both(objective, theta, seed)
        choice, reason = self.choose(first, zeroth)
        log.info("auto estimator chose %s: %s", choice, reason)
        if choice == "hybrid":
            _warn_about_dropped_parts(first, zeroth, _blocks(objective, theta.shape[0]), self.name)
        if choice == "analytic":
            gradient, variance = first.gradient, first.variance
        elif choice == "es":
            gradient, variance = zeroth.gradient, zeroth.variance
        else:
            gradient, variance, _ = inverse_variance_combine(
                first.gradient, first.variance, zeroth.gradient, zeroth.variance, _blocks(objective, theta.shape[0])
            )
        return GradientResult(
            value=zeroth.value,
            gradient=gradient,
            variance=variance,
            diagnostics={"choice": choice, "reason": reason, "analytic_variance": float(np.sum(first.variance)),
                         "es_variance": float(np.sum(zeroth.variance)),
                         "worlds": first.diagnostics.get("worlds", 0) + zeroth.diagnostics["worlds"],
                         "sim_steps": first.diagnostics["sim_steps"] + zeroth.diagnostics["sim_steps"]},
        )


def grad(objective: RolloutObjective, theta, *, estimator: str | Estimator = "analytic", seed: int = 0, **options) -> GradientResult:
    """Estimate the gradient of a rollout objective at ``theta`` with the chosen estimator.

    Args:
        objective: a :class:`RolloutObjective`.
        theta: ``(P,)`` parameters.
        estimator: a registered name (``analytic``, ``truncated``, ``es``, ``hybrid``, ``auto``,
            or your own) or an :class:`Estimator` instance.
        seed: seeds the ES noise and the objective's initial states.
        **options: passed to the estimator's constructor (``sigma``, ``population``, ``window``,
            ``clip``, ``samples``, ``checkpoint_every``, ...).

    Returns:
        :class:`GradientResult`; ``diagnostics`` always has ``estimator``, ``gradient_norm``,
        ``seconds`` and ``sim_steps``.

    Raises:
        ParameterError: non-finite theta, bad estimator options (a ``ValueError``).
        LossNotFiniteError: a non-finite objective value (also a ``ValueError``).
        GradientNotFiniteError: the backward pass blew up (names the step), or the estimator
            returned a non-finite gradient (``step`` None): a non-finite gradient is never returned.
    """
    theta = check_theta(objective, theta)
    if isinstance(estimator, str):
        estimator = make_estimator(estimator, **options)
    elif options:
        raise ParameterError(f"options can only be given together with an estimator name, got an {type(estimator).__name__} "
                             f"instance and options {sorted(options)}")
    start = time.perf_counter()
    result = estimator.estimate(objective, theta, seed=seed)
    _require_a_finite_result(estimator.name, result)
    result.diagnostics.update(
        estimator=estimator.name,
        gradient_norm=float(np.linalg.norm(result.gradient)),
        seconds=time.perf_counter() - start,
    )
    return result
