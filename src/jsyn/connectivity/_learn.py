"""Event-driven steps of all-to-all trace rules on `jsyn.Sparse` (see `Sparse.learn`)."""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._params import resolve


class LearnSpec(NamedTuple):
    """The static layout of an event-driven plasticity step (hashable)."""

    chunk: int  # neurons per pass over the events (0: one pass over every synapse)
    width: int  # the largest out-degree (row length of `targets`)
    width_in: int  # the largest in-degree (row length of `sources`)
    select: Callable  # (signal, cap) -> the indices of up to cap nonzero entries


def synapses_of(spec: LearnSpec, tables, side: str, idx):
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


def _side(spec: LearnSpec, side: str, idx, rule, tables, state, w, drive, pre, post, signal):
    """Apply the events of one side to the synapses of neurons `idx` (all for `None`).
    A synapse is clipped once, after both sides: the presynaptic side leaves unclipped the
    synapses onto neurons that spike in this step, which the postsynaptic side then clips
    (with `rule.clip_each_event`, each side clips what it touches).
    The presynaptic side also adds `signal` times the weights it reads (those at the start
    of the step) to `drive`, the transmission of the step (when `signal` is given)."""
    syn, read, i, j = synapses_of(spec, tables, side, idx)

    def at(x):
        # a per-synapse parameter, resolved like the synapses read here (which may carry
        # more axes than the one of the synapses), read at those synapses; a scalar as is
        if jnp.size(x) == 1:
            return jnp.reshape(x, ())
        return jnp.ravel(x)[read]

    traces = rule.at_synapses(state, i, j)
    w_syn = w[read]
    lo, hi = at(resolve(rule.w_min, w)), at(resolve(rule.w_max, w))
    if side == "pre":
        if signal is not None:
            target = jnp.where(syn < w.shape[0], j, drive.shape[0])  # padding: dropped
            drive = drive.at[target].add(signal[i] * w_syn, mode="drop")
        new = rule.depress(w_syn, pre[i], traces, at)
        if not rule.clip_each_event:
            new = jnp.where(post[j] != 0, new, jnp.clip(new, lo, hi))
        else:
            new = jnp.clip(new, lo, hi)
    else:
        new = jnp.clip(rule.potentiate(w_syn, post[j], traces, at), lo, hi)
    return w.at[syn].set(new, mode="drop"), drive


def over_events(spec: LearnSpec, events, touch, carry):
    """Apply `touch(idx, carry) -> carry` to the neurons with an event: up to `chunk` of
    them per pass (picked by `select`, delivery's selection; an index past the last neuron
    is padding), as many passes as it takes (none in a step without events; every neuron,
    however many spike: no event is dropped); every neuron at once (`idx=None`) when
    `chunk` is 0. The passes run in a while loop, whose carry (the weights) is updated in
    place (a switch between capacity tiers would copy it every step)."""
    if spec.chunk == 0:
        return touch(None, carry)
    n = events.shape[0]
    chunk = min(spec.chunk, n)

    def one_pass(loop):
        k, carry, left = loop
        idx = spec.select(left, chunk)
        idx = jnp.where(left[idx] != 0, idx, n)  # slots beyond the events: padding
        return k + 1, touch(idx, carry), left.at[idx].set(0, mode="drop")

    count = jnp.count_nonzero(events)
    _, carry, _ = jax.lax.while_loop(lambda c: c[0] * chunk < count, one_pass, (0, carry, events))
    return carry


def _events(spec: LearnSpec, side: str, events, rule, tables, state, w, drive, *rest):
    """Apply the events of one side (see `over_events`)."""

    def touch(idx, carry):
        return _side(spec, side, idx, rule, tables, state, *carry, *rest)

    return over_events(spec, events, touch, (w, drive))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def learn_events(spec: LearnSpec, rule, tables, state, w, pre, post, dt, signal):
    """The rule's step on traces kept per neuron, event-driven: `(state, w, drive)`, with
    `drive` the transmission of `signal` (`None` without one)."""
    drive = None if signal is None else jnp.zeros((tables[2].shape[0],), w.dtype)
    state = rule.decay(state, dt, w)
    w, drive = _events(spec, "pre", pre, rule, tables, state, w, drive, pre, post, signal)
    state = rule.jump(state, pre, "pre")
    w, _ = _events(spec, "post", post, rule, tables, state, w, None, pre, post, None)
    return rule.jump(state, post, "post"), w, drive


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
