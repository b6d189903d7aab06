r"""Projections and networks.

A `Projection` carries the spikes of a presynaptic group to a postsynaptic group:

    pre spikes ─► STP efficacy ─► delay ─► connection ─► synapse kinetics ─► output law ─► post

A `Network` steps groups of neurons and the projections between them together, with one
`init_state`/`step`, so `jsyn.simulate`, `jax.jit`, `jax.vmap` and `jax.grad` apply to a
whole network.

**One step of a network** (MODELS.md, discrete-time semantics), from $t_{n-1}$ to $t_n$:
1. every projection turns its conductance at $t_{n-1}$ and its postsynaptic potential at
   $t_{n-1}$ into a current, $I = $ `output.current(g, V)` (pA), held over the step (a
   projection without output law gives a voltage jump, mV, applied at $t_n$ instead);
2. every group steps with the sum of its currents (plus any external current) and emits
   the spikes of step $n$;
3. every projection takes the spikes of step $n$ of its presynaptic group: they arrive
   after their delay $d$, in step $n + d/\Delta t$ (linearly split between two steps when
   that is not a whole number), and the kinetics step with the drive arriving in step
   $n$, giving the conductance at $t_n$.

So a spike of step $n$ changes the conductance in step $n + d/\Delta t$ and the membrane
potential from the next step on, as in Brian2 and BrainPy.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from . import _kinetics as kin, _validation as val
from ._component import AbstractSystem, as_count, as_shape
from ._custom_types import ScalarLike, Shape
from ._params import AbstractParam, Param, as_param, resolve
from .connectivity import AbstractConnection
from .delays import Delay, DelayState, buffer_dt, check_run_dt, split_steps
from .neurons import AbstractNeuron
from .outputs import AbstractOutput
from .plasticity import AbstractShortTermPlasticity
from .synapses import (
    AbstractSynapse,
    Alpha,
    DualExpon,
    DualExponV2,
    Expon,
    ExponState,
    VoltageJump,
)

_LINEAR = (Expon, Alpha, DualExpon, DualExponV2, VoltageJump)
"""Kinetics linear in their drive: the sum over synapses may be taken before them."""


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


class ProjectionState(eqx.Module):
    """State of a `Projection`.

    - `stp`: the short-term plasticity state (per presynaptic neuron), or `None`.
    - `arrivals`: with delays and summed kinetics, a ring buffer of the drive arriving in
      the coming steps, shape `(slots, n_post)`; row `pos` arrives in the next step.
      Otherwise `None`.
    - `pos`: the row of `arrivals` that the next step reads.
    - `delayed`: with delays and per-synapse kinetics, the state of the `jsyn.Delay` of
      the presynaptic signal (per neuron for one delay, per synapse otherwise), or `None`.
    - `synapse`: the kinetics state, per postsynaptic neuron (summed kinetics) or per
      synapse.
    - `g`: the projection's output at the end of the last step, per postsynaptic neuron:
      the weighted conductance (dimensionless) or, without output law, the voltage jump
      (mV).
    """

    stp: Any
    arrivals: Float[Array, "slots n_post"] | None
    pos: Int[Array, ""]
    delayed: DelayState | None
    synapse: Any
    g: Float[Array, " n_post"]


class Projection(AbstractSystem):
    r"""The synapses from one group of neurons onto another:
    pre spikes → STP → delay → connection → synapse kinetics → output law → post.

    `step(state, spikes, dt) -> (state, g)` takes the spikes of one step of the
    presynaptic group, shape `(n_pre,)` (0/1 or counts), and returns `g`, shape
    `(n_post,)`: the weighted conductance of each postsynaptic neuron (dimensionless),
    $g_j = \sum_{s \to j} w_s\,g_s$, or without output law the voltage jump (mV). The
    current it drives is `current(state, V)` $=$ `output.current(g, V)` (pA). Inside a
    `Network` this is done for you (see the module docstring for the order of a step);
    alone, a projection runs under `jsyn.simulate` with presynaptic spikes as inputs.

    **Summed or per-synapse kinetics.** Kinetics that are linear in their drive (`Expon`,
    `Alpha`, `DualExpon`, `DualExponV2`, `VoltageJump`) with parameters shared by the
    synapses of a neuron keep **one state per postsynaptic neuron**: the weighted drives
    are summed first (event-driven with `jsyn.Sparse`), which is exact for linear kinetics.
    Others (`AMPA`, `NMDA`, ... or per-synapse time constants) keep **one state per
    synapse**, driven by the spikes of its presynaptic neuron, and the weights scale their
    output: $g_j = \sum_{s \to j} w_s\,g_s$. `per_synapse` overrides the choice.

    **Short-term plasticity** runs per presynaptic neuron, at the time of the spike; the
    efficacies $r$ then travel with the spikes. Every synapse of a neuron sees the same
    spike train shifted by its delay, so this equals STP at the synapse.

    **Delays** (ms) are exact in whole steps (2 ms at `dt=0.1` arrive 20 steps later;
    `jsyn.split_steps` converts) and fractional ones split each spike over the two
    neighbouring steps (linear interpolation), so the output is differentiable w.r.t. the
    delay. Summed kinetics keep a post-side ring buffer of arriving drive: each spike
    scatters $(1 - f)\,w$ into the row $k$ steps ahead and $f\,w$ into the row $k + 1$
    ahead (event-driven). Per-synapse kinetics delay the presynaptic signal with a
    `jsyn.Delay`. Buffers are sized once, from `max_delay`.

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
    - `per_synapse`: `None` (default) to choose as above; `True` for per-synapse state.
    """

    conn: AbstractConnection
    synapse: AbstractSynapse
    output: AbstractOutput | None
    stp: AbstractShortTermPlasticity | None
    delay: Param | None
    dt: float | None = eqx.field(static=True)
    max_delay: float | None = eqx.field(static=True)
    n_slots: int = eqx.field(static=True)
    per_synapse: bool = eqx.field(static=True)
    pre: str | None = eqx.field(static=True)
    post: str | None = eqx.field(static=True)
    pre_slice: tuple[int, int] | None = eqx.field(static=True)
    post_slice: tuple[int, int] | None = eqx.field(static=True)

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
        per_synapse: bool | None = None,
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
        if stp is not None:
            for leaf in jax.tree.leaves(stp):
                if jnp.shape(leaf) not in ((), (conn.n_pre,)):
                    raise ValueError(
                        f"Projection.stp runs per presynaptic neuron: its parameters must be "
                        f"scalars or shape ({conn.n_pre},) (got shape {jnp.shape(leaf)})."
                    )
        summable = isinstance(synapse, _LINEAR) and all(
            jnp.shape(leaf) in ((), (conn.n_post,)) for leaf in jax.tree.leaves(synapse)
        )
        if per_synapse is None:
            per_synapse = not summable
        elif not per_synapse and not summable:
            raise ValueError(
                f"Projection(per_synapse=False) sums the drive before the kinetics, which "
                f"needs linear kinetics ({', '.join(c.__name__ for c in _LINEAR)}) with "
                f"parameters that are scalars or one per postsynaptic neuron (got "
                f"{type(synapse).__name__}); drop per_synapse=False."
            )
        self.conn, self.synapse, self.output, self.stp = conn, synapse, output, stp
        self.per_synapse = bool(per_synapse)
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
        if delay is None:
            self.delay, self.dt, self.max_delay, self.n_slots = None, None, None, 0
            return
        delay = as_param(delay)
        d_shape = jnp.shape(resolve(delay))
        if d_shape not in ((), conn.syn_shape):
            raise ValueError(
                f"Projection.delay must be a scalar or one delay per synapse, shape "
                f"{conn.syn_shape} (got shape {d_shape})."
            )
        dt = buffer_dt("Projection", dt)
        if max_delay is None:
            d = val.concrete(resolve(delay))
            if d is None:
                raise TypeError(
                    "Projection needs max_delay (ms) when the delay is not concrete: it "
                    "fixes the size of the buffer."
                )
            max_delay = max(float(np.max(d)), 0.0) if np.size(d) else 0.0
        mx = val.concrete(max_delay)
        if mx is None or np.ndim(mx) != 0 or not (np.isfinite(mx) and mx >= 0):
            raise ValueError(
                f"Projection.max_delay must be a concrete number >= 0 ms (got {max_delay!r}); "
                "pass the longest delay the buffer must hold."
            )
        with jax.ensure_compile_time_eval():
            k_max, _ = split_steps(np.float64(mx), dt)
        self.delay, self.dt, self.max_delay = delay, dt, float(mx)
        self.n_slots = int(k_max) + 2

    def constraints(self):
        if self.delay is None:
            return ()
        d = resolve(self.delay)
        return (
            val.Check(
                ~(d >= 0) | ~jnp.isfinite(d),
                d,
                "Projection.delay must be finite and >= 0 ms",
                "a spike cannot arrive before it is sent; fix the delay",
            ),
            val.Check(
                ~(d <= self.max_delay),
                d,
                f"Projection.delay must be <= max_delay={self.max_delay!r} ms, the longest "
                "delay its buffer holds",
                "build the Projection with a larger max_delay",
            ),
        )

    @property
    def n_pre(self) -> int:
        return self.conn.n_pre

    @property
    def n_post(self) -> int:
        return self.conn.n_post

    def _pre_delay(self) -> Delay:
        return Delay(self.delay, self.dt, max_delay=self.max_delay)

    def init_state(self, n: Shape | None = None, *, dtype=None) -> ProjectionState:
        """The state at rest (nothing in flight). `n` may be `None` or `(n_pre,)`, the
        shape of the presynaptic spikes."""
        if n is not None and as_shape(n) != (self.n_pre,):
            raise ValueError(
                f"Projection takes presynaptic spikes of shape ({self.n_pre},), one per "
                f"presynaptic neuron of its connection (got n={n}); match the inputs to it."
            )
        dtype = jnp.result_type(float) if dtype is None else dtype
        stp = None if self.stp is None else self.stp.init_state(self.n_pre, dtype=dtype)
        arrivals, delayed = None, None
        if self.per_synapse:
            synapse = self.synapse.init_state(self.conn.syn_shape, dtype=dtype)
            if self.delay is not None:
                scalar = jnp.ndim(resolve(self.delay)) == 0
                shape = (self.n_pre,) if scalar else self.conn.syn_shape
                delayed = self._pre_delay().init_state(shape, dtype=dtype)
        else:
            synapse = self.synapse.init_state(self.n_post, dtype=dtype)
            if self.delay is not None:
                arrivals = jnp.zeros((self.n_slots, self.n_post), dtype)
        return ProjectionState(
            stp=stp,
            arrivals=arrivals,
            pos=jnp.zeros((), jnp.int32),
            delayed=delayed,
            synapse=synapse,
            g=jnp.zeros((self.n_post,), dtype),
        )

    def step(self, state: ProjectionState, spikes, dt) -> tuple[ProjectionState, Array]:
        """Take the presynaptic spikes of this step (shape `(n_pre,)`), return the state and
        `g` at the end of the step, shape `(n_post,)`."""
        if self.dt is not None:
            check_run_dt("Projection", self.dt, dt)
        like = state.g
        spikes = jnp.asarray(spikes)
        if spikes.shape != (self.n_pre,):
            raise ValueError(
                f"Projection.step needs presynaptic spikes of shape ({self.n_pre},) (got shape "
                f"{spikes.shape}); batch trials with jax.vmap."
            )
        signal = spikes.astype(like.dtype)
        stp = state.stp
        if self.stp is not None:
            stp, signal = self.stp.step(stp, signal, dt)
        arrivals, pos, delayed = state.arrivals, state.pos, state.delayed
        if self.per_synapse:
            if self.delay is not None and jnp.ndim(resolve(self.delay)) == 0:
                delayed, signal = self._pre_delay().step(delayed, signal, dt)
            drive = self.conn.spread(signal)
            if self.delay is not None and jnp.ndim(resolve(self.delay)) > 0:
                delayed, drive = self._pre_delay().step(delayed, drive, dt)
            synapse, g_syn = self.synapse.step(state.synapse, drive, dt)
            g = self.conn.collect(g_syn)
        else:
            if self.delay is None and isinstance(self.synapse, Expon):
                # Expon's step, g e^{-dt/tau} + drive, with the drive scatter-added straight
                # into the decayed conductance (one pass fewer over the population).
                tau = resolve(self.synapse.tau, like)
                g = self.conn.deliver(signal, state.synapse.g * kin.decay(dt, tau))
                new = ProjectionState(
                    stp=stp, arrivals=None, pos=pos, delayed=None, synapse=ExponState(g=g), g=g
                )
                return new, g
            if self.delay is None:
                drive = self.conn.deliver(signal, jnp.zeros_like(like))
            else:
                k, frac = split_steps(resolve(self.delay).astype(like.dtype), self.dt)
                rows = (pos + k) % self.n_slots
                rows_next = (rows + 1) % self.n_slots
                arrivals = self.conn.deliver(
                    signal, arrivals, rows=rows, rows_next=rows_next, frac=frac
                )
                drive = arrivals[pos]
                arrivals = arrivals.at[pos].set(0.0)
                pos = (pos + 1) % self.n_slots
            synapse, g = self.synapse.step(state.synapse, drive, dt)
        new = ProjectionState(
            stp=stp, arrivals=arrivals, pos=pos, delayed=delayed, synapse=synapse, g=g
        )
        return new, g

    def current(self, state: ProjectionState, V=None) -> Float[Array, " n_post"]:
        """The current into the postsynaptic neurons (pA) at potential `V` (mV), from the
        conductance at the end of the last step. Without output law: raises."""
        if self.output is None:
            raise ValueError(
                "Projection without an output law gives voltage jumps (state.g, mV), not "
                "currents; pass output=jsyn.COBA(...) or jsyn.CUBA(...)."
            )
        return self.output.current(state.g, V)


class NetworkState(eqx.Module):
    """State of a `Network`: `groups` maps each group's name to its neuron state, and
    `projections` each projection's name to its `ProjectionState`."""

    groups: dict[str, Any]
    projections: dict[str, ProjectionState]


def _take(x, rng: tuple[int, int] | None):
    return x if rng is None else x[rng[0] : rng[1]]


def _add(total, part, rng: tuple[int, int] | None):
    if rng is None:
        return part if total is None else total + part
    if total is None:
        raise AssertionError  # totals are built full-size before a sliced add
    return total.at[rng[0] : rng[1]].add(part)


class Network(AbstractSystem):
    r"""Groups of neurons and the projections between them, stepped together.

    `step(state, x, dt) -> (state, spikes)`: `x` is `None` or a dict of external currents
    (pA) by group name, each of the group's shape `(n,)` (groups left out get none);
    `spikes` is a dict of each group's spikes in this step, by name. See the module
    docstring for the order of a step. `jsyn.simulate(net, None, dt, n_steps=T)` runs it
    (or with `inputs` a dict of currents with time leading); pass
    `record=lambda state, spikes: ...` to keep only what you need, for example spike
    counts, a few potentials or conductances, and `record_every=k` to keep every k-th step.

    **Arguments:**
    - `groups`: a dict from name to a group: `(neuron, n)`, such as `(jsyn.LIF(), 4000)`,
      or a source whose size is fixed by its parameters (`jsyn.SpikeTimes`,
      `jsyn.Poisson`).
    - `projections`: a dict from name to `jsyn.Projection` (or a sequence, named `"0"`,
      `"1"`, ...), each naming its `pre` and `post` groups.

    `init_state(n=None, *, dtype=None, key=None)` builds the state of every group at rest
    (`n` is ignored: the groups fix the sizes); `key` seeds stochastic groups. To start from
    other potentials, replace them:
    `state = eqx.tree_at(lambda s: s.groups["E"].V, state, V0)`.
    """

    groups: dict[str, AbstractNeuron]
    projections: dict[str, Projection]
    sizes: tuple[tuple[str, int], ...] = eqx.field(static=True)

    def __init__(
        self,
        groups: Mapping[str, AbstractNeuron | tuple[AbstractNeuron, int]],
        projections: Mapping[str, Projection] | Sequence[Projection] = (),
    ):
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError(
                "Network.groups must be a non-empty dict from name to (neuron, n) or to a "
                "source, e.g. {'E': (jsyn.LIF(), 3200)}."
            )
        neurons, sizes = {}, []
        for name, group in groups.items():
            if isinstance(group, tuple):
                if len(group) != 2:
                    raise ValueError(
                        f"Network group {name!r} must be (neuron, n) (got a tuple of {len(group)})."
                    )
                neuron, n = group
                n = as_count(n, f"Network group {name!r}'s size", minimum=1)
            else:
                neuron = group
                n = _source_size(neuron) if isinstance(neuron, AbstractNeuron) else None
                if n is None:
                    raise ValueError(
                        f"Network group {name!r}: give its size as ({type(neuron).__name__}"
                        "(...), n); only sources fix their own size."
                    )
            if not isinstance(neuron, AbstractNeuron):
                raise TypeError(
                    f"Network group {name!r} must be a jsyn neuron or source (got "
                    f"{type(neuron).__name__})."
                )
            neurons[str(name)] = neuron
            sizes.append((str(name), int(n)))
        if not isinstance(projections, Mapping):
            projections = {str(i): p for i, p in enumerate(projections)}
        size_of = dict(sizes)
        for pname, proj in projections.items():
            if not isinstance(proj, Projection):
                raise TypeError(
                    f"Network projection {pname!r} must be a jsyn.Projection (got "
                    f"{type(proj).__name__})."
                )
            for side, group, rng, n in (
                ("pre", proj.pre, proj.pre_slice, proj.n_pre),
                ("post", proj.post, proj.post_slice, proj.n_post),
            ):
                if group not in size_of:
                    raise ValueError(
                        f"Network projection {pname!r} has {side}={group!r}, which is not a "
                        f"group (groups: {sorted(size_of)}); name its {side} group."
                    )
                span = size_of[group] if rng is None else rng[1] - rng[0]
                if (rng is not None and rng[1] > size_of[group]) or span != n:
                    raise ValueError(
                        f"Network projection {pname!r}: its connection has n_{side}={n}, but "
                        f"{side} group {group!r} has {size_of[group]} neurons"
                        + ("" if rng is None else f" and the slice {rng} spans {span}")
                        + f"; match the connection to the group or set {side}_slice."
                    )
            if proj.output is None and not _takes_jump(neurons[proj.post]):
                raise ValueError(
                    f"Network projection {pname!r} gives voltage jumps (no output law), but its "
                    f"post group {proj.post!r} ({type(neurons[proj.post]).__name__}) takes no "
                    "jump; give it an output law or target a jsyn.LIF group."
                )
        self.groups = neurons
        self.projections = {str(k): v for k, v in projections.items()}
        self.sizes = tuple(sizes)

    def constraints(self):
        return ()

    def init_state(
        self, n: Shape | None = None, *, dtype=None, key: PRNGKeyArray | None = None
    ) -> NetworkState:
        """The state at rest. `n` is ignored (the groups fix the sizes); `key` seeds the
        stochastic groups (`jsyn.Poisson`)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        groups = {}
        stochastic = [name for name, g in self.groups.items() if _needs_key(g)]
        if stochastic and key is None:
            raise TypeError(
                f"Network groups {stochastic} are stochastic and need a key: pass "
                "simulate(..., key=jax.random.key(0)) or net.init_state(key=...)."
            )
        keys = dict(zip(stochastic, jax.random.split(key, len(stochastic)))) if stochastic else {}
        for name, size in self.sizes:
            neuron = self.groups[name]
            if name in keys:
                groups[name] = neuron.init_state(size, dtype=dtype, key=keys[name])
            else:
                groups[name] = neuron.init_state(size, dtype=dtype)
        projections = {
            name: p.init_state(p.n_pre, dtype=dtype) for name, p in self.projections.items()
        }
        return NetworkState(groups=groups, projections=projections)

    def step(self, state: NetworkState, x, dt) -> tuple[NetworkState, dict[str, Array]]:
        size_of = dict(self.sizes)
        x = {} if x is None else x
        if not isinstance(x, Mapping) or not set(x) <= set(size_of):
            raise ValueError(
                f"Network.step takes x=None or a dict of external currents by group name "
                f"(groups: {sorted(size_of)}; got {_describe_input(x)})."
            )
        currents: dict[str, Array | None] = {name: None for name in size_of}
        jumps: dict[str, Array | None] = {name: None for name in size_of}
        for name, I in x.items():
            I = jnp.asarray(I)
            if I.shape != (size_of[name],):
                raise ValueError(
                    f"Network.step: the current into group {name!r} must have shape "
                    f"({size_of[name]},) (got {I.shape})."
                )
            currents[name] = I
        # 1. currents (and jumps) over this step, from the state at the end of the last one
        for pname, proj in self.projections.items():
            ps = state.projections[pname]
            total = jumps if proj.output is None else currents
            if proj.post_slice is not None and total[proj.post] is None:
                total[proj.post] = jnp.zeros((size_of[proj.post],), ps.g.dtype)
            if proj.output is None:
                part = ps.g
            else:
                V = getattr(state.groups[proj.post], "V", None)
                part = proj.output.current(ps.g, _take(V, proj.post_slice))
            total[proj.post] = _add(total[proj.post], part, proj.post_slice)
        # 2. the groups
        groups, spikes = {}, {}
        for name, _ in self.sizes:
            neuron, s = self.groups[name], state.groups[name]
            I = currents[name]
            if I is None:
                I = 0.0
            if jumps[name] is not None:
                groups[name], spikes[name] = neuron.step(s, I, dt, jump=jumps[name])
            else:
                groups[name], spikes[name] = neuron.step(s, I, dt)
        # 3. the spikes of this step into the projections
        projections = {}
        for pname, proj in self.projections.items():
            pre_spikes = _take(spikes[proj.pre], proj.pre_slice)
            projections[pname], _ = proj.step(state.projections[pname], pre_spikes, dt)
        return NetworkState(groups=groups, projections=projections), spikes


def _source_size(neuron) -> int | None:
    """The size of a source fixed by its parameters, or `None`."""
    kwargs = {"key": jax.random.key(0)} if _needs_key(neuron) else {}
    try:
        state = eqx.filter_eval_shape(lambda: neuron.init_state(None, **kwargs))
    except (TypeError, ValueError):
        return None
    spikes = getattr(state, "spikes", None)
    return None if spikes is None or len(spikes.shape) != 1 else int(spikes.shape[0])


def _describe_input(x) -> str:
    return f"keys {sorted(x)}" if isinstance(x, Mapping) else type(x).__name__


def _needs_key(neuron) -> bool:
    import inspect

    return "key" in inspect.signature(neuron.init_state).parameters


def _takes_jump(neuron) -> bool:
    import inspect

    return "jump" in inspect.signature(neuron.step).parameters
