"""The molecular-dynamics integrators as :class:`simulator.Solver`s, so the rollout engine steps them.

``MDSolver(model, integrator)`` binds an integrator (velocity Verlet, BAOAB or FIRE, with its
neighbor list) to a particle model. A particle model holds one system, so the solver has one
world. The neighbor list is the solver's bookkeeping (:class:`simulator.solver.StepBookkeeping`):
a host-checked rebuild when stepped from Python, device-side updates inside captured graphs.
FIRE and velocity Verlet steps can be captured (their launches do not depend on the step index);
BAOAB's noise seed does, so it is always stepped from Python.
"""

from __future__ import annotations

import warp as wp

from ..errors import NonFinitePositionsError, SimulationDivergedError, check_timestep
from ..kernels.md import md_kernels
from ..solver import Solver
from .particles import ParticleModel, ParticleState

REPLAY_SEGMENT = 32  # steps per captured graph of an unrecorded replay (one host check of the list each)


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
        self._zero_step = wp.zeros(1, dtype=wp.int32, device=model.device)

    @property
    def num_worlds(self) -> int:
        return 1

    def state(self, *, requires_grad: bool | None = None) -> ParticleState:
        return self.integrator.state(self.model, requires_grad=requires_grad)

    def control(self, *, requires_grad: bool | None = None):
        return None  # the integrators take no control

    def prepare(self, state: ParticleState) -> ParticleState:
        """A new state at ``state``'s positions with the integrator's start values and forces."""
        return self.integrator.prepare(self.model, state)

    def step(self, state_in: ParticleState, state_out: ParticleState, control, dt: float) -> None:
        try:
            self.integrator.advance(self.model, state_in, state_out, dt)  # the engine checked the rollout's arguments
        except NonFinitePositionsError as exc:
            step = state_in.step_index
            raise SimulationDivergedError(
                f"the particle simulation became non-finite at step {step} (dt={dt}; particle {exc.particle}); reduce dt "
                f"or check for overlapping particles", step=step, world=0) from exc

    def check_model(self) -> None:
        self.model.validate()

    def check_state(self, state, name: str = "state", *, finite: bool = False) -> None:
        self.model.check_state(state, name, finite=finite)

    def check_dt(self, dt: float, substeps: int = 1) -> float:
        return check_timestep(dt, substeps) / substeps

    @property
    def capturable(self) -> bool:
        from .integrators import FIRE, VelocityVerlet

        return type(self.integrator) in (FIRE, VelocityVerlet) and not self.device.is_capturing

    @property
    def bookkeeping(self):
        return self.integrator.neighbors

    @property
    def replay_segment(self) -> int:
        return REPLAY_SEGMENT

    def capture_key(self, dt: float) -> tuple:
        """The model's arrays (by identity), the integrator's parameters, ``dt`` and the model's
        potential, box kind and cutoff."""
        model, integrator = self.model, self.integrator
        arrays = tuple(getattr(model, f) for f in model.__dataclass_fields__ if isinstance(getattr(model, f), wp.array))
        params = tuple((name, v) for name, v in vars(integrator).items() if isinstance(v, (int, float)))
        key = (type(integrator), params, float(dt), model.periodic, model.potential, model.cutoff, tuple(id(a) for a in arrays))
        return key, arrays

    def stepped(self, state: ParticleState, start: ParticleState, count: int) -> None:
        state.step_index = start.step_index + count

    def record_divergence(self, state, step_index, first_bad, step_base=None) -> None:
        wp.launch(md_kernels(self.model.precision.scalar).record_first_nonfinite, dim=self.model.particle_count,
                  inputs=[state.positions, state.velocities, self._zero_step if step_base is None else step_base, int(step_index)],
                  outputs=[first_bad], device=self.model.device, record_tape=False)

    def divergence_advice(self, substep: float) -> str:
        return "; reduce dt or check for overlapping particles"
