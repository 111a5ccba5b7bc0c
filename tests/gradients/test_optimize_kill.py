"""Kill-and-resume: ``optimize`` killed 50 times at random points (SIGKILL and SIGINT), resumed from
the same ``out_dir`` each time, ends with the log and the parameters of an uninterrupted run.

The workers are forked from one warm server process (tests/gradients/optimize_worker.py), so a
kill costs a fork instead of an interpreter start and a kernel-cache load."""

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("optimize_worker.py")
ITERATIONS = 1000
KILLS = 50
COMPARED = ("iteration", "loss", "gradient_norm", "gradient_variance", "sim_steps", "estimator")  # all but seconds

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker server forks")


class Server:
    def __init__(self):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", KILL_TEST_ITERATIONS=str(ITERATIONS))  # forking after CUDA init is unsafe
        self.process = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        word, value = self._answer()
        assert word == "ready", value
        self.seconds_per_iteration = float(value)

    def _answer(self):
        while True:  # answers start with "@@"; skip anything else Warp prints
            line = self.process.stdout.readline()
            assert line, f"the worker server exited (code {self.process.poll()})"
            if line.startswith("@@ "):
                _, word, value = line.split()
                return word, value

    def start(self, out_dir) -> int:
        self.process.stdin.write(f"run {out_dir}\n")
        self.process.stdin.flush()
        word, value = self._answer()
        assert word == "pid"
        return int(value)

    def reap(self, pid: int, limit: float = 60.0) -> int:
        """The child's wait status; a child still running after ``limit`` seconds (a deadlock) is
        killed and the test fails."""
        hung = []

        def kill():
            hung.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(limit, kill)
        timer.start()
        try:
            self.process.stdin.write("reap\n")
            self.process.stdin.flush()
            word, value = self._answer()
        finally:
            timer.cancel()
        assert not hung, f"worker {pid} hung: no exit within {limit} s"
        assert word == "status"
        return int(value)

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)


def read_log(out_dir: Path) -> list[dict]:
    with (out_dir / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_checkpoint(out_dir: Path) -> dict:
    with np.load(out_dir / "checkpoint.npz") as saved:
        return {name: np.array(saved[name]) for name in ("theta", "iteration", "m", "v", "t")}


def check_consistent(out_dir: Path) -> int:
    """The log holds iterations 0, 1, ... in order, each once, up to the checkpoint's iteration
    (plus at most the row of the iteration that was in flight); returns the checkpoint's iteration."""
    done = int(read_checkpoint(out_dir)["iteration"]) if (out_dir / "checkpoint.npz").exists() else 0
    iterations = [int(row["iteration"]) for row in read_log(out_dir)] if (out_dir / "log.csv").exists() else []
    assert iterations == list(range(len(iterations))), f"rows lost or duplicated: {iterations}"
    assert done <= len(iterations) <= done + 1, (done, iterations)
    return done


def test_optimize_killed_50_times_resumes_to_the_uninterrupted_result(tmp_path):
    server = Server()
    try:
        reference, killed = tmp_path / "reference", tmp_path / "killed"
        status = server.reap(server.start(reference))
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

        rng = np.random.default_rng(15)
        # at most ~4 iterations per kill (2 on average): the 50 kills land inside the 1000 iterations,
        # not after them, even if the machine runs a few times faster than when it was measured
        longest = 4.0 * server.seconds_per_iteration + 0.002
        landed, by_signal, progress = 0, {signal.SIGKILL: 0, signal.SIGINT: 0}, []
        for _ in range(KILLS):
            sig = signal.SIGINT if rng.random() < 0.3 else signal.SIGKILL
            pid = server.start(killed)
            time.sleep(rng.uniform(0.0, longest))
            os.kill(pid, sig)
            status = server.reap(pid)
            assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 2), "a resume failed (see the worker's stderr)"
            if sig == signal.SIGKILL:
                hit = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            else:
                hit = os.WIFEXITED(status) and os.WEXITSTATUS(status) in (3, 4)
            landed += hit
            by_signal[sig] += hit
            progress.append(check_consistent(killed))
        assert landed == KILLS, f"only {landed} of {KILLS} kills landed before the run finished"
        assert 0 < progress[-1] < ITERATIONS and by_signal[signal.SIGINT] > 0, (progress, by_signal)

        status = server.reap(server.start(killed))
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        server.close()

    expected, got = read_log(reference), read_log(killed)
    assert [int(r["iteration"]) for r in got] == list(range(ITERATIONS))
    assert [[r[c] for c in COMPARED] for r in got] == [[r[c] for c in COMPARED] for r in expected]
    want, have = read_checkpoint(reference), read_checkpoint(killed)
    for name in want:
        assert np.array_equal(have[name], want[name]), name
