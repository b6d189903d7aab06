"""The protocol of long-term plasticity rules, whose weights live in the network state."""

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _kinetics as kin, _validation as val
from .._component import AbstractComponent, zeros
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

    **Declared:** `needs_post_voltage` (default `False`): the rule also reads the membrane
    potential of the postsynaptic neuron (`jsyn.Clopath`). The projection then calls
    `step(state, w, pre, post, dt, modulator, V=V)` with `V` the potential at the end of
    the step at each synapse (mV, shape `syn_shape`), and a `jsyn.Network` hands it the
    potential of the post group (which must declare one, `has_potential`).
    `event_driven` (default `False`): the rule keeps its weights lazily and steps
    event-driven on an event-driven `jsyn.Sparse` (`jsyn.RewardSTDP(..., event_driven=True)`,
    `jsyn.Sparse.learn_reward`); the projection then holds a `jsyn.RewardEventState`.
    """

    w_min: eqx.AbstractVar[Param]
    w_max: eqx.AbstractVar[Param]
    modulator: eqx.AbstractVar[str | None]
    needs_post_voltage: ClassVar[bool] = False
    event_driven: ClassVar[bool] = False

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


def unchanged(x):
    """The identity: the synapses a rule's update reads are the ones it was given."""
    return x


class AbstractTraceRule(AbstractLongTermPlasticity):
    r"""An all-to-all spike-timing rule whose traces each follow the spike train of one side
    of the synapse: presynaptic traces jump at the pre events, postsynaptic traces at the
    post spikes, each decays with its own time constant, and the weight changes only at
    events (`depress` at a pre event, `potentiate` at a post spike).

    Every synapse of a presynaptic neuron then sees the same presynaptic traces (when its
    events reach every synapse at once: no delay or one delay for all) and every synapse
    onto a postsynaptic neuron the same postsynaptic traces, so the traces can be kept per
    neuron and a step need touch only the synapses of the neurons with an event in it:
    `jsyn.Sparse` does so (`Sparse.learn`). This is exact when the time constants are
    scalars (`per_neuron`); the amplitudes and bounds may be per synapse. With one delay per
    synapse, each synapse sees its neuron's presynaptic traces at its own delay, read from
    a history of them (`Sparse.learn_delayed`; exact for any delay when the trace is
    `additive`, for whole steps otherwise).

    `state_type` is the class of the state, `pre_taus` and `post_taus` map each trace (a
    field of the state) to the name of its time constant; `depress(w, pre, traces, at)`
    and `potentiate(w, post, traces, at)` give the weights after the events of one side,
    unclipped, with `traces` the traces each synapse sees and `at` the function that reads
    a per-synapse parameter at those synapses.

    `pairing` says which spike pairs interact (NEST's names; see `PAIRINGS`): `"all"`
    (all-to-all: a trace jumps by 1 at each spike of its side), `"nn_symm"` (each spike
    pairs with the nearest earlier spike of the other side: a trace is reset to 1 at each
    spike of its side), `"nn_pre_centered"` (a pre event pairs with the nearest earlier
    post spike; a post spike with every pre event since the previous post spike: the
    presynaptic trace jumps by 1 at a pre event and is cleared at a post spike, the
    postsynaptic trace is reset to 1) and `"nn_restr"` (only neighbouring pairs that no
    other spike separates: a spike resets its own side's trace to 1 and clears the other
    side's). The last two clear the other side's trace at a synapse, so their traces are
    kept per synapse (never per neuron). A fractional arrival $f$ moves a trace the
    fraction $f$ of the way ($a \leftarrow a (1 - f) + f$ for a reset).

    `clip_each_event`: `False` clips the weights once per step, after both sides' events
    (jsyn's default); `True` clips after the pre events and again after the post spikes,
    as NEST and Brian2's examples do at each event (the two differ only in a step where
    a synapse sees a pre event and a post spike and the first crosses a bound).
    """

    state_type: eqx.AbstractClassVar[type]
    pre_taus: eqx.AbstractClassVar[dict[str, str]]
    post_taus: eqx.AbstractClassVar[dict[str, str]]
    pairing: eqx.AbstractVar[str]
    clip_each_event: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def depress(self, w, pre, traces, at=unchanged):
        """The weights after the pre events `pre` (unclipped)."""

    @abc.abstractmethod
    def potentiate(self, w, post, traces, at=unchanged):
        """The weights after the post spikes `post` (unclipped)."""

    def init_state(self, shape: Shape, *, dtype=None):
        z = zeros(shape, dtype)
        return self.state_type(**{name: z for name in (*self.pre_taus, *self.post_taus)})

    def init_neuron_state(self, n_pre: int, n_post: int, *, dtype=None):
        """The rested traces kept per neuron: presynaptic ones of shape `(n_pre,)`,
        postsynaptic ones of shape `(n_post,)` (see `per_neuron`)."""
        pre, post = zeros(n_pre, dtype), zeros(n_post, dtype)
        return self.state_type(
            **{name: pre for name in self.pre_taus}, **{name: post for name in self.post_taus}
        )

    @property
    def per_neuron(self) -> bool:
        """Whether traces kept per neuron are exact: every time constant a scalar, and a
        pairing whose spikes touch only their own side's traces."""
        taus = (*self.pre_taus.values(), *self.post_taus.values())
        own_side = PAIRINGS[self.pairing][2] is None
        return own_side and all(jnp.ndim(resolve(getattr(self, tau))) == 0 for tau in taus)

    @property
    def additive(self) -> bool:
        """Whether a presynaptic trace adds its jumps and nothing else clears it
        (`pairing="all"`): it is then linear in its spike train, so the trace that a
        synapse sees of a delayed spike train, fractional arrivals included, is its
        neuron's trace delayed alike (`jsyn.Sparse.learn_delayed`)."""
        pre_rule, _, clears = PAIRINGS[self.pairing]
        return pre_rule == "add" and clears is None

    def decay(self, state, dt, like):
        """Every trace decayed exactly over a step of `dt` ms."""
        dt = jnp.asarray(dt, jnp.result_type(like))
        taus = {**self.pre_taus, **self.post_taus}
        return dataclasses.replace(
            state,
            **{
                name: kin.decayed(getattr(state, name), dt, resolve(getattr(self, tau), like))
                for name, tau in taus.items()
            },
        )

    def jump(self, state, x, side: str):
        """The traces after events `x` of `side` (`"pre"` or `"post"`), by `pairing`."""
        own, other = (self.pre_taus, self.post_taus)[:: 1 if side == "pre" else -1]
        pre_rule, post_rule, clears = PAIRINGS[self.pairing]
        reset = (pre_rule if side == "pre" else post_rule) == "reset"
        new = {
            name: getattr(state, name) * (1 - x) + x if reset else getattr(state, name) + x
            for name in own
        }
        if clears is not None and side in clears:
            new.update({name: getattr(state, name) * (1 - x) for name in other})
        return dataclasses.replace(state, **new)

    def at_synapses(self, state, pre_index, post_index):
        """The traces that synapses see, from traces kept per neuron: presynaptic ones read
        at `pre_index`, postsynaptic ones at `post_index`."""
        return dataclasses.replace(
            state,
            **{name: getattr(state, name)[pre_index] for name in self.pre_taus},
            **{name: getattr(state, name)[post_index] for name in self.post_taus},
        )

    def update(self, state, w, pre, post, dt):
        """One step on per-synapse traces (`pre`, `post` of shape `syn_shape`), unclipped:
        decay, pre events, post spikes. Returns `(state, w)`."""
        state = self.decay(state, dt, w)
        pre, post = pre.astype(w.dtype), post.astype(w.dtype)
        w = self.depress(w, pre, state)
        if self.clip_each_event:
            w = self.clip(w)
        state = self.jump(state, pre, "pre")
        w = self.potentiate(w, post, state)
        return self.jump(state, post, "post"), w

    def step(self, state, w, pre, post, dt, modulator=None):
        state, w = self.update(state, w, pre, post, dt)
        return state, self.clip(w)


PAIRINGS = {
    # name: (pre trace at a pre event, post trace at a post spike, sides whose spikes clear
    # the other side's traces)
    "all": ("add", "add", None),
    "nn_symm": ("reset", "reset", None),
    "nn_pre_centered": ("add", "reset", ("post",)),
    "nn_restr": ("reset", "reset", ("pre", "post")),
}
"""The spike pairings of `AbstractTraceRule.pairing` (NEST's `stdp_synapse`,
`stdp_nn_symm_synapse`, `stdp_nn_pre_centered_synapse`, `stdp_nn_restr_synapse`)."""


def pairing_checks(owner: str, pairing: str, allowed=tuple(PAIRINGS)):
    """Raise if `pairing` is not one of `allowed`."""
    if pairing not in allowed:
        raise ValueError(
            f"{owner}: unknown pairing {pairing!r}; pass one of "
            + ", ".join(repr(p) for p in allowed)
            + "."
        )


def amplitude_checks(owner: str, **amplitudes) -> tuple:
    """Learning rates (amplitudes) are >= 0; the sign of each term is the rule's."""
    return tuple(
        val.nonnegative(owner, name, resolve(a), "the rule fixes the sign; pass a value >= 0")
        for name, a in amplitudes.items()
    )


def time_checks(owner: str, **taus) -> tuple:
    return tuple(val.positive(owner, name, resolve(t)) for name, t in taus.items())
