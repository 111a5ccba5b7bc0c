"""Compliant contact: the force law, its softening, and how contact candidates are generated.

The force law
-------------
For every contact candidate the kernel computes the penetration ``d`` [m] (positive when the
shapes overlap), the normal relative speed ``vn`` [m/s] (positive when separating) and the
tangential relative velocity ``vt``. With the pair's stiffness ``ke`` [N/m], damping ``kd``
[N s/m] and friction ``mu`` (each the mean of the two shapes' values):

    fn = ke * softplus_s(d) - kd * vn * sigmoid_s(d)            normal force [N]
    ft = -mu * max(fn, 0) * vt / sqrt(|vt|^2 + v_smooth^2)       friction force [N]

``softplus_s(d) = s * log(1 + exp(d / s))`` and ``sigmoid_s`` is its derivative. The softening
length ``s`` (``softness``) makes the normal force, the friction load and their derivatives
continuous at contact onset: the force starts growing a few ``s`` before the surfaces touch.
As ``s -> 0`` the law becomes the hard penalty ``ke * max(d, 0)`` with damping gated by
``d > 0``; ``s = 0`` is exactly that. The damping is Kelvin-Voigt (it may briefly pull while
surfaces separate); it always removes energy.

Surrogate gradients
-------------------
``mode="surrogate"`` simulates the hard law forward (``s`` ignored in the forward pass) but
backpropagates the derivatives of the softened law, written ``soft + stop_gradient(hard - soft)``.
Use it when the forward physics must stay exact but the hard law's gradients are useless (zero
before contact, a jump at onset).

Choosing stiffness, damping, dt and softness
--------------------------------------------
* Stiffness sets the penetration at rest: a body of mass m resting on n contact points sinks
  by about ``m*g / (n*ke)``. Pick ``ke`` so that this is small compared with the body
  (e.g. 1 mm for a 10 cm object): ``ke ~ m*g / (n * 1e-3)``.
* The explicit integrator is stable only if every substep resolves the contact oscillation:
  ``dt_sub < 2*sqrt(m/ke)`` is the hard limit; use a fifth of it for accuracy
  (``dt_sub ~ 0.4*sqrt(m/ke)``). Stiffer contact needs smaller substeps, not larger damping.
  ``check_stable_timestep`` applies this per contact pair and per body: m is the pair's effective
  mass at the contact point (rotation included), the contacts that can touch a body at once add
  their stiffness and damping, and a body with no contact candidate sets no limit
  (:func:`simulator.rigid.contact_time_scales`).
* Damping: ``kd = 2*zeta*sqrt(ke*m)`` gives a damping ratio ``zeta`` (0.1-1 typical; the
  coefficient of restitution is about ``exp(-pi*zeta/sqrt(1 - zeta^2))``). Keep
  ``dt_sub < 2*m/kd`` as well. With no damping at all, the explicit step can exchange energy
  of order ``omega*dt`` (``omega = sqrt(ke/m)``) at each impact, in either direction; any
  damping ratio above about 0.002 makes the energy strictly non-increasing at ``omega*dt ~ 0.05``.
* Friction is regularised below the slip speed ``v_smooth``: a body on a slope steeper than
  half the friction cone creeps at about ``v_smooth * r / sqrt(1 - r^2)`` with
  ``r = tan(slope)/mu``. Smaller ``v_smooth`` sticks better but the explicit friction needs
  ``dt_sub < 2*v_smooth / (mu*g)``.
* Impacts load the friction far more than resting does: a contact hit at normal speed v carries
  up to about ``v*(kd + sqrt(ke*m))`` (1.6-2 kN for the tumbling box against its weight of 78 N),
  and the explicit friction reverses the slip every substep (chatter) unless
  ``dt_sub < v_smooth * m_eff / (mu * load)`` (m_eff: the contact point's effective mass, rotation
  included). Declare the impact speed (``ContactSettings(impact_speed=...)``) and
  ``check_stable_timestep`` enforces this bound too; raise ``v_smooth`` or the substeps to meet it.
* Softness: 0 for the classic penalty; for gradients through contact onset use a length that is
  small compared with the objects but at least comparable to the distance travelled in a
  substep (e.g. 1e-3 to 1e-2 m). Gradient variance falls as softness grows; the physics bias
  grows with it (bodies float about ``s*log(2)``-ish above the surface at light loads).

Candidates
----------
Every pair of shapes on different bodies (and not both static, and not filtered) gets contact
candidates, each a sphere carried by a *source* shape tested against the signed distance of a
*target* shape:

=========================  ==================================================================
pair                       candidates
=========================  ==================================================================
sphere - anything          the sphere's centre (radius r) against the other shape
capsule - capsule          closest points of the two core segments (exact)
capsule - box / plane      the two end caps (radius r), and for a box the segment midpoint too
box - box                  the 8 corners of each box against the other (no edge-edge contact)
box - plane                the 8 corners
mesh - primitive / plane   every mesh vertex against the primitive (meshes are not targets)
=========================  ==================================================================
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, check_nonnegative
from .kernels.constants import CandidateKind, ContactMode
from .shapes import BOX, CAPSULE, MESH, PLANE, SHAPE_NAMES, SPHERE, Shape, box_corners

CONTACT_MODES = tuple(mode.name.lower() for mode in ContactMode)  # ("soft", "surrogate")
KIND_POINT, KIND_SEGMENT = CandidateKind.POINT, CandidateKind.SEGMENT


@dataclass(frozen=True)
class ContactSettings:
    """Global contact options (per-shape stiffness, damping and friction live on the shapes).

    Attributes:
        softness: softening length s [m] of the normal force and friction load (0 = hard). It is
            stored per world in ``model.contact_softness`` and is differentiable.
        mode: ``"soft"`` (softened law forward and backward) or ``"surrogate"`` (hard law
            forward, softened derivatives backward).
        friction_smoothing: slip speed v_smooth [m/s] below which Coulomb friction is linear.
        impact_speed: the largest normal speed [m/s] at which bodies are expected to hit; the
            friction substep is then bounded by the impact load as well as the resting load (see
            :func:`simulator.rigid.contact_time_scales`). 0: the resting load only.
    """

    softness: float = 0.0
    mode: str = "soft"
    friction_smoothing: float = 1.0e-2
    impact_speed: float = 0.0

    def __post_init__(self):
        check_nonnegative("softness", self.softness)
        check_nonnegative("impact_speed", self.impact_speed)
        if self.mode not in CONTACT_MODES:
            raise ParameterError(f"mode must be one of {CONTACT_MODES}, got {self.mode!r}")
        if float(self.friction_smoothing) <= 0.0 or not np.isfinite(self.friction_smoothing):
            raise ParameterError(f"friction_smoothing must be > 0 m/s, got {self.friction_smoothing!r}")


@dataclass
class Candidate:
    source: int
    target: int
    kind: int
    point: np.ndarray  # in the source shape frame
    point2: np.ndarray  # segment end (KIND_SEGMENT), in the source shape frame
    radius: float



def _points(shape: Shape):
    """The source spheres of a shape in its own frame: (points (n, 3), radius)."""
    if shape.kind == SPHERE:
        return np.zeros((1, 3)), shape.size[0]
    if shape.kind == BOX:
        return box_corners(shape.size), 0.0
    if shape.kind == CAPSULE:
        h = shape.size[1]
        return np.array([[0.0, 0.0, -h], [0.0, 0.0, h]]), shape.size[0]
    if shape.kind == MESH:
        return np.asarray(shape.contact_points, dtype=float), 0.0
    return np.zeros((0, 3)), 0.0


def _point_candidates(source_index, source: Shape, target_index, target: Shape):
    points, radius = _points(source)
    if source.kind == CAPSULE and target.kind == BOX:
        points = np.vstack([points, np.zeros((1, 3))])  # midpoint catches a capsule lying across a box
    return [Candidate(source_index, target_index, KIND_POINT, p, np.zeros(3), radius) for p in points]


def pair_candidates(index_a: int, a: Shape, index_b: int, b: Shape) -> list[Candidate]:
    """Contact candidates for one pair of shapes (see the module docstring's table)."""
    kinds = {a.kind, b.kind}
    if a.kind == CAPSULE and b.kind == CAPSULE:
        h = a.size[1]
        return [Candidate(index_a, index_b, KIND_SEGMENT, np.array([0.0, 0.0, -h]), np.array([0.0, 0.0, h]), a.size[0])]
    if kinds == {MESH}:
        warnings.warn(
            f"no contact between a {SHAPE_NAMES[a.kind]} and a {SHAPE_NAMES[b.kind]} (shapes {index_a}, {index_b}):"
            " that pair is not supported",
            stacklevel=3,
        )
        return []
    # choose the source: meshes are never targets; otherwise the shape best described by spheres
    preference = (MESH, SPHERE, CAPSULE, BOX, PLANE)
    if preference.index(a.kind) > preference.index(b.kind):
        index_a, a, index_b, b = index_b, b, index_a, a
    candidates = _point_candidates(index_a, a, index_b, b)
    if a.kind == BOX and b.kind == BOX:
        candidates += _point_candidates(index_b, b, index_a, a)
    return candidates


def _with_margin(candidates: list[Candidate], a: Shape, b: Shape) -> list[Candidate]:
    """The pair's candidates with their radii grown by the two shapes' margins (contacts act from
    ``a.margin + b.margin`` apart, the force on the distance below it)."""
    margin = float(a.margin) + float(b.margin)
    if margin:
        for c in candidates:
            c.radius += margin
    return candidates


def build_candidates(shapes: list[Shape], filtered_pairs: set[tuple[int, int]]) -> list[Candidate]:
    """All candidates of a scene: every pair of shapes on different bodies, at least one dynamic,
    whose body pair is not in ``filtered_pairs`` (unordered body indices)."""
    candidates = []
    for i, a in enumerate(shapes):
        for j in range(i + 1, len(shapes)):
            b = shapes[j]
            if a.body == b.body or (a.body < 0 and b.body < 0):
                continue
            if (min(a.body, b.body), max(a.body, b.body)) in filtered_pairs:
                continue
            candidates.extend(_with_margin(pair_candidates(i, a, j, b), a, b))
    return candidates
