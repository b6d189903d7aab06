"""Event-driven `jsyn.RewardSTDP` on `jsyn.Sparse` (`Sparse.learn_reward`): the lazy
weights equal the rule's dense step on per-synapse arrays, to 1e-12 in float64, over many
events, rewards before and after them, both bounds, new epochs and negative concentrations;
jit equals eager; gradients equal the dense step's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

N_PRE, N_POST, N_SYN, DT = 40, 30, 400, 0.5
RULE = jsyn.RewardSTDP("DA", A_plus=0.02, A_minus=0.014, tau_c=60.0, w_min=0.1, w_max=0.9)


def wiring(seed=0, event_driven=True):
    rng = np.random.default_rng(seed)
    pre, post = rng.integers(0, N_PRE, N_SYN), rng.integers(0, N_POST, N_SYN)
    w = rng.uniform(0.2, 0.8, N_SYN)
    return jsyn.Sparse(pre, post, N_PRE, N_POST, w, event_driven=event_driven)


def inputs(n_steps, seed=1, cells=N_POST, negative=False):
    """Pre events (some fractional), post spikes, and a concentration per cell with
    rewards from the first step on (before the first events and after the last ones)."""
    rng = np.random.default_rng(seed)
    pre = (rng.random((n_steps, N_PRE)) < 0.03) * 1.0
    pre[::7] *= 0.3
    post = (rng.random((n_steps, N_POST)) < 0.03) * 1.0
    post[-n_steps // 4 :] = 0.0  # the last quarter: rewards alone
    pre[-n_steps // 4 :] = 0.0
    rewards = (rng.random((n_steps, cells)) < 0.02) * rng.uniform(0.5, 2.0, (n_steps, cells))
    rewards[0] = 1.0
    if negative:  # punishments too
        rewards[rng.random((n_steps, cells)) < 0.01] = -1.5
    d, ds = np.zeros(cells), []
    for r in rewards:
        d = d * np.exp(-DT / 40.0) + r
        ds.append(d)
    return jnp.asarray(pre), jnp.asarray(post), jnp.asarray(np.array(ds))


def run_events(conn, rule, pre, post, d, signal=True):
    """The true weights and eligibility after each step, and the step's drive."""

    def step(state, x):
        state, drive = conn.learn_reward(rule, state, *x, DT, signal=2.0 * x[0] if signal else None)
        return state, (
            rule.event_weights(state, conn.post_idx),
            rule.event_eligibility(state),
            drive,
        )

    state = rule.init_event_state(conn.weights(jnp.zeros(())), N_PRE, N_POST)
    return jax.lax.scan(step, state, (pre, post, d))


def run_dense(conn, rule, pre, post, d):
    """The same with the rule's own step on per-synapse arrays and `deliver`."""

    def step(carry, x):
        state, w = carry
        drive = conn.deliver(2.0 * x[0], jnp.zeros(N_POST), weights=w)
        mod = x[2][0] if x[2].shape == (1,) else conn.spread_post(x[2])
        state, w = rule.step(state, w, conn.spread(x[0]), conn.spread_post(x[1]), DT, mod)
        return (state, w), (w, state.c, drive)

    w = rule.clip(conn.weights(jnp.zeros(())))
    return jax.lax.scan(step, (rule.init_state((N_SYN,)), w), (pre, post, d))


@pytest.mark.parametrize("cells", [N_POST, pytest.param(1, marks=pytest.mark.slow)])
def test_equals_the_dense_rule(cells):
    conn = wiring()
    pre, post, d = inputs(1200, cells=cells)
    final, (w, c, drive) = run_events(conn, RULE, pre, post, d)
    _, (w_ref, c_ref, drive_ref) = run_dense(conn, RULE, pre, post, d)
    w, w_ref = np.asarray(w), np.asarray(w_ref)
    # the run reaches both bounds and moves in between; the weights change in the last
    # quarter (rewards alone, no events), and several epochs pass (tau_c ln 2 = 42 ms)
    assert np.any(w_ref == 0.1) and np.any(w_ref == 0.9)
    assert np.any((w_ref > 0.1) & (w_ref < 0.9))
    assert np.abs(w_ref[-1] - w_ref[-300]).max() > 1e-3
    assert np.abs(np.asarray(c_ref)).max() > 0.1
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(drive, drive_ref, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_negative_concentration_stays_exact():
    conn = wiring(seed=3)
    pre, post, d = inputs(600, seed=4, negative=True)
    assert np.any(np.asarray(d) < 0)
    _, (w, c, _) = run_events(conn, RULE, pre, post, d)
    _, (w_ref, c_ref, _) = run_dense(conn, RULE, pre, post, d)
    assert np.any(np.asarray(w_ref) == 0.1) and np.any(np.asarray(w_ref) == 0.9)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_one_pass_over_every_synapse_is_the_same():
    pre, post, d = inputs(300, seed=5)
    _, (w, c, drive) = run_events(wiring(), RULE, pre, post, d)
    _, (w_all, c_all, drive_all) = run_events(wiring(event_driven=False), RULE, pre, post, d)
    np.testing.assert_allclose(w, w_all, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c, c_all, rtol=0, atol=1e-13)
    np.testing.assert_allclose(drive, drive_all, rtol=0, atol=1e-13)


@pytest.mark.slow
def test_jit_equals_eager():
    conn = wiring()
    pre, post, d = inputs(8, seed=6)
    state = RULE.init_event_state(conn.weights(jnp.zeros(())), N_PRE, N_POST)

    def steps(state):
        for t in range(pre.shape[0]):
            state, _ = conn.learn_reward(RULE, state, pre[t], post[t], d[t], DT)
        return RULE.event_weights(state, conn.post_idx)

    with jax.disable_jit():
        eager = steps(state)
    np.testing.assert_allclose(jax.jit(steps)(state), eager, rtol=0, atol=1e-14)


@pytest.mark.slow
def test_gradients_equal_the_dense_rule():
    conn = wiring(seed=7)
    pre, post, d = inputs(300, seed=8)
    probe = jnp.asarray(np.random.default_rng(9).normal(size=N_SYN))

    def loss(run, params):
        A_plus, tau_c, w0 = params
        rule = jsyn.RewardSTDP("DA", A_plus=A_plus, A_minus=0.22, tau_c=tau_c, w_min=0.1, w_max=0.9)
        c = jsyn.Sparse(conn.pre_idx, conn.post_idx, N_PRE, N_POST, w0)
        w = run(c, rule, pre, post, d)[1][0][-1]
        return jnp.sum(probe * w)

    params = (jnp.asarray(0.2), jnp.asarray(60.0), conn.weights(jnp.zeros(())))
    got = jax.grad(lambda p: loss(run_events, p))(params)
    want = jax.grad(lambda p: loss(run_dense, p))(params)
    assert float(jnp.abs(want[0])) > 1e-2 and float(jnp.abs(want[1])) > 1e-5
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


def test_per_synapse_time_constant_is_refused():
    conn = wiring()
    rule = jsyn.RewardSTDP("DA", tau_c=jnp.full(N_SYN, 100.0))
    state = rule.init_event_state(conn.weights(jnp.zeros(())), N_PRE, N_POST)
    with pytest.raises(ValueError, match="scalar RewardSTDP.tau_c"):
        conn.learn_reward(rule, state, jnp.zeros(N_PRE), jnp.zeros(N_POST), jnp.ones(1), DT)


def network(event_driven, cells, delay=None, n_steps=400, seed=10):
    """Random pre and post spike trains through a `Sparse` projection with `RewardSTDP`,
    rewards to `cells` dopamine cells; its inputs."""
    rng = np.random.default_rng(seed)
    conn = wiring(seed)

    def spikes(n, count):  # `count` spikes on the grid, at most one per neuron and step
        cell_step = np.unique(rng.integers(0, (n, n_steps), (count, 2)), axis=0)
        return (cell_step[:, 1] + 1.0) * DT, cell_step[:, 0]

    rule = jsyn.RewardSTDP(
        "DA",
        A_plus=0.02,
        A_minus=0.014,
        tau_c=60.0,
        w_min=0.1,
        w_max=0.9,
        event_driven=event_driven,
    )
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes(*spikes(N_PRE, 300), n=N_PRE),
            "post": jsyn.SpikeTimes(*spikes(N_POST, 200), n=N_POST),
            "DA": (jsyn.Neuromodulator(tau_d=40.0), cells),
        },
        {
            "p": jsyn.Projection(
                conn,
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
                delay=delay,
                dt=None if delay is None else DT,
            )
        },
    )
    rewards = (rng.random((n_steps, cells)) < 0.02) * 1.0
    rewards[0] = 1.0
    return net, {"DA": jnp.asarray(rewards)}


@pytest.mark.parametrize(
    "cells, delay",
    [
        pytest.param(N_POST, None, marks=pytest.mark.slow),
        pytest.param(1, 1.5, marks=pytest.mark.slow),
    ],
)
def test_in_a_network_the_recorded_weights_are_the_dense_rules(cells, delay):
    def record(state, out):
        return state.projections["p"].w, state.projections["p"].g

    runs = []
    for event_driven in (True, False):
        net, x = network(event_driven, cells, delay)
        runs.append(jsyn.simulate(net, x, DT, record=record))
    (final, (w, g)), (final_ref, (w_ref, g_ref)) = runs
    assert isinstance(final.projections["p"].rule, jsyn.RewardEventState)
    assert np.ptp(np.asarray(w_ref)[:, 0]) > 1e-3
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final.projections["p"].w, final_ref.projections["p"].w, atol=1e-12)


def test_a_projection_refuses_what_it_cannot_keep_exactly():
    rule = jsyn.RewardSTDP("DA", event_driven=True)
    conn = wiring()
    with pytest.raises(ValueError, match="needs an event-driven jsyn.Sparse"):
        jsyn.Projection(jsyn.Dense(np.ones((N_PRE, N_POST))), jsyn.Expon(), plasticity=rule)
    with pytest.raises(ValueError, match="needs summed kinetics"):
        jsyn.Projection(conn, jsyn.Expon(), plasticity=rule, synapse_params="synapse")
    with pytest.raises(ValueError, match="one delay for all"):
        jsyn.Projection(conn, jsyn.Expon(), plasticity=rule, delay=jnp.full(N_SYN, 1.0), dt=DT)
    slow = jsyn.RewardSTDP("DA", tau_c=jnp.full(N_SYN, 100.0), event_driven=True)
    with pytest.raises(ValueError, match="needs a scalar tau_c"):
        jsyn.Projection(conn, jsyn.Expon(), plasticity=slow)
