"""OU conductance noise: the exact step gives the stationary mean g0, variance sigma^2 and
autocorrelation exp(-lag/tau) at any dt (over many independent processes), the transient
variance sigma^2 (1 - e^{-2t/tau}) from g0, spikes as jumps, and the process in a network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

G0, SIGMA, TAU, N = 2.0, 0.5, 3.0, 20000


@pytest.mark.parametrize("dt", [0.05, 5.0])
def test_stationary_moments_and_autocorrelation_at_any_dt(dt):
    """After 10 tau the processes are stationary: mean g0, variance sigma^2; the correlation
    of g(t) with g(t + lag), lag = 2 tau rounded to the grid, is exp(-lag/tau)."""
    burn = int(np.ceil(10 * TAU / dt))
    lag = max(1, round(2 * TAU / dt))
    ou = jsyn.OUNoise(g0=G0, sigma=SIGMA, tau=TAU)
    _, g = jsyn.simulate(ou, jnp.zeros((burn + lag + 1, N)), dt, key=jax.random.key(0))
    a, b = np.asarray(g[burn]), np.asarray(g[burn + lag])
    assert abs(a.mean() - G0) < 4 * SIGMA / np.sqrt(N)
    assert abs(a.var() / SIGMA**2 - 1) < 4 * np.sqrt(2 / N)
    rho = np.corrcoef(a, b)[0, 1]
    assert abs(rho - np.exp(-lag * dt / TAU)) < 4 / np.sqrt(N)


def test_transient_variance_from_g0_and_spikes_as_jumps():
    """From g = g0 the variance after t is sigma^2 (1 - e^{-2t/tau}) (exact at every step);
    a jump of w at t_s adds w e^{-(t - t_s)/tau} to the mean."""
    dt, n_steps = 0.5, 8
    x = jnp.zeros((n_steps, N)).at[2].set(0.8)
    _, g = jsyn.simulate(jsyn.OUNoise(G0, SIGMA, TAU), x, dt, key=jax.random.key(1))
    t = (np.arange(n_steps) + 1) * dt
    var = SIGMA**2 * -np.expm1(-2 * t / TAU)
    mean = G0 + np.where(t >= 3 * dt, 0.8 * np.exp(-(t - 3 * dt) / TAU), 0.0)
    g = np.asarray(g)
    assert np.all(np.abs(g.mean(axis=1) - mean) < 4 * np.sqrt(var / N))
    assert np.all(np.abs(g.var(axis=1) / var - 1) < 4 * np.sqrt(2 / N))


def test_step_is_the_drive_free_step_plus_the_drive():
    ou = jsyn.OUNoise(G0, SIGMA, TAU)
    state = ou.init_state(3, key=jax.random.key(2))
    x = jnp.array([0.0, 0.5, 1.5])
    _, g = ou.step(state, x, 0.1)
    decayed, _ = ou.step(state, 0.0, 0.1)
    _, g2 = ou.add_drive(decayed, jsyn.synapses.base.Drive(x))
    np.testing.assert_allclose(g, g2, rtol=1e-14)


@pytest.mark.slow  # 7 s in the default lane (2 workers, 2 cores)
def test_runs_in_a_network_as_a_projection():
    """Noise alone (weight 0) on 2000 cells: the conductance stays near g0 with spread
    sigma, and drives the cells through COBA."""
    n = 2000
    proj = jsyn.Projection(
        jsyn.one_to_one(n, w=0.0),
        jsyn.OUNoise(G0, SIGMA, TAU),
        jsyn.COBA(g_max=1.0, E=0.0),
        pre="E",
        post="E",
    )
    net = jsyn.Network({"E": (jsyn.LIF(), n)}, {"bg": proj})
    rec = lambda s, spikes: s.projections["bg"].g  # noqa: E731
    _, g = jsyn.simulate(net, None, 0.1, n_steps=300, key=jax.random.key(3), record=rec)
    last = np.asarray(g[-1])
    assert abs(last.mean() - G0) < 4 * SIGMA / np.sqrt(n)
    assert abs(last.std() / SIGMA - 1) < 0.1
    with pytest.raises(TypeError, match="stochastic: pass simulate"):
        jsyn.simulate(net, None, 0.1, n_steps=3)
    with pytest.raises(TypeError, match=r"Network projections \['bg'\] are stochastic and need"):
        net.init_state()


def test_errors():
    with pytest.raises(ValueError, match=r"OUNoise.tau must be > 0"):
        jsyn.OUNoise(tau=-1.0)
    with pytest.raises(ValueError, match=r"OUNoise.sigma must be >= 0"):
        jsyn.OUNoise(sigma=-0.1)
    with pytest.raises(TypeError, match="stochastic"):
        jsyn.simulate(jsyn.OUNoise(), jnp.zeros((3, 2)), 0.1)
