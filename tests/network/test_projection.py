"""A projection's pipeline (short-term plasticity -> release -> transmission -> gain) and
its transmissions: which one a projection picks, what each state holds, closed forms for
one spike, the order of the stages, summed == per-synapse kinetics, and jit == eager."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT
from jsyn.network.transmission import (
    PerSynapseKinetics,
    PerSynapseState,
    PlasticState,
    PlasticWeights,
    SummedKinetics,
    SummedState,
)

TAU, W, U = 5.0, 0.5, 0.3


def _pulse(n_steps, n, steps):
    x = np.zeros((n_steps, n))
    x[list(steps), 0] = 1.0
    return jnp.asarray(x)


def _sparse(n_pre=2, n_post=3):
    return jsyn.all_to_all(n_pre, n_post, W, sparse=True)


# -- the transmission is chosen once, at construction ----------------------------------------


def test_the_transmission_follows_the_parts():
    conn = _sparse()
    d_syn = jnp.linspace(0.0, 1.0, conn.syn_shape[0])
    cases = [
        (jsyn.Projection(conn, jsyn.Expon()), SummedKinetics, SummedState),
        (jsyn.Projection(conn, jsyn.Expon(), delay=1.0, dt=DT), SummedKinetics, SummedState),
        (jsyn.Projection(conn, jsyn.AMPA()), PerSynapseKinetics, PerSynapseState),
        (
            jsyn.Projection(conn, jsyn.Expon(), synapse_params="synapse"),
            PerSynapseKinetics,
            PerSynapseState,
        ),
        (jsyn.Projection(conn, jsyn.Expon(), plasticity=jsyn.STDP()), PlasticWeights, PlasticState),
    ]
    for proj, kind, state_kind in cases:
        assert type(proj.transmission) is kind
        assert type(proj.init_state().transmission) is state_kind
    per_syn = jsyn.Projection(conn, jsyn.AMPA(), delay=d_syn, dt=DT)
    assert per_syn.transmission.history_per_synapse
    assert per_syn.init_state().transmission.history.buffer.shape[1:] == conn.syn_shape
    one = jsyn.Projection(conn, jsyn.AMPA(), delay=1.0, dt=DT)
    assert not one.transmission.history_per_synapse
    assert one.init_state().transmission.history.buffer.shape[1:] == (3,)


def test_plastic_weights_learn_by_events_only_on_event_driven_sparse():
    rule = jsyn.STDP()
    on_sparse = jsyn.Projection(_sparse(), jsyn.Expon(), plasticity=rule).transmission
    on_dense = jsyn.Projection(jsyn.all_to_all(2, 3, W), jsyn.Expon(), plasticity=rule)
    syn_delay = jsyn.Projection(
        _sparse(), jsyn.Expon(), plasticity=rule, delay=jnp.full(6, 0.5), dt=DT
    ).transmission
    assert on_sparse.by_events and not on_sparse.per_synapse
    assert not on_dense.transmission.by_events
    assert syn_delay.by_events and syn_delay.delay_per_synapse  # grouped by delay
    assert syn_delay.groups is not None
    # a trace that resets (nn_symm) and fractional per-synapse delays: the dense update
    reset = jsyn.Projection(
        _sparse(),
        jsyn.Expon(),
        plasticity=jsyn.STDP(pairing="nn_symm"),
        delay=jnp.full(6, 0.55),
        dt=DT,
    ).transmission
    assert not reset.by_events and reset.delay_per_synapse
    # with STP and summed kinetics the delay buffer holds the spikes, then the signal
    with_stp = jsyn.Projection(
        _sparse(), jsyn.Expon(), stp=jsyn.STD(), plasticity=rule, delay=1.0, dt=DT
    )
    assert with_stp.transmission.sent_rows == 2
    assert with_stp.init_state().transmission.sent.buffer.shape[1:] == (4,)


def test_state_w_and_rule_are_the_plastic_weights_or_none():
    static = jsyn.Projection(_sparse(), jsyn.Expon()).init_state()
    assert static.w is None and static.rule is None
    plastic = jsyn.Projection(_sparse(), jsyn.Expon(), plasticity=jsyn.STDP()).init_state()
    np.testing.assert_array_equal(plastic.w, np.full(6, W))
    assert plastic.rule is plastic.transmission.traces


# -- each transmission against the closed form of one spike ------------------------------------


@pytest.mark.parametrize("synapse_params", ["post", "synapse"])
@pytest.mark.parametrize("delay", [None, 0.3])
def test_one_spike_gives_w_exp_decay_after_its_delay(synapse_params, delay):
    """Summed and per-synapse kinetics: $g_j(t) = \\sum_{i} w\\,e^{-(t - t_s - d)/\\tau}$
    from the step the spike arrives in (3 steps after it for 0.3 ms)."""
    proj = jsyn.Projection(
        _sparse(),
        jsyn.Expon(tau=TAU),
        delay=delay,
        dt=None if delay is None else DT,
        synapse_params=synapse_params,
    )
    _, g = jsyn.simulate(proj, _pulse(30, 2, [5]), DT)
    lag = 0 if delay is None else 3
    t = np.arange(30) - 5 - lag
    want = np.where(t >= 0, W * np.exp(-np.maximum(t, 0) * DT / TAU), 0.0)
    np.testing.assert_allclose(np.asarray(g), np.repeat(want[:, None], 3, axis=1), rtol=1e-12)


def test_summed_equals_per_synapse_kinetics_with_a_fractional_delay():
    conn = jsyn.fixed_prob(6, 4, 0.5, key=1, w=lambda n: jnp.linspace(0.1, 1.0, n))
    spikes = jax.random.bernoulli(jax.random.key(0), 0.2, (60, 6)).astype(jnp.float64)
    out = [
        jsyn.simulate(
            jsyn.Projection(conn, jsyn.Expon(tau=TAU), delay=0.45, dt=DT, synapse_params=p),
            spikes,
            DT,
        )[1]
        for p in ("post", "synapse")
    ]
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12, atol=1e-15)


# -- the pipeline: STP -> release -> transmission -> gain ---------------------------------------


def test_the_stages_apply_in_order():
    """STP scales each spike by its efficacy before the transmission (so feeding the
    efficacies to a projection without STP gives the same `g`), and the gain multiplies
    the output: g = (1 + k d) * transmission(r)."""
    conn, syn, spikes, k, d = _sparse(), jsyn.Expon(tau=TAU), _pulse(20, 2, [2, 4, 5]), 0.5, 0.8
    stp = jsyn.STD(U=U, tau=50.0)
    piped = jsyn.Projection(conn, syn, stp=stp, modulation=jsyn.ModulatedGain("DA", k=k))
    plain = jsyn.Projection(conn, syn)
    _, r = jsyn.simulate(stp, spikes, DT)
    state, ps = piped.init_state(), plain.init_state()
    for t in range(spikes.shape[0]):
        state, g = piped.step(state, spikes[t], DT, gain_modulator=jnp.array([d]))
        ps, g_plain = plain.step(ps, r[t], DT)
        np.testing.assert_allclose(g, (1 + k * d) * g_plain, rtol=1e-14)
    assert float(jnp.max(g)) > 0


def test_release_with_p_one_transmits_every_spike():
    conn, syn, spikes = _sparse(), jsyn.Expon(tau=TAU), _pulse(20, 2, [2, 9])
    sure = jsyn.Projection(conn, syn, release=jsyn.StochasticRelease(p=1.0))
    _, g = jsyn.simulate(sure, spikes, DT, key=jax.random.key(0))
    _, want = jsyn.simulate(jsyn.Projection(conn, syn), spikes, DT)
    np.testing.assert_allclose(g, want, rtol=1e-14)
    never = eqx.tree_at(lambda p: p.release.p, sure, jnp.asarray(0.0))
    _, g0 = jsyn.simulate(never, spikes, DT, key=jax.random.key(0))
    np.testing.assert_array_equal(g0, 0.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda c: jsyn.Projection(c, jsyn.Expon(), delay=0.25, dt=DT),
        lambda c: jsyn.Projection(c, jsyn.AMPA(), delay=jnp.linspace(0, 0.5, 6), dt=DT),
        lambda c: jsyn.Projection(c, jsyn.Expon(), stp=jsyn.STP()),
    ],
    ids=["summed", "per_synapse", "stp"],
)
def test_jit_equals_eager(build):
    proj = build(_sparse())
    spikes = _pulse(15, 2, [1, 3, 4])
    eager = jsyn.simulate(proj, spikes, DT)[1]
    jitted = jax.jit(lambda p, x: jsyn.simulate(p, x, DT)[1])(proj, spikes)
    np.testing.assert_allclose(eager, jitted, rtol=1e-13, atol=1e-16)


def test_a_stochastic_projection_needs_its_key_by_declaration():
    proj = jsyn.Projection(_sparse(), jsyn.Expon(), release=jsyn.StochasticRelease(p=0.5))
    assert proj.needs_key
    assert not jsyn.Projection(_sparse(), jsyn.Expon()).needs_key
    with pytest.raises(TypeError, match="Projection is stochastic: pass simulate"):
        jsyn.simulate(proj, _pulse(3, 2, [1]), DT)
    with pytest.raises(TypeError, match="takes no key"):
        jsyn.simulate(jsyn.Projection(_sparse(), jsyn.Expon()), _pulse(3, 2, [1]), DT, key=1)
