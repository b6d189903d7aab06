"""Spike sources: given times and Poisson trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn


def test_spike_times_land_on_nearest_step_and_are_counted():
    src = jsyn.SpikeTimes([0.0, 1.0, 1.04, 2.26, 0.3], [0, 1, 1, 0, 2])
    _, spikes = jsyn.simulate(src, None, 0.1, n_steps=30)
    expected = np.zeros((30, 3))
    expected[0, 0] = expected[10, 1] = expected[23, 0] = expected[3, 2] = 1
    expected[10, 1] += 1  # two spikes in one step add up: none is dropped
    np.testing.assert_array_equal(spikes, expected)
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
    rates = jnp.array([0.01, 0.05])  # 10 Hz and 50 Hz
    src = jsyn.Poisson(rates)
    _, s1 = jsyn.simulate(src, None, 0.1, n_steps=20000, key=key)
    _, s2 = jsyn.simulate(src, None, 0.1, n_steps=20000, key=key)
    np.testing.assert_array_equal(s1, s2)
    counts = np.asarray(s1.sum(0))
    expected = 20000 * -np.expm1(-np.asarray(rates) * 0.1)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # 5 sigma


def test_poisson_needs_a_key():
    with pytest.raises(TypeError, match="stochastic.*key"):
        jsyn.simulate(jsyn.Poisson(jnp.full(3, 0.02)), None, 0.1, n_steps=10)


def test_poisson_trials_differ_by_key(getkey):
    src = jsyn.Poisson(jnp.full(4, 0.05))
    keys = jax.random.split(getkey(), 3)
    runs = jax.vmap(lambda k: jsyn.simulate(src, None, 0.1, n_steps=500, key=k)[1])(keys)
    assert not np.array_equal(runs[0], runs[1])
