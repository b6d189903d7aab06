"""The protocol of long-term plasticity rules, whose weights live in the network state."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _validation as val
from .._component import AbstractComponent
from .._custom_types import Shape
from .._params import Param, resolve


class AbstractLongTermPlasticity(AbstractComponent):
    r"""A long-term plasticity rule: how the weight of each synapse of a `jsyn.Projection`
    changes with the spikes on both of its sides.

    `modulator` names the `jsyn.Neuromodulator` group the rule reads (`None` for rules
    without a third factor).

    Give it to a projection, `jsyn.Projection(..., plasticity=rule)`. The weights then live
    in the state, one per synapse (`state.projections[name].w`, shape `conn.syn_shape`),
    starting from the connection's weights, and change inside the scan; the rule's traces
    live next to them (`state.projections[name].rule`).

    The projection calls the rule once per step, after the neurons have stepped:

    - `init_state(shape, *, dtype=None)`: the rested traces of `shape` synapses (zero);
    - `step(state, w, pre, post, dt, modulator=None) -> (state, w)`: `pre` is the
      presynaptic events of the step at each synapse, shape `syn_shape` (the spikes that
      **arrive** at the synapse in this step, after its delay; a fractional arrival counts
      with its fraction), `post` the spikes of the synapse's postsynaptic neuron in this
      step (no back-propagation delay), `modulator` the neuromodulator concentration
      (`jsyn.RewardSTDP` only). Returns the traces and the weights at the end of the step.

    **Order within a step** (from $t_{n-1}$ to $t_n$): 1. every trace decays exactly over
    the step, $x \leftarrow x\,e^{-\Delta t/\tau}$; 2. the step's transmission uses the
    weights as they were at the start of the step (the projection does this); 3. the pre
    events apply their updates; 4. the post spikes apply theirs, so a pre event and a post
    spike in the same step count as pre before post; 5. neuromodulated and homeostatic
    terms are added; the weights are clipped to `[w_min, w_max]`.

    The rules act elementwise on per-synapse arrays, so they are the same for `jsyn.Dense`
    and `jsyn.Sparse`. Their parameters are scalars (or one value per synapse).
    """

    w_min: eqx.AbstractVar[Param]
    w_max: eqx.AbstractVar[Param]
    modulator: eqx.AbstractVar[str | None]

    @abc.abstractmethod
    def init_state(self, shape: Shape, *, dtype=None):
        """The rested traces of synapses of shape `shape`."""

    @abc.abstractmethod
    def step(self, state, w, pre, post, dt, modulator=None) -> tuple[object, Float[Array, "*syn"]]:
        """One step of `dt` ms: returns `(state, w)`."""

    def clip(self, w):
        """The weights clipped to `[w_min, w_max]`."""
        return jnp.clip(w, resolve(self.w_min, w), resolve(self.w_max, w))

    def bound_checks(self) -> tuple:
        owner = type(self).__name__
        lo, hi = resolve(self.w_min), resolve(self.w_max)
        return (
            val.Check(
                ~(hi >= lo),
                {"w_min": lo, "w_max": hi},
                f"{owner} needs w_min <= w_max",
                "swap or fix the weight bounds",
            ),
        )


def amplitude_checks(owner: str, **amplitudes) -> tuple:
    """Learning rates (amplitudes) are >= 0; the sign of each term is the rule's."""
    return tuple(
        val.nonnegative(owner, name, resolve(a), "the rule fixes the sign; pass a value >= 0")
        for name, a in amplitudes.items()
    )


def time_checks(owner: str, **taus) -> tuple:
    return tuple(val.positive(owner, name, resolve(t)) for name, t in taus.items())
