"""The stable-dt bound per contact pair and per body (:func:`simulator.rigid.contact_time_scales`):
a substep just under it settles without gaining energy, one well above it is refused, and a body
that can touch nothing does not lower it."""

import math
import os

import numpy as np
import pytest

import simulator as sim
from simulator import rigid
from simulator.errors import ParameterError
from simulator.scenes import make
from simulator.spatial import quat_to_matrix


def energy(model, state) -> float:
    """Kinetic plus gravitational energy [J] of world 0's bodies (the contact springs' energy left
    out: it is positive, so a gain shows all the same)."""
    q, v, w = state.body_q.numpy()[0], state.body_v.numpy()[0], state.body_w.numpy()[0]
    mass, inertia = model.body_mass.numpy()[0].astype(np.float64), model.body_inertia.numpy()[0].astype(np.float64)
    total = 0.0
    for b in range(model.body_count):
        rotation = quat_to_matrix(q[b, 3:].astype(np.float64))
        total += 0.5 * mass[b] * v[b] @ v[b] + 0.5 * w[b] @ (rotation @ inertia[b] @ rotation.T) @ w[b]
        total -= mass[b] * np.dot(model.gravity, q[b, :3])
    return float(total)


def box_stack(device, count=3):
    """``count`` 10 cm cubes (1 kg) stacked 1 mm apart above the ground."""
    builder = sim.SceneBuilder(stiffness=1.0e4, damping=20.0, friction=0.5)
    for k in range(count):
        body = builder.add_body(position=(0.003 * k, 0.0, 0.05 + 0.101 * k), name=f"box{k}")
        builder.add_box(body, half_extents=(0.05, 0.05, 0.05))
    builder.add_ground_plane()
    return builder.finalize(device=device, precision="float64")


SCENES = {
    "ball": lambda device: make("bouncing_ball", device=device, precision="float64", height=0.3).model,
    "tumbling_box": lambda device: make("tumbling_box", device=device, precision="float64").model,
    "ant": lambda device: make("ant", device=device, precision="float64").model,
    "box_stack": box_stack,
}


@pytest.mark.parametrize("name", sorted(SCENES))
def test_just_under_the_bound_settles_without_energy_gain_and_well_above_is_refused(device, name):
    model = SCENES[name](device)
    limit = min(rigid.contact_time_scales(model).values())
    assert 0.0 < limit < math.inf
    h = 0.95 * limit
    rigid.check_stable_timestep(model, h)
    with pytest.raises(ParameterError, match="too large for the contact"):
        rigid.check_stable_timestep(model, 2.0 * limit)
    a, b = model.state(), model.state()
    start = peak = energy(model, a)
    steps = int(math.ceil(1.0 / h))  # one second: landing and settling
    for _ in range(steps):
        rigid.launch_step(model, a, b, None, h)
        a, b = b, a
        peak = max(peak, energy(model, a))
    end = energy(model, a)
    assert np.all(np.isfinite(a.body_q.numpy()))
    scale = max(abs(start), 1.0)
    assert peak <= start + 1e-3 * scale, (name, start, peak)
    assert end <= start, (name, start, end)


def test_a_light_body_that_touches_nothing_does_not_lower_the_bound(device):
    """A 1 g body off the contact candidates (filtered against everything) leaves the bound of a
    ball on the ground as it is; the same body touching the ground sets it."""

    def scene(filtered):
        builder = sim.SceneBuilder(stiffness=1.0e4, damping=10.0, friction=0.5)
        ball = builder.add_body(position=(0.0, 0.0, 0.1), name="ball")
        builder.add_sphere(ball, radius=0.1)
        light = builder.add_body(position=(1.0, 0.0, 0.5), name="light")
        builder.add_sphere(light, radius=0.01, density=1e-3 / (4.0 / 3.0 * math.pi * 1e-6))  # 1 g
        builder.add_ground_plane()
        if filtered:
            builder.filter_collision(light, -1)
            builder.filter_collision(light, ball)
        return builder.finalize(device=device, precision="float64")

    alone = sim.SceneBuilder(stiffness=1.0e4, damping=10.0, friction=0.5)
    ball = alone.add_body(position=(0.0, 0.0, 0.1))
    alone.add_sphere(ball, radius=0.1)
    alone.add_ground_plane()
    reference = rigid.contact_time_scales(alone.finalize(device=device, precision="float64"))
    assert rigid.contact_time_scales(scene(True)) == pytest.approx(reference, rel=1e-12)
    touching = rigid.contact_time_scales(scene(False))
    assert touching["spring-damper"] < 0.2 * reference["spring-damper"]


GYMNASIUM_SUBSTEPS = {"inverted_pendulum.xml": 1, "inverted_double_pendulum.xml": 1, "reacher.xml": 1, "swimmer.xml": 1}


@pytest.mark.parametrize("name", sorted(GYMNASIUM_SUBSTEPS))
def test_gymnasium_models_without_contact_need_no_substeps(device, name):
    gymnasium = pytest.importorskip("gymnasium")
    from simulator.mjcf import load_mjcf

    path = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", name)
    builder = load_mjcf(path)
    model = builder.finalize(device=device)
    rigid.check_stable_timestep(model, builder.mjcf_timestep, GYMNASIUM_SUBSTEPS[name])


def test_pusher_object_on_slides_is_bounded_by_its_armature(device):
    """gymnasium's pusher: the 2e-8 kg object rides two slide joints with 0.04 kg of armature each;
    the bound uses the armature (the global bound took 2e-8 kg: 5.5 million substeps per 10 ms)."""
    gymnasium = pytest.importorskip("gymnasium")
    from simulator.mjcf import load_mjcf

    builder = load_mjcf(os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "pusher.xml"))
    model = builder.finalize(device=device, precision="float64")
    limit = min(rigid.contact_time_scales(model).values())
    assert builder.mjcf_timestep / limit < 100
    obj = model.body_names.index("object")
    sliding = rigid._sliding_inverse_masses(model)
    assert sliding[0, obj] == pytest.approx(1.0 / (0.04 + float(model.body_mass.numpy()[0, obj])), rel=1e-9)


def test_a_parameter_written_after_finalize_changes_the_bound(device):
    model = make("bouncing_ball", device=device, precision="float64").model
    before = rigid.contact_time_scales(model)["stiffness"]
    stiffness = model.shape_stiffness.numpy()
    model.shape_stiffness.assign(stiffness * 4.0)
    assert rigid.contact_time_scales(model)["stiffness"] == pytest.approx(0.5 * before, rel=1e-12)
