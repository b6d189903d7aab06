r"""Reward-modulated STDP (three-factor rule; Izhikevich 2007); it reads a
`jsyn.Neuromodulator` group of the network."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin
from .._component import zeros
from .._custom_types import Shape
from .._params import Param, as_param, resolve
from .base import AbstractLongTermPlasticity, amplitude_checks, time_checks
from .stdp import STDPState, pair_update


class RewardSTDPState(eqx.Module):
    """State of `RewardSTDP`: the pair-STDP traces (`traces`, a `jsyn.STDPState`) and the
    eligibility `c` of each synapse (weight units)."""

    traces: STDPState
    c: Float[Array, "*syn"]


class RewardEventState(eqx.Module):
    r"""State of `RewardSTDP` stepped event-driven on a `jsyn.Sparse` (`Sparse.learn_reward`):
    the weights and eligibilities kept lazily, brought up to date only at a synapse's events.

    - `traces`: the pair-STDP traces, one per presynaptic and one per postsynaptic neuron;
    - `b`: each synapse's base, its weight less $\hat c\,T$ at the end of the step before
      its last event (weight units);
    - `c`: its eligibility $\hat c$, in units of the epoch: the eligibility is $\hat c A$;
    - `T`: per postsynaptic neuron, $T_n = \sum_k \Delta t\, d_k A_k$ over the epoch (ms);
    - `A`: the decay of the eligibility since the epoch's origin, $a^{n - n_0}$ (scalar).

    The weights are $w = \mathrm{clip}(b + \hat c\,T_{post})$
    (`RewardSTDP.event_weights`); the eligibility is `RewardSTDP.event_eligibility`.
    """

    traces: STDPState
    b: Float[Array, " syn"]
    c: Float[Array, " syn"]
    T: Float[Array, " n_post"]
    A: Float[Array, ""]


class RewardSTDP(AbstractLongTermPlasticity):
    r"""Reward-modulated STDP: the changes of pair STDP go into an eligibility trace $c$
    per synapse, and the weight follows $c$ times a neuromodulator concentration $d$,

    $$\dot c = -\frac{c}{\tau_c} + \text{STDP}(t), \qquad \dot w = d\,c.$$

    Each step: the traces and $c$ decay exactly ($c \leftarrow c\,e^{-\Delta t/\tau_c}$);
    the pre events and post spikes change $c$ as pair STDP (`jsyn.STDP`) would change $w$
    ($c \leftarrow c - A_-\,a_{post}$ at a pre event, $c \leftarrow c + A_+\,a_{pre}$ at
    a post spike); then $w \leftarrow w + \Delta t\,d_n\,c_n$, with $d_n$ the concentration
    of this step and $c_n$ the eligibility after this step's decay and jumps; then $w$ is
    clipped to $[w_{min}, w_{max}]$.

    One pair at lag $\Delta t > 0$ and one reward ($d$ jumps by 1 at $t_r$, then decays
    with $\tau_d$) change the weight by, as $\Delta t_{grid} \to 0$,
    $A_+ e^{-\Delta t/\tau_{pre}}\,K\,\tau_c\tau_d/(\tau_c + \tau_d)$, with
    $K = e^{-(t_r - t_{post})/\tau_c}$ for a reward after the post spike and
    $K = e^{-(t_{post} - t_r)/\tau_d}$ for one before it.

    The concentration comes from a `jsyn.Neuromodulator` group of the network, named by
    `modulator`.

    **Arguments:**
    - `modulator`: the name of the `jsyn.Neuromodulator` group (static).
    - `A_plus`, `A_minus`, `tau_pre`, `tau_post`: as in `jsyn.STDP` (defaults 0.01,
      0.0105, 16.8 ms, 33.7 ms).
    - `tau_c`: decay time constant of the eligibility (ms), > 0. Default 1000.0.
    - `w_min`, `w_max`: the weight bounds. Default 0 and 1.
    - `event_driven`: keep the weights lazily and update a synapse only at its events, so
      that a step's cost follows its spikes (static; default `False`, a pass over every
      synapse each step). Needs an event-driven `jsyn.Sparse` connection, summed kinetics,
      no delay per synapse and scalar time constants. Between its events a synapse's
      eligibility only decays, so its weight change is its eligibility times a running sum
      of $\Delta t\,d_k a^k$ per postsynaptic neuron ($a = e^{-\Delta t/\tau_c}$), applied
      when it is next touched (`jsyn.Sparse.learn_reward`); one clip then equals the
      rule's clip at every step while $d \ge 0$, and a step with a negative $d$ brings
      every synapse up to date before and after it, so the weights equal the dense rule's
      to rounding. `state.projections[name].w` computes the true weights (one pass over
      them all, only when read); the rule's state is a `jsyn.RewardEventState`. In
      `jsyn.trials` each trial equals its single run.

    **Reference:** Izhikevich 2007, *Cereb Cortex* 17:2443.
    """

    A_plus: Param
    A_minus: Param
    tau_pre: Param
    tau_post: Param
    tau_c: Param
    w_min: Param
    w_max: Param
    modulator: str = eqx.field(static=True)
    event_driven: bool = eqx.field(static=True)
    multiplicative = False  # the eligibility changes additively (read by `pair_update`)

    def __init__(
        self,
        modulator: str,
        *,
        A_plus=0.01,
        A_minus=0.0105,
        tau_pre=16.8,
        tau_post=33.7,
        tau_c=1000.0,
        w_min=0.0,
        w_max=1.0,
        event_driven=False,
    ):
        if not isinstance(modulator, str) or not modulator:
            raise TypeError(
                f"RewardSTDP.modulator must be the name of a jsyn.Neuromodulator group of the "
                f"network (got {modulator!r}), e.g. RewardSTDP('DA')."
            )
        self.modulator = modulator
        self.event_driven = bool(event_driven)
        self.A_plus, self.A_minus, self.tau_pre, self.tau_post, self.tau_c = (
            as_param(v) for v in (A_plus, A_minus, tau_pre, tau_post, tau_c)
        )
        self.w_min, self.w_max = as_param(w_min), as_param(w_max)

    def constraints(self):
        return (
            *amplitude_checks("RewardSTDP", A_plus=self.A_plus, A_minus=self.A_minus),
            *time_checks(
                "RewardSTDP", tau_pre=self.tau_pre, tau_post=self.tau_post, tau_c=self.tau_c
            ),
            *self.bound_checks(),
        )

    def init_state(self, shape: Shape, *, dtype=None) -> RewardSTDPState:
        traces = STDPState(a_pre=zeros(shape, dtype), a_post=zeros(shape, dtype))
        return RewardSTDPState(traces=traces, c=zeros(shape, dtype))

    def step(self, state: RewardSTDPState, w, pre, post, dt, modulator=None):
        if modulator is None:
            raise ValueError(
                "RewardSTDP needs the neuromodulator concentration of each step; run the "
                f"projection in a jsyn.Network with a jsyn.Neuromodulator group named "
                f"{self.modulator!r}."
            )
        c = kin.decayed(state.c, jnp.asarray(dt, w.dtype), resolve(self.tau_c, w))
        traces, c = pair_update(self, state.traces, c, pre, post, dt)
        w = w + jnp.asarray(dt, w.dtype) * jnp.asarray(modulator, w.dtype) * c
        return RewardSTDPState(traces=traces, c=c), self.clip(w)

    def init_event_state(self, w, n_pre: int, n_post: int) -> RewardEventState:
        """The rested state of the event-driven step (`Sparse.learn_reward`) for the
        weights `w` (one per synapse, within the bounds): traces per neuron, eligibility 0."""
        w = self.clip(jnp.asarray(w))
        traces = STDPState(a_pre=zeros(n_pre, w.dtype), a_post=zeros(n_post, w.dtype))
        c = jnp.zeros_like(w)
        return RewardEventState(traces, w, c, zeros(n_post, w.dtype), jnp.ones((), w.dtype))

    def event_weights(self, state: RewardEventState, post_idx) -> Float[Array, " syn"]:
        """The true weights of an event-driven state, one per synapse (`post_idx`: each
        synapse's postsynaptic neuron, `jsyn.Sparse.post_idx`); one pass over them all."""
        return self.clip(state.b + state.c * state.T[post_idx])

    def event_eligibility(self, state: RewardEventState) -> Float[Array, " syn"]:
        """The eligibility $c$ of each synapse of an event-driven state."""
        return state.c * state.A
