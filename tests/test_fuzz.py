"""Property-based fuzzing (hypothesis) of build -> recorded rollout -> backward for random rigid
scenes, MJCF snippets and MD systems (with values written after ``finalize`` into parameters and
initial states), and of the gradient estimators on the robot tasks.

The property: every example either raises one of the package's exceptions
(:class:`simulator.SimulatorError`: ``ParameterError``, ``SimulationDivergedError``,
``GradientNotFiniteError``, ...; also ``MJCFWarning`` warnings are fine) or returns finite
results: final state, loss and every gradient. Anything else fails: a Warp-level error, another
exception, a crash, or a silent NaN or inf. Step counts are small, so an example never hangs.

Profiles (see docs/errors.md): the default ``ci`` profile runs a fixed (derandomized) set of
examples in well under two minutes; ``SIMULATOR_FUZZ_PROFILE=nightly`` runs 1,000 random examples
per test. ``SIMULATOR_FUZZ_REPORT=1`` (with ``pytest -s``) prints how the examples ended.
"""

from __future__ import annotations

import collections
import os
import warnings

import numpy as np
import pytest
import warp as wp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator as sim
from simulator import md
from simulator.errors import SimulatorError

settings.register_profile("simulator-fuzz-ci", max_examples=50, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("simulator-fuzz-nightly", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("SIMULATOR_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "nightly"):
    raise sim.ParameterError(f"SIMULATOR_FUZZ_PROFILE must be 'ci' or 'nightly', got {PROFILE!r}")
FUZZ = settings.get_profile(f"simulator-fuzz-{PROFILE}")

BAD_NUMBERS = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e30, 1e-30]


def log_floats(low, high):
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: float(10.0**e))


def one_in(draw, rate: int) -> bool:
    """True about once in ``rate`` draws (a value in the middle of the range: hypothesis favours
    the ends of a range, which would make "rare" common)."""
    return draw(st.integers(1, rate)) == rate // 2 + 1


@st.composite
def maybe_bad(draw, good, rate=12):
    """A value of ``good``, or (about one draw in ``rate``) a hostile number."""
    if one_in(draw, rate):
        return draw(st.sampled_from(BAD_NUMBERS))
    return draw(good)


def vectors(low, high):
    return st.tuples(*(st.floats(low, high) for _ in range(3)))


def finite(name, values) -> None:
    values = np.asarray(values, dtype=np.float64)
    assert np.all(np.isfinite(values)), f"silent non-finite {name}: {values.ravel()[:8]}"


OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)  # kind -> outcome -> count


def exercise(run, kind: str = "check"):
    """``run()`` under the property: a package exception passes, any other exception fails, and
    every array it returns (name -> values) must be finite. Outcomes are counted in ``OUTCOMES``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MJCFWarning and friends are allowed
        try:
            outputs = run()
        except SimulatorError as error:
            OUTCOMES[kind][type(error).__name__ + ": " + str(error)[:60]] += 1
            return
    for name, values in outputs.items():
        finite(name, values)
    OUTCOMES[kind]["finite"] += 1


def gradients_of(arrays: dict) -> dict:
    return {f"d/d {name}": a.grad.numpy() for name, a in arrays.items() if a is not None and a.grad is not None}


# ---------------------------------------------------------------------------------------- rigid
SHAPES = ("sphere", "box", "capsule")
JOINTS = (None, "revolute", "prismatic", "ball", "fixed")


@st.composite
def rigid_scenes(draw):
    bodies, jointed = [], []
    for index in range(draw(st.integers(1, 3))):
        shapes = [{
            "kind": draw(st.sampled_from(SHAPES)),
            "size": draw(maybe_bad(log_floats(1e-4, 0.4))),
            "half_height": draw(maybe_bad(log_floats(1e-4, 0.4))),
            "offset": draw(vectors(-0.1, 0.1)),
            "density": draw(maybe_bad(log_floats(10.0, 1e4), rate=30)),
        } for _ in range(draw(st.integers(1, 2)))]
        joint = draw(st.sampled_from(JOINTS))
        if joint is not None:
            parent = draw(st.sampled_from([-1, *jointed]))  # a parent body must hang from a joint itself
            jointed.append(index)
        bodies.append({
            "position": draw(st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(0.02, 1.5))),
            "velocity": draw(vectors(-3, 3)),
            "angular_velocity": draw(vectors(-5, 5)),
            "mass": None if draw(st.booleans()) else draw(maybe_bad(log_floats(1e-6, 1e2) if one_in(draw, 10)
                                                                    else log_floats(0.05, 1e2))),
            "shapes": shapes,
            "joint": None if joint is None else {
                "kind": joint,
                "parent": parent,
                "axis": (0.0, 0.0, 0.0) if one_in(draw, 20) else draw(st.sampled_from([(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0)])),
                "damping": draw(maybe_bad(st.floats(0.0, 5.0), rate=30)),
                "stiffness": draw(maybe_bad(st.floats(0.0, 1e3), rate=30)),
                "limit": draw(st.one_of(st.none(), st.tuples(st.floats(-2, 0), st.floats(0, 2)))),
            },
        })
    return {
        "gravity": draw(st.sampled_from([(0.0, 0.0, -9.81), (0.0, 0.0, 0.0), (2.0, 0.0, -9.81)])),
        "stiffness": draw(maybe_bad(log_floats(1e2, 1e6), rate=20)),
        "damping": draw(maybe_bad(st.floats(0.0, 100.0), rate=30)),
        "friction": draw(maybe_bad(st.floats(0.0, 1.5), rate=30)),
        "ground": draw(st.booleans()),
        "bodies": bodies,
        "precision": draw(st.sampled_from(["float32", "float64"])),
        "worlds": draw(st.integers(1, 2)),
        "dt": draw(maybe_bad(log_floats(1e-4, 1e-1) if one_in(draw, 5) else log_floats(1e-4, 4e-3), rate=20)),
        "substeps": draw(st.integers(1, 4)),
        "steps": draw(st.one_of(st.integers(1, 12), st.integers(1, 40))),
        "checkpoint_every": draw(st.sampled_from([None, None, 3])),
        "force": draw(maybe_bad(st.floats(-1e3, 1e3), rate=10)) if draw(st.booleans()) else None,
        "edit": draw(edits()) if one_in(draw, 6) else None,
    }


@st.composite
def edits(draw):
    """A value written after ``finalize`` into a model parameter or the initial state: the
    entry is picked by position (wrapped around the array)."""
    return {
        "target": draw(st.sampled_from(["parameter", "state"])),
        "array": draw(st.integers(0, 20)),
        "entry": draw(st.integers(0, 10**6)),
        "value": draw(st.sampled_from(BAD_NUMBERS + [1e6, 1e-6, 2.0, 0.5])),
    }


def apply_edit(edit, arrays: dict) -> None:
    if edit is None:
        return
    names = sorted(name for name, array in arrays.items() if array is not None and array.size > 0)
    array = arrays[names[edit["array"] % len(names)]]
    values = array.numpy().copy()
    flat = values.reshape(-1)
    flat[edit["entry"] % flat.size] = edit["value"]
    array.assign(values)


def build_rigid(recipe, device):
    b = sim.SceneBuilder(gravity=recipe["gravity"], stiffness=recipe["stiffness"], damping=recipe["damping"],
                         friction=recipe["friction"])
    if recipe["ground"]:
        b.add_ground_plane()
    for spec in recipe["bodies"]:
        body = b.add_body(position=spec["position"], velocity=spec["velocity"], angular_velocity=spec["angular_velocity"],
                          mass=spec["mass"])
        for shape in spec["shapes"]:
            options = {"position": shape["offset"], "density": shape["density"]}
            if shape["kind"] == "sphere":
                b.add_sphere(body, radius=shape["size"], **options)
            elif shape["kind"] == "box":
                b.add_box(body, half_extents=(shape["size"], shape["half_height"], shape["size"]), **options)
            else:
                b.add_capsule(body, radius=shape["size"], half_height=shape["half_height"], **options)
        joint = spec["joint"]
        if joint is not None:
            options = {"damping": joint["damping"]}
            if joint["kind"] in ("revolute", "prismatic"):
                options.update(axis=joint["axis"], stiffness=joint["stiffness"], limit=joint["limit"])
            b.add_joint(joint["kind"], joint["parent"], body, **options)
    return b.finalize(num_worlds=recipe["worlds"], device=device, precision=recipe["precision"], requires_grad=True)


def run_rigid(recipe, device):
    model = build_rigid(recipe, device)
    state = model.state(requires_grad=True)
    edit = recipe["edit"]
    if edit is not None:
        apply_edit(edit, model.parameters() if edit["target"] == "parameter" else state.arrays())
    control = None
    if recipe["force"] is not None:
        control = model.control()
        control.body_force.fill_(recipe["force"])
    tape = wp.Tape()
    with tape:
        trajectory = sim.rollout(model, state, control, num_steps=recipe["steps"], dt=recipe["dt"], substeps=recipe["substeps"],
                                 checkpoint_every=recipe["checkpoint_every"])
    final = trajectory.final
    outputs = {f"final {name}": a.numpy() for name, a in final.arrays().items()}
    seed = np.ones(final.body_q.numpy().shape, dtype=final.body_q.numpy().dtype)
    tape.backward(grads={final.body_q: wp.array(seed, dtype=final.body_q.dtype, device=device)})
    outputs.update(gradients_of(state.arrays()))
    outputs.update(gradients_of(model.parameters()))
    return outputs


@FUZZ
@given(recipe=rigid_scenes())
def test_rigid_scenes_raise_a_package_error_or_give_finite_results(recipe, device):
    exercise(lambda: run_rigid(recipe, device), "rigid")


# ----------------------------------------------------------------------------------------- MJCF
ATTRIBUTE_NOISE = ["abc", "", "1 2", "nan", "-1", "0", "1e40", "inf"]


@st.composite
def mjcf_snippets(draw):
    def number(good):
        if one_in(draw, 25):
            return draw(st.sampled_from(ATTRIBUTE_NOISE))
        return f"{draw(good):.6g}"

    def body_xml(depth, name):
        kind = draw(st.sampled_from(["sphere", "capsule", "box"]))
        size = {"sphere": number(log_floats(0.02, 0.3)),
                "capsule": f"{number(log_floats(0.02, 0.2))} {number(log_floats(0.02, 0.3))}",
                "box": " ".join(number(log_floats(0.02, 0.3)) for _ in range(3))}[kind]
        joint = draw(st.sampled_from(["", "hinge", "slide", "ball", "free"]))
        joint_xml = ""
        if joint:
            axis = draw(st.sampled_from(["1 0 0", "0 1 0", "0 0 1", "0 0 0", "1 1"]))
            extra = ""
            if draw(st.booleans()):
                extra += f' range="{number(st.floats(-2, 0))} {number(st.floats(0, 2))}" limited="true"'
            if draw(st.booleans()):
                extra += f' damping="{number(st.floats(0, 2))}"'
            joint_xml = f'<joint name="j{name}" type="{joint}" axis="{axis}"{extra}/>'
        mass = f' mass="{number(log_floats(0.01, 10))}"' if draw(st.booleans()) else ""
        children = ""
        if depth < 2 and draw(st.booleans()):
            children = body_xml(depth + 1, f"{name}c")
        position = f"{number(st.floats(-0.5, 0.5))} {number(st.floats(-0.5, 0.5))} {number(st.floats(0.1, 1.5))}"
        return (f'<body name="b{name}" pos="{position}">{joint_xml}<geom type="{kind}" size="{size}"{mass}/>'
                f"{children}</body>")

    floor = '<geom type="plane" size="5 5 0.1"/>' if draw(st.booleans()) else ""
    count = draw(st.integers(1, 2))
    bodies = "".join(body_xml(0, str(i)) for i in range(count))
    timestep = number(log_floats(1e-4, 1e-2))
    gravity = f"0 0 {number(st.floats(-20, 0))}"
    extras = draw(st.lists(st.sampled_from(["include", "unknown", "default", "motor", "friction"]), max_size=2, unique=True))
    head = body_tail = actuators = ""
    if "include" in extras:
        head += '<include file="missing_part.xml"/>'
    if "unknown" in extras:
        head += '<sparkle intensity="3"/>'
    if "default" in extras:
        head += f'<default><geom density="{number(log_floats(10, 1e4))}"/><joint damping="{number(st.floats(0, 2))}"/></default>'
    if "friction" in extras:
        floor = floor.replace("/>", f' friction="{number(st.floats(0, 2))} 0.005 0.0001"/>') if floor else floor
    if "motor" in extras:
        actuators = f'<actuator><motor joint="j0" gear="{number(log_floats(0.1, 100))}"/></actuator>'
    return (f'<mujoco><option timestep="{timestep}" gravity="{gravity}"/>{head}<worldbody>{floor}{bodies}{body_tail}'
            f"</worldbody>{actuators}</mujoco>")


def run_mjcf(xml, tmp_path, device):
    path = tmp_path / "fuzz.xml"
    path.write_text(xml)
    builder = sim.load_mjcf(path)
    model = builder.finalize(num_worlds=1, device=device, precision="float64", requires_grad=True)
    state = model.state(requires_grad=True)
    tape = wp.Tape()
    control = model.control()
    if control.joint_act is not None:
        control.joint_act.fill_(0.5)
    with tape:
        final = sim.rollout(model, state, control, num_steps=5, dt=0.002, substeps=2).final
    outputs = {f"final {name}": a.numpy() for name, a in final.arrays().items()}
    seed = np.ones(final.body_q.numpy().shape)
    tape.backward(grads={final.body_q: wp.array(seed, dtype=final.body_q.dtype, device=device)})
    outputs.update(gradients_of(state.arrays()))
    outputs.update(gradients_of(model.parameters()))
    return outputs


@FUZZ
@given(xml=mjcf_snippets())
def test_mjcf_snippets_raise_a_package_error_or_give_finite_results(xml, tmp_path_factory, device):
    tmp_path = tmp_path_factory.mktemp("mjcf")
    exercise(lambda: run_mjcf(xml, tmp_path, device), "mjcf")


# ------------------------------------------------------------------------------------------- MD
@st.composite
def md_systems(draw):
    potential = draw(st.sampled_from(["lj", "soft", "morse"]))
    return {
        "n": draw(st.integers(2, 24)),
        "dim": draw(st.sampled_from([2, 3])),
        "density": draw(log_floats(0.05, 1.0)),
        "periodic": draw(st.booleans()),
        "layout": draw(st.sampled_from(["lattice", "random"])),
        "seed": draw(st.integers(0, 2**16)),
        "temperature": draw(maybe_bad(log_floats(1e-3, 5.0), rate=30)),
        "potential": potential,
        "epsilon": draw(maybe_bad(log_floats(0.1, 5.0), rate=30)),
        "sigma": draw(maybe_bad(log_floats(0.5, 1.5), rate=30)),
        "cutoff": draw(maybe_bad(st.floats(1.0, 3.0), rate=30)),
        "integrator": draw(st.sampled_from(["nve", "langevin", "fire"])),
        "neighbors": draw(st.booleans()),
        "dt": draw(maybe_bad(log_floats(1e-4, 5e-2), rate=20)),
        "steps": draw(st.one_of(st.integers(1, 15), st.integers(1, 40))),
        "precision": draw(st.sampled_from(["float32", "float64"])),
        "mass": draw(maybe_bad(log_floats(0.1, 10.0), rate=30)),
        "diameter": draw(maybe_bad(log_floats(0.5, 1.5), rate=30)),
        "skin": draw(maybe_bad(st.floats(0.0, 0.5), rate=30)),
        "friction": draw(maybe_bad(log_floats(0.01, 10.0), rate=30)),
        "fire": {"f_dec": draw(maybe_bad(st.floats(0.1, 0.9), rate=20)), "n_min": -3 if one_in(draw, 20) else draw(st.integers(1, 10)),
                 "dt_max": draw(maybe_bad(log_floats(0.1, 1.0), rate=20))},
        "checkpoint_every": draw(st.sampled_from([None, None, 4])),
        "edit": draw(edits()) if one_in(draw, 6) else None,
    }


def run_md(recipe, device):
    from simulator.scenes.md_systems import lattice_positions

    n, dim = recipe["n"], recipe["dim"]
    box = (n / recipe["density"]) ** (1.0 / dim)
    rng = np.random.default_rng(recipe["seed"])
    if recipe["layout"] == "lattice":
        positions = lattice_positions(n, box, dim) + rng.uniform(-0.05, 0.05, (n, dim))
    else:
        positions = rng.uniform(0.0, box, (n, dim))
    velocities = np.sqrt(abs(recipe["temperature"])) * rng.standard_normal((n, dim)) if np.isfinite(recipe["temperature"]) else None
    builder = md.ParticleBuilder(dim=dim, box=box if recipe["periodic"] else None, periodic=recipe["periodic"])
    builder.add_particles(positions, velocities=velocities, mass=recipe["mass"], diameter=recipe["diameter"])
    options = {"epsilon": recipe["epsilon"], "sigma": recipe["sigma"]}
    if recipe["potential"] != "soft":  # the soft sphere is cut at sigma
        options["cutoff"] = recipe["cutoff"]
    potential = {"lj": md.LennardJones, "soft": md.SoftSphere, "morse": md.Morse}[recipe["potential"]](**options)
    model = builder.finalize(potential, device=device, precision=recipe["precision"], requires_grad=True)
    neighbors = md.NeighborList(model, skin=recipe["skin"]) if recipe["neighbors"] else None
    integrator = {"nve": lambda: md.VelocityVerlet(neighbors=neighbors),
                  "langevin": lambda: md.LangevinBAOAB(recipe["temperature"], friction=recipe["friction"], seed=recipe["seed"],
                                                       neighbors=neighbors),
                  "fire": lambda: md.FIRE(neighbors=neighbors, **recipe["fire"])}[recipe["integrator"]]()
    state = model.state(requires_grad=True)
    edit = recipe["edit"]
    if edit is not None:
        apply_edit(edit, model.parameters() if edit["target"] == "parameter" else {"positions": state.positions,
                                                                                    "velocities": state.velocities})
    tape = wp.Tape()
    with tape:
        final = md.rollout(model, state, integrator, num_steps=recipe["steps"], dt=recipe["dt"],
                           checkpoint_every=recipe["checkpoint_every"]).final
        energy = md.potential_energy(model, final, neighbors)
    outputs = {"final positions": final.positions.numpy(), "final velocities": final.velocities.numpy(), "energy": energy.numpy()}
    tape.backward(loss=energy)
    outputs.update(gradients_of({"positions": state.positions, "velocities": state.velocities}))
    outputs.update(gradients_of(model.parameters()))
    return outputs


@FUZZ
@given(recipe=md_systems())
def test_md_systems_raise_a_package_error_or_give_finite_results(recipe, device):
    exercise(lambda: run_md(recipe, device), "md")


# ------------------------------------------------------------------------------------ estimators
ESTIMATOR_OPTIONS = {
    "analytic": {"checkpoint_every": st.one_of(st.none(), st.integers(-1, 7))},
    "truncated": {"window": st.integers(-1, 12), "clip": st.one_of(st.none(), maybe_bad(log_floats(1e-3, 10.0), rate=4))},
    "es": {"sigma": maybe_bad(log_floats(1e-3, 1.0), rate=6), "population": st.integers(-2, 12),
           "shaping": st.sampled_from([None, "centered_rank"])},
    "hybrid": {"samples": st.integers(1, 4), "population": st.sampled_from([2, 4, 8])},
    "auto": {"z": maybe_bad(log_floats(0.1, 10.0), rate=6), "samples": st.integers(2, 3), "population": st.sampled_from([4, 8])},
}
_OBJECTIVES: dict = {}


@st.composite
def estimator_calls(draw):
    estimator = draw(st.sampled_from(sorted(ESTIMATOR_OPTIONS)))
    options = {name: draw(strategy) for name, strategy in ESTIMATOR_OPTIONS[estimator].items() if draw(st.booleans())}
    return {
        "scene": draw(st.sampled_from(["pendulum", "cartpole", "acrobot"])),
        "steps": draw(st.sampled_from([1, 5, 20, 60])),
        "estimator": estimator,
        "options": options,
        "theta_scale": draw(maybe_bad(log_floats(1e-3, 10.0), rate=8)),
        "seed": draw(st.integers(0, 100)),
    }


def run_estimator(call):
    key = (call["scene"], call["steps"])
    if key not in _OBJECTIVES:
        _OBJECTIVES[key] = sim.SceneTaskObjective(call["scene"], num_steps=call["steps"])
    objective = _OBJECTIVES[key]
    rng = np.random.default_rng(call["seed"])
    theta = call["theta_scale"] * rng.standard_normal(objective.num_parameters)
    result = sim.grad(objective, theta, estimator=call["estimator"], seed=call["seed"], **call["options"])
    outputs = {"loss": [result.value], "gradient": result.gradient}
    if result.variance is not None:
        outputs["variance"] = result.variance
    return outputs


@FUZZ
@given(call=estimator_calls())
def test_estimators_raise_a_package_error_or_give_finite_results(call):
    exercise(lambda: run_estimator(call), "estimators")


def test_the_property_is_not_vacuous(device):
    """The property must be able to fail: a non-finite output that no package error announced is
    reported, and a plain (non-package) exception propagates."""
    with pytest.raises(AssertionError, match="silent non-finite"):
        exercise(lambda: {"x": np.array([1.0, np.nan])})
    with pytest.raises(RuntimeError):
        exercise(lambda: (_ for _ in ()).throw(RuntimeError("a Warp-level error")))
    exercise(lambda: (_ for _ in ()).throw(sim.ParameterError("a package error")))


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    yield
    if os.environ.get("SIMULATOR_FUZZ_REPORT"):
        for kind, counts in OUTCOMES.items():
            print(f"\n{kind}: {sum(counts.values())} examples")
            for outcome, count in counts.most_common():
                print(f"  {count:5d}  {outcome}")
