"""Rendering a rollout: a GIF a person can look at, and USD when usd-core is installed."""

import numpy as np
import pytest

import simulator as sim
from simulator.render import convex_hull_2d, save_gif, save_usd
from simulator.scenes import make
from simulator.spatial import quat_from_axis_angle, quat_from_matrix, quat_to_matrix


def test_quaternion_round_trip_and_hull():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = quat_from_axis_angle(rng.standard_normal(3), rng.uniform(0, 2 * np.pi))
        back = quat_from_matrix(quat_to_matrix(q))
        assert np.allclose(back, q) or np.allclose(back, -q)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float)
    assert len(convex_hull_2d(square)) == 4


@pytest.mark.parametrize("view", ["side", "top"])
def test_gif_of_a_contact_scene(tmp_path, view, device):
    from PIL import Image

    scene = make("tumbling_box", device=device)
    trajectory = sim.rollout(scene.model, scene.model.state(), num_steps=60, dt=scene.dt, substeps=scene.substeps)
    path = save_gif(scene.model, trajectory, tmp_path / "box.gif", view=view, every=10)
    image = Image.open(path)
    assert image.n_frames == 7 and image.size[0] > 100


def test_gif_rejects_a_bad_view(tmp_path, device):
    scene = make("bouncing_ball", device=device)
    trajectory = sim.rollout(scene.model, scene.model.state(), num_steps=2, dt=scene.dt)
    with pytest.raises(ValueError, match="view must be one of"):
        save_gif(scene.model, trajectory, tmp_path / "x.gif", view="diagonal")


def test_usd_export(tmp_path, device):
    pytest.importorskip("pxr", reason="usd-core is the optional `usd` extra")
    scene = make("tumbling_box", device=device)
    trajectory = sim.rollout(scene.model, scene.model.state(), num_steps=5, dt=scene.dt, substeps=scene.substeps)
    path = save_usd(scene.model, trajectory, tmp_path / "box.usda")
    text = path.read_text()
    assert "shape_0" in text and "timeSamples" in text
