"""Closed-form checks of the linear kinetic synapses (docs/models.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jsyn
from helpers import central_fd, spike_train


def single_spike(model, n_steps=400, dt=0.1, at=0, weight=1.0):
    x = jnp.zeros((n_steps, 1)).at[at, 0].set(weight)
    _, g = jsyn.simulate(model, x, dt)
    t = (np.arange(n_steps) - at) * dt
    return t, g[:, 0]


def test_expon_single_spike_is_exact_on_grid():
    t, g = single_spike(jsyn.Expon(tau=8.0), at=7, weight=0.6)
    expected = jnp.where(t >= 0, 0.6 * jnp.exp(-t / 8.0), 0.0)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)


def test_alpha_single_spike_is_exact_and_peaks_at_one_over_e():
    tau = 10.0
    t, g = single_spike(jsyn.Alpha(tau_decay=tau), n_steps=1000)
    np.testing.assert_allclose(g, t / tau * jnp.exp(-t / tau), rtol=1e-12, atol=1e-15)
    assert int(jnp.argmax(g)) == 100  # t = tau = 10 ms
    np.testing.assert_allclose(g.max(), 1 / np.e, rtol=1e-12)


@pytest.mark.parametrize("tau_rise,tau_decay", [(1.0, 10.0), (3.0, 2.0), (0.5, 30.0)])
def test_dual_expon_single_spike_closed_form_and_unit_peak(tau_rise, tau_decay):
    t, g = single_spike(jsyn.DualExpon(tau_rise, tau_decay), n_steps=3000, dt=0.01)
    shape = jnp.exp(-t / tau_decay) - jnp.exp(-t / tau_rise)
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    peak_shape = np.exp(-t_peak / tau_decay) - np.exp(-t_peak / tau_rise)
    np.testing.assert_allclose(g, shape / peak_shape, rtol=1e-10, atol=1e-13)
    # Grid maximum sits within one step of the analytic peak time, at value ~1.
    assert abs(float(t[jnp.argmax(g)]) - t_peak) <= 0.01
    assert 1 - 1e-5 < float(g.max()) <= 1.0


def test_dual_expon_with_amplitude():
    t, g = single_spike(jsyn.DualExpon(tau_rise=2.0, tau_decay=6.0, A=0.7))
    np.testing.assert_allclose(g, 0.7 * (jnp.exp(-t / 6.0) - jnp.exp(-t / 2.0)), atol=1e-13)


def test_dual_expon_equal_taus_is_the_alpha_limit():
    tau = 5.0
    t, g = single_spike(jsyn.DualExpon(tau_rise=tau, tau_decay=tau), n_steps=600)
    np.testing.assert_allclose(g, np.e * t / tau * jnp.exp(-t / tau), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g[50], 1.0, rtol=1e-12)  # peak 1 at t = tau


@pytest.mark.parametrize("offset", [0.0, 1e-9, 1e-6, 1e-3, -1e-3])
def test_dual_expon_gradients_near_equal_taus_are_finite_and_correct(offset):
    x = spike_train(n_steps=200, n=1)

    def loss(tau_rise):
        _, g = jsyn.simulate(jsyn.DualExpon(tau_rise=tau_rise, tau_decay=5.0), x, 0.1)
        return jnp.sum(g)

    grad = jax.grad(loss)(5.0 + offset)
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, central_fd(loss, 5.0 + offset, 1e-4), rtol=1e-6)


def test_dual_expon_v2_matches_dual_expon():
    x = spike_train()
    _, g1 = jsyn.simulate(jsyn.DualExpon(1.5, 7.0), x, 0.1)
    _, g2 = jsyn.simulate(jsyn.DualExponV2(1.5, 7.0), x, 0.1)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)
    _, g1 = jsyn.simulate(jsyn.DualExpon(1.5, 7.0, A=2.0), x, 0.1)
    _, g2 = jsyn.simulate(jsyn.DualExponV2(1.5, 7.0, A=2.0), x, 0.1)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tau_rise,tau_decay", [(10.0, 10.0), (12.0, 10.0)])
def test_dual_expon_v2_rejects_rise_not_below_decay(tau_rise, tau_decay):
    with pytest.raises(ValueError, match="tau_rise < tau_decay.*DualExpon"):
        jsyn.DualExponV2(tau_rise=tau_rise, tau_decay=tau_decay)


def kernel(model: str, t, tau_rise=1.5, tau_decay=7.0):
    """The single-spike response of unit weight, from docs/models.md, at lags t >= 0."""
    if model == "Expon":
        return np.exp(-t / tau_decay)
    if model == "Alpha":
        return t / tau_decay * np.exp(-t / tau_decay)
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    peak = np.exp(-t_peak / tau_decay) - np.exp(-t_peak / tau_rise)
    return (np.exp(-t / tau_decay) - np.exp(-t / tau_rise)) / peak


MODELS = {
    "Expon": jsyn.Expon(tau=7.0),
    "Alpha": jsyn.Alpha(tau_decay=7.0),
    "DualExpon": jsyn.DualExpon(1.5, 7.0),
    "DualExponV2": jsyn.DualExponV2(1.5, 7.0),
}


@pytest.mark.parametrize("name", MODELS)
def test_irregular_train_is_the_superposition_of_kernels(name):
    """Linear kinetics: the response to a weighted irregular train is the sum of shifted
    single-spike responses, evaluated independently with NumPy."""
    dt = 0.1
    x = np.asarray(spike_train(n_steps=500, n=2, seed=3, rate=0.03))
    _, g = jsyn.simulate(MODELS[name], jnp.asarray(x), dt)
    lags = (np.arange(500)[:, None] - np.arange(500)[None, :]) * dt
    kern = np.where(lags >= 0, kernel(name.removesuffix("V2"), np.maximum(lags, 0)), 0.0)
    np.testing.assert_allclose(g, kern @ x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_grid_values_do_not_depend_on_dt(name):
    """Spikes on a common grid: values at common grid points agree for dt, dt/2, dt/4."""
    coarse = np.asarray(spike_train(n_steps=200, n=2, seed=4, rate=0.08))
    runs = []
    for k in (1, 2, 4):
        fine = np.zeros((200 * k, 2))
        fine[::k] = coarse
        _, g = jsyn.simulate(MODELS[name], jnp.asarray(fine), 0.2 / k)
        runs.append(np.asarray(g)[::k])
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(runs[2], runs[0], rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    tau=st.floats(0.3, 50.0),
    steps=st.lists(st.integers(0, 59), min_size=1, max_size=8),
    weight=st.floats(-2.0, 2.0),
)
def test_expon_matches_closed_form_for_any_train(tau, steps, weight):
    dt = 0.25
    x = np.zeros((60, 1))
    for s in steps:
        x[s, 0] += weight
    _, g = jsyn.simulate(jsyn.Expon(tau=tau), jnp.asarray(x), dt)
    t = np.arange(60) * dt
    expected = sum(weight * np.where(t >= s * dt, np.exp(-(t - s * dt) / tau), 0.0) for s in steps)
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-9, atol=1e-12)
