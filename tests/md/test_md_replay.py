"""Unrecorded rollouts replayed as captured graphs: bitwise those of stepping from Python,
including segments redone on the host (list overflow) and divergence reports."""

import importlib

import numpy as np
import pytest

from simulator import md
from simulator.errors import SimulationDivergedError
from simulator.scenes.md_systems import bidisperse_packing, lj_fluid

rollout_module = importlib.import_module("simulator.md.rollout")


def _run(monkeypatch, replay, build, num_steps, **kwargs):
    """(final arrays, step_index, rebuilds, capacity) of a fresh system's unrecorded rollout."""
    model, state, integrator = build()
    with monkeypatch.context() as m:
        if not replay:
            m.setattr(rollout_module, "REPLAY_SEGMENT", 10**9)
        assert rollout_module._can_replay(model, integrator, num_steps) == replay
        final = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False, **kwargs).final
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
def test_replay_is_bitwise_python_stepping(monkeypatch, build):
    num_steps = 2 * rollout_module.REPLAY_SEGMENT + 7  # two graph segments and a remainder
    python = _run(monkeypatch, False, build, num_steps)
    replay = _run(monkeypatch, True, build, num_steps)
    _assert_same(python, replay)
    if build is _fire_packing:
        assert replay[2] > 1  # rebuilt on the device


def test_replay_redoes_an_overflowed_segment_on_the_host(monkeypatch):
    model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
    probe = md.NeighborList(model, skin=0.3)
    probe.update(state.positions)
    tight = int(probe.neighbor_count.numpy().max())  # the lattice's count: the melting fluid overflows it
    num_steps = 4 * rollout_module.REPLAY_SEGMENT  # every step inside a graph segment
    python = _run(monkeypatch, False, _lj_verlet(capacity=tight), num_steps)
    replay = _run(monkeypatch, True, _lj_verlet(capacity=tight), num_steps)
    assert replay[3] > tight  # grown on the host after a device overflow
    _assert_same(python, replay)


def test_replay_reports_the_same_divergence_step(monkeypatch):
    def build():
        model, state = lj_fluid(108, density=0.8, device="cpu")
        return model, state, md.VelocityVerlet(neighbors=md.NeighborList(model))

    steps = []
    for replay in (False, True):
        model, state, integrator = build()
        with monkeypatch.context() as m:
            if not replay:
                m.setattr(rollout_module, "REPLAY_SEGMENT", 10**9)
            with pytest.raises(SimulationDivergedError) as info:
                md.rollout(model, state, integrator, num_steps=64, dt=0.5, record=False)
        steps.append(info.value.step)
    assert steps[0] == steps[1]


def test_replay_graph_is_reused_and_recaptured_when_inputs_change(monkeypatch):
    num_steps = rollout_module.REPLAY_SEGMENT
    model, state = lj_fluid(108, density=0.8, temperature=1.0, device="cpu")
    integrator = md.VelocityVerlet(neighbors=md.NeighborList(model, skin=0.3))
    first = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False).final
    graph = integrator._replay._graphs[num_steps]
    again = md.rollout(model, state, integrator, num_steps=num_steps, dt=0.005, record=False).final
    assert integrator._replay._graphs[num_steps] is graph  # nothing changed: the graph is replayed again
    np.testing.assert_array_equal(first.positions.numpy(), again.positions.numpy())
    assert first.positions.ptr != again.positions.ptr  # each rollout returns its own final state
    # a new dt recaptures, and matches stepping from Python; a tail of 7 steps replays a 6-step
    # graph and steps the last one from Python
    for dt, steps in ((0.002, num_steps), (0.005, num_steps + 7)):
        replayed = md.rollout(model, state, integrator, num_steps=steps, dt=dt, record=False).final
        with monkeypatch.context() as m:
            m.setattr(rollout_module, "REPLAY_SEGMENT", 10**9)
            python = md.rollout(model, state, integrator, num_steps=steps, dt=dt, record=False).final
        np.testing.assert_array_equal(replayed.positions.numpy(), python.positions.numpy())
        np.testing.assert_array_equal(replayed.velocities.numpy(), python.velocities.numpy())
