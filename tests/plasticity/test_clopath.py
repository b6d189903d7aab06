"""Clopath's voltage-based STDP against an event-by-event NumPy reference, the frequency
dependence of post-pre pairings on an AdEx cell (Clopath et al. 2010, Fig. 2), and its
amplitudes recovered from such a curve with `jsyn.fit`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn

DT = 0.1
V_CLAMP = 33.0  # the spike as the rule sees it (NEST's aeif_psc_delta_clopath)


def reference(pre, V, p, w):
    """The weights after the steps, by the documented step, in NumPy."""
    w = np.array(w, dtype=float)
    x = np.zeros_like(w)
    um = np.full_like(w, -70.6)
    up = np.full_like(w, -70.6)
    for t in range(pre.shape[0]):
        um = V[t] + (um - V[t]) * np.exp(-DT / p["tau_minus"])
        up = V[t] + (up - V[t]) * np.exp(-DT / p["tau_plus"])
        x = x * np.exp(-DT / p["tau_x"])
        ltp = np.maximum(V[t] - p["theta_plus"], 0.0) * np.maximum(up - p["theta_minus"], 0.0)
        w = w + DT * p["A_LTP"] * x * ltp
        w = w - pre[t] * p["A_LTD"] * np.maximum(um - p["theta_minus"], 0.0)
        x = x + pre[t] / p["tau_x"]
        w = np.clip(w, 0.0, 1.0)
    return w


class Pairings(eqx.Module):
    """The rule on given presynaptic events and postsynaptic potentials (inputs `(pre,
    V)`, time leading): its output is the weight of each synapse."""

    rule: jsyn.Clopath

    def init_state(self, n, *, dtype=None):
        return self.rule.init_state(n, dtype=dtype), jnp.full(n, 0.5)

    def step(self, state, x, dt):
        rule_state, w = self.rule.step(*state, x[0], x[1], dt)
        return (rule_state, w), w


def post_pre_protocol(freqs, lag=-10.0, n_pairs=3):
    """Post spikes of an AdEx cell (2 ms pulses of 6 nA) repeated at `freqs` (Hz), a pre
    event `lag` ms before each (negative: after). Returns the pre events and the
    potential the rule sees (the AdEx potential, clamped at 33 mV while refractory)."""
    T = int(round((100.0 + n_pairs * 1000.0 / min(freqs)) / DT))
    current = np.zeros((T, len(freqs)))
    for k, f in enumerate(freqs):
        for p in range(n_pairs):
            i = int(round((100.0 + p * 1000.0 / f) / DT))
            current[i : i + 20, k] = 6000.0
    neuron = jsyn.AdEx(tau_ref=2.0)

    def seen(s, spikes):
        return jnp.where(s.t_ref > 0, V_CLAMP, s.V), spikes

    _, (V, spikes) = jax.jit(lambda c: jsyn.simulate(neuron, c, DT, record=seen))(current)
    pre = np.zeros_like(current)
    for k in range(len(freqs)):
        steps = np.flatnonzero(np.asarray(spikes[:, k]))
        assert len(steps) == n_pairs  # one spike per pulse
        pre[steps - int(round(lag / DT)), k] = 1.0
    return jnp.asarray(pre), V


def test_equals_event_by_event_reference():
    rng = np.random.default_rng(0)
    n_steps, n = 800, 4
    pre = (rng.random((n_steps, n)) < 0.02).astype(float)
    V = -70.0 + np.cumsum(rng.normal(0.0, 0.8, (n_steps, n)), axis=0)
    V[rng.random((n_steps, n)) < 0.01] = V_CLAMP  # spikes
    p = dict(A_LTD=2e-3, A_LTP=5e-4, theta_minus=-70.6, theta_plus=-45.3)
    p.update(tau_x=15.0, tau_minus=10.0, tau_plus=7.0)
    rule = jsyn.Clopath(**p)
    _, w = jsyn.simulate(
        Pairings(rule), (jnp.asarray(pre), jnp.asarray(V)), DT, state=Pairings(rule).init_state(n)
    )
    expected = reference(pre, V, p, np.full(n, 0.5))
    np.testing.assert_allclose(w[-1], expected, rtol=1e-12, atol=1e-15)
    assert np.abs(expected - 0.5).max() > 1e-3


def test_post_pre_pairings_depress_at_low_and_potentiate_at_high_frequency():
    freqs = [2.0, 10.0, 30.0, 50.0]
    pre, V = post_pre_protocol(freqs)
    model = Pairings(jsyn.Clopath())
    _, w = jsyn.simulate(model, (pre, V), DT, state=model.init_state(len(freqs)))
    dw = np.asarray(w[-1]) - 0.5
    assert dw[0] < 0 and dw[1] < 0  # LTD at low frequencies
    assert dw[-1] > 0 and dw[-2] > 0  # LTP at high ones
    assert np.all(np.diff(dw) > 0)  # growing with the frequency
    p = {n: float(getattr(model.rule, n)) for n in ("A_LTD", "A_LTP", "theta_minus")}
    p.update({n: float(getattr(model.rule, n)) for n in ("theta_plus", "tau_x")})
    p.update(tau_minus=10.0, tau_plus=7.0)
    np.testing.assert_allclose(
        dw, reference(np.asarray(pre), np.asarray(V), p, 0.5) - 0.5, rtol=1e-10
    )


@pytest.mark.slow
def test_fit_recovers_amplitudes_from_a_pairing_curve():
    freqs = [2.0, 10.0, 30.0, 50.0]
    pre, V = post_pre_protocol(freqs)
    truth = Pairings(jsyn.Clopath(A_LTD=2.0e-4, A_LTP=6.0e-5))
    state = truth.init_state(len(freqs))
    _, w = jsyn.simulate(truth, (pre, V), DT, state=state)
    weights = jnp.zeros((w.shape[0], 1)).at[-1].set(1.0)  # the curve: the final weights
    guess = Pairings(jsyn.Clopath(A_LTD=1.0e-4, A_LTP=1.0e-4))
    res = jsyn.fit(
        guess,
        (pre, V),
        w,
        DT,
        params="A_LTD,A_LTP",
        loss="weighted",
        weights=weights,
        state=state,
    )
    np.testing.assert_allclose(res.model.rule.A_LTD, 2.0e-4, rtol=1e-6)
    np.testing.assert_allclose(res.model.rule.A_LTP, 6.0e-5, rtol=1e-6)
