"""The LIF neuron against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn


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


def test_refractory_period_lasts_round_tau_ref_over_dt_steps():
    lif = jsyn.LIF(tau_ref=2.0)
    state = lif.init_state(1, V0=-49.0)  # fires at the first step
    state, spk = lif.step(state, jnp.array([1000.0]), 0.1)
    assert spk[0] == 1.0
    V = []
    for _ in range(30):
        state, spk = lif.step(state, jnp.array([1000.0]), 0.1)
        V.append(float(state.V[0]))
    held = np.flatnonzero(np.asarray(V) != -60.0)[0]
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
