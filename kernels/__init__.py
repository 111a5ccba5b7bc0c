"""Warp kernels: the leaf layer of the package.

Modules here import nothing but Warp and each other. Each kernel family is built once per
floating-point precision by a cached factory (``rigid_kernels(wp.float64)``), so the same source
serves float32 and float64 and every kernel keeps its adjoint for ``wp.Tape``.
"""
