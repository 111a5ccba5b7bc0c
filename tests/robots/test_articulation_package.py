"""The articulation package: public imports, typed tables, and kernel parameters named like the
model fields the launch wrappers pass to them."""

import dataclasses
import inspect

import warp as wp

import simulator as sim
from simulator.articulation import launch
from simulator.kernels.articulation import articulation_kernels


def kernel_parameters(kernel) -> list[str]:
    return list(inspect.signature(kernel.func).parameters)


def test_public_imports():
    from simulator.articulation import ArticulationBuilderMixin, ArticulationModel, eval_fk, step_articulations

    assert sim.ArticulationModel is ArticulationModel and sim.eval_fk is eval_fk
    assert issubclass(sim.SceneBuilder, ArticulationBuilderMixin) and callable(step_articulations)


def test_kernel_parameters_are_named_like_the_fields_they_receive():
    """MuJoCo Warp's lint, for our launches: the leading kernel parameters are exactly the names
    the wrappers read from Model and ArticulationModel, and each name is such a field."""
    kernels = articulation_kernels(wp.float32)
    launches = {  # kernel: (per-world Model fields, shared ArticulationModel tables)
        kernels.forward_kinematics: ((), launch.FK_TABLES),
        kernels.articulation_bias: (launch.BIAS_PER_WORLD, launch.BIAS_TABLES),
        kernels.articulation_joint_forces: (launch.JOINT_FORCES_PER_WORLD, launch.JOINT_FORCES_TABLES),
        kernels.articulation_solve: ((), launch.SOLVE_TABLES),
        kernels.articulation_integrate: ((), launch.INTEGRATE_TABLES),
    }
    model_fields = {f.name for f in dataclasses.fields(sim.Model)}
    table_fields = {f.name for f in dataclasses.fields(sim.ArticulationModel)}
    for kernel, (per_world, tables) in launches.items():
        names = tuple(per_world) + tuple(tables)
        assert kernel_parameters(kernel)[: len(names)] == list(names), kernel.key
        assert set(per_world) <= model_fields
        assert set(tables) <= table_fields


def test_tables_are_typed_arrays():
    b = sim.SceneBuilder()
    a = b.add_body(mass=1.0, inertia=[0.1] * 3)
    c = b.add_body(position=(1, 0, 0), mass=1.0, inertia=[0.1] * 3)
    b.add_free_joint(a)
    b.add_revolute_joint(a, c, axis=(0, 1, 0), limit=(-1.0, 1.0))
    art = b.finalize(device="cpu").articulation
    assert (art.num_links, art.num_dofs, art.num_coords) == (2, 7, 8)
    assert art.link_parent.numpy().tolist() == [-1, 0] and art.link_dof_count.numpy().tolist() == [6, 1]
    assert art.dof_limit_stiffness.numpy().tolist() == [0.0] * 6 + [2500.0]  # solref (0.02, 1): 1/0.02^2 [1/s^2]
