"""jsyn.fit and jsyn.fit_many: the cases of issue 5, confidence-interval coverage, the
optimiser options, parameter selection and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jsyn

LP, SP, B = jsyn.LogPositive, jsyn.SoftplusPositive, jsyn.Bounded


def raster(times, T, dt, n=1):
    """Spike counts (T, n): one spike per time (ms), in every column."""
    x = np.zeros((T, n))
    x[np.round(np.asarray(times) / dt).astype(int), :] = 1.0
    return jnp.asarray(x)


def noisy(clean, rel_noise, seed, axis=None):
    """`clean` plus white Gaussian noise of `rel_noise` times the peak |clean|."""
    sigma = rel_noise * np.abs(np.asarray(clean)).max(axis=axis)
    rng = np.random.default_rng(seed)
    return jnp.asarray(clean + sigma * rng.normal(size=clean.shape)), sigma


def dual_expon_psc(tau_rise, tau_decay, g_max):
    return jsyn.PSC(jsyn.DualExpon(tau_rise, tau_decay), jsyn.COBA(g_max=g_max), V_hold=-70.0)


# ----------------------------------------------------------------------------------------
# the cases of issue 5


def test_dual_expon_psc_with_5_percent_noise_within_2_percent():
    """Ten evoked PSCs sampled at 40 kHz, noise 5 % of the peak: tau_rise, tau_decay and
    g_max within 2 % of the truth, for every one of 4 noise draws (fitted at once)."""
    dt, T = 0.025, 10_000
    spikes = raster(10.0 + 25.0 * np.arange(10), T, dt)
    truth = {"tau_rise": 1.5, "tau_decay": 8.0, "g_max": 2.0}
    _, clean = jsyn.simulate(dual_expon_psc(**truth), spikes, dt)
    targets = jnp.stack([noisy(clean, 0.05, seed)[0] for seed in range(4)])
    init = dual_expon_psc(LP(1.0), LP(4.0), SP(1.0))
    res = jsyn.fit_many(
        init, spikes, targets, dt, params="tau_rise,tau_decay,g_max", shared_inputs=True
    )
    assert np.all(res.converged)
    for name, short in zip(res.names, truth):
        assert name.endswith(short)
        rel = np.abs(np.asarray(res.value[name]) / truth[short] - 1.0)
        assert rel.max() < 0.02, (name, rel)


def stp_protocol(dt=0.25):
    """10 pulses at 20 Hz from 10 ms, and a recovery pulse 500 ms after the last."""
    times = [*(10.0 + 50.0 * np.arange(10)), 960.0]
    return raster(times, int(1100 / dt), dt)


def stp_psc(U, tau_f, tau_d, g_max):
    return jsyn.PSC(
        jsyn.DualExpon(0.5, 5.0),
        jsyn.COBA(g_max=g_max),
        stp=jsyn.STP(U=U, tau_f=tau_f, tau_d=tau_d),
        V_hold=-70.0,
    )


def test_stp_train_recovers_U_tau_f_tau_d():
    dt = 0.25
    spikes = stp_protocol(dt)
    truth = {"U": 0.2, "tau_f": 200.0, "tau_d": 300.0, "g_max": 2.0}
    _, clean = jsyn.simulate(stp_psc(**truth), spikes, dt)
    target, _ = noisy(clean, 0.02, seed=1)
    init = stp_psc(B(0.3), LP(100.0), LP(100.0), SP(1.0))
    res = jsyn.fit(init, spikes, target, dt, params=["stp.U", "tau_f", "tau_d", "g_max"])
    assert res.converged
    for name, short in zip(res.names, truth):
        assert res.value[name] == pytest.approx(truth[short], rel=0.05)
        assert res.ci_low[name] < truth[short] < res.ci_high[name]


@pytest.mark.slow
def test_multi_start_escapes_a_local_minimum():
    """Facilitation this brief (tau_f = 50 ms) lets a single start from the default
    guess run into tau_f -> 0; four starts find the truth."""
    dt = 0.5
    spikes = stp_protocol(dt)
    _, clean = jsyn.simulate(stp_psc(0.5, 50.0, 500.0, 2.0), spikes, dt)
    target, _ = noisy(clean, 0.02, seed=1)
    init = stp_psc(B(0.3), LP(100.0), LP(100.0), SP(1.0))
    params = "U,tau_f,tau_d,g_max"
    single = jsyn.fit(init, spikes, target, dt, params=params)
    multi = jsyn.fit(
        init, spikes, target, dt, params=params, n_starts=4, key=jax.random.key(1), spread=1.0
    )
    assert single.value["stp.tau_f"] < 5.0  # the local minimum
    assert multi.loss < single.loss
    assert multi.value["stp.tau_f"] == pytest.approx(50.0, rel=0.25)
    assert multi.value["stp.tau_d"] == pytest.approx(500.0, rel=0.1)
    assert multi.value["stp.U"] == pytest.approx(0.5, rel=0.05)


def test_multi_start_keeps_the_best_start():
    spikes, target, dt = expon_problem()
    model = jsyn.Expon(tau=LP(0.05))  # far off: the loss surface is flat down there
    single = jsyn.fit(model, spikes, target, dt, params="tau", max_steps=5)
    multi = jsyn.fit(model, spikes, target, dt, params="tau", max_steps=5, n_starts=6, spread=3.0)
    assert float(multi.loss) < float(single.loss)
    assert multi.value["tau"] == pytest.approx(4.0, rel=0.02)


def test_ampa_nmda_mixed_current_at_two_holding_potentials():
    """The same cell clamped at -70 mV (AMPA dominates, NMDA blocked by Mg) and +40 mV
    (NMDA unblocked): both g_max from the two traces at once."""
    dt, T = 0.1, 3000
    spikes = raster([10.0, 110.0, 210.0], T, dt, n=2)
    V_hold = jnp.array([-70.0, 40.0])

    def model(g_ampa, g_nmda):
        outputs = (jsyn.COBA(g_max=g_ampa), jsyn.MgBlock(g_max=g_nmda))
        return jsyn.PSC((jsyn.AMPA(), jsyn.NMDA()), outputs, V_hold=V_hold)

    _, clean = jsyn.simulate(model(1.5, 0.8), spikes, dt)
    target, _ = noisy(clean, 0.05, seed=2, axis=0)
    res = jsyn.fit(
        model(SP(0.5), SP(0.5)), spikes, target, dt, params="output[0].g_max,output.1.g_max"
    )
    assert res.names == ("output[0].g_max", "output[1].g_max")
    assert res.value["output[0].g_max"] == pytest.approx(1.5, rel=0.02)
    assert res.value["output[1].g_max"] == pytest.approx(0.8, rel=0.02)


# ----------------------------------------------------------------------------------------
# intervals


def test_interval_coverage_matches_level_over_many_noise_draws():
    """400 synthetic recordings with known white noise: each 95 % interval holds the truth
    in about 95 % of them (binomial sd 1.1 %), and the noise estimate is unbiased."""
    dt, T, n = 0.1, 600, 400
    spikes = raster([5.0, 20.0, 32.0], T, dt)
    truth = {"tau_rise": 0.8, "tau_decay": 6.0, "g_max": 1.0}
    _, clean = jsyn.simulate(dual_expon_psc(**truth), spikes, dt)
    sigma = 3.0  # pA, about 5 % of the peak
    noise = sigma * np.random.default_rng(7).normal(size=(n, *clean.shape))
    targets = clean[None] + jnp.asarray(noise)
    res = jsyn.fit_many(
        dual_expon_psc(LP(1.0), LP(5.0), SP(1.5)),
        spikes,
        targets,
        dt,
        params="tau_rise,tau_decay,g_max",
        shared_inputs=True,
    )
    assert np.all(res.converged)
    for name, short in zip(res.names, truth):
        inside = (res.ci_low[name] < truth[short]) & (truth[short] < res.ci_high[name])
        assert 0.915 <= float(np.mean(inside)) <= 0.98, (name, float(np.mean(inside)))
        # the standard errors describe the scatter of the estimates across draws
        spread = np.std(np.asarray(res.value[name]))
        assert float(np.median(res.stderr[name])) == pytest.approx(spread, rel=0.15)
    assert float(np.mean(res.noise_std)) == pytest.approx(sigma, rel=0.01)


def test_interval_of_a_log_positive_parameter_is_asymmetric_and_positive():
    dt = 0.1
    spikes = raster([5.0], 400, dt)
    _, clean = jsyn.simulate(dual_expon_psc(0.8, 6.0, 1.0), spikes, dt)
    target, _ = noisy(clean, 0.3, seed=0)
    res = jsyn.fit(dual_expon_psc(LP(1.0), LP(5.0), SP(1.5)), spikes, target, dt, params="tau_rise")
    v, lo, hi = (float(d["synapse.tau_rise"]) for d in (res.value, res.ci_low, res.ci_high))
    assert 0.0 < lo < v < hi
    assert hi - v > v - lo  # log scale: wider above
    assert float(res.stderr["synapse.tau_rise"]) > 0


# ----------------------------------------------------------------------------------------
# options


def expon_problem(seed=0, sigma=0.02):
    dt = 0.1
    spikes = raster([2.0, 12.0, 15.0], 300, dt)
    _, clean = jsyn.simulate(jsyn.Expon(tau=4.0), spikes, dt)
    rng = np.random.default_rng(seed)
    return spikes, clean + jnp.asarray(sigma * rng.normal(size=clean.shape)), dt


def test_optax_optimiser_reaches_the_levenberg_marquardt_optimum():
    spikes, target, dt = expon_problem()
    model = jsyn.Expon(tau=LP(10.0))
    lm = jsyn.fit(model, spikes, target, dt, params="tau")
    adam = jsyn.fit(model, spikes, target, dt, params="tau", optimizer=optax.adam(0.05))
    assert lm.converged and adam.converged
    assert adam.value["tau"] == pytest.approx(float(lm.value["tau"]), rel=1e-4)
    assert lm.n_steps < adam.n_steps
    h = adam.losses()
    assert h.shape == (int(adam.n_steps) + 1,) and h[-1] < h[0]
    np.testing.assert_allclose(adam.ci_low["tau"], lm.ci_low["tau"], rtol=1e-3)


def test_custom_loss_is_fitted_and_has_no_intervals():
    spikes, target, dt = expon_problem(sigma=0.0)
    target = target.at[100].set(50.0)  # an outlier, which an L1 loss shrugs off

    def l1(pred, target):
        return jnp.mean(jnp.abs(pred - target))

    res = jsyn.fit(jsyn.Expon(tau=LP(10.0)), spikes, target, dt, params="tau", loss=l1)
    assert res.value["tau"] == pytest.approx(4.0, rel=1e-3)
    assert np.isnan(res.ci_low["tau"]) and np.isnan(res.stderr["tau"])


def test_zero_weights_ignore_corrupted_samples():
    spikes, target, dt = expon_problem(sigma=0.0)
    bad = target.at[150:200].set(10.0)
    weights = jnp.ones_like(target).at[150:200].set(0.0)
    model = jsyn.Expon(tau=LP(10.0))
    res = jsyn.fit(model, spikes, bad, dt, params="tau", weights=weights)
    assert res.value["tau"] == pytest.approx(4.0, rel=1e-8)
    plain = jsyn.fit(model, spikes, bad, dt, params="tau")
    assert abs(float(plain.value["tau"]) - 4.0) > 0.1


def test_fit_many_with_per_recording_weights():
    spikes, target, dt = expon_problem(sigma=0.0)
    bad = jnp.stack([target.at[150:200].set(10.0), target.at[20:60].set(-5.0)])
    weights = jnp.ones_like(bad).at[0, 150:200].set(0.0).at[1, 20:60].set(0.0)
    res = jsyn.fit_many(
        jsyn.Expon(tau=LP(10.0)), spikes, bad, dt, params="tau", weights=weights, shared_inputs=True
    )
    np.testing.assert_allclose(res.value["tau"], [4.0, 4.0], rtol=1e-8)


def test_filter_spec_selects_like_names():
    spikes, target, dt = expon_problem()
    model = dual_expon_psc(LP(1.0), LP(5.0), SP(1.5))
    _, clean = jsyn.simulate(dual_expon_psc(0.8, 4.0, 1.0), spikes, dt)
    spec = jax.tree.map(lambda _: False, model)
    spec = eqx.tree_at(lambda m: m.synapse.tau_decay, spec, True)
    by_filter = jsyn.fit(model, spikes, clean, dt, params=spec)
    by_name = jsyn.fit(model, spikes, clean, dt, params="synapse.tau_decay")
    assert by_filter.names == ("synapse.tau_decay",)
    np.testing.assert_allclose(
        by_filter.value["synapse.tau_decay"], by_name.value["synapse.tau_decay"]
    )


def test_fit_many_equals_separate_fits_with_per_recording_inputs():
    dt = 0.1
    inputs = jnp.stack([raster(t, 300, dt) for t in ([2.0, 9.0], [4.0], [1.0, 2.0, 20.0])])
    taus = [3.0, 5.0, 7.0]
    targets = jnp.stack([jsyn.simulate(jsyn.Expon(tau=t), x, dt)[1] for t, x in zip(taus, inputs)])
    model = jsyn.Expon(tau=LP(4.0))
    res = jsyn.fit_many(model, inputs, targets, dt, params="tau")
    np.testing.assert_allclose(res.value["tau"], taus, rtol=1e-8)
    for i in range(3):
        one = jsyn.fit(model, inputs[i], targets[i], dt, params="tau")
        assert int(one.n_steps) == int(res.n_steps[i])
    fitted = jax.tree.map(lambda x: x[1], res.model)
    assert jsyn.resolve(fitted.tau) == pytest.approx(5.0)
    text = res.summary()
    assert "3 recordings" in text and "tau" in text and "3 of 3 converged" in text


def test_fitted_model_reproduces_the_prediction_and_summary_lists_parameters():
    spikes, target, dt = expon_problem()
    res = jsyn.fit(jsyn.Expon(tau=LP(10.0)), spikes, target, dt, params="tau")
    _, pred = jsyn.simulate(res.model, spikes, dt)
    assert float(jnp.mean((pred - target) ** 2)) == pytest.approx(float(res.loss), rel=1e-10)
    text = res.summary()
    assert "tau" in text and "95% interval" in text and "converged" in text


def test_checkpointed_fit_with_optax_equals_plain():
    spikes, target, dt = expon_problem()
    model = jsyn.Expon(tau=LP(10.0))
    kw = dict(params="tau", optimizer=optax.adam(0.05), max_steps=50)
    plain = jsyn.fit(model, spikes, target, dt, **kw)
    nested = jsyn.fit(model, spikes, target, dt, checkpoint=3, **kw)
    np.testing.assert_allclose(nested.history, plain.history, rtol=1e-10)


# ----------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "params, match",
    [
        ("tau_nope", "'tau_nope' is not a parameter of the model.*synapse.tau_rise"),
        ("g_max,g_max", "listed twice"),
        ("", "no parameters"),
    ],
)
def test_bad_parameter_names(params, match):
    spikes, target, dt = expon_problem()
    with pytest.raises(ValueError, match=match):
        jsyn.fit(dual_expon_psc(1.0, 5.0, 1.0), spikes, target, dt, params=params)


def test_ambiguous_name_lists_the_candidates():
    model = jsyn.PSC((jsyn.AMPA(), jsyn.NMDA()), (jsyn.COBA(), jsyn.MgBlock()))
    spikes, target, dt = expon_problem()
    with pytest.raises(ValueError, match=r"matches several.*output\[0\].g_max, output\[1\].g_max"):
        jsyn.fit(model, spikes, target, dt, params="g_max")


def test_nan_target_is_named():
    spikes, target, dt = expon_problem()
    with pytest.raises(ValueError, match=r"target must be finite \(got nan at index \(7, 0\)"):
        jsyn.fit(jsyn.Expon(), spikes, target.at[7, 0].set(jnp.nan), dt, params="tau")


def test_shape_mismatch_and_bad_options():
    spikes, target, dt = expon_problem()
    with pytest.raises(ValueError, match=r"recorded trace has shape \(300, 1\).*\(300,\)"):
        jsyn.fit(jsyn.Expon(), spikes, target[:, 0], dt, params="tau")
    with pytest.raises(ValueError, match="do not match the target's 200 time steps"):
        jsyn.fit(jsyn.Expon(), spikes, target[:200], dt, params="tau")
    with pytest.raises(ValueError, match="unknown loss 'mae'"):
        jsyn.fit(jsyn.Expon(), spikes, target, dt, params="tau", loss="mae")
    with pytest.raises(ValueError, match="weights must be >= 0"):
        jsyn.fit(jsyn.Expon(), spikes, target, dt, params="tau", weights=-jnp.ones_like(target))
    with pytest.raises(ValueError, match="level must lie in"):
        jsyn.fit(jsyn.Expon(), spikes, target, dt, params="tau", level=95.0)
    with pytest.raises(ValueError, match="Expon.tau must be > 0"):
        jsyn.fit(jsyn.Expon(tau=-1.0), spikes, target, dt, params="tau")
    with pytest.raises(ValueError, match="leading axis of 3"):
        jsyn.fit_many(jsyn.Expon(), spikes, jnp.stack([target] * 3), dt, params="tau")


def test_conductance_through_a_delay_recovers_the_delay():
    """A conductance (nS; g_max * g, modelled with CUBA) recorded through an axonal delay of
    2.37 ms, off the 0.1 ms grid, with 2 % noise: the delay, fitted in (0, 8) ms through
    `Bounded`, together with the kinetics and the amplitude."""
    dt, T = 0.1, 2000
    spikes = raster([10.0, 60.0, 90.0, 150.0], T, dt)

    def model(delay, tau_rise, tau_decay, g_max):
        return jsyn.PSC(
            jsyn.DualExpon(tau_rise, tau_decay),
            jsyn.CUBA(g_max=g_max),
            delay=jsyn.Delay(delay, dt, max_delay=8.0),
        )

    _, clean = jsyn.simulate(model(2.37, 0.8, 6.0, 1.5), spikes, dt)
    target, _ = noisy(clean, 0.02, seed=3)
    init = model(B(1.0, 0.0, 8.0), LP(1.0), LP(4.0), SP(1.0))
    res = jsyn.fit(init, spikes, target, dt, params="delay,tau_rise,tau_decay,g_max")
    assert res.names[0] == "delay.delay"
    assert res.converged
    assert res.value["delay.delay"] == pytest.approx(2.37, abs=0.02)
    assert res.ci_low["delay.delay"] < 2.37 < res.ci_high["delay.delay"]
    assert res.value["output.g_max"] == pytest.approx(1.5, rel=0.02)


@pytest.mark.slow
def test_a_thousand_recordings_of_2000_samples_in_one_call():
    """The size of issue 5 (1000 x 2000, float64): one call, every fit converges, and the
    intervals keep their coverage (benchmarks/fit.py times it; the whole benchmark process
    peaked at 0.64 GB resident)."""
    dt, T, n = 0.1, 2000, 1000
    spikes = raster([10.0, 40.0, 55.0, 90.0, 130.0, 160.0], T, dt)
    truth = {"tau_rise": 1.2, "tau_decay": 7.5, "g_max": 1.8}
    _, clean = jsyn.simulate(dual_expon_psc(**truth), spikes, dt)
    sigma = 0.05 * float(jnp.max(jnp.abs(clean)))
    targets = clean[None] + sigma * jnp.asarray(np.random.default_rng(0).normal(size=(n, T, 1)))
    res = jsyn.fit_many(
        dual_expon_psc(LP(1.0), LP(5.0), SP(1.0)),
        spikes,
        targets,
        dt,
        params="tau_rise,tau_decay,g_max",
        shared_inputs=True,
    )
    assert res.value["synapse.tau_rise"].shape == (n,)
    assert np.all(res.converged)
    for name, short in zip(res.names, truth):
        inside = (res.ci_low[name] < truth[short]) & (truth[short] < res.ci_high[name])
        assert 0.93 <= float(np.mean(inside)) <= 0.97
