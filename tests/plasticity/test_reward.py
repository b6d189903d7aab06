"""Reward-modulated STDP: one pairing and one reward against the closed form of the
three-factor rule (Izhikevich 2007), rewards far from the pairing, the neuromodulator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd

DT = 0.2
T_PRE = 100.0
LAG = 10.0  # ms, t_post - t_pre
T_POST = T_PRE + LAG
W0 = 1.0


def run(rule, reward_times, tau_d, n_steps):
    """One synapse per reward time: pre at T_PRE, post at T_POST, and that synapse's
    postsynaptic neuron gets one reward (its own dopamine, a group of size n_post)."""
    n = len(reward_times)
    idx = np.arange(n)
    rewards = np.zeros((n_steps, n))
    rewards[np.round(np.asarray(reward_times) / DT).astype(int), idx] = 1.0
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes(np.full(n, T_PRE), idx, n=n),
            "post": jsyn.SpikeTimes(np.full(n, T_POST), idx, n=n),
            "DA": (jsyn.Neuromodulator(tau_d=tau_d), n),
        },
        {
            "p": jsyn.Projection(
                jsyn.Sparse(idx, idx, n, n, w=W0),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    final, _ = jsyn.simulate(net, {"DA": jnp.asarray(rewards)}, DT, record=lambda s, o: ())
    return np.asarray(final.projections["p"].w) - W0


def closed_form(rule, tau_d, t_r):
    A, tau_pre, tau_c = float(rule.A_plus), float(rule.tau_pre), float(rule.tau_c)
    K = np.where(t_r >= T_POST, np.exp(-(t_r - T_POST) / tau_c), np.exp(-(T_POST - t_r) / tau_d))
    return A * np.exp(-LAG / tau_pre) * K * tau_c * tau_d / (tau_c + tau_d)


def test_one_pairing_and_one_reward_match_the_closed_form():
    rule, tau_d = jsyn.RewardSTDP("DA", w_max=10.0), 200.0
    t_r = np.array([T_POST, T_POST + 50.0, T_POST + 300.0, T_POST + 1000.0, T_POST - 5.0, 20.0])
    dw = run(rule, t_r, tau_d, n_steps=int(8000 / DT))
    want = closed_form(rule, tau_d, t_r)
    assert np.all(want > 1e-3)
    np.testing.assert_allclose(dw, want, rtol=2e-3)


def test_rewards_far_from_the_pairing_change_almost_nothing():
    tau_d, tau_c = 20.0, 100.0
    rule = jsyn.RewardSTDP("DA", tau_c=tau_c, w_max=10.0)
    near = closed_form(rule, tau_d, np.array([T_POST + 1.0]))[0]
    # 5 tau_d before the pairing (the dopamine has gone), 20 tau_c after it (no eligibility)
    dw = run(rule, [T_POST - 5 * tau_d, T_POST + 20 * tau_c], tau_d, n_steps=int(3000 / DT))
    assert np.all(np.abs(dw) < 1e-2 * near)


def test_no_reward_no_change():
    rule = jsyn.RewardSTDP("DA")
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes([T_PRE]),
            "post": jsyn.SpikeTimes([T_POST]),
            "DA": (jsyn.Neuromodulator(), 1),
        },
        {
            "p": jsyn.Projection(
                jsyn.Dense(np.full((1, 1), 0.5)),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    final, _ = jsyn.simulate(net, None, DT, n_steps=1000, record=lambda s, o: ())
    np.testing.assert_allclose(final.projections["p"].w, [[0.5]])
    assert final.projections["p"].rule.c[0, 0] > 0  # eligible, but no dopamine


def test_neuromodulator_decays_exactly():
    nm = jsyn.Neuromodulator(tau_d=50.0)
    events = jnp.zeros((500, 1)).at[10, 0].set(1.0)
    _, d = jsyn.simulate(nm, events, DT, record=lambda s, o: s.d)
    t = (np.arange(500) - 10) * DT
    np.testing.assert_allclose(d[10:, 0], np.exp(-t[10:] / 50.0), rtol=1e-12)
    np.testing.assert_allclose(d[:10, 0], 0.0)


def test_gradient_wrt_tau_c_matches_finite_differences():
    def loss(tau_c):
        rule = jsyn.RewardSTDP("DA", tau_c=tau_c, w_max=10.0)
        return jnp.sum(jnp.asarray(run_traced(rule, 200.0)))

    x = 400.0
    np.testing.assert_allclose(jax.grad(loss)(x), central_fd(loss, x, eps=1e-3), rtol=1e-6)


def run_traced(rule, tau_d):
    n_steps = 2000
    rewards = jnp.zeros((n_steps, 1)).at[int(round((T_POST + 20.0) / DT)), 0].set(1.0)
    net = jsyn.Network(
        {
            "pre": jsyn.SpikeTimes([T_PRE]),
            "post": jsyn.SpikeTimes([T_POST]),
            "DA": (jsyn.Neuromodulator(tau_d=tau_d), 1),
        },
        {
            "p": jsyn.Projection(
                jsyn.Dense(jnp.full((1, 1), W0)),
                jsyn.Expon(),
                jsyn.CUBA(),
                pre="pre",
                post="post",
                plasticity=rule,
            )
        },
    )
    final, _ = jsyn.simulate(net, {"DA": rewards}, DT, record=lambda s, o: ())
    return final.projections["p"].w


def test_errors():
    with pytest.raises(TypeError, match="modulator"):
        jsyn.RewardSTDP("")
    proj = jsyn.Projection(
        jsyn.Dense(np.ones((1, 2))),
        jsyn.Expon(),
        jsyn.CUBA(),
        pre="a",
        post="b",
        plasticity=jsyn.RewardSTDP("DA"),
    )
    with pytest.raises(ValueError, match="neuromodulator group 'DA'"):
        jsyn.Network({"a": (jsyn.LIF(), 1), "b": (jsyn.LIF(), 2)}, {"p": proj})
    with pytest.raises(ValueError, match="size 1 or 2"):
        jsyn.Network(
            {"a": (jsyn.LIF(), 1), "b": (jsyn.LIF(), 2), "DA": (jsyn.Neuromodulator(), 3)},
            {"p": proj},
        )


@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_vmap_over_reward_times_equals_loop():
    def dw(t_r):
        n_steps = 3000
        rewards = jnp.zeros((n_steps, 1)).at[jnp.round(t_r / DT).astype(jnp.int32), 0].set(1.0)
        net = jsyn.Network(
            {
                "pre": jsyn.SpikeTimes([T_PRE]),
                "post": jsyn.SpikeTimes([T_POST]),
                "DA": (jsyn.Neuromodulator(), 1),
            },
            {
                "p": jsyn.Projection(
                    jsyn.Sparse([0], [0], 1, 1, w=W0),
                    jsyn.Expon(),
                    jsyn.CUBA(),
                    pre="pre",
                    post="post",
                    plasticity=jsyn.RewardSTDP("DA", w_max=10.0),
                )
            },
        )
        final, _ = jsyn.simulate(net, {"DA": rewards}, DT, record=lambda s, o: ())
        return final.projections["p"].w[0] - W0

    times = jnp.array([T_POST + 20.0, T_POST - 30.0, 300.0])
    batched = jax.vmap(dw)(times)
    looped = np.array([dw(t) for t in times])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)
    assert len(set(np.round(looped, 12))) == 3
