"""Delays: exact in whole steps, linear interpolation between steps (against NumPy),
spikes conserved, gradients w.r.t. the delay, and errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jsyn
from helpers import DT, central_fd, spike_train


def np_delayed(X, steps):
    """y[n, j] = (1 - f) X[n - k, j] + f X[n - k - 1, j] with steps[j] = k + f; X = 0
    before row 0. Written with loops, rows and fractions taken independently."""
    T, n = X.shape
    y = np.zeros((T, n))
    for j in range(n):
        k = int(np.floor(steps[j]))
        f = steps[j] - k
        for t in range(T):
            for lag, weight in ((k, 1.0 - f), (k + 1, f)):
                if t - lag >= 0:
                    y[t, j] += weight * X[t - lag, j]
    return y


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("delay_ms,dt,steps", [(2.0, 0.1, 20), (3.0, 0.1, 30), (0.7, 0.05, 14)])
def test_whole_steps_are_exact(delay_ms, dt, steps, dtype):
    x = jnp.zeros((steps + 20, 2), dtype).at[5].set(jnp.array([1.0, 2.0], dtype))
    _, y = jsyn.simulate(jsyn.Delay(delay_ms, dt), x, dt)
    expected = np.zeros(x.shape)
    expected[5 + steps] = [1.0, 2.0]
    np.testing.assert_array_equal(np.asarray(y), expected)


def test_zero_delay_passes_the_input_through():
    x = spike_train(n_steps=50)
    _, y = jsyn.simulate(jsyn.Delay(0.0, DT), x, DT)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("delays", [[0.0, 0.37, 1.23], [2.5, 0.05, 0.999]])
def test_per_element_fractional_delays_match_numpy(delays):
    x = spike_train(n_steps=120, seed=3) + 0.1 * spike_train(n_steps=120, seed=4, rate=0.5)
    _, y = jsyn.simulate(jsyn.Delay(jnp.array(delays), DT), x, DT)
    steps = np.asarray(delays) / DT
    np.testing.assert_allclose(y, np_delayed(np.asarray(x), steps), rtol=1e-12, atol=1e-12)


def test_fractional_delay_conserves_spikes():
    x = spike_train(n_steps=200, seed=1)
    _, y = jsyn.simulate(jsyn.Delay(0.73, DT), x, DT)
    # Everything sent before the last 8 steps has arrived, in full.
    np.testing.assert_allclose(jnp.sum(y, axis=0), jnp.sum(x[:-8], axis=0), rtol=1e-12)


def test_split_steps_snaps_rounding_error_and_keeps_the_gradient():
    k, frac = jsyn.split_steps(2.0, 0.1)  # 19.999999999999996 in floating point
    assert int(k) == 20 and float(frac) == 0.0
    k, frac = jsyn.split_steps(1.234, 0.1)
    assert int(k) == 12 and float(frac) == pytest.approx(0.34)
    np.testing.assert_allclose(jax.grad(lambda d: jsyn.split_steps(d, 0.1)[1])(2.0), 10.0)
    np.testing.assert_allclose(jax.grad(lambda d: jsyn.split_steps(d, 0.1)[1])(1.234), 10.0)


@pytest.mark.parametrize("delay", [0.37, 1.55, 2.04])
@pytest.mark.slow  # 6 s in the default lane (2 workers, 2 cores)
def test_gradient_through_a_synapse_matches_finite_differences(delay):
    x = spike_train(n_steps=200, n=1, seed=2)
    syn = jsyn.DualExpon(1.0, 5.0)

    class Delayed(jsyn.AbstractSystem):
        delay: jsyn.Delay

        def constraints(self):
            return ()

        def init_state(self, n, *, dtype=None):
            return (self.delay.init_state(n, dtype=dtype), syn.init_state(n, dtype=dtype))

        def step(self, state, x, dt):
            d_state, s_state = state
            d_state, arrived = self.delay.step(d_state, x, dt)
            s_state, g = syn.step(s_state, arrived, dt)
            return (d_state, s_state), g

    target = jsyn.simulate(Delayed(jsyn.Delay(1.0, DT)), x, DT)[1]

    def loss(d):
        g = jsyn.simulate(Delayed(jsyn.Delay(d, DT, max_delay=3.0)), x, DT)[1]
        return jnp.sum((g - target) ** 2)

    grad = jax.grad(loss)(delay)
    assert grad != 0.0
    np.testing.assert_allclose(grad, central_fd(loss, delay, 1e-6), rtol=1e-6)


def test_a_run_continues_exactly_from_its_final_state():
    x = spike_train(n_steps=100)
    delay = jsyn.Delay(jnp.array([0.3, 0.75, 1.6]), DT)
    _, whole = jsyn.simulate(delay, x, DT)
    mid, first = jsyn.simulate(delay, x[:41], DT)
    _, second = jsyn.simulate(delay, x[41:], DT, state=mid)
    np.testing.assert_array_equal(whole, jnp.concatenate([first, second]))


def test_buffer_is_sized_by_max_delay():
    assert jsyn.Delay(2.0, 0.1).n_slots == 22
    assert jsyn.Delay(jnp.array([0.3, 1.25]), 0.1).n_slots == 14
    assert jsyn.Delay(0.5, 0.1, max_delay=5.0).n_slots == 52


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: jsyn.Delay(-1.0, DT), ValueError, r"Delay.delay must be finite and >= 0.*-1.0"),
        (lambda: jsyn.Delay(2.0, DT, max_delay=1.0), ValueError, r"<= max_delay=1.0.*2.0"),
        (lambda: jsyn.Delay(1.0, 0.0), ValueError, r"Delay needs the time step dt.*got 0.0"),
        (lambda: jsyn.Delay(1.0, DT, max_delay=-2.0), ValueError, r"max_delay must be.*-2.0"),
        (lambda: jsyn.Delay(jnp.ones(3), DT).init_state(4), ValueError, r"shape \(3,\).*\(4,\)"),
    ],
)
def test_bad_construction_is_named(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_traced_delay_needs_max_delay():
    with pytest.raises(TypeError, match="needs max_delay"):
        jax.jit(lambda d: jsyn.Delay(d, DT).n_slots)(1.0)


def test_stepping_with_another_dt_is_refused():
    with pytest.raises(ValueError, match=r"built for dt=0.1 ms .*got 0.05"):
        jsyn.simulate(jsyn.Delay(1.0, 0.1), spike_train(n_steps=10), 0.05)


def test_delay_beyond_the_buffer_is_caught_under_jit_and_vmap():
    x = spike_train(n_steps=30)

    def run(d):
        return jsyn.simulate(jsyn.Delay(d, DT, max_delay=1.0), x, DT)[1]

    with pytest.raises(Exception, match=r"Delay.delay must be <= max_delay=1.0"):
        jax.jit(run)(1.5)
    with pytest.raises(Exception, match=r"Delay.delay must be finite and >= 0"):
        jax.vmap(run)(jnp.array([0.5, -0.2]))


# -- the run's dt, and delays beyond the buffer ------------------------------------------------


def test_a_traced_dt_other_than_the_built_one_is_refused():
    """The buffer is sized for the dt the delay was built with; a traced dt is checked at
    the simulate entry (under jit and vmap), not run with the wrong delay."""
    x = spike_train(n_steps=30)
    delay = jsyn.Delay(1.0, 0.1)

    def run(h):
        return jsyn.simulate(delay, x, h)[1]

    with pytest.raises(Exception, match=r"Delay was built for dt=0.1 ms.*build it with the dt"):
        jax.jit(run)(0.05).block_until_ready()
    with pytest.raises(Exception, match=r"Delay was built for dt=0.1 ms"):
        jax.vmap(run)(jnp.array([0.1, 0.05])).block_until_ready()
    np.testing.assert_array_equal(jax.jit(run)(0.1), run(0.1))  # the built dt, traced: fine
    np.testing.assert_array_equal(jax.jit(run)(jnp.float32(0.1)), run(0.1))  # its float32 too


def _stepped(delay, x):
    state, out = delay.init_state(x.shape[1:]), []
    for t in range(x.shape[0]):
        state, y = delay.step(state, x[t], DT)
        out.append(y)
    return jnp.stack(out)


def test_a_delay_beyond_the_buffer_never_wraps_the_ring_when_stepped_directly():
    delay = jsyn.Delay(0.5, DT, max_delay=1.0)  # a buffer of 12 steps
    x = jnp.zeros((20, 1)).at[0].set(1.0)
    too_long = eqx.tree_at(lambda d: d.delay, delay, jnp.asarray(2.5))
    # Eagerly, and when the delay is closed over under jit: raised at the step.
    with pytest.raises(ValueError, match=r"Delay.delay must be <= max_delay=1.0 ms.*2.5"):
        too_long.step(too_long.init_state(1), x[0], DT)
    with pytest.raises(ValueError, match=r"Delay.delay must be <= max_delay=1.0 ms"):
        jax.jit(lambda s, x: too_long.step(s, x, DT))(too_long.init_state(1), x[0])
    # Traced (only simulate's entry can check it): read at max_delay, never wrapped.
    y = jax.jit(lambda d: _stepped(eqx.tree_at(lambda q: q.delay, delay, d), x))(2.5)
    assert np.flatnonzero(y[:, 0]).tolist() == [10]


# -- a delay only moves a response --------------------------------------------------------------

RESPONSES = [
    # (synapse, ms to record: long enough that what is left is below 1e-9 of the charge)
    (jsyn.Expon(tau=6.0), 250.0),
    (jsyn.Alpha(tau_decay=4.0), 250.0),
    (jsyn.DualExpon(1.5, 7.0), 300.0),
    (jsyn.DualExponV2(1.5, 7.0), 300.0),
    (jsyn.AMPA(), 150.0),
    (jsyn.GABAa(), 150.0),
    (jsyn.NMDA(), 2500.0),
    (jsyn.BioNMDA(), 2500.0),
    (jsyn.GABAb(Kd=1.0), 6000.0),
]
DELAYS_MS = jnp.array([0.2, 0.25, 0.3, 0.37, 0.41])


def _psc_responses(synapse, ms, delay):
    """The currents of one spike at 0.5 ms through a PSC with `delay` (one per column)."""
    n = jnp.size(delay)
    psc = jsyn.PSC(synapse, jsyn.COBA(g_max=1.0, E=0.0), delay=jsyn.Delay(delay, DT, max_delay=0.5))
    spikes = jnp.zeros((int(round(ms / DT)), n)).at[5].set(1.0)
    return jsyn.simulate(psc, spikes, DT)[1]


@pytest.mark.parametrize("synapse,ms", RESPONSES, ids=lambda v: type(v).__name__)
def test_a_delay_keeps_the_charge_of_a_response(synapse, ms):
    """The charge of one response is the same for every delay, on the grid or off it (a
    fractional delay split over two steps used to drive nonlinear kinetics as two smaller
    events: AMPA lost 14 % of its charge at 0.25 ms)."""
    I = np.asarray(_psc_responses(synapse, ms, DELAYS_MS))
    charge = I.sum(axis=0) * DT
    assert np.all(np.abs(I[-1]) < 1e-9 * np.abs(charge))  # the whole response was recorded
    np.testing.assert_allclose(charge, charge[0], rtol=1e-6)
    # ... and it is the same response moved: on the grid by whole steps, exactly.
    np.testing.assert_allclose(I[1:-1, 2], I[:-2, 0], rtol=1e-12, atol=1e-15 * abs(charge[0]))


@pytest.mark.parametrize(
    "synapse,ms",
    [RESPONSES[4], *(pytest.param(*r, marks=pytest.mark.slow) for r in RESPONSES[5:])],
    ids=lambda v: type(v).__name__,
)
def test_a_response_is_continuous_and_differentiable_in_the_delay(synapse, ms):
    ms = min(ms, 60.0)
    on_grid = 0.3
    below, above = (_psc_responses(synapse, ms, on_grid + e) for e in (-1e-9, 1e-9))
    scale = float(jnp.max(jnp.abs(below)))
    np.testing.assert_allclose(below, above, atol=1e-6 * scale)

    probe = jnp.linspace(0.5, 1.5, int(round(ms / DT)))

    def loss(d):
        return jnp.sum(probe * _psc_responses(synapse, ms, d)[:, 0]) / scale

    d = 0.237
    grad = jax.grad(loss)(d)
    assert abs(float(grad)) > 1e-3
    np.testing.assert_allclose(grad, central_fd(loss, d, 1e-7), rtol=1e-6)


def test_delayed_copies_broadcast_with_the_population():
    """A delay of shape (n, m) on inputs (n, 1): m delayed copies of each input."""
    x = spike_train(n_steps=60, n=3, seed=7)
    steps = np.array([[0.0, 1.5, 4.0], [2.25, 3.0, 0.5], [7.0, 0.1, 1.0]])
    delay = jsyn.Delay(jnp.asarray(steps * DT), DT)
    _, y = jsyn.simulate(delay, x[:, :, None], DT)
    assert y.shape == (60, 3, 3)
    for j in range(3):
        np.testing.assert_allclose(
            y[:, :, j], np_delayed(np.asarray(x), steps[:, j]), rtol=1e-12, atol=1e-12
        )
