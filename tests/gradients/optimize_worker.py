"""A fork server for the kill-and-resume test (tests/gradients/test_optimize_kill.py).

Run as a script: it imports the package, builds a small pendulum objective and runs a warm-up
optimisation once (so Warp's kernels are loaded and the graphs captured), then serves commands,
one a line, on stdin (its answers on stdout start with ``@@``; other output is Warp's):

* ``run OUT_DIR``: fork a child that runs :func:`simulator.optimize` into ``OUT_DIR`` (resuming
  from it) and exits 0 when it finished every iteration, 3 when ``optimize`` returned
  interrupted (SIGINT caught inside the loop), 4 for a KeyboardInterrupt that escaped it
  (SIGINT before or after the loop) and 2 for any other exception (printed); answers ``pid N``. The child is not reaped yet, so its pid
  cannot be reused before the test has signalled it.
* ``reap``: wait for that child; answers ``status S`` (the raw ``waitpid`` status).
* ``quit``.

Every child forks from the same warm process, so a kill costs a fork, not an interpreter start.
"""

import os
import signal
import sys
import tempfile
import time
import traceback

import numpy as np
import warp as wp

wp.config.quiet = True

import simulator as sim  # noqa: E402

ITERATIONS = int(os.environ.get("KILL_TEST_ITERATIONS", "400"))
OPTIONS = {"estimator": "es", "sigma": 0.1, "population": 4, "learning_rate": 0.05, "seed": 7, "progress": False}


def run(objective, out_dir, iterations=ITERATIONS) -> int:
    try:
        result = sim.optimize(objective, np.zeros(objective.num_parameters), iterations=iterations, out_dir=out_dir, **OPTIONS)
    except KeyboardInterrupt:
        return 4
    except Exception:  # a resume that failed (a damaged log or checkpoint): the test fails on exit code 2
        traceback.print_exc()
        return 2
    return 3 if result.interrupted else 0


def main() -> None:
    objective = sim.SceneTaskObjective("pendulum", num_steps=40)
    with tempfile.TemporaryDirectory() as scratch:
        run(objective, scratch, iterations=3)  # kernels loaded, graphs captured
        start = time.perf_counter()
        run(objective, scratch, iterations=23)
        seconds_per_iteration = (time.perf_counter() - start) / 20
    print(f"@@ ready {seconds_per_iteration:.6f}", flush=True)
    child = None
    # SIGINT stays blocked in this server; a child unblocks it inside its try, so a signal that
    # arrives early is delivered there (never in a copy of this loop)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            child = os.fork()
            if child == 0:
                code = 4
                try:
                    signal.signal(signal.SIGINT, signal.default_int_handler)  # raises KeyboardInterrupt
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
                    code = run(objective, command[1])
                except KeyboardInterrupt:
                    code = 4
                finally:
                    os._exit(code)
            print(f"@@ pid {child}", flush=True)
        elif command[0] == "reap":
            _, status = os.waitpid(child, 0)
            print(f"@@ status {status}", flush=True)
        elif command[0] == "quit":
            break


if __name__ == "__main__":
    main()
