"""AdEx: convergence of its integration in dt, Naud et al. 2008's firing patterns,
refractoriness, gradients against finite differences, range checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd

# Naud et al. 2008, Table 1 (pF, nS, mV, ms, pA)
TONIC = dict(C=200.0, g_L=10.0, E_L=-70.0, V_T=-50.0, Delta_T=2.0, tau_w=30.0, a=2.0, b=0.0)
TONIC["V_reset"] = -58.0
PATTERNS = {
    "tonic": (TONIC, 500.0),
    "adapting": ({**TONIC, "g_L": 12.0, "tau_w": 300.0, "b": 60.0}, 500.0),
    "initial burst": (
        dict(C=130.0, g_L=18.0, E_L=-58.0, V_T=-50.0, tau_w=150.0, a=4.0, b=120.0, V_reset=-50.0),
        400.0,
    ),
    "bursting": ({**TONIC, "E_L": -58.0, "tau_w": 120.0, "b": 100.0, "V_reset": -46.0}, 210.0),
}


def spike_times(neuron, current, duration, dt):
    n = int(round(duration / dt))
    run = jax.jit(lambda I: jsyn.simulate(neuron, jnp.full((n, 1), I), dt)[1])
    return np.flatnonzero(np.asarray(run(current))[:, 0]) * dt + dt


def intervals(name, dt=0.05):
    params, current = PATTERNS[name]
    return np.diff(spike_times(jsyn.AdEx(**params), current, 400.0, dt))


def test_tonic_spiking_is_regular():
    isi = intervals("tonic")
    assert len(isi) > 30
    assert np.ptp(isi[5:]) < 0.05 * isi[-1]  # steady after a short transient
    assert np.ptp(isi) < 0.1 * isi[-1]  # and no adaptation to speak of


def test_adapting_spiking_slows_down_then_settles():
    isi = intervals("adapting")
    assert np.all(np.diff(isi[:5]) > 0)  # each interval longer than the last
    assert isi[-1] > 5 * isi[0]
    assert abs(isi[-1] - isi[-2]) < 0.05 * isi[-1]


def test_initial_burst_then_regular():
    isi = intervals("initial burst")
    assert np.all(isi[:2] < 10.0)
    assert np.all(isi[3:] > 50.0)
    assert np.ptp(isi[4:]) < 0.02 * isi[-1]


def test_regular_bursting_alternates_short_and_long_intervals():
    isi = intervals("bursting")[2:]  # after the first burst's onset
    short, long = isi < 10.0, isi > 100.0
    assert np.all(short | long) and short.sum() >= 2 and long.sum() >= 2
    assert not np.any(long[1:] & long[:-1])  # every pause follows a burst


def test_integration_converges_at_second_order():
    # the error of V at a fixed time (subthreshold, the exponential active) falls by ~4
    # each time dt halves
    neuron = jsyn.AdEx(**TONIC)

    def V_end(dt):
        n = int(round(40.0 / dt))
        state = neuron.init_state(1)
        final, _ = jsyn.simulate(neuron, jnp.full((n, 1), 150.0), dt, state=state)
        return float(final.V[0])

    exact = V_end(0.1 / 64)
    errors = np.abs([V_end(dt) - exact for dt in (0.4, 0.2, 0.1)])
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 3.5) & (ratios < 4.5)), ratios
    assert exact > -60.0  # 10 mV above rest: the exponential term counts


def test_spike_times_converge_in_dt():
    # spikes land at the end of their step, so each interval is within a step of the fine
    # run's, and the spike times come closer as dt shrinks
    params, current = PATTERNS["adapting"]
    neuron = jsyn.AdEx(**params)
    fine = spike_times(neuron, current, 300.0, 0.005)
    errors = []
    for dt in (0.1, 0.05):
        coarse = spike_times(neuron, current, 300.0, dt)
        assert len(coarse) == len(fine)
        # both ends of an interval are rounded up to the grid (up to a step apart), plus
        # the integration error, O(dt^2)
        np.testing.assert_allclose(np.diff(coarse), np.diff(fine), atol=1.5 * dt)
        errors.append(np.abs(coarse - fine).max())
    assert errors[1] < 0.75 * errors[0]  # the rounding to the grid shrinks with dt


def test_refractory_period_holds_V_while_w_relaxes():
    neuron = jsyn.AdEx(tau_ref=2.0, b=50.0)
    state = neuron.init_state(1, V0=-1.0)
    state, spikes = neuron.step(state, jnp.array([0.0]), 0.1)
    assert spikes[0] == 1.0 and float(state.V[0]) == -70.6
    w0 = float(state.w[0])
    Vs, ws = [], []
    for _ in range(30):
        state, _ = neuron.step(state, jnp.array([0.0]), 0.1)
        Vs.append(float(state.V[0]))
        ws.append(float(state.w[0]))
    assert np.flatnonzero(np.asarray(Vs) != -70.6)[0] == 20  # 2 ms held at 0.1 ms steps
    # while held, w relaxes exactly towards a (V_reset - E_L) = 0
    np.testing.assert_allclose(ws[:20], w0 * np.exp(-0.1 * np.arange(1, 21) / 144.0), rtol=1e-12)


def test_rest_is_a_fixed_point():
    neuron = jsyn.AdEx(a=3.0)
    final, spikes = jsyn.simulate(neuron, jnp.zeros((2000, 2)), 0.5)  # 7 tau_w
    # at E_L the exponential term still pushes a little: V settles just above E_L, w with it
    assert float(jnp.sum(spikes)) == 0.0
    np.testing.assert_allclose(final.w, 3.0 * (final.V - (-70.6)), rtol=1e-3)


def trace_loss(name, params, current, n, dt=0.1, surrogate=jsyn.SigmoidSurrogate()):
    c = jnp.asarray(np.random.default_rng(0).normal(size=n))

    def loss(value):
        neuron = jsyn.AdEx(**{**params, name: value}, surrogate=surrogate)
        _, V = jsyn.simulate(neuron, jnp.full((n, 1), current), dt, record=lambda s, _: s.V[0])
        return jnp.sum(c * V)

    return loss


@pytest.mark.parametrize("name", ["a", "tau_w", "g_L", "C", "V_T", "Delta_T"])
def test_subthreshold_gradients_match_finite_differences(name):
    # 150 pA: V climbs to about -58 mV, where the exponential term is active
    loss = trace_loss(name, TONIC, 150.0, 600)
    x = TONIC[name]
    grad = jax.grad(loss)(x)
    assert abs(float(grad)) > 0
    np.testing.assert_allclose(grad, central_fd(loss, x, 1e-6 * abs(x)), rtol=1e-6)


@pytest.mark.parametrize("name", ["b", "tau_w"])
def test_spiking_gradients_match_finite_differences(name):
    # with a narrow surrogate (it vanishes unless V lands within a fraction of a mV of
    # V_peak) the gradient is the one of the discrete map at fixed spike times, which the
    # finite difference measures; the default, wider surrogate adds its pseudo-gradient
    params, current = PATTERNS["adapting"]
    loss = trace_loss(name, params, current, 1500, surrogate=jsyn.SigmoidSurrogate(slope=50.0))
    x = params[name]
    grad = jax.grad(loss)(x)
    assert abs(float(grad)) > 0
    np.testing.assert_allclose(grad, central_fd(loss, x, 1e-6 * abs(x)), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(C=0.0), "AdEx.C"),
        (dict(Delta_T=-1.0), "AdEx.Delta_T"),
        (dict(V_T=5.0), "V_T < V_peak"),
        (dict(V_reset=10.0), "V_reset < V_peak"),
        (dict(tau_ref=-1.0), "tau_ref"),
    ],
)
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jsyn.AdEx(**kwargs)
