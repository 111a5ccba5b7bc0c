"""The command-line interface and the demos it runs."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from simulator.cli import main


def test_demo_contact_softening_quick(tmp_path, device):
    """The quick demo writes its figure and numbers; the softened tape gradient is smooth and
    agrees with finite differences of its landscape, the hard one does not everywhere."""
    assert main(["demo", "contact_softening", "--quick", "--out", str(tmp_path), "--device", device]) == 0
    assert (tmp_path / "contact_softening.png").stat().st_size > 10_000
    with (tmp_path / "contact_softening.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_setting = {}
    for row in rows:
        by_setting.setdefault(row["setting"], []).append([float(row[k]) for k in ("tape_gradient", "finite_difference")])
    assert len(by_setting) == 3
    for values in by_setting.values():
        assert np.all(np.isfinite(values))
    soft = np.array(by_setting["soft (softness 5 mm)"])[1:-1]  # interior points: centred differences
    hard = np.array(by_setting["hard (softness 0)"])[1:-1]
    soft_error = np.median(np.abs(soft[:, 0] - soft[:, 1]))
    hard_error = np.median(np.abs(hard[:, 0] - hard[:, 1]))
    assert soft_error < 0.05 * np.median(np.abs(soft[:, 1]))
    assert soft_error < hard_error


def test_cli_user_errors_are_one_line(capsys):
    assert main(["demo", "no_such_demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown demo 'no_such_demo'") and err.count("\n") == 1


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("info", "demo", "bench"):
        assert command in out


def test_optimize_command_logs_and_resumes(tmp_path, capsys, device):
    args = ["optimize", "pendulum", "--estimator", "es", "--population", "8", "--horizon", "20",
            "--out", str(tmp_path), "--device", device]
    assert main(args + ["--iterations", "3"]) == 0
    assert main(args + ["--iterations", "5"]) == 0  # resumes at iteration 3
    with (tmp_path / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3, 4]
    assert "iteration 4: loss" in capsys.readouterr().out
    assert main(["optimize", "bouncing_ball", "--out", str(tmp_path)]) == 2
    assert main(["optimize", "pendulum", "--controller", "mlp", "--horizon", "10", "--iterations", "2",
                 "--out", str(tmp_path / "mlp"), "--device", device]) == 0


def test_cli_out_naming_a_file_is_one_error_line(tmp_path, capsys):
    """--out naming an existing file: one ``error:`` line naming --out, no traceback (issue 15)."""
    target = tmp_path / "taken"
    target.write_text("x")
    for args in (["optimize", "pendulum", "--horizon", "3", "--iterations", "1", "--out", str(target)],
                 ["demo", "contact_softening", "--quick", "--out", str(target / "below")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out must name a folder (made if missing), got ") and err.count("\n") == 1, err


def test_cli_horizon_zero_is_refused(tmp_path, capsys):
    assert main(["optimize", "pendulum", "--horizon", "0", "--iterations", "1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: num_steps must be a positive integer, got 0")



def test_bench_mjcf_rows(capsys):
    """``bench mjcf``: one row per gymnasium model with steps/s, substeps, MuJoCo's steps/s and the
    ratio (two models here), and the CLI's JSON output of the same rows."""
    pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium")
    from simulator.bench import mjcf as bench

    result = bench.run(quick=True, device="cpu", models=["reacher.xml", "pusher.xml"])
    rows = {row["model"]: row for row in result["rows"]}
    assert set(rows) == {"reacher.xml", "pusher.xml"}
    assert rows["reacher.xml"]["substeps"] == 1  # no contact candidate: no contact substeps
    for row in rows.values():
        assert row["steps_per_s"] > 0 and row["mujoco_steps_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["steps_per_s"] / row["mujoco_steps_per_s"])
