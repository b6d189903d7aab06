r"""Linear kinetic synapses, advanced with their exact solution over a step.

For spikes on the time grid the values at grid points do not depend on `dt`.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractDelivery, AbstractLinearSynapse


class ExponState(eqx.Module):
    """State of `Expon`: the gating variable `g` (dimensionless)."""

    g: Float[Array, "*n"]


class Expon(AbstractLinearSynapse):
    r"""Single-exponential synapse.

    $$\frac{dg}{dt} = -\frac{g}{\tau}, \qquad g \leftarrow g + x \text{ at each spike.}$$

    Exact step: $g_n = g_{n-1}\,e^{-\Delta t/\tau} + x_n$. A spike of step $n$ shows in
    the output of step $n$; one spike of weight $w$ at $t_s$ gives $g(t) = w\,e^{-(t - t_s)/\tau}$.

    **Arguments:**
    - `tau`: decay time constant (ms), > 0. Default 8.0.

    **Reference:** Sterratt et al. 2011, *Principles of Computational Modelling in
    Neuroscience*, ch. 7.
    """

    tau: Param = param(default=8.0)

    def constraints(self):
        return (val.positive("Expon", "tau", resolve(self.tau)),)

    def init_state(self, n: Shape, *, dtype=None) -> ExponState:
        return ExponState(g=zeros(n, dtype))

    def step(self, state: ExponState, x, dt) -> tuple[ExponState, Float[Array, "*n"]]:
        g = kin.decayed(state.g, dt, resolve(self.tau, state.g)) + jnp.asarray(x, state.g.dtype)
        return ExponState(g=g), g

    def add_drive(self, state: ExponState, delivery: AbstractDelivery):
        g = delivery.add(state.g)
        return ExponState(g=g), g


class AlphaState(eqx.Module):
    """State of `Alpha`: the auxiliary variable `h` and the gating variable `g`."""

    h: Float[Array, "*n"]
    g: Float[Array, "*n"]


class Alpha(AbstractLinearSynapse):
    r"""Alpha-function synapse.

    $$\frac{dh}{dt} = -\frac{h}{\tau}, \qquad \frac{dg}{dt} = \frac{h - g}{\tau},
    \qquad h \leftarrow h + x \text{ at each spike.}$$

    One spike of weight 1 at $t_s$ gives $g(t) = \frac{t - t_s}{\tau} e^{-(t - t_s)/\tau}$,
    peaking at $1/e$ at $t - t_s = \tau$. Exact step:
    $g_n = (g_{n-1} + h_{n-1}\,\Delta t/\tau)\,e^{-\Delta t/\tau}$,
    $h_n = h_{n-1}\,e^{-\Delta t/\tau} + x_n$.

    **Arguments:**
    - `tau_decay`: time constant (ms), > 0. Default 10.0.

    **Reference:** Rall 1967; Sterratt et al. 2011, ch. 7.
    """

    tau_decay: Param = param(default=10.0)

    def constraints(self):
        return (val.positive("Alpha", "tau_decay", resolve(self.tau_decay)),)

    def init_state(self, n: Shape, *, dtype=None) -> AlphaState:
        return AlphaState(h=zeros(n, dtype), g=zeros(n, dtype))

    def step(self, state: AlphaState, x, dt) -> tuple[AlphaState, Float[Array, "*n"]]:
        tau = resolve(self.tau_decay, state.g)
        g = kin.decayed(state.g + state.h * dt / tau, dt, tau)
        h = kin.decayed(state.h, dt, tau) + jnp.asarray(x, state.h.dtype)
        return AlphaState(h=h, g=g), g

    def add_drive(self, state: AlphaState, delivery: AbstractDelivery):
        return AlphaState(h=delivery.add(state.h), g=state.g), state.g


def unit_peak_factor(tau_rise, tau_decay):
    r"""$p = (\tau_r/\tau_d)^{\tau_r/(\tau_r - \tau_d)}$, the factor that gives a
    difference of exponentials a unit peak ($e$ where the time constants meet).

    Computed in log space as $p = \exp\bigl(r\,\frac{\ln(1 + u)}{u}\bigr)$ with
    $r = \tau_r/\tau_d$ and $u = (\tau_r - \tau_d)/\tau_d$ formed from the difference of
    the time constants: accurate to float precision and smooth across $\tau_r = \tau_d$,
    bounded, $1 \le p \le e\max(1, r)$."""
    return jnp.exp(tau_rise / tau_decay * kin.log1p_rel((tau_rise - tau_decay) / tau_decay))


def cascade_gain(tau_rise, tau_decay, A=None):
    r"""The gain $a$ (1/ms) that makes the cascade $dh/dt = -h/\tau_r$,
    $dg/dt = -g/\tau_d + h$, $h(0) = a$, respond $A(e^{-t/\tau_d} - e^{-t/\tau_r})$:
    $a = A(\tau_d - \tau_r)/(\tau_r\tau_d)$; for `A=None` the gain of a unit peak,
    $a = p/\tau_r$ with $p$ the `unit_peak_factor`."""
    if A is None:
        return unit_peak_factor(tau_rise, tau_decay) / tau_rise
    return A * (tau_decay - tau_rise) / (tau_rise * tau_decay)


class DualExponState(eqx.Module):
    """State of `DualExpon`: the rise variable `h` (1/ms) and the gating variable `g`."""

    h: Float[Array, "*n"]
    g: Float[Array, "*n"]


class DualExpon(AbstractLinearSynapse):
    r"""Difference-of-exponentials synapse, in cascade form.

    $$\frac{dh}{dt} = -\frac{h}{\tau_r}, \qquad \frac{dg}{dt} = -\frac{g}{\tau_d} + h,
    \qquad h \leftarrow h + a\,x \text{ at each spike.}$$

    With `A=None` the single-spike peak of $g$ is 1:
    $a = \frac{1}{\tau_r}(\tau_r/\tau_d)^{\tau_r/(\tau_r - \tau_d)}$, which tends to $e/\tau$
    as the time constants meet; values and gradients stay finite there. With `A` given,
    $a = A(\tau_d - \tau_r)/(\tau_r\tau_d)$, so one spike gives
    $g(t) = A(e^{-t/\tau_d} - e^{-t/\tau_r})$.

    Exact step: $g_n = g_{n-1}e^{-\Delta t/\tau_d} + h_{n-1}K(\Delta t)$,
    $h_n = h_{n-1}e^{-\Delta t/\tau_r} + a x_n$, with
    $K = (e^{-\Delta t/\tau_d} - e^{-\Delta t/\tau_r})/(1/\tau_r - 1/\tau_d)$
    ($\Delta t\,e^{-\Delta t/\tau}$ at equal time constants), computed without the
    exponential of a positive number and without cancellation (`_kinetics.cascade`), and
    $a$ in log space (`unit_peak_factor`): both accurate to float precision for any pair
    of time constants and any step, in float32 as in float64, with their gradients.
    The peak of one spike comes at
    $\frac{\tau_r\tau_d}{\tau_d - \tau_r}\ln(\tau_d/\tau_r)$.

    **Arguments:**
    - `tau_rise`: rise time constant (ms), > 0. Default 1.0.
    - `tau_decay`: decay time constant (ms), > 0. Default 10.0. Either may be the larger;
      they may be equal.
    - `A`: amplitude factor (dimensionless), or `None` (default) for a unit peak.

    **Reference:** Sterratt et al. 2011, ch. 7; Roth & van Rossum 2009, in *Computational
    Modeling Methods for Neuroscientists*.
    """

    tau_rise: Param = param(default=1.0)
    tau_decay: Param = param(default=10.0)
    A: Param | None = param(default=None)

    def constraints(self):
        checks = [
            val.positive("DualExpon", "tau_rise", resolve(self.tau_rise)),
            val.positive("DualExpon", "tau_decay", resolve(self.tau_decay)),
        ]
        if self.A is not None:
            checks.append(val.finite("DualExpon", "A", resolve(self.A)))
        return tuple(checks)

    def jump(self, like=None) -> Float[Array, "*n"]:
        """The jump `a` of `h` per unit of drive (1/ms), in the dtype of `like`."""
        tau_r, tau_d = resolve(self.tau_rise, like), resolve(self.tau_decay, like)
        return cascade_gain(tau_r, tau_d, None if self.A is None else resolve(self.A, like))

    def init_state(self, n: Shape, *, dtype=None) -> DualExponState:
        return DualExponState(h=zeros(n, dtype), g=zeros(n, dtype))

    def step(self, state: DualExponState, x, dt):
        tau_r, tau_d = resolve(self.tau_rise, state.g), resolve(self.tau_decay, state.g)
        g = kin.decayed(state.g, dt, tau_d) + state.h * kin.cascade(dt, tau_r, tau_d)
        h = kin.decayed(state.h, dt, tau_r) + self.jump(state.h) * jnp.asarray(x, state.h.dtype)
        return DualExponState(h=h, g=g), g

    def add_drive(self, state: DualExponState, delivery: AbstractDelivery):
        h = delivery.add(state.h, self.jump(state.h))
        return DualExponState(h=h, g=state.g), state.g


class DualExponV2State(eqx.Module):
    """State of `DualExponV2`: the decay variable `g_decay` and `c` (ms), `g_decay`
    filtered by the rise time constant, so that `g_decay - g_rise` is
    `(1/tau_rise - 1/tau_decay) * c`."""

    g_decay: Float[Array, "*n"]
    c: Float[Array, "*n"]


class DualExponV2(AbstractLinearSynapse):
    r"""Difference-of-exponentials synapse, as two independent exponentials.

    $$\frac{dg_r}{dt} = -\frac{g_r}{\tau_r}, \qquad \frac{dg_d}{dt} = -\frac{g_d}{\tau_d},
    \qquad g_r \leftarrow g_r + x,\ g_d \leftarrow g_d + x \text{ at each spike},$$

    output $g = A(g_d - g_r)$. With `A=None` the single-spike peak is 1:
    $A = \frac{\tau_d}{\tau_d - \tau_r}(\tau_r/\tau_d)^{\tau_r/(\tau_r - \tau_d)}$.

    Exact step. The state holds $g_d$ and $c$ with $dc/dt = -c/\tau_r + g_d$, $c(0) = 0$,
    for which $g_d - g_r = (1/\tau_r - 1/\tau_d)\,c$ (for close time constants $g_d$ and
    $g_r$ agree to more digits than a float holds, and $A$ is large, so their difference
    cannot be formed): $c_n = c_{n-1}e^{-\Delta t/\tau_r} + g_{d,n-1}K(\Delta t)$, with $K$
    the cascade kernel of `DualExpon`, and $g_{d,n} = g_{d,n-1}e^{-\Delta t/\tau_d} + x_n$.
    The output is $a\,c$ with $a = A(\tau_d - \tau_r)/(\tau_r\tau_d)$, or, for `A=None`,
    the unit-peak $a$ of `DualExpon`, in which the large $A$ and the small
    $1/\tau_r - 1/\tau_d$ never appear: values and gradients are accurate to float
    precision however close the time constants are.

    Needs `tau_rise < tau_decay`; `DualExpon` is the form for time constants that may meet.

    **Arguments:**
    - `tau_rise`: rise time constant (ms), > 0. Default 1.0.
    - `tau_decay`: decay time constant (ms), > `tau_rise`. Default 10.0.
    - `A`: amplitude factor (dimensionless), or `None` (default) for a unit peak.

    **Reference:** BrainPy's `DualExponV2`; Sterratt et al. 2011, ch. 7.
    """

    tau_rise: Param = param(default=1.0)
    tau_decay: Param = param(default=10.0)
    A: Param | None = param(default=None)

    def constraints(self):
        tau_r, tau_d = resolve(self.tau_rise), resolve(self.tau_decay)
        checks = [
            val.positive("DualExponV2", "tau_rise", tau_r),
            val.positive("DualExponV2", "tau_decay", tau_d),
            val.Check(
                ~(tau_r < tau_d),
                {"tau_rise": tau_r, "tau_decay": tau_d},
                "DualExponV2 needs tau_rise < tau_decay",
                "swap them, or use jsyn.DualExpon, which allows any two time constants",
            ),
        ]
        if self.A is not None:
            checks.append(val.finite("DualExponV2", "A", resolve(self.A)))
        return tuple(checks)

    def amplitude(self, like=None) -> Float[Array, "*n"]:
        """The factor `A` of the output (the unit-peak value when `A=None`), in the dtype
        of `like`."""
        if self.A is not None:
            return resolve(self.A, like)
        tau_r, tau_d = resolve(self.tau_rise, like), resolve(self.tau_decay, like)
        return unit_peak_factor(tau_r, tau_d) * tau_d / (tau_d - tau_r)

    def init_state(self, n: Shape, *, dtype=None) -> DualExponV2State:
        return DualExponV2State(g_decay=zeros(n, dtype), c=zeros(n, dtype))

    def step(self, state: DualExponV2State, x, dt):
        g_d = state.g_decay
        tau_r, tau_d = resolve(self.tau_rise, g_d), resolve(self.tau_decay, g_d)
        c = kin.decayed(state.c, dt, tau_r) + g_d * kin.cascade(dt, tau_r, tau_d)
        g_decay = kin.decayed(g_d, dt, tau_d) + jnp.asarray(x, g_d.dtype)
        g = cascade_gain(tau_r, tau_d, None if self.A is None else resolve(self.A, g_d)) * c
        return DualExponV2State(g_decay=g_decay, c=c), g

    def add_drive(self, state: DualExponV2State, delivery: AbstractDelivery):
        # the drive jumps g_decay (and g_rise alike), so c, hence g, is continuous
        g_d = state.g_decay
        tau_r, tau_d = resolve(self.tau_rise, g_d), resolve(self.tau_decay, g_d)
        g = cascade_gain(tau_r, tau_d, None if self.A is None else resolve(self.A, g_d)) * state.c
        return DualExponV2State(g_decay=delivery.add(g_d), c=state.c), g
