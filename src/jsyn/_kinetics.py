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


def phi2(z):
    r"""$(e^{z} - 1 - z)/z^2$, equal to 1/2 at $z = 0$, with finite derivatives there.

    The mean over a step of the relaxation solved by `linear_step` needs it."""
    small = jnp.abs(z) < 0.1
    z_safe = jnp.where(small, 1.0, z)
    # Taylor series sum_k z^k / (k + 2)! up to k = 7 (Horner); the rest is below 3e-15 here.
    series = 1.0 / 362880.0
    for factorial in (40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0):
        series = 1.0 / factorial + z * series
    return jnp.where(small, series, (jnp.expm1(z_safe) - z_safe) / (z_safe * z_safe))


def linear_step(x, rate, source, dt):
    r"""Exact solution at `dt` of $dx/dt = s - k\,x$ with constant rate $k \ge 0$ and
    source $s$: $x\,e^{-k\Delta t} + s\,\Delta t\,\frac{1 - e^{-k\Delta t}}{k\Delta t}$.

    Written without dividing by $k$, so it stays finite (and exact) as $k \to 0$ and for
    $\Delta t = 0$. The target is $x_\infty = s/k$, approached with rate $k$."""
    z = -rate * dt
    return x * jnp.exp(z) + source * dt * exprel(z)


def linear_mean(x, rate, source, dt):
    r"""The mean over $[0, \Delta t]$ of the solution of `linear_step`:
    $x\,\frac{1 - e^{-k\Delta t}}{k\Delta t} + s\,\Delta t\,\varphi_2(-k\Delta t)$,
    equal to $x$ at $\Delta t = 0$."""
    z = -rate * dt
    return x * exprel(z) + source * dt * phi2(z)


def cascade_rate(dt, rate_first, rate_second):
    r"""`cascade` written with rates: $\int_0^{\Delta t} e^{-k_1 s} e^{-k_2(\Delta t - s)}\,ds
    = \frac{e^{-k_2\Delta t} - e^{-k_1\Delta t}}{k_1 - k_2}$ ($\Delta t\,e^{-k\Delta t}$ when
    the rates meet).

    Symmetric in the rates, so it is computed as
    $e^{-k_s\Delta t}\,\Delta t\,\frac{1 - e^{-(k_f - k_s)\Delta t}}{(k_f - k_s)\Delta t}$ with
    $k_s \le k_f$ the slower and faster rate: no positive exponent, so no overflow for any
    rates >= 0 and step. The order is chosen by selecting the inputs (not `min`/`abs`,
    whose derivatives are split where the rates meet), so the derivatives are exact there
    too."""
    first_faster = rate_first >= rate_second
    slow = jnp.where(first_faster, rate_second, rate_first)
    gap = jnp.where(first_faster, rate_first - rate_second, rate_second - rate_first)
    return jnp.exp(-slow * dt) * dt * exprel(-gap * dt)


def pulse_pieces(pulse_left, dt):
    r"""Split a step of length `dt` at the end of a transmitter pulse that has `pulse_left`
    (>= 0) ms to run: returns `(d_on, d_off, pulse_left_after)`, with
    $d_{on} = \min(\text{left}, \Delta t)$, $d_{off} = \Delta t - d_{on}$.

    Everything is continuous in `pulse_left`, with derivative 1 through the piece that
    holds the pulse's end, so the step is differentiable w.r.t. the pulse duration."""
    d_on = jnp.minimum(pulse_left, dt)
    return d_on, dt - d_on, pulse_left - d_on


def restart_pulse(pulse_left, x, duration):
    r"""The remaining pulse duration after the drive `x` of a step (a pulse model's events):
    $\text{left} \leftarrow (1 - s)\,\text{left} + s\,T_{dur}$, $s = \operatorname{clip}(x, 0, 1)$.

    A spike (`x >= 1`) restarts the pulse for the full `duration`; `x = 0` leaves it as it
    is; a fraction in between moves the remaining time that fraction of the way to a
    restart (from rest: a pulse of `x * duration`, so the transmitter released,
    concentration times duration, is proportional to `x`). Continuous in `x`; at exactly
    0 and 1 the derivative is the mean of the one-sided ones (JAX's `clip`), which is what
    a central difference measures."""
    s = jnp.clip(x, 0.0, 1.0)
    return (1.0 - s) * pulse_left + s * duration
