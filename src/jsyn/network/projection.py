r"""Projections: the synapses from one group of neurons onto another,

    pre spikes ─► STP efficacy ─► delay ─► connection ─► synapse kinetics ─► output law ─► post

run alone under `jsyn.simulate` or inside a `jsyn.Network`.
"""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Key, PRNGKeyArray

from .. import _validation as val
from .._component import POST, PRE, STREAM, AbstractSystem, as_shape, axis
from .._custom_types import ScalarLike, Shape
from .._params import AbstractParam, as_param, resolve
from ..connectivity import AbstractConnection, Sparse
from ..delays import Delay
from ..outputs import AbstractOutput
from ..plasticity import AbstractLongTermPlasticity, AbstractShortTermPlasticity
from ..plasticity.base import AbstractTraceRule
from ..synapses import AbstractLinearSynapse, AbstractSynapse
from .modulation import ModulatedGain
from .release import ReleaseEvents, StochasticRelease, key_words, split_streams
from .transmission import (
    AbstractTransmission,
    AbstractTransmissionState,
    LazyRewardWeights,
    PerSynapseKinetics,
    PlasticWeights,
    SummedKinetics,
    TransmissionInputs,
)

_LAYOUTS = ("post", "synapse")


def _range(owner: str, name: str, rng) -> tuple[int, int] | None:
    if rng is None:
        return None
    if isinstance(rng, slice):
        if rng.step not in (None, 1) or rng.start is None or rng.stop is None:
            raise ValueError(
                f"{owner}.{name} must be a contiguous slice with a start and a stop "
                f"(got {rng}); e.g. slice(0, 3200)."
            )
        rng = (rng.start, rng.stop)
    start, stop = (int(v) for v in rng)
    if not 0 <= start < stop:
        raise ValueError(f"{owner}.{name} must satisfy 0 <= start < stop (got {rng}).")
    return (start, stop)


def _check_shapes(module, shape: tuple[int, ...], what: str, each: str = "") -> None:
    """Every array leaf of `module` (or `None`) is a scalar or of `shape`."""
    for leaf in jax.tree.leaves(module):
        if jnp.shape(leaf) not in ((), shape):
            raise ValueError(
                f"{what} must be scalars or {each}shape {shape} (got shape {jnp.shape(leaf)})."
            )


def _layout(synapse: AbstractSynapse, conn: AbstractConnection, layout) -> str:
    """Check the shapes of the synapse's parameters against the layout the user named."""
    shapes = sorted({jnp.shape(leaf) for leaf in jax.tree.leaves(synapse)} - {()})
    name = type(synapse).__name__
    per_post, per_syn = (conn.n_post,), conn.syn_shape
    if layout is None:
        if shapes:
            raise ValueError(
                f"Projection: {name} has array parameters (shapes {shapes}); say what they "
                f"hold: synapse_params='post' for one value per postsynaptic neuron, shape "
                f"{per_post}, or synapse_params='synapse' for one per synapse, shape "
                f"{per_syn}."
            )
        return "post"
    if layout not in _LAYOUTS:
        raise ValueError(f"Projection.synapse_params must be 'post' or 'synapse' (got {layout!r}).")
    want, each = (per_post, "postsynaptic neuron") if layout == "post" else (per_syn, "synapse")
    bad = [s for s in shapes if s != want]
    if bad:
        raise ValueError(
            f"Projection(synapse_params={layout!r}) takes {name} parameters that are scalars "
            f"or of shape {want}, one per {each} (got shape {bad[0]}); fix the parameters or "
            "synapse_params."
        )
    return layout


def _needs_key(model) -> bool:
    """Whether `model` (a synapse or STP model, or `None`) is stochastic (declared by its
    `needs_key`: `jsyn.OUNoise`, `jsyn.QuantalSTP`)."""
    return model is not None and model.needs_key


class ProjectionState(eqx.Module):
    """State of a `Projection`, one field per stage of its pipeline:

    - `stp`: the short-term plasticity state (per presynaptic neuron), or `None`.
    - `transmission`: the state of the projection's transmission (`SummedState`,
      `PerSynapseState` or `PlasticState`, see `jsyn.network.transmission`): the kinetics
      and what is in flight (the delay buffers), and with a plasticity rule the weights
      and the rule's traces.
    - `g`: the projection's output at the end of the last step, per postsynaptic neuron:
      the weighted conductance (dimensionless) or, without output law, the voltage jump
      (mV).
    - `key`: with stochastic release, the PRNG key of the next step (split once per step;
      in a batch of `jsyn.trials`, one per trial); otherwise `None`.

    `w` (property): with a long-term plasticity rule, the weights at the end of the last
    step, one per synapse (shape `conn.syn_shape`); `None` without one. `rule`
    (property): the rule's traces (e.g. `jsyn.STDPState`), or `None`.
    """

    stp: Any = axis(PRE)
    transmission: AbstractTransmissionState
    g: Float[Array, " n_post"] = axis(POST)
    key: Key[Array, "*streams"] | None = axis(STREAM, default=None)

    @property
    def w(self):  # no return hint: `eqx.tree_at(lambda s: s.w, ...)` passes a wrapper
        """The plastic weights, one per synapse, or `None` for static weights."""
        return self.transmission.weights()

    @property
    def rule(self) -> Any:
        return self.transmission.rule()


class Projection(AbstractSystem):
    r"""The synapses from one group of neurons onto another:
    pre spikes → STP → delay → connection → synapse kinetics → output law → post.

    `step(state, spikes, dt) -> (state, g)` takes the spikes of one step of the
    presynaptic group, shape `(n_pre,)` (0/1 or counts), and returns `g`, shape
    `(n_post,)`: the weighted conductance of each postsynaptic neuron (dimensionless),
    $g_j = \sum_{s \to j} w_s\,g_s$, or without output law the voltage jump (mV). The
    current it drives is `current(state, V)` $=$ `output.current(g, V)` (pA). Inside a
    `Network` this is done for you (see `jsyn.Network` for the order of a step); alone, a
    projection runs under `jsyn.simulate` with presynaptic spikes as inputs.

    **Summed or per-synapse kinetics.** Linear kinetics (every `AbstractLinearSynapse`:
    `Expon`, `Alpha`, `DualExpon`, `DualExponV2`, `VoltageJump`) keep **one state per
    postsynaptic neuron**: the weighted spikes are delivered straight into that state
    (event-driven with `jsyn.Sparse`, one pass), which is exact for linear kinetics.
    Others (`AMPA`, `NMDA`, ...), and linear ones with `synapse_params="synapse"`, keep
    **one state per synapse**, driven by the spikes of its presynaptic neuron, and the
    weights scale their output: $g_j = \sum_{s \to j} w_s\,g_s$.

    **Synapse parameters** are scalars (shared by every synapse) or arrays, and an array
    parameter needs `synapse_params` to say what it holds: `"post"`, one value per
    postsynaptic neuron (shape `(n_post,)`; per-synapse kinetics read their neuron's
    value), or `"synapse"`, one value per synapse (shape `conn.syn_shape`). Nothing is
    guessed from a shape.

    **Short-term plasticity** runs per presynaptic neuron, at the time of the spike; the
    efficacies $r$ then travel with the spikes. Every synapse of a neuron sees the same
    spike train shifted by its delay, so this equals STP at the synapse.

    **Delays** (ms; one `jsyn.Delay`, see there) are exact in whole steps (2 ms at
    `dt=0.1` arrive 20 steps later) and fractional ones are interpolated linearly between
    the two neighbouring steps, so the output is differentiable w.r.t. the delay and a
    delay only moves a response, never changes its charge. Summed kinetics keep a
    post-side buffer of arriving drive: each spike scatters $(1 - f)\,w$ into the row $k$
    steps ahead and $f\,w$ into the row $k + 1$ ahead (event-driven). Per-synapse kinetics
    run on the spikes as they are sent and delay their output, per postsynaptic neuron for
    one delay or per synapse for per-synapse delays: kinetics do not change with time, so
    this is the same shift, and for nonlinear kinetics it is the one that keeps the size
    of a response (splitting a spike over two steps would drive them with two smaller
    events). The buffer is sized once, from `max_delay`. A plastic projection buffers the
    presynaptic spikes instead (see *The weight a spike carries* below).

    **Arguments:**
    - `conn`: the connection (`jsyn.Dense` or `jsyn.Sparse`), holding the weights.
    - `synapse`: the kinetics (any `jsyn.AbstractSynapse`).
    - `output`: the output law (`jsyn.COBA`, `jsyn.CUBA`, `jsyn.MgBlock`), or `None` for a
      voltage-jump projection (use `jsyn.VoltageJump`; `g` is then a jump in mV).
    - `stp`: short-term plasticity (`jsyn.STD`, `jsyn.STP`) or `None`. Its parameters are
      scalars or one per presynaptic neuron.
    - `delay`: the transmission delay (ms), >= 0: `None` (no delay), a scalar, or one per
      synapse (shape `conn.syn_shape`). Array or `AbstractParam`; differentiable.
    - `dt`: the time step (ms) of the runs; needed with a delay (it sizes the buffer).
    - `max_delay`: the longest delay (ms) the buffer holds. Default: the largest `delay`.
      When fitting a delay, leave room for the optimiser.
    - `pre`, `post`: inside a `Network`, the names of the presynaptic and postsynaptic
      groups.
    - `pre_slice`, `post_slice`: optional `(start, stop)` (or `slice`) ranges of those
      groups that the connection spans (e.g. the excitatory cells `(0, 3200)`).
    - `synapse_params`: `"post"` or `"synapse"`, what the synapse's array parameters hold
      (see above); needed only when it has some. `"synapse"` also gives linear kinetics one
      state per synapse.
    - `plasticity`: a long-term plasticity rule, or `None` (static weights). Its
      parameters are scalars or one per synapse (shape `conn.syn_shape`).
    - `dendritic_delay`: with a plasticity rule, how much later (ms, >= 0) the post spikes
      reach the rule than the post group emits them (their back-propagation to the
      synapse; NEST's `dendritic_delay`), or `None` (no delay). A scalar; needs `dt`.
      Interpolated between steps like `delay`. NEST counts a connection's whole delay as
      dendritic: its synapse sees the pre spike when it is sent and the post spike `delay`
      later; jsyn's rule sees the pre events when they arrive, after `delay`, so NEST's
      pairs are those of `delay=None, dendritic_delay=d` (its transmission then arrives
      at once).
    - `release`: `jsyn.StochasticRelease` for random transmitter release at each synapse
      (see there), or `None` (every spike transmits). Its `p` is a scalar or one per
      synapse. The projection then keeps a PRNG key in its state: pass
      `key=` to `init_state` (or `jsyn.simulate(..., key=...)`; a `jsyn.Network` hands
      one out). With a `plasticity` rule it needs per-synapse kinetics
      (`synapse_params="synapse"`).
    - `modulation`: `jsyn.ModulatedGain`, a neuromodulator's gain on the output, or `None`.
      Inside a `Network`, which passes the concentration of its group each step.

    **Long-term plasticity** (`plasticity=`: `jsyn.STDP`, `jsyn.TripletSTDP`,
    `jsyn.RewardSTDP`, `jsyn.SynapticScaling`, `jsyn.VogelsSprekeler`, `jsyn.Clopath`):
    the weights live in the state, one per synapse (`state.w`, starting from the
    connection's, clipped to the rule's `[w_min, w_max]`), and the rule changes them each
    step (see `jsyn.AbstractLongTermPlasticity` for the order within a step). The rule's presynaptic
    events are the spikes as they arrive at each synapse, after the delay (STP scales the
    transmitted drive, not the events); its postsynaptic spikes are those of the post
    group in the same step, which a `jsyn.Network` passes (`step(..., post_spikes=...)`),
    with the group's potential for a rule that reads it (`jsyn.Clopath`).

    *The weight a spike carries* is the weight of its synapse at the start of the step in
    which it **arrives** at the synapse (after its delay), as Brian2 runs `on_pre` and NEST
    a synapse's `send` when the spike is delivered: a change of weight while a spike is in
    flight applies to it. Summed kinetics deliver the arriving spikes (the presynaptic
    spikes of `delay` ms ago, kept in `state.sent`) with the current weights, event-driven
    with `jsyn.Sparse` (in the rule's pass when its update is event-driven, see below);
    otherwise, with one delay per synapse, the arrivals are per synapse and are summed over
    every synapse each step. Per-synapse kinetics weight their delayed output by the
    current weights at every step (a change of weight rescales the ongoing response of
    that synapse; their output buffer is then per synapse, `(slots, *syn_shape)`, even for
    one delay).

    *Event-driven updates.* With `jsyn.STDP`, `jsyn.TripletSTDP` (pairings `"all"` and
    `"nn_symm"`) or `jsyn.VogelsSprekeler`, with scalar time constants, on an
    event-driven `jsyn.Sparse`, the traces are kept per neuron (`state.rule` has shapes
    `(n_pre,)` and `(n_post,)`) and a step touches only the synapses of the presynaptic
    neurons whose spikes arrive in it and those onto the postsynaptic neurons that spiked
    (`jsyn.Sparse.learn`), with the result and the gradients of the dense update. With
    one delay per synapse each synapse sees its neuron's presynaptic trace at its own
    delay: the state then also keeps the presynaptic traces of the last steps
    (`state.transmission.pre_history`, see `jsyn.Sparse.learn_delayed`; `state.rule`'s
    presynaptic traces follow the spikes as sent), and a step touches only the synapses
    that a spike reaches in it, each applying what arrives at it now: the synapses are
    grouped by delay in whole steps and presynaptic neuron when the projection is built
    (delays moved to other whole steps afterwards are refused at the `jsyn.simulate`
    entry: build it anew; built inside `jax.jit` from unknown delays, a step visits every
    synapse of the neurons whose spikes are in flight). This is exact for any delay with
    pairing `"all"` (a trace that adds its jumps is linear in its spike train, so a
    fractional arrival interpolates it); with `"nn_symm"` (a trace reset at each spike)
    for delays of whole steps only: fractional ones take the dense update, and delays set
    off the grid after the projection was built are refused at the `jsyn.simulate` entry.
    The gradients are those of the dense update, w.r.t. the delays too. Otherwise the
    update is a dense pass over every synapse each step: on `jsyn.Dense`; with time
    constants per synapse; `jsyn.RewardSTDP` (its eligibility decays, and its weights
    move with the neuromodulator, at every synapse in every step);
    `jsyn.SynapticScaling` (it scales every synapse each step).

    **Attributes:** `line`, the `jsyn.Delay` (or `None`); `delay`, its delay (a property,
    so `eqx.tree_at(lambda p: p.delay, proj, d)` sets it); `per_synapse`, whether the
    kinetics keep one state per synapse; `transmission`, how the projection transmits,
    chosen once from its parts when it is built (`jsyn.network.transmission`:
    `SummedKinetics`, `PerSynapseKinetics` or `PlasticWeights`, each with its own state).

    **The pipeline.** `step` runs the same stages in the same order whatever the parts:
    short-term plasticity (the efficacy of each spike) → stochastic release (which
    spikes release at each synapse) → transmission (delay, connection, kinetics, and
    plastic weights) → gain (`modulation`) → `g`. A stage that is absent passes its input
    on.
    """

    conn: AbstractConnection
    synapse: AbstractSynapse
    output: AbstractOutput | None
    stp: AbstractShortTermPlasticity | None
    line: Delay | None
    plasticity: AbstractLongTermPlasticity | None
    dendrite: Delay | None
    release: StochasticRelease | None
    modulation: ModulatedGain | None
    synapse_params: str = eqx.field(static=True)
    pre: str | None = eqx.field(static=True)
    post: str | None = eqx.field(static=True)
    pre_slice: tuple[int, int] | None = eqx.field(static=True)
    post_slice: tuple[int, int] | None = eqx.field(static=True)
    transmission: AbstractTransmission
    sized_by_inputs: ClassVar[bool] = False  # the connection fixes the size

    def __init__(
        self,
        conn: AbstractConnection,
        synapse: AbstractSynapse,
        output: AbstractOutput | None = None,
        *,
        stp: AbstractShortTermPlasticity | None = None,
        delay: ArrayLike | AbstractParam | None = None,
        dt: ScalarLike | None = None,
        max_delay: ScalarLike | None = None,
        pre: str | None = None,
        post: str | None = None,
        pre_slice: tuple[int, int] | slice | None = None,
        post_slice: tuple[int, int] | slice | None = None,
        synapse_params: str | None = None,
        plasticity: AbstractLongTermPlasticity | None = None,
        release: StochasticRelease | None = None,
        modulation: ModulatedGain | None = None,
        dendritic_delay: ArrayLike | AbstractParam | None = None,
    ):
        if not isinstance(conn, AbstractConnection):
            raise TypeError(
                f"Projection.conn must be a jsyn connection such as jsyn.Sparse or jsyn.Dense "
                f"(got {type(conn).__name__}); build one with jsyn.fixed_prob(...) and friends."
            )
        if not isinstance(synapse, AbstractSynapse):
            raise TypeError(
                f"Projection.synapse must be a jsyn synapse such as jsyn.Expon() "
                f"(got {type(synapse).__name__})."
            )
        if output is not None and not isinstance(output, AbstractOutput):
            raise TypeError(
                f"Projection.output must be a jsyn output law such as jsyn.COBA(E=0.0), or "
                f"None for voltage jumps (got {type(output).__name__})."
            )
        if stp is not None and not isinstance(stp, AbstractShortTermPlasticity):
            raise TypeError(
                f"Projection.stp must be jsyn.STD or jsyn.STP, or None (got {type(stp).__name__})."
            )
        _check_shapes(
            stp, (conn.n_pre,), "Projection.stp runs per presynaptic neuron: its parameters"
        )
        if plasticity is not None and not isinstance(plasticity, AbstractLongTermPlasticity):
            raise TypeError(
                f"Projection.plasticity must be a long-term plasticity rule such as "
                f"jsyn.STDP(), or None (got {type(plasticity).__name__})."
            )
        _check_shapes(
            plasticity, conn.syn_shape, "Projection.plasticity's parameters", "one per synapse, "
        )
        self.plasticity = plasticity
        if release is not None and not isinstance(release, StochasticRelease):
            raise TypeError(
                f"Projection.release must be jsyn.StochasticRelease or None (got "
                f"{type(release).__name__})."
            )
        if release is not None and release.p is None and stp is None:
            raise ValueError(
                "Projection: StochasticRelease(p=None) releases with the STP efficacy as its "
                "probability, but the projection has no stp; pass stp=jsyn.STP(...) or give p."
            )
        _check_shapes(
            release, conn.syn_shape, "Projection.release's parameters", "one per synapse, "
        )
        if modulation is not None and not isinstance(modulation, ModulatedGain):
            raise TypeError(
                f"Projection.modulation must be jsyn.ModulatedGain or None (got "
                f"{type(modulation).__name__})."
            )
        _check_shapes(
            modulation,
            (conn.n_post,),
            "Projection.modulation's parameters",
            "one per postsynaptic neuron, ",
        )
        self.release, self.modulation = release, modulation
        self.synapse_params = _layout(synapse, conn, synapse_params)
        self.conn, self.synapse, self.output, self.stp = conn, synapse, output, stp
        per_synapse = self.synapse_params == "synapse" or not isinstance(
            synapse, AbstractLinearSynapse
        )
        if release is not None and plasticity is not None and not per_synapse:
            raise ValueError(
                "Projection: stochastic release together with a plasticity rule needs one "
                "state per synapse (the released spikes drive each synapse's kinetics); pass "
                "synapse_params='synapse', or drop release or plasticity."
            )
        self.pre, self.post = pre, post
        self.pre_slice = _range("Projection", "pre_slice", pre_slice)
        self.post_slice = _range("Projection", "post_slice", post_slice)
        for name, rng, n in (
            ("pre_slice", self.pre_slice, conn.n_pre),
            ("post_slice", self.post_slice, conn.n_post),
        ):
            if rng is not None and rng[1] - rng[0] != n:
                raise ValueError(
                    f"Projection.{name}={rng} spans {rng[1] - rng[0]} neurons but the "
                    f"connection has {n}; match the slice to the connection."
                )
        self.line = None
        if delay is not None:
            d_shape = jnp.shape(resolve(as_param(delay)))
            if d_shape not in ((), conn.syn_shape):
                raise ValueError(
                    f"Projection.delay must be a scalar or one delay per synapse, shape "
                    f"{conn.syn_shape} (got shape {d_shape})."
                )
            self.line = Delay(delay, dt, max_delay=max_delay, owner="Projection")
        self.dendrite = _dendrite(plasticity, dendritic_delay, dt)
        self.transmission = _transmission(self, per_synapse)

    def constraints(self):
        # the delay's are its `Delay`'s; the transmission's, those its choices rely on
        return self.transmission.checks(self)

    @property
    def n_pre(self) -> int:
        return self.conn.n_pre

    @property
    def n_post(self) -> int:
        return self.conn.n_post

    @property
    def delay(self):
        """The delay (ms), as given (`None` without a delay)."""
        return None if self.line is None else self.line.delay

    @property
    def per_synapse(self) -> bool:
        """Whether the kinetics keep one state per synapse (otherwise one per postsynaptic
        neuron, with the drives summed)."""
        return self.transmission.per_synapse

    @property
    def needs_key(self) -> bool:
        """Whether the projection is stochastic (stochastic release, or a synapse or STP
        model with random numbers such as `jsyn.OUNoise`, `jsyn.QuantalSTP`), so that
        `init_state` needs a PRNG key."""
        return self.release is not None or _needs_key(self.stp) or _needs_key(self.synapse)

    def state_axes(self) -> dict:
        """The axes that the fields of its state name beyond `PRE`, `POST` and `SYNAPSE`
        (see `jsyn.axis`), resolved from its transmission's static choices."""
        return self.transmission.state_axes(self)

    def init_state(
        self, n: Shape | None = None, *, dtype=None, key: PRNGKeyArray | None = None
    ) -> ProjectionState:
        """The state at rest (nothing in flight). `n` may be `None` or `(n_pre,)`, the
        shape of the presynaptic spikes. `key` (a `jax.random.key`) is required when the
        projection is stochastic (`needs_key`) and refused otherwise; it is split between
        the release, the STP model and the synapse."""
        if self.needs_key and key is None:
            raise TypeError(
                "Projection with stochastic release, synapse or STP needs a key: pass "
                "init_state(key=jax.random.key(0)) or simulate(..., key=...)."
            )
        if key is not None and not self.needs_key:
            raise TypeError("Projection.init_state takes no key: it is deterministic, drop key.")
        if n is not None and as_shape(n) != (self.n_pre,):
            raise ValueError(
                f"Projection takes presynaptic spikes of shape ({self.n_pre},), one per "
                f"presynaptic neuron of its connection (got n={n}); match the inputs to it."
            )
        dtype = jnp.result_type(float) if dtype is None else dtype
        keys = [None] * 3 if key is None else list(jax.random.split(key, 3))
        stp_key = {"key": keys[1]} if _needs_key(self.stp) else {}
        stp = None if self.stp is None else self.stp.init_state(self.n_pre, dtype=dtype, **stp_key)
        synapse_key = keys[2] if _needs_key(self.synapse) else None
        return ProjectionState(
            stp=stp,
            transmission=self.transmission.init_state(self, dtype, synapse_key),
            g=jnp.zeros((self.n_post,), dtype),
            key=keys[0] if self.release is not None else None,
        )

    def step(
        self,
        state: ProjectionState,
        spikes,
        dt,
        *,
        post_spikes=None,
        modulator=None,
        gain_modulator=None,
        selection=None,
        post_voltage=None,
    ) -> tuple[ProjectionState, Array]:
        """Take the presynaptic spikes of this step (shape `(n_pre,)`), return the state and
        `g` at the end of the step, shape `(n_post,)`.

        With a plasticity rule, also `post_spikes`, the spikes of the postsynaptic group in
        this step (shape `(n_post,)`), and for `jsyn.RewardSTDP` `modulator`, the
        neuromodulator concentration of this step (shape `(1,)` or `(n_post,)`), and for a
        rule that reads the postsynaptic potential (`needs_post_voltage`: `jsyn.Clopath`)
        `post_voltage`, that potential at the end of the step (mV, shape `(n_post,)`); a
        `jsyn.Network` passes them. With `modulation`, `gain_modulator` is the
        concentration of its group in this step (shape `(1,)` or `(n_post,)`), which a
        `jsyn.Network` passes. `selection`: the spiking presynaptic neurons, when already
        found (a `jsyn.Network` finds them once per group and step), handed to an
        event-driven `jsyn.Sparse` connection's `deliver` (see there); `None` lets the
        connection find them."""
        spikes = jnp.asarray(spikes)
        if spikes.shape != (self.n_pre,):
            raise ValueError(
                f"Projection.step needs presynaptic spikes of shape ({self.n_pre},) (got shape "
                f"{spikes.shape}); batch trials with jax.vmap."
            )
        counts = signal = spikes.astype(state.g.dtype)
        stp, signal, p_pre = self._short_term(state.stp, signal, dt)
        key, hook = self._release(state.key, p_pre, counts)
        inputs = TransmissionInputs(post_spikes, modulator, selection, post_voltage)
        transmission, g = self.transmission.step(
            self, state.transmission, spikes, signal, dt, hook, inputs
        )
        g = self._modulate(g, gain_modulator)
        new = ProjectionState(stp=stp, transmission=transmission, g=g, key=key)
        return new, g

    def _short_term(self, stp, signal, dt):
        """Short-term plasticity: `(state, signal, p_pre)`, the spikes scaled by their
        efficacy, or with `StochasticRelease(p=None)` the efficacy as the release
        probability of each spike (`p_pre`; `None` otherwise)."""
        if self.stp is None:
            return stp, signal, None
        stp, r = self.stp.step(stp, signal, dt)
        if self.release is not None and self.release.p is None:
            return stp, signal, r
        return stp, r, None

    def _release(self, key, p_pre, counts):
        """Stochastic release: `(key, hook)`, the key of the next step and the release
        of this step's spikes (`counts` per presynaptic cell, each spike drawing on its own;
        `None` without release)."""
        if self.release is None:
            return key, None
        key, sub = split_streams(key)  # one key, or one per trial (`jsyn.trials`)
        return key, ReleaseEvents(self.release, key_words(sub), p_pre, counts=counts)

    def _modulate(self, g, gain_modulator):
        """The neuromodulator's gain on the output (none without `modulation`)."""
        if self.modulation is None:
            return g
        return g * self._gain(gain_modulator, g.dtype)

    def _gain(self, d, dtype):
        """The modulation's gain for the concentration `d` of this step, shape `(n_post,)`
        or `()`."""
        if d is None:
            raise ValueError(
                f"Projection with modulation needs the concentration of its neuromodulator "
                f"group {self.modulation.modulator!r} in each step (gain_modulator=...); run "
                "it inside a jsyn.Network with that group, which passes it."
            )
        d = jnp.asarray(d, dtype)
        if d.shape not in ((1,), (self.n_post,)):
            raise ValueError(
                f"Projection.step: the gain's neuromodulator must have shape (1,) or "
                f"({self.n_post},), one per postsynaptic neuron (got {d.shape})."
            )
        return self.modulation.gain(d[0] if d.shape == (1,) else d)

    def current(self, state: ProjectionState, V=None) -> Float[Array, " n_post"]:
        """The current into the postsynaptic neurons (pA) at potential `V` (mV), from the
        conductance at the end of the last step. Without output law: raises."""
        if self.output is None:
            raise ValueError(
                "Projection without an output law gives voltage jumps (state.g, mV), not "
                "currents; pass output=jsyn.COBA(...) or jsyn.CUBA(...)."
            )
        return self.output.current(state.g, V)


def _dendrite(rule, dendritic_delay, dt) -> Delay | None:
    """The delay line of the post spikes on their way to the rule, or `None`."""
    if dendritic_delay is None:
        return None
    if rule is None:
        raise ValueError(
            "Projection.dendritic_delay delays the post spikes a plasticity rule sees, but "
            "the projection has no plasticity; drop dendritic_delay or pass plasticity=."
        )
    if rule.needs_post_voltage:
        raise ValueError(
            f"Projection.dendritic_delay is not supported with {type(rule).__name__}, which "
            "reads the postsynaptic potential (it would need the potential delayed too); "
            "drop dendritic_delay."
        )
    if jnp.ndim(resolve(as_param(dendritic_delay))) != 0:
        raise ValueError(
            f"Projection.dendritic_delay must be a scalar (ms) (got shape "
            f"{jnp.shape(resolve(as_param(dendritic_delay)))})."
        )
    return Delay(dendritic_delay, dt, owner="Projection.dendritic_delay")


def _transmission(proj: Projection, per_synapse: bool) -> AbstractTransmission:
    """The transmission of `proj`, chosen once from its parts (see
    `jsyn.network.transmission`)."""
    delay_per_synapse = proj.line is not None and jnp.ndim(resolve(proj.line.delay)) > 0
    rule = proj.plasticity
    if rule is None:
        if per_synapse:
            return PerSynapseKinetics(history_per_synapse=delay_per_synapse)
        return SummedKinetics()
    if rule.event_driven:
        _lazy_checks(proj, per_synapse, delay_per_synapse)
        return LazyRewardWeights(sent_rows=2 if proj.stp is not None else 1)
    by_events = (
        isinstance(rule, AbstractTraceRule)
        and rule.per_neuron
        and isinstance(proj.conn, Sparse)
        and proj.conn.event_driven
    )
    # per-synapse delays: exact on per-neuron traces when the presynaptic trace adds its
    # jumps (any delay) or the delays are whole steps (then checked at every run's entry)
    whole_steps = by_events and delay_per_synapse and not rule.additive
    steps = _steps(proj.line) if by_events and delay_per_synapse else None
    if whole_steps and (steps is None or np.any(steps[1])):
        by_events = whole_steps = False
    groups = None
    if by_events and steps is not None:  # grouped by delay, as built
        groups = proj.conn.delay_groups(steps[0], proj.line.n_slots - 1)
    return PlasticWeights(
        per_synapse=per_synapse,
        by_events=by_events,
        delay_per_synapse=delay_per_synapse,
        sent_rows=2 if proj.stp is not None and not per_synapse else 1,
        whole_steps=whole_steps,
        groups=groups,
    )


def _lazy_checks(proj: Projection, per_synapse: bool, delay_per_synapse: bool) -> None:
    """Refuse an event-driven rule (`event_driven=True`) where its lazy weights cannot be
    kept exactly."""
    rule = type(proj.plasticity).__name__
    fixes = (
        (
            isinstance(proj.conn, Sparse) and proj.conn.event_driven,
            f"an event-driven jsyn.Sparse connection (got {type(proj.conn).__name__})",
        ),
        (not per_synapse, "summed kinetics (got kinetics per synapse)"),
        (not delay_per_synapse, "one delay for all synapses or none (got one per synapse)"),
    )
    for ok, need in fixes:
        if not ok:
            raise ValueError(
                f"Projection: {rule}(event_driven=True) needs {need}; change that, or "
                f"drop event_driven for the rule's pass over every synapse."
            )
    for name in ("tau_pre", "tau_post", "tau_c"):
        shape = jnp.shape(resolve(getattr(proj.plasticity, name)))
        if shape != ():
            raise ValueError(
                f"Projection: {rule}(event_driven=True) needs a scalar {name} (got shape "
                f"{shape}); drop event_driven for one time constant per synapse."
            )


def _steps(line: Delay):
    """The delays of `line` in whole steps and fractions (numpy), or `None` when they are
    not concrete."""
    with jax.ensure_compile_time_eval():
        if val.concrete(resolve(line.delay)) is None:
            return None
        k, frac = line.steps()
        return np.asarray(k), np.asarray(frac)
