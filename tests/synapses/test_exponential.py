"""Closed-form checks of the linear kinetic synapses (docs/models.md)."""

import decimal
import functools
import itertools

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


# -- float precision over the whole domain, against 100-digit decimal arithmetic -----------

DTYPES = [jnp.float32, jnp.float64]
TAU_GRID = [0.01, 0.3, 1.0, 5.0, 5.000001, 5.0 * (1 + 1e-12), 20.0]
N_STEPS = 60


def ref_unit_peak(n_steps, dt, tau_r, tau_d):
    """The unit-peak single-spike response at lags 0, dt, ..., all Decimal (docs/models.md):
    p/tau_r (e^{-t/tau_d} - e^{-t/tau_r}) / (1/tau_r - 1/tau_d), or e t/tau e^{-t/tau} at
    a tie, with e^{-n dt/tau} taken as a power of e^{-dt/tau}."""
    q_r, q_d = (-dt / tau_r).exp(), (-dt / tau_d).exp()
    if tau_r == tau_d:
        return [decimal.Decimal(1).exp() * n * dt / tau_r * q_r**n for n in range(n_steps)]
    gain = (tau_r / (tau_r - tau_d) * (tau_r / tau_d).ln()).exp() / tau_r
    return [gain * (q_d**n - q_r**n) / (1 / tau_r - 1 / tau_d) for n in range(n_steps)]


def grid_pairs(cls, dtype):
    """Every pair of `TAU_GRID` as the dtype rounds it (DualExponV2: rise below decay)."""
    pairs = np.asarray(list(itertools.product(TAU_GRID, TAU_GRID)), dtype)
    return pairs if cls is jsyn.DualExpon else pairs[pairs[:, 0] < pairs[:, 1]]


def exact(x):
    return decimal.Decimal(float(x))


def underflow(dtype):
    """Results this close to the smallest normal number may lose their digits (XLA flushes
    subnormal numbers to zero)."""
    return float(jnp.finfo(dtype).tiny / jnp.finfo(dtype).eps)


GRID_STEPS = (0.1, 1.0)


@functools.cache
def grid_runs(cls, dtype):
    """For every pair of `grid_pairs` and each step of `GRID_STEPS`: the single-spike
    response (step, time, pair) and the gradients w.r.t. tau_rise and tau_decay of
    sum_n (n + 1) g_n (step, pair); one compilation per model and dtype."""
    pairs = grid_pairs(cls, dtype)
    x = jnp.zeros((N_STEPS, len(pairs)), dtype).at[0].set(1.0)
    w = jnp.arange(1, N_STEPS + 1, dtype=dtype)[:, None]

    def loss(tau_r, tau_d, dt):
        _, g = jsyn.simulate(cls(tau_r, tau_d), x, dt)
        return jnp.sum(w * g), g

    run = jax.vmap(jax.grad(loss, argnums=(0, 1), has_aux=True), in_axes=(None, None, 0))
    grads, g = jax.jit(run)(*jnp.asarray(pairs.T), jnp.asarray(GRID_STEPS, dtype))
    return pairs, np.asarray(g, float), np.asarray(grads, float).transpose(1, 0, 2)


models_and_dtypes = pytest.mark.parametrize(
    "cls,dtype", list(itertools.product([jsyn.DualExpon, jsyn.DualExponV2], DTYPES))
)


@models_and_dtypes
@pytest.mark.slow  # 18 s in the default lane (2 workers, 2 cores)
def test_single_spike_to_float_precision_for_any_taus(cls, dtype):
    """Rise slower or faster than decay by up to 2000x, equal, or 1e-7 and 1e-12 apart,
    dt/tau from 0.005 to 100: every sample within 2 eps (n + t/tau_min) of the decimal
    value, the growth of rounding over n steps of exponentials conditioned by t/tau.
    (Before: NaN for tau_rise = 5, tau_decay = 0.01 at dt = 1 in float32; DualExponV2
    flat at 0 for 5, 5.000001.)"""
    pairs, g, _ = grid_runs(cls, dtype)
    eps = float(jnp.finfo(dtype).eps)
    with decimal.localcontext(prec=100):
        for k, dt in enumerate(GRID_STEPS):
            h = exact(jnp.asarray(dt, dtype))
            for j, (tau_r, tau_d) in enumerate(pairs):
                ref = ref_unit_peak(N_STEPS, h, exact(tau_r), exact(tau_d))
                for n in range(N_STEPS):
                    want = float(ref[n])
                    cond = n + 1 + n * float(h) / float(min(tau_r, tau_d))
                    bound = 2 * eps * cond * abs(want) + underflow(dtype)
                    assert abs(g[k, n, j] - want) <= bound, (tau_r, tau_d, dt, n, g[k, n, j])


@models_and_dtypes
def test_gradients_to_float_precision_for_any_taus(cls, dtype):
    """d/dtau_rise and d/dtau_decay of a weighted sum of the single-spike response, against
    decimal central differences (step 1e-30) of the closed form, on the grid above: within
    4 eps (n + n dt/tau_min) of the larger of the two. (Before: failed for both models in
    float32 and float64; DualExponV2 formed g_decay - g_rise, which cancels.)"""
    pairs, _, grads = grid_runs(cls, dtype)
    eps = float(jnp.finfo(dtype).eps)
    step = decimal.Decimal("1e-30")
    with decimal.localcontext(prec=100):
        for k, dt in enumerate(GRID_STEPS):
            h = exact(jnp.asarray(dt, dtype))

            def ref_loss(tau_r, tau_d, h=h):
                return sum(
                    (n + 1) * g for n, g in enumerate(ref_unit_peak(N_STEPS, h, tau_r, tau_d))
                )

            for j, (tau_r, tau_d) in enumerate(pairs):
                a, b = exact(tau_r), exact(tau_d)
                want = [
                    float((ref_loss(a + step, b) - ref_loss(a - step, b)) / (2 * step)),
                    float((ref_loss(a, b + step) - ref_loss(a, b - step)) / (2 * step)),
                ]
                cond = N_STEPS * (1 + float(h) / float(min(tau_r, tau_d)))
                bound = 4 * eps * cond * max(map(abs, want)) + underflow(dtype)
                for i in range(2):
                    got = grads[k, i, j]
                    assert np.isfinite(got) and abs(got - want[i]) <= bound, (tau_r, tau_d, dt, i)


@functools.cache
def dual_expon_run(dtype):
    """A jitted single-spike run of 20 steps of `DualExpon(tau_r, tau_d)` at step `dt`."""
    x = jnp.zeros((20, 1), dtype).at[0].set(1.0)
    return jax.jit(lambda tau_r, tau_d, dt: jsyn.simulate(jsyn.DualExpon(tau_r, tau_d), x, dt)[1])


@settings(max_examples=40, deadline=None)
@given(
    tau_r=st.floats(-2.0, 2.0).map(lambda e: 10.0**e),
    log_ratio=st.one_of(st.just(0.0), st.floats(-1e-6, 1e-6), st.floats(-3.0, 3.0)),
    dt=st.floats(-2.0, 1.0).map(lambda e: 10.0**e),
    dtype=st.sampled_from(DTYPES),
)
def test_dual_expon_single_spike_to_float_precision_anywhere(tau_r, log_ratio, dt, dtype):
    """As the grid test, for DualExpon at random time constants and steps."""
    tau_r, tau_d = np.asarray([tau_r, tau_r * 10.0**log_ratio], dtype)
    g = dual_expon_run(dtype)(tau_r, tau_d, jnp.asarray(dt, dtype))
    eps, h = float(jnp.finfo(dtype).eps), exact(jnp.asarray(dt, dtype))
    with decimal.localcontext(prec=100):
        ref = ref_unit_peak(20, h, exact(tau_r), exact(tau_d))
        for n in range(20):
            want = float(ref[n])
            cond = n + 1 + n * float(h) / float(min(tau_r, tau_d))
            assert abs(float(g[n, 0]) - want) <= 2 * eps * cond * abs(want) + underflow(dtype)


def test_dual_expon_v2_unit_peak_for_close_taus_in_float32():
    """The issue's case: 5 and 5.000001 ms in float32 peak at 1 (was 0.0)."""
    x = jnp.zeros((200, 1), jnp.float32).at[0, 0].set(1.0)
    _, g = jsyn.simulate(jsyn.DualExponV2(5.0, 5.000001), x, 0.1)
    np.testing.assert_allclose(g.max(), 1.0, rtol=1e-6)
    assert int(jnp.argmax(g)) == 50
