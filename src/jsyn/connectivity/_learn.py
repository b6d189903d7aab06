"""Event-driven steps of all-to-all trace rules on `jsyn.Sparse` (see `Sparse.learn`)."""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._params import resolve


class LearnSpec(NamedTuple):
    """The static layout of an event-driven plasticity step (hashable)."""

    pre_tiers: tuple[int, ...]  # capacity tiers of presynaptic events, the last n_pre
    post_tiers: tuple[int, ...]  # of postsynaptic spikes, the last n_post
    width: int  # the largest out-degree (row length of `targets`)
    width_in: int  # the largest in-degree (row length of `sources`)
    select: Callable  # (signal, cap) -> the indices of up to cap nonzero entries


def _rows(spec: LearnSpec, tables, side: str, idx):
    """The synapses of the neurons `idx` of `side` (every synapse for `None`): their indices
    (padding: `n_syn`, which the scatters drop), those indices clamped for reading, and each
    synapse's presynaptic and postsynaptic neuron."""
    targets, indptr, sources, pre_idx, post_idx = tables
    n_syn = pre_idx.shape[0]
    if idx is None:
        syn = jnp.arange(n_syn)
        return syn, syn, pre_idx, post_idx
    if side == "pre":
        start = indptr[idx][:, None]
        k = jnp.arange(spec.width, dtype=start.dtype)[None, :]
        syn = jnp.where(k < indptr[idx + 1][:, None] - start, start + k, n_syn)
        read = jnp.minimum(syn, n_syn - 1)
        # A padding entry's post neuron is n_post, past the end: read it clamped (its update
        # is dropped).
        return syn, read, jnp.broadcast_to(idx[:, None], syn.shape), targets[idx]
    syn = sources[idx]
    read = jnp.minimum(syn, n_syn - 1)
    return syn, read, pre_idx[read], jnp.broadcast_to(idx[:, None], syn.shape)


def _side(spec: LearnSpec, side: str, idx, rule, tables, state, w, pre, post):
    """Apply the events of one side to the synapses of neurons `idx` (all for `None`).
    A synapse is clipped once, after both sides: the presynaptic side leaves unclipped the
    synapses onto neurons that spike in this step, which the postsynaptic side then clips."""
    syn, read, i, j = _rows(spec, tables, side, idx)
    n_post = post.shape[0]
    j = jnp.minimum(j, n_post - 1)

    def at(x):
        return x[read] if jnp.ndim(x) else x

    traces = rule.at_synapses(state, i, j)
    w_syn = w[read]
    lo, hi = at(resolve(rule.w_min, w)), at(resolve(rule.w_max, w))
    if side == "pre":
        new = rule.depress(w_syn, pre[i], traces, at)
        new = jnp.where(post[j] != 0, new, jnp.clip(new, lo, hi))
    else:
        new = jnp.clip(rule.potentiate(w_syn, post[j], traces, at), lo, hi)
    return w.at[syn].set(new, mode="drop")


@functools.lru_cache(maxsize=256)
def _branches(spec: LearnSpec, side: str) -> tuple:
    """One function per tier of `side` (cached, so that JAX's caches recognise them)."""
    tiers = spec.pre_tiers if side == "pre" else spec.post_tiers

    def tier(cap):
        def run(rule, tables, state, w, pre, post):
            events = pre if side == "pre" else post
            idx = spec.select(events, cap)
            return _side(spec, side, idx, rule, tables, state, w, pre, post)

        return run

    def everything(*args):
        return _side(spec, side, None, *args)

    return (*(tier(cap) for cap in tiers[:-1]), everything)


def _switch(spec: LearnSpec, side: str, events, *args):
    tiers = spec.pre_tiers if side == "pre" else spec.post_tiers
    if len(tiers) == 1:
        return _side(spec, side, None, *args)
    n = jnp.count_nonzero(events)
    branch = jnp.sum(n > jnp.asarray(tiers[:-1], n.dtype)).astype(jnp.int32)
    return jax.lax.switch(branch, _branches(spec, side), *args)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def learn_events(spec: LearnSpec, rule, tables, state, w, pre, post, dt):
    """The rule's step on traces kept per neuron, event-driven: `(state, w)`."""
    state = rule.decay(state, dt, w)
    w = _switch(spec, "pre", pre, rule, tables, state, w, pre, post)
    state = rule.jump(state, pre, "pre")
    w = _switch(spec, "post", post, rule, tables, state, w, pre, post)
    return rule.jump(state, post, "post"), w


def _dense(rule, tables, state, w, pre, post, dt):
    """The same step over every synapse: the rule's own per-synapse step, with each
    synapse reading its neurons' traces."""
    _, _, _, pre_idx, post_idx = tables
    state = rule.decay(state, dt, w)
    w = rule.depress(w, pre[pre_idx], rule.at_synapses(state, pre_idx, post_idx))
    state = rule.jump(state, pre, "pre")
    w = rule.potentiate(w, post[post_idx], rule.at_synapses(state, pre_idx, post_idx))
    return rule.jump(state, post, "post"), rule.clip(w)


@learn_events.defjvp
def _learn_events_jvp(spec, primals, tangents):
    out = learn_events(spec, *primals)
    # The tangent of the dense step (every synapse, silent neurons included), linear in the
    # tangents, so reverse mode transposes it.
    _, t_out = jax.jvp(_dense, primals, tangents)
    return out, t_out
