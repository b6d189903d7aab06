r"""Trial batches of networks: $B$ independent trials of one `jsyn.Network` run as one
network, laid side by side.

`jax.vmap` over trials of a network with event-driven `jsyn.Sparse` connections is a
trap: a batched `jax.lax.switch` runs every branch, the all-neuron one included, so each
step costs a dense pass per trial. `trials` instead builds **one** network holding the $B$
trials: every group of $n$ neurons becomes a group of $nB$, every connection a
block-diagonal `jsyn.Sparse` (trial $b$ wired only to trial $b$), so one step counts the
spikes of all trials together and picks one capacity tier for the total.

**Layout.** Neuron $i$ of trial $b$ is neuron $iB + b$ of the batched group (neuron-major),
so a `pre_slice`/`post_slice` $(a, c)$ of a group stays contiguous, $(aB, cB)$. A
per-neuron array of the batch therefore reads `x.reshape(n, B)` (use `TrialBatch.split`).
Per-synapse arrays follow the batched `jsyn.Sparse`'s own order.

**Exactness.** Each trial computes what its single run computes: neurons, outputs, STP,
plasticity and kinetics are elementwise; deliveries reach each postsynaptic neuron from
the same synapses in the same order. A `jsyn.Dense` connection becomes a `jsyn.Sparse`
one with all $n_\text{pre} n_\text{post}$ synapses (block-diagonal, so memory grows as
$B$, not $B^2$), which sums in another order than the single run's matrix product: its
traces agree to rounding. `jsyn.Poisson` groups draw each trial's spikes from the
trial's own key (`jax.vmap` over the trials' keys, exact for JAX's default generator).

Gap junctions are batched as projections are (block-diagonal connections, the spikelets
of the next step per postsynaptic cell). Not supported: a `jsyn.Neuromodulator` group of
size 1 (give it one cell per postsynaptic neuron), stochastic projections and modulated
gains.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .. import _validation as val
from .._resume import resumable_trials
from .._sharding import shard_batch
from ..batch import batch_size
from ..connectivity import Dense, Sparse
from ..gap_junction import GapJunction
from ..neurons import AbstractNeuron, Neuromodulator, Poisson, PoissonState, SpikeTimes
from ..simulate import simulate
from .network import Network, NetworkState
from .projection import Projection

__all__ = ["TrialBatch", "trials"]


def trials(net: Network, B: int | None = None) -> "TrialBatch":
    r"""$B$ trials of `net` as one network (see the module docstring for how).

    **Arguments:**
    - `net`: the network, either one `jsyn.Network` (every trial with its parameters; give
      `B`), or a batch of networks of one structure, with a leading axis $B$ on every
      array leaf (`jsyn.grid(net, {"projections.E.output.g_max": [...]})` or
      `jsyn.stack([net_0, ..., net_{B-1}])`) for parameters per trial. A parameter that
      differs between trials becomes one value per neuron (or per synapse) of the batch;
      one the trials share keeps its shape.
    - `B`: the number of trials, with one network; leave it out with a batch of networks.

    **Returns:** a `TrialBatch`: the batched network `.net`, and helpers to build its
    initial state and inputs and to split results back per trial.

    ```python
    tb = jsyn.trials(net, 32)                           # 32 trials of net
    state = tb.init_state(jax.random.split(key, 32))    # each trial's own key
    _, spikes = jsyn.simulate(tb.net, None, 0.1, state=state, n_steps=5000)
    per_trial = tb.split(spikes["E"], "E")              # (32, 5000, n_E)
    ```
    Trial $b$ of `per_trial` equals
    `jsyn.simulate(net, None, 0.1, key=key_b, n_steps=5000)[1]["E"]`.

    Not batched yet (refused with an error, never dropped): a one-cell
    `jsyn.Neuromodulator` group, stochastic projections (stochastic release,
    `jsyn.QuantalSTP`, `jsyn.OUNoise`) or a modulated gain;
    run those trials with `jax.vmap` or one by one.
    """
    if not isinstance(net, Network):
        raise TypeError(
            f"jsyn.trials needs a jsyn.Network or a batch of them (got {type(net).__name__})."
        )
    if B is None:
        B = batch_size(
            net,
            "jsyn.trials(net) without B needs a batch of networks",
            "build it with jsyn.stack or jsyn.grid, or pass B for B trials of one network.",
        )
        batch = net
        net = jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, batch)
    else:
        B = int(B)
        if B < 1:
            raise ValueError(f"jsyn.trials needs B >= 1 trials (got {B}).")
        batch = None
    return TrialBatch(net, batch, B)


def _interleave(n: int, B: int) -> np.ndarray:
    """Batched position `i * B + b` -> trial-major position `b * n + i`."""
    return (np.arange(B)[None, :] * n + np.arange(n)[:, None]).reshape(-1)


def _column(stacked) -> Array | None:
    """The trials' values of one leaf, shape `(B, ...)`, or `None` when they share it."""
    if stacked is None:
        return None
    concrete = val.concrete(stacked)
    if concrete is not None and np.all(concrete == concrete[:1]):
        return None
    return stacked


@dataclasses.dataclass(frozen=True, eq=False)
class _Kind:
    """How one kind of axis (a group's neurons, a projection's pre/post neurons or
    synapses) lies in the batch: `perm[k]` is the trial-major position (`b * size + i`)
    of batched position `k`; `shape` the axes of one trial (two for a `Dense`'s
    synapses)."""

    shape: tuple[int, ...]
    perm: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def merge(self, stacked: Array) -> Array:
        """Per-trial arrays `(B, *lead, *shape)` -> the batch's `(*lead, B * size)`."""
        B, m = stacked.shape[0], len(self.shape)
        flat = stacked.reshape(*stacked.shape[: stacked.ndim - m], self.size)
        flat = jnp.moveaxis(flat, 0, -2)
        return flat.reshape(*flat.shape[:-2], B * self.size)[..., self.perm]

    def split(self, x: Array, B: int) -> Array:
        """The batch's `(*lead, B * size)` -> per-trial `(B, *lead, *shape)`."""
        inverse = np.empty_like(self.perm)
        inverse[self.perm] = np.arange(self.perm.size)
        x = jnp.asarray(x)[..., inverse].reshape(*jnp.shape(x)[:-1], B, *self.shape)
        return jnp.moveaxis(x, -1 - len(self.shape), 0)


class _TrialPoissonState(eqx.Module):
    """State of a trial batch's `jsyn.Poisson` group: one PRNG key per trial, `(B,)`, and
    the last step's spikes of the batch."""

    key: Array
    spikes: Array


class _TrialPoisson(AbstractNeuron):
    """`jsyn.Poisson` for a trial batch: trial `b` draws from its own key, as its single run
    does (the state holds one key per trial)."""

    source: Poisson  # rates of shape (B, n)
    B: int = eqx.field(static=True)
    n: int = eqx.field(static=True)
    needs_key: ClassVar[bool] = True

    def constraints(self):
        return ()  # the source's own

    def init_state(self, n=None, *, dtype=None, key: Array) -> _TrialPoissonState:
        """One key per trial: `key` of shape `(B,)`, or one key split into `B`."""
        if not val.check_key(key, "jsyn.trials: a Poisson group", self.B):
            key = jax.random.split(key, self.B)
        spikes = jnp.zeros((self.n * self.B,), jnp.result_type(float) if dtype is None else dtype)
        return _TrialPoissonState(key=key, spikes=spikes)

    def step(self, state: _TrialPoissonState, x, dt):
        per_trial = state.spikes.reshape(self.n, self.B).T

        def one(source, key, spikes):
            return source.step(PoissonState(key=key, spikes=spikes), None, dt)

        new, spikes = eqx.filter_vmap(one)(self.source, state.key, per_trial)
        spikes = spikes.T.reshape(-1)
        return _TrialPoissonState(key=new.key, spikes=spikes), spikes


class TrialBatch:
    """$B$ trials of a network as one (`jsyn.trials` builds it).

    **Attributes:** `net`, the batched `jsyn.Network` (run it with `jsyn.simulate`);
    `single`, the network of one trial (trial 0's parameters); `B`, the number of trials.

    Per-trial arrays have the trials leading, `(B, ...)`, shaped as for one trial: a
    stacked state is what `jax.vmap(lambda k: net.init_state(key=k))(keys)` gives.
    """

    def __init__(self, net: Network, batch: Network | None, B: int):
        self.single, self.B, self._batch, self._shards = net, B, batch, {}
        sizes = dict(net.sizes)
        self._kinds: dict[Any, _Kind] = {}
        groups = {}
        for name, n in net.sizes:
            neuron = net.groups[name]
            stacked = None if batch is None else batch.groups[name]
            self._kinds[name] = _Kind((n,), _interleave(n, B))
            if isinstance(neuron, Neuromodulator) and n == 1 and B > 1:
                raise ValueError(
                    f"jsyn.trials: the neuromodulator group {name!r} has one cell, shared by "
                    "every postsynaptic neuron; in a trial batch give it one per "
                    "postsynaptic neuron (size n_post)."
                )
            groups[name] = (self._group(name, neuron, stacked, n), n * B)
        projections = {
            pname: self._projection(
                pname, proj, None if batch is None else batch.projections[pname], sizes
            )
            for pname, proj in net.projections.items()
        }
        gaps = {
            gname: self._gap(gname, gap, None if batch is None else batch.gaps[gname])
            for gname, gap in net.gaps.items()
        }
        self.net = Network(groups, projections, gaps)

    # -- building the batched network -------------------------------------------------

    def _expand(self, tree, stacked, kind: _Kind):
        """`tree` with each array leaf made one per batched element of `kind`, unless the
        trials share a scalar."""
        if tree is None:
            return None
        leaves, treedef = jax.tree.flatten(tree)
        columns = _columns(tree, stacked)
        out = []
        for leaf, column in zip(leaves, columns):
            if not eqx.is_array(leaf):
                out.append(leaf)
                continue
            column = _column(column)
            if column is None and jnp.ndim(leaf) == 0:
                out.append(leaf)
                continue
            values = leaf[None] if column is None else column
            pad = len(kind.shape) - (values.ndim - 1)  # align a trial's value to the right
            values = values.reshape(values.shape[0], *(1,) * max(pad, 0), *values.shape[1:])
            try:
                full = jnp.broadcast_to(values, (self.B, *kind.shape))
            except ValueError:
                raise ValueError(
                    f"jsyn.trials: a parameter of shape {jnp.shape(values)[1:]} does not fit "
                    f"the {kind.shape} it belongs to; give a scalar or that shape."
                ) from None
            out.append(kind.merge(full))
        return jax.tree.unflatten(treedef, out)

    def _group(self, name: str, neuron: AbstractNeuron, stacked, n: int) -> AbstractNeuron:
        B, kind = self.B, self._kinds[name]
        if isinstance(neuron, Poisson):
            src = stacked if stacked is not None else _lead(neuron)
            source = jax.tree.map(
                lambda x: jnp.broadcast_to(x, (B, n)) if eqx.is_array(x) else x, src
            )
            return _TrialPoisson(source, B, n)
        if isinstance(neuron, SpikeTimes):
            src = stacked if stacked is not None else _lead(neuron)
            times = jnp.broadcast_to(src.times, (B, neuron.times.shape[0]))
            idx = jnp.broadcast_to(src.indices, times.shape) * B + jnp.arange(B)[:, None]
            return SpikeTimes(np.asarray(times).reshape(-1), np.asarray(idx).reshape(-1), n * B)
        return self._expand(neuron, stacked, kind)

    def _connection(self, what: str, conn, stacked, event_driven: bool) -> tuple[Sparse, "_Kind"]:
        """`conn` for the batch: block-diagonal `jsyn.Sparse` (trial $b$ wired to trial $b$
        only), its synapses ordered by presynaptic neuron; and how they lie. A `Dense`
        connection is event-driven when `event_driven`; a `Sparse` one keeps its own."""
        B = self.B
        if isinstance(conn, Sparse):
            pre, post = np.asarray(conn.pre_idx), np.asarray(conn.post_idx)
            event_driven = conn.event_driven
        elif isinstance(conn, Dense):
            pre, post = (a.reshape(-1) for a in np.indices(conn.syn_shape))
        else:
            raise TypeError(
                f"jsyn.trials batches jsyn.Sparse and jsyn.Dense connections ({what} has "
                f"{type(conn).__name__})."
            )
        trial = np.arange(B)[:, None]
        pre_b = (pre[None, :] * B + trial).reshape(-1)  # trial-major: b * n_syn + s
        post_b = (post[None, :] * B + trial).reshape(-1)
        order = np.argsort(pre_b, kind="stable")
        syn_kind = _Kind(conn.syn_shape, order)
        w = self._expand(conn.w, None if stacked is None else stacked.w, syn_kind)
        batched = Sparse(
            pre_b[order],
            post_b[order],
            conn.n_pre * B,
            conn.n_post * B,
            w,
            event_driven=event_driven,
        )
        return batched, syn_kind

    def _gap(self, gname: str, gap: GapJunction, stacked) -> GapJunction:
        """A gap junction of the batch: its connection block-diagonal, its spikelet
        factor one per postsynaptic cell of the batch (or shared)."""
        post_kind = _Kind((gap.n_post,), _interleave(gap.n_post, self.B))
        self._kinds[(gname, "post")] = post_kind
        conn, _ = self._connection(
            f"gap junction {gname!r}", gap.conn, None if stacked is None else stacked.conn, True
        )
        k = self._expand(gap.k_spikelet, None if stacked is None else stacked.k_spikelet, post_kind)
        return GapJunction(conn, k, pre=gap.pre, post=gap.post)

    def _projection(self, pname: str, p: Projection, stacked, sizes) -> Projection:
        B = self.B
        pre_kind = _Kind((p.n_pre,), _interleave(p.n_pre, B))
        post_kind = _Kind((p.n_post,), _interleave(p.n_post, B))
        if p.needs_key or p.modulation is not None:
            raise ValueError(
                f"jsyn.trials does not batch stochastic projections (stochastic release, "
                f"jsyn.QuantalSTP, jsyn.OUNoise) or a modulated gain yet (projection "
                f"{pname!r}); run these trials with jax.vmap or one by one."
            )
        s = stacked if stacked is not None else None
        # a plastic Dense projection keeps its per-synapse traces (its single run's)
        batched_conn, syn_kind = self._connection(
            f"projection {pname!r}", p.conn, None if s is None else s.conn, p.plasticity is None
        )
        self._kinds[(pname, "pre")] = pre_kind
        self._kinds[(pname, "post")] = post_kind
        self._kinds[(pname, "syn")] = syn_kind
        layout = syn_kind if p.synapse_params == "synapse" else post_kind
        delay = None
        if p.line is not None:
            delay_column = None if s is None else s.line.delay
            if (
                p.per_synapse
                and jnp.ndim(jax.tree.leaves(p.line.delay)[0]) == 0
                and any(_column(c) is not None for c in _columns(p.line.delay, delay_column))
            ):
                raise ValueError(
                    f"jsyn.trials: projection {pname!r} has per-synapse kinetics and one delay "
                    "that differs between trials; give each trial one delay per synapse "
                    "(an array of the connection's syn_shape)."
                )
            delay = self._expand(p.line.delay, delay_column, syn_kind)

        def part(name, kind):
            return self._expand(getattr(p, name), None if s is None else getattr(s, name), kind)

        def scaled(rng):
            return None if rng is None else (rng[0] * B, rng[1] * B)

        return Projection(
            batched_conn,
            part("synapse", layout),
            part("output", post_kind),
            stp=part("stp", pre_kind),
            delay=delay,
            dt=next((line.dt for line in (p.line, p.dendrite) if line is not None), None),
            max_delay=None if p.line is None else p.line.max_delay,
            pre=p.pre,
            post=p.post,
            pre_slice=scaled(p.pre_slice),
            post_slice=scaled(p.post_slice),
            synapse_params=p.synapse_params,
            plasticity=part("plasticity", syn_kind),
            dendritic_delay=None if p.dendrite is None else p.dendrite.delay,
        )

    # -- states, inputs and results ---------------------------------------------------

    def _state_kinds(self, pname: str, p: Projection) -> dict[str, Any]:
        pre, post, syn = (self._kinds[(pname, k)] for k in ("pre", "post", "syn"))
        b, i = np.divmod(pre.perm, p.n_pre)  # the spikes, then the signal
        twice = _Kind(
            (2 * p.n_pre,), np.concatenate([b * 2 * p.n_pre + h * p.n_pre + i for h in range(2)])
        )
        by_axis = {"pre": pre, "post": post, "synapse": syn, "pre x2": twice}

        def kinds(axes):
            if isinstance(axes, dict):
                return {name: kinds(axis) for name, axis in axes.items()}
            return by_axis[axes]

        return {"stp": pre, "transmission": kinds(p.transmission.state_axes(p)), "g": post}

    def _map_state(self, state: NetworkState, leaf_fn, poisson) -> NetworkState:
        """Apply `leaf_fn(leaf, kind)` to every leaf of a network state (`kind` `None` for
        the scalars the trials share); `poisson(keys, spikes)` builds a Poisson group's."""

        def each(tree, kind):
            if isinstance(kind, dict):  # one kind per field of a state module
                fields = [f for f in kind if getattr(tree, f) is not None]
                return eqx.tree_at(
                    lambda t: [getattr(t, f) for f in fields],
                    tree,
                    [each(getattr(tree, f), kind[f]) for f in fields],
                )
            return jax.tree.map(lambda x: leaf_fn(x, kind), tree)

        groups = {}
        for name, s in state.groups.items():
            kind = self._kinds[name]
            if isinstance(s, PoissonState | _TrialPoissonState):  # the keys stay per trial
                groups[name] = poisson(s.key, leaf_fn(s.spikes, kind))
            else:
                groups[name] = each(s, kind)
        projections = {}
        for pname, ps in state.projections.items():
            kinds = self._state_kinds(pname, self.single.projections[pname])
            names = [f.name for f in dataclasses.fields(ps) if getattr(ps, f.name) is not None]
            unknown = sorted(set(names) - set(kinds))
            if unknown:
                raise ValueError(
                    f"jsyn.trials does not know how ProjectionState.{unknown[0]} lies in a "
                    "trial batch; batch these trials with jax.vmap."
                )
            projections[pname] = eqx.tree_at(
                lambda s, names=names: [getattr(s, f) for f in names],
                ps,
                [each(getattr(ps, f), kinds[f]) for f in names],
            )
        gaps = {g: leaf_fn(x, self._kinds[(g, "post")]) for g, x in state.gaps.items()}
        return NetworkState(groups=groups, projections=projections, gaps=gaps)

    def merge_state(self, states: NetworkState) -> NetworkState:
        """The batched network's state from the trials' states, stacked `(B, ...)` (each
        trial's state as `single.init_state` shapes it, e.g. with its own potentials)."""
        B = self.B

        def leaf(x, kind):
            x = jnp.asarray(x)
            if x.shape[:1] != (B,):
                raise ValueError(
                    f"TrialBatch.merge_state needs the trials' states stacked with a leading "
                    f"axis of {B} (got a leaf of shape {x.shape}); stack them, e.g. with "
                    "jax.vmap over the trials' keys."
                )
            return x[0] if x.ndim == 1 else kind.merge(x)

        return self._map_state(states, leaf, _TrialPoissonState)

    def split_state(self, state: NetworkState) -> NetworkState:
        """The trials' states, stacked `(B, ...)`, from the batched network's state (the
        inverse of `merge_state`): trial `b`'s is
        `jax.tree.map(lambda x: x[b], split_state(state))`."""
        B = self.B

        def leaf(x, kind):
            x = jnp.asarray(x)
            if x.ndim == 0:
                return jnp.broadcast_to(x, (B,))
            return kind.split(x, B)

        return self._map_state(state, leaf, _stacked_poisson_state)

    def init_state(self, key: Array | None = None, *, dtype=None) -> NetworkState:
        """The batched state at rest: trial `b` as `single.init_state(key=key[b])`.

        `key`: for stochastic groups (`jsyn.Poisson`), one key per trial, shape `(B,)`
        (e.g. `jax.random.split(key, B)`), or one key, split into `B`."""
        if any(g.needs_key for g in self.single.groups.values()):
            if key is None:
                raise TypeError(
                    "TrialBatch.init_state: the network has stochastic groups; pass one key "
                    "per trial, key=jax.random.split(jax.random.key(0), B)."
                )
            if not val.check_key(key, "TrialBatch.init_state", self.B):
                key = jax.random.split(key, self.B)
            states = jax.vmap(lambda k: self.single.init_state(dtype=dtype, key=k))(key)
        else:
            one = self.single.init_state(dtype=dtype)
            states = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.B, *jnp.shape(x))), one)
        return self.merge_state(states)

    def simulate(
        self,
        dt,
        *,
        state: NetworkState,
        inputs: Mapping[str, Array] | None = None,
        n_steps: int | None = None,
        record=None,
        devices: Sequence[jax.Device] | None = None,
        checkpoint_to=None,
        checkpoint_every: int | str | None = None,
        resume: bool = False,
    ):
        r"""Run the trials split over `devices` (default `jax.devices()`): device $d$ of $D$
        runs trials $dB/D, \ldots, (d+1)B/D - 1$ as one network of $B/D$ trials (the
        `TrialBatch` `shard(D)`), event-driven, under `jax.shard_map`; the same call on 1
        device runs them all as `net`. $B$ must be a multiple of $D$.

        **Arguments:** `state`, the batch's state (`init_state`, `merge_state`, or the final
        state of an earlier run); `inputs`, `None` or external currents per trial,
        `{group: (time, B, n)}`; `dt`, `n_steps`, `record` as for `jsyn.simulate`.

        **Returns:** `(final_state, recorded)`: the batch's state after the run (as
        `jsyn.simulate(net, ...)` returns it) and each device's record, with a leading
        axis $D$ (`split_devices` turns a record of a group's neurons into `(B, ..., n)`).
        Trials with parameters per trial run on one device only.

        `checkpoint_to`, `checkpoint_every`, `resume`: as for `jsyn.simulate`, a run that
        writes checkpoints and its record to disk and resumes bit for bit (the record comes
        back memory-mapped, `(D, time, ...)`).
        """
        if checkpoint_to is not None or checkpoint_every is not None or resume:
            return resumable_trials(
                self,
                dt,
                state,
                inputs,
                n_steps,
                record,
                devices,
                checkpoint_to,
                checkpoint_every,
                resume,
            )
        devices = list(jax.devices() if devices is None else devices)
        D = len(devices)
        if self.B % D:
            raise ValueError(
                f"TrialBatch.simulate splits {self.B} trials over {D} devices; make B a "
                f"multiple of {D} or pass fewer devices (devices=jax.devices()[:k])."
            )
        shard = self.shard(D)
        per_trial = self.split_state(state)
        per_device = jax.tree.map(lambda x: x.reshape(D, self.B // D, *x.shape[1:]), per_trial)
        states = jax.vmap(shard.merge_state)(per_device)
        if inputs is not None:
            inputs = {
                g: jnp.moveaxis(jnp.asarray(x).reshape(x.shape[0], D, -1, x.shape[2]), 1, 0)
                for g, x in inputs.items()
            }
            inputs = jax.vmap(shard.merge_inputs)(inputs)
        shared = (shard.net, dt, n_steps, record)
        finals, recorded = shard_batch(_simulate_shard, (states, inputs), shared, devices)
        finals = jax.vmap(shard.split_state)(finals)
        finals = jax.tree.map(lambda x: x.reshape(self.B, *x.shape[2:]), finals)
        return self.merge_state(finals), recorded

    def shard(self, D: int) -> "TrialBatch":
        """The batch of $B/D$ trials that each of $D$ devices runs in `simulate`."""
        if D == 1:
            return self
        if self._batch is not None:
            raise ValueError(
                "TrialBatch.simulate: trials with parameters per trial run on one device; "
                "pass devices=jax.devices()[:1], or give every trial the same parameters."
            )
        if D not in self._shards:
            self._shards[D] = TrialBatch(self.single, None, self.B // D)
        return self._shards[D]

    def split_devices(self, x: Array, group: str | int) -> Array:
        """Per-trial results, `(B, ..., n)`, from a record of `simulate`, `(D, ..., n * B / D)`
        (device leading; the last axis the neurons of `group`, as for `split`)."""
        D = jnp.shape(x)[0]
        parts = jax.vmap(lambda r: self.shard(D).split(r, group))(x)
        return parts.reshape(self.B, *parts.shape[2:])

    def merge_inputs(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """External currents per trial, `{group: (time, B, n)}`, as the batched network's
        inputs, `{group: (time, n * B)}`."""
        out = {}
        for name, x in inputs.items():
            if name not in self._kinds or not isinstance(name, str):
                raise ValueError(
                    f"TrialBatch.merge_inputs: {name!r} is not a group (groups: "
                    f"{sorted(dict(self.single.sizes))})."
                )
            kind = self._kinds[name]
            x = jnp.asarray(x)
            if x.ndim != 3 or x.shape[1:] != (self.B, kind.size):
                raise ValueError(
                    f"TrialBatch.merge_inputs: the input of group {name!r} must have shape "
                    f"(time, {self.B}, {kind.size}), one row per trial (got {x.shape})."
                )
            out[name] = kind.merge(jnp.moveaxis(x, 1, 0))
        return out

    def split(self, x: Array, group: str | int) -> Array:
        """Per-trial results from the batch's: `x` has a last axis of `n * B`, the neurons
        of `group` (a group name, or the per-trial size `n`, e.g. a projection's
        `n_post` for its `g`); returns `(B, ..., n)`, trial leading."""
        n = dict(self.single.sizes)[group] if isinstance(group, str) else int(group)
        if jnp.shape(x)[-1:] != (n * self.B,):
            raise ValueError(
                f"TrialBatch.split: the last axis must hold {n} x {self.B} = {n * self.B} "
                f"values (got shape {jnp.shape(x)})."
            )
        return _Kind((n,), _interleave(n, self.B)).split(x, self.B)


def _columns(tree, stacked) -> list:
    """The trials' values of each leaf of `tree` (`stacked`'s leaves), or `None`s."""
    return [None] * len(jax.tree.leaves(tree)) if stacked is None else jax.tree.leaves(stacked)


def _lead(tree):
    """`tree` as a batch of one (a leading axis of 1 on every array)."""
    return jax.tree.map(lambda x: x[None] if eqx.is_array(x) else x, tree)


def _simulate_shard(batched, shared):
    """`jsyn.simulate` of one device's shard of a trial batch (a block of one)."""
    states, inputs = jax.tree.map(lambda x: x[0], batched)
    net, dt, n_steps, record = shared
    out = simulate(net, inputs, dt, state=states, n_steps=n_steps, record=record)
    return jax.tree.map(lambda a: a[None], out)


def _stacked_poisson_state(keys, spikes) -> PoissonState:
    """The trials' `jsyn.PoissonState`s, stacked (built as `jax.vmap` returns them)."""
    like = PoissonState(key=jax.random.key(0), spikes=jnp.zeros((1,)))
    return jax.tree.unflatten(jax.tree.structure(like), [keys, spikes])
