r"""Event-driven steps of `jsyn.RewardSTDP` on `jsyn.Sparse` (see `Sparse.learn_reward`).

The weights are kept lazily. Between its events a synapse's eligibility only decays,
$c_n = c_{n_0} a^{n - n_0}$ ($a = e^{-\Delta t/\tau_c}$), so its weight after step $n$ is

$$w_n = \mathrm{clip}\big(w_{n_0} + \hat c\,(T_n - T_{n_0})\big), \qquad
T_n = \sum_{k \le n} \Delta t\,d_k\,A_k, \quad A_k = a^{k - k_0},\quad \hat c = c_n / A_n,$$

with $T$ kept per postsynaptic neuron (its concentration $d$) from the origin $k_0$ of
the current epoch. One clip at the end equals the rule's clip at every step while the
weight moves one way: $d_k \ge 0$ and $\hat c$ of one sign between events. A synapse with
an event in step $n$ is first brought to $n - 1$ ($w_{n_0} \leftarrow w_{n-1}$,
$T_{n_0} \leftarrow T_{n-1}$), then its eligibility jumps; the weight update of step $n$
is then the lazy one. Every synapse is brought up to date (one pass over all of them)
when $A$ falls below 1/2 (a new epoch, so that $\hat c$ and $T$ stay well scaled), and
before and after a step in which some concentration is negative, so the result equals the
rule's dense step to rounding for any $d$.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from .. import _kinetics as kin
from .._params import resolve
from ._learn import LearnSpec, over_events, synapses_of

_EPOCH = 0.5  # a new epoch when the decay since its origin falls below this


def _touch(spec, side, idx, rule, tables, traces, T_prev, A, pre, post, signal, carry):
    """Bring the synapses of neurons `idx` of `side` (all for `None`) with an event to the
    end of the last step, then apply this step's jump of their eligibility (depression at
    a pre event, potentiation at a post spike); the pre side also adds `signal` times the
    weights of the last step to `drive`."""
    w0, c, T0, drive = carry
    syn, read, i, j = synapses_of(spec, tables, side, idx)

    def at(x):  # a per-synapse parameter at the synapses read here; a scalar as is
        return jnp.reshape(x, ()) if jnp.size(x) == 1 else jnp.ravel(x)[read]

    lo, hi = at(resolve(rule.w_min, w0)), at(resolve(rule.w_max, w0))
    c_syn, T_now = c[read], T_prev[j]
    w_prev = jnp.clip(w0[read] + c_syn * (T_now - T0[read]), lo, hi)
    if side == "pre":
        x = pre[i]
        jump = -at(resolve(rule.A_minus, w0)) * traces.a_post[j] * x
        if signal is not None:
            target = jnp.where(syn < w0.shape[0], j, drive.shape[0])  # padding: dropped
            drive = drive.at[target].add(signal[i] * w_prev, mode="drop")
    else:
        x = post[j]
        jump = at(resolve(rule.A_plus, w0)) * traces.a_pre[i] * x
    hit = x != 0
    syn = jnp.where(hit, syn, w0.shape[0])  # untouched synapses: dropped
    w0 = w0.at[syn].set(w_prev, mode="drop")
    T0 = T0.at[syn].set(jnp.broadcast_to(T_now, syn.shape), mode="drop")
    c = c.at[syn].set(c_syn + jump / A, mode="drop")
    return w0, c, T0, drive


def _jump(traces, x, side):
    """The pair traces after the events `x` of `side` (all-to-all: each adds 1)."""
    name = "a_pre" if side == "pre" else "a_post"
    return dataclasses.replace(traces, **{name: getattr(traces, name) + x})


def _both_sides(spec, rule, tables, traces, w0, c, T0, T_prev, A, pre, post, signal):
    """The pre events, then the post spikes, on the synapses of the neurons with one."""
    drive = None if signal is None else jnp.zeros((tables[2].shape[0],), w0.dtype)
    args = (rule, tables, traces, T_prev, A, pre, post, signal)
    touch = functools.partial(_touch, spec, "pre")
    w0, c, T0, drive = over_events(
        spec, pre, lambda idx, cy: touch(idx, *args, cy), (w0, c, T0, drive)
    )
    traces = _jump(traces, pre, "pre")
    args = (rule, tables, traces, T_prev, A, pre, post, None)
    touch = functools.partial(_touch, spec, "post")
    w0, c, T0, _ = over_events(spec, post, lambda idx, cy: touch(idx, *args, cy), (w0, c, T0, None))
    return _jump(traces, post, "post"), w0, c, T0, drive


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def touch_events(spec: LearnSpec, rule, tables, traces, w0, c, T0, T_prev, A, pre, post, signal):
    """This step's events on the lazy weights, event-driven: `(traces, w0, c, T0, drive)`
    with the traces after the jumps (given decayed)."""
    return _both_sides(spec, rule, tables, traces, w0, c, T0, T_prev, A, pre, post, signal)


@touch_events.defjvp
def _touch_events_jvp(spec, primals, tangents):
    out = touch_events(spec, *primals)
    # The tangent of the same step over every synapse (the untouched ones kept by a mask),
    # linear in the tangents, so reverse mode transposes it.
    dense = LearnSpec(0, spec.width, spec.width_in, spec.select)
    _, t_out = jax.jvp(functools.partial(_both_sides, dense), primals, tangents)
    return out, t_out


def brought_up_to_date(rule, post_idx, state):
    """Every synapse brought to the end of the last step: a new epoch ($A = 1$, $T = 0$)."""
    lo, hi = resolve(rule.w_min, state.w0), resolve(rule.w_max, state.w0)
    w = jnp.clip(state.w0 + state.c * (state.T[post_idx] - state.T0), lo, hi)
    zero = jnp.zeros_like(state.T0)
    return dataclasses.replace(
        state,
        w0=w,
        c=state.c * state.A,
        T0=zero,
        T=jnp.zeros_like(state.T),
        A=jnp.ones_like(state.A),
    )


def learn_reward(spec: LearnSpec, rule, tables, state, pre, post, d, dt, signal):
    """One step of `rule` on its lazy state (see the module): `(state, drive)`."""
    post_idx = tables[4]
    dtype = state.w0.dtype
    dt = jnp.asarray(dt, dtype)
    d = jnp.broadcast_to(jnp.asarray(d, dtype), state.T.shape)
    negative = jnp.any(d < 0)

    def renew(s):
        return brought_up_to_date(rule, post_idx, s)

    state = jax.lax.cond(negative, renew, lambda s: s, state)
    A = kin.decayed(state.A, dt, resolve(rule.tau_c, state.A))
    T = state.T + dt * d * A
    traces = state.traces
    traces = dataclasses.replace(
        traces,
        a_pre=kin.decayed(traces.a_pre, dt, resolve(rule.tau_pre, dt)),
        a_post=kin.decayed(traces.a_post, dt, resolve(rule.tau_post, dt)),
    )
    traces, w0, c, T0, drive = touch_events(
        spec, rule, tables, traces, state.w0, state.c, state.T0, state.T, A, pre, post, signal
    )
    state = dataclasses.replace(state, traces=traces, w0=w0, c=c, T0=T0, T=T, A=A)
    state = jax.lax.cond(negative | (A < _EPOCH), renew, lambda s: s, state)
    return state, drive
