"""A projection's dendritic delay (NEST's `dendritic_delay`): the post spikes reach the rule
late. Replays the sequences of NEST's test of its triplet synapse (1 ms dendritic delay),
written out by hand as that test does, and checks the delay against post spikes shifted by
hand, inside a network and on an event-driven `Sparse` projection."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1
D = 1.0  # ms, NEST's test
# NEST's test set: every amplitude 0.1, w = 5, Wmax = 100
TAUS = dict(tau_plus=16.8, tau_x=101.0, tau_minus=33.7, tau_y=125.0)
RULE = jsyn.TripletSTDP(
    A2_plus=0.1, A3_plus=0.1, A2_minus=0.1, A3_minus=0.1, **TAUS, w_min=0.0, w_max=100.0
)


def run_projection(pre_times, post_times, n_steps, dendritic_delay=D, rule=RULE):
    """One synapse (w = 5) on spikes at the given times (ms): the weight at the end."""
    proj = jsyn.Projection(
        jsyn.Dense(jnp.full((1, 1), 5.0)),
        jsyn.Expon(),
        plasticity=rule,
        dendritic_delay=dendritic_delay,
        dt=DT,
    )
    pre, post = np.zeros((n_steps, 1)), np.zeros((n_steps, 1))
    pre[np.rint(np.asarray(pre_times) / DT).astype(int)] = 1.0
    post[np.rint(np.asarray(post_times) / DT).astype(int)] = 1.0

    def step(state, x):
        state, _ = proj.step(state, x[0], DT, post_spikes=x[1])
        return state, None

    final, _ = jax.lax.scan(step, proj.init_state(), (jnp.asarray(pre), jnp.asarray(post)))
    return float(final.w[0, 0])


class Traces:
    """NEST's test's bookkeeping: the four traces, decayed and bumped by hand."""

    def __init__(self):
        self.r1 = self.r2 = self.o1 = self.o2 = 0.0

    def decay(self, t):
        self.r1 *= math.exp(-t / TAUS["tau_plus"])
        self.r2 *= math.exp(-t / TAUS["tau_x"])
        self.o1 *= math.exp(-t / TAUS["tau_minus"])
        self.o2 *= math.exp(-t / TAUS["tau_y"])

    def pre(self, w):  # depress with the traces before the pre spike's own bump
        w -= self.o1 * (0.1 + 0.1 * self.r2)
        self.r1, self.r2 = self.r1 + 1.0, self.r2 + 1.0
        return w

    def post(self, w):
        w += self.r1 * (0.1 + 0.1 * self.o2)
        self.o1, self.o2 = self.o1 + 1.0, self.o2 + 1.0
        return w


def test_pre_post_pre_of_nests_triplet_test():
    """Pre at 2 ms, post at 4 ms, pre at 6 ms: the post spike reaches the synapse at 5 ms,
    between the two pre spikes (without the delay it would pair 1 ms closer)."""
    tr, w = Traces(), 5.0
    w = tr.pre(w)  # 2 ms
    tr.decay(2.0 + D)
    w = tr.post(w)  # 4 + 1 ms
    tr.decay(2.0 - D)
    w = tr.pre(w)  # 6 ms
    got = run_projection([2.0, 6.0], [4.0], 100)
    np.testing.assert_allclose(got, w, rtol=1e-12)
    assert abs(run_projection([2.0, 6.0], [4.0], 100, dendritic_delay=None) - w) > 1e-3


def test_pre_post_pre_pre_of_nests_triplet_test():
    tr, w = Traces(), 5.0
    w = tr.pre(w)  # 2 ms
    tr.decay(2.0 + D)
    w = tr.post(w)  # 4 + 1 ms
    tr.decay(2.0 - D)
    w = tr.pre(w)  # 6 ms
    tr.decay(2.0)
    w = tr.pre(w)  # 8 ms
    np.testing.assert_allclose(run_projection([2.0, 6.0, 8.0], [4.0], 120), w, rtol=1e-12)


def test_post_spike_after_the_end_is_not_seen():
    """A post spike less than the delay before the end of the run has not reached the
    synapse: no potentiation from it."""
    assert run_projection([2.0], [9.5], 100) == run_projection([2.0], [], 100)


@pytest.mark.parametrize("dendritic_delay", [0.5])
@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_in_a_network_equals_post_spikes_shifted_by_hand(dendritic_delay):
    """Event-driven Sparse STDP in a Network with a dendritic delay equals the same network
    whose post spikes are emitted that much later (the rule sees the same spikes)."""
    rng = np.random.default_rng(3)
    n, T = 5, 3000
    pre_t = np.round(rng.uniform(0, 280, 60), 1)
    post_t = np.round(rng.uniform(0, 280, 60), 1)
    pre_i, post_i = rng.integers(0, n, 60), rng.integers(0, n, 60)
    pre_idx, post_idx = rng.integers(0, n, 12), rng.integers(0, n, 12)
    rule = jsyn.STDP(A_plus=0.02, A_minus=0.021)

    def net(shift, dd):
        return jsyn.Network(
            {
                "pre": jsyn.SpikeTimes(pre_t, pre_i, n=n),
                "post": jsyn.SpikeTimes(post_t + shift, post_i, n=n),
            },
            {
                "p": jsyn.Projection(
                    jsyn.Sparse(pre_idx, post_idx, n, n, jnp.linspace(0.3, 0.7, 12)),
                    jsyn.Expon(),
                    jsyn.CUBA(),
                    pre="pre",
                    post="post",
                    plasticity=rule,
                    dendritic_delay=dd,
                    dt=DT,
                )
            },
        )

    def final_w(network):
        final, _ = jsyn.simulate(network, None, DT, n_steps=T, record=lambda s, x: 0.0)
        return final.projections["p"].w

    delayed = net(0.0, dendritic_delay)
    assert delayed.projections["p"].transmission.by_events
    by_hand = final_w(net(dendritic_delay, None))
    np.testing.assert_allclose(final_w(delayed), by_hand, rtol=1e-12, atol=1e-15)
    assert np.abs(np.asarray(by_hand) - np.asarray(final_w(net(0.0, None)))).max() > 1e-3


def test_refused_without_a_rule_for_clopath_and_per_synapse():
    conn, syn = jsyn.Dense(jnp.full((2, 2), 0.5)), jsyn.Expon()
    with pytest.raises(ValueError, match="has no plasticity"):
        jsyn.Projection(conn, syn, dendritic_delay=1.0, dt=DT)
    with pytest.raises(ValueError, match="not supported with Clopath"):
        jsyn.Projection(conn, syn, plasticity=jsyn.Clopath(), dendritic_delay=1.0, dt=DT)
    with pytest.raises(ValueError, match="must be a scalar"):
        jsyn.Projection(conn, syn, plasticity=RULE, dendritic_delay=jnp.ones(4), dt=DT)
    with pytest.raises(ValueError, match="dt"):
        jsyn.Projection(conn, syn, plasticity=RULE, dendritic_delay=1.0)


@pytest.mark.slow
def test_trials_keep_the_dendritic_delay():
    """`jsyn.trials` batches a projection with a dendritic delay: each trial's weights
    equal its single run's."""
    rng = np.random.default_rng(4)
    net = jsyn.Network(
        {"P": jsyn.Poisson(jnp.full(20, 40.0)), "cells": (jsyn.LIF(tau=10.0, R=1.0), 4)},
        {
            "p": jsyn.Projection(
                jsyn.Dense(rng.uniform(0.5, 1.5, (20, 4))),
                jsyn.Expon(5.0),
                jsyn.COBA(g_max=3.0, E=0.0),
                pre="P",
                post="cells",
                plasticity=jsyn.STDP(A_plus=0.05, w_max=2.0),
                dendritic_delay=1.0,
                dt=DT,
            )
        },
    )
    keys = jax.random.split(jax.random.key(5), 2)
    batch = jsyn.trials(net, 2)
    final, out = jsyn.simulate(
        batch.net,
        None,
        DT,
        state=batch.init_state(keys),
        n_steps=400,
        record=lambda s, spikes: spikes["cells"],
    )
    assert float(out.sum()) > 10
    w = batch.split_state(final).projections["p"].w
    for b in range(2):
        last, _ = jsyn.simulate(net, None, DT, key=keys[b], n_steps=400, record=lambda s, x: 0.0)
        np.testing.assert_allclose(w[b], last.projections["p"].w, rtol=0, atol=1e-9)
        assert np.abs(np.asarray(w[b]) - np.asarray(net.projections["p"].conn.w)).max() > 1e-3
