"""The rollout engine's captured paths against stepping from Python: the objective's evaluation
(ES's fast path) and its recorded forward and reverse pass (backprop's fast path) must give
bitwise the losses and gradients of the Python loop, whatever the thread count."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator.engine import Engine
from simulator.gradients import evaluate, reverse_sweep
from simulator.scenes import make

DEVICE = "cpu"  # the captured paths are compared on the CPU (CUDA graphs replay the same launches)


def ant_objective(controller, execution, num_steps=6):
    scene = lambda w: make("ant", num_worlds=w, device=DEVICE, requires_grad=True)  # noqa: E731
    model = scene(1).model
    losses = [sim.PositionLoss(0, (1.0, 0.0, 0.5)), sim.VelocityLoss(0, (0.5, 0.0, 0.0), every_step=True)]
    return sim.ControlObjective(scene, controller(model), losses, num_steps=num_steps, execution=execution)


CONTROLLERS = {
    "open_loop": lambda model: sim.OpenLoopActions(model.control().joint_act.shape[1]),
    "mlp": lambda model: sim.MLPJointPolicy.for_model(model, hidden=(8,)),
}


def rows_for(objective, worlds, seed=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, size=(worlds, objective.num_parameters))


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
@pytest.mark.parametrize("worlds", [1, 5])
def test_captured_evaluation_is_bitwise_the_python_loop(controller, worlds):
    fast, slow = (ant_objective(CONTROLLERS[controller], e) for e in ("graph", "python"))
    rows = rows_for(fast, worlds)
    expected = evaluate(slow, rows)
    for _ in range(2):  # the second call replays the cached graphs
        np.testing.assert_array_equal(evaluate(fast, rows), expected)
    assert fast._engines[worlds]._programs, "the engine path was not taken"


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_captured_gradient_is_bitwise_the_python_tape(controller):
    fast, slow = (ant_objective(CONTROLLERS[controller], e) for e in ("graph", "python"))
    rows = rows_for(fast, 3)
    expected = reverse_sweep(slow, rows)
    assert np.any(expected.gradients != 0.0)
    for _ in range(2):  # replayed again: gradients are zeroed, not accumulated
        result = reverse_sweep(fast, rows)
        np.testing.assert_array_equal(result.losses, expected.losses)
        np.testing.assert_array_equal(result.gradients, expected.gradients)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_world_ranges_on_threads_give_the_same_bits(threads):
    objective = ant_objective(CONTROLLERS["open_loop"], "graph")
    rows = rows_for(objective, 5)
    engine = objective.engine(5)
    start = objective.initial_state(5, 0)
    reference_losses, reference_grads = engine.gradient(objective, rows, start, execution="python")
    losses, grads = engine.gradient(objective, rows, start, threads=threads, execution="graph")
    np.testing.assert_array_equal(losses, reference_losses)
    np.testing.assert_array_equal(grads, reference_grads)
    np.testing.assert_array_equal(engine.evaluate(objective, rows, start, threads=threads, execution="graph"), reference_losses)


def test_auto_captures_a_shape_after_a_few_calls():
    objective = ant_objective(CONTROLLERS["open_loop"], "auto")
    rows = rows_for(objective, 2)
    results = [evaluate(objective, rows) for _ in range(Engine.CAPTURE_AFTER + 2)]
    engine = objective.engine(2)
    assert len(engine._programs) == 1  # captured once, on call CAPTURE_AFTER + 1, then reused
    for losses in results[1:]:
        np.testing.assert_array_equal(losses, results[0])


def test_captured_gradient_matches_central_differences():
    """float64, the two-sphere collision task: the replayed tape against central differences."""
    scene = lambda w: make("two_spheres", num_worlds=w, device=DEVICE, precision="float64", requires_grad=True,  # noqa: E731
                           contact=sim.ContactSettings(softness=2e-3))
    objective = sim.ControlObjective(scene, sim.OpenLoopForces([0]), [sim.PositionLoss(1, (0.6, 0.3, 0.0))],
                                     num_steps=40, dt=2.5e-3, execution="graph")
    theta = np.full(objective.num_parameters, 0.2)
    gradient = reverse_sweep(objective, theta[None, :]).gradients[0]
    eps = 1e-6
    for index in (0, 31, 62):
        bump = np.zeros_like(theta)
        bump[index] = eps
        numeric = (evaluate(objective, (theta + bump)[None, :])[0] - evaluate(objective, (theta - bump)[None, :])[0]) / (2 * eps)
        assert abs(gradient[index] - numeric) <= 1e-5 * abs(numeric) + 1e-9, (index, gradient[index], numeric)
    assert np.any(gradient != 0.0)


@pytest.mark.parametrize("execution", ["graph", "python"])
def test_evaluation_names_the_diverged_step_and_world(execution):
    scene = lambda w: make("two_spheres", num_worlds=w, device=DEVICE, requires_grad=True)  # noqa: E731
    objective = sim.ControlObjective(scene, sim.OpenLoopForces([0]), [sim.PositionLoss(1, (0.6, 0.3, 0.0))], num_steps=8, dt=2.5e-3,
                                     execution=execution)
    rows = np.zeros((4, objective.num_parameters))
    rows[2, 3 * 3] = np.nan  # world 2, the force of step 3
    rows[1, 5 * 3 + 1] = np.inf  # world 1, step 5: later
    with pytest.raises(sim.SimulationDivergedError, match="step 3 in world 2") as info:
        evaluate(objective, rows)
    assert (info.value.step, info.value.world) == (3, 2)


def test_unrecorded_rollout_inside_a_tape_is_refused():
    model = make("pendulum", device=DEVICE, requires_grad=True).model
    with wp.Tape():
        with pytest.raises(ValueError, match="record=False inside an active wp.Tape"):
            sim.rollout(model, model.state(), num_steps=3, dt=0.01, record=False)


def test_execution_is_a_parameter():
    model = make("pendulum", device=DEVICE).model
    with pytest.raises(ValueError, match="execution must be one of"):
        sim.rollout(model, model.state(), num_steps=3, dt=0.01, execution="fast")
    with pytest.raises(ValueError, match="execution='graph' needs record=False"):
        sim.rollout(model, model.state(), num_steps=3, dt=0.01, execution="graph")
    graph = sim.rollout(model, model.state(), num_steps=3, dt=0.01, record=False, execution="graph")
    python = sim.rollout(model, model.state(), num_steps=3, dt=0.01, record=False, execution="python")
    np.testing.assert_array_equal(graph.final.joint_q.numpy(), python.final.joint_q.numpy())
    assert graph.num_steps == 3 and graph.elapsed == pytest.approx(0.03)


FORKED_CHILD = textwrap.dedent("""
    import os, sys, threading, time
    import simulator.engine as engine
    together = threading.Barrier(3, timeout=30.0)  # every part waits for the others: the pool holds two live workers
    engine._run_ranges(lambda part: together.wait(), [0, 1, 2])
    time.sleep(0.05)  # both workers idle again
    pid = os.fork()
    if pid == 0:
        done = []
        engine._run_ranges(done.append, [0, 1, 2])
        os._exit(0 if sorted(done) == [0, 1, 2] else 1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threaded_replays_work_in_a_forked_child():
    """The engine's thread pool does not survive a fork: a child forked after a threaded replay
    (multiprocessing's default on Linux, a fork server) makes a new pool instead of waiting
    forever on the parent's workers. Run in a fresh interpreter (forking the test process, which
    may hold other libraries' threads, is unsafe)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    try:
        done = subprocess.run([sys.executable, "-c", FORKED_CHILD], env=env, timeout=60, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung in a threaded replay")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_model_without_joint_dofs_replays_on_threads():
    """A fixed joint gives (W, 0) joint arrays, which Warp cannot slice: the per-thread world
    ranges of a replay failed with a Warp 'Invalid indexing in slice' error (found by the fuzz
    suite). Two threads now give the bits of one."""
    b = sim.SceneBuilder()
    held = b.add_body(position=(0.0, 0.0, 1.0))
    b.add_sphere(held, radius=0.1)
    b.add_joint("fixed", -1, held)
    free = b.add_body(position=(0.3, 0.0, 1.0), velocity=(0.0, 0.5, 0.0))
    b.add_sphere(free, radius=0.1)
    model = b.finalize(num_worlds=2, precision="float32")
    assert model.state().joint_q.shape == (2, 0)
    finals = [sim.rollout(model, model.state(), num_steps=6, dt=1e-3, record=False, execution="graph", threads=threads).final
              for threads in (1, 2)]
    assert np.array_equal(finals[0].body_q.numpy(), finals[1].body_q.numpy())
    assert finals[0].body_q.numpy()[0, 1, 2] < 1.0  # the free body fell
