r"""Event-driven steps of `jsyn.RewardSTDP` on `jsyn.Sparse` (see `Sparse.learn_reward`).

The weights are kept lazily. Between its events a synapse's eligibility only decays,
$c_n = c_{n_0} a^{n - n_0}$ ($a = e^{-\Delta t/\tau_c}$), so its weight after step $n$ is

$$w_n = \mathrm{clip}\big(w_{n_0} + \hat c\,(T_n - T_{n_0})\big)
= \mathrm{clip}(b + \hat c\,T_n), \qquad b = w_{n_0} - \hat c\,T_{n_0},$$
$$T_n = \sum_{k \le n} \Delta t\,d_k\,A_k, \quad A_k = a^{k - k_0},\quad \hat c = c_n / A_n,$$

with $T$ kept per postsynaptic neuron (its concentration $d$) from the origin $k_0$ of
the current epoch, and per synapse only $b$ and $\hat c$. One clip at the end equals the
rule's clip at every step while the weight moves one way: $d_k \ge 0$ and $\hat c$ of one
sign between events. A synapse with an event in step $n$ is first brought to $n - 1$
($w_{n-1} = \mathrm{clip}(b + \hat c\,T_{n-1})$), its eligibility jumps, and
$b \leftarrow w_{n-1} - \hat c\,T_{n-1}$ with the new $\hat c$; the weight update of step
$n$ is then the lazy one. Every synapse is brought up to date (one pass over all of them)
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
from ._learn import LearnSpec, event_passes, synapse_rows

_EPOCH = 0.5  # a new epoch when the decay since its origin falls below this


def _touch(spec, side, idx, rule, tables, traces, T_prev, A, pre, post, signal, carry):
    """Bring the synapses of neurons `idx` of `side` (all for `None`) with an event to the
    end of the last step, then apply this step's jump of their eligibility (depression at
    a pre event, potentiation at a post spike); the pre side also adds `signal` times the
    weights of the last step to `drive`."""
    b, c, drive = carry
    syn, read, i, j = synapse_rows(spec, tables, side, idx)

    def at(x):  # a per-synapse parameter at the synapses read here; a scalar as is
        return jnp.reshape(x, ()) if jnp.size(x) == 1 else jnp.ravel(x)[read]

    lo, hi = at(resolve(rule.w_min, b)), at(resolve(rule.w_max, b))
    c_syn, T_now = c[read], T_prev[j]
    w_prev = jnp.clip(b[read] + c_syn * T_now, lo, hi)
    if side == "pre":
        x = pre[i]
        jump = -at(resolve(rule.A_minus, b)) * traces.a_post[j] * x
        if signal is not None:
            target = jnp.where(syn < b.shape[0], j, drive.shape[0])  # padding: dropped
            drive = drive.at[target].add(signal[i] * w_prev, mode="drop")
    else:
        x = post[j]
        jump = at(resolve(rule.A_plus, b)) * traces.a_pre[i] * x
    c_new = c_syn + jump / A
    syn = jnp.where(x != 0, syn, b.shape[0])  # untouched synapses: dropped
    b = b.at[syn].set(w_prev - c_new * T_now, mode="drop")
    return b, c.at[syn].set(c_new, mode="drop"), drive


def _jump(traces, x, side):
    """The pair traces after the events `x` of `side` (all-to-all: each adds 1)."""
    name = "a_pre" if side == "pre" else "a_post"
    return dataclasses.replace(traces, **{name: getattr(traces, name) + x})


def _both_sides(spec, rule, tables, traces, b, c, T_prev, A, pre, post, signal):
    """The pre events, then the post spikes, on the synapses of the neurons with one."""
    drive = None if signal is None else jnp.zeros((tables[2].shape[0],), b.dtype)
    args = (rule, tables, traces, T_prev, A, pre, post, signal)
    touch = functools.partial(_touch, spec, "pre")
    b, c, drive = event_passes(spec, pre, lambda idx, cy: touch(idx, *args, cy), (b, c, drive))
    traces = _jump(traces, pre, "pre")
    args = (rule, tables, traces, T_prev, A, pre, post, None)
    touch = functools.partial(_touch, spec, "post")
    b, c, _ = event_passes(spec, post, lambda idx, cy: touch(idx, *args, cy), (b, c, None))
    return _jump(traces, post, "post"), b, c, drive


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def touch_events(spec: LearnSpec, rule, tables, traces, b, c, T_prev, A, pre, post, signal):
    """This step's events on the lazy weights, event-driven: `(traces, b, c, drive)` with
    the traces after the jumps (given decayed)."""
    return _both_sides(spec, rule, tables, traces, b, c, T_prev, A, pre, post, signal)


@touch_events.defjvp
def _touch_events_jvp(spec, primals, tangents):
    out = touch_events(spec, *primals)
    # The tangent of the same step over every synapse (the untouched ones kept by a mask),
    # linear in the tangents, so reverse mode transposes it.
    dense = spec._replace(chunk=0)
    _, t_out = jax.jvp(functools.partial(_both_sides, dense), primals, tangents)
    return out, t_out


def brought_up_to_date(rule, post_idx, state):
    """Every synapse brought to the end of the last step: a new epoch ($A = 1$, $T = 0$)."""
    lo, hi = resolve(rule.w_min, state.b), resolve(rule.w_max, state.b)
    w = jnp.clip(state.b + state.c * state.T[post_idx], lo, hi)
    one = jnp.ones_like(state.A)
    return dataclasses.replace(state, b=w, c=state.c * state.A, T=jnp.zeros_like(state.T), A=one)


@jax.custom_jvp
def renewed(rule, post_idx, state, need):
    """`state` brought up to date (`brought_up_to_date`) where `need`, else as is. A while
    loop run once or never: it updates the per-synapse arrays in place, where a `cond`
    would copy them into and out of its branches every step."""

    def body(carry):
        return jnp.zeros_like(carry[0]), brought_up_to_date(rule, post_idx, carry[1])

    return jax.lax.while_loop(lambda carry: carry[0], body, (need, state))[1]


@renewed.defjvp
def _renewed_jvp(primals, tangents):
    rule, post_idx, state, need = primals
    t_rule, _, t_state, _ = tangents

    def by_cond(rule, state):  # the same, with a cond (reverse mode transposes it)
        return jax.lax.cond(need, brought_up_to_date, lambda r, p, s: s, rule, post_idx, state)

    return renewed(*primals), jax.jvp(by_cond, (rule, state), (t_rule, t_state))[1]


def learn_reward(spec: LearnSpec, rule, tables, state, pre, post, d, dt, signal):
    """One step of `rule` on its lazy state (see the module): `(state, drive)`."""
    post_idx = tables[4]
    dtype = state.b.dtype
    dt = jnp.asarray(dt, dtype)
    d = jnp.broadcast_to(jnp.asarray(d, dtype), state.T.shape)
    negative = jnp.any(d < 0)
    state = renewed(rule, post_idx, state, negative)
    A = kin.decayed(state.A, dt, resolve(rule.tau_c, state.A))
    T = state.T + dt * d * A
    traces = state.traces
    traces = dataclasses.replace(
        traces,
        a_pre=kin.decayed(traces.a_pre, dt, resolve(rule.tau_pre, dt)),
        a_post=kin.decayed(traces.a_post, dt, resolve(rule.tau_post, dt)),
    )
    traces, b, c, drive = touch_events(
        spec, rule, tables, traces, state.b, state.c, state.T, A, pre, post, signal
    )
    state = dataclasses.replace(state, traces=traces, b=b, c=c, T=T, A=A)
    return renewed(rule, post_idx, state, negative | (A < _EPOCH)), drive
