"""The LIF neuron against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import central_fd


def test_subthreshold_relaxation_is_exact():
    lif = jsyn.LIF(tau=20.0, R=2.0)
    I = jnp.full((400, 1), 4.0)  # V_inf = -52 mV, below threshold
    state = lif.init_state(1, V0=-70.0)
    _, V = jsyn.simulate(lif, I, 0.1, state=state, record=lambda s, spk: s.V[0])
    t = (np.arange(400) + 1) * 0.1  # row i ends (i + 1) dt after the initial state
    np.testing.assert_allclose(V, -52.0 + (-70.0 + 52.0) * np.exp(-t / 20.0), rtol=1e-12)


@pytest.mark.parametrize("tau_ref", [0.0, 2.0, 5.0])
def test_regular_firing_period_matches_closed_form(tau_ref):
    dt, I = 0.01, 25.0  # V_inf = -35 mV
    lif = jsyn.LIF(tau_ref=tau_ref)
    _, spikes = jsyn.simulate(lif, jnp.full((20000, 1), I), dt)
    times = np.flatnonzero(np.asarray(spikes[:, 0])) * dt
    # Time from reset to threshold: tau ln((V_inf - V_reset) / (V_inf - V_th)).
    free = 20.0 * np.log((-35.0 + 60.0) / (-35.0 + 50.0))
    period = np.diff(times)
    assert len(period) > 10
    # On the grid each free phase is rounded up to a whole step.
    np.testing.assert_allclose(period, np.ceil(free / dt - 1e-9) * dt + tau_ref, atol=1.01 * dt)
    assert np.ptp(period) <= dt + 1e-9


def test_refractory_period_holds_V_for_tau_ref_over_dt_steps():
    lif = jsyn.LIF(tau_ref=2.0)
    state = lif.init_state(1, V0=-49.0)  # fires at the first step
    state, spk = lif.step(state, jnp.array([1000.0]), 0.1)
    assert spk[0] == 1.0
    V = []
    for _ in range(30):
        state, spk = lif.step(state, jnp.array([1000.0]), 0.1)
        V.append(float(state.V[0]))
    # the refractory time left is counted down in floats, so the 20th step may still hold
    # ~1e-16 ms of it; the potential then moves by ~1e-13 mV there, not by a step's worth
    held = np.flatnonzero(np.abs(np.asarray(V) + 60.0) > 1e-9)[0]
    assert held == 20  # 2 ms at 0.1 ms, then the potential moves again


def test_voltage_jump_is_skipped_while_refractory():
    lif = jsyn.LIF(tau_ref=1.0)
    state = lif.init_state(1, V0=-52.0)
    state, spk = lif.step(state, jnp.zeros(1), 0.1)  # V relaxes from -52 toward -60
    assert spk[0] == 0
    state, spk = lif.step(state, jnp.zeros(1), 0.1, jump=jnp.array([5.0]))
    assert spk[0] == 1 and state.V[0] == -60.0  # jumped over threshold, reset
    state, spk = lif.step(state, jnp.zeros(1), 0.1, jump=jnp.array([5.0]))
    assert state.V[0] == -60.0  # refractory: the jump is ignored


@pytest.mark.parametrize(
    "surrogate", [jsyn.SigmoidSurrogate(), jsyn.FastSigmoidSurrogate(slope=3.0)]
)
def test_spike_gradient_is_finite_for_any_potential(surrogate):
    V = jnp.array([-jnp.inf, -1e30, -50.0, -49.9, 0.0, 1e30, jnp.inf])
    spikes = surrogate(V + 50.0)
    np.testing.assert_array_equal(spikes, [0, 0, 1, 1, 1, 1, 1])
    grad = jax.vmap(jax.grad(lambda v: surrogate(v + 50.0)))(V)
    assert np.all(np.isfinite(grad)) and np.all(grad >= 0)
    assert grad[2] == grad.max()  # the surrogate peaks at threshold


@pytest.mark.parametrize("cls", [jsyn.SigmoidSurrogate, jsyn.FastSigmoidSurrogate])
def test_surrogates_integrate_to_one(cls):
    x = np.linspace(-2000.0, 2000.0, 2_000_001)
    area = np.trapezoid(cls(slope=2.0).derivative(jnp.asarray(x)), x)
    np.testing.assert_allclose(area, 1.0, rtol=1e-3)


def test_gradient_flows_through_spikes_into_synapse():
    """A presynaptic spike's surrogate gradient reaches the neuron's input current."""
    lif, syn = jsyn.LIF(), jsyn.Expon()

    def loss(I):
        _, spikes = jsyn.simulate(lif, I, 0.1)
        _, g = jsyn.simulate(syn, spikes, 0.1)
        return g.sum()

    grad = jax.grad(loss)(jnp.full((300, 2), 25.0))
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_bad_lif_parameters_are_named():
    with pytest.raises(ValueError, match="V_reset < V_th.*V_reset=-40.0, V_th=-50.0"):
        jsyn.LIF(V_reset=-40.0)
    with pytest.raises(ValueError, match="LIF.tau must be > 0"):
        jsyn.LIF(tau=0.0)


# -- gradients: surrogate chain rule, threshold, reset and refractory period ---------------


def surrogate_derivative(surrogate, x):
    """The surrogate's derivative written out independently (NumPy)."""
    s = surrogate.slope
    if isinstance(surrogate, jsyn.SigmoidSurrogate):
        return s * np.exp(-s * x) / (1.0 + np.exp(-s * x)) ** 2
    return 0.5 * s / (1.0 + s * np.abs(x)) ** 2


SURROGATES = [jsyn.SigmoidSurrogate(slope=0.7), jsyn.FastSigmoidSurrogate(slope=3.0)]


@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
def test_one_step_spike_gradient_is_the_surrogates_analytic_value(surrogate):
    """spike = H(V1 - V_th), V1 = V_inf + (V0 - V_inf) f: the gradients w.r.t. V0, the
    current I and V_th are s'(V1 - V_th) times f, R (1 - f) and -1."""
    dt, tau, R, V_th = 0.1, 15.0, 0.5, -50.0
    f = np.exp(-dt / tau)
    for V0, I in [(-52.0, 3.0), (-50.3, 10.0), (-49.0, 0.0), (-58.0, 40.0), (-70.0, 0.0)]:

        def spike(V0, I, V_th):
            lif = jsyn.LIF(tau=tau, R=R, V_th=V_th, surrogate=surrogate)
            state = lif.init_state(1, V0=V0)
            return lif.step(state, jnp.reshape(I, (1,)), dt)[1][0]

        grads = jax.grad(spike, argnums=(0, 1, 2))(V0, I, V_th)
        V1 = -60.0 + R * I + (V0 + 60.0 - R * I) * f
        d = surrogate_derivative(surrogate, V1 - V_th)
        np.testing.assert_allclose(grads, [d * f, d * R * (1 - f), -d], rtol=1e-12)


def tangent_reference(lif, V0, I, dt, surrogate, w_spike, w_V):
    """An independent NumPy run of the LIF of the docstring that carries the tangents of the
    potential w.r.t. (V_th, V_reset) through the surrogate chain rule: returns the spikes and
    d/d(V_th, V_reset) of sum_n w_spike[n] spike_n + w_V[n] V_n."""
    V_th, V_reset, tau_ref = float(lif.V_th), float(lif.V_reset), float(lif.tau_ref)
    V, dV, t_ref = V0, np.zeros(2), 0.0
    spikes, grad = [], np.zeros(2)
    for n in range(len(I)):
        V_inf = float(lif.V_rest) + float(lif.R) * I[n]
        held = min(t_ref, dt)
        f = np.exp(-(dt - held) / float(lif.tau))
        if held < dt:
            V, dV = V_inf + (V - V_inf) * f, dV * f
        d = surrogate_derivative(surrogate, V - V_th)
        grad += w_spike[n] * d * (dV - np.array([1.0, 0.0]))
        fired = V >= V_th
        spikes.append(float(fired))
        if fired:
            V, dV, t_ref = V_reset, np.array([0.0, 1.0]), tau_ref
        else:
            t_ref -= held
        grad += w_V[n] * dV
    return np.asarray(spikes), grad


@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("tau_ref", [0.0, 1.23])
def test_threshold_and_reset_gradients_of_a_spiking_run(surrogate, tau_ref):
    """Through 400 steps with 8 to 20 spikes, the gradients w.r.t. V_th and V_reset equal
    the surrogate chain rule carried by hand (`tangent_reference`)."""
    dt, n_steps = 0.1, 400
    I = np.repeat(np.random.default_rng(2).uniform(20.0, 60.0, 8), 50)
    w_spike, w_V = np.linspace(0.5, 1.5, n_steps), np.linspace(1.0, 0.2, n_steps) * 0.01
    lif = jsyn.LIF(tau=10.0, R=1.0, tau_ref=tau_ref, surrogate=surrogate)

    def loss(V_th, V_reset):
        model = jsyn.LIF(
            tau=10.0, R=1.0, tau_ref=tau_ref, V_th=V_th, V_reset=V_reset, surrogate=surrogate
        )
        _, (V, spikes) = jsyn.simulate(
            model, jnp.asarray(I)[:, None], dt, record=lambda s, spk: (s.V[0], spk[0])
        )
        return jnp.sum(w_spike * spikes) + jnp.sum(w_V * V), spikes

    grads, spikes = jax.grad(loss, argnums=(0, 1), has_aux=True)(-50.0, -60.0)
    ref_spikes, ref_grad = tangent_reference(lif, -60.0, I, dt, surrogate, w_spike, w_V)
    np.testing.assert_array_equal(spikes, ref_spikes)
    assert ref_spikes.sum() >= 8
    np.testing.assert_allclose(grads, ref_grad, rtol=1e-9)


def test_reset_gradient_of_the_potential_matches_finite_differences():
    """The potential after each reset relaxes from V_reset: d/dV_reset of the trace is a
    true derivative (the spike times do not move for a small change), so central
    differences must agree."""
    I = jnp.asarray(np.repeat(np.random.default_rng(3).uniform(15.0, 40.0, 6), 50))[:, None]

    def trace_sum(V_reset):
        lif = jsyn.LIF(tau=10.0, V_reset=V_reset, tau_ref=0.77)
        _, V = jsyn.simulate(lif, I, 0.1, record=lambda s, spk: s.V[0])
        return jnp.sum(V * jnp.linspace(0.5, 1.5, V.size))

    grad = jax.grad(trace_sum)(-62.0)
    assert grad > 1.0  # several resets feed it
    np.testing.assert_allclose(grad, central_fd(trace_sum, -62.0, 1e-5), rtol=1e-7)


def test_refractory_period_ends_at_its_exact_time():
    """After a spike at t_s, V is held at V_reset until t_s + tau_ref, then relaxes exactly:
    V(t) = V_inf + (V_reset - V_inf) e^{-(t - t_s - tau_ref)/tau}, on any grid, whether
    or not tau_ref is a multiple of dt."""
    tau_ref, V_inf = 2.05, -52.0  # V_inf below threshold: no second spike
    lif = jsyn.LIF(tau_ref=tau_ref)
    for dt in (0.1, 0.25, 0.04):
        state = lif.init_state(1, V0=-49.0)
        state, spk = lif.step(state, jnp.array([1000.0]), dt)  # fires, t_s = dt
        assert spk[0] == 1.0
        I = jnp.full((200, 1), V_inf + 60.0)  # R = 1 GOhm
        _, V = jsyn.simulate(lif, I, dt, state=state, record=lambda s, spk: s.V[0])
        t = (np.arange(200) + 1) * dt  # since the spike
        free = np.maximum(t - tau_ref, 0.0)
        np.testing.assert_allclose(V, V_inf + (-60.0 - V_inf) * np.exp(-free / 20.0), rtol=1e-12)


def test_refractory_period_gradient_matches_finite_differences():
    """V is continuous in tau_ref (each period ends inside a step), so its gradient is the
    true, nonzero derivative that central differences measure (it was 0)."""
    I = jnp.full((300, 1), 25.0)

    def trace_sum(tau_ref):
        _, V = jsyn.simulate(jsyn.LIF(tau_ref=tau_ref), I, 0.1, record=lambda s, spk: s.V[0])
        return jnp.sum(V)

    for tau_ref in (0.37, 2.05, 4.93):
        grad = jax.grad(trace_sum)(tau_ref)
        assert grad < 0  # a longer hold at V_reset lowers the trace
        np.testing.assert_allclose(grad, central_fd(trace_sum, tau_ref, 1e-6), rtol=1e-6)
