"""jsyn.sweep_intervals: intervals of a fitted sweep average from the sweep-to-sweep
variability, checked by their coverage of a known truth under correlated noise."""

import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from jsyn.fitting.sweeps import t_quantile

DT, T = 0.1, 400
TRUTH = {"tau": 4.0, "g_max": 2.0}


def psc(tau, g_max):
    return jsyn.PSC(jsyn.Expon(tau), jsyn.COBA(g_max=g_max, E=0.0), V_hold=-70.0)


def spikes():
    s = np.zeros((T, 1))
    s[[50, 150, 250], 0] = 1.0
    return jnp.asarray(s)


def correlated_sweeps(rng, n, clean):
    """`n` sweeps `(n, T)`: the clean current plus AR(1) noise of 10 pA with a
    correlation time of 3 ms (30 samples), the noise white-noise intervals misjudge."""
    a = np.exp(-DT / 3.0)
    e = np.empty((n, T))
    e[:, 0] = rng.normal(size=n)
    for i in range(1, T):
        e[:, i] = a * e[:, i - 1] + np.sqrt(1 - a * a) * rng.normal(size=n)
    return clean + 10.0 * e


def test_t_quantile_matches_tables():
    # Student's t, two-sided 95 %: 12.706 (1), 2.262 (9), 2.045 (29); the normal's 1.960
    q = t_quantile(0.975, np.array([1.0, 9.0, 29.0, np.inf]))
    np.testing.assert_allclose(q, [12.706, 2.262, 2.045, 1.960], atol=1e-3)


@pytest.mark.slow  # 60 small fits
def test_between_sweep_intervals_hold_the_truth_at_their_level():
    """Under noise correlated in time the white-noise intervals of `jsyn.fit` hold the
    truth far less often than 95 %; those of `sweep_intervals` hold it at about their
    level (measured: tau and g_max each inside 55 of 60 times from the sweeps, 15 and 17
    times from the residuals)."""
    rng = np.random.default_rng(11)
    drive = spikes()
    clean = np.asarray(jsyn.simulate(psc(TRUTH["tau"], TRUTH["g_max"]), drive, DT)[1])[:, 0]
    start = psc(jsyn.LogPositive(3.0), jsyn.SoftplusPositive(1.5))
    hits = {"residuals": np.zeros(2), "sweeps": np.zeros(2)}
    n_sets = 60
    for _ in range(n_sets):
        sweeps = correlated_sweeps(rng, 8, clean)
        res = jsyn.fit(
            start, drive, jnp.asarray(sweeps.mean(axis=0))[:, None], DT, params="tau,g_max"
        )
        assert res.converged
        between = jsyn.sweep_intervals(res, drive, sweeps, DT)
        assert between.errors == "between sweeps" and between.converged
        np.testing.assert_allclose(between.dof["synapse.tau"], 7.0)
        for kind, r in (("residuals", res), ("sweeps", between)):
            for j, (name, truth) in enumerate(zip(res.names, TRUTH.values())):
                hits[kind][j] += float(r.ci_low[name]) <= truth <= float(r.ci_high[name])
    coverage = {k: v / n_sets for k, v in hits.items()}
    # 60 sets: 57 expected inside at 95 %; binomial sd 1.7
    assert np.all(coverage["sweeps"] >= 0.9), coverage
    assert np.all(coverage["residuals"] <= 0.7), coverage


@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_linear_case_equals_the_spread_of_per_sweep_estimates():
    """For a parameter the prediction is linear in (g_max, unconstrained), the estimate
    of a sweep average is the mean of the per-sweep estimates, and its between-sweep
    standard error is exactly their standard deviation over sqrt(n), with n - 1 degrees
    of freedom."""
    drive = spikes()
    unit = np.asarray(jsyn.simulate(psc(4.0, 1.0), drive, DT)[1])[:, 0]
    sweeps = correlated_sweeps(np.random.default_rng(3), 6, 2.0 * unit)
    res = jsyn.fit(
        psc(4.0, jnp.asarray(1.5)),
        drive,
        jnp.asarray(sweeps.mean(axis=0))[:, None],
        DT,
        params="g_max",
    )
    between = jsyn.sweep_intervals(res, drive, sweeps, DT, weights=np.ones((T, 1)))
    per_sweep = sweeps @ unit / (unit @ unit)
    se = per_sweep.std(ddof=1) / np.sqrt(per_sweep.size)
    np.testing.assert_allclose(float(res.value["output.g_max"]), per_sweep.mean(), rtol=1e-9)
    np.testing.assert_allclose(float(between.stderr["output.g_max"]), se, rtol=1e-6)
    np.testing.assert_allclose(float(between.dof["output.g_max"]), 5.0)
    half = float(t_quantile(0.975, 5.0)) * se
    np.testing.assert_allclose(
        float(between.ci_high["output.g_max"]), per_sweep.mean() + half, rtol=1e-6
    )
    with pytest.raises(ValueError, match="at least 2 sweeps"):
        jsyn.sweep_intervals(res, drive, sweeps[:1], DT)
    with pytest.raises(ValueError, match=r"shape \(n, 400\)"):
        jsyn.sweep_intervals(res, drive, sweeps[:, :10], DT)


@pytest.mark.slow  # a fit of two columns
def test_two_columns_of_unequal_sets_take_welch_satterthwaite_degrees_of_freedom():
    drive = jnp.concatenate([spikes(), spikes()], axis=1)
    V = jnp.asarray([-70.0, -50.0])
    truth = jsyn.PSC(jsyn.Expon(4.0), jsyn.COBA(g_max=2.0, E=0.0), V_hold=V)
    clean = np.asarray(jsyn.simulate(truth, drive, DT)[1])
    rng = np.random.default_rng(4)
    a, b = correlated_sweeps(rng, 3, clean[:, 0]), correlated_sweeps(rng, 9, clean[:, 1])
    target = jnp.asarray(np.stack([a.mean(axis=0), b.mean(axis=0)], axis=1))
    start = jsyn.PSC(
        jsyn.Expon(jsyn.LogPositive(3.0)),
        jsyn.COBA(g_max=jsyn.SoftplusPositive(1.5), E=0.0),
        V_hold=V,
    )
    res = jsyn.fit(start, drive, target, DT, params="tau,g_max")
    columns = np.array([0] * 3 + [1] * 9)
    between = jsyn.sweep_intervals(res, drive, np.concatenate([a, b]), DT, columns=columns)
    for name in res.names:
        assert 2.0 <= float(between.dof[name]) <= 10.0  # min(n_c) - 1 .. sum(n_c - 1)
        assert float(between.ci_low[name]) < float(res.value[name]) < float(between.ci_high[name])
    with pytest.raises(ValueError, match="at least 2 sweeps"):
        jsyn.sweep_intervals(res, drive, np.concatenate([a, b]), DT)  # all in column 0
