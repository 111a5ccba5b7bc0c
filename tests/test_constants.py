"""One source for every enum-like constant: ``simulator.kernels.constants``.

The kernels read the enum members inside Warp code, the host reads them in Python; these tests
check that both see the same values, that every member has its host-side table entry, and that
no other module defines its own copy.
"""

import pathlib
import re

import numpy as np
import pytest
import warp as wp

import simulator as sim
from simulator import articulation, contact, shapes
from simulator.kernels import articulation as articulation_kernels
from simulator.kernels import md as md_kernels
from simulator.kernels import md_neighbors, md_potentials, rigid
from simulator.kernels.constants import (
    JOINT_COORD_COUNT,
    JOINT_DOF_COUNT,
    NEIGHBOR_STATUS_SIZE,
    NO_DIVERGENCE,
    ActuatorType,
    CandidateKind,
    ContactMode,
    JointType,
    NeighborStatus,
    PairAdjoint,
    PairRange,
    PotentialKind,
    ShapeType,
    StatusFlag,
)
from simulator.md import potentials

wp.config.quiet = True

ROOT = pathlib.Path(__file__).resolve().parents[1]


# each kernel writes every member of one enum, in definition order, through the attribute syntax
# the production kernels use; a member added to the enum and not written here leaves a -1 behind
@wp.kernel
def write_shape_types(out: wp.array(dtype=int)):
    out[0] = ShapeType.SPHERE
    out[1] = ShapeType.BOX
    out[2] = ShapeType.CAPSULE
    out[3] = ShapeType.PLANE
    out[4] = ShapeType.MESH


@wp.kernel
def write_candidate_kinds(out: wp.array(dtype=int)):
    out[0] = CandidateKind.POINT
    out[1] = CandidateKind.SEGMENT


@wp.kernel
def write_contact_modes(out: wp.array(dtype=int)):
    out[0] = ContactMode.SOFT
    out[1] = ContactMode.SURROGATE


@wp.kernel
def write_joint_types(out: wp.array(dtype=int)):
    out[0] = JointType.FREE
    out[1] = JointType.FIXED
    out[2] = JointType.REVOLUTE
    out[3] = JointType.PRISMATIC
    out[4] = JointType.BALL


@wp.kernel
def write_actuator_types(out: wp.array(dtype=int)):
    out[0] = ActuatorType.MOTOR
    out[1] = ActuatorType.POSITION


@wp.kernel
def write_potential_kinds(out: wp.array(dtype=int)):
    out[0] = PotentialKind.LENNARD_JONES
    out[1] = PotentialKind.SOFT_SPHERE
    out[2] = PotentialKind.MORSE


@wp.kernel
def write_pair_ranges(out: wp.array(dtype=int)):
    out[0] = PairRange.CUTOFF
    out[1] = PairRange.DIAMETERS
    out[2] = PairRange.TYPE_SIGMA


@wp.kernel
def write_pair_adjoint_bits(out: wp.array(dtype=int)):
    out[0] = PairAdjoint.ADJ_FORCES
    out[1] = PairAdjoint.ADJ_ENERGY
    out[2] = PairAdjoint.ADJ_VIRIAL
    out[3] = PairAdjoint.GRAD_POSITIONS
    out[4] = PairAdjoint.GRAD_DIAMETER
    out[5] = PairAdjoint.GRAD_EPSILON
    out[6] = PairAdjoint.GRAD_SIGMA
    out[7] = PairAdjoint.GRAD_ALPHA
    out[8] = PairAdjoint.GRAD_BOX


@wp.kernel
def write_neighbor_status(out: wp.array(dtype=int)):
    # the index names address the entries the way the neighbor kernels do
    out[NeighborStatus.OVERFLOW] = NeighborStatus.OVERFLOW
    out[NeighborStatus.NEEDS_HOST] = NeighborStatus.NEEDS_HOST
    out[NeighborStatus.REBUILDS] = NeighborStatus.REBUILDS


@wp.kernel
def write_status_flags(out: wp.array(dtype=int)):
    out[0] = StatusFlag.CLEAR
    out[1] = StatusFlag.RAISED


@wp.kernel
def write_no_divergence(out: wp.array(dtype=int)):
    out[0] = NO_DIVERGENCE


WRITERS = [
    (ShapeType, write_shape_types),
    (CandidateKind, write_candidate_kinds),
    (ContactMode, write_contact_modes),
    (JointType, write_joint_types),
    (ActuatorType, write_actuator_types),
    (PotentialKind, write_potential_kinds),
    (PairRange, write_pair_ranges),
    (PairAdjoint, write_pair_adjoint_bits),
    (NeighborStatus, write_neighbor_status),
    (StatusFlag, write_status_flags),
]


@pytest.mark.parametrize("enum, writer", WRITERS, ids=[e.__name__ for e, _ in WRITERS])
def test_kernel_sees_the_host_values(enum, writer):
    out = wp.full(len(enum), -1, dtype=int, device="cpu")
    wp.launch(writer, dim=1, inputs=[out], device="cpu")
    assert out.numpy().tolist() == [int(member) for member in enum]


def test_no_divergence_is_int32_max_in_a_kernel():
    out = wp.zeros(1, dtype=int, device="cpu")
    wp.launch(write_no_divergence, dim=1, inputs=[out], device="cpu")
    assert int(out.numpy()[0]) == NO_DIVERGENCE == np.iinfo(np.int32).max


def test_values_are_distinct_and_bits_are_single_bits():
    for enum, _ in WRITERS:
        values = [int(member) for member in enum]
        assert len(set(values)) == len(values) == len(enum.__members__), enum.__name__
    assert all(bin(int(bit)).count("1") == 1 for bit in PairAdjoint)
    assert sorted(int(i) for i in NeighborStatus) == list(range(NEIGHBOR_STATUS_SIZE))


def test_older_names_are_the_enum_values():
    """The names other modules import (``from simulator.kernels.rigid import SHAPE_BOX``) are
    derived from the enums, so they cannot drift."""
    for enum, module, prefix in [
        (ShapeType, rigid, "SHAPE_"),
        (CandidateKind, rigid, "KIND_"),
        (ContactMode, rigid, "CONTACT_"),
        (JointType, articulation_kernels, "JOINT_"),
        (ActuatorType, articulation_kernels, "ACTUATOR_"),
        (PotentialKind, md_potentials, ""),
        (PairRange, md_neighbors, "RANGE_"),
        (PairAdjoint, md_kernels, ""),
    ]:
        for member in enum:
            old = getattr(module, prefix + member.name)
            assert type(old) is int and old == int(member), (module.__name__, prefix + member.name)
    assert rigid.NO_DIVERGENCE == md_kernels.NO_DIVERGENCE == NO_DIVERGENCE


def test_host_tables_cover_every_member():
    assert set(shapes.SHAPE_NAMES) == set(ShapeType)
    assert [ShapeType[name.upper()] for name in shapes.SHAPE_NAMES.values()] == list(ShapeType)
    assert contact.CONTACT_MODES == ("soft", "surrogate")
    assert [ContactMode[mode.upper()] for mode in contact.CONTACT_MODES] == list(ContactMode)
    assert set(JOINT_COORD_COUNT) == set(JOINT_DOF_COUNT) == set(JointType)
    assert set(articulation.JOINT_NAMES) == set(JointType) == set(articulation.JOINT_KINDS.values())
    assert set(articulation.ACTUATOR_KINDS.values()) == set(ActuatorType)
    assert set(md_potentials.potential_functions(wp.float64).energy_force) == set(PotentialKind)
    made = [potentials.LennardJones(), potentials.SoftSphere(), potentials.Morse()]
    assert {p.kind for p in made} == set(PotentialKind)
    assert all(p.name == PotentialKind(p.kind).name.lower() for p in made)


@pytest.mark.parametrize("kind", ["free", "fixed", "revolute", "prismatic", "ball"])
def test_joint_counts_size_the_state(kind):
    """A one-joint model owns exactly the coordinates and dofs its ``JointType`` declares."""
    b = sim.SceneBuilder()
    body = b.add_body(position=(0.0, 0.0, 1.0), mass=1.0, inertia=[0.1] * 3)
    axis = (0.0, 0.0, 1.0) if kind in ("revolute", "prismatic") else None
    b.add_joint(kind, -1, body, axis=axis)
    model = b.finalize(num_worlds=2, device="cpu", precision="float64")
    state = model.state()
    joint_type = JointType[kind.upper()]
    assert state.joint_q.shape == (2, joint_type.coord_count)
    assert state.joint_qd.shape == (2, joint_type.dof_count)


def test_no_second_definition():
    """No module of the package defines Warp constants or numeric kind tables of its own: they
    all come from ``kernels/constants.py``."""
    offenders = []
    for folder in ("kernels", "simulator", "scenes", "demos"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            if path.name == "constants.py" and folder == "kernels":
                continue
            if "wp.constant(" in text or re.search(r"^[A-Z_]+ *= *wp\.constant", text, re.M):
                offenders.append(f"{path.relative_to(ROOT)}: wp.constant")
            if re.search(r"^[A-Z_]+(, *[A-Z_]+)+ *= *\d+(, *\d+)+ *$", text, re.M):
                offenders.append(f"{path.relative_to(ROOT)}: a tuple of integer codes")
    assert not offenders, offenders
