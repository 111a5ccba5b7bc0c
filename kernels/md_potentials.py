"""Pair potentials for molecular dynamics, as ``wp.func`` objects built per precision.

Every potential returns, for a pair at distance ``r`` (squared distance ``r2``), the energy
``u`` and ``f_over_r = -dU/dr / r``, so the force on particle i from j is ``f_over_r * (x_i - x_j)``.

* Lennard-Jones: ``U(r) = 4 eps ((s/r)^12 - (s/r)^6)``.
* Soft sphere (O'Hern et al. 2003): ``U(r) = eps/alpha (1 - r/s)^alpha`` for ``r < s``, else 0.
  It vanishes with its derivative at ``r = s`` (alpha > 1), so it needs no shift.
* Morse: ``U(r) = eps ((1 - exp(-alpha (r - s)))^2 - 1)`` with its minimum ``-eps`` at ``r = s``.

Lennard-Jones and Morse are cut at ``rc`` with a *shifted force*:
``U_sf(r) = U(r) - U(rc) - (r - rc) U'(rc)`` for ``r < rc``, else 0,
so that both the energy and the force are continuous at the cutoff.

Powers are written as products (no ``pow`` of ``sigma / r``), so derivatives with respect to
``sigma`` and ``epsilon`` stay finite for every pair inside the cutoff.
"""

import functools
from types import SimpleNamespace

import warp as wp

LENNARD_JONES = wp.constant(0)
SOFT_SPHERE = wp.constant(1)
MORSE = wp.constant(2)


@functools.cache
def potential_functions(scalar):
    """Return the pair-potential ``wp.func`` objects for one scalar type."""

    @wp.func
    def lj_raw(r2: scalar, eps: scalar, sig: scalar):
        """Lennard-Jones energy and -dU/dr / r at squared distance r2."""
        s2 = sig * sig / r2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        u = scalar(4.0) * eps * (s12 - s6)
        f_over_r = scalar(24.0) * eps * (scalar(2.0) * s12 - s6) / r2
        return u, f_over_r

    @wp.func
    def morse_raw(r: scalar, eps: scalar, sig: scalar, alpha: scalar):
        """Morse energy and -dU/dr at distance r."""
        e = wp.exp(-alpha * (r - sig))
        one_minus = scalar(1.0) - e
        u = eps * (one_minus * one_minus - scalar(1.0))
        force = scalar(-2.0) * eps * alpha * e * one_minus  # -dU/dr
        return u, force

    def make_soft_sphere(differentiable):
        @wp.func
        def soft_sphere(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
            """Soft-sphere energy and -dU/dr / r of one pair with r2 < rc^2 (rc is unused)."""
            if r2 < sig * sig:
                r = wp.sqrt(r2)
                x = scalar(1.0) - r / sig
                if wp.static(differentiable):
                    xa1 = wp.pow(x, alpha - scalar(1.0))
                else:
                    # pow(x, 1) is exactly x: alpha = 2 skips the pow (but its d/dalpha is not 0)
                    xa1 = x
                    if alpha != scalar(2.0):
                        xa1 = wp.pow(x, alpha - scalar(1.0))
                return eps / alpha * xa1 * x, eps / sig * xa1 / r
            return scalar(0.0), scalar(0.0)

        return soft_sphere

    @wp.func
    def lennard_jones(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
        """Shifted-force Lennard-Jones energy and -dU/dr / r of one pair with r2 < rc^2 (alpha
        is unused)."""
        r = wp.sqrt(r2)
        u, f_over_r = lj_raw(r2, eps, sig)
        uc, fc_over_rc = lj_raw(rc * rc, eps, sig)
        fc = fc_over_rc * rc  # -U'(rc)
        return u - uc + (r - rc) * fc, f_over_r - fc / r

    @wp.func
    def morse(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
        """Shifted-force Morse energy and -dU/dr / r of one pair with r2 < rc^2."""
        r = wp.sqrt(r2)
        u, force = morse_raw(r, eps, sig, alpha)
        uc, fc = morse_raw(rc, eps, sig, alpha)
        return u - uc + (r - rc) * fc, (force - fc) / r

    # by potential kind (the pair kernels are specialised per kind at build time); the no-grad
    # set is for forward-only kernels
    energy_force = {LENNARD_JONES: lennard_jones, SOFT_SPHERE: make_soft_sphere(True), MORSE: morse}
    energy_force_no_grad = {**energy_force, SOFT_SPHERE: make_soft_sphere(False)}
    return SimpleNamespace(energy_force=energy_force, energy_force_no_grad=energy_force_no_grad, lj_raw=lj_raw, morse_raw=morse_raw)
