r"""A neuromodulator concentration (e.g. dopamine) as a group of a network."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from ..plasticity.base import time_checks
from .base import AbstractNeuron


class NeuromodulatorState(eqx.Module):
    """State of `Neuromodulator`: the concentration `d` (dimensionless, >= 0)."""

    d: Float[Array, " n"] = val.bounded(0.0, None)


class Neuromodulator(AbstractNeuron):
    r"""A neuromodulator concentration (e.g. dopamine) as a group of a `jsyn.Network`:
    it jumps by the reward events it receives and decays with $\tau_d$,

    $$\tau_d\,\dot d = -d + \tau_d \sum_k \delta(t - t_k),$$

    stepped exactly, $d_n = d_{n-1} e^{-\Delta t/\tau_d} + \text{events}_n$. The reward
    events of a step are the group's input (the network's per-step input dict, by the
    group's name, e.g. `inputs={"DA": rewards}` with `rewards` of shape `(T, 1)`: 1 in the
    steps of a reward). A `jsyn.RewardSTDP` projection names the group
    (`modulator="DA"`) and reads $d_n$ of each step; several projections may share one.
    A group of size 1 reaches every synapse; one of the size of a projection's
    postsynaptic group gives each postsynaptic neuron its own concentration.

    `step(state, events, dt) -> (state, events)`: the group's "spikes" are its events.

    **Arguments:**
    - `tau_d`: decay time constant (ms), > 0. Default 200.0.

    **Reference:** Izhikevich 2007, *Cereb Cortex* 17:2443.
    """

    tau_d: Param = param(default=200.0)

    def constraints(self):
        return time_checks("Neuromodulator", tau_d=self.tau_d)

    def init_state(self, n: Shape | None, *, dtype=None) -> NeuromodulatorState:
        return NeuromodulatorState(d=zeros(n, dtype))

    def step(self, state: NeuromodulatorState, x, dt):
        d = state.d
        events = jnp.broadcast_to(jnp.asarray(0.0 if x is None else x, d.dtype), d.shape)
        d = kin.decayed(d, jnp.asarray(dt, d.dtype), resolve(self.tau_d, d)) + events
        return NeuromodulatorState(d=d), events
