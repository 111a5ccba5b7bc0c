"""The hand-written adjoint of the articulation step's sparse Cholesky solve against central
differences of the solve itself (float64), on the ant's dof tree (a free root and two-dof legs)."""

import numpy as np
import warp as wp

import simulator as sim
from simulator import scenes
from simulator.articulation import launch
from simulator.kernels.articulation import articulation_kernels


def test_solve_adjoint_matches_central_differences(device):
    model = scenes.make("ant", num_worlds=2, device=device, precision="float64", requires_grad=True).model
    art, n = model.articulation, int(model.articulation.num_dofs)
    state, out = model.state(), model.output_state()
    sim.step(model, state, out, model.control(), 0.001)  # fills h, rhs and diag of a real step
    work = out.joint_work
    kernels = articulation_kernels(wp.float64)
    tables = [getattr(art, name) for name in launch.SOLVE_TABLES] + [n]
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((model.num_worlds, n))

    def objective() -> float:  # sum of weights * qdd over the worlds
        wp.launch(kernels.articulation_solve, dim=model.num_worlds, inputs=tables + [work.h, work.rhs, work.diag],
                  outputs=[work.l, work.y, work.qdd], device=device, record_tape=False)
        return float(np.sum(weights * work.qdd.numpy()))

    tape = wp.Tape()
    with tape:
        objective()
        launch._record_solve_adjoint(tape, model, kernels.articulation_solve_adjoint, tables, work)
    work.qdd.grad.assign(weights)
    tape.backward()

    # every entry the solve reads: the stored lower triangle of H (pairs of dof d and the dofs
    # above it), the diagonal terms and the right-hand side
    pair_start, pair_col = art.dof_pair_start.numpy(), art.pair_col.numpy()
    entries = [(work.h, d * n + pair_col[p]) for d in range(n) for p in range(pair_start[d], pair_start[d + 1])]
    entries += [(work.diag, d) for d in range(n)] + [(work.rhs, d) for d in range(n)]
    assert len(entries) > 3 * n  # off-diagonal pairs are covered
    eps = 1e-6
    for array, index in entries:
        for world in range(model.num_worlds):
            values = array.numpy()
            base = values[world, index]
            values[world, index] = base + eps
            array.assign(values)
            plus = objective()
            values[world, index] = base - eps
            array.assign(values)
            minus = objective()
            values[world, index] = base
            array.assign(values)
            numeric = (plus - minus) / (2 * eps)
            analytic = array.grad.numpy()[world, index]
            assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric)), (index, world, analytic, numeric)
