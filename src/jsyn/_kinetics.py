"""Exact one-step solutions of linear kinetics, shared by the models.

Every function is elementwise, finite and differentiable everywhere it is used, including
at removable singularities (equal time constants), where it takes the limit. The models
call them with rates >= 0, so no exponential of a positive number is ever formed and
nothing overflows, whatever the step and the time constants (`cascade` orders its time
constants itself). Values are accurate to a few units in the last place and derivatives
to about ten, in float32 and float64 (`tests/test_kinetics.py` checks both against
100-digit decimal arithmetic).

**Slow time constants in float32.** A state is never advanced as `x * exp(-dt/tau)` alone:
for `tau/dt = 1e4` that factor, rounded to float32, is off by up to 6e-8 absolute, which
is 6e-4 of the `dt/tau` it should remove, so the effective time constant would be off by
that much. For `dt/tau < 1/2` the helpers (`decayed`, `relax`, `linear_step`) carry the
increment instead, `x + (x_inf - x) * lost` with `lost = -expm1(-dt/tau)` accurate to
float precision relative to itself, so the time constant keeps every digit of the dtype;
for faster decay, where the increment would cancel, they multiply by the factor, which is
then accurate relative to what remains (`tests/test_kinetics.py` runs float32 against
float64 at `tau/dt` up to 1e5).
"""

import math

import jax
import jax.numpy as jnp


def _near_zero(z, switch, series, direct):
    """`series(z)` for |z| < `switch`, else `direct(z)`; each branch is fed a safe input,
    so the branch not taken is finite and so is its (discarded) derivative."""
    small = jnp.abs(z) < switch
    return jnp.where(small, series(jnp.where(small, z, 0.0)), direct(jnp.where(small, 1.0, z)))


def _horner(z, coefficients, terms_float32):
    r"""$\sum_k c_k z^k$: every coefficient in float64, the first `terms_float32` in a
    narrower dtype (enough for its precision)."""
    if jnp.finfo(jnp.result_type(z)).bits < 64:
        coefficients = coefficients[:terms_float32]
    total = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        total = c + z * total
    return total


# The removable singularities are summed as Taylor series out to |z| = 1 (exprel, phi2) or
# |u| = 1/2 (log1p_rel): there the terms left out are below 1e-17 relative (float64; 1e-8
# with the terms float32 keeps), and beyond it the closed forms lose at most a few units in
# the last place to cancellation (values and derivatives alike).
_EXPREL = tuple(1.0 / math.factorial(k + 1) for k in range(18))
_PHI2 = tuple(1.0 / math.factorial(k + 2) for k in range(18))
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(18))


def decay(dt, tau):
    r"""$e^{-\Delta t/\tau}$: the factor by which $dg/dt = -g/\tau$ shrinks over `dt`.

    A kernel value; to advance a state use `decayed` or `relax`, which keep a slow time
    constant exact in float32."""
    return jnp.exp(-dt / tau)


def lost(dt, tau):
    r"""$1 - e^{-\Delta t/\tau}$, the fraction that $dg/dt = -g/\tau$ loses over `dt`,
    accurate to float precision relative to itself (through `expm1`) however small."""
    return -jnp.expm1(-dt / tau)


# Below this exponent a state is advanced by its increment (slow decay: the factor would
# round), above it by the factor (fast decay: the increment would cancel); at the switch
# both are accurate, the factor and the fraction lost both near 1/2.
_INCREMENT_BELOW = 0.5


def _expm1_slow(z):
    r"""$e^{-z} - 1$ for $0 \le z < 1/2$, as the Taylor series of `exprel`: a few
    multiply-adds per element, vectorised, where `jnp.expm1` of an array is a call per
    element on a CPU (about three times `jnp.exp`)."""
    return -z * _horner(-z, _EXPREL, 11)


def _by_regime(z, increment, factor):
    """`increment(e - 1)` where `z < 1/2` and `factor(e)` elsewhere, `e` $= e^{-z}$ (for
    `relax`, which a neuron group steps with a `z` per element).

    One `z` for every element (a time constant shared by the group, the usual case):
    `e - 1` and `e` are scalars, each form one multiply-add per element. A `z` per element
    (the remaining time of refractory neurons, a time constant per neuron): `e - 1` is its
    series, computed alone while every `z` is slow, the factor only in a step where some
    `z` is not."""
    if jnp.ndim(z) == 0:
        return jnp.where(z < _INCREMENT_BELOW, increment(jnp.expm1(-z)), factor(jnp.exp(-z)))
    slow = z < _INCREMENT_BELOW

    def every_slow(z):
        return increment(_expm1_slow(z))

    def mixed(z):
        em1 = _expm1_slow(jnp.where(slow, z, 0.0))
        return jnp.where(slow, increment(em1), factor(jnp.exp(-z)))

    return jax.lax.cond(jnp.all(slow), every_slow, mixed, z)


def decayed_at_rate(x, rate, dt):
    r"""$x\,e^{-k\Delta t}$, the exact decay of $dx/dt = -k\,x$ over `dt` for a rate
    $k \ge 0$ (1/ms).

    For $k\Delta t < 1/2$ it is carried as the increment $x + x\,(e^{-k\Delta t} - 1)$
    (`expm1`), so that float32 keeps a slow time constant to float precision; above, as
    the product with the factor, which is then accurate relative to itself."""
    z = rate * dt
    slow = z < _INCREMENT_BELOW
    return jnp.where(slow, x + x * jnp.expm1(-z), x * jnp.exp(-z))


def decayed(x, dt, tau):
    r"""$x\,e^{-\Delta t/\tau}$, the exact decay of $dx/dt = -x/\tau$ over `dt`, accurate
    to float precision in the time constant however slow (see `decayed_at_rate`)."""
    return decayed_at_rate(x, 1.0 / tau, dt)


def relax(x, x_inf, dt, tau):
    r"""Exact relaxation of $\tau\,dx/dt = x_\infty - x$ towards a constant target over
    `dt`: $x_\infty + (x - x_\infty)\,e^{-\Delta t/\tau}$.

    For $\Delta t/\tau < 1/2$ it is carried as the increment
    $x + (x_\infty - x)(1 - e^{-\Delta t/\tau})$, so that float32 keeps a slow time
    constant to float precision; above, in the form written here."""
    return _by_regime(
        dt / tau,
        lambda em1: x + (x - x_inf) * em1,
        lambda e: x_inf + (x - x_inf) * e,
    )


def exprel(z):
    r"""$(e^{z} - 1)/z$, equal to 1 at $z = 0$, with exact derivatives there."""
    return _near_zero(z, 1.0, lambda z: _horner(z, _EXPREL, 11), lambda z: jnp.expm1(z) / z)


def log1p_rel(u):
    r"""$\ln(1 + u)/u$, equal to 1 at $u = 0$, with exact derivatives there.

    Near 0 it is summed as $\frac{2}{2 + u}\sum_k \frac{w^{2k}}{2k + 1}$ with
    $w = u/(2 + u)$ (the series of $2\,\mathrm{artanh}\,w = \ln(1 + u)$); elsewhere as
    $\ln(v)/(v - 1)$ with $v = 1 + u$ rounded, which is exact for the rounded $u = v - 1$
    and so accurate to a few units in the last place (XLA's float64 `log1p` is off by up to
    120 of them near $u = -0.4$)."""

    def series(u):
        w = u / (2.0 + u)
        return 2.0 / (2.0 + u) * _horner(w * w, _ATANH, 8)

    def direct(u):
        v = 1.0 + u
        return jnp.log(v) / (v - 1.0)

    return _near_zero(u, 0.5, series, direct)


def phi2(z):
    r"""$(e^{z} - 1 - z)/z^2$, equal to 1/2 at $z = 0$, with exact derivatives there.

    The mean over a step of the relaxation solved by `linear_step` needs it."""
    return _near_zero(z, 1.0, lambda z: _horner(z, _PHI2, 11), lambda z: (jnp.expm1(z) - z) / z / z)


def cascade(dt, tau_first, tau_second):
    r"""The response at `dt` of $dg/dt = -g/\tau_2 + h$ to $h(t) = e^{-t/\tau_1}$, $g(0) = 0$:

    $$K = \int_0^{\Delta t} e^{-s/\tau_1} e^{-(\Delta t - s)/\tau_2}\,ds
        = \frac{e^{-\Delta t/\tau_2} - e^{-\Delta t/\tau_1}}{1/\tau_1 - 1/\tau_2},$$

    which is $\Delta t\,e^{-\Delta t/\tau}$ when the time constants meet.

    $K$ is symmetric in the time constants, so it is computed as
    $e^{-\Delta t/\tau_s}\,\Delta t\,\frac{1 - e^{-\delta\Delta t}}{\delta\Delta t}$ with
    $\tau_s$ the slower (larger) time constant and
    $\delta = |\tau_1 - \tau_2|/(\tau_1\tau_2) \ge 0$ the gap between the rates, formed
    from the difference of the time constants (accurate as they meet): no positive
    exponent, so no overflow for any time constants and step. The order is chosen by
    selecting the inputs (not `max`/`abs`, whose derivatives split where the time
    constants meet), so the derivatives are exact there too."""
    first_faster = tau_first <= tau_second
    tau_slow = jnp.where(first_faster, tau_second, tau_first)
    gap = jnp.where(first_faster, tau_second - tau_first, tau_first - tau_second)
    return decay(dt, tau_slow) * dt * exprel(-gap / (tau_first * tau_second) * dt)


def linear_step(x, rate, source, dt):
    r"""Exact solution at `dt` of $dx/dt = s - k\,x$ with constant rate $k \ge 0$ and
    source $s$: $x\,e^{-k\Delta t} + s\,\Delta t\,\frac{1 - e^{-k\Delta t}}{k\Delta t}$,
    for $k\Delta t < 1/2$ carried as the increment (see `relax`),
    $x + (s - k\,x)\,\Delta t\,\frac{1 - e^{-k\Delta t}}{k\Delta t}$.

    Written without dividing by $k$, so it stays finite (and exact) as $k \to 0$ and for
    $\Delta t = 0$. The target is $x_\infty = s/k$, approached with rate $k$."""
    z = -rate * dt
    slow = -z < _INCREMENT_BELOW  # the increment form, as in `relax`
    share = dt * exprel(z)  # (1 - e^{-k dt}) / k
    return jnp.where(slow, x + (source - rate * x) * share, x * jnp.exp(z) + source * share)


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

    Computed as `cascade` is, with $k_s \le k_f$ the slower and faster rate:
    $e^{-k_s\Delta t}\,\Delta t\,\frac{1 - e^{-(k_f - k_s)\Delta t}}{(k_f - k_s)\Delta t}$,
    no positive exponent for any rates >= 0 and step, and exact derivatives where the
    rates meet."""
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
