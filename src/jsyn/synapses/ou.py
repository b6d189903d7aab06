r"""Ornstein-Uhlenbeck conductance noise (Destexhe et al. 2001), stepped exactly."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key, PRNGKeyArray

from .. import _kinetics as kin, _validation as val
from .._component import STREAM, axis, zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractDelivery, AbstractLinearSynapse


class OUNoiseState(eqx.Module):
    """State of `OUNoise`: the conductance `g` (dimensionless) and the PRNG `key` of the
    next step."""

    g: Float[Array, "*n"]
    key: Key[Array, "*streams"] = axis(STREAM)  # one per trial in jsyn.trials


class OUNoise(AbstractLinearSynapse):
    r"""Ornstein-Uhlenbeck conductance noise (the point-conductance model of Destexhe et
    al. 2001), with the step's spikes as jumps:

    $$\frac{dg}{dt} = \frac{g_0 - g}{\tau} + \sigma\sqrt{\frac{2}{\tau}}\,\xi(t)
    + \sum_k w_k\,\delta(t - t_k),$$

    with $\xi$ unit white noise. Stepped exactly (the update is the exact transition law
    of the process over $\Delta t$, whatever its size):

    $$g_n = g_0 + (g_{n-1} - g_0)\,e^{-\Delta t/\tau}
    + \sigma\sqrt{1 - e^{-2\Delta t/\tau}}\;\eta_n + x_n, \qquad \eta_n \sim N(0, 1),$$

    so without spikes the stationary mean is $g_0$, the variance $\sigma^2$ and the
    autocorrelation $\sigma^2 e^{-|\text{lag}|/\tau}$ at any `dt`. The state starts at
    $g_0$. The normal numbers come from the key in the state, split at every step (a run
    continued from its final state goes on with fresh, reproducible draws); given the key,
    $g$ is smooth in $g_0$, $\sigma$ and $\tau$, so they can be fitted by gradient.

    It is linear kinetics with additive noise, so it runs wherever kinetics do: alone,
    `jsyn.simulate(jsyn.OUNoise(...), x, dt, key=jax.random.key(0))` with `x` the
    (weighted) spikes, zeros for noise alone, one process per column; in a
    `jsyn.Network`, as the synapse of a projection, `jsyn.Projection(conn,
    jsyn.OUNoise(g0=..., sigma=..., tau=...), jsyn.COBA(E=0.0), pre=..., post=...)`,
    which keeps one process per postsynaptic neuron (the projection's spikes jump it;
    for noise alone, a connection of weight 0, such as `jsyn.one_to_one(n, w=0.0)` from
    the group to itself) and hands it a key from the network's. The conductance scale
    `g_max` lives in the output law, as for every synapse, so $g$ is in its units; note
    that $g$ is not bounded below (keep $g_0 \gg \sigma$ for a conductance that stays
    positive, as Destexhe et al. do).

    **Arguments:**
    - `g0`: the mean (dimensionless), finite. Default 1.0.
    - `sigma`: the standard deviation (dimensionless), >= 0. Default 0.25.
    - `tau`: the correlation time (ms), > 0. Default 2.7 (Destexhe et al. 2001's
      excitatory conductance).

    **Reference:** Destexhe, Rudolph, Fellous & Sejnowski 2001, *Neuroscience* 107:13.
    """

    g0: Param = param(default=1.0)
    sigma: Param = param(default=0.25)
    tau: Param = param(default=2.7)
    needs_key: ClassVar[bool] = True

    def constraints(self):
        return (
            val.nonnegative("OUNoise", "sigma", resolve(self.sigma)),
            val.positive("OUNoise", "tau", resolve(self.tau)),
        )

    def init_state(self, n: Shape, *, dtype=None, key: PRNGKeyArray) -> OUNoiseState:
        """The state at the mean, $g = g_0$, with the PRNG `key` (required)."""
        g = zeros(n, dtype)
        return OUNoiseState(g=g + resolve(self.g0, g), key=key)

    def step(self, state: OUNoiseState, x, dt) -> tuple[OUNoiseState, Float[Array, "*n"]]:
        g = state.g
        dt = jnp.asarray(dt, g.dtype)
        key, sub = jax.random.split(state.key)
        tau = resolve(self.tau, g)
        g0 = resolve(self.g0, g)
        spread = resolve(self.sigma, g) * jnp.sqrt(-jnp.expm1(-2.0 * dt / tau))
        eta = jax.random.normal(sub, g.shape, g.dtype)
        g = kin.relax(g, g0, dt, tau) + spread * eta + jnp.asarray(x, g.dtype)
        return OUNoiseState(g=g, key=key), g

    def add_drive(self, state: OUNoiseState, delivery: AbstractDelivery):
        g = delivery.add(state.g)
        return OUNoiseState(g=g, key=state.key), g
