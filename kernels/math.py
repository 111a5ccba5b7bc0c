"""Smooth scalar helpers shared by the kernel families, built per precision.

``detach`` is an identity whose adjoint is zero (a stop-gradient); ``straight_through(hard, soft)``
= ``soft + detach(hard - soft)`` evaluates to ``hard`` while its derivative is that of ``soft``.
"""

import functools
from types import SimpleNamespace

import warp as wp


@functools.cache
def math_functions(scalar):
    """Return the helper ``wp.func`` objects for one scalar type (``wp.float32`` or ``wp.float64``)."""

    @wp.func
    def detach(x: scalar):
        return x

    @wp.func_grad(detach)
    def adj_detach(x: scalar, adj_ret: scalar):
        pass  # the adjoint of a stop-gradient is zero

    vec3 = wp.types.vector(3, scalar)

    @wp.func
    def detach_vec3(x: vec3):
        return x

    @wp.func_grad(detach_vec3)
    def adj_detach_vec3(x: vec3, adj_ret: vec3):
        pass

    @wp.func
    def straight_through(value: vec3, surrogate: vec3):
        """Evaluates to ``value``; differentiates as ``surrogate``."""
        return surrogate + detach_vec3(value - surrogate)

    @wp.func
    def softplus(x: scalar, length: scalar):
        """length * log(1 + exp(x / length)); max(x, 0) when length <= 0. Units of x."""
        zero = scalar(0.0)
        if length <= zero:
            return wp.max(x, zero)
        z = x / length
        return length * (wp.max(z, zero) + wp.log(scalar(1.0) + wp.exp(-wp.abs(z))))

    @wp.func
    def sigmoid(x: scalar, length: scalar):
        """d softplus / dx = 1 / (1 + exp(-x / length)); the step x > 0 when length <= 0."""
        zero = scalar(0.0)
        one = scalar(1.0)
        if length <= zero:
            if x > zero:
                return one
            return zero
        z = x / length
        if z >= zero:
            return one / (one + wp.exp(-z))
        e = wp.exp(z)
        return e / (one + e)

    @wp.func
    def safe_length(v: wp.types.vector(3, scalar)):
        """|v| with a tiny floor inside the square root so its derivative stays finite at v = 0."""
        return wp.sqrt(wp.dot(v, v) + scalar(1.0e-30))

    return SimpleNamespace(detach=detach, straight_through=straight_through, softplus=softplus, sigmoid=sigmoid, safe_length=safe_length)
