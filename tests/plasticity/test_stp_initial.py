"""STP's settable initial state (`u0`, `x0`) against the Tsodyks-Markram equations spike
by spike in NumPy."""

import jax.numpy as jnp
import numpy as np
import pytest

import jsyn


def tsodyks_markram(spike_steps, n_steps, dt, U, tau_f, tau_d, u, x):
    """The efficacy of each step, event by event: exact recovery, then at a spike
    u <- u + U(1 - u), r = u x, x <- x - r."""
    r = np.zeros(n_steps)
    for t in range(n_steps):
        u *= np.exp(-dt / tau_f)
        x = 1.0 - (1.0 - x) * np.exp(-dt / tau_d)
        if t in spike_steps:
            u += U * (1.0 - u)
            r[t] = u * x
            x -= r[t]
    return r


def test_initial_u_and_x_equal_the_reference():
    steps, n, dt = {3, 40, 45, 50, 300}, 400, 0.5
    u0, x0 = jnp.asarray([0.0, 0.4, 0.9]), jnp.asarray([1.0, 0.5, 0.2])
    stp = jsyn.STP(U=0.2, tau_f=150.0, tau_d=80.0, u0=u0, x0=x0)
    spikes = np.zeros((n, 3))
    spikes[sorted(steps)] = 1.0
    _, r = jsyn.simulate(stp, jnp.asarray(spikes), dt)
    for k in range(3):
        ref = tsodyks_markram(steps, n, dt, 0.2, 150.0, 80.0, float(u0[k]), float(x0[k]))
        np.testing.assert_allclose(r[:, k], ref, rtol=1e-12, atol=1e-15)
    assert float(r[3, 1]) != float(r[3, 0])  # the initial state shows in the release


def test_default_initial_state_is_rested():
    state = jsyn.STP().init_state(4)
    np.testing.assert_array_equal(state.u, np.zeros(4))
    np.testing.assert_array_equal(state.x, np.ones(4))


@pytest.mark.parametrize("name", ["u0", "x0"])
def test_initial_fractions_outside_unit_interval_are_refused(name):
    with pytest.raises(ValueError, match=rf"STP.{name} must be in \[0, 1\]"):
        jsyn.STP(**{name: 1.5})
