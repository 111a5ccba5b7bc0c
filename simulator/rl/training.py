"""Train, save, load, evaluate and render policies on episodic tasks.

* :func:`train`: :func:`simulator.optimize` on an :class:`EpisodeObjective` (log, checkpoint,
  resume, best-so-far), then ``policy.npz`` (the final policy) and ``best_policy.npz`` in ``out_dir``.
* :func:`save_policy` / :func:`load_policy`: a policy as ``.npz``: parameters, the task, the policy
  configuration, the observation statistics and the horizon; everything needed to run it again.
* :func:`evaluate_policy`: episodes on fresh seeds, at the training horizon or beyond it.
* :func:`record_episode`: one recorded episode (for :func:`simulator.render.save_gif`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ParameterError, check_integer, output_folder
from ..optimize import load_objective_state, objective_state_arrays
from .objective import EpisodeObjective

POLICY_FILE, BEST_POLICY_FILE, RUN_FILE = "policy.npz", "best_policy.npz", "policy.json"


def _meta(objective: EpisodeObjective) -> dict:
    """What rebuilds ``objective``: the task, the policy's configuration and the options."""
    return {"task": objective.task.name, "policy": objective.policy.config(), "horizon": objective.num_steps,
            "normalize": objective.normalizer is not None, "precision": objective.precision.name, "survival_shift": objective.survival_shift}


def _objective_from(meta: dict, device) -> EpisodeObjective:
    return EpisodeObjective(meta["task"], meta["policy"], horizon=meta["horizon"], normalize=meta["normalize"], device=device,
                            precision=meta.get("precision", "float32"), survival_shift=meta.get("survival_shift", 0.0))


def _write_policy(path: Path, meta: dict, theta: np.ndarray, state_arrays: dict) -> Path:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, theta=theta, meta=np.array(json.dumps(meta)), **state_arrays)
    os.replace(tmp, path)
    return path


def save_policy(path, objective: EpisodeObjective, theta) -> Path:
    """Write ``theta`` and everything needed to run it (see the module docstring), atomically."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    if theta.shape != (objective.num_parameters,):
        raise ParameterError(f"theta must have {objective.num_parameters} entries, got {theta.shape[0]}")
    return _write_policy(Path(path), _meta(objective), theta, objective_state_arrays(objective))


def load_policy(path, *, device=None) -> tuple[EpisodeObjective, np.ndarray]:
    """``(objective, theta)`` of a saved policy (``policy.npz``, ``best_policy.npz``), or of a
    training folder: its ``policy.npz``, or while training runs (or after it was killed) its latest
    ``checkpoint.npz`` with the run's ``policy.json``."""
    path = Path(path)
    meta_file = None
    if path.is_dir() and not (path / POLICY_FILE).exists() and (path / RUN_FILE).exists() and (path / "checkpoint.npz").exists():
        path, meta_file = path / "checkpoint.npz", path / RUN_FILE
    elif path.is_dir():
        path = path / POLICY_FILE
    if not path.exists():
        raise ParameterError(f"path must name a saved policy (.npz) or a training folder holding {POLICY_FILE}, got {str(path)!r}")
    try:
        with np.load(path) as saved:
            meta = json.loads(meta_file.read_text() if meta_file is not None else str(saved["meta"]))
            theta = np.array(saved["theta"])
            objective = _objective_from(meta, device)
            load_objective_state(objective, saved)
    except ParameterError:
        raise
    except Exception as exc:
        raise ParameterError(f"path {str(path)!r} is not a saved policy ({type(exc).__name__}: {exc})") from exc
    return objective, theta


def evaluate_policy(objective: EpisodeObjective, theta, *, episodes: int = 8, seed: int = 1_000_000, horizon: int | None = None) -> dict:
    """Run ``episodes`` episodes of ``theta`` from fresh starts (``seed``, far from the training
    seeds) for ``horizon`` steps (default: the objective's), without touching the observation
    statistics. Returns means and standard deviations over the episodes: ``return``,
    ``return_std``, ``length``, ``height`` [m], ``upright``, ``x_velocity`` [m/s]."""
    episodes = check_integer("episodes", episodes, minimum=1)
    theta = np.asarray(theta, dtype=np.float64).reshape(1, -1)
    run = objective.run(np.repeat(theta, episodes, axis=0), seed=seed, horizon=horizon, update_statistics=False)
    summary = {"episodes": episodes, "horizon": objective.num_steps if horizon is None else int(horizon),
               "return": float(run["return"].mean()), "return_std": float(run["return"].std())}
    summary.update({k: float(run[k].mean()) for k in ("length", "height", "upright", "x_velocity")})
    return summary


def record_episode(objective: EpisodeObjective, theta, *, seed: int = 1_000_000, horizon: int | None = None):
    """``(model, trajectory)`` of one episode of ``theta`` (world 0, until termination or the
    horizon): a :class:`simulator.Trajectory` of body poses for :func:`simulator.render.save_gif`."""
    import warp as wp

    from ..engine import Trajectory

    horizon = objective.num_steps if horizon is None else check_integer("horizon", horizon, minimum=1)
    theta = np.asarray(theta, dtype=np.float64).reshape(1, -1)
    episodes = objective.episodes(1)
    observations = episodes.reset(seed=seed)

    class _Pose:
        def __init__(self, body_q):
            self.body_q = wp.clone(body_q)

    states = [_Pose(episodes.state.body_q)]
    for _ in range(horizon):
        observations, _, terminated, _, _ = episodes.step(objective.policy.act(theta, objective.observe(observations)))
        if terminated[0]:
            break
        states.append(_Pose(episodes.state.body_q))
    return episodes.model, Trajectory(states=states, dt=episodes.dt, substeps=episodes.substeps)


def train(task, *, policy="linear", estimator: str = "es", iterations: int = 100, learning_rate: float = 0.02, horizon: int | None = None,
          out_dir=None, seed: int = 0, normalize: bool = True, survival_shift: float = 0.0, device=None, precision: str = "float32",
          progress: bool = True, clip_norm: float | None = None, **estimator_options):
    """Train ``policy`` on ``task`` with :func:`simulator.optimize` (``estimator`` and its options:
    for ES, ``sigma``, ``population``, ``shaping``; default ``shaping="centered_rank"``, the
    ARS-style rank-shaped update; ``survival_shift``: see :class:`EpisodeObjective`). Returns ``(objective, result)``; with ``out_dir``, the log,
    checkpoint (resumable), ``best.npz``, ``policy.json`` (what the policy is), ``policy.npz`` and
    ``best_policy.npz`` are written there."""
    from ..optimize import optimize

    objective = EpisodeObjective(task, policy, horizon=horizon, normalize=normalize, survival_shift=survival_shift, device=device,
                                 precision=precision)
    if estimator == "es":  # (not for hybrid and auto: their weighting needs the unshaped, unbiased ES estimate)
        estimator_options.setdefault("shaping", "centered_rank")
    theta0 = objective.policy.initial_parameters(seed)
    if out_dir is not None:
        (output_folder("out_dir", out_dir) / RUN_FILE).write_text(json.dumps(_meta(objective)))
    result = optimize(objective, theta0, estimator=estimator, iterations=iterations, learning_rate=learning_rate, out_dir=out_dir, seed=seed,
                      progress=progress, clip_norm=clip_norm, **estimator_options)
    if out_dir is not None:
        out = output_folder("out_dir", out_dir)
        save_policy(out / POLICY_FILE, objective, result.theta)
        best = out / "best.npz"
        if best.exists():  # best.npz holds theta with the objective's state it was evaluated with
            with np.load(best) as saved:
                state = {name: np.array(saved[name]) for name in saved.files if name.startswith("objective.")}
                _write_policy(out / BEST_POLICY_FILE, _meta(objective), np.array(saved["theta"]), state)
    return objective, result
