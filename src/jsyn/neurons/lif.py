"""The leaky integrate-and-fire neuron."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import as_shape, float_dtype
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractNeuron
from .surrogate import AbstractSurrogate, SigmoidSurrogate


class LIFState(eqx.Module):
    """State of `LIF`: membrane potential `V` (mV) and refractory time left `t_ref` (ms)."""

    V: Float[Array, "*n"]
    t_ref: Float[Array, "*n"]


class LIF(AbstractNeuron):
    r"""Leaky integrate-and-fire neuron.

    $$\tau \frac{dV}{dt} = -(V - V_\text{rest}) + R\,I;$$
    when $V \ge V_\text{th}$ it spikes, $V \leftarrow V_\text{reset}$, and $V$ is held there for
    `tau_ref` ms.

    One step, with the input current held over the step (exact for piecewise-constant input):
    1. $V$ stays at $V_\text{reset}$ for the refractory time left in the step,
       $h = \min(t_\text{ref}, \Delta t)$, then relaxes for the rest of it:
       $V \leftarrow V_\infty + (V - V_\infty)e^{-(\Delta t - h)/\tau}$,
       $V_\infty = V_\text{rest} + R I$ (so a refractory period that ends inside a step
       frees the neuron for the remaining fraction); then $V \leftarrow V + $ `jump`
       (voltage-jump synapses), ignored where more than half a step of refractory time
       was left;
    2. spike where $V \ge V_\text{th}$: $V \leftarrow V_\text{reset}$, refractory for
       `tau_ref` ms; otherwise $t_\text{ref} \leftarrow t_\text{ref} - h$.

    The spike is an exact 0/1 forward; its gradient w.r.t. $V$ is the `surrogate`'s. Because
    the refractory period ends at its exact time, not at a step boundary, the potential is a
    continuous function of `tau_ref`, and its gradient w.r.t. `tau_ref` is the true one
    (nonzero when the period ends inside a step; a kink where it ends exactly on a step).

    **Arguments:**
    - `V_rest`: resting potential (mV). Default -60.
    - `V_th`: threshold (mV), > `V_reset`. Default -50.
    - `V_reset`: reset potential (mV). Default -60.
    - `tau`: membrane time constant (ms), > 0. Default 20.
    - `R`: membrane resistance (GΩ; GΩ × pA = mV), > 0. Default 1.
    - `tau_ref`: refractory period (ms), >= 0. Default 0. Differentiable (see above).
    - `surrogate`: surrogate gradient of the spike. Default `SigmoidSurrogate()`.

    **Reference:** Gerstner et al. 2014, *Neuronal Dynamics*, ch. 1.3.
    """

    V_rest: Param = param(default=-60.0)
    V_th: Param = param(default=-50.0)
    V_reset: Param = param(default=-60.0)
    tau: Param = param(default=20.0)
    R: Param = param(default=1.0)
    tau_ref: Param = param(default=0.0)
    surrogate: AbstractSurrogate = SigmoidSurrogate()
    has_potential: ClassVar[bool] = True
    takes_jump: ClassVar[bool] = True

    def constraints(self):
        V_th, V_reset = resolve(self.V_th), resolve(self.V_reset)
        return (
            val.finite("LIF", "V_rest", resolve(self.V_rest)),
            val.positive("LIF", "tau", resolve(self.tau)),
            val.positive("LIF", "R", resolve(self.R), "pass a resistance > 0 (GΩ)"),
            val.nonnegative("LIF", "tau_ref", resolve(self.tau_ref)),
            val.Check(
                ~(V_reset < V_th),
                {"V_reset": V_reset, "V_th": V_th},
                "LIF needs V_reset < V_th",
                "lower V_reset or raise V_th, or the neuron would fire at every step",
            ),
        )

    def init_state(self, n: Shape, *, dtype=None, V0=None) -> LIFState:
        """The state of `n` neurons at rest, or at potential `V0` (mV) if given."""
        dtype = float_dtype(dtype)
        V = resolve(self.V_rest) if V0 is None else jnp.asarray(V0)
        V = jnp.broadcast_to(V.astype(dtype), as_shape(n))
        return LIFState(V=V, t_ref=jnp.zeros(as_shape(n), dtype))

    def step(self, state: LIFState, x, dt, *, jump=None) -> tuple[LIFState, Float[Array, "*n"]]:
        """One step of `dt` ms with input current `x` (pA) and an optional voltage `jump`
        (mV, ignored while refractory): returns `(state, spikes)`, spikes 0/1."""
        like = state.V
        V_reset = resolve(self.V_reset, like)
        held = jnp.minimum(state.t_ref, dt)  # refractory time within this step
        V_inf = resolve(self.V_rest, like) + resolve(self.R, like) * jnp.asarray(x, like.dtype)
        V = kin.relax(state.V, V_inf, dt - held, resolve(self.tau, like))
        V = jnp.where(held < dt, V, state.V)  # refractory all step: V stays exactly
        if jump is not None:
            V = V + jnp.where(state.t_ref > 0.5 * dt, jnp.zeros_like(jump), jump)
        spikes = self.surrogate(V - resolve(self.V_th, like))
        fired = spikes > 0
        V = jnp.where(fired, V_reset, V)
        t_ref = jnp.where(fired, resolve(self.tau_ref, like), state.t_ref - held)
        return LIFState(V=V, t_ref=t_ref), spikes
