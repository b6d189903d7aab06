"""Quantal stochastic STP: the mean efficacy over many keys follows the deterministic
Tsodyks-Markram efficacy (many sites), releases are whole numbers of sites, recovery of an
empty pool at any dt, use in a projection, and the errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

U, TAU_F, TAU_D = 0.3, 50.0, 100.0


@pytest.mark.slow
def test_mean_over_keys_is_the_tsodyks_markram_efficacy():
    """400 sites, 200 keys: the mean efficacy of each spike of a 40 Hz train matches STP's
    u x within 4 standard errors (the spread shrinks as 1/sqrt(n sites))."""
    n_sites, n_keys, dt = 400, 200, 0.5
    x = jnp.zeros((400, 1)).at[::50].set(1.0)
    model = jsyn.QuantalSTP(n_sites=n_sites, U=U, tau_f=TAU_F, tau_d=TAU_D)
    keys = jax.random.split(jax.random.key(0), n_keys)
    r = jax.vmap(lambda k: jsyn.simulate(model, x, dt, key=k)[1][::50, 0])(keys)
    _, r_tm = jsyn.simulate(jsyn.STP(U=U, tau_f=TAU_F, tau_d=TAU_D), x, dt)
    r, r_tm = np.asarray(r), np.asarray(r_tm)[::50, 0]
    k = r * n_sites
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    se = r.std(axis=0) / np.sqrt(n_keys)
    assert np.all(np.abs(r.mean(axis=0) - r_tm) < 4 * se + 1e-12)
    assert r_tm[-1] < 0.8 * r_tm[1]  # the train depresses: a test of the dynamics, not of 0


@pytest.mark.slow
def test_an_emptied_pool_recovers_at_the_exact_rate_at_any_dt():
    """U = 1 without facilitation empties every pool at a spike; a second spike Delta later
    releases Binomial(n, 1 - e^{-Delta/tau_d}) sites, on average, at dt 0.1 and 5."""
    n_sites, n_pools, delta = 50, 2000, 100.0
    for dt in (0.1, 5.0):
        steps = round(delta / dt)
        x = jnp.zeros((steps + 1, n_pools)).at[0].set(1.0).at[steps].set(1.0)
        model = jsyn.QuantalSTP(n_sites=n_sites, U=1.0, tau_f=1e-3, tau_d=TAU_D)
        _, r = jsyn.simulate(model, x, dt, key=jax.random.key(1))
        np.testing.assert_allclose(r[0], 1.0)
        q = -np.expm1(-delta / TAU_D)
        se = np.sqrt(q * (1 - q) / (n_sites * n_pools))
        assert abs(float(r[steps].mean()) - q) < 4 * se


@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_as_the_stp_of_a_projection_in_a_network():
    stp = jsyn.QuantalSTP(n_sites=20, U=0.5, tau_d=200.0)
    proj = jsyn.Projection(
        jsyn.one_to_one(50), jsyn.Expon(5.0), jsyn.COBA(E=0.0), pre="P", post="E", stp=stp
    )
    net = jsyn.Network({"P": jsyn.Poisson(jnp.full(50, 100.0)), "E": (jsyn.LIF(), 50)}, {"p": proj})
    rec = lambda s, spikes: s.projections["p"].stp.a  # noqa: E731
    _, a = jsyn.simulate(net, None, 0.1, n_steps=200, key=jax.random.key(2), record=rec)
    a = np.asarray(a)
    assert np.all((a >= 0) & (a <= 20)) and a.min() < 20
    np.testing.assert_allclose(a, np.round(a))


def test_errors():
    with pytest.raises(ValueError, match="n_sites must be a whole number >= 1"):
        jsyn.QuantalSTP(n_sites=0)
    with pytest.raises(ValueError, match=r"QuantalSTP.U must be in \(0, 1\]"):
        jsyn.QuantalSTP(U=1.5)
    with pytest.raises(ValueError, match="spikes, 0 or 1 per step"):
        jsyn.simulate(jsyn.QuantalSTP(), jnp.full((3, 1), 2.0), 0.1, key=jax.random.key(0))
