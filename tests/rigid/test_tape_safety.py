"""No in-place overwrite corrupts the tape: Warp's own access checker finds nothing to flag.

``wp.config.verify_autograd_array_access`` instruments every kernel and warns when an array that
an earlier recorded launch read is written again. It needs differently compiled kernels, so the
check runs in a fresh process.
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import warnings
    import numpy as np
    import warp as wp
    wp.config.verify_autograd_array_access = True
    wp.config.quiet = True
    import simulator as sim
    from simulator.scenes import make

    scene = make("tumbling_box", device="{device}", precision="float64", requires_grad=True,
                 contact=sim.ContactSettings(softness=1e-3, mode="surrogate"))
    state0 = scene.model.state()
    controls = scene.model.control_sequence(30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tape = wp.Tape()
        with tape:
            traj = sim.rollout(scene.model, state0, controls, num_steps=30, dt=scene.dt, substeps=2)
        tape.backward(grads={{traj.final.body_q: wp.ones_like(traj.final.body_q)}})
    flagged = [str(w.message) for w in caught if "corrupt" in str(w.message)]
    print("FLAGGED", len(flagged))
    for message in flagged[:5]:
        print(message)
    assert np.isfinite(controls.body_force.grad.numpy()).all()
    """
)


def test_recorded_rollout_never_overwrites_an_array_it_read(device):
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(device=device)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FLAGGED 0" in run.stdout, run.stdout + run.stderr[-3000:]
