"""Izhikevich (2003): regular spiking, fast spiking and chattering, convergence in dt,
refractoriness, gradients against finite differences, range checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd

CELLS = {  # Izhikevich 2003, Fig. 2
    "regular spiking": jsyn.Izhikevich(a=0.02, b=0.2, c=-65.0, d=8.0),
    "fast spiking": jsyn.Izhikevich(a=0.1, b=0.2, c=-65.0, d=2.0),
    "chattering": jsyn.Izhikevich(a=0.02, b=0.2, c=-50.0, d=2.0),
}


def intervals(name, current=10.0, duration=500.0, dt=0.05):
    n = int(round(duration / dt))
    _, spikes = jax.jit(lambda: jsyn.simulate(CELLS[name], jnp.full((n, 1), current), dt))()
    return np.diff(np.flatnonzero(np.asarray(spikes)[:, 0]) * dt)


def test_regular_spiking_adapts_then_fires_regularly():
    isi = intervals("regular spiking")
    assert isi[1] > 1.5 * isi[0]  # spike-frequency adaptation
    assert np.ptp(isi[2:]) < 0.01 * isi[-1]
    assert 15.0 < 1000.0 / isi[-1] < 40.0  # tonic, some 20 Hz


def test_fast_spiking_fires_fast_with_little_adaptation():
    fs, rs = intervals("fast spiking"), intervals("regular spiking")
    assert 1000.0 / fs[-1] > 4 * 1000.0 / rs[-1]
    assert fs[-1] < 2 * fs[0]


def test_chattering_fires_bursts_separated_by_pauses():
    isi = intervals("chattering")
    short, long = isi < 6.0, isi > 20.0
    assert np.all(short | long) and long.sum() >= 5
    assert short.sum() >= 3 * long.sum()  # several spikes per burst


def test_integration_converges_at_second_order():
    neuron = CELLS["regular spiking"]

    def V_end(dt):  # from -60 mV, with an input below rheobase: v sinks to its fixed point
        n = int(round(40.0 / dt))
        state = neuron.init_state(1, V0=-60.0, w0=-13.0)
        final, spikes = jsyn.simulate(neuron, jnp.full((n, 1), 2.0), dt, state=state)
        assert float(jnp.sum(spikes)) == 0.0
        return float(final.V[0])

    exact = V_end(0.1 / 64)
    errors = np.abs([V_end(dt) - exact for dt in (0.4, 0.2, 0.1)])
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 3.5) & (ratios < 4.5)), ratios
    assert exact < -62.0  # on its way from -60 mV to its fixed point near -67 mV


def test_refractory_period_holds_v_while_u_relaxes():
    neuron = jsyn.Izhikevich(tau_ref=1.0)
    state = neuron.init_state(1, V0=29.9)
    state, spikes = neuron.step(state, jnp.array([10.0]), 0.1)
    assert spikes[0] == 1.0 and float(state.V[0]) == -65.0
    u0 = float(state.w[0])
    Vs, us = [], []
    for _ in range(15):
        state, _ = neuron.step(state, jnp.array([10.0]), 0.1)
        Vs.append(float(state.V[0]))
        us.append(float(state.w[0]))
    assert np.flatnonzero(np.asarray(Vs) != -65.0)[0] == 10
    # while held, u relaxes exactly towards b c at rate a
    t = 0.1 * np.arange(1, 11)
    np.testing.assert_allclose(us[:10], -13.0 + (u0 + 13.0) * np.exp(-0.02 * t), rtol=1e-12)


@pytest.mark.parametrize("name", ["a", "b", "d"])
@pytest.mark.slow  # 14 s in the default lane (2 workers, 2 cores, load 3-4)
def test_spiking_gradients_match_finite_differences(name):
    # a narrow surrogate: the gradient of the discrete map at fixed spike times
    n, dt = 3000, 0.1
    c = jnp.asarray(np.random.default_rng(1).normal(size=n))
    base = {"a": 0.02, "b": 0.2, "d": 8.0}

    def loss(value):
        neuron = jsyn.Izhikevich(
            **{**base, name: value}, surrogate=jsyn.SigmoidSurrogate(slope=50.0)
        )
        _, V = jsyn.simulate(neuron, jnp.full((n, 1), 10.0), dt, record=lambda s, _: s.V[0])
        return jnp.sum(c * V)

    x = base[name]
    grad = jax.grad(loss)(x)
    assert abs(float(grad)) > 0
    np.testing.assert_allclose(grad, central_fd(loss, x, 1e-6 * x), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(a=0.0), "Izhikevich.a"), (dict(c=40.0), "V_reset < V_peak"), (dict(C=-1.0), "C")],
)
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jsyn.Izhikevich(**kwargs)
