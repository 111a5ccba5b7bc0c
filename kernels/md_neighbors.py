"""Cell-list neighbor search for molecular dynamics (not differentiable: integer outputs).

A *half* Verlet list: every pair within ``cutoff + skin`` (a soft sphere: ``sigma_ij + skin``) at
build time appears once, under one of its two particles (j > i within a cell; between cells,
under the particle whose cell comes first in a half stencil); particle i's partners are stored in
``neighbor_index[i, 0:neighbor_count[i]]``. ``neighbor_count[i]`` keeps counting past the
capacity, so the caller can detect an overflow, resize and rebuild.

Cells: the search region (the periodic box, or the bounding box of the particles in free space)
is cut into ``ncell[a]`` cells of width ``cell_width[a] >= cutoff + skin`` along each axis a.
A periodic axis with fewer than 3 cells uses a single cell (no stencil wrap-around duplicates);
the minimum-image convention then picks the right copy of each pair.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .constants import NeighborStatus, PairRange, StatusFlag

# the older names of the ``pair_range`` values (see ``PairRange``), kept importable
RANGE_CUTOFF = int(PairRange.CUTOFF)
RANGE_DIAMETERS = int(PairRange.DIAMETERS)
RANGE_TYPE_SIGMA = int(PairRange.TYPE_SIGMA)


@functools.cache
def neighbor_kernels(scalar):
    """Build the neighbor-search kernels for one scalar type."""
    vec3 = wp.types.vector(3, scalar)

    @wp.func
    def min_image(d: vec3, box: vec3, inv_box: vec3, periodic: int):
        """Minimum-image displacement; ``inv_box`` holds 1 / box per axis (rint: one instruction)."""
        if periodic == 0:
            return d
        return d - wp.cw_mul(box, vec3(wp.rint(d[0] * inv_box[0]), wp.rint(d[1] * inv_box[1]), wp.rint(d[2] * inv_box[2])))

    @wp.func
    def fold_count(x: scalar, side: scalar):
        """How many box sides to subtract from the coordinate x to fold it into [0, side): zero,
        with no division, for the usual particle already inside."""
        if x >= scalar(0.0) and x < side:
            return scalar(0.0)
        return wp.floor(x / side)

    @wp.func
    def wrap_shift(x: vec3, box: vec3, periodic: int):
        """:func:`fold_count` per axis (zero in free space); ``wrap(x) = x - box * wrap_shift(x)``."""
        if periodic == 0:
            return vec3()
        return vec3(fold_count(x[0], box[0]), fold_count(x[1], box[1]), fold_count(x[2], box[2]))

    @wp.func
    def wrap(x: vec3, box: vec3, periodic: int):
        """Fold a position into [0, box) on every axis of a periodic box."""
        if periodic == 0:
            return x
        return x - wp.cw_mul(box, wrap_shift(x, box, periodic))

    @wp.func
    def inverse(box: vec3):
        return vec3(scalar(1.0) / box[0], scalar(1.0) / box[1], scalar(1.0) / box[2])

    @wp.func
    def cell_coord(x: scalar, origin: scalar, width: scalar, n: int):
        c = int(wp.floor((x - origin) / width))
        return wp.clamp(c, 0, n - 1)

    @wp.func
    def bin_particle(
        i: int,
        box: vec3,
        periodic: int,
        origin: vec3,
        cell_width: vec3,
        ncell: wp.vec3i,
        cell_capacity: int,
        positions: wp.array(dtype=vec3),
        particle_cell: wp.array(dtype=wp.vec3i),
        cell_count: wp.array3d(dtype=int),
        cell_particles: wp.array4d(dtype=int),
        cell_positions: wp.array4d(dtype=vec3),
        status: wp.array(dtype=int),
    ):
        """Put particle i (index and position folded into the box) into its cell; ``status[OVERFLOW]``
        is raised if the cell overflows."""
        x = wrap(positions[i], box, periodic)
        c = wp.vec3i(
            cell_coord(x[0], origin[0], cell_width[0], ncell[0]),
            cell_coord(x[1], origin[1], cell_width[1], ncell[1]),
            cell_coord(x[2], origin[2], cell_width[2], ncell[2]),
        )
        particle_cell[i] = c
        slot = wp.atomic_add(cell_count, c[0], c[1], c[2], 1)
        if slot < cell_capacity:
            cell_particles[c[0], c[1], c[2], slot] = i
            cell_positions[c[0], c[1], c[2], slot] = x
        else:
            status[NeighborStatus.OVERFLOW] = StatusFlag.RAISED

    @wp.func
    def moved_too_far(x: vec3, x_ref: vec3, box: vec3, inv_box: vec3, periodic: int, reach2: scalar):
        """Whether x is farther than sqrt(reach2) from x_ref (also true for a non-finite x)."""
        d = min_image(x - x_ref, box, inv_box, periodic)
        return not (wp.dot(d, d) <= reach2)

    @wp.func
    def stencil_cell(c: int, n: int, periodic: int):
        """A stencil cell index ``c`` (at most one box off) along one axis of ``n`` cells: the
        cell (folded into [0, n) in a periodic box; left out of range in free space) and the
        shift, in box sides (-1, 0 or 1), of the image of its particles that the stencil means."""
        shift = scalar(0.0)
        if periodic != 0:
            if c >= n:
                c = c - n
                shift = scalar(1.0)
            elif c < 0:
                c = c + n
                shift = scalar(-1.0)
        return c, shift

    @wp.func
    def within_pair_range(
        r2: scalar,
        i: int,
        j: int,
        pair_range: int,
        skin: scalar,
        particle_type: wp.array(dtype=int),
        particle_diameter: wp.array(dtype=scalar),
        pair_sigma: wp.array2d(dtype=scalar),
    ):
        """Whether a pair at squared distance r2 (inside the search radius) belongs in the list."""
        if pair_range == PairRange.CUTOFF:
            return True
        sigma = scalar(0.0)
        if pair_range == PairRange.DIAMETERS:
            sigma = scalar(0.5) * (particle_diameter[i] + particle_diameter[j])
        else:
            ti = particle_type[i]
            tj = particle_type[j]
            sigma = pair_sigma[wp.min(ti, tj), wp.max(ti, tj)]
        reach = sigma + skin
        return r2 < reach * reach

    @wp.func
    def list_partners(
        i: int,
        box: vec3,
        periodic: int,
        search_radius: scalar,
        pair_range: int,
        skin: scalar,
        particle_type: wp.array(dtype=int),
        particle_diameter: wp.array(dtype=scalar),
        pair_sigma: wp.array2d(dtype=scalar),
        ncell: wp.vec3i,
        span: wp.vec3i,
        cell_capacity: int,
        particle_cell: wp.array(dtype=wp.vec3i),
        cell_count: wp.array3d(dtype=int),
        cell_particles: wp.array4d(dtype=int),
        cell_positions: wp.array4d(dtype=vec3),
        positions: wp.array(dtype=vec3),
        neighbor_count: wp.array(dtype=int),
        neighbor_index: wp.array2d(dtype=int),
        status: wp.array(dtype=int),
    ):
        """List the partners of particle i within the search radius (``pair_range``: or within
        sigma_ij + skin); ``status[OVERFLOW]`` is raised on overflow.

        Candidates are read from their cell's positions (folded into the box when binned, so
        each lies in its cell), which makes the image of a partner known per stencil cell (the
        cell index wrapped around the box or not): the displacement needs no rounding per
        candidate. Only an axis with a single cell (``span`` 0) takes the minimum image per
        candidate."""
        xi = wrap(positions[i], box, periodic)
        inv_b = inverse(box)
        ci = particle_cell[i]
        capacity = neighbor_index.shape[1]
        r2max = search_radius * search_radius
        image_x = periodic != 0 and span[0] == 0
        image_y = periodic != 0 and span[1] == 0
        image_z = periodic != 0 and span[2] == 0
        count = int(0)
        # half stencil: the own cell (pairs j > i) and the cell offsets after (0, 0, 0) in
        # lexicographic order (every pair of particles in different cells is seen once)
        for ox in range(0, span[0] + 1):
            cx, sx = stencil_cell(ci[0] + ox, ncell[0], periodic)
            if cx < ncell[0]:
                ylo = -span[1]
                if ox == 0:
                    ylo = 0
                for oy in range(ylo, span[1] + 1):
                    cy, sy = stencil_cell(ci[1] + oy, ncell[1], periodic)
                    if cy >= 0 and cy < ncell[1]:
                        zlo = -span[2]
                        if ox == 0 and oy == 0:
                            zlo = 0
                        for oz in range(zlo, span[2] + 1):
                            cz, sz = stencil_cell(ci[2] + oz, ncell[2], periodic)
                            if cz >= 0 and cz < ncell[2]:
                                own = ox == 0 and oy == 0 and oz == 0
                                # the displacement to the image x_j + box * shift is (x_i - box * shift) - x_j
                                xs = xi - wp.cw_mul(box, vec3(sx, sy, sz))
                                n = wp.min(cell_count[cx, cy, cz], cell_capacity)
                                for k in range(n):
                                    d = xs - cell_positions[cx, cy, cz, k]
                                    if image_x:
                                        d = vec3(d[0] - box[0] * wp.rint(d[0] * inv_b[0]), d[1], d[2])
                                    if image_y:
                                        d = vec3(d[0], d[1] - box[1] * wp.rint(d[1] * inv_b[1]), d[2])
                                    if image_z:
                                        d = vec3(d[0], d[1], d[2] - box[2] * wp.rint(d[2] * inv_b[2]))
                                    r2 = wp.dot(d, d)
                                    if r2 < r2max:
                                        j = cell_particles[cx, cy, cz, k]
                                        if (j > i or not own) and within_pair_range(
                                            r2, i, j, pair_range, skin, particle_type, particle_diameter, pair_sigma
                                        ):
                                            if count < capacity:
                                                neighbor_index[i, count] = j
                                            count += 1
        neighbor_count[i] = count
        if count > capacity:
            status[NeighborStatus.OVERFLOW] = StatusFlag.RAISED

    @wp.kernel(enable_backward=False)
    def bin_particles(
        # Model:
        box: wp.array(dtype=vec3),
        periodic: int,
        # Grid:
        origin: vec3,
        cell_width: vec3,
        ncell: wp.vec3i,
        cell_capacity: int,
        # State in:
        positions: wp.array(dtype=vec3),
        # Out:
        particle_cell: wp.array(dtype=wp.vec3i),
        cell_count: wp.array3d(dtype=int),
        cell_particles: wp.array4d(dtype=int),
        cell_positions: wp.array4d(dtype=vec3),
        status: wp.array(dtype=int),
    ):
        """Sort particles into the zeroed cells; ``status[OVERFLOW]`` is raised if a cell overflows."""
        i = wp.tid()
        bin_particle(i, box[0], periodic, origin, cell_width, ncell, cell_capacity, positions, particle_cell, cell_count, cell_particles,
                     cell_positions, status)

    @wp.kernel(enable_backward=False)
    def build_half_list(
        # Model:
        box: wp.array(dtype=vec3),
        periodic: int,
        search_radius: scalar,
        pair_range: int,
        skin: scalar,
        particle_type: wp.array(dtype=int),
        particle_diameter: wp.array(dtype=scalar),
        pair_sigma: wp.array2d(dtype=scalar),
        # Grid:
        ncell: wp.vec3i,
        span: wp.vec3i,
        cell_capacity: int,
        particle_cell: wp.array(dtype=wp.vec3i),
        cell_count: wp.array3d(dtype=int),
        cell_particles: wp.array4d(dtype=int),
        cell_positions: wp.array4d(dtype=vec3),
        # State in:
        positions: wp.array(dtype=vec3),
        # Out:
        neighbor_count: wp.array(dtype=int),
        neighbor_index: wp.array2d(dtype=int),
        status: wp.array(dtype=int),
    ):
        """List the partners of every particle; ``status[OVERFLOW]`` is raised on overflow."""
        i = wp.tid()
        list_partners(i, box[0], periodic, search_radius, pair_range, skin, particle_type, particle_diameter, pair_sigma, ncell, span,
                      cell_capacity, particle_cell, cell_count, cell_particles, cell_positions, positions, neighbor_count, neighbor_index,
                      status)

    @wp.kernel(enable_backward=False)
    def needs_rebuild(
        # Model:
        box: wp.array(dtype=vec3),
        periodic: int,
        half_skin: scalar,
        # Reference (at the last build):
        box_ref: wp.array(dtype=vec3),
        positions_ref: wp.array(dtype=vec3),
        # State in:
        positions: wp.array(dtype=vec3),
        # Out:
        flag: wp.array(dtype=int),
    ):
        """Raise ``flag[0]`` if a particle moved more than half the skin or the box changed."""
        i = wp.tid()
        b = box[0]
        if i == 0:
            if b[0] != box_ref[0][0] or b[1] != box_ref[0][1] or b[2] != box_ref[0][2]:
                flag[0] = StatusFlag.RAISED
        if moved_too_far(positions[i], positions_ref[i], b, inverse(b), periodic, half_skin * half_skin):
            flag[0] = StatusFlag.RAISED

    @wp.kernel(enable_backward=False)
    def rebuild_if_moved(
        # Model:
        box: wp.array(dtype=vec3),
        periodic: int,
        half_skin: scalar,
        search_radius: scalar,
        pair_range: int,
        skin: scalar,
        particle_type: wp.array(dtype=int),
        particle_diameter: wp.array(dtype=scalar),
        pair_sigma: wp.array2d(dtype=scalar),
        # Grid:
        origin: vec3,
        cell_width: vec3,
        ncell: wp.vec3i,
        span: wp.vec3i,
        cell_capacity: int,
        # State in:
        positions: wp.array(dtype=vec3),
        # Reference (in/out: set to ``positions`` on a rebuild):
        box_ref: wp.array(dtype=vec3),
        positions_ref: wp.array(dtype=vec3),
        # Out (written on a rebuild):
        particle_cell: wp.array(dtype=wp.vec3i),
        cell_count: wp.array3d(dtype=int),
        cell_particles: wp.array4d(dtype=int),
        cell_positions: wp.array4d(dtype=vec3),
        neighbor_count: wp.array(dtype=int),
        neighbor_index: wp.array2d(dtype=int),
        status: wp.array(dtype=int),
    ):
        """The whole list update on one thread (launch with dim 1; for captured CPU graphs, where
        Warp runs every kernel on one thread anyway and a skipped per-particle launch still costs
        its per-thread overhead): if a particle moved more than half the skin, set the reference
        positions, re-bin and rebuild the list, and count the rebuild in ``status[REBUILDS]``.
        ``status[NEEDS_HOST]`` is raised if a position is not finite or the box changed (both need
        the host: the caller must redo the step there); ``status[OVERFLOW]`` if a capacity
        overflowed (indices: ``NeighborStatus``)."""
        b = box[0]
        inv_b = inverse(b)
        n = positions.shape[0]
        moved = int(0)
        if b[0] != box_ref[0][0] or b[1] != box_ref[0][1] or b[2] != box_ref[0][2]:
            status[NeighborStatus.NEEDS_HOST] = StatusFlag.RAISED
        reach2 = half_skin * half_skin
        for i in range(n):
            if moved_too_far(positions[i], positions_ref[i], b, inv_b, periodic, reach2):
                moved = 1
        if moved != 0:
            for i in range(n):
                if not wp.isfinite(positions[i]):
                    status[NeighborStatus.NEEDS_HOST] = StatusFlag.RAISED
            status[NeighborStatus.REBUILDS] = status[NeighborStatus.REBUILDS] + 1
            for i in range(n):
                positions_ref[i] = positions[i]
            for cx in range(cell_count.shape[0]):
                for cy in range(cell_count.shape[1]):
                    for cz in range(cell_count.shape[2]):
                        cell_count[cx, cy, cz] = 0
            for i in range(n):
                bin_particle(i, b, periodic, origin, cell_width, ncell, cell_capacity, positions, particle_cell, cell_count, cell_particles,
                             cell_positions, status)
            for i in range(n):
                list_partners(i, b, periodic, search_radius, pair_range, skin, particle_type, particle_diameter, pair_sigma, ncell, span,
                              cell_capacity, particle_cell, cell_count, cell_particles, cell_positions, positions, neighbor_count,
                              neighbor_index, status)

    return SimpleNamespace(
        min_image=min_image,
        inverse=inverse,
        wrap=wrap,
        wrap_shift=wrap_shift,
        bin_particles=bin_particles,
        build_half_list=build_half_list,
        needs_rebuild=needs_rebuild,
        rebuild_if_moved=rebuild_if_moved,
    )


def build_all():
    """Instantiate both precisions up front so the module's contents (and its hash) never change."""
    for scalar in (wp.float32, wp.float64):
        neighbor_kernels(scalar)


build_all()
