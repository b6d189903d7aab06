"""Sparse connectivity with event-driven propagation."""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, UInt32

from .. import _validation as val
from .._params import AbstractParam, Param, as_param, resolve
from ._learn import LearnSpec, learn_events
from ._learn_delayed import DelayedSpec, DelayGroups, delay_groups, learn_delayed
from ._learn_reward import learn_reward
from .base import AbstractConnection, check_signal

_FIRST_TIER = 8
_DOUBLE_UP_TO = 1024  # tiers double up to here (the work of a step follows its tier), then x4
_LEARN_CHUNK = 16  # neurons per pass of an event-driven weight update
_GROUP_CHUNK = 64  # groups of synapses (one delay, one neuron: a few each) per pass


def default_tiers(n_pre: int) -> tuple[int, ...]:
    """Capacities 8, 16, 32, ..., 1024, 4096, 16384, ... below `n_pre`, then `n_pre`
    itself (the exact fallback): doubling while the work of a step (which follows the
    tier, not the count of spikes in it) matters most, then growing by 4."""
    tiers, cap = [], _FIRST_TIER
    while cap < n_pre:
        tiers.append(cap)
        cap *= 2 if cap < _DOUBLE_UP_TO else 4
    return (*tiers, n_pre)


def _concrete_index_array(name: str, idx) -> np.ndarray:
    arr = val.concrete(idx)
    if arr is None:
        raise TypeError(
            f"Sparse.{name} must be concrete integers (they fix the wiring); build the "
            "connection outside jit/vmap/grad."
        )
    arr = np.atleast_1d(np.asarray(arr))
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"Sparse.{name} must be a 1-d array of integer neuron indices "
            f"(got shape {arr.shape}, dtype {arr.dtype})."
        )
    return arr.astype(np.int64, copy=False)


class Sparse(AbstractConnection):
    r"""Sparse connectivity: a list of synapses $(i_s, j_s)$ with weights $w_s$, and
    **event-driven** propagation.

    The drive of postsynaptic neuron $j$ is $\sum_s [j_s = j]\, x_{i_s} w_s$. The synapses
    are stored sorted by presynaptic neuron, with a table of each neuron's targets (its
    row padded to the largest out-degree `width`), so a step touches only the synapses of
    the neurons that spiked: it counts the nonzero entries of the signal, picks the
    smallest capacity tier that holds them (`tiers`, by default 8, 16, 32, ... and
    `n_pre`, chosen per step with `jax.lax.switch`), gathers those neurons (`select`) and
    scatter-adds their weights. The last tier is every neuron, so **no spike is ever
    dropped**, whatever the activity; the result equals the dense product for any signal
    (not only 0/1). Work per step follows the capacity of the tier that holds the step's
    spikes times `width`. A second table lists the synapses onto each postsynaptic neuron
    (`sources`, padded to the largest in-degree `width_in`), so that plasticity touches only the
    synapses of the neurons that spiked as well (`learn`; with one delay per synapse,
    `learn_delayed`).

    Gradients are those of the dense product: w.r.t. the weights, the delays, and the
    signal of **every** presynaptic neuron, silent ones included (for surrogate-gradient
    training). Under `jax.grad`/`jax.jvp` the tangent is computed over all synapses.
    Under `jax.vmap` the tier switch runs every branch (JAX's rule for a batched
    `switch`); to batch trials of a large event-driven network, lay them side by side as
    one population with `jsyn.trials` instead.

    Per-synapse arrays (weights, delays, states) have shape `(n_syn,)` and follow the
    stored order, `pre_idx` then `post_idx` as given within one presynaptic neuron.

    **Arguments:**
    - `pre_idx`, `post_idx`: the presynaptic and postsynaptic neuron of each synapse
      (1-d integer arrays of equal length, concrete). Repeated pairs are separate
      synapses. Unsorted pairs are sorted by `pre_idx` (stably), a per-synapse `w` with them.
    - `n_pre`, `n_post`: the group sizes.
    - `w`: the weights (dimensionless): a scalar, or one per synapse, shape `(n_syn,)`.
      Array or `AbstractParam`; differentiable.
    - `tiers`: the capacity tiers, increasing, ending at `n_pre`. Default
      `default_tiers(n_pre)`.
    - `event_driven`: `False` propagates through every synapse each step (the same
      result; cheaper only when most neurons spike in every step). Default `True`.
    """

    w: Param
    pre_idx: Int[Array, " syn"]
    post_idx: Int[Array, " syn"]
    indptr: Int[Array, " n_pre_plus_1"]
    targets: Int[Array, "n_pre width"]
    sources: Int[Array, "n_post width_in"]
    n_pre: int = eqx.field(static=True)
    n_post: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    width_in: int = eqx.field(static=True)
    tiers: tuple[int, ...] = eqx.field(static=True)
    event_driven: bool = eqx.field(static=True)

    def __init__(
        self,
        pre_idx: ArrayLike | Sequence[int],
        post_idx: ArrayLike | Sequence[int],
        n_pre: int,
        n_post: int,
        w: ArrayLike | AbstractParam = 1.0,
        *,
        tiers: Sequence[int] | None = None,
        event_driven: bool = True,
    ):
        pre = _concrete_index_array("pre_idx", pre_idx)
        post = _concrete_index_array("post_idx", post_idx)
        n_pre, n_post = int(n_pre), int(n_post)
        if n_pre < 1 or n_post < 1:
            raise ValueError(f"Sparse needs n_pre, n_post >= 1 (got {n_pre}, {n_post}).")
        if pre.shape != post.shape:
            raise ValueError(
                f"Sparse needs one post index per pre index (got {pre.size} pre and "
                f"{post.size} post indices)."
            )
        for name, idx, n in (("pre_idx", pre, n_pre), ("post_idx", post, n_post)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(
                    f"Sparse.{name} must lie in [0, {n}) (got min={idx.min()}, "
                    f"max={idx.max()}); fix the indices or the group size."
                )
        w = as_param(w)
        w_shape = jnp.shape(resolve(w))
        if w_shape not in ((), (pre.size,)):
            raise ValueError(
                f"Sparse.w must be a scalar or one weight per synapse, shape ({pre.size},) "
                f"(got shape {w_shape})."
            )
        if np.any(pre[1:] < pre[:-1]):  # (the builders' pairs come sorted: no copies)
            order = np.argsort(pre, kind="stable")
            pre, post = pre[order], post[order]
            if w_shape:
                w = jax.tree.map(lambda leaf: leaf[order], w)
        counts = np.bincount(pre, minlength=n_pre)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        width = int(counts.max()) if pre.size else 0
        targets = np.full((n_pre, width), n_post, dtype=np.int32)
        targets[pre, _ranks(pre, indptr)] = post
        sources, width_in = _incoming(post, n_post)
        tiers = default_tiers(n_pre) if tiers is None else tuple(int(c) for c in tiers)
        if (
            not tiers
            or tiers[-1] != n_pre
            or any(a >= b for a, b in zip(tiers, tiers[1:]))
            or tiers[0] < 1
        ):
            raise ValueError(
                f"Sparse.tiers must increase from >= 1 and end at n_pre={n_pre} (got {tiers}); "
                "the last tier is the exact fallback that holds every neuron."
            )
        self.w = w
        self.pre_idx = jnp.asarray(pre, dtype=jnp.int32)
        self.post_idx = jnp.asarray(post, dtype=jnp.int32)
        self.indptr = jnp.asarray(indptr, dtype=jnp.int32)
        self.targets = jnp.asarray(targets)
        self.sources = jnp.asarray(sources)
        self.n_pre = n_pre
        self.n_post = n_post
        self.width = width
        self.width_in = width_in
        self.tiers = tiers
        self.event_driven = bool(event_driven)

    @property
    def n_syn(self) -> int:
        """The number of synapses."""
        return int(self.pre_idx.shape[0])

    @property
    def syn_shape(self) -> tuple[int, ...]:
        return (self.n_syn,)

    def deliver(
        self,
        signal,
        into,
        *,
        weights=None,
        rows=None,
        rows_next=None,
        frac=None,
        hook=None,
        selection=None,
    ):
        """`AbstractConnection.deliver`, event-driven.

        `selection` lets a caller that has already found the active presynaptic neurons of
        this step (a `jsyn.Network`, once per group for every projection leaving it) hand
        them in: `None` (default) selects here, with the tier switch; an integer array
        lists the neurons whose synapses to visit (the result is exact only if it holds
        every neuron with a nonzero signal; entries outside `[0, n_pre)` are padding and
        visit nothing); `ALL` visits every synapse."""
        s = check_signal("Sparse.deliver", signal, self.n_pre).astype(into.dtype)
        w = self.weights(into) if weights is None else jnp.asarray(weights).astype(into.dtype)
        if self.width == 0:
            return into
        if rows is None:
            mode = "none"
            rows = rows_next = jnp.zeros((), jnp.int32)
            frac = jnp.zeros((), into.dtype)
        else:
            per_syn = jnp.ndim(rows) > 0 or jnp.ndim(frac) > 0
            mode = "synapse" if per_syn else "scalar"
            if per_syn:
                rows = jnp.broadcast_to(rows, self.syn_shape)
                rows_next = jnp.broadcast_to(rows_next, self.syn_shape)
                frac = jnp.broadcast_to(frac, self.syn_shape)
        everything = not self.event_driven or selection is ALL
        tiers = (self.n_pre,) if everything else self.tiers
        idx = None if everything or selection is None else jnp.asarray(selection, jnp.int32)
        spec = _Spec(tiers, self.width, self.n_syn, w.ndim > 0, mode)
        args = (self.targets, self.indptr, s, w, rows, rows_next, frac, into, hook)
        return _deliver(spec, *args, idx)

    def spread(self, signal) -> Float[Array, " syn"]:
        return check_signal("Sparse.spread", signal, self.n_pre)[self.pre_idx]

    def collect(self, values, *, weights=None) -> Float[Array, " n_post"]:
        w = self.weights(values) if weights is None else jnp.asarray(weights).astype(values.dtype)
        return jax.ops.segment_sum(w * values, self.post_idx, num_segments=self.n_post)

    def spread_post(self, signal) -> Float[Array, " syn"]:
        return check_signal("Sparse.spread_post", signal, self.n_post, side="post")[self.post_idx]

    def collect_pre(self, values, *, weights=None) -> Float[Array, " n_pre"]:
        w = self.weights(values) if weights is None else jnp.asarray(weights).astype(values.dtype)
        return jax.ops.segment_sum(w * values, self.pre_idx, num_segments=self.n_pre)

    def matrix(self) -> Float[Array, "n_pre n_post"]:
        w = jnp.broadcast_to(self.weights(), self.syn_shape)
        return jnp.zeros((self.n_pre, self.n_post), w.dtype).at[self.pre_idx, self.post_idx].add(w)

    def learn(self, rule, state, w, pre, post, dt, signal=None):
        r"""One event-driven step of an all-to-all trace rule (`jsyn.STDP`,
        `jsyn.TripletSTDP`) with its traces kept per neuron (`rule.init_neuron_state`).

        `pre` (shape `(n_pre,)`) holds the presynaptic events that arrive at the synapses in
        this step (one delay for all, or none), `post` (shape `(n_post,)`) the spikes of the
        postsynaptic neurons. The traces decay, then the depression of the pre events
        touches only the synapses of the neurons with an event (their rows in `targets`),
        then the potentiation of the post spikes only the synapses onto the neurons that
        spiked (their rows in `sources`). Each side picks its neurons with an event as
        delivery does (`select`), 16 at a time, in as many passes as it takes: none in a
        step without events, every neuron if every one spikes (no event is dropped). Each
        touched synapse is clipped to `[w_min, w_max]` once, after both sides; the others
        keep their weights, which must lie within the bounds. Returns
        `(state, w, drive)`: the traces and weights equal to the rule's `step` on
        per-synapse traces, and, with a `signal` (shape `(n_pre,)`, nonzero only where `pre`
        is: the transmitted spikes, e.g. scaled by STP), its drive through the weights at
        the start of the step, $\sum_i s_i w_{ij}$ (shape `(n_post,)`; `None` without a
        signal), delivered in the same pass over the synapses. With `event_driven=False`,
        one pass over every synapse.

        Gradients are those of that dense step (over every synapse, silent neurons
        included), as for `deliver`.
        """
        pre = check_signal("Sparse.learn", pre, self.n_pre).astype(w.dtype)
        post = check_signal("Sparse.learn", post, self.n_post, side="post").astype(w.dtype)
        chunk = _LEARN_CHUNK if self.event_driven else 0
        spec = LearnSpec(chunk, self.width, self.width_in, select, active_words)
        tables = (self.targets, self.indptr, self.sources, self.pre_idx, self.post_idx)
        if signal is not None:
            signal = check_signal("Sparse.learn", signal, self.n_pre).astype(w.dtype)
        return learn_events(spec, rule, tables, state, w, pre, post, dt, signal)

    def learn_reward(self, rule, state, pre, post, d, dt, signal=None):
        r"""One event-driven step of `jsyn.RewardSTDP` on its lazy state
        (`rule.init_event_state`, a `jsyn.RewardEventState`): the cost follows the events.

        `pre` (shape `(n_pre,)`) and `post` (shape `(n_post,)`) are the step's presynaptic
        events and postsynaptic spikes, as for `learn`; `d` the neuromodulator
        concentration of the step (shape `(1,)` or `(n_post,)`). The traces (per neuron)
        decay; the synapses of the neurons with an event are brought up to date and their
        eligibility jumps (depression at a pre event, potentiation at a post spike, as pair
        STDP); the weight update $w \leftarrow \mathrm{clip}(w + \Delta t\,d_n c_n)$ of
        every other synapse is carried by a running sum per postsynaptic neuron and
        applied when the synapse is next touched. This equals the rule's `step` to rounding
        while $d \ge 0$ (the weight of a synapse then moves one way between its events, so
        clipping at the end is clipping at every step); a step with a negative $d$ brings
        every synapse up to date before and after it (one pass over all synapses), as
        does the start of a new epoch, each time the eligibility has decayed by half
        since the last ($\tau_c \ln 2$ ms).

        Returns `(state, drive)`: `drive` is the transmission of `signal` through the
        weights at the start of the step (as for `learn`; `None` without a signal). The
        weights are `rule.event_weights(state, self.post_idx)`. Gradients are those of the
        same step over every synapse. Needs scalar time constants.
        """
        for name in ("tau_pre", "tau_post", "tau_c"):
            if jnp.ndim(resolve(getattr(rule, name))) != 0:
                raise ValueError(
                    f"Sparse.learn_reward needs a scalar RewardSTDP.{name} (got shape "
                    f"{jnp.shape(resolve(getattr(rule, name)))}); use the dense rule "
                    "(Sparse(..., event_driven=False)) for one time constant per synapse."
                )
        dtype = state.b.dtype
        pre = check_signal("Sparse.learn_reward", pre, self.n_pre).astype(dtype)
        post = check_signal("Sparse.learn_reward", post, self.n_post, side="post").astype(dtype)
        chunk = _LEARN_CHUNK if self.event_driven else 0
        spec = LearnSpec(chunk, self.width, self.width_in, select, active_words)
        tables = (self.targets, self.indptr, self.sources, self.pre_idx, self.post_idx)
        if signal is not None:
            signal = check_signal("Sparse.learn_reward", signal, self.n_pre).astype(dtype)
        return learn_reward(spec, rule, tables, state, pre, post, d, dt, signal)

    def delay_groups(self, steps, n_steps: int) -> DelayGroups:
        """The synapses grouped by their delay in whole steps and their presynaptic neuron
        (`steps`: each synapse's delay in whole steps, concrete integers in
        `[0, n_steps)`), for `learn_delayed`."""
        steps = np.asarray(steps)
        if (
            steps.shape != self.syn_shape
            or steps.size
            and not 0 <= steps.min() <= steps.max() < n_steps
        ):
            raise ValueError(
                f"Sparse.delay_groups needs one delay in whole steps per synapse, shape "
                f"{self.syn_shape}, in [0, {n_steps}) (got shape {steps.shape})."
            )
        return delay_groups(self.pre_idx, self.n_pre, steps, n_steps)

    def learn_delayed(
        self, rule, state, history, w, sent, delay, post, dt, *, signal_block=None, groups=None
    ):
        r"""One event-driven step of an all-to-all trace rule (as `learn`) with **one delay
        per synapse**, its traces kept per neuron (`rule.init_neuron_state`).

        A synapse of delay $d_s = (k_s + f_s)\,\Delta t$ sees the spikes of its
        presynaptic neuron $d_s$ later, and (for a trace that adds its jumps, or a delay
        of whole steps) the neuron's presynaptic trace $d_s$ later too:
        $a_s(t) = (1 - f_s)\,A_i(t - k_s) + f_s\,A_i(t - k_s - 1)$. So the presynaptic
        traces of `state` follow the spikes as they are **sent**, and `history` (a
        `jsyn.DelayState` of shape `(slots + 1, P n_pre)`, `P` the rule's presynaptic
        traces in the order of `rule.pre_taus`) keeps them for the last steps (after
        each step's jumps); the postsynaptic traces are the post neurons' own.

        - `sent`: a `jsyn.DelayState` (the buffer of a projection's `jsyn.Delay`, with
          this step's row already pushed) of the presynaptic spikes of the last steps,
          block 0 of each row (shape `(slots, rows n_pre)`);
        - `delay`: the `jsyn.Delay` of the synapses (one delay each, `syn_shape`); it is
          read only at the synapses a step touches (`Delay.steps(index=...)`);
        - `post`: the spikes of the postsynaptic neurons in this step, shape `(n_post,)`;
        - `signal_block`: the block of `sent` that holds what the arriving spikes
          transmit (0: the spikes themselves; 1 with STP, its efficacies), or `None` for no
          transmission.

        A step decays the traces, adds this step's spikes to the presynaptic ones and
        pushes them into `history`; then the synapses of the neurons with a spike still in
        flight (a nonzero entry in any row of `sent`: sent within the last `max_delay` and
        a step) are visited, 16 neurons per pass, and each applies the pre event that
        arrives at it now (zero for most: no change), reading the postsynaptic traces and
        its presynaptic ones at its delay (before that event's jump); then the synapses
        onto the postsynaptic neurons that spike are potentiated (their presynaptic traces
        at their delays, after the jumps), then the postsynaptic traces jump. Clipping as
        in `learn`. The work of a step follows the spikes in flight times the out-degree
        `width` plus the post spikes times `width_in`, not the number of synapses.

        With `groups` (`delay_groups`, built from the delays in whole steps, which must not
        have changed since: a `jsyn.Projection` checks it at the `jsyn.simulate` entry), the
        presynaptic side visits instead only the groups of synapses (one neuron, one delay
        in whole steps) that a spike reaches in this step, 64 groups per pass: its work
        follows the arriving spikes, times the largest group.

        Returns `(state, history, w, drive)`: equal to the rule's `step` on per-synapse
        traces driven by the per-synapse arrivals (`jsyn.Delay.step_at`), and the drive of
        the arriving signal through the weights at the start of the step (shape
        `(n_post,)`; `None` without `signal_block`). Gradients are those of the same step
        over every synapse (w.r.t. the weights, the rule's parameters and the delays), as
        for `learn`. With `event_driven=False`, one pass over every synapse.
        """
        post = check_signal("Sparse.learn_delayed", post, self.n_post, side="post").astype(w.dtype)
        chunk = _LEARN_CHUNK if self.event_driven else 0
        learn = LearnSpec(chunk, self.width, self.width_in, select, active_words)
        spec = DelayedSpec(learn, signal_block, _GROUP_CHUNK)
        tables = (self.targets, self.indptr, self.sources, self.pre_idx, self.post_idx)
        return learn_delayed(spec, rule, tables, groups, delay, state, history, w, sent, post, dt)


def _incoming(post: np.ndarray, n_post: int) -> tuple[np.ndarray, int]:
    """The incoming-synapse table: row `j` lists the synapses onto postsynaptic neuron `j`
    (indices into the stored order, ascending), padded with `n_syn` to the largest in-degree;
    and that in-degree."""
    counts = np.bincount(post, minlength=n_post)
    width_in = int(counts.max()) if post.size else 0
    order = np.argsort(post, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)])
    by_post = post[order]
    sources = np.full((n_post, width_in), post.size, dtype=np.int32)
    sources[by_post, _ranks(by_post, start)] = order
    return sources, width_in


def _ranks(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The rank of each entry within its row (`rows` ascending, `start[r]` the position
    of row `r`'s first entry), computed in place: one array of `rows.size` at a time."""
    ranks = np.arange(rows.size)
    ranks -= start[rows]
    return ranks


class _Spec(NamedTuple):
    """The static layout of one event-driven delivery (hashable)."""

    tiers: tuple[int, ...]
    width: int
    n_syn: int
    w_per_synapse: bool
    mode: str  # "none", "scalar" or "synapse" delays


class _All:
    """The selection of every presynaptic neuron (`ALL`)."""

    def __repr__(self) -> str:
        return "jsyn.connectivity.ALL"


ALL = _All()


def _synapses(spec: _Spec, targets, indptr, signal, w, hook, idx):
    """The synapses of presynaptic neurons `idx` (every neuron for `None`; entries outside
    `[0, n_pre)` are padding), before they are added anywhere: `(post, syn, values)`, each
    of shape `(len(idx), width)`: the target of each synapse (`n_post`, out of range, in
    the padding slots of a row), its index into the per-synapse arrays (a valid index in
    padding slots; `None` when nothing per synapse is needed: scalar weights, no
    per-synapse delays, no hook) and the weighted signal it carries (zero for padding
    entries, which read the last neuron's row), passed through `hook(values, syn, pre)`
    when one is given (`pre`, shape `(len(idx), 1)`: each row's presynaptic neuron)."""
    if idx is None:
        row = jnp.arange(signal.shape[0], dtype=indptr.dtype)
        post, vals, start = targets, signal, indptr[:-1]
    else:
        # Padding entries read the last row with a zero signal: they add zeros.
        n_pre = targets.shape[0]
        valid = idx.astype(jnp.uint32) < n_pre  # negative entries wrap round, out of range
        row = jnp.where(valid, idx, n_pre - 1)
        post = targets.at[row].get(mode="promise_in_bounds")
        vals = jnp.where(valid, signal.at[row].get(mode="promise_in_bounds"), 0)
        start = indptr.at[row].get(mode="promise_in_bounds")
    syn = None
    if spec.w_per_synapse or spec.mode == "synapse" or hook is not None:
        # Padding slots of a row point past its synapses; their target is n_post, an
        # out-of-range index that the scatters drop, so any valid index serves.
        syn = jnp.minimum(
            start[:, None] + jnp.arange(spec.width, dtype=start.dtype)[None, :], spec.n_syn - 1
        )
    v = vals[:, None] * (w[syn] if spec.w_per_synapse else w)
    if hook is not None:
        v = hook(v, syn, row[:, None])
    return post, syn, v


_SCATTER_1D = jax.lax.ScatterDimensionNumbers(
    update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,)
)


def _gathered(spec: _Spec, targets, indptr, signal, w, rows, rows_next, frac, into, hook, idx):
    """Scatter the synapses of presynaptic neurons `idx` (all of them for `None`)."""
    post, syn, v = _synapses(spec, targets, indptr, signal, w, hook, idx)
    if spec.mode == "none":  # the targets are >= 0: no wrapping of negative indices
        return jax.lax.scatter_add(
            into,
            post.reshape(-1, 1),
            jnp.broadcast_to(v, post.shape).reshape(-1),
            _SCATTER_1D,
            mode=jax.lax.GatherScatterMode.FILL_OR_DROP,
        )
    if spec.mode == "synapse":
        rows, rows_next, frac = rows[syn], rows_next[syn], frac[syn]
    into = into.at[rows, post].add((1.0 - frac) * v, mode="drop")
    return into.at[rows_next, post].add(frac * v, mode="drop")


_WORD = 32  # neurons per word of the bit mask of active neurons


def _pack(flags) -> UInt32[Array, " words"]:
    """Boolean flags (shape `(n,)`) as words of 32 bits: bit `j` of word `b` is flag
    `32 b + j` (the last word padded with zeros)."""
    n_words = -(-flags.shape[0] // _WORD)
    flags = jnp.pad(flags, (0, n_words * _WORD - flags.shape[0])).reshape(n_words, _WORD)
    bits = jnp.uint32(1) << jnp.arange(_WORD, dtype=jnp.uint32)[None, :]
    return jnp.sum(jnp.where(flags, bits, jnp.uint32(0)), axis=1, dtype=jnp.uint32)


def active_words(signal) -> UInt32[Array, " words"]:
    """The nonzero entries of `signal` (shape `(n,)`) as a bit mask: bit `j` of word `b`
    is set where `signal[32 b + j] != 0`."""
    return _pack(signal != 0)


def _compact(words, first, cap: int, fill: int) -> Int[Array, " cap"]:
    """The set bits of `words`, bit `j` of word `b` standing for the item
    `32 first[b] + j`, as the first `cap` items in ascending order (`first` ascending),
    padded with `fill`. Each set bit's slot is the number of set bits before it: those of
    the earlier words (a prefix sum) and those below it in its own word (a popcount)."""
    j = jnp.arange(_WORD, dtype=jnp.uint32)[None, :]
    count = jax.lax.population_count(words).astype(jnp.int32)
    before = jnp.cumsum(count) - count
    words = words[:, None]
    below = jax.lax.population_count(words & ((jnp.uint32(1) << j) - 1)).astype(jnp.int32)
    slot = jnp.where((words >> j) & 1 != 0, before[:, None] + below, cap)
    item = first[:, None] * _WORD + j.astype(jnp.int32)
    out = jnp.full((cap,), fill, jnp.int32)
    return out.at[slot.reshape(-1)].set(item.reshape(-1), mode="drop")


def select(signal, cap: int, *, words=None) -> Int[Array, " cap"]:
    """The indices of the nonzero entries of `signal` (shape `(n,)`), ascending, in `cap`
    slots padded with `n` (out of range); all of them when there are at most `cap`.

    From the bit mask of the active neurons (`words`, `active_words(signal)` unless
    given), in two levels: the first `cap` words that hold an active neuron, found from a
    bit mask of the nonzero words, then the neurons of those words. Each level places
    every set bit at its rank, a prefix sum over the words plus a popcount within its
    word, and scatters it there: no sort, no `top_k`, and work in proportion to
    `n / 32 + 32 cap`."""
    n = signal.shape[0]
    words = active_words(signal) if words is None else words
    n_words = words.shape[0]
    if n_words <= cap:
        return _compact(words, jnp.arange(n_words, dtype=jnp.int32), cap, n)
    groups = _pack(words != 0)  # bit b: word b holds an active neuron
    chosen = _compact(groups, jnp.arange(groups.shape[0], dtype=jnp.int32), cap, n_words)
    return _compact(words.at[chosen].get(mode="fill", fill_value=0), chosen, cap, n)


def tier_index(signal, tiers: tuple[int, ...], *, words=None):
    """The index of the smallest capacity in `tiers` that holds the nonzero entries of
    `signal` (the last tier holds every neuron); from its bit mask `words` if given."""
    if words is None:
        n_active = jnp.count_nonzero(signal)
    else:
        n_active = jnp.sum(jax.lax.population_count(words).astype(jnp.int32))
    return jnp.sum(n_active > jnp.asarray(tiers[:-1], n_active.dtype)).astype(jnp.int32)


def tier_branches(body, tiers: tuple[int, ...]) -> tuple:
    """The branches of `by_tier`: for each capacity in `tiers`, a function of
    `(signal, words, *operands)` that runs `body(idx, *operands)` on the selection of up
    to that many active neurons (`select`), the last one on `ALL`."""

    def tier(cap):
        def run(signal, words, *operands):
            return body(select(signal, cap, words=words), *operands)

        return run

    def everything(signal, words, *operands):
        return body(ALL, *operands)

    return (*(tier(cap) for cap in tiers[:-1]), everything)


def by_tier(signal, tiers: tuple[int, ...], branches: tuple, *operands):
    """The event-driven tier switch: `body(idx, *operands)` (see `tier_branches`, which
    builds `branches` from `body`) run once, on the active neurons of `signal` (its
    nonzero entries) selected at the smallest capacity in `tiers` that holds them, or on
    `ALL` at the last tier. One bit mask, one count, one `jax.lax.switch`; used by
    `Sparse.deliver` and by a `jsyn.Network`, which selects a group's spiking cells once
    for all the projections leaving it."""
    if len(tiers) == 1:
        return branches[0](signal, None, *operands)
    words = active_words(signal)
    index = tier_index(signal, tiers, words=words)
    return jax.lax.switch(index, branches, signal, words, *operands)


@functools.lru_cache(maxsize=256)
def _branches(spec: _Spec) -> tuple:
    """`Sparse`'s tier branches (cached, so that JAX's caches recognise them call after
    call)."""

    def body(idx, targets, indptr, signal, w, rows, rows_next, frac, into, hook):
        args = (targets, indptr, signal, w, rows, rows_next, frac, into, hook)
        return _gathered(spec, *args, idx=None if idx is ALL else idx)

    return tier_branches(body, spec.tiers)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _deliver(spec: _Spec, targets, indptr, signal, w, rows, rows_next, frac, into, hook, idx):
    args = (targets, indptr, signal, w, rows, rows_next, frac, into, hook)
    if idx is not None:
        return _gathered(spec, *args, idx=idx)
    return by_tier(signal, spec.tiers, _branches(spec), *args)


@_deliver.defjvp
def _deliver_jvp(spec, primals, tangents):
    out = _deliver(spec, *primals)
    # The tangent over every synapse: the dense product's derivative, silent neurons and
    # all (linear in the tangents, so reverse mode transposes it). The selection is an
    # integer input without tangent.
    _, t_out = jax.jvp(lambda *a: _gathered(spec, *a, idx=None), primals[:-1], tangents[:-1])
    return out, t_out
