"""A neuromodulator's gain on a projection: the conductance against the closed form
(1 + k d(t)) w e^{-(t - t_s)/tau} for one spike and one reward, per-neuron concentrations,
and the errors."""

import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT, TAU, TAU_D, K = 0.1, 5.0, 50.0, 0.6
T_SPIKE, N_STEPS = 2.0, 400


def network(n_da=1):
    proj = jsyn.Projection(
        jsyn.Dense(jnp.array([[0.8, 0.5]])),
        jsyn.Expon(TAU),
        jsyn.COBA(E=0.0),
        pre="pre",
        post="post",
        modulation=jsyn.ModulatedGain("DA", k=K),
    )
    groups = {
        "pre": jsyn.SpikeTimes([T_SPIKE], [0], n=1),
        "DA": (jsyn.Neuromodulator(tau_d=TAU_D), n_da),
        "post": (jsyn.LIF(), 2),
    }
    return jsyn.Network(groups, {"p": proj})


def run(net, rewards):
    _, g = jsyn.simulate(net, {"DA": rewards}, DT, record=lambda s, spikes: s.projections["p"].g)
    return np.asarray(g)


def test_gain_scales_the_conductance_by_one_plus_k_d():
    t_r = 5.0  # the reward, after the spike: the ongoing response is scaled at once
    rewards = jnp.zeros((N_STEPS, 1)).at[round(t_r / DT)].set(1.0)
    g = run(network(), rewards)
    t = np.arange(N_STEPS) * DT
    d = np.where(t >= t_r - 1e-9, np.exp(-(t - t_r) / TAU_D), 0.0)
    kin = np.where(t >= T_SPIKE - 1e-9, np.exp(-(t - T_SPIKE) / TAU), 0.0)
    want = (1 + K * d)[:, None] * kin[:, None] * np.array([0.8, 0.5])
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)


def test_one_concentration_per_postsynaptic_neuron():
    rewards = jnp.zeros((N_STEPS, 2)).at[10, 1].set(2.0)
    g = run(network(n_da=2), rewards)
    t = np.arange(N_STEPS) * DT
    kin = np.where(t >= T_SPIKE - 1e-9, np.exp(-(t - T_SPIKE) / TAU), 0.0)
    d1 = np.where(t >= 1.0 - 1e-9, 2.0 * np.exp(-(t - 1.0) / TAU_D), 0.0)
    np.testing.assert_allclose(g[:, 0], 0.8 * kin, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g[:, 1], 0.5 * kin * (1 + K * d1), rtol=1e-12, atol=1e-15)


def test_errors(untyped):
    proj = network().projections["p"]
    with pytest.raises(ValueError, match="its modulation reads the neuromodulator group 'DA'"):
        jsyn.Network(
            {"pre": jsyn.SpikeTimes([1.0], [0], n=1), "post": (jsyn.LIF(), 2)}, {"p": proj}
        )
    with pytest.raises(ValueError, match="needs the concentration of its neuromodulator group"):
        jsyn.simulate(proj, jnp.ones((3, 1)), DT)
    with pytest.raises(TypeError, match="name of a jsyn.Neuromodulator group"):
        jsyn.ModulatedGain("")
    with pytest.raises(TypeError, match="must be jsyn.ModulatedGain"):
        jsyn.Projection(jsyn.Dense(1.0, 1, 2), jsyn.Expon(), modulation="DA")
