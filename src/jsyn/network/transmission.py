r"""Transmissions: how a `jsyn.Projection` turns the signal of a step (its presynaptic
spikes, scaled by short-term plasticity) into the conductance of its postsynaptic neurons.

A projection picks one when it is built, from its parts, and keeps it:

- `SummedKinetics`: linear kinetics, one state per postsynaptic neuron; the weighted
  spikes are delivered straight into it (event-driven with `jsyn.Sparse`), after a
  post-side buffer of arriving drive when there is a delay.
- `PerSynapseKinetics`: one kinetics state per synapse, driven by the spikes of its
  presynaptic neuron; the output is delayed (per postsynaptic neuron for one delay, per
  synapse for one delay per synapse), then weighted and summed per postsynaptic neuron.
- `PlasticWeights`: the weights live in the state and a long-term plasticity rule
  changes them each step, from the presynaptic spikes as they arrive at the synapses
  (after their delay) and the postsynaptic spikes; the arriving spikes drive summed or
  per-synapse kinetics with the weights at the start of the step.
- `LazyRewardWeights`: `jsyn.RewardSTDP(..., event_driven=True)` on an event-driven
  `jsyn.Sparse`: the weights are kept lazily (`jsyn.RewardEventState`) and brought up to
  date only at a synapse's events (`jsyn.Sparse.learn_reward`); the state's `weights()`
  computes the true weights.

Each has its own state Module, whose fields keep one meaning. A transmission holds only
how it transmits (static choices), never parameters: those stay in the projection, which
it is handed at every call. See `jsyn.Projection` for the equations.
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _validation as val
from .._component import POST, PRE, SHARED, SYNAPSE, IndexAxis, axis
from .._params import resolve
from ..delays import DelayState
from ..synapses import AbstractDelivery, Drive
from .release import ReleaseEvents


class TransmissionInputs(eqx.Module):
    """What a network hands a projection's transmission besides the signal, each `None`
    when not given: `post_spikes`, the spikes of the postsynaptic group in this step
    (shape `(n_post,)`); `modulator`, a `jsyn.RewardSTDP` rule's neuromodulator
    concentration (shape `(1,)` or `(n_post,)`); `selection`, the spiking presynaptic
    neurons when already found (see `jsyn.Sparse.deliver`); `post_voltage`, the membrane
    potential of the postsynaptic group at the end of the step (mV, shape `(n_post,)`),
    for a rule that declares `needs_post_voltage` (`jsyn.Clopath`)."""

    post_spikes: Array | None = None
    modulator: Array | None = None
    selection: Any = None
    post_voltage: Array | None = None


class AbstractTransmissionState(eqx.Module):
    """The state of a transmission. `weights()` and `rule()` give the plastic weights
    and the rule's state (`None` for static weights)."""

    def weights(self):  # no return hint: `eqx.tree_at(lambda s: s.w, ...)` passes a wrapper
        """The plastic weights, one per synapse (an array), or `None` (the connection's)."""
        return None

    def rule(self) -> Any:
        """The plasticity rule's state, or `None`."""
        return None


class AbstractTransmission(eqx.Module):
    """From the signal of one step to `g`, the conductance of each postsynaptic neuron
    (dimensionless; without output law a voltage jump, mV).

    - `init_state(proj, dtype) -> state`: nothing in flight.
    - `step(proj, state, spikes, signal, dt, hook, inputs) -> (state, g)`: `spikes` are the
      presynaptic spikes of the step, `signal` the same scaled by short-term plasticity,
      `hook` the stochastic release of the step (`None` without), `inputs` a
      `TransmissionInputs`.

    `per_synapse`: whether the kinetics keep one state per synapse. The fields of a
    transmission's state declare their axis (`jsyn.axis`): `PRE`, `POST`,
    `SYNAPSE`, or a name that `state_axes(proj)` resolves from the transmission's static
    choices (to one of those, `(PRE, k)` for $k$ blocks of one per presynaptic neuron, or
    a dict of those by field of a nested state).
    """

    per_synapse: eqx.AbstractVar[bool]

    def state_axes(self, proj) -> dict[str, Any]:
        """The axes that the state's fields name, resolved (see above); none by default."""
        return {}

    def checks(self, proj) -> tuple:
        """The value checks that the transmission's static choices rely on (made when the
        projection is built and at the `jsyn.simulate` entry); none by default."""
        return ()

    @abc.abstractmethod
    def init_state(self, proj, dtype) -> AbstractTransmissionState:
        """The state with nothing in flight."""

    @abc.abstractmethod
    def step(self, proj, state, spikes, signal, dt, hook, inputs: TransmissionInputs):
        """One step: returns `(state, g)`."""


class _Spikes(AbstractDelivery):
    """A step's presynaptic signal as the drive of summed kinetics: delivered through the
    connection straight into the state (event-driven with `jsyn.Sparse`)."""

    conn: Any
    signal: Float[Array, " n_pre"]
    weights: Array | None = None  # the plastic weights, or None for the connection's
    hook: ReleaseEvents | None = None  # stochastic release, or None
    selection: Any = None  # the active presynaptic neurons, when found upstream

    def _deliver(self, signal, into):
        kw = {} if self.selection is None else {"selection": self.selection}
        return self.conn.deliver(signal, into, weights=self.weights, hook=self.hook, **kw)

    def add(self, into, scale=None):
        if scale is None:
            return self._deliver(self.signal, into)
        if jnp.ndim(scale) == 0:  # folded into the signal: still one pass
            return self._deliver(self.signal * scale, into)
        return into + scale * self.drive()

    def drive(self):
        return self._deliver(self.signal, jnp.zeros((self.conn.n_post,), self.signal.dtype))


def _kinetics_state(proj, shape, dtype, key):
    """The synapse's state of `shape` (its PRNG `key` when it is stochastic)."""
    kw = {} if key is None else {"key": key}
    return proj.synapse.init_state(shape, dtype=dtype, **kw)


class SummedState(AbstractTransmissionState):
    """State of `SummedKinetics`: `synapse`, the kinetics state, one per postsynaptic
    neuron; `arrivals`, with a delay the drive arriving at the postsynaptic neurons in the
    coming steps (a `jsyn.DelayState`, `(slots, n_post)`), `None` without."""

    synapse: Any = axis(POST)
    arrivals: DelayState | None = axis(POST)


class SummedKinetics(AbstractTransmission):
    r"""Linear kinetics summed per postsynaptic neuron: each step's weighted spikes are
    delivered into the state, or with a delay scattered into the rows of the arrivals
    buffer $k$ and $k + 1$ steps ahead ($(1 - f)\,w$ and $f\,w$), the arriving row
    then delivered."""

    per_synapse: bool = eqx.field(default=False, static=True)

    def init_state(self, proj, dtype, key=None) -> SummedState:
        arrivals = None
        if proj.line is not None:
            arrivals = proj.line.init_arrivals((proj.n_post,), dtype=dtype)
        return SummedState(_kinetics_state(proj, (proj.n_post,), dtype, key), arrivals)

    def step(self, proj, state: SummedState, spikes, signal, dt, hook, inputs):
        selection = inputs.selection
        delivery, arrivals = _Spikes(proj.conn, signal, None, hook, selection), state.arrivals
        if proj.line is not None:
            proj.line.check_dt(dt)
            rows, rows_next, frac = proj.line.arrival_rows(arrivals, signal)
            rows = dict(rows=rows, rows_next=rows_next, frac=frac, hook=hook)
            if selection is not None:
                rows["selection"] = selection
            buffer = proj.conn.deliver(signal, arrivals.buffer, weights=None, **rows)
            arrivals, arrived = DelayState(buffer=buffer, pos=arrivals.pos).pop()
            delivery = Drive(arrived)
        synapse, g = proj.synapse.step_with_delivery(state.synapse, delivery, dt)
        return SummedState(synapse, arrivals), g


def _per_synapse_output(proj, synapse, history, signal, dt, hook, w, per_synapse_history):
    """Kinetics per synapse on the spikes as sent; the output delayed (per synapse when
    `per_synapse_history`, else per postsynaptic neuron), weighted by `w` (`None`: the
    connection's weights) and summed: `(synapse, history, g)`."""
    kinetics = proj.synapse
    if proj.synapse_params == "post":  # each synapse reads its postsynaptic neuron's
        kinetics = jax.tree.map(lambda p: proj.conn.spread_post(p) if jnp.ndim(p) else p, kinetics)
    drive = proj.conn.spread(signal)
    if hook is not None:  # every synapse, numbered as in `deliver`
        syn = jnp.arange(drive.size, dtype=jnp.int32).reshape(drive.shape)
        # each synapse's presynaptic neuron (exact as a float below 2**24 neurons)
        pre = proj.conn.spread(jnp.arange(proj.n_pre, dtype=drive.dtype)).astype(jnp.int32)
        drive = hook(drive, syn, pre)
    synapse, g_syn = kinetics.step(synapse, drive, dt)
    if proj.line is None:
        return synapse, history, proj.conn.collect(g_syn, weights=w)
    if per_synapse_history:
        history, g_syn = proj.line.step(history, g_syn, dt)
        return synapse, history, proj.conn.collect(g_syn, weights=w)
    history, g = proj.line.step(history, proj.conn.collect(g_syn, weights=w), dt)
    return synapse, history, g


class PerSynapseState(AbstractTransmissionState):
    """State of `PerSynapseKinetics`: `synapse`, the kinetics state, one per synapse;
    `history`, with a delay the past outputs (a `jsyn.DelayState`: `(slots, n_post)` for
    one delay, `(slots, *syn_shape)` for one per synapse), `None` without."""

    synapse: Any = axis(SYNAPSE)
    history: DelayState | None = axis("history")


class PerSynapseKinetics(AbstractTransmission):
    r"""Kinetics with one state per synapse, driven by the spikes of its presynaptic
    neuron as they are sent; the output is delayed, then weighted: $g_j = \sum_{s \to j}
    w_s\,g_s(t - d_s)$. `history_per_synapse`: one delay per synapse (the output buffer
    is then per synapse)."""

    history_per_synapse: bool = eqx.field(static=True)
    per_synapse: bool = eqx.field(default=True, static=True)

    def state_axes(self, proj) -> dict[str, Any]:
        return {"history": SYNAPSE if self.history_per_synapse else POST}

    def init_state(self, proj, dtype, key=None) -> PerSynapseState:
        history = None
        if proj.line is not None:
            held = proj.conn.syn_shape if self.history_per_synapse else (proj.n_post,)
            history = proj.line.init_arrivals(held, dtype=dtype)
        return PerSynapseState(_kinetics_state(proj, proj.conn.syn_shape, dtype, key), history)

    def step(self, proj, state: PerSynapseState, spikes, signal, dt, hook, inputs):
        synapse, history, g = _per_synapse_output(
            proj, state.synapse, state.history, signal, dt, hook, None, self.history_per_synapse
        )
        return PerSynapseState(synapse, history), g


class PlasticState(AbstractTransmissionState):
    """State of `PlasticWeights`:
    - `synapse`: the kinetics state, per postsynaptic neuron (summed kinetics) or per
      synapse.
    - `history`: with per-synapse kinetics and a delay, their past outputs, one per
      synapse (`(slots, *syn_shape)`); otherwise `None`.
    - `w`: the weights at the end of the last step, one per synapse (`conn.syn_shape`).
    - `traces`: the rule's state (e.g. `jsyn.STDPState`), per synapse, or per neuron when
      the update is event-driven.
    - `sent`: with a delay, the presynaptic spikes of the last steps (a `jsyn.DelayState`
      of shape `(slots, n_pre)`; with STP and summed kinetics `(slots, 2 n_pre)`, the
      spikes then the transmitted signal), read when they arrive at each synapse;
      otherwise `None`.
    - `post_sent`: with a dendritic delay, the post spikes of the last steps on their way
      to the rule (a `jsyn.DelayState` of shape `(slots, n_post)`); otherwise `None`.
    - `pre_history`: with one delay per synapse and an event-driven update, the
      presynaptic traces of the last steps, per neuron (a `jsyn.DelayState` of shape
      `(slots + 1, P n_pre)`, the rule's `P` presynaptic traces side by side, see
      `jsyn.Sparse.learn_delayed`); otherwise `None`. `traces` then holds the presynaptic
      traces of the spikes as sent (each synapse sees them at its delay).
    """

    synapse: Any = axis("kinetics")
    history: DelayState | None = axis(SYNAPSE)
    w: Float[Array, "*syn"] = axis(SYNAPSE)
    traces: Any = axis("traces")
    sent: DelayState | None = axis("sent")
    post_sent: DelayState | None = axis(POST, default=None)
    pre_history: DelayState | None = axis("pre_history", default=None)

    def weights(self):
        return self.w

    def rule(self) -> Any:
        return self.traces


class PlasticWeights(AbstractTransmission):
    """Plastic weights: the rule learns from the presynaptic spikes as they arrive at the
    synapses (after their delay) and the postsynaptic spikes of the step; the arriving
    spikes are transmitted with the weights at the start of the step, into summed or
    per-synapse kinetics.

    Static choices: `per_synapse` (the kinetics), `by_events` (the rule's step is
    event-driven, traces per neuron: `jsyn.Sparse.learn`, or with one delay per synapse
    `jsyn.Sparse.learn_delayed`), `delay_per_synapse` (one delay per synapse: arrivals per
    synapse), `sent_rows` (what the delay buffer holds per presynaptic neuron: 1, the
    spikes, or 2, the spikes then the transmitted signal), `whole_steps` (the event-driven
    update with per-synapse delays needs them in whole steps: a rule whose presynaptic
    trace resets, `pairing="nn_symm"`; checked when built and at the `jsyn.simulate`
    entry). `groups`: with one delay per synapse, concrete when the projection was built,
    the synapses grouped by delay in whole steps and presynaptic neuron
    (`jsyn.Sparse.delay_groups`), so that the event-driven update visits only the groups
    that spikes reach (the delays must stay in the same whole steps: checked likewise);
    `None` otherwise.
    """

    per_synapse: bool = eqx.field(static=True)
    by_events: bool = eqx.field(static=True)
    delay_per_synapse: bool = eqx.field(static=True)
    sent_rows: int = eqx.field(static=True)
    whole_steps: bool = eqx.field(static=True, default=False)
    groups: Any = None  # `jsyn.Sparse.delay_groups` of the delays as built, or None

    def state_axes(self, proj) -> dict[str, Any]:
        traces: Any = SYNAPSE
        history: Any = PRE
        if self.by_events:  # traces per neuron, as the rule declares them
            rule = proj.plasticity
            traces = {name: PRE for name in rule.pre_taus} | {n: POST for n in rule.post_taus}
            history = (PRE, len(rule.pre_taus))
        return {
            "kinetics": SYNAPSE if self.per_synapse else POST,
            "traces": traces,
            "sent": (PRE, self.sent_rows),  # the spikes, then (2 rows) the signal
            "pre_history": history,
        }

    def checks(self, proj) -> tuple:
        checks = []
        if self.groups is not None:
            steps, _ = proj.line.steps()
            checks.append(
                val.Check(
                    steps != self.groups.steps,
                    resolve(proj.line.delay),
                    f"Projection: its event-driven plasticity groups the synapses by their "
                    f"delay in whole steps of dt={proj.line.dt!r} ms as they were when it was "
                    "built, and some delays now fall in other steps",
                    "build the Projection anew with the new delays (or its Sparse connection "
                    "with event_driven=False)",
                )
            )
        if not self.whole_steps:
            return tuple(checks)
        _, frac = proj.line.steps()
        return (
            *checks,
            val.Check(
                frac != 0,
                resolve(proj.line.delay),
                f"Projection: the event-driven update of {type(proj.plasticity).__name__}"
                f"(pairing={proj.plasticity.pairing!r}) with one delay per synapse needs "
                f"delays of whole steps of dt={proj.line.dt!r} ms (a trace that resets at "
                "a spike is not the interpolation of its neuron's)",
                "round the delays to whole steps, or pass pairing='all', or build the "
                "Sparse connection with event_driven=False",
            ),
        )

    def init_state(self, proj, dtype, key=None) -> PlasticState:
        shape = proj.conn.syn_shape if self.per_synapse else (proj.n_post,)
        history = sent = None
        if proj.line is not None and self.per_synapse:
            history = proj.line.init_arrivals(proj.conn.syn_shape, dtype=dtype)
        w = jnp.broadcast_to(proj.conn.weights(jnp.zeros((), dtype)), proj.conn.syn_shape)
        w = proj.plasticity.clip(w)
        if self.by_events:
            traces = proj.plasticity.init_neuron_state(proj.n_pre, proj.n_post, dtype=dtype)
        else:
            traces = proj.plasticity.init_state(proj.conn.syn_shape, dtype=dtype)
        if proj.line is not None:
            sent = proj.line.init_arrivals((self.sent_rows * proj.n_pre,), dtype=dtype)
        synapse = _kinetics_state(proj, shape, dtype, key)
        post_sent = pre_history = None
        if proj.dendrite is not None:
            post_sent = proj.dendrite.init_arrivals((proj.n_post,), dtype=dtype)
        # a row more than the delay's: a fractional delay near max_delay reads the traces
        # before its spike's jump, k + 2 steps back
        if self.by_events and self.delay_per_synapse:
            n = len(proj.plasticity.pre_taus) * proj.n_pre
            pre_history = DelayState(
                buffer=jnp.zeros((proj.line.n_slots + 1, n), dtype), pos=jnp.zeros((), jnp.int32)
            )
        return PlasticState(synapse, history, w, traces, sent, post_sent, pre_history)

    def step(self, proj, state: PlasticState, spikes, signal, dt, hook, inputs):
        post_spikes, post_sent = _post_spikes(proj, inputs.post_spikes), state.post_sent
        if proj.dendrite is not None:  # on their way back to the synapses
            post_sent, post_spikes = proj.dendrite.step(
                post_sent, post_spikes.astype(state.w.dtype), dt
            )
        pre_history = state.pre_history
        if self.by_events and self.delay_per_synapse:
            sent, traces, pre_history, w, drive = self._learn_delayed(
                proj, state, spikes.astype(state.w.dtype), signal, post_spikes, dt
            )
        else:
            sent, events, arrived = self.arrivals(
                proj, state.sent, spikes.astype(state.w.dtype), signal, dt
            )
            transmit = None if self.per_synapse else arrived
            w, traces, drive = self._learn(proj, state, events, post_spikes, inputs, dt, transmit)
        if self.per_synapse:
            synapse, history, g = _per_synapse_output(
                proj, state.synapse, state.history, signal, dt, hook, state.w, True
            )
            new = PlasticState(synapse, history, w, traces, sent, post_sent, pre_history)
            return new, g
        if drive is not None:  # delivered by the rule's event-driven pass
            delivery = Drive(drive.astype(signal.dtype))
        elif self.delay_per_synapse:
            delivery = Drive(proj.conn.collect(arrived, weights=state.w))
        else:
            delivery = _Spikes(proj.conn, arrived, state.w)
        synapse, g = proj.synapse.step_with_delivery(state.synapse, delivery, dt)
        new = PlasticState(synapse, state.history, w, traces, sent, post_sent, pre_history)
        return new, g

    def _learn_delayed(self, proj, state: PlasticState, spikes, signal, post_spikes, dt):
        """The event-driven step with one delay per synapse (`jsyn.Sparse.learn_delayed`):
        `(sent, traces, pre_history, w, drive)`, `drive` the arriving signal through the
        weights at the start of the step with summed kinetics, `None` with per-synapse
        kinetics (which transmit on their own)."""
        proj.line.check_dt(dt)
        x = spikes
        if self.sent_rows == 2:
            x = jnp.concatenate([spikes, signal.astype(spikes.dtype)])
        sent = state.sent.push(x)
        block = None if self.per_synapse else self.sent_rows - 1
        traces, pre_history, w, drive = proj.conn.learn_delayed(
            proj.plasticity,
            state.traces,
            state.pre_history,
            state.w,
            sent,
            proj.line,
            post_spikes.astype(state.w.dtype),
            dt,
            signal_block=block,
            groups=self.groups,
        )
        return sent, traces, pre_history, w, drive

    def arrivals(self, proj, sent, spikes, signal, dt):
        """What arrives at the synapses in this step: `(sent, events, arrived)`, the delay
        buffer, the spikes (the rule's pre events) and the transmitted signal, per
        presynaptic neuron without a delay or with one delay, per synapse (shape
        `syn_shape`) with one delay per synapse."""
        if proj.line is None:
            return sent, spikes, signal
        n_pre, rows = proj.n_pre, self.sent_rows
        x = jnp.concatenate([spikes, signal.astype(spikes.dtype)]) if rows == 2 else spikes
        if not self.delay_per_synapse:
            sent, out = proj.line.step(sent, x, dt)
            return sent, out[:n_pre], out[-n_pre:].astype(signal.dtype)
        # each synapse's presynaptic neuron (exact as a float below 2**24 neurons)
        index = proj.conn.spread(jnp.arange(n_pre, dtype=spikes.dtype)).astype(jnp.int32)
        new, events = proj.line.step_at(sent, x, dt, index)
        if rows == 1:
            return new, events, events.astype(signal.dtype)
        _, arrived = proj.line.step_at(sent, x, dt, index + n_pre)  # the same push
        return new, events, arrived.astype(signal.dtype)

    def _learn(self, proj, state: PlasticState, events, post_spikes, inputs, dt, signal):
        """The rule's step on the pre events as they arrive at the synapses and the post
        group's spikes of this step (and its neuromodulator, its potential: from `inputs`):
        `(w, traces, drive)`; when the step is event-driven, `drive` is the transmission of
        `signal` (per presynaptic neuron, or `None`) through the weights at the start of the
        step, delivered in the same pass; else `None`."""
        dtype, modulator = state.w.dtype, inputs.modulator
        post_spikes = post_spikes.astype(dtype)
        if self.by_events:
            traces, w, drive = proj.conn.learn(
                proj.plasticity, state.traces, state.w, events, post_spikes, dt, signal
            )
            return w, traces, drive
        pre = events if self.delay_per_synapse else proj.conn.spread(events)
        post = proj.conn.spread_post(post_spikes)
        if modulator is not None:
            modulator = _modulator(proj, modulator, dtype)
            if modulator.shape == (proj.n_post,):
                modulator = proj.conn.spread_post(modulator)
            else:
                modulator = modulator[0]
        kwargs = {}
        if proj.plasticity.needs_post_voltage:
            kwargs["V"] = proj.conn.spread_post(_post_voltage(proj, inputs.post_voltage, dtype))
        traces, w = proj.plasticity.step(state.traces, state.w, pre, post, dt, modulator, **kwargs)
        return w, traces, None


class LazyRewardState(AbstractTransmissionState):
    """State of `LazyRewardWeights`:
    - `synapse`: the kinetics state, per postsynaptic neuron;
    - `lazy`: the rule's lazy state (a `jsyn.RewardEventState`: weights and eligibilities
      as of each synapse's last event, running sums per postsynaptic neuron);
    - `sent`, `post_sent`: as in `PlasticState`;
    - `post_idx`, `w_min`, `w_max`: each synapse's postsynaptic neuron and the rule's
      bounds, with which `weights()` computes the true weights (one pass over them all).
    """

    synapse: Any = axis(POST)
    lazy: Any = axis("lazy")
    sent: DelayState | None = axis("sent")
    post_sent: DelayState | None = axis(POST)
    post_idx: Array = axis(IndexAxis(POST, SYNAPSE))
    w_min: Array = axis("w_min")  # per synapse, or one for all (see `state_axes`)
    w_max: Array = axis("w_max")

    def weights(self):
        lazy = self.lazy
        return jnp.clip(lazy.b + lazy.c * lazy.T[self.post_idx], self.w_min, self.w_max)

    def rule(self) -> Any:
        return self.lazy


class LazyRewardWeights(AbstractTransmission):
    r"""`jsyn.RewardSTDP` stepped event-driven (`event_driven=True`) on an event-driven
    `jsyn.Sparse`, into summed kinetics: a step touches only the synapses of the neurons
    with an event (`jsyn.Sparse.learn_reward`), delivering the arriving spikes through the
    weights at the start of the step in the same pass. `arrivals` reads the delay buffer
    as `PlasticWeights` does (`sent_rows` as there)."""

    sent_rows: int = eqx.field(static=True)
    per_synapse: bool = eqx.field(default=False, static=True)

    def state_axes(self, proj) -> dict[str, Any]:
        traces = {"a_pre": PRE, "a_post": POST}
        lazy = {"traces": traces, "b": SYNAPSE, "c": SYNAPSE, "T": POST, "A": SHARED}
        rule = proj.plasticity
        bounds = {
            b: SYNAPSE if jnp.ndim(resolve(getattr(rule, b))) else SHARED
            for b in ("w_min", "w_max")
        }
        return {"lazy": lazy, "sent": (PRE, self.sent_rows)} | bounds

    def init_state(self, proj, dtype, key=None) -> LazyRewardState:
        rule, conn = proj.plasticity, proj.conn
        w = jnp.broadcast_to(conn.weights(jnp.zeros((), dtype)), conn.syn_shape)
        lazy = rule.init_event_state(w, proj.n_pre, proj.n_post)
        sent = post_sent = None
        if proj.line is not None:
            sent = proj.line.init_arrivals((self.sent_rows * proj.n_pre,), dtype=dtype)
        if proj.dendrite is not None:
            post_sent = proj.dendrite.init_arrivals((proj.n_post,), dtype=dtype)
        w_min, w_max = resolve(rule.w_min, lazy.b), resolve(rule.w_max, lazy.b)
        synapse = _kinetics_state(proj, (proj.n_post,), dtype, key)
        return LazyRewardState(synapse, lazy, sent, post_sent, conn.post_idx, w_min, w_max)

    def step(self, proj, state: LazyRewardState, spikes, signal, dt, hook, inputs):
        dtype = state.lazy.b.dtype
        post_spikes, post_sent = _post_spikes(proj, inputs.post_spikes), state.post_sent
        if proj.dendrite is not None:  # on their way back to the synapses
            post_sent, post_spikes = proj.dendrite.step(post_sent, post_spikes.astype(dtype), dt)
        plastic = PlasticWeights(False, True, False, self.sent_rows)
        sent, events, arrived = plastic.arrivals(proj, state.sent, spikes.astype(dtype), signal, dt)
        d = _modulator(proj, inputs.modulator, dtype)
        lazy, drive = proj.conn.learn_reward(
            proj.plasticity, state.lazy, events, post_spikes, d, dt, arrived
        )
        delivery = Drive(drive.astype(signal.dtype))
        synapse, g = proj.synapse.step_with_delivery(state.synapse, delivery, dt)
        new = LazyRewardState(
            synapse, lazy, sent, post_sent, state.post_idx, state.w_min, state.w_max
        )
        return new, g


def _modulator(proj, modulator, dtype):
    """The neuromodulator concentration of the step, `(1,)` or `(n_post,)`."""
    if modulator is None:
        raise ValueError(
            "RewardSTDP needs the neuromodulator concentration of each step; run the "
            f"projection in a jsyn.Network with a jsyn.Neuromodulator group named "
            f"{proj.plasticity.modulator!r}."
        )
    modulator = jnp.asarray(modulator, dtype)
    if modulator.shape not in ((1,), (proj.n_post,)):
        raise ValueError(
            f"Projection.step: the neuromodulator must have shape (1,) or "
            f"({proj.n_post},), one per postsynaptic neuron (got {modulator.shape})."
        )
    return modulator


def _post_spikes(proj, post_spikes):
    if post_spikes is None:
        raise ValueError(
            "Projection with plasticity needs the spikes of its postsynaptic group in "
            "each step (post_spikes=...); run it inside a jsyn.Network, which passes them."
        )
    post_spikes = jnp.asarray(post_spikes)
    if post_spikes.shape != (proj.n_post,):
        raise ValueError(
            f"Projection.step needs post_spikes of shape ({proj.n_post},) (got shape "
            f"{post_spikes.shape})."
        )
    return post_spikes


def _post_voltage(proj, V, dtype):
    if V is None:
        raise ValueError(
            f"Projection: its {type(proj.plasticity).__name__} rule reads the postsynaptic "
            "membrane potential in each step (post_voltage=..., mV); run it inside a "
            "jsyn.Network, which passes the post group's."
        )
    V = jnp.asarray(V, dtype)
    if V.shape != (proj.n_post,):
        raise ValueError(
            f"Projection.step needs post_voltage of shape ({proj.n_post},) (got shape {V.shape})."
        )
    return V
