"""MD rollouts through the engine's captured graphs: unrecorded replays (segments redone on the
host after a list overflow, divergence reports) and checkpointed backward passes replayed one
captured window at a time are bitwise those of stepping from Python. Paths are chosen with
``execution=``."""

import numpy as np
import pytest
import warp as wp

from simulator import md
from simulator.engine import _Window
from simulator.errors import SimulationDivergedError
from simulator.scenes.md_systems import bidisperse_packing, lj_fluid


def _run(replay, build, num_steps, **kwargs):
    """(final arrays, step_index, rebuilds, capacity) of a fresh system's unrecorded rollout."""
    model, state, integrator = build()
    final = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False,
                       execution="auto" if replay else "python", **kwargs).final
    assert bool(md.engine(model, integrator)._replays) == replay
    nl = integrator.neighbors
    return final.numpy(), final.step_index, nl and nl.rebuild_count, nl and nl.capacity


def _fire_packing():
    model, state = bidisperse_packing(128, small_diameter=0.6, seed=1, device="cpu", precision="float32")
    return model, state, md.FIRE(neighbors=md.NeighborList(model, skin=0.3))


def _lj_verlet(capacity=None, neighbors=True):
    def build():
        model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
        nl = md.NeighborList(model, skin=0.3, capacity=capacity) if neighbors else None
        return model, state, md.VelocityVerlet(neighbors=nl)

    return build


def _assert_same(a, b):
    arrays_a, arrays_b = a[0], b[0]
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
    assert a[1:] == b[1:]


@pytest.mark.parametrize("build", [_fire_packing, _lj_verlet(), _lj_verlet(neighbors=False)], ids=["fire", "lj", "lj_all_pairs"])
def test_replay_is_bitwise_python_stepping(build):
    num_steps = 2 * md.REPLAY_SEGMENT + 7  # two graph segments and a remainder (an odd one)
    python = _run(False, build, num_steps)
    replay = _run(True, build, num_steps)
    _assert_same(python, replay)
    if build is _fire_packing:
        assert replay[2] > 1  # rebuilt on the device


def test_replay_redoes_an_overflowed_segment_on_the_host():
    model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
    probe = md.NeighborList(model, skin=0.3)
    probe.update(state.positions)
    tight = int(probe.neighbor_count.numpy().max())  # the lattice's count: the melting fluid overflows it
    num_steps = 4 * md.REPLAY_SEGMENT  # every step inside a graph segment
    python = _run(False, _lj_verlet(capacity=tight), num_steps)
    replay = _run(True, _lj_verlet(capacity=tight), num_steps)
    assert replay[3] > tight  # grown on the host after a device overflow
    _assert_same(python, replay)


@pytest.mark.parametrize("neighbors", [True, False], ids=["list", "all_pairs"])
def test_replay_reports_the_same_divergence_step(neighbors):
    """With a list the non-finite positions stop the device-side update (redone on the host,
    where the rebuild raises); without one the graph's own divergence watch reports the step."""
    steps = []
    for execution in ("python", "auto"):
        model, state = lj_fluid(108, density=0.8, device="cpu")
        integrator = md.VelocityVerlet(neighbors=md.NeighborList(model) if neighbors else None)
        with pytest.raises(SimulationDivergedError) as info:
            md.rollout(model, state, integrator, num_steps=64, dt=0.5, record=False, execution=execution)
        steps.append(info.value.step)
    assert steps[0] == steps[1]


def _replay_graphs(model, integrator, dt=0.005) -> dict:
    """The graphs of the engine's replay of step length ``dt`` (keyed by kind, substeps, dt, ...)."""
    (replay,) = [r for key, r in md.engine(model, integrator)._replays.items() if key[2] == dt]
    (part,) = replay.ranges
    return part.graphs


def test_replay_graph_is_reused_and_recaptured_when_inputs_change():
    num_steps = md.REPLAY_SEGMENT
    model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model, skin=0.3))
    first = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False).final
    graph = _replay_graphs(model, integrator)[(num_steps, 0)]
    again = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False).final
    assert _replay_graphs(model, integrator)[(num_steps, 0)] is graph  # nothing changed: the graph is replayed again
    np.testing.assert_array_equal(first.positions.numpy(), again.positions.numpy())
    assert first.positions.ptr != again.positions.ptr  # each rollout returns its own final state
    # a new dt recaptures, and matches stepping from Python; a tail of 7 steps replays its own graph
    for dt, steps in ((0.002, num_steps), (0.005, num_steps + 7)):
        replayed = md.rollout(model, state, integrator, num_steps=steps, dt=dt, record=False).final
        graphs = _replay_graphs(model, integrator, dt)
        assert (graphs[(num_steps, 0)] is graph) == (dt == 0.005) and ((7, 0) in graphs) == (steps > num_steps)
        python = md.rollout(model, state, integrator, num_steps=steps, dt=dt, record=False, execution="python").final
        np.testing.assert_array_equal(replayed.positions.numpy(), python.positions.numpy())
        np.testing.assert_array_equal(replayed.velocities.numpy(), python.velocities.numpy())


# -- the checkpointed gradient replayed as one captured graph per window ----------------------


def _gradient(build, num_steps, *, mode, every=8, graph=None):
    """Gradients of the final potential energy w.r.t. positions, velocities and every parameter
    with a gradient, for ``mode`` "record" (full tape), "python" (checkpointed, re-simulated from
    Python) or "replay" (checkpointed, one graph per window); and the list's rebuild count."""
    model, state, integrator = build()
    nl = integrator.neighbors
    tape = wp.Tape()
    with tape:
        traj = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005,
                          checkpoint_every=None if mode == "record" else every, execution="python" if mode == "python" else "auto")
        energy = md.potential_energy(model, traj.final, nl)
    tape.backward(loss=energy)
    assert bool(md.engine(model, integrator)._windows) == (mode == "replay" if graph is None else graph)
    grads = {"positions": state.positions.grad.numpy(), "velocities": state.velocities.grad.numpy()}
    grads.update({name: a.grad.numpy() for name, a in model.parameters().items() if a.grad is not None})
    return grads, nl and nl.rebuild_count


def _fire_packing_f64(capacity=None):
    def build():
        model, state = bidisperse_packing(128, small_diameter=0.6, seed=1, device="cpu", precision="float64", requires_grad=True)
        return model, state, md.FIRE(neighbors=md.NeighborList(model, skin=0.2, capacity=capacity))

    return build


def _lj_verlet_f64(neighbors=True, capacity=None):
    def build():
        model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu", precision="float64", requires_grad=True)
        nl = md.NeighborList(model, skin=0.1, capacity=capacity) if neighbors else None
        return model, state, md.VelocityVerlet(neighbors=nl)

    return build


def _assert_same_gradients(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("build", [_fire_packing_f64(), _lj_verlet_f64(), _lj_verlet_f64(neighbors=False)],
                         ids=["fire", "lj", "lj_all_pairs"])
def test_replayed_checkpointed_gradient_is_bitwise_the_recorded_one(build):
    """Five full windows of 8 steps and a partial one of 3, with list rebuilds inside windows: the
    replayed backward, the Python one and the fully recorded tape give the same bits (every
    re-simulated step reads the list its forward step used)."""
    num_steps = 43
    record, rebuilds = _gradient(build, num_steps, mode="record")
    python, _ = _gradient(build, num_steps, mode="python")
    replay, _ = _gradient(build, num_steps, mode="replay")
    if rebuilds is not None:
        assert rebuilds > 4  # rebuilt during the rollout: inside windows of the re-simulation too
    assert np.abs(record["positions"]).max() > 0
    _assert_same_gradients(record, python)
    _assert_same_gradients(record, replay)


def test_replayed_gradient_falls_back_to_python_after_a_device_list_failure(monkeypatch):
    """A window whose device-side list update needed the host (simulated here) makes the whole
    gradient redo from Python, with the parameter gradients of the windows already done undone."""
    build, num_steps = _fire_packing_f64(), 43  # a shorter window first, then the full ones
    expected, _ = _gradient(build, num_steps, mode="record")
    window = _Window.run
    calls = []

    def failing_second(self, checkpoint, snapshot):
        calls.append(window(self, checkpoint, snapshot))
        return len(calls) < 2

    monkeypatch.setattr(_Window, "run", failing_second)  # fault injection: the second window reports a host need
    got, _ = _gradient(build, num_steps, mode="replay")
    assert len(calls) == 2
    _assert_same_gradients(expected, got)


def test_replayed_gradient_needs_one_list_capacity():
    """A list capacity grown during the forward pass (the melting lattice overflows the lattice's
    count) changes the list's shape between checkpoints: that gradient goes through Python, and
    is still exact."""
    model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
    probe = md.NeighborList(model, skin=0.1)
    probe.update(state.positions)
    tight = int(probe.neighbor_count.numpy().max())
    build = _lj_verlet_f64(capacity=tight)
    expected, _ = _gradient(build, 40, mode="record")
    got, _ = _gradient(build, 40, mode="replay", graph=False)
    _assert_same_gradients(expected, got)
    model, state, integrator = build()
    md.rollout(model, state, integrator, num_steps=40, dt=0.005, record=False)
    assert integrator.neighbors.capacity > tight


def test_window_graph_is_reused_across_gradients():
    model, state, integrator = _lj_verlet_f64()()
    nl = integrator.neighbors
    results = []
    for _ in range(2):
        tape = wp.Tape()
        with tape:
            traj = md.rollout(model, state, integrator, num_steps=24, dt=0.005, checkpoint_every=8)
            energy = md.potential_energy(model, traj.final, nl)
        tape.backward(loss=energy)
        results.append((md.engine(model, integrator)._windows[(8, 1)].graph, state.positions.grad.numpy().copy()))
        tape.zero()
    assert results[0][0] is results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def _repeated_gradients(build, num_steps, *, mode, every=8, passes=3):
    """The gradients of :func:`_gradient` from ``passes`` backward passes of one recorded tape,
    with ``tape.zero()`` between them."""
    model, state, integrator = build()
    results = []
    tape = wp.Tape()
    with tape:
        traj = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005,
                          checkpoint_every=None if mode == "record" else every, execution="python" if mode == "python" else "auto")
        energy = md.potential_energy(model, traj.final, integrator.neighbors)
    for _ in range(passes):
        tape.backward(loss=energy)
        grads = {"positions": state.positions.grad.numpy().copy(), "velocities": state.velocities.grad.numpy().copy()}
        grads.update({name: a.grad.numpy().copy() for name, a in model.parameters().items() if a.grad is not None})
        results.append(grads)
        tape.zero()
    return results


@pytest.mark.parametrize("mode", ["python", "replay"])
def test_tape_zero_clears_every_gradient_of_a_checkpointed_rollout(mode):
    """The checkpointed backward writes the parameters' gradients (the particle mass's only there:
    the energy does not read it); ``tape.zero()`` must clear them, so repeated backward passes of
    one tape give the recorded gradient every time instead of accumulating."""
    build = _lj_verlet_f64()
    (expected,) = _repeated_gradients(build, 24, mode="record", passes=1)
    assert np.abs(expected["particle_mass"]).max() > 0
    for grads in _repeated_gradients(build, 24, mode=mode):
        _assert_same_gradients(expected, grads)
