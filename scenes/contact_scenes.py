"""Contact scenes: a bouncing ball, a box on an incline, two colliding spheres, a tumbling box.

Each factory returns a :class:`Scene`: the finalized model plus the time step it was designed for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator import ContactSettings, Model, SceneBuilder
from simulator.rigid import contact_time_scales
from simulator.spatial import quat_from_axis_angle

from .registry import register


@dataclass
class Scene:
    """A ready-to-simulate scene.

    Attributes:
        model: the finalized model.
        dt: recommended step [s]; ``substeps`` substeps per step.
        info: scene-specific numbers (dimensions, the incline's downhill direction, ...).
    """

    model: Model
    dt: float
    substeps: int = 1
    info: dict = field(default_factory=dict)


@register("bouncing_ball")
def bouncing_ball(
    *,
    num_worlds: int = 1,
    device=None,
    precision: str = "float32",
    requires_grad: bool = False,
    height: float = 1.0,
    radius: float = 0.1,
    velocity=(0.0, 0.0, 0.0),
    stiffness: float = 1.0e4,
    damping: float = 10.0,
    friction: float = 0.5,
    contact: ContactSettings | None = None,
) -> Scene:
    """A solid sphere (density 1000 kg/m^3) dropped from ``height`` [m] onto the ground plane.

    Physics: free fall, then a compliant contact of stiffness ``stiffness`` [N/m]; the ball of
    mass m = 4/3 pi r^3 * 1000 comes to rest with penetration m*g/stiffness. Default dt 1 ms
    (the contact period 2*pi*sqrt(m/k) is about 0.13 s for the defaults).
    """
    builder = SceneBuilder(stiffness=stiffness, damping=damping, friction=friction)
    ball = builder.add_body(position=(0.0, 0.0, height), velocity=velocity, name="ball")
    builder.add_sphere(ball, radius=radius)
    builder.add_ground_plane()
    model = builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact)
    return Scene(model=model, dt=1.0e-3, info={"radius": radius})


@register("box_on_incline")
def box_on_incline(
    *,
    num_worlds: int = 1,
    device=None,
    precision: str = "float32",
    requires_grad: bool = False,
    angle: float = math.radians(20.0),
    friction: float = 0.5,
    half_extent: float = 0.1,
    stiffness: float = 1.0e5,
    damping: float = 200.0,
    contact: ContactSettings | None = None,
) -> Scene:
    """A cube (half extent 0.1 m, 8 kg) resting on a plane tilted by ``angle`` [rad] about y.

    Physics: Coulomb friction holds the box when tan(angle) < friction; otherwise it slides
    with acceleration g*(sin(angle) - friction*cos(angle)). ``info["downhill"]`` is the unit
    vector down the slope. Default dt 0.2 ms, short enough for the explicit friction with
    ``friction_smoothing`` 1e-3 m/s (limit 2*v_smooth/(mu*g)).
    """
    contact = contact or ContactSettings(friction_smoothing=1.0e-3)
    normal = np.array([math.sin(angle), 0.0, math.cos(angle)])
    downhill = np.array([math.cos(angle), 0.0, -math.sin(angle)])
    rotation = quat_from_axis_angle([0.0, 1.0, 0.0], angle)
    builder = SceneBuilder(stiffness=stiffness, damping=damping, friction=friction)
    box = builder.add_body(position=normal * half_extent * 0.999, rotation=rotation, name="box")
    builder.add_box(box, half_extents=(half_extent,) * 3)
    builder.add_ground_plane(normal=normal)
    model = builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact)
    return Scene(model=model, dt=2.0e-4, info={"downhill": downhill, "normal": normal, "angle": angle})


@register("two_spheres")
def two_spheres(
    *,
    num_worlds: int = 1,
    device=None,
    precision: str = "float32",
    requires_grad: bool = False,
    speed: float = 1.0,
    offset: float = 0.05,
    radius: float = 0.1,
    stiffness: float = 1.0e4,
    damping: float = 5.0,
    friction: float = 0.3,
    contact: ContactSettings | None = None,
) -> Scene:
    """Two spheres in zero gravity approaching each other at ``speed`` [m/s] each, with an
    impact parameter ``offset`` [m] (an oblique collision with friction, so spin is exchanged).
    Physics: equal and opposite contact forces conserve linear and angular momentum.
    The second sphere is twice as dense. Default dt 0.5 ms."""
    builder = SceneBuilder(gravity=(0.0, 0.0, 0.0), stiffness=stiffness, damping=damping, friction=friction)
    a = builder.add_body(position=(-0.3, 0.0, 0.0), velocity=(speed, 0.0, 0.0), name="a")
    builder.add_sphere(a, radius=radius)
    b = builder.add_body(position=(0.3, offset, 0.0), velocity=(-speed, 0.0, 0.0), name="b")
    builder.add_sphere(b, radius=radius, density=2000.0)
    model = builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact)
    return Scene(model=model, dt=5.0e-4)


@register("tumbling_box")
def tumbling_box(
    *,
    num_worlds: int = 1,
    device=None,
    precision: str = "float32",
    requires_grad: bool = False,
    stiffness: float = 2.0e4,
    damping: float = 50.0,
    friction: float = 0.8,
    contact: ContactSettings | None = None,
) -> Scene:
    """A box (0.4 x 0.2 x 0.1 m) thrown spinning onto the ground next to a capsule and a sphere
    resting on it: box-plane, box-box-free, capsule-plane and sphere-box contacts in one scene.
    The demo scene of the README. Default dt 0.5 ms, split into the fewest substeps that
    :func:`simulator.rigid.check_stable_timestep` accepts for the impact (the box lands at up to
    ``sqrt(v0^2 + 2 g z0) + |w0| r`` = 4.8 m/s, ``ContactSettings.impact_speed``), with
    ``friction_smoothing`` 0.1 m/s: the impact load (1.6-2 kN against a weight of 78 N) would
    otherwise make the explicit friction flip the slip direction on most contact substeps."""
    position, velocity, spin, half = np.array([-0.5, 0.0, 0.6]), np.array([1.5, 0.0, 0.0]), np.array([0.0, 4.0, 2.0]), (0.2, 0.1, 0.05)
    if contact is None:
        landing = math.sqrt(velocity @ velocity + 2.0 * 9.81 * position[2]) + np.linalg.norm(spin) * np.linalg.norm(half)
        contact = ContactSettings(friction_smoothing=0.1, impact_speed=round(float(landing), 1))
    builder = SceneBuilder(stiffness=stiffness, damping=damping, friction=friction)
    box = builder.add_body(position=tuple(position), velocity=tuple(velocity), angular_velocity=tuple(spin), name="box")
    builder.add_box(box, half_extents=half)
    capsule = builder.add_body(position=(0.4, 0.0, 0.05), rotation=quat_from_axis_angle([1.0, 0.0, 0.0], math.pi / 2), name="capsule")
    builder.add_capsule(capsule, radius=0.05, half_height=0.2)
    ball = builder.add_body(position=(0.0, 0.3, 0.08), name="ball")
    builder.add_sphere(ball, radius=0.08)
    builder.add_ground_plane()
    model = builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad, contact=contact)
    dt = 5.0e-4
    return Scene(model=model, dt=dt, substeps=max(1, math.ceil(dt / min(contact_time_scales(model).values()))))


@register("sinai_billiard")
def sinai_billiard(
    *,
    num_worlds: int = 1,
    device=None,
    precision: str = "float64",
    requires_grad: bool = False,
    softness: float = 0.0,
    stiffness: float = 1.0e4,
    speed: float = 1.0,
) -> Scene:
    """A Sinai billiard: a ball (radius 0.1 m, 4.2 kg) moving at ``speed`` [m/s] in a square
    arena of walls at x, y = +-1 m around a fixed round obstacle (radius 0.3 m), no gravity, no
    friction, no damping. The convex obstacle defocuses every bounce, so the motion is chaotic
    (positive Lyapunov exponent). Contact stiffness ``stiffness`` [N/m] and ``softness`` [m].
    Default dt 10 ms with 4 substeps."""
    builder = SceneBuilder(gravity=(0.0, 0.0, 0.0), stiffness=stiffness, damping=0.0, friction=0.0)
    ball = builder.add_body(position=(0.5, 0.3, 0.0), velocity=(speed, 0.4 * speed, 0.0), name="ball")
    builder.add_sphere(ball, radius=0.1)
    for normal in ((1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)):
        builder.add_ground_plane(normal=normal, offset=-1.0)
    builder.add_sphere(-1, radius=0.3)
    model = builder.finalize(num_worlds=num_worlds, device=device, precision=precision, requires_grad=requires_grad,
                             contact=ContactSettings(softness=softness))
    return Scene(model=model, dt=1.0e-2, substeps=4, info={"speed": speed})
