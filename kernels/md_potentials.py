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

Each potential also has a hand-written vector-Jacobian product ``*_vjp(r2, eps, sig, alpha, rc,
adj_u, adj_g, with_alpha) -> (g, adj_r2, adj_eps, adj_sig, adj_alpha)``: given the adjoints of ``u`` and of
``g = f_over_r``, the adjoints of the pair's inputs (and ``g`` itself, which the adjoint pair
kernel needs). Throughout, ``dU/d(r^2) = -g / 2`` and ``u``, ``g`` are linear in ``eps``.
"""

import functools
from types import SimpleNamespace

import warp as wp

from .constants import PotentialKind

# the older names, kept importable
LENNARD_JONES = int(PotentialKind.LENNARD_JONES)
SOFT_SPHERE = int(PotentialKind.SOFT_SPHERE)
MORSE = int(PotentialKind.MORSE)


@functools.cache
def potential_functions(scalar):
    """Return the pair-potential ``wp.func`` objects (energy/force and VJP) for one scalar type."""

    @wp.func
    def soft_sphere(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
        """Soft-sphere energy and -dU/dr / r of one pair with r2 < rc^2 (rc is unused)."""
        if r2 < sig * sig:
            r = wp.sqrt(r2)
            inv_sig = scalar(1.0) / sig  # two divisions per pair (not three): ~15% of the pair loop
            x = scalar(1.0) - r * inv_sig
            xa1 = x  # x^(alpha - 1); pow(x, 1) is exactly x, so alpha = 2 skips the pow
            if alpha != scalar(2.0):
                xa1 = wp.pow(x, alpha - scalar(1.0))
            return eps / alpha * xa1 * x, eps * inv_sig * xa1 / r
        return scalar(0.0), scalar(0.0)

    @wp.func
    def soft_sphere_vjp(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar, adj_u: scalar, adj_g: scalar, with_alpha: int):
        """VJP of :func:`soft_sphere` (zero beyond contact). With x = 1 - r/s:
        u = eps/a x^a, g = eps/(s r) x^(a-1); dx/dr = -1/s, dx/ds = r/s^2. The alpha part (a log)
        only ``with_alpha``."""
        zero = scalar(0.0)
        if r2 >= sig * sig:
            return zero, zero, zero, zero, zero
        r = wp.sqrt(r2)
        inv_r = scalar(1.0) / r
        inv_s = scalar(1.0) / sig
        x = scalar(1.0) - r * inv_s
        xa1 = x  # x^(alpha - 1) and x^(alpha - 2), exact at alpha = 2
        xa2 = scalar(1.0)
        if alpha != scalar(2.0):
            xa1 = wp.pow(x, alpha - scalar(1.0))
            xa2 = xa1 / x  # x > 0 inside contact
        am1 = alpha - scalar(1.0)
        u1 = xa1 * x / alpha  # u / eps
        g1 = xa1 * inv_s * inv_r  # g / eps
        dg1_dr = -(am1 * xa2 * inv_s * inv_s + g1) * inv_r
        dg1_ds = (am1 * xa2 * r * inv_s - xa1) * inv_s * inv_s * inv_r
        du1_ds = xa1 * r * inv_s * inv_s
        adj_alpha = zero
        if with_alpha != 0:
            log_x = wp.log(x)
            adj_alpha = eps * (g1 * log_x * adj_g + u1 * (log_x - scalar(1.0) / alpha) * adj_u)
        g = eps * g1
        adj_r2 = scalar(0.5) * (eps * dg1_dr * inv_r * adj_g - g * adj_u)
        return g, adj_r2, g1 * adj_g + u1 * adj_u, eps * (dg1_ds * adj_g + du1_ds * adj_u), adj_alpha

    @wp.func
    def lennard_jones(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
        """Shifted-force Lennard-Jones energy and -dU/dr / r of one pair with r2 < rc^2 (alpha
        is unused). One division per pair (1/r^2; 1/rc is loop-invariant)."""
        inv_r2 = scalar(1.0) / r2
        r = wp.sqrt(r2)
        inv_rc = scalar(1.0) / rc
        sig2 = sig * sig
        s2 = sig2 * inv_r2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        s2c = sig2 * inv_rc * inv_rc
        s6c = s2c * s2c * s2c
        s12c = s6c * s6c
        fc = scalar(24.0) * eps * (scalar(2.0) * s12c - s6c) * inv_rc  # -U'(rc)
        u = scalar(4.0) * eps * ((s12 - s6) - (s12c - s6c)) + (r - rc) * fc
        return u, (scalar(24.0) * eps * (scalar(2.0) * s12 - s6) - fc * r) * inv_r2

    @wp.func
    def lennard_jones_vjp(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar, adj_u: scalar, adj_g: scalar, with_alpha: int):
        """VJP of :func:`lennard_jones`. With s6 = (s^2/r^2)^3, s12 = s6^2 (and at rc):
        u_raw = 4 (s12 - s6), g_raw = 24 (2 s12 - s6) / r^2, Fc = -U'(rc) = g_raw(rc) rc (per eps);
        u = u_raw - u_raw(rc) + (r - rc) Fc, g = g_raw - Fc / r; d s6/ds = 6 s6/s, d s12/ds = 12 s12/s."""
        r = wp.sqrt(r2)
        s2 = sig * sig / r2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        rc2 = rc * rc
        s2c = sig * sig / rc2
        s6c = s2c * s2c * s2c
        s12c = s6c * s6c
        fc1 = scalar(24.0) * (scalar(2.0) * s12c - s6c) / rc
        u1 = scalar(4.0) * (s12 - s6) - scalar(4.0) * (s12c - s6c) + (r - rc) * fc1
        g1 = scalar(24.0) * (scalar(2.0) * s12 - s6) / r2 - fc1 / r
        dg1_dr2 = scalar(24.0) * (scalar(4.0) * s6 - scalar(14.0) * s12) / (r2 * r2) + fc1 / (scalar(2.0) * r * r2)
        dfc1_ds = scalar(24.0) * (scalar(24.0) * s12c - scalar(6.0) * s6c) / (rc * sig)
        du1_ds = scalar(4.0) * (scalar(12.0) * (s12 - s12c) - scalar(6.0) * (s6 - s6c)) / sig + (r - rc) * dfc1_ds
        dg1_ds = scalar(24.0) * (scalar(24.0) * s12 - scalar(6.0) * s6) / (r2 * sig) - dfc1_ds / r
        g = eps * g1
        adj_r2 = eps * dg1_dr2 * adj_g - scalar(0.5) * g * adj_u
        return g, adj_r2, g1 * adj_g + u1 * adj_u, eps * (dg1_ds * adj_g + du1_ds * adj_u), scalar(0.0)


    @wp.func
    def morse_terms(r: scalar, sig: scalar, alpha: scalar):
        """Per eps at distance r, with e = exp(-a (r - s)), o = 1 - e: u = o^2 - 1,
        F = -dU/dr = -2 a e o, F' = dF/dr = 2 a^2 e (o - e) = -dF/ds, du/da = 2 o (r - s) e,
        dF/da = -2 e (o + a (r - s) (e - o)) (and du/ds = F)."""
        e = wp.exp(-alpha * (r - sig))
        o = scalar(1.0) - e
        force = scalar(-2.0) * alpha * e * o
        dforce_dr = scalar(2.0) * alpha * alpha * e * (o - e)
        du_da = scalar(2.0) * o * (r - sig) * e
        dforce_da = scalar(-2.0) * e * (o + alpha * (r - sig) * (e - o))
        return o * o - scalar(1.0), force, dforce_dr, du_da, dforce_da

    @wp.func
    def morse(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar):
        """Shifted-force Morse energy and -dU/dr / r of one pair with r2 < rc^2 (the terms the
        VJP does not need are compiled away)."""
        r = wp.sqrt(r2)
        u_r, f_r, df_r, du_da_r, df_da_r = morse_terms(r, sig, alpha)
        u_c, f_c, df_c, du_da_c, df_da_c = morse_terms(rc, sig, alpha)
        return eps * (u_r - u_c + (r - rc) * f_c), eps * (f_r - f_c) / r

    @wp.func
    def morse_vjp(r2: scalar, eps: scalar, sig: scalar, alpha: scalar, rc: scalar, adj_u: scalar, adj_g: scalar, with_alpha: int):
        """VJP of :func:`morse`: u = U(r) - U(rc) + (r - rc) F(rc), g = (F(r) - F(rc)) / r."""
        r = wp.sqrt(r2)
        u_r, f_r, df_r, du_da_r, df_da_r = morse_terms(r, sig, alpha)
        u_c, f_c, df_c, du_da_c, df_da_c = morse_terms(rc, sig, alpha)
        u1 = u_r - u_c + (r - rc) * f_c
        g1 = (f_r - f_c) / r
        dg1_dr = (df_r - g1) / r
        du1_ds = f_r - f_c - (r - rc) * df_c
        dg1_ds = (df_c - df_r) / r
        du1_da = du_da_r - du_da_c + (r - rc) * df_da_c
        dg1_da = (df_da_r - df_da_c) / r
        g = eps * g1
        adj_r2 = eps * dg1_dr / (scalar(2.0) * r) * adj_g - scalar(0.5) * g * adj_u
        return g, adj_r2, g1 * adj_g + u1 * adj_u, eps * (dg1_ds * adj_g + du1_ds * adj_u), eps * (dg1_da * adj_g + du1_da * adj_u)

    # by potential kind: the pair kernels are specialised per kind at build time
    energy_force = {PotentialKind.LENNARD_JONES: lennard_jones, PotentialKind.SOFT_SPHERE: soft_sphere, PotentialKind.MORSE: morse}
    vjp = {PotentialKind.LENNARD_JONES: lennard_jones_vjp, PotentialKind.SOFT_SPHERE: soft_sphere_vjp, PotentialKind.MORSE: morse_vjp}
    return SimpleNamespace(energy_force=energy_force, vjp=vjp)
