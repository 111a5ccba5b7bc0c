"""Molecular-dynamics kernels, gathered from the modules that hold them by concern:

* ``md_pairs``: pair forces and their hand-written adjoint (``pair_forces_adjoint``), which
  ``simulator.md.compute_forces`` records on the tape;
* ``md_integrators``: velocity Verlet, Langevin BAOAB and FIRE;
* ``md_adjoints``: FIRE's hand-written adjoints;
* ``md_observables``: kinetic energy, pressure, histograms, the divergence watch.

Differentiable unless marked ``enable_backward=False``. ``md_kernels(scalar)`` returns all of
them in one namespace.

Conventions (shared with ``simulator.md``):

* Positions, velocities and forces are ``vec3`` arrays of shape ``(N,)``; a 2D system keeps
  ``z = 0`` (its forces and noise have no z component) and its box has an unused z side.
* ``box`` is a ``(1,)`` array holding the sides of the orthorhombic box; ``periodic`` is 0 or 1.
* Pairs come from a half neighbor list (each pair once: ``neighbor_index[i, k] = j`` for ``k <
  neighbor_count[i]``) or, with ``all_pairs = 1``, from every ``j > i``.
* Pair parameters are ``(T, T)`` matrices of which only the upper triangle ``[min(a, b),
  max(a, b)]`` is read, so a gradient lands on exactly one entry per type pair.
* Accumulated outputs (forces, per-particle energy and virial) must be zero before a launch.
"""

import functools
from types import SimpleNamespace

from .constants import NO_DIVERGENCE, PairAdjoint  # noqa: F401 (NO_DIVERGENCE re-exported)
from .md_adjoints import md_adjoint_kernels
from .md_integrators import md_integrator_kernels
from .md_observables import md_observable_kernels
from .md_pairs import md_pair_kernels

# the older names of the pair adjoint's ``wanted`` bits (see ``PairAdjoint``), kept importable
ADJ_FORCES = int(PairAdjoint.ADJ_FORCES)
ADJ_ENERGY = int(PairAdjoint.ADJ_ENERGY)
ADJ_VIRIAL = int(PairAdjoint.ADJ_VIRIAL)
GRAD_POSITIONS = int(PairAdjoint.GRAD_POSITIONS)
GRAD_DIAMETER = int(PairAdjoint.GRAD_DIAMETER)
GRAD_EPSILON = int(PairAdjoint.GRAD_EPSILON)
GRAD_SIGMA = int(PairAdjoint.GRAD_SIGMA)
GRAD_ALPHA = int(PairAdjoint.GRAD_ALPHA)
GRAD_BOX = int(PairAdjoint.GRAD_BOX)


@functools.cache
def md_kernels(scalar):
    """Every molecular-dynamics kernel for one scalar type (``wp.float32`` or ``wp.float64``)."""
    parts = (md_pair_kernels(scalar), md_integrator_kernels(scalar), md_adjoint_kernels(scalar), md_observable_kernels(scalar))
    return SimpleNamespace(**{name: kernel for part in parts for name, kernel in vars(part).items()})
