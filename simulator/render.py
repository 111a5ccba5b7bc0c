"""Look at what a rollout does: animated GIF (matplotlib, from the side or above) and USD.

* :func:`save_gif` draws every shape of one world, projected on a plane (``view="side"``: x-z,
  ``"front"``: y-z, ``"top"``: x-y), one frame per recorded state; needs matplotlib (the
  ``demo`` or ``dev`` extra). Pillow, which matplotlib brings, writes the GIF.
* :func:`save_usd` writes a time-sampled USD stage through Warp's USD renderer; needs the
  ``usd-core`` package (``pip install usd-core``). Open it in any USD viewer (usdview, Omniverse,
  Blender).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ParameterError
from .model import Model
from .rollout import Trajectory
from .shapes import BOX, CAPSULE, MESH, PLANE, SPHERE, box_corners
from .spatial import quat_from_matrix, quat_multiply, quat_to_matrix

_VIEWS = {"side": (0, 2), "front": (1, 2), "top": (0, 1)}


def _shape_world_poses(model: Model, body_q: np.ndarray, world: int):
    """(kind, size, world position, world rotation matrix, shape index) for every shape."""
    shape_body = model.shape_body.numpy()
    kinds = model.shape_type.numpy()
    sizes = model.shape_size.numpy().astype(np.float64)
    transforms = model.shape_transform.numpy().astype(np.float64)
    for s in range(model.shape_count):
        t = transforms[s]
        local_r = quat_to_matrix(t[3:])
        if shape_body[s] < 0:
            yield kinds[s], sizes[s], t[:3], local_r, s
            continue
        pose = body_q[world, shape_body[s]].astype(np.float64)
        r = quat_to_matrix(pose[3:])
        yield kinds[s], sizes[s], pose[:3] + r @ t[:3], r @ local_r, s


def _outline(kind, size, position, rotation, mesh, axes):
    """Projected 2D outline points of a shape (a polygon or a circle), or None."""
    i, j = axes
    if kind == SPHERE:
        angle = np.linspace(0, 2 * np.pi, 32)
        return np.stack([position[i] + size[0] * np.cos(angle), position[j] + size[0] * np.sin(angle)], axis=1)
    if kind == BOX:
        points = position + box_corners(size) @ rotation.T
    elif kind == CAPSULE:
        angle = np.linspace(0, 2 * np.pi, 16)
        ring = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1) * size[0]
        sphere = np.concatenate([ring, ring[:, [0, 2, 1]], ring[:, [2, 0, 1]]])
        ends = [np.array([0.0, 0.0, -size[1]]), np.array([0.0, 0.0, size[1]])]
        points = np.concatenate([position + (sphere + end) @ rotation.T for end in ends])
    elif kind == MESH and mesh is not None:
        points = position + np.asarray(mesh.vertices) @ rotation.T
    else:
        return None
    return convex_hull_2d(points[:, [i, j]])


def convex_hull_2d(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of 2D points (Andrew's monotone chain)."""
    pts = sorted(map(tuple, np.unique(np.round(points, 12), axis=0)))
    if len(pts) < 3:
        return np.array(pts)

    def turn(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(sequence):
        chain = []
        for p in sequence:
            while len(chain) >= 2 and turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(pts) + half(reversed(pts)))


def save_gif(model: Model, trajectory: Trajectory, path, *, world: int = 0, view: str = "side", fps: int = 30,
             every: int = 1, limits=None) -> Path:
    """Animate world ``world`` of a recorded trajectory into a GIF at ``path``.

    Args:
        view: ``"side"`` (x-z), ``"front"`` (y-z) or ``"top"`` (x-y).
        every: use every n-th recorded state as a frame.
        limits: ``((xmin, xmax), (ymin, ymax))`` of the view; by default fitted to the motion.
    """
    if view not in _VIEWS:
        raise ParameterError(f"view must be one of {tuple(_VIEWS)}, got {view!r}")
    if not 0 <= world < model.num_worlds:
        raise ParameterError(f"world must be in [0, {model.num_worlds}), got {world}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    axes = _VIEWS[view]
    frames = [s.body_q.numpy() for s in trajectory.states[::every]]
    centres = np.concatenate([f[world, :, :3] for f in frames])[:, list(axes)]
    if limits is None:
        low, high = centres.min(axis=0) - 0.5, centres.max(axis=0) + 0.5
        limits = ((low[0], high[0]), (min(low[1], -0.1), high[1]))
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = plt.get_cmap("tab10")

    def draw(k):
        ax.clear()
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_aspect("equal")
        ax.set_xlabel("xyz"[axes[0]] + " [m]")
        ax.set_ylabel("xyz"[axes[1]] + " [m]")
        ax.set_title(f"t = {k * every * trajectory.dt:.2f} s")
        for kind, size, position, rotation, s in _shape_world_poses(model, frames[k], world):
            if kind == PLANE:
                if view != "top":
                    ax.axhline(position[axes[1]], color="0.4", linewidth=1.5)
                continue
            outline = _outline(kind, size, position, rotation, model.shape_meshes[s], axes)
            if outline is not None:
                ax.fill(outline[:, 0], outline[:, 1], color=colors(s % 10), alpha=0.7)

    animation = FuncAnimation(fig, draw, frames=len(frames))
    path = Path(path)
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def save_usd(model: Model, trajectory: Trajectory, path, *, world: int = 0) -> Path:
    """Write world ``world`` of a recorded trajectory as a time-sampled USD stage (needs usd-core)."""
    try:
        import pxr  # noqa: F401
    except ImportError as exc:
        raise ImportError("save_usd needs the usd-core package: pip install usd-core") from exc
    import warp.render

    renderer = warp.render.UsdRenderer(str(path), up_axis="Z", fps=max(1, int(round(1.0 / trajectory.dt))))
    renderer.render_ground()
    z_to_y = np.array([-np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)])  # Warp's capsules are along y
    for k, state in enumerate(trajectory.states):
        renderer.begin_frame(k * trajectory.dt)
        for kind, size, position, rotation, s in _shape_world_poses(model, state.body_q.numpy(), world):
            quat = quat_from_matrix(rotation)
            name = f"shape_{s}"
            if kind == SPHERE:
                renderer.render_sphere(name, tuple(position), tuple(quat), float(size[0]))
            elif kind == BOX:
                renderer.render_box(name, tuple(position), tuple(quat), tuple(size))
            elif kind == CAPSULE:
                renderer.render_capsule(name, tuple(position), tuple(quat_multiply(quat, z_to_y)), float(size[0]), float(size[1]))
            elif kind == MESH and model.shape_meshes[s] is not None:
                mesh = model.shape_meshes[s]
                renderer.render_mesh(name, np.asarray(mesh.vertices), np.asarray(mesh.faces).reshape(-1), pos=tuple(position), rot=tuple(quat))
        renderer.end_frame()
    renderer.save()
    return Path(path)
