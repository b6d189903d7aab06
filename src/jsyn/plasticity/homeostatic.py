r"""Synaptic scaling: multiplicative homeostasis of the weights onto a neuron towards a
target rate (van Rossum, Bi & Turrigiano 2000)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractLongTermPlasticity, time_checks


class SynapticScalingState(eqx.Module):
    """State of `SynapticScaling`: the activity trace `a` of each synapse's postsynaptic
    neuron (1/ms), held per synapse."""

    a: Float[Array, "*syn"] = val.bounded(0.0, None)


class SynapticScaling(AbstractLongTermPlasticity):
    r"""Synaptic scaling: every weight onto a neuron grows when the neuron fires below a
    target rate and shrinks when it fires above it, in proportion to the weight,

    $$\tau_a\,\dot a = -a + \sum_k \delta(t - t_k^{post}), \qquad
    \dot w = \beta\,w\,(r_{target} - a).$$

    $a$ is the neuron's rate estimated over $\tau_a$ (1/ms). Each step:
    $a \leftarrow a\,e^{-\Delta t/\tau_a} + \text{spikes}/\tau_a$, then
    $w \leftarrow w + \Delta t\,\beta\,w\,(r_{target} - a)$ on every synapse onto that
    neuron, then $w$ is clipped to $[w_{min}, w_{max}]$. Presynaptic spikes play no part.
    Keep it slow (large $\tau_a$, small $\beta$) next to the neuron's own dynamics.

    **Arguments:**
    - `rate_target`: the target rate (Hz), > 0.
    - `tau_a`: time constant of the rate estimate (ms), > 0. Default 1000.0.
    - `beta`: the scaling rate (dimensionless: relative change of $w$ per ms and per
      1/ms of rate error), >= 0. Default 1.0.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.

    **Reference:** van Rossum, Bi & Turrigiano 2000, *J Neurosci* 20:8812.
    """

    rate_target: Param = param()
    tau_a: Param = param(default=1000.0)
    beta: Param = param(default=1.0)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    def constraints(self):
        owner = "SynapticScaling"
        return (
            val.positive(owner, "rate_target", resolve(self.rate_target), "pass a rate in Hz"),
            *time_checks(owner, tau_a=self.tau_a),
            val.nonnegative(owner, "beta", resolve(self.beta)),
            *self.bound_checks(),
        )

    def init_state(self, shape: Shape, *, dtype=None) -> SynapticScalingState:
        return SynapticScalingState(a=zeros(shape, dtype))

    def step(self, state: SynapticScalingState, w, pre, post, dt, modulator=None):
        dt = jnp.asarray(dt, w.dtype)
        tau_a = resolve(self.tau_a, w)
        a = kin.decayed(state.a, dt, tau_a) + post.astype(w.dtype) / tau_a
        target = resolve(self.rate_target, w) / 1000.0  # Hz -> 1/ms
        w = w + dt * resolve(self.beta, w) * w * (target - a)
        return SynapticScalingState(a=a), self.clip(w)
