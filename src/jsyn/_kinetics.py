"""Exact one-step solutions of linear kinetics, shared by the models.

Every function is elementwise, finite and differentiable everywhere it is used, including
at removable singularities (equal time constants), where it takes the limit.
"""

import jax.numpy as jnp

_SERIES = 1e-4  # below this |z| the removable singularities use their Taylor series


def decay(dt, tau):
    r"""$e^{-\Delta t/\tau}$: the factor by which $dg/dt = -g/\tau$ shrinks over `dt`."""
    return jnp.exp(-dt / tau)


def exprel(z):
    r"""$(e^{z} - 1)/z$, equal to 1 at $z = 0$, with finite derivatives there."""
    small = jnp.abs(z) < _SERIES
    z_safe = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 + z / 2.0 + z * z / 6.0, jnp.expm1(z_safe) / z_safe)


def log1p_rel(u):
    r"""$\ln(1 + u)/u$, equal to 1 at $u = 0$, with finite derivatives there."""
    small = jnp.abs(u) < _SERIES
    u_safe = jnp.where(small, 1.0, u)
    return jnp.where(small, 1.0 - u / 2.0 + u * u / 3.0, jnp.log1p(u_safe) / u_safe)


def cascade(dt, tau_first, tau_second):
    r"""The response at `dt` of $dg/dt = -g/\tau_2 + h$ to $h(t) = e^{-t/\tau_1}$, $g(0) = 0$:

    $$K = \int_0^{\Delta t} e^{-s/\tau_1} e^{-(\Delta t - s)/\tau_2}\,ds
        = \frac{e^{-\Delta t/\tau_2} - e^{-\Delta t/\tau_1}}{1/\tau_1 - 1/\tau_2},$$

    which is $\Delta t\,e^{-\Delta t/\tau}$ when the time constants meet.
    """
    c = 1.0 / tau_first - 1.0 / tau_second
    # (e^{-dt/tau2} - e^{-dt/tau1}) / c = e^{-dt/tau2} * dt * (1 - e^{-c dt}) / (c dt)
    return decay(dt, tau_second) * dt * exprel(-c * dt)


def relax(x, x_inf, factor):
    r"""Exact relaxation towards a constant target: $x_\infty + (x - x_\infty)\,f$ with
    $f = e^{-\Delta t/\tau}$."""
    return x_inf + (x - x_inf) * factor
