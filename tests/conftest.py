"""Shared test helpers: the Warp device of the suite and a central-difference check of a recorded
rollout's gradient."""

import os

import numpy as np
import pytest
import warp as wp

wp.config.quiet = True


@pytest.fixture(scope="session")
def device() -> str:
    """The Warp device the suite runs on: ``SIMULATOR_TEST_DEVICE`` (default ``"cpu"``; run the
    suite on a GPU with ``SIMULATOR_TEST_DEVICE=cuda``)."""
    return os.environ.get("SIMULATOR_TEST_DEVICE", "cpu")


def _one_hot(array: wp.array, index) -> wp.array:
    seed = np.zeros(array.numpy().shape, dtype=array.numpy().dtype)
    seed[index] = 1.0
    return wp.array(seed, dtype=array.dtype, device=array.device)


class RolloutGradCheck:
    """Compare d output / d parameter from ``wp.Tape`` with a central difference.

    ``run()`` simulates from scratch using the current parameter values and returns something
    that ``output(result)`` maps to ``(array, index)``: the scalar output is ``array.numpy()[index]``.
    """

    def tape_gradient(self, run, output, parameter: wp.array, index) -> float:
        tape = wp.Tape()
        with tape:
            result = run()
        array, out_index = output(result)
        tape.backward(grads={array: _one_hot(array, out_index)})
        value = float(parameter.grad.numpy()[index])
        tape.zero()
        return value

    def central_difference(self, run, output, parameter: wp.array, index, eps: float) -> float:
        base = parameter.numpy().copy()

        def evaluate(delta):
            values = base.copy()
            values[index] += delta
            parameter.assign(values)
            array, out_index = output(run())
            return float(array.numpy()[out_index])

        try:
            return (evaluate(eps) - evaluate(-eps)) / (2.0 * eps)
        finally:
            parameter.assign(base)

    def __call__(self, run, output, parameter, index, *, eps=1e-6, rtol=1e-4, atol=1e-9):
        analytic = self.tape_gradient(run, output, parameter, index)
        numeric = self.central_difference(run, output, parameter, index, eps)
        assert np.isfinite(analytic), f"non-finite tape gradient {analytic}"
        assert abs(analytic - numeric) <= rtol * abs(numeric) + atol, (
            f"tape gradient {analytic!r} != central difference {numeric!r} "
            f"(relative error {abs(analytic - numeric) / max(abs(numeric), 1e-300):.2e})"
        )
        return analytic, numeric


@pytest.fixture
def rollout_gradcheck():
    return RolloutGradCheck()
