"""The molecular-dynamics integrators as :class:`simulator.Solver`s, so the rollout engine steps them.

``MDSolver(model, integrator)`` binds an integrator (velocity Verlet, BAOAB or FIRE, with its
neighbor list) to a particle model. A particle model holds one system, so the solver has one
world. Its steps read and write host-side list bookkeeping (a neighbor list rebuild decides on
the host), so the engine steps it from Python; the captured replays of unrecorded and
checkpointed MD rollouts live in :mod:`simulator.md.rollout`.
"""

from __future__ import annotations

import warp as wp

from ..errors import NonFinitePositionsError, ParameterError, SimulationDivergedError, check_timestep
from ..kernels.md import md_kernels
from ..solver import Solver
from .particles import ParticleModel, ParticleState


class MDSolver(Solver):
    """An MD integrator bound to its particle model.

    Args:
        model: a :class:`simulator.md.ParticleModel`.
        integrator: :class:`~simulator.md.VelocityVerlet`, :class:`~simulator.md.LangevinBAOAB`
            or :class:`~simulator.md.FIRE` (FIRE's time step is adaptive: ``dt`` is ignored).
    """

    def __init__(self, model: ParticleModel, integrator):
        if not isinstance(model, ParticleModel):
            raise TypeError(f"model must be a simulator.md.ParticleModel, got {type(model).__name__}")
        if not callable(getattr(integrator, "step", None)) or not callable(getattr(integrator, "prepare", None)):
            raise TypeError(f"integrator must be an MD integrator (VelocityVerlet, LangevinBAOAB, FIRE), got {type(integrator).__name__}")
        self.model, self.integrator = model, integrator

    @property
    def num_worlds(self) -> int:
        return 1

    def state(self, *, requires_grad: bool | None = None) -> ParticleState:
        return self.model.state(requires_grad=requires_grad)

    def control(self, *, requires_grad: bool | None = None):
        return None  # the integrators take no control

    def prepare(self, state: ParticleState) -> ParticleState:
        """A new state at ``state``'s positions with the integrator's start values and forces."""
        return self.integrator.prepare(self.model, state)

    def step(self, state_in: ParticleState, state_out: ParticleState, control, dt: float) -> None:
        try:
            self.integrator.step(self.model, state_in, state_out, control, dt)
        except NonFinitePositionsError as exc:
            step = state_in.step_index
            raise SimulationDivergedError(
                f"the particle simulation became non-finite at step {step} (dt={dt}; particle {exc.particle}); reduce dt "
                f"or check for overlapping particles", step=step, world=0) from exc

    def check_dt(self, dt: float, substeps: int = 1) -> float:
        return check_timestep(dt, substeps) / substeps

    def record_divergence(self, state, step_index, first_bad, step_base=None) -> None:
        if step_base is not None:
            raise ParameterError("MDSolver steps are not captured: step_base is not supported")
        wp.launch(md_kernels(self.model.precision.scalar).record_first_nonfinite, dim=self.model.particle_count,
                  inputs=[state.positions, state.velocities, int(step_index)], outputs=[first_bad],
                  device=self.model.device, record_tape=False)

    def divergence_advice(self) -> str:
        return "; reduce dt or check for overlapping particles"
