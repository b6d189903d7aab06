"""VogelsSprekeler against an event-by-event NumPy reference, event-driven on Sparse, and
the paper's result: plastic inhibition brings a cell to the target rate alpha / (2 tau)
and balances its excitatory and inhibitory currents."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.5


def reference(pre, post, eta, alpha, tau, w, w_max=1.0):
    """The weights after the steps, synapse by synapse, event by event: traces decay
    exactly, then a pre event (w += eta (x_post - alpha), x_pre += 1), then a post spike
    (w += eta x_pre, x_post += 1), then the clip."""
    w = np.array(w, dtype=float)
    x_pre, x_post = np.zeros_like(w), np.zeros_like(w)
    for t in range(pre.shape[0]):
        x_pre *= np.exp(-DT / tau)
        x_post *= np.exp(-DT / tau)
        for k in range(w.size):
            if pre[t, k]:
                w[k] += eta * (x_post[k] - alpha)
                x_pre[k] += 1.0
            if post[t, k]:
                w[k] += eta * x_pre[k]
                x_post[k] += 1.0
            w[k] = min(max(w[k], 0.0), w_max)
    return w


def test_equals_event_by_event_reference():
    rng = np.random.default_rng(0)
    n_steps, n = 600, 6
    pre = (rng.random((n_steps, n)) < 0.04).astype(float)
    post = (rng.random((n_steps, n)) < 0.03).astype(float)
    rule = jsyn.VogelsSprekeler(eta=0.05, alpha=0.3, tau=20.0)
    w0 = jnp.asarray(rng.uniform(0.1, 0.9, n))

    def step(carry, x):
        return rule.step(*carry, x[0], x[1], DT), None

    (_, w), _ = jax.lax.scan(step, (rule.init_state(n), w0), jnp.stack([pre, post], 1))
    expected = reference(pre, post, 0.05, 0.3, 20.0, w0)
    np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-15)
    assert np.abs(expected - np.asarray(w0)).max() > 0.05


def test_alpha_for_a_target_rate():
    assert jsyn.VogelsSprekeler.alpha_for(5.0, 20.0) == pytest.approx(0.2)  # 2 rho0 tau


def test_event_driven_sparse_equals_dense():
    rng = np.random.default_rng(1)
    n_pre, n_post, n_syn, n_steps = 30, 20, 200, 40
    conn = jsyn.Sparse(
        rng.integers(0, n_pre, n_syn),
        rng.integers(0, n_post, n_syn),
        n_pre,
        n_post,
        rng.uniform(0.2, 0.8, n_syn),
        tiers=(4, n_pre),
    )
    pre = jnp.asarray((rng.random((n_steps, n_pre)) < 0.2).astype(float))
    post = jnp.asarray((rng.random((n_steps, n_post)) < 0.2).astype(float))
    rule = jsyn.VogelsSprekeler(eta=0.1, alpha=0.5)
    w0 = jnp.asarray(conn.w)

    @eqx.filter_jit
    def events(conn, w):
        def step(carry, x):
            state, w, _ = conn.learn(rule, *carry, *x, DT)
            return (state, w), None

        return jax.lax.scan(step, (rule.init_neuron_state(n_pre, n_post), w), (pre, post))[0][1]

    @eqx.filter_jit
    def dense(conn, w):
        def step(carry, x):
            return rule.step(*carry, conn.spread(x[0]), conn.spread_post(x[1]), DT), None

        return jax.lax.scan(step, (rule.init_state(n_syn), w), (pre, post))[0][1]

    np.testing.assert_allclose(events(conn, w0), dense(conn, w0), rtol=1e-12, atol=1e-14)


def balanced_cell(rate_target, seconds, eta=0.005):
    """One LIF cell driven by 400 excitatory and 400 plastic inhibitory Poisson inputs (10
    Hz each): its spikes and excitatory and inhibitory currents (pA) per step. Many weak
    inhibitory synapses: each one's spikes barely move the cell, so its pre and post trains
    are nearly uncorrelated, as the rate relation assumes."""
    alpha = jsyn.VogelsSprekeler.alpha_for(rate_target, 20.0)
    rule = jsyn.VogelsSprekeler(eta=eta, alpha=alpha, w_max=2.0)
    net = jsyn.Network(
        {
            "E": jsyn.Poisson(jnp.full(400, 10.0)),
            "I": jsyn.Poisson(jnp.full(400, 10.0)),
            "cell": (jsyn.LIF(tau=20.0, R=0.1, tau_ref=2.0), 1),
        },
        {
            "e": jsyn.Projection(
                jsyn.Dense(np.full((400, 1), 0.5)),
                jsyn.Expon(5.0),
                jsyn.COBA(E=0.0),
                pre="E",
                post="cell",
            ),
            "i": jsyn.Projection(
                jsyn.Dense(np.full((400, 1), 0.0125)),
                jsyn.Expon(10.0),
                jsyn.COBA(E=-80.0),
                pre="I",
                post="cell",
                plasticity=rule,
            ),
        },
    )

    def record(s, spikes):
        V = s.groups["cell"].V[0]
        e, i = s.projections["e"].g[0], s.projections["i"].g[0]
        return spikes["cell"][0], e * (0.0 - V), i * (-80.0 - V)

    n = int(seconds * 1000 / DT)
    run = jax.jit(lambda key: jsyn.simulate(net, None, DT, n_steps=n, key=key, record=record)[1])
    return (np.asarray(x) for x in run(jax.random.key(0)))


@pytest.mark.slow
@pytest.mark.parametrize("rate_target", [5.0, 10.0])
def test_inhibition_brings_the_cell_to_the_target_rate_and_balances_it(rate_target):
    spikes, i_e, i_i = balanced_cell(rate_target, 30.0)
    per_s = int(1000 / DT)
    first, last = slice(0, per_s), slice(-15 * per_s, None)
    assert spikes[first].sum() > 5 * rate_target  # far above the target at first
    rate = spikes[last].sum() / 15.0
    assert abs(rate - rate_target) < 0.25 * rate_target, rate  # alpha = 2 rho0 tau
    # balanced: the inhibitory current grew to cancel most of the excitatory one
    assert i_i[last].mean() < 3 * i_i[first].mean()  # (negative: outward)
    assert abs(i_e[last].mean() + i_i[last].mean()) < 0.2 * i_e[last].mean()
