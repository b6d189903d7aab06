"""Clopath's voltage-based STDP against an event-by-event NumPy reference, the frequency
dependence of post-pre pairings on an AdEx cell (Clopath et al. 2010, Fig. 2), alone and
inside a `jsyn.Network` (the projection hands the rule the post group's potential), and its
amplitudes recovered from such a curve with `jsyn.fit`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1


def reference(pre, post, V, p, w):
    """The weights after the steps, by the documented step, in NumPy: the clamp, the
    filters, LTP, LTD and the trace at the pre events, the clip."""
    w = np.array(w, dtype=float)
    x = np.zeros_like(w)
    um = np.full_like(w, -70.6)
    up = np.full_like(w, -70.6)
    clamp = np.zeros_like(w)
    for t in range(pre.shape[0]):
        clamp = np.where(post[t] > 0, p.get("t_clamp", 2.0), np.maximum(clamp - DT, 0.0))
        u = np.where(clamp > DT / 2, p.get("V_clamp", 33.0), V[t])
        um = u + (um - u) * np.exp(-DT / p["tau_minus"])
        up = u + (up - u) * np.exp(-DT / p["tau_plus"])
        x = x * np.exp(-DT / p["tau_x"])
        ltp = np.maximum(u - p["theta_plus"], 0.0) * np.maximum(up - p["theta_minus"], 0.0)
        w = w + DT * p["A_LTP"] * x * ltp
        w = w - pre[t] * p["A_LTD"] * np.maximum(um - p["theta_minus"], 0.0)
        x = x + pre[t] / p["tau_x"]
        w = np.clip(w, 0.0, 1.0)
    return w


def params_of(rule: jsyn.Clopath) -> dict:
    names = ("A_LTD", "A_LTP", "theta_minus", "theta_plus", "tau_x", "tau_minus", "tau_plus")
    return {n: float(getattr(rule, n)) for n in (*names, "V_clamp", "t_clamp")}


class Pairings(eqx.Module):
    """The rule on given presynaptic events, postsynaptic spikes and potentials (inputs
    `(pre, post, V)`, time leading): its output is the weight of each synapse."""

    rule: jsyn.Clopath

    def init_state(self, n, *, dtype=None):
        return self.rule.init_state(n, dtype=dtype), jnp.full(n, 0.5)

    def step(self, state, x, dt):
        pre, post, V = x
        rule_state, w = self.rule.step(*state, pre, post, dt, V=V)
        return (rule_state, w), w


def post_pre_protocol(freqs, lag=-10.0, n_pairs=3):
    """Post spikes of an AdEx cell (2 ms pulses of 6 nA) repeated at `freqs` (Hz), a pre
    event `lag` ms before each (negative: after). Returns the currents, the pre events,
    the post spikes and the potential, time leading, one column per frequency."""
    T = int(round((100.0 + n_pairs * 1000.0 / min(freqs)) / DT))
    current = np.zeros((T, len(freqs)))
    for k, f in enumerate(freqs):
        for p in range(n_pairs):
            i = int(round((100.0 + p * 1000.0 / f) / DT))
            current[i : i + 20, k] = 6000.0
    neuron = jsyn.AdEx(tau_ref=2.0)  # held for the 2 ms the rule sees the spike

    def seen(s, spikes):
        return s.V, spikes

    _, (V, spikes) = jax.jit(lambda c: jsyn.simulate(neuron, c, DT, record=seen))(current)
    pre = np.zeros_like(current)
    for k in range(len(freqs)):
        steps = np.flatnonzero(np.asarray(spikes[:, k]))
        assert len(steps) == n_pairs  # one spike per pulse
        pre[steps - int(round(lag / DT)), k] = 1.0
    return current, jnp.asarray(pre), spikes, V


FREQS = [2.0, 10.0, 30.0, 50.0]


def test_equals_event_by_event_reference():
    rng = np.random.default_rng(0)
    n_steps, n = 800, 4
    pre = (rng.random((n_steps, n)) < 0.02).astype(float)
    post = (rng.random((n_steps, n)) < 0.01).astype(float)
    V = -70.0 + np.cumsum(rng.normal(0.0, 0.8, (n_steps, n)), axis=0)
    p = dict(A_LTD=2e-3, A_LTP=5e-4, theta_minus=-70.6, theta_plus=-45.3)
    p.update(tau_x=15.0, tau_minus=10.0, tau_plus=7.0, V_clamp=20.0, t_clamp=1.5)
    rule = jsyn.Clopath(**p)
    model = Pairings(rule)
    inputs = tuple(jnp.asarray(a) for a in (pre, post, V))
    _, w = jsyn.simulate(model, inputs, DT, state=model.init_state(n))
    expected = reference(pre, post, V, p, np.full(n, 0.5))
    np.testing.assert_allclose(w[-1], expected, rtol=1e-12, atol=1e-15)
    assert np.abs(expected - 0.5).max() > 1e-3


def test_clamp_shows_each_post_spike_for_t_clamp():
    """The potential the rule sees is V_clamp from the step of a post spike on, for
    round(t_clamp / dt) steps: its filters then relax towards V_clamp in those steps only."""
    rule = jsyn.Clopath(t_clamp=0.5)
    post = jnp.zeros(12).at[2].set(1.0)
    state, w = rule.init_state(()), jnp.asarray(0.5)
    seen = []
    for t in range(12):
        prev = state.u_plus
        state, w = rule.step(state, w, 0.0, post[t], DT, V=-70.6)
        seen.append(bool(state.u_plus > prev))  # rising: relaxing towards a higher u
    assert seen == [False] * 2 + [True] * 5 + [False] * 5


def test_post_pre_pairings_depress_at_low_and_potentiate_at_high_frequency():
    _, pre, post, V = post_pre_protocol(FREQS)
    model = Pairings(jsyn.Clopath())
    _, w = jsyn.simulate(model, (pre, post, V), DT, state=model.init_state(len(FREQS)))
    dw = np.asarray(w[-1]) - 0.5
    assert dw[0] < 0 and dw[1] < 0  # LTD at low frequencies
    assert dw[-1] > 0 and dw[-2] > 0  # LTP at high ones
    assert np.all(np.diff(dw) > 0)  # growing with the frequency
    expected = reference(*(np.asarray(a) for a in (pre, post, V)), params_of(model.rule), 0.5)
    np.testing.assert_allclose(dw, expected - 0.5, rtol=1e-10)


def test_step_needs_the_potential():
    rule = jsyn.Clopath()
    with pytest.raises(TypeError, match="reads the postsynaptic membrane potential"):
        rule.step(rule.init_state(2), jnp.full(2, 0.5), jnp.zeros(2), jnp.zeros(2), DT)


# -- inside a jsyn.Network: the projection hands the rule the post group's potential ------


def clopath_network(conn, rule, n_pre):
    """Poisson inputs onto 3 AdEx cells through a Clopath projection (the cells also take
    an external current)."""
    return jsyn.Network(
        {
            "in": jsyn.Poisson(jnp.full(n_pre, 40.0)),
            "cells": (jsyn.AdEx(tau_ref=2.0), 3),
        },
        {
            "syn": jsyn.Projection(
                conn,
                jsyn.Expon(5.0),
                jsyn.COBA(g_max=20.0, E=0.0),
                pre="in",
                post="cells",
                plasticity=rule,
            )
        },
    )


def record_all(state, spikes):
    return (
        spikes["in"],
        spikes["cells"],
        state.groups["cells"].V,
        state.projections["syn"].w,
    )


@pytest.mark.parametrize("wiring", ["Dense", pytest.param("Sparse", marks=pytest.mark.slow)])
def test_in_network_equals_event_by_event_reference(wiring):
    """The weights of a Clopath projection onto an AdEx group, run in a jsyn.Network, equal
    the NumPy reference on the network's own pre spikes, post spikes and potentials (the
    weights act back on the cells through a COBA synapse, so the trains depend on them)."""
    rng = np.random.default_rng(2)
    n_pre, n_steps = 4, 3000
    w0 = rng.uniform(0.3, 0.7, (n_pre, 3))
    pre_idx, post_idx = np.nonzero(np.ones((n_pre, 3)))
    conn = (
        jsyn.Dense(w0)
        if wiring == "Dense"
        else jsyn.Sparse(pre_idx, post_idx, n_pre, 3, w0[pre_idx, post_idx])
    )
    p = dict(A_LTD=2e-3, A_LTP=2e-4, theta_minus=-70.6, theta_plus=-45.3)
    p.update(tau_x=15.0, tau_minus=10.0, tau_plus=7.0)
    net = clopath_network(conn, jsyn.Clopath(**p), n_pre)
    drive = {"cells": jnp.asarray(rng.normal(650.0, 300.0, (n_steps, 3)))}
    _, (pre, post, V, w) = jax.jit(
        lambda x: jsyn.simulate(net, x, DT, record=record_all, key=jax.random.key(0))
    )(drive)
    pre, post, V, w = (np.asarray(a) for a in (pre, post, V, w))
    assert post.sum(0).min() >= 5 and pre.sum(0).min() >= 5  # both sides spike
    # every synapse sees its presynaptic cell's events and its postsynaptic cell's V
    if wiring == "Dense":
        syn_pre, syn_post, ref_w0 = pre[:, :, None], post[:, None, :], w0
        shape = (n_steps, n_pre, 3)
        args = [np.broadcast_to(a, shape) for a in (syn_pre, syn_post, V[:, None, :])]
    else:
        ref_w0 = w0[pre_idx, post_idx]
        args = [pre[:, pre_idx], post[:, post_idx], V[:, post_idx]]
    expected = reference(*args, {**p, "V_clamp": 33.0, "t_clamp": 2.0}, ref_w0)
    np.testing.assert_allclose(w[-1], expected, rtol=1e-12, atol=1e-14)
    moved = np.abs(expected - ref_w0)
    assert moved.max() > 0.05
    assert (expected < ref_w0).any() and (expected > ref_w0).any()  # LTD and LTP


@pytest.mark.slow  # ~6 s of CPU: 1.6 s of network at dt = 0.1 ms
def test_in_network_pairing_frequency():
    """The pairing protocol in a jsyn.Network: spike sources paired 10 ms after the spikes
    of AdEx cells driven by current pulses, one pair of cells per frequency, one-to-one
    Clopath synapses: LTD at low, LTP at high pairing frequency, as the rule alone gives on
    the same trains."""
    current, pre, post, V = post_pre_protocol(FREQS)
    steps, cells = np.nonzero(np.asarray(pre))
    times = steps * DT
    net = jsyn.Network(
        {
            "in": jsyn.SpikeTimes(times, cells, n=len(FREQS)),
            "cells": (jsyn.AdEx(tau_ref=2.0), len(FREQS)),
        },
        {
            "syn": jsyn.Projection(
                jsyn.Sparse(np.arange(4), np.arange(4), 4, 4, np.full(4, 0.5)),
                jsyn.Expon(5.0),
                jsyn.COBA(g_max=1.0, E=0.0),
                pre="in",
                post="cells",
                plasticity=jsyn.Clopath(),
            )
        },
    )
    _, (pre_n, post_n, V_n, w) = jax.jit(lambda x: jsyn.simulate(net, x, DT, record=record_all))(
        {"cells": jnp.asarray(current)}
    )
    np.testing.assert_array_equal(pre_n, pre)  # the pairs as planned
    np.testing.assert_array_equal(post_n, post)
    dw = np.asarray(w[-1]) - 0.5
    assert dw[0] < 0 and dw[1] < 0  # LTD at low frequencies
    assert dw[-1] > 0 and dw[-2] > 0  # LTP at high ones
    assert np.all(np.diff(dw) > 0)
    pre_n, post_n, V_n = (np.asarray(a) for a in (pre_n, post_n, V_n))
    expected = reference(pre_n, post_n, V_n, params_of(jsyn.Clopath()), 0.5)
    np.testing.assert_allclose(dw, expected - 0.5, rtol=1e-10)


def test_network_refuses_a_post_group_without_potential():
    with pytest.raises(ValueError, match="reads the membrane potential V of its post group"):
        jsyn.Network(
            {"a": jsyn.Poisson(jnp.full(2, 10.0)), "b": jsyn.Poisson(jnp.full(2, 10.0))},
            {
                "p": jsyn.Projection(
                    jsyn.Dense(jnp.full((2, 2), 0.5)),
                    jsyn.Expon(5.0),
                    jsyn.CUBA(),
                    pre="a",
                    post="b",
                    plasticity=jsyn.Clopath(),
                )
            },
        )


def test_projection_alone_needs_the_potential():
    proj = jsyn.Projection(
        jsyn.Dense(jnp.full((2, 2), 0.5)), jsyn.Expon(5.0), plasticity=jsyn.Clopath()
    )
    state = proj.init_state()
    with pytest.raises(ValueError, match="post_voltage"):
        proj.step(state, jnp.zeros(2), DT, post_spikes=jnp.zeros(2))
    new, _ = proj.step(
        state, jnp.zeros(2), DT, post_spikes=jnp.zeros(2), post_voltage=jnp.full(2, -60.0)
    )
    assert np.all(np.asarray(new.rule.u_plus) > -70.6)  # relaxing towards -60 mV


@pytest.mark.slow
def test_fit_recovers_amplitudes_from_a_pairing_curve():
    _, pre, post, V = post_pre_protocol(FREQS)
    truth = Pairings(jsyn.Clopath(A_LTD=2.0e-4, A_LTP=6.0e-5))
    state = truth.init_state(len(FREQS))
    _, w = jsyn.simulate(truth, (pre, post, V), DT, state=state)
    weights = jnp.zeros((w.shape[0], 1)).at[-1].set(1.0)  # the curve: the final weights
    guess = Pairings(jsyn.Clopath(A_LTD=1.0e-4, A_LTP=1.0e-4))
    res = jsyn.fit(
        guess,
        (pre, post, V),
        w,
        DT,
        params="A_LTD,A_LTP",
        loss="weighted",
        weights=weights,
        state=state,
    )
    np.testing.assert_allclose(res.model.rule.A_LTD, 2.0e-4, rtol=1e-6)
    np.testing.assert_allclose(res.model.rule.A_LTP, 6.0e-5, rtol=1e-6)
