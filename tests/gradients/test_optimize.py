"""Controller optimisation: it descends, logs, and resumes exactly after an interruption."""

import csv
import importlib

import numpy as np
import pytest

import simulator as sim

optimize_module = importlib.import_module("simulator.optimize")  # the function simulator.optimize shadows the module name


def objective(*, device):
    def free_sphere(num_worlds):
        b = sim.SceneBuilder(gravity=(0.0, 0.0, 0.0))
        body = b.add_body(mass=1.0, inertia=(0.01, 0.01, 0.01))
        b.add_sphere(body, radius=0.1)
        return b.finalize(num_worlds=num_worlds, device=device, precision="float64", requires_grad=True)

    return sim.ControlObjective(free_sphere, sim.OpenLoopForces([0]), [sim.PositionLoss(0, (0.3, -0.2, 0.1))], num_steps=5, dt=0.1)


@pytest.mark.parametrize("estimator,options", [("analytic", {}), ("es", {"sigma": 0.05, "population": 16})])
def test_optimize_reduces_the_loss(estimator, options, device):
    obj = objective(device=device)
    result = sim.optimize(obj, np.zeros(obj.num_parameters), estimator=estimator, iterations=60,
                          learning_rate=0.2, progress=False, **options)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.05 * losses[0]


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch, device):
    obj = objective(device=device)
    theta0 = np.zeros(obj.num_parameters)
    reference = sim.optimize(obj, theta0, estimator="es", iterations=10, learning_rate=0.1, progress=False,
                             sigma=0.05, population=8)

    calls = {"n": 0}
    real_grad = optimize_module.grad

    def grad_that_is_killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(optimize_module, "grad", grad_that_is_killed)
    first = sim.optimize(obj, theta0, estimator="es", iterations=10, learning_rate=0.1, progress=False,
                         out_dir=tmp_path, sigma=0.05, population=8)
    assert first.interrupted and len(first.history) == 7
    monkeypatch.setattr(optimize_module, "grad", real_grad)
    resumed = sim.optimize(obj, theta0, estimator="es", iterations=10, learning_rate=0.1, progress=False,
                           out_dir=tmp_path, sigma=0.05, population=8)
    assert resumed.resumed_from == 7
    assert np.array_equal(resumed.theta, reference.theta)
    with (tmp_path / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == list(range(10))
    assert np.allclose([float(r["loss"]) for r in rows], [r["loss"] for r in reference.history], rtol=1e-12)


def test_resume_refuses_a_different_configuration(tmp_path, device):
    obj = objective(device=device)
    sim.optimize(obj, np.zeros(obj.num_parameters), iterations=2, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="was written by a different run"):
        sim.optimize(obj, np.zeros(obj.num_parameters), estimator="es", iterations=4, out_dir=tmp_path, progress=False)


def test_optimize_rejects_bad_arguments(device):
    obj = objective(device=device)
    with pytest.raises(ValueError, match=r"learning_rate must be > 0, got -0\.1"):
        sim.optimize(obj, np.zeros(obj.num_parameters), learning_rate=-0.1, progress=False)
    with pytest.raises(ValueError, match=r"iterations must be a non-negative integer"):
        sim.optimize(obj, np.zeros(obj.num_parameters), iterations=-1, progress=False)


def test_resume_keeps_every_row_of_a_log_without_header_and_names_damaged_files(tmp_path, device):
    """A log whose header line was lost keeps all its rows on resume (a csv.DictReader would take
    the first row for the header); a garbage row and a truncated checkpoint raise ParameterError
    naming the file (and the line) instead of a raw csv/zip traceback."""
    obj = objective(device=device)
    theta0 = np.zeros(obj.num_parameters)
    sim.optimize(obj, theta0, iterations=3, out_dir=tmp_path, progress=False)
    log = tmp_path / "log.csv"
    lines = log.read_text().splitlines()
    assert len(lines) == 4
    log.write_text("\n".join(lines[1:]) + "\n")  # the header is gone
    resumed = sim.optimize(obj, theta0, iterations=4, out_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 3
    assert [int(row["iteration"]) for row in resumed.history] == [0, 1, 2, 3]
    with log.open() as handle:
        assert [int(r["iteration"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3]

    log.write_text(log.read_text() + "not,a,row\n")
    with pytest.raises(sim.errors.ParameterError, match=r"log\.csv line 6 is not a log row"):
        sim.optimize(obj, theta0, iterations=5, out_dir=tmp_path, progress=False)
    log.write_text("\n".join(log.read_text().splitlines()[:-1]) + "\n")

    checkpoint = tmp_path / "checkpoint.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    with pytest.raises(sim.errors.ParameterError, match=r"checkpoint\.npz cannot be read"):
        sim.optimize(obj, theta0, iterations=5, out_dir=tmp_path, progress=False)


def test_resume_drops_a_last_row_cut_short_by_a_kill(tmp_path, device):
    """A kill during the append of a row leaves a last line without its newline (and, cut early,
    with too few fields): it is the row of the iteration in flight (appended before its
    checkpoint), so the resume drops it and ends with the log of an uninterrupted run."""
    obj = objective(device=device)
    theta0 = np.zeros(obj.num_parameters)
    reference = sim.optimize(obj, theta0, iterations=4, progress=False)
    sim.optimize(obj, theta0, iterations=3, out_dir=tmp_path, progress=False)
    log = tmp_path / "log.csv"
    log.write_text(log.read_text() + "3,0.12")  # the torn row of iteration 3
    resumed = sim.optimize(obj, theta0, iterations=4, out_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 3 and np.array_equal(resumed.theta, reference.theta)
    with log.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3]
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in reference.history]
    log.write_text(log.read_text() + "4,0.1\n")  # a short row that is complete (newline): damage, named
    with pytest.raises(sim.errors.ParameterError, match=r"log\.csv line 6 is not a log row \(2 fields instead of 7\)"):
        sim.optimize(obj, theta0, iterations=5, out_dir=tmp_path, progress=False)


def test_resume_refuses_a_checkpoint_with_a_non_finite_theta(tmp_path, device):
    """A checkpoint holding a NaN theta (written by an older version) is named as the problem,
    not reported later as a bad ``theta`` argument."""
    obj = objective(device=device)
    theta0 = np.zeros(obj.num_parameters)
    sim.optimize(obj, theta0, iterations=1, out_dir=tmp_path, progress=False)
    path = tmp_path / "checkpoint.npz"
    with np.load(path) as saved:
        arrays = {name: np.array(saved[name]) for name in saved.files}
    arrays["theta"][0] = np.nan
    np.savez(path, **arrays)
    with pytest.raises(sim.errors.ParameterError, match=r"checkpoint\.npz holds a non-finite theta"):
        sim.optimize(obj, theta0, iterations=2, out_dir=tmp_path, progress=False)
