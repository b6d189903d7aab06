r"""NMDA receptor kinetics: the saturating phenomenological model and the two-step
binding model. The voltage-dependent Mg block is the output law `MgBlock`.

Both couple a gating variable $g$ to an auxiliary variable $x_s$ that is linear in
itself: $x_s$ is stepped exactly, and $g$, linear in itself given $x_s$, relaxes exactly
with $x_s$ held for the step at its exact mean over the step (second-order accurate).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractSynapse


class NMDAState(eqx.Module):
    """State of `NMDA`: the gating variable `g` (dimensionless, in [0, 1]) and the rise
    variable `x_s` (dimensionless: spikes, decaying)."""

    g: Float[Array, "*n"]
    x_s: Float[Array, "*n"]


class NMDA(AbstractSynapse):
    r"""Saturating NMDA synapse (phenomenological).

    $$\frac{dg}{dt} = -\frac{g}{\tau_{decay}} + a\,x_s\,(1 - g), \qquad
    \frac{dx_s}{dt} = -\frac{x_s}{\tau_{rise}}, \qquad x_s \leftarrow x_s + x
    \text{ at each spike,}$$

    so $0 \le g < 1$ saturates under strong drive. A spike of step $n$ jumps $x_s$ at $t_n$;
    $g$ starts rising after $t_n$.

    **Step.** $x_s$ decays exactly: $x_s \leftarrow x_s e^{-\Delta t/\tau_{rise}} + x_n$.
    $g$ is linear in itself given $x_s$; it relaxes exactly with $x_s$ held for the step
    at its exact mean over the step,
    $\bar x_s = x_s\,\frac{\tau_{rise}}{\Delta t}(1 - e^{-\Delta t/\tau_{rise}})$:
    $g \leftarrow g_\infty + (g - g_\infty)e^{-\lambda\Delta t}$ with
    $\lambda = 1/\tau_{decay} + a\bar x_s$, $g_\infty = a\bar x_s/\lambda$. The factor
    $e^{-\lambda\Delta t} = e^{-\int\lambda\,dt}$ is then exact; only the source term is
    approximate, with local error $O(\Delta t^3)$ and global error $O(\Delta t^2)$ (order
    2 measured in the tests; holding $x_s$ at its start value, plain exponential Euler,
    would be order 1). $g$ stays in $[0, 1)$ for any $\Delta t$.

    **Drive.** `x` adds to $x_s$ linearly: spikes (0/1), counts or weights, >= 0 (a
    negative $x_s$ is outside the model: $g$ would leave $[0, 1]$).

    **Arguments:**
    - `tau_rise`: time constant of $x_s$ (ms), > 0. Default 2.0.
    - `tau_decay`: decay time constant of $g$ (ms), > 0. Default 100.0.
    - `a`: saturation rate (1/ms per unit of $x_s$), > 0. Default 0.5.

    Use with `MgBlock` for the voltage dependence.

    **Reference:** Brunel & Wang 2001, *J Comput Neurosci* 11:63; Wang 2002, *Neuron*
    36:955.
    """

    tau_rise: Param = param(default=2.0)
    tau_decay: Param = param(default=100.0)
    a: Param = param(default=0.5)

    def constraints(self):
        return (
            val.positive("NMDA", "tau_rise", resolve(self.tau_rise)),
            val.positive("NMDA", "tau_decay", resolve(self.tau_decay)),
            val.positive("NMDA", "a", resolve(self.a)),
        )

    def init_state(self, n: Shape, *, dtype=None) -> NMDAState:
        return NMDAState(g=zeros(n, dtype), x_s=zeros(n, dtype))

    def step(self, state: NMDAState, x, dt) -> tuple[NMDAState, Float[Array, "*n"]]:
        """Evolve over `dt` ms, then add this step's drive `x` to `x_s`: returns the new
        state and `g` at the end of the step (dimensionless)."""
        g, x_s = state.g, state.x_s
        rate_rise = 1.0 / resolve(self.tau_rise, g)
        a = resolve(self.a, g)
        dt = jnp.asarray(dt, g.dtype)
        x_mean = kin.linear_mean(x_s, rate_rise, 0.0, dt)
        g = kin.linear_step(g, 1.0 / resolve(self.tau_decay, g) + a * x_mean, a * x_mean, dt)
        x_s = kin.decayed_at_rate(x_s, rate_rise, dt) + jnp.asarray(x, g.dtype)
        return NMDAState(g=g, x_s=x_s), g


class BioNMDAState(eqx.Module):
    """State of `BioNMDA`: the open fraction `g` (dimensionless, in [0, 1]), the bound
    fraction `x_s` (dimensionless, in [0, 1]) and the time the transmitter pulse still has
    to run, `pulse_left` (ms; 0 when there is no pulse)."""

    g: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    x_s: Float[Array, "*n"] = val.bounded(0.0, 1.0)
    pulse_left: Float[Array, "*n"] = val.bounded(0.0)


class BioNMDA(AbstractSynapse):
    r"""NMDA receptor with two-step kinetics (binding, then opening).

    $$\frac{dg}{dt} = \alpha_1\,x_s\,(1 - g) - \beta_1\,g, \qquad
    \frac{dx_s}{dt} = \alpha_2\,[T](t)\,(1 - x_s) - \beta_2\,x_s,$$

    where a spike at $t_s$ starts a square pulse $[T] = T$ on $[t_s, t_s + T_{dur})$ and a
    new spike restarts it, as in `AMPA`.

    **Step.** The state carries the time the pulse still has to run, and a step is split
    in up to two pieces, pulse on for $d_{on} = \min(\text{left}, \Delta t)$ then off. In
    each piece $x_s$ relaxes exactly (rate $\alpha_2[T] + \beta_2$), and $g$, linear in
    itself given $x_s$, relaxes exactly with $x_s$ held at its exact mean over the piece
    (rate $\alpha_1\bar x_s + \beta_1$, target $\alpha_1\bar x_s/(\alpha_1\bar x_s +
    \beta_1)$). $x_s$ is exact; $g$ has local error $O(\Delta t^3)$, global
    $O(\Delta t^2)$ (measured order 2 in the tests); both stay in $[0, 1]$ for any
    $\Delta t$, and the output is a continuous function of $T_{dur}$ with its gradient
    (kinks only where the continuous model has them, see `AMPA`).

    **Drive.** `x` is the release of the step in $[0, 1]$ (1 or more: a spike, restarting
    the pulse; a fraction moves the pulse's remaining time that fraction of the way to a
    restart), exactly as in `AMPA`; weights belong in the output law.

    **Arguments:**
    - `alpha1`: opening rate (1/ms), > 0. Default 2.0.
    - `beta1`: closing rate (1/ms), > 0. Default 0.01.
    - `alpha2`: binding rate (1/(mM ms)), > 0. Default 1.0.
    - `beta2`: unbinding rate (1/ms), > 0. Default 0.5.
    - `T`: transmitter concentration during the pulse (mM), >= 0. Default 1.0.
    - `T_dur`: pulse duration (ms), >= 0. Default 0.5.

    Use with `MgBlock` for the voltage dependence.

    **Reference:** Destexhe, Mainen & Sejnowski 1998, in *Methods in Neuronal Modeling*,
    2nd ed.; BrainPy's `BioNMDA`.
    """

    alpha1: Param = param(default=2.0)
    beta1: Param = param(default=0.01)
    alpha2: Param = param(default=1.0)
    beta2: Param = param(default=0.5)
    T: Param = param(default=1.0)
    T_dur: Param = param(default=0.5)

    def constraints(self):
        return (
            val.positive("BioNMDA", "alpha1", resolve(self.alpha1)),
            val.positive("BioNMDA", "beta1", resolve(self.beta1)),
            val.positive("BioNMDA", "alpha2", resolve(self.alpha2)),
            val.positive("BioNMDA", "beta2", resolve(self.beta2)),
            val.nonnegative("BioNMDA", "T", resolve(self.T)),
            val.nonnegative("BioNMDA", "T_dur", resolve(self.T_dur)),
        )

    def init_state(self, n: Shape, *, dtype=None) -> BioNMDAState:
        return BioNMDAState(g=zeros(n, dtype), x_s=zeros(n, dtype), pulse_left=zeros(n, dtype))

    def _piece(self, g, x_s, concentration, d):
        """Advance `(g, x_s)` over a piece of `d` ms with a constant transmitter
        concentration (mM)."""
        alpha1, beta1 = resolve(self.alpha1, g), resolve(self.beta1, g)
        alpha2, beta2 = resolve(self.alpha2, g), resolve(self.beta2, g)
        rate, source = alpha2 * concentration + beta2, alpha2 * concentration
        x_mean = kin.linear_mean(x_s, rate, source, d)
        g = kin.linear_step(g, alpha1 * x_mean + beta1, alpha1 * x_mean, d)
        return g, kin.linear_step(x_s, rate, source, d)

    def step(self, state: BioNMDAState, x, dt) -> tuple[BioNMDAState, Float[Array, "*n"]]:
        """Evolve over `dt` ms, then apply this step's release `x`: returns the new state
        and the open fraction `g` at the end of the step (dimensionless)."""
        g, x_s = state.g, state.x_s
        dt = jnp.asarray(dt, g.dtype)
        d_on, d_off, pulse_left = kin.pulse_pieces(state.pulse_left, dt)
        g, x_s = self._piece(g, x_s, resolve(self.T, g), d_on)
        g, x_s = self._piece(g, x_s, jnp.zeros_like(g), d_off)
        pulse_left = kin.restart_pulse(pulse_left, jnp.asarray(x, g.dtype), resolve(self.T_dur, g))
        return BioNMDAState(g=g, x_s=x_s, pulse_left=pulse_left), g
