"""Differentiable molecular dynamics: particles, pair potentials, neighbor lists, integrators.

Public API::

    ParticleBuilder, ParticleModel, ParticleState      build a system; model.state()
    PairPotential, LennardJones, SoftSphere, Morse     pair potentials (per type pair)
    compute_forces                                      forces (and energy, virial) at positions
    NeighborList                                        cell-list Verlet list with a skin
    VelocityVerlet, LangevinBAOAB, FIRE                 step(model, state_in, state_out, control, dt)
    MDSolver                                            an integrator bound to its model (the solver protocol)
    rollout, MDTrajectory                               many steps, recorded or checkpointed
    MDObjective, PackingObjective, LJFluidObjective,
    ParameterMap, PairParameters, PackingDiameters      rollout objectives for simulator.grad
    potential_energy, kinetic_energy, temperature,
    pressure, radial_distribution,
    positions_from_fractional                           observables and helpers

Units are reduced Lennard-Jones units (length sigma, energy epsilon, mass m, k_B = 1).
One system per model (no batched worlds).
"""

from .integrators import FIRE, LangevinBAOAB, VelocityVerlet, check_forces
from .neighbors import NeighborList, NonFinitePositionsError
from .objectives import (
    LJFluidObjective,
    MDObjective,
    PackingDiameters,
    PackingObjective,
    PairParameters,
    ParameterMap,
)
from .observables import (
    kinetic_energy,
    positions_from_fractional,
    potential_energy,
    pressure,
    radial_distribution,
    temperature,
)
from .particles import ParticleBuilder, ParticleModel, ParticleState
from .potentials import LennardJones, Morse, PairPotential, SoftSphere, compute_forces
from .rollout import REPLAY_SEGMENT, MDTrajectory, engine, rollout
from .solver import MDSolver

__all__ = [
    "MDSolver",
    "REPLAY_SEGMENT",
    "engine",
    "FIRE",
    "LangevinBAOAB",
    "LJFluidObjective",
    "LennardJones",
    "MDObjective",
    "MDTrajectory",
    "Morse",
    "NeighborList",
    "NonFinitePositionsError",
    "PackingDiameters",
    "PackingObjective",
    "PairParameters",
    "PairPotential",
    "ParameterMap",
    "ParticleBuilder",
    "ParticleModel",
    "ParticleState",
    "SoftSphere",
    "VelocityVerlet",
    "check_forces",
    "compute_forces",
    "kinetic_energy",
    "positions_from_fractional",
    "potential_energy",
    "pressure",
    "radial_distribution",
    "rollout",
    "temperature",
]
