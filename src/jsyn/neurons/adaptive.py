r"""The protocol of two-variable spiking neurons: a membrane potential $V$ and an
adaptation variable $w$, reset at a spike (`jsyn.AdEx`, `jsyn.Izhikevich`)."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _validation as val
from .._component import as_shape, float_dtype
from .._custom_types import Shape
from .._params import Param, resolve
from .base import AbstractNeuron
from .surrogate import AbstractSurrogate


class AdaptiveState(eqx.Module):
    """State of `AdEx` and `Izhikevich`: membrane potential `V` (mV), adaptation `w`
    (`AdEx`: a current, pA; `Izhikevich`: its recovery variable $u$, mV/ms) and refractory
    time left `t_ref` (ms)."""

    V: Float[Array, "*n"]
    w: Float[Array, "*n"]
    t_ref: Float[Array, "*n"]


class AbstractAdaptiveNeuron(AbstractNeuron):
    r"""A neuron $\dot V = f(V, w, I)$, $\dot w = g(V, w)$ that spikes when $V$ reaches
    `V_peak`, then $V \leftarrow V_\text{reset}$, $w \leftarrow w + $ `jump_of_w()` and $V$ is
    held at $V_\text{reset}$ for `tau_ref` ms (while $w$ evolves).

    One step of $\Delta t$ with the input current held over the step:
    1. the refractory time left in the step, $h = \min(t_\text{ref}, \Delta t)$: $V$ stays,
       $w$ relaxes exactly with $V$ fixed (`hold`), so the potential is continuous in
       `tau_ref`;
    2. the rest of the step, $\Delta t - h$, by Heun's method (second-order Runge-Kutta):
       $k_1 = F(y)$, $k_2 = F(y + (\Delta t - h) k_1)$, $y \leftarrow y + \frac{\Delta t - h}{2}
       (k_1 + k_2)$, with $V$ capped at `V_peak` where $F$ reads it (the upswing of a spike
       then stays finite: it is reset within the step);
    3. spike where $V \ge V_\text{peak}$ (an exact 0/1 forward; the `surrogate`'s gradient).

    The error of a step is $O(\Delta t^3)$, of a run $O(\Delta t^2)$ (tested by halving
    $\Delta t$); spike times land on the grid.

    Final classes give `rates(V, w, I) -> (dV/dt, dw/dt)`, `hold(V, w, h)` (exact $w$
    after $h$ ms at fixed $V$), `w_nullcline(V)` (where $w$ settles at fixed $V$),
    `jump_of_w()` (the increment of $w$ at a spike), `rest()` (the potential the state
    starts at) and the fields `V_peak`, `V_reset`, `tau_ref`, `surrogate`.
    """

    has_potential: ClassVar[bool] = True

    V_peak: eqx.AbstractVar[Param]
    V_reset: eqx.AbstractVar[Param]
    tau_ref: eqx.AbstractVar[Param]
    surrogate: eqx.AbstractVar[AbstractSurrogate]

    @abc.abstractmethod
    def rates(self, V, w, x, like):
        """$(\\dot V, \\dot w)$ at potential `V`, adaptation `w`, input current `x` (pA)."""

    @abc.abstractmethod
    def hold(self, V, w, h, like):
        """$w$ after `h` ms with $V$ held."""

    @abc.abstractmethod
    def w_nullcline(self, V, like):
        """The value $w$ relaxes to at fixed potential `V`."""

    @abc.abstractmethod
    def jump_of_w(self, like):
        """The increment of $w$ at a spike."""

    @abc.abstractmethod
    def rest(self):
        """The resting potential the state starts at (mV)."""

    def range_checks(self) -> tuple:
        owner = type(self).__name__
        peak, reset = resolve(self.V_peak), resolve(self.V_reset)
        return (
            val.nonnegative(owner, "tau_ref", resolve(self.tau_ref)),
            val.Check(
                ~(reset < peak),
                {"V_reset": reset, "V_peak": peak},
                f"{owner} needs V_reset < V_peak",
                "lower V_reset or raise V_peak, or the neuron would fire at every step",
            ),
        )

    def init_state(self, n: Shape, *, dtype=None, V0=None, w0=None) -> AdaptiveState:
        """The state of `n` neurons at rest (`w` at its value at rest), or at potential
        `V0` (mV) and adaptation `w0` if given."""
        dtype = float_dtype(dtype)
        shape = as_shape(n)
        V = jnp.asarray(self.rest() if V0 is None else V0, dtype)
        V = jnp.broadcast_to(V, shape)
        w = self.w_nullcline(V, V) if w0 is None else jnp.asarray(w0, dtype)
        w = jnp.broadcast_to(w, shape)
        return AdaptiveState(V=V, w=w, t_ref=jnp.zeros(shape, dtype))

    def step(self, state: AdaptiveState, x, dt) -> tuple[AdaptiveState, Float[Array, "*n"]]:
        """One step of `dt` ms with input current `x` (pA): returns `(state, spikes)`."""
        like = state.V
        x = jnp.asarray(x, like.dtype)
        dt = jnp.asarray(dt, like.dtype)
        peak = resolve(self.V_peak, like)
        held = jnp.minimum(state.t_ref, dt)
        h = dt - held
        V, w = state.V, self.hold(state.V, state.w, held, like)
        dV1, dw1 = self.rates(jnp.minimum(V, peak), w, x, like)
        dV2, dw2 = self.rates(jnp.minimum(V + h * dV1, peak), w + h * dw1, x, like)
        V = jnp.where(held < dt, V + 0.5 * h * (dV1 + dV2), state.V)
        w = w + 0.5 * h * (dw1 + dw2)
        spikes = self.surrogate(V - peak)
        fired = spikes > 0
        V = jnp.where(fired, resolve(self.V_reset, like), V)
        w = w + spikes * self.jump_of_w(like)
        t_ref = jnp.where(fired, resolve(self.tau_ref, like), state.t_ref - held)
        return AdaptiveState(V=V, w=w, t_ref=t_ref), spikes
