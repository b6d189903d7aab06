"""Event-driven steps of all-to-all trace rules on `jsyn.Sparse` (see `Sparse.learn`)."""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._params import resolve

_WORD = 32  # entries per word of a bit mask (`jsyn.connectivity.sparse.active_words`)


class LearnSpec(NamedTuple):
    """The static layout of an event-driven plasticity step (hashable)."""

    chunk: int  # neurons per pass over the events (0: one pass over every synapse)
    width: int  # the largest out-degree (row length of `targets`)
    width_in: int  # the largest in-degree (row length of `sources`)
    select: Callable  # (signal, cap, words=) -> the indices of up to cap nonzero entries
    words: Callable  # signal -> its bit mask of nonzero entries (`select`'s `words`)


def synapse_rows(spec: LearnSpec, tables, side: str, idx):
    """The synapses of the neurons `idx` of `side` (every synapse for `None`; an index past
    the last neuron is padding): their indices (padding: `n_syn`, which the scatters drop),
    those indices clamped for reading, and each synapse's presynaptic and postsynaptic
    neuron (clamped)."""
    targets, indptr, sources, pre_idx, post_idx = tables
    n_syn = pre_idx.shape[0]
    if idx is None:
        syn = jnp.arange(n_syn)
        return syn, syn, pre_idx, post_idx
    if side == "pre":
        n = targets.shape[0]
        real = jnp.minimum(idx, n - 1)
        start = indptr[real][:, None]
        count = jnp.where(idx < n, indptr[real + 1] - indptr[real], 0)[:, None]
        k = jnp.arange(spec.width, dtype=start.dtype)[None, :]
        syn = jnp.where(k < count, start + k, n_syn)
        post = jnp.minimum(targets[real], sources.shape[0] - 1)  # padding: n_post
        return syn, jnp.minimum(syn, n_syn - 1), jnp.broadcast_to(real[:, None], syn.shape), post
    n = sources.shape[0]
    real = jnp.minimum(idx, n - 1)
    syn = jnp.where((idx < n)[:, None], sources[real], n_syn)
    read = jnp.minimum(syn, n_syn - 1)
    return syn, read, pre_idx[read], jnp.broadcast_to(real[:, None], syn.shape)


def update_synapses(rule, side: str, found, w, drive, traces, event, post_spikes, carried):
    """The weights after the events of one side at the synapses `found` (`(syn, read, j)`
    of `synapse_rows`: their indices, `n_syn` for padding, which the scatter drops; those
    indices clamped for reading; their postsynaptic neurons), with `traces` the traces each
    synapse sees and `event` its event (a pre event, or its neuron's post spike). A synapse
    is clipped once, after both sides: the presynaptic side leaves unclipped the synapses
    onto neurons that spike in this step (`post_spikes`, at each synapse), which the
    postsynaptic side then clips (with `rule.clip_each_event`, each side clips what it
    touches). The presynaptic side also adds `carried` (the signal each synapse transmits
    in this step, or `None`) times the weights it reads, those at the start of the step,
    to `drive` at their postsynaptic neurons. Returns `(w, drive)`."""
    syn, read, j = found

    def at(x):
        # a per-synapse parameter, resolved like the synapses read here (which may carry
        # more axes than the one of the synapses), read at those synapses; a scalar as is
        if jnp.size(x) == 1:
            return jnp.reshape(x, ())
        return jnp.ravel(x)[read]

    w_syn = w[read]
    lo, hi = at(resolve(rule.w_min, w)), at(resolve(rule.w_max, w))
    if side == "pre":
        if carried is not None:
            target = jnp.where(syn < w.shape[0], j, drive.shape[0])  # padding: dropped
            drive = drive.at[target].add(carried * w_syn, mode="drop")
        new = rule.depress(w_syn, event, traces, at)
        if not rule.clip_each_event:
            new = jnp.where(post_spikes != 0, new, jnp.clip(new, lo, hi))
        else:
            new = jnp.clip(new, lo, hi)
    else:
        new = jnp.clip(rule.potentiate(w_syn, event, traces, at), lo, hi)
    return w.at[syn].set(new, mode="drop"), drive


def _side(spec: LearnSpec, side: str, idx, rule, tables, state, w, drive, pre, post, signal):
    """Apply the events of one side to the synapses of neurons `idx` (all for `None`), each
    synapse reading its neurons' traces (`update_synapses`); the presynaptic side also
    transmits `signal` (when given)."""
    syn, read, i, j = synapse_rows(spec, tables, side, idx)
    traces = rule.at_synapses(state, i, j)
    event = pre[i] if side == "pre" else post[j]
    carried = None if signal is None else signal[i]
    return update_synapses(rule, side, (syn, read, j), w, drive, traces, event, post[j], carried)


def event_passes(spec: LearnSpec, events, apply, carry):
    """Apply the events of one side, `apply(idx, carry) -> carry` on the neurons `idx`
    with an event (a nonzero entry of `events`), up to `chunk` of them per pass (picked by
    `select`, delivery's selection; slots beyond the events are padding, an index past the
    last neuron), as many passes as it takes (none in a step without events; every neuron,
    however many spike: no event is dropped); with `chunk` 0, one pass over every synapse
    (`idx=None`). The passes run in a while loop, whose carry (the weights) is updated in
    place (a switch between capacity tiers would copy it every step). The bit mask of the
    events left is built once and the bits of each pass cleared, so that a pass costs its
    events, not the length of `events`."""
    if spec.chunk == 0:
        return apply(None, carry)
    n = events.shape[0]
    chunk = min(spec.chunk, n)

    def one_pass(loop):
        k, carry, left, words = loop
        idx = spec.select(left, chunk, words=words)
        idx = jnp.where(left[idx] != 0, idx, n)  # slots beyond the events: padding
        carry = apply(idx, carry)
        # clear the bits of `idx` (each set once): subtract them, modulo 2**32
        word = jnp.where(idx < n, idx // _WORD, words.shape[0])
        bit = jnp.left_shift(jnp.uint32(1), (idx % _WORD).astype(jnp.uint32))
        words = words.at[word].add(jnp.uint32(0) - bit, mode="drop")
        return k + 1, carry, left.at[idx].set(0, mode="drop"), words

    count = jnp.count_nonzero(events)
    init = (0, carry, events, spec.words(events))
    _, carry, _, _ = jax.lax.while_loop(lambda c: c[0] * chunk < count, one_pass, init)
    return carry


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def learn_events(spec: LearnSpec, rule, tables, state, w, pre, post, dt, signal):
    """The rule's step on traces kept per neuron, event-driven: `(state, w, drive)`, with
    `drive` the transmission of `signal` (`None` without one)."""
    drive = None if signal is None else jnp.zeros((tables[2].shape[0],), w.dtype)
    decayed = rule.decay(state, dt, w)

    def pre_side(idx, carry):
        return _side(spec, "pre", idx, rule, tables, decayed, *carry, pre, post, signal)

    w, drive = event_passes(spec, pre, pre_side, (w, drive))
    jumped = rule.jump(decayed, pre, "pre")

    def post_side(idx, carry):
        return _side(spec, "post", idx, rule, tables, jumped, *carry, pre, post, None)

    w, _ = event_passes(spec, post, post_side, (w, None))
    return rule.jump(jumped, post, "post"), w, drive


def _dense(rule, tables, state, w, pre, post, dt, signal):
    """The same step over every synapse: the rule's own per-synapse step, with each
    synapse reading its neurons' traces, and the dense product of the signal."""
    _, _, sources, pre_idx, post_idx = tables
    drive = None
    if signal is not None:
        drive = jax.ops.segment_sum(signal[pre_idx] * w, post_idx, num_segments=sources.shape[0])
    state = rule.decay(state, dt, w)
    w = rule.depress(w, pre[pre_idx], rule.at_synapses(state, pre_idx, post_idx))
    if rule.clip_each_event:
        w = rule.clip(w)
    state = rule.jump(state, pre, "pre")
    w = rule.potentiate(w, post[post_idx], rule.at_synapses(state, pre_idx, post_idx))
    return rule.jump(state, post, "post"), rule.clip(w), drive


@learn_events.defjvp
def _learn_events_jvp(spec, primals, tangents):
    out = learn_events(spec, *primals)
    # The tangent of the dense step (every synapse, silent neurons included), linear in the
    # tangents, so reverse mode transposes it.
    _, t_out = jax.jvp(_dense, primals, tangents)
    return out, t_out
