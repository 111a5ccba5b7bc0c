"""Controller optimisation with any gradient estimator: Adam, progress, CSV log, checkpoint/resume.

``optimize(objective, theta0, estimator=..., iterations=..., out_dir=...)`` runs gradient descent
on a rollout objective. With ``out_dir`` it writes

* ``log.csv``: one row per finished iteration (``iteration, loss, gradient_norm,
  gradient_variance, seconds, sim_steps, estimator``), appended as it goes;
* ``checkpoint.npz``: parameters, optimiser moments, the iteration count and the objective's own
  state (``objective.state_dict()`` where it has one, e.g. running observation statistics) after
  every iteration, written atomically (a temporary file then a rename);
* ``best.npz``: the parameters with the lowest loss estimate so far (``theta``, ``loss``,
  ``iteration`` and the objective's state when they were evaluated), written atomically.

Running the same call again resumes from the checkpoint: a killed run loses at most the
iteration that was in flight, and finished rows of the log are never lost or duplicated. The row
of an iteration is appended before its checkpoint is written, so on resume the log is cut back to
the checkpoint's iteration (a row, or a row cut short, of the iteration in flight is dropped).
``tests/gradients/test_optimize_kill.py`` kills a run 50 times (SIGKILL and SIGINT) and checks
the log and the parameters against an uninterrupted run. A non-finite gradient or update raises
:class:`simulator.GradientNotFiniteError` before anything of that iteration is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .errors import GradientNotFiniteError, ParameterError, check_finite, output_folder
from .gradients import Estimator, grad
from .gradients.objective import RolloutObjective, check_theta

LOG_COLUMNS = ("iteration", "loss", "gradient_norm", "gradient_variance", "seconds", "sim_steps", "estimator")


@dataclass
class OptimizationResult:
    """Final parameters and the per-iteration history (the rows of ``log.csv``)."""

    theta: np.ndarray
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    interrupted: bool = False


class Adam:
    """Adam (Kingma and Ba, 2015) on a numpy parameter vector."""

    def __init__(self, size: int, *, learning_rate: float = 1e-2, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.learning_rate, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def update(self, theta: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient * gradient
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return theta - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict:
        return {"m": self.m, "v": self.v, "t": np.array(self.t)}

    def load(self, state) -> None:
        self.m, self.v, self.t = np.array(state["m"]), np.array(state["v"]), int(state["t"])


def objective_state_arrays(objective) -> dict:
    """The objective's own state as ``objective.<name>`` arrays, as checkpoints store it (none for a
    stateless objective)."""
    state = objective.state_dict() if hasattr(objective, "state_dict") else {}
    return {f"objective.{name}": np.asarray(value) for name, value in state.items()}


def load_objective_state(objective, saved) -> None:
    """Restore the objective's state from the ``objective.<name>`` entries of ``saved`` (a dict or
    an open ``.npz``), the inverse of :func:`objective_state_arrays`."""
    state = {name[len("objective."):]: np.array(saved[name]) for name in saved.keys() if name.startswith("objective.")}
    if state and hasattr(objective, "load_state_dict"):
        objective.load_state_dict(state)


def _save_atomically(path: Path, **arrays) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _write_checkpoint(path: Path, theta: np.ndarray, iteration: int, adam: Adam, config: dict, objective) -> None:
    _save_atomically(path, theta=theta, iteration=np.array(iteration), config=np.array(json.dumps(config)), **adam.state(),
                     **objective_state_arrays(objective))


def _read_checkpoint(path: Path, out_dir) -> dict:
    """The arrays of ``checkpoint.npz``, or a :class:`ParameterError` naming the file when it cannot
    be read (written atomically by this module, so only an outside change damages it)."""
    try:
        with np.load(path) as saved:
            arrays = {name: np.array(saved[name]) for name in ("theta", "iteration", "config", "m", "v", "t")}
            arrays.update({name: np.array(saved[name]) for name in saved.files if name.startswith("objective.")})
        arrays["config"] = json.loads(str(arrays["config"]))
    except Exception as exc:  # a truncated zip, a missing key, a config that is not JSON
        raise ParameterError(f"out_dir={str(out_dir)!r}: {path} cannot be read ({type(exc).__name__}: {exc}); delete it to start "
                             f"over (log.csv keeps the finished rows)") from exc
    for name in ("theta", "m", "v"):
        if not np.all(np.isfinite(arrays[name])):
            raise ParameterError(f"out_dir={str(out_dir)!r}: {path} holds a non-finite {name} ({arrays[name].tolist()}); it was "
                                 f"not written by this version of optimize, which never saves one: delete it to start over")
    return arrays


def _read_log(path: Path, upto: int) -> list[dict]:
    """The rows of iterations ``< upto`` of ``log.csv`` (a missing header line is tolerated: the
    columns are fixed; so is a last line cut short without its newline); a row that does not parse
    raises :class:`ParameterError` naming its line."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        text = handle.read()
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if lines and not text.endswith("\n") and not _parses(lines[-1]):
        # an append cut short by a kill: the row of the iteration in flight, whose checkpoint was
        # never written (the row is appended first), so it is dropped like any row past ``upto``
        lines.pop()
    if lines and tuple(lines[0]) == LOG_COLUMNS:
        lines = lines[1:]
        first_line = 2
    else:
        first_line = 1
    rows = []
    for number, values in enumerate(lines, start=first_line):
        if not values:
            continue
        problem = f"{len(values)} fields instead of {len(LOG_COLUMNS)}" if len(values) != len(LOG_COLUMNS) else None
        row = dict(zip(LOG_COLUMNS, values))
        try:
            iteration = int(row["iteration"])
            float(row["loss"])
        except (KeyError, ValueError) as exc:
            problem = problem or str(exc)
        if problem is not None:
            raise ParameterError(f"{path} line {number} is not a log row ({problem}): {values!r}; remove the line (the checkpoint "
                                 f"holds the parameters) or delete the log")
        if iteration < upto:
            rows.append(row)
    return rows


def _parses(values) -> bool:
    if len(values) != len(LOG_COLUMNS):
        return False
    try:
        int(values[0])
        float(values[1])
    except ValueError:
        return False
    return True


def _write_log(path: Path, rows: list[dict]) -> None:
    """Write ``log.csv`` with its header and ``rows`` atomically (a temporary file then a rename)."""
    tmp = path.with_suffix(".tmp.csv")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def optimize(
    objective: RolloutObjective,
    theta0,
    *,
    estimator: str | Estimator = "analytic",
    iterations: int = 100,
    learning_rate: float = 1e-2,
    out_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    clip_norm: float | None = None,
    callback=None,
    **estimator_options,
) -> OptimizationResult:
    """Minimise ``objective`` from ``theta0`` with Adam and the chosen gradient estimator.

    Args:
        objective: a rollout objective (e.g. :class:`simulator.ControlObjective`).
        theta0: initial parameters ``(P,)`` (ignored when resuming from a checkpoint).
        estimator: ``analytic``, ``truncated``, ``es``, ``hybrid``, ``auto``, a registered name or an
            :class:`simulator.gradients.Estimator` instance (recorded in the checkpoint by its class).
        iterations: total number of iterations (including those already done when resuming).
        learning_rate: Adam step size.
        out_dir: folder for ``log.csv`` and ``checkpoint.npz``; None keeps everything in memory.
        seed: iteration ``i`` uses seed ``seed + i`` (ES noise, random initial states), so a
            resumed run draws the same noise as an uninterrupted one.
        progress: show a tqdm progress bar (False: tqdm is not used at all).
        clip_norm: scale every gradient estimate down to this Euclidean norm at most before the
            Adam step (any estimator); None: no clipping.
        callback: ``callback(iteration, theta, estimate)`` after each finished iteration (``theta``
            the updated parameters, ``estimate`` the :class:`GradientResult`); returning True
            stops the run there (e.g. a simulation or time budget).
        **estimator_options: passed to the estimator (``sigma``, ``population``, ``window``, ...).

    A ``KeyboardInterrupt`` stops after saving the last finished iteration
    (``result.interrupted`` is True).
    """
    theta = check_theta(objective, theta0).copy()
    if not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ParameterError(f"iterations must be a non-negative integer, got {iterations!r}")
    learning_rate = float(check_finite("learning_rate", learning_rate))
    if learning_rate <= 0:
        raise ParameterError(f"learning_rate must be > 0, got {learning_rate!r}")
    if clip_norm is not None:
        clip_norm = float(check_finite("clip_norm", clip_norm))
        if clip_norm <= 0:
            raise ParameterError(f"clip_norm must be > 0 or None, got {clip_norm!r}")
    adam = Adam(theta.shape[0], learning_rate=learning_rate)
    estimator_name = estimator if isinstance(estimator, str) else f"{type(estimator).__qualname__}:{getattr(estimator, 'name', '')}"
    config = {"estimator": estimator_name, "num_parameters": int(objective.num_parameters), "learning_rate": learning_rate,
              "seed": int(seed), "options": {k: repr(v) for k, v in sorted(estimator_options.items())}}
    if clip_norm is not None:
        config["clip_norm"] = clip_norm

    start, history = 0, []
    log_path = checkpoint_path = best_path = None
    best = math.inf
    if out_dir is not None:
        out = output_folder("out_dir", out_dir)
        log_path, checkpoint_path, best_path = out / "log.csv", out / "checkpoint.npz", out / "best.npz"
        if checkpoint_path.exists():
            saved = _read_checkpoint(checkpoint_path, out_dir)
            saved_config = saved["config"]
            if saved_config != config:
                raise ParameterError(f"out_dir={str(out_dir)!r}: {checkpoint_path} was written by a different run ({saved_config}; "
                                     f"this run: {config}); use another out_dir or delete it to start over")
            theta, start = np.array(saved["theta"]), int(saved["iteration"])
            adam.load(saved)
            load_objective_state(objective, saved)
        history = _read_log(log_path, start)
        best = min((float(row["loss"]) for row in history), default=math.inf)
        _write_log(log_path, history)  # drops a row of an unfinished iteration; restores a lost header

    result = OptimizationResult(theta=theta, history=history, resumed_from=start)
    # no tqdm object at all without a bar: even a disabled one takes tqdm's lock, a semaphore shared
    # with every process forked from this one, which a process killed while holding it (SIGKILL in
    # a worker pool) leaves held, so the next worker to start a run waits forever
    bar = tqdm(range(start, iterations), initial=start, total=iterations, desc=f"optimize ({estimator_name})") if progress else None
    try:
        for iteration in bar if bar is not None else range(start, iterations):
            evaluated = objective_state_arrays(objective)  # the objective's state theta is evaluated with
            estimate = grad(objective, theta, estimator=estimator, seed=seed + iteration, **estimator_options)
            gradient = estimate.gradient
            norm = float(np.linalg.norm(gradient))
            if clip_norm is not None and norm > clip_norm:
                gradient = gradient * (clip_norm / norm)
            updated = adam.update(theta, gradient)
            if not np.all(np.isfinite(updated)):  # never logged nor checkpointed: a resume would start from it
                raise GradientNotFiniteError(f"iteration {iteration}: the Adam update gave a non-finite theta (gradient norm "
                                             f"{estimate.diagnostics['gradient_norm']!r}); nothing of this iteration was written, the "
                                             f"checkpoint holds the parameters before it", step=None)
            if out_dir is not None and estimate.value < best:
                best = estimate.value
                _save_atomically(best_path, theta=theta, loss=np.array(estimate.value), iteration=np.array(iteration), **evaluated)
            theta = updated
            row = {
                "iteration": iteration,
                "loss": estimate.value,
                "gradient_norm": estimate.diagnostics["gradient_norm"],
                "gradient_variance": float(np.sum(estimate.variance)) if estimate.variance is not None else "",
                "seconds": estimate.diagnostics["seconds"],
                "sim_steps": estimate.diagnostics["sim_steps"],
                "estimator": estimate.diagnostics.get("choice", estimate.diagnostics["estimator"]),
            }
            history.append(row)
            if out_dir is not None:
                # the row first: a kill between the two writes only repeats this iteration
                with log_path.open("a", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=LOG_COLUMNS).writerow(row)
                _write_checkpoint(checkpoint_path, theta, iteration + 1, adam, config, objective)
            if bar is not None:
                bar.set_postfix(loss=f"{estimate.value:.4g}", grad=f"{row['gradient_norm']:.3g}")
            if callback is not None and callback(iteration, theta, estimate):
                break
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if bar is not None:
            bar.close()
    result.theta = theta
    return result
