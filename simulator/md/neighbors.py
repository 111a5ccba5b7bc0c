"""Verlet neighbor lists built from a cell list, with a skin and automatic rebuild.

The list holds every pair within ``cutoff + skin`` at build time (for the soft sphere, which
vanishes beyond each pair's sigma_ij: within ``sigma_ij + skin``, so a polydisperse packing lists
only the pairs that can touch). It stays exact (it contains every pair within ``cutoff``, or
``sigma_ij``) while no particle has moved more than ``skin / 2`` and the box is unchanged;
:meth:`NeighborList.update` checks that on the device and rebuilds when needed.

Each rebuild writes *new* arrays, never the ones a recorded force launch already read, so a
``wp.Tape`` replays every step's adjoint with the list that step used. Capacities (neighbors per
particle, particles per cell) grow automatically, with a log message, when a build overflows.
"""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import warp as wp

from ..errors import NonFinitePositionsError, ParameterError, check_nonnegative
from ..kernels.constants import NEIGHBOR_STATUS_SIZE, NeighborStatus, PairRange, PotentialKind
from ..kernels.md_neighbors import neighbor_kernels

logger = logging.getLogger("simulator.md")


def _pair_range(model) -> int:
    """How far a pair may be listed (see ``kernels.md_neighbors``): the soft sphere vanishes beyond
    its sigma_ij, so its pairs need only sigma_ij + skin."""
    if model.potential.kind != PotentialKind.SOFT_SPHERE:
        return int(PairRange.CUTOFF)
    if model.potential.sigma_from_diameters:
        return int(PairRange.DIAMETERS)
    return int(PairRange.TYPE_SIGMA) if model.pair_sigma.shape[0] > 1 else int(PairRange.CUTOFF)


class NeighborList:
    """Half Verlet list (each pair once) for a :class:`simulator.md.ParticleModel`.

    Args:
        model: the particle system.
        skin: extra search distance [length] beyond the model's cutoff; larger skins rebuild
            less often but hold more pairs.
        capacity: neighbors stored per particle (grown automatically); default from the density.
        cell_capacity: particles stored per cell (grown automatically); default from the density.

    Attributes:
        neighbor_count: ``(N,)`` int32, number of partners listed under each particle.
        neighbor_index: ``(N, capacity)`` int32, their indices.
        rebuild_count: how many times the list was built.
    """

    def __init__(self, model, *, skin: float = 0.3, capacity: int | None = None, cell_capacity: int | None = None):
        self.model = model
        self.skin = float(check_nonnegative("skin", skin))
        self.search_radius = model.cutoff + self.skin
        self._pair_range = _pair_range(model)
        self._kernels = neighbor_kernels(model.precision.scalar)
        n = model.particle_count
        density = n / max(model.volume(), 1e-30)
        radius = min(self.search_radius, 1e6)  # (a larger cutoff lists every pair: the count is capped at N below)
        if model.dim == 3:
            expected = density * 4.0 / 3.0 * math.pi * radius**3 / 2.0
        else:
            expected = density * math.pi * radius**2 / 2.0
        # a particle lists at most N - 1 partners: a huge cutoff must not ask for an (N, 10^60) array
        self.capacity = int(capacity) if capacity is not None else max(8, int(min(1.5 * expected, n)) + 8)
        self._cell_capacity = cell_capacity
        self.neighbor_count = None
        self.neighbor_index = None
        self.rebuild_count = 0
        self._positions_ref = None
        self._box_ref = None
        self._flag = wp.zeros(1, dtype=wp.int32, device=model.device)
        self._status = wp.zeros(NEIGHBOR_STATUS_SIZE, dtype=wp.int32, device=model.device)
        self._grid_args = None  # (origin, width, ncell, span) of the last build
        self._cells = None  # (particle_cell, cell_count, cell_particles, cell_positions) of the last build
        self._on_device = False  # see begin_device_updates
        self._device_buffers = None
        self._saved_buffers = None  # a segment's start, for a redo (see save_device_state)
        if self.capacity < 1:
            raise ParameterError(f"capacity must be >= 1, got {capacity!r}")

    def update(self, positions: wp.array) -> tuple[wp.array, wp.array]:
        """Return ``(neighbor_count, neighbor_index)`` valid for ``positions``, rebuilding if needed."""
        if self._on_device:
            self._device_update(positions)
        elif self.neighbor_count is None or self._needs_rebuild(positions):
            self.build(positions)
        return self.neighbor_count, self.neighbor_index

    # -- device-side updates (for graph capture: no host work per step) -------------------------

    def begin_device_updates(self) -> bool:
        """Switch :meth:`update` to launches only: the rebuild decision and the rebuild itself run
        on the device, in place, into fresh copies of the current list (so no array a recorded launch
        read is ever overwritten). Needs a periodic box and a built list; returns whether it switched.

        While switched, :attr:`status` ``(NEIGHBOR_STATUS_SIZE,)`` int32 collects, by
        ``NeighborStatus`` index: ``OVERFLOW`` a capacity overflowed, ``NEEDS_HOST`` a non-finite
        position or a changed box (both need the host), ``REBUILDS`` the rebuilds done. After
        either flag the list is not valid: restore and redo the steps on the host.
        """
        if not self.device_updates_supported:
            return False
        current = self.snapshot()
        # private buffers, kept between calls while their shapes fit (so captured graphs stay valid)
        if self._device_buffers is None or any(a.shape != b.shape for a, b in zip(self._device_buffers, current)):
            self._device_buffers = tuple(wp.empty_like(a) for a in current)
            self._saved_buffers = tuple(wp.empty_like(a) for a in current[:3])
        for src, dst in zip(current, self._device_buffers):
            wp.copy(dst, src)
        self.restore(self._device_buffers)
        self._on_device = True
        return True

    def end_device_updates(self) -> None:
        """Switch back to host-checked updates; the list moves to fresh arrays (the private
        buffers are never read by a recorded launch)."""
        self._on_device = False
        self.restore(tuple(wp.clone(a) for a in self.snapshot()))

    @property
    def on_device(self) -> bool:
        """Whether :meth:`update` runs on the device (see :meth:`begin_device_updates`)."""
        return self._on_device

    @property
    def built(self) -> bool:
        return self._cells is not None

    @property
    def device_updates_supported(self) -> bool:
        """Whether updates can run on the device (a periodic box and a built list)."""
        return self.model.periodic and self.neighbor_count is not None and self._cells is not None

    def layout_key(self) -> tuple:
        """``(key, arrays)``: the sizes, grid and cell arrays that a device-side update bakes into
        a captured graph (keep ``arrays`` alive with the key: it holds their ids)."""
        grid = tuple(tuple(np.asarray(g).tolist()) for g in self._grid_args)
        arrays = (*self._cells, self._status, self.model.box)
        return (self.skin, self.capacity, self._cell_capacity, grid, tuple(id(a) for a in arrays)), arrays

    def device_key(self) -> tuple:
        """``(key, arrays)`` of :meth:`layout_key` plus the private buffers of
        :meth:`begin_device_updates`."""
        key, arrays = self.layout_key()
        buffers = (*self._device_buffers, *self._saved_buffers)
        return (key, tuple(id(a) for a in buffers)), (*arrays, *buffers)

    # -- the rollout engine's bookkeeping protocol (simulator.solver.StepBookkeeping) ------------

    def save_device_state(self) -> None:
        """Snapshot the device-updated list into private buffers and clear :attr:`status`
        (launches only: captured at the start of a replayed segment)."""
        for src, dst in zip(self.device_arrays(), self._saved_buffers):
            wp.copy(dst, src)
        self.clear_device_flags()

    def clear_device_flags(self) -> None:
        """Zero :attr:`status` (launches only)."""
        self._status.zero_()

    def restore_device_state(self) -> None:
        """Put back the list of the last :meth:`save_device_state` (before redoing a segment)."""
        for src, dst in zip(self._saved_buffers, self.device_arrays()):
            wp.copy(dst, src)

    def device_updates_valid(self) -> bool:
        """After device-side updates: whether the list stayed valid (no overflow, no non-finite
        position or box change); counts the rebuilds done when it did. One host read."""
        status = self._status.numpy()
        if status[NeighborStatus.OVERFLOW] != 0 or status[NeighborStatus.NEEDS_HOST] != 0:
            return False
        self.rebuild_count += int(status[NeighborStatus.REBUILDS])
        return True

    def step_buffers(self, count: int) -> tuple:
        """Buffers for ``count`` recorded steps updated in place (:meth:`updating_in_place`): a
        ``(neighbor_count, neighbor_index)`` pair per step boundary, so each step's adjoint reads
        the list that step used, and the shared reference positions and box that only the
        (sequential) rebuild decisions read. Needs a built list."""
        neighbor_count, neighbor_index, positions_ref, box_ref = self.snapshot()
        lists = [(wp.empty_like(neighbor_count), wp.empty_like(neighbor_index)) for _ in range(count + 1)]
        return lists, (wp.empty_like(positions_ref), wp.empty_like(box_ref))

    def use_step_buffer(self, buffers: tuple, step: int) -> None:
        """Before recorded step ``step`` (launches only): copy the list of boundary ``step`` into
        boundary ``step + 1``'s buffers and make them current (the step updates them in place)."""
        lists, refs = buffers
        for src, dst in zip(lists[step], lists[step + 1]):
            wp.copy(dst, src)
        self.restore((*lists[step + 1], *refs))

    @staticmethod
    def step_buffer_starts(buffers: tuple) -> list[wp.array]:
        """The buffers a window's start list (a :meth:`snapshot`, in its order) is copied into."""
        lists, refs = buffers
        return [*lists[0], *refs]

    def layout_matches(self, snapshots) -> bool:
        """Whether every snapshot has the current list's array shapes (one capacity)."""
        shapes = [a.shape for a in self.snapshot()]
        return self.built and all([a.shape for a in snap] == shapes for snap in snapshots)

    def snapshot(self) -> tuple:
        """References to the current list: ``(neighbor_count, neighbor_index, reference
        positions, reference box)``. A host rebuild writes new arrays, so a snapshot taken
        outside device updates stays valid."""
        return self.neighbor_count, self.neighbor_index, self._positions_ref, self._box_ref

    def restore(self, snapshot: tuple) -> None:
        """Make ``snapshot`` (from :meth:`snapshot`) the current list."""
        self.neighbor_count, self.neighbor_index, self._positions_ref, self._box_ref = snapshot

    @contextlib.contextmanager
    def restored(self, snapshot: tuple):
        """Use ``snapshot`` inside the block (host-checked updates), then the list from before."""
        kept = self.snapshot()
        self.restore(snapshot)
        try:
            yield self
        finally:
            self.restore(kept)

    @contextlib.contextmanager
    def updating_in_place(self):
        """Inside the block, :meth:`update` checks and rebuilds on the device, in place, into
        whatever arrays :meth:`restore` makes current (for capturing a graph over buffers the
        caller owns); afterwards the list from before is current again."""
        kept = self.snapshot()
        self._on_device = True
        try:
            yield self
        finally:
            self._on_device = False
            self.restore(kept)

    @property
    def status(self) -> wp.array:
        return self._status

    def device_arrays(self) -> list[wp.array]:
        """The arrays a device-side update writes (to snapshot and restore around a replay)."""
        return [self.neighbor_count, self.neighbor_index, self._positions_ref]

    def _device_update(self, positions: wp.array) -> None:
        m = self.model
        p = m.precision
        origin, width, ncell, span = self._grid_args
        wp.launch(
            self._kernels.rebuild_if_moved,
            dim=1,
            inputs=[m.box, int(m.periodic), p.scalar(0.5 * self.skin), p.scalar(self.search_radius), *self._range_args(), p.vec3(*origin),
                    p.vec3(*width), wp.vec3i(*ncell), wp.vec3i(*span), self._cell_capacity, positions, self._box_ref, self._positions_ref],
            outputs=[*self._cells, self.neighbor_count, self.neighbor_index, self._status],
            device=m.device,
            record_tape=False,
        )

    def _range_args(self) -> list:
        """The list kernels' per-pair range arguments (``pair_range`` to ``pair_sigma``)."""
        m = self.model
        return [self._pair_range, m.precision.scalar(self.skin), m.particle_type, m.particle_diameter, m.pair_sigma]

    def _needs_rebuild(self, positions: wp.array) -> bool:
        m = self.model
        self._flag.zero_()
        wp.launch(
            self._kernels.needs_rebuild,
            dim=m.particle_count,
            inputs=[m.box, int(m.periodic), m.precision.scalar(0.5 * self.skin), self._box_ref, self._positions_ref, positions],
            outputs=[self._flag],
            device=m.device,
            record_tape=False,
        )
        return bool(self._flag.numpy()[0])

    def _grid(self, positions_host: np.ndarray):
        """Cell grid: origin, cell widths and counts per axis, stencil half-width per axis."""
        m = self.model
        r = max(self.search_radius, 1e-12)
        origin = np.zeros(3)
        width = np.ones(3)
        ncell = np.ones(3, dtype=np.int64)
        span = np.zeros(3, dtype=np.int64)
        if m.periodic:
            sides = m.box.numpy()[0].astype(np.float64)
            for a in range(m.dim):
                nc = int(math.floor(sides[a] / r))
                if nc >= 3:
                    ncell[a], span[a] = nc, 1
                width[a] = sides[a] / ncell[a]
        else:
            lo = positions_host[:, : m.dim].min(axis=0)
            hi = positions_host[:, : m.dim].max(axis=0)
            # keep the grid at most ~2N cells
            limit = max(1, int(round((2.0 * m.particle_count) ** (1.0 / m.dim))))
            for a in range(m.dim):
                extent = float(hi[a] - lo[a])
                nc = max(1, min(int(math.floor(extent / r)), limit))
                ncell[a], span[a] = nc, 1
                origin[a] = lo[a]
                width[a] = max(extent / nc, r)
        return origin, width, ncell, span

    def build(self, positions: wp.array) -> None:
        """Build the list for ``positions`` now (into new arrays), growing capacities on overflow."""
        m = self.model
        p = m.precision
        self.model.check_box()
        positions_host = positions.numpy()
        if not np.all(np.isfinite(positions_host)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(positions_host), axis=1))[0])
            raise NonFinitePositionsError(
                f"positions must be finite; particle {bad} has {positions_host[bad].tolist()}", particle=bad
            )
        origin, width, ncell, span = self._grid(positions_host)
        n_cells = int(np.prod(ncell))
        if self._cell_capacity is None:
            self._cell_capacity = max(8, int(2.0 * m.particle_count / n_cells) + 8)
        while True:
            # the cell arrays are only read by the list build (never by a recorded launch): reuse them
            shape = (*(int(c) for c in ncell), self._cell_capacity)
            if self._cells is not None and self._cells[2].shape == shape:
                particle_cell, cell_count, cell_particles, cell_positions = self._cells
                cell_count.zero_()
            else:
                cell_count = wp.zeros(shape[:3], dtype=wp.int32, device=m.device)
                cell_particles = wp.zeros(shape, dtype=wp.int32, device=m.device)
                cell_positions = wp.zeros(shape, dtype=p.vec3, device=m.device)
                particle_cell = wp.zeros(m.particle_count, dtype=wp.vec3i, device=m.device)
            wp.launch(
                self._kernels.bin_particles,
                dim=m.particle_count,
                inputs=[m.box, int(m.periodic), p.vec3(*origin), p.vec3(*width), wp.vec3i(*ncell), self._cell_capacity, positions],
                outputs=[particle_cell, cell_count, cell_particles, cell_positions, self._status],
                device=m.device,
                record_tape=False,
            )
            most = int(cell_count.numpy().max())
            if most <= self._cell_capacity:
                break
            logger.info("neighbor list: a cell holds %d particles, growing cell capacity from %d", most, self._cell_capacity)
            self._cell_capacity = int(most * 1.25) + 1
        while True:
            count = wp.zeros(m.particle_count, dtype=wp.int32, device=m.device)
            index = wp.zeros((m.particle_count, self.capacity), dtype=wp.int32, device=m.device)
            wp.launch(
                self._kernels.build_half_list,
                dim=m.particle_count,
                inputs=[
                    m.box,
                    int(m.periodic),
                    p.scalar(self.search_radius),
                    *self._range_args(),
                    wp.vec3i(*ncell),
                    wp.vec3i(*span),
                    self._cell_capacity,
                    particle_cell,
                    cell_count,
                    cell_particles,
                    cell_positions,
                    positions,
                ],
                outputs=[count, index, self._status],
                device=m.device,
                record_tape=False,
            )
            most = int(count.numpy().max())
            if most <= self.capacity:
                break
            new_capacity = int(most * 1.25) + 1
            logger.info("neighbor list overflow: a particle has %d neighbors, growing capacity from %d to %d", most, self.capacity,
                        new_capacity)
            self.capacity = new_capacity
        self.neighbor_count, self.neighbor_index = count, index
        self._grid_args = (origin, width, ncell, span)
        self._cells = (particle_cell, cell_count, cell_particles, cell_positions)
        self._positions_ref = wp.array(positions_host, dtype=p.vec3, device=m.device)
        self._box_ref = wp.array(m.box.numpy(), dtype=p.vec3, device=m.device)
        self.rebuild_count += 1

    def pair_count(self) -> int:
        """Number of listed pairs (within cutoff + skin, or sigma_ij + skin, at the last build)."""
        return int(self.neighbor_count.numpy().sum()) if self.neighbor_count is not None else 0
