r"""Pair-based spike-timing-dependent plasticity in the trace form (Song, Miller & Abbott
2000)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, param, resolve
from .base import AbstractLongTermPlasticity, amplitude_checks, time_checks


class STDPState(eqx.Module):
    """State of `STDP`: the presynaptic trace `a_pre` and the postsynaptic trace `a_post`
    of each synapse (dimensionless, counts of recent spikes)."""

    a_pre: Float[Array, "*syn"]
    a_post: Float[Array, "*syn"]


def pair_update(rule, state: STDPState, w, pre, post, dt):
    r"""The pair-STDP step of `rule` (which has `A_plus`, `A_minus`, `tau_pre`,
    `tau_post`, `w_min`, `w_max` and `multiplicative`) applied to `w`, unclipped: decay,
    pre events, post spikes (see `STDP`). Returns `(state, w)`."""
    dt = jnp.asarray(dt, w.dtype)
    a_pre = state.a_pre * kin.decay(dt, resolve(rule.tau_pre, w))
    a_post = state.a_post * kin.decay(dt, resolve(rule.tau_post, w))
    pre, post = pre.astype(w.dtype), post.astype(w.dtype)
    depress = resolve(rule.A_minus, w) * a_post * pre
    if rule.multiplicative:
        depress = depress * (w - resolve(rule.w_min, w))
    w = w - depress
    a_pre = a_pre + pre
    potentiate = resolve(rule.A_plus, w) * a_pre * post
    if rule.multiplicative:
        potentiate = potentiate * (resolve(rule.w_max, w) - w)
    w = w + potentiate
    return STDPState(a_pre=a_pre, a_post=a_post + post), w


class STDP(AbstractLongTermPlasticity):
    r"""Pair-based STDP, trace form (all-to-all pairs).

    Each synapse keeps a presynaptic trace $a_{pre}$ and a postsynaptic trace $a_{post}$,
    $\tau_{pre}\,\dot a_{pre} = -a_{pre}$, $\tau_{post}\,\dot a_{post} = -a_{post}$, and

    - at a presynaptic event (the spike's arrival at the synapse):
      $w \leftarrow w - A_-\,a_{post}$, then $a_{pre} \leftarrow a_{pre} + 1$;
    - at a postsynaptic spike: $w \leftarrow w + A_+\,a_{pre}$, then
      $a_{post} \leftarrow a_{post} + 1$;

    then $w$ is clipped to $[w_{min}, w_{max}]$. One pair at lag
    $\Delta t = t_{post} - t_{pre}$ (far from other spikes) changes the weight by
    $A_+ e^{-\Delta t/\tau_{pre}}$ for $\Delta t > 0$ and $-A_- e^{\Delta t/\tau_{post}}$
    for $\Delta t < 0$; a pre event and a post spike in the same step potentiate by $A_+$
    (the pre event counts first).

    With `multiplicative=True` (soft bounds) potentiation is scaled by $w_{max} - w$ and
    depression by $w - w_{min}$.

    Discretisation: the traces decay exactly over each step,
    $a \leftarrow a\,e^{-\Delta t/\tau}$, then the step's pre events and post spikes apply
    (see `jsyn.AbstractLongTermPlasticity` for the order). A fractional arrival $f$ (a
    delay between grid points) applies its update with weight $f$.

    **Arguments:**
    - `A_plus`: potentiation per pair (weight units), >= 0. Default 0.01.
    - `A_minus`: depression per pair, >= 0. Default 0.0105 ($A_-/A_+ = 1.05$).
    - `tau_pre`: time constant of the presynaptic trace (ms), > 0. Default 16.8.
    - `tau_post`: time constant of the postsynaptic trace (ms), > 0. Default 33.7.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.
    - `multiplicative`: soft bounds (see above). Default `False` (additive).

    **Reference:** Song, Miller & Abbott 2000, *Nat Neurosci* 3:919; time constants from
    the fit of Bi & Poo 1998 (*J Neurosci* 18:10464).
    """

    A_plus: Param = param(default=0.01)
    A_minus: Param = param(default=0.0105)
    tau_pre: Param = param(default=16.8)
    tau_post: Param = param(default=33.7)
    w_min: Param = param(default=0.0)
    w_max: Param = param(default=1.0)
    multiplicative: bool = eqx.field(static=True, default=False)
    modulator: None = eqx.field(static=True, default=None, init=False)  # no third factor

    def constraints(self):
        return (
            *amplitude_checks("STDP", A_plus=self.A_plus, A_minus=self.A_minus),
            *time_checks("STDP", tau_pre=self.tau_pre, tau_post=self.tau_post),
            *self.bound_checks(),
        )

    def init_state(self, shape: Shape, *, dtype=None) -> STDPState:
        return STDPState(a_pre=zeros(shape, dtype), a_post=zeros(shape, dtype))

    def step(self, state: STDPState, w, pre, post, dt, modulator=None):
        state, w = pair_update(self, state, w, pre, post, dt)
        return state, self.clip(w)
