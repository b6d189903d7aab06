r"""Event-driven steps of all-to-all trace rules on `jsyn.Sparse` with one delay per
synapse (see `Sparse.learn_delayed`).

A synapse $s$ of delay $d_s = (k_s + f_s)\,\Delta t$ sees the spikes of its presynaptic
neuron $i$ shifted by its delay, $e_s(t) = (1 - f_s)\,x_i(t - k_s) + f_s\,x_i(t - k_s - 1)$.
An additive trace is linear in its spike train, so the trace the synapse sees is the
neuron's own trace (of the spikes as sent) read as far back, interpolated alike:
$a_s(t) = (1 - f_s)\,A_i(t - k_s) + f_s\,A_i(t - k_s - 1)$; for a trace that resets at a
spike (`pairing="nn_symm"`) this holds for whole steps ($f_s = 0$) only. So the traces
stay per neuron, with a short history of the presynaptic ones $A_i$ (one row per step),
and a step touches only the synapses that a spike reaches in it, found through groups of
the synapses by delay in whole steps and presynaptic neuron (`DelayGroups`, built from
concrete delays), or without them every synapse of the neurons whose spikes are still in
flight (sent within the last `max_delay`), each reading its own delay; and the synapses
onto the postsynaptic neurons that spike.
"""

import dataclasses
import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from ._learn import LearnSpec, event_passes, synapse_rows, update_synapses


class DelayedSpec(NamedTuple):
    """The static layout of an event-driven plasticity step with per-synapse delays."""

    learn: LearnSpec
    signal_block: int | None  # the block of the sent rows holding what is transmitted
    group_chunk: int  # groups per pass when the synapses are grouped by delay


class DelayGroups(eqx.Module):
    r"""The synapses of a `jsyn.Sparse` grouped by their delay in whole steps $k$ (the
    floor, `jsyn.Delay.steps`) and their presynaptic neuron $i$: group $g = k\,n_{pre} + i$
    holds the synapses `order[indptr[g]:indptr[g + 1]]` (indices into the stored order),
    at most `width` of them; `steps` is each synapse's $k$, `n_steps` the number of values
    $k$ may take. Built from concrete delays (`Sparse.delay_groups`); a step then visits
    only the groups whose spikes arrive in it."""

    order: Int[Array, " syn"]
    indptr: Int[Array, " groups_plus_1"]
    steps: Int[Array, " syn"]
    width: int = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)


def delay_groups(pre_idx, n_pre: int, steps, n_steps: int) -> DelayGroups:
    """`DelayGroups` of the synapses with presynaptic neurons `pre_idx` and delays of
    `steps` whole steps (concrete, in `[0, n_steps)`)."""
    pre, steps = np.asarray(pre_idx, np.int64), np.asarray(steps, np.int64)
    group = steps * n_pre + pre
    counts = np.bincount(group, minlength=n_steps * n_pre)
    return DelayGroups(
        order=jnp.asarray(np.argsort(group, kind="stable"), jnp.int32),
        indptr=jnp.asarray(np.concatenate([[0], np.cumsum(counts)]), jnp.int32),
        steps=jnp.asarray(steps, jnp.int32),
        width=int(counts.max()) if group.size else 0,
        n_steps=n_steps,
    )


def _at_delay(buffer, newest, back, k, f, column):
    r"""$(1 - f)\,b(t - k - \text{back}) + f\,b(t - k - \text{back} - 1)$ at `column` of
    the ring `buffer`, whose row `newest` holds step $t$."""
    n = buffer.shape[0]
    newer = (newest - k - back) % n
    return (1.0 - f) * buffer[newer, column] + f * buffer[(newer - 1) % n, column]


def _newest(ring) -> jax.Array:
    """The row of a pushed `jsyn.DelayState` that holds the latest step."""
    return (ring.pos - 1) % ring.n_slots


def _group_rows(groups: DelayGroups, tables, idx):
    """The synapses of the groups `idx` (an index past the last group is padding), as
    `synapse_rows` gives them: indices (`n_syn` for padding), clamped, and each one's
    presynaptic and postsynaptic neuron."""
    _, _, _, pre_idx, post_idx = tables
    n_syn, n_groups = pre_idx.shape[0], groups.indptr.shape[0] - 1
    real = jnp.minimum(idx, n_groups - 1)
    start = groups.indptr[real][:, None]
    count = jnp.where(idx < n_groups, groups.indptr[real + 1] - groups.indptr[real], 0)
    k = jnp.arange(groups.width, dtype=start.dtype)[None, :]
    at = jnp.minimum(start + k, n_syn - 1)
    syn = jnp.where(k < count[:, None], groups.order[at], n_syn)
    read = jnp.minimum(syn, n_syn - 1)
    return syn, read, pre_idx[read], post_idx[read]


def _arriving(groups: DelayGroups, sent, n_pre: int):
    """Which groups receive a spike in this step: neuron $i$ sent one $k$ or $k + 1$ steps
    ago (a fractional delay takes from both), flattened as the groups are numbered."""
    rows = (_newest(sent) - jnp.arange(groups.n_steps, dtype=sent.pos.dtype)) % sent.n_slots
    now = sent.buffer[rows, :n_pre] != 0
    return (now | (sent.buffer[(rows - 1) % sent.n_slots, :n_pre] != 0)).reshape(-1)


def _side(
    spec: DelayedSpec,
    side,
    idx,
    w,
    drive,
    *,
    rule,
    tables,
    groups,
    line,
    state,
    hist,
    sent,
    post,
    dt,
):
    """Apply the events of one side to the synapses of neurons `idx` (all for `None`), or
    on the presynaptic side with `groups`, of the groups `idx`: a synapse's pre event and
    presynaptic traces are read at its delay, from the spikes sent (`sent`) and the history
    of the neurons' presynaptic traces (`hist`)."""
    if side == "pre" and groups is not None and idx is not None:
        syn, read, i, j = _group_rows(groups, tables, idx)
    else:
        syn, read, i, j = synapse_rows(spec.learn, tables, side, idx)
    n_pre = tables[0].shape[0]
    k, f = line.steps(w, index=read)

    def pre_traces(back):
        return {
            name: _at_delay(hist.buffer, _newest(hist), back, k, f, p * n_pre + i)
            for p, name in enumerate(rule.pre_taus)
        }

    seen = rule.at_synapses(state, i, j)  # the postsynaptic traces; presynaptic ones below
    if side == "post":  # after the presynaptic jumps of the synapse's step
        seen = dataclasses.replace(seen, **pre_traces(0))
        return update_synapses(rule, side, (syn, read, j), w, drive, seen, post[j], post[j], None)
    before = rule.decay(dataclasses.replace(seen, **pre_traces(1)), dt, w)  # before the jump
    seen = dataclasses.replace(seen, **{name: getattr(before, name) for name in rule.pre_taus})
    event = _at_delay(sent.buffer, _newest(sent), 0, k, f, i)
    carried = None
    if spec.signal_block is not None:
        carried = _at_delay(sent.buffer, _newest(sent), 0, k, f, spec.signal_block * n_pre + i)
    return update_synapses(rule, side, (syn, read, j), w, drive, seen, event, post[j], carried)


def _step(spec: DelayedSpec, rule, tables, groups, line, state, hist, w, sent, post, dt):
    n_pre = tables[0].shape[0]
    spikes = sent.buffer[_newest(sent), :n_pre]
    state = rule.jump(rule.decay(state, dt, w), spikes, "pre")  # the traces of the spikes sent
    hist = hist.push(jnp.concatenate([getattr(state, name) for name in rule.pre_taus]))
    drive = None if spec.signal_block is None else jnp.zeros((tables[2].shape[0],), w.dtype)
    parts = dict(rule=rule, tables=tables, groups=groups, line=line, state=state, hist=hist)
    parts.update(sent=sent, post=post, dt=dt)
    if groups is None or spec.learn.chunk == 0:  # the neurons with a spike in flight
        pre_spec, events = spec.learn, jnp.any(sent.buffer[:, :n_pre] != 0, axis=0)
    else:  # the groups that a spike reaches now
        pre_spec = spec.learn._replace(chunk=spec.group_chunk)
        events = _arriving(groups, sent, n_pre)

    def side(name):
        return lambda idx, carry: _side(spec, name, idx, *carry, **parts)

    w, drive = event_passes(pre_spec, events.astype(w.dtype), side("pre"), (w, drive))
    w, _ = event_passes(spec.learn, post, side("post"), (w, None))
    return rule.jump(state, post, "post"), hist, w, drive


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def learn_delayed(spec: DelayedSpec, rule, tables, groups, line, state, hist, w, sent, post, dt):
    """The rule's step with one delay per synapse, traces per neuron, event-driven:
    `(state, hist, w, drive)` (see `Sparse.learn_delayed`)."""
    return _step(spec, rule, tables, groups, line, state, hist, w, sent, post, dt)


@learn_delayed.defjvp
def _learn_delayed_jvp(spec, primals, tangents):
    out = learn_delayed(spec, *primals)
    # The tangent of the same step over every synapse (silent neurons included), linear in
    # the tangents, so reverse mode transposes it.
    dense = spec._replace(learn=spec.learn._replace(chunk=0))
    _, t_out = jax.jvp(functools.partial(_step, dense), primals, tangents)
    return out, t_out
