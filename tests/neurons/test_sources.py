"""Spike sources: given times and Poisson trains."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn


def test_spike_times_land_on_nearest_step_and_are_counted():
    src = jsyn.SpikeTimes([0.0, 1.0, 1.04, 2.26, 0.3], [0, 1, 1, 0, 2])
    shared = r"2 spikes into steps.*neuron 1, spikes at 1 and 1.04 ms, both in step 10"
    with pytest.warns(jsyn.UnitWarning, match=shared):
        _, spikes = jsyn.simulate(src, None, 0.1, n_steps=30)
    expected = np.zeros((30, 3))
    expected[0, 0] = expected[10, 1] = expected[23, 0] = expected[3, 2] = 1
    expected[10, 1] += 1  # two spikes in one step add up: none is dropped
    np.testing.assert_array_equal(spikes, expected)
    with pytest.warns(jsyn.UnitWarning, match=shared):
        np.testing.assert_array_equal(src.raster(30, 0.1), expected)


def test_spike_times_split_run_continues():
    src = jsyn.SpikeTimes(np.arange(0.0, 10.0, 0.7))
    _, whole = jsyn.simulate(src, None, 0.1, n_steps=100)
    mid, first = jsyn.simulate(src, None, 0.1, n_steps=40)
    _, second = jsyn.simulate(src, None, 0.1, n_steps=60, state=mid)
    np.testing.assert_array_equal(whole, np.concatenate([first, second]))
    assert whole.sum() == 15


@pytest.mark.parametrize(
    "times,indices,n,match",
    [
        ([1.0, -0.5], [0, 0], None, "finite and >= 0"),
        ([1.0, np.nan], [0, 0], None, "finite and >= 0"),
        ([1.0, 2.0], [0, 3], 2, r"indices must lie in \[0, 2\)"),
        ([1.0, 2.0], [0], None, "one index per spike time"),
    ],
)
def test_spike_times_reject_bad_input(times, indices, n, match):
    with pytest.raises(ValueError, match=match):
        jsyn.SpikeTimes(times, indices, n)


def test_poisson_rate_and_reproducibility(getkey):
    key = getkey()
    rates = jnp.array([10.0, 50.0])  # Hz
    src = jsyn.Poisson(rates)
    _, s1 = jsyn.simulate(src, None, 0.1, n_steps=20000, key=key)
    _, s2 = jsyn.simulate(src, None, 0.1, n_steps=20000, key=key)
    np.testing.assert_array_equal(s1, s2)
    counts = np.asarray(s1.sum(0))
    expected = 20000 * np.asarray(rates) * 0.1 / 1000
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # 5 sigma


def test_poisson_needs_a_key():
    with pytest.raises(TypeError, match="stochastic.*key"):
        jsyn.simulate(jsyn.Poisson(jnp.full(3, 20.0)), None, 0.1, n_steps=10)


def test_poisson_trials_differ_by_key(getkey):
    src = jsyn.Poisson(jnp.full(4, 50.0))
    keys = jax.random.split(getkey(), 3)
    runs = jax.vmap(lambda k: jsyn.simulate(src, None, 0.1, n_steps=500, key=k)[1])(keys)
    assert not np.array_equal(runs[0], runs[1])


# -- SpikeTimes.raster: every spike lands in the window, or a clear error -------------------


@pytest.mark.parametrize(
    "n_steps,dt,match",
    [
        (30, 0.0, r"dt must be finite and > 0 ms \(got 0.0\)"),
        (30, -0.1, r"dt must be finite and > 0 ms \(got -0.1\)"),
        (30, np.nan, r"dt must be finite and > 0 ms \(got nan\)"),
        (30, np.inf, r"dt must be finite and > 0 ms \(got inf\)"),
        (20, 0.1, r"raster\(20, dt\) covers steps 0..19.*\(got spike time=2.26, dt=0.1"),
        (30, 0.2, r"raster\(30, dt\) covers steps 0..29.*\(got spike time=6.0, dt=0.2"),
    ],
)
def test_raster_refuses_bad_dt_and_spikes_past_the_end(n_steps, dt, match):
    src = jsyn.SpikeTimes([0.0, 1.0, 2.26, 6.0], [0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        src.raster(n_steps, dt)
    plain = match.split(r" \(got")[0].split(r".*\(got")[0]  # values are not shown traced
    with pytest.raises(Exception, match=plain):
        jax.jit(lambda dt: src.raster(n_steps, dt))(dt).block_until_ready()
    with pytest.raises(Exception, match=plain):
        jax.vmap(lambda dt: src.raster(n_steps, dt))(jnp.array([0.1, dt])).block_until_ready()


def test_raster_refuses_bad_times_under_jit():
    def raster(times):
        return jsyn.SpikeTimes(times).raster(100, 0.1)

    np.testing.assert_array_equal(jax.jit(raster)(jnp.array([1.0, 2.0])), raster([1.0, 2.0]))
    for bad in (-0.5, np.nan):
        with pytest.raises(Exception, match="SpikeTimes.times must be finite and >= 0"):
            jax.jit(raster)(jnp.array([1.0, bad])).block_until_ready()


def test_raster_needs_an_integer_number_of_steps(untyped):
    with pytest.raises(TypeError, match=r"n_steps must be an integer \(got 2.5\)"):
        jsyn.SpikeTimes([0.1]).raster(2.5, 0.1)


def test_raster_of_the_whole_window_equals_the_run():
    src = jsyn.SpikeTimes([0.0, 0.7, 2.94, 2.96], [0, 1, 1, 0])
    _, spikes = jsyn.simulate(src, None, 0.1, n_steps=30)  # 2.96 ms rounds to step 30
    raster = src.raster(31, 0.1)
    np.testing.assert_array_equal(raster[:30], spikes)
    assert raster.sum() == 4 and raster[30, 0] == 1


# -- Poisson: rates in Hz, at most one spike per step ---------------------------------------


def test_poisson_rates_are_in_hz(getkey):
    """20 Hz for 1 s on 500 neurons: 10 000 spikes expected (old 1/ms rates: 8.7 kHz)."""
    _, s = jsyn.simulate(jsyn.Poisson(jnp.full(500, 20.0)), None, 0.5, n_steps=2000, key=getkey())
    rate = float(s.sum()) / 500 / 1.0  # Hz: spikes per neuron per second
    assert abs(rate - 20.0) < 5 * np.sqrt(20.0 / 500)


def test_poisson_mean_rate_is_exact_up_to_one_spike_per_step(getkey):
    """p = rate * dt / 1000 per step: 5 kHz at dt = 0.1 ms is a spike every other step
    (1 - exp(-0.5) = 0.39 would lose a fifth of the spikes)."""
    _, s = jsyn.simulate(jsyn.Poisson(jnp.full(4, 5000.0)), None, 0.1, n_steps=20000, key=getkey())
    p = float(s.mean())
    assert abs(p - 0.5) < 5 * np.sqrt(0.25 / s.size)
    _, s = jsyn.simulate(jsyn.Poisson(jnp.full(4, 10000.0)), None, 0.1, n_steps=100, key=getkey())
    assert float(s.min()) == 1.0  # p = 1: every step


def test_poisson_rate_above_one_spike_per_step_is_refused(getkey):
    key = getkey()

    def run(rate):
        return jsyn.simulate(jsyn.Poisson(jnp.full(3, rate)), None, 0.1, n_steps=10, key=key)[1]

    match = r"Poisson needs rates \* dt / 1000 <= 1"
    with pytest.raises(ValueError, match=match + r".*\(got rates=20000.0, dt=0.1 at .*1000 / rate"):
        run(20000.0)
    with pytest.raises(Exception, match=match):
        jax.jit(run)(20000.0).block_until_ready()
    with pytest.raises(Exception, match=match):
        jax.vmap(run)(jnp.array([20.0, 20000.0])).block_until_ready()
    with pytest.raises(ValueError, match=match + r".*\(got rates=20000.0"):
        jax.grad(lambda r: run(r).sum())(20000.0)
    run(10000.0)  # exactly one spike per step is allowed
    with pytest.raises(ValueError, match=r"Poisson.rates must be >= 0 \(got -1.0.*Hz"):
        jsyn.Poisson(jnp.array([5.0, -1.0]))


def test_poisson_in_a_network_is_checked_with_the_run_dt(getkey):
    net = jsyn.Network({"in": jsyn.Poisson(jnp.full(3, 2000.0)), "c": (jsyn.LIF(), 1)})
    jsyn.simulate(net, None, 0.5, n_steps=5, key=getkey())
    with pytest.raises(ValueError, match=r"Poisson needs rates \* dt / 1000 <= 1.*dt=1.0"):
        jsyn.simulate(net, None, 1.0, n_steps=5, key=getkey())


# -- units: values that are probably in the wrong unit warn where they enter ----------------


def test_poisson_rates_all_below_1_hz_warn_as_likely_1_per_ms():
    with pytest.warns(jsyn.UnitWarning, match=r"all below 1 Hz \(max 0.02 Hz\).*multiply by 1000"):
        jsyn.Poisson(jnp.full(100, 0.02))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jsyn.Poisson(jnp.full(100, 20.0))  # Hz: no warning
        jsyn.Poisson(jnp.array([0.5, 3.0]))  # one slow rate among others: no warning
        jsyn.Poisson(jnp.zeros(3))  # a silent group is meant
        jax.jit(lambda r: jsyn.Poisson(r).rates)(jnp.full(3, 0.02))  # traced: not known
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=jsyn.UnitWarning)  # the documented opt-out
        jsyn.Poisson(jnp.full(3, 0.02))


def test_spike_times_in_seconds_warn_at_the_run_and_in_the_raster():
    """Issue 19: spike times in seconds put 4 spikes into rows 0-1 at dt = 0.1 ms."""
    src = jsyn.SpikeTimes([0.010, 0.040, 0.045, 0.090, 0.120])
    match = (
        r"SpikeTimes puts 5 spikes into steps.*both in step 0 of dt=0.1 ms.*multiply them by 1000"
    )
    with pytest.warns(jsyn.UnitWarning, match=match):
        jsyn.simulate(src, None, 0.1, n_steps=10)
    with pytest.warns(jsyn.UnitWarning, match=match):
        src.raster(10, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jsyn.simulate(jsyn.SpikeTimes([10.0, 40.0, 45.0, 90.0, 120.0]), None, 0.1, n_steps=10)


# -- exact steps: computed on the host, whatever the dtype ----------------------------------


def test_raster_rows_are_exact_in_float32():
    """Issue 19: in float32, 1677721.7 ms at dt = 0.1 ms went to row 16777218."""
    with jax.enable_x64(False):
        src = jsyn.SpikeTimes([1677721.7, 0.25, 12.34])
        assert src.times.dtype == jnp.float32
        raster = src.raster(16777230, 0.1)
        assert raster.dtype == jnp.float32
        np.testing.assert_array_equal(np.flatnonzero(np.asarray(raster[:, 0])), [2, 123, 16777217])


def test_a_float32_run_that_would_move_a_spike_is_refused():
    with jax.enable_x64(False):
        src = jsyn.SpikeTimes([1.0, 1677721.7])
        with pytest.raises(ValueError, match=r"cannot place every spike on its step.*x64"):
            jsyn.simulate(src, None, 0.1, n_steps=10)
        jsyn.simulate(jsyn.SpikeTimes([1.0, 2.5]), None, 0.1, n_steps=10)  # short: exact


def test_trials_keep_each_spike_exact_in_float32():
    """`jsyn.trials` lays a source out with `for_trials`: each trial's spikes renumbered
    `i * B + b`, their times exact (the residual float32 rounds off is kept)."""
    times = np.array([1677721.7, 0.25, 12.34])
    with jax.enable_x64(False):
        src = jsyn.SpikeTimes(times, [1, 0, 1], n=2)
        batch = src.for_trials(3, None)
        assert batch.n == 6 and batch.times.dtype == jnp.float32
        exact = np.asarray(batch.times, np.float64) + np.asarray(batch.residual, np.float64)
        order = np.argsort(np.asarray(batch.indices), kind="stable")
        np.testing.assert_array_equal(np.asarray(batch.indices)[order], [0, 1, 2, 3, 3, 4, 4, 5, 5])
        expected = np.array([0.25] * 3 + [12.34, 1677721.7] * 3)
        np.testing.assert_allclose(exact[order], expected, rtol=1e-12)
        np.testing.assert_array_equal(np.rint(exact[order] / 0.1), np.rint(expected / 0.1))


# -- in time order: a step costs its own spikes, not the stored ones -----------------------


def test_unsorted_spikes_replay_like_the_raster(getkey):
    rng = np.random.default_rng(3)
    times = rng.uniform(0.0, 50.0, 400)
    cells = rng.integers(0, 7, 400)
    src = jsyn.SpikeTimes(times, cells, n=7)
    np.testing.assert_array_equal(np.diff(np.asarray(src.times)) >= 0, True)  # time order
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=jsyn.UnitWarning)  # bursts are meant here
        raster = src.raster(501, 0.1)
        _, spikes = jsyn.simulate(src, None, 0.1, n_steps=501)
    np.testing.assert_array_equal(spikes, raster)
    assert float(spikes.sum()) == 400
    ref = np.zeros((501, 7))
    np.add.at(ref, (np.rint(times / 0.1).astype(int), cells), 1.0)
    np.testing.assert_array_equal(spikes, ref)


def test_spike_times_state_saves_and_continues(tmp_path):
    src = jsyn.SpikeTimes(np.arange(0.0, 10.0, 0.7))
    mid, first = jsyn.simulate(src, None, 0.1, n_steps=40)
    jsyn.save(tmp_path / "state.eqx", mid)
    loaded = jsyn.load(tmp_path / "state.eqx", src.init_state())
    _, second = jsyn.simulate(src, None, 0.1, n_steps=60, state=loaded)
    _, whole = jsyn.simulate(src, None, 0.1, n_steps=100)
    np.testing.assert_array_equal(whole, np.concatenate([first, second]))


def test_gradients_flow_through_a_spike_times_source():
    """The source is piecewise constant in the spike times (zero gradient, as a central
    difference inside a step says); gradients of the downstream synapse still flow."""

    def loss(tau, times):
        src = jsyn.SpikeTimes(times, [0, 0, 1], n=2)
        _, x = jsyn.simulate(src, None, 0.1, n_steps=80)
        return jsyn.simulate(jsyn.Expon(tau=tau), x, 0.1)[1].sum()

    times = jnp.array([0.5, 3.0, 1.2])
    g_tau, g_t = jax.grad(loss, argnums=(0, 1))(5.0, times)
    fd = (loss(5.0 + 1e-5, times) - loss(5.0 - 1e-5, times)) / 2e-5
    np.testing.assert_allclose(g_tau, fd, rtol=1e-6)
    np.testing.assert_array_equal(g_t, 0.0)
    np.testing.assert_allclose(loss(5.0, times + 1e-3), loss(5.0, times), rtol=1e-14)


def test_a_raster_through_inputs_drives_a_network_like_the_source():
    """`SpikeInput` fed `SpikeTimes.raster` through `inputs=` is the same network run as
    the `SpikeTimes` group itself."""
    src = jsyn.SpikeTimes([1.0, 2.3, 4.0, 7.7], [0, 1, 0, 1], n=2)

    def net(group):
        proj = jsyn.Projection(
            jsyn.all_to_all(2, 3, 5.0), jsyn.Expon(5.0), jsyn.COBA(E=0.0), pre="in", post="c"
        )
        return jsyn.Network({"in": group, "c": (jsyn.LIF(), 3)}, {"p": proj})

    rec = lambda s, o: (o["in"], s.groups["c"].V)  # noqa: E731
    _, (spikes, V) = jsyn.simulate(net(src), None, 0.1, n_steps=100, record=rec)
    raster = {"in": src.raster(100, 0.1)}
    _, (spikes2, V2) = jsyn.simulate(net((jsyn.SpikeInput(), 2)), raster, 0.1, record=rec)
    np.testing.assert_array_equal(spikes2, spikes)
    np.testing.assert_array_equal(V2, V)
    assert float(spikes.sum()) == 4
