"""Invalid joints and actuators raise ValueError naming the parameter and the value."""

import pytest

import simulator as sim


def two_bodies():
    b = sim.SceneBuilder()
    a = b.add_body(mass=1.0, inertia=[0.1] * 3)
    c = b.add_body(position=(1, 0, 0), mass=1.0, inertia=[0.1] * 3)
    return b, a, c


def test_missing_body():
    b, a, _ = two_bodies()
    with pytest.raises(ValueError, match=r"child of joint0 must be a body index in \[0, 2\), got 5"):
        b.add_revolute_joint(a, 5, axis=(0, 0, 1))
    with pytest.raises(ValueError, match=r"parent of joint0 .* got 7"):
        b.add_revolute_joint(7, a, axis=(0, 0, 1))


def test_zero_axis():
    b, a, c = two_bodies()
    with pytest.raises(ValueError, match=r"axis of joint0 must be non-zero, got \[0.0, 0.0, 0.0\]"):
        b.add_revolute_joint(a, c, axis=(0, 0, 0))


def test_kinematic_loop():
    b, a, c = two_bodies()
    b.add_free_joint(a)
    b.add_revolute_joint(a, c, axis=(0, 0, 1))
    with pytest.raises(ValueError, match="kinematic loop: body 0 .* second parent 1"):
        b.add_revolute_joint(c, a, axis=(0, 0, 1))
    b2, a2, c2 = two_bodies()
    b2.add_revolute_joint(a2, c2, axis=(0, 0, 1))
    with pytest.raises(ValueError, match="kinematic loop"):
        b2.add_revolute_joint(c2, a2, axis=(0, 0, 1))
    with pytest.raises(ValueError, match="parent == child"):
        b2.add_revolute_joint(a2, a2, axis=(0, 0, 1))


def test_parent_without_joint_and_bad_actuators(device):
    b, a, c = two_bodies()
    j = b.add_revolute_joint(a, c, axis=(0, 0, 1))
    with pytest.raises(ValueError, match="body 0 .* is the parent of joint0 but has no joint itself"):
        b.finalize(device=device)
    with pytest.raises(ValueError, match="kind of actuator0 must be one of"):
        b.add_actuator(j, kind="muscle")
    with pytest.raises(ValueError, match=r"ctrl_range of actuator0 must be \(low, high\)"):
        b.add_actuator(j, ctrl_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="joint of actuator0 must be a joint index"):
        b.add_actuator(3)
    with pytest.raises(ValueError, match=r"limit of joint1 must have lower < upper"):
        b.add_revolute_joint(-1, a, axis=(0, 0, 1), limit=(0.5, -0.5))
