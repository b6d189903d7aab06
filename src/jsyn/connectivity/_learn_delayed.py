r"""Event-driven steps of all-to-all trace rules on `jsyn.Sparse` with one delay per
synapse (see `Sparse.learn_delayed`).

A synapse $s$ of delay $d_s = (k_s + f_s)\,\Delta t$ sees the spikes of its presynaptic
neuron $i$ shifted by its delay, $e_s(t) = (1 - f_s)\,x_i(t - k_s) + f_s\,x_i(t - k_s - 1)$.
An additive trace is linear in its spike train, so the trace the synapse sees is the
neuron's own trace (of the spikes as sent) read as far back, interpolated alike:
$a_s(t) = (1 - f_s)\,A_i(t - k_s) + f_s\,A_i(t - k_s - 1)$; for a trace that resets at a
spike (`pairing="nn_symm"`) this holds for whole steps ($f_s = 0$) only. So the traces
stay per neuron, with a short history of the presynaptic ones $A_i$ (one row per step),
and a step touches only the synapses of the neurons whose spikes are still in flight (sent
within the last `max_delay`), each reading its own delay, and those onto the postsynaptic
neurons that spike.
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._learn import LearnSpec, event_passes, synapse_rows, update_synapses


class DelayedSpec(NamedTuple):
    """The static layout of an event-driven plasticity step with per-synapse delays."""

    learn: LearnSpec
    signal_block: int | None  # the block of the sent rows holding what is transmitted


def _at_delay(buffer, newest, back, k, f, column):
    r"""$(1 - f)\,b(t - k - \text{back}) + f\,b(t - k - \text{back} - 1)$ at `column` of
    the ring `buffer`, whose row `newest` holds step $t$."""
    n = buffer.shape[0]
    newer = (newest - k - back) % n
    return (1.0 - f) * buffer[newer, column] + f * buffer[(newer - 1) % n, column]


def _newest(ring) -> jax.Array:
    """The row of a pushed `jsyn.DelayState` that holds the latest step."""
    return (ring.pos - 1) % ring.n_slots


def _side(
    spec: DelayedSpec, side, idx, w, drive, *, rule, tables, line, state, hist, sent, post, dt
):
    """Apply the events of one side to the synapses of neurons `idx` (all for `None`): a
    synapse's pre event and presynaptic traces are read at its delay, from the spikes sent
    (`sent`) and the history of the neurons' presynaptic traces (`hist`)."""
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


def _step(spec: DelayedSpec, rule, tables, line, state, hist, w, sent, post, dt):
    n_pre = tables[0].shape[0]
    spikes = sent.buffer[_newest(sent), :n_pre]
    state = rule.jump(rule.decay(state, dt, w), spikes, "pre")  # the traces of the spikes sent
    hist = hist.push(jnp.concatenate([getattr(state, name) for name in rule.pre_taus]))
    in_flight = jnp.any(sent.buffer[:, :n_pre] != 0, axis=0).astype(w.dtype)
    drive = None if spec.signal_block is None else jnp.zeros((tables[2].shape[0],), w.dtype)
    parts = dict(rule=rule, tables=tables, line=line, state=state, hist=hist, sent=sent)
    parts.update(post=post, dt=dt)
    w, drive = event_passes(
        spec.learn, in_flight, functools.partial(_side, spec, "pre", **parts), w, drive
    )
    w, _ = event_passes(spec.learn, post, functools.partial(_side, spec, "post", **parts), w, None)
    return rule.jump(state, post, "post"), hist, w, drive


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def learn_delayed(spec: DelayedSpec, rule, tables, line, state, hist, w, sent, post, dt):
    """The rule's step with one delay per synapse, traces per neuron, event-driven:
    `(state, hist, w, drive)` (see `Sparse.learn_delayed`)."""
    return _step(spec, rule, tables, line, state, hist, w, sent, post, dt)


@learn_delayed.defjvp
def _learn_delayed_jvp(spec, primals, tangents):
    out = learn_delayed(spec, *primals)
    # The tangent of the same step over every synapse (silent neurons included), linear in
    # the tangents, so reverse mode transposes it.
    dense = spec._replace(learn=spec.learn._replace(chunk=0))
    _, t_out = jax.jvp(functools.partial(_step, dense), primals, tangents)
    return out, t_out
